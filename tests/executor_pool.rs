//! Task pooling: a C task (and its stack) is created once and reused, so
//! the number created tracks the number alive at once, not the spawns.

use monad_async::{Executor, Priority};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn sequential_spawns_reuse_one_task() {
    let ex = Executor::new().unwrap();
    let mut sum = 0u64;
    for i in 0..100_000u64 {
        sum += ex.spawn(Priority::Normal, move |_cx| i).join().unwrap();
    }
    assert_eq!(sum, 99_999 * 100_000 / 2);
    let s = ex.stats();
    assert_eq!(s.exited, 100_000);
    assert!(s.tasks_created <= 2, "tasks_created = {}", s.tasks_created);
}

#[test]
fn sequential_suspending_spawns_reuse_one_task() {
    let ex = Executor::new().unwrap();
    for _ in 0..10_000 {
        ex.spawn(Priority::High, |cx| cx.yield_now().unwrap())
            .join()
            .unwrap();
    }
    let s = ex.stats();
    assert_eq!((s.exited, s.suspended), (10_000, 10_000));
    assert!(s.tasks_created <= 2, "tasks_created = {}", s.tasks_created);
}

#[test]
fn batches_reuse_the_batch_size_of_tasks() {
    let ex = Executor::new().unwrap();
    for _ in 0..200 {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                ex.spawn(Priority::Normal, move |cx| {
                    cx.yield_now().unwrap();
                    i
                })
            })
            .collect();
        ex.run_until_idle().unwrap();
        let total: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 4950);
    }
    let s = ex.stats();
    assert_eq!(s.exited, 20_000);
    assert_eq!(s.tasks_created, 100);
}

#[test]
fn remote_spawns_reuse_their_own_pool() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let spawner = std::thread::spawn(move || {
        for i in 0..10_000u64 {
            let v = handle
                .spawn(Priority::Normal, move |_cx| i)
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(v, i);
        }
        s2.store(true, Ordering::SeqCst);
        handle.wake().unwrap();
    });
    while !stop.load(Ordering::SeqCst) {
        match ex.run(usize::MAX, Some(Duration::from_millis(20))) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ETIME)),
        }
    }
    spawner.join().unwrap();
    let s = ex.stats();
    assert_eq!(s.exited, 10_000);
    assert!(s.tasks_created <= 2, "tasks_created = {}", s.tasks_created);
}

#[test]
fn pooled_tasks_start_clean() {
    // A reused task must not carry cancellation, suspensions or priority
    // from its previous work.
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Low, |cx| cx.sleep(Duration::from_secs(10)));
    ex.run(1, Some(Duration::ZERO)).unwrap(); // launch: now sleeping
    assert!(ex.cancel(&h).unwrap());
    ex.run_until_idle().unwrap();
    assert!(h.join().unwrap_err().is_cancelled());

    let h = ex.spawn(Priority::High, |cx| {
        (cx.is_cancelled(), cx.priority(), cx.stats().suspensions)
    });
    assert_eq!(h.join().unwrap(), (false, Priority::High, 0));
    assert_eq!(ex.stats().tasks_created, 1);
}
