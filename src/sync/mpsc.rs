//! Multi-producer, single-consumer channels: [`channel`] (bounded: a full
//! channel makes senders wait) and [`unbounded_channel`].
//!
//! # Invariants
//!
//! * Messages are in one place at a time: the `buffer`, a waiting
//!   sender's payload (not yet accepted), the waiting receiver's payload
//!   (handed over by a send), or a caller's hands.
//! * The receiver waits only when the buffer is empty; a send to a waiting
//!   receiver hands the message over directly (the buffer stays empty).
//! * There is one receiver, so it waits in one of two places: a task of
//!   an [`Executor`](crate::Executor) as a `RecvTask` on its stack,
//!   linked from `State::recv_task` (no priority queue needed); a
//!   thread, a future or a thread pool's task in `recv_queue`, the
//!   general waiter queue.
//! * The same-executor fast path: a send on the executor thread of a
//!   receiver parked as a `RecvTask` writes the message, unlinks it and
//!   marks it `DONE` under the lock, then wakes it with
//!   `monad_async_task_wake_deferred`: from a task of that executor the
//!   wake is applied when the sender suspends, and a sender that then
//!   parks (waiting for a reply) switches straight to the receiver when
//!   it is the task the run loop would run next. Every other sender
//!   (another thread, a future's granted slot, the last sender's drop)
//!   grants it as the general queue does (`wait_queue::grant_task`).
//! * Senders wait only on a bounded channel that is full: its buffered
//!   messages and the slots reserved for granted futures (`reserved`)
//!   make `capacity`. A receive that frees a slot serves the first
//!   waiting sender (highest priority, then oldest): a task's or a
//!   thread's message moves into the buffer at once (it cannot be
//!   withdrawn: the sender learns `Ok` when it resumes); a future is
//!   granted a reserved slot only, and its message enters the buffer when
//!   it is next polled. So a send future dropped before it returned
//!   `Ok` never sent its message (cancel-safe, as tokio's `send`): its
//!   reserved slot passes to the next waiting sender.
//! * The order messages enter the buffer is the order senders are served
//!   in, except that a granted future's message enters when the future is
//!   polled, after messages accepted meanwhile.
//! * A receive future dropped after a message was handed to it puts the
//!   message back at the front of the buffer, which may then hold one
//!   more than `capacity` until the next receive.
//! * The receiver's close or drop releases every waiting sender with its
//!   message (the send fails with `EPIPE`); the last sender's drop
//!   releases a waiting receiver with "end of stream".

use super::spin::{SpinGuard, SpinLock};
use super::wait_queue::{
    grant_task, lock, spin_until, wait_locked, Caller, Op, WaitFuture, WaitQueue, Wakes, DONE,
    WAITING,
};
use crate::error::errno;
use crate::executor::Shared;
use crate::sys;
use crate::task::{wake_deferred, Current};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// A bounded channel holding at most `capacity` messages: a send to a
/// full channel waits (parks the task, blocks the thread) until the
/// receiver makes room. Waiting senders are served highest priority
/// first, then in arrival order.
///
/// # Panics
///
/// If `capacity` is 0.
///
/// ```
/// use monad_async::sync::mpsc;
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let (tx, mut rx) = mpsc::channel(4);
/// for i in 0..3 {
///     let tx = tx.clone();
///     ex.spawn(Priority::Normal, move |_cx| tx.send(i).map_err(|e| e.into_inner()));
/// }
/// drop(tx);
/// let sum = ex.spawn(Priority::Low, move |_cx| {
///     let mut sum = 0;
///     while let Some(v) = rx.recv()? {
///         sum += v;
///     }
///     Ok::<_, std::io::Error>(sum)
/// });
/// assert_eq!(sum.join().unwrap()?, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc::channel: capacity must be at least 1");
    make(capacity)
}

/// A channel without a bound: a send never waits.
///
/// ```
/// use monad_async::sync::mpsc;
/// let (tx, mut rx) = mpsc::unbounded_channel();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// drop(tx);
/// let mut n = 0;
/// while let Some(_) = rx.recv()? {
///     n += 1;
/// }
/// assert_eq!(n, 1000);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unbounded_channel<T>() -> (Sender<T>, Receiver<T>) {
    make(usize::MAX)
}

