//! Joins inside tasks park: the joining task is woken once, when the
//! joined work is over, whatever executor (or pool) either runs on, and
//! costs nothing while it waits (the service-sized case is in
//! task_join_many.rs).

use monad_async::{Executor, Priority, Switcher, ThreadPool};
use std::time::Duration;

#[test]
fn a_join_wakes_once_whoever_finishes_first() {
    let ex = Executor::new().unwrap();
    // The child yields many times at a higher priority: the joiner is not
    // resumed for any of them.
    let h = ex.spawn(Priority::Low, |cx| {
        let child = cx
            .spawn(Priority::High, |cx| {
                for _ in 0..50 {
                    cx.yield_now()?;
                }
                Ok::<_, std::io::Error>(7)
            })
            .unwrap();
        cx.yield_now().unwrap(); // the child runs to its end first
        let before = cx.stats().suspensions;
        let v = child.join().unwrap().unwrap();
        (v, cx.stats().suspensions - before)
    });
    assert_eq!(h.join().unwrap(), (7, 0), "already done: no suspension");

    let h = ex.spawn(Priority::High, |cx| {
        let child = cx
            .spawn(Priority::Low, |cx| {
                for _ in 0..50 {
                    cx.yield_now()?;
                }
                Ok::<_, std::io::Error>(8)
            })
            .unwrap();
        let v = child.join().unwrap().unwrap();
        (v, cx.stats().suspensions)
    });
    assert_eq!(h.join().unwrap(), (8, 1));
}

#[test]
fn joins_across_executors_and_pools_park() {
    // A task of this executor joins work of an executor on another
    // thread, and work of a thread pool.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let st = stop.clone();
    let other = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        tx.send(ex.handle()).unwrap();
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            match ex.run(64, Some(Duration::from_millis(10))) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) => panic!("{e}"),
            }
        }
    });
    let remote = rx.recv().unwrap();
    let pool = ThreadPool::builder().threads(1).build().unwrap();
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, move |cx| {
        let far = remote
            .spawn(Priority::Normal, |cx| {
                cx.sleep(Duration::from_millis(20)).map(|()| "far")
            })
            .unwrap();
        let pooled = pool.spawn(Priority::Normal, |_cx| {
            std::thread::sleep(Duration::from_millis(20));
            "pooled"
        });
        let a = far.join().unwrap().unwrap();
        let b = pooled.join().unwrap();
        let s = cx.stats().suspensions;
        drop(pool);
        (a, b, s)
    });
    let (a, b, suspensions) = h.join().unwrap();
    assert_eq!((a, b), ("far", "pooled"));
    assert!(suspensions <= 2, "one park per join at most: {suspensions}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    other.join().unwrap();
}

#[test]
fn a_pool_task_joining_pool_work_parks() {
    // Tasks with stacks of their own (the default, Switcher::None, runs
    // closures on the worker's stack, and cannot park).
    let pool = std::sync::Arc::new(
        ThreadPool::builder()
            .threads(1)
            .switcher(Switcher::Asm)
            .build()
            .unwrap(),
    );
    let p = pool.clone();
    // With one worker, the joined work can only run if the joiner's
    // thread is free while it waits.
    let outer = pool.spawn(Priority::Normal, move |_cx| {
        let inner = p.spawn(Priority::Low, |_cx| 5);
        inner.join().unwrap() + 1
    });
    assert_eq!(outer.join().unwrap(), 6);
}

#[test]
fn cancelling_a_joiner_leaves_the_joined_task_alone() {
    let ex = Executor::new().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let joiner = ex.spawn(Priority::Normal, move |cx| {
        let child = cx
            .spawn(Priority::Low, |cx| {
                cx.sleep(Duration::from_millis(30)).map(|()| "child done")
            })
            .unwrap();
        let r = child.join();
        // The handle was consumed: hand the outcome out.
        tx.send(()).unwrap();
        r.map(|r| r.unwrap())
    });
    ex.run(4, Some(Duration::ZERO)).unwrap();
    assert!(!joiner.is_finished());
    assert!(ex.cancel(&joiner).unwrap());
    ex.run_until_idle().unwrap();
    rx.recv().unwrap();
    let e = joiner.join().unwrap_err();
    assert!(e.is_cancelled());
    assert_eq!(ex.stats().tasks_attached, 0);
}
