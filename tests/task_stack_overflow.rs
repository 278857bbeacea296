//! Overflowing a task's stack hits its guard page, and the process says
//! which task's stack overflowed and how to raise it, then aborts (as Rust
//! does for a thread's stack overflow): it is not silently corrupted, and
//! it is not a bare `Segmentation fault`. Faults that are not a task's
//! overflow still reach Rust's own handler (a thread's stack overflow) or
//! the default action (SIGSEGV). Each case runs in a child process: the
//! test re-executes its own binary with an environment variable set.

mod common;

use monad_async::{Executor, Priority, Switcher, ThreadPool};
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

const CHILD_ENV: &str = "MONAD_ASYNC_STACK_OVERFLOW_CHILD";

/// The start of the library's message for a task stack of `bytes`.
fn message(bytes: usize) -> String {
    format!(
        "monad-async: task stack overflow: the task's stack is {bytes} bytes; raise it with \
         ExecutorBuilder::stack_size or ThreadPoolBuilder::stack_size (Rust) or \
         monad_async_task_attr.stack_size (C) (task 0x"
    )
}

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

/// Formats a child's outcome for an assertion message.
fn describe(out: &Output) -> String {
    format!(
        "child status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Died by SIGABRT after the library's message for a `bytes` stack.
fn assert_task_overflow_message(out: &Output, bytes: usize) {
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&message(bytes)), "{}", describe(out));
    assert!(stderr.contains("in its guard page)"), "{}", describe(out));
}

/// The test `test_name`: `body` in a child process (`case` names it
/// there), whose outcome `check` judges.
fn in_a_child(test_name: &str, case: &str, body: impl FnOnce(), check: impl FnOnce(&Output)) {
    common::in_child(CHILD_ENV, test_name, case, body, check);
}

#[test]
fn stack_overflow_in_a_task_aborts_with_a_message_asm() {
    in_a_child(
        "stack_overflow_in_a_task_aborts_with_a_message_asm",
        "asm",
        || overflow_in_a_task(Switcher::Asm),
        |out| assert_task_overflow_message(out, 64 * 1024),
    );
}

#[test]
fn stack_overflow_in_a_task_aborts_with_a_message_sjlj() {
    in_a_child(
        "stack_overflow_in_a_task_aborts_with_a_message_sjlj",
        "sjlj",
        || overflow_in_a_task(Switcher::Sjlj),
        |out| assert_task_overflow_message(out, 64 * 1024),
    );
}

/// On a pool's worker thread: each worker has an alternate signal stack
/// for the handler.
#[test]
fn stack_overflow_in_a_pool_task_aborts_with_a_message() {
    in_a_child(
        "stack_overflow_in_a_pool_task_aborts_with_a_message",
        "pool",
        || {
            let pool = ThreadPool::builder()
                .threads(2)
                .ring_entries(0)
                .switcher(Switcher::Asm)
                .stack_size(128 * 1024)
                .build()
                .unwrap();
            let h = pool.spawn(Priority::Normal, |_cx| recurse(0));
            let _ = h.join();
            unreachable!("the pool task's stack overflow did not kill the process");
        },
        |out| assert_task_overflow_message(out, 128 * 1024),
    );
}

/// A thread's own stack overflowing, with an executor alive on another
/// thread and on this one: Rust's handler still reports it, not ours.
#[test]
fn thread_stack_overflow_is_still_rusts_to_report() {
    in_a_child(
        "thread_stack_overflow_is_still_rusts_to_report",
        "thread",
        || {
            let ex = Executor::new().unwrap();
            let t = std::thread::Builder::new()
                .name("deep".into())
                .stack_size(256 * 1024)
                .spawn(|| {
                    let ex = Executor::new().unwrap();
                    let r = recurse(0);
                    drop(ex);
                    r
                })
                .unwrap();
            let _ = t.join();
            drop(ex);
            unreachable!("the thread's stack overflow did not kill the process");
        },
        |out| {
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGABRT),
                "{}",
                describe(out)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            // "thread 'deep' (<id>) has overflowed its stack" in recent Rust.
            assert!(
                stderr.contains("thread 'deep'") && stderr.contains("has overflowed its stack"),
                "{}",
                describe(out)
            );
            assert!(
                !stderr.contains("monad-async: task stack overflow"),
                "{}",
                describe(out)
            );
        },
    );
}

/// Any other fault in a task is what it always was: SIGSEGV, no message.
#[test]
fn other_faults_in_a_task_are_still_sigsegv() {
    in_a_child(
        "other_faults_in_a_task_are_still_sigsegv",
        "null",
        || {
            let ex = Executor::builder().switcher(Switcher::Asm).build().unwrap();
            let h = ex.spawn(Priority::Normal, |_cx| {
                let p = std::hint::black_box(16usize) as *const u8;
                // SAFETY: none: this read faults on purpose (address 16 is
                // never mapped), to show the fault is not taken for a stack
                // overflow.
                unsafe { std::ptr::read_volatile(p) }
            });
            let _ = h.join();
            unreachable!("the faulting read returned");
        },
        |out| {
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGSEGV),
                "{}",
                describe(out)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("monad-async: task stack overflow"),
                "{}",
                describe(out)
            );
        },
    );
}
