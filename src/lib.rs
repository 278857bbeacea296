// The crate page is the README, so the two cannot drift; its Rust
// examples run as doctests. The reference definitions below come first and
// therefore win over the README's own (relative file links, for GitHub and
// crates.io), sending the same links to pages inside these docs.
//! [design note]: crate::design
//! [CHANGELOG.md]: https://docs.rs/crate/monad-async/latest/source/CHANGELOG.md
//! [BENCHMARKS.md]: https://github.com/monad-async/monad-async/blob/main/BENCHMARKS.md
#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! * [`sys`]: the raw bindings (bindgen output, committed) and the atomic
//!   views of the C `_Atomic` fields.
//! * [`error`]: errno values as [`std::io::Error`], and [`JoinError`].
//! * [`executor`] and [`task`]: the safe types.
//! * [`io`]: files and sockets through the executor's io_uring.
//! * [`sync`]: task-aware locks, semaphores, notifications and channels.
//! * [`pool`]: a priority-based [`ThreadPool`] of executors, on the C
//!   work dispatcher.
//! * [`design`]: the design note, how all of it fits together.
//!
//! # Invariants of the whole crate
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

/// The design note (`docs/DESIGN.md`): executors, tasks, switchers, the
/// ring and the dispatcher; a task's states; the threading rules; the
/// layering; how this crate maps onto the C core.
pub mod design {
    #![doc = include_str!("../docs/DESIGN.md")]
}

pub use error::{ErrorExt, JoinError, RingSetupError};
pub use executor::{Executor, ExecutorBuilder, ExecutorHandle, ExecutorStats, IoStats, Switcher};
pub use pool::{PoolStats, PoolThreadStats, ThreadPool, ThreadPoolBuilder};
pub use task::{JoinHandle, Priority, TaskContext, TaskStats, TaskWaker};
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
}
