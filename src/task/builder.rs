//! [`TaskBuilder`]: spawn options beyond the priority (a name), in the
//! builder style, for executors, tasks and thread pools alike.
//!
//! # Invariants
//!
//! * A name costs nothing to a spawn without one: it lives in the task's
//!   Rust slot (set between the bind and the attach), not in C, and the
//!   plain `spawn` paths never touch it but to drop a previous work's.
//! * A builder's target matches its type parameter (`Target::Local` for
//!   `Executor`, `Remote` for `ExecutorHandle`, `Pool` for `ThreadPool`):
//!   only the typed constructors make one, so the other arms of each
//!   `spawn` are unreachable.
//! * The builder spawns exactly as the plain `spawn` of its target does
//!   (same paths, same bounds): `Executor`/`TaskContext` closures need no
//!   `Send`, a pool's do.

use super::{JoinHandle, Priority, TaskContext};
use crate::executor::{Executor, ExecutorHandle, Local};
use crate::pool::ThreadPool;
use std::fmt;
use std::io;
use std::marker::PhantomData;

/// Spawn options: a [name](TaskBuilder::name) and a
/// [priority](TaskBuilder::priority), then
/// [`spawn`](TaskBuilder::spawn). From [`Executor::build_task`],
/// [`TaskContext::build_task`] (both `TaskBuilder<'_, Executor>`),
/// [`ExecutorHandle::build_task`] (`TaskBuilder<'_, ExecutorHandle>`, from
/// any thread: its `spawn` returns a `Result`, as
/// [`ExecutorHandle::spawn`] does) and [`ThreadPool::build_task`]
/// (`TaskBuilder<'_, ThreadPool>`).
///
/// The name shows in the handle's and the context's `Debug`, in
/// [`JoinHandle::name`] and [`TaskContext::name`], and in the message of
/// a panic re-raised by `join` (`task 'conn-42' (id 17) panicked: ...`).
///
/// ```
/// use monad_async::{Executor, Priority};
///
/// let ex = Executor::new()?;
/// let h = ex
///     .build_task()
///     .name("conn-42")
///     .priority(Priority::High)
///     .spawn(|cx| format!("{} at {:?}", cx.name().unwrap(), cx.priority()));
/// assert_eq!(h.name(), Some("conn-42"));
/// assert_eq!(h.join().unwrap(), "conn-42 at High");
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "a TaskBuilder does nothing until spawn is called"]
pub struct TaskBuilder<'a, S> {
    target: Target<'a>,
    priority: Priority,
    name: Option<Box<str>>,
    _spawner: PhantomData<&'a S>,
}

