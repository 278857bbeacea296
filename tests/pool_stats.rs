//! Pool counters and times: totals that agree with what was spawned,
//! per-thread figures that add up, idle threads counted as idle, and C
//! tasks reused rather than created per spawn.

use monad_async::{Priority, ThreadPool};
use std::time::{Duration, Instant};

#[test]
fn totals_and_per_thread_figures_agree() {
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    for i in 0..300 {
        pool.spawn(Priority::ALL[i % 3], |_cx| {
            let until = Instant::now() + Duration::from_micros(20);
            while Instant::now() < until {}
        });
    }
    pool.wait_idle().unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.submitted, s.dispatched, s.executed, s.cancelled),
        (300, 300, 300, 0)
    );
    assert_eq!((s.queued, s.queued_by_priority), (0, [0, 0, 0]));
    assert_eq!(s.threads, 2);
    assert!(s.busy >= Duration::from_micros(20 * 300), "{s:?}");
    let per = pool.thread_stats();
    assert_eq!(per.iter().map(|t| t.dispatched).sum::<u64>(), 300);
    assert!(per.iter().all(|t| t.items >= t.dispatched));
    let busy: Duration = per.iter().map(|t| t.busy).sum();
    assert!(busy <= s.busy, "{busy:?} vs {:?}", s.busy);
}

#[test]
fn idle_threads_show_as_idle_and_accumulate_idle_time() {
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    pool.spawn(Priority::Normal, |_cx| ()).join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().threads_idle != 2 {
        assert!(Instant::now() < deadline, "threads never went idle");
        std::thread::sleep(Duration::from_millis(1));
    }
    let before = pool.stats().idle;
    std::thread::sleep(Duration::from_millis(30));
    let after = pool.stats().idle;
    // Two threads idle for 30 ms, counted while they sleep.
    assert!(
        after - before >= Duration::from_millis(40),
        "{before:?} -> {after:?}"
    );
}

#[test]
fn tasks_are_reused() {
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    for i in 0..2000 {
        assert_eq!(
            pool.spawn(Priority::Normal, move |_cx| i).join().unwrap(),
            i
        );
    }
    // A join returns as the closure's work ends; the pool counts it a
    // moment later, which wait_idle waits for.
    pool.wait_idle().unwrap();
    let s = pool.stats();
    assert_eq!(s.executed, 2000);
    assert!(s.tasks_created <= 3, "{s:?}");
}
