//! SIGINT and SIGTERM as a readable pipe, so that a task can wait for
//! them through the ring ([`wait`]) instead of a thread blocking in
//! `sigwait`. The handler only writes one byte (async-signal-safe).

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe's write end, for the handler (-1: none).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_sig: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe (EAGAIN)
        // already holds a wake-up.
        let _ = unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Installs the handlers; returns the pipe's read end.
pub fn install() -> io::Result<OwnedFd> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: a valid array of two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just made both; the write end lives as long as the
    // process (the handler may run at any time), so it is never closed.
    let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    WRITE_FD.store(fds[1], Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler of the right type.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(read)
}

/// Waits (parking the task: a ring poll) until a signal has arrived.
pub fn wait(cx: &mut monad_async::TaskContext<'_>, read: &OwnedFd) -> io::Result<()> {
    monad_async::io::poll(cx, read.as_fd(), libc::POLLIN).map(drop)
}
