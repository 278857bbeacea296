//! [`Mutex`]: mutual exclusion whose guard may be held across
//! suspensions, handed to waiters by priority.
//!
//! # Invariants
//!
//! * `locked` is true while a [`MutexGuard`] exists or the lock has been
//!   granted to a waiter that has not returned yet. An unlock with
//!   waiters hands the lock straight to the first one (highest priority,
//!   then oldest): `locked` stays true, so no later caller can barge in.
//! * The value is only reached through a guard (or `&mut Mutex`).

use super::inherit::Holder;
use super::spin::SpinLock;
use super::wait_queue::{lock, wait, Caller, Me, Op, WaitFuture, WaitQueue, Wakes};
use std::cell::UnsafeCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::ops::{Deref, DerefMut};

/// A mutual-exclusion lock for tasks, threads and async code; waiters get
/// the lock highest priority first, then in arrival order.
///
/// [`lock`](Mutex::lock) parks the calling task when it runs inside one
/// (any executor or thread pool) and blocks the calling thread otherwise;
/// [`lock_async`](Mutex::lock_async) is the same for async code. The
/// [`MutexGuard`] may be held across suspensions (yields, sleeps, I/O,
/// other waits): other tasks of the executor keep running.
///
/// **Priority inheritance**: while a higher-priority waiter waits (a task
/// at its priority; a thread or a future counts as
/// [`Normal`](crate::Priority::Normal)), the task holding the lock runs
/// at the waiter's level, so that a Low holder is not starved by Normal
/// work while a High task waits for it; at unlock it goes back to the
/// level it had when it locked (nested locks: release them in the reverse
/// order of taking them; the full rule, and its one imprecision, is in
/// `src/sync/inherit.rs`). Only tasks of an
/// [`Executor`](crate::Executor) are raised.
///
/// ```
/// use monad_async::sync::Mutex;
/// use monad_async::{Executor, Priority};
/// use std::sync::Arc;
///
/// let ex = Executor::new()?;
/// let m = Arc::new(Mutex::new(Vec::new()));
/// for i in 0..3 {
///     let m = m.clone();
///     ex.spawn(Priority::Normal, move |cx| {
///         let mut v = m.lock()?;
///         cx.yield_now()?; // still held: the others wait
///         v.push(i);
///         Ok::<_, std::io::Error>(())
///     });
/// }
/// ex.run_until_idle()?;
/// assert_eq!(*m.lock()?, [0, 1, 2]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Mutex<T: ?Sized> {
    state: SpinLock<State>,
    value: UnsafeCell<T>,
}

struct State {
    locked: bool,
    queue: WaitQueue<()>,
    /// The task holding the lock, for priority inheritance (`None`: a
    /// thread, a future or a thread pool's task holds it, or nobody).
    holder: Option<Holder>,
}

