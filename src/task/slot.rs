//! The slot: the Rust side of one C task, created with it and reused with
//! it, so that a spawn allocates nothing.
//!
//! A slot carries one piece of work at a time: its closure until the
//! trampoline takes it, then its outcome (the value, the panic payload, or
//! "cancelled") until the [`JoinHandle`](super::JoinHandle) takes it, plus
//! the raw tick figures of the finished work. Closures and outcomes of up
//! to [`INLINE`] bytes (alignment up to 16) live in the slot itself; larger
//! ones are boxed and the box lives there.
//!
//! # Two owners
//!
//! A slot has two owners: the *executor side* (its C task, whose
//! `user_ptr` points at it, and the pool the task sits in while idle), and,
//! from the spawn that binds a piece of work until it is joined or dropped,
//! that work's *handle*. The state word records who still holds it:
//!
//! * `HANDLE`: the handle of the current work exists.
//! * `DONE`: the work is over; the outcome and the stats are final.
//! * `WAITER`: a thread is (about to be) blocked in `futex` on the word.
//! * `ORPHAN`: the executor side has let go of the slot.
//! * `JOINER`: a task joining the work is parked (or about to park) on
//!   it: `finish` wakes it through `joiner_task`/`joiner_token`, then
//!   clears the bit. The joiner does not go on (so its task and executor
//!   stay alive) while the bit is set after `DONE`.
//! * `JOINER_LOCAL`: with `JOINER`, the joiner is a task of the executor
//!   the work runs on, so on the same thread: nothing but that thread
//!   touches the word until `DONE` (the handle is inside the join), so
//!   the joiner sets its bits and `finish` publishes `DONE` (clearing
//!   them) with plain stores, where a joiner on another thread takes a
//!   locked instruction on each side.
//! * `WAKER`: an async [`Waker`](std::task::Waker) is stored in `waker`
//!   (the handle is being awaited as a future): `finish` takes it out and
//!   wakes it. See the `waker` submodule for the protocol.
//!
//! When the executor side takes an idle task from its pool for new work, it
//! reuses the task's slot if `HANDLE` is clear. If a stale handle is still
//! alive, the executor side sets `ORPHAN` and gives the task a fresh slot;
//! the handle frees the orphan when it goes. The executor's drop orphans
//! every slot the same way. Whichever owner leaves last frees the slot:
//! the handle clears `HANDLE` and frees if `ORPHAN` was set; the executor
//! side sets `ORPHAN` and frees if `HANDLE` was clear. Both are atomic
//! read-modify-writes, except where no other thread can take part (see
//! [`release_handle`]).
//!
//! # Invariants
//!
//! * The closure is only touched on the executor's thread (or, before the
//!   attach succeeds, by the spawning thread, which then owns the task):
//!   written by the spawn, taken by the trampoline, or dropped unrun by
//!   `on_exit` or by a spawn whose attach failed. The one exception is a
//!   thread pool's work cancelled while still queued, whose `on_exit` runs
//!   on the cancelling thread; the pool only takes `Send` closures.
//! * The outcome and the stats are written on the executor's thread before
//!   `DONE` is published with release ordering, and read by the handle only
//!   after it observed `DONE` with acquire ordering. If the handle went
//!   before `DONE`, `on_exit` drops the outcome itself.
//! * The executor side writes a slot's storage for new work only after it
//!   observed `HANDLE` clear with acquire ordering (the old handle is done
//!   with it), and the handle never touches the slot after clearing
//!   `HANDLE`.
//! * `ORPHAN` is only ever set on a `DONE` slot, and an orphan is never
//!   reused: nothing but its handle touches it again.
//! * `on_exit` returns the slot to its pool as the very last thing it does
//!   with the slot: from then on another thread may reuse it.

use super::{on_thread, Current, RawStats};
use crate::error::JoinError;
use crate::executor::{Local, Shared};
use crate::sys;
use crate::sys::atomics;
use std::any::Any;
use std::cell::UnsafeCell;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

mod waker;

/// State bit: the work is over; the outcome and the stats are final.
pub(crate) const DONE: u32 = 1;
/// State bit: a thread is (about to be) blocked on the state word.
const WAITER: u32 = 2;
/// State bit: the handle of the current work exists.
pub(crate) const HANDLE: u32 = 4;
/// State bit: the executor side has let go of the slot.
const ORPHAN: u32 = 8;
/// State bit: a task joining the work is (about to be) parked on it.
const JOINER: u32 = 16;
/// State bit: `waker` holds the async waker of the handle's last poll.
const WAKER: u32 = 32;
/// State bit: a thread pool's work was asked to cancel (by its handle);
/// the pool's trampoline checks it before running the closure.
pub(crate) const CANCEL_REQ: u32 = 64;
/// State bit: a handle is making a C cancel call on a thread pool's work.
/// `finish` does not let the slot (and its task) go while it is set, so
/// that the task cannot carry other work, nor its executor quit, under
/// the call.
pub(crate) const CANCELLING: u32 = 128;
/// State bit, only with `JOINER`: the joiner runs on the work's
/// executor, so on its thread (see the module docs).
const JOINER_LOCAL: u32 = 256;

/// `Slot::id_gen` while an id is being drawn: no generation is ever this
/// (a slot would need 2^64 pieces of work).
const ID_BUSY: u64 = u64::MAX;

/// Bytes of closure or outcome stored in the slot itself; larger ones are
/// boxed.
pub(crate) const INLINE: usize = 48;

