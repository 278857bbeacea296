//! Tasks: the work a closure does on its own stack, its context, its
//! result, and the trampoline that runs it.
//!
//! # How a spawn is wired to C
//!
//! Every C task carries a `Slot` (its `user_ptr`), created with the task
//! and pooled with it: a spawn stores its closure in the slot (in place
//! when small, else boxed), the trampoline leaves the outcome there, and
//! the [`JoinHandle`] takes it from there. A spawn on a warm executor
//! therefore allocates nothing. The slot's module documents how the
//! executor side and the handle share it, and when it is reused or freed.
//! `user_code` is `trampoline::<F, T>` and `user_on_exit` is
//! `on_exit::<F, T>`, monomorphised per closure type, so the C function
//! pointers are the only "vtable" needed.
//!
//! # Invariants
//!
//! * The closure `F` is only ever touched on the executor's thread: taken
//!   and run by the trampoline, or dropped unrun by `on_exit` (a task
//!   cancelled before it launched), or dropped by the spawning call itself
//!   when the attach fails (then the task was never the executor's). So a
//!   handle never reaches an `F`, which is why a [`JoinHandle<T>`] may be
//!   `Send` for `T: Send` even when `F` is not. (A thread pool's work
//!   cancelled while queued ends on the cancelling thread; the pool only
//!   takes `Send` closures.)
//! * A panic never crosses into C: the trampoline runs the closure inside
//!   `catch_unwind` and stores the payload; `on_exit` catches panics from
//!   the drops it performs.
//! * The outcome and the raw stats are written on the executor's thread
//!   before the `DONE` bit is published with release ordering, and read
//!   only after it is observed with acquire ordering. The stats are
//!   converted to a [`TaskStats`] only when asked for.
//! * The C task a slot names is valid, and carries that slot's work, until
//!   the work is `DONE` (its `on_exit` returns the task to a pool, after
//!   which it may carry other work).

use crate::error::{check, JoinError};
use crate::executor::{ExecutorHandle, Local};
use crate::sys::{self, atomics};
use crate::ticks;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

mod block_on;
mod builder;
mod current;
mod deadline;
mod future;
mod home;
mod priority;
mod slot;

pub use builder::TaskBuilder;
pub(crate) use current::{wake_deferred, wake_raw, Current};
pub(crate) use home::{HomeRef, WakeHome};
pub(crate) use slot::{Foreign, Slot};

/// A priority level for a task's CPU time (and its I/O).
///
/// Among runnable tasks an executor always runs a [`High`](Priority::High)
/// one first, then [`Normal`](Priority::Normal), then
/// [`Low`](Priority::Low); within one level, the task that became runnable
/// first (first in, first out; a yield goes to the back of its level).
///
/// ```
/// use monad_async::{Executor, Priority};
/// use std::{cell::RefCell, rc::Rc};
///
/// let ex = Executor::new()?;
/// let order = Rc::new(RefCell::new(Vec::new()));
/// for p in [Priority::Low, Priority::Normal, Priority::High] {
///     let order = order.clone();
///     ex.spawn(p, move |_cx| order.borrow_mut().push(p));
/// }
/// ex.run_until_idle()?;
/// assert_eq!(*order.borrow(), [Priority::High, Priority::Normal, Priority::Low]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Runs before everything else.
    High,
    /// The default.
    #[default]
    Normal,
    /// Runs when nothing of higher priority is runnable.
    Low,
}

impl Priority {
    /// Every level, highest first.
    ///
    /// ```
    /// use monad_async::Priority;
    /// assert_eq!(Priority::ALL[0], Priority::High);
    /// ```
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    pub(crate) fn to_sys(self) -> sys::monad_async_priority {
        match self {
            Priority::High => sys::monad_async_priority::monad_async_priority_high,
            Priority::Normal => sys::monad_async_priority::monad_async_priority_normal,
            Priority::Low => sys::monad_async_priority::monad_async_priority_low,
        }
    }

    /// Its index in `[high, normal, low]` arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn from_sys(p: sys::monad_async_priority) -> Priority {
        match p.0 {
            0 => Priority::High,
            2 => Priority::Low,
            _ => Priority::Normal,
        }
    }
}

/// Time figures of one task's piece of work.
///
/// All zero when the executor was built with
/// [`time_tracking(false)`](crate::ExecutorBuilder::time_tracking).
///
/// ```
/// use monad_async::{Executor, Priority};
/// use std::time::Duration;
///
/// let ex = Executor::new()?;
/// let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(2)));
/// ex.run_until_idle()?;
/// let stats = h.stats().expect("finished");
/// assert_eq!(stats.suspensions, 1);
/// assert!(stats.total >= Duration::from_millis(2));
/// assert!(stats.executing < stats.total);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TaskStats {
    /// From attach (spawn) to the first instruction of the closure. Zero
    /// for a task cancelled before it launched.
    pub launch_latency: Duration,
    /// Time spent running on the task's stack, over all its slices.
    pub executing: Duration,
    /// From attach to exit (for a running task: to now).
    pub total: Duration,
    /// How many times the task suspended (yields and sleeps).
    pub suspensions: u64,
    /// The work's [id](JoinHandle::id).
    pub id: u64,
    /// The work's [name](JoinHandle::name), if it was given one.
    pub name: Option<std::sync::Arc<str>>,
}

/// The raw figures of a finished piece of work, captured at its exit: a
/// few plain copies, converted to a [`TaskStats`] only when someone asks
/// (the conversion divides by the tick rate, which costs more than the
/// whole copy).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawStats {
    attached: u64,
    launched: u64,
    exited: u64,
    executing: u64,
    suspensions: u64,
}

