//! `sync::Semaphore`: bounded concurrency and hand-off order from tasks,
//! across executors and a pool, from threads and async code; close and
//! cancellation keep the permit count right.

use monad_async::sync::Semaphore;
use monad_async::{Executor, Priority, ThreadPool};
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

/// Tracks how many are inside at once, and the most ever.
#[derive(Default)]
struct Occupancy {
    now: AtomicUsize,
    max: AtomicUsize,
    done: AtomicUsize,
}

impl Occupancy {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::AcqRel) + 1;
        self.max.fetch_max(n, Ordering::AcqRel);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::AcqRel);
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn at_most_n_inside_with_a_thousand_tasks_of_mixed_priorities() {
    let ex = Executor::new().unwrap();
    let sem = Arc::new(Semaphore::new(3));
    let occ = Arc::new(Occupancy::default());
    let hs: Vec<_> = (0..1000)
        .map(|i| {
            let (sem, occ) = (sem.clone(), occ.clone());
            ex.spawn(Priority::ALL[i % 3], move |cx| {
                let _p = sem.acquire()?;
                occ.enter();
                cx.yield_now()?;
                occ.leave();
                Ok::<_, std::io::Error>(())
            })
        })
        .collect();
    ex.run_until_idle().unwrap();
    for h in hs {
        h.join().unwrap().unwrap();
    }
    assert_eq!(occ.max.load(Ordering::Relaxed), 3);
    assert_eq!(occ.done.load(Ordering::Relaxed), 1000);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn permits_go_highest_priority_first_and_a_big_request_is_not_starved() {
    let ex = Executor::new().unwrap();
    let sem = Rc::new(Semaphore::new(0));
    let order = Rc::new(RefCell::new(Vec::new()));
    for (p, id, n) in [
        (Priority::Low, 0, 1),
        (Priority::Normal, 1, 3), // big request, queued before 2
        (Priority::Normal, 2, 1),
        (Priority::High, 3, 1),
    ] {
        let (sem, order) = (sem.clone(), order.clone());
        ex.spawn(p, move |_cx| {
            let permit = sem.acquire_many(n).unwrap();
            order.borrow_mut().push(id);
            permit.forget();
        });
        settle(&ex);
    }
    sem.add_permits(2); // High 3 gets one; Normal 1 needs 3: waits, and so does 2
    settle(&ex);
    assert_eq!(*order.borrow(), [3]);
    sem.add_permits(2); // now 3 free: 1 gets them; 2 and 0 still wait
    settle(&ex);
    assert_eq!(*order.borrow(), [3, 1]);
    sem.add_permits(2);
    ex.run_until_idle().unwrap();
    assert_eq!(*order.borrow(), [3, 1, 2, 0]);
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn try_acquire_does_not_barge_past_waiters() {
    let ex = Executor::new().unwrap();
    let sem = Rc::new(Semaphore::new(1));
    let s = sem.clone();
    let h = ex.spawn(Priority::Normal, move |_cx| {
        s.acquire_many(2).map(|p| p.forget())
    });
    settle(&ex);
    assert_eq!(sem.available_permits(), 1);
    assert!(sem.try_acquire().is_err()); // someone waits
    sem.add_permits(1);
    ex.run_until_idle().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn close_fails_waiters_and_later_acquires_with_eshutdown() {
    let ex = Executor::new().unwrap();
    let sem = Arc::new(Semaphore::new(0));
    let s = sem.clone();
    let task = ex.spawn(Priority::Normal, move |_cx| s.acquire().map(drop));
    settle(&ex);
    let s = sem.clone();
    let thread = std::thread::spawn(move || s.acquire().map(drop));
    while !format!("{sem:?}").contains("waiters: 2") {
        std::thread::yield_now();
    }
    sem.close();
    ex.run_until_idle().unwrap();
    let code = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(code(task.join().unwrap()), Some(libc::ESHUTDOWN));
    assert_eq!(code(thread.join().unwrap()), Some(libc::ESHUTDOWN));
    assert_eq!(code(sem.try_acquire().map(drop)), Some(libc::ESHUTDOWN));
}

#[test]
fn cancelled_waiter_leaves_no_permit_behind_or_missing() {
    let ex = Executor::new().unwrap();
    let sem = Rc::new(Semaphore::new(0));
    let (s1, s2) = (sem.clone(), sem.clone());
    let a = ex.spawn(Priority::High, move |_cx| s1.acquire().map(|p| p.forget()));
    let b = ex.spawn(Priority::Normal, move |_cx| {
        s2.acquire().map(|p| p.forget())
    });
    settle(&ex);
    a.cancel().unwrap();
    settle(&ex);
    assert!(a.join().unwrap_err().is_cancelled());
    sem.add_permits(1); // goes to b, not to the cancelled a
    ex.run_until_idle().unwrap();
    b.join().unwrap().unwrap();
    assert_eq!(sem.available_permits(), 0);
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn cancelled_task_sees_ecanceled() {
    let ex = Executor::new().unwrap();
    let sem = Rc::new(Semaphore::new(0));
    let seen = Rc::new(RefCell::new(None));
    let (s, r) = (sem.clone(), seen.clone());
    let a = ex.spawn(Priority::Normal, move |_cx| {
        *r.borrow_mut() = s.acquire().err().and_then(|e| e.raw_os_error());
    });
    settle(&ex);
    a.cancel().unwrap();
    ex.run_until_idle().unwrap();
    assert_eq!(*seen.borrow(), Some(libc::ECANCELED));
}

#[test]
fn dropped_future_passes_its_granted_permits_on() {
    let sem = Semaphore::new(0);
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = Box::pin(sem.acquire_many_async(2));
    assert!(f.as_mut().poll(&mut cx).is_pending());
    sem.add_permits(2); // granted to f
    assert_eq!(sem.available_permits(), 0);
    drop(f);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn across_executors_pool_threads_and_tokio() {
    const PER: usize = 200;
    let sem = Arc::new(Semaphore::new(2));
    let occ = Arc::new(Occupancy::default());
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (sem, occ) = (sem.clone(), occ.clone());
        threads.push(std::thread::spawn(move || {
            let ex = Executor::new().unwrap();
            for i in 0..PER {
                let (sem, occ) = (sem.clone(), occ.clone());
                ex.spawn(Priority::ALL[i % 3], move |cx| {
                    let _p = sem.acquire().unwrap();
                    occ.enter();
                    cx.yield_now().unwrap();
                    occ.leave();
                });
            }
            ex.run_until_idle().unwrap();
        }));
    }
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    let pool_hs: Vec<_> = (0..PER)
        .map(|_| {
            let (sem, occ) = (sem.clone(), occ.clone());
            pool.spawn(Priority::Normal, move |_cx| {
                let _p = sem.acquire().unwrap();
                occ.enter();
                occ.leave();
            })
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..PER)
        .map(|_| {
            let (sem, occ) = (sem.clone(), occ.clone());
            rt.spawn(async move {
                let _p = sem.acquire_async().await.unwrap();
                occ.enter();
                tokio::task::yield_now().await;
                occ.leave();
            })
        })
        .collect();
    for _ in 0..PER {
        let _p = sem.acquire().unwrap();
        occ.enter();
        occ.leave();
    }
    for t in threads {
        t.join().unwrap();
    }
    for h in pool_hs {
        h.join().unwrap();
    }
    rt.block_on(async {
        for f in futs {
            f.await.unwrap();
        }
    });
    assert!(occ.max.load(Ordering::Relaxed) <= 2);
    assert_eq!(occ.done.load(Ordering::Relaxed), 5 * PER);
    assert_eq!(sem.available_permits(), 2);
}
