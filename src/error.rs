//! Errors: C errno values as [`std::io::Error`], and [`JoinError`].
//!
//! # Invariants
//!
//! * Every C function returns a `monad_async_result`; a non-zero `error` is
//!   a positive errno value and becomes
//!   [`io::Error::from_raw_os_error`], so callers can match on
//!   [`io::Error::raw_os_error`] (`libc::ETIME`, `libc::ECANCELED`, ...).
//! * One exception: when an executor's io_uring cannot be created, the
//!   error explains why (a seccomp filter, the `kernel.io_uring_disabled`
//!   sysctl, `RLIMIT_MEMLOCK`, too many entries) with this machine's
//!   figures. It is an [`io::Error`] of the errno's kind carrying a
//!   [`RingSetupError`], whose [`errno`](RingSetupError::errno) is the
//!   code (`raw_os_error()` is `None` there: std's `io::Error` holds a
//!   code or a message, not both).
//! * A [`JoinError`] is either a cancellation or a caught panic. The panic
//!   payload is reachable only by value ([`JoinError::into_panic`]), never
//!   through `&JoinError`, which is what makes `JoinError` `Sync` although
//!   the payload is only `Send`.

use crate::sys;
use std::any::Any;
use std::fmt;
use std::io;

/// Turns a C result into `Ok(value)` or the errno as an [`io::Error`].
#[inline]
pub(crate) fn check(r: sys::monad_async_result) -> io::Result<isize> {
    if r.error == 0 {
        Ok(r.value)
    } else {
        Err(io::Error::from_raw_os_error(r.error))
    }
}

/// The [`io::Error`] for an errno value.
#[inline]
pub(crate) fn errno(code: libc::c_int) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// Why a task did not produce its value: it was cancelled, or it panicked.
///
/// Returned by [`JoinHandle::join`](crate::JoinHandle::join). Converts into
/// an [`io::Error`]: a cancellation becomes `ECANCELED`, a panic an error
/// of kind [`io::ErrorKind::Other`] wrapping this `JoinError`.
///
/// # Example
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let h = ex.spawn(Priority::Normal, |_cx| -> u32 { panic!("boom") });
/// let err = h.join().unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.to_string(), "task panicked: boom");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinError {
    repr: Repr,
}

/// Pointer-sized: the (rare) panic is boxed, so that a
/// `Result<T, JoinError>` is barely larger than `T` (a `Result<u64, _>`
/// comes back from `join` in two registers).
enum Repr {
    Cancelled,
    Panic(Box<Panic>),
}

struct Panic {
    payload: SyncWrapper<Box<dyn Any + Send + 'static>>,
    message: Option<String>,
}

const _: () = assert!(std::mem::size_of::<JoinError>() == std::mem::size_of::<usize>());

/// Makes a `Send` value `Sync` by never handing out `&T`.
struct SyncWrapper<T>(T);

// SAFETY: the only access to the wrapped value is by value, through
// `into_inner(self)`; a `&SyncWrapper<T>` gives no access to the `T` at
// all, so sharing one between threads cannot race. Moving it needs T: Send.
unsafe impl<T: Send> Sync for SyncWrapper<T> {}