impl RawStats {
    /// The figures of a task whose work is over.
    ///
    /// # Safety
    /// `task` must be live and exited, read on its executor's thread.
    #[inline]
    pub(crate) unsafe fn of_exited(task: sys::monad_async_task) -> RawStats {
        // SAFETY: per the contract the task is live and no other thread
        // writes these plain fields now.
        let (t, suspensions) = unsafe { (&(*task).ticks, (*task).suspensions) };
        RawStats {
            attached: t.attached,
            launched: t.launched,
            exited: t.exited,
            executing: t.executing,
            suspensions,
        }
    }

    /// Converts the ticks to times.
    pub(crate) fn to_stats(self) -> TaskStats {
        TaskStats {
            launch_latency: ticks::span(self.attached, self.launched),
            executing: ticks::ticks_to_duration(self.executing),
            total: ticks::span(self.attached, self.exited),
            suspensions: self.suspensions,
            id: 0,
            name: None,
        }
    }
}

impl TaskStats {
    /// The figures so far of the task running now.
    ///
    /// # Safety
    /// `task` must be the task running on this thread.
    unsafe fn so_far(task: sys::monad_async_task) -> TaskStats {
        // SAFETY: the running task's head is only written by this thread.
        let (t, suspensions) = unsafe { ((*task).ticks, (*task).suspensions) };
        // SAFETY: every task of this crate carries a slot, held by its
        // running work.
        let slot = unsafe { Slot::of(task) };
        let id = slot.id();
        // SAFETY: as above; a running work's name is not being taken.
        let name = unsafe { slot.name() }.map(std::sync::Arc::from);
        if t.attached == 0 {
            return TaskStats {
                suspensions,
                id,
                name,
                ..TaskStats::default()
            };
        }
        let now = ticks::ticks_now();
        let slice_start = t.launched.max(t.resumed);
        TaskStats {
            launch_latency: ticks::span(t.attached, t.launched),
            executing: ticks::ticks_to_duration(t.executing) + ticks::span(slice_start, now),
            total: ticks::span(t.attached, now),
            suspensions,
            id,
            name,
        }
    }
}

// ---------------------------------------------------------------------------
// Binding work to a task, and the two C hooks.

/// Creates a C task on `switcher` with `stack_size` (0: the default):
/// expensive, it maps the task's stack. Thread-safe.
///
/// # Safety
///
/// `switcher` is live, and stays so until the task is destroyed (its
/// owners destroy their switcher last).
pub(crate) unsafe fn create_c_task(
    switcher: sys::monad_async_context_switcher,
    stack_size: usize,
) -> io::Result<sys::monad_async_task> {
    let attr = sys::monad_async_task_attr {
        stack_size,
        reserved: [0; 4],
    };
    let mut task: sys::monad_async_task = std::ptr::null_mut();
    // SAFETY: valid out-pointer and attr; a live switcher, per the
    // contract.
    check(unsafe { sys::monad_async_task_create(&mut task, switcher, &attr) })?;
    Ok(task)
}

/// Stores `f` in `slot` (claimed, or fresh) and points the slot's C task
/// at the hooks for `F` and `T`. The caller attaches the task next, or
/// calls [`Slot::unbind`] if that fails, and makes the [`JoinHandle`] only
/// once the attach succeeded.
///
/// # Safety
/// `slot` must be owned by the caller (from [`Slot::claim`] or
/// [`Slot::create`]) and its task unattached.
#[inline]
pub(crate) unsafe fn bind<F, T>(slot: &Slot, priority: Priority, f: F)
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    let task = slot.task;
    let p = priority.to_sys();
    // SAFETY: the caller owns the slot and the unattached task, so its
    // "set by you" fields may be written (task.h).
    unsafe {
        slot.bind(f);
        (*task).priority.cpu = p;
        (*task).priority.io = p;
        (*task).user_code = Some(trampoline::<F, T>);
        (*task).user_on_exit = Some(on_exit::<F, T>);
    }
}

/// `user_code` of every task: runs the closure on the task's stack.
unsafe extern "C" fn trampoline<F, T>(task: sys::monad_async_task) -> sys::monad_async_result
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: forwarded (the C side calls user_code with its task).
    unsafe { run_work::<F, T, false>(task) }
}

/// `user_code` of a thread pool's task (see [`bind_pool`]): as
/// [`trampoline`], plus its handle's cancellation, which the C side does
/// not know of while the work is queued.
unsafe extern "C" fn pool_trampoline<F, T>(task: sys::monad_async_task) -> sys::monad_async_result
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: forwarded.
    unsafe { run_work::<F, T, true>(task) }
}

/// As [`bind`], for a thread pool's work, whose trampoline also honours
/// its handle's cancellation (an executor's task pays nothing for it).
///
/// # Safety
/// As for [`bind`].
#[inline]
pub(crate) unsafe fn bind_pool<F, T>(slot: &Slot, priority: Priority, f: F)
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: forwarded; then the task's "set by you" field, still ours.
    unsafe {
        bind(slot, priority, f);
        (*slot.task).user_code = Some(pool_trampoline::<F, T>);
    }
}

