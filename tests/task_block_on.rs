//! `TaskContext::block_on`: futures run inside tasks, which park (not
//! their thread) while the future is pending: ready and pending futures,
//! wakes from other threads, tokio and `futures` channels, wakers that
//! outlive their task, other tasks running meanwhile, cancellation.

mod common;

use common::driven::{within, Driven};
use monad_async::{Executor, Priority, Switcher};
use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_ready_future_returns_without_suspending() {
    within(LIMIT, a_ready_future_returns_without_suspending_body);
}

fn a_ready_future_returns_without_suspending_body() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let v = cx.block_on(async { 40 + 2 })?;
        let w = cx.block_on(std::future::ready("ready"))?;
        Ok::<_, std::io::Error>((v, w, cx.stats().suspensions))
    });
    assert_eq!(h.join().unwrap().unwrap(), (42, "ready", 0));
}

#[test]
fn a_future_that_wakes_itself_is_polled_again() {
    within(LIMIT, a_future_that_wakes_itself_is_polled_again_body);
}

fn a_future_that_wakes_itself_is_polled_again_body() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let mut polls = 0;
        cx.block_on(poll_fn(|c| {
            polls += 1;
            if polls < 10 {
                c.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }))?;
        Ok::<_, std::io::Error>(polls)
    });
    assert_eq!(h.join().unwrap().unwrap(), 10);
}

#[test]
fn pending_futures_woken_from_another_thread() {
    within(LIMIT, pending_futures_woken_from_another_thread_body);
}

fn pending_futures_woken_from_another_thread_body() {
    let ex = Executor::new().unwrap();
    let (tx, rx) = mpsc::channel();
    let h = ex.spawn(Priority::High, move |cx| {
        let mut got = Vec::new();
        for i in 0..100u32 {
            let (otx, orx) = futures::channel::oneshot::channel::<u32>();
            tx.send((i, otx)).unwrap();
            got.push(cx.block_on(orx)?.unwrap());
        }
        Ok::<_, std::io::Error>((got, cx.stats().suspensions))
    });
    let feeder = std::thread::spawn(move || {
        for (i, otx) in rx {
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            otx.send(i * 3).unwrap();
        }
    });
    let (got, parks) = h.join().unwrap().unwrap();
    feeder.join().unwrap();
    assert_eq!(got, (0..100).map(|i| i * 3).collect::<Vec<_>>());
    // Each receive parks at most once per wake (none if the value beat
    // the first poll; a stale permit may add one).
    assert!((10..=200).contains(&parks), "{parks}");
}

#[test]
fn a_tokio_channel_fed_by_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(16);
    // Producers are tokio tasks, with tokio timers between messages.
    for p in 0..4u64 {
        let tx = tx.clone();
        rt.spawn(async move {
            for i in 0..250u64 {
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tx.send(p * 1000 + i).await.unwrap();
            }
        });
    }
    drop(tx);
    let (sum, count) = within(LIMIT, move || {
        let ex = Executor::new().unwrap();
        let h = ex.spawn(Priority::Normal, move |cx| {
            let (mut sum, mut count) = (0, 0);
            while let Some(v) = cx.block_on(rx.recv())? {
                sum += v;
                count += 1;
            }
            Ok::<_, std::io::Error>((sum, count))
        });
        h.join().unwrap().unwrap()
    });
    drop(rt);
    assert_eq!(count, 1000);
    assert_eq!(
        sum,
        (0..4u64)
            .map(|p| p * 1000 * 250 + 249 * 250 / 2)
            .sum::<u64>()
    );
}

