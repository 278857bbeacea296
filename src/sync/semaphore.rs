//! [`Semaphore`]: a count of permits, handed out by priority.
//!
//! # Invariants
//!
//! * Permits are handed out in queue order (highest priority first, then
//!   first come first served), strictly: while anyone waits, a new
//!   acquire (even a `try_`) queues behind them, and a waiter at the head
//!   needing more permits than there are holds back smaller requests
//!   behind it (as tokio's does), so large requests are not starved.
//! * `permits` counts free permits: those held by [`SemaphorePermit`]s,
//!   granted to waiters or forgotten are not in it.
//! * Once closed, every waiter and every later acquire fails with
//!   `ESHUTDOWN`; permits still come back (and can be added).

use super::spin::SpinLock;
use super::wait_queue::{lock, wait, Caller, Op, WaitFuture, WaitQueue, Wakes};
use crate::error::errno;
use std::fmt;
use std::future::Future;
use std::io;

/// A counting semaphore whose waiters are served highest priority first,
/// then in arrival order.
///
/// [`acquire`](Semaphore::acquire) parks the calling task when it runs
/// inside one (on any executor or thread pool), and blocks the calling
/// thread otherwise; [`acquire_async`](Semaphore::acquire_async) is the
/// same from async code. Put it in an [`Arc`](std::sync::Arc) to share
/// it.
///
/// ```
/// use monad_async::sync::Semaphore;
/// use monad_async::{Executor, Priority};
/// use std::sync::Arc;
///
/// let ex = Executor::new()?;
/// let sem = Arc::new(Semaphore::new(2));
/// let mut handles = Vec::new();
/// for _ in 0..10 {
///     let sem = sem.clone();
///     handles.push(ex.spawn(Priority::Normal, move |cx| {
///         let _permit = sem.acquire()?; // at most two tasks in here
///         cx.yield_now()
///     }));
/// }
/// ex.run_until_idle()?;
/// for h in handles {
///     h.join().unwrap()?;
/// }
/// assert_eq!(sem.available_permits(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Semaphore {
    state: SpinLock<State>,
}

struct State {
    permits: usize,
    closed: bool,
    queue: WaitQueue<Need>,
}

/// What a waiter asks for, and whether it was turned away by a close.
struct Need {
    permits: usize,
    closed: bool,
}

impl Semaphore {
    /// The most permits a semaphore holds (`usize::MAX >> 3`, as tokio).
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(Semaphore::MAX_PERMITS);
    /// assert_eq!(s.available_permits(), Semaphore::MAX_PERMITS);
    /// ```
    pub const MAX_PERMITS: usize = usize::MAX >> 3;