/// The body of both trampolines: runs the closure on the task's stack.
///
/// # Safety
/// `task` is the task running on this thread, its slot bound with an `F`.
#[inline(always)]
unsafe fn run_work<F, T, const POOL: bool>(task: sys::monad_async_task) -> sys::monad_async_result
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: bind armed the task's slot with an F, and we are on the
    // executor's thread, the only one touching the storage before DONE.
    let slot = unsafe { Slot::of(task) };
    // SAFETY: as above.
    let Some(f) = (unsafe { slot.take_closure::<F>() }) else {
        return sys::monad_async_make_success(0);
    };
    // A thread pool's work, which its handle may have cancelled while it
    // was queued (the dispatcher's queue cannot take
    // one task out): it never starts.
    if POOL && slot.pool_cancel_requested() {
        // SAFETY: executor thread, closure taken, before DONE.
        unsafe { skip_cancelled(slot, f) };
        return sys::monad_async_make_success(0);
    }
    let mut cx = TaskContext {
        task,
        local: slot.local,
        _not_send: PhantomData,
    };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(&mut cx)));
    // SAFETY: the task is live and running on this thread.
    let cancelled = unsafe { atomics::task_state(task) }.load(Ordering::Acquire)
        & sys::monad_async_task_state_flag::MONAD_ASYNC_TASK_STATE_CANCELLED.0
        != 0;
    match outcome {
        // A pool's work cancelled while it ran (its worker may not have
        // taken the C request yet, busy as it was with this very work;
        // no fence: a request this load misses was made as it ended).
        Ok(value) if cancelled || (POOL && slot.cancel_requested_now()) => {
            // A cancelled task ends Cancelled whatever it returned.
            // SAFETY: executor thread, closure taken, before DONE.
            unsafe { slot.set_cancelled() };
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(value)));
        }
        // SAFETY: as above.
        Ok(value) => unsafe { slot.set_value(value) },
        // The task kept suspending after it was told it was cancelled.
        // SAFETY: as above.
        Err(payload) if payload.is::<CancelUnwind>() => unsafe { slot.set_cancelled() },
        // SAFETY: as above.
        Err(payload) => unsafe { slot.set_panic(payload) },
    }
    sys::monad_async_make_success(0)
}

/// Ends a thread pool's work cancelled while queued without running its
/// closure `f`, which it drops (a panic in that drop is swallowed, as for
/// any unrun closure's). Out of line: the trampoline's common path stays
/// short.
///
/// # Safety
/// As for [`Slot::set_cancelled`]: on the executor's thread, the closure
/// taken, before `DONE`.
#[cold]
#[inline(never)]
unsafe fn skip_cancelled<F>(slot: &Slot, f: F) {
    // SAFETY: forwarded contract.
    unsafe { slot.set_cancelled() };
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
}

/// `user_on_exit` of every task: completes the work and returns the task
/// (with its slot) to its pool. Runs on the executor's thread.
unsafe extern "C" fn on_exit<F, T>(task: sys::monad_async_task)
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: the exited task carries its slot, bound with an F making a
    // T; we are in its user_on_exit on the executor's thread, and read its
    // exit figures before anything can reuse it.
    let (slot, unrun, orphaned) = unsafe {
        let slot = Slot::of(task);
        let (unrun, orphaned) = slot.finish::<F, T>(RawStats::of_exited(task));
        (slot, unrun, orphaned)
    };
    // From here on the task and its slot may carry other work: this is our
    // last touch of either.
    match slot.foreign {
        // SAFETY: the slot's `local` is the live owner-thread state of the
        // executor we run on; the slot is idle and done with.
        None => unsafe { crate::executor::release_slot(NonNull::from(slot)) },
        // SAFETY: create_foreign's contract: `release` accepts `context`
        // while the slot's task carries work, which it still does (this is
        // its exit hook); the slot is idle and done with.
        Some(f) => unsafe { (f.release)(f.context, NonNull::from(slot)) },
    }
    // User drop code (an unrun closure; the outcome, if the handle is gone)
    // must not unwind into C.
    if unrun.is_some() || orphaned.is_some() {
        let _ = panic::catch_unwind(AssertUnwindSafe(move || {
            drop(unrun);
            drop(orphaned);
        }));
    }
}

// ---------------------------------------------------------------------------
// TaskContext

/// The running task's view of itself, passed as `&mut` to its closure.
///
/// It cannot leave the closure (its lifetime is the closure call's) and is
/// neither `Send` nor `Sync`: a task's suspension points only make sense on
/// its own stack.
///
/// A [`ThreadPool`](crate::ThreadPool)'s closures get one too: everything
/// works the same there (given a stackful switcher, and a ring for I/O),
/// except [`spawn`](TaskContext::spawn) and
/// [`build_task`](TaskContext::build_task), which need an executor of
/// their own (`ENOTSUP`), and
/// [`executor_handle`](TaskContext::executor_handle), which panics.
///
/// ```
/// use monad_async::{Executor, Priority};
/// use std::time::Duration;
///
/// let ex = Executor::new()?;
/// let h = ex.spawn(Priority::High, |cx| {
///     cx.yield_now()?;
///     cx.sleep(Duration::from_micros(50))?;
///     Ok::<_, std::io::Error>((cx.priority(), cx.stats().suspensions))
/// });
/// assert_eq!(h.join().unwrap()?, (Priority::High, 2));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TaskContext<'a> {
    task: sys::monad_async_task,
    local: *const Local,
    _not_send: PhantomData<&'a mut *mut ()>,
}