/// What the storage holds.
const EMPTY: u8 = 0;
/// The closure, not yet run.
const CLOSURE: u8 = 1;
/// The closure's value.
const VALUE: u8 = 2;
/// The closure's panic payload, a `Box<dyn Any + Send>`.
const PANIC: u8 = 3;
/// Nothing: the work was cancelled.
const CANCELLED: u8 = 4;

/// Inline bytes for a closure or an outcome.
#[repr(C, align(16))]
struct Storage(MaybeUninit<[u8; INLINE]>);

/// True when an `X` is stored in place rather than boxed.
const fn fits<X>() -> bool {
    size_of::<X>() <= INLINE && align_of::<X>() <= align_of::<Storage>()
}

/// Moves `x` into `storage`, in place or boxed.
///
/// # Safety
/// `storage` must be valid for writes and hold nothing that needs dropping.
unsafe fn put<X>(storage: *mut Storage, x: X) {
    if fits::<X>() {
        // SAFETY: the storage is large and aligned enough (fits) and the
        // caller says it is free.
        unsafe { storage.cast::<X>().write(x) }
    } else {
        // SAFETY: a Box<X> is a pointer, which always fits.
        unsafe { storage.cast::<Box<X>>().write(Box::new(x)) }
    }
}

/// Moves the `X` out of `storage`, leaving it free.
///
/// # Safety
/// `storage` must hold an `X` written by `put::<X>` and not yet taken.
unsafe fn take<X>(storage: *mut Storage) -> X {
    if fits::<X>() {
        // SAFETY: per the contract.
        unsafe { storage.cast::<X>().read() }
    } else {
        // SAFETY: per the contract, a Box<X> from `put`.
        *unsafe { storage.cast::<Box<X>>().read() }
    }
}

/// The Rust side of one C task. See the [module docs](self).
///
/// Laid out in four cache lines by who touches what: the state word
/// (which a handle on another thread may update while the executor runs
/// the work) on its own line with fields that are only read; the storage
/// (the closure going to the executor, the outcome coming back) and the
/// pool link on the second; the executor's own data on the third; the
/// async waker of an awaited handle on the fourth, which only an await
/// (and `finish`, after seeing `WAKER`) touches.
#[repr(C, align(64))]
pub(crate) struct Slot {
    // --- line 0: the state word; read-only fields
    state: AtomicU32,
    /// Belongs to the cross-thread pool: spawned through an
    /// [`ExecutorHandle`](crate::ExecutorHandle). Fixed at creation.
    pub(crate) remote: bool,
    /// The C task this slot belongs to (until it is orphaned).
    pub(crate) task: sys::monad_async_task,
    /// The executor's thread; `None` for a thread pool's slot, whose work
    /// runs on any of the pool's threads.
    pub(crate) owner: Option<ThreadId>,
    /// The executor's shared part, for a handle's cross-thread
    /// [`cancel`](super::JoinHandle::cancel); `None` for a thread pool's
    /// slot. Fixed at creation.
    pub(crate) shared: Option<Arc<Shared>>,
    /// Counts the pieces of work bound to this slot's task (carried over
    /// to a replacement slot): with the task, it names one piece of work,
    /// so that a cancel request reaching the executor's thread late cannot
    /// hit a later one. Written by the binder before the attach publishes
    /// it; read on the executor's thread.
    pub(crate) generation: AtomicU64,
    /// Where `on_exit` returns the idle slot instead of its executor's
    /// pools: a thread pool's `(release, context)`. Fixed at creation.
    pub(crate) foreign: Option<Foreign>,
    /// How many times the running work has been told `ECANCELED` by a
    /// suspension point (see [`TaskContext::check`](super::TaskContext)).
    /// Executor thread only; cleared by `bind`.
    pub(crate) cancel_reports: UnsafeCell<u32>,
    _pad0: [u8; 4],
    // --- line 1: the work going in and the outcome coming out
    /// What `storage` holds (`EMPTY`, `CLOSURE`, ...). Written by the
    /// party that owns the storage at the time (see the module invariants).
    kind: UnsafeCell<u8>,
    /// The next idle slot in its pool, while this one is in it.
    pub(crate) next: UnsafeCell<*mut Slot>,
    storage: UnsafeCell<Storage>,
    // --- line 2: the executor's
    /// The owner-thread state of the task's executor; dereferenced only on
    /// the executor's thread.
    pub(crate) local: *const Local,
    stats: UnsafeCell<RawStats>,
    /// The task joining this work and the wake token of its work, while
    /// `JOINER` is set. Written by the handle before it sets `JOINER`,
    /// read by `finish` after it saw it.
    joiner_task: UnsafeCell<sys::monad_async_task>,
    joiner_token: UnsafeCell<u64>,
    // --- line 3: the awaiting future's
    /// The waker of the handle's last pending poll, while `WAKER` is set
    /// (see the `waker` submodule).
    waker: UnsafeCell<MaybeUninit<std::task::Waker>>,
    /// A thread pool's liveness guard, for wakers of its work; `None` for
    /// an executor's slot. Fixed at creation.
    pub(crate) pool: Option<Arc<crate::pool::PoolAlive>>,
    /// The work's process-unique id, drawn the first time it is asked
    /// for (see [`Slot::id`]): drawing one on every spawn would put a
    /// shared counter on the spawn path. Valid while `id_gen` is the
    /// work's `generation`, so that `bind` need not clear it.
    id: AtomicU64,
    /// The generation `id` belongs to; [`ID_BUSY`] while being written.
    id_gen: AtomicU64,
    /// The work's name, if it was given one; valid while `name_gen` is
    /// the work's `generation` (a stale one stays allocated until the
    /// slot is named again or freed: `bind` does not touch it). Written by
    /// the binder before the attach publishes it; read while the work
    /// runs or the handle holds the slot; taken by a join.
    name: UnsafeCell<Option<Box<str>>>,
    name_gen: UnsafeCell<u64>,
    /// The work's span (feature `tracing`): made at its launch, entered
    /// for each slice and dropped at its exit, all by the trace hook on
    /// the executor's thread (src/trace.rs).
    #[cfg(feature = "tracing")]
    pub(crate) span: UnsafeCell<Option<tracing::Span>>,
}