#[test]
fn futures_channels_between_tasks_and_threads() {
    use futures::{SinkExt, StreamExt};
    within(LIMIT, || {
        let ex = Executor::new().unwrap();
        let (mut tx, mut rx) = futures::channel::mpsc::channel::<u32>(4);
        let mut tx2 = tx.clone();
        // A consumer task, a producer task on the same executor (its wakes
        // take the owner-thread path), and a producer thread.
        let consumer = ex.spawn(Priority::High, move |cx| {
            let mut sum = 0u64;
            while let Some(v) = cx.block_on(rx.next())? {
                sum += u64::from(v);
            }
            Ok::<_, std::io::Error>(sum)
        });
        let producer = ex.spawn(Priority::Low, move |cx| {
            for i in 0..500 {
                cx.block_on(tx.send(i))?.unwrap();
            }
            Ok::<_, std::io::Error>(())
        });
        let thread = std::thread::spawn(move || {
            futures::executor::block_on(async {
                for i in 0..500 {
                    tx2.send(i).await.unwrap();
                }
            })
        });
        producer.join().unwrap().unwrap();
        let sum = consumer.join().unwrap().unwrap();
        thread.join().unwrap();
        assert_eq!(sum, 2 * (0..500u64).sum::<u64>());
    });
}

/// A future that hands its waker out through `stash` and is ready once
/// `ready` is set.
fn stashing(stash: Arc<Mutex<Option<Waker>>>, ready: Arc<AtomicBool>) -> impl Future<Output = ()> {
    poll_fn(move |c| {
        if ready.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *stash.lock().unwrap() = Some(c.waker().clone());
        Poll::Pending
    })
}

#[test]
fn a_waker_used_after_its_task_exited_does_nothing() {
    let stash = Arc::new(Mutex::new(None::<Waker>));
    let ready = Arc::new(AtomicBool::new(false));
    within(LIMIT, {
        let stash = Arc::clone(&stash);
        move || {
            // One C task, reused: the next work runs on the same task as
            // the first, which the stale waker names.
            let ex = Executor::new().unwrap();
            let (s, r) = (Arc::clone(&stash), Arc::clone(&ready));
            let first = ex.spawn(Priority::Normal, move |cx| cx.block_on(stashing(s, r)));
            ex.run(1, Some(Duration::ZERO)).unwrap(); // parked in block_on
            let waker = stash.lock().unwrap().clone().unwrap();
            ready.store(true, Ordering::SeqCst);
            waker.wake_by_ref();
            first.join().unwrap().unwrap();
            assert_eq!(ex.stats().tasks_created, 1);
            let second = ex.spawn(Priority::Normal, |cx| {
                // A stale wake must not resume this park.
                cx.park_timeout(Duration::from_millis(50))
            });
            ex.run(1, Some(Duration::ZERO)).unwrap(); // parked now
            let w = waker.clone();
            std::thread::spawn(move || w.wake_by_ref()).join().unwrap();
            waker.wake_by_ref(); // and from the executor's thread
            assert_eq!(ex.stats().tasks_created, 1, "the same task carries it");
            assert!(!second.join().unwrap().unwrap(), "woken by a stale waker");
            drop(ex);
            // After the executor is gone, too.
            waker.wake_by_ref();
            std::thread::spawn(move || waker.wake()).join().unwrap();
        }
    });
    // Only the stash's clone is left; dropping it is fine as well.
    drop(stash.lock().unwrap().take());
}

#[test]
fn a_parked_block_on_does_not_hold_up_the_executor() {
    // Two Low tasks burn 1 ms slices; a High task waits in block_on for
    // messages a thread sends every 5 ms. The Low tasks run while it
    // waits, and it runs within about one slice of each message.
    const SLICE: Duration = Duration::from_millis(1);
    let (latencies, low_slices) = within(LIMIT, || {
        let ex = Executor::new().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let slices = Arc::new(AtomicU64::new(0));
        let mut lows = Vec::new();
        for _ in 0..2 {
            let (done, slices) = (Arc::clone(&done), Arc::clone(&slices));
            lows.push(ex.spawn(Priority::Low, move |cx| {
                while !done.load(Ordering::Relaxed) {
                    let end = Instant::now() + SLICE;
                    while Instant::now() < end {
                        std::hint::spin_loop();
                    }
                    slices.fetch_add(1, Ordering::Relaxed);
                    cx.yield_now()?;
                }
                Ok::<_, std::io::Error>(())
            }));
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let sender = std::thread::spawn(move || {
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(5));
                tx.send(Instant::now()).unwrap();
            }
        });
        let s = Arc::clone(&slices);
        let d = Arc::clone(&done);
        let high = ex.spawn(Priority::High, move |cx| {
            let mut latencies = Vec::new();
            while let Some(sent) = cx.block_on(rx.recv())? {
                latencies.push(sent.elapsed());
            }
            d.store(true, Ordering::Relaxed);
            Ok::<_, std::io::Error>((latencies, s.load(Ordering::Relaxed)))
        });
        let r = high.join().unwrap().unwrap();
        for l in lows {
            l.join().unwrap().unwrap();
        }
        sender.join().unwrap();
        r
    });
    assert_eq!(latencies.len(), 20);
    // 100 ms of waiting on 2 Low tasks' 1 ms slices: most of it was theirs.
    assert!(low_slices >= 50, "{low_slices}");
    let mut sorted = latencies.clone();
    sorted.sort();
    // The median message waits for at most the current slice (plus the
    // cross-thread wake-up); a loaded CI machine gets slack on the worst.
    assert!(sorted[10] < SLICE * 3, "{sorted:?}");
    assert!(sorted[19] < Duration::from_millis(50), "{sorted:?}");
}

