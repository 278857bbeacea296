//! Tasks: the work a closure does on its own stack, its context, its
//! result, and the trampoline that runs it.
//!
//! # How a spawn is wired to C
//!
//! Each spawn allocates one `Arc<Job<F, T>>` holding the closure, the result
//! slot and a small `Header` (completion flag, waiter, stats, the C task
//! carrying the job). The C task's `user_ptr` owns one reference to it, the
//! [`JoinHandle`] the other. `user_code` is `trampoline::<F, T>` and
//! `user_on_exit` is `on_exit::<F, T>`, monomorphised per closure type, so
//! the C function pointers are the only "vtable" needed.
//!
//! # Invariants
//!
//! * The closure `F` is only ever touched on the executor's thread: taken
//!   and run by the trampoline, or dropped unrun by `on_exit` (a task
//!   cancelled before it launched), or dropped by the spawning call itself
//!   when the attach fails. The one exception is a thread pool's job
//!   cancelled while still queued, whose `on_exit` runs on the cancelling
//!   thread: [`bind_foreign`] requires `F: Send` for that. So by the time any other thread can drop the
//!   last reference to a job, its closure slot is empty, which is why a
//!   [`JoinHandle<T>`] may be `Send` for `T: Send` even when `F` is not.
//! * A panic never crosses into C: the trampoline runs the closure inside
//!   `catch_unwind` and stores the payload; `on_exit` catches panics from
//!   the drops it performs.
//! * The result slot and the stats are written on the executor's thread
//!   before the `DONE` bit is published with release ordering, and read
//!   only after it is observed with acquire ordering.
//! * The C task pointed to by a job's header is valid, and carries that
//!   job, until the job is `DONE` (its `on_exit` returns the task to a
//!   pool, after which it may carry other work).

use crate::error::{check, JoinError};
use crate::executor::{ExecutorHandle, Local};
use crate::sys::{self, atomics};
use crate::ticks;
use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Duration;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
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
}

impl TaskStats {
    /// The figures of a task whose work is over.
    ///
    /// # Safety
    /// `task` must be live and exited, read on its executor's thread.
    unsafe fn of_exited(task: sys::monad_async_task) -> TaskStats {
        // SAFETY: per the contract the task is live and no other thread
        // writes these plain fields now.
        let (t, suspensions) = unsafe { ((*task).ticks, (*task).suspensions) };
        TaskStats {
            launch_latency: ticks::span(t.attached, t.launched),
            executing: ticks::ticks_to_duration(t.executing),
            total: ticks::span(t.attached, t.exited),
            suspensions,
        }
    }

    /// The figures so far of the task running now.
    ///
    /// # Safety
    /// `task` must be the task running on this thread.
    unsafe fn so_far(task: sys::monad_async_task) -> TaskStats {
        // SAFETY: the running task's head is only written by this thread.
        let (t, suspensions) = unsafe { ((*task).ticks, (*task).suspensions) };
        if t.attached == 0 {
            return TaskStats {
                suspensions,
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
        }
    }
}

// ---------------------------------------------------------------------------
// The job: one spawn's shared state.

/// `Header::state` bit: the work is over, result and stats are final.
const DONE: u32 = 1;
/// `Header::state` bit: a thread is (about to be) blocked on `cond`.
const WAITER: u32 = 2;

/// The type-independent part of a job.
pub(crate) struct Header {
    state: AtomicU32,
    lock: Mutex<()>,
    cond: Condvar,
    /// The C task carrying this job; meaningful until `DONE`.
    task: AtomicPtr<sys::monad_async_task_head>,
    /// Written once, on the executor's thread, before `DONE`.
    stats: UnsafeCell<TaskStats>,
    /// The executor's owning thread; `None` for a thread pool's job, which
    /// may run on any of the pool's threads.
    pub(crate) owner: Option<ThreadId>,
    /// The executor's owner-thread state; dereferenced only on `owner`.
    /// Null for a thread pool's job (whose closure never sees its
    /// `TaskContext`, the only other user of it).
    pub(crate) local: *const Local,
    home: Home,
}

/// Where `on_exit` returns a job's C task once its work is over.
#[derive(Clone, Copy)]
enum Home {
    /// Its executor's pools: the locked one if it was attached through an
    /// [`ExecutorHandle`] (`remote`), else the owner thread's.
    Executor { remote: bool },
    /// `release(ctx, task)`, on the thread that ran the task: a thread
    /// pool's.
    Foreign {
        release: unsafe fn(*const (), sys::monad_async_task),
        ctx: *const (),
    },
}

impl Header {
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE != 0
    }

