//! The waiter queue every primitive of [`sync`](super) is built on, and
//! the three ways of waiting (a task parks, a thread blocks, a future
//! returns `Pending`).
//!
//! # The queue
//!
//! A [`WaitQueue`] is an intrusive list of [`Waiter`]s, one FIFO list per
//! priority level: [`pop`](WaitQueue::pop) takes the oldest waiter of the
//! highest level. A waiter's level is its task's CPU priority when it
//! waits (read once, when it queues); a plain thread and a future count as
//! [`Normal`](crate::Priority::Normal) (a future may be polled by any
//! thread, and a thread has no priority of ours). Entries live where the
//! waiter waits: on the parked task's or blocked thread's stack, or inside
//! the pinned future. A queue lives inside its primitive's `std` mutex,
//! and every link, payload and wake-up method of a queued waiter is only
//! touched under that mutex.
//!
//! # Hand-off
//!
//! Primitives never wake a waiter to let it retry: whoever frees what it
//! waits for (a permit, the lock, a message, room in a channel) *grants*
//! it to the first waiter under the mutex, writing the waiter's payload
//! and unlinking it, and wakes it after the mutex is released. So a
//! waiter's turn cannot be taken by a later caller, and the priority order
//! is the order things are handed out in.
//!
//! # Waiter states
//!
//! `WAITING` (queued) -> `WAKING` (granted, a task being woken) -> `DONE`
//! (granted; the waker is done with the entry). Threads and futures go
//! straight to `DONE`: their wake-up handle (a [`Thread`], a [`Waker`]) is
//! moved out of the entry under the mutex. A task's wake needs its
//! executor alive for the call. A waker on that executor's thread, or
//! one that pins the executor alive for the call (as a cross-thread spawn
//! does), sets `DONE` at once too; only where it cannot (a thread pool's
//! task, an executor being dropped) does it set `WAKING`, and the waiter
//! does not return (which could end the task) until the wake call is over
//! and it reads `DONE`. A waker on the executor's thread wakes with
//! `monad_async_task_wake_deferred`: from one of that executor's tasks
//! the wake is applied when the waker suspends (the woken task could not
//! run before that anyway), and a waker that then parks switches straight
//! to the woken task.
//!
//! # Abandoning a wait
//!
//! * A parked task whose park fails (cancelled; any error) takes the mutex:
//!   still `WAITING`, it unlinks itself and returns the error, and the
//!   primitive is as if it never waited. Already granted, the grant wins
//!   (as a wake that beats a cancel wins in the C park): the operation
//!   succeeds, and the task's next suspension point reports the cancel.
//! * A future dropped while `WAITING` unlinks itself; dropped after a
//!   grant it could not return, it hands the grant on (a permit or the
//!   lock is released, a message goes back to the front of its channel, a
//!   `notify_one` goes to the next waiter), so nothing is lost.

use super::spin::{SpinGuard, SpinLock};
use crate::executor::Shared;
use crate::task::{wake_deferred, wake_raw, Current};
use crate::{sys, Priority};
use std::cell::UnsafeCell;
use std::future::Future;
use std::io;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::ptr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};

/// Queued; nobody has granted it anything.
pub(crate) const WAITING: u8 = 0;
/// Granted; its task is being woken (the waker still reads the entry).
pub(crate) const WAKING: u8 = 1;
/// Granted; the waker is done with the entry.
pub(crate) const DONE: u8 = 2;

/// Locks a primitive's state.
#[inline]
pub(crate) fn lock<S>(m: &SpinLock<S>) -> SpinGuard<'_, S> {
    m.lock()
}

/// How a waiter is woken.
enum Kind {
    /// A task parked in [`Current::park`].
    Task {
        task: sys::monad_async_task,
        token: u64,
        /// Its executor's shared part; null for a thread pool's task.
        home: *const Shared,
    },
    /// A thread blocked in [`thread::park`].
    Thread(Option<Thread>),
    /// A future; its latest waker.
    Async(Option<Waker>),
}

