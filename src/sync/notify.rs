//! [`Notify`]: wake one waiter, or all, by priority.
//!
//! # Invariants
//!
//! * At most one stored permit: a [`notify_one`](Notify::notify_one) with
//!   nobody waiting stores it, and the next wait consumes it at once.
//!   While someone waits there is no stored permit.
//! * A `notify_one` reaches exactly one waiter: one that is cancelled
//!   before the grant leaves the queue (the grant goes to the next
//!   waiter); a future dropped after the grant passes it on.

use super::spin::SpinLock;
use super::wait_queue::{lock, wait, Caller, Op, WaitFuture, WaitQueue, Wakes};
use std::fmt;
use std::future::Future;
use std::io;

/// Notifies waiting tasks, threads or futures: an event with one stored
/// permit, as tokio's `Notify`. Waiters are woken highest priority first,
/// then in arrival order.
///
/// ```
/// use monad_async::sync::Notify;
/// use monad_async::{Executor, Priority};
/// use std::sync::Arc;
///
/// let ex = Executor::new()?;
/// let n = Arc::new(Notify::new());
/// let n2 = n.clone();
/// let waiter = ex.spawn(Priority::Normal, move |_cx| n2.notified());
/// ex.spawn(Priority::Low, move |_cx| n.notify_one());
/// ex.run_until_idle()?;
/// waiter.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Notify {
    state: SpinLock<State>,
}

struct State {
    permit: bool,
    /// Payload: true when granted by `notify_one` (to be passed on if
    /// abandoned).
    queue: WaitQueue<bool>,
}

impl Notify {
    /// A `Notify` with no stored permit.
    ///
    /// ```
    /// use monad_async::sync::Notify;
    /// let n = Notify::new();
    /// n.notify_one();
    /// n.notified()?; // the stored permit
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub const fn new() -> Notify {
        Notify {
            state: SpinLock::new(State {
                permit: false,
                queue: WaitQueue::new(),
            }),
        }
    }

    /// Wakes the first waiter (highest priority, then oldest), or, if
    /// nobody waits, stores a permit for the next wait (one at most).
    ///
    /// ```
    /// use monad_async::sync::Notify;
    /// let n = Notify::new();
    /// n.notify_one();
    /// n.notify_one(); // still one permit
    /// n.notified()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify_one(&self) {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.state);
        if !st.queue.grant_front(&mut wakes, |one| *one = true) {
            st.permit = true;
        }
        drop(st);
        wakes.wake_all();
    }

    /// Wakes everyone waiting now, highest priority first; stores no
    /// permit.
    ///
    /// ```
    /// use monad_async::sync::Notify;
    /// use monad_async::{Executor, Priority};
    /// use std::sync::Arc;
    ///
    /// let ex = Executor::new()?;
    /// let n = Arc::new(Notify::new());
    /// let hs: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let n = n.clone();
    ///         ex.spawn(Priority::Normal, move |_cx| n.notified())
    ///     })
    ///     .collect();
    /// ex.spawn(Priority::Low, move |_cx| n.notify_waiters());
    /// ex.run_until_idle()?;
    /// for h in hs {
    ///     h.join().unwrap()?;
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notify_waiters(&self) {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.state);
        while st.queue.grant_front(&mut wakes, |one| *one = false) {}
        drop(st);
        wakes.wake_all();
    }

    /// Waits for a notification: consumes the stored permit at once if
    /// there is one, else parks the calling task (or blocks the calling
    /// thread outside tasks) until a `notify_one` or `notify_waiters`
    /// reaches it.
    ///
    /// # Errors
    ///
    /// `ECANCELED`: the waiting task was cancelled (any other park error
    /// ends the wait too); it no longer waits, so a later `notify_one`
    /// goes to someone else. A notification that reached it before the
    /// cancel wins (it returns `Ok`).
    ///
    /// ```
    /// use monad_async::sync::Notify;
    /// use std::sync::Arc;
    /// let n = Arc::new(Notify::new());
    /// let n2 = n.clone();
    /// let t = std::thread::spawn(move || n2.notified());
    /// n.notify_one();
    /// t.join().unwrap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notified(&self) -> io::Result<()> {
        Ok(wait::<Notified>(self, ())?)
    }

    /// [`notified`](Notify::notified) for async code. The future queues
    /// when first polled (a `notify_waiters` before that does not reach
    /// it), as a [`Normal`](crate::Priority::Normal) waiter; dropped after
    /// a `notify_one` reached it, it passes that notification on.
    ///
    /// ```
    /// use monad_async::sync::Notify;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let n = Notify::new();
    /// n.notify_one();
    /// rt.block_on(n.notified_async());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn notified_async(&self) -> impl Future<Output = ()> + '_ {
        WaitFuture::<Notified>::new(self, ())
    }
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("Notify")
            .field("permit", &st.permit)
            .field("waiters", &st.queue.len())
            .finish()
    }
}

/// The wait operation.
struct Notified;

impl Op for Notified {
    type Prim = Notify;
    type State = State;
    type Input = ();
    type Payload = bool;
    type Output = ();

    fn mutex(p: &Notify) -> &SpinLock<State> {
        &p.state
    }
    fn queue(st: &mut State) -> &mut WaitQueue<bool> {
        &mut st.queue
    }
    fn attempt(_: &Notify, st: &mut State, _: (), _: &Caller, _: &mut Wakes) -> Result<(), bool> {
        if st.permit {
            st.permit = false;
            Ok(())
        } else {
            Err(false)
        }
    }
    fn granted(_: &Notify, _: bool) {}
    fn abandon(p: &Notify, one: bool) {
        if one {
            p.notify_one();
        }
    }
}