    #[inline]
    pub(crate) fn task(&self) -> sys::monad_async_task {
        self.task.load(Ordering::Relaxed)
    }

    /// Publishes completion and wakes a blocked joiner, if any.
    fn complete(&self) {
        let prev = self.state.fetch_or(DONE, Ordering::AcqRel);
        if prev & WAITER != 0 {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.cond.notify_all();
        }
    }

    /// Blocks the calling (non-executor) thread until `DONE`.
    fn block_until_done(&self) {
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Announce ourselves under the lock: complete() either sees WAITER
        // and must take the lock to notify (so it waits until we sleep in
        // the condvar), or it set DONE first and we see it below.
        self.state.fetch_or(WAITER, Ordering::AcqRel);
        while !self.is_done() {
            guard = self
                .cond
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

pub(crate) struct Job<F, T> {
    header: Header,
    closure: UnsafeCell<Option<F>>,
    output: UnsafeCell<Option<Result<T, JoinError>>>,
}

/// What a [`JoinHandle`] sees of a job, without its closure type.
pub(crate) trait Joinable<T>: 'static {
    fn header(&self) -> &Header;
    /// # Safety
    /// Only after `DONE` was observed with acquire ordering, and only once.
    unsafe fn take_output(&self) -> Option<Result<T, JoinError>>;
}

impl<F: 'static, T: 'static> Joinable<T> for Job<F, T> {
    fn header(&self) -> &Header {
        &self.header
    }

    unsafe fn take_output(&self) -> Option<Result<T, JoinError>> {
        // SAFETY: the writer (executor thread) finished before DONE was
        // released; the caller observed DONE and is the only taker.
        unsafe { (*self.output.get()).take() }
    }
}

/// Binds a new piece of work to the (unattached) C `task` and returns its
/// handle. The caller attaches the task next, or calls [`unbind`] if that
/// fails.
///
/// # Safety
/// `task` must be live, not attached, and owned by the caller (taken from a
/// pool or freshly created); `local` must be the executor's owner-thread
/// state that the task will be attached to.
pub(crate) unsafe fn bind<F, T>(
    task: sys::monad_async_task,
    priority: Priority,
    f: F,
    local: *const Local,
    owner: ThreadId,
    remote: bool,
) -> JoinHandle<T>
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: forwarded contract.
    unsafe {
        bind_job(
            task,
            priority,
            f,
            local,
            Some(owner),
            Home::Executor { remote },
        )
    }
}

/// As [`bind`], for a task that goes to a thread pool's dispatcher rather
/// than to an executor: when its work is over, `on_exit` hands the task to
/// `release(ctx, task)` on the thread that ran it, or on the thread that
/// cancelled it while it was still queued (hence `F: Send`).
///
/// # Safety
/// `task` must be live, not attached, and owned by the caller; `f` must
/// never use its `TaskContext` (it has no executor state behind it);
/// `release` must accept `ctx` for as long as the task may run.
pub(crate) unsafe fn bind_foreign<F, T>(
    task: sys::monad_async_task,
    priority: Priority,
    f: F,
    release: unsafe fn(*const (), sys::monad_async_task),
    ctx: *const (),
) -> JoinHandle<T>
where
    F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
    T: 'static,
{
    let home = Home::Foreign { release, ctx };
    // SAFETY: forwarded contract; a null `local` is never dereferenced
    // for a job without an owner thread.
    unsafe { bind_job(task, priority, f, std::ptr::null(), None, home) }
}

/// # Safety
/// As [`bind`].
unsafe fn bind_job<F, T>(
    task: sys::monad_async_task,
    priority: Priority,
    f: F,
    local: *const Local,
    owner: Option<ThreadId>,
    home: Home,
) -> JoinHandle<T>
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    let job = Arc::new(Job {
        header: Header {
            state: AtomicU32::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
            task: AtomicPtr::new(task),
            stats: UnsafeCell::new(TaskStats::default()),
            owner,
            local,
            home,
        },
        closure: UnsafeCell::new(Some(f)),
        output: UnsafeCell::new(None),
    });
    let raw = Arc::into_raw(Arc::clone(&job));
    let p = priority.to_sys();
    // SAFETY: the caller owns the unattached task, so these "set by you"
    // fields may be written (task.h).
    unsafe {
        (*task).priority.cpu = p;
        (*task).priority.io = p;
        (*task).user_code = Some(trampoline::<F, T>);
        (*task).user_on_exit = Some(on_exit::<F, T>);
        (*task).user_ptr = raw.cast_mut().cast();
    }
    JoinHandle { job }
}

