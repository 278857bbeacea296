//! `sync::Mutex`: exclusion and hand-off order from tasks of one executor,
//! across executors, a thread pool, plain threads and async code; a
//! cancelled waiter leaves the lock consistent.

mod common;

use monad_async::sync::Mutex;
use monad_async::{Executor, Priority, ThreadPool};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Runs every task that can run now, and returns once none can (parked
/// ones stay parked).
fn settle(ex: &Executor) {
    while ex.run(usize::MAX, Some(Duration::ZERO)).is_ok() {}
}

/// A counter whose increments check that nobody else is inside.
struct Guarded {
    inside: AtomicBool,
    count: AtomicUsize,
}

impl Guarded {
    fn new() -> Arc<Guarded> {
        Arc::new(Guarded {
            inside: AtomicBool::new(false),
            count: AtomicUsize::new(0),
        })
    }
    fn enter(&self) {
        assert!(
            !self.inside.swap(true, Ordering::AcqRel),
            "two holders at once"
        );
    }
    fn leave(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inside.store(false, Ordering::Release);
    }
}

#[test]
fn one_executor_thousand_tasks_mixed_priorities_with_cpu_bound_low_work() {
    let ex = Executor::new().unwrap();
    let m = Arc::new(Mutex::new(0u64));
    let g = Guarded::new();
    let mut hs = Vec::new();
    for i in 0..1200u64 {
        let (m, g) = (m.clone(), g.clone());
        let p = Priority::ALL[(i % 3) as usize];
        hs.push(ex.spawn(p, move |cx| {
            for round in 0..3 {
                let mut v = m.lock()?;
                g.enter();
                if p == Priority::Low {
                    // CPU-bound Low work inside the critical section.
                    let mut x = i;
                    for _ in 0..2_000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                    std::hint::black_box(x);
                }
                if (i + round) % 4 == 0 {
                    cx.yield_now()?; // held across a suspension
                }
                *v += 1;
                g.leave();
            }
            Ok::<_, std::io::Error>(())
        }));
    }
    ex.run_until_idle().unwrap();
    for h in hs {
        h.join().unwrap().unwrap();
    }
    assert_eq!(*m.lock().unwrap(), 3600);
    assert_eq!(g.count.load(Ordering::Relaxed), 3600);
}

#[test]
fn waiters_get_the_lock_highest_priority_first_then_in_arrival_order() {
    let ex = Executor::new().unwrap();
    let m = Rc::new(Mutex::new(()));
    let order = Rc::new(RefCell::new(Vec::new()));
    let held = m.lock().unwrap(); // this thread, outside any task
    let spawn_order = [
        (Priority::Low, 0),
        (Priority::Normal, 1),
        (Priority::High, 2),
        (Priority::Low, 3),
        (Priority::High, 4),
        (Priority::Normal, 5),
    ];
    for (p, id) in spawn_order {
        let (m, order) = (m.clone(), order.clone());
        ex.spawn(p, move |cx| {
            let _g = m.lock().unwrap();
            order.borrow_mut().push(id);
            cx.yield_now().unwrap(); // the others keep waiting
        });
        settle(&ex); // queued, in spawn order, before the next spawns
    }
    drop(held);
    ex.run_until_idle().unwrap();
    // High ones first (in the order they queued), then Normal, then Low.
    assert_eq!(*order.borrow(), [2, 4, 1, 5, 0, 3]);
}

#[test]
fn fifo_within_a_level_in_queueing_order() {
    let ex = Executor::new().unwrap();
    let m = Rc::new(Mutex::new(()));
    let order = Rc::new(RefCell::new(Vec::new()));
    let held = m.lock().unwrap();
    for id in 0..50 {
        let (m, order) = (m.clone(), order.clone());
        ex.spawn(Priority::Normal, move |_cx| {
            let _g = m.lock().unwrap();
            order.borrow_mut().push(id);
        });
        settle(&ex); // queued before the next spawns
    }
    drop(held);
    ex.run_until_idle().unwrap();
    assert_eq!(*order.borrow(), (0..50).collect::<Vec<_>>());
}

#[test]
fn across_two_executors_a_pool_and_plain_threads() {
    const PER: usize = 300;
    let m = Arc::new(Mutex::new(0usize));
    let g = Guarded::new();
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (m, g) = (m.clone(), g.clone());
        threads.push(std::thread::spawn(move || {
            let ex = Executor::new().unwrap();
            let hs: Vec<_> = (0..PER)
                .map(|i| {
                    let (m, g) = (m.clone(), g.clone());
                    ex.spawn(Priority::ALL[i % 3], move |cx| {
                        let mut v = m.lock()?;
                        g.enter();
                        if i % 2 == 0 {
                            cx.yield_now()?;
                        }
                        *v += 1;
                        g.leave();
                        Ok::<_, std::io::Error>(())
                    })
                })
                .collect();
            ex.run_until_idle().unwrap();
            for h in hs {
                h.join().unwrap().unwrap();
            }
        }));
    }
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    let pool_hs: Vec<_> = (0..PER)
        .map(|i| {
            let (m, g) = (m.clone(), g.clone());
            pool.spawn(Priority::ALL[i % 3], move |_cx| {
                let mut v = m.lock()?;
                g.enter();
                *v += 1;
                g.leave();
                Ok::<_, std::io::Error>(())
            })
        })
        .collect();
    for _ in 0..2 {
        let (m, g) = (m.clone(), g.clone());
        threads.push(std::thread::spawn(move || {
            for _ in 0..PER {
                let mut v = m.lock().unwrap();
                g.enter();
                *v += 1;
                g.leave();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    for h in pool_hs {
        h.join().unwrap().unwrap();
    }
    assert_eq!(*m.lock().unwrap(), 5 * PER);
}

#[test]
fn async_code_on_tokio_with_tasks_and_threads_at_once() {
    const PER: usize = 500;
    let m = Arc::new(Mutex::new(0usize));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..PER)
        .map(|_| {
            let m = m.clone();
            rt.spawn(async move {
                let mut g = m.lock_async().await;
                tokio::task::yield_now().await; // held across an await
                *g += 1;
            })
        })
        .collect();
    let m2 = m.clone();
    let exec = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        for _ in 0..PER {
            let m = m2.clone();
            ex.spawn(Priority::Normal, move |cx| {
                let mut g = m.lock().unwrap();
                cx.yield_now().unwrap();
                *g += 1;
            });
        }
        ex.run_until_idle().unwrap();
    });
    for _ in 0..PER {
        *m.lock().unwrap() += 1;
    }
    rt.block_on(async {
        for f in futs {
            f.await.unwrap();
        }
    });
    exec.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 3 * PER);
}

#[test]
fn cancelled_waiter_returns_ecanceled_and_the_next_waiter_gets_the_lock() {
    let ex = Executor::new().unwrap();
    let m = Rc::new(Mutex::new(0));
    let result = Rc::new(RefCell::new(None));
    let held = m.lock().unwrap();
    let (m1, r1) = (m.clone(), result.clone());
    let a = ex.spawn(Priority::High, move |_cx| {
        *r1.borrow_mut() = Some(m1.lock().map(|_| ()).unwrap_err().raw_os_error());
    });
    let m2 = m.clone();
    let b = ex.spawn(Priority::Normal, move |_cx| {
        *m2.lock().unwrap() += 1;
    });
    settle(&ex); // both parked on the lock
    assert!(!a.is_finished() && !b.is_finished());
    a.cancel().unwrap();
    settle(&ex);
    assert!(a.join().unwrap_err().is_cancelled());
    assert_eq!(*result.borrow(), Some(Some(libc::ECANCELED)));
    assert!(!b.is_finished()); // still waiting, still queued
    drop(held);
    ex.run_until_idle().unwrap();
    b.join().unwrap();
    assert_eq!(*m.try_lock().unwrap(), 1);
}

#[test]
fn cancel_from_another_thread_while_parked() {
    let ex = Executor::new().unwrap();
    let m = Arc::new(Mutex::new(()));
    let held = m.lock().unwrap();
    let m1 = m.clone();
    let a = ex.spawn(Priority::Normal, move |_cx| m1.lock().map(drop));
    settle(&ex);
    std::thread::scope(|s| s.spawn(|| a.cancel().unwrap()).join().unwrap());
    ex.run_until_idle().unwrap();
    assert!(a.join().unwrap_err().is_cancelled());
    drop(held);
    assert!(m.try_lock().is_ok());
}

#[test]
fn a_dropped_future_gives_up_its_place_or_hands_the_lock_on() {
    let m = Mutex::new(0);
    let mut cx = Context::from_waker(Waker::noop());
    // Dropped while waiting: nothing changes.
    let held = m.lock().unwrap();
    let mut f = Box::pin(m.lock_async());
    assert!(f.as_mut().poll(&mut cx).is_pending());
    drop(f);
    drop(held);
    assert!(m.try_lock().is_ok());
    // Dropped after the lock was handed to it: it unlocks.
    let held = m.lock().unwrap();
    let mut f = Box::pin(m.lock_async());
    assert!(f.as_mut().poll(&mut cx).is_pending());
    drop(held); // granted to the future
    assert!(m.try_lock().is_err());
    drop(f);
    assert!(m.try_lock().is_ok());
    // Granted, polled: Ready with the guard.
    let held = m.lock().unwrap();
    let mut f = Box::pin(m.lock_async());
    assert!(f.as_mut().poll(&mut cx).is_pending());
    drop(held);
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(mut g) => *g += 1,
        Poll::Pending => panic!("granted future still pending"),
    }
    drop(f);
    assert_eq!(*m.try_lock().unwrap(), 1);
}

