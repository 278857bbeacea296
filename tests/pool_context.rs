//! A thread pool's closures get a full `TaskContext` (with a stackful
//! switcher, and a ring for I/O): they yield, sleep, park and are woken
//! from other pool threads, do file and TCP I/O, share `sync` locks and
//! channels with executor tasks, honour deadlines and `block_on`; a panic
//! with I/O in flight is reported and leaves the worker usable; dropping
//! the pool with closures suspended in I/O and sleep ends in bounded time.

use monad_async::io::{File, TcpListener, TcpStream};
use monad_async::sync::{mpsc, Mutex};
use monad_async::{Executor, Priority, Switcher, TaskWaker, ThreadPool};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A pool whose closures can suspend and do I/O.
fn io_pool(threads: usize) -> ThreadPool {
    ThreadPool::builder()
        .threads(threads)
        .switcher(Switcher::Asm)
        .ring_entries(64)
        .build()
        .unwrap()
}

#[test]
fn closures_yield_and_sleep_without_blocking_their_worker() {
    // One worker: 50 closures sleeping 20 ms each finish in about 20 ms,
    // not 1 s, because a sleeping closure leaves the worker to the others.
    let pool = io_pool(1);
    let start = Instant::now();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            pool.spawn(Priority::ALL[i % 3], move |cx| {
                cx.yield_now()?;
                cx.sleep(Duration::from_millis(20))?;
                Ok::<_, std::io::Error>(cx.stats().suspensions)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 2);
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(20));
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[test]
fn none_switcher_reports_enotsup_for_suspension_points() {
    let pool = ThreadPool::builder().threads(1).build().unwrap();
    let h = pool.spawn(Priority::Normal, |cx| {
        let sleep = cx.sleep(Duration::from_millis(1)).unwrap_err();
        let park = cx.park().unwrap_err();
        let io = monad_async::io::nop(cx).unwrap_err();
        (sleep.raw_os_error(), park.raw_os_error(), io.raw_os_error())
    });
    let enotsup = Some(libc::ENOTSUP);
    assert_eq!(h.join().unwrap(), (enotsup, enotsup, enotsup));
}

#[test]
fn park_and_wake_across_pool_threads() {
    // Pairs of closures on two workers: each parked one is woken by its
    // partner, wherever that runs, with its waker sent over a channel.
    let pool = Arc::new(io_pool(2));
    let woken = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..100 {
        let (tx, rx) = std::sync::mpsc::channel::<TaskWaker>();
        let flag = Arc::new(AtomicBool::new(false));
        let (f1, w1) = (Arc::clone(&flag), Arc::clone(&woken));
        handles.push(pool.spawn(Priority::ALL[i % 3], move |cx| {
            tx.send(cx.waker()).unwrap();
            while !f1.load(Ordering::Acquire) {
                cx.park()?;
            }
            w1.fetch_add(1, Ordering::Relaxed);
            Ok::<_, std::io::Error>(())
        }));
        handles.push(pool.spawn(Priority::Normal, move |cx| {
            let waker = loop {
                match rx.try_recv() {
                    Ok(w) => break w,
                    Err(_) => cx.sleep(Duration::from_micros(50))?,
                }
            };
            flag.store(true, Ordering::Release);
            waker.wake();
            Ok(())
        }));
    }
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(woken.load(Ordering::Relaxed), 100);
}

#[test]
fn file_io_from_pool_closures() {
    let dir = std::env::temp_dir().join(format!("monad-async-pool-ctx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pool = io_pool(2);
    let handles: Vec<_> = (0..32u8)
        .map(|i| {
            let path = dir.join(format!("f{i}"));
            pool.spawn(Priority::ALL[usize::from(i) % 3], move |cx| {
                let data = vec![i; 4096 + usize::from(i)];
                let f = File::create(cx, &path)?;
                f.write_all_at(cx, &data, 0)?;
                f.sync_data(cx)?;
                let mut back = vec![0u8; data.len()];
                f.read_exact_at(cx, &mut back, 0)?;
                f.close(cx)?;
                Ok::<_, std::io::Error>(back == data)
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().unwrap());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tcp_echo_between_pool_closures() {
    let pool = io_pool(2);
    let listener = TcpListener::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    const CLIENTS: usize = 20;
    let server = pool.build_task().name("acceptor").spawn(move |cx| {
        let mut served = 0;
        while served < CLIENTS {
            let (conn, _) = listener.accept(cx)?;
            let mut buf = [0u8; 64];
            let n = conn.recv(cx, &mut buf)?;
            conn.write_all(cx, &buf[..n])?;
            served += 1;
        }
        Ok::<_, std::io::Error>(served)
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            pool.spawn(Priority::High, move |cx| {
                let s = TcpStream::connect(cx, addr)?;
                let msg = format!("hello {i}");
                s.write_all(cx, msg.as_bytes())?;
                let mut back = vec![0u8; msg.len()];
                s.read_exact(cx, &mut back)?;
                Ok::<_, std::io::Error>(back == msg.as_bytes())
            })
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap().unwrap());
    }
    assert_eq!(server.join().unwrap().unwrap(), CLIENTS);
}

#[test]
fn sync_mutex_and_mpsc_between_pool_and_executor_tasks() {
    // Executor tasks and pool closures increment one counter under a
    // `sync::Mutex` (held across a yield) and report over one channel.
    let pool = io_pool(2);
    let ex = Executor::new().unwrap();
    let counter = Arc::new(Mutex::new(0u64));
    let (tx, mut rx) = mpsc::channel::<(bool, u64)>(4);
    const EACH: u64 = 200;
    let mut pool_handles = Vec::new();
    for i in 0..4u64 {
        let (c, tx) = (Arc::clone(&counter), tx.clone());
        pool_handles.push(pool.spawn(Priority::ALL[i as usize % 3], move |cx| {
            for _ in 0..EACH {
                let mut g = c.lock()?;
                *g += 1;
                cx.yield_now()?;
                drop(g);
            }
            tx.send((true, i)).map_err(|e| e.into_inner()).unwrap();
            Ok::<_, std::io::Error>(())
        }));
    }
    let mut ex_handles = Vec::new();
    for i in 0..4u64 {
        let (c, tx) = (Arc::clone(&counter), tx.clone());
        ex_handles.push(ex.spawn(Priority::Normal, move |cx| {
            for _ in 0..EACH {
                let mut g = c.lock()?;
                *g += 1;
                cx.yield_now()?;
                drop(g);
            }
            tx.send((false, i)).map_err(|e| e.into_inner()).unwrap();
            Ok::<_, std::io::Error>(())
        }));
    }
    drop(tx);
    // The receiver is an executor task: it parks until pool closures and
    // executor tasks alike have sent.
    let collector = ex.spawn(Priority::High, move |_cx| {
        let mut got = Vec::new();
        while let Some(m) = rx.recv()? {
            got.push(m);
        }
        Ok::<_, std::io::Error>(got)
    });
    let mut got = collector.join().unwrap().unwrap();
    got.sort();
    let mut want: Vec<_> = (0..4)
        .map(|i| (false, i))
        .chain((0..4).map(|i| (true, i)))
        .collect();
    want.sort();
    assert_eq!(got, want);
    for h in pool_handles {
        h.join().unwrap().unwrap();
    }
    for h in ex_handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(*counter.try_lock().unwrap(), 8 * EACH);
}

#[test]
fn deadlines_and_block_on_in_pool_closures() {
    let pool = io_pool(1);
    let h = pool.spawn(Priority::Normal, |cx| {
        // A park bounded by a deadline.
        let timed_out = cx
            .timeout(Duration::from_millis(5), |cx| cx.park())
            .unwrap_err();
        // A future woken from another thread.
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            tx.send(7).unwrap();
        });
        let got = cx.block_on(rx)?.unwrap();
        Ok::<_, std::io::Error>((timed_out.kind(), got))
    });
    assert_eq!(
        h.join().unwrap().unwrap(),
        (std::io::ErrorKind::TimedOut, 7)
    );
}

#[test]
fn spawn_from_a_pool_closure_is_enotsup_and_the_pool_is_the_way() {
    let pool = Arc::new(io_pool(1));
    let p = Arc::clone(&pool);
    let h = pool.spawn(Priority::Normal, move |cx| {
        let err = cx.spawn(Priority::Normal, |_cx| ()).unwrap_err();
        let child = p.spawn(Priority::High, |cx| cx.priority());
        (err.raw_os_error(), child.join().unwrap())
    });
    assert_eq!(h.join().unwrap(), (Some(libc::ENOTSUP), Priority::High));
}

#[test]
fn panic_with_io_in_flight_is_reported_and_the_worker_goes_on() {
    // One worker: three closures wait in a receive (in flight in the
    // worker's ring) when a fourth, which holds their peers' sockets,
    // sends to two of them and panics. Its unwinding drops the last
    // peer; the panic is reported on join, the receives end as they
    // should (data, data, end of stream), and the worker runs I/O after.
    let pool = io_pool(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peers: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let (conn, _) = listener.accept().unwrap();
            pool.spawn(Priority::Normal, move |cx| {
                let conn = TcpStream::from(conn);
                let mut buf = [0u8; 16];
                let n = conn.recv(cx, &mut buf)?;
                Ok::<_, std::io::Error>(buf[..n].to_vec())
            })
        })
        .collect();
    let panicker = pool.spawn(Priority::Low, move |cx| -> () {
        // Low: runs once the receivers are all waiting.
        let peers: Vec<_> = peers.into_iter().map(TcpStream::from).collect();
        peers[0].write_all(cx, b"zero").unwrap();
        peers[1].write_all(cx, b"one").unwrap();
        panic!("with receives in flight");
    });
    let err = panicker.join().unwrap_err();
    assert!(err.is_panic());
    assert!(err
        .to_string()
        .ends_with("panicked: with receives in flight"));
    let got: Vec<_> = waiting
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(got, [b"zero".to_vec(), b"one".to_vec(), Vec::new()]);
    let h = pool.spawn(Priority::Low, |cx| monad_async::io::nop(cx).is_ok());
    assert!(h.join().unwrap());
}

#[test]
fn drop_with_closures_suspended_in_io_and_sleep_ends_in_bounded_time() {
    // Dropping the pool waits for the closures, so they must end: each
    // sleeps, or waits for a connection, with a deadline. Bounded: the
    // drop ends within the deadline plus scheduling slack.
    let pool = io_pool(2);
    let listener =
        Arc::new(TcpListener::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap());
    let ended = Arc::new(AtomicUsize::new(0));
    for i in 0..40 {
        let (l, e) = (Arc::clone(&listener), Arc::clone(&ended));
        pool.spawn(Priority::ALL[i % 3], move |cx| {
            let r = if i % 2 == 0 {
                cx.sleep(Duration::from_millis(50))
            } else {
                cx.timeout(Duration::from_millis(50), |cx| l.accept(cx).map(drop))
            };
            e.fetch_add(1, Ordering::Relaxed);
            r
        });
    }
    std::thread::sleep(Duration::from_millis(5));
    let start = Instant::now();
    drop(pool);
    let took = start.elapsed();
    assert_eq!(ended.load(Ordering::Relaxed), 40);
    assert!(took < Duration::from_secs(5), "drop took {took:?}");
}

#[test]
fn waker_of_a_dropped_pool_does_nothing() {
    let pool = io_pool(1);
    let h = pool.spawn(Priority::Normal, |cx| cx.waker());
    let waker = h.join().unwrap();
    assert!(!waker.wake()); // the work is over
    drop(pool);
    assert!(!waker.wake()); // and the pool is gone
    assert!(!waker.set_priority(Priority::High));
}

#[test]
fn shutdown_timeout_cancels_closures_suspended_for_good() {
    // Closures waiting with no deadline (a connection that never comes, an
    // hour's sleep, a park nobody ends, a lock held by one of them) and
    // more queued behind them: with a shutdown timeout the drop ends
    // soon after it, and every handle reports Cancelled; the queued ones
    // never ran.
    let pool = ThreadPool::builder()
        .threads(2)
        .switcher(Switcher::Asm)
        .ring_entries(64)
        .shutdown_timeout(Duration::from_millis(20))
        .build()
        .unwrap();
    let listener =
        Arc::new(TcpListener::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap());
    let lock = Arc::new(Mutex::new(()));
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..200 {
        let (l, m, s) = (
            Arc::clone(&listener),
            Arc::clone(&lock),
            Arc::clone(&started),
        );
        handles.push(pool.spawn(Priority::ALL[i % 3], move |cx| {
            s.fetch_add(1, Ordering::SeqCst);
            match i % 4 {
                0 => l.accept(cx).map(drop),
                1 => cx.sleep(Duration::from_secs(3600)),
                2 => loop {
                    // Ignores ECANCELED: unwound after 64 of them.
                    let _ = cx.park();
                },
                _ => {
                    let _g = m.lock()?;
                    cx.sleep(Duration::from_secs(3600))
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(5));
    let start = Instant::now();
    drop(pool);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "drop took {took:?}");
    for h in handles {
        assert!(h.join().unwrap_err().is_cancelled());
    }
    eprintln!(
        "drop took {took:?}; {} of 200 closures had started",
        started.load(Ordering::SeqCst)
    );
}

#[test]
fn shutdown_timeout_skips_work_still_queued() {
    // Both workers busy (not suspending) past the timeout: what is queued
    // behind them never starts, and joins as cancelled; the busy closures
    // finish normally.
    let pool = ThreadPool::builder()
        .threads(2)
        .switcher(Switcher::Asm)
        .shutdown_timeout(Duration::from_millis(10))
        .build()
        .unwrap();
    let busy: Vec<_> = (0..2)
        .map(|_| {
            pool.spawn(Priority::High, |_cx| {
                std::thread::sleep(Duration::from_millis(100));
                "done"
            })
        })
        .collect();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..100)
        .map(|i| {
            let r = Arc::clone(&ran);
            pool.spawn(Priority::ALL[1 + i % 2], move |_cx| {
                r.fetch_add(1, Ordering::SeqCst)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    drop(pool);
    for h in busy {
        assert_eq!(h.join().unwrap(), "done");
    }
    for h in queued {
        assert!(h.join().unwrap_err().is_cancelled());
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}
