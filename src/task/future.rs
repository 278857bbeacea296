//! [`JoinHandle`] as a [`Future`]: any async runtime can `.await` a task.
//!
//! # Invariants
//!
//! * A pending poll leaves its [`Waker`](std::task::Waker) in the slot
//!   (replacing the previous poll's unless it would wake the same task);
//!   the work's exit wakes it once, on the executor's thread. The slot's
//!   `waker` module gives the protocol that keeps this race-free against
//!   the exit, on any thread.
//! * A poll that returns `Ready` takes the outcome and leaves the handle
//!   *spent*: its slot stays held (so it is not reused under it) until the
//!   handle is dropped, which then finds nothing to drop.
//! * Dropping a pending handle drops its registered waker and detaches the
//!   task, as dropping any handle does.

use super::{on_thread, running_task, JoinHandle};
use crate::error::JoinError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Awaiting a handle waits for the task without blocking the thread (but
/// see the executor's own thread, below) and gives what
/// [`join`](JoinHandle::join) would.
///
/// The task runs wherever it was spawned: an [`Executor`](crate::Executor)
/// runs only while its thread drives it ([`run`](crate::Executor::run),
/// [`run_until_idle`](crate::Executor::run_until_idle), a `join`), a
/// [`ThreadPool`](crate::ThreadPool) on its own threads. Awaiting from a
/// tokio (or any) runtime while the executor is driven on another thread,
/// or its work runs on a thread pool, is the normal case; if nothing ever
/// drives the executor, the handle simply stays pending.
///
/// * On the executor's own thread outside its tasks (where no other
///   thread can drive it, so a pending await would wait forever), a poll
///   runs the executor until the work is over, as `join` does, blocking
///   that thread meanwhile.
/// * Inside a task (through [`TaskContext::block_on`](crate::TaskContext::block_on)),
///   the awaiting task parks while its executor runs other work.
/// * Dropping a pending handle detaches the task, as dropping it always
///   does. Dropping the executor cancels its work: the await then ends in
///   [`Cancelled`](JoinError::is_cancelled) (a thread pool's drop waits
///   for its work instead).
///
/// ```
/// use monad_async::{Priority, ThreadPool};
///
/// let pool = ThreadPool::builder().threads(2).build()?;
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let sum = rt.block_on(async {
///     let urgent = pool.spawn(Priority::High, |_cx| 6 * 7);
///     let batch = pool.spawn(Priority::Low, |_cx| (1..=10u64).sum::<u64>());
///     urgent.await.unwrap() + batch.await.unwrap()
/// });
/// assert_eq!(sum, 42 + 55);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// On the executor's own thread, any `block_on` will do:
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let h = ex.spawn(Priority::Normal, |_cx| "done");
/// assert_eq!(futures::executor::block_on(h).unwrap(), "done");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// When polled again after it returned `Ready` (the handle is spent; the
/// result was handed out). Wrap it in `futures::FutureExt::fuse` to poll
/// it freely. On the executor's own thread, where `join` would panic.
impl<T: 'static> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let slot = this.slot();
        if !slot.is_done() {
            if slot.owner.is_some_and(on_thread) && running_task().is_none() {
                // SAFETY: not DONE, on the owner thread outside any task:
                // the executor is alive (its drop completes all work and
                // runs on this thread, which is here).
                unsafe { (*slot.local).wait_for(slot) }?;
            } else {
                // SAFETY: we are the slot's handle.
                if !unsafe { slot.register_waker(cx.waker()) } {
                    return Poll::Pending;
                }
            }
        }
        // SAFETY: DONE observed with acquire ordering, by the handle.
        if unsafe { slot.outcome_taken() } {
            panic!("JoinHandle polled after it returned Ready");
        }
        // SAFETY: as above, and the outcome is there: this is its only take.
        Poll::Ready(unsafe { slot.take_result::<T>() })
    }
}