impl<T> SyncWrapper<T> {
    fn into_inner(self) -> T {
        self.0
    }
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Some((*s).to_owned())
        } else {
            payload.downcast_ref::<String>().cloned()
        };
        JoinError {
            repr: Repr::Panic(Box::new(Panic {
                payload: SyncWrapper(payload),
                message,
            })),
        }
    }

    /// True when the task was cancelled: cancelled before it started (its
    /// closure never ran), or cancelled while it ran (its suspension
    /// points returned `ECANCELED` and whatever it returned was dropped).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| 1);
    /// assert!(ex.cancel(&h)?);
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// True when the task's closure panicked.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| -> () { panic!("oops") });
    /// assert!(h.join().unwrap_err().is_panic());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, to pass to [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If this error is not a panic (see [`JoinError::try_into_panic`]).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| -> () { std::panic::panic_any(42_i32) });
    /// let payload = h.join().unwrap_err().into_panic();
    /// assert_eq!(payload.downcast_ref::<i32>(), Some(&42));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("JoinError::into_panic on an error that is not a panic")
    }

    /// The panic payload, or `Err(self)` when the task was cancelled.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| ());
    /// ex.cancel(&h)?;
    /// let err = h.join().unwrap_err();
    /// assert!(err.try_into_panic().unwrap_err().is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(panic) => Ok(panic.payload.into_inner()),
            Repr::Cancelled => Err(self),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("task was cancelled"),
            Repr::Panic(panic) => match &panic.message {
                Some(m) => write!(f, "task panicked: {m}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic(panic) => f
                .debug_struct("JoinError::Panic")
                .field("message", &panic.message)
                .finish_non_exhaustive(),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    /// A cancellation becomes `ECANCELED`; a panic becomes an error of kind
    /// [`io::ErrorKind::Other`] that wraps the `JoinError` (get it back
    /// with [`io::Error::into_inner`] and `downcast`).
    fn from(err: JoinError) -> io::Error {
        match err.repr {
            Repr::Cancelled => errno(libc::ECANCELED),
            Repr::Panic(_) => io::Error::other(err),
        }
    }
}

/// Why an executor's io_uring could not be created: the errno, and the C
/// library's explanation with this machine's figures
/// (`monad_async_executor_describe_error`). Building an executor (or a
/// thread pool) that asks for a ring returns it inside an [`io::Error`]
/// of the errno's kind, so that the message a service logs names the
/// cause: a seccomp filter, the `kernel.io_uring_disabled` sysctl,
/// `RLIMIT_MEMLOCK`, too many entries.
///
/// ```
/// use monad_async::{Executor, RingSetupError};
///
/// // More submission entries than any kernel allows (32,768).
/// let err = Executor::builder().ring_entries(1 << 20).build().unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// let why = err.get_ref().and_then(|e| e.downcast_ref::<RingSetupError>()).unwrap();
/// assert_eq!(why.errno(), libc::EINVAL);
/// assert!(err.to_string().contains("too many entries"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingSetupError {
    errno: i32,
    explanation: String,
}

impl RingSetupError {
    /// The errno `io_uring_setup` (or the executor's set-up around it)
    /// failed with.
    ///
    /// ```
    /// # use monad_async::{Executor, RingSetupError};
    /// # let err = Executor::builder().ring_entries(1 << 20).build().unwrap_err();
    /// let why: &RingSetupError = err.get_ref().unwrap().downcast_ref().unwrap();
    /// assert_eq!(why.errno(), libc::EINVAL);
    /// ```
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The explanation alone, without the errno.
    ///
    /// ```
    /// # use monad_async::{Executor, RingSetupError};
    /// # let err = Executor::builder().ring_entries(1 << 20).build().unwrap_err();
    /// let why: &RingSetupError = err.get_ref().unwrap().downcast_ref().unwrap();
    /// assert!(why.explanation().contains("entries"));
    /// ```
    pub fn explanation(&self) -> &str {
        &self.explanation
    }

    /// The error to return for `errno` from creating an executor with a
    /// ring.
    pub(crate) fn into_io_error(errno: i32) -> io::Error {
        let mut buf = vec![0u8; 512];
        // SAFETY: `buf` is writable for its length; C NUL-terminates.
        let r = unsafe {
            sys::monad_async_executor_describe_error(errno, buf.as_mut_ptr().cast(), buf.len())
        };
        let explanation = if r.error == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            String::from("no explanation available")
        };
        io::Error::new(
            io::Error::from_raw_os_error(errno).kind(),
            RingSetupError { errno, explanation },
        )
    }
}

impl fmt::Display for RingSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot create the executor's io_uring: {} ({}, os error {})",
            self.explanation,
            io::Error::from_raw_os_error(self.errno),
            self.errno
        )
    }
}

impl std::error::Error for RingSetupError {}
