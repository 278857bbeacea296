//! `JoinHandle` as a `Future`: awaited from tokio (current-thread and
//! multi-thread runtimes) and from `futures::executor::block_on`, while
//! the executor runs on its own thread or the work on a thread pool; many
//! at once; dropped while pending; panics, cancellation and shutdown.

mod common;

use common::driven::{within, Driven};
use futures::future::join_all;
use monad_async::{Executor, Priority, ThreadPool};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

fn current_thread_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A waker that counts its wakes, and whether it has been dropped (every
/// clone included).
struct Counting {
    wakes: AtomicUsize,
}

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<Counting>, Waker) {
    let c = Arc::new(Counting {
        wakes: AtomicUsize::new(0),
    });
    (Arc::clone(&c), Waker::from(c))
}

fn poll_once<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

#[test]
fn awaited_from_a_tokio_current_thread_runtime() {
    let driven = Driven::start();
    let rt = current_thread_rt();
    let handle = driven.handle.clone();
    let (values, elapsed) = within(LIMIT, move || {
        rt.block_on(async move {
            let start = Instant::now();
            let mut hs = Vec::new();
            for i in 0..100u64 {
                let p = Priority::ALL[i as usize % 3];
                hs.push(
                    handle
                        .spawn(p, move |cx| {
                            cx.sleep(Duration::from_millis(20))?;
                            Ok::<_, std::io::Error>(i * 2)
                        })
                        .unwrap(),
                );
            }
            // Meanwhile the runtime keeps running its own tasks.
            let ticker = tokio::spawn(async {
                let mut n = 0;
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    n += 1;
                }
                n
            });
            let mut values = Vec::new();
            for h in hs {
                values.push(h.await.unwrap().unwrap());
            }
            assert_eq!(ticker.await.unwrap(), 5);
            (values, start.elapsed())
        })
    });
    assert_eq!(values, (0..100).map(|i| i * 2).collect::<Vec<_>>());
    // The sleeps overlap: far less than 100 x 20 ms.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[test]
fn awaited_from_a_tokio_multi_thread_runtime() {
    let driven = Driven::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = driven.handle.clone();
    let total = within(LIMIT, move || {
        rt.block_on(async move {
            let mut services = Vec::new();
            for s in 0..8u64 {
                let handle = handle.clone();
                services.push(tokio::spawn(async move {
                    let mut sum = 0;
                    for i in 0..50u64 {
                        let h = handle
                            .spawn(Priority::ALL[(s + i) as usize % 3], move |cx| {
                                if i % 5 == 0 {
                                    cx.yield_now().unwrap();
                                }
                                s * 1000 + i
                            })
                            .unwrap();
                        // The handle may be polled on one worker and
                        // finish while another polls it.
                        tokio::task::yield_now().await;
                        sum += h.await.unwrap();
                    }
                    sum
                }));
            }
            let mut total = 0;
            for s in services {
                total += s.await.unwrap();
            }
            total
        })
    });
    let expected: u64 = (0..8u64)
        .flat_map(|s| (0..50u64).map(move |i| s * 1000 + i))
        .sum();
    assert_eq!(total, expected);
}

#[test]
fn awaited_from_tokio_on_a_thread_pool_high_before_low_backlog() {
    let pool = Arc::new(ThreadPool::builder().threads(2).build().unwrap());
    let rt = current_thread_rt();
    let p = Arc::clone(&pool);
    let (high_latency, lows) = within(LIMIT, move || {
        rt.block_on(async move {
            // A backlog of CPU-bound low work, then one urgent job.
            let lows: Vec<_> = (0..200u64)
                .map(|i| {
                    p.spawn(Priority::Low, move |_cx| {
                        let end = Instant::now() + Duration::from_micros(500);
                        while Instant::now() < end {
                            std::hint::spin_loop();
                        }
                        i
                    })
                })
                .collect();
            let start = Instant::now();
            let high = p.spawn(Priority::High, |_cx| "urgent");
            assert_eq!(high.await.unwrap(), "urgent");
            let high_latency = start.elapsed();
            let lows = join_all(lows).await;
            (high_latency, lows)
        })
    });
    let lows: Vec<u64> = lows.into_iter().map(Result::unwrap).collect();
    assert_eq!(lows, (0..200).collect::<Vec<_>>());
    // The backlog is 100 ms of work on 2 threads; the urgent job waits for
    // a thread to finish its current 0.5 ms slice, not for the backlog.
    assert!(high_latency < Duration::from_millis(50), "{high_latency:?}");
}

#[test]
fn awaited_from_futures_block_on_on_another_thread() {
    let driven = Driven::start();
    let h = driven
        .handle
        .spawn(Priority::Normal, |cx| {
            cx.sleep(Duration::from_millis(5))?;
            Ok::<_, std::io::Error>(String::from("slept"))
        })
        .unwrap();
    let v = within(LIMIT, move || futures::executor::block_on(h));
    assert_eq!(v.unwrap().unwrap(), "slept");
}