fn make<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: SpinLock::new(State {
            buffer: VecDeque::new(),
            capacity,
            reserved: 0,
            senders: 1,
            receiver: true,
            recv_task: ptr::null(),
            recv_queue: WaitQueue::new(),
            send_queue: WaitQueue::new(),
        }),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

struct Chan<T> {
    state: SpinLock<State<T>>,
}

struct State<T> {
    buffer: VecDeque<T>,
    /// `usize::MAX`: unbounded.
    capacity: usize,
    /// Slots granted to send futures that have not yet been polled to
    /// put their message in (counted against `capacity`).
    reserved: usize,
    /// Live senders.
    senders: usize,
    /// The receiver exists and has not closed.
    receiver: bool,
    /// The receiver, parked as a task of an [`Executor`](crate::Executor)
    /// (the fast path, [`RecvTask`]), or null. It waits here or in
    /// `recv_queue`, never both (there is one receiver).
    recv_task: *const RecvTask<T>,
    /// The receiver, waiting: payload the message handed over (`None`:
    /// end of stream).
    recv_queue: WaitQueue<Option<T>>,
    /// Senders waiting for room.
    send_queue: WaitQueue<SendSlot<T>>,
}

// SAFETY: `recv_task` points to a waiter on the receiver's stack, only
// touched under the lock while it is linked (see `RecvTask`); the rest is
// Send for T: Send.
unsafe impl<T: std::marker::Send> std::marker::Send for State<T> {}

/// The receiver parked as a task of an executor, on its stack: the
/// general waiter (`wait_queue::Waiter`) cut down to what one receiver
/// needs (no queue links, no priority level, no thread or future kinds).
/// Linked as `State::recv_task` while `WAITING`; whoever unlinks it under
/// the lock writes `msg` (`None`: end of stream) and marks `state` as
/// `wait_queue::grant_task` does; the receiver takes `msg` once it reads
/// `DONE`.
struct RecvTask<T> {
    task: sys::monad_async_task,
    token: u64,
    home: *const Shared,
    state: AtomicU8,
    msg: UnsafeCell<Option<T>>,
}

/// A waiting sender's payload.
struct SendSlot<T> {
    /// Its message until it is accepted (`None` once in the buffer).
    msg: Option<T>,
    /// A future: granted a reserved slot, not an acceptance.
    is_async: bool,
    /// Granted a reserved slot (futures only).
    permit: bool,
}

impl<T> State<T> {
    /// Room for one more message (reserved slots count as taken).
    fn has_room(&self) -> bool {
        self.buffer.len().saturating_add(self.reserved) < self.capacity
    }

    /// Serves the first waiting sender if there is room for it.
    fn admit_sender(&mut self, wakes: &mut Wakes) {
        if !self.has_room() {
            return;
        }
        let State {
            buffer,
            send_queue,
            reserved,
            ..
        } = self;
        send_queue.grant_front(wakes, |p| {
            if p.is_async {
                p.permit = true;
                *reserved += 1;
            } else if let Some(m) = p.msg.take() {
                buffer.push_back(m);
            }
        });
    }
}

impl<T> State<T> {
    /// Hands `msg` (`None`: end of stream) to the waiting receiver, if
    /// one waits; gives it back otherwise.
    #[inline]
    fn hand_to_receiver(&mut self, msg: Option<T>, wakes: &mut Wakes) -> Result<(), Option<T>> {
        let w = self.recv_task;
        if !w.is_null() {
            self.recv_task = ptr::null();
            // SAFETY: a linked receiver is valid; we hold the lock and
            // unlink it here, so its fields are ours until DONE.
            unsafe {
                *(*w).msg.get() = msg;
                wakes.push(grant_task((*w).task, (*w).token, (*w).home, &(*w).state));
            }
            return Ok(());
        }
        if self.recv_queue.is_empty() {
            return Err(msg);
        }
        let mut msg = Some(msg);
        self.recv_queue
            .grant_front(wakes, |p| *p = msg.take().flatten());
        Ok(())
    }
}

/// Why a send failed, with the message back.
///
/// ```
/// use monad_async::sync::mpsc;
/// let (tx, rx) = mpsc::channel(1);
/// drop(rx);
/// let e = tx.send(5).unwrap_err();
/// assert!(e.is_closed());
/// assert_eq!(e.into_inner(), 5);
/// ```
pub struct SendError<T> {
    value: T,
    error: io::Error,
}

