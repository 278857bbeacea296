//! Helpers several integration tests share; a test file that needs them
//! declares `mod common;`.
//!
//! # Invariants
//!
//! * The helpers keep no state between calls, and fail the calling test
//!   (panic) on anything unexpected rather than return an error.
//! * [`in_child`] runs a case's body only in the child process it starts
//!   for that case, never in the test process itself, so a case that
//!   kills its process (a crash, a signal) fails or passes the test
//!   without taking the test binary down.

// Each test file uses some of the helpers only.
#![allow(dead_code)]

pub mod driven;
pub mod gate;

use monad_async::TaskContext;
use std::io;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// CPU time of the calling thread.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Burns about `d` of CPU without suspending.
pub fn burn(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// The body of a CPU-bound task, the Low work a service runs beside its
/// latency-sensitive tasks: slices of about `slice` of CPU with a yield
/// after each, until `stop` is set.
pub fn slice_until(cx: &mut TaskContext<'_>, stop: &AtomicBool, slice: Duration) -> io::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        burn(slice);
        cx.yield_now()?;
    }
    Ok(())
}

/// Runs one case of a test in a child process: the test binary again,
/// with only `test_name` selected and the environment variable `env` set
/// to `case`.
///
/// Called from the test process (`env` not set), starts that child and
/// hands its output to `check`. Called from the child (`env` is `case`),
/// runs `body`; with any other value of `env`, does nothing.
///
/// ```ignore
/// #[test]
/// fn dies_of_sigsegv() {
///     common::in_child("MY_CHILD", "dies_of_sigsegv", "go", crash, |out| {
///         assert_eq!(out.status.signal(), Some(libc::SIGSEGV));
///     });
/// }
/// ```
pub fn in_child(
    env: &str,
    test_name: &str,
    case: &str,
    body: impl FnOnce(),
    check: impl FnOnce(&Output),
) {
    match std::env::var(env) {
        Ok(c) if c == case => body(),
        Ok(_) => {}
        Err(_) => {
            let exe = std::env::current_exe().unwrap();
            let out = Command::new(exe)
                .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
                .env(env, case)
                .output()
                .unwrap();
            check(&out);
        }
    }
}
