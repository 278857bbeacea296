//! [`TaskContext::block_on`]: a [`Future`] run to completion inside a
//! task, which parks (not its thread) while the future is pending.
//!
//! # How it waits
//!
//! The future is polled on the task's stack with a [`Waker`] that wakes
//! this piece of work ([`TaskWaker`]); between polls the task parks. Park's
//! permit makes a wake that lands between a `Pending` poll and the park
//! not lost: the park then returns at once and the future is polled again.
//! A park may also return for an unrelated, earlier wake; the future is
//! then polled once more than needed, which futures allow.
//!
//! # Invariants
//!
//! * The waker handed to the future's first poll is *borrowed*: it points
//!   at a record on this task's stack and costs no allocation and no
//!   reference count. A future can keep it only by cloning it (`&Waker` is
//!   all it gets, for the duration of one poll), and a clone is an *owned*
//!   waker: an `Arc<TaskWaker>`, which may outlive the `block_on`, the work
//!   and the executor. Waking a finished piece of work, or one of a dropped
//!   executor, does nothing (see [`TaskWaker`]).
//! * The stack record is read from other threads (a borrowed waker's
//!   `wake_by_ref` or `clone`, during a poll) only for the task pointer,
//!   the token and the executor's shared part (or the thread pool's
//!   liveness guard), which is `Sync`; it outlives
//!   every borrowed waker, whose lifetime is one poll.
//! * The future is pinned on the task's stack and dropped there: before
//!   `block_on` returns, whatever it returns.

use super::{HomeRef, TaskContext, TaskWaker};
use crate::sys;
use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// What a borrowed waker points at, on the task's stack.
struct Borrowed<'a> {
    task: sys::monad_async_task,
    token: u64,
    home: HomeRef<'a>,
}

impl Borrowed<'_> {
    /// An owned waker for the same work.
    fn to_task_waker(&self) -> TaskWaker {
        TaskWaker {
            task: self.task,
            token: self.token,
            home: self.home.to_owned(),
        }
    }
}

/// The vtable of the borrowed waker: `data` is a `*const Borrowed`.
static BORROWED: RawWakerVTable = RawWakerVTable::new(
    borrowed_clone,
    borrowed_wake_by_ref,
    borrowed_wake_by_ref,
    borrowed_drop,
);

/// The vtable of an owned waker: `data` is an `Arc<TaskWaker>` (from
/// `Arc::into_raw`), one strong count per waker.
static OWNED: RawWakerVTable =
    RawWakerVTable::new(owned_clone, owned_wake, owned_wake_by_ref, owned_drop);

