//! Files through the ring.
//!
//! # Invariants
//!
//! * No call returns, and so no borrow of a buffer ends, before the kernel
//!   is done with that buffer: single operations wait for their own
//!   completion, and the batches' `Batch` ([`File::read_many_at`],
//!   [`File::write_many_at`]) waits, also on its drop, for every
//!   operation it initiated.
//! * Offsets reach C only through `c_offset`, so one above `i64::MAX` is
//!   `EINVAL` before anything is queued.

use super::{to_fd, to_usize, Buffer};
use crate::error::{check, errno};
use crate::sys;
use crate::task::TaskContext;
use std::ffi::CString;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

/// An open file whose reads, writes and syncs go through the executor's
/// ring. Owns its descriptor (closed on drop with a plain `close(2)`, or
/// through the ring with [`File::close`]).
///
/// ```
/// use monad_async::{io::File, Executor, Priority};
///
/// let ex = Executor::new()?;
/// let path = std::env::temp_dir().join(format!("ma-doc-{}", std::process::id()));
/// let p = path.clone();
/// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
///     let f = File::create(cx, &p)?;
///     f.write_all_at(cx, b"hello", 0)?;
///     f.sync_all(cx)?;
///     let mut buf = [0u8; 5];
///     f.read_exact_at(cx, &mut buf, 0)?;
///     f.close(cx)?;
///     Ok(buf.to_vec())
/// });
/// assert_eq!(h.join().unwrap()?, b"hello");
/// std::fs::remove_file(path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct File {
    fd: OwnedFd,
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| errno(libc::EINVAL))
}

/// A file offset as C takes it: `EINVAL` above `i64::MAX`.
fn c_offset(offset: u64) -> io::Result<i64> {
    i64::try_from(offset).map_err(|_| errno(libc::EINVAL))
}

/// A fixed read into, or write from, a claimed registered buffer: the
/// borrow the operation needs (mutable for a read, which the kernel
/// writes into).
enum Fixed<'a, 'b> {
    Read(&'a mut Buffer<'b>),
    Write(&'a Buffer<'b>),
}

/// Calls `op` with the bytes moved so far until `len` are, each call
/// returning how many more it moved; a call that moves none ends it with
/// `stall` (the loop of `read_exact_at` and `write_all_at`).
fn transfer_all(
    len: usize,
    stall: io::ErrorKind,
    mut op: impl FnMut(usize) -> io::Result<usize>,
) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        match op(done)? {
            0 => return Err(io::Error::from(stall)),
            n => done += n,
        }
    }
    Ok(())
}

impl File {
    /// Opens with `openat(2)` flags and mode, relative to the current
    /// directory.
    ///
    /// # Errors
    ///
    /// The kernel's (`ENOENT`, `EACCES`, ...); `EINVAL` for a path with a
    /// NUL byte; `ECANCELED`, `ENOTSUP` as for every I/O call.
    pub fn open_with(
        cx: &mut TaskContext<'_>,
        path: impl AsRef<Path>,
        flags: libc::c_int,
        mode: libc::mode_t,
    ) -> io::Result<File> {
        let path = c_path(path.as_ref())?;
        // SAFETY: the running task; `path` lives until the call returns,
        // which is after the kernel has read it.
        let r = unsafe {
            sys::monad_async_io_openat(
                cx.raw_task(),
                ptr::null_mut(),
                libc::AT_FDCWD,
                path.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode,
            )
        };
        let fd = to_fd(cx.check(r)?)?;
        // SAFETY: the kernel just gave us this descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(File { fd })
    }

    /// Opens an existing file for reading and writing.
    ///
    /// # Errors
    ///
    /// As [`File::open_with`].
    pub fn open(cx: &mut TaskContext<'_>, path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(cx, path, libc::O_RDWR, 0)
    }