impl TaskContext<'_> {
    /// What keeps this task alive for a [`TaskWaker`]: its executor, or
    /// its thread pool.
    pub(crate) fn home(&self) -> HomeRef<'_> {
        if self.local.is_null() {
            // SAFETY: every task of this crate carries a slot; one with no
            // executor is a thread pool's, made with its pool's guard.
            let pool = unsafe { Slot::of(self.task) }.pool.as_ref();
            HomeRef::Pool(pool.expect("a thread pool's slot carries its pool's guard"))
        } else {
            // SAFETY: we run on the executor's thread, inside its run, so
            // its owner-thread state is alive.
            HomeRef::Executor(unsafe { (*self.local).shared_ref() })
        }
    }

    /// The id of this task's current piece of work: unique in the
    /// process, never reused (a task reused for other work gets a new one
    /// each time); the same as its [`JoinHandle::id`].
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.id());
    /// let id = h.id();
    /// assert_eq!(h.join().unwrap(), id);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn id(&self) -> u64 {
        // SAFETY: every task of this crate carries a slot, held by its
        // running work.
        unsafe { Slot::of(self.task) }.id()
    }

    /// The name this piece of work was spawned with
    /// ([`TaskBuilder::name`]), if any.
    ///
    /// ```
    /// use monad_async::Executor;
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.build_task().name("conn-42").spawn(|cx| cx.name().map(str::to_owned));
    /// assert_eq!(h.join().unwrap().as_deref(), Some("conn-42"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn name(&self) -> Option<&str> {
        // SAFETY: the running work holds its slot; its name is taken only
        // by a join, after the work is over.
        unsafe { Slot::of(self.task).name() }
    }

    /// The C task this context belongs to, for the I/O layer.
    #[inline]
    pub(crate) fn raw_task(&self) -> sys::monad_async_task {
        self.task
    }

    /// The result of one of this task's suspension points (a yield, a
    /// sleep, a park, an I/O operation whose own wait is over): as
    /// [`check`], except that a task told `ECANCELED` many times already
    /// and suspending again is unwound instead (see
    /// [`is_cancelled`](TaskContext::is_cancelled)). Not for a point where
    /// other operations of the task are still in flight (a batch): the
    /// unwind would free their buffers under the kernel.
    #[inline]
    pub(crate) fn check(&self, r: sys::monad_async_result) -> io::Result<isize> {
        if r.error == libc::ECANCELED {
            // SAFETY: self.task is the task running on this thread.
            unsafe { cancelled_at_suspension(self.task) };
        }
        check(r)
    }

    /// Goes to the back of this task's priority level and lets other tasks
    /// run; returns when resumed.
    ///
    /// # Errors
    ///
    /// `ECANCELED` once the task has been cancelled (without suspending);
    /// `ENOTSUP` on an executor built with [`Switcher::None`](crate::Switcher::None).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.yield_now());
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn yield_now(&mut self) -> io::Result<()> {
        // SAFETY: self.task is the task running on this thread (a
        // TaskContext exists only inside its own closure call).
        self.check(unsafe { sys::monad_async_task_yield(self.task) })
            .map(drop)
    }

    /// Suspends this task for at least `duration` while others run.
    ///
    /// # Errors
    ///
    /// `ECANCELED` when the task is cancelled (before or during the sleep,
    /// which then ends early); `ENOTSUP` on the none switcher.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::{Duration, Instant};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let start = Instant::now();
    ///     cx.sleep(Duration::from_millis(1)).map(|()| start.elapsed())
    /// });
    /// assert!(h.join().unwrap()? >= Duration::from_millis(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn sleep(&mut self, duration: Duration) -> io::Result<()> {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: self.task is the task running on this thread.
        self.check(unsafe { sys::monad_async_task_suspend_for_duration(self.task, ns) })
            .map(drop)
    }

    /// Suspends this task until a [`TaskWaker`] of its current work wakes
    /// it. A parked task costs its memory only: it holds no ring slot and
    /// the executor runs other work (or sleeps) meanwhile.
    ///
    /// A wake that comes first is not lost: it leaves a permit that makes
    /// the next park return at once. A park may also return because of
    /// an earlier wake meant for a later park (one permit is kept), so
    /// re-check what you wait for and park again if it does not hold.
    ///
    /// # Errors
    ///
    /// `ECANCELED` when the task is cancelled (before or while parked);
    /// `ENOTSUP` on the none switcher.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let ex = Executor::new()?;
    /// let ready = Arc::new(AtomicBool::new(false));
    /// let r = ready.clone();
    /// let h = ex.spawn(Priority::Normal, move |cx| {
    ///     let waker = cx.waker();
    ///     let r2 = r.clone();
    ///     std::thread::spawn(move || {
    ///         r2.store(true, Ordering::Release);
    ///         waker.wake();
    ///     });
    ///     while !r.load(Ordering::Acquire) {
    ///         cx.park()?;
    ///     }
    ///     Ok::<_, std::io::Error>("woken")
    /// });
    /// assert_eq!(h.join().unwrap()?, "woken");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn park(&mut self) -> io::Result<()> {
        // SAFETY: self.task is the task running on this thread.
        self.check(unsafe { sys::monad_async_task_park(self.task, u64::MAX) })
            .map(drop)
    }

    /// As [`park`](TaskContext::park), for at most `timeout`: `Ok(true)`
    /// if woken (or a permit was pending), `Ok(false)` if the time passed
    /// first. A zero timeout only takes a pending permit. The deadline
    /// is kept by the executor's timer list and is never early.
    ///
    /// # Errors
    ///
    /// As for [`park`](TaskContext::park).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let early = cx.park_timeout(Duration::ZERO)?; // no permit: false
    ///     cx.waker().wake(); // not parked: leaves a permit
    ///     let permit = cx.park_timeout(Duration::from_secs(60))?;
    ///     let late = cx.park_timeout(Duration::from_millis(1))?;
    ///     Ok::<_, std::io::Error>((early, permit, late))
    /// });
    /// assert_eq!(h.join().unwrap()?, (false, true, false));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn park_timeout(&mut self, timeout: Duration) -> io::Result<bool> {
        // u64::MAX means "no deadline" to C: the longest real one is one
        // less (585 years).
        let ns = u64::try_from(timeout.as_nanos()).map_or(u64::MAX - 1, |n| n.min(u64::MAX - 1));
        // SAFETY: self.task is the task running on this thread.
        let r = unsafe { sys::monad_async_task_park(self.task, ns) };
        if r.error == libc::ETIME {
            return Ok(false);
        }
        self.check(r).map(|_| true)
    }

    /// As [`park_timeout`](TaskContext::park_timeout), until `deadline`.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::{Duration, Instant};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let deadline = Instant::now() + Duration::from_millis(2);
    ///     let woken = cx.park_until(deadline)?;
    ///     Ok::<_, std::io::Error>((woken, Instant::now() >= deadline))
    /// });
    /// assert_eq!(h.join().unwrap()?, (false, true));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn park_until(&mut self, deadline: Instant) -> io::Result<bool> {
        self.park_timeout(deadline.saturating_duration_since(Instant::now()))
    }

    /// A handle that wakes this task's current piece of work from any
    /// thread (or from another task): see [`TaskWaker`].
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let w = cx.waker();
    ///     std::thread::spawn(move || w.wake()).join().unwrap();
    ///     cx.park() // the permit the thread left
    /// });
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn waker(&self) -> TaskWaker {
        let mut token = 0u64;
        // SAFETY: self.task is live and attached (it is running).
        let r = unsafe { sys::monad_async_task_wake_token(self.task, &mut token) };
        debug_assert_eq!(r.error, 0);
        TaskWaker {
            task: self.task,
            token,
            home: self.home().to_owned(),
        }
    }

    /// True once cancellation of this task has been requested (by
    /// [`Executor::cancel`](crate::Executor::cancel) or by the executor
    /// being dropped): from then on its suspension points return
    /// `ECANCELED`, and its [`join`](JoinHandle::join) gives
    /// [`Cancelled`](JoinError::is_cancelled).
    ///
    /// A cancelled task should return soon. One that keeps suspending
    /// (retrying through `ECANCELED`) is told 64 times, then unwound at its
    /// next suspension point: its destructors run and its work ends as
    /// cancelled, so that dropping its executor always ends.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.is_cancelled());
    /// assert_eq!(h.join().unwrap(), false);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        // SAFETY: self.task is live while its closure runs.
        let state = unsafe { atomics::task_state(self.task) }.load(Ordering::Acquire);
        state & sys::monad_async_task_state_flag::MONAD_ASYNC_TASK_STATE_CANCELLED.0 != 0
            // A thread pool's work sees its handle's request at once: its
            // worker takes the C request only between slices.
            // SAFETY: every task of this crate carries a slot.
            || (self.local.is_null() && unsafe { Slot::of(self.task) }.cancel_requested_now())
    }

    /// This task's priority.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Low, |cx| cx.priority());
    /// assert_eq!(h.join().unwrap(), Priority::Low);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn priority(&self) -> Priority {
        // SAFETY: self.task is live; only this thread writes its priority.
        Priority::from_sys(unsafe { (*self.task).priority.cpu })
    }

    /// This task's I/O priority: the order in which its operations get a
    /// slot when the executor's in-flight guard is reached
    /// ([`ExecutorBuilder::io_inflight_limit`](crate::ExecutorBuilder::io_inflight_limit);
    /// higher first, first come first served within a level), and the
    /// kernel I/O priority of
    /// its reads and writes (high: the real-time class where the process
    /// may use it, else best effort 0; normal: best effort 4; low: idle).
    /// A spawn starts it at the task's [`priority`](TaskContext::priority).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::High, |cx| cx.io_priority());
    /// assert_eq!(h.join().unwrap(), Priority::High);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn io_priority(&self) -> Priority {
        // SAFETY: self.task is live; only this thread writes its priority.
        Priority::from_sys(unsafe { (*self.task).priority.io })
    }

    /// Sets this task's [I/O priority](TaskContext::io_priority) for the
    /// operations it starts from now on (those in flight keep theirs), for
    /// the rest of this piece of work. Its CPU priority is unchanged.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     cx.set_io_priority(Priority::Low); // background I/O
    ///     monad_async::io::nop(cx)?;
    ///     Ok::<_, std::io::Error>((cx.priority(), cx.io_priority()))
    /// });
    /// assert_eq!(h.join().unwrap()?, (Priority::Normal, Priority::Low));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_io_priority(&mut self, priority: Priority) {
        // SAFETY: self.task is the task running on this thread. The C side
        // reads `priority.io` only on this thread: when this task starts an
        // operation, and when it is taken out of a submission-entry wait
        // queue, which it cannot be in while it runs (it is suspended
        // there), so the queue it is removed from is the one it joined.
        unsafe { (*self.task).priority.io = priority.to_sys() };
    }

    /// This task's time figures so far (`total` and `executing` run up to
    /// now).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     cx.yield_now().unwrap();
    ///     cx.stats()
    /// });
    /// let so_far = h.join().unwrap();
    /// assert_eq!(so_far.suspensions, 1);
    /// assert!(so_far.executing <= so_far.total);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> TaskStats {
        // SAFETY: self.task is the task running on this thread.
        unsafe { TaskStats::so_far(self.task) }
    }

    /// Spawns another task on this task's executor, on the owner-thread
    /// path (no lock). Like [`Executor::spawn`](crate::Executor::spawn), the
    /// closure needs no `Send`.
    ///
    /// # Errors
    ///
    /// `ESHUTDOWN` while the executor is being dropped; `ENOMEM` (or the
    /// `mmap` error) when a new task's stack cannot be made; `ENOTSUP` in
    /// a [`ThreadPool`](crate::ThreadPool)'s task, whose work may run on
    /// any worker: spawn through the pool itself (an `Arc<ThreadPool>`
    /// moved into the closure), which takes `Send` closures.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let child = cx.spawn(Priority::High, |_cx| 20).unwrap();
    ///     child.join().unwrap() + 1
    /// });
    /// assert_eq!(h.join().unwrap(), 21);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<F, T>(&mut self, priority: Priority, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
        T: 'static,
    {
        if self.local.is_null() {
            return Err(crate::error::errno(libc::ENOTSUP));
        }
        // SAFETY: we run on the executor's thread, inside its run, so its
        // owner-thread state is alive.
        unsafe { (*self.local).try_spawn(priority, f) }
    }

    /// Builder-style spawn options for a task on this task's executor: a
    /// [name](TaskBuilder::name), a [priority](TaskBuilder::priority). As
    /// [`spawn`](TaskContext::spawn) otherwise.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| {
    ///     let child = cx.build_task().name("child").priority(Priority::High).spawn(|cx| {
    ///         (cx.name().unwrap().to_owned(), cx.priority())
    ///     });
    ///     child.join().unwrap()
    /// });
    /// assert_eq!(h.join().unwrap(), ("child".to_owned(), Priority::High));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_task(&mut self) -> TaskBuilder<'_, crate::Executor> {
        // SAFETY: as for spawn; null for a thread pool's task.
        TaskBuilder::local(unsafe { self.local.as_ref() })
    }

    /// A handle to this task's executor, to give to other threads.
    ///
    /// # Panics
    ///
    /// In a [`ThreadPool`](crate::ThreadPool)'s task: its work belongs to
    /// the pool, not to one executor.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.executor_handle());
    /// let handle = h.join().unwrap();
    /// let remote = std::thread::spawn(move || handle.spawn(Priority::Normal, |_cx| 5))
    ///     .join()
    ///     .unwrap()?;
    /// assert_eq!(remote.join().unwrap(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn executor_handle(&self) -> ExecutorHandle {
        assert!(
            !self.local.is_null(),
            "TaskContext::executor_handle in a thread pool's task, which has no executor handle"
        );
        // SAFETY: as for spawn: the owner-thread state outlives its tasks.
        unsafe { (*self.local).handle() }
    }
}

