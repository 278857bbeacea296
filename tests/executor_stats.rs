//! Time tracking: task and executor figures are plausible when on, zero
//! when off; counters count.

use monad_async::{ticks_now, ticks_per_second, Executor, Priority};
use std::time::Duration;

#[test]
fn task_stats_cover_latency_execution_and_total() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let mut x = 0u64;
        for i in 0..10_000 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        cx.sleep(Duration::from_millis(5)).unwrap();
        cx.yield_now().unwrap();
        x
    });
    ex.run_until_idle().unwrap();
    let s = h.stats().unwrap();
    assert_eq!(s.suspensions, 2);
    assert!(s.total >= Duration::from_millis(5), "{s:?}");
    assert!(s.executing > Duration::ZERO, "{s:?}");
    assert!(s.executing < s.total, "{s:?}");
    assert!(s.launch_latency < s.total, "{s:?}");
    assert!(s.launch_latency + s.executing <= s.total, "{s:?}");
    h.join().unwrap();
}

#[test]
fn executor_stats_count_and_time() {
    let ex = Executor::new().unwrap();
    for p in [Priority::High, Priority::Normal, Priority::Low] {
        ex.spawn(p, |cx| cx.sleep(Duration::from_millis(2)).unwrap());
    }
    let s = ex.stats();
    assert_eq!(s.tasks_attached, 3);
    assert_eq!(s.tasks_runnable, [1, 1, 1]);
    ex.run(3, Some(Duration::ZERO)).unwrap();
    let s = ex.stats();
    assert_eq!(s.tasks_sleeping, 3);
    assert_eq!(s.tasks_runnable, [0, 0, 0]);
    ex.run_until_idle().unwrap();
    let s = ex.stats();
    assert_eq!(
        (s.attached, s.launched, s.resumed, s.suspended, s.exited),
        (3, 3, 3, 3, 3)
    );
    assert_eq!((s.tasks_attached, s.tasks_sleeping, s.cancelled), (0, 0, 0));
    assert!(s.sleeps >= 1);
    assert!(s.time_sleeping >= Duration::from_millis(1), "{s:?}");
    assert!(s.time_in_run >= s.time_sleeping, "{s:?}");
    assert!(
        s.time_launching > Duration::ZERO && s.time_resuming > Duration::ZERO,
        "{s:?}"
    );
    assert_eq!(s.tasks_created, 3);
}

#[test]
fn no_time_tracking_means_zero_times() {
    let ex = Executor::builder().time_tracking(false).build().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.sleep(Duration::from_millis(1)).unwrap();
        cx.stats()
    });
    ex.run_until_idle().unwrap();
    let fin = h.stats().unwrap();
    assert_eq!(fin.suspensions, 1);
    assert!(fin.total.is_zero() && fin.executing.is_zero() && fin.launch_latency.is_zero());
    let inside = h.join().unwrap();
    assert_eq!(inside.suspensions, 1);
    assert!(inside.total.is_zero() && inside.executing.is_zero());
    let s = ex.stats();
    assert_eq!(s.exited, 1);
    assert!(s.time_in_run.is_zero() && s.time_sleeping.is_zero() && s.time_launching.is_zero());
}

#[test]
fn ticks_advance_at_the_calibrated_rate() {
    let tps = ticks_per_second();
    assert!(tps >= 1_000_000, "{tps}");
    let a = ticks_now();
    std::thread::sleep(Duration::from_millis(20));
    let b = ticks_now();
    let secs = (b - a) as f64 / tps as f64;
    assert!((0.019..0.5).contains(&secs), "{secs}");
}

#[test]
fn stats_of_a_task_cancelled_before_launch() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |_cx| ());
    ex.cancel(&h).unwrap();
    let s = h.stats().unwrap();
    assert_eq!(s.launch_latency, Duration::ZERO);
    assert_eq!(s.executing, Duration::ZERO);
    assert_eq!(s.suspensions, 0);
    assert_eq!(ex.stats().cancelled, 1);
}