    /// Creates (or truncates) a file for reading and writing, mode 0644.
    ///
    /// # Errors
    ///
    /// As [`File::open_with`].
    pub fn create(cx: &mut TaskContext<'_>, path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(
            cx,
            path,
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
            0o644,
        )
    }

    /// Reads into `buf` from `offset`; returns the bytes read (0 at end of
    /// file).
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ENOTSUP`.
    #[inline]
    pub fn read_at(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
        offset: u64,
    ) -> io::Result<usize> {
        let off = c_offset(offset)?;
        // SAFETY: the running task; with no status the call returns only
        // once the kernel is done with `buf`, which the borrow keeps alive
        // until then.
        cx.check(unsafe { self.raw_read(cx.raw_task(), ptr::null_mut(), buf, off) })
            .map(to_usize)
    }

    /// `monad_async_io_read` of `buf` at `off`: waited for here with a
    /// null `status`, else only initiated.
    ///
    /// # Safety
    ///
    /// `task` is the running task; `buf`, and `status` unless null, stay
    /// valid and unused elsewhere until the read is reaped (on return for
    /// a null `status`; else by a wait on `status`).
    unsafe fn raw_read(
        &self,
        task: sys::monad_async_task,
        status: *mut sys::monad_async_io_status,
        buf: &mut [u8],
        off: i64,
    ) -> sys::monad_async_result {
        // SAFETY: per the contract.
        unsafe {
            sys::monad_async_io_read(
                task,
                status,
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                off,
            )
        }
    }

    /// Reads into many buffers at once: every read is queued (the
    /// initiate form, one caller-owned status each), the ring submits them
    /// together, and the task suspends until the kernel has finished all
    /// of them. Returns one outcome per entry of `reads`, in order: the
    /// bytes read, or that read's error.
    ///
    /// The buffers stay borrowed until every read has been reaped, also
    /// when the task is cancelled mid-batch: the reads still in flight are
    /// then cancelled and waited for (they report `ECANCELED`, or their
    /// real outcome if the kernel had already finished them).
    ///
    /// ```
    /// use monad_async::{io::File, Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let path = std::env::temp_dir().join(format!("ma-doc-many-{}", std::process::id()));
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let f = File::create(cx, &p)?;
    ///     f.write_all_at(cx, b"abcdefgh", 0)?;
    ///     let (mut a, mut b) = ([0u8; 2], [0u8; 4]);
    ///     let mut reads = [(0, &mut a[..]), (4, &mut b[..])];
    ///     let out = f.read_many_at(cx, &mut reads);
    ///     assert_eq!((*out[0].as_ref().unwrap(), *out[1].as_ref().unwrap()), (2, 4));
    ///     assert_eq!((&a, &b), (b"ab", b"efgh"));
    ///     f.close(cx)
    /// });
    /// h.join().unwrap()?;
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Per entry: the kernel's; `EINVAL` for an offset above `i64::MAX`;
    /// `ECANCELED` (the task was cancelled), `ENOTSUP` (no ring).
    pub fn read_many_at(
        &self,
        cx: &mut TaskContext<'_>,
        reads: &mut [(u64, &mut [u8])],
    ) -> Vec<io::Result<usize>> {
        self.many_at(cx, reads.len(), |i, task, st| {
            let (offset, buf) = &mut reads[i];
            let off = c_offset(*offset)?;
            // SAFETY: the running task; `st` and `buf` stay valid until
            // the status is reaped: many_at waits for every initiated
            // status before it returns, and `reads` is borrowed until then.
            check(unsafe { self.raw_read(task, st, buf, off) }).map(drop)
        })
    }

    /// The body of the `*_many_at` batches: initiates operation `i` of
    /// `count` through `initiate(i, task, status)` with its own status,
    /// then waits for every one it initiated, in order. An operation whose
    /// initiation failed reports that error.
    fn many_at(
        &self,
        cx: &mut TaskContext<'_>,
        count: usize,
        mut initiate: impl FnMut(
            usize,
            sys::monad_async_task,
            *mut sys::monad_async_io_status,
        ) -> io::Result<()>,
    ) -> Vec<io::Result<usize>> {
        let task = cx.raw_task();
        // Allocated once and never resized: the C side links the statuses
        // into intrusive lists, so they must not move while in flight.
        let mut batch = Batch {
            task,
            statuses: (0..count).map(|_| Default::default()).collect(),
        };
        let mut out: Vec<Option<io::Result<usize>>> = Vec::with_capacity(count);
        for i in 0..count {
            let st: *mut sys::monad_async_io_status = &mut batch.statuses[i];
            out.push(initiate(i, task, st).err().map(Err));
        }
        for (i, slot) in out.iter_mut().enumerate() {
            if slot.is_none() {
                let st: *mut sys::monad_async_io_status = &mut batch.statuses[i];
                // SAFETY: the running task; `st` was initiated by it and is
                // not yet reaped. On a cancelled task this cancels the
                // operation and still waits for the kernel to finish it.
                let r = unsafe { sys::monad_async_io_wait(task, st) };
                *slot = Some(check(r).map(super::to_usize));
            }
        }
        drop(batch);
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(errno(libc::ECANCELED))))
            .collect()
    }

    /// Reads exactly `buf.len()` bytes from `offset`.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the file ends first; otherwise as
    /// [`File::read_at`].
    #[inline]
    pub fn read_exact_at(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
        offset: u64,
    ) -> io::Result<()> {
        transfer_all(buf.len(), io::ErrorKind::UnexpectedEof, |done| {
            self.read_at(cx, &mut buf[done..], offset + done as u64)
        })
    }

    /// Writes `buf` at `offset`; returns the bytes written.
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ENOTSUP`.
    #[inline]
    pub fn write_at(&self, cx: &mut TaskContext<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
        let off = c_offset(offset)?;
        // SAFETY: as for read_at.
        cx.check(unsafe { self.raw_write(cx.raw_task(), ptr::null_mut(), buf, off) })
            .map(to_usize)
    }

    /// `monad_async_io_write` of `buf` at `off`, as
    /// [`raw_read`](File::raw_read).
    ///
    /// # Safety
    ///
    /// As for `raw_read`.
    unsafe fn raw_write(
        &self,
        task: sys::monad_async_task,
        status: *mut sys::monad_async_io_status,
        buf: &[u8],
        off: i64,
    ) -> sys::monad_async_result {
        // SAFETY: per the contract.
        unsafe {
            sys::monad_async_io_write(
                task,
                status,
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                off,
            )
        }
    }

    /// Writes many buffers at once, each at its own offset, as
    /// [`read_many_at`](File::read_many_at) reads: all are queued and
    /// submitted together, and the task suspends until the kernel has
    /// finished every one. Returns one outcome per entry of `writes`, in
    /// order: the bytes written, or that write's error. Writes whose
    /// ranges overlap land in no defined order.
    ///
    /// ```
    /// use monad_async::{io::File, Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let path = std::env::temp_dir().join(format!("ma-doc-wmany-{}", std::process::id()));
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let f = File::create(cx, &p)?;
    ///     let out = f.write_many_at(cx, &[(4, &b"efgh"[..]), (0, &b"abcd"[..])]);
    ///     assert!(out.iter().all(|r| matches!(r, Ok(4))));
    ///     f.close(cx)
    /// });
    /// h.join().unwrap()?;
    /// assert_eq!(std::fs::read(&path)?, b"abcdefgh");
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Per entry, as for [`read_many_at`](File::read_many_at).
    pub fn write_many_at(
        &self,
        cx: &mut TaskContext<'_>,
        writes: &[(u64, &[u8])],
    ) -> Vec<io::Result<usize>> {
        self.many_at(cx, writes.len(), |i, task, st| {
            let (offset, buf) = writes[i];
            let off = c_offset(offset)?;
            // SAFETY: the running task; `st` and `buf` stay valid until
            // the status is reaped: many_at waits for every initiated
            // status before it returns, and `writes` is borrowed until
            // then.
            check(unsafe { self.raw_write(task, st, buf, off) }).map(drop)
        })
    }

    /// Writes all of `buf` at `offset`.
    ///
    /// # Errors
    ///
    /// `WriteZero` if the kernel accepts nothing; otherwise as
    /// [`File::write_at`].
    #[inline]
    pub fn write_all_at(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
        offset: u64,
    ) -> io::Result<()> {
        transfer_all(buf.len(), io::ErrorKind::WriteZero, |done| {
            self.write_at(cx, &buf[done..], offset + done as u64)
        })
    }

    /// Reads up to `len` bytes from `offset` into the start of a claimed
    /// registered buffer (`IORING_OP_READ_FIXED`); returns the bytes read.
    /// See [`BufferPool`](super::BufferPool) for an example.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `len` exceeds the buffer or the offset `i64::MAX`;
    /// the kernel's; `ECANCELED`, `ENOTSUP`.
    pub fn read_fixed_at(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &mut Buffer<'_>,
        len: usize,
        offset: u64,
    ) -> io::Result<usize> {
        self.fixed_at(cx, Fixed::Read(buf), len, offset)
    }

    /// Writes the first `len` bytes of a claimed registered buffer at
    /// `offset` (`IORING_OP_WRITE_FIXED`); returns the bytes written. See
    /// [`BufferPool`](super::BufferPool) for an example.
    ///
    /// # Errors
    ///
    /// As [`File::read_fixed_at`].
    pub fn write_fixed_at(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &Buffer<'_>,
        len: usize,
        offset: u64,
    ) -> io::Result<usize> {
        self.fixed_at(cx, Fixed::Write(buf), len, offset)
    }

    /// [`File::read_fixed_at`] and [`File::write_fixed_at`]: `op` on the
    /// first `len` bytes of its buffer, at `offset`.
    fn fixed_at(
        &self,
        cx: &mut TaskContext<'_>,
        op: Fixed<'_, '_>,
        len: usize,
        offset: u64,
    ) -> io::Result<usize> {
        let buf: &Buffer<'_> = match &op {
            Fixed::Read(buf) => buf,
            Fixed::Write(buf) => buf,
        };
        let off = c_offset(offset)?;
        if len > buf.len() {
            return Err(errno(libc::EINVAL));
        }
        let sys::monad_async_io_buffer { data, index, .. } = *buf.raw();
        let (task, st, fd) = (cx.raw_task(), ptr::null_mut(), self.fd.as_raw_fd());
        // SAFETY: the running task; the call returns only once the kernel
        // is done with the buffer, which `op` keeps claimed (and, for a
        // read, borrowed mutably) until then; `len` is within it.
        let r = unsafe {
            match op {
                Fixed::Read(_) => {
                    sys::monad_async_io_read_fixed(task, st, fd, data, len, off, index)
                }
                Fixed::Write(_) => {
                    sys::monad_async_io_write_fixed(task, st, fd, data, len, off, index)
                }
            }
        };
        cx.check(r).map(to_usize)
    }

    /// `fsync(2)` through the ring.
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ENOTSUP`.
    pub fn sync_all(&self, cx: &mut TaskContext<'_>) -> io::Result<()> {
        // SAFETY: the running task.
        cx.check(unsafe {
            sys::monad_async_io_fsync(cx.raw_task(), ptr::null_mut(), self.fd.as_raw_fd())
        })
        .map(drop)
    }

    /// `fdatasync(2)` through the ring.
    ///
    /// # Errors
    ///
    /// As [`File::sync_all`].
    pub fn sync_data(&self, cx: &mut TaskContext<'_>) -> io::Result<()> {
        // SAFETY: the running task.
        cx.check(unsafe {
            sys::monad_async_io_fdatasync(cx.raw_task(), ptr::null_mut(), self.fd.as_raw_fd())
        })
        .map(drop)
    }

    /// Reads into `bufs`, in order, from `offset` (`preadv(2)` through
    /// the ring); returns the bytes read in total.
    ///
    /// ```
    /// use monad_async::{io::File, Executor, Priority};
    /// use std::io::IoSliceMut;
    ///
    /// let ex = Executor::new()?;
    /// let path = std::env::temp_dir().join(format!("ma-doc-readv-{}", std::process::id()));
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let f = File::create(cx, &p)?;
    ///     f.write_all_at(cx, b"headbody", 0)?;
    ///     let (mut head, mut body) = ([0u8; 4], [0u8; 4]);
    ///     let mut bufs = [IoSliceMut::new(&mut head), IoSliceMut::new(&mut body)];
    ///     assert_eq!(f.read_vectored_at(cx, &mut bufs, 0)?, 8);
    ///     assert_eq!((&head, &body), (b"head", b"body"));
    ///     f.close(cx)
    /// });
    /// h.join().unwrap()?;
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `EINVAL` for more than `u32::MAX` buffers or an offset above
    /// `i64::MAX`; the kernel's (`EINVAL` beyond `IOV_MAX`); `ECANCELED`,
    /// `ENOTSUP`.
    pub fn read_vectored_at(
        &self,
        cx: &mut TaskContext<'_>,
        bufs: &mut [IoSliceMut<'_>],
        offset: u64,
    ) -> io::Result<usize> {
        let off = c_offset(offset)?;
        let count = u32::try_from(bufs.len()).map_err(|_| errno(libc::EINVAL))?;
        // SAFETY: the running task; IoSliceMut is guaranteed ABI-compatible
        // with iovec on Unix; the call returns only once the kernel is done
        // with the array and every buffer, which the borrow keeps alive.
        let r = unsafe {
            sys::monad_async_io_readv(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                bufs.as_mut_ptr().cast(),
                count,
                off,
            )
        };
        cx.check(r).map(to_usize)
    }

    /// Writes `bufs`, in order, at `offset` (`pwritev(2)` through the
    /// ring); returns the bytes written in total.
    ///
    /// ```
    /// use monad_async::{io::File, Executor, Priority};
    /// use std::io::IoSlice;
    ///
    /// let ex = Executor::new()?;
    /// let path = std::env::temp_dir().join(format!("ma-doc-writev-{}", std::process::id()));
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let f = File::create(cx, &p)?;
    ///     let bufs = [IoSlice::new(b"gather "), IoSlice::new(b"write")];
    ///     assert_eq!(f.write_vectored_at(cx, &bufs, 0)?, 12);
    ///     f.close(cx)
    /// });
    /// h.join().unwrap()?;
    /// assert_eq!(std::fs::read(&path)?, b"gather write");
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`File::read_vectored_at`].
    pub fn write_vectored_at(
        &self,
        cx: &mut TaskContext<'_>,
        bufs: &[IoSlice<'_>],
        offset: u64,
    ) -> io::Result<usize> {
        let off = c_offset(offset)?;
        let count = u32::try_from(bufs.len()).map_err(|_| errno(libc::EINVAL))?;
        // SAFETY: as for read_vectored_at; the kernel only reads them.
        let r = unsafe {
            sys::monad_async_io_writev(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                bufs.as_ptr().cast(),
                count,
                off,
            )
        };
        cx.check(r).map(to_usize)
    }

    /// Reserves disk space for `len` bytes from `offset`, growing the
    /// file if they reach past its end (`fallocate(2)` with mode 0,
    /// through the ring): later writes there cannot fail for lack of
    /// space.
    ///
    /// ```
    /// use monad_async::{io::File, Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let path = std::env::temp_dir().join(format!("ma-doc-alloc-{}", std::process::id()));
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let f = File::create(cx, &p)?;
    ///     f.allocate(cx, 0, 1 << 20)?;
    ///     f.close(cx)
    /// });
    /// h.join().unwrap()?;
    /// assert_eq!(std::fs::metadata(&path)?.len(), 1 << 20);
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`File::fallocate`].
    pub fn allocate(&self, cx: &mut TaskContext<'_>, offset: u64, len: u64) -> io::Result<()> {
        self.fallocate(cx, 0, offset, len)
    }

    /// `fallocate(2)` with any `mode` (`libc::FALLOC_FL_KEEP_SIZE`,
    /// `libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE`,
    /// `libc::FALLOC_FL_ZERO_RANGE`, ...) through the ring.
    ///
    /// ```
    /// use monad_async::{io::File, Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let path = std::env::temp_dir().join(format!("ma-doc-falloc-{}", std::process::id()));
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let f = File::create(cx, &p)?;
    ///     // Reserve without changing the size the file reports.
    ///     f.fallocate(cx, libc::FALLOC_FL_KEEP_SIZE, 0, 4096)?;
    ///     f.close(cx)
    /// });
    /// h.join().unwrap()?;
    /// assert_eq!(std::fs::metadata(&path)?.len(), 0);
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `EINVAL` for an offset or length above `i64::MAX`; the kernel's
    /// (`EOPNOTSUPP` where the file system lacks the mode, `ENOSPC`, ...);
    /// `ECANCELED`, `ENOTSUP`.
    pub fn fallocate(
        &self,
        cx: &mut TaskContext<'_>,
        mode: libc::c_int,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        let off = c_offset(offset)?;
        let len = c_offset(len)?;
        // SAFETY: the running task; no memory is passed.
        cx.check(unsafe {
            sys::monad_async_io_fallocate(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                mode,
                off,
                len,
            )
        })
        .map(drop)
    }

    /// `sync_file_range(2)` through the ring: starts writeback of (and,
    /// with the `WAIT` flags, waits for) the dirty pages of `len` bytes
    /// from `offset` (`len` 0: to the end of the file). `flags` are
    /// `libc::SYNC_FILE_RANGE_WAIT_BEFORE`, `_WRITE` and `_WAIT_AFTER`.
    /// Unlike [`sync_data`](File::sync_data) it flushes no metadata and
    /// no disk cache: a way to pace writeback, not a durability promise.
    ///
    /// ```
    /// use monad_async::{io::File, Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let path = std::env::temp_dir().join(format!("ma-doc-sfr-{}", std::process::id()));
    /// let p = path.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
    ///     let f = File::create(cx, &p)?;
    ///     f.write_all_at(cx, &[1u8; 8192], 0)?;
    ///     f.sync_range(cx, 0, 0, libc::SYNC_FILE_RANGE_WRITE)?;
    ///     f.close(cx)
    /// });
    /// h.join().unwrap()?;
    /// std::fs::remove_file(path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`File::fallocate`] (`EINVAL` for unknown flags).
    pub fn sync_range(
        &self,
        cx: &mut TaskContext<'_>,
        offset: u64,
        len: u64,
        flags: libc::c_uint,
    ) -> io::Result<()> {
        let off = c_offset(offset)?;
        let len = c_offset(len)?;
        // SAFETY: the running task; no memory is passed.
        cx.check(unsafe {
            sys::monad_async_io_sync_file_range(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                off,
                len,
                flags,
            )
        })
        .map(drop)
    }

    /// Closes through the ring, reporting the kernel's verdict (which a
    /// drop cannot).
    ///
    /// # Errors
    ///
    /// The kernel's (`EIO` from a deferred write error, ...); on
    /// `ECANCELED`/`ENOTSUP` the descriptor is closed by drop instead.
    pub fn close(self, cx: &mut TaskContext<'_>) -> io::Result<()> {
        close_fd(cx, self.fd)
    }
}