/// Undoes [`bind`] after a failed attach: drops the closure here and the
/// task's reference to the job. The task is the caller's again.
///
/// # Safety
/// `task` must have been bound by `bind::<F, T>` and never attached.
pub(crate) unsafe fn unbind<F, T>(task: sys::monad_async_task)
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: user_ptr holds the reference bind leaked for the task; the
    // task was never attached, so nothing else uses the closure.
    unsafe {
        let job = Arc::from_raw((*task).user_ptr.cast::<Job<F, T>>().cast_const());
        (*task).user_ptr = std::ptr::null_mut();
        drop((*job.closure.get()).take());
        drop(job);
    }
}

/// `user_code` of every task: runs the closure on the task's stack.
unsafe extern "C" fn trampoline<F, T>(task: sys::monad_async_task) -> sys::monad_async_result
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: bind set user_ptr to a live Job<F, T> (the task's own
    // reference), and we are on the executor's thread, the only one that
    // touches the closure and the output slot before DONE.
    let job = unsafe { &*(*task).user_ptr.cast::<Job<F, T>>() };
    // SAFETY: as above.
    let Some(f) = (unsafe { (*job.closure.get()).take() }) else {
        return sys::monad_async_make_success(0);
    };
    let mut cx = TaskContext {
        task,
        local: job.header.local,
        _not_send: PhantomData,
    };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(&mut cx)));
    // SAFETY: the task is live and running on this thread.
    let cancelled = unsafe { atomics::task_state(task) }.load(Ordering::Acquire)
        & sys::monad_async_task_state_flag::MONAD_ASYNC_TASK_STATE_CANCELLED.0
        != 0;
    let result = match outcome {
        Ok(value) if cancelled => {
            // A cancelled task ends Cancelled whatever it returned.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(value)));
            Err(JoinError::cancelled())
        }
        Ok(value) => Ok(value),
        Err(payload) => Err(JoinError::panic(payload)),
    };
    // SAFETY: executor thread, before DONE: we are the only accessor.
    unsafe { *job.output.get() = Some(result) };
    sys::monad_async_make_success(0)
}

