//! Changing the CPU priority of work that is already running: what a lock
//! needs for priority inheritance (a Low task holding a lock that a High
//! task waits for runs at High until it releases it).
//!
//! # Invariants
//!
//! * A change names one piece of work (the token of a [`TaskWaker`], or the
//!   running task's own): once that work is over it does nothing, and it
//!   is never applied to later work of the same pooled task (the C side
//!   checks the token where it applies the change).
//! * `priority.cpu` is written only on the executor's thread (by the C
//!   side, when it applies a change), so [`TaskContext::priority`] reads it
//!   without a race; no Rust code writes it while the task is attached.
//! * From another thread the change goes through the executor's inbox; a
//!   [`TaskWaker`] holds no executor alive, so it calls C only while the
//!   executor is known alive (its `Shared` guard), as `wake` does.

use super::{Priority, TaskContext, TaskWaker};
use crate::sys;

impl TaskWaker {
    /// Changes the CPU priority of the work this waker names to
    /// `priority`, for the rest of that work, wherever it is: on a ready
    /// queue it moves to the back of the new level's queue (a change to
    /// the level it has keeps its place); running, parked, sleeping or
    /// waiting for I/O, the new level applies the next time it is queued.
    /// From any thread or task: from the executor's own thread (inside a
    /// task) at once, with no lock, allocation or system call; from
    /// another thread through the executor's inbox, applied before its
    /// next slice (waking it if it sleeps). Changes made while one is on
    /// its way replace its level: the last one made wins.
    ///
    /// True if the change reached live work; false if the work is over
    /// (nothing changes, and later work of the task is never affected), or
    /// the executor is gone.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::sync::mpsc;
    ///
    /// let ex = Executor::new()?;
    /// let (tx, rx) = mpsc::channel();
    /// let low = ex.spawn(Priority::Low, move |cx| {
    ///     tx.send(cx.waker()).unwrap();
    ///     cx.park()?; // until the raise below has been made
    ///     Ok::<_, std::io::Error>(cx.priority())
    /// });
    /// ex.run(1, None)?; // it starts, and parks
    /// let waker = rx.recv().unwrap();
    /// // From another thread: raise it, then wake it.
    /// let w = waker.clone();
    /// std::thread::spawn(move || {
    ///     assert!(w.set_priority(Priority::High));
    ///     w.wake();
    /// })
    /// .join()
    /// .unwrap();
    /// assert_eq!(low.join().unwrap()?, Priority::High);
    /// assert!(!waker.set_priority(Priority::Low)); // that work is over
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_priority(&self, priority: Priority) -> bool {
        let (task, token) = (self.task, self.token);
        self.home
            .call_on_task(|| {
                // SAFETY: `call_on_task` runs this only while the executor,
                // and so its pooled task `task`, is alive; the C call is
                // thread-safe and refuses a stale token (ENOENT).
                unsafe { sys::monad_async_task_set_cpu_priority(task, token, priority.to_sys()) }
            })
            .is_some_and(|r| r.error == 0)
    }
}

impl TaskContext<'_> {
    /// Changes this task's own CPU priority for the rest of its current
    /// piece of work. It takes effect the next time the task is queued (its
    /// next yield, say, or when its sleep, park or I/O ends): raised, it
    /// resumes ahead of the lower levels' work; lowered, behind it.
    /// [`priority`](TaskContext::priority) reads the new level at once.
    /// Its I/O priority is unchanged (see
    /// [`set_io_priority`](TaskContext::set_io_priority)).
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let ex = Executor::new()?;
    /// let order = Rc::new(RefCell::new(Vec::new()));
    /// let o = order.clone();
    /// ex.spawn(Priority::Normal, move |cx| {
    ///     cx.set_priority(Priority::High);
    ///     assert_eq!(cx.priority(), Priority::High);
    ///     cx.yield_now().unwrap(); // resumes ahead of the other task
    ///     o.borrow_mut().push("raised");
    /// });
    /// let o = order.clone();
    /// ex.spawn(Priority::Normal, move |cx| {
    ///     cx.yield_now().unwrap();
    ///     o.borrow_mut().push("normal");
    /// });
    /// ex.run_until_idle()?;
    /// assert_eq!(*order.borrow(), ["raised", "normal"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_priority(&mut self, priority: Priority) {
        let mut token = 0u64;
        // SAFETY: self.task is the task running on this thread: live and
        // attached, so the token names its current work and the change
        // applies at once, on this thread.
        let r = unsafe {
            let r = sys::monad_async_task_wake_token(self.task, &mut token);
            debug_assert_eq!(r.error, 0);
            sys::monad_async_task_set_cpu_priority(self.task, token, priority.to_sys())
        };
        debug_assert_eq!(r.error, 0, "changing the running task's own priority");
    }
}
