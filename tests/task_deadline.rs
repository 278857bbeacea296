//! Deadlines: `TaskContext::timeout`/`timeout_at` around every kind of
//! wait (sleep, park, TCP receive, pipe read, batch read, join, yield),
//! nested and restored deadlines, `JoinHandle::join_timeout` from a task,
//! another thread and the executor's own thread, a thousand connections
//! where the idle ones time out while the active ones keep being served,
//! and a High task's deadline kept beside CPU-bound Low work.

use monad_async::error::ErrorExt;
use monad_async::io::{File, TcpListener, TcpStream};
use monad_async::{Executor, JoinHandle, Priority};
use std::cell::Cell;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the descriptors pipe2 just returned, each owned once.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn assert_timed_out<T: std::fmt::Debug>(r: io::Result<T>) {
    let e = r.expect_err("expected a timeout");
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT));
    assert!(e.is_timed_out());
}

#[test]
fn sleep_times_out_then_sleeps_normally() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| -> io::Result<Duration> {
        let start = Instant::now();
        assert_timed_out(cx.timeout(Duration::from_millis(5), |cx| {
            cx.sleep(Duration::from_secs(60))
        }));
        let took = start.elapsed();
        // Not sticky: the task goes on, and its waits are normal.
        cx.sleep(Duration::from_millis(2))?;
        cx.yield_now()?;
        Ok(took)
    });
    let took = h.join().unwrap()?;
    assert!(took >= Duration::from_millis(5), "early: {took:?}");
    assert!(took < Duration::from_secs(5), "late: {took:?}");
    Ok(())
}

#[test]
fn park_times_out_and_own_timeouts_still_say_false() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| -> io::Result<()> {
        assert_timed_out(cx.timeout(Duration::from_millis(3), |cx| cx.park()));
        // An own, earlier timeout inside a deadline: Ok(false) as ever.
        let woke = cx.timeout(Duration::from_secs(60), |cx| {
            cx.park_timeout(Duration::from_millis(1))
        })?;
        assert!(!woke);
        // A later own timeout: the deadline ends it.
        assert_timed_out(cx.timeout(Duration::from_millis(2), |cx| {
            cx.park_timeout(Duration::from_secs(60))
        }));
        // Woken from another thread before the deadline: not a timeout.
        let w = cx.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            w.wake();
        });
        cx.timeout(Duration::from_secs(60), |cx| cx.park())?;
        t.join().unwrap();
        Ok(())
    });
    h.join().unwrap()
}

#[test]
fn already_past_deadline_fails_at_once_without_suspending() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| -> io::Result<()> {
        let before = cx.stats().suspensions;
        cx.timeout(Duration::ZERO, |cx| {
            // The padding (a microsecond) is over before the first wait.
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_micros(50) {}
            assert_timed_out(cx.yield_now());
            assert_timed_out(cx.sleep(Duration::from_millis(1)));
            assert_timed_out(cx.park());
            assert_timed_out(monad_async::io::nop(cx));
        });
        assert_eq!(cx.stats().suspensions, before);
        cx.yield_now()?;
        assert_eq!(cx.stats().suspensions, before + 1);
        Ok(())
    });
    h.join().unwrap()
}

#[test]
fn tcp_recv_on_idle_connection_times_out_then_send_works() -> io::Result<()> {
    let ex = Executor::new()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = std::thread::spawn(move || -> io::Result<Vec<u8>> {
        let mut s = std::net::TcpStream::connect(addr)?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?; // the server closes after its reply
        Ok(got)
    });
    let server = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let (s, _) = listener.accept(cx)?;
        let mut buf = [0u8; 64]; // on the task's stack, lent to the kernel
        let start = Instant::now();
        assert_timed_out(cx.timeout(Duration::from_millis(20), |cx| s.recv(cx, &mut buf)));
        assert!(start.elapsed() >= Duration::from_millis(20));
        s.write_all(cx, b"ERR timeout")?;
        s.close(cx)
    });
    server.join().unwrap()?;
    assert_eq!(client.join().unwrap()?, b"ERR timeout");
    Ok(())
}

