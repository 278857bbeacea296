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
//! * Every C failure becomes an [`io::Error`] in one function (`errno`),
//!   as [`io::Error::from_raw_os_error`]: `raw_os_error()` is exactly the
//!   C errno, never translated (std's `io::Error` holds a code or a custom
//!   message, not both, and matching on the code is what callers and this
//!   crate do). What the codes mean comes from their kinds and from
//!   [`ErrorExt`]:
//!
//!   | errno | `kind()` | [`ErrorExt`] | [`describe`](ErrorExt::describe) |
//!   |---|---|---|---|
//!   | `ETIMEDOUT` (a [deadline](crate::TaskContext::timeout) passed) | `TimedOut` | `is_timed_out` | "timed out" |
//!   | `ETIME` ([`Executor::run`](crate::Executor::run)'s own timeout) | `Uncategorized` | `is_timed_out` | "timed out" |
//!   | `ECANCELED` (the task was cancelled) | `Uncategorized` | `is_cancelled` | "task cancelled" |
//!   | `ESHUTDOWN` (the executor or pool is gone or going) | `Uncategorized` | `is_shutdown` | "executor shut down" |
//!
//!   (`Uncategorized` prints as `Other` and cannot be matched on: use the
//!   helpers.)
//! * A [`JoinError`] is a cancellation, a join that timed out, or a caught
//!   panic. The panic
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
        Err(errno(r.error))
    }
}

/// The [`io::Error`] for an errno value: the one place C failures become
/// errors (see the module invariants for what `raw_os_error` returns).
#[cold]
pub(crate) fn errno(code: libc::c_int) -> io::Error {
    io::Error::from_raw_os_error(code)
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::io::Error {}
}

/// What this crate's errors mean, on any [`io::Error`]: cancelled, timed
/// out, shut down, and the errno behind it.
///
/// The crate's errors keep the C errno as their
/// [`raw_os_error`](io::Error::raw_os_error), so their `Display` is the C
/// library's text ("Operation canceled (os error 125)", "Cannot send
/// after transport endpoint shutdown (os error 108)"); these helpers say
/// what they mean here, and [`describe`](ErrorExt::describe) prints it.
/// Free-function forms: [`is_cancelled`], [`is_timed_out`],
/// [`is_shutdown`].
///
/// ```
/// use monad_async::error::ErrorExt;
/// use monad_async::{Executor, Priority};
/// use std::time::Duration;
///
/// let ex = Executor::new()?;
/// let h = ex.spawn(Priority::Normal, |cx| {
///     cx.timeout(Duration::from_millis(1), |cx| cx.sleep(Duration::from_secs(60)))
/// });
/// let err = h.join().unwrap().unwrap_err();
/// assert!(err.is_timed_out());
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// assert_eq!(err.raw_os_error(), Some(libc::ETIMEDOUT));
///
/// let handle = ex.handle();
/// drop(ex);
/// let err = handle.spawn(Priority::Normal, |_cx| ()).unwrap_err();
/// assert!(err.is_shutdown());
/// assert_eq!(err.describe().to_string(), "executor shut down (os error 108)");
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait ErrorExt: sealed::Sealed {
    /// True for `ECANCELED`: the task was cancelled (by
    /// [`JoinHandle::cancel`](crate::JoinHandle::cancel),
    /// [`Executor::cancel`](crate::Executor::cancel) or the executor's
    /// drop), or the operation was.
    ///
    /// ```
    /// use monad_async::{error::ErrorExt, Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| ());
    /// ex.cancel(&h)?;
    /// let e = std::io::Error::from(h.join().unwrap_err());
    /// assert!(e.is_cancelled());
    /// assert_eq!(e.raw_os_error(), Some(libc::ECANCELED));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn is_cancelled(&self) -> bool;

    /// True for a timeout: `ETIMEDOUT` (a [deadline](crate::TaskContext::timeout)
    /// passed, or the kernel's own, such as a TCP connect's), `ETIME` (the
    /// timeout of [`Executor::run`](crate::Executor::run)), or any error of
    /// kind [`TimedOut`](io::ErrorKind::TimedOut).
    ///
    /// ```
    /// use monad_async::error::ErrorExt;
    /// assert!(std::io::Error::from_raw_os_error(libc::ETIME).is_timed_out());
    /// assert!(std::io::Error::from(std::io::ErrorKind::TimedOut).is_timed_out());
    /// ```
    fn is_timed_out(&self) -> bool;

    /// True for `ESHUTDOWN`: the executor (or thread pool) is being
    /// dropped or is gone, so the spawn or request was refused.
    ///
    /// ```
    /// use monad_async::error::ErrorExt;
    /// assert!(std::io::Error::from_raw_os_error(libc::ESHUTDOWN).is_shutdown());
    /// ```
    fn is_shutdown(&self) -> bool;

    /// The errno behind the error: [`raw_os_error`](io::Error::raw_os_error),
    /// or the code inside a [`RingSetupError`] (whose `raw_os_error` is
    /// `None`).
    ///
    /// ```
    /// use monad_async::{error::ErrorExt, Executor};
    /// let err = Executor::builder().ring_entries(1 << 20).build().unwrap_err();
    /// assert_eq!(err.raw_os_error(), None);
    /// assert_eq!(err.errno(), Some(libc::EINVAL));
    /// ```
    fn errno(&self) -> Option<i32>;

    /// Displays the error as this crate means it: "task cancelled (os
    /// error 125)", "timed out (os error 110)", "executor shut down (os
    /// error 108)"; any other error as its own `Display`.
    ///
    /// ```
    /// use monad_async::error::ErrorExt;
    /// let e = std::io::Error::from_raw_os_error(libc::ECANCELED);
    /// assert_eq!(e.describe().to_string(), "task cancelled (os error 125)");
    /// let other = std::io::Error::from_raw_os_error(libc::ENOENT);
    /// assert_eq!(other.describe().to_string(), other.to_string());
    /// ```
    fn describe(&self) -> Describe<'_>;
}

