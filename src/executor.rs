//! Executors: build one, spawn tasks on it (from its thread or any other),
//! run it, read its statistics, drop it.
//!
//! # Structure
//!
//! * [`Executor`] owns the C executor, one context switcher, and the
//!   owner-thread state (`Local`): the pool of idle tasks for owner-thread
//!   spawns, the count of live local work and the count of finished remote
//!   work. It is neither `Send` nor `Sync`: the C executor belongs to the
//!   thread that created it.
//! * `Shared` (behind an `Arc`) is what other threads may touch: the closed
//!   flag, the in-flight counter, the pool of idle tasks used by
//!   cross-thread spawns, and the count of remote spawns. What spawners
//!   write and what the owner thread writes sit on separate cache lines.
//!   [`ExecutorHandle`] is a clone of that `Arc`.
//!
//! # Invariants
//!
//! * A C task is created once, with its `Slot`, and reused: when its work
//!   ends its `on_exit` hook returns it to the pool it was taken from.
//!   Pools hold slots (each names its task), linked through `Slot::next`.
//!   `Local::free` (owner thread only: a `Cell`, no lock, no atomic) serves
//!   spawns made on the owner thread through [`Executor`] or
//!   [`TaskContext`]; `Shared::returned` serves spawns through an
//!   [`ExecutorHandle`]: a lock-free stack that only the owner thread
//!   pushes to on the hot path (in `on_exit`), and that spawners pop from
//!   one at a time (`Shared::poppers`), so a pop never races another pop
//!   and needs no ABA guard. Every created task is in one of the pools or
//!   attached; the executor's drop destroys them all.
//! * A pool operation calls neither C nor user code, so none can re-enter
//!   another: C may call `on_exit` (which pushes) from inside `run`,
//!   `cancel` and `destroy`.
//! * Another thread touches the C executor only between `Shared::enter`
//!   (increment the in-flight count, then check `closed`) and the guard's
//!   drop (decrement it). The drop sets `closed`, then waits for the
//!   in-flight count to reach zero before destroying, so no thread can
//!   reach a destroyed executor.
//! * `Local` lives in a `Box` whose address never changes; slots keep a
//!   raw pointer to it, dereferenced only on the owner thread while their
//!   work is unfinished, which implies the executor is alive.
//!
//! [`TaskContext`]: crate::TaskContext

use crate::error::{check, errno, JoinError};
use crate::options::{setters, Options};
use crate::sys::{self, atomics};
use crate::task::{self, JoinHandle, Priority, Slot, TaskContext};
use crate::ticks;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, ThreadId};
use std::time::Duration;

/// How an executor moves between its own stack and its tasks' stacks.
///
/// ```
/// use monad_async::{Executor, Priority, Switcher};
///
/// let ex = Executor::builder().switcher(Switcher::Sjlj).build()?;
/// let h = ex.spawn(Priority::Normal, |cx| cx.yield_now());
/// h.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Switcher {
    /// A hand-written register switch (x86-64 and aarch64): saves exactly
    /// the ABI's callee-saved registers. The fastest stackful switcher;
    /// the default.
    ///
    /// It leaves the floating-point control words (MXCSR and the x87
    /// control word, FPCR on aarch64) alone: Rust requires them to hold
    /// their defaults whenever Rust code runs (changing the rounding mode,
    /// the exception masks or denormal handling outside an `asm!` block
    /// is undefined behaviour, see `core::arch::x86_64::_mm_setcsr`), and
    /// a task reaches every switch through Rust code, so there is nothing
    /// of a task's own to save. Reading MXCSR costs about 4 ns on some
    /// CPUs (AMD Zen), which every switch would pay.
    #[default]
    Asm,
    /// [`Asm`](Switcher::Asm), saving and restoring the floating-point
    /// control words at every switch as the C ABI asks of a call: for
    /// tasks that suspend through the raw C API ([`sys`])
    /// from C or C++ code that changed them.
    ///
    /// ```
    /// use monad_async::{Executor, Priority, Switcher};
    ///
    /// let ex = Executor::builder().switcher(Switcher::AsmFpControl).build()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.yield_now());
    /// h.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    AsmFpControl,
    /// `setjmp`/`longjmp`: portable C.
    Sjlj,
    /// No stacks at all: each task runs to completion on the executor's
    /// stack and cannot suspend ([`TaskContext::yield_now`] and
    /// [`TaskContext::sleep`] return `ENOTSUP`). The cheapest, for
    /// run-to-completion work.
    None,
}

/// Options for an [`Executor`], from [`Executor::builder`].
///
/// ```
/// use monad_async::{Executor, Switcher};
///
/// let ex = Executor::builder()
///     .ring_entries(0)          // compute only: no io_uring
///     .cq_entries(0)            // (with a ring: the default CQ size)
///     .io_inflight_limit(0)     // (with a ring: the default guard)
///     .time_tracking(false)     // no tick stamps
///     .stack_size(64 * 1024)    // per task
///     .switcher(Switcher::Asm)
///     .build()?;
/// # drop(ex);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ExecutorBuilder {
    options: Options,
}

impl Default for ExecutorBuilder {
    fn default() -> Self {
        ExecutorBuilder {
            options: Options::new(ExecutorBuilder::DEFAULT_RING_ENTRIES, Switcher::Asm),
        }
    }
}

impl fmt::Debug for ExecutorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ExecutorBuilder");
        self.options.debug_fields(&mut d);
        d.finish()
    }
}

impl ExecutorBuilder {
    /// The io_uring submission queue size of [`Executor::new`].
    ///
    /// ```
    /// assert_eq!(monad_async::ExecutorBuilder::DEFAULT_RING_ENTRIES, 64);
    /// ```
    pub const DEFAULT_RING_ENTRIES: u32 = 64;

    /// The completion queue size an executor gets unless
    /// [`cq_entries`](Self::cq_entries) says otherwise (or twice the
    /// submission queue, if that is more).
    ///
    /// ```
    /// use monad_async::{Executor, ExecutorBuilder};
    ///
    /// assert_eq!(ExecutorBuilder::DEFAULT_CQ_ENTRIES, 4096);
    /// let ex = Executor::new()?;
    /// assert_eq!(ex.stats().io.cq_entries, ExecutorBuilder::DEFAULT_CQ_ENTRIES);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub const DEFAULT_CQ_ENTRIES: u32 = sys::MONAD_ASYNC_IO_CQ_ENTRIES_DEFAULT;

    /// The in-flight guard an executor gets unless
    /// [`io_inflight_limit`](Self::io_inflight_limit) says otherwise.
    ///
    /// ```
    /// use monad_async::{Executor, ExecutorBuilder};
    ///
    /// assert_eq!(ExecutorBuilder::DEFAULT_IO_INFLIGHT_LIMIT, 262_144);
    /// let ex = Executor::new()?;
    /// assert_eq!(ex.stats().io.inflight_limit, ExecutorBuilder::DEFAULT_IO_INFLIGHT_LIMIT);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub const DEFAULT_IO_INFLIGHT_LIMIT: u32 = sys::MONAD_ASYNC_IO_INFLIGHT_LIMIT_DEFAULT;