#[test]
fn pipe_read_times_out_and_loses_no_data() -> io::Result<()> {
    let (rd, wr) = pipe();
    let mut wr = std::fs::File::from(wr);
    let ex = Executor::new()?;
    let timed_out = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = timed_out.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<Vec<u8>> {
        let f = File::from(rd);
        let mut buf = [0u8; 16];
        assert_timed_out(cx.timeout(Duration::from_millis(5), |cx| f.read_at(cx, &mut buf, 0)));
        // A batch: every read still in flight ends, none is left behind.
        let mut bufs = [[0u8; 4]; 3];
        let mut reads: Vec<(u64, &mut [u8])> = bufs.iter_mut().map(|b| (0, &mut b[..])).collect();
        let out = cx.timeout(Duration::from_millis(5), |cx| {
            f.read_many_at(cx, &mut reads)
        });
        for r in out {
            assert_timed_out(r);
        }
        // Written after the timeouts: the next read gets all of it.
        done.store(true, std::sync::atomic::Ordering::Release);
        let n = cx.timeout(Duration::from_secs(60), |cx| f.read_at(cx, &mut buf, 0))?;
        Ok(buf[..n].to_vec())
    });
    let writer = std::thread::spawn(move || {
        while !timed_out.load(std::sync::atomic::Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        wr.write_all(b"after").unwrap();
        wr
    });
    ex.run_until_idle()?;
    let _wr = writer.join().unwrap();
    assert_eq!(h.join().unwrap()?, b"after");
    Ok(())
}

#[test]
fn nested_deadlines_earliest_wins_and_outer_is_restored() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| -> io::Result<()> {
        let start = Instant::now();
        let r = cx.timeout(Duration::from_millis(100), |cx| {
            // Inner, earlier: it ends the park.
            assert_timed_out(cx.timeout(Duration::from_millis(4), |cx| cx.park()));
            let inner = start.elapsed();
            assert!(inner < Duration::from_millis(100), "{inner:?}");
            // Inner, later: the outer still bounds it.
            cx.timeout(Duration::from_secs(60), |cx| {
                cx.sleep(Duration::from_secs(60))
            })
        });
        assert_timed_out(r);
        assert!(start.elapsed() >= Duration::from_millis(100));
        // Restored after an unwinding closure too.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cx.timeout(Duration::from_millis(1), |_cx| -> () { panic!("inside") })
        }));
        assert!(caught.is_err());
        std::thread::sleep(Duration::from_millis(2)); // past that deadline
        assert!(!cx.park_timeout(Duration::from_millis(1))?);
        cx.sleep(Duration::from_millis(1))
    });
    h.join().unwrap()
}

#[test]
fn cancellation_wins_over_a_deadline() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| {
        let e = cx
            .timeout(Duration::from_secs(60), |cx| cx.park())
            .unwrap_err();
        assert!(e.is_cancelled());
        let again = cx.timeout(Duration::ZERO, |cx| cx.yield_now()).unwrap_err();
        assert!(again.is_cancelled(), "{again}");
    });
    let _ = ex.run(4, Some(Duration::from_millis(2)));
    assert!(h.cancel()?);
    assert!(h.join().unwrap_err().is_cancelled());
    Ok(())
}

#[test]
fn join_timeout_inside_a_task_hands_the_handle_back() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| -> io::Result<u32> {
        let child = cx.spawn(Priority::Normal, |cx| {
            cx.sleep(Duration::from_millis(300))?;
            Ok::<_, io::Error>(5)
        })?;
        let start = Instant::now();
        let child = child.join_timeout(Duration::from_millis(2)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(2));
        assert!(!child.is_finished());
        // Under a task deadline as well: the handle comes back.
        let child = cx
            .timeout(Duration::from_millis(2), |_cx| {
                child.join_timeout(Duration::from_secs(60))
            })
            .unwrap_err();
        // A plain join under a deadline: a timed-out JoinError.
        let other = cx.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(300)))?;
        let e = cx
            .timeout(Duration::from_millis(1), |_cx| other.join())
            .unwrap_err();
        assert!(e.is_timed_out());
        assert_eq!(io::Error::from(e).kind(), ErrorKind::TimedOut);
        let v = child
            .join_timeout(Duration::from_secs(60))
            .ok()
            .unwrap()
            .unwrap()?;
        // Finished: a zero timeout returns the result.
        let quick = cx.spawn(Priority::High, |_cx| 1)?;
        cx.yield_now()?;
        Ok(v + quick.join_timeout(Duration::ZERO).ok().unwrap().unwrap())
    });
    assert_eq!(h.join().unwrap()?, 6);
    Ok(())
}

