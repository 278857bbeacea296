// The crate page is the README, so the two cannot drift; its Rust
// examples run as doctests. The reference definitions below come first and
// therefore win over the README's own (relative file links, for GitHub and
// crates.io), sending the same links to pages inside these docs.
//! [design note]: crate::design
//! [CHANGELOG.md]: https://docs.rs/crate/monad-async/latest/source/CHANGELOG.md
//! [BENCHMARKS.md]: https://github.com/monad-async/monad-async/blob/main/BENCHMARKS.md
#![doc = include_str!("../README.md")]
//!
//! # A server
//!
//! One task per connection, std `BufRead` and `Write` on the ring
//! ([`io::BufStream`]), and a graceful shutdown: cancelling the accept
//! loop stops new connections, and the open ones end when their clients
//! hang up. `examples/kv_server.rs` adds priorities, an idle reaper,
//! signals and closing idle connections at shutdown.
//!
//! ```
//! use monad_async::io::{BufStream, TcpListener, TcpStream};
//! use monad_async::{Executor, Priority};
//! use std::io::{BufRead, Write};
//!
//! let ex = Executor::new()?;
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = ex.spawn(Priority::High, move |cx| -> std::io::Result<()> {
//!     loop {
//!         let (conn, _) = listener.accept(cx)?; // ECANCELED once stopped
//!         cx.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
//!             let mut conn = BufStream::new(conn);
//!             let mut line = String::new();
//!             while conn.io(cx).read_line(&mut line)? > 0 {
//!                 conn.io(cx).write_all(line.to_uppercase().as_bytes())?;
//!                 line.clear();
//!             }
//!             Ok(()) // the client hung up
//!         })?;
//!     }
//! });
//! let clients: Vec<_> = (0..100)
//!     .map(|i| {
//!         ex.spawn(Priority::Normal, move |cx| -> std::io::Result<String> {
//!             let mut s = BufStream::new(TcpStream::connect(cx, addr)?);
//!             writeln!(s.io(cx), "hello {i}")?;
//!             let mut reply = String::new();
//!             s.io(cx).read_line(&mut reply)?;
//!             Ok(reply)
//!         })
//!     })
//!     .collect();
//! for (i, c) in clients.into_iter().enumerate() {
//!     assert_eq!(c.join().unwrap()?, format!("HELLO {i}\n"));
//! }
//! server.cancel()?; // graceful shutdown: no new connections...
//! assert!(server.join().unwrap_err().is_cancelled());
//! ex.run_until_idle()?; // ...and the open ones have ended
//! # Ok::<(), std::io::Error>(())
//! ```
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

mod dump;
pub mod error;
pub mod executor;
pub mod io;
mod latency;
mod options;
pub mod pool;
pub mod sync;
pub mod sys;
pub mod task;
mod ticks;
#[cfg(feature = "tracing")]
mod trace;

pub use dump::{Activity, Dump, IoWait, TaskInfo};
/// The design note (`docs/DESIGN.md`): executors, tasks, switchers, the
/// ring and the dispatcher; a task's states; the threading rules; the
/// layering; how this crate maps onto the C core.
pub mod design {
    #![doc = include_str!("../docs/DESIGN.md")]
}

pub use error::{ErrorExt, JoinError, RingSetupError};
pub use executor::{Executor, ExecutorBuilder, ExecutorHandle, ExecutorStats, IoStats, Switcher};
pub use latency::{Histogram, LatencyStats};
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
    assert_impl_all!(TaskStats: Send, Sync, Clone);
    assert_impl_all!(Priority: Send, Sync, Copy);
    assert_impl_all!(Switcher: Send, Sync, Copy);
    assert_impl_all!(io::File: Send, Sync);
    assert_impl_all!(io::TcpListener: Send, Sync);
    assert_impl_all!(io::TcpStream: Send, Sync);
    assert_impl_all!(io::UdpSocket: Send, Sync);
    // Split halves go to other tasks, executors, threads; the std
    // adapters borrow a task's context, so they stay in the task.
    assert_impl_all!(io::OwnedReadHalf: Send, Sync);
    assert_impl_all!(io::OwnedWriteHalf: Send, Sync);
    assert_impl_all!(io::ReuniteError: Send, Sync, std::error::Error);
    assert_impl_all!(io::BufStream<io::TcpStream>: Send, Sync);
    assert_not_impl_any!(io::Io<'static, 'static, io::TcpStream>: Send, Sync);
    assert_not_impl_any!(io::BufIo<'static, 'static, io::TcpStream>: Send, Sync);
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
