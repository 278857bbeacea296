//! Task-aware synchronisation: [`Mutex`], [`Semaphore`], [`Notify`],
//! [`oneshot`] and [`mpsc`] channels.
//!
//! Every waiting operation has one name that works from anywhere:
//!
//! * inside a task (of any [`Executor`](crate::Executor) or
//!   [`ThreadPool`](crate::ThreadPool)) it **parks the task**: the
//!   executor runs its other work meanwhile, and the wait costs no thread
//!   (a task that cannot suspend, on [`Switcher::None`](crate::Switcher::None),
//!   a thread pool's default, blocks its thread instead);
//! * on any other thread it **blocks the thread** (never call it on an
//!   executor's thread outside its tasks for something only that
//!   executor's tasks can provide: the thread would block for good);
//! * its `_async` twin (`lock_async`, `recv_async`, ...) returns a
//!   [`Future`](std::future::Future) with the same meaning, for async
//!   code on any runtime.
//!
//! The three kinds of waiters can wait on the same primitive at once.
//!
//! # Priorities
//!
//! Whatever a primitive hands out (the lock, permits, notifications,
//! room in a channel) goes to its waiters **highest priority first**, then
//! first come first served: a waiting task's priority is its CPU priority
//! when it starts waiting; a waiting thread or future counts as
//! [`Normal`](crate::Priority::Normal). It is handed over directly (the
//! waiter does not retry), so a later caller cannot take it first.
//!
//! # Errors and cancellation
//!
//! A task cancelled while it waits returns `ECANCELED` (any error of its
//! park, such as a deadline, ends the wait the same way) and the primitive
//! is as if it had never waited: no permit, message or wake-up is lost. If
//! what it waited for was handed to it first, that wins: the operation
//! succeeds and the task's next suspension point reports the cancel (as
//! [`TaskContext::park`](crate::TaskContext::park) does). Async code
//! cancels by dropping the future: one dropped after it was handed
//! something passes it on. Closing follows tokio: a receiver sees the end
//! of the stream once every sender is gone and the buffer is drained; a
//! send to a dropped or closed receiver fails with `EPIPE` and gives the
//! message back.
//!
//! ```
//! use monad_async::sync::{mpsc, Mutex};
//! use monad_async::{Executor, Priority};
//! use std::sync::Arc;
//!
//! let ex = Executor::new()?;
//! let total = Arc::new(Mutex::new(0u64));
//! let (tx, mut rx) = mpsc::channel(16);
//! let t = total.clone();
//! let consumer = ex.spawn(Priority::High, move |_cx| {
//!     while let Some(v) = rx.recv()? {
//!         *t.lock()? += v;
//!     }
//!     Ok::<_, std::io::Error>(())
//! });
//! // A plain thread produces; the task parks while the channel is empty.
//! let producer = std::thread::spawn(move || {
//!     for v in 1..=100 {
//!         tx.send(v).unwrap();
//!     }
//! });
//! consumer.join().unwrap()?;
//! producer.join().unwrap();
//! assert_eq!(*total.lock()?, 5050);
//! # Ok::<(), std::io::Error>(())
//! ```

mod inherit;
pub mod mpsc;
mod mutex;
mod notify;
pub mod oneshot;
mod semaphore;
mod spin;
mod wait_queue;

pub use mutex::{Mutex, MutexGuard};
pub use notify::Notify;
pub use semaphore::{Semaphore, SemaphorePermit};

// Thread-safety of every public type, checked at compile time: shared
// parts need `T: Send` (a value crosses to whoever receives or locks).
mod assertions {
    use super::*;
    use static_assertions::{assert_impl_all, assert_not_impl_any};
    use std::rc::Rc;

    assert_impl_all!(Mutex<u32>: Send, Sync);
    assert_impl_all!(Mutex<std::cell::Cell<u32>>: Send, Sync);
    assert_not_impl_any!(Mutex<Rc<u32>>: Send, Sync);
    assert_impl_all!(MutexGuard<'static, u32>: Send, Sync);
    assert_not_impl_any!(MutexGuard<'static, std::cell::Cell<u32>>: Sync);
    assert_impl_all!(Semaphore: Send, Sync);
    assert_impl_all!(SemaphorePermit<'static>: Send, Sync);
    assert_impl_all!(Notify: Send, Sync);
    assert_impl_all!(oneshot::Sender<u32>: Send, Sync);
    assert_impl_all!(oneshot::Receiver<u32>: Send, Sync);
    assert_not_impl_any!(oneshot::Sender<Rc<u32>>: Send, Sync);
    assert_impl_all!(mpsc::Sender<u32>: Send, Sync, Clone);
    assert_impl_all!(mpsc::Receiver<u32>: Send, Sync);
    assert_not_impl_any!(mpsc::Sender<Rc<u32>>: Send, Sync);
    assert_not_impl_any!(mpsc::Receiver<Rc<u32>>: Send, Sync);
    assert_impl_all!(mpsc::SendError<u32>: Send, Sync, std::error::Error);
}
