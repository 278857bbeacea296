//! Registered buffer pools: page-aligned buffers registered with the
//! executor's ring, claimed by tasks for the `*_fixed` reads and writes
//! (no per-operation page pinning by the kernel).

use super::registered::Registered;
use crate::error::errno;
use crate::executor::Executor;
use crate::sys;
use crate::task::TaskContext;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// A pool of equally sized, page-aligned buffers registered with an
/// executor's ring. Tasks [`claim`](BufferPool::claim) a [`Buffer`]
/// (waiting, first come first served, when none is free); dropping the
/// buffer releases it. Pass it to [`File::read_fixed_at`] and
/// [`File::write_fixed_at`].
///
/// An executor has at most one buffer registration, so at most one pool
/// at a time. The pool belongs to the executor's thread (it is neither
/// `Send` nor `Sync`); share it between tasks with an `Rc`. Dropping it
/// unregisters it; if the executor goes first, it frees the pool and the
/// handle becomes inert (claims fail with `EINVAL`).
///
/// ```
/// use monad_async::io::{BufferPool, File};
/// use monad_async::{Executor, Priority};
/// use std::rc::Rc;
///
/// let ex = Executor::new()?;
/// let pool = Rc::new(BufferPool::new(&ex, 4096, 8)?);
/// let path = std::env::temp_dir().join(format!("ma-doc-pool-{}", std::process::id()));
/// let (p, pl) = (path.clone(), pool.clone());
/// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
///     let f = File::create(cx, &p)?;
///     let mut buf = pl.claim(cx)?;
///     buf[..5].copy_from_slice(b"fixed");
///     f.write_fixed_at(cx, &buf, 5, 0)?;
///     buf.fill(0);
///     assert_eq!(f.read_fixed_at(cx, &mut buf, 4096, 0)?, 5);
///     assert_eq!(&buf[..5], b"fixed");
///     f.close(cx)
/// });
/// h.join().unwrap()?;
/// assert_eq!(pool.free(), 8);
/// std::fs::remove_file(path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// [`File::read_fixed_at`]: super::File::read_fixed_at
/// [`File::write_fixed_at`]: super::File::write_fixed_at
pub struct BufferPool {
    pool: Registered<sys::monad_async_io_buffer_pool_head>,
}

impl BufferPool {
    /// Creates `count` buffers of `buffer_size` bytes (rounded up to whole
    /// pages) and registers them with `ex`'s ring.
    ///
    /// # Errors
    ///
    /// `EBUSY`: the executor already has a pool (or registered buffers);
    /// `EINVAL`: zero size or count, or more than 16384 buffers;
    /// `ENOTSUP`: no ring; `ENOMEM` or the kernel's error.
    pub fn new(ex: &Executor, buffer_size: usize, count: u32) -> io::Result<BufferPool> {
        let pool = Registered::create(
            ex,
            // SAFETY: a live executor on its own thread (Executor is
            // !Send); a valid out-pointer.
            |raw, out| unsafe {
                sys::monad_async_io_buffer_pool_create(out, raw, buffer_size, count)
            },
            sys::monad_async_io_buffer_pool_destroy,
        )?;
        Ok(BufferPool { pool })
    }

    /// The public head, while the pool is alive.
    fn head(&self) -> Option<sys::monad_async_io_buffer_pool_head> {
        self.pool.head()
    }

