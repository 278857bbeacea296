//! Provided receive buffers: a ring of equally sized buffers the kernel
//! picks from as each receive completes (io_uring buffer rings,
//! `IOSQE_BUFFER_SELECT`).
//!
//! A plain [`TcpStream::recv`](super::TcpStream::recv) needs its buffer
//! while it waits; with a [`BufferRing`], idle connections waiting in
//! `recv_provided` hold no buffer at all, and only the receives that have
//! data take one. What a waiting receive still costs is the executor's
//! 16-byte slot and the kernel's request, and here its task (a stack,
//! two memory mappings): the ring's size does not bound how many wait;
//! the executor's in-flight guard does
//! ([`ExecutorBuilder::io_inflight_limit`](crate::ExecutorBuilder::io_inflight_limit),
//! 262,144 by default).
//!
//! Invariants:
//! - a [`ProvidedBuffer`] is the only way to reach a buffer the kernel
//!   handed out, and dropping it gives the buffer back to the kernel;
//! - it borrows the ring and its task's context, so it can neither outlive
//!   the ring nor leave the task (the executor frees the memory when it
//!   goes);
//! - the ring belongs to its executor's thread (neither `Send` nor
//!   `Sync`); if the executor is dropped first, the ring becomes inert and
//!   receives through it fail with `EINVAL`.

use super::registered::Registered;
use crate::error::errno;
use crate::executor::Executor;
use crate::sys;
use crate::task::TaskContext;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr;

/// A ring of `count` buffers of `buffer_size` bytes, given to the kernel
/// as one buffer group of an executor's io_uring. Receive into it with
/// [`TcpStream::recv_provided`](super::TcpStream::recv_provided) or
/// [`UdpSocket::recv_provided`](super::UdpSocket::recv_provided); share it
/// between tasks with an `Rc`.
///
/// ```
/// use monad_async::io::{BufferRing, TcpListener, TcpStream};
/// use monad_async::{Executor, Priority};
/// use std::rc::Rc;
///
/// let ex = Executor::new()?;
/// let ring = Rc::new(BufferRing::new(&ex, 4096, 8)?);
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let r = ring.clone();
/// let server = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
///     let (conn, _) = listener.accept(cx)?;
///     let mut got = Vec::new();
///     // Some(buffer) per receive with data; None once the peer shut down.
///     while let Some(buf) = conn.recv_provided(cx, &r)? {
///         got.extend_from_slice(&buf);
///     }
///     Ok(got)
/// });
/// let client = ex.spawn(Priority::Normal, move |cx| {
///     let s = TcpStream::connect(cx, addr)?;
///     s.write_all(cx, b"provided")?;
///     s.close(cx)
/// });
/// ex.run_until_idle()?;
/// client.join().unwrap()?;
/// assert_eq!(server.join().unwrap()?, b"provided");
/// assert_eq!(ring.outstanding(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct BufferRing {
    ring: Registered<sys::monad_async_io_buffer_ring_head>,
}

impl BufferRing {
    /// Creates `count` buffers (a power of two, at most 32,768) of
    /// `buffer_size` bytes and registers them with `ex`'s ring as a new
    /// buffer group.
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// let ring = monad_async::io::BufferRing::new(&ex, 2048, 16)?;
    /// assert_eq!((ring.buffer_size(), ring.count()), (2048, 16));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `EINVAL`: a zero size, or a count that is zero, not a power of two
    /// or above 32,768; `ENOTSUP`: the executor has no ring, or the kernel
    /// has no buffer rings (before 5.19); `ENOSPC`: all 65,536 buffer-group
    /// ids are held by live rings of this executor (a dropped ring's id is
    /// reused); `ENOMEM` or the kernel's error.
    pub fn new(ex: &Executor, buffer_size: usize, count: u32) -> io::Result<BufferRing> {
        let ring = Registered::create(
            ex,
            // SAFETY: a live executor on its own thread (Executor is
            // !Send); a valid out-pointer.
            |raw, out| unsafe {
                sys::monad_async_io_buffer_ring_create(out, raw, buffer_size, count)
            },
            sys::monad_async_io_buffer_ring_destroy,
        )?;
        Ok(BufferRing { ring })
    }

    /// The public head, while the ring is alive.
    fn head(&self) -> Option<sys::monad_async_io_buffer_ring_head> {
        self.ring.head()
    }

