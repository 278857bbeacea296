//! std I/O on ring streams: [`Io`] gives a stream `std::io::Read` and
//! `Write` inside a task, and [`BufStream`] keeps a read buffer across
//! calls and gives `BufRead` (`read_line`, `lines`, `read_until`), so std
//! code (parsers, `BufWriter`, `write!`) runs on the executor's ring.
//!
//! # Invariants
//!
//! * Every read and write of an adapter is one ring operation of the task
//!   it is bound to (it borrows that task's [`TaskContext`]): it suspends
//!   the task, never the thread.
//! * Errors are as std expects: `Interrupted` is retried inside and never
//!   reaches the caller (std's loops retry it forever, which a sticky
//!   cancellation would turn into a hang), and `WouldBlock` never appears
//!   (a socket someone set non-blocking is waited for with a ring poll
//!   and tried again). A cancelled task gets the `ECANCELED` error
//!   ([`ErrorExt::is_cancelled`](crate::ErrorExt::is_cancelled)), a
//!   passed [deadline](TaskContext::timeout) `ETIMEDOUT` (kind
//!   `TimedOut`): both end std's loops.
//! * A [`BufStream`]'s buffer belongs to it, not to an adapter: bytes read
//!   ahead of a line survive from one `io(cx)` to the next (and across
//!   timeouts), so a connection task keeps its read buffer between
//!   requests. It is allocated by the first read, not by
//!   [`BufStream::new`] (a connection accepted and not read from yet
//!   holds none), and kept until the `BufStream` is dropped.
//! * What std keeps after an error, these keep: `read_line` /
//!   `read_until` interrupted by a deadline or a cancel leave the partial
//!   line in the caller's `String`/`Vec` (consumed from the buffer), so a
//!   caller that times out mid-line and reads again loses nothing.
//!
//! # Another stream type
//!
//! [`TcpStream`], its split halves and [`File`] (at the file position,
//! as std's `File`) have them. Another type gets [`Io`] and
//! [`BufStream`] by implementing [`RingRead`] and/or [`RingWrite`], one
//! method each: the ring receive / send of the type, through [`retry`]
//! when it is a file descriptor (see the `TcpStream` impls in this file).
//! Inside this crate the `io_adapters!(Type)` macro then adds the
//! inherent `io(cx)` method (as for `UnixStream`: `impl RingRead`,
//! `impl RingWrite`, then `io_adapters!(UnixStream)`).

use super::{poll, to_usize};
use super::{File, TcpStream, UnixStream};
use crate::sys;
use crate::task::TaskContext;
use std::fmt;
use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;

/// The most one read or write asks for, as std's own (Linux's limit for
/// one call; the ring's length field is 32 bits): std's loops ask again.
const MAX_RW: usize = 0x7fff_f000;

