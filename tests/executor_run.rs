//! Executor::run and run_until_idle: timeouts, item counts, wake-ups.

use monad_async::{Executor, Priority};
use std::time::{Duration, Instant};

#[test]
fn zero_timeout_with_no_work_is_etime() {
    let ex = Executor::new().unwrap();
    let err = ex.run(1, Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETIME));
}

#[test]
fn timeout_with_no_work_waits_then_is_etime() {
    let ex = Executor::new().unwrap();
    let start = Instant::now();
    let err = ex.run(1, Some(Duration::from_millis(20))).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETIME));
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn max_items_zero_is_einval() {
    let ex = Executor::new().unwrap();
    let err = ex.run(0, Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn run_stops_after_max_items() {
    let ex = Executor::new().unwrap();
    let hs: Vec<_> = (0..10)
        .map(|i| ex.spawn(Priority::Normal, move |_cx| i))
        .collect();
    assert_eq!(ex.run(3, Some(Duration::ZERO)).unwrap(), 3);
    assert_eq!(hs.iter().filter(|h| h.is_finished()).count(), 3);
    assert_eq!(ex.run(100, Some(Duration::ZERO)).unwrap(), 7);
    assert!(hs.iter().all(|h| h.is_finished()));
}

#[test]
fn run_counts_slices_not_tasks() {
    let ex = Executor::new().unwrap();
    ex.spawn(Priority::Normal, |cx| {
        cx.yield_now().unwrap();
        cx.yield_now().unwrap();
    });
    assert_eq!(ex.run_until_idle().unwrap(), 3);
}

#[test]
fn wake_makes_a_waiting_run_return_zero() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        handle.wake().unwrap();
    });
    assert_eq!(ex.run(1, None).unwrap(), 0);
    t.join().unwrap();
}

#[test]
fn run_waits_for_a_sleeping_task() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(10)));
    assert_eq!(ex.run(1, Some(Duration::ZERO)).unwrap(), 1); // launch
    let start = Instant::now();
    assert_eq!(ex.run(1, None).unwrap(), 1); // waits for the timer
    assert!(
        start.elapsed() >= Duration::from_millis(9),
        "{:?}",
        start.elapsed()
    );
    h.join().unwrap().unwrap();
}

#[test]
fn run_until_idle_with_nothing_returns_zero_at_once() {
    let ex = Executor::new().unwrap();
    assert_eq!(ex.run_until_idle().unwrap(), 0);
}

#[test]
fn run_until_idle_runs_tasks_spawned_by_tasks() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.spawn(Priority::Low, |cx| {
            cx.sleep(Duration::from_millis(2)).unwrap();
            cx.spawn(Priority::Low, |_cx| 3).unwrap()
        })
        .unwrap()
    });
    ex.run_until_idle().unwrap();
    let child = h.join().unwrap();
    assert!(child.is_finished());
    let grandchild = child.join().unwrap();
    assert!(grandchild.is_finished());
    assert_eq!(grandchild.join().unwrap(), 3);
}

#[test]
fn compute_only_executor_works() {
    let ex = Executor::builder().ring_entries(0).build().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(1)));
    ex.run_until_idle().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn two_executors_on_one_thread_are_independent() {
    let a = Executor::new().unwrap();
    let b = Executor::new().unwrap();
    let ha = a.spawn(Priority::Normal, |_cx| 'a');
    let hb = b.spawn(Priority::Normal, |_cx| 'b');
    assert_eq!(b.run_until_idle().unwrap(), 1);
    assert!(!ha.is_finished());
    assert_eq!(hb.join().unwrap(), 'b');
    assert_eq!(ha.join().unwrap(), 'a'); // drives a
    let err = a.cancel(&b.spawn(Priority::Normal, |_cx| ())).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}
