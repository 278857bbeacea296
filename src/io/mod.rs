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
//! operations when the ring is contended.
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

mod buffer;
mod buffer_ring;
mod file;
mod net;

pub use buffer::{Buffer, BufferPool};
pub use buffer_ring::{BufferRing, ProvidedBuffer};
pub use file::File;
pub use net::{TcpListener, TcpStream, UdpSocket};

use crate::error::check;
use crate::sys;
use crate::task::TaskContext;
use std::io;
use std::ptr;

/// A no-op through the kernel: the cheapest suspend and resume via the
/// ring.
///
/// # Errors
///
/// `ECANCELED` once the task is cancelled; `ENOTSUP` without a ring.
pub fn nop(cx: &mut TaskContext<'_>) -> io::Result<()> {
    // SAFETY: the task is the one running on this thread (cx exists only
    // inside its closure).
    check(unsafe { sys::monad_async_io_nop(cx.raw_task(), ptr::null_mut()) }).map(drop)
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
