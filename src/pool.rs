//! A priority-based thread pool: threads each running an executor of one
//! C work dispatcher (`monad_async/dispatcher.h`), fed from any thread.
//!
//! ```
//! use monad_async::{Priority, ThreadPool};
//!
//! let pool = ThreadPool::builder().threads(2).build()?;
//! let low = pool.spawn(Priority::Low, |_cx| "low");
//! let high = pool.spawn(Priority::High, |_cx| 6 * 7);
//! assert_eq!(high.join().unwrap(), 42);
//! assert_eq!(low.join().unwrap(), "low");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A closure gets the same [`TaskContext`] as an executor's task: with a
//! stackful [switcher](ThreadPoolBuilder::switcher) it can yield, sleep,
//! park, wait on [`sync`](crate::sync) primitives, `block_on` a future,
//! bound its waits with deadlines, and, with a
//! [ring](ThreadPoolBuilder::ring_entries), do [I/O](crate::io), all
//! without blocking its worker, which runs other closures meanwhile:
//!
//! ```
//! use monad_async::{Priority, Switcher, ThreadPool};
//! use std::time::Duration;
//!
//! let pool = ThreadPool::builder()
//!     .threads(1)
//!     .switcher(Switcher::Asm) // closures may suspend
//!     .ring_entries(64)        // and do I/O
//!     .build()?;
//! let a = pool.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(20)));
//! let b = pool.spawn(Priority::Normal, |cx| monad_async::io::nop(cx));
//! b.join().unwrap()?; // done while `a` sleeps on the only worker
//! a.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Structure
//!
//! * [`ThreadPool`] owns the worker threads and an `Arc<Shared>`: the C
//!   dispatcher, the context switcher every task uses, and the idle C
//!   tasks with their slots: a lock-free stack the workers push returned
//!   slots onto, and the spawners' mutex-protected list refilled from it.
//! * A spawn takes an idle C task with its slot (or creates them), binds
//!   the closure to the slot with the crate's task machinery
//!   ([`crate::task`]: the trampoline that catches panics, [`JoinHandle`],
//!   [`JoinError`](crate::JoinError)) and submits the task to the
//!   dispatcher, which hands it to whichever worker is free, most urgent
//!   priority first. When its work is over the task's exit hook hands the
//!   slot back through `release_slot` (the slot's `foreign` way home).
//!
//! # Invariants
//!
//! * `Shared` outlives every task's work: `Drop` waits for all submitted
//!   work to finish (with a shutdown timeout, the workers then cancel
//!   their work by destroying their executors, which runs it to its exit,
//!   before they end; and anything submitted after that wait is cancelled)
//!   before it joins the workers and frees anything, and a task's last
//!   touch of `Shared` is in its exit hook, which the C dispatcher counts
//!   as executed only once the hook has returned.
//! * Every C task created is, with its slot, either in `Shared::free`, on
//!   `Shared::returned`, or carrying work that has not finished; `Drop` destroys them all, after
//!   which no task uses the switcher.
//! * A pool closure's [`TaskContext`] has no executor state behind it
//!   (`local` is null): what needs one (`cx.spawn`, `executor_handle`)
//!   refuses, and its wakers reach the task through the pool's
//!   `PoolAlive` guard, which the pool's drop closes before it destroys
//!   any task.
//! * The trampoline skips a closure whose handle cancelled it while
//!   queued (the dispatcher's queue cannot take out one task), and ends
//!   one cancelled while it ran as cancelled (see [`JoinHandle::cancel`]);
//!   no unwinding is involved, so this holds with `panic = "abort"`.

mod alive;

pub(crate) use alive::PoolAlive;

use crate::error::{check, errno};
use crate::executor::Switcher;
use crate::options::{setters, Options};
use crate::sys;
use crate::task::{self, Foreign, JoinHandle, Priority, Slot, TaskBuilder, TaskContext};
use crate::ticks;
use std::fmt;
use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

/// Options for a [`ThreadPool`], from [`ThreadPool::builder`].
///
/// ```
/// use monad_async::{Switcher, ThreadPool};
/// use std::time::Duration;
///
/// let pool = ThreadPool::builder()
///     .threads(2)
///     .spin(Duration::from_micros(50)) // before an idle thread sleeps
///     .ring_entries(0)                 // compute only: no io_uring
///     .stack_size(64 * 1024)
///     .switcher(Switcher::Asm)
///     .build()?;
/// assert_eq!(pool.threads(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ThreadPoolBuilder {
    threads: Option<usize>,
    spin: Option<Duration>,
    shutdown_timeout: Option<Duration>,
    /// What every worker's executor and every task is made with.
    options: Options,
}

impl Default for ThreadPoolBuilder {
    fn default() -> Self {
        ThreadPoolBuilder {
            threads: None,
            spin: None,
            shutdown_timeout: None,
            options: Options::new(0, Switcher::None),
        }
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ThreadPoolBuilder");
        d.field("threads", &self.threads)
            .field("spin", &self.spin)
            .field("shutdown_timeout", &self.shutdown_timeout);
        self.options.debug_fields(&mut d);
        d.finish()
    }
}