/// A stream a task can read from through the ring: what [`Io`]'s
/// `Read` and [`BufStream`]'s `BufRead` need.
///
/// ```
/// use monad_async::io::{retry, RingRead};
/// use monad_async::TaskContext;
/// use std::os::fd::AsFd;
///
/// // A wrapper of another stream type, read through the ring.
/// struct Logged(monad_async::io::TcpStream);
/// impl RingRead for Logged {
///     fn ring_read(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> std::io::Result<usize> {
///         let n = retry(cx, self.0.as_fd(), libc::POLLIN, |cx| self.0.recv(cx, buf))?;
///         eprintln!("read {n} bytes");
///         Ok(n)
///     }
/// }
/// ```
pub trait RingRead {
    /// Reads into `buf` through the ring of `cx`'s executor; 0 at end of
    /// stream. Must not return `Interrupted` or `WouldBlock` (use
    /// [`retry`]).
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ETIMEDOUT`, `ENOTSUP`.
    fn ring_read(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize>;
}

/// A stream a task can write to through the ring: what [`Io`]'s `Write`
/// needs.
///
/// ```
/// use monad_async::io::{retry, RingWrite};
/// use monad_async::TaskContext;
/// use std::os::fd::AsFd;
///
/// struct Counted(monad_async::io::TcpStream);
/// impl RingWrite for Counted {
///     fn ring_write(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> std::io::Result<usize> {
///         retry(cx, self.0.as_fd(), libc::POLLOUT, |cx| self.0.send(cx, buf))
///     }
/// }
/// ```
pub trait RingWrite {
    /// Writes from `buf` through the ring; returns the bytes written. Must
    /// not return `Interrupted` or `WouldBlock` (use [`retry`]).
    ///
    /// # Errors
    ///
    /// As [`RingRead::ring_read`].
    fn ring_write(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize>;
}

impl<S: RingRead + ?Sized> RingRead for &S {
    fn ring_read(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        (**self).ring_read(cx, buf)
    }
}

impl<S: RingWrite + ?Sized> RingWrite for &S {
    fn ring_write(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        (**self).ring_write(cx, buf)
    }
}

/// Runs the ring operation `op` on `fd` until it returns something std's
/// callers may see: `Interrupted` is tried again, and `WouldBlock` (a
/// descriptor in non-blocking mode) waits for `events`
/// (`libc::POLLIN`/`POLLOUT`) with a ring [`poll`] first. The building
/// block of [`RingRead`] and [`RingWrite`] implementations.
///
/// ```
/// use monad_async::io::{retry, TcpListener, TcpStream};
/// use monad_async::{Executor, Priority};
/// use std::os::fd::AsFd;
///
/// let ex = Executor::new()?;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
///     let c = TcpStream::connect(cx, addr)?;
///     let (s, _) = listener.accept(cx)?;
///     // Someone put it in non-blocking mode (a dup shares the mode).
///     std::net::TcpStream::from(s.as_fd().try_clone_to_owned()?).set_nonblocking(true)?;
///     c.write_all(cx, b"hi")?;
///     let mut buf = [0u8; 8];
///     retry(cx, s.as_fd(), libc::POLLIN, |cx| s.recv(cx, &mut buf))
/// });
/// assert_eq!(h.join().unwrap()?, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// The first error of `op` other than those two, or of the poll.
pub fn retry<T>(
    cx: &mut TaskContext<'_>,
    fd: BorrowedFd<'_>,
    events: i16,
    mut op: impl FnMut(&mut TaskContext<'_>) -> io::Result<T>,
) -> io::Result<T> {
    loop {
        match op(cx) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // The poll suspends (or fails with ECANCELED/ETIMEDOUT), so
            // this loop always waits between tries.
            Err(e) if e.kind() == ErrorKind::WouldBlock => drop(poll(cx, fd, events)?),
            r => return r,
        }
    }
}

impl RingRead for TcpStream {
    fn ring_read(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        retry(cx, self.as_fd(), libc::POLLIN, |cx| self.recv(cx, buf))
    }
}

impl RingWrite for TcpStream {
    fn ring_write(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        retry(cx, self.as_fd(), libc::POLLOUT, |cx| self.send(cx, buf))
    }
}

impl RingRead for UnixStream {
    fn ring_read(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        retry(cx, self.as_fd(), libc::POLLIN, |cx| self.recv(cx, buf))
    }
}

impl RingWrite for UnixStream {
    fn ring_write(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        retry(cx, self.as_fd(), libc::POLLOUT, |cx| self.send(cx, buf))
    }
}

/// At the file position (offset -1), as `std::fs::File`'s `Read`: a
/// regular file reads on from where the last read or write ended, and a
/// pipe or character device reads as a stream.
impl RingRead for File {
    fn ring_read(&self, cx: &mut TaskContext<'_>, buf: &mut [u8]) -> io::Result<usize> {
        retry(cx, self.as_fd(), libc::POLLIN, |cx| {
            // SAFETY: the running task; without a status the call
            // returns only once the kernel is done with `buf`, which the
            // borrow keeps alive until then.
            let r = unsafe {
                sys::monad_async_io_read(
                    cx.raw_task(),
                    ptr::null_mut(),
                    self.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    -1,
                )
            };
            cx.check(r).map(to_usize)
        })
    }
}

/// At the file position (offset -1), as `std::fs::File`'s `Write`.
impl RingWrite for File {
    fn ring_write(&self, cx: &mut TaskContext<'_>, buf: &[u8]) -> io::Result<usize> {
        retry(cx, self.as_fd(), libc::POLLOUT, |cx| {
            // SAFETY: as for the read; the kernel only reads `buf`.
            let r = unsafe {
                sys::monad_async_io_write(
                    cx.raw_task(),
                    ptr::null_mut(),
                    self.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    -1,
                )
            };
            cx.check(r).map(to_usize)
        })
    }
}

/// Adds `io(cx)`, the [`Io`] adapter, to a stream type of this crate.
macro_rules! io_adapters {
    ($(#[$doc:meta])* $ty:ty) => {
        impl $ty {
            /// std I/O on this stream inside the task of `cx`: an
            /// [`Io`](crate::io::Io) adapter borrowing both, whose every
            /// read and write is one ring operation of the task.
            /// Unbuffered: wrap it in a `std::io::BufWriter`, or use a
            /// [`BufStream`](crate::io::BufStream) for reads by line.
            ///
            $(#[$doc])*
            pub fn io<'a, 'c>(
                &'a self,
                cx: &'a mut $crate::task::TaskContext<'c>,
            ) -> $crate::io::Io<'a, 'c, $ty> {
                $crate::io::Io::new(self, cx)
            }
        }
    };
}
pub(crate) use io_adapters;

io_adapters!(
    /// ```
    /// use monad_async::io::{TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    /// use std::io::{Read, Write};
    ///
    /// let ex = Executor::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let (s, _) = listener.accept(cx)?;
    ///     write!(s.io(cx), "{} + {} = {}", 1, 2, 1 + 2)
    /// });
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<String> {
    ///     let s = TcpStream::connect(cx, addr)?;
    ///     let mut all = String::new();
    ///     s.io(cx).read_to_string(&mut all)?; // until the peer closes
    ///     Ok(all)
    /// });
    /// assert_eq!(h.join().unwrap()?, "1 + 2 = 3");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    TcpStream
);

io_adapters!(
    /// At the file position, as `std::fs::File`'s `Read` and `Write`:
    ///
    /// ```
    /// use monad_async::io::{BufStream, File};
    /// use monad_async::{Executor, Priority};
    /// use std::io::{BufRead, BufWriter, Write};
    ///
    /// let path = std::env::temp_dir().join(format!("ma-io-doc-{}", std::process::id()));
    /// let ex = Executor::new()?;
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<String>> {
    ///     let f = File::create(cx, &p)?;
    ///     let mut out = BufWriter::new(f.io(cx));
    ///     for i in 0..3 {
    ///         writeln!(out, "line {i}")?;
    ///     }
    ///     out.flush()?;
    ///     drop(out);
    ///     BufStream::new(File::open(cx, &p)?).io(cx).lines().collect()
    /// });
    /// assert_eq!(h.join().unwrap()?, ["line 0", "line 1", "line 2"]);
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    File
);

io_adapters!(
    /// ```
    /// use monad_async::io::{BufStream, UnixStream};
    /// use monad_async::{Executor, Priority};
    /// use std::io::{BufRead, Write};
    ///
    /// let ex = Executor::new()?;
    /// let (a, b) = UnixStream::pair()?;
    /// ex.spawn(Priority::Normal, move |cx| writeln!(a.io(cx), "hello"));
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<String> {
    ///     let mut line = String::new();
    ///     BufStream::new(b).io(cx).read_line(&mut line)?;
    ///     Ok(line)
    /// });
    /// assert_eq!(h.join().unwrap()?, "hello\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    UnixStream
);

/// std `Read` and `Write` on a stream, inside the task whose context it
/// borrows: each call is one ring operation (see the module docs for
/// errors). `flush` has nothing to do (nothing is buffered here).
///
/// Made by the streams' `io(cx)` ([`TcpStream::io`]) or [`Io::new`].
///
/// ```
/// use monad_async::io::{Io, TcpListener, TcpStream};
/// use monad_async::{Executor, Priority};
/// use std::io::{BufWriter, Read, Write};
///
/// let ex = Executor::new()?;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
///     let (s, _) = listener.accept(cx)?;
///     let mut out = BufWriter::new(Io::new(&s, cx)); // one send for all
///     for i in 0..100 {
///         writeln!(out, "line {i}")?;
///     }
///     out.flush()
/// });
/// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
///     let s = TcpStream::connect(cx, addr)?;
///     let mut all = Vec::new();
///     s.io(cx).read_to_end(&mut all)?;
///     Ok(all)
/// });
/// assert_eq!(h.join().unwrap()?.iter().filter(|&&b| b == b'\n').count(), 100);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Io<'a, 'c, S: ?Sized> {
    stream: &'a S,
    cx: &'a mut TaskContext<'c>,
}

impl<'a, 'c, S: ?Sized> Io<'a, 'c, S> {
    /// The adapter of `stream` in the task of `cx`.
    ///
    /// ```
    /// # use monad_async::{Executor, Priority, io::{Io, TcpListener}};
    /// # let ex = Executor::new()?;
    /// # let l = TcpListener::bind("127.0.0.1:0")?;
    /// # let addr = l.local_addr()?;
    /// # let _c = std::net::TcpStream::connect(addr)?;
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let (s, _) = l.accept(cx)?;
    ///     std::io::Write::write_all(&mut Io::new(&s, cx), b"hi")
    /// }).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(stream: &'a S, cx: &'a mut TaskContext<'c>) -> Io<'a, 'c, S> {
        Io { stream, cx }
    }

    /// The stream.
    ///
    /// ```
    /// # use monad_async::{Executor, Priority, io::{Io, TcpListener}};
    /// # let ex = Executor::new()?;
    /// # let l = TcpListener::bind("127.0.0.1:0")?;
    /// # let addr = l.local_addr()?;
    /// # let _c = std::net::TcpStream::connect(addr)?;
    /// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let (s, _) = l.accept(cx)?;
    ///     assert_eq!(s.io(cx).get_ref().local_addr()?, addr);
    ///     Ok(())
    /// }).join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &'a S {
        self.stream
    }
}

impl<S: RingRead + ?Sized> Read for Io<'_, '_, S> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A zero-length receive could wait for data it cannot take.
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(MAX_RW);
        self.stream.ring_read(self.cx, &mut buf[..len])
    }
}

impl<S: RingWrite + ?Sized> Write for Io<'_, '_, S> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.stream
            .ring_write(self.cx, &buf[..buf.len().min(MAX_RW)])
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: fmt::Debug + ?Sized> fmt::Debug for Io<'_, '_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("stream", &self.stream)
            .field("cx", &self.cx)
            .finish()
    }
}