/// `user_on_exit` of every task: completes the job and returns the task to
/// its pool. Runs on the executor's thread.
unsafe extern "C" fn on_exit<F, T>(task: sys::monad_async_task)
where
    F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
    T: 'static,
{
    // SAFETY: user_ptr holds the task's reference to its Job<F, T>, which
    // we take over here; the task is exited and ours until it is pooled.
    let job = unsafe {
        let raw = (*task).user_ptr.cast::<Job<F, T>>().cast_const();
        (*task).user_ptr = std::ptr::null_mut();
        Arc::from_raw(raw)
    };
    // SAFETY: executor thread, before DONE: we are the only accessor of the
    // closure, the output and the stats.
    let unrun = unsafe {
        let unrun = (*job.closure.get()).take();
        let output = &mut *job.output.get();
        if output.is_none() {
            // user_code never ran: cancelled before launch (ECANCELED).
            *output = Some(Err(JoinError::cancelled()));
        }
        *job.header.stats.get() = TaskStats::of_exited(task);
        unrun
    };
    // From here on the task may carry other work: don't touch it again.
    match job.header.home {
        // SAFETY: the header's `local` is the live owner-thread state of
        // the executor we run on; `task` is exited and unused.
        Home::Executor { remote } => unsafe {
            crate::executor::release_task(job.header.local, task, remote)
        },
        // SAFETY: bind_foreign's contract: `release` accepts `ctx` while
        // the task may run, which it still does (this is its exit hook).
        Home::Foreign { release, ctx } => unsafe { release(ctx, task) },
    }
    job.header.complete();
    // User drop code (an unrun closure; the output, if the handle is gone)
    // must not unwind into C.
    let _ = panic::catch_unwind(AssertUnwindSafe(move || {
        drop(unrun);
        drop(job);
    }));
}

// ---------------------------------------------------------------------------
// TaskContext

/// The running task's view of itself, passed as `&mut` to its closure.
///
/// It cannot leave the closure (its lifetime is the closure call's) and is
/// neither `Send` nor `Sync`: a task's suspension points only make sense on
/// its own stack.
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
    pub fn yield_now(&mut self) -> io::Result<()> {
        // SAFETY: self.task is the task running on this thread (a
        // TaskContext exists only inside its own closure call).
        check(unsafe { sys::monad_async_task_yield(self.task) }).map(drop)
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
    pub fn sleep(&mut self, duration: Duration) -> io::Result<()> {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: self.task is the task running on this thread.
        check(unsafe { sys::monad_async_task_suspend_for_duration(self.task, ns) }).map(drop)
    }

    /// True once cancellation of this task has been requested (by
    /// [`Executor::cancel`](crate::Executor::cancel) or by the executor
    /// being dropped): from then on its suspension points return
    /// `ECANCELED`, and its [`join`](JoinHandle::join) gives
    /// [`Cancelled`](JoinError::is_cancelled).
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
    /// `mmap` error) when a new task's stack cannot be made.
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
        // SAFETY: we run on the executor's thread, inside its run, so its
        // owner-thread state is alive.
        unsafe { (*self.local).try_spawn(priority, f) }
    }

    /// A handle to this task's executor, to give to other threads.
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
        // SAFETY: as for spawn: the owner-thread state outlives its tasks.
        unsafe { (*self.local).handle() }
    }
}

impl fmt::Debug for TaskContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("task", &self.task)
            .field("priority", &self.priority())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

// ---------------------------------------------------------------------------
// JoinHandle

/// The task running on this thread (of whatever executor, or thread pool
/// executor, is running here), if any.
fn running_task() -> Option<sys::monad_async_task> {
    // SAFETY: no preconditions.
    let ex = unsafe { sys::monad_async_executor_current() }.value as sys::monad_async_executor;
    if ex.is_null() {
        return None;
    }
    // SAFETY: the executor running on this thread is alive while it runs.
    let task = unsafe { atomics::executor_current_task(ex) }.load(Ordering::Relaxed);
    (!task.is_null()).then_some(task)
}

