//! Overflowing a task's stack hits its guard page: the process dies of
//! SIGSEGV (it is not silently corrupted). Run in a child process: the
//! test re-executes its own binary with an environment variable set.

mod common;

use monad_async::{Executor, Priority, Switcher};
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

const CHILD_ENV: &str = "MONAD_ASYNC_STACK_OVERFLOW_CHILD";

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let buf = std::hint::black_box([depth as u8; 1024]);
    if depth == u64::MAX {
        return 0;
    }
    std::hint::black_box(recurse(depth + 1)) + u64::from(buf[0])
}

fn overflow_in_a_task(switcher: Switcher) {
    let ex = Executor::builder()
        .switcher(switcher)
        .stack_size(64 * 1024)
        .build()
        .unwrap();
    let h = ex.spawn(Priority::Normal, |_cx| recurse(0));
    let _ = h.join();
    unreachable!("the task's stack overflow did not kill the process");
}

fn assert_sigsegv(out: &Output) {
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "child status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test `test_name`: [`overflow_in_a_task`] with `switcher`, in a
/// child process (`case` names it there), which must die of SIGSEGV.
fn overflow_in_a_child(test_name: &str, case: &str, switcher: Switcher) {
    common::in_child(
        CHILD_ENV,
        test_name,
        case,
        || overflow_in_a_task(switcher),
        assert_sigsegv,
    );
}

#[test]
fn stack_overflow_in_a_task_is_sigsegv_asm() {
    overflow_in_a_child(
        "stack_overflow_in_a_task_is_sigsegv_asm",
        "asm",
        Switcher::Asm,
    );
}

#[test]
fn stack_overflow_in_a_task_is_sigsegv_sjlj() {
    overflow_in_a_child(
        "stack_overflow_in_a_task_is_sigsegv_sjlj",
        "sjlj",
        Switcher::Sjlj,
    );
}