/// The read buffer size of [`BufStream::new`].
const DEFAULT_CAPACITY: usize = 8 * 1024;

/// A stream with a read buffer of its own, which outlives the task's
/// calls: [`io(cx)`](BufStream::io) gives `BufRead` (`read_line`,
/// `lines`, `read_until`, `fill_buf`), `Read`, and `Write` (straight to
/// the stream), and the bytes read ahead stay here for the next call: the
/// read side of a connection that answers request after request.
///
/// Lines longer than the buffer are fine (std's `read_line` grows the
/// `String`); to bound them, read through `io(cx).take(limit)`.
///
/// ```
/// use monad_async::io::{BufStream, TcpListener, TcpStream};
/// use monad_async::{Executor, Priority};
/// use std::io::{BufRead, Write};
///
/// let ex = Executor::new()?;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
///     let mut conn = BufStream::new(listener.accept(cx)?.0);
///     let mut line = String::new();
///     let mut served = 0;
///     while conn.io(cx).read_line(&mut line)? > 0 {
///         conn.io(cx).write_all(line.to_uppercase().as_bytes())?;
///         line.clear();
///         served += 1;
///     }
///     Ok(served)
/// });
/// ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
///     let mut s = BufStream::new(TcpStream::connect(cx, addr)?);
///     s.io(cx).write_all(b"one\ntwo\n")?; // both in one packet
///     let mut reply = String::new();
///     s.io(cx).read_line(&mut reply)?;
///     s.io(cx).read_line(&mut reply)?;
///     assert_eq!(reply, "ONE\nTWO\n");
///     Ok(())
/// });
/// assert_eq!(server.join().unwrap()?, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct BufStream<S> {
    stream: S,
    /// Allocated (to `capacity`) on the first read.
    buf: Vec<u8>,
    capacity: usize,
    /// `buf[pos..filled]` is read and not yet consumed.
    pos: usize,
    filled: usize,
}

