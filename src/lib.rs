//! Safe Rust bindings to **monad-async**, a priority-based task executor
//! written in C: tasks with their own stacks, three priority levels,
//! cross-thread spawning, and CPU-tick time tracking throughout.
//!
//! ```
//! use monad_async::{Executor, Priority};
//! use std::time::Duration;
//!
//! let ex = Executor::new()?;
//! let low = ex.spawn(Priority::Low, |_cx| "low");
//! let high = ex.spawn(Priority::High, |cx| {
//!     cx.sleep(Duration::from_millis(1))?; // suspends this task only
//!     Ok::<_, std::io::Error>("high")
//! });
//! ex.run_until_idle()?;
//! assert_eq!(low.join().unwrap(), "low");
//! assert_eq!(high.join().unwrap()?, "high");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Layers
//!
//! * [`sys`]: the raw bindings (bindgen output, committed) and the atomic
//!   views of the C `_Atomic` fields.
//! * [`error`]: errno values as [`std::io::Error`], and [`JoinError`].
//! * [`executor`] and [`task`]: the safe types.
//! * [`io`]: files and sockets through the executor's io_uring.
//! * [`pool`]: a priority-based [`ThreadPool`] of executors, on the C
//!   work dispatcher.
//!
//! # Invariants
//!
//! * An [`Executor`] belongs to the thread that built it (it is neither
//!   `Send` nor `Sync`); other threads reach it only through an
//!   [`ExecutorHandle`], which never touches a destroyed executor.
//! * A task's closure runs on the task's own stack, on the executor's
//!   thread; a panic in it is caught there and handed to whoever joins.
//! * Every C error is a positive errno value, surfaced as
//!   [`std::io::Error::from_raw_os_error`]; [`ErrorExt`] says what the
//!   ones of this crate mean (cancelled, timed out, shut down).
//! * Unwinding must be enabled (`panic = "unwind"`, the default) for
//!   panics to reach [`JoinHandle::join`]; with `panic = "abort"` a
//!   panicking task aborts the process.

#![warn(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod error;
pub mod executor;
pub mod io;
mod options;
pub mod pool;
pub mod sync;
pub mod sys;
pub mod task;
mod ticks;

pub use error::{ErrorExt, JoinError, RingSetupError};
pub use executor::{Executor, ExecutorBuilder, ExecutorHandle, ExecutorStats, IoStats, Switcher};
pub use pool::{PoolStats, PoolThreadStats, ThreadPool, ThreadPoolBuilder};
pub use task::{JoinHandle, Priority, TaskBuilder, TaskContext, TaskStats, TaskWaker};
pub use ticks::{ticks_now, ticks_per_second};

// Thread-safety of every public type, checked at compile time.
mod assertions {
    use super::*;
    use static_assertions::{assert_impl_all, assert_not_impl_any};
    use std::rc::Rc;

    assert_not_impl_any!(Executor: Send, Sync);
    assert_not_impl_any!(TaskContext<'static>: Send, Sync);
    assert_impl_all!(ExecutorHandle: Send, Sync, Clone);
    assert_impl_all!(JoinHandle<u32>: Send, Sync);
    assert_not_impl_any!(JoinHandle<Rc<u32>>: Send);
    assert_impl_all!(JoinHandle<Rc<u32>>: Sync);
    assert_impl_all!(JoinHandle<std::marker::PhantomPinned>: Unpin);
    assert_impl_all!(JoinHandle<u32>: std::future::Future<Output = Result<u32, JoinError>>, Unpin);
    assert_impl_all!(JoinError: Send, Sync, std::error::Error);
    assert_impl_all!(error::Describe<'static>: Send, Sync, Copy, std::fmt::Display);
    assert_impl_all!(RingSetupError: Send, Sync, Clone, std::error::Error);
    assert_impl_all!(ExecutorBuilder: Send, Sync, Clone);
    assert_impl_all!(ExecutorStats: Send, Sync, Copy);
    assert_impl_all!(TaskStats: Send, Sync, Copy);
    assert_impl_all!(Priority: Send, Sync, Copy);
    assert_impl_all!(Switcher: Send, Sync, Copy);
    assert_impl_all!(io::File: Send, Sync);
    assert_impl_all!(io::TcpListener: Send, Sync);
    assert_impl_all!(io::TcpStream: Send, Sync);
    assert_impl_all!(io::UdpSocket: Send, Sync);
    assert_impl_all!(IoStats: Send, Sync, Copy);
    // Pools and their buffers belong to the executor's thread.
    assert_not_impl_any!(io::BufferPool: Send, Sync);
    assert_not_impl_any!(io::Buffer<'static>: Send, Sync);
    assert_not_impl_any!(io::BufferRing: Send, Sync);
    assert_not_impl_any!(io::ProvidedBuffer<'static>: Send, Sync);
    assert_impl_all!(ThreadPool: Send, Sync);
    assert_impl_all!(ThreadPoolBuilder: Send, Sync, Clone);
    assert_impl_all!(PoolStats: Send, Sync, Copy);
    assert_impl_all!(PoolThreadStats: Send, Sync, Copy);
    assert_impl_all!(TaskWaker: Send, Sync, Clone);
    // A builder is made and spent on the spot, on one thread: it may
    // borrow an executor's owner-thread state, whatever its target.
    assert_not_impl_any!(TaskBuilder<'static, Executor>: Send, Sync);
    assert_not_impl_any!(TaskBuilder<'static, ExecutorHandle>: Send, Sync);
    assert_not_impl_any!(TaskBuilder<'static, ThreadPool>: Send, Sync);
}
