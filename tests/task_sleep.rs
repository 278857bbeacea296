//! TaskContext::sleep suspends a task for at least its duration, in
//! deadline order, without holding up other tasks.

use monad_async::{Executor, Priority};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[test]
fn sleep_sleeps_at_least_its_duration() {
    let ex = Executor::new().unwrap();
    for ms in [0u64, 1, 5, 20] {
        let d = Duration::from_millis(ms);
        let h = ex.spawn(Priority::Normal, move |cx| {
            let start = Instant::now();
            cx.sleep(d).unwrap();
            start.elapsed()
        });
        let slept = h.join().unwrap();
        assert!(slept >= d, "asked {d:?}, slept {slept:?}");
    }
}

#[test]
fn sleepers_wake_in_deadline_order() {
    let ex = Executor::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    for ms in [30u64, 10, 20, 0] {
        let order = order.clone();
        ex.spawn(Priority::Normal, move |cx| {
            cx.sleep(Duration::from_millis(ms)).unwrap();
            order.borrow_mut().push(ms);
        });
    }
    ex.run_until_idle().unwrap();
    assert_eq!(*order.borrow(), [0, 10, 20, 30]);
}

#[test]
fn a_sleeper_does_not_block_others() {
    let ex = Executor::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ex.spawn(Priority::High, move |cx| {
        cx.sleep(Duration::from_millis(20)).unwrap();
        l.borrow_mut().push("sleeper");
    });
    let l = log.clone();
    ex.spawn(Priority::Low, move |cx| {
        for _ in 0..3 {
            l.borrow_mut().push("worker");
            cx.yield_now().unwrap();
        }
    });
    ex.run_until_idle().unwrap();
    assert_eq!(*log.borrow(), ["worker", "worker", "worker", "sleeper"]);
}

#[test]
fn many_concurrent_sleepers_overlap() {
    let ex = Executor::new().unwrap();
    let start = Instant::now();
    let hs: Vec<_> = (0..200)
        .map(|_| ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(20))))
        .collect();
    ex.run_until_idle().unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(20));
    assert!(
        elapsed < Duration::from_secs(2),
        "sleeps did not overlap: {elapsed:?}"
    );
    assert!(hs.into_iter().all(|h| h.join().unwrap().is_ok()));
}

#[test]
fn huge_durations_saturate() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::MAX));
    ex.run(1, Some(Duration::ZERO)).unwrap();
    assert_eq!(ex.stats().tasks_sleeping, 1);
    ex.cancel(&h).unwrap();
    ex.run_until_idle().unwrap();
    assert!(h.join().unwrap_err().is_cancelled());
}