#[test]
fn a_thread_waits_for_a_task_holding_the_lock_across_a_sleep() {
    let ex = Executor::new().unwrap();
    let m = Arc::new(Mutex::new(Vec::new()));
    let m1 = m.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    ex.spawn(Priority::Normal, move |cx| {
        let mut g = m1.lock().unwrap();
        tx.send(()).unwrap();
        cx.sleep(Duration::from_millis(20)).unwrap();
        g.push("task");
    });
    let m2 = m.clone();
    let t = std::thread::spawn(move || {
        rx.recv().unwrap();
        m2.lock().unwrap().push("thread");
    });
    ex.run_until_idle().unwrap();
    t.join().unwrap();
    assert_eq!(*m.lock().unwrap(), ["task", "thread"]);
}

#[test]
fn dropping_the_executor_of_waiting_tasks_leaves_the_mutex_consistent() {
    let m = Arc::new(Mutex::new(0));
    let held = m.lock().unwrap();
    let m1 = m.clone();
    std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        for _ in 0..100 {
            let m = m1.clone();
            ex.spawn(Priority::Normal, move |_cx| {
                if let Ok(mut g) = m.lock() {
                    *g += 1;
                }
            });
        }
        settle(&ex);
        drop(ex); // cancels the 100 parked waiters
    })
    .join()
    .unwrap();
    drop(held);
    assert_eq!(*m.try_lock().unwrap(), 0);
    assert!(format!("{:?}", m).contains("value: 0"));
}