    /// A semaphore with `permits` free permits.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// assert_eq!(Semaphore::new(3).available_permits(), 3);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        assert!(permits <= Self::MAX_PERMITS, "Semaphore: too many permits");
        Semaphore {
            state: SpinLock::new(State {
                permits,
                closed: false,
                queue: WaitQueue::new(),
            }),
        }
    }

    /// How many permits are free now.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(3);
    /// let _p = s.try_acquire_many(2)?;
    /// assert_eq!(s.available_permits(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn available_permits(&self) -> usize {
        lock(&self.state).permits
    }

    /// Adds `n` permits, granting waiters in order as far as they go.
    ///
    /// # Panics
    ///
    /// If the total would exceed [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(0);
    /// s.add_permits(2);
    /// assert_eq!(s.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.state);
        let total = st
            .permits
            .checked_add(n)
            .filter(|&t| t <= Self::MAX_PERMITS);
        let Some(total) = total else {
            drop(st);
            panic!("Semaphore::add_permits: more than MAX_PERMITS");
        };
        st.permits = total;
        grant_waiters(&mut st, &mut wakes);
        drop(st);
        wakes.wake_all();
    }

    /// Takes one permit, waiting for it if none is free (or others wait
    /// already); it comes back when the [`SemaphorePermit`] is dropped.
    ///
    /// Inside a task it parks the task (its executor runs other work);
    /// elsewhere it blocks the thread. Do not call it on an executor's
    /// thread outside its tasks: the thread would block and not run the
    /// task that should release a permit.
    ///
    /// # Errors
    ///
    /// `ESHUTDOWN`: the semaphore is (or gets) [closed](Semaphore::close).
    /// `ECANCELED`: the waiting task was cancelled; any other error of the
    /// task's park (such as a deadline) ends the wait too. The semaphore
    /// is then as if it had never waited. A permit granted before the
    /// cancel wins: the acquire succeeds, and the task's next suspension
    /// point reports the cancel.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(1);
    /// let p = s.acquire()?;
    /// assert_eq!(s.available_permits(), 0);
    /// drop(p);
    /// assert_eq!(s.available_permits(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire(&self) -> io::Result<SemaphorePermit<'_>> {
        self.acquire_many(1)
    }

    /// As [`acquire`](Semaphore::acquire), for `n` permits at once (all or
    /// nothing).
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(5);
    /// let p = s.acquire_many(3)?;
    /// assert_eq!((p.num_permits(), s.available_permits()), (3, 2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_many(&self, n: u32) -> io::Result<SemaphorePermit<'_>> {
        let permits = wait::<Acquire>(self, n as usize)??;
        Ok(SemaphorePermit { sem: self, permits })
    }

    /// [`acquire`](Semaphore::acquire) for async code: the future queues
    /// when first polled (as a [`Normal`](crate::Priority::Normal)
    /// waiter); dropping it gives up its place, or passes on a permit it
    /// was granted but did not return. Fails only with `ESHUTDOWN`.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let s = Semaphore::new(1);
    /// rt.block_on(async {
    ///     let p = s.acquire_async().await?;
    ///     assert_eq!(p.num_permits(), 1);
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_async(&self) -> impl Future<Output = io::Result<SemaphorePermit<'_>>> + '_ {
        self.acquire_many_async(1)
    }

    /// [`acquire_many`](Semaphore::acquire_many) for async code.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let s = Semaphore::new(4);
    /// let p = rt.block_on(s.acquire_many_async(4))?;
    /// assert_eq!(s.available_permits(), 0);
    /// drop(p);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn acquire_many_async(
        &self,
        n: u32,
    ) -> impl Future<Output = io::Result<SemaphorePermit<'_>>> + '_ {
        let fut = WaitFuture::<Acquire>::new(self, n as usize);
        async move {
            let permits = fut.await?;
            Ok(SemaphorePermit { sem: self, permits })
        }
    }

    /// Takes one permit if one is free and nobody waits.
    ///
    /// # Errors
    ///
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`): no permit
    /// now. `ESHUTDOWN`: closed.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(1);
    /// let _p = s.try_acquire()?;
    /// assert_eq!(s.try_acquire().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_acquire(&self) -> io::Result<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// As [`try_acquire`](Semaphore::try_acquire), for `n` permits.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(2);
    /// assert!(s.try_acquire_many(3).is_err());
    /// assert!(s.try_acquire_many(2).is_ok());
    /// ```
    pub fn try_acquire_many(&self, n: u32) -> io::Result<SemaphorePermit<'_>> {
        let mut st = lock(&self.state);
        match take_now(&mut st, n as usize) {
            Some(Ok(permits)) => Ok(SemaphorePermit { sem: self, permits }),
            Some(Err(e)) => Err(e),
            None => Err(errno(libc::EAGAIN)),
        }
    }

    /// Closes the semaphore: every waiter, and every acquire from now on,
    /// fails with `ESHUTDOWN`. Permits held stay valid.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(1);
    /// s.close();
    /// assert!(s.is_closed());
    /// assert_eq!(s.acquire().unwrap_err().raw_os_error(), Some(libc::ESHUTDOWN));
    /// ```
    pub fn close(&self) {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.state);
        st.closed = true;
        while st.queue.grant_front(&mut wakes, |n| n.closed = true) {}
        drop(st);
        wakes.wake_all();
    }

    /// True once [`close`](Semaphore::close) was called.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// assert!(!Semaphore::new(1).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("Semaphore")
            .field("permits", &st.permits)
            .field("waiters", &st.queue.len())
            .field("closed", &st.closed)
            .finish()
    }
}

/// Under the mutex: `n` permits now, if free and nobody is ahead.
fn take_now(st: &mut State, n: usize) -> Option<io::Result<usize>> {
    if st.closed {
        return Some(Err(errno(libc::ESHUTDOWN)));
    }
    if st.queue.is_empty() && st.permits >= n {
        st.permits -= n;
        return Some(Ok(n));
    }
    None
}

/// Under the mutex: grants waiters in order while the head's need fits.
fn grant_waiters(st: &mut State, wakes: &mut Wakes) {
    loop {
        let permits = st.permits;
        let need = match st.queue.front_payload() {
            Some(n) if n.permits <= permits => n.permits,
            _ => return,
        };
        st.permits -= need;
        st.queue.grant_front(wakes, |_| {});
    }
}

/// The acquire operation.
struct Acquire;

impl Op for Acquire {
    type Prim = Semaphore;
    type State = State;
    type Input = usize;
    type Payload = Need;
    type Output = io::Result<usize>;

    fn mutex(p: &Semaphore) -> &SpinLock<State> {
        &p.state
    }
    fn queue(st: &mut State) -> &mut WaitQueue<Need> {
        &mut st.queue
    }
    fn attempt(
        _: &Semaphore,
        st: &mut State,
        n: usize,
        _: &Caller,
        _: &mut Wakes,
    ) -> Result<io::Result<usize>, Need> {
        take_now(st, n).ok_or(Need {
            permits: n,
            closed: false,
        })
    }
    fn granted(_: &Semaphore, need: Need) -> io::Result<usize> {
        if need.closed {
            Err(errno(libc::ESHUTDOWN))
        } else {
            Ok(need.permits)
        }
    }
    fn abandon(p: &Semaphore, need: Need) {
        if !need.closed {
            p.add_permits(need.permits);
        }
    }
}

/// Permits taken from a [`Semaphore`]; dropping it gives them back.
///
/// ```
/// use monad_async::sync::Semaphore;
/// let s = Semaphore::new(2);
/// {
///     let p = s.acquire_many(2)?;
///     assert_eq!(p.num_permits(), 2);
/// }
/// assert_eq!(s.available_permits(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "dropping the permit gives it back at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(1);
    /// assert_eq!(s.acquire()?.num_permits(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Keeps the permits out of the semaphore for good.
    ///
    /// ```
    /// use monad_async::sync::Semaphore;
    /// let s = Semaphore::new(1);
    /// s.acquire()?.forget();
    /// assert_eq!(s.available_permits(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.add_permits(self.permits);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}
