//! Every context switcher runs tasks; the stackful ones suspend and
//! unwind panics; the none switcher refuses to suspend.

use monad_async::{Executor, Priority, Switcher};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

const ALL: [Switcher; 3] = [Switcher::Asm, Switcher::Sjlj, Switcher::None];

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
    for sw in [Switcher::Asm, Switcher::Sjlj] {
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
    for sw in [Switcher::Asm, Switcher::Sjlj] {
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
    for sw in [Switcher::Asm, Switcher::Sjlj] {
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