#[test]
fn priority_inversion_a_high_waiter_raises_the_low_holder_past_normal_work() {
    // Low holds the lock; Normal tasks burn CPU in 1 ms slices; High
    // waits for the lock. With inheritance Low runs at High, finishes its
    // critical section at once, and High gets the lock after it, not
    // after the Normal work (which Low would never get past at Low).
    const NORMALS: usize = 4;
    const SLICES: usize = 25;
    let ex = Executor::new().unwrap();
    let m = Rc::new(Mutex::new(()));
    let slices = Rc::new(std::cell::Cell::new(0usize));
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let (m1, log1) = (m.clone(), log.clone());
    let low = ex.spawn(Priority::Low, move |cx| {
        let g = m1.lock().unwrap();
        cx.sleep(Duration::from_millis(2)).unwrap(); // High queues meanwhile
        let during = cx.priority();
        for _ in 0..5 {
            cx.yield_now().unwrap(); // the critical section, in pieces
        }
        log1.borrow_mut().push("low unlocks".into());
        drop(g);
        (during, cx.priority())
    });
    ex.run(1, None).unwrap(); // Low has the lock, and sleeps
    for _ in 0..NORMALS {
        let s = slices.clone();
        ex.spawn(Priority::Normal, move |cx| {
            for _ in 0..SLICES {
                common::burn(Duration::from_millis(1));
                s.set(s.get() + 1);
                cx.yield_now().unwrap();
            }
        });
    }
    let (m2, log2, s2) = (m.clone(), log.clone(), slices.clone());
    let high = ex.spawn(Priority::High, move |_cx| {
        let _g = m2.lock().unwrap();
        log2.borrow_mut()
            .push(format!("high locks after {} normal slices", s2.get()));
        s2.get()
    });
    ex.run_until_idle().unwrap();
    let (during, after) = low.join().unwrap();
    let at = high.join().unwrap();
    assert_eq!(during, Priority::High, "the holder was not raised");
    assert_eq!(after, Priority::Low, "the holder was not restored");
    assert_eq!(log.borrow()[0], "low unlocks");
    // The 2 ms sleep lets a few slices run; the rest of the 100 waits.
    assert!(
        at < NORMALS * SLICES / 4,
        "High got the lock after {at} of {} Normal slices: {:?}",
        NORMALS * SLICES,
        log.borrow()
    );
}

