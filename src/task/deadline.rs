//! Deadlines: [`TaskContext::timeout`] and [`TaskContext::timeout_at`]
//! bound every wait of the closure they run, and
//! [`JoinHandle::join_timeout`] bounds one join.
//!
//! # Invariants
//!
//! * A deadline is the C task's own (`monad_async_task_set_deadline`, a
//!   tick count), read by every suspension point: inside the closure a
//!   sleep, park, yield, join or I/O operation still waiting when it
//!   passes returns `ETIMEDOUT` (kind [`TimedOut`](std::io::ErrorKind::TimedOut)),
//!   one started after it returns `ETIMEDOUT` at once. An operation in
//!   flight is cancelled in the kernel, and the task resumes only once the
//!   kernel is done with it, so the buffers the closure lent it are free
//!   again when the error comes back.
//! * Nested deadlines: the earliest wins. The deadline in force before
//!   the call is put back when the closure returns, and when it unwinds
//!   (a guard's drop), so the task goes on normally afterwards; unlike
//!   cancellation, a deadline is not sticky.
//! * A deadline in ticks is never earlier than the [`Instant`] asked for:
//!   the span is padded by 500 ppm and a microsecond, as the C side pads
//!   its sleeps (the tick rate is calibrated, not exact).
//! * `join_timeout` hands the handle back whenever it stops waiting before
//!   the work is over, so the work is never detached by a timeout.

use super::{on_thread, Current, JoinHandle, TaskContext};
use crate::error::JoinError;
use crate::sys;
use crate::ticks;
use std::time::{Duration, Instant};

/// The tick deadline `span` from now, never early; never 0 ("none").
fn ticks_after(span: Duration) -> u64 {
    let ns = span.as_nanos();
    let padded = ns + ns / 2000 + 1000;
    let span_ticks = padded * u128::from(ticks::ticks_per_second()) / 1_000_000_000;
    let now = ticks::ticks_now();
    u64::try_from(span_ticks)
        .ok()
        .and_then(|t| now.checked_add(t))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Puts the task's previous deadline back, also when the closure unwinds.
struct Restore {
    task: sys::monad_async_task,
    previous: u64,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: the guard lives inside the closure call of the task
        // running on this thread (a TaskContext cannot leave it), so
        // `task` is that task, running.
        let r = unsafe { sys::monad_async_task_set_deadline(self.task, self.previous) };
        debug_assert_eq!(r.error, 0);
    }
}

impl TaskContext<'_> {
    /// Runs `f` with every wait it makes bounded by `timeout` from now:
    /// a sleep, park, yield, join or I/O operation still waiting when the
    /// time is up returns an error of kind
    /// [`TimedOut`](std::io::ErrorKind::TimedOut) (`ETIMEDOUT`; see
    /// [`ErrorExt::is_timed_out`](crate::error::ErrorExt::is_timed_out)),
    /// and so does one started after it. An operation in flight is
    /// cancelled in the kernel first: its buffer is free again when the
    /// error comes back. The task goes on normally afterwards (unlike
    /// [`cancel`](crate::JoinHandle::cancel)), with the deadline that was
    /// in force before, if any.
    ///
    /// Nested calls: the earliest deadline wins. A plain
    /// [`join`](JoinHandle::join) that times out returns a
    /// [`JoinError`] that [`is_timed_out`](JoinError::is_timed_out) (the
    /// joined task goes on, detached); a
    /// [`park_timeout`](TaskContext::park_timeout) whose own, earlier,
    /// timeout passes returns `Ok(false)` as ever. Cancellation wins over
    /// the deadline (`ECANCELED`).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::io::ErrorKind;
    /// use std::time::{Duration, Instant};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let start = Instant::now();
    ///     let r = cx.timeout(Duration::from_millis(5), |cx| cx.sleep(Duration::from_secs(60)));
    ///     assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
    ///     assert!(start.elapsed() < Duration::from_secs(30));
    ///     cx.sleep(Duration::from_millis(1)) // normal again
    /// });
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timeout<R>(&mut self, timeout: Duration, f: impl FnOnce(&mut Self) -> R) -> R {
        self.with_deadline(ticks_after(timeout), f)
    }

    /// As [`timeout`](TaskContext::timeout), until `deadline`.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::{Duration, Instant};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let deadline = Instant::now() + Duration::from_millis(20);
    ///     // One deadline for several steps; the inner, earlier one wins.
    ///     cx.timeout_at(deadline, |cx| {
    ///         cx.sleep(Duration::from_millis(1))?;
    ///         let inner = cx.timeout(Duration::from_millis(1), |cx| cx.park());
    ///         assert!(inner.unwrap_err().kind() == std::io::ErrorKind::TimedOut);
    ///         cx.park() // the outer deadline ends this one
    ///     })
    /// });
    /// let err = h.join().unwrap().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn timeout_at<R>(&mut self, deadline: Instant, f: impl FnOnce(&mut Self) -> R) -> R {
        let ticks = ticks_after(deadline.saturating_duration_since(Instant::now()));
        self.with_deadline(ticks, f)
    }

    fn with_deadline<R>(&mut self, ticks: u64, f: impl FnOnce(&mut Self) -> R) -> R {
        let mut previous = 0u64;
        // SAFETY: self.task is the task running on this thread.
        let r = unsafe { sys::monad_async_task_get_deadline(self.task, &mut previous) };
        debug_assert_eq!(r.error, 0);
        let effective = if previous != 0 {
            previous.min(ticks)
        } else {
            ticks
        };
        // SAFETY: as above.
        let r = unsafe { sys::monad_async_task_set_deadline(self.task, effective) };
        debug_assert_eq!(r.error, 0);
        let _restore = Restore {
            task: self.task,
            previous,
        };
        f(self)
    }
}