// SAFETY: the value is reached by one guard at a time (the lock), from
// whichever thread holds it: T must be Send, and need not be Sync.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    ///
    /// ```
    /// use monad_async::sync::Mutex;
    /// let m = Mutex::new(5);
    /// assert_eq!(*m.lock()?, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: SpinLock::new(State {
                locked: false,
                queue: WaitQueue::new(),
                holder: None,
            }),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, out of the mutex.
    ///
    /// ```
    /// use monad_async::sync::Mutex;
    /// assert_eq!(Mutex::new(1).into_inner(), 1);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting for it if it is held (or others wait):
    /// parks the calling task, or blocks the calling thread outside tasks.
    /// Do not call it on an executor's thread outside its tasks while one
    /// of its tasks holds the lock: the thread would block for good.
    ///
    /// # Errors
    ///
    /// `ECANCELED`: the waiting task was cancelled (any other park error,
    /// such as a deadline, ends the wait too); the mutex is then as if it
    /// had never waited. If the lock was handed to it before the cancel,
    /// the lock wins: it returns the guard, and the task's next
    /// suspension point reports the cancel. A thread's lock never fails.
    ///
    /// ```
    /// use monad_async::sync::Mutex;
    /// let m = Mutex::new(0);
    /// *m.lock()? += 1;
    /// assert_eq!(*m.lock()?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> io::Result<MutexGuard<'_, T>> {
        wait::<Lock<T>>(self, ())?;
        Ok(MutexGuard { mutex: self })
    }

    /// [`lock`](Mutex::lock) for async code: the future queues when first
    /// polled (as a [`Normal`](crate::Priority::Normal) waiter); dropping
    /// it gives up its place, or unlocks if the lock had been handed to
    /// it.
    ///
    /// ```
    /// use monad_async::sync::Mutex;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let m = Mutex::new(1);
    /// rt.block_on(async { *m.lock_async().await += 1 });
    /// assert_eq!(m.into_inner(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock_async(&self) -> impl Future<Output = MutexGuard<'_, T>> + '_ {
        let fut = WaitFuture::<Lock<T>>::new(self, ());
        async move {
            fut.await;
            MutexGuard { mutex: self }
        }
    }

    /// Locks the mutex if it is free and nobody waits.
    ///
    /// # Errors
    ///
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`) if it is held.
    ///
    /// ```
    /// use monad_async::sync::Mutex;
    /// let m = Mutex::new(());
    /// let g = m.try_lock()?;
    /// assert!(m.try_lock().is_err());
    /// drop(g);
    /// assert!(m.try_lock().is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_lock(&self) -> io::Result<MutexGuard<'_, T>> {
        let me = Me::current();
        let mut st = lock(&self.state);
        if st.locked {
            return Err(crate::error::errno(libc::EAGAIN));
        }
        take(&mut st, &me);
        Ok(MutexGuard { mutex: self })
    }

    /// The value, through `&mut` (no locking needed).
    ///
    /// ```
    /// use monad_async::sync::Mutex;
    /// let mut m = Mutex::new(1);
    /// *m.get_mut() = 2;
    /// assert_eq!(*m.lock()?, 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Unlocks: undoes a priority raise, and hands the lock to the first
    /// waiter, if any (its task becomes the holder).
    fn unlock(&self) {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.state);
        let old = st.holder.take();
        if let Some(h) = old {
            h.restore();
        }
        // SAFETY: the front waiter is queued: its task waits, keeping its
        // executor alive.
        st.holder = st
            .queue
            .front_task()
            .and_then(|(task, token, home, level)| unsafe {
                Holder::of_waiter(task, token, home, level)
            });
        if !st.queue.grant_front(&mut wakes, |_| {}) {
            st.locked = false;
        }
        drop(st);
        wakes.wake_all();
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(g) => d.field("value", &&*g),
            Err(_) => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Under the state's lock: takes the free mutex for `me`.
fn take(st: &mut State, me: &Me) {
    st.locked = true;
    st.holder = match me {
        Me::Task(cur) => Holder::of_current(cur),
        _ => None,
    };
}

/// The lock operation.
struct Lock<T: ?Sized>(std::marker::PhantomData<*const T>);

impl<T: ?Sized> Op for Lock<T> {
    type Prim = Mutex<T>;
    type State = State;
    type Input = ();
    type Payload = ();
    type Output = ();

    fn mutex(p: &Mutex<T>) -> &SpinLock<State> {
        &p.state
    }
    fn queue(st: &mut State) -> &mut WaitQueue<()> {
        &mut st.queue
    }
    fn attempt(
        _: &Mutex<T>,
        st: &mut State,
        _: (),
        caller: &Caller,
        _: &mut Wakes,
    ) -> Result<(), ()> {
        if st.locked {
            // About to wait: the holder runs at our level meanwhile.
            if let Some(h) = st.holder.as_mut() {
                h.raise(caller.me().priority());
            }
            Err(())
        } else {
            take(st, caller.me());
            Ok(())
        }
    }
    fn granted(_: &Mutex<T>, _: ()) {}
    fn abandon(p: &Mutex<T>, _: ()) {
        p.unlock();
    }
}

/// Holds a [`Mutex`] locked; dropping it unlocks (handing the lock to
/// the first waiter). It may be held across suspensions, and dropped on
/// another thread or task.
///
/// ```
/// use monad_async::sync::Mutex;
/// let m = Mutex::new(String::new());
/// let mut g = m.lock()?;
/// g.push_str("hi");
/// drop(g);
/// assert_eq!(*m.lock()?, "hi");
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

// SAFETY: the guard gives &T to whoever shares it: T must be Sync too.
unsafe impl<T: ?Sized + Send + Sync> Sync for MutexGuard<'_, T> {}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock: nobody else reaches the value.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for deref, and we have the guard by &mut.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
