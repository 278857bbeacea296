//! Multishot accept: [`Incoming`], a listener's connections from one
//! io_uring request that posts each accepted socket as it arrives
//! ([`TcpListener::incoming`], [`UnixListener::incoming`]).
//!
//! Invariants: an `Incoming` is bound to the task context that made it
//! (it can neither leave that task nor outlive its executor) and borrows
//! its listener (the descriptor stays open while the request is armed).
//! The kernel's request is made again by the library whenever the kernel
//! ends it, and paused while [`INCOMING_CAPACITY`] accepted sockets wait untaken,
//! so the backlog, not memory, absorbs a storm that the task cannot keep
//! up with. Dropping it ends the request and closes the sockets still
//! queued. On a kernel without multishot accept (before 5.19) each call
//! is a plain accept through the ring.

use super::{to_fd, TcpListener, TcpStream, UnixListener, UnixStream};
use crate::error::errno;
use crate::sys;
use crate::task::TaskContext;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// The accepted sockets an [`Incoming`] queues before it pauses the
/// kernel's request (connections then wait in the listen backlog until
/// the queue is empty again). A listener for storms wants a backlog of
/// its own of that order.
///
/// ```
/// use monad_async::io::{TcpListener, INCOMING_CAPACITY};
/// let l = TcpListener::builder("127.0.0.1:0".parse().unwrap())
///     .backlog(INCOMING_CAPACITY as i32)
///     .bind()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub const INCOMING_CAPACITY: u32 = 1024;

/// A listener's connections through one multishot accept request: each
/// [`accept`](Incoming::accept) returns the next one, waiting if none
/// has arrived. Made by [`TcpListener::incoming`] (`S` =
/// [`TcpStream`]) or [`UnixListener::incoming`] (`S` = [`UnixStream`]).
///
/// Compared with a loop of [`TcpListener::accept`], the kernel needs no
/// new request per connection: under a storm of connections one request
/// yields them all. Accepted sockets have no peer address attached (one
/// request cannot post one per socket): ask
/// [`TcpStream::peer_addr`] when needed.
///
/// ```
/// use monad_async::io::{TcpListener, TcpStream};
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = ex.spawn(Priority::High, move |cx| -> std::io::Result<usize> {
///     let mut incoming = listener.incoming(cx)?;
///     let mut bytes = 0;
///     for _ in 0..10 {
///         let conn = incoming.accept(cx)?;
///         bytes += conn.recv(cx, &mut [0u8; 16])?;
///     }
///     Ok(bytes)
/// });
/// for _ in 0..10 {
///     ex.spawn(Priority::Normal, move |cx| TcpStream::connect(cx, addr)?.write_all(cx, b"hi"));
/// }
/// ex.run_until_idle()?;
/// assert_eq!(server.join().unwrap()?, 20);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Incoming<'a, S = TcpStream> {
    acc: NonNull<sys::monad_async_io_acceptor_head>,
    /// Bound to the listener (kept open) and to the task's context, so it
    /// cannot leave the task or outlive the executor; not Send.
    _borrows: PhantomData<&'a mut *mut ()>,
    _stream: PhantomData<fn() -> S>,
}

impl<'a, S: From<OwnedFd>> Incoming<'a, S> {
    /// `_cx` only ties the result to the task's context.
    fn new<'c: 'a>(_cx: &mut TaskContext<'c>, fd: libc::c_int) -> io::Result<Self> {
        // SAFETY: a plain query of the thread's running executor.
        let ex = unsafe { sys::monad_async_executor_current() }.value as sys::monad_async_executor;
        if ex.is_null() {
            return Err(errno(libc::EINVAL));
        }
        let mut acc: sys::monad_async_io_acceptor = std::ptr::null_mut();
        // SAFETY: `ex` is the executor running this task, on its own
        // thread; `acc` is a valid out-pointer.
        let r = unsafe {
            sys::monad_async_io_acceptor_create(
                &mut acc,
                ex,
                fd,
                libc::SOCK_CLOEXEC,
                INCOMING_CAPACITY,
            )
        };
        crate::error::check(r)?;
        let acc = NonNull::new(acc).ok_or_else(|| errno(libc::ENOMEM))?;
        Ok(Incoming {
            acc,
            _borrows: PhantomData,
            _stream: PhantomData,
        })
    }

    /// The next connection, waiting for one if none is queued. A
    /// cancellation point, bounded by [`TaskContext::timeout`].
    ///
    /// ```
    /// use monad_async::io::TcpListener;
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let mut incoming = listener.incoming(cx)?;
    ///     // Nobody connects: the deadline ends the wait.
    ///     let e = cx.timeout(Duration::from_millis(10), |cx| incoming.accept(cx)).unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    ///     Ok(())
    /// });
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ECANCELED`, `ETIMEDOUT` (a deadline); the kernel's accept error
    /// (`EMFILE`, `ENFILE`, ...), reported once, after which the request
    /// is made again; `EINVAL` in a task of another executor.
    pub fn accept(&mut self, cx: &mut TaskContext<'_>) -> io::Result<S> {
        // SAFETY: the running task; the acceptor lives until drop.
        let r = unsafe { sys::monad_async_io_acceptor_accept(cx.raw_task(), self.acc.as_ptr()) };
        let fd = to_fd(cx.check(r)?)?;
        // SAFETY: the kernel just gave us this descriptor.
        Ok(S::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Connections the kernel has accepted through it so far (taken or
    /// queued).
    ///
    /// ```
    /// # use monad_async::{io::TcpListener, Executor, Priority};
    /// # let ex = Executor::new()?;
    /// # let l = TcpListener::bind("127.0.0.1:0")?;
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     assert_eq!(l.incoming(cx)?.accepted(), 0);
    ///     Ok(())
    /// }).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accepted(&self) -> u64 {
        // SAFETY: the head is readable while the acceptor lives.
        unsafe { self.acc.as_ref().accepted }
    }

    /// The multishot requests made so far: 1 plus the times the kernel
    /// ended one (its completion queue was full, an error) or the queue
    /// reached [`INCOMING_CAPACITY`], and the request was made again.
    ///
    /// ```
    /// # use monad_async::{io::TcpListener, Executor, Priority};
    /// # let ex = Executor::new()?;
    /// # let l = TcpListener::bind("127.0.0.1:0")?;
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     assert_eq!(l.incoming(cx)?.requests(), 0); // made by the first accept
    ///     Ok(())
    /// }).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn requests(&self) -> u64 {
        // SAFETY: as above.
        unsafe { self.acc.as_ref().arms }
    }

    /// False once the kernel has refused multishot accept (before Linux
    /// 5.19): each accept is then a single accept through the ring.
    ///
    /// ```
    /// # use monad_async::{io::TcpListener, Executor, Priority};
    /// # let ex = Executor::new()?;
    /// # let l = TcpListener::bind("127.0.0.1:0")?;
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     assert!(l.incoming(cx)?.is_multishot());
    ///     Ok(())
    /// }).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_multishot(&self) -> bool {
        // SAFETY: as above.
        unsafe { self.acc.as_ref().multishot != 0 }
    }
}