impl<T: 'static> JoinHandle<T> {
    /// As [`join`](JoinHandle::join), waiting at most `timeout`: the
    /// result if the work finished in time, else the handle back
    /// (`Err(handle)`; the work goes on, and the handle can be joined,
    /// polled or cancelled later).
    ///
    /// It waits as `join` does: inside a task it parks it (and also
    /// stops at the task's [deadline](TaskContext::timeout), or when the
    /// task is cancelled, handing the handle back then too); on the
    /// executor's thread outside its tasks it runs the executor; on any
    /// other thread it blocks. A zero timeout only checks.
    ///
    /// # Panics
    ///
    /// As [`join`](JoinHandle::join).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let slow = cx.spawn(Priority::Normal, |cx| {
    ///         cx.sleep(Duration::from_millis(20))?;
    ///         Ok::<_, std::io::Error>(7)
    ///     })?;
    ///     let slow = slow.join_timeout(Duration::from_millis(1)).unwrap_err(); // too soon
    ///     let seven = slow.join_timeout(Duration::from_secs(60)).ok().unwrap().unwrap()?;
    ///     Ok::<_, std::io::Error>(seven)
    /// });
    /// assert_eq!(h.join().unwrap()?, 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        let until = Instant::now().checked_add(timeout);
        if self.is_finished() || self.wait_until(until) {
            Ok(self.take())
        } else {
            Err(self)
        }
    }

    /// Waits until the work is over or `until` (None: no limit) passes:
    /// true if it is over. See [`join_timeout`](JoinHandle::join_timeout).
    #[cold]
    fn wait_until(&self, until: Option<Instant>) -> bool {
        let slot = self.slot();
        let on_owner = slot.owner.is_some_and(on_thread);
        if let Some(current) = Current::get() {
            // SAFETY: we are the slot's handle.
            match unsafe { slot.join_park(&current, until) } {
                Ok(true) => return true,
                // Timed out, or the joining task was cancelled: hand the
                // handle back.
                Err(_) => return false,
                // The calling task cannot park (the none switcher).
                Ok(false) => assert!(
                    !on_owner,
                    "JoinHandle::join_timeout inside a task that cannot suspend \
                     (Switcher::None), joining unfinished work of its own executor"
                ),
            }
            return Self::block(slot, until);
        }
        if on_owner {
            // SAFETY: not DONE and on the owner thread, outside any task,
            // so the executor is alive (dropping it completes all work,
            // and it can only be dropped on this thread, which is here).
            return unsafe { (*slot.local).wait_for_until(slot, until) }.unwrap_or(false);
        }
        Self::block(slot, until)
    }

    fn block(slot: &super::Slot, until: Option<Instant>) -> bool {
        match until {
            Some(t) => slot.block_until_done_or(t),
            None => {
                slot.block_until_done();
                true
            }
        }
    }
}