impl<T> SendError<T> {
    /// The message that was not sent.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, _) = mpsc::channel(1);
    /// assert_eq!(tx.send("m").unwrap_err().into_inner(), "m");
    /// ```
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Why: `EPIPE` (the receiver is gone or closed), `ECANCELED` (the
    /// waiting task was cancelled), or another error of its park;
    /// `EAGAIN` ([`WouldBlock`](io::ErrorKind::WouldBlock)) from
    /// [`try_send`](Sender::try_send) on a full channel.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, _) = mpsc::channel(1);
    /// assert_eq!(tx.send(()).unwrap_err().error().raw_os_error(), Some(libc::EPIPE));
    /// ```
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// True if the receiver is gone or closed (`EPIPE`).
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, rx) = mpsc::channel(1);
    /// tx.try_send(1).unwrap();
    /// assert!(!tx.try_send(2).unwrap_err().is_closed()); // full, not closed
    /// drop(rx);
    /// assert!(tx.try_send(3).unwrap_err().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.error.raw_os_error() == Some(libc::EPIPE)
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send failed: {}", self.error)
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> From<SendError<T>> for io::Error {
    fn from(e: SendError<T>) -> io::Error {
        e.error
    }
}

/// Sends messages into a channel; clone it for more producers. The
/// receiver sees the end of the stream once every sender is dropped.
///
/// ```
/// use monad_async::sync::mpsc;
/// let (tx, mut rx) = mpsc::channel(8);
/// let tx2 = tx.clone();
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// drop((tx, tx2));
/// assert_eq!((rx.recv()?, rx.recv()?, rx.recv()?), (Some(1), Some(2), None));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`: hands it to the receiver if it waits, else buffers
    /// it; on a full bounded channel, parks the calling task (or blocks
    /// the calling thread outside tasks) until there is room.
    ///
    /// # Errors
    ///
    /// The message back with `EPIPE` if the receiver is gone or closed
    /// (also while waiting), or `ECANCELED` if the waiting task was
    /// cancelled (any park error ends the wait): the channel is as if it
    /// had never been tried. A message accepted before the cancel wins
    /// (`Ok`).
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, mut rx) = mpsc::channel(1);
    /// let t = std::thread::spawn(move || {
    ///     tx.send(1).unwrap();
    ///     tx.send(2).unwrap(); // waits until 1 is received
    /// });
    /// assert_eq!(rx.recv()?, Some(1));
    /// assert_eq!(rx.recv()?, Some(2));
    /// t.join().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut st = lock(&self.chan.state);
        let w = st.recv_task;
        if !w.is_null() {
            // The fast path: the receiver is a parked task of an executor.
            // SAFETY: a linked receiver is valid; we hold the lock and
            // unlink it here, so its fields are ours until DONE.
            unsafe {
                if (*(*w).home).on_owner_thread() {
                    // Its executor's thread (so the executor is alive, and
                    // nothing runs here before our wake): DONE at once.
                    st.recv_task = ptr::null();
                    *(*w).msg.get() = Some(value);
                    let (task, token) = ((*w).task, (*w).token);
                    (*w).state.store(DONE, Ordering::Release);
                    drop(st);
                    // Deferred when we are one of its executor's tasks:
                    // if we park next (to wait for a reply), we switch
                    // straight to the receiver.
                    wake_deferred(task, token);
                    return Ok(());
                }
            }
        }
        send_waiting(&self.chan, st, value)
    }

    /// [`send`](Sender::send) for async code: the future queues (on a full
    /// channel) when first polled, as a
    /// [`Normal`](crate::Priority::Normal) waiter.
    ///
    /// Cancel-safe, as tokio's `send`: a future dropped before it returned
    /// `Ok` has not sent its message (it is dropped with the future), and
    /// loses its place in the queue. When room frees up the future is
    /// granted a reserved slot, and its message enters the channel when
    /// the future is next polled; a future dropped in between hands the
    /// slot on to the next waiting sender.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let (tx, mut rx) = mpsc::channel(1);
    /// rt.block_on(async {
    ///     tx.send_async(1).await.unwrap();
    ///     assert_eq!(rx.recv_async().await, Some(1));
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_async(&self, value: T) -> impl Future<Output = Result<(), SendError<T>>> + '_ {
        WaitFuture::<Send<T>>::new(&self.chan, value)
    }

    /// Sends `value` if that needs no waiting.
    ///
    /// # Errors
    ///
    /// The message back with `EAGAIN`
    /// ([`WouldBlock`](io::ErrorKind::WouldBlock)) on a full channel, or
    /// `EPIPE` if the receiver is gone or closed.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, _rx) = mpsc::channel(1);
    /// tx.try_send(1).unwrap();
    /// let e = tx.try_send(2).unwrap_err();
    /// assert_eq!(e.error().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), SendError<T>> {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.chan.state);
        let r = match send_now(&mut st, value, &mut wakes) {
            Ok(r) => r,
            Err(value) => Err(SendError {
                value,
                error: errno(libc::EAGAIN),
            }),
        };
        drop(st);
        wakes.wake_all();
        r
    }

    /// True once the receiver is gone or closed.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, rx) = mpsc::channel::<u8>(1);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        !lock(&self.chan.state).receiver
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.chan.state).senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.chan.state);
        st.senders -= 1;
        if st.senders == 0 {
            // End of stream for a waiting receiver (its buffer is empty).
            let _ = st.hand_to_receiver(None, &mut wakes);
        }
        drop(st);
        wakes.wake_all();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Sender").finish_non_exhaustive()
    }
}