impl ThreadPoolBuilder {
    /// A builder with the defaults: one thread per core
    /// ([`std::thread::available_parallelism`]), the dispatcher's default
    /// spin (20 µs), compute-only executors (no io_uring), time tracking
    /// on, the [`None`](Switcher::None) switcher (closures run on their
    /// worker's own stack).
    ///
    /// ```
    /// let pool = monad_async::ThreadPoolBuilder::new().build()?;
    /// assert!(pool.threads() >= 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of worker threads. Must be at least 1.
    ///
    /// ```
    /// let pool = monad_async::ThreadPool::builder().threads(3).build()?;
    /// assert_eq!(pool.threads(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// How long an idle worker keeps looking for work before it sleeps.
    /// Spinning catches the next task of a steady stream without a
    /// wake-up system call; [`Duration::ZERO`] sleeps at once, which saves
    /// CPU time when work is sparse.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = monad_async::ThreadPool::builder().spin(Duration::ZERO).build()?;
    /// # drop(pool);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = Some(spin);
        self
    }

    /// Bounds the pool's drop. Without it (the default) dropping the pool
    /// waits for every closure spawned so far to finish, however long
    /// that takes: a closure waiting for a connection that never comes
    /// keeps the drop waiting. With it, the drop waits up to `timeout`
    /// for that, then cancels what is left, as dropping an
    /// [`Executor`](crate::Executor) does: closures not yet started never
    /// run, and those started see `ECANCELED` at their suspension points
    /// (one that keeps suspending is unwound, its destructors run); all
    /// of them join as cancelled. A closure that never suspends (or the
    /// [`Switcher::None`]) still runs to its end. After the timeout each
    /// worker sees the cancellation within its idle period (100 ms).
    ///
    /// ```
    /// use monad_async::{Priority, Switcher, ThreadPool};
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = ThreadPool::builder()
    ///     .threads(1)
    ///     .switcher(Switcher::Asm)
    ///     .shutdown_timeout(Duration::from_millis(10))
    ///     .build()?;
    /// let h = pool.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_secs(3600)));
    /// let start = Instant::now();
    /// drop(pool);
    /// assert!(start.elapsed() < Duration::from_secs(60));
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    setters! {
        /// Submission queue entries of each worker's io_uring; 0 (the
        /// default) makes compute-only executors with no ring, whose
        /// closures get `ENOTSUP` from [I/O](crate::io) calls. A ring
        /// costs each worker its memory (about 80 KiB with the default
        /// completion queue, locked), one io_uring instance, and about
        /// 45 us more to build and drop (measured: a 2-thread pool 170 us
        /// with 64 entries, 78 us without); it is off
        /// by default because compute-only pools are the common case and
        /// a ring can be refused (seccomp, `kernel.io_uring_disabled`),
        /// which would make every pool's `build` fail. I/O also needs a
        /// stackful [`switcher`](ThreadPoolBuilder::switcher).
        ///
        /// ```
        /// let pool = monad_async::ThreadPool::builder().ring_entries(16).build()?;
        /// # drop(pool);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        ring_entries(entries: u32);

        /// Completion queue entries of each worker's io_uring, as
        /// [`ExecutorBuilder::cq_entries`](crate::ExecutorBuilder::cq_entries):
        /// 0 (the default) picks 4,096, or twice the submission queue if
        /// that is more; each entry costs 16 bytes of ring memory per
        /// worker. Ignored without a ring.
        ///
        /// ```
        /// let pool = monad_async::ThreadPool::builder()
        ///     .ring_entries(16)
        ///     .cq_entries(64)
        ///     .build()?;
        /// # drop(pool);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        cq_entries(entries: u32);

        /// Whether the workers take tick stamps (about 10 ns per task state
        /// change). Off, task and pool time figures are zero.
        ///
        /// ```
        /// use monad_async::{Priority, ThreadPool};
        ///
        /// let pool = ThreadPool::builder().time_tracking(false).build()?;
        /// let h = pool.spawn(Priority::Normal, |_cx| ());
        /// pool.wait_idle()?;
        /// assert!(h.stats().unwrap().executing.is_zero());
        /// # Ok::<(), std::io::Error>(())
        /// ```
        time_tracking(on: bool);

        /// Usable stack bytes of each task with a stackful
        /// [`switcher`](ThreadPoolBuilder::switcher); 0 picks the C default
        /// (256 KiB), as for
        /// [`ExecutorBuilder::stack_size`](crate::ExecutorBuilder::stack_size).
        ///
        /// ```
        /// let pool = monad_async::ThreadPool::builder().stack_size(1 << 20).build()?;
        /// # drop(pool);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        stack_size(bytes: usize);

        /// The context switcher every task uses.
        ///
        /// [`Switcher::None`], the default, runs each closure on its worker's
        /// own stack: the cheapest, and a queued closure costs no stack; but
        /// its [`TaskContext`] cannot suspend (sleep, park, yield and I/O
        /// return `ENOTSUP`), and a
        /// [`join`](JoinHandle::join) inside a closure then blocks its worker
        /// until the joined closure is done, so fork-join work needs at least
        /// as many threads as it nests deep.
        ///
        /// [`Switcher::Asm`] (or [`Sjlj`](Switcher::Sjlj)) gives every closure
        /// its own stack, so a closure that joins another suspends instead,
        /// leaving its worker free to run the joined one. Each queued or
        /// running closure then holds a stack of
        /// [`stack_size`](ThreadPoolBuilder::stack_size), reserved and
        /// committed as touched, and two memory mappings: Linux's default
        /// `vm.max_map_count` caps that at roughly 32,000 closures spawned and
        /// not yet finished (spawn then fails with `ENOMEM`).
        ///
        /// ```
        /// use monad_async::{Priority, Switcher, ThreadPool};
        /// use std::sync::Arc;
        ///
        /// // One thread, a closure joining another: fine with stacks.
        /// let pool = Arc::new(ThreadPool::builder().threads(1).switcher(Switcher::Asm).build()?);
        /// let p = Arc::clone(&pool);
        /// let h = pool.spawn(Priority::Normal, move |_cx| p.spawn(Priority::High, |_cx| 2).join().unwrap() * 3);
        /// assert_eq!(h.join().unwrap(), 6);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        switcher(switcher: Switcher);
    }

    /// Creates the dispatcher and starts the threads, each creating its
    /// executor; returns once every executor is ready.
    ///
    /// # Errors
    ///
    /// `EINVAL` for zero threads; `ENOTSUP` for [`Switcher::Asm`] on an
    /// architecture without it; a thread's executor creation error (with a
    /// [`RingSetupError`](crate::RingSetupError) saying why when a ring is
    /// asked for and cannot be made); the error of spawning a thread.
    ///
    /// ```
    /// let err = monad_async::ThreadPool::builder().threads(0).build().unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    /// ```
    pub fn build(self) -> io::Result<ThreadPool> {
        let threads = match self.threads {
            Some(0) => return Err(errno(libc::EINVAL)),
            Some(n) => n,
            None => thread::available_parallelism().map_or(1, |n| n.get()),
        };
        // Calibrate the tick frequency now rather than on a first stat.
        let _ = ticks::ticks_per_second();

        let sw = self.options.create_switcher()?;
        let (spin_ns, flags) = match self.spin {
            None => (0, 0),
            Some(d) if d.is_zero() => (
                0,
                sys::monad_async_work_dispatcher_flag::MONAD_ASYNC_WORK_DISPATCHER_FLAG_NO_SPIN.0,
            ),
            Some(d) => (u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), 0),
        };
        let attr = sys::monad_async_work_dispatcher_attr {
            spin_ns,
            idle_ns: 0,
            flags,
            reserved: [0; 5],
        };
        let mut wd: sys::monad_async_work_dispatcher = ptr::null_mut();
        // SAFETY: valid out-pointer and attr.
        if let Err(err) = check(unsafe { sys::monad_async_work_dispatcher_create(&mut wd, &attr) })
        {
            // SAFETY: the switcher was just created and has no users.
            let _ = unsafe { sys::monad_async_context_switcher_destroy(sw) };
            return Err(err);
        }
        let shared = Arc::new(Shared {
            wd,
            switcher: sw,
            stack_size: self.options.stack_size,
            free: Mutex::new(Vec::new()),
            returned: AtomicPtr::new(ptr::null_mut()),
            tasks_created: AtomicU64::new(0),
            alive: Arc::new(PoolAlive::default()),
            abort: Arc::new(AtomicBool::new(false)),
            shutdown_timeout: self.shutdown_timeout,
        });
        let mut pool = ThreadPool {
            shared,
            workers: Vec::with_capacity(threads),
        };
        let ex_attr = sys::monad_async_work_dispatcher_executor_attr {
            executor: self.options.executor_attr(),
            reserved: [0; 4],
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let shared_abort = Arc::clone(&pool.shared.abort);
        for i in 0..threads {
            let ready = ready_tx.clone();
            let abort = Arc::clone(&shared_abort);
            let wd = WdPtr(wd);
            let spawned = thread::Builder::new()
                .name(format!("monad-async-pool-{i}"))
                .spawn(move || worker_main(i, wd, ex_attr, ready, abort));
            match spawned {
                Ok(thread) => pool.workers.push(Worker {
                    thread: Some(thread),
                    ex: ptr::null_mut(),
                }),
                // Drop quits and joins the threads started so far.
                Err(err) => return Err(err),
            }
        }
        drop(ready_tx);
        let mut first_error = None;
        for _ in 0..threads {
            match ready_rx.recv() {
                Ok((i, Ok(ex))) => pool.workers[i].ex = ex.0,
                Ok((_, Err(err))) => {
                    first_error.get_or_insert_with(|| self.options.creation_error(err));
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| errno(libc::ECHILD));
                }
            }
        }
        match first_error {
            None => Ok(pool),
            Some(err) => Err(err),
        }
    }
}