impl<S> Drop for Incoming<'_, S> {
    fn drop(&mut self) {
        // SAFETY: ours, on the executor's thread (it cannot leave the task),
        // and no accept is running (that borrows self mutably).
        let r = unsafe { sys::monad_async_io_acceptor_destroy(self.acc.as_ptr()) };
        debug_assert_eq!(r.error, 0);
    }
}

impl<S> fmt::Debug for Incoming<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: the head is readable while the acceptor lives.
        let h = unsafe { self.acc.as_ref() };
        f.debug_struct("Incoming")
            .field("fd", &h.fd)
            .field("queued", &h.queued)
            .field("accepted", &h.accepted)
            .field("requests", &h.arms)
            .field("multishot", &(h.multishot != 0))
            .finish()
    }
}

impl TcpListener {
    /// Its connections through one multishot accept request; see
    /// [`Incoming`]. The kernel is asked nothing until the first
    /// [`accept`](Incoming::accept).
    ///
    /// ```
    /// use monad_async::io::{TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// ex.spawn(Priority::Normal, move |cx| TcpStream::connect(cx, addr).map(drop));
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<bool> {
    ///     let conn = listener.incoming(cx)?.accept(cx)?;
    ///     Ok(conn.peer_addr()?.ip().is_loopback())
    /// });
    /// ex.run_until_idle()?;
    /// assert!(h.join().unwrap()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ENOTSUP` without a ring; `ENOMEM`.
    pub fn incoming<'a, 'c: 'a>(
        &'a self,
        cx: &mut TaskContext<'c>,
    ) -> io::Result<Incoming<'a, TcpStream>> {
        Incoming::new(cx, self.as_raw_fd())
    }
}

impl UnixListener {
    /// Its connections through one multishot accept request; see
    /// [`Incoming`].
    ///
    /// ```
    /// use monad_async::io::{UnixListener, UnixStream};
    /// use monad_async::{Executor, Priority};
    /// use std::os::linux::net::SocketAddrExt;
    ///
    /// let ex = Executor::new()?;
    /// let addr = std::os::unix::net::SocketAddr::from_abstract_name(
    ///     format!("monad-doc-incoming-{}", std::process::id()))?;
    /// let listener = UnixListener::bind_addr(&addr)?;
    /// ex.spawn(Priority::Normal, move |cx| UnixStream::connect_addr(cx, &addr)?.write_all(cx, b"!"));
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
    ///     let conn = listener.incoming(cx)?.accept(cx)?;
    ///     conn.recv(cx, &mut [0u8; 4])
    /// });
    /// ex.run_until_idle()?;
    /// assert_eq!(h.join().unwrap()?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TcpListener::incoming`].
    pub fn incoming<'a, 'c: 'a>(
        &'a self,
        cx: &mut TaskContext<'c>,
    ) -> io::Result<Incoming<'a, UnixStream>> {
        Incoming::new(cx, self.as_raw_fd())
    }
}

static_assertions::assert_not_impl_any!(Incoming<'static>: Send, Sync);
