//! The guard that keeps a thread pool's C tasks alive while another
//! thread makes a C call on one of them: a [`TaskWaker`](crate::TaskWaker)'s
//! wake or priority change, which may come at any time, from anywhere,
//! long after the work it names is over.
//!
//! # Invariants
//!
//! * [`PoolAlive::call`] runs its closure only while the pool's tasks are
//!   alive: the pool's drop [`close`](PoolAlive::close)s the guard, which
//!   waits for every call in progress, before it destroys any task.
//! * A call and the close form a Dekker pair (the caller announces itself,
//!   then reads `closed`; the close sets `closed`, then reads the count),
//!   both sequentially consistent: one of the two sees the other.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct PoolAlive {
    in_flight: AtomicUsize,
    closed: AtomicBool,
}

impl PoolAlive {
    /// Runs `f` (a thread-safe C call on one of the pool's tasks) while
    /// the tasks are guaranteed alive; `None` once the pool is being
    /// dropped. Any thread.
    pub(crate) fn call<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let r = if self.closed.load(Ordering::SeqCst) {
            None
        } else {
            Some(f())
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// Refuses every later call and waits for those in progress (each is
    /// one C call: a few atomic operations, or an inbox push and a
    /// wake-up).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        while self.in_flight.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }
}