impl<S> BufStream<S> {
    /// `stream` with an 8 KiB read buffer (allocated on the first read).
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let c = std::net::TcpStream::connect(l.local_addr()?)?;
    /// use monad_async::io::{BufStream, TcpStream};
    /// let s = BufStream::new(TcpStream::from(c));
    /// assert_eq!(s.capacity(), 8192);
    /// assert!(s.buffer().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(stream: S) -> BufStream<S> {
        BufStream::with_capacity(DEFAULT_CAPACITY, stream)
    }

    /// `stream` with a read buffer of `capacity` bytes (at least 1).
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let c = std::net::TcpStream::connect(l.local_addr()?)?;
    /// use monad_async::io::{BufStream, TcpStream};
    /// let s = BufStream::with_capacity(512, TcpStream::from(c));
    /// assert_eq!(s.capacity(), 512);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_capacity(capacity: usize, stream: S) -> BufStream<S> {
        BufStream {
            stream,
            buf: Vec::new(),
            capacity: capacity.max(1),
            pos: 0,
            filled: 0,
        }
    }

    /// The bound adapter: std `BufRead`, `Read` and `Write` on this stream
    /// inside the task of `cx`, through this buffer.
    ///
    /// ```
    /// use monad_async::io::{BufStream, TcpListener, TcpStream};
    /// use monad_async::{Executor, Priority};
    /// use std::io::BufRead;
    ///
    /// let ex = Executor::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// ex.spawn(Priority::Normal, move |cx| {
    ///     listener.accept(cx)?.0.write_all(cx, b"a\nb\nc") // no final newline
    /// });
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<String>> {
    ///     let mut s = BufStream::new(TcpStream::connect(cx, addr)?);
    ///     s.io(cx).lines().collect()
    /// });
    /// assert_eq!(h.join().unwrap()?, ["a", "b", "c"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io<'a, 'c>(&'a mut self, cx: &'a mut TaskContext<'c>) -> BufIo<'a, 'c, S> {
        BufIo { inner: self, cx }
    }

    /// The bytes read ahead and not yet consumed.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let c = std::net::TcpStream::connect(l.local_addr()?)?;
    /// # let s = monad_async::io::BufStream::new(monad_async::io::TcpStream::from(c));
    /// assert_eq!(s.buffer(), b"");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..self.filled]
    }

    /// The read buffer's size.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let c = std::net::TcpStream::connect(l.local_addr()?)?;
    /// # let s = monad_async::io::BufStream::new(monad_async::io::TcpStream::from(c));
    /// assert_eq!(s.capacity(), 8192);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The stream.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let c = std::net::TcpStream::connect(l.local_addr()?)?;
    /// # let s = monad_async::io::BufStream::new(monad_async::io::TcpStream::from(c));
    /// assert_eq!(s.get_ref().local_addr()?.ip(), l.local_addr()?.ip());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably. Reading from it directly skips the buffered
    /// bytes.
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let c = std::net::TcpStream::connect(l.local_addr()?)?;
    /// # let mut s = monad_async::io::BufStream::new(monad_async::io::TcpStream::from(c));
    /// let _stream: &mut monad_async::io::TcpStream = s.get_mut();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream and the bytes read ahead and not yet consumed (which
    /// the stream no longer has).
    ///
    /// ```
    /// # let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// # let c = std::net::TcpStream::connect(l.local_addr()?)?;
    /// # let s = monad_async::io::BufStream::new(monad_async::io::TcpStream::from(c));
    /// let (_stream, rest) = s.into_parts();
    /// assert!(rest.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_parts(mut self) -> (S, Vec<u8>) {
        self.buf.truncate(self.filled);
        self.buf.drain(..self.pos);
        (self.stream, self.buf)
    }
}