/// Receives a channel's messages, in the order they were accepted.
///
/// Dropping it closes the channel and drops the buffered messages;
/// waiting senders get theirs back.
///
/// ```
/// use monad_async::sync::mpsc;
/// let (tx, mut rx) = mpsc::unbounded_channel();
/// tx.send('a').unwrap();
/// assert_eq!(rx.try_recv()?, 'a');
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// The next message, waiting for one if the channel is empty (parks
    /// the calling task, or blocks the calling thread outside tasks).
    /// `Ok(None)` once every sender is gone and the buffer is drained.
    ///
    /// # Errors
    ///
    /// `ECANCELED`: the waiting task was cancelled (any park error ends
    /// the wait); no message is lost (a message sent later stays for the
    /// next receive). A message handed over before the cancel wins (it is
    /// returned).
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, mut rx) = mpsc::channel(1);
    /// std::thread::spawn(move || tx.send(9).unwrap());
    /// assert_eq!(rx.recv()?, Some(9));
    /// assert_eq!(rx.recv()?, None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&mut self) -> io::Result<Option<T>> {
        let st = lock(&self.chan.state);
        if st.buffer.is_empty() && st.senders != 0 {
            if let Some(cur) = Current::get() {
                let home = cur.home();
                if !home.is_null() {
                    return recv_parked(&self.chan, st, cur, home);
                }
            }
        }
        recv_waiting(&self.chan, st)
    }

    /// [`recv`](Receiver::recv) for async code; dropping the future after
    /// a message was handed to it puts the message back at the front.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let rt = tokio::runtime::Builder::new_current_thread().build()?;
    /// let (tx, mut rx) = mpsc::unbounded_channel();
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// rt.block_on(async {
    ///     assert_eq!(rx.recv_async().await, Some(1));
    ///     assert_eq!(rx.recv_async().await, None);
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_async(&mut self) -> impl Future<Output = Option<T>> + '_ {
        WaitFuture::<Recv<T>>::new(&self.chan, ())
    }

    /// The next message if there is one.
    ///
    /// # Errors
    ///
    /// `EAGAIN` ([`WouldBlock`](io::ErrorKind::WouldBlock)): empty.
    /// `EPIPE`: empty, and every sender is gone.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, mut rx) = mpsc::channel::<u8>(1);
    /// assert_eq!(rx.try_recv().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// drop(tx);
    /// assert_eq!(rx.try_recv().unwrap_err().raw_os_error(), Some(libc::EPIPE));
    /// ```
    pub fn try_recv(&mut self) -> io::Result<T> {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.chan.state);
        let r = match recv_now(&mut st, &mut wakes) {
            Some(Some(v)) => Ok(v),
            Some(None) => Err(errno(libc::EPIPE)),
            None => Err(errno(libc::EAGAIN)),
        };
        drop(st);
        wakes.wake_all();
        r
    }

    /// Closes the channel: sends fail from now on (waiting senders get
    /// their messages back); what is buffered can still be received.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, mut rx) = mpsc::channel(2);
    /// tx.send(1).unwrap();
    /// rx.close();
    /// assert!(tx.send(2).is_err());
    /// assert_eq!(rx.recv()?, Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&mut self) {
        let mut wakes = Wakes::new();
        let mut st = lock(&self.chan.state);
        st.receiver = false;
        // Release every waiting sender with its message (payload intact).
        while st.send_queue.grant_front(&mut wakes, |_| {}) {}
        drop(st);
        wakes.wake_all();
    }

    /// How many messages are buffered.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (tx, rx) = mpsc::channel(4);
    /// tx.send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.chan.state).buffer.len()
    }

    /// True when nothing is buffered.
    ///
    /// ```
    /// use monad_async::sync::mpsc;
    /// let (_tx, rx) = mpsc::channel::<u8>(4);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        let buffered = std::mem::take(&mut lock(&self.chan.state).buffer);
        drop(buffered);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpsc::Receiver").finish_non_exhaustive()
    }
}