impl fmt::Debug for TaskContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("task", &self.task)
            .field("priority", &self.priority())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Waking parked tasks, and unwinding tasks that ignore cancellation

/// Wakes one piece of work of a task parked in
/// [`TaskContext::park`], or changes its CPU priority
/// ([`set_priority`](TaskWaker::set_priority)), from any thread or task.
/// `Send + Sync`, cheap to clone; from [`TaskContext::waker`].
///
/// It names the work it was made for, not the task: once that work is
/// over (the task may be carrying other work by then), waking (or a
/// priority change) does nothing. It keeps no executor (or thread pool)
/// alive: once that is dropped, they do nothing either.
///
/// ```
/// use monad_async::{Executor, Priority, TaskWaker};
/// use std::sync::mpsc;
///
/// let ex = Executor::new()?;
/// let (tx, rx) = mpsc::channel::<TaskWaker>();
/// let parked = ex.spawn(Priority::Normal, move |cx| {
///     tx.send(cx.waker()).unwrap();
///     cx.park()
/// });
/// let waker = ex.spawn(Priority::Normal, move |_cx| rx.recv().unwrap().wake());
/// ex.run_until_idle()?;
/// assert!(waker.join().unwrap()); // it resumed a parked task
/// parked.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TaskWaker {
    task: sys::monad_async_task,
    token: u64,
    home: WakeHome,
}