impl<S: fmt::Debug> fmt::Debug for BufStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufStream")
            .field("stream", &self.stream)
            .field("buffered", &(self.filled - self.pos))
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// A [`BufStream`] bound to a task: std `BufRead` and `Read` through the
/// stream's buffer, `Write` straight to the stream. Made by
/// [`BufStream::io`].
///
/// ```
/// use monad_async::io::{BufStream, TcpListener, TcpStream};
/// use monad_async::{Executor, Priority};
/// use std::io::{BufRead, Read};
///
/// let ex = Executor::new()?;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// ex.spawn(Priority::Normal, move |cx| {
///     listener.accept(cx)?.0.write_all(cx, b"LEN 5\nhello")
/// });
/// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
///     let mut s = BufStream::new(TcpStream::connect(cx, addr)?);
///     let mut header = String::new();
///     s.io(cx).read_line(&mut header)?;
///     let len: usize = header.trim()[4..].parse().unwrap();
///     let mut body = vec![0; len];
///     s.io(cx).read_exact(&mut body)?; // the rest of the buffer first
///     Ok(body)
/// });
/// assert_eq!(h.join().unwrap()?, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct BufIo<'a, 'c, S> {
    inner: &'a mut BufStream<S>,
    cx: &'a mut TaskContext<'c>,
}