/// The dispatcher pointer, for the worker threads.
#[derive(Clone, Copy)]
struct WdPtr(sys::monad_async_work_dispatcher);
// SAFETY: the C dispatcher is thread-safe for everything the workers do
// with it (create, run and destroy their own executors).
unsafe impl Send for WdPtr {}

/// A worker's executor, reported to the building thread.
struct ExPtr(sys::monad_async_work_dispatcher_executor);
// SAFETY: only read through the thread-safe counter function.
unsafe impl Send for ExPtr {}

/// Runs one worker: its executor until told to quit.
fn worker_main(
    index: usize,
    wd: WdPtr,
    attr: sys::monad_async_work_dispatcher_executor_attr,
    ready: mpsc::Sender<(usize, io::Result<ExPtr>)>,
    abort: Arc<AtomicBool>,
) {
    let mut ex: sys::monad_async_work_dispatcher_executor = ptr::null_mut();
    // SAFETY: valid out-pointer and attr; the dispatcher outlives this
    // thread (the pool joins it before destroying the dispatcher).
    let created =
        check(unsafe { sys::monad_async_work_dispatcher_executor_create(&mut ex, wd.0, &attr) });
    let failed = created.is_err();
    #[cfg(feature = "tracing")]
    if !failed {
        // A span per pool task too. SAFETY: the executor underneath was
        // just created on this thread and is not running.
        let _ = unsafe { crate::trace::install((*ex).executor) };
    }
    let _ = ready.send((index, created.map(|_| ExPtr(ex))));
    if failed {
        return;
    }
    loop {
        // SAFETY: our executor, on its own thread.
        let r = unsafe { sys::monad_async_work_dispatcher_executor_run(ex) };
        // Only misuse (wrong thread, re-entry) makes run fail, and neither
        // can happen here; stop rather than spin on an error regardless.
        if r.error != 0 || r.value < 0 || abort.load(Ordering::Acquire) {
            break;
        }
    }
    // On an abort (the pool's shutdown timeout passed) this cancels the
    // work still attached and runs it to its exit.
    // SAFETY: our executor, on its own thread, outside its run.
    let _ = unsafe { sys::monad_async_work_dispatcher_executor_destroy(ex) };
}