impl ErrorExt for io::Error {
    fn is_cancelled(&self) -> bool {
        self.raw_os_error() == Some(libc::ECANCELED)
    }

    fn is_timed_out(&self) -> bool {
        matches!(self.raw_os_error(), Some(libc::ETIMEDOUT | libc::ETIME))
            || self.kind() == io::ErrorKind::TimedOut
    }

    fn is_shutdown(&self) -> bool {
        self.raw_os_error() == Some(libc::ESHUTDOWN)
    }

    fn errno(&self) -> Option<i32> {
        self.raw_os_error().or_else(|| {
            self.get_ref()
                .and_then(|e| e.downcast_ref::<RingSetupError>())
                .map(RingSetupError::errno)
        })
    }

    fn describe(&self) -> Describe<'_> {
        Describe(self)
    }
}

/// Displays an [`io::Error`] as this crate means it; from
/// [`ErrorExt::describe`].
///
/// ```
/// use monad_async::error::ErrorExt;
/// let e = std::io::Error::from_raw_os_error(libc::ETIMEDOUT);
/// println!("request failed: {}", e.describe()); // "... timed out (os error 110)"
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Describe<'a>(&'a io::Error);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.0.raw_os_error() {
            Some(libc::ECANCELED) => "task cancelled",
            Some(libc::ETIMEDOUT | libc::ETIME) => "timed out",
            Some(libc::ESHUTDOWN) => "executor shut down",
            _ => return fmt::Display::fmt(self.0, f),
        };
        write!(
            f,
            "{what} (os error {})",
            self.0.raw_os_error().unwrap_or(0)
        )
    }
}

/// True for `ECANCELED`; see [`ErrorExt::is_cancelled`].
///
/// ```
/// assert!(monad_async::error::is_cancelled(&std::io::Error::from_raw_os_error(libc::ECANCELED)));
/// ```
pub fn is_cancelled(err: &io::Error) -> bool {
    err.is_cancelled()
}

/// True for a timeout; see [`ErrorExt::is_timed_out`].
///
/// ```
/// assert!(monad_async::error::is_timed_out(&std::io::Error::from_raw_os_error(libc::ETIMEDOUT)));
/// ```
pub fn is_timed_out(err: &io::Error) -> bool {
    err.is_timed_out()
}

/// True for `ESHUTDOWN`; see [`ErrorExt::is_shutdown`].
///
/// ```
/// assert!(monad_async::error::is_shutdown(&std::io::Error::from_raw_os_error(libc::ESHUTDOWN)));
/// ```
pub fn is_shutdown(err: &io::Error) -> bool {
    err.is_shutdown()
}

/// Why a task did not produce its value: it was cancelled, or it panicked.
///
/// Returned by [`JoinHandle::join`](crate::JoinHandle::join). Converts into
/// an [`io::Error`]: a cancellation becomes `ECANCELED`, a timed-out join
/// `ETIMEDOUT`, a panic an error of kind [`io::ErrorKind::Other`] wrapping
/// this `JoinError`.
///
/// # Example
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let h = ex.build_task().name("conn-42").spawn(|_cx| -> u32 { panic!("boom") });
/// let id = h.id();
/// let err = h.join().unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.to_string(), format!("task 'conn-42' (id {id}) panicked: boom"));
/// assert_eq!((err.task_id(), err.task_name()), (Some(id), Some("conn-42")));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinError {
    repr: Repr,
}

/// Pointer-sized: the rare cases (a panic, a timed-out join) are boxed, so
/// that a `Result<T, JoinError>` is barely larger than `T` (a
/// `Result<u64, _>` comes back from `join` in two registers).
enum Repr {
    Cancelled,
    Rare(Box<Rare>),
}