unsafe fn borrowed_clone(data: *const ()) -> RawWaker {
    // SAFETY: a borrowed waker's data is its live stack record (module
    // invariants: the record outlives the borrowed waker).
    let b = unsafe { &*data.cast::<Borrowed<'_>>() };
    let owned = Arc::new(b.to_task_waker());
    RawWaker::new(Arc::into_raw(owned).cast(), &OWNED)
}

unsafe fn borrowed_wake_by_ref(data: *const ()) {
    // SAFETY: as for borrowed_clone.
    let b = unsafe { &*data.cast::<Borrowed<'_>>() };
    b.home.wake_task(b.task, b.token);
}

unsafe fn borrowed_drop(_data: *const ()) {}

unsafe fn owned_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` came from Arc::into_raw and this waker holds a count.
    unsafe { Arc::increment_strong_count(data.cast::<TaskWaker>()) };
    RawWaker::new(data, &OWNED)
}

unsafe fn owned_wake(data: *const ()) {
    // SAFETY: `data` came from Arc::into_raw; waking by value consumes
    // this waker's count.
    let w = unsafe { Arc::from_raw(data.cast::<TaskWaker>()) };
    w.wake();
}

unsafe fn owned_wake_by_ref(data: *const ()) {
    // SAFETY: `data` came from Arc::into_raw and this waker holds a count.
    let w = unsafe { &*data.cast::<TaskWaker>() };
    w.wake();
}

unsafe fn owned_drop(data: *const ()) {
    // SAFETY: `data` came from Arc::into_raw; the count is this waker's.
    drop(unsafe { Arc::from_raw(data.cast::<TaskWaker>()) });
}

impl TaskContext<'_> {
    /// Runs `future` to completion inside this task: polls it, and parks
    /// the task (not the thread: the executor runs other tasks meanwhile)
    /// whenever it is pending, until its waker is woken.
    ///
    /// The waker the future sees is `Send + Sync`, wakes this task from
    /// any thread or task, and may be kept after the task has exited (a
    /// late wake does nothing). Polling a ready future allocates nothing;
    /// a future that keeps the waker clones it (one small allocation per
    /// clone).
    ///
    /// Any runtime-agnostic future works: [`JoinHandle`](crate::JoinHandle)s
    /// of this crate (of any executor or [`ThreadPool`](crate::ThreadPool)), `tokio::sync`
    /// channels, locks and notifications, `futures` channels, and anything
    /// built on wakers alone. Tokio's own I/O and timers also need tokio's
    /// reactor: they panic when *created* outside a tokio runtime context,
    /// and make progress only while that runtime runs (a multi-thread
    /// runtime drives its reactor on its own threads). Create them on the
    /// tokio side, or under a runtime's `Handle::enter` guard held only
    /// for the constructor call (never across a suspension: the guard is
    /// per thread, and other tasks run on this thread while this one is
    /// parked). This crate's own [`io`](crate::io) needs none of that.
    ///
    /// # Errors
    ///
    /// Whatever a park returns ends the `block_on` with that error, and
    /// the future is dropped (on this task, before `block_on` returns):
    /// `ECANCELED` when this task is cancelled while the future is
    /// pending; `ENOTSUP` when the future is pending on an executor built
    /// with [`Switcher::None`](crate::Switcher::None), whose tasks cannot
    /// park. Works the same in a [`ThreadPool`](crate::ThreadPool)'s task
    /// (with a stackful switcher).
    ///
    /// # Panics
    ///
    /// A panic in the future's `poll` unwinds this task like any panic in
    /// its closure (its [`join`](crate::JoinHandle::join) reports it).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// // A task awaiting a tokio channel, fed from another thread.
    /// let (async_tx, mut async_rx) = tokio::sync::mpsc::channel::<u32>(4);
    /// let h = ex.spawn(Priority::High, move |cx| {
    ///     tx.send(()).unwrap();
    ///     let first = cx.block_on(async_rx.recv())?;
    ///     let second = cx.block_on(async { async_rx.recv().await })?;
    ///     Ok::<_, std::io::Error>((first, second))
    /// });
    /// let feeder = std::thread::spawn(move || {
    ///     rx.recv().unwrap();
    ///     async_tx.blocking_send(1).unwrap();
    ///     async_tx.blocking_send(2).unwrap();
    /// });
    /// assert_eq!(h.join().unwrap()?, (Some(1), Some(2)));
    /// feeder.join().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn block_on<F: Future>(&mut self, future: F) -> io::Result<F::Output> {
        let mut future = pin!(future);
        let mut token = 0u64;
        // SAFETY: self.task is live and attached (it is running).
        let r = unsafe { sys::monad_async_task_wake_token(self.task, &mut token) };
        debug_assert_eq!(r.error, 0);
        let record = Borrowed {
            task: self.task,
            token,
            // Alive while this task runs, which outlives `record`.
            home: self.home(),
        };
        let raw = RawWaker::new((&record as *const Borrowed<'_>).cast(), &BORROWED);
        // SAFETY: BORROWED's functions accept a pointer to a live
        // `Borrowed`, which `record` is for as long as `waker` lives; its
        // drop is a no-op, so ManuallyDrop only saves the call.
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
        let mut poll_cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut poll_cx) {
                return Ok(value);
            }
            self.park()?;
        }
    }
}
