//! The running task, reached without its [`TaskContext`](super::TaskContext):
//! for waits inside library code (the [`sync`](crate::sync) primitives)
//! that a task calls through plain `&self` methods.
//!
//! # Invariants
//!
//! * A [`Current`] is only made by [`Current::get`], on the thread running
//!   that task, and is neither `Send` nor `Sync`: its park only makes
//!   sense on the task's own stack.
//! * [`wake_raw`] needs the task alive (not destroyed) for the call; the
//!   callers guarantee it by keeping the woken task from returning until
//!   the wake call is over (the waiter spins on a "being woken" state).

use super::{cancelled_at_suspension, Priority, Slot};
use crate::sys;
use std::io;
use std::marker::PhantomData;

/// The task running on this thread (of any executor of this crate,
/// thread pools included).
pub(crate) struct Current {
    task: sys::monad_async_task,
    /// The wake token of its piece of work (fixed while it runs).
    token: u64,
    _not_send: PhantomData<*mut ()>,
}

impl Current {
    /// The task running on this thread, if any, with its wake token: one
    /// C call for both.
    #[inline]
    pub(crate) fn get() -> Option<Current> {
        let mut token = 0u64;
        // SAFETY: no preconditions; `token` is written only when a task
        // runs.
        let task =
            unsafe { sys::monad_async_task_current(&mut token) }.value as sys::monad_async_task;
        (!task.is_null()).then_some(Current {
            task,
            token,
            _not_send: PhantomData,
        })
    }

    /// The raw task, for [`wake_raw`].
    #[inline]
    pub(crate) fn raw(&self) -> sys::monad_async_task {
        self.task
    }

    /// The shared part of the task's executor, or null for a task of a
    /// thread pool. Alive while the task is (its executor outlives it).
    #[inline]
    pub(crate) fn home(&self) -> *const crate::executor::Shared {
        // SAFETY: every task of this crate carries a slot; `local` is
        // fixed at creation and, when set, is the live owner-thread state
        // of the executor running this task here.
        unsafe {
            let local = Slot::of(self.task).local;
            if local.is_null() {
                std::ptr::null()
            } else {
                std::sync::Arc::as_ptr((*local).shared_ref())
            }
        }
    }

    /// The wake token of the task's current piece of work.
    #[inline]
    pub(crate) fn token(&self) -> u64 {
        self.token
    }

    /// The task's CPU priority now.
    #[inline]
    pub(crate) fn priority(&self) -> Priority {
        // SAFETY: the running task's priority is only written on this
        // thread.
        Priority::from_sys(unsafe { (*self.task).priority.cpu })
    }

    /// Parks the task until a wake names its work, as
    /// [`TaskContext::park`](super::TaskContext::park). `Err(errno)` (a
    /// cancel, a deadline, `ENOTSUP` on the none switcher) is the caller's
    /// cue to abandon its wait: it takes itself out of whatever queue it
    /// is in, then turns the code into an error with
    /// [`failed`](Current::failed). Never unwinds, so a waiter linked into
    /// a queue from its stack can always unlink itself first.
    #[inline]
    pub(crate) fn park(&self) -> Result<(), i32> {
        // SAFETY: self.task is the task running on this thread.
        let r = unsafe { sys::monad_async_task_park(self.task, u64::MAX) };
        if r.error == 0 {
            Ok(())
        } else {
            Err(r.error)
        }
    }

    /// The error for a failed [`park`](Current::park), once the wait is
    /// abandoned. A task that keeps waiting after being told `ECANCELED`
    /// many times is unwound here instead, as at every suspension point.
    #[cold]
    pub(crate) fn failed(&self, errno: i32) -> io::Error {
        if errno == libc::ECANCELED {
            // SAFETY: self.task runs here and was made by this crate.
            unsafe { cancelled_at_suspension(self.task) };
        }
        io::Error::from_raw_os_error(errno)
    }
}

/// Wakes the work of `task` that `token` names, from any thread: true if
/// this resumed a parked task.
///
/// # Safety
/// `task` must not be destroyed during the call (see the module's
/// invariants).
#[inline]
pub(crate) unsafe fn wake_raw(task: sys::monad_async_task, token: u64) -> bool {
    // SAFETY: per the contract; the wake is thread-safe and checks the
    // token.
    let r = unsafe { sys::monad_async_task_wake(task, token) };
    r.error == 0 && r.value == 1
}

/// [`wake_raw`] from the woken task's executor thread, deferred when the
/// caller is one of that executor's tasks: applied by the time the caller
/// suspends, and if it parks next and the woken task would run next, by
/// switching straight to it (`monad_async_task_wake_deferred`).
///
/// # Safety
/// As [`wake_raw`].
#[inline]
pub(crate) unsafe fn wake_deferred(task: sys::monad_async_task, token: u64) {
    // SAFETY: per the contract; the call checks the token and falls back
    // to an ordinary wake wherever it cannot defer.
    let r = unsafe { sys::monad_async_task_wake_deferred(task, token) };
    debug_assert!(r.error == 0 || r.error == libc::ESRCH);
}
