//! Contenders several bench files set up alike: monad-async executors by
//! switcher and time tracking, and tokio's current-thread runtime with its
//! `yield_now` loop. Shared by the bench files with `#[path]`.
//!
//! Invariant: only set-up lives here, plus [`yield_loop`], which is one
//! contender's whole timed loop, so that every file timing it times the
//! same code; what a bench measures stays in its own file.

#![allow(dead_code)]

use monad_async::{Executor, Switcher};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// An executor with `switcher`, time tracking on or off, and a ring of
/// `ring_entries`.
pub fn executor(switcher: Switcher, time_tracking: bool, ring_entries: u32) -> Executor {
    Executor::builder()
        .switcher(switcher)
        .time_tracking(time_tracking)
        .ring_entries(ring_entries)
        .build()
        .expect("executor")
}

/// One [`executor`] per `(name, switcher, time tracking)` row, all made
/// up front, each named as its row.
pub fn executors(
    rows: &[(&'static str, Switcher, bool)],
    ring_entries: u32,
) -> Vec<(&'static str, Executor)> {
    rows.iter()
        .map(|&(name, sw, track)| (name, executor(sw, track, ring_entries)))
        .collect()
}

/// A tokio current-thread runtime with neither I/O nor timers.
pub fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// One task on `rt` calling `tokio::task::yield_now` `iters` times; the
/// time of that loop.
pub fn yield_loop(rt: &Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            tokio::task::yield_now().await;
        }
        start.elapsed()
    })
}

/// may (stackful Rust coroutines) with one worker thread, so that its
/// coroutines share a thread as ours do. Set once per process, before
/// may's first coroutine.
pub fn may_one_worker() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        may::config().set_workers(1);
    });
}

/// Runs `f` in a may coroutine on its one worker; its result.
pub fn in_may<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    may_one_worker();
    // SAFETY (may's contract for spawn): the contenders' coroutines use
    // no thread-local storage and never block their worker thread.
    let h = unsafe { may::coroutine::spawn(f) };
    h.join().unwrap()
}

/// may's yield loop: one coroutine yielding `iters` times; the loop's
/// time.
pub fn may_yield_loop(iters: u64) -> Duration {
    in_may(move || {
        let start = Instant::now();
        for _ in 0..iters {
            may::coroutine::yield_now();
        }
        start.elapsed()
    })
}

/// monoio (io_uring, thread-per-core) with its default settings on its
/// io_uring driver, no timer: its tasks, like ours, share one thread.
pub fn monoio_runtime() -> monoio::Runtime<monoio::IoUringDriver> {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("monoio runtime (io_uring)")
}