#[test]
fn nested_locks_released_in_reverse_order_restore_every_level() {
    let ex = Executor::new().unwrap();
    let (a, b) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
    let levels = Rc::new(RefCell::new(Vec::new()));
    // Set by the High waiter in the slice in which it queues on `a`, so the
    // holder goes on only once both waiters are queued, however late the
    // machine runs the test (a fixed sleep raced a loaded machine).
    let high_queued = Rc::new(Cell::new(false));
    let (a1, b1, lv, hq) = (a.clone(), b.clone(), levels.clone(), high_queued.clone());
    let holder = ex.spawn(Priority::Low, move |cx| {
        let ga = a1.lock().unwrap();
        let gb = b1.lock().unwrap();
        while !hq.get() {
            cx.sleep(Duration::from_millis(1)).unwrap(); // waiters queue
        }
        lv.borrow_mut().push(cx.priority()); // High (from a's waiter)
        drop(gb);
        lv.borrow_mut().push(cx.priority()); // still High: a is held
        drop(ga);
        lv.borrow_mut().push(cx.priority()); // Low again
    });
    ex.run(1, None).unwrap();
    let b2 = b.clone();
    ex.spawn(Priority::Normal, move |_cx| drop(b2.lock().unwrap()));
    settle(&ex);
    let a2 = a.clone();
    ex.spawn(Priority::High, move |_cx| {
        high_queued.set(true);
        drop(a2.lock().unwrap())
    });
    ex.run_until_idle().unwrap();
    holder.join().unwrap();
    assert_eq!(
        *levels.borrow(),
        [Priority::High, Priority::High, Priority::Low]
    );
}

#[test]
fn a_thread_waiting_raises_a_low_holder_to_normal() {
    let ex = Executor::new().unwrap();
    let m = Arc::new(Mutex::new(()));
    let m1 = m.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let holder = ex.spawn(Priority::Low, move |cx| {
        let g = m1.lock().unwrap();
        tx.send(()).unwrap();
        // Until the thread has queued and raised us (at most 2 s).
        for _ in 0..2000 {
            if cx.priority() != Priority::Low {
                break;
            }
            cx.sleep(Duration::from_millis(1)).unwrap();
        }
        let during = cx.priority();
        drop(g);
        (during, cx.priority())
    });
    let m2 = m.clone();
    let t = std::thread::spawn(move || {
        rx.recv().unwrap();
        drop(m2.lock().unwrap());
    });
    ex.run_until_idle().unwrap();
    t.join().unwrap();
    assert_eq!(holder.join().unwrap(), (Priority::Normal, Priority::Low));
}

#[test]
fn a_high_waiter_on_another_executor_raises_the_holder_across_threads() {
    let m = Arc::new(Mutex::new(()));
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (queued_tx, queued_rx) = std::sync::mpsc::channel::<()>();
    let m1 = m.clone();
    let holder_thread = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        let holder = ex.spawn(Priority::Low, move |cx| {
            let g = m1.lock().unwrap();
            locked_tx.send(()).unwrap();
            // Wait (parked, by sleeping in steps) until the High waiter
            // has queued on the other executor.
            while queued_rx.try_recv().is_err() {
                cx.sleep(Duration::from_millis(1)).unwrap();
            }
            cx.sleep(Duration::from_millis(1)).unwrap(); // the raise lands
            let during = cx.priority();
            drop(g);
            (during, cx.priority())
        });
        ex.run_until_idle().unwrap();
        holder.join().unwrap()
    });
    locked_rx.recv().unwrap();
    let ex = Executor::new().unwrap();
    let m2 = m.clone();
    let high = ex.spawn(Priority::High, move |_cx| drop(m2.lock().unwrap()));
    settle(&ex); // queued (and the holder raised)
    queued_tx.send(()).unwrap();
    ex.run_until_idle().unwrap();
    high.join().unwrap();
    assert_eq!(
        holder_thread.join().unwrap(),
        (Priority::High, Priority::Low)
    );
}
