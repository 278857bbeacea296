//! I/O through the executor's io_uring, from inside a task.
//!
//! Every call here suspends the calling task (never the thread) until the
//! kernel has finished the operation, then returns its outcome. That is
//! what makes plain `&[u8]` / `&mut [u8]` buffers safe: the task does not
//! resume, so the borrow does not end, before the kernel is done with the
//! buffer, even when the task is cancelled (the operation then ends early
//! with `ECANCELED`, or with its real outcome if it had already finished).
//!
//! Beyond one operation at a time: [`File::read_many_at`] puts a batch of
//! reads in flight at once, and a [`BufferPool`] of buffers registered
//! with the ring serves [`File::read_fixed_at`] / [`File::write_fixed_at`].
//! Receives can leave the choice of buffer to the kernel: with a
//! [`BufferRing`], waiting receives hold no memory
//! ([`TcpStream::recv_provided`], [`UdpSocket::recv_provided`]).
//! A task's I/O priority ([`TaskContext::set_io_priority`]) orders its
//! operations when the executor's in-flight guard is reached.
//!
//! What an operation in flight costs: a 16-byte slot of the executor and
//! the kernel's request (a few hundred bytes), besides its buffer. The
//! ring's queues bound nothing in flight (a full submission queue is
//! handed to the kernel and refilled), so a task waiting in a receive
//! never keeps another from starting its operations; the only bound is
//! the in-flight guard
//! ([`ExecutorBuilder::io_inflight_limit`](crate::ExecutorBuilder::io_inflight_limit),
//! 262,144 by default), of which waiting receives, accepts and connects
//! leave an eighth to sends, writes, reads and sleeps.
//!
//! # std I/O, buffering and splitting
//!
//! A stream's `io(cx)` ([`TcpStream::io`]) is an [`Io`] adapter: std
//! `Read` and `Write` on the ring, for `read_to_end`, `write_all`,
//! `write!` or a `BufWriter`. A [`BufStream`] owns a read buffer that
//! outlives each call and gives std `BufRead` (`read_line`, `lines`,
//! `read_until`): the read side of a connection answering request after
//! request, buffer kept across requests and timeouts. Both work on any
//! [`RingRead`]/[`RingWrite`] type. [`TcpStream::into_split`] gives
//! owned halves for a reader and a writer in different tasks, executors
//! or threads.
//!
//! A server with an idle timeout (a [deadline](crate::TaskContext::timeout)
//! around each wait for a request) and a shutdown command:
//!
//! ```
//! use monad_async::io::{BufStream, TcpListener, TcpStream};
//! use monad_async::sync::Notify;
//! use monad_async::{Executor, Priority};
//! use std::io::{BufRead, ErrorKind, Write};
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! let ex = Executor::new()?;
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let stop = Rc::new(Notify::new());
//! let s = stop.clone();
//! let acceptor = ex.spawn(Priority::High, move |cx| -> std::io::Result<()> {
//!     loop {
//!         let (conn, _) = listener.accept(cx)?;
//!         let stop = s.clone();
//!         cx.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
//!             let mut conn = BufStream::new(conn);
//!             let mut line = String::new();
//!             loop {
//!                 line.clear();
//!                 let idle = Duration::from_secs(5);
//!                 match cx.timeout(idle, |cx| conn.io(cx).read_line(&mut line)) {
//!                     Ok(0) => return Ok(()), // the client hung up
//!                     Ok(_) => {}
//!                     Err(e) if e.kind() == ErrorKind::TimedOut => return Ok(()), // idle
//!                     Err(e) => return Err(e),
//!                 }
//!                 if line.trim_end() == "STOP" {
//!                     stop.notify_one();
//!                     return conn.io(cx).write_all(b"stopping\n");
//!                 }
//!                 writeln!(conn.io(cx), "{} bytes", line.trim_end().len())?;
//!             }
//!         })?;
//!     }
//! });
//! // The shutdown: once told, stop accepting.
//! ex.spawn(Priority::High, move |_cx| -> std::io::Result<()> {
//!     stop.notified()?;
//!     acceptor.cancel().map(drop)
//! });
//! let client = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<String>> {
//!     let mut s = BufStream::new(TcpStream::connect(cx, addr)?);
//!     s.io(cx).write_all(b"hello\nworld!\nSTOP\n")?;
//!     s.io(cx).lines().collect()
//! });
//! assert_eq!(client.join().unwrap()?, ["5 bytes", "6 bytes", "stopping"]);
//! ex.run_until_idle()?; // returns: the accept loop is over
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The executor must have a ring ([`ExecutorBuilder::ring_entries`] > 0,
//! the default); otherwise these calls fail with `ENOTSUP`, as they do on
//! [`Switcher::None`](crate::Switcher::None).
//!
//! ```
//! use monad_async::{Executor, Priority};
//! use std::time::Duration;
//!
//! let ex = Executor::new()?;
//! let h = ex.spawn(Priority::Normal, |cx| {
//!     monad_async::io::nop(cx)?;
//!     cx.sleep(Duration::from_millis(1)) // an io_uring timeout
//! });
//! h.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`ExecutorBuilder::ring_entries`]: crate::ExecutorBuilder::ring_entries

mod accept_multi;
mod adapter;
mod buffer;
mod buffer_ring;
mod file;
mod net;
mod registered;
mod socket;
mod split;
mod unix;

pub use accept_multi::{Incoming, INCOMING_CAPACITY};
pub use adapter::{retry, BufIo, BufStream, Io, RingRead, RingWrite};
pub use buffer::{Buffer, BufferPool};
pub use buffer_ring::{BufferRing, ProvidedBuffer};
pub use file::File;
pub use net::{TcpListener, TcpStream, UdpSocket};
pub use socket::{getsockopt, setsockopt, SockOptValue, TcpListenerBuilder};
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
pub use unix::{UnixDatagram, UnixListener, UnixStream};

use crate::sys;
use crate::task::TaskContext;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

/// A no-op through the kernel: the cheapest suspend and resume via the
/// ring.
///
/// # Errors
///
/// `ECANCELED` once the task is cancelled; `ENOTSUP` without a ring.
#[inline]
pub fn nop(cx: &mut TaskContext<'_>) -> io::Result<()> {
    // SAFETY: the task is the one running on this thread (cx exists only
    // inside its closure).
    cx.check(unsafe { sys::monad_async_io_nop(cx.raw_task(), ptr::null_mut()) })
        .map(drop)
}

/// Suspends until `fd` is ready for the poll(2) `events` (`libc::POLLIN`,
/// `libc::POLLOUT`, ...) and returns the events that are ready (which may
/// also include `POLLERR` or `POLLHUP`). A one-shot poll through the ring:
/// the way to wait for any file descriptor the other calls here do not
/// cover (an eventfd, a pipe, a socket owned by another library).
///
/// ```
/// use monad_async::{Executor, Priority};
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
///
/// let ex = Executor::new()?;
/// let (a, mut b) = UnixStream::pair()?;
/// let waiter = ex.spawn(Priority::Normal, move |cx| {
///     monad_async::io::poll(cx, a.as_fd(), libc::POLLIN)
/// });
/// ex.run(1, Some(std::time::Duration::ZERO))?; // now waiting
/// b.write_all(b"!")?;
/// ex.run_until_idle()?;
/// assert!(waiter.join().unwrap()? & libc::POLLIN != 0);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `ECANCELED` once the task is cancelled (the poll is cancelled and
/// waited for); `ENOTSUP` without a ring; the kernel's.
#[inline]
pub fn poll(cx: &mut TaskContext<'_>, fd: BorrowedFd<'_>, events: i16) -> io::Result<i16> {
    // poll(2) events are 16 bits; the C call takes them widened.
    let wanted = u32::from(events as u16);
    // SAFETY: the running task; `fd` is borrowed, so it stays open until
    // the call returns, which is after the kernel has finished the poll.
    let r =
        unsafe { sys::monad_async_io_poll(cx.raw_task(), ptr::null_mut(), fd.as_raw_fd(), wanted) };
    // The ready events fit poll(2)'s 16 bits.
    cx.check(r).map(|v| v as u16 as i16)
}

/// Converts a byte count the kernel returned.
#[inline]
pub(crate) fn to_usize(v: isize) -> usize {
    usize::try_from(v).unwrap_or(0)
}

/// Converts an fd the kernel returned.
#[inline]
pub(crate) fn to_fd(v: isize) -> io::Result<libc::c_int> {
    libc::c_int::try_from(v).map_err(|_| crate::error::errno(libc::EBADF))
}