#[test]
fn a_thousand_tasks_in_block_on_woken_in_reverse() {
    let driven = Driven::start();
    let (tx, rx) = mpsc::channel();
    let hs: Vec<_> = (0..1000u32)
        .map(|i| {
            let (otx, orx) = futures::channel::oneshot::channel::<u32>();
            tx.send(otx).unwrap();
            driven
                .handle
                .spawn(Priority::ALL[i as usize % 3], move |cx| {
                    cx.block_on(orx).map(|r| r.unwrap() + i)
                })
                .unwrap()
        })
        .collect();
    drop(tx);
    let senders: Vec<_> = rx.into_iter().collect();
    std::thread::sleep(Duration::from_millis(20)); // most are parked by now
    for (i, otx) in senders.into_iter().enumerate().rev() {
        otx.send(i as u32).unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let values = within(LIMIT, move || rt.block_on(futures::future::join_all(hs)));
    for (i, v) in values.into_iter().enumerate() {
        assert_eq!(v.unwrap().unwrap(), 2 * i as u32);
    }
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn cancelled_while_pending_returns_ecanceled_and_drops_the_future() {
    let driven = Driven::start();
    let dropped = Arc::new(AtomicBool::new(false));
    let d = Arc::clone(&dropped);
    let (tx, rx) = mpsc::channel();
    let h = driven
        .handle
        .spawn(Priority::Normal, move |cx| {
            let flag = DropFlag(d);
            let r = cx.block_on(async move {
                let _flag = flag;
                std::future::pending::<()>().await
            });
            tx.send(r.map_err(|e| e.raw_os_error())).unwrap();
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(10));
    assert!(!h.is_finished());
    assert!(h.cancel().unwrap()); // from another thread
    let joined = within(LIMIT, move || h.join());
    // A cancelled task's work ends Cancelled whatever it returns.
    assert!(joined.unwrap_err().is_cancelled());
    assert_eq!(rx.recv().unwrap(), Err(Some(libc::ECANCELED)));
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn the_future_is_dropped_before_block_on_returns() {
    let ex = Executor::new().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let d = Arc::clone(&dropped);
    let (tx, rx) = mpsc::channel();
    let h = ex.spawn(Priority::Normal, move |cx| {
        let flag = DropFlag(Arc::clone(&d));
        let r = cx.block_on(async move {
            let _flag = flag;
            std::future::pending::<()>().await
        });
        // Read inside the task, right after block_on returned.
        tx.send((r.map_err(|e| e.raw_os_error()), d.load(Ordering::SeqCst)))
            .unwrap();
    });
    ex.run(1, Some(Duration::ZERO)).unwrap(); // parked in block_on
    assert!(ex.cancel(&h).unwrap());
    assert!(h.join().unwrap_err().is_cancelled());
    let (r, dropped_by_then) = rx.recv().unwrap();
    assert_eq!(r, Err(Some(libc::ECANCELED)));
    assert!(dropped_by_then, "dropped before block_on returned");
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn dropping_the_executor_ends_a_pending_block_on() {
    let (dropped, ended) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let ex = Executor::new().unwrap();
    for _ in 0..50 {
        let (d, e) = (Arc::clone(&dropped), Arc::clone(&ended));
        ex.spawn(Priority::Low, move |cx| {
            let flag = DropFlag(Arc::new(AtomicBool::new(false)));
            let r = cx.block_on(async move {
                let _flag = flag;
                std::future::pending::<()>().await
            });
            d.fetch_add(1, Ordering::SeqCst);
            if r.is_err_and(|e| e.raw_os_error() == Some(libc::ECANCELED)) {
                e.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    assert_eq!(ex.run(64, Some(Duration::ZERO)).unwrap(), 50); // all parked
    drop(ex);
    assert_eq!(dropped.load(Ordering::SeqCst), 50);
    assert_eq!(ended.load(Ordering::SeqCst), 50);
}

#[test]
fn pending_on_the_none_switcher_is_enotsup() {
    within(LIMIT, pending_on_the_none_switcher_is_enotsup_body);
}

fn pending_on_the_none_switcher_is_enotsup_body() {
    let ex = Executor::builder()
        .switcher(Switcher::None)
        .build()
        .unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let ready = cx.block_on(async { 1 }).unwrap();
        let pending = cx.block_on(std::future::pending::<()>());
        (ready, pending.map_err(|e| e.raw_os_error()))
    });
    assert_eq!(h.join().unwrap(), (1, Err(Some(libc::ENOTSUP))));
}

#[test]
fn tokio_timers_made_under_the_runtime_context() {
    // A tokio timer needs tokio's reactor: made under a multi-thread
    // runtime's context (the guard held for the constructor only), it is
    // driven by that runtime's threads and wakes the task.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let waited = within(LIMIT, move || {
        let ex = Executor::new().unwrap();
        let h = ex.spawn(Priority::Normal, move |cx| {
            let start = Instant::now();
            let sleep = {
                let _guard = handle.enter();
                tokio::time::sleep(Duration::from_millis(20))
            };
            cx.block_on(sleep)?;
            Ok::<_, std::io::Error>(start.elapsed())
        });
        h.join().unwrap().unwrap()
    });
    drop(rt);
    assert!(waited >= Duration::from_millis(20), "{waited:?}");
}

#[test]
fn a_waker_clone_is_send_and_sync_and_wakes_from_any_thread() {
    within(
        LIMIT,
        a_waker_clone_is_send_and_sync_and_wakes_from_any_thread_body,
    );
}

fn a_waker_clone_is_send_and_sync_and_wakes_from_any_thread_body() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let mut started = false;
        cx.block_on(poll_fn(|c: &mut Context<'_>| {
            if started {
                return Poll::Ready(());
            }
            started = true;
            let w = c.waker().clone();
            assert_send_sync(&w);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2));
                w.wake();
            });
            Poll::Pending
        }))?;
        Ok::<_, std::io::Error>(cx.stats().suspensions)
    });
    assert_eq!(h.join().unwrap().unwrap(), 1);
}

#[test]
fn tokio_io_made_on_the_tokio_side_works_from_a_task() {
    // Tokio sockets register with the reactor of the runtime they are
    // made in; a multi-thread runtime drives it on its own threads, so a
    // task may read and write one through block_on.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (stream, echo) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        (tokio::net::TcpStream::connect(addr).await.unwrap(), echo)
    });
    let got = within(LIMIT, move || {
        let ex = Executor::new().unwrap();
        let h = ex.spawn(Priority::Normal, move |cx| {
            let mut stream = stream;
            let mut got = Vec::new();
            for i in 0..10u8 {
                cx.block_on(stream.write_all(&[i; 4]))??;
                let mut buf = [0u8; 4];
                cx.block_on(stream.read_exact(&mut buf))??;
                got.extend_from_slice(&buf);
            }
            Ok::<_, std::io::Error>(got)
        });
        h.join().unwrap().unwrap()
    });
    assert_eq!(got, (0..10u8).flat_map(|i| [i; 4]).collect::<Vec<_>>());
    rt.block_on(echo).unwrap();
}
