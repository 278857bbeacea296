//! Priority inheritance for [`Mutex`](super::Mutex): the holder of a lock
//! runs at the level of the highest waiter until it unlocks.
//!
//! # The rule
//!
//! * When a waiter queues (a task at its priority; a thread or a future
//!   counts as Normal) and the holder is a task running below that level,
//!   the holder is raised to it, at once (before the waiter parks).
//! * When the holder unlocks, it goes back to the level it had when it
//!   locked this mutex, if this mutex raised it and that raise is still
//!   in effect; if something raised it further since (a waiter on another
//!   mutex it holds), that later raise stands, and that mutex's unlock
//!   undoes it. So with nested locks released in the reverse order they
//!   were taken (the usual discipline), the holder ends at the level it
//!   started at. One imprecision: while it holds an outer lock whose
//!   waiter raised it, an inner lock that raised it higher takes it back
//!   to its own starting level at its unlock, below the outer waiter's,
//!   until the outer unlock (a raise is undone, never re-derived from the
//!   other locks still held).
//! * A raise lasts until the unlock, even if the waiter that caused it
//!   gives up (cancelled) meanwhile.
//! * Only tasks of an [`Executor`](crate::Executor) can be raised: a
//!   thread, a future or a thread pool's task holding the lock keeps its
//!   level.
//!
//! # Invariants
//!
//! * A [`Holder`] is only read and written under its mutex's lock, and so
//!   are the priority changes it makes: a raise and the restore at unlock
//!   are issued in that order, and the C side applies changes in the order
//!   they are made ("the last one made wins").
//! * A holder keeps its executor's shared part alive (an `Arc`), and
//!   changes a task's priority only through
//!   [`Shared::call_on_task`](crate::executor::Shared), which makes the
//!   call only while the executor is alive; the token keeps a change from
//!   reaching later work of the same pooled task.

use crate::executor::Shared;
use crate::task::Current;
use crate::{sys, Priority};
use std::sync::Arc;

/// The task holding a mutex, and what this mutex did to its priority.
pub(crate) struct Holder {
    task: sys::monad_async_task,
    token: u64,
    home: Arc<Shared>,
    /// Its level when it took the lock.
    base: Priority,
    /// The level this mutex raised it to.
    raised: Option<Priority>,
}

// SAFETY: the task pointer is only passed to the thread-safe C priority
// change (and read on the executor's own thread), under `call_on_task`.
unsafe impl Send for Holder {}

/// Lower is more urgent.
fn rank(p: Priority) -> u8 {
    match p {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

impl Holder {
    /// The running task, taking the lock now; `None` for a thread pool's
    /// task.
    pub(crate) fn of_current(cur: &Current) -> Option<Holder> {
        let home = cur.home();
        if home.is_null() {
            return None;
        }
        // SAFETY: `home` is the data pointer of the `Arc<Shared>` its
        // executor's owner-thread state holds, alive while this task runs.
        let home = unsafe {
            Arc::increment_strong_count(home);
            Arc::from_raw(home)
        };
        Some(Holder {
            task: cur.raw(),
            token: cur.token(),
            home,
            base: cur.priority(),
            raised: None,
        })
    }

    /// The task of a waiter granted the lock (from
    /// [`WaitQueue::front_task`](super::wait_queue::WaitQueue::front_task)),
    /// while it is still queued; `None` for a thread pool's task.
    ///
    /// # Safety
    /// `home` is null or the shared part of the live executor of `task`,
    /// a waiting task (which keeps its executor alive).
    pub(crate) unsafe fn of_waiter(
        task: sys::monad_async_task,
        token: u64,
        home: *const Shared,
        level: Priority,
    ) -> Option<Holder> {
        if home.is_null() {
            return None;
        }
        // SAFETY: as in of_current: the pointer of a live Arc<Shared>.
        let home = unsafe {
            Arc::increment_strong_count(home);
            Arc::from_raw(home)
        };
        Some(Holder {
            task,
            token,
            home,
            base: level,
            raised: None,
        })
    }

    /// Its level now, where it can be read (on its executor's thread);
    /// else what this mutex knows.
    fn level(&self) -> Priority {
        if self.home.on_owner_thread() {
            let task = self.task;
            // SAFETY: on the owner thread the executor is alive unless
            // closed (call_on_task checks), and `priority.cpu` is only
            // written on this thread; the pooled task's memory is live.
            let now = self
                .home
                .call_on_task(|| Priority::from_sys(unsafe { (*task).priority.cpu }));
            if let Some(p) = now {
                return p;
            }
        }
        self.raised.unwrap_or(self.base)
    }

    /// Sets its level; false if its work is over or its executor gone.
    fn set(&self, p: Priority) -> bool {
        let (task, token) = (self.task, self.token);
        self.home
            .call_on_task(|| {
                // SAFETY: call_on_task runs this only while the executor,
                // and so its pooled task, is alive; the call is
                // thread-safe and refuses a stale token.
                unsafe { sys::monad_async_task_set_cpu_priority(task, token, p.to_sys()) }
            })
            .is_some_and(|r| r.error == 0)
    }

    /// A waiter at `p` queued: raises the holder to `p` if it runs below.
    pub(crate) fn raise(&mut self, p: Priority) {
        let now = self.level();
        if rank(now) <= rank(p) {
            return;
        }
        if self.set(p) {
            self.raised = Some(p);
        }
    }

    /// The holder unlocks: back to its level at lock time, if this
    /// mutex's raise still stands (not overtaken by another mutex's).
    pub(crate) fn restore(self) {
        let Some(to) = self.raised else {
            return;
        };
        if self.level() == to {
            self.set(self.base);
        }
    }
}