impl<S: RingRead> BufRead for BufIo<'_, '_, S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let b = &mut *self.inner;
        if b.pos >= b.filled {
            if b.buf.len() < b.capacity {
                b.buf.resize(b.capacity, 0);
            }
            // Reset before the read: if it fails the buffer is empty,
            // never stale.
            b.pos = 0;
            b.filled = 0;
            let len = b.buf.len().min(MAX_RW);
            let n = b.stream.ring_read(self.cx, &mut b.buf[..len])?;
            b.filled = n.min(b.buf.len());
        }
        Ok(&b.buf[b.pos..b.filled])
    }

    fn consume(&mut self, amt: usize) {
        let b = &mut *self.inner;
        b.pos = (b.pos + amt).min(b.filled);
    }
}

impl<S: RingRead> Read for BufIo<'_, '_, S> {
    #[inline]
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // Nothing buffered and a large read: straight into `out`, as
        // std's BufReader does.
        if self.inner.pos >= self.inner.filled && out.len() >= self.inner.capacity {
            let len = out.len().min(MAX_RW);
            return self.inner.stream.ring_read(self.cx, &mut out[..len]);
        }
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<S: RingWrite> Write for BufIo<'_, '_, S> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(MAX_RW);
        self.inner.stream.ring_write(self.cx, &buf[..len])
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: fmt::Debug> fmt::Debug for BufIo<'_, '_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufIo")
            .field("inner", &self.inner)
            .field("cx", &self.cx)
            .finish()
    }
}