#[test]
fn join_timeout_on_the_executors_thread_and_from_another() -> io::Result<()> {
    let ex = Executor::new()?;
    // On the executor's thread: runs it until the deadline.
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(300)));
    let start = Instant::now();
    let h = h.join_timeout(Duration::from_millis(3)).unwrap_err();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(3) && waited < Duration::from_millis(300),
        "{waited:?}"
    );
    h.join_timeout(Duration::from_secs(60))
        .ok()
        .unwrap()
        .unwrap()?;

    // From another thread while this one runs the executor.
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.sleep(Duration::from_millis(300))?;
        Ok::<_, io::Error>("late")
    });
    let t = std::thread::spawn(move || -> JoinHandle<io::Result<&'static str>> {
        let start = Instant::now();
        let h = h.join_timeout(Duration::from_millis(5)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(5));
        h
    });
    let h = t.join().unwrap();
    let t = std::thread::spawn(move || h.join_timeout(Duration::from_secs(60)).ok().unwrap());
    ex.run_until_idle()?;
    assert_eq!(t.join().unwrap().unwrap()?, "late");
    Ok(())
}

/// Raises RLIMIT_NOFILE's soft limit towards `want`; returns what it is.
fn raise_nofile(want: u64) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    if rl.rlim_cur < want {
        rl.rlim_cur = want.min(rl.rlim_max);
        // SAFETY: a valid rlimit; the soft limit stays within the hard one.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
    }
    rl.rlim_cur
}