/// An idle slot (and its C task) in the pool's free list.
struct SlotPtr(NonNull<Slot>);

// SAFETY: an idle slot and its unattached task are plain memory owned by
// whoever holds them; the pool's mutex orders the hand-over between
// threads.
unsafe impl Send for SlotPtr {}

/// What spawning threads and the workers share.
struct Shared {
    wd: sys::monad_async_work_dispatcher,
    switcher: sys::monad_async_context_switcher,
    stack_size: usize,
    /// Idle slots, for spawners: refilled from `returned` when empty.
    free: Mutex<Vec<SlotPtr>>,
    /// Slots the workers hand back (their exit hooks), a lock-free stack
    /// linked through `Slot::next`, so that workers never wait for a
    /// spawner's lock; spawners take it whole.
    returned: AtomicPtr<Slot>,
    tasks_created: AtomicU64,
    /// Keeps the tasks alive for their wakers' calls (in every slot).
    alive: Arc<PoolAlive>,
    /// Set by the drop once its shutdown timeout has passed: the workers
    /// stop running and destroy their executors, cancelling their work.
    abort: Arc<AtomicBool>,
    shutdown_timeout: Option<Duration>,
}

// SAFETY: the raw pointers are used only through C functions documented
// thread-safe (submit, wait, quit, counters, task_create with the
// switcher), while the pool is alive; the rest is atomics or behind the
// mutex.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn free_slots(&self) -> MutexGuard<'_, Vec<SlotPtr>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot ready for new work, with its idle C task: a pooled one, or a
    /// new one (expensive for a stackful switcher: maps a stack).
    /// `context` is the pool's `Arc<Shared>` pointer, for the slot's way
    /// home.
    fn take_slot(&self, context: *const ()) -> io::Result<NonNull<Slot>> {
        let pooled = {
            let mut free = self.free_slots();
            if free.is_empty() {
                self.take_returned(&mut free);
            }
            free.pop()
        };
        if let Some(slot) = pooled {
            // SAFETY: idle, out of the pool, ours.
            return Ok(unsafe { Slot::claim(slot.0) });
        }
        // SAFETY: the switcher outlives every task (destroyed last, in
        // ThreadPool::drop).
        let task = unsafe { crate::task::create_c_task(self.switcher, self.stack_size)? };
        self.tasks_created.fetch_add(1, Ordering::Relaxed);
        let home = Foreign {
            release: release_slot,
            context,
        };
        // SAFETY: the task was just created and is ours; release_slot
        // accepts `context` while the pool, and so any of its work, lives.
        Ok(unsafe { Slot::create_foreign(task, home, Arc::clone(&self.alive)) })
    }
}