/// Suspends the running task `current` in growing naps until `header`'s
/// job, which belongs to another thread or to a thread pool, is done.
/// Naps rather than yields: a nap leaves the executor free to run other
/// work (a thread pool's executor takes the joined job itself, if it is
/// still queued), where a yield would come straight back. A task that
/// cannot suspend (the none switcher) blocks its thread instead.
fn nap_until_done(current: sys::monad_async_task, header: &Header) -> Result<(), JoinError> {
    const MAX_NAP: Duration = Duration::from_millis(1);
    let mut nap = Duration::from_micros(1);
    while !header.is_done() {
        // SAFETY: `current` is the task running on this thread.
        let r =
            unsafe { sys::monad_async_task_suspend_for_duration(current, nap.as_nanos() as u64) };
        nap = (nap * 2).min(MAX_NAP);
        match r.error {
            0 => {}
            _ if header.is_done() => break,
            libc::ECANCELED => return Err(JoinError::cancelled()),
            _ => {
                header.block_until_done();
                break;
            }
        }
    }
    Ok(())
}

/// The calling thread's id, cached: `thread::current()` clones an `Arc`.
fn current_thread_id() -> ThreadId {
    thread_local! {
        static ID: ThreadId = thread::current().id();
    }
    ID.with(|id| *id)
}

/// Owns the right to a spawned task's result.
///
/// Dropping it detaches the task (it still runs; its result is dropped).
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
    job: Arc<dyn Joinable<T>>,
}

// SAFETY: a JoinHandle only reaches the job's header (atomics, a Mutex, a
// Condvar, stats published before DONE) and, by value in join/try_join,
// its T. The closure, which need not be Send, is only touched on the
// executor's thread and is gone before any other thread can drop the last
// reference (module invariants). So moving the handle moves at most a T.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: &JoinHandle gives is_finished and stats only, which read the
// header's atomics and its published, Copy stats; the T is never reached.
unsafe impl<T> Sync for JoinHandle<T> {}

// A handle holds no state a panic could leave half-updated: its job is
// updated only by the executor, with atomics and a poison-tolerant mutex.
impl<T> std::panic::UnwindSafe for JoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for JoinHandle<T> {}

impl<T: 'static> JoinHandle<T> {
    pub(crate) fn header(&self) -> &Header {
        self.job.header()
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
    pub fn is_finished(&self) -> bool {
        self.header().is_done()
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
        let header = self.header();
        if header.is_done() {
            // SAFETY: written before DONE was released; DONE observed.
            Some(unsafe { *header.stats.get() })
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
    /// * inside a task of that executor: it suspends the calling task
    ///   (yielding, then sleeping in short naps) until this task has
    ///   finished; if the calling task is cancelled meanwhile, it returns
    ///   `Err(Cancelled)` at once (the joined task is unaffected);
    /// * inside any other task (of another executor, or of a
    ///   [`ThreadPool`](crate::ThreadPool)): it suspends the calling task in
    ///   short naps, leaving its executor free for other work (a thread
    ///   pool's task joining one still queued lets its thread run it);
    ///   cancellation of the calling task returns `Err(Cancelled)` as
    ///   above; a task that cannot suspend blocks its thread instead;
    /// * on any other thread: it blocks that thread.
    ///
    /// # Errors
    ///
    /// [`JoinError`]: the task panicked (the payload is inside) or was
    /// cancelled.
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
    pub fn join(self) -> Result<T, JoinError> {
        let header = self.header();
        if !header.is_done() {
            if header.owner == Some(current_thread_id()) {
                // SAFETY: not DONE and on the owner thread, so the executor
                // is alive (dropping it completes every job, and it can
                // only be dropped on this thread, which is here).
                unsafe { (*header.local).wait_for(header)? };
            } else if let Some(current) = running_task() {
                nap_until_done(current, header)?;
            } else {
                header.block_until_done();
            }
        }
        self.take()
    }

    fn take(self) -> Result<T, JoinError> {
        // SAFETY: DONE was observed (acquire) by our caller, and `self` is
        // consumed, so this is the only take.
        unsafe { self.job.take_output() }.unwrap_or_else(|| Err(JoinError::cancelled()))
    }
}

impl<T: 'static> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