/// 1,000 connections to one executor: each server task waits for a
/// request with an idle timeout. The idle clients get "ERR timeout" and a
/// close; the few active ones keep sending, for longer than the idle
/// timeout, and are answered every time.
#[test]
fn thousand_connections_idle_ones_time_out_active_ones_served() -> io::Result<()> {
    const WANT: usize = 1000;
    const ACTIVE: usize = 10;
    // The active ones live 1.5 s, longer than the idle timeout, so the
    // timeout must restart with each request; 1 s leaves room for a
    // loaded machine to set up the thousand connections.
    const MESSAGES: usize = 30;
    const GAP: Duration = Duration::from_millis(50);
    const IDLE_TIMEOUT: Duration = Duration::from_secs(1);
    let limit = raise_nofile(2 * WANT as u64 + 64);
    let conns = WANT.min((limit as usize).saturating_sub(64) / 2);
    assert!(
        conns >= 100,
        "RLIMIT_NOFILE {limit} is too low for this test"
    );
    if conns < WANT {
        eprintln!("note: RLIMIT_NOFILE {limit}: {conns} connections, not {WANT}");
    }
    let ex = Executor::new()?;
    // std listens with a backlog of 128: every client connects at once.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    // SAFETY: a listening socket of ours; listen again only sets the
    // backlog (the kernel caps it at net.core.somaxconn).
    assert_eq!(unsafe { libc::listen(std_listener.as_raw_fd(), 4096) }, 0);
    let listener = TcpListener::from(std_listener);
    let addr = listener.local_addr()?;
    let timed_out = Rc::new(Cell::new(0usize));
    let served = Rc::new(Cell::new(0usize));
    let (to, sv) = (timed_out.clone(), served.clone());
    let acceptor = ex.spawn(Priority::High, move |cx| -> io::Result<()> {
        for _ in 0..conns {
            let (s, _) = listener.accept(cx)?;
            let (to, sv) = (to.clone(), sv.clone());
            cx.spawn(Priority::Normal, move |cx| -> io::Result<()> {
                let mut buf = [0u8; 64];
                loop {
                    match cx.timeout(IDLE_TIMEOUT, |cx| s.recv(cx, &mut buf)) {
                        Ok(0) => return s.close(cx),
                        Ok(n) => {
                            s.write_all(cx, &buf[..n])?;
                            sv.set(sv.get() + 1);
                        }
                        Err(e) if e.is_timed_out() => {
                            to.set(to.get() + 1);
                            s.write_all(cx, b"ERR timeout")?;
                            return s.close(cx);
                        }
                        Err(e) => return Err(e),
                    }
                }
            })?;
        }
        Ok(())
    });
    let max_rtt = Rc::new(Cell::new(Duration::ZERO));
    let clients: Vec<_> = (0..conns)
        .map(|c| {
            let max_rtt = max_rtt.clone();
            ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
                let s = TcpStream::connect(cx, addr)?;
                if c % (conns / ACTIVE) == 0 {
                    for m in 0..MESSAGES {
                        if m > 0 {
                            cx.sleep(GAP)?;
                        }
                        let msg = format!("req {c} {m}");
                        let t0 = Instant::now();
                        s.write_all(cx, msg.as_bytes())?;
                        let mut back = vec![0u8; msg.len()];
                        s.read_exact(cx, &mut back)?;
                        max_rtt.set(max_rtt.get().max(t0.elapsed()));
                        assert_eq!(back, msg.as_bytes());
                    }
                    s.shutdown(cx, std::net::Shutdown::Write)?;
                    let mut rest = [0u8; 16];
                    assert_eq!(s.recv(cx, &mut rest)?, 0);
                } else {
                    let mut got = [0u8; 16];
                    let mut n = 0;
                    loop {
                        let k = s.recv(cx, &mut got[n..])?;
                        if k == 0 {
                            break;
                        }
                        n += k;
                    }
                    assert_eq!(&got[..n], b"ERR timeout");
                }
                s.close(cx)
            })
        })
        .collect();
    let start = Instant::now();
    for c in clients {
        c.join().unwrap()?;
    }
    acceptor.join().unwrap()?;
    let took = start.elapsed();
    let active = conns.div_ceil(conns / ACTIVE);
    assert_eq!(timed_out.get(), conns - active);
    assert_eq!(served.get(), active * MESSAGES);
    assert!(took >= GAP * (MESSAGES as u32 - 1), "{took:?}");
    eprintln!(
        "{conns} connections: {} idle timed out, {} requests of {active} active ones served \
         (slowest round trip {:?}) in {took:?}",
        timed_out.get(),
        served.get(),
        max_rtt.get()
    );
    // Each active round trip is far below the idle timeout: none of them
    // was mistaken for idle (that would have failed the echo above).
    assert!(max_rtt.get() < IDLE_TIMEOUT, "{:?}", max_rtt.get());
    Ok(())
}

/// A High task's deadline passes while two Low tasks burn the CPU in 1 ms
/// slices: it is told within about a slice.
#[test]
fn high_task_deadline_kept_beside_cpu_bound_low_work() -> io::Result<()> {
    let ex = Executor::new()?;
    let stop = Rc::new(Cell::new(false));
    let lows: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            ex.spawn(Priority::Low, move |cx| -> io::Result<()> {
                while !stop.get() {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(1) {}
                    cx.yield_now()?;
                }
                Ok(())
            })
        })
        .collect();
    let st = stop.clone();
    let high = ex.spawn(Priority::High, move |cx| -> io::Result<Duration> {
        let mut worst = Duration::ZERO;
        for i in 0..20u64 {
            let d = Duration::from_millis(2 + i % 5);
            let deadline = Instant::now() + d;
            assert_timed_out(cx.timeout_at(deadline, |cx| cx.park()));
            let late = Instant::now().saturating_duration_since(deadline);
            worst = worst.max(late);
        }
        st.set(true);
        Ok(worst)
    });
    let worst = high.join().unwrap()?;
    for l in lows {
        l.join().unwrap()?;
    }
    eprintln!("High task beside 2 Low CPU tasks: latest {worst:?} after its deadline");
    // About one Low slice (1 ms); generous for a loaded machine. Without
    // the deadline firing between Low slices it would never end.
    assert!(worst < Duration::from_millis(50), "{worst:?}");
    Ok(())
}