    /// A builder with the defaults: a ring of
    /// [`DEFAULT_RING_ENTRIES`](Self::DEFAULT_RING_ENTRIES), time tracking
    /// on, 256 KiB task stacks, the [`Asm`](Switcher::Asm) switcher.
    ///
    /// ```
    /// let ex = monad_async::ExecutorBuilder::new().build()?;
    /// # drop(ex);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Submission queue entries of the executor's io_uring (at most
        /// 32,768, rounded up to a power of two); 0 makes a compute-only
        /// executor with no ring.
        ///
        /// This is the batch the executor hands the kernel per system
        /// call, not a cap on operations in flight or on connections: a
        /// task that finds the queue full submits it at once (one system
        /// call) and takes an entry. Each entry costs 64 bytes of ring
        /// memory.
        ///
        /// ```
        /// let ex = monad_async::Executor::builder().ring_entries(0).build()?;
        /// # drop(ex);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        ring_entries(entries: u32);

        /// Completion queue entries of the executor's io_uring; 0 (the
        /// default) picks [`DEFAULT_CQ_ENTRIES`](Self::DEFAULT_CQ_ENTRIES)
        /// (4,096), or twice the submission queue if that is more.
        /// Otherwise at least [`ring_entries`](Self::ring_entries) and at
        /// most 65,536 (`build` fails with `EINVAL` outside), rounded up to
        /// a power of two.
        ///
        /// Each entry costs 16 bytes of ring memory (64 KiB for the
        /// default). The size never loses a completion: those that arrive
        /// while the queue is full wait in the kernel and are collected in
        /// the next passes, so a bigger queue only saves those passes when
        /// many operations complete at once.
        ///
        /// ```
        /// let ex = monad_async::Executor::builder().cq_entries(1024).build()?;
        /// assert_eq!(ex.stats().io.cq_entries, 1024);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        cq_entries(entries: u32);

        /// The in-flight guard: the most I/O operations the executor keeps
        /// in flight at once; 0 (the default) picks
        /// [`DEFAULT_IO_INFLIGHT_LIMIT`](Self::DEFAULT_IO_INFLIGHT_LIMIT)
        /// (262,144), at most 16,777,216 (`build` fails with `EINVAL`
        /// above).
        ///
        /// It is a memory guard, not a working limit: each operation in
        /// flight costs a 16-byte slot in a table whose address space is
        /// reserved up front (4 MiB for the default) but backed by memory
        /// only as far as it has been used, besides the kernel's own
        /// request of a few hundred bytes. Starting an operation never
        /// allocates.
        ///
        /// Operations that wait on the outside world (receives, accepts,
        /// connects, polls) may hold all of it but a reserve of an eighth
        /// (at least one slot from a limit of 2), which is kept for
        /// operations that finish by themselves (sends, writes, reads,
        /// sleeps, ...): idle connections can never hold the slot a send
        /// needs. A task that finds its share used up waits for a slot,
        /// highest I/O priority first; it never spins and gets no error.
        ///
        /// ```
        /// use monad_async::{Executor, Priority};
        ///
        /// let ex = Executor::builder().io_inflight_limit(1_000_000).build()?;
        /// assert_eq!(ex.stats().io.inflight_limit, 1_000_000);
        /// ex.spawn(Priority::Normal, monad_async::io::nop).join().unwrap()?;
        /// # Ok::<(), std::io::Error>(())
        /// ```
        io_inflight_limit(limit: u32);

        /// Whether to take tick stamps (about 10 ns per task state change).
        /// Off, every [`TaskStats`](crate::TaskStats) and
        /// [`ExecutorStats`] time figure is zero.
        ///
        /// ```
        /// use monad_async::{Executor, Priority};
        ///
        /// let ex = Executor::builder().time_tracking(false).build()?;
        /// let h = ex.spawn(Priority::Normal, |_cx| ());
        /// ex.run_until_idle()?;
        /// assert!(h.stats().unwrap().total.is_zero());
        /// # Ok::<(), std::io::Error>(())
        /// ```
        time_tracking(on: bool);

        /// Whether an executor with nothing to do may spin briefly (up to
        /// 20 us) before it sleeps; on by default. It spins only while its
        /// recent sleeps were ended soon by other threads (a task of
        /// another executor waking one of its tasks, a remote spawn): the
        /// next such wake then finds it awake and costs neither thread a
        /// system call, nor the woken task the 5-30 us a sleeping thread
        /// takes to be scheduled again. An executor woken rarely, only by
        /// its own timers, or not at all never spins, so an idle executor
        /// uses no CPU either way. Off, it always sleeps at once.
        ///
        /// ```
        /// let ex = monad_async::Executor::builder().idle_spin(false).build()?;
        /// # drop(ex);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        idle_spin(on: bool);

        /// Usable stack bytes of each task; 0 picks the C default (256 KiB).
        /// Rounded up to whole pages, with a guard page below: a task that
        /// overflows its stack makes the process print
        /// `monad-async: task stack overflow: the task's stack is N bytes; ...`
        /// and abort, as a thread's overflow does. Pages are committed as
        /// they are touched.
        /// Ignored by [`Switcher::None`].
        ///
        /// ```
        /// let ex = monad_async::Executor::builder().stack_size(1 << 20).build()?;
        /// # drop(ex);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        stack_size(bytes: usize);

        /// The context switcher every task of this executor uses.
        ///
        /// ```
        /// use monad_async::{Executor, Switcher};
        ///
        /// let ex = Executor::builder().switcher(Switcher::None).build()?;
        /// # drop(ex);
        /// # Ok::<(), std::io::Error>(())
        /// ```
        switcher(switcher: Switcher);
    }

    /// Creates the executor, bound to the calling thread.
    ///
    /// # Errors
    ///
    /// The C error: `ENOMEM`; `ENOTSUP` for [`Switcher::Asm`] on an
    /// architecture without it. When a ring is asked for and cannot be
    /// made, an error of the errno's kind carrying a
    /// [`RingSetupError`](crate::RingSetupError) that says why
    /// (`EPERM`/`ENOSYS`: a seccomp filter or the `kernel.io_uring_disabled`
    /// sysctl; `ENOMEM`: `RLIMIT_MEMLOCK`; `EINVAL`: too many entries, a
    /// completion queue size out of range, an in-flight limit above the
    /// maximum; `ENOTSUP`: a kernel before 5.5, whose completion queue
    /// could lose completions).
    ///
    /// ```
    /// let ex = monad_async::Executor::builder().ring_entries(8).build()?;
    /// # drop(ex);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> io::Result<Executor> {
        // Calibrate the tick frequency now rather than on a first stat.
        let _ = ticks::ticks_per_second();

        let sw = self.options.create_switcher()?;
        let attr = self.options.executor_attr();
        let mut ex: sys::monad_async_executor = ptr::null_mut();
        // SAFETY: valid out-pointer and attr.
        if let Err(err) = check(unsafe { sys::monad_async_executor_create(&mut ex, &attr) }) {
            // SAFETY: the switcher was just created and has no users.
            let _ = unsafe { sys::monad_async_context_switcher_destroy(sw) };
            return Err(self.options.creation_error(err));
        }
        #[cfg(feature = "tracing")]
        // SAFETY: just created on this thread, and not running.
        if let Err(err) = unsafe { crate::trace::install(ex) } {
            // SAFETY: ours and unused: no task was ever attached.
            unsafe {
                let _ = sys::monad_async_executor_destroy(ex);
                let _ = sys::monad_async_context_switcher_destroy(sw);
            }
            return Err(err);
        }

        let shared = Arc::new(Shared {
            ex,
            switcher: sw,
            stack_size: self.options.stack_size,
            owner: thread::current().id(),
            local: AtomicPtr::new(ptr::null_mut()),
            closed: AtomicBool::new(false),
            tasks_created: AtomicU64::new(0),
            spawners: Padded(Spawners {
                in_flight: AtomicUsize::new(0),
                remote_spawned: AtomicUsize::new(0),
                poppers: Mutex::new(()),
            }),
            returned: Padded(AtomicPtr::new(ptr::null_mut())),
        });
        let local = Box::into_raw(Box::new(Local {
            shared: Arc::clone(&shared),
            ex,
            free: Cell::new(ptr::null_mut()),
            live: Cell::new(0),
            remote_done: Cell::new(0),
            pools: RefCell::new(Vec::new()),
        }));
        shared.local.store(local, Ordering::Release);
        Ok(Executor {
            // SAFETY: Box::into_raw never returns null.
            local: unsafe { NonNull::new_unchecked(local) },
            _not_send: PhantomData,
        })
    }
}