// SAFETY: the C wake is documented thread-safe; `task` is only passed to
// it, while `home`'s guard proves the executor or thread pool, and so the
// task (pooled until its drop), alive.
unsafe impl Send for TaskWaker {}
// SAFETY: as above; `wake` takes `&self`.
unsafe impl Sync for TaskWaker {}

impl TaskWaker {
    /// Wakes the work if it is parked (it goes to the back of its
    /// priority's ready queue), or leaves it a permit that its next park
    /// consumes at once. From the executor's own thread: no lock, no
    /// allocation, no system call; from another thread: through the
    /// executor's inbox, waking it if it sleeps.
    ///
    /// True if this call resumed a parked task; false if it left a permit
    /// (or one was pending), or the work is over, or the executor is gone.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.waker());
    /// let w = h.join().unwrap();
    /// assert!(!w.wake()); // that work is over
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wake(&self) -> bool {
        self.home.wake_task(self.task, self.token)
    }
}

impl fmt::Debug for TaskWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskWaker")
            .field("task", &self.task)
            .field("token", &self.token)
            .finish()
    }
}

/// The payload a task that ignored `ECANCELED` is unwound with: the
/// trampoline records it as cancelled.
struct CancelUnwind;

/// How many times a cancelled task's suspension points say `ECANCELED`
/// before the next one unwinds it instead.
pub(crate) const CANCELLED_SUSPENSIONS: u32 = 64;

/// A suspension point of the running task `task` said `ECANCELED`. The
/// task is told (the caller returns the error), so that it can clean up,
/// even with I/O that fails at once. A task that keeps suspending after
/// being told [`CANCELLED_SUSPENSIONS`] times would only be told again,
/// forever (an executor being dropped would wait for it forever): its
/// stack is unwound instead, running its destructors, and its work ends
/// as cancelled.
///
/// # Safety
/// `task` is the task running on this thread, created by this crate.
#[cold]
unsafe fn cancelled_at_suspension(task: sys::monad_async_task) {
    // SAFETY: every task of this crate carries a slot; the count is only
    // touched on the executor's thread, by the running work.
    let reports = unsafe { &mut *Slot::of(task).cancel_reports.get() };
    if *reports >= CANCELLED_SUSPENSIONS {
        panic::resume_unwind(Box::new(CancelUnwind));
    }
    *reports += 1;
}

// ---------------------------------------------------------------------------
// JoinHandle

thread_local! {
    /// The thread's id, cached: `thread::current()` clones an `Arc`.
    static THREAD_ID: ThreadId = thread::current().id();
}