/// Waits in the executor's queues: for a slot of the in-flight guard
/// (limit 1, held by a poll on a pipe nobody writes) and for a pooled
/// buffer. Each ends with TimedOut and leaves its queue consistent.
#[test]
fn slot_and_buffer_waits_time_out() -> io::Result<()> {
    use monad_async::io::BufferPool;
    use std::os::fd::AsFd;
    let ex = Executor::builder().io_inflight_limit(1).build()?;
    let (rd, _wr) = pipe();
    let holder = ex.spawn(Priority::Normal, move |cx| {
        monad_async::io::poll(cx, rd.as_fd(), libc::POLLIN)
    });
    let _ = ex.run(8, Some(Duration::from_millis(2)));
    assert_eq!(ex.stats().io.in_flight, 1);
    let waiter = ex.spawn(Priority::Normal, |cx| -> io::Result<()> {
        assert_timed_out(cx.timeout(Duration::from_millis(3), monad_async::io::nop));
        // Past the deadline the wait does not start; without one, the
        // holder's cancel (below) lets it through.
        assert_timed_out(cx.timeout(Duration::ZERO, |cx| {
            std::thread::sleep(Duration::from_micros(50));
            monad_async::io::nop(cx)
        }));
        Ok(())
    });
    waiter.join().unwrap()?; // runs the executor until then
    assert_eq!(ex.stats().io.submitted, 1); // the waiter never started one
    assert!(holder.cancel()?);
    assert!(holder.join().unwrap_err().is_cancelled());

    let pool = Rc::new(BufferPool::new(&ex, 4096, 1)?);
    let p = pool.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let held = p.claim(cx)?;
        assert_timed_out(cx.timeout(Duration::from_millis(3), |cx| p.claim(cx).map(drop)));
        drop(held); // to the pool, not to a waiter that left
        assert_eq!(p.free(), 1);
        let again = cx.timeout(Duration::from_secs(60), |cx| p.claim(cx))?;
        drop(again);
        Ok(())
    });
    h.join().unwrap()
}

/// A CPU-bound loop that yields is bounded too: the first yield after the
/// deadline returns TimedOut.
#[test]
fn yielding_cpu_loop_is_bounded() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Low, |cx| -> io::Result<(u64, Duration)> {
        let start = Instant::now();
        let mut rounds = 0u64;
        let r = cx.timeout(Duration::from_millis(10), |cx| loop {
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(100) {}
            rounds += 1;
            cx.yield_now()?;
        });
        assert_timed_out::<()>(r);
        Ok((rounds, start.elapsed()))
    });
    let (rounds, took) = h.join().unwrap()?;
    assert!(rounds >= 10, "{rounds}");
    assert!(
        took >= Duration::from_millis(10) && took < Duration::from_secs(5),
        "{took:?}"
    );
    Ok(())
}

/// Dropping the executor in the middle: hundreds of tasks waiting inside
/// deadlines (park, sleep, recv) are cancelled, not timed out, and the
/// drop ends at once.
#[test]
fn shutdown_in_the_middle_cancels_tasks_with_deadlines() -> io::Result<()> {
    let ex = Executor::new()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let _client = std::net::TcpStream::connect(addr)?;
    let conn = Rc::new(
        ex.spawn(Priority::High, move |cx| listener.accept(cx))
            .join()
            .unwrap()?
            .0,
    );
    let handles: Vec<_> = (0..300)
        .map(|i| {
            let conn = conn.clone();
            ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
                cx.timeout(Duration::from_secs(60), |cx| match i % 3 {
                    0 => cx.park(),
                    1 => cx.sleep(Duration::from_secs(60)),
                    _ => {
                        let mut b = [0u8; 8];
                        conn.recv(cx, &mut b).map(drop)
                    }
                })
            })
        })
        .collect();
    let _ = ex.run(1000, Some(Duration::from_millis(5)));
    assert_eq!(ex.stats().tasks_attached, 300);
    let start = Instant::now();
    drop(ex);
    assert!(start.elapsed() < Duration::from_secs(5));
    for h in handles {
        assert!(h.join().unwrap_err().is_cancelled());
    }
    Ok(())
}