/// Under the mutex: sends at once (`Ok(result)`), or gives the message
/// back to wait with (`Err`): the channel is full.
fn send_now<T>(
    st: &mut State<T>,
    value: T,
    wakes: &mut Wakes,
) -> Result<Result<(), SendError<T>>, T> {
    if !st.receiver {
        return Ok(Err(SendError {
            value,
            error: errno(libc::EPIPE),
        }));
    }
    let value = match st.hand_to_receiver(Some(value), wakes) {
        Ok(()) => return Ok(Ok(())),
        Err(v) => v.expect("mpsc: a message not handed over"),
    };
    if st.has_room() {
        st.buffer.push_back(value);
        return Ok(Ok(()));
    }
    Err(value)
}

/// Under the mutex: puts a granted future's message in, using its
/// reserved slot.
fn send_reserved<T>(st: &mut State<T>, value: T, wakes: &mut Wakes) -> Result<(), SendError<T>> {
    st.reserved -= 1;
    if !st.receiver {
        return Err(SendError {
            value,
            error: errno(libc::EPIPE),
        });
    }
    if let Err(v) = st.hand_to_receiver(Some(value), wakes) {
        st.buffer
            .push_back(v.expect("mpsc: a message not handed over"));
    }
    Ok(())
}

/// Under the mutex: the next message (`Some(Some)`), end of stream
/// (`Some(None)`), or `None` to wait. Taking a message from a full
/// channel admits the first waiting sender's.
fn recv_now<T>(st: &mut State<T>, wakes: &mut Wakes) -> Option<Option<T>> {
    if let Some(v) = st.buffer.pop_front() {
        st.admit_sender(wakes);
        return Some(Some(v));
    }
    if st.senders == 0 {
        return Some(None);
    }
    None
}

/// The send operation.
struct Send<T>(std::marker::PhantomData<T>);

impl<T> Op for Send<T> {
    type Prim = Arc<Chan<T>>;
    type State = State<T>;
    type Input = T;
    type Payload = SendSlot<T>;
    type Output = Result<(), SendError<T>>;

    fn mutex(p: &Arc<Chan<T>>) -> &SpinLock<State<T>> {
        &p.state
    }
    fn queue(st: &mut State<T>) -> &mut WaitQueue<SendSlot<T>> {
        &mut st.send_queue
    }
    fn attempt(
        _: &Arc<Chan<T>>,
        st: &mut State<T>,
        value: T,
        caller: &Caller,
        wakes: &mut Wakes,
    ) -> Result<Result<(), SendError<T>>, SendSlot<T>> {
        send_now(st, value, wakes).map_err(|value| SendSlot {
            msg: Some(value),
            is_async: caller.is_async(),
            permit: false,
        })
    }
    fn granted(p: &Arc<Chan<T>>, slot: SendSlot<T>) -> Result<(), SendError<T>> {
        match slot.msg {
            None => Ok(()),
            Some(value) if slot.permit => {
                let mut wakes = Wakes::new();
                let mut st = lock(&p.state);
                let r = send_reserved(&mut st, value, &mut wakes);
                drop(st);
                wakes.wake_all();
                r
            }
            Some(value) => Err(SendError {
                value,
                error: errno(libc::EPIPE),
            }),
        }
    }
    fn abandon(p: &Arc<Chan<T>>, slot: SendSlot<T>) {
        // Refused by a close: the message is dropped with the future, as
        // its caller gave up on it. Granted a slot: the message is not
        // sent; the slot goes to the next waiting sender.
        if slot.permit {
            let mut wakes = Wakes::new();
            let mut st = lock(&p.state);
            st.reserved -= 1;
            st.admit_sender(&mut wakes);
            drop(st);
            wakes.wake_all();
        }
    }
}