enum Rare {
    Panic(Panic),
    TimedOut,
}

struct Panic {
    payload: SyncWrapper<Box<dyn Any + Send + 'static>>,
    message: Option<String>,
    /// The panicked work's [id](crate::JoinHandle::id) and
    /// [name](crate::JoinHandle::name), for the message a service logs.
    id: u64,
    name: Option<Box<str>>,
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

    pub(crate) fn timed_out() -> Self {
        JoinError {
            repr: Repr::Rare(Box::new(Rare::TimedOut)),
        }
    }

    pub(crate) fn panic_of(
        payload: Box<dyn Any + Send + 'static>,
        id: u64,
        name: Option<Box<str>>,
    ) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Some((*s).to_owned())
        } else {
            payload.downcast_ref::<String>().cloned()
        };
        JoinError {
            repr: Repr::Rare(Box::new(Rare::Panic(Panic {
                payload: SyncWrapper(payload),
                message,
                id,
                name,
            }))),
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

    /// True when the join gave up waiting: it was made inside
    /// [`TaskContext::timeout`](crate::TaskContext::timeout) and the
    /// deadline passed first. The task itself goes on, detached (its
    /// result is dropped); use
    /// [`join_timeout`](crate::JoinHandle::join_timeout) to keep the
    /// handle instead.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let slow = cx.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(50))).unwrap();
    ///     cx.timeout(Duration::from_millis(1), |_cx| slow.join())
    /// });
    /// assert!(h.join().unwrap().unwrap_err().is_timed_out());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_timed_out(&self) -> bool {
        matches!(&self.repr, Repr::Rare(r) if matches!(**r, Rare::TimedOut))
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
        matches!(&self.repr, Repr::Rare(r) if matches!(**r, Rare::Panic(_)))
    }

    /// The [id](crate::JoinHandle::id) of the work that panicked; `None`
    /// for a cancellation or a timed-out join.
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().threads(1).build()?;
    /// let h = pool.spawn(Priority::Normal, |_cx| -> () { panic!("oops") });
    /// let id = h.id();
    /// assert_eq!(h.join().unwrap_err().task_id(), Some(id));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn task_id(&self) -> Option<u64> {
        match &self.repr {
            Repr::Rare(r) => match &**r {
                Rare::Panic(p) => Some(p.id),
                Rare::TimedOut => None,
            },
            Repr::Cancelled => None,
        }
    }

    /// The [name](crate::JoinHandle::name) of the work that panicked, if
    /// it had one; `None` also for a cancellation or a timed-out join.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.build_task().name("flusher").spawn(|_cx| -> () { panic!("disk full") });
    /// assert_eq!(h.join().unwrap_err().task_name(), Some("flusher"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn task_name(&self) -> Option<&str> {
        match &self.repr {
            Repr::Rare(r) => match &**r {
                Rare::Panic(p) => p.name.as_deref(),
                Rare::TimedOut => None,
            },
            Repr::Cancelled => None,
        }
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

    /// The panic payload, or `Err(self)` when the task was cancelled (or
    /// the join timed out).
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
            Repr::Rare(rare) => match *rare {
                Rare::Panic(panic) => Ok(panic.payload.into_inner()),
                Rare::TimedOut => Err(JoinError::timed_out()),
            },
            Repr::Cancelled => Err(JoinError::cancelled()),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("task was cancelled"),
            Repr::Rare(rare) => match &**rare {
                Rare::TimedOut => f.write_str("timed out waiting for the task"),
                Rare::Panic(panic) => {
                    f.write_str("task ")?;
                    if let Some(name) = &panic.name {
                        write!(f, "'{name}' ")?;
                    }
                    write!(f, "(id {}) panicked", panic.id)?;
                    match &panic.message {
                        Some(m) => write!(f, ": {m}"),
                        None => Ok(()),
                    }
                }
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Rare(rare) => match &**rare {
                Rare::TimedOut => f.write_str("JoinError::TimedOut"),
                Rare::Panic(panic) => f
                    .debug_struct("JoinError::Panic")
                    .field("id", &panic.id)
                    .field("name", &panic.name)
                    .field("message", &panic.message)
                    .finish_non_exhaustive(),
            },
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    /// A cancellation becomes `ECANCELED`, a join that timed out
    /// `ETIMEDOUT` (kind [`TimedOut`](io::ErrorKind::TimedOut)); a panic
    /// becomes an error of kind [`io::ErrorKind::Other`] that wraps the
    /// `JoinError` (get it back with [`io::Error::into_inner`] and
    /// `downcast`).
    fn from(err: JoinError) -> io::Error {
        if err.is_cancelled() {
            errno(libc::ECANCELED)
        } else if err.is_timed_out() {
            errno(libc::ETIMEDOUT)
        } else {
            io::Error::other(err)
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