/// True when the calling thread is `owner`; false also when the thread is
/// tearing down its thread-locals, where the caller must then take its
/// general path.
#[inline]
pub(crate) fn on_thread(owner: ThreadId) -> bool {
    THREAD_ID.try_with(|id| *id == owner).unwrap_or(false)
}

/// The task running on this thread (of whichever executor, a thread
/// pool's included, is running here), if any.
pub(crate) fn running_task() -> Option<sys::monad_async_task> {
    // SAFETY: no preconditions; a null token is allowed.
    let task = unsafe { sys::monad_async_task_current(std::ptr::null_mut()) }.value
        as sys::monad_async_task;
    (!task.is_null()).then_some(task)
}

/// Owns the right to a spawned task's result.
///
/// Dropping it detaches the task (it still runs; its result is dropped).
/// It is also a [`Future`](std::future::Future) of what `join` returns:
/// any async runtime can `.await` it (see its `Future` impl).
/// `Send` when `T` is `Send`, whatever the closure; always `Sync` (shared
/// access never touches the `T`).
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let h = ex.spawn(Priority::Normal, |_cx| "done");
/// assert!(!h.is_finished());
/// assert_eq!(h.join().unwrap(), "done"); // drives the executor until then
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JoinHandle<T> {
    slot: NonNull<Slot>,
    _owns: PhantomData<T>,
}

// SAFETY: a JoinHandle reaches its slot's state word (atomics), the raw
// stats published before DONE, and, by value in join/try_join or dropped
// in drop, the outcome: a T or a Send panic payload. The closure, which
// need not be Send, is only touched on the executor's thread (slot
// invariants). So moving the handle moves at most a T.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: &JoinHandle gives is_finished and stats only, which read the
// state word and the published, Copy raw stats; the T is never reached.
unsafe impl<T> Sync for JoinHandle<T> {}

// Nothing in a handle is ever pinned (its T, when taken, is moved out).
impl<T> Unpin for JoinHandle<T> {}

