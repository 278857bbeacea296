//! `JoinHandle::cancel`: a task blocked in a TCP receive or a sleep,
//! cancelled from the executor's thread and from another thread, reports
//! Cancelled without waiting out its operation; a stale handle's cancel is
//! a no-op returning false and leaves later work on the same pooled task
//! alone; no operation is leaked.

use monad_async::io::{TcpListener, TcpStream};
use monad_async::{Executor, JoinHandle, Priority};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A task blocked in `recv` on a connected loopback stream whose peer
/// never writes, plus the listener task holding the peer open.
fn blocked_in_recv(ex: &Executor) -> io::Result<(JoinHandle<io::Result<usize>>, Arc<AtomicBool>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let (peer, _) = listener.accept(cx)?;
        while !r.load(Ordering::SeqCst) {
            cx.sleep(Duration::from_millis(1))?;
        }
        peer.close(cx)
    });
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<usize> {
        let s = TcpStream::connect(cx, addr)?;
        let mut buf = [0u8; 64];
        s.recv(cx, &mut buf)
    });
    settle(ex)?;
    assert!(!h.is_finished());
    Ok((h, release))
}

/// Runs the executor a little: connect, accept, then the receive blocks.
fn settle(ex: &Executor) -> io::Result<()> {
    for _ in 0..10 {
        match ex.run(64, Some(Duration::from_millis(2))) {
            Err(e) if e.raw_os_error() != Some(libc::ETIME) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn sleeper(ex: &Executor) -> io::Result<JoinHandle<io::Result<()>>> {
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_secs(60)));
    settle(ex)?;
    assert!(!h.is_finished());
    Ok(h)
}

/// Cancels `h` from another thread while this (the executor's) thread
/// runs the executor until idle.
fn cancel_from_thread<T: Send + 'static>(ex: &Executor, h: &JoinHandle<T>) -> io::Result<bool> {
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(10));
            h.cancel()
        });
        ex.run_until_idle()?;
        t.join().unwrap()
    })
}

/// Cancels `h` from a fresh thread, with nothing else going on.
fn cancel_on_another_thread<T: 'static>(h: &JoinHandle<T>) -> io::Result<bool> {
    std::thread::scope(|s| s.spawn(move || h.cancel()).join().unwrap())
}

fn check_no_leak(ex: &Executor) {
    let s = ex.stats();
    assert_eq!(s.tasks_attached, 0);
    assert_eq!(s.io.submitted, s.io.completed, "{:?}", s.io);
    assert_eq!(s.io.in_flight, 0);
}

/// `h`'s work ended cancelled, less than 5 s after `t0` (not by waiting
/// out its operation), and `ex` leaked nothing.
fn assert_cancelled_promptly<T: std::fmt::Debug + 'static>(
    ex: &Executor,
    h: JoinHandle<T>,
    t0: Instant,
) {
    assert!(h.join().unwrap_err().is_cancelled());
    assert!(t0.elapsed() < Duration::from_secs(5));
    check_no_leak(ex);
}

#[test]
fn cancel_recv_from_owner_thread() -> io::Result<()> {
    let ex = Executor::new()?;
    let (h, release) = blocked_in_recv(&ex)?;
    let t0 = Instant::now();
    assert!(h.cancel()?);
    // Ended before the peer closes: only the cancel can have ended it.
    assert!(h.join().unwrap_err().is_cancelled());
    assert!(t0.elapsed() < Duration::from_secs(5));
    release.store(true, Ordering::SeqCst);
    ex.run_until_idle()?;
    check_no_leak(&ex);
    Ok(())
}

#[test]
fn cancel_recv_from_another_thread() -> io::Result<()> {
    let ex = Executor::new()?;
    let (h, release) = blocked_in_recv(&ex)?;
    let t0 = Instant::now();
    let requested = std::thread::scope(|s| {
        let t = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(10));
            let r = h.cancel();
            // The peer stays open until the receive has ended, so only
            // the cancel can have ended it.
            while !h.is_finished() {
                std::thread::sleep(Duration::from_millis(1));
            }
            release.store(true, Ordering::SeqCst);
            r
        });
        ex.run_until_idle()?;
        t.join().unwrap()
    })?;
    assert!(requested);
    assert_cancelled_promptly(&ex, h, t0);
    Ok(())
}

#[test]
fn cancel_sleep_from_owner_thread() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = sleeper(&ex)?;
    let t0 = Instant::now();
    assert!(h.cancel()?);
    // A second request for the same work is harmless.
    let _ = h.cancel()?;
    assert_cancelled_promptly(&ex, h, t0);
    Ok(())
}