impl Shared {
    /// Moves every slot on `returned` into `free`. Taking the stack whole
    /// (one exchange) rather than one slot at a time leaves no ABA
    /// window, so any number of spawners may do it.
    fn take_returned(&self, free: &mut Vec<SlotPtr>) {
        let mut head = self.returned.swap(ptr::null_mut(), Ordering::Acquire);
        while let Some(slot) = NonNull::new(head) {
            // SAFETY: the stack is ours now; each slot on it is idle and
            // its `next` was written before the push that published it.
            head = unsafe { *slot.as_ref().next.get() };
            free.push(SlotPtr(slot));
        }
    }
}

/// The exit hook's way back for a pool task's slot: onto `returned`.
///
/// # Safety
/// `context` is `Arc::as_ptr` of the live pool's `Shared`; `slot` is idle
/// (its work done) and no longer used by the caller.
unsafe fn release_slot(context: *const (), slot: NonNull<Slot>) {
    // SAFETY: per the contract (module invariants: Shared outlives every
    // task's work).
    let shared = unsafe { &*context.cast::<Shared>() };
    let mut head = shared.returned.load(Ordering::Relaxed);
    loop {
        // SAFETY: the slot is ours until the exchange publishes it.
        unsafe { *slot.as_ref().next.get() = head };
        match shared.returned.compare_exchange_weak(
            head,
            slot.as_ptr(),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// One worker thread and its executor.
struct Worker {
    thread: Option<thread::JoinHandle<()>>,
    /// Valid from `build` until the thread is joined.
    ex: sys::monad_async_work_dispatcher_executor,
}

/// A pool of threads running closures by priority.
///
/// [`spawn`](ThreadPool::spawn) queues a closure at one of three
/// priorities, from any thread; whichever worker is free runs it, always
/// the most urgent queued first (first in, first out within a level). A
/// high-priority closure spawned behind thousands of low ones starts as
/// soon as a worker finishes its current closure. Each closure runs on a
/// task (on its worker's stack, or with a
/// [stackful switcher](ThreadPoolBuilder::switcher) on its own) and stays
/// on the worker that started it. It takes a [`TaskContext`], as an
/// executor's task does (see the [module docs](self)), and its
/// [`JoinHandle`] can [cancel](JoinHandle::cancel) it.
///
/// Idle workers spin briefly, then sleep until work arrives.
///
/// Dropping the pool is an orderly shutdown: it waits for every closure
/// spawned so far to finish (for at most the
/// [`shutdown_timeout`](ThreadPoolBuilder::shutdown_timeout), if one is
/// set, after which it cancels what is left), stops the workers and joins
/// them. A pool
/// dropped from inside one of its own closures (only possible through
/// shared ownership such as `Arc<ThreadPool>`) cannot wait for itself: it
/// leaks instead (its threads keep running).
///
/// ```
/// use monad_async::{Priority, ThreadPool};
/// use std::sync::Arc;
///
/// let pool = Arc::new(ThreadPool::builder().threads(2).build()?);
/// let spawners: Vec<_> = (0..4)
///     .map(|i| {
///         let pool = Arc::clone(&pool);
///         std::thread::spawn(move || pool.spawn(Priority::Normal, move |_cx| i * 10))
///     })
///     .collect();
/// let sum: i32 = spawners
///     .into_iter()
///     .map(|t| t.join().unwrap().join().unwrap())
///     .sum();
/// assert_eq!(sum, 60);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<Worker>,
}

// SAFETY: the worker executor pointers are only read through the
// thread-safe counter function while the workers run (until drop joins
// them); everything else is in Shared (Send + Sync) or thread handles.
unsafe impl Send for ThreadPool {}
// SAFETY: as above: &ThreadPool gives spawn, wait_idle and the counters,
// all thread-safe.
unsafe impl Sync for ThreadPool {}

impl ThreadPool {
    /// A builder for a pool with non-default options.
    ///
    /// ```
    /// let pool = monad_async::ThreadPool::builder().threads(2).build()?;
    /// # drop(pool);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    /// A pool with the default options: one thread per core (see
    /// [`ThreadPoolBuilder::new`]).
    ///
    /// # Errors
    ///
    /// As [`ThreadPoolBuilder::build`].
    ///
    /// ```
    /// let pool = monad_async::ThreadPool::new()?;
    /// # drop(pool);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<ThreadPool> {
        ThreadPoolBuilder::new().build()
    }

    /// The number of worker threads.
    ///
    /// ```
    /// let pool = monad_async::ThreadPool::builder().threads(2).build()?;
    /// assert_eq!(pool.threads(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Queues `f` to run at `priority` on whichever worker is free, from
    /// any thread; its [`JoinHandle`] gives its result, or its panic. `f`
    /// takes the task's [`TaskContext`], as for
    /// [`Executor::spawn`](crate::Executor::spawn) (but must be `Send`:
    /// any worker may run it).
    ///
    /// # Panics
    ///
    /// When a new task cannot be created (out of memory or mappings); see
    /// [`try_spawn`](ThreadPool::try_spawn).
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().threads(1).build()?;
    /// let h = pool.spawn(Priority::High, |_cx| -> u32 { panic!("boom") });
    /// assert!(h.join().unwrap_err().is_panic());
    /// assert_eq!(pool.spawn(Priority::Low, |_cx| 5).join().unwrap(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, priority: Priority, f: F) -> JoinHandle<T>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.try_spawn(priority, f) {
            Ok(handle) => handle,
            Err(err) => panic!("monad_async: failed to spawn onto the thread pool: {err}"),
        }
    }

    /// As [`spawn`](ThreadPool::spawn), returning the error instead of
    /// panicking.
    ///
    /// # Errors
    ///
    /// `ENOMEM` or the `mmap` error when a new task's stack cannot be
    /// made; `ESHUTDOWN` while the pool is being dropped (from a closure
    /// that outlives the wait in `Drop`).
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().threads(1).build()?;
    /// let h = pool.try_spawn(Priority::Normal, |_cx| 1)?;
    /// assert_eq!(h.join().unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_spawn<F, T>(&self, priority: Priority, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit_named(priority, None, f)
    }

    /// Builder-style spawn options: a [name](TaskBuilder::name), a
    /// [priority](TaskBuilder::priority); then
    /// [`spawn`](TaskBuilder::spawn), as [`spawn`](ThreadPool::spawn).
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().threads(1).build()?;
    /// let h = pool
    ///     .build_task()
    ///     .name("thumbnail-9")
    ///     .priority(Priority::Low)
    ///     .spawn(|cx| (cx.name().map(str::to_owned), cx.priority()));
    /// assert_eq!(h.join().unwrap(), (Some("thumbnail-9".to_owned()), Priority::Low));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_task(&self) -> TaskBuilder<'_, ThreadPool> {
        TaskBuilder::pool(self)
    }

    /// Binds `f` (behind the cancellation check) to an idle slot, names
    /// it, and submits its task.
    pub(crate) fn submit_named<F, T>(
        &self,
        priority: Priority,
        name: Option<Box<str>>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        // Work cancelled while queued is skipped by the trampoline, on its
        // worker: the dispatcher's queue has no way to take out one task.
        self.submit(priority, name, f)
    }

    /// Binds `job` to an idle slot and submits its task.
    fn submit<W, T>(
        &self,
        priority: Priority,
        name: Option<Box<str>>,
        job: W,
    ) -> io::Result<JoinHandle<T>>
    where
        W: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = &*self.shared;
        let slot = shared.take_slot(Arc::as_ptr(&self.shared).cast())?;
        // SAFETY: the slot is ours (claimed or fresh) and its task idle.
        let task = unsafe {
            let s = slot.as_ref();
            task::bind_pool(s, priority, job);
            if let Some(name) = name {
                s.set_name(name);
            }
            s.task
        };
        // SAFETY: the dispatcher is alive while the pool is; submit is
        // thread-safe and reads one task pointer.
        let r = unsafe { sys::monad_async_work_dispatcher_submit(shared.wd, &task, 1) };
        if let Err(err) = check(r) {
            // SAFETY: bound with a W above and never submitted.
            let job = unsafe { slot.as_ref().unbind::<W>() };
            shared.free_slots().push(SlotPtr(slot));
            // W: Send, so dropping it on this thread is fine; after the
            // slot is back, in case its drop panics.
            drop(job);
            return Err(err);
        }
        // SAFETY: bound for a T and submitted; the only handle made.
        Ok(unsafe { JoinHandle::new(slot) })
    }

    /// Blocks until every closure spawned so far (from any thread) has
    /// finished, those they spawned meanwhile included.
    ///
    /// # Errors
    ///
    /// `EDEADLK` when called from inside one of this pool's closures (it
    /// would wait for itself).
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = ThreadPool::builder().threads(2).build()?;
    /// let done = Arc::new(AtomicU32::new(0));
    /// for _ in 0..100 {
    ///     let done = done.clone();
    ///     pool.spawn(Priority::Normal, move |_cx| done.fetch_add(1, Ordering::Relaxed));
    /// }
    /// pool.wait_idle()?;
    /// assert_eq!(done.load(Ordering::Relaxed), 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_idle(&self) -> io::Result<()> {
        // SAFETY: the dispatcher is alive while the pool is; wait is
        // thread-safe; a NULL timeout waits as long as it takes.
        check(unsafe { sys::monad_async_work_dispatcher_wait(self.shared.wd, 0, 0, ptr::null()) })
            .map(drop)
    }

    /// A snapshot of the pool's counters and times.
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().threads(2).build()?;
    /// for i in 0..10 {
    ///     pool.spawn(Priority::ALL[i % 3], |_cx| ());
    /// }
    /// pool.wait_idle()?;
    /// let s = pool.stats();
    /// assert_eq!((s.submitted, s.dispatched, s.executed, s.queued), (10, 10, 10, 0));
    /// assert_eq!(s.threads, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        let mut c = sys::monad_async_work_dispatcher_counters::default();
        // SAFETY: the dispatcher is alive; valid out-pointer.
        let r = unsafe { sys::monad_async_work_dispatcher_read_counters(self.shared.wd, &mut c) };
        debug_assert_eq!(r.error, 0);
        PoolStats {
            submitted: c.submitted,
            dispatched: c.dispatched,
            executed: c.executed,
            cancelled: c.cancelled,
            queued: c.queued,
            queued_by_priority: c.queued_by_priority,
            threads: c.executors,
            threads_idle: c.executors_idle,
            busy: ticks::ticks_to_duration(c.busy_ticks),
            idle: ticks::ticks_to_duration(c.idle_ticks),
            tasks_created: self.shared.tasks_created.load(Ordering::Relaxed),
        }
    }

    /// A snapshot of each worker's counters and times, in thread order.
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().threads(2).build()?;
    /// pool.spawn(Priority::Normal, |_cx| ());
    /// pool.wait_idle()?;
    /// let per_thread = pool.thread_stats();
    /// assert_eq!(per_thread.len(), 2);
    /// assert_eq!(per_thread.iter().map(|t| t.dispatched).sum::<u64>(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn thread_stats(&self) -> Vec<PoolThreadStats> {
        self.workers
            .iter()
            .map(|w| {
                let mut c = sys::monad_async_work_dispatcher_executor_counters::default();
                // SAFETY: the worker's executor lives until drop joins the
                // thread; reading its counters is thread-safe.
                let r = unsafe {
                    sys::monad_async_work_dispatcher_executor_read_counters(w.ex, &mut c)
                };
                debug_assert_eq!(r.error, 0);
                PoolThreadStats {
                    items: c.items,
                    dispatched: c.dispatched,
                    sleeps: c.sleeps,
                    busy: ticks::ticks_to_duration(c.busy_ticks),
                    idle: ticks::ticks_to_duration(c.idle_ticks),
                }
            })
            .collect()
    }
}