// A handle holds no state a panic could leave half-updated: its slot is
// updated by the executor and the handle with atomics only.
impl<T> std::panic::UnwindSafe for JoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// The handle of the work just bound to `slot` (and attached).
    ///
    /// # Safety
    /// `slot` must have been bound for a `T` by [`bind`], and this must be
    /// the only handle made for it.
    #[inline]
    pub(crate) unsafe fn new(slot: NonNull<Slot>) -> JoinHandle<T> {
        JoinHandle {
            slot,
            _owns: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn slot(&self) -> &Slot {
        // SAFETY: the handle keeps its slot alive (HANDLE bit) until drop.
        unsafe { self.slot.as_ref() }
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Cancels the task's work, from any thread: a task not yet started
    /// never runs; a started one is marked cancelled, woken if suspended,
    /// and every suspension point (sleep, I/O, yield) returns `ECANCELED`
    /// from then on; either way [`join`](JoinHandle::join) reports
    /// [`Cancelled`](JoinError::is_cancelled).
    ///
    /// On the executor's thread it takes effect at once. From another
    /// thread the request is carried to the executor's thread and takes
    /// effect when it next runs; it names this very piece of work, so it
    /// never cancels later work the executor runs on the same pooled task.
    ///
    /// Returns `Ok(true)` if the work was not over (cancellation
    /// requested), `Ok(false)` if it was: a stale handle's cancel is a
    /// no-op.
    ///
    /// # Errors
    ///
    /// From another thread: `ENOMEM` (the request could not be queued).
    ///
    /// A [`ThreadPool`](crate::ThreadPool)'s work is cancelled the same
    /// way, from any thread: queued, it never starts (a worker skips it
    /// when it takes it from the queue, so its `join` reports
    /// `Cancelled` then, not at once: behind running work, that can take
    /// a while); running, its executor is told through its inbox. Never
    /// an error.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_secs(60)));
    /// let _ = ex.run(1, Some(Duration::from_millis(5))); // now asleep
    /// let t = std::thread::scope(|s| s.spawn(|| h.cancel()).join().unwrap())?;
    /// assert!(t);
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel(&self) -> io::Result<bool> {
        let slot = self.slot();
        if slot.is_done() {
            return Ok(false);
        }
        if slot.owner.is_some_and(on_thread) {
            // SAFETY: not DONE and on the owner thread, so the executor is
            // alive (its drop completes all work, and runs on this thread).
            return unsafe { (*slot.local).cancel_work(slot) };
        }
        let Some(shared) = &slot.shared else {
            // A thread pool's work: see Slot::cancel_pool_work.
            return Ok(slot.cancel_pool_work());
        };
        // The handle holds the slot, so its generation is still that of
        // our work.
        let generation = slot.generation.load(Ordering::Relaxed);
        match shared.cancel_remote(slot.task, generation) {
            Ok(()) => Ok(true),
            // The executor is going away: its drop cancels all work.
            Err(e) if e.raw_os_error() == Some(libc::ESHUTDOWN) => Ok(!slot.is_done()),
            Err(e) => Err(e),
        }
    }

    /// True once the task's work is over (returned, panicked or
    /// cancelled): [`join`](JoinHandle::join) will not wait.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| ());
    /// assert!(!h.is_finished());
    /// ex.run_until_idle()?;
    /// assert!(h.is_finished());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn is_finished(&self) -> bool {
        self.slot().is_done()
    }

    /// The task's time figures, once it is finished.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| ());
    /// assert!(h.stats().is_none());
    /// ex.run_until_idle()?;
    /// assert_eq!(h.stats().unwrap().suspensions, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> Option<TaskStats> {
        let slot = self.slot();
        if slot.is_done() {
            // SAFETY: DONE observed (acquire); the handle holds the slot.
            Some(TaskStats {
                id: slot.id(),
                // SAFETY: the handle holds the slot and is not taking the
                // name (only its join does, by value).
                name: unsafe { slot.name() }.map(std::sync::Arc::from),
                // SAFETY: DONE observed (acquire); the handle holds the slot.
                ..unsafe { slot.stats() }.to_stats()
            })
        } else {
            None
        }
    }

    /// The result if the task has finished, else the handle back.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| 3);
    /// let h = h.try_join().unwrap_err(); // not run yet
    /// ex.run_until_idle()?;
    /// assert_eq!(h.try_join().ok().unwrap().unwrap(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_join(self) -> Result<Result<T, JoinError>, JoinHandle<T>> {
        if self.is_finished() {
            Ok(self.take())
        } else {
            Err(self)
        }
    }

    /// Waits for the task and returns its value, or why there is none.
    ///
    /// How it waits depends on where it is called:
    ///
    /// * on the executor's own thread, outside its tasks: it runs the
    ///   executor (other tasks included) until this task has finished;
    /// * inside any task (of that executor, of another one, or of a
    ///   [`ThreadPool`](crate::ThreadPool)): it parks the calling task, which
    ///   costs nothing while it waits (no polling, no ring slot), and the
    ///   joined task's exit wakes it, once; its executor meanwhile runs
    ///   other work (a thread pool's task joining one still queued lets its
    ///   thread run it). If the calling task is cancelled meanwhile, it
    ///   returns `Err(Cancelled)` at once, and if its
    ///   [deadline](TaskContext::timeout) passes, a `JoinError` that
    ///   [`is_timed_out`](JoinError::is_timed_out) (the joined task is
    ///   unaffected, and detached: see
    ///   [`join_timeout`](JoinHandle::join_timeout) to keep the handle).
    ///   A task that cannot suspend ([`Switcher::None`](crate::Switcher::None))
    ///   blocks its thread instead;
    /// * on any other thread: it blocks that thread.
    ///
    /// # Errors
    ///
    /// [`JoinError`]: the task panicked (the payload is inside) or was
    /// cancelled, or (inside a task) the caller's deadline passed.
    ///
    /// # Panics
    ///
    /// Inside a task of the same executor on the
    /// [`Switcher::None`](crate::Switcher::None), which cannot suspend,
    /// when the task has not finished; and when
    /// called re-entrantly from the executor's run loop outside any task
    /// (from a destructor run by the executor).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let handle = ex.handle();
    /// let h = ex.spawn(Priority::Normal, |_cx| 6 * 7);
    /// // Join from another thread while this one runs the executor.
    /// let t = std::thread::spawn(move || h.join().unwrap());
    /// ex.run_until_idle()?;
    /// assert_eq!(t.join().unwrap(), 42);
    /// # drop(handle);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn join(self) -> Result<T, JoinError> {
        let slot = self.slot();
        if !slot.is_done() {
            self.wait()?;
        }
        self.take()
    }

    /// Waits until the work is over; see [`join`](JoinHandle::join).
    #[cold]
    fn wait(&self) -> Result<(), JoinError> {
        let slot = self.slot();
        let on_owner = slot.owner.is_some_and(on_thread);
        if let Some(current) = Current::get() {
            // SAFETY: we are the slot's handle.
            if unsafe { slot.join_park(&current, None) }? {
                return Ok(());
            }
            // The calling task cannot park (the none switcher).
            assert!(
                !on_owner,
                "JoinHandle::join inside a task that cannot suspend (Switcher::None), \
                 joining unfinished work of its own executor"
            );
            slot.block_until_done();
            return Ok(());
        }
        if on_owner {
            // SAFETY: not DONE and on the owner thread, outside any task,
            // so the executor is alive (dropping it completes all work,
            // and it can only be dropped on this thread, which is here).
            unsafe { (*slot.local).wait_for(slot) }
        } else {
            slot.block_until_done();
            Ok(())
        }
    }

    /// The result of finished work; the handle is spent.
    #[inline]
    fn take(self) -> Result<T, JoinError> {
        let this = ManuallyDrop::new(self);
        // SAFETY: DONE was observed (acquire) by our caller; `self` is
        // consumed (its drop will not run), so this is the only take, and
        // the release is its last touch of the slot.
        unsafe {
            let result = this.slot().take_result::<T>();
            slot::release_handle(this.slot);
            result
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: we are the slot's handle, for work producing a T, and
        // never touch it again. The outcome is dropped after the slot is
        // released (T: Send when this runs on another thread: the handle
        // is Send only then).
        drop(unsafe { slot::drop_handle::<T>(self.slot) });
    }
}

impl<T> JoinHandle<T> {
    /// The id of the handle's work: unique in the process, never reused;
    /// the same as [`TaskContext::id`] inside it, and as the id in its
    /// [`TaskStats`] and in the message of its panic.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let a = ex.spawn(Priority::Normal, |_cx| ());
    /// let b = ex.spawn(Priority::Normal, |_cx| ());
    /// assert_ne!(a.id(), b.id());
    /// ex.run_until_idle()?;
    /// assert_eq!(a.stats().unwrap().id, a.id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.slot().id()
    }

    /// The name the work was spawned with ([`TaskBuilder::name`]), if
    /// any.
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().threads(1).build()?;
    /// let h = pool.build_task().name("resize-7").spawn(|_cx| ());
    /// assert_eq!(h.name(), Some("resize-7"));
    /// assert!(format!("{h:?}").contains("resize-7"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        // SAFETY: the handle holds the slot for its work; only a join
        // (which consumes the handle) takes the name.
        unsafe { self.slot().name() }
    }
}

impl<T: 'static> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
