//! Priorities across the pool: with its one thread busy, closures spawned
//! low, normal, high (twice over) run high, high, normal, normal, low,
//! low; with two threads busy on a backlog of low closures, a high one
//! spawned behind the backlog starts long before the backlog ends.

mod common;

use common::gate::Gate;
use monad_async::{Priority, ThreadPool};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Holds a pool thread in `gate` until it opens, with a low-priority
/// closure.
fn hold(pool: &ThreadPool, gate: &Arc<Gate>) {
    let g = Arc::clone(gate);
    pool.spawn(Priority::Low, move |_cx| {
        g.hold(|| std::thread::sleep(Duration::from_micros(50)));
    });
}

#[test]
fn one_busy_thread_runs_high_then_normal_then_low() {
    let pool = ThreadPool::builder().threads(1).build().unwrap();
    let gate = Gate::new();
    hold(&pool, &gate);
    gate.wait_entered(1, || std::thread::sleep(Duration::from_micros(100)));

    let order = Arc::new(Mutex::new(Vec::new()));
    let spawned = [
        (Priority::Low, 1),
        (Priority::Normal, 2),
        (Priority::High, 3),
        (Priority::Low, 4),
        (Priority::Normal, 5),
        (Priority::High, 6),
    ];
    for (p, id) in spawned {
        let order = Arc::clone(&order);
        pool.spawn(p, move |_cx| order.lock().unwrap().push(id));
    }
    let s = pool.stats();
    assert_eq!(s.queued, 6);
    assert_eq!(s.queued_by_priority, [2, 2, 2]);
    gate.open();
    pool.wait_idle().unwrap();
    assert_eq!(*order.lock().unwrap(), [3, 6, 2, 5, 1, 4]);
}

#[test]
fn high_priority_overtakes_a_backlog_on_two_threads() {
    const BACKLOG: usize = 100;
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    let lows_started = Arc::new(AtomicUsize::new(0));
    for _ in 0..BACKLOG {
        let started = Arc::clone(&lows_started);
        pool.spawn(Priority::Low, move |_cx| {
            started.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        });
    }
    while lows_started.load(Ordering::SeqCst) < 4 {
        std::thread::sleep(Duration::from_micros(100));
    }
    let at_spawn = lows_started.load(Ordering::SeqCst) as i64;
    let seen = Arc::new(AtomicI64::new(-1));
    let s2 = Arc::clone(&seen);
    let started = Arc::clone(&lows_started);
    let high = pool.spawn(Priority::High, move |_cx| {
        s2.store(started.load(Ordering::SeqCst) as i64, Ordering::SeqCst);
    });
    high.join().unwrap();
    let overtaking = seen.load(Ordering::SeqCst) - at_spawn;
    // Each thread may start the low closure it already took; more only if
    // the thread that took the high one is preempted for a long time.
    // FIFO would start all ~96 first.
    assert!(
        (0..=20).contains(&overtaking),
        "{overtaking} low closures started between the high one's spawn and its start"
    );
    pool.wait_idle().unwrap();
}
