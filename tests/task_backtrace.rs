//! Walking the stack from inside a task (a backtrace: `RUST_BACKTRACE=1`
//! on a panic, `Backtrace::force_capture`, a debugger, a profiler) must end
//! cleanly at the bottom of the task's stack, for every stackful switcher.
//! Each case runs in a child process, since a broken walk crashes it.

mod common;

use monad_async::{Executor, Priority, Switcher};
use std::backtrace::Backtrace;
use std::process::Output;

const CHILD_ENV: &str = "MONAD_ASYNC_BACKTRACE_CHILD";

fn capture_in_a_task(switcher: Switcher) {
    let ex = Executor::builder().switcher(switcher).build().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let first = Backtrace::force_capture().to_string(); // on a fresh stack
        cx.yield_now().unwrap();
        let second = Backtrace::force_capture().to_string(); // after a switch
        (first, second)
    });
    let (first, second) = h.join().unwrap();
    // `trampoline` is always a real frame: C calls it through a pointer.
    assert!(first.contains("trampoline"), "{first}");
    assert!(second.contains("trampoline"), "{second}");
    // And through a panic with backtraces on.
    std::env::set_var("RUST_BACKTRACE", "1");
    let h = ex.spawn(Priority::Normal, |_cx| -> () { panic!("with a backtrace") });
    assert!(h.join().unwrap_err().is_panic());
}

fn assert_succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "child status {:?}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test `test_name`: [`capture_in_a_task`] with `switcher`, in a
/// child process (`case` names it there), which must exit successfully.
fn capture_in_a_child(test_name: &str, case: &str, switcher: Switcher) {
    common::in_child(
        CHILD_ENV,
        test_name,
        case,
        || capture_in_a_task(switcher),
        assert_succeeded,
    );
}

#[test]
fn backtrace_inside_an_asm_task() {
    capture_in_a_child("backtrace_inside_an_asm_task", "asm", Switcher::Asm);
}

#[test]
fn backtrace_inside_an_sjlj_task() {
    capture_in_a_child("backtrace_inside_an_sjlj_task", "sjlj", Switcher::Sjlj);
}