#[test]
fn awaited_on_the_executors_own_thread_runs_the_executor() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Low, |cx| {
        cx.sleep(Duration::from_millis(2))?;
        Ok::<_, std::io::Error>(9)
    });
    let other = ex.spawn(Priority::High, |_cx| 1);
    // Nobody else drives this executor: the poll does, as join does.
    assert_eq!(futures::executor::block_on(h).unwrap().unwrap(), 9);
    assert!(other.is_finished());
    let rt = current_thread_rt();
    let h = ex.spawn(Priority::Normal, |cx| cx.yield_now().map(|()| 3));
    assert_eq!(rt.block_on(h).unwrap().unwrap(), 3);
}

#[test]
fn a_thousand_handles_awaited_at_once() {
    let driven = Driven::start();
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    let mut hs = Vec::new();
    for i in 0..1000u64 {
        let p = Priority::ALL[i as usize % 3];
        let h = if i % 2 == 0 {
            driven
                .handle
                .spawn(p, move |cx| {
                    cx.sleep(Duration::from_millis(i % 50))?;
                    Ok::<_, std::io::Error>(i)
                })
                .unwrap()
        } else {
            pool.spawn(p, move |_cx| Ok::<_, std::io::Error>(i))
        };
        hs.push(h);
    }
    let rt = current_thread_rt();
    let (values, elapsed) = within(LIMIT, move || {
        let start = Instant::now();
        let values = rt.block_on(join_all(hs));
        (values, start.elapsed())
    });
    let values: Vec<u64> = values.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(values, (0..1000).collect::<Vec<_>>());
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn the_finish_never_loses_a_wake_against_a_poll() {
    // Each handle is awaited while its work races to finish: registering
    // the waker and finishing interleave every way; a lost wake hangs.
    let driven = Driven::start();
    let handle = driven.handle.clone();
    within(LIMIT, move || {
        for i in 0..3000u32 {
            let h = handle.spawn(Priority::High, move |_cx| i).unwrap();
            if i % 3 == 0 {
                std::thread::yield_now();
            }
            assert_eq!(futures::executor::block_on(h).unwrap(), i);
        }
    });
}

#[test]
fn a_new_waker_per_poll_racing_the_exit_is_woken_once() {
    // Every poll brings a different waker (the replacement path) while
    // the work ends on the executor's thread: the waker registered when
    // it ended is woken exactly once, every replaced one never, and every
    // one is let go.
    let driven = Driven::start();
    let handle = driven.handle.clone();
    within(LIMIT, move || {
        for round in 0..2000u32 {
            let spins = round % 64;
            let mut h = handle
                .spawn(Priority::High, move |_cx| {
                    for _ in 0..spins * 16 {
                        std::hint::spin_loop();
                    }
                    round
                })
                .unwrap();
            let mut wakers = Vec::new();
            let value = loop {
                let (c, w) = counting();
                let r = poll_once(&mut h, &w);
                wakers.push(c);
                if let Poll::Ready(v) = r {
                    break v.unwrap();
                }
            };
            assert_eq!(value, round);
            // The last poll saw the end; a wake, if any, went to the
            // waker registered when the work ended: one of the pending
            // ones, at most once, and none other.
            let pending = &wakers[..wakers.len() - 1];
            let woken: usize = pending.iter().map(|c| c.wakes.load(Ordering::SeqCst)).sum();
            assert!(woken <= 1, "round {round}: {woken} wakes");
            if let Some((_last, earlier)) = pending.split_last() {
                for c in earlier {
                    assert_eq!(
                        c.wakes.load(Ordering::SeqCst),
                        0,
                        "a replaced waker was woken"
                    );
                }
            }
            drop(h);
            for c in &wakers {
                // Only the test's reference is left: the slot dropped every
                // waker it held (the exit's wake consumed its copy).
                let deadline = Instant::now() + Duration::from_secs(5);
                while Arc::strong_count(c) != 1 {
                    assert!(Instant::now() < deadline, "a waker was never let go");
                    std::thread::yield_now();
                }
            }
        }
    });
}

#[test]
fn only_the_latest_waker_is_woken_once() {
    let ex = Executor::new().unwrap();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let mut h = ex.spawn(Priority::Normal, move |cx| {
        // Park-free wait for the test's signal: yield until it comes.
        while gate_rx.try_recv().is_err() {
            cx.yield_now().unwrap();
        }
        5
    });
    let driver = std::thread::scope(|s| {
        let (a, wa) = counting();
        let (b, wb) = counting();
        let wb2 = wb.clone();
        let t = s.spawn(move || {
            assert!(poll_once(&mut h, &wa).is_pending());
            assert!(poll_once(&mut h, &wa).is_pending()); // same waker: kept
            assert!(poll_once(&mut h, &wb2).is_pending()); // replaced
            drop(wa);
            h
        });
        let h = t.join().unwrap();
        gate_tx.send(()).unwrap();
        (h, a, b, wb)
    });
    let (mut h, a, b, wb) = driver;
    // The replaced waker was let go: only the test holds it now.
    assert_eq!(Arc::strong_count(&a), 1);
    ex.run_until_idle().unwrap();
    assert_eq!(a.wakes.load(Ordering::SeqCst), 0);
    assert_eq!(b.wakes.load(Ordering::SeqCst), 1);
    // Woken and dropped by the exit: only the test's references left.
    assert_eq!(Arc::strong_count(&b), 2);
    assert_eq!(poll_once(&mut h, &wb).map(Result::unwrap), Poll::Ready(5));
    assert_eq!(b.wakes.load(Ordering::SeqCst), 1);
}

#[test]
fn dropping_a_pending_handle_detaches_and_lets_go_of_the_waker() {
    let driven = Driven::start();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let mut h = driven
        .handle
        .spawn(Priority::Normal, move |cx| {
            while go_rx.try_recv().is_err() {
                cx.sleep(Duration::from_millis(1)).unwrap();
            }
            r.store(true, Ordering::SeqCst);
            vec![1u8; 100] // dropped by the executor: nobody takes it
        })
        .unwrap();
    let (c, w) = counting();
    assert!(poll_once(&mut h, &w).is_pending());
    drop(w);
    assert_eq!(Arc::strong_count(&c), 2, "the slot holds the waker");
    drop(h);
    assert_eq!(Arc::strong_count(&c), 1, "the dropped handle let go of it");
    go_tx.send(()).unwrap();
    within(LIMIT, move || {
        while !ran.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    assert_eq!(c.wakes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panic_in_the_task_is_returned_as_join_error() {
    let driven = Driven::start();
    let h = driven
        .handle
        .spawn(Priority::High, |cx| -> u32 {
            cx.yield_now().unwrap();
            panic!("task failed")
        })
        .unwrap();
    let rt = current_thread_rt();
    let err = within(LIMIT, move || rt.block_on(h)).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(
        *err.into_panic().downcast::<&'static str>().unwrap(),
        "task failed"
    );
}

#[test]
fn cancel_while_awaited_ends_in_cancelled() {
    let driven = Driven::start();
    let h = driven
        .handle
        .spawn(Priority::Normal, |cx| cx.sleep(Duration::from_secs(60)))
        .unwrap();
    let rt = current_thread_rt();
    let err = within(LIMIT, move || {
        rt.block_on(async move {
            let mut h = h;
            // One poll with this task's waker, as `futures::poll!` would.
            let pending = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut h).poll(cx))).await;
            assert!(pending.is_pending());
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(h.cancel().unwrap());
            h.await
        })
    })
    .unwrap_err();
    assert!(err.is_cancelled());
}

#[test]
fn dropping_the_executor_ends_pending_awaits_in_cancelled() {
    let driven = Driven::start();
    let hs: Vec<_> = (0..100)
        .map(|_| {
            driven
                .handle
                .spawn(Priority::Low, |cx| {
                    let _ = cx.park(); // until the executor's drop
                })
                .unwrap()
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let results = rt.block_on(async move {
            let all = tokio::spawn(join_all(hs));
            tx.send(()).unwrap();
            all.await.unwrap()
        });
        results.into_iter().filter(|r| r.is_err()).count()
    });
    rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20)); // all pending by now
    drop(driven); // stops the thread; the executor's drop cancels the work
    let cancelled = within(LIMIT, move || waiter.join().unwrap());
    assert_eq!(cancelled, 100);
}

