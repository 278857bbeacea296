//! Latency histograms under a service's load: Low tasks burn CPU in 1 ms
//! slices beside a High task that sleeps 1 ms forty times and a Normal
//! task woken twenty times from another thread. The counts are exact per
//! priority (a yield is not a wake), and the High task's resume latency
//! stays within a few slices: the histogram a service would watch to
//! verify the priority promise.

mod common;

use monad_async::{Executor, Histogram, Priority, TaskWaker};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[test]
fn counts_are_exact_per_priority_and_high_wakeups_wait_a_slice_at_most() {
    let ex = Executor::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let slicers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            ex.spawn(Priority::Low, move |cx| {
                common::slice_until(cx, &stop, Duration::from_millis(1))
            })
        })
        .collect();
    let high = ex.spawn(Priority::High, |cx| {
        for _ in 0..40 {
            cx.sleep(Duration::from_millis(1))?;
        }
        Ok::<_, std::io::Error>(())
    });
    let (tx, rx) = mpsc::channel::<TaskWaker>();
    let posted = Arc::new(AtomicU32::new(0));
    let seen = posted.clone();
    let normal = ex.spawn(Priority::Normal, move |cx| {
        tx.send(cx.waker()).unwrap();
        // Wakes are not counted (two may leave one permit): wait for the
        // count each time.
        for i in 1..=20 {
            while seen.load(Ordering::Acquire) < i {
                cx.park()?;
            }
        }
        Ok::<_, std::io::Error>(())
    });
    let waker_thread = std::thread::spawn(move || {
        let w = rx.recv().unwrap();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(2));
            posted.fetch_add(1, Ordering::Release);
            w.wake();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(high.is_finished() && normal.is_finished()) {
        assert!(Instant::now() < deadline, "not done: {:?}", ex.stats());
        let _ = ex.run(64, Some(Duration::from_millis(1)));
    }
    stop.store(true, Ordering::Relaxed);
    ex.run_until_idle().unwrap();
    waker_thread.join().unwrap();
    high.join().unwrap().unwrap();
    normal.join().unwrap().unwrap();
    for s in slicers {
        s.join().unwrap().unwrap();
    }

    let l = ex.stats().latency;
    eprintln!("executor_latency:\n{l}");
    assert_eq!(l.launch(Priority::High).count(), 1);
    assert_eq!(l.launch(Priority::Normal).count(), 1);
    assert_eq!(l.launch(Priority::Low).count(), 4);
    assert_eq!(l.resume(Priority::High).count(), 40);
    // Twenty wakes: each resumes a parked task, or leaves a permit that a
    // later park takes without suspending (no resumption).
    let normal_resumes = l.resume(Priority::Normal).count();
    assert!((1..=20).contains(&normal_resumes), "{normal_resumes}");
    assert_eq!(l.resume(Priority::Low).count(), 0, "yields are not wakes");
    // Once its completion is reaped, a High task runs before any Low
    // slice: well under a slice (1 ms) even in the worst case; the
    // histogram's bound is within a factor of two.
    let p99 = l.resume(Priority::High).quantile(0.99).unwrap();
    assert!(p99 < Duration::from_millis(1), "High resume p99 <= {p99:?}");
    // The dump carries the same histograms.
    assert_eq!(ex.dump().unwrap().latency(), &l);
}

#[test]
fn bounds_cover_every_latency_once() {
    let mut last = Duration::ZERO;
    for b in 0..Histogram::BUCKETS {
        let (lo, hi) = Histogram::bounds(b);
        assert_eq!(
            lo,
            last,
            "bucket {b} starts where {} ended",
            b.saturating_sub(1)
        );
        match hi {
            Some(hi) => {
                // (The two lowest are under a nanosecond wide.)
                assert!(hi >= lo);
                last = hi;
            }
            None => assert_eq!(b, Histogram::BUCKETS - 1),
        }
    }
}

#[test]
fn without_time_tracking_nothing_is_counted() {
    let ex = Executor::builder().time_tracking(false).build().unwrap();
    for _ in 0..10 {
        ex.spawn(Priority::High, |cx| cx.sleep(Duration::from_millis(1)));
    }
    ex.run_until_idle().unwrap();
    let l = ex.stats().latency;
    for p in Priority::ALL {
        assert_eq!(l.launch(p).count(), 0);
        assert_eq!(l.resume(p).count(), 0);
    }
}