/// A thread pool's way back for its idle slots (see [`Slot::foreign`]):
/// `on_exit` calls `release(context, slot)` on the thread that ran the
/// work, or, for work cancelled while queued, on the thread that
/// cancelled it.
#[derive(Clone, Copy)]
pub(crate) struct Foreign {
    pub(crate) release: unsafe fn(*const (), NonNull<Slot>),
    pub(crate) context: *const (),
}

/// What a slot needs to know about where it belongs, fixed at creation
/// and carried over to a replacement slot.
struct Home {
    local: *const Local,
    owner: Option<ThreadId>,
    remote: bool,
    shared: Option<Arc<Shared>>,
    foreign: Option<Foreign>,
    pool: Option<Arc<crate::pool::PoolAlive>>,
}

const _: () = {
    assert!(size_of::<Option<ThreadId>>() == 8);
    assert!(size_of::<Option<Arc<Shared>>>() == 8);
    assert!(size_of::<Option<Foreign>>() == 16);
    // Four cache lines (five with the `tracing` feature's span).
    assert!(size_of::<Slot>() == if cfg!(feature = "tracing") { 320 } else { 256 });
    assert!(size_of::<std::task::Waker>() == 16);
    assert!(std::mem::offset_of!(Slot, waker) == 192);
    assert!(std::mem::offset_of!(Slot, joiner_token) == 184);
    assert!(std::mem::offset_of!(Slot, kind) == 64);
    assert!(std::mem::offset_of!(Slot, local) == 128);
};

impl Slot {
    /// A new, idle slot for `task`, pointed to by the task's `user_ptr`.
    ///
    /// # Safety
    /// `task` must be live, unattached and owned by the caller.
    pub(crate) unsafe fn create(
        task: sys::monad_async_task,
        local: *const Local,
        owner: ThreadId,
        remote: bool,
        shared: Arc<Shared>,
        generation: u64,
    ) -> NonNull<Slot> {
        let home = Home {
            local,
            owner: Some(owner),
            remote,
            shared: Some(shared),
            foreign: None,
            pool: None,
        };
        // SAFETY: forwarded contract.
        unsafe { Slot::create_with(task, home, generation) }
    }

    /// A new, idle slot for a thread pool's `task`: no executor, no owner
    /// thread, returned to the pool through `foreign`.
    ///
    /// # Safety
    /// As for [`create`](Slot::create); `foreign.release` must accept
    /// `foreign.context` for as long as the slot's task may carry work.
    pub(crate) unsafe fn create_foreign(
        task: sys::monad_async_task,
        foreign: Foreign,
        pool: Arc<crate::pool::PoolAlive>,
    ) -> NonNull<Slot> {
        let home = Home {
            // Never dereferenced for a slot without an owner thread.
            local: ptr::null(),
            owner: None,
            remote: false,
            shared: None,
            foreign: Some(foreign),
            pool: Some(pool),
        };
        // SAFETY: forwarded contract.
        unsafe { Slot::create_with(task, home, 0) }
    }

    /// # Safety
    /// As for [`create`](Slot::create).
    unsafe fn create_with(
        task: sys::monad_async_task,
        home: Home,
        generation: u64,
    ) -> NonNull<Slot> {
        let Home {
            local,
            owner,
            remote,
            shared,
            foreign,
            pool,
        } = home;
        let slot = NonNull::from(Box::leak(Box::new(Slot {
            state: AtomicU32::new(DONE),
            remote,
            task,
            owner,
            shared,
            generation: AtomicU64::new(generation),
            foreign,
            cancel_reports: UnsafeCell::new(0),
            _pad0: [0; 4],
            kind: UnsafeCell::new(EMPTY),
            next: UnsafeCell::new(ptr::null_mut()),
            storage: UnsafeCell::new(Storage(MaybeUninit::uninit())),
            local,
            stats: UnsafeCell::new(RawStats::default()),
            joiner_task: UnsafeCell::new(ptr::null_mut()),
            joiner_token: UnsafeCell::new(0),
            waker: UnsafeCell::new(MaybeUninit::uninit()),
            pool,
            id: AtomicU64::new(0),
            id_gen: AtomicU64::new(0),
            name: UnsafeCell::new(None),
            name_gen: UnsafeCell::new(0),
            #[cfg(feature = "tracing")]
            span: UnsafeCell::new(None),
        })));
        // SAFETY: the caller owns the unattached task; user_ptr is ours.
        unsafe { (*task).user_ptr = slot.as_ptr().cast() };
        slot
    }

    /// The slot a C task's `user_ptr` points at.
    ///
    /// # Safety
    /// `task` must carry a slot (its `user_ptr` set by [`Slot::create`]).
    #[inline]
    pub(crate) unsafe fn of<'a>(task: sys::monad_async_task) -> &'a Slot {
        // SAFETY: per the contract; the executor side keeps the slot alive
        // while its task carries it.
        unsafe { &*(*task).user_ptr.cast::<Slot>() }
    }

