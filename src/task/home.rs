//! Where a [`TaskWaker`](super::TaskWaker) reaches its task from: the
//! executor's shared part, or a thread pool's liveness guard.
//!
//! # Invariants
//!
//! * A C call on a task through a [`WakeHome`] is made only while that
//!   home guarantees the task alive (the executor's in-flight guard, the
//!   pool's [`PoolAlive`]); once either is being dropped the call is
//!   skipped and reported as "nothing happened".

use crate::executor::Shared;
use crate::pool::PoolAlive;
use crate::sys;
use std::sync::Arc;

/// What keeps a waker's task alive for a call (owned: a [`TaskWaker`](super::TaskWaker) may
/// outlive its work and its executor).
#[derive(Clone)]
pub(crate) enum WakeHome {
    Executor(Arc<Shared>),
    Pool(Arc<PoolAlive>),
}

/// A [`WakeHome`] borrowed from the running task's executor or slot, for
/// the stack record of [`TaskContext::block_on`](super::TaskContext::block_on).
#[derive(Clone, Copy)]
pub(crate) enum HomeRef<'a> {
    Executor(&'a Arc<Shared>),
    Pool(&'a Arc<PoolAlive>),
}

impl HomeRef<'_> {
    pub(crate) fn to_owned(self) -> WakeHome {
        match self {
            HomeRef::Executor(s) => WakeHome::Executor(Arc::clone(s)),
            HomeRef::Pool(p) => WakeHome::Pool(Arc::clone(p)),
        }
    }

    /// As [`WakeHome::wake_task`].
    pub(crate) fn wake_task(self, task: sys::monad_async_task, token: u64) -> bool {
        match self {
            HomeRef::Executor(s) => s.wake_task(task, token),
            HomeRef::Pool(p) => pool_wake(p, task, token),
        }
    }
}

/// Wakes work `token` of a pool task while the pool's tasks are alive.
fn pool_wake(alive: &PoolAlive, task: sys::monad_async_task, token: u64) -> bool {
    alive
        .call(|| {
            // SAFETY: `call` runs this only while the pool's tasks are
            // alive; the wake is thread-safe and checks the token.
            let r = unsafe { sys::monad_async_task_wake(task, token) };
            r.error == 0 && r.value == 1
        })
        .unwrap_or(false)
}

impl WakeHome {
    /// Wakes the parked work `token` of `task`: true if it resumed it.
    pub(crate) fn wake_task(&self, task: sys::monad_async_task, token: u64) -> bool {
        match self {
            WakeHome::Executor(s) => s.wake_task(task, token),
            WakeHome::Pool(p) => pool_wake(p, task, token),
        }
    }

    /// Runs `f`, a thread-safe C call on the task, while the task is
    /// guaranteed alive; `None` once its executor or pool is being
    /// dropped.
    pub(crate) fn call_on_task<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        match self {
            WakeHome::Executor(s) => s.call_on_task(f),
            WakeHome::Pool(p) => p.call(f),
        }
    }
}