impl ThreadPool {
    /// What every task on the pool's workers is doing now: one
    /// [`Dump`](crate::Dump) per worker thread, in thread order (see
    /// [`Executor::dump`](crate::Executor::dump)). Each worker answers
    /// between two of its tasks' slices, so this waits (blocking the
    /// calling thread) for every worker to reach the end of the slice it
    /// is in. Work still queued in the pool, not yet taken by a worker,
    /// is not listed: [`stats`](ThreadPool::stats) counts it.
    ///
    /// ```
    /// use monad_async::{Activity, Priority, Switcher, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::builder().threads(2).switcher(Switcher::Asm).build()?;
    /// let sleeper = pool.spawn(Priority::Low, |cx| cx.sleep(Duration::from_millis(200)));
    /// std::thread::sleep(Duration::from_millis(50)); // it starts its sleep
    /// let dumps = pool.dump()?;
    /// assert_eq!(dumps.len(), 2);
    /// let sleeping = dumps.iter().flat_map(|d| d.iter()).filter(|t| t.activity() == Activity::Sleeping);
    /// assert_eq!(sleeping.count(), 1);
    /// sleeper.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `EDEADLK` from inside one of the pool's own closures (its worker
    /// could not answer while it waits); `ESHUTDOWN` while the pool is
    /// being dropped.
    pub fn dump(&self) -> io::Result<Vec<crate::Dump>> {
        let me = thread::current().id();
        if self
            .workers
            .iter()
            .any(|w| w.thread.as_ref().is_some_and(|t| t.thread().id() == me))
        {
            return Err(crate::error::errno(libc::EDEADLK));
        }
        let exs: Vec<sys::monad_async_executor> = self
            .workers
            .iter()
            // SAFETY: the worker's executor lives until drop joins its
            // thread; the head's `executor` is read-only.
            .map(|w| unsafe { (*w.ex).executor })
            .collect();
        // SAFETY: the executors live until drop (which needs &mut self);
        // none runs on this thread (checked above).
        unsafe { crate::dump::remote(&exs) }
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.workers.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        let wd = self.shared.wd;
        let me = thread::current().id();
        let inside = self
            .workers
            .iter()
            .any(|w| w.thread.as_ref().is_some_and(|t| t.thread().id() == me));
        let timeout = self.shared.shutdown_timeout.map(|d| libc::timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let r = if inside {
            sys::monad_async_result {
                error: libc::EDEADLK,
                value: 0,
            }
        } else {
            let tp = timeout.as_ref().map_or(ptr::null(), |t| t as *const _);
            // SAFETY: the dispatcher is alive; wait is thread-safe; `tp`
            // is null or points at `timeout`, alive for the call.
            unsafe { sys::monad_async_work_dispatcher_wait(wd, 0, 0, tp) }
        };
        if r.error == libc::ETIME {
            // The shutdown timeout passed: the workers cancel what is
            // left (the quit below wakes those asleep).
            self.shared.abort.store(true, Ordering::Release);
        }
        if r.error == libc::EDEADLK {
            // Dropped inside one of our own closures: we cannot wait for
            // ourselves, so leak everything the running closures use.
            for w in &mut self.workers {
                drop(w.thread.take());
            }
            std::mem::forget(Arc::clone(&self.shared));
            return;
        }
        // Quitting for good also refuses spawns from closures still
        // running. After an abort it does not wait: the workers leave by
        // destroying their executors.
        let now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let qt = if r.error == libc::ETIME {
            &now as *const libc::timespec
        } else {
            ptr::null()
        };
        // SAFETY: as above; quit is thread-safe; `qt` is null or points
        // at `now`, alive for the call.
        let _ = unsafe { sys::monad_async_work_dispatcher_quit(wd, usize::MAX, qt) };
        for w in &mut self.workers {
            if let Some(thread) = w.thread.take() {
                let _ = thread.join();
            }
        }
        // Work spawned by closures between the wait and the quit never
        // found a worker: end it (its handles report Cancelled).
        // SAFETY: as above; the exit hooks run here, pooling the tasks.
        let _ = unsafe { sys::monad_async_work_dispatcher_cancel_queued(wd) };
        // SAFETY: no executors and nothing queued any more.
        let destroyed = unsafe { sys::monad_async_work_dispatcher_destroy(wd) };
        // No waker call may reach a task from here on.
        self.shared.alive.close();
        let mut all_freed = destroyed.error == 0;
        let mut free = self.shared.free_slots();
        self.shared.take_returned(&mut free);
        for slot in free.drain(..) {
            // SAFETY: every task's work is over; the task and its slot are
            // idle and ours (out of the free list).
            let r = unsafe { sys::monad_async_task_destroy(slot.0.as_ref().task) };
            if r.error == 0 {
                // SAFETY: idle and ours; never used here again. A live
                // handle keeps (and later frees) it.
                unsafe { Slot::abandon(slot.0) };
            } else {
                all_freed = false;
            }
        }
        if all_freed {
            // SAFETY: no task uses the switcher any more.
            let _ = unsafe { sys::monad_async_context_switcher_destroy(self.shared.switcher) };
        }
    }
}

/// Counters and times of a [`ThreadPool`], from [`ThreadPool::stats`].
///
/// The counts are totals since the pool was built, except `queued`,
/// `queued_by_priority`, `threads` and `threads_idle`, which are "now".
/// A closure's figures are all in once [`ThreadPool::wait_idle`] has seen
/// it finish; its handle's [`join`](JoinHandle::join) may return a moment
/// before the pool has counted it.
/// Busy time is counted as each task slice ends, idle time (spinning or
/// asleep for lack of work) as it goes; both are zero without
/// [`time_tracking`](ThreadPoolBuilder::time_tracking).
///
/// ```
/// use monad_async::{Priority, ThreadPool};
///
/// let pool = ThreadPool::builder().threads(1).build()?;
/// pool.spawn(Priority::High, |_cx| std::thread::sleep(std::time::Duration::from_millis(2)));
/// pool.wait_idle()?;
/// let s = pool.stats();
/// assert_eq!(s.executed, 1);
/// assert!(s.busy >= std::time::Duration::from_millis(2));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PoolStats {
    /// Closures spawned.
    pub submitted: u64,
    /// Closures a worker took from the queue (or that the pool's drop
    /// cancelled).
    pub dispatched: u64,
    /// Closures whose work is over (returned, panicked or cancelled).
    pub executed: u64,
    /// Of those, closures cancelled before they started (spawned during
    /// the pool's drop).
    pub cancelled: u64,
    /// Closures waiting for a worker now.
    pub queued: u64,
    /// The same, per priority (`[high, normal, low]`).
    pub queued_by_priority: [u64; 3],
    /// Worker threads running now.
    pub threads: u64,
    /// Of those, idle (spinning or asleep) now.
    pub threads_idle: u64,
    /// Time the workers spent running closures, summed.
    pub busy: Duration,
    /// Time the workers spent spinning or asleep for lack of work, summed.
    pub idle: Duration,
    /// C tasks (each with its own stack, for a stackful switcher) created
    /// so far. Tasks are pooled and reused, so this stays near the largest
    /// number of closures queued or running at once, not the number of
    /// spawns.
    pub tasks_created: u64,
}

/// Counters and times of one worker of a [`ThreadPool`], from
/// [`ThreadPool::thread_stats`].
///
/// ```
/// use monad_async::{Priority, ThreadPool};
///
/// let pool = ThreadPool::builder().threads(1).build()?;
/// pool.spawn(Priority::Normal, |_cx| ());
/// pool.wait_idle()?;
/// let t = pool.thread_stats()[0];
/// assert_eq!((t.dispatched, t.items), (1, 1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PoolThreadStats {
    /// Task slices run (launches and resumptions).
    pub items: u64,
    /// Closures this worker took from the queue.
    pub dispatched: u64,
    /// Times it slept for lack of work.
    pub sleeps: u64,
    /// Time running closures.
    pub busy: Duration,
    /// Time spinning or asleep for lack of work.
    pub idle: Duration,
}
