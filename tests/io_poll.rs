//! Readiness of any file descriptor through the ring (`io::poll`): a
//! waiting task wakes when its fd becomes readable, many waiters on many
//! fds each wake for their own, writability and hang-up are reported, a
//! regular file is ready at once, and a cancelled wait leaves no operation
//! behind.

use monad_async::{io, Executor, Priority};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

#[test]
fn many_waiters_each_wake_for_their_own_fd() -> std::io::Result<()> {
    const PAIRS: usize = 50;
    let ex = Executor::new()?;
    let mut writers = Vec::new();
    let mut waiters = Vec::new();
    for i in 0..PAIRS {
        let (a, b) = UnixStream::pair()?;
        writers.push(b);
        waiters.push(ex.spawn(
            Priority::Normal,
            move |cx| -> std::io::Result<(usize, u8)> {
                let ready = io::poll(cx, a.as_fd(), libc::POLLIN)?;
                assert_ne!(ready & libc::POLLIN, 0, "waiter {i}");
                let mut byte = [0u8; 1];
                (&a).read_exact(&mut byte)?;
                Ok((i, byte[0]))
            },
        ));
    }
    // Every waiter is now in the kernel; nobody can be ready yet.
    ex.run(usize::MAX, Some(Duration::ZERO))?;
    assert_eq!(ex.stats().io.in_flight, PAIRS as u64);
    assert!(waiters.iter().all(|h| !h.is_finished()));
    // Wake them in reverse order, one at a time.
    for (i, w) in writers.iter_mut().enumerate().rev() {
        w.write_all(&[i as u8])?;
        ex.run(usize::MAX, Some(Duration::from_secs(5)))?;
    }
    ex.run_until_idle()?;
    for (i, h) in waiters.into_iter().enumerate() {
        assert_eq!(h.join().unwrap()?, (i, i as u8));
    }
    let io = ex.stats().io;
    assert_eq!((io.in_flight, io.submitted), (0, io.completed));
    Ok(())
}

#[test]
fn writable_at_once_and_hang_up_reported() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (a, b) = UnixStream::pair()?;
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<(i16, i16)> {
        let out = io::poll(cx, a.as_fd(), libc::POLLOUT)?;
        drop(b); // the peer goes away
        let hup = io::poll(cx, a.as_fd(), libc::POLLIN)?;
        Ok((out, hup))
    });
    let (out, hup) = h.join().unwrap()?;
    assert_ne!(out & libc::POLLOUT, 0);
    // A closed peer makes the socket readable (EOF) and hung up.
    assert_ne!(hup & (libc::POLLIN | libc::POLLHUP), 0);
    Ok(())
}

#[test]
fn cancelled_wait_ends_and_leaves_nothing_in_flight() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (a, _b) = UnixStream::pair()?;
    let h = ex.spawn(Priority::Normal, move |cx| {
        io::poll(cx, a.as_fd(), libc::POLLIN)
    });
    ex.run(1, Some(Duration::ZERO))?;
    assert_eq!(ex.stats().io.in_flight, 1);
    assert!(ex.cancel(&h)?);
    ex.run_until_idle()?;
    assert!(h.join().unwrap_err().is_cancelled());
    let io = ex.stats().io;
    assert_eq!(io.in_flight, 0);
    assert_eq!(io.submitted, io.completed);
    Ok(())
}

#[test]
fn a_regular_file_is_ready_at_once() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| {
        // Regular files are always ready for poll(2).
        let file = std::fs::File::open("/proc/self/stat")?;
        io::poll(cx, file.as_fd(), libc::POLLIN | libc::POLLOUT)
    });
    let ready = h.join().unwrap()?;
    assert_ne!(ready & libc::POLLIN, 0);
    Ok(())
}
