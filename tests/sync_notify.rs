//! `sync::Notify`: notifications by priority, the stored permit,
//! `notify_waiters`, from tasks, executors, threads and async code; a
//! cancelled or dropped waiter never swallows a `notify_one`.

use monad_async::sync::Notify;
use monad_async::{Executor, Priority, Switcher, ThreadPool};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

/// Runs every task that can run now, and returns once none can (parked
/// ones stay parked).
fn settle(ex: &Executor) {
    while ex.run(usize::MAX, Some(Duration::ZERO)).is_ok() {}
}

#[test]
fn notify_one_reaches_the_highest_priority_waiter_first() {
    let ex = Executor::new().unwrap();
    let n = Rc::new(Notify::new());
    let order = Rc::new(RefCell::new(Vec::new()));
    for (p, id) in [
        (Priority::Low, 0),
        (Priority::Normal, 1),
        (Priority::High, 2),
        (Priority::Normal, 3),
    ] {
        let (n, order) = (n.clone(), order.clone());
        ex.spawn(p, move |_cx| {
            n.notified().unwrap();
            order.borrow_mut().push(id);
        });
        settle(&ex);
    }
    for expect in [vec![2], vec![2, 1], vec![2, 1, 3], vec![2, 1, 3, 0]] {
        n.notify_one();
        settle(&ex);
        assert_eq!(*order.borrow(), expect);
    }
}

#[test]
fn one_permit_is_stored_and_notify_waiters_stores_none() {
    let ex = Executor::new().unwrap();
    let n = Rc::new(Notify::new());
    n.notify_one();
    n.notify_one();
    n.notified().unwrap(); // the one stored permit
    n.notify_waiters(); // nobody waits: nothing stored
    let n2 = n.clone();
    let h = ex.spawn(Priority::Normal, move |_cx| n2.notified());
    settle(&ex);
    assert!(!h.is_finished());
    n.notify_waiters();
    settle(&ex);
    h.join().unwrap().unwrap();
}

#[test]
fn notify_waiters_wakes_hundreds_of_tasks_threads_and_futures() {
    let ex = Executor::new().unwrap();
    let n = Arc::new(Notify::new());
    let woken = Arc::new(AtomicUsize::new(0));
    for i in 0..500 {
        let (n, w) = (n.clone(), woken.clone());
        ex.spawn(Priority::ALL[i % 3], move |_cx| {
            n.notified().unwrap();
            w.fetch_add(1, Ordering::Relaxed);
        });
    }
    settle(&ex);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (n, w) = (n.clone(), woken.clone());
            std::thread::spawn(move || {
                n.notified().unwrap();
                w.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..100)
        .map(|_| {
            let (n, w) = (n.clone(), woken.clone());
            rt.spawn(async move {
                n.notified_async().await;
                w.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    // Wait until all 604 wait.
    while !format!("{n:?}").contains("waiters: 604") {
        std::thread::sleep(Duration::from_millis(1));
    }
    n.notify_waiters();
    ex.run_until_idle().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    rt.block_on(async {
        for f in futs {
            f.await.unwrap();
        }
    });
    assert_eq!(woken.load(Ordering::Relaxed), 604);
}

#[test]
fn cancelled_waiter_does_not_swallow_a_notify_one() {
    let ex = Executor::new().unwrap();
    let n = Rc::new(Notify::new());
    let seen = Rc::new(RefCell::new(None));
    let (n1, s) = (n.clone(), seen.clone());
    let a = ex.spawn(Priority::High, move |_cx| {
        *s.borrow_mut() = n1.notified().err().and_then(|e| e.raw_os_error());
    });
    let n2 = n.clone();
    let b = ex.spawn(Priority::Low, move |_cx| n2.notified());
    settle(&ex);
    a.cancel().unwrap();
    settle(&ex);
    assert_eq!(*seen.borrow(), Some(libc::ECANCELED));
    n.notify_one(); // to b: a is out of the queue
    settle(&ex);
    b.join().unwrap().unwrap();
    // And no permit left behind.
    assert!(format!("{n:?}").contains("permit: false"));
}

#[test]
fn a_dropped_future_passes_its_notify_one_on() {
    let n = Notify::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut f1 = Box::pin(n.notified_async());
    let mut f2 = Box::pin(n.notified_async());
    assert!(f1.as_mut().poll(&mut cx).is_pending());
    assert!(f2.as_mut().poll(&mut cx).is_pending());
    n.notify_one(); // to f1
    drop(f1); // passed on to f2
    assert!(f2.as_mut().poll(&mut cx).is_ready());
    // A future dropped before its notification gives up its place.
    let mut f3 = Box::pin(n.notified_async());
    assert!(f3.as_mut().poll(&mut cx).is_pending());
    drop(f3);
    n.notify_one(); // nobody waits: stored
    assert!(format!("{n:?}").contains("permit: true"));
}

#[test]
fn across_executors_and_a_stackful_pool() {
    // A ping-pong of notifications between a task of one executor, a
    // task of another, and a pool task, 200 rounds.
    const ROUNDS: usize = 200;
    let a = Arc::new(Notify::new());
    let b = Arc::new(Notify::new());
    let c = Arc::new(Notify::new());
    let (a1, b1) = (a.clone(), b.clone());
    let t1 = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        let h = ex.spawn(Priority::Normal, move |_cx| {
            for _ in 0..ROUNDS {
                a1.notified()?;
                b1.notify_one();
            }
            Ok::<_, std::io::Error>(())
        });
        h.join().unwrap().unwrap();
    });
    let pool = ThreadPool::builder()
        .threads(1)
        .switcher(Switcher::Asm)
        .build()
        .unwrap();
    let (b2, c2) = (b.clone(), c.clone());
    let p = pool.spawn(Priority::High, move |_cx| {
        for _ in 0..ROUNDS {
            b2.notified()?;
            c2.notify_one();
        }
        Ok::<_, std::io::Error>(())
    });
    let ex = Executor::new().unwrap();
    let (a3, c3) = (a.clone(), c.clone());
    let h = ex.spawn(Priority::Low, move |_cx| {
        for _ in 0..ROUNDS {
            a3.notify_one();
            c3.notified()?;
        }
        Ok::<_, std::io::Error>(())
    });
    h.join().unwrap().unwrap();
    p.join().unwrap().unwrap();
    t1.join().unwrap();
}