/// Where the task goes.
enum Target<'a> {
    /// An executor's owner-thread state; `None` from a thread pool's
    /// task, which has none (its spawn fails with `ENOTSUP`).
    Local(Option<&'a Local>),
    Pool(&'a ThreadPool),
    Remote(&'a ExecutorHandle),
}

impl<'a, S> TaskBuilder<'a, S> {
    fn with(target: Target<'a>) -> Self {
        TaskBuilder {
            target,
            priority: Priority::Normal,
            name: None,
            _spawner: PhantomData,
        }
    }

    /// Names the task: a label for logs, `Debug` output and panic
    /// messages (it need not be unique). Costs one allocation, at the
    /// spawn.
    ///
    /// ```
    /// let ex = monad_async::Executor::new()?;
    /// let h = ex.build_task().name(format!("conn-{}", 42)).spawn(|_cx| ());
    /// assert_eq!(h.name(), Some("conn-42"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<Box<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The task's priority; [`Priority::Normal`] if not set.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    ///
    /// let ex = Executor::new()?;
    /// let h = ex.build_task().priority(Priority::Low).spawn(|cx| cx.priority());
    /// assert_eq!(h.join().unwrap(), Priority::Low);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

impl<'a> TaskBuilder<'a, Executor> {
    pub(crate) fn local(local: Option<&'a Local>) -> Self {
        Self::with(Target::Local(local))
    }

    /// As [`Executor::spawn`] (and [`TaskContext::spawn`]) with these
    /// options.
    ///
    /// # Panics
    ///
    /// When the task cannot be spawned; see
    /// [`try_spawn`](TaskBuilder::try_spawn).
    ///
    /// ```
    /// let ex = monad_async::Executor::new()?;
    /// assert_eq!(ex.build_task().name("six").spawn(|_cx| 6).join().unwrap(), 6);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
        T: 'static,
    {
        match self.try_spawn(f) {
            Ok(h) => h,
            Err(err) => panic!("monad_async: failed to spawn a task: {err}"),
        }
    }

    /// As [`spawn`](TaskBuilder::spawn), returning the error instead.
    ///
    /// # Errors
    ///
    /// As [`Executor::try_spawn`] and [`TaskContext::spawn`] (`ENOTSUP`
    /// from a thread pool's task).
    ///
    /// ```
    /// let ex = monad_async::Executor::new()?;
    /// let h = ex.build_task().name("one").try_spawn(|_cx| 1)?;
    /// assert_eq!(h.join().unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + 'static,
        T: 'static,
    {
        match self.target {
            Target::Local(Some(local)) => local.try_spawn_with(self.priority, self.name, f),
            Target::Local(None) => Err(crate::error::errno(libc::ENOTSUP)),
            Target::Pool(_) | Target::Remote(_) => {
                unreachable!("a TaskBuilder<Executor> targets an executor's own thread")
            }
        }
    }
}

impl<'a> TaskBuilder<'a, ThreadPool> {
    pub(crate) fn pool(pool: &'a ThreadPool) -> Self {
        Self::with(Target::Pool(pool))
    }

    /// As [`ThreadPool::spawn`] with these options.
    ///
    /// # Panics
    ///
    /// As [`ThreadPool::spawn`].
    ///
    /// ```
    /// use monad_async::{Priority, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().threads(1).build()?;
    /// let h = pool.build_task().name("crc").priority(Priority::High).spawn(|cx| cx.id());
    /// let id = h.id();
    /// assert_eq!(h.join().unwrap(), id);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.try_spawn(f) {
            Ok(h) => h,
            Err(err) => panic!("monad_async: failed to spawn onto the thread pool: {err}"),
        }
    }

    /// As [`ThreadPool::try_spawn`] with these options.
    ///
    /// # Errors
    ///
    /// As [`ThreadPool::try_spawn`].
    ///
    /// ```
    /// let pool = monad_async::ThreadPool::builder().threads(1).build()?;
    /// let h = pool.build_task().name("two").try_spawn(|_cx| 2)?;
    /// assert_eq!(h.join().unwrap(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.target {
            Target::Pool(pool) => pool.submit_named(self.priority, self.name, f),
            Target::Local(_) | Target::Remote(_) => {
                unreachable!("a TaskBuilder<ThreadPool> targets a pool")
            }
        }
    }
}

impl<'a> TaskBuilder<'a, ExecutorHandle> {
    pub(crate) fn remote(handle: &'a ExecutorHandle) -> Self {
        Self::with(Target::Remote(handle))
    }

    /// As [`ExecutorHandle::spawn`] with these options, from any thread.
    ///
    /// # Errors
    ///
    /// As [`ExecutorHandle::spawn`].
    ///
    /// ```
    /// let ex = monad_async::Executor::new()?;
    /// let h = ex.handle().build_task().name("r").spawn(|_cx| 3)?;
    /// assert_eq!(h.join().unwrap(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce(&mut TaskContext<'_>) -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.target {
            Target::Remote(handle) => handle.spawn_with(self.priority, self.name, f),
            Target::Local(_) | Target::Pool(_) => {
                unreachable!("a TaskBuilder<ExecutorHandle> targets an executor handle")
            }
        }
    }
}

impl<S> fmt::Debug for TaskBuilder<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("name", &self.name)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}
