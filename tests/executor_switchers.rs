//! Every context switcher runs tasks; the stackful ones suspend and
//! unwind panics; the none switcher refuses to suspend; tasks see the
//! thread's floating-point control words whether or not the switcher
//! saves them.

use monad_async::{Executor, Priority, Switcher};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

const ALL: [Switcher; 4] = [
    Switcher::Asm,
    Switcher::AsmFpControl,
    Switcher::Sjlj,
    Switcher::None,
];
const STACKFUL: [Switcher; 3] = [Switcher::Asm, Switcher::AsmFpControl, Switcher::Sjlj];

#[test]
fn default_switcher_is_asm() {
    assert_eq!(Switcher::default(), Switcher::Asm);
}

#[test]
fn every_switcher_runs_a_task() {
    for sw in ALL {
        let ex = Executor::builder().switcher(sw).build().unwrap();
        let h = ex.spawn(Priority::Normal, move |_cx| format!("{sw:?}"));
        assert_eq!(h.join().unwrap(), format!("{sw:?}"), "{sw:?}");
        let remote = ex.handle();
        let h = std::thread::spawn(move || remote.spawn(Priority::High, |_cx| 9).unwrap())
            .join()
            .unwrap();
        assert_eq!(h.join().unwrap(), 9, "{sw:?}");
    }
}

#[test]
fn stackful_switchers_interleave_suspending_tasks() {
    for sw in STACKFUL {
        let ex = Executor::builder().switcher(sw).build().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                ex.spawn(Priority::Normal, move |cx| {
                    // Locals live on the task's own stack across switches.
                    let mut acc = [i; 64];
                    for step in 0..3 {
                        log.borrow_mut().push((i, step));
                        cx.yield_now().unwrap();
                        acc.iter_mut().for_each(|a| *a += 1);
                    }
                    cx.sleep(Duration::from_micros(200)).unwrap();
                    acc.iter().sum::<i32>()
                })
            })
            .collect();
        ex.run_until_idle().unwrap();
        let sums: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(sums, [192, 256, 320], "{sw:?}");
        let expected: Vec<_> = (0..3).flat_map(|s| (0..3).map(move |i| (i, s))).collect();
        assert_eq!(*log.borrow(), expected, "{sw:?}");
    }
}

#[test]
fn stackful_switchers_carry_panics_to_join() {
    for sw in STACKFUL {
        let ex = Executor::builder().switcher(sw).build().unwrap();
        let h = ex.spawn(Priority::Normal, |cx| -> () {
            cx.yield_now().unwrap();
            panic!("after a switch");
        });
        let id = h.id();
        let err = h.join().unwrap_err();
        assert!(err.is_panic(), "{sw:?}");
        assert_eq!(
            err.to_string(),
            format!("task (id {id}) panicked: after a switch")
        );
        // The executor and the task are fine afterwards.
        assert!(ex
            .spawn(Priority::Normal, |cx| cx.yield_now().is_ok())
            .join()
            .unwrap());
    }
}

#[test]
fn none_switcher_cannot_suspend() {
    let ex = Executor::builder()
        .switcher(Switcher::None)
        .build()
        .unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        (
            cx.yield_now().unwrap_err().raw_os_error(),
            cx.sleep(Duration::from_millis(1))
                .unwrap_err()
                .raw_os_error(),
        )
    });
    assert_eq!(
        h.join().unwrap(),
        (Some(libc::ENOTSUP), Some(libc::ENOTSUP))
    );
    let h = ex.spawn(Priority::Normal, |_cx| -> () {
        panic!("on the executor's stack")
    });
    assert!(h.join().unwrap_err().is_panic());
}

#[test]
fn switchers_work_with_a_small_stack() {
    for sw in STACKFUL {
        let ex = Executor::builder()
            .switcher(sw)
            .stack_size(16 * 1024)
            .build()
            .unwrap();
        let h = ex.spawn(Priority::Normal, |cx| {
            cx.yield_now().unwrap();
            1
        });
        assert_eq!(h.join().unwrap(), 1, "{sw:?}");
    }
}

/// The floating-point control bits as the thread has them (reading is
/// allowed; only changing them is undefined behaviour in Rust).
fn fp_control() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut mxcsr: u32 = 0;
        let mut fcw: u16 = 0;
        // SAFETY: stores the two control registers into our locals.
        unsafe {
            std::arch::asm!(
                "stmxcsr [{m}]",
                "fnstcw [{c}]",
                m = in(reg) &mut mxcsr,
                c = in(reg) &mut fcw,
                options(nostack, preserves_flags),
            );
        }
        // The control bits only: the status bits (exception flags) are
        // anyone's.
        u64::from(mxcsr & 0xffc0) | (u64::from(fcw) << 32)
    }
    #[cfg(target_arch = "aarch64")]
    {
        let fpcr: u64;
        // SAFETY: reads FPCR into a register.
        unsafe { std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack)) };
        fpcr
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        0
    }
}

#[test]
fn tasks_see_the_threads_fp_control_words_across_switches() {
    let expected = fp_control();
    let ex = Executor::builder()
        .switcher(Switcher::None)
        .build()
        .unwrap();
    assert_eq!(
        ex.spawn(Priority::Normal, |_cx| fp_control())
            .join()
            .unwrap(),
        expected
    );
    for sw in STACKFUL {
        let ex = Executor::builder().switcher(sw).build().unwrap();
        // Tasks that yield, hand the thread to each other through a
        // channel, sleep and wait for an I/O operation, reading the words
        // after each switch.
        let (tx, mut rx) = monad_async::sync::mpsc::channel::<u64>(1);
        let echo = ex.spawn(Priority::Normal, move |cx| {
            let mut seen = vec![fp_control()];
            while rx.recv().unwrap().is_some() {
                seen.push(fp_control());
                cx.yield_now().unwrap();
                seen.push(fp_control());
            }
            seen
        });
        let main = ex.spawn(Priority::Normal, move |cx| {
            let mut seen = vec![fp_control()];
            for i in 0..50 {
                tx.send(i).unwrap();
                seen.push(fp_control());
                cx.yield_now().unwrap();
                seen.push(fp_control());
            }
            cx.sleep(Duration::from_micros(100)).unwrap();
            seen.push(fp_control());
            monad_async::io::nop(cx).unwrap();
            seen.push(fp_control());
            seen
        });
        ex.run_until_idle().unwrap();
        for seen in [main.join().unwrap(), echo.join().unwrap()] {
            assert!(seen.len() > 100, "{sw:?}");
            assert!(
                seen.iter().all(|&w| w == expected),
                "{sw:?}: {seen:x?} vs {expected:x}"
            );
        }
        assert_eq!(fp_control(), expected, "{sw:?}");
    }
}