/// Closes `fd` through the ring; if the ring call cannot be made, the
/// descriptor is still closed (by dropping it).
pub(crate) fn close_fd(cx: &mut TaskContext<'_>, fd: OwnedFd) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: the running task.
    let r = unsafe { sys::monad_async_io_close(cx.raw_task(), ptr::null_mut(), raw) };
    match r.error {
        // Not attempted: drop closes it.
        libc::ECANCELED | libc::ENOTSUP | libc::EINVAL => {
            drop(fd);
            cx.check(r).map(drop)
        }
        _ => {
            // The kernel took the descriptor (closed, or failed closing):
            // never close it twice.
            let _ = fd.into_raw_fd();
            cx.check(r).map(drop)
        }
    }
}

impl From<std::fs::File> for File {
    fn from(f: std::fs::File) -> File {
        File { fd: f.into() }
    }
}

impl From<File> for std::fs::File {
    fn from(f: File) -> std::fs::File {
        f.fd.into()
    }
}

impl From<OwnedFd> for File {
    fn from(fd: OwnedFd) -> File {
        File { fd }
    }
}

impl From<File> for OwnedFd {
    fn from(f: File) -> OwnedFd {
        f.fd
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The statuses of a batch of initiated operations. Dropping it waits for
/// any still in flight, so that the buffers they use are never released
/// while the kernel may still write them.
struct Batch {
    task: sys::monad_async_task,
    statuses: Box<[sys::monad_async_io_status]>,
}

const IDLE: u32 = sys::monad_async_io_state::MONAD_ASYNC_IO_STATE_IDLE.0;

impl Drop for Batch {
    fn drop(&mut self) {
        for st in self.statuses.iter_mut() {
            if st.state == IDLE {
                continue;
            }
            // SAFETY: `self.task` is the running task (a batch lives only
            // inside one of its calls) and initiated `st`.
            let r = unsafe { sys::monad_async_io_wait(self.task, st) };
            if r.error != 0 && st.state != IDLE {
                // The kernel may still write into a buffer we are about to
                // hand back: the only sound way out.
                std::process::abort();
            }
        }
    }
}
