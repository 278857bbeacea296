//! Splitting a [`TcpStream`] into a read half and a write half that can
//! go to different tasks, executors or threads.
//!
//! # Invariants
//!
//! * Both halves share the socket through an `Arc`: the descriptor is
//!   closed when the last half is dropped (or by
//!   [`reunite`](OwnedReadHalf::reunite)'s stream later), never while a
//!   half can still use it.
//! * The halves are `Send` and `Sync`; a receive and a send on one socket
//!   may be in flight at once, each in the ring of the executor whose task
//!   started it.
//! * As tokio's: dropping the write half shuts down the write side
//!   (`shutdown(SHUT_WR)`, a plain system call that never blocks), so the
//!   peer reads end of stream while the read half goes on receiving;
//!   [`OwnedWriteHalf::forget`] drops it without that.
//! * For both halves in one task, no split is needed: `&TcpStream` is both
//!   a [`RingRead`](super::RingRead) and a [`RingWrite`](super::RingWrite).

use super::adapter::{io_adapters, RingRead, RingWrite};
use super::TcpStream;
use crate::task::TaskContext;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

impl TcpStream {
    /// Splits the stream into a read half and a write half, each movable
    /// to another task, executor or thread.
    ///
    /// ```
    /// use monad_async::io::{TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let (s, _) = listener.accept(cx)?;
    ///     let mut buf = [0u8; 5];
    ///     s.read_exact(cx, &mut buf)?;
    ///     s.write_all(cx, &buf) // echo
    /// });
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<[u8; 5]> {
    ///     let (r, w) = TcpStream::connect(cx, addr)?.into_split();
    ///     let writer = cx.spawn(Priority::Normal, move |cx| w.write_all(cx, b"hello"))?;
    ///     let mut buf = [0u8; 5];
    ///     r.read_exact(cx, &mut buf)?;
    ///     writer.join().unwrap()?;
    ///     Ok(buf)
    /// });
    /// assert_eq!(&h.join().unwrap()?, b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let inner = Arc::new(self);
        (
            OwnedReadHalf {
                inner: Arc::clone(&inner),
            },
            OwnedWriteHalf {
                inner,
                shutdown_on_drop: true,
            },
        )
    }
}

/// The read half of a [`TcpStream`], from [`TcpStream::into_split`].
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Arc<TcpStream>,
}

/// The write half of a [`TcpStream`], from [`TcpStream::into_split`]:
/// dropping it shuts down the write side (see [`forget`](OwnedWriteHalf::forget)).
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Arc<TcpStream>,
    shutdown_on_drop: bool,
}

/// The halves given to [`OwnedReadHalf::reunite`] were not of the same
/// stream; here they are back.
///
/// ```
/// use monad_async::io::TcpStream;
/// let l = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let a = TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
/// let b = TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
/// let (ra, _wa) = a.into_split();
/// let (_rb, wb) = b.into_split();
/// let err = ra.reunite(wb).unwrap_err();
/// let (_ra, _wb) = (err.0, err.1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves of different streams")
    }
}

impl std::error::Error for ReuniteError {}

impl OwnedReadHalf {
    /// Receives into `buf` (0: the peer shut down its side).
    ///
    /// # Errors
    ///
    /// As [`TcpStream::recv`].
    ///
    /// ```
    /// # use monad_async::{Executor, Priority, io::TcpStream};
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let addr = l.local_addr()?;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
    ///     let (r, w) = TcpStream::connect(cx, addr)?.into_split();
    ///     drop(w);
    ///     let mut buf = [0u8; 4];
    ///     r.recv(cx, &mut buf)
    /// });
    /// std::thread::spawn(move || std::io::Write::write_all(&mut l.accept()?.0, b"abcd"));
    /// assert!(h.join().unwrap()? > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn recv(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.recv(cx, buf)
    }

    /// Receives exactly `buf.len()` bytes.
    ///
    /// # Errors
    ///
    /// As [`TcpStream::read_exact`].
    ///
    /// ```
    /// # use monad_async::{Executor, Priority, io::TcpStream};
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let addr = l.local_addr()?;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<[u8; 4]> {
    ///     let (r, _w) = TcpStream::connect(cx, addr)?.into_split();
    ///     let mut buf = [0u8; 4];
    ///     r.read_exact(cx, &mut buf)?;
    ///     Ok(buf)
    /// });
    /// std::thread::spawn(move || std::io::Write::write_all(&mut l.accept()?.0, b"abcd"));
    /// assert_eq!(&h.join().unwrap()?, b"abcd");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn read_exact(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(cx, buf)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = monad_async::io::TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
    /// let (r, _w) = s.into_split();
    /// assert!(r.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The stream again, if `write` is the other half of the same one.
    ///
    /// # Errors
    ///
    /// [`ReuniteError`] with both halves, if they are of different
    /// streams.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = monad_async::io::TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
    /// let (r, w) = s.into_split();
    /// let _s: monad_async::io::TcpStream = r.reunite(w).unwrap(); // write side still open
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reunite(self, mut write: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        if !Arc::ptr_eq(&self.inner, &write.inner) {
            return Err(ReuniteError(self, write));
        }
        write.shutdown_on_drop = false;
        drop(write);
        // The only other reference was the write half's, just dropped.
        Ok(Arc::into_inner(self.inner).expect("the halves held the only references"))
    }
}