    /// Bytes per buffer (a multiple of the page size).
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// let pool = monad_async::io::BufferPool::new(&ex, 100, 2)?;
    /// assert_eq!(pool.buffer_size() % 4096, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn buffer_size(&self) -> usize {
        self.head().map_or(0, |h| h.buffer_size)
    }

    /// Buffers in the pool.
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// let pool = monad_async::io::BufferPool::new(&ex, 4096, 3)?;
    /// assert_eq!(pool.count(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn count(&self) -> u32 {
        self.head().map_or(0, |h| h.count)
    }

    /// Buffers not claimed right now.
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// let pool = monad_async::io::BufferPool::new(&ex, 4096, 3)?;
    /// assert_eq!(pool.free(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn free(&self) -> u32 {
        self.head().map_or(0, |h| h.free)
    }

    /// Times a task had to wait for a buffer.
    ///
    /// ```
    /// # let ex = monad_async::Executor::new()?;
    /// let pool = monad_async::io::BufferPool::new(&ex, 4096, 3)?;
    /// assert_eq!(pool.waits(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn waits(&self) -> u64 {
        self.head().map_or(0, |h| h.waits)
    }

    /// Claims a buffer, suspending until one is released if none is free
    /// (waiters are served in arrival order). The buffer cannot leave the
    /// task (it borrows the task's context lifetime); dropping it releases
    /// it.
    ///
    /// ```
    /// use monad_async::{io::BufferPool, Executor, Priority};
    /// use std::rc::Rc;
    ///
    /// let ex = Executor::new()?;
    /// let pool = Rc::new(BufferPool::new(&ex, 4096, 1)?);
    /// let pl = pool.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
    ///     let b = pl.claim(cx)?;
    ///     Ok(b.len())
    /// });
    /// assert_eq!(h.join().unwrap()?, 4096);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ECANCELED` (also when cancelled while waiting); `EINVAL` when the
    /// task runs on another executor, or the pool's executor is gone.
    pub fn claim<'b, 'p: 'b, 'c: 'b>(&'p self, cx: &mut TaskContext<'c>) -> io::Result<Buffer<'b>> {
        self.claim_with(cx, sys::monad_async_io_buffer_claim)
    }

    /// As [`claim`](BufferPool::claim) without waiting.
    ///
    /// ```
    /// use monad_async::{io::BufferPool, Executor, Priority};
    /// use std::rc::Rc;
    ///
    /// let ex = Executor::new()?;
    /// let pool = Rc::new(BufferPool::new(&ex, 4096, 1)?);
    /// let pl = pool.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     let _a = pl.try_claim(cx).unwrap();
    ///     pl.try_claim(cx).unwrap_err().raw_os_error()
    /// });
    /// assert_eq!(h.join().unwrap(), Some(libc::EAGAIN));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `EAGAIN` when none is free; otherwise as
    /// [`claim`](BufferPool::claim).
    pub fn try_claim<'b, 'p: 'b, 'c: 'b>(
        &'p self,
        cx: &mut TaskContext<'c>,
    ) -> io::Result<Buffer<'b>> {
        self.claim_with(cx, sys::monad_async_io_buffer_try_claim)
    }

    fn claim_with<'b>(
        &'b self,
        cx: &mut TaskContext<'_>,
        f: unsafe extern "C" fn(
            sys::monad_async_task,
            sys::monad_async_io_buffer_pool,
            *mut sys::monad_async_io_buffer,
        ) -> sys::monad_async_result,
    ) -> io::Result<Buffer<'b>> {
        let pool = self.pool.raw().ok_or_else(|| errno(libc::EINVAL))?;
        let mut raw = sys::monad_async_io_buffer::default();
        // SAFETY: the running task; a live pool (C checks it belongs to
        // the task's executor); a valid out-pointer.
        cx.check(unsafe { f(cx.raw_task(), pool, &mut raw) })?;
        Ok(Buffer {
            pool: self,
            raw,
            _task: PhantomData,
        })
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("buffer_size", &self.buffer_size())
            .field("count", &self.count())
            .field("free", &self.free())
            .finish()
    }
}

/// A claimed buffer of a [`BufferPool`]: derefs to its bytes; released
/// when dropped. Lives no longer than the task that claimed it.
///
/// ```
/// use monad_async::{io::BufferPool, Executor, Priority};
/// use std::rc::Rc;
///
/// let ex = Executor::new()?;
/// let pool = Rc::new(BufferPool::new(&ex, 4096, 1)?);
/// let pl = pool.clone();
/// ex.spawn(Priority::Normal, move |cx| {
///     let mut b = pl.claim(cx).unwrap();
///     b[0] = 7;
///     assert_eq!((b[0], b.index()), (7, 0));
/// })
/// .join()
/// .unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// It cannot leave its task, even from a `'static` pool (the executor
/// frees the memory when it goes):
///
/// ```compile_fail
/// use monad_async::{io::BufferPool, Executor, Priority};
///
/// let ex = Executor::new()?;
/// let pool: &'static BufferPool = Box::leak(Box::new(BufferPool::new(&ex, 4096, 1)?));
/// let h = ex.spawn(Priority::Normal, move |cx| pool.claim(cx).unwrap());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Buffer<'b> {
    pool: &'b BufferPool,
    raw: sys::monad_async_io_buffer,
    /// Bound to the claiming task's context, so the buffer cannot be
    /// returned from the task and outlive the executor that owns it.
    _task: PhantomData<&'b mut *mut ()>,
}

impl Buffer<'_> {
    /// The buffer's index in the ring's registration.
    pub fn index(&self) -> u32 {
        self.raw.index
    }

    pub(crate) fn raw(&self) -> &sys::monad_async_io_buffer {
        &self.raw
    }
}

impl Deref for Buffer<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: a claimed buffer of `size` bytes, ours until released;
        // the executor (which owns the memory) outlives the claiming task.
        unsafe { std::slice::from_raw_parts(self.raw.data.cast(), self.raw.size) }
    }
}

impl DerefMut for Buffer<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for deref; `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.raw.data.cast(), self.raw.size) }
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.pool.raw() {
            // SAFETY: claimed from this live pool, on its executor's thread.
            let _ = unsafe { sys::monad_async_io_buffer_release(pool, &self.raw) };
        }
    }
}

impl fmt::Debug for Buffer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("index", &self.raw.index)
            .field("size", &self.raw.size)
            .finish()
    }
}