    /// Bytes per buffer: the most one receive can return.
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// let ring = monad_async::io::BufferRing::new(&ex, 1500, 4)?;
    /// assert_eq!(ring.buffer_size(), 1500);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn buffer_size(&self) -> usize {
        self.head().map_or(0, |h| h.buffer_size)
    }

    /// Buffers in the ring.
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// let ring = monad_async::io::BufferRing::new(&ex, 1500, 4)?;
    /// assert_eq!(ring.count(), 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn count(&self) -> u32 {
        self.head().map_or(0, |h| h.count)
    }

    /// Buffers handed out by receives and not yet dropped.
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// let ring = monad_async::io::BufferRing::new(&ex, 1500, 4)?;
    /// assert_eq!(ring.outstanding(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn outstanding(&self) -> u32 {
        self.head().map_or(0, |h| h.outstanding)
    }

    /// The kernel's id of this buffer group (distinct per ring of one
    /// executor).
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// use monad_async::io::BufferRing;
    /// let (a, b) = (BufferRing::new(&ex, 64, 2)?, BufferRing::new(&ex, 64, 2)?);
    /// assert_ne!(a.group(), b.group());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn group(&self) -> u16 {
        self.head().map_or(0, |h| h.group)
    }

    /// One receive on `fd` into a buffer the kernel picks from this ring.
    /// `None` when the receive used no buffer (a stream's end).
    pub(crate) fn recv<'b, 'c: 'b>(
        &'b self,
        cx: &mut TaskContext<'c>,
        fd: libc::c_int,
        flags: libc::c_int,
    ) -> io::Result<Option<ProvidedBuffer<'b>>> {
        let ring = self.ring.raw().ok_or_else(|| errno(libc::EINVAL))?;
        let mut raw = sys::monad_async_io_buffer::default();
        // SAFETY: the running task; a live ring (C refuses one of another
        // executor with EINVAL); a valid out-pointer. The kernel writes only
        // into the ring's own memory, which the executor owns.
        let r = unsafe {
            sys::monad_async_io_recv_provided(
                cx.raw_task(),
                ptr::null_mut(),
                fd,
                ring,
                flags,
                &mut raw,
            )
        };
        // A buffer the kernel used is ours to give back even when the
        // receive failed (say, cancelled after data arrived): wrap it first
        // so that it is released whatever the outcome.
        let buf = (!raw.data.is_null()).then(|| ProvidedBuffer {
            ring: self,
            raw,
            _task: PhantomData,
        });
        cx.check(r)?;
        Ok(buf)
    }
}

impl fmt::Debug for BufferRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferRing")
            .field("buffer_size", &self.buffer_size())
            .field("count", &self.count())
            .field("outstanding", &self.outstanding())
            .field("group", &self.group())
            .finish()
    }
}

/// The bytes one receive put into a [`BufferRing`]'s buffer: derefs
/// (mutably too) to exactly those bytes; the buffer goes back to the kernel when this is
/// dropped. Lives no longer than the task that received it.
///
/// ```
/// use monad_async::io::{BufferRing, UdpSocket};
/// use monad_async::{Executor, Priority};
/// use std::rc::Rc;
///
/// let ex = Executor::new()?;
/// let ring = Rc::new(BufferRing::new(&ex, 512, 4)?);
/// let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
/// let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
/// a.connect(b.local_addr()?)?;
/// b.connect(a.local_addr()?)?;
/// let r = ring.clone();
/// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<(usize, u32)> {
///     a.send(cx, b"datagram")?;
///     let buf = b.recv_provided(cx, &r)?.expect("a buffer");
///     assert_eq!(&*buf, b"datagram");
///     Ok((buf.len(), r.outstanding()))
/// });
/// assert_eq!(h.join().unwrap()?, (8, 1)); // out while held...
/// assert_eq!(ring.outstanding(), 0); // ...and back once dropped
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// It cannot leave its task:
///
/// ```compile_fail
/// use monad_async::io::{BufferRing, UdpSocket};
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let ring: &'static BufferRing = Box::leak(Box::new(BufferRing::new(&ex, 512, 4)?));
/// let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
/// let h = ex.spawn(Priority::Normal, move |cx| s.recv_provided(cx, ring).unwrap());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ProvidedBuffer<'b> {
    ring: &'b BufferRing,
    raw: sys::monad_async_io_buffer,
    /// Bound to the receiving task's context, so the buffer cannot be
    /// returned from the task and outlive the executor that owns it.
    _task: PhantomData<&'b mut *mut ()>,
}

impl ProvidedBuffer<'_> {
    /// The buffer's index in its ring.
    ///
    /// ```
    /// # use monad_async::io::{BufferRing, UdpSocket};
    /// # use monad_async::{Executor, Priority};
    /// # let ex = Executor::new()?;
    /// # let ring = std::rc::Rc::new(BufferRing::new(&ex, 64, 2)?);
    /// # let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    /// # a.connect(a.local_addr()?)?;
    /// # let r = ring.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<bool> {
    ///     a.send(cx, b"x")?;
    ///     Ok(a.recv_provided(cx, &r)?.expect("a buffer").index() < r.count())
    /// });
    /// assert!(h.join().unwrap()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn index(&self) -> u32 {
        self.raw.index
    }
}

impl Deref for ProvidedBuffer<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the kernel wrote `size` bytes (at most the ring's buffer
        // size) at `data` and handed the buffer to us; it stays ours until
        // released in drop, and the executor that owns the memory outlives
        // the task this borrows.
        unsafe { std::slice::from_raw_parts(self.raw.data.cast::<u8>(), self.raw.size) }
    }
}

impl DerefMut for ProvidedBuffer<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for deref; `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.raw.data.cast::<u8>(), self.raw.size) }
    }
}

impl Drop for ProvidedBuffer<'_> {
    fn drop(&mut self) {
        if let Some(ring) = self.ring.ring.raw() {
            // SAFETY: handed out by this live ring, on its executor's
            // thread; released once.
            let _ = unsafe { sys::monad_async_io_buffer_ring_release(ring, &self.raw) };
        }
    }
}

impl fmt::Debug for ProvidedBuffer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvidedBuffer")
            .field("index", &self.raw.index)
            .field("len", &self.raw.size)
            .finish()
    }
}
