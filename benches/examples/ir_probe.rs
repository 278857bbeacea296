//! Instruction-count probe for the same-executor wake paths: run it under
//! `valgrind --tool=callgrind` with N and 2N iterations and divide the
//! difference by N (set-up and tear-down cancel out):
//!
//! ```sh
//! cargo build --release -p monad-async-benches --example ir_probe
//! for n in 10000 20000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/ir_probe MODE $n 2>&1 | grep refs
//! done
//! ```
//!
//! With `IR_PROBE_TIME` set it also prints the wall time per iteration
//! (`benches/examples/wall.sh` takes the minimum of many runs).
//!
//! Modes (one default executor: a ring, the asm switcher, ticks on):
//! * `yield`: one task yields N times.
//! * `spawn`: a task spawns N Normal children and joins each after it ran
//!   (a yield lets it run first: spawn + run + exit + join, plus a yield).
//! * `park`: two tasks pass a turn N times through `TaskWaker`s (two
//!   wakes, two parks per round trip).
//! * `mpsc`: two tasks bounce a message N times through two capacity-1
//!   channels (two sends, two receives per round trip).
//! * `join`: a task spawns a Low child N times and joins it (parks until
//!   the child's exit wakes it).
//! * `exit`: as `join`, counting only from the child's last instruction
//!   to the joiner's `join` returning (the probe toggles callgrind's
//!   collection there itself: run it with `--collect-atstart=no` and no
//!   `--toggle-collect`; `ir.sh` does).
//! * `nop32`: 32 tasks each suspend on N/32 io_uring NOPs (the executor
//!   submits and reaps 32 per system call): per NOP.

use monad_async::sync::mpsc;
use monad_async::{Executor, Priority, TaskWaker};
use std::cell::RefCell;
use std::rc::Rc;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().expect("usage: ir_probe MODE N");
    let n: u64 = args.next().expect("N").parse().expect("N");
    let ex = Executor::new().unwrap();
    match mode.as_str() {
        "nop32" => {
            for _ in 0..32 {
                ex.spawn(Priority::Normal, move |cx| {
                    for _ in 0..n / 32 {
                        monad_async::io::nop(cx).unwrap();
                    }
                });
            }
        }
        "yield" => {
            ex.spawn(Priority::Normal, move |cx| {
                for _ in 0..n {
                    cx.yield_now().unwrap();
                }
            });
        }
        "spawn" => {
            ex.spawn(Priority::Normal, move |cx| {
                for _ in 0..n {
                    let h = cx.spawn(Priority::Normal, |_cx| ()).unwrap();
                    cx.yield_now().unwrap();
                    h.join().unwrap();
                }
            });
        }
        "park" => {
            let b_waker: Rc<RefCell<Option<TaskWaker>>> = Rc::default();
            let a_waker: Rc<RefCell<Option<TaskWaker>>> = Rc::default();
            let (bw, aw) = (b_waker.clone(), a_waker.clone());
            ex.spawn(Priority::Normal, move |cx| {
                *bw.borrow_mut() = Some(cx.waker());
                for _ in 0..n {
                    cx.park().unwrap();
                    aw.borrow().as_ref().unwrap().wake();
                }
            });
            ex.spawn(Priority::Normal, move |cx| {
                *a_waker.borrow_mut() = Some(cx.waker());
                for _ in 0..n {
                    b_waker.borrow().as_ref().unwrap().wake();
                    cx.park().unwrap();
                }
            });
        }
        "mpsc" => {
            let (tx_a, mut rx_a) = mpsc::channel::<u64>(1);
            let (tx_b, mut rx_b) = mpsc::channel::<u64>(1);
            ex.spawn(Priority::Normal, move |_cx| {
                while let Some(v) = rx_a.recv().unwrap() {
                    tx_b.send(v).unwrap();
                }
            });
            ex.spawn(Priority::Normal, move |_cx| {
                for i in 0..n {
                    tx_a.send(i).unwrap();
                    rx_b.recv().unwrap();
                }
            });
        }
        "join" => {
            ex.spawn(Priority::Normal, move |cx| {
                for _ in 0..n {
                    cx.spawn(Priority::Low, |_cx| ()).unwrap().join().unwrap();
                }
            });
        }
        "exit" => {
            ex.spawn(Priority::Normal, move |cx| {
                for _ in 0..n {
                    let h = cx.spawn(Priority::Low, |_cx| toggle_collect()).unwrap();
                    h.join().unwrap();
                    toggle_collect();
                }
            });
        }
        m => panic!("ir_probe: unknown mode {m}"),
    }
    let start = std::time::Instant::now();
    ex.run_until_idle().unwrap();
    // Wall time per iteration, for min-of-many runs on a loaded machine
    // (the instruction counts are the repeatable figure).
    if std::env::var_os("IR_PROBE_TIME").is_some() {
        println!(
            "{mode} {:.1} ns",
            start.elapsed().as_nanos() as f64 / n as f64
        );
    }
}

/// callgrind's CALLGRIND_TOGGLE_COLLECT client request (valgrind.h's
/// special instruction sequence; a no-op when not under valgrind).
#[inline(always)]
fn toggle_collect() {
    #[cfg(target_arch = "x86_64")]
    {
        // VG_USERREQ_TOOL_BASE('C', 'T') + 2, then five unused arguments.
        let args: [u64; 6] = [0x4354_0002, 0, 0, 0, 0, 0];
        // SAFETY: the rotations of rdi add up to 128 bits (rdi unchanged)
        // and xchg rbx, rbx is a no-op; valgrind reads rax, writes rdx.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") 0u64 => _,
                inout("rdi") 0u64 => _,
                options(nostack),
            );
        }
    }
}
