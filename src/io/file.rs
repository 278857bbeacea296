//! Files through the ring.

use super::{to_fd, to_usize};
use crate::error::{check, errno};
use crate::sys;
use crate::task::TaskContext;
use std::ffi::CString;
use std::io;
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
        let fd = to_fd(check(r)?)?;
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
    pub fn read_at(
        &self,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
        offset: u64,
    ) -> io::Result<usize> {
        let off = i64::try_from(offset).map_err(|_| errno(libc::EINVAL))?;
        // SAFETY: the running task; the call returns only once the kernel
        // is done with `buf`, which the borrow keeps alive until then.
        let r = unsafe {
            sys::monad_async_io_read(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                off,
            )
        };
        check(r).map(to_usize)
    }

    /// Reads exactly `buf.len()` bytes from `offset`.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the file ends first; otherwise as
    /// [`File::read_at`].
    pub fn read_exact_at(
        &self,
        cx: &mut TaskContext<'_>,
        mut buf: &mut [u8],
        mut offset: u64,
    ) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(cx, buf, offset)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }

    /// Writes `buf` at `offset`; returns the bytes written.
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ENOTSUP`.
    pub fn write_at(&self, cx: &mut TaskContext<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
        let off = i64::try_from(offset).map_err(|_| errno(libc::EINVAL))?;
        // SAFETY: as for read_at.
        let r = unsafe {
            sys::monad_async_io_write(
                cx.raw_task(),
                ptr::null_mut(),
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                off,
            )
        };
        check(r).map(to_usize)
    }

    /// Writes all of `buf` at `offset`.
    ///
    /// # Errors
    ///
    /// `WriteZero` if the kernel accepts nothing; otherwise as
    /// [`File::write_at`].
    pub fn write_all_at(
        &self,
        cx: &mut TaskContext<'_>,
        mut buf: &[u8],
        mut offset: u64,
    ) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write_at(cx, buf, offset)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            buf = &buf[n..];
            offset += n as u64;
        }
        Ok(())
    }

    /// `fsync(2)` through the ring.
    ///
    /// # Errors
    ///
    /// The kernel's; `ECANCELED`, `ENOTSUP`.
    pub fn sync_all(&self, cx: &mut TaskContext<'_>) -> io::Result<()> {
        // SAFETY: the running task.
        check(unsafe {
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
        check(unsafe {
            sys::monad_async_io_fdatasync(cx.raw_task(), ptr::null_mut(), self.fd.as_raw_fd())
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
            check(r).map(drop)
        }
        _ => {
            // The kernel took the descriptor (closed, or failed closing):
            // never close it twice.
            let _ = fd.into_raw_fd();
            check(r).map(drop)
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