/// Who is calling an operation: worked out only if it is needed (to
/// wait, or to record a lock's holder), which keeps a call that completes
/// at once free of the look-up.
pub(crate) struct Caller {
    me: std::cell::OnceCell<Me>,
    is_async: bool,
}

impl Caller {
    fn blocking() -> Caller {
        Caller {
            me: std::cell::OnceCell::new(),
            is_async: false,
        }
    }

    fn future() -> Caller {
        Caller {
            me: std::cell::OnceCell::new(),
            is_async: true,
        }
    }

    /// True for a future (which may be dropped before it sees a grant).
    #[inline]
    pub(crate) fn is_async(&self) -> bool {
        self.is_async
    }

    /// The caller: the running task, this thread, or a future.
    #[inline]
    pub(crate) fn me(&self) -> &Me {
        if self.is_async {
            const ASYNC: &Me = &Me::Async;
            return ASYNC;
        }
        self.me.get_or_init(Me::current)
    }
}

/// Who is waiting, on this thread, now.
pub(crate) enum Me {
    /// A task: it parks.
    Task(Current),
    /// A plain thread (or an executor's thread outside its tasks): it
    /// blocks.
    Thread,
    /// A future being polled.
    Async,
}

impl Me {
    /// The running task if there is one, else this thread.
    #[inline]
    pub(crate) fn current() -> Me {
        match Current::get() {
            Some(c) => Me::Task(c),
            None => Me::Thread,
        }
    }

    /// The queue level this waiter goes to.
    #[inline]
    pub(crate) fn priority(&self) -> Priority {
        match self {
            Me::Task(c) => c.priority(),
            _ => Priority::Normal,
        }
    }
}

/// One waiter, linked into one [`WaitQueue`] while `WAITING`. See the
/// [module docs](self) for who touches what.
pub(crate) struct Waiter<P> {
    prev: UnsafeCell<*const Waiter<P>>,
    next: UnsafeCell<*const Waiter<P>>,
    level: usize,
    state: AtomicU8,
    kind: UnsafeCell<Kind>,
    payload: UnsafeCell<Option<P>>,
    _pinned: PhantomPinned,
}

// SAFETY: a waiter is shared between its owner and whoever grants it; all
// fields but `state` are only touched under the queue's mutex while it is
// queued, or by its owner alone after `DONE` (acquire, after the granter's
// release). What crosses threads is the payload (P: Send), a Thread or a
// Waker (Send + Sync), and a task pointer only handed to the thread-safe
// C wake.
unsafe impl<P: Send> Send for Waiter<P> {}
// SAFETY: as above.
unsafe impl<P: Send> Sync for Waiter<P> {}

impl<P> Waiter<P> {
    /// A waiter for `me`, carrying `payload`, not yet queued.
    fn new(payload: P, me: &Me, waker: Option<&Waker>) -> Waiter<P> {
        let kind = match me {
            Me::Task(c) => Kind::Task {
                task: c.raw(),
                token: c.token(),
                home: c.home(),
            },
            Me::Thread => Kind::Thread(Some(thread::current())),
            Me::Async => Kind::Async(waker.cloned()),
        };
        Waiter {
            prev: UnsafeCell::new(ptr::null()),
            next: UnsafeCell::new(ptr::null()),
            level: level_of(me.priority()),
            state: AtomicU8::new(WAITING),
            kind: UnsafeCell::new(kind),
            payload: UnsafeCell::new(Some(payload)),
            _pinned: PhantomPinned,
        }
    }

    /// The granted payload.
    ///
    /// # Safety
    /// The waiter is `DONE` (observed by its owner) and its payload not
    /// yet taken.
    unsafe fn take_payload(&self) -> P {
        // SAFETY: per the contract nobody else touches it any more.
        unsafe { (*self.payload.get()).take() }.expect("sync: a granted waiter's payload")
    }
}