#[test]
#[should_panic(expected = "JoinHandle polled after it returned Ready")]
fn a_poll_after_ready_panics() {
    let ex = Executor::new().unwrap();
    let mut h = ex.spawn(Priority::Normal, |_cx| 1);
    ex.run_until_idle().unwrap();
    let (_c, w) = counting();
    assert_eq!(poll_once(&mut h, &w).map(Result::unwrap), Poll::Ready(1));
    let _ = poll_once(&mut h, &w);
}

#[test]
fn awaiting_from_inside_a_task_parks_it() {
    let pool = Arc::new(ThreadPool::builder().threads(1).build().unwrap());
    let (sum, parks) = within(LIMIT, move || {
        let ex = Executor::new().unwrap();
        let p = Arc::clone(&pool);
        let h = ex.spawn(Priority::Normal, move |cx| {
            let local = cx
                .spawn(Priority::Low, |cx| {
                    cx.sleep(Duration::from_millis(3)).unwrap();
                    10
                })
                .unwrap();
            let remote = p.spawn(Priority::High, |_cx| 20);
            let before = cx.stats().suspensions;
            let (a, b) = cx.block_on(futures::future::join(local, remote))?;
            Ok::<_, std::io::Error>((a.unwrap() + b.unwrap(), cx.stats().suspensions - before))
        });
        h.join().unwrap().unwrap()
    });
    assert_eq!(sum, 30);
    assert!((1..=3).contains(&parks), "{parks}");
}