/// Keeps a field on its own cache line (the owner thread writes it while
/// other threads write their neighbours).
#[repr(align(64))]
struct Padded<T>(T);

/// The part of an executor other threads may touch.
pub(crate) struct Shared {
    ex: sys::monad_async_executor,
    switcher: sys::monad_async_context_switcher,
    stack_size: usize,
    owner: ThreadId,
    /// The owner-thread state, for jobs spawned remotely; set once.
    local: AtomicPtr<Local>,
    closed: AtomicBool,
    tasks_created: AtomicU64,
    /// Written by spawning threads on every cross-thread spawn; the owner
    /// thread only reads it. On its own cache line, away from what the
    /// owner writes.
    spawners: Padded<Spawners>,
    /// Idle slots of cross-thread spawns (a stack linked through
    /// `Slot::next`): pushed by the owner thread in `on_exit` (and by a
    /// spawner whose attach failed), popped by spawners holding
    /// `Spawners::poppers`.
    returned: Padded<AtomicPtr<Slot>>,
}

/// The part of `Shared` that spawning threads write.
struct Spawners {
    /// Threads between `Shared::enter` and the guard's drop.
    in_flight: AtomicUsize,
    /// Work attached through a handle, ever (less failed attaches). With
    /// `Local::remote_done`, the work attached remotely and not yet over.
    remote_spawned: AtomicUsize,
    /// Serialises pops of `Shared::returned`: with one popper at a time,
    /// the node a pop reads cannot be popped, reused and pushed back under
    /// it (ABA).
    poppers: Mutex<()>,
}