#[test]
fn cancel_sleep_from_another_thread() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = sleeper(&ex)?;
    let t0 = Instant::now();
    assert!(cancel_from_thread(&ex, &h)?);
    assert!(h.is_finished());
    assert_cancelled_promptly(&ex, h, t0);
    Ok(())
}

#[test]
fn cancel_pending_from_another_thread_never_runs() -> io::Result<()> {
    let ex = Executor::new()?;
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let h = ex.spawn(Priority::Low, move |_cx| r.store(true, Ordering::SeqCst));
    assert!(cancel_on_another_thread(&h)?);
    ex.run_until_idle()?;
    assert!(h.join().unwrap_err().is_cancelled());
    assert!(!ran.load(Ordering::SeqCst));
    Ok(())
}

/// A finished task's handle, kept while later work reuses its pooled
/// task: cancelling it from either thread is a no-op returning false, and
/// the later work runs to its end.
#[test]
fn stale_handle_cancel_is_a_no_op() -> io::Result<()> {
    let ex = Executor::new()?;
    let old = ex.spawn(Priority::Normal, |_cx| 1u32);
    ex.run_until_idle()?;
    assert!(old.is_finished());
    // Reuses the same C task (with a fresh slot: `old` still holds its own).
    let later = ex.spawn(Priority::Normal, |cx| -> io::Result<u32> {
        cx.sleep(Duration::from_millis(30))?;
        Ok(2)
    });
    settle(&ex)?;
    assert_eq!(ex.stats().tasks_created, 1, "the task was reused");
    assert!(!old.cancel()?);
    assert!(!cancel_on_another_thread(&old)?);
    ex.run_until_idle()?;
    assert_eq!(later.join().unwrap()?, 2);
    assert_eq!(old.join().unwrap(), 1);

    // Same across threads: a remotely spawned task, its handle kept.
    let handle = ex.handle();
    let old = std::thread::spawn(move || handle.spawn(Priority::Normal, |_cx| 3u32))
        .join()
        .unwrap()?;
    ex.run_until_idle()?;
    let handle = ex.handle();
    let later = std::thread::spawn(move || {
        handle.spawn(Priority::Normal, |cx| -> io::Result<u32> {
            cx.sleep(Duration::from_millis(30))?;
            Ok(4)
        })
    })
    .join()
    .unwrap()?;
    settle(&ex)?;
    assert!(!cancel_on_another_thread(&old)?);
    ex.run_until_idle()?;
    assert_eq!(later.join().unwrap()?, 4);
    assert_eq!(old.join().unwrap(), 3);
    Ok(())
}

/// Stress for the generation guard: every other task's handle goes to a
/// thread that cancels it while the executor keeps finishing tasks and
/// reusing their C tasks for new spawns. Late requests must never cancel
/// the tasks whose handles stayed here.
#[test]
fn remote_cancels_never_hit_later_work() -> io::Result<()> {
    use std::sync::mpsc;
    let ex = Executor::new()?;
    let (tx, rx) = mpsc::channel::<JoinHandle<io::Result<u32>>>();
    let (back_tx, back_rx) = mpsc::channel();
    let canceller = std::thread::spawn(move || {
        for h in rx {
            let requested = h.cancel().unwrap();
            back_tx.send((h, requested)).unwrap();
        }
    });
    let mut kept = Vec::new();
    for i in 0..6000u32 {
        let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<u32> {
            for _ in 0..=i % 7 * 4 {
                cx.yield_now()?;
            }
            Ok(i)
        });
        if i % 2 == 0 {
            tx.send(h).unwrap();
        } else {
            kept.push((i, h));
        }
        if i % 64 == 0 {
            std::thread::sleep(Duration::from_micros(200)); // let requests land
        }
        match ex.run(8, Some(Duration::ZERO)) {
            Err(e) if e.raw_os_error() != Some(libc::ETIME) => return Err(e),
            _ => {}
        }
    }
    drop(tx);
    ex.run_until_idle()?;
    canceller.join().unwrap();
    ex.run_until_idle()?; // the last requests
    for (i, h) in kept {
        assert_eq!(
            h.join().unwrap()?,
            i,
            "task {i} was cancelled by a stale request"
        );
    }
    let mut cancelled = 0;
    for (h, requested) in back_rx {
        match h.join() {
            Ok(v) => assert!(v.is_ok()),
            Err(e) => {
                assert!(e.is_cancelled() && requested);
                cancelled += 1;
            }
        }
    }
    assert!(ex.stats().tasks_created < 6000);
    eprintln!("{cancelled} of 3000 targeted tasks were cancelled");
    Ok(())
}
