//! A one-value channel: [`channel`], [`Sender`], [`Receiver`].
//!
//! # Invariants
//!
//! * The value is in exactly one place: the sender's call, the shared
//!   `value`, a waiting receiver's payload (handed over by `send`), or
//!   the receiver's caller. An abandoned receive future puts a value it
//!   was handed back into `value`.
//! * A receiver waits only while the sender is alive and has not sent; the
//!   sender's drop (without a send) grants any waiter "closed".

use super::spin::SpinLock;
use super::wait_queue::{lock, wait, Caller, Op, WaitFuture, WaitQueue, Wakes};
use crate::error::errno;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

/// A channel for one value: the [`Sender`] sends it (without waiting), the
/// [`Receiver`] waits for it.
///
/// ```
/// use monad_async::sync::oneshot;
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let (tx, mut rx) = oneshot::channel();
/// let h = ex.spawn(Priority::Normal, move |_cx| rx.recv());
/// std::thread::spawn(move || tx.send(42).unwrap());
/// assert_eq!(h.join().unwrap()?, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: SpinLock::new(State {
            value: None,
            sender: true,
            receiver: true,
            queue: WaitQueue::new(),
        }),
    });
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

struct Inner<T> {
    state: SpinLock<State<T>>,
}

struct State<T> {
    value: Option<T>,
    /// The sender exists and has not sent.
    sender: bool,
    /// The receiver exists and has not closed.
    receiver: bool,
    /// The receiver, waiting; payload: the value handed over, or `None`
    /// for "the sender is gone".
    queue: WaitQueue<Option<T>>,
}

/// Sends the one value of a [`channel`].
///
/// ```
/// use monad_async::sync::oneshot;
/// let (tx, mut rx) = oneshot::channel();
/// tx.send("hi").unwrap();
/// assert_eq!(rx.recv()?, "hi");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Sender<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waking the receiver if it waits. Never waits.
    ///
    /// # Errors
    ///
    /// The value back, if the receiver is gone or closed.
    ///
    /// ```
    /// use monad_async::sync::oneshot;
    /// let (tx, rx) = oneshot::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn send(self, value: T) -> Result<(), T> {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.inner.state);
        if !st.receiver {
            return Err(value);
        }
        st.sender = false;
        let mut value = Some(value);
        st.queue.grant_front(&mut wakes, |p| *p = value.take());
        if value.is_some() {
            st.value = value;
        }
        drop(st);
        wakes.wake_all();
        Ok(())
    }

    /// True once the receiver is gone or closed: a send would fail.
    ///
    /// ```
    /// use monad_async::sync::oneshot;
    /// let (tx, mut rx) = oneshot::channel::<u8>();
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        !lock(&self.inner.state).receiver
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.inner.state);
        if st.sender {
            st.sender = false;
            st.queue.grant_front(&mut wakes, |p| *p = None);
        }
        drop(st);
        wakes.wake_all();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Sender").finish_non_exhaustive()
    }
}

/// Receives the one value of a [`channel`].
///
/// ```
/// use monad_async::sync::oneshot;
/// let (tx, mut rx) = oneshot::channel::<u8>();
/// drop(tx);
/// assert_eq!(rx.recv().unwrap_err().raw_os_error(), Some(libc::EPIPE));
/// ```
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Receiver<T> {
    /// Waits for the value: parks the calling task, or blocks the calling
    /// thread outside tasks.
    ///
    /// # Errors
    ///
    /// `EPIPE`: the sender was dropped without sending (or the value was
    /// already received). `ECANCELED`: the waiting task was cancelled (any
    /// other park error ends the wait too); the value, if sent later,
    /// stays for the next `recv`. A value handed over before the cancel
    /// wins (it is returned).
    ///
    /// ```
    /// use monad_async::sync::oneshot;
    /// let (tx, mut rx) = oneshot::channel();
    /// std::thread::spawn(move || tx.send(7));
    /// assert_eq!(rx.recv()?, 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&mut self) -> io::Result<T> {
        wait::<Recv<T>>(&self.inner, ())?
    }

    /// [`recv`](Receiver::recv) for async code; dropping the future after
    /// the value was handed to it keeps the value for the next receive.
    ///
    /// ```
    /// use monad_async::sync::oneshot;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let (tx, mut rx) = oneshot::channel();
    /// tx.send(3).unwrap();
    /// assert_eq!(rt.block_on(rx.recv_async())?, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_async(&mut self) -> impl Future<Output = io::Result<T>> + '_ {
        WaitFuture::<Recv<T>>::new(&self.inner, ())
    }

    /// The value if it was sent, without waiting.
    ///
    /// # Errors
    ///
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) (`EAGAIN`): not sent yet.
    /// `EPIPE`: the sender is gone without sending.
    ///
    /// ```
    /// use monad_async::sync::oneshot;
    /// let (tx, mut rx) = oneshot::channel();
    /// assert_eq!(rx.try_recv().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv()?, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&mut self) -> io::Result<T> {
        let mut st = lock(&self.inner.state);
        try_take(&mut st).unwrap_or_else(|| Err(errno(libc::EAGAIN)))
    }

    /// Closes the channel: a later send fails (a value already sent can
    /// still be received).
    ///
    /// ```
    /// use monad_async::sync::oneshot;
    /// let (tx, mut rx) = oneshot::channel();
    /// rx.close();
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn close(&mut self) {
        lock(&self.inner.state).receiver = false;
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = lock(&self.inner.state);
        st.receiver = false;
        let value = st.value.take();
        drop(st);
        drop(value);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("oneshot::Receiver").finish_non_exhaustive()
    }
}

/// Under the mutex: the value, or "closed", or `None` to wait.
fn try_take<T>(st: &mut State<T>) -> Option<io::Result<T>> {
    if let Some(v) = st.value.take() {
        return Some(Ok(v));
    }
    if !st.sender {
        return Some(Err(errno(libc::EPIPE)));
    }
    None
}

/// The receive operation.
struct Recv<T>(std::marker::PhantomData<T>);

impl<T> Op for Recv<T> {
    type Prim = Arc<Inner<T>>;
    type State = State<T>;
    type Input = ();
    type Payload = Option<T>;
    type Output = io::Result<T>;

    fn mutex(p: &Arc<Inner<T>>) -> &SpinLock<State<T>> {
        &p.state
    }
    fn queue(st: &mut State<T>) -> &mut WaitQueue<Option<T>> {
        &mut st.queue
    }
    fn attempt(
        _: &Arc<Inner<T>>,
        st: &mut State<T>,
        _: (),
        _: &Caller,
        _: &mut Wakes,
    ) -> Result<io::Result<T>, Option<T>> {
        try_take(st).ok_or(None)
    }
    fn granted(_: &Arc<Inner<T>>, v: Option<T>) -> io::Result<T> {
        v.ok_or_else(|| errno(libc::EPIPE))
    }
    fn abandon(p: &Arc<Inner<T>>, v: Option<T>) {
        if let Some(v) = v {
            let mut st = lock(&p.state);
            if st.receiver {
                st.value = Some(v);
                return;
            }
            drop(st);
            drop(v);
        }
    }
}