// SAFETY: the raw pointers are used from other threads only for the C
// functions documented thread-safe (attach, wake, task_create with the
// switcher, whose user count is atomic), and only between `enter` and the
// guard's drop, while the executor is guaranteed alive. Everything else is
// atomics; the slots in `returned` are handed over by its atomics.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// Proof that the executor cannot be destroyed until this is dropped.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.spawners.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn enter(&self) -> io::Result<InFlight<'_>> {
        self.spawners.0.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self);
        if self.closed.load(Ordering::SeqCst) {
            return Err(errno(libc::ESHUTDOWN));
        }
        Ok(guard)
    }

    /// Keeps the executor (and so its pooled tasks) alive until
    /// [`unpin_alive`](Shared::unpin_alive), as a remote spawn's guard
    /// does: for a [`sync`](crate::sync) waker that must wake one of its
    /// tasks after letting it go on. False (and nothing held) once the
    /// executor is being dropped.
    pub(crate) fn pin_alive(&self) -> bool {
        match self.enter() {
            Ok(guard) => {
                std::mem::forget(guard);
                true
            }
            Err(_) => false,
        }
    }

    /// Ends a successful [`pin_alive`](Shared::pin_alive).
    pub(crate) fn unpin_alive(&self) {
        drop(InFlight(self));
    }

    /// True on the executor's own thread.
    #[inline]
    pub(crate) fn on_owner_thread(&self) -> bool {
        task::on_thread(self.owner)
    }

    /// Wakes the parked work `token` of `task`, one of this executor's
    /// tasks (see [`TaskWaker`](crate::TaskWaker)): true if it resumed it.
    /// Any thread; nothing once the executor is being dropped.
    pub(crate) fn wake_task(&self, task: sys::monad_async_task, token: u64) -> bool {
        if task::on_thread(self.owner) {
            // Only this thread drops the executor, and it is here: not
            // closed means alive, with no guard to take.
            if self.closed.load(Ordering::Relaxed) {
                return false;
            }
            // SAFETY: the executor and its pooled tasks are alive; the
            // wake checks the token.
            let r = unsafe { sys::monad_async_task_wake(task, token) };
            return r.error == 0 && r.value == 1;
        }
        let Ok(_guard) = self.enter() else {
            return false;
        };
        // SAFETY: the guard keeps the executor, and so its pooled tasks,
        // alive; the wake is thread-safe and checks the token.
        let r = unsafe { sys::monad_async_task_wake(task, token) };
        r.error == 0 && r.value == 1
    }

    /// Runs `f` (a thread-safe C call on one of this executor's pooled
    /// tasks) while the executor, and so its tasks, are guaranteed alive;
    /// `None` once the executor is being dropped. Any thread.
    pub(crate) fn call_on_task<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        if task::on_thread(self.owner) {
            // As in wake_task: on the owner thread, not closed means alive.
            if self.closed.load(Ordering::Relaxed) {
                return None;
            }
            return Some(f());
        }
        let _guard = self.enter().ok()?;
        Some(f())
    }

    /// Returns an idle remote slot to `returned`. Any thread.
    ///
    /// # Safety
    /// `slot` must be an idle remote slot of this executor, owned by the
    /// caller, who does not touch it afterwards.
    unsafe fn push_returned(&self, slot: NonNull<Slot>) {
        let mut head = self.returned.0.load(Ordering::Relaxed);
        loop {
            // SAFETY: the slot is ours until the exchange publishes it.
            unsafe { *slot.as_ref().next.get() = head };
            match self.returned.0.compare_exchange_weak(
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

    /// Takes an idle remote slot from `returned`, if there is one.
    fn pop_returned(&self) -> Option<NonNull<Slot>> {
        if self.returned.0.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let _one_popper = self
            .spawners
            .0
            .poppers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut head = self.returned.0.load(Ordering::Acquire);
        loop {
            let slot = NonNull::new(head)?;
            // SAFETY: `slot` is in the stack and, as we are the only
            // popper, stays there until our exchange takes it: it is not
            // freed, and its `next` (written before its push was released,
            // which our acquire saw) does not change.
            let next = unsafe { *slot.as_ref().next.get() };
            match self.returned.0.compare_exchange_weak(
                head,
                next,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(slot),
                Err(now) => head = now,
            }
        }
    }

    /// Asks the executor's thread to cancel piece of work `generation` of
    /// `task`, from any thread. Does not go through the C inbox's
    /// task-only cancel: by the time the executor drains it, the task may
    /// be running later work. Instead a small high-priority task checks,
    /// on the executor's thread (where the work cannot end meanwhile),
    /// that the task still runs that very piece of work, and only then
    /// cancels it.
    ///
    /// # Errors
    ///
    /// `ESHUTDOWN` once the executor is being dropped (which cancels all
    /// work itself); `ENOMEM` as for a spawn.
    pub(crate) fn cancel_remote(
        self: &Arc<Self>,
        task: sys::monad_async_task,
        generation: u64,
    ) -> io::Result<()> {
        let (ex, task) = (self.ex as usize, task as usize);
        let handle = ExecutorHandle {
            shared: Arc::clone(self),
        };
        let h = handle.spawn(Priority::High, move |_cx| {
            let (ex, task) = (
                ex as sys::monad_async_executor,
                task as sys::monad_async_task,
            );
            // SAFETY: on the executor's thread, inside one of its tasks, so
            // the executor and every task it created are alive (tasks are
            // destroyed only by its drop).
            let state = unsafe { atomics::task_state(task) }.load(Ordering::Acquire);
            let attached = sys::monad_async_task_state_flag::MONAD_ASYNC_TASK_STATE_ATTACHED.0;
            let exited = sys::monad_async_task_state_flag::MONAD_ASYNC_TASK_STATE_EXITED.0;
            if state & attached == 0 || state & exited != 0 {
                return; // idle: the work is over (and it may be in a pool,
                        // being re-bound by another thread: touch nothing)
            }
            // SAFETY: attached, and it cannot exit while we run on its
            // thread, so its slot (published by the attach, which our
            // acquire load saw) is held by the executor side.
            let slot = unsafe { Slot::of(task) };
            if slot.generation.load(Ordering::Relaxed) != generation || slot.is_done() {
                return; // later work: not ours to cancel
            }
            // SAFETY: owner thread; that work is live and attached here.
            let _ = unsafe { sys::monad_async_task_cancel(ex, task) };
        })?;
        drop(h);
        Ok(())
    }

    /// Creates a C task (expensive: maps its stack) and its slot.
    /// Thread-safe.
    fn create_task(self: &Arc<Self>, remote: bool) -> io::Result<NonNull<Slot>> {
        // SAFETY: the switcher outlives every task (destroyed last, in
        // Executor::drop).
        let task = unsafe { task::create_c_task(self.switcher, self.stack_size)? };
        self.tasks_created.fetch_add(1, Ordering::Relaxed);
        let local = self.local.load(Ordering::Acquire).cast_const();
        // SAFETY: the task was just created and is ours; `local` is the
        // state of the executor it will be attached to.
        Ok(unsafe { Slot::create(task, local, self.owner, remote, Arc::clone(self), 0) })
    }
}

/// The owner-thread state of an executor.
pub(crate) struct Local {
    shared: Arc<Shared>,
    ex: sys::monad_async_executor,
    /// Idle slots of owner-thread spawns, linked through `Slot::next`.
    free: Cell<*mut Slot>,
    /// Work spawned on the owner-thread path and not yet exited.
    live: Cell<usize>,
    /// Work attached through a handle that has exited, ever. Counted here,
    /// on the owner thread alone, so that a remote task's exit costs no
    /// atomic read-modify-write (see `Spawners::remote_spawned`).
    remote_done: Cell<usize>,
    /// Liveness flags of the buffer pools made on this executor, cleared
    /// once its destroy has freed them.
    pools: RefCell<Vec<Weak<Cell<bool>>>>,
}

impl Local {
    /// Cancels the work of `slot` (a slot of this executor whose handle
    /// the caller holds) if it is not over. Owner thread only.
    pub(crate) fn cancel_work(&self, slot: &Slot) -> io::Result<bool> {
        if slot.is_done() {
            return Ok(false);
        }
        // SAFETY: owner thread; the work is not done, so its task is live
        // and attached to this executor. A pending task's on_exit runs
        // inside this call (and pushes to a pool, which nothing holds).
        let r = unsafe { sys::monad_async_task_cancel(self.ex, slot.task) };
        match r.error {
            0 | libc::EAGAIN => Ok(true),
            e => Err(errno(e)),
        }
    }

    /// The owner-thread spawn path: no lock, no allocation once warm, no
    /// atomic read-modify-write.
    #[inline]
    pub(crate) fn try_spawn<F, T>(&self, priority: Priority, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
        T: 'static,
    {
        self.try_spawn_with(priority, None, f)
    }

    /// As `try_spawn`, naming the work (a name lives in the Rust slot:
    /// `None` costs nothing).
    #[inline]
    pub(crate) fn try_spawn_with<F, T>(
        &self,
        priority: Priority,
        name: Option<Box<str>>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
        T: 'static,
    {
        let slot = match self.pop_free() {
            // SAFETY: popped from our pool: idle and ours.
            Some(slot) => unsafe { Slot::claim(slot) },
            None => self.shared.create_task(false)?,
        };
        // SAFETY: claimed or fresh, so ours, its task unattached.
        let s = unsafe { slot.as_ref() };
        // SAFETY: as above.
        unsafe { task::bind(s, priority, f) };
        if let Some(name) = name {
            // SAFETY: bound, not yet attached: ours alone.
            unsafe { s.set_name(name) };
        }
        self.live.set(self.live.get() + 1);
        // SAFETY: live executor and task; on the owner thread this is the
        // O(1) local path.
        let r = unsafe { sys::monad_async_task_attach(self.ex, s.task, ptr::null_mut()) };
        if let Err(err) = check(r) {
            self.live.set(self.live.get() - 1);
            // SAFETY: bound above with an F and not attached.
            let f = unsafe { s.unbind::<F>() };
            self.push_free(slot);
            drop(f);
            return Err(err);
        }
        // SAFETY: bound for a T and attached; the only handle.
        Ok(unsafe { JoinHandle::new(slot) })
    }

    #[inline]
    fn pop_free(&self) -> Option<NonNull<Slot>> {
        let slot = NonNull::new(self.free.get())?;
        // SAFETY: slots in the pool are idle and owned by it; `next` is
        // only touched on this thread while they are.
        self.free.set(unsafe { *slot.as_ref().next.get() });
        Some(slot)
    }

    #[inline]
    fn push_free(&self, slot: NonNull<Slot>) {
        // SAFETY: the caller hands an idle local slot to the pool.
        unsafe { *slot.as_ref().next.get() = self.free.get() };
        self.free.set(slot.as_ptr());
    }

    /// Work attached through a handle and not yet exited, as far as this
    /// (the owner) thread can tell: every spawn that returned before
    /// (happens-before) this call is counted.
    fn remote_live(&self) -> usize {
        let spawned = self.shared.spawners.0.remote_spawned.load(Ordering::SeqCst);
        spawned.wrapping_sub(self.remote_done.get())
    }

    /// How many idle slots the owner-thread pool holds.
    fn pooled(&self) -> usize {
        let mut n = 0;
        let mut p = self.free.get();
        while let Some(slot) = NonNull::new(p) {
            n += 1;
            // SAFETY: pooled slots are idle; `next` is owner-thread state.
            p = unsafe { *slot.as_ref().next.get() };
        }
        n
    }

    /// The part of the executor other threads may touch, borrowed: no reference count change;
    /// alive as long as this executor.
    #[inline]
    pub(crate) fn shared_ref(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn handle(&self) -> ExecutorHandle {
        ExecutorHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Waits, on the owner thread outside any task, until `slot`'s work
    /// is done, by running the executor.
    pub(crate) fn wait_for(&self, slot: &Slot) -> Result<(), JoinError> {
        self.wait_for_until(slot, None).map(drop)
    }

    /// As [`wait_for`](Local::wait_for), until `until` at the latest: true
    /// if the work is done.
    pub(crate) fn wait_for_until(
        &self,
        slot: &Slot,
        until: Option<std::time::Instant>,
    ) -> Result<bool, JoinError> {
        while !slot.is_done() {
            let ts = match until {
                None => None,
                Some(t) => {
                    let left = t.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    Some(libc::timespec {
                        tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                        tv_nsec: left.subsec_nanos() as libc::c_long,
                    })
                }
            };
            let tsp = ts
                .as_ref()
                .map_or(ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: owner thread, not inside one of its tasks; `tsp` is
            // null or a valid timespec on our stack.
            let r = unsafe { sys::monad_async_executor_run(self.ex, 1, tsp.cast()) };
            match r.error {
                0 | libc::ETIME => {}
                libc::EBUSY => panic!(
                    "JoinHandle::join called from inside the executor's run loop \
                     outside any task (from a destructor the executor ran?)"
                ),
                e => panic!(
                    "JoinHandle::join: running the executor failed: {}",
                    errno(e)
                ),
            }
        }
        Ok(true)
    }
}

/// Returns an exited task's slot to the pool it came from. Called by
/// `on_exit`, as its last touch of the slot.
///
/// # Safety
/// On the executor's thread; the slot's `local` is its live owner-thread
/// state; the slot is idle (its work done) and no longer used by the
/// caller.
#[inline]
pub(crate) unsafe fn release_slot(slot: NonNull<Slot>) {
    // SAFETY: per the contract.
    let (local, remote) = unsafe { (&*slot.as_ref().local, slot.as_ref().remote) };
    if remote {
        local
            .remote_done
            .set(local.remote_done.get().wrapping_add(1));
        // SAFETY: an idle remote slot of this executor, handed over.
        unsafe { local.shared.push_returned(slot) };
    } else {
        local.live.set(local.live.get() - 1);
        local.push_free(slot);
    }
}

/// Statistics of an executor, from [`Executor::stats`].
///
/// The counters are maintained by the C executor on its thread; the times
/// are its tick totals converted with [`ticks_per_second`](crate::ticks_per_second)
/// (all zero without time tracking).
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// for _ in 0..3 {
///     ex.spawn(Priority::Normal, |cx| cx.yield_now());
/// }
/// ex.run_until_idle()?;
/// let s = ex.stats();
/// assert_eq!((s.attached, s.launched, s.resumed, s.exited), (3, 3, 3, 3));
/// assert_eq!(s.tasks_attached, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ExecutorStats {
    /// Tasks attached and not yet exited.
    pub tasks_attached: u64,
    /// Tasks ready to run now, per priority (`[high, normal, low]`).
    pub tasks_runnable: [u64; 3],
    /// Tasks sleeping in [`TaskContext::sleep`].
    pub tasks_sleeping: u64,
    /// Tasks attached, ever (both paths).
    pub attached: u64,
    /// First slices run (launches).
    pub launched: u64,
    /// Later slices run (resumptions).
    pub resumed: u64,
    /// Suspensions (yields, sleeps).
    pub suspended: u64,
    /// Tasks whose work ended, cancelled ones included.
    pub exited: u64,
    /// Tasks cancelled (pending or started).
    pub cancelled: u64,
    /// Attaches and cancels received from other threads.
    pub inbox_drained: u64,
    /// Times `run` waited for work.
    pub sleeps: u64,
    /// Time inside `run`, overall.
    pub time_in_run: Duration,
    /// Time running first slices.
    pub time_launching: Duration,
    /// Time running later slices.
    pub time_resuming: Duration,
    /// Time waiting for work.
    pub time_sleeping: Duration,
    /// C tasks (each with its own stack) created for this executor so far.
    /// Tasks are pooled and reused, so this stays near the largest number
    /// of tasks alive at once, not the number of spawns.
    pub tasks_created: u64,
    /// The ring's I/O counters and shape (all zero without a ring).
    pub io: IoStats,
    /// Launch and resume latency histograms, per priority (empty without
    /// time tracking).
    pub latency: crate::LatencyStats,
}

/// I/O counters and ring figures of an executor, in
/// [`ExecutorStats::io`]. Every operation a task starts is `submitted`
/// once and `completed` once (when its completion is reaped), so once the
/// executor is idle the two are equal: nothing is left in flight.
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// ex.spawn(Priority::Normal, |cx| monad_async::io::nop(cx)).join().unwrap()?;
/// let io = ex.stats().io;
/// assert_eq!((io.submitted, io.completed, io.in_flight), (1, 1, 0));
/// assert!(io.enters >= 1 && io.sq_entries > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct IoStats {
    /// Operations queued for the kernel.
    pub submitted: u64,
    /// Their completions reaped.
    pub completed: u64,
    /// `submitted - completed`.
    pub in_flight: u64,
    /// `io_uring_enter` system calls.
    pub enters: u64,
    /// Times a task waited to start an operation: its share of the
    /// in-flight guard was used up, or the kernel refused a submission
    /// for the moment. Never for a full submission queue, which is
    /// submitted and refilled.
    pub sqe_waits: u64,
    /// Kernel cancel requests (`IORING_OP_ASYNC_CANCEL`) made.
    pub cancels: u64,
    /// Completions whose operation was unknown (should stay 0).
    pub stale: u64,
    /// Passes that found completions waiting in the kernel because the
    /// completion queue was full (none is lost: they are collected).
    pub cq_overflows: u64,
    /// Submission queue size (0: no ring).
    pub sq_entries: u32,
    /// Completion queue size.
    pub cq_entries: u32,
    /// The in-flight guard: most operations in flight at once (see
    /// [`ExecutorBuilder::io_inflight_limit`]).
    pub inflight_limit: u32,
    /// High I/O priority maps to the kernel's real-time class (else the
    /// process may not use it, and best effort level 0 is used instead).
    pub io_priority_rt: bool,
}

/// A priority-based executor of tasks with their own stacks, bound to the
/// thread that built it.
///
/// Spawn closures with [`spawn`](Executor::spawn) (from this thread, no
/// `Send` needed) or through an [`ExecutorHandle`] (from any thread); run
/// them with [`run`](Executor::run), [`run_until_idle`](Executor::run_until_idle)
/// or by [`join`](JoinHandle::join)ing them.
///
/// Dropping the executor cancels every task still attached: tasks that
/// never started never run (their closures are dropped, their handles
/// report [`Cancelled`](JoinError::is_cancelled)); started ones resume with
/// `ECANCELED` from their suspension point and run to their end (their
/// handles also report `Cancelled`). Then it frees every task and its
/// stack. Dropped from inside one of its own tasks (only possible through
/// shared ownership such as `Rc<Executor>`), it cannot free what is
/// running, so it leaks the executor instead; handles of its unfinished
/// tasks then never finish.
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let a = ex.spawn(Priority::Low, |_cx| "low");
/// let b = ex.spawn(Priority::High, |_cx| "high");
/// assert_eq!(ex.run_until_idle()?, 2);
/// assert_eq!((a.join().unwrap(), b.join().unwrap()), ("low", "high"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Executor {
    local: NonNull<Local>,
    _not_send: PhantomData<*mut ()>,
}

impl Executor {
    /// A builder for an executor with non-default options.
    ///
    /// ```
    /// let ex = monad_async::Executor::builder().time_tracking(false).build()?;
    /// # drop(ex);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder::new()
    }

    /// An executor with the default options (see [`ExecutorBuilder::new`]).
    ///
    /// # Errors
    ///
    /// As [`ExecutorBuilder::build`].
    ///
    /// ```
    /// let ex = monad_async::Executor::new()?;
    /// # drop(ex);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Executor> {
        ExecutorBuilder::new().build()
    }

    #[inline]
    /// The C executor, and a flag that stays true until its destroy has
    /// freed what was registered with it (for [`BufferPool`]).
    ///
    /// [`BufferPool`]: crate::io::BufferPool
    pub(crate) fn raw_with_liveness(&self) -> (sys::monad_async_executor, Rc<Cell<bool>>) {
        let local = self.local();
        let alive = Rc::new(Cell::new(true));
        let mut pools = local.pools.borrow_mut();
        pools.retain(|w| w.strong_count() > 0);
        pools.push(Rc::downgrade(&alive));
        (local.ex, alive)
    }

    fn local(&self) -> &Local {
        // SAFETY: `local` came from Box::into_raw in build and is freed only
        // in drop.
        unsafe { self.local.as_ref() }
    }

    /// Spawns `f` as a task of this executor at `priority`; it runs on its
    /// own stack when the executor next runs it.
    ///
    /// The closure needs no `Send`: it only ever runs (or is dropped) on
    /// this thread. Spawning reuses an idle task when there is one (no
    /// system call, no lock); the first spawns, and any beyond the number
    /// of tasks alive at once, create a task and map its stack.
    ///
    /// # Panics
    ///
    /// When a new task cannot be created (out of memory or mappings); see
    /// [`try_spawn`](Executor::try_spawn).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::rc::Rc;
    ///
    /// let ex = Executor::new()?;
    /// let shared = Rc::new(5); // not Send: fine on the executor's thread
    /// let h = ex.spawn(Priority::Normal, move |_cx| *shared * 2);
    /// assert_eq!(h.join().unwrap(), 10);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, priority: Priority, f: F) -> JoinHandle<T>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
        T: 'static,
    {
        match self.try_spawn(priority, f) {
            Ok(handle) => handle,
            Err(err) => panic!("monad_async: failed to spawn a task: {err}"),
        }
    }

    /// As [`spawn`](Executor::spawn), returning the error instead of
    /// panicking.
    ///
    /// # Errors
    ///
    /// `ENOMEM` or the `mmap` error when a new task's stack cannot be made.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.try_spawn(Priority::Normal, |_cx| 1)?;
    /// assert_eq!(h.join().unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_spawn<F, T>(&self, priority: Priority, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
        T: 'static,
    {
        self.local().try_spawn(priority, f)
    }

    /// Builder-style spawn options: a [name](crate::TaskBuilder::name), a
    /// [priority](crate::TaskBuilder::priority); then
    /// [`spawn`](crate::TaskBuilder::spawn), as [`spawn`](Executor::spawn).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.build_task().name("conn-42").priority(Priority::High).spawn(|cx| cx.id());
    /// assert_eq!(h.name(), Some("conn-42"));
    /// let id = h.id();
    /// assert_eq!(h.join().unwrap(), id);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_task(&self) -> crate::TaskBuilder<'_, Executor> {
        crate::TaskBuilder::local(Some(self.local()))
    }

    /// Runs tasks on this thread: up to `max_items` slices (a task's launch
    /// or one resumption, until it suspends or exits). Returns once it has
    /// done `max_items`, or at least one and nothing more is runnable right
    /// now. With nothing runnable at the start it first waits up to
    /// `timeout` for work (`None`: until work arrives, a sleeping task's
    /// time comes, or [`ExecutorHandle::wake`]; `Some(Duration::ZERO)`:
    /// not at all).
    ///
    /// # Errors
    ///
    /// `ETIME` when the timeout passed with nothing done; `EINVAL` when
    /// `max_items` is 0.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let err = ex.run(1, Some(Duration::ZERO)).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::ETIME));
    ///
    /// ex.spawn(Priority::Normal, |_cx| ());
    /// assert_eq!(ex.run(16, Some(Duration::ZERO))?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn run(&self, max_items: usize, timeout: Option<Duration>) -> io::Result<usize> {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: live executor on its owner thread (Executor is !Send);
        // ts_ptr is null or points to a valid timespec for the call.
        let r = unsafe { sys::monad_async_executor_run(self.local().ex, max_items, ts_ptr) };
        check(r).map(|n| n as usize)
    }

    /// Runs until every task spawned so far has finished, waiting for
    /// sleeping tasks as needed. Returns the number of slices run.
    ///
    /// "Spawned so far" counts every spawn that has returned, from any
    /// thread, and every task those tasks spawn meanwhile. A task that
    /// never finishes (sleeps for an hour, waits for I/O that never comes)
    /// makes this wait as long.
    ///
    /// # Errors
    ///
    /// Those of [`run`](Executor::run) other than `ETIME`.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(1)));
    /// assert_eq!(ex.run_until_idle()?, 2); // launch, then resume after the sleep
    /// assert!(h.is_finished());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run_until_idle(&self) -> io::Result<usize> {
        let local = self.local();
        let mut total = 0;
        while local.live.get() != 0 || local.remote_live() != 0 {
            match self.run(usize::MAX, None) {
                Ok(n) => total += n,
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Requests cancellation of `handle`'s task, which must belong to this
    /// executor.
    ///
    /// A task that has not started is unlinked at once and never runs: its
    /// closure is dropped and its handle reports
    /// [`Cancelled`](JoinError::is_cancelled). A started task is marked
    /// cancelled: its current and every later suspension point returns
    /// `ECANCELED` (a sleep ends early) and, whatever its closure returns,
    /// its handle reports `Cancelled`.
    ///
    /// Returns `Ok(true)` if the task had not finished (cancellation
    /// requested), `Ok(false)` if it had.
    ///
    /// # Errors
    ///
    /// `EINVAL` when the handle belongs to another executor.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |_cx| unreachable!());
    /// assert!(ex.cancel(&h)?);
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel<T: 'static>(&self, handle: &JoinHandle<T>) -> io::Result<bool> {
        let slot = handle.slot();
        if !ptr::eq(slot.local, self.local.as_ptr()) {
            return Err(errno(libc::EINVAL));
        }
        self.local().cancel_work(slot)
    }

    /// A handle for spawning onto (and waking) this executor from other
    /// threads.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let handle = ex.handle();
    /// let h = std::thread::spawn(move || handle.spawn(Priority::High, |_cx| 1))
    ///     .join()
    ///     .unwrap()?;
    /// ex.run_until_idle()?;
    /// assert_eq!(h.join().unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle(&self) -> ExecutorHandle {
        self.local().handle()
    }

    /// What every task of this executor is doing now: one [`TaskInfo`](crate::TaskInfo)
    /// per task, oldest first (see [`Dump`](crate::Dump)). Callable from one of its
    /// tasks too (that task shows as [`Running`](crate::Activity::Running));
    /// from another thread use [`ExecutorHandle::dump`].
    ///
    /// ```
    /// use monad_async::{Activity, Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.spawn(Priority::Normal, |cx| cx.park());
    /// ex.spawn(Priority::Low, |cx| cx.sleep(Duration::from_millis(10)));
    /// ex.run(16, Some(Duration::ZERO))?;
    /// let dump = ex.dump()?;
    /// assert_eq!(dump[0].activity(), Activity::Parked);
    /// assert_eq!(dump[1].activity(), Activity::Sleeping);
    /// println!("{dump}");
    /// h.cancel()?;
    /// ex.run_until_idle()?;
    /// assert!(ex.dump()?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// None in practice: the C call fails only off the executor's thread,
    /// which an `Executor` (not `Send`) cannot be.
    pub fn dump(&self) -> io::Result<crate::Dump> {
        // SAFETY: a live executor, on its own thread (Executor is !Send).
        unsafe { crate::dump::take(self.local().ex, None) }
    }

    /// A snapshot of the executor's counters and times.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// for _ in 0..1000 {
    ///     ex.spawn(Priority::Normal, |_cx| ()).join().unwrap();
    /// }
    /// let s = ex.stats();
    /// assert_eq!(s.exited, 1000);
    /// assert_eq!(s.tasks_created, 1); // one task, reused
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> ExecutorStats {
        let local = self.local();
        let ex = local.ex;
        // SAFETY: live executor; its plain fields are written only by this
        // thread, which is not inside a C call now. Reads go through
        // addr_of! so no reference to the head is formed.
        let (attached, runnable, timed, c, t, io, ring) = unsafe {
            (
                ptr::addr_of!((*ex).tasks_attached).read(),
                ptr::addr_of!((*ex).tasks_runnable).read(),
                ptr::addr_of!((*ex).tasks_timed).read(),
                ptr::addr_of!((*ex).counters).read(),
                ptr::addr_of!((*ex).ticks).read(),
                ptr::addr_of!((*ex).io).read(),
                ptr::addr_of!((*ex).ring).read(),
            )
        };
        // SAFETY: as above (a copy, read through addr_of!).
        let latency =
            crate::LatencyStats::from_sys(&unsafe { ptr::addr_of!((*ex).latency).read() });
        ExecutorStats {
            tasks_attached: attached,
            tasks_runnable: runnable,
            tasks_sleeping: timed,
            attached: c.attached,
            launched: c.launched,
            resumed: c.resumed,
            suspended: c.suspended,
            exited: c.exited,
            cancelled: c.cancelled,
            inbox_drained: c.inbox_drained,
            sleeps: c.sleeps,
            time_in_run: ticks::ticks_to_duration(t.in_run),
            time_launching: ticks::ticks_to_duration(t.launching),
            time_resuming: ticks::ticks_to_duration(t.resuming),
            time_sleeping: ticks::ticks_to_duration(t.sleeping),
            tasks_created: local.shared.tasks_created.load(Ordering::Relaxed),
            io: IoStats {
                submitted: io.submitted,
                completed: io.completed,
                in_flight: io.in_flight,
                enters: io.enters,
                sqe_waits: io.sqe_waits,
                cancels: io.cancels,
                stale: io.stale,
                cq_overflows: io.cq_overflows,
                sq_entries: ring.sq_entries,
                cq_entries: ring.cq_entries,
                inflight_limit: ring.inflight_limit,
                io_priority_rt: ring.io_priority_rt != 0,
            },
            latency,
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.local();
        f.debug_struct("Executor")
            .field("ex", &local.ex)
            .field("live_local", &local.live.get())
            .field("live_remote", &local.remote_live())
            .field("pooled", &local.pooled())
            .finish_non_exhaustive()
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        let local_ptr = self.local.as_ptr();
        let local = self.local();
        let shared = &*local.shared;
        // No other thread may enter from now on; wait out those inside.
        shared.closed.store(true, Ordering::SeqCst);
        while shared.spawners.0.in_flight.load(Ordering::SeqCst) != 0 {
            thread::yield_now();
        }
        // SAFETY: owner thread (Executor is !Send). Cancels and drains every
        // attached task; their on_exit hooks run here, pooling their tasks.
        let r = unsafe { sys::monad_async_executor_destroy(local.ex) };
        if r.error != 0 {
            // EBUSY: dropped from inside its own run. What runs now lives in
            // this executor: leak it all rather than free it underneath.
            return;
        }
        // Destroy freed the buffer pools still registered.
        for alive in local.pools.borrow().iter().filter_map(Weak::upgrade) {
            alive.set(false);
        }
        let mut slots = Vec::new();
        while let Some(slot) = local.pop_free() {
            slots.push(slot);
        }
        let mut head = shared.returned.0.swap(ptr::null_mut(), Ordering::Acquire);
        while let Some(slot) = NonNull::new(head) {
            // SAFETY: taken whole from the stack; no thread is in flight.
            head = unsafe { *slot.as_ref().next.get() };
            slots.push(slot);
        }
        let mut all_freed = true;
        for slot in slots {
            // SAFETY: every task exited (destroy drained them) and is idle;
            // its slot is ours (out of the pools).
            let r = unsafe { sys::monad_async_task_destroy(slot.as_ref().task) };
            if r.error == 0 {
                // SAFETY: idle and ours; never used here again. A live
                // handle keeps (and later frees) it.
                unsafe { Slot::abandon(slot) };
            } else {
                // The task is not ours to free, so neither is its slot.
                all_freed = false;
            }
        }
        if all_freed {
            // SAFETY: no task uses the switcher any more.
            let _ = unsafe { sys::monad_async_context_switcher_destroy(shared.switcher) };
        }
        // SAFETY: from Box::into_raw in build; nothing uses it any more
        // (all jobs are done, handles see `closed`).
        drop(unsafe { Box::from_raw(local_ptr) });
    }
}

/// A cloneable, thread-safe handle to an [`Executor`], for spawning onto it
/// and waking it from any thread.
///
/// It never reaches a destroyed executor: once the executor is dropped,
/// [`spawn`](ExecutorHandle::spawn) and [`wake`](ExecutorHandle::wake)
/// return `ESHUTDOWN`.
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let handle = ex.handle();
/// let producers: Vec<_> = (0..2)
///     .map(|i| {
///         let handle = handle.clone();
///         std::thread::spawn(move || handle.spawn(Priority::Normal, move |_cx| i).unwrap())
///     })
///     .collect();
/// let handles: Vec<_> = producers.into_iter().map(|t| t.join().unwrap()).collect();
/// ex.run_until_idle()?;
/// let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ExecutorHandle {
    shared: Arc<Shared>,
}