impl OwnedWriteHalf {
    /// Sends from `buf`; returns the bytes sent.
    ///
    /// # Errors
    ///
    /// As [`TcpStream::send`].
    ///
    /// ```
    /// # use monad_async::{Executor, Priority, io::TcpStream};
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let addr = l.local_addr()?;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     let (_r, w) = TcpStream::connect(cx, addr)?.into_split();
    ///     w.send(cx, b"hi")
    /// });
    /// assert_eq!(h.join().unwrap()?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn send(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        self.inner.send(cx, buf)
    }

    /// Sends all of `buf`.
    ///
    /// # Errors
    ///
    /// As [`TcpStream::write_all`].
    ///
    /// ```
    /// # use monad_async::{Executor, Priority, io::TcpStream};
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let addr = l.local_addr()?;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     let (_r, w) = TcpStream::connect(cx, addr)?.into_split();
    ///     w.write_all(cx, b"hello")
    /// });
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn write_all(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(cx, buf)
    }

    /// Shuts down the write side through the ring, reporting the kernel's
    /// verdict (the drop does it too, silently).
    ///
    /// # Errors
    ///
    /// As [`TcpStream::shutdown`].
    ///
    /// ```
    /// # use monad_async::{Executor, Priority, io::TcpStream};
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let addr = l.local_addr()?;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     let (_r, w) = TcpStream::connect(cx, addr)?.into_split();
    ///     w.shutdown(cx)
    /// });
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, cx: &mut TaskContext<'_>) -> io::Result<()> {
        self.inner.shutdown(cx, Shutdown::Write)
    }

    /// Drops the half without shutting down the write side (the socket
    /// closes when the read half is dropped too).
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = monad_async::io::TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
    /// let (_r, w) = s.into_split();
    /// w.forget();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn forget(mut self) {
        self.shutdown_on_drop = false;
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// As `getsockname(2)`.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let s = monad_async::io::TcpStream::from(std::net::TcpStream::connect(l.local_addr()?)?);
    /// let (_r, w) = s.into_split();
    /// assert!(w.local_addr()?.ip().is_loopback());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // A plain system call: a drop may run outside any task, and
            // shutdown(2) never blocks. Its error (ENOTCONN once the peer
            // is gone) has nobody to go to.
            // SAFETY: the descriptor is open (this half holds the stream).
            let _ = unsafe { libc::shutdown(self.inner.as_raw_fd(), libc::SHUT_WR) };
        }
    }
}

impl RingRead for OwnedReadHalf {
    fn ring_read(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.ring_read(cx, buf)
    }
}

impl RingWrite for OwnedWriteHalf {
    fn ring_write(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        self.inner.ring_write(cx, buf)
    }
}

io_adapters!(
    /// ```
    /// use monad_async::io::{BufStream, TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    /// use std::io::{BufRead, Write};
    ///
    /// let ex = Executor::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let (r, w) = listener.accept(cx)?.0.into_split();
    ///     let mut r = BufStream::new(r);
    ///     let mut line = String::new();
    ///     r.io(cx).read_line(&mut line)?;
    ///     w.io(cx).write_all(line.as_bytes()) // then the drop shuts it down
    /// });
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<String>> {
    ///     let (r, w) = TcpStream::connect(cx, addr)?.into_split();
    ///     writeln!(w.io(cx), "echo me")?;
    ///     BufStream::new(r).io(cx).lines().collect()
    /// });
    /// assert_eq!(h.join().unwrap()?, ["echo me"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    OwnedReadHalf
);
io_adapters!(
    /// ```
    /// # use monad_async::{Executor, Priority, io::TcpStream};
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let addr = l.local_addr()?;
    /// use std::io::Write;
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     let (_r, w) = TcpStream::connect(cx, addr)?.into_split();
    ///     write!(w.io(cx), "{}", 42)
    /// });
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    OwnedWriteHalf
);

impl AsFd for OwnedReadHalf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsFd for OwnedWriteHalf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for OwnedReadHalf {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsRawFd for OwnedWriteHalf {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