    /// True once the work is over (acquire: the outcome and the stats are
    /// then visible).
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE != 0
    }

    /// The id of the slot's current work: process-unique, never reused
    /// (a reused task's next work gets another), assigned on first use.
    ///
    /// The caller must hold the slot for that work: be its handle, or run
    /// inside it (otherwise a reuse may clear the id meanwhile).
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        let generation = self.generation.load(Ordering::Relaxed);
        if self.id_gen.load(Ordering::Acquire) == generation {
            return self.id.load(Ordering::Relaxed);
        }
        self.assign_id(generation)
    }

    /// Draws the id of work `generation` (the work and its handle may
    /// both ask first: one draws it, under `ID_BUSY`, the other waits a
    /// few instructions for it).
    #[cold]
    fn assign_id(&self, generation: u64) -> u64 {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        loop {
            let seen = self.id_gen.load(Ordering::Acquire);
            if seen == generation {
                return self.id.load(Ordering::Relaxed);
            }
            if seen != ID_BUSY
                && self
                    .id_gen
                    .compare_exchange(seen, ID_BUSY, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                self.id.store(id, Ordering::Relaxed);
                self.id_gen.store(generation, Ordering::Release);
                return id;
            }
            std::hint::spin_loop();
        }
    }

    /// The name of the slot's current work.
    ///
    /// # Safety
    /// The caller holds the slot for that work (as for [`id`](Slot::id)),
    /// and the name is not being taken ([`take_name`](Slot::take_name) is
    /// the handle's, by value).
    #[inline]
    pub(crate) unsafe fn name(&self) -> Option<&str> {
        // SAFETY: written before the attach published the work; only read
        // until a join takes it.
        unsafe {
            if *self.name_gen.get() != self.generation.load(Ordering::Relaxed) {
                return None; // the last work's, or none
            }
            (*self.name.get()).as_deref()
        }
    }

    /// Names the work just bound.
    ///
    /// # Safety
    /// Between [`bind`](Slot::bind) and the attach, by the binder.
    pub(crate) unsafe fn set_name(&self, name: Box<str>) {
        // SAFETY: nobody else sees the slot yet.
        unsafe {
            *self.name.get() = Some(name);
            *self.name_gen.get() = self.generation.load(Ordering::Relaxed);
        }
    }

    /// Takes the finished work's name, for its join.
    ///
    /// # Safety
    /// By the handle, after `DONE`, with nothing borrowing the name.
    pub(crate) unsafe fn take_name(&self) -> Option<Box<str>> {
        // SAFETY: per the contract the work no longer reads it.
        unsafe {
            if *self.name_gen.get() != self.generation.load(Ordering::Relaxed) {
                return None;
            }
            (*self.name.get()).take()
        }
    }

    /// A thread pool's work: asks it to cancel, from any thread. Queued,
    /// the trampoline sees [`CANCEL_REQ`] before it would run the
    /// closure ([`Slot::pool_cancel_requested`]); running, the C task is
    /// cancelled on the executor that took it (through its inbox from
    /// another thread). `Ok(false)` if the work was over.
    ///
    /// The C cancel call names the task's *current* work: `CANCELLING`
    /// keeps that work from ending (`finish` waits for the bit), so it is
    /// ours, and keeps its executor from quitting, for the call.
    pub(crate) fn cancel_pool_work(&self) -> bool {
        let prev = self
            .state
            .fetch_or(CANCEL_REQ | CANCELLING, Ordering::SeqCst);
        if prev & CANCELLING != 0 {
            // Another cancel of this work is at it (the handle is Sync).
            return prev & DONE == 0;
        }
        if prev & DONE != 0 {
            self.state.fetch_and(!CANCELLING, Ordering::Release);
            return false;
        }
        // Pairs with the fence in `pool_cancel_requested`: either the
        // worker that takes the work sees CANCEL_REQ before it runs the
        // closure, or we see the executor it stored before that.
        std::sync::atomic::fence(Ordering::SeqCst);
        // SAFETY: the task is live: its work is not DONE and cannot end
        // (let alone the task be reused or destroyed) while CANCELLING
        // is ours.
        let ex =
            unsafe { crate::sys::atomics::task_current_executor(self.task) }.load(Ordering::SeqCst);
        // SAFETY: no preconditions.
        let here =
            unsafe { sys::monad_async_executor_current() }.value as sys::monad_async_executor;
        if ex.is_null() {
            // Queued: the trampoline skips it. (Or its C work just ended.)
        } else if ex == here {
            // Its executor runs here (we are a sibling task): the work
            // cannot end but through this call, whose local path may run
            // its exit hook at once, which must not wait for us.
            self.state.fetch_and(!CANCELLING, Ordering::Release);
            // SAFETY: ex is the executor running on this thread; the task
            // is live and attached to it.
            let _ = unsafe { sys::monad_async_task_cancel(ex, self.task) };
            return true;
        } else {
            // SAFETY: the executor is alive (it cannot quit while one of
            // its tasks has not exited, and ours cannot while CANCELLING
            // is set); the call is thread-safe, and names the work the
            // task carries, which is ours.
            let _ = unsafe { sys::monad_async_task_cancel(ex, self.task) };
        }
        self.state.fetch_and(!CANCELLING, Ordering::Release);
        true
    }

    /// True when the handle of this (thread pool's) work asked it to
    /// cancel before it started. In the work, before its closure.
    pub(crate) fn pool_cancel_requested(&self) -> bool {
        // See cancel_pool_work: the executor stored itself in the task
        // before launching it, then this fence, then the load.
        std::sync::atomic::fence(Ordering::SeqCst);
        self.state.load(Ordering::SeqCst) & CANCEL_REQ != 0
    }

    /// As [`pool_cancel_requested`](Slot::pool_cancel_requested), without
    /// the fence: for a running closure polling for its cancellation,
    /// which sees the request soon enough without it.
    #[inline]
    pub(crate) fn cancel_requested_now(&self) -> bool {
        self.state.load(Ordering::Acquire) & CANCEL_REQ != 0
    }

    /// The raw figures of the finished work.
    ///
    /// # Safety
    /// `DONE` must have been observed with acquire ordering, by a holder of
    /// the slot.
    #[inline]
    pub(crate) unsafe fn stats(&self) -> RawStats {
        // SAFETY: written before DONE was released, never again until the
        // slot is reused, which the caller's hold on it prevents.
        unsafe { *self.stats.get() }
    }

    // -----------------------------------------------------------------
    // The executor side.

    /// Takes an idle slot out of its pool for new work: the same slot if
    /// its last handle is gone, else (orphaning it) a fresh one for its
    /// task.
    ///
    /// # Safety
    /// `slot` must be idle (its task unattached, `DONE`) and owned by the
    /// caller, who took it from its pool.
    #[inline]
    pub(crate) unsafe fn claim(slot: NonNull<Slot>) -> NonNull<Slot> {
        // SAFETY: the caller owns the executor side of the slot.
        let s = unsafe { slot.as_ref() };
        if s.state.load(Ordering::Acquire) & HANDLE == 0 {
            return slot;
        }
        // Once ORPHAN is set the handle may free the slot at any moment:
        // read what the replacement needs first.
        let home = Home {
            local: s.local,
            owner: s.owner,
            remote: s.remote,
            shared: s.shared.clone(),
            foreign: s.foreign,
            pool: s.pool.clone(),
        };
        let (task, generation) = (s.task, s.generation.load(Ordering::Relaxed));
        let prev = s.state.fetch_or(ORPHAN, Ordering::AcqRel);
        if prev & HANDLE == 0 {
            // The handle went between the two reads, and saw no ORPHAN.
            s.state.store(DONE, Ordering::Relaxed);
            return slot;
        }
        // The stale handle frees the orphan: never touch it again. The
        // task is still ours.
        // SAFETY: the task is idle and owned by the caller.
        unsafe { Slot::create_with(task, home, generation) }
    }

    /// Lets go of the executor side of an idle slot whose task is being
    /// destroyed: frees it, or leaves it to its live handle.
    ///
    /// # Safety
    /// As for [`claim`](Slot::claim); the slot is not used by the caller
    /// afterwards.
    pub(crate) unsafe fn abandon(slot: NonNull<Slot>) {
        // SAFETY: the caller owns the executor side of the slot.
        let prev = unsafe { slot.as_ref() }
            .state
            .fetch_or(ORPHAN, Ordering::AcqRel);
        if prev & HANDLE == 0 {
            // SAFETY: neither owner holds it any more; from Box::leak.
            drop(unsafe { Box::from_raw(slot.as_ptr()) });
        }
    }

    /// Stores new work in a claimed slot and arms it for a handle; the
    /// caller attaches the task next, and calls [`unbind`](Slot::unbind)
    /// if that fails.
    ///
    /// # Safety
    /// `self` must come from [`claim`](Slot::claim) (or be fresh), owned by
    /// the caller, its storage empty.
    #[inline]
    pub(crate) unsafe fn bind<F>(&self, f: F) {
        // SAFETY: the caller owns the slot and its storage is free.
        unsafe {
            put(self.storage.get(), f);
            *self.kind.get() = CLOSURE;
            *self.cancel_reports.get() = 0;
        }
        // (The last work's id and name go stale with its generation.)
        // Only the binder writes it; the attach publishes it.
        let g = self.generation.load(Ordering::Relaxed);
        self.generation.store(g.wrapping_add(1), Ordering::Relaxed);
        // No other thread can see the slot until the attach publishes it.
        self.state.store(HANDLE, Ordering::Relaxed);
    }

    /// Undoes [`bind`](Slot::bind) after a failed attach: the slot is idle
    /// again and the closure is returned, for the caller to drop once the
    /// slot is back in its pool.
    ///
    /// # Safety
    /// `self` must have been bound with an `F` and never attached.
    pub(crate) unsafe fn unbind<F>(&self) -> F {
        self.state.store(DONE, Ordering::Relaxed);
        // SAFETY: bind stored an F, which nothing has taken.
        unsafe {
            *self.kind.get() = EMPTY;
            take::<F>(self.storage.get())
        }
    }

    /// The trampoline's start: the closure, if it has not been taken.
    ///
    /// # Safety
    /// On the executor's thread, in the task's `user_code`, with an `F`
    /// bound.
    #[inline]
    pub(crate) unsafe fn take_closure<F>(&self) -> Option<F> {
        // SAFETY: the executor's thread owns the storage until DONE.
        unsafe {
            if *self.kind.get() != CLOSURE {
                return None;
            }
            *self.kind.get() = EMPTY;
            Some(take::<F>(self.storage.get()))
        }
    }

    /// The trampoline's end: stores the value.
    ///
    /// # Safety
    /// On the executor's thread, after [`take_closure`](Slot::take_closure),
    /// before `DONE`.
    #[inline]
    pub(crate) unsafe fn set_value<T>(&self, value: T) {
        // SAFETY: the executor's thread owns the storage, which is free.
        unsafe {
            put(self.storage.get(), value);
            *self.kind.get() = VALUE;
        }
    }

    /// The trampoline's end: stores a panic payload.
    ///
    /// # Safety
    /// As for [`set_value`](Slot::set_value).
    pub(crate) unsafe fn set_panic(&self, payload: Box<dyn Any + Send>) {
        // SAFETY: as for set_value.
        unsafe {
            put(self.storage.get(), payload);
            *self.kind.get() = PANIC;
        }
    }

    /// The trampoline's end: records that the work was cancelled.
    ///
    /// # Safety
    /// As for [`set_value`](Slot::set_value).
    pub(crate) unsafe fn set_cancelled(&self) {
        // SAFETY: as for set_value.
        unsafe { *self.kind.get() = CANCELLED };
    }

    /// `on_exit`'s part: takes an unrun closure, makes the outcome final
    /// (cancelled if the closure never ran), records the stats, publishes
    /// `DONE` and wakes a blocked joiner. Returns the unrun closure and, if
    /// the handle is already gone, the outcome: the caller drops both
    /// after returning the slot to its pool.
    ///
    /// # Safety
    /// On the executor's thread, in the `user_on_exit` of the slot's task,
    /// which was bound with an `F` producing a `T`.
    #[inline]
    pub(crate) unsafe fn finish<F, T>(&self, raw: RawStats) -> (Option<F>, Option<Outcome<T>>) {
        // SAFETY: the executor's thread owns the storage until DONE.
        let unrun = unsafe {
            let unrun = self.take_closure::<F>();
            if *self.kind.get() == EMPTY {
                // user_code never ran: cancelled before launch.
                *self.kind.get() = CANCELLED;
            }
            *self.stats.get() = raw;
            unrun
        };
        // A joiner of this executor (so on this thread): the handle is in
        // its join, nobody else writes the word, and no locked instruction
        // is needed. Acquire: the joiner's fields (written on this thread
        // anyway).
        let seen = self.state.load(Ordering::Acquire);
        let prev = if seen & JOINER_LOCAL != 0 {
            // SAFETY: JOINER_LOCAL: the joiner's fields are set and only
            // this thread touches them until DONE.
            unsafe { self.finish_local_joiner(seen) };
            seen
        } else {
            // DONE is clear (it is set once per piece of work, here), so an
            // add sets it: one `lock xadd` on x86 rather than a cmpxchg loop.
            let prev = self.state.fetch_add(DONE, Ordering::AcqRel);
            // One test for the rare parties (an awaiter, a blocked thread, a
            // joining task, a canceller) keeps the common exit short.
            if prev & (WAKER | WAITER | JOINER | CANCELLING) != 0 {
                self.finish_rare(prev);
            }
            prev
        };
        let orphaned_outcome = if prev & HANDLE == 0 {
            // SAFETY: the handle is gone, so the outcome is ours; the slot
            // is not back in its pool yet, so nobody reuses it meanwhile.
            Some(unsafe { self.take_outcome::<T>() })
        } else {
            None
        };
        (unrun, orphaned_outcome)
    }

    /// `finish`'s part for a `JOINER_LOCAL` joiner, from the state word
    /// `seen`: wakes it, then publishes `DONE` with the joiner bits cleared
    /// in one plain store (release). The joiner, a task of this executor,
    /// cannot run before we return, so the order does not matter to it.
    ///
    /// # Safety
    /// On the executor's thread, `seen` having `JOINER_LOCAL`.
    #[inline]
    unsafe fn finish_local_joiner(&self, seen: u32) {
        debug_assert_eq!(seen & (DONE | WAITER | WAKER | CANCELLING), 0);
        // SAFETY: per the contract, only this thread touches these; a
        // stale token (the joiner gave up) is refused.
        unsafe {
            let _ = sys::monad_async_task_wake(*self.joiner_task.get(), *self.joiner_token.get());
        }
        self.state
            .store((seen | DONE) & !(JOINER | JOINER_LOCAL), Ordering::Release);
    }

    /// `finish`'s part for the parties that are rarely there, from the
    /// state word `prev` it found when it set `DONE`.
    #[cold]
    #[inline(never)]
    fn finish_rare(&self, prev: u32) {
        if prev & WAKER != 0 {
            // SAFETY: WAKER was set when DONE went in: the waker is ours.
            unsafe { self.wake_awaiter() };
        }
        if prev & WAITER != 0 {
            // The waiter holds the handle, so the slot outlives this call.
            futex_wake(&self.state);
        }
        if prev & JOINER != 0 {
            // SAFETY: JOINER was set (acquire) after the handle wrote the
            // joiner's fields; the joiner does not go on, nor its task
            // exit, until we clear the bit, so the task is alive. A
            // stale token (the joiner gave up, cancelled) is refused.
            let local = unsafe {
                let joiner = *self.joiner_task.get();
                let _ = sys::monad_async_task_wake(joiner, *self.joiner_token.get());
                // Is the joiner a task of the executor running here?
                crate::sys::atomics::task_current_executor(joiner).load(Ordering::Relaxed)
                    == sys::monad_async_executor_current().value as sys::monad_async_executor
            };
            // (A canceller's CANCELLING bit, see below, must not come
            // back from `prev` after the canceller cleared it.)
            if local && prev & CANCELLING == 0 {
                // The joiner, the only other party that writes this word
                // (it holds the handle), is a task of this thread's
                // executor: it cannot run until we return. A plain store
                // saves a locked instruction on the common same-executor
                // join.
                self.state.store((prev + DONE) & !JOINER, Ordering::Release);
            } else {
                self.state.fetch_and(!JOINER, Ordering::Release);
            }
        }
        if prev & CANCELLING != 0 {
            // A handle is in a C cancel call on this work (a thread
            // pool's): the task must stay ours, and its executor up, until
            // the call is over. A few instructions, unless that thread
            // lost its core.
            self.await_cleared(CANCELLING);
        }
    }

    // -----------------------------------------------------------------
    // The handle side.

    /// Takes the outcome.
    ///
    /// # Safety
    /// `DONE` observed with acquire ordering; the caller holds the outcome
    /// (the handle, or `finish` when the handle is gone) and takes it once.
    unsafe fn take_outcome<T>(&self) -> Outcome<T> {
        // SAFETY: per the contract the storage is final and ours.
        unsafe {
            let kind = *self.kind.get();
            *self.kind.get() = EMPTY;
            match kind {
                VALUE => Outcome::Value(take::<T>(self.storage.get())),
                PANIC => Outcome::Panic(take::<Box<dyn Any + Send>>(self.storage.get())),
                _ => Outcome::Cancelled,
            }
        }
    }

    /// The handle's result.
    ///
    /// # Safety
    /// As for `take_outcome`, by the handle.
    #[inline]
    pub(crate) unsafe fn take_result<T>(&self) -> Result<T, JoinError> {
        // SAFETY: per the contract.
        match unsafe { self.take_outcome::<T>() } {
            Outcome::Value(v) => Ok(v),
            // SAFETY: the handle's, after DONE (the contract).
            Outcome::Panic(p) => Err(unsafe { self.panic_error(p) }),
            Outcome::Cancelled => Err(JoinError::cancelled()),
        }
    }

    /// The join error of a panic: with the work's id and name.
    ///
    /// # Safety
    /// As for `take_result`.
    #[cold]
    #[inline(never)]
    unsafe fn panic_error(&self, payload: Box<dyn Any + Send>) -> JoinError {
        // SAFETY: forwarded contract.
        JoinError::panic_of(payload, self.id(), unsafe { self.take_name() })
    }

    /// Parks the running task `current` until `DONE`: woken once, by
    /// `finish`, with no polling. `Err(Cancelled)` if the joining task is
    /// cancelled first, `Err(TimedOut)` if `until` or the task's deadline
    /// passes first (the joined work is unaffected either way). `Ok(false)`
    /// if `current` cannot park (the none switcher): the caller waits some
    /// other way.
    ///
    /// # Safety
    /// The caller is the slot's handle.
    #[inline]
    pub(crate) unsafe fn join_park(
        &self,
        current: &Current,
        until: Option<std::time::Instant>,
    ) -> Result<bool, JoinError> {
        let (current, token) = (current.raw(), current.token());
        // SAFETY: only the handle writes these, and `finish` reads them
        // only after seeing JOINER, which we set below.
        unsafe {
            *self.joiner_task.get() = current;
            *self.joiner_token.get() = token;
        }
        // The work runs on our executor (attached to it and not DONE, it
        // cannot leave it before its end, which this thread records): this
        // thread is the only one that touches the word until DONE, so a
        // plain store.
        // SAFETY: both tasks are live (ours runs; the work is not DONE).
        let local = unsafe {
            let ex = atomics::task_current_executor(self.task).load(Ordering::Relaxed);
            !ex.is_null() && ex == atomics::task_current_executor(current).load(Ordering::Relaxed)
        };
        if local {
            let s = self.state.load(Ordering::Acquire);
            if s & DONE != 0 {
                return Ok(true);
            }
            self.state
                .store(s | JOINER | JOINER_LOCAL, Ordering::Relaxed);
        } else {
            let prev = self.state.fetch_or(JOINER, Ordering::AcqRel);
            if prev & DONE != 0 {
                // Finished before it could see us: nobody will wake us.
                self.state.fetch_and(!JOINER, Ordering::Relaxed);
                return Ok(true);
            }
        }
        loop {
            if self.is_done() {
                // A local joiner's bits went with DONE, in one store.
                if !local {
                    self.await_joiner_cleared();
                }
                return Ok(true);
            }
            // u64::MAX: no timeout; the longest real one is one less.
            let ns = until.map_or(u64::MAX, |t| {
                let left = t.saturating_duration_since(std::time::Instant::now());
                u64::try_from(left.as_nanos()).map_or(u64::MAX - 1, |n| n.min(u64::MAX - 1))
            });
            // SAFETY: `current` is the task running on this thread.
            let r = unsafe { sys::monad_async_task_park(current, ns) };
            match r.error {
                0 => {}
                e => {
                    // Cancelled (or cannot park): stop being the joiner,
                    // unless `finish` got there first.
                    let mut s = self.state.load(Ordering::Acquire);
                    loop {
                        if s & DONE != 0 {
                            self.await_joiner_cleared();
                            return Ok(true);
                        }
                        match self.state.compare_exchange_weak(
                            s,
                            s & !(JOINER | JOINER_LOCAL),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => break,
                            Err(now) => s = now,
                        }
                    }
                    return match e {
                        libc::ECANCELED => Err(JoinError::cancelled()),
                        libc::ETIME | libc::ETIMEDOUT => Err(JoinError::timed_out()),
                        _ => Ok(false),
                    };
                }
            }
        }
    }

    /// After `DONE`: waits for `finish` to be done with the joiner's
    /// fields (its wake call takes a few atomic operations, or one push
    /// and a wake-up of another executor).
    fn await_joiner_cleared(&self) {
        self.await_cleared(JOINER);
    }

    /// Waits (spinning, then yielding) until `bit` is clear.
    fn await_cleared(&self, bit: u32) {
        let mut spins = 0u32;
        while self.state.load(Ordering::Acquire) & bit != 0 {
            spins += 1;
            if spins < 128 {
                std::hint::spin_loop();
            } else {
                // The waker may have been preempted: let it run.
                std::thread::yield_now();
            }
        }
    }

    /// As [`block_until_done`](Slot::block_until_done), until `until` at
    /// the latest: true if the work is done.
    pub(crate) fn block_until_done_or(&self, until: std::time::Instant) -> bool {
        let mut s = self.state.fetch_or(WAITER, Ordering::Acquire) | WAITER;
        while s & DONE == 0 {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                // WAITER stays set: `finish` then makes one futex call that
                // wakes nobody, for this piece of work only.
                return false;
            }
            futex_wait_for(&self.state, s, Some(left));
            s = self.state.load(Ordering::Acquire);
        }
        true
    }

    /// Blocks the calling (non-executor) thread until `DONE`.
    ///
    /// Work on an awake executor usually ends within a few microseconds,
    /// less than a futex sleep and wake-up cost: spin a little first (127
    /// `spin_loop` hints in growing rounds), then yield the CPU a few
    /// times (which lets the executor run if it shares our core), and only
    /// then sleep in the kernel.
    pub(crate) fn block_until_done(&self) {
        const SPIN_ROUNDS: u32 = 7;
        const YIELDS: u32 = 4;
        for round in 0..SPIN_ROUNDS + YIELDS {
            if self.is_done() {
                return;
            }
            if round < SPIN_ROUNDS {
                for _ in 0..1u32 << round {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        let mut s = self.state.fetch_or(WAITER, Ordering::Acquire) | WAITER;
        while s & DONE == 0 {
            // Sleeps only while the word still reads `s`: a DONE published
            // after our read makes the wait return at once.
            futex_wait(&self.state, s);
            s = self.state.load(Ordering::Acquire);
        }
    }
}

/// A finished piece of work's outcome, before it becomes a `Result`.
pub(crate) enum Outcome<T> {
    Value(T),
    Panic(Box<dyn Any + Send>),
    Cancelled,
}

/// The handle's last touch of its slot, after it took (or dropped) the
/// outcome of finished work, or after it let go of unfinished work.
///
/// # Safety
/// The caller is the slot's handle, and does not touch the slot again.
#[inline]
pub(crate) unsafe fn release_handle(slot: NonNull<Slot>) {
    // SAFETY: the handle keeps the slot alive until this call.
    let s = unsafe { slot.as_ref() };
    let prev = if !s.remote && s.owner.is_some_and(on_thread) {
        // Every executor-side access to a local slot (completion, claim,
        // abandon) happens on the owner thread, which is here and not in
        // one of them (none runs user code while it holds the slot): no
        // other thread can touch the word now, so a plain update will do.
        let prev = s.state.load(Ordering::Relaxed);
        s.state.store(prev & !HANDLE, Ordering::Release);
        prev
    } else {
        // HANDLE is set (we are the handle): a subtraction clears it.
        s.state.fetch_sub(HANDLE, Ordering::AcqRel)
    };
    if prev & ORPHAN != 0 {
        // SAFETY: the executor side let go before us; from Box::leak.
        drop(unsafe { Box::from_raw(slot.as_ptr()) });
    }
}

/// The handle's drop: takes the outcome if the work is over, else lets go
/// so that `on_exit` drops it. Returns the outcome, for the caller to drop
/// after the slot is released.
///
/// # Safety
/// The caller is the slot's handle (for work producing a `T`) and does not
/// touch the slot again.
pub(crate) unsafe fn drop_handle<T>(slot: NonNull<Slot>) -> Option<Outcome<T>> {
    // SAFETY: the handle keeps the slot alive until it lets go.
    let s = unsafe { slot.as_ref() };
    let mut state = s.state.load(Ordering::Acquire);
    loop {
        if state & DONE != 0 {
            // SAFETY: DONE observed (acquire) by the handle.
            let outcome = unsafe { s.take_outcome::<T>() };
            // SAFETY: per the contract.
            unsafe { release_handle(slot) };
            return Some(outcome);
        }
        if state & WAKER != 0 {
            // A pending await left its waker: it goes with the handle
            // (nobody will await this work any more), before HANDLE does,
            // since the slot may carry other work once HANDLE is clear.
            // SAFETY: we are the handle.
            drop(unsafe { s.unregister_waker() });
            state = s.state.load(Ordering::Acquire);
            continue;
        }
        // Not done: let go unless completion gets in first. An unfinished
        // slot is never orphaned, so nobody is left to free it.
        match s.state.compare_exchange_weak(
            state,
            state & !HANDLE,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return None,
            Err(now) => state = now,
        }
    }
}

/// Blocks while `*word == expected`, for at most `timeout` (or until a
/// spurious wake-up).
fn futex_wait_for(word: &AtomicU32, expected: u32, timeout: Option<std::time::Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT_PRIVATE reads the u32 at a valid, aligned address
    // (an AtomicU32 we borrow) and a relative timeout that lives on our
    // stack for the call, or null.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            tsp,
        );
    }
}

/// Blocks while `*word == expected` (or until a spurious wake-up).
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT_PRIVATE reads the u32 at a valid, aligned address
    // (an AtomicU32 we borrow) and takes no other pointers but a null
    // timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes every thread blocked in [`futex_wait`] on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE_PRIVATE only uses the address as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            libc::c_int::MAX,
        );
    }
}