impl ExecutorHandle {
    /// Spawns `f` onto the executor from any thread: the task goes through
    /// the executor's lock-free inbox, and a waiting executor is woken.
    ///
    /// This path takes a mutex (for its pool of idle tasks) and is slower
    /// than [`Executor::spawn`]; the closure and its result must be `Send`.
    ///
    /// # Errors
    ///
    /// `ESHUTDOWN` once the executor has been dropped (or while it is
    /// being dropped); `ENOMEM` or the `mmap` error when a new task's stack
    /// cannot be made.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let handle = ex.handle();
    /// drop(ex);
    /// let err = handle.spawn(Priority::Normal, |_cx| ()).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::ESHUTDOWN));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<F, T>(&self, priority: Priority, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_with(priority, None, f)
    }

    /// Builder-style spawn options, as [`Executor::build_task`], for a
    /// spawn from any thread: [`spawn`](crate::TaskBuilder::spawn) then
    /// works as [`ExecutorHandle::spawn`].
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let handle = ex.handle();
    /// let h = std::thread::spawn(move || {
    ///     handle.build_task().name("remote-1").priority(Priority::High).spawn(|cx| {
    ///         cx.name().map(str::to_owned)
    ///     })
    /// })
    /// .join()
    /// .unwrap()?;
    /// assert_eq!(h.name(), Some("remote-1"));
    /// assert_eq!(h.join().unwrap().as_deref(), Some("remote-1"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_task(&self) -> crate::TaskBuilder<'_, ExecutorHandle> {
        crate::TaskBuilder::remote(self)
    }

    /// As `spawn`, naming the work.
    pub(crate) fn spawn_with<F, T>(
        &self,
        priority: Priority,
        name: Option<Box<str>>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = &*self.shared;
        let _in_flight = shared.enter()?;
        let slot = match shared.pop_returned() {
            // SAFETY: popped from the pool: idle and ours.
            Some(slot) => unsafe { Slot::claim(slot) },
            None => self.shared.create_task(true)?,
        };
        // SAFETY: claimed or fresh, so ours, its task unattached.
        let s = unsafe { slot.as_ref() };
        // SAFETY: as above.
        unsafe { task::bind(s, priority, f) };
        if let Some(name) = name {
            // SAFETY: bound, not yet attached: ours alone.
            unsafe { s.set_name(name) };
        }
        shared
            .spawners
            .0
            .remote_spawned
            .fetch_add(1, Ordering::SeqCst);
        // SAFETY: the executor is alive while we are in flight; attach is
        // thread-safe, and publishes the bound slot to the executor.
        let r = unsafe { sys::monad_async_task_attach(shared.ex, s.task, ptr::null_mut()) };
        if let Err(err) = check(r) {
            shared
                .spawners
                .0
                .remote_spawned
                .fetch_sub(1, Ordering::SeqCst);
            // SAFETY: bound above and not attached; F: Send, so dropping
            // the closure on this thread is fine.
            let f = unsafe { s.unbind::<F>() };
            // SAFETY: idle again and ours.
            unsafe { shared.push_returned(slot) };
            drop(f);
            // run_until_idle may be waiting on the count we just undid.
            // SAFETY: alive while in flight; wake is thread-safe.
            let _ = unsafe { sys::monad_async_executor_wake(shared.ex) };
            return Err(err);
        }
        // SAFETY: bound for a T and attached; the only handle.
        Ok(unsafe { JoinHandle::new(slot) })
    }

    /// What every task of the executor is doing, from any thread: a High
    /// task takes the [`Dump`](crate::Dump) on the executor's thread, at
    /// its next slice, and is left out of it. Blocks the calling thread
    /// (parks the calling task) until the executor answers, so the
    /// executor must be running (or run soon) on its thread.
    ///
    /// ```
    /// use monad_async::{Activity, Executor, Priority};
    /// use std::time::Duration;
    ///
    /// let ex = Executor::new()?;
    /// let parked = ex.spawn(Priority::Normal, |cx| cx.park());
    /// ex.run(16, Some(Duration::ZERO))?; // it parks
    /// let handle = ex.handle();
    /// let t = std::thread::spawn(move || handle.dump());
    /// while !t.is_finished() {
    ///     let _ = ex.run(16, Some(Duration::from_millis(1))); // Err(ETIME) when idle
    /// }
    /// let dump = t.join().unwrap()?;
    /// assert_eq!(dump.len(), 1);
    /// assert_eq!(dump[0].activity(), Activity::Parked);
    /// parked.cancel()?;
    /// ex.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ESHUTDOWN` once the executor is dropped or being dropped.
    pub fn dump(&self) -> io::Result<crate::Dump> {
        let ex = self.shared.ex as usize;
        let h = self.spawn(Priority::High, move |_cx| {
            let me = crate::task::running_task();
            // SAFETY: this task runs on the executor's thread, so the
            // executor is alive and this is its thread.
            unsafe { crate::dump::take(ex as sys::monad_async_executor, me) }
        })?;
        match h.join() {
            Ok(r) => r,
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the executor's waiting [`run`](Executor::run) return (with 0
    /// items done), or its next wait if it is not waiting.
    ///
    /// # Errors
    ///
    /// `ESHUTDOWN` once the executor has been dropped.
    ///
    /// ```
    /// use monad_async::Executor;
    ///
    /// let ex = Executor::new()?;
    /// ex.handle().wake()?;
    /// assert_eq!(ex.run(1, None)?, 0); // returns at once: woken
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wake(&self) -> io::Result<()> {
        let _in_flight = self.shared.enter()?;
        // SAFETY: alive while in flight; wake is thread-safe.
        check(unsafe { sys::monad_async_executor_wake(self.shared.ex) }).map(drop)
    }

    /// True once the executor has been dropped (or is being dropped).
    ///
    /// ```
    /// let ex = monad_async::Executor::new()?;
    /// let handle = ex.handle();
    /// assert!(!handle.is_closed());
    /// drop(ex);
    /// assert!(handle.is_closed());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for ExecutorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorHandle")
            .field("ex", &self.shared.ex)
            .field("closed", &self.is_closed())
            .finish()
    }
}