/// The receive operation.
struct Recv<T>(std::marker::PhantomData<T>);

impl<T> Op for Recv<T> {
    type Prim = Arc<Chan<T>>;
    type State = State<T>;
    type Input = ();
    type Payload = Option<T>;
    type Output = Option<T>;

    fn mutex(p: &Arc<Chan<T>>) -> &SpinLock<State<T>> {
        &p.state
    }
    fn queue(st: &mut State<T>) -> &mut WaitQueue<Option<T>> {
        &mut st.recv_queue
    }
    fn attempt(
        _: &Arc<Chan<T>>,
        st: &mut State<T>,
        _: (),
        _: &Caller,
        wakes: &mut Wakes,
    ) -> Result<Option<T>, Option<T>> {
        recv_now(st, wakes).ok_or(None)
    }
    fn granted(_: &Arc<Chan<T>>, p: Option<T>) -> Option<T> {
        p
    }
    fn abandon(p: &Arc<Chan<T>>, m: Option<T>) {
        if let Some(m) = m {
            let mut st = lock(&p.state);
            st.buffer.push_front(m);
        }
    }
}

/// [`Sender::send`] past its fast path (no parked receiver on this
/// executor's thread to hand the message to): the general wait, kept out
/// of line so that the fast path's frame stays small.
#[cold]
#[inline(never)]
fn send_waiting<T>(
    chan: &Arc<Chan<T>>,
    st: SpinGuard<'_, State<T>>,
    value: T,
) -> Result<(), SendError<T>> {
    match wait_locked::<Send<T>>(chan, st, value) {
        Ok(r) => r,
        Err(a) => Err(SendError {
            value: a.payload.msg.expect("sync: an unaccepted message"),
            error: a.error,
        }),
    }
}

/// [`Receiver::recv`] past its fast path (a message is there, the
/// senders are gone, or the caller is not a task of an executor): the
/// general wait, out of line as [`send_waiting`].
#[cold]
#[inline(never)]
fn recv_waiting<T>(chan: &Arc<Chan<T>>, st: SpinGuard<'_, State<T>>) -> io::Result<Option<T>> {
    Ok(wait_locked::<Recv<T>>(chan, st, ())?)
}

/// The fast path of [`Receiver::recv`] for a task of an executor, with
/// the lock held and the channel empty: parks as a [`RecvTask`] until a
/// send (or the last sender's drop) hands it a message (or the end of
/// the stream).
#[inline(always)]
fn recv_parked<T>(
    chan: &Arc<Chan<T>>,
    mut st: SpinGuard<'_, State<T>>,
    cur: Current,
    home: *const Shared,
) -> io::Result<Option<T>> {
    let w = RecvTask {
        task: cur.raw(),
        token: cur.token(),
        home,
        state: AtomicU8::new(WAITING),
        msg: UnsafeCell::new(None),
    };
    // The receiver is `&mut self`: nobody else waits to receive.
    debug_assert!(st.recv_task.is_null() && st.recv_queue.is_empty());
    st.recv_task = &w;
    drop(st);
    loop {
        match w.state.load(Ordering::Acquire) {
            DONE => break,
            WAITING => {}
            _ => {
                spin_until(&w.state);
                break;
            }
        }
        if let Err(errno) = cur.park() {
            let mut st = lock(&chan.state);
            if w.state.load(Ordering::Acquire) == WAITING {
                // Still linked (only the lock holder unlinks it): take
                // it out; the channel is as if we never waited.
                st.recv_task = ptr::null();
                if errno == libc::ENOTSUP {
                    // A task that cannot suspend: the general path
                    // blocks its thread instead.
                    return Ok(wait_locked::<Recv<T>>(chan, st, ())?);
                }
                drop(st);
                return Err(cur.failed(errno));
            }
            drop(st);
            // Granted first: the grant wins.
            spin_until(&w.state);
            break;
        }
        // Woken, or a permit left by an earlier wake: re-check.
    }
    // SAFETY: DONE, observed with acquire: unlinked, and the granter
    // is done with it.
    Ok(unsafe { (*w.msg.get()).take() })
}