/// The index of a priority level, highest first.
#[inline]
fn level_of(p: Priority) -> usize {
    match p {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

/// Head and tail of one level's list.
struct List<P> {
    head: *const Waiter<P>,
    tail: *const Waiter<P>,
}

/// Waiters by priority, then first come first served. Lives inside a
/// primitive's mutex; see the [module docs](self).
pub(crate) struct WaitQueue<P> {
    lists: [List<P>; 3],
    len: usize,
}

// SAFETY: the queue only links waiters, which are Send + Sync for P: Send;
// it is only used under its primitive's mutex.
unsafe impl<P: Send> Send for WaitQueue<P> {}

impl<P> Default for WaitQueue<P> {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl<P> WaitQueue<P> {
    /// An empty queue.
    pub(crate) const fn new() -> WaitQueue<P> {
        const fn empty<P>() -> List<P> {
            List {
                head: ptr::null(),
                tail: ptr::null(),
            }
        }
        WaitQueue {
            lists: [empty(), empty(), empty()],
            len: 0,
        }
    }

    /// How many waiters are queued.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when nobody waits.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Links `w` at the back of its level.
    ///
    /// # Safety
    /// `w` is `WAITING`, in no queue, and stays at its address until it is
    /// unlinked (by [`pop`](WaitQueue::pop) or
    /// [`remove`](WaitQueue::remove)).
    unsafe fn push(&mut self, w: *const Waiter<P>) {
        // SAFETY: per the contract w is valid; we hold the queue's mutex.
        unsafe {
            let list = &mut self.lists[(*w).level];
            *(*w).prev.get() = list.tail;
            *(*w).next.get() = ptr::null();
            if list.tail.is_null() {
                list.head = w;
            } else {
                *(*list.tail).next.get() = w;
            }
            list.tail = w;
        }
        self.len += 1;
    }

    /// Unlinks `w`.
    ///
    /// # Safety
    /// `w` is linked into this queue.
    unsafe fn remove(&mut self, w: *const Waiter<P>) {
        // SAFETY: per the contract w and its neighbours are linked here.
        unsafe {
            let list = &mut self.lists[(*w).level];
            let (prev, next) = (*(*w).prev.get(), *(*w).next.get());
            if prev.is_null() {
                list.head = next;
            } else {
                *(*prev).next.get() = next;
            }
            if next.is_null() {
                list.tail = prev;
            } else {
                *(*next).prev.get() = prev;
            }
        }
        self.len -= 1;
    }

    /// The first waiter (highest level, oldest), still linked.
    #[inline]
    fn front(&self) -> *const Waiter<P> {
        if self.len == 0 {
            return ptr::null();
        }
        for l in &self.lists {
            if !l.head.is_null() {
                return l.head;
            }
        }
        ptr::null()
    }

    /// The payload of the first waiter, to decide whether it can be
    /// granted (a semaphore's waiter may need more permits than there
    /// are).
    #[inline]
    pub(crate) fn front_payload(&mut self) -> Option<&mut P> {
        let w = self.front();
        if w.is_null() {
            return None;
        }
        // SAFETY: a linked waiter is valid; we hold the mutex (&mut self).
        unsafe { (*(*w).payload.get()).as_mut() }
    }

    /// Grants the first waiter: `grant` updates its payload, then it is
    /// unlinked and its wake-up goes to `wakes`, for after the mutex is
    /// released. False if nobody waits.
    #[inline]
    pub(crate) fn grant_front(&mut self, wakes: &mut Wakes, grant: impl FnOnce(&mut P)) -> bool {
        let w = self.front();
        if w.is_null() {
            return false;
        }
        // SAFETY: w is linked, so valid; we hold the mutex.
        unsafe {
            if let Some(p) = (*(*w).payload.get()).as_mut() {
                grant(p);
            }
            self.remove(w);
            wakes.push(grant_waiter(w));
        }
        true
    }

    /// The first waiter's task, its token, its executor's shared part
    /// (null for a thread pool's task) and its level, if it is a task:
    /// the next holder of a lock, for priority inheritance.
    pub(crate) fn front_task(
        &self,
    ) -> Option<(sys::monad_async_task, u64, *const Shared, Priority)> {
        let w = self.front();
        if w.is_null() {
            return None;
        }
        // SAFETY: w is linked, so valid; we hold the mutex (&self is the
        // locked state's).
        unsafe {
            match &*(*w).kind.get() {
                Kind::Task { task, token, home } => {
                    Some((*task, *token, *home, Priority::ALL[(*w).level]))
                }
                _ => None,
            }
        }
    }
}

/// Marks the unlinked, granted `w` and takes its wake-up.
///
/// # Safety
/// `w` was linked until now (still valid) and we hold its queue's mutex.
unsafe fn grant_waiter<P>(w: *const Waiter<P>) -> Wake {
    // SAFETY: per the contract; the state store publishes the payload.
    unsafe {
        match &mut *(*w).kind.get() {
            Kind::Task { task, token, home } => grant_task(*task, *token, *home, &(*w).state),
            Kind::Thread(t) => {
                let t = t.take();
                (*w).state.store(DONE, Ordering::Release);
                Wake::Thread(t)
            }
            Kind::Async(waker) => {
                let waker = waker.take();
                (*w).state.store(DONE, Ordering::Release);
                Wake::Async(waker)
            }
        }
    }
}

/// Marks a granted task waiter (`state`, `WAITING` until now) and returns
/// its wake-up: the task `task` parked with `token`, of the executor
/// whose shared part is `home` (null: a thread pool's task).
///
/// # Safety
/// The waiter was unlinked from its primitive under the primitive's
/// mutex, which we hold; its fields (and `state`) are valid until its
/// owner reads `DONE`.
#[inline]
pub(crate) unsafe fn grant_task(
    task: sys::monad_async_task,
    token: u64,
    home: *const Shared,
    state: *const AtomicU8,
) -> Wake {
    // SAFETY: per the contract; the state store publishes the payload.
    unsafe {
        // The waiter may go on (and its task end) once it reads DONE, so
        // DONE comes before the wake only where the executor is kept
        // alive for the wake: on its own thread (nothing runs there
        // before our wake), or pinned.
        if !home.is_null() {
            if (*home).on_owner_thread() {
                (*state).store(DONE, Ordering::Release);
                return Wake::Task {
                    task,
                    token,
                    state: ptr::null(),
                    pinned: ptr::null(),
                };
            }
            if (*home).pin_alive() {
                (*state).store(DONE, Ordering::Release);
                return Wake::Task {
                    task,
                    token,
                    state: ptr::null(),
                    pinned: home,
                };
            }
        }
        // A thread pool's task, or an executor being dropped: the waiter
        // waits for DONE, after our wake.
        (*state).store(WAKING, Ordering::Release);
        Wake::Task {
            task,
            token,
            state,
            pinned: ptr::null(),
        }
    }
}

/// A wake-up to deliver once the primitive's mutex is released.
pub(crate) enum Wake {
    Task {
        task: sys::monad_async_task,
        token: u64,
        /// The waiter's state, to set `DONE` after the wake; null if it
        /// already is.
        state: *const AtomicU8,
        /// The executor pinned alive for the wake, to unpin after it.
        pinned: *const Shared,
    },
    Thread(Option<Thread>),
    Async(Option<Waker>),
}

impl Wake {
    #[inline]
    fn wake(self) {
        match self {
            Wake::Task {
                task,
                token,
                state,
                pinned,
            } => {
                // SAFETY: the task's executor is alive for the call: we
                // are on its thread, or it is pinned, or the waiter reads
                // WAKING and waits for DONE, so its task cannot end (nor
                // its executor go) meanwhile.
                unsafe {
                    if state.is_null() && pinned.is_null() {
                        // Granted on the task's executor thread: deferred
                        // when we are one of its tasks (it cannot run
                        // before we suspend anyway), so that a waker that
                        // then parks switches straight to it.
                        wake_deferred(task, token);
                        return;
                    }
                    wake_raw(task, token);
                    if !state.is_null() {
                        (*state).store(DONE, Ordering::Release);
                    }
                    if !pinned.is_null() {
                        (*pinned).unpin_alive();
                    }
                }
            }
            Wake::Thread(t) => {
                if let Some(t) = t {
                    t.unpark();
                }
            }
            Wake::Async(w) => {
                if let Some(w) = w {
                    w.wake();
                }
            }
        }
    }
}

/// Wake-ups gathered under a primitive's mutex, delivered by
/// [`wake_all`](Wakes::wake_all) after it is released. Allocates only
/// from the second one on.
pub(crate) struct Wakes {
    first: Option<Wake>,
    rest: Vec<Wake>,
}

impl Wakes {
    /// None yet.
    #[inline]
    pub(crate) fn new() -> Wakes {
        Wakes {
            first: None,
            rest: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, w: Wake) {
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.rest.push(w);
        }
    }

    /// Delivers them, in grant order, futures' wakers last: a waker is
    /// user code, and a task's wake must not wait behind it (on the
    /// owner thread, where no pin keeps the executor alive, nothing but
    /// our own code may run between a task's grant and its wake).
    /// Dropping `Wakes` delivers them too, so that an unwinding caller
    /// cannot strand a granted waiter (or a pinned executor).
    #[inline]
    pub(crate) fn wake_all(mut self) {
        // The common case, one wake-up or none, without the general drop
        // (which checks `rest` and drops both fields again): a channel's
        // send to a waiting receiver, a lock's hand-over.
        if self.rest.is_empty() {
            let first = self.first.take();
            // Nothing is left to drop: `first` is taken, and an empty
            // `Vec` owns no memory.
            std::mem::forget(self);
            if let Some(w) = first {
                w.wake();
            }
            return;
        }
        drop(self);
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        let Some(first) = self.first.take() else {
            return;
        };
        if self.rest.is_empty() {
            first.wake();
            return;
        }
        let rest = std::mem::take(&mut self.rest);
        let mut later = Vec::new();
        for w in std::iter::once(first).chain(rest) {
            match w {
                Wake::Async(_) => later.push(w),
                w => w.wake(),
            }
        }
        for w in later {
            w.wake();
        }
    }
}

/// Waits until `w` reads `DONE`: a granter is between our grant and the
/// end of its wake call (a few atomic operations, or an inbox push).
fn spin_until_done<P>(w: &Waiter<P>) {
    spin_until(&w.state);
}

/// Waits until `state` reads `DONE` (see [`spin_until_done`]).
pub(crate) fn spin_until(state: &AtomicU8) {
    let mut spins = 0u32;
    while state.load(Ordering::Acquire) != DONE {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// One waiting operation of a primitive: how to lock its state, try it at
/// once, and finish it once granted.
pub(crate) trait Op {
    /// The primitive's shared part.
    type Prim: ?Sized;
    /// What its mutex guards.
    type State;
    /// What the caller hands in (a message to send).
    type Input;
    /// What a waiter carries (what it asks for, what it is granted).
    type Payload;
    /// What the operation returns.
    type Output;

    /// The primitive's mutex.
    fn mutex(p: &Self::Prim) -> &SpinLock<Self::State>;
    /// The queue this operation's waiters go to.
    fn queue(st: &mut Self::State) -> &mut WaitQueue<Self::Payload>;
    /// Under the mutex: completes at once (`Ok`), or says what to wait
    /// with (`Err`). `caller` says who calls (its task, for priority
    /// inheritance); wake-ups it causes go to `wakes`.
    fn attempt(
        p: &Self::Prim,
        st: &mut Self::State,
        input: Self::Input,
        caller: &Caller,
        wakes: &mut Wakes,
    ) -> Result<Self::Output, Self::Payload>;
    /// After a grant, outside the mutex: the result.
    fn granted(p: &Self::Prim, payload: Self::Payload) -> Self::Output;
    /// A grant whose future was dropped before returning it: hand it on,
    /// outside the mutex.
    fn abandon(p: &Self::Prim, payload: Self::Payload);
}

/// A wait given up because the task's park failed while it still
/// waited: the error, and the payload it waited with (a message to send
/// goes back to the caller).
pub(crate) struct Aborted<P> {
    pub(crate) error: io::Error,
    pub(crate) payload: P,
}

impl<P> From<Aborted<P>> for io::Error {
    fn from(a: Aborted<P>) -> io::Error {
        a.error
    }
}

/// Runs `O` from a task (which parks) or a thread (which blocks); see
/// the [module docs](self). `Err` only when the task's park failed while
/// it was still waiting (cancelled, or any other park error).
pub(crate) fn wait<O: Op>(p: &O::Prim, input: O::Input) -> Result<O::Output, Aborted<O::Payload>> {
    wait_locked::<O>(p, lock(O::mutex(p)), input)
}

/// [`wait`] with the primitive's mutex already held (`st`, its guard):
/// for a primitive's own fast path that found it cannot finish at once.
pub(crate) fn wait_locked<'a, O: Op>(
    p: &'a O::Prim,
    mut st: SpinGuard<'a, O::State>,
    input: O::Input,
) -> Result<O::Output, Aborted<O::Payload>> {
    let caller = Caller::blocking();
    let mut wakes = Wakes::new();
    let payload = match O::attempt(p, &mut st, input, &caller, &mut wakes) {
        Ok(out) => {
            drop(st);
            wakes.wake_all();
            return Ok(out);
        }
        Err(payload) => payload,
    };
    let me = caller.me();
    let w = Waiter::new(payload, me, None);
    // SAFETY: w is fresh, and stays on this stack frame until it is
    // unlinked: we return only once it is granted (unlinked by the
    // granter) or after unlinking it ourselves.
    unsafe { O::queue(&mut st).push(&w) };
    drop(st);
    wakes.wake_all();
    match me {
        Me::Task(cur) => loop {
            match w.state.load(Ordering::Acquire) {
                DONE => break,
                WAKING => {
                    spin_until_done(&w);
                    break;
                }
                _ => {}
            }
            if let Err(errno) = cur.park() {
                let mut st = lock(O::mutex(p));
                if w.state.load(Ordering::Acquire) == WAITING && errno == libc::ENOTSUP {
                    // A task that cannot suspend (the none switcher, as a
                    // thread pool's default): it blocks its thread instead.
                    // SAFETY: a queued waiter's kind is ours to change
                    // under the mutex.
                    unsafe { *w.kind.get() = Kind::Thread(Some(thread::current())) };
                    drop(st);
                    while w.state.load(Ordering::Acquire) != DONE {
                        thread::park();
                    }
                    break;
                }
                if w.state.load(Ordering::Acquire) == WAITING {
                    // SAFETY: still WAITING under the mutex: still linked.
                    unsafe { O::queue(&mut st).remove(&w) };
                    drop(st);
                    // SAFETY: unlinked: the payload is ours alone.
                    let payload = unsafe { w.take_payload() };
                    return Err(Aborted {
                        error: cur.failed(errno),
                        payload,
                    });
                }
                drop(st);
                // Granted first: the grant wins.
                spin_until_done(&w);
                break;
            }
            // Woken, or a permit left by an earlier wake: re-check.
        },
        _ => {
            while w.state.load(Ordering::Acquire) != DONE {
                thread::park();
            }
        }
    }
    // SAFETY: DONE, observed with acquire; taken once.
    let payload = unsafe { w.take_payload() };
    Ok(O::granted(p, payload))
}

/// Where a [`WaitFuture`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Init,
    Queued,
    Done,
}

/// The future form of [`wait`]: the same operation, queued as a
/// [`Normal`](Priority::Normal) waiter woken through its
/// [`Waker`]. Dropping it while it waits abandons the wait (see the
/// [module docs](self)).
pub(crate) struct WaitFuture<'a, O: Op> {
    prim: &'a O::Prim,
    input: Option<O::Input>,
    waiter: Option<Waiter<O::Payload>>,
    stage: Stage,
}

// SAFETY: the future carries the input and the payload (moved to and from
// other threads: Send) and a shared reference to the primitive (Sync).
unsafe impl<O: Op> Send for WaitFuture<'_, O>
where
    O::Prim: Sync,
    O::Input: Send,
    O::Payload: Send,
{
}

impl<'a, O: Op> WaitFuture<'a, O> {
    /// A future that runs `O` with `input` on `prim` when first polled.
    pub(crate) fn new(prim: &'a O::Prim, input: O::Input) -> WaitFuture<'a, O> {
        WaitFuture {
            prim,
            input: Some(input),
            waiter: None,
            stage: Stage::Init,
        }
    }
}

impl<O: Op> Future for WaitFuture<'_, O> {
    type Output = O::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Output> {
        // SAFETY: the waiter is never moved once set (it is only ever read
        // in place or dropped with the future); nothing else is pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let prim = this.prim;
        match this.stage {
            Stage::Init => {
                let mut wakes = Wakes::new();
                let mut st = lock(O::mutex(prim));
                let input = this.input.take().expect("sync: a future's input");
                match O::attempt(prim, &mut st, input, &Caller::future(), &mut wakes) {
                    Ok(out) => {
                        this.stage = Stage::Done;
                        drop(st);
                        wakes.wake_all();
                        Poll::Ready(out)
                    }
                    Err(payload) => {
                        let w =
                            this.waiter
                                .insert(Waiter::new(payload, &Me::Async, Some(cx.waker())));
                        // SAFETY: the waiter is in the pinned future, where
                        // it stays until drop, which unlinks it if needed.
                        unsafe { O::queue(&mut st).push(w) };
                        this.stage = Stage::Queued;
                        drop(st);
                        wakes.wake_all();
                        Poll::Pending
                    }
                }
            }
            Stage::Queued => {
                let w = this
                    .waiter
                    .as_ref()
                    .expect("sync: a queued future's waiter");
                if w.state.load(Ordering::Acquire) != DONE {
                    let st = lock(O::mutex(prim));
                    if w.state.load(Ordering::Acquire) == WAITING {
                        // SAFETY: a queued waiter's kind is ours to change
                        // under the mutex.
                        let kind = unsafe { &mut *w.kind.get() };
                        if let Kind::Async(slot) = kind {
                            if !slot.as_ref().is_some_and(|old| old.will_wake(cx.waker())) {
                                *slot = Some(cx.waker().clone());
                            }
                        }
                        drop(st);
                        return Poll::Pending;
                    }
                    // Futures are granted straight to DONE, under the mutex.
                }
                this.stage = Stage::Done;
                // SAFETY: DONE, observed with acquire; taken once.
                let payload = unsafe { w.take_payload() };
                Poll::Ready(O::granted(prim, payload))
            }
            Stage::Done => panic!("sync: future polled after it completed"),
        }
    }
}

impl<O: Op> Drop for WaitFuture<'_, O> {
    fn drop(&mut self) {
        if self.stage != Stage::Queued {
            return;
        }
        let Some(w) = self.waiter.as_ref() else {
            return;
        };
        let mut st = lock(O::mutex(self.prim));
        if w.state.load(Ordering::Acquire) == WAITING {
            // SAFETY: still WAITING under the mutex: still linked.
            unsafe { O::queue(&mut st).remove(w) };
            return;
        }
        drop(st);
        // SAFETY: granted (DONE: futures skip WAKING), payload not taken.
        let payload = unsafe { w.take_payload() };
        O::abandon(self.prim, payload);
    }
}
