//! Cancelling, on the owner thread, a task another thread attached that
//! the executor has not yet taken from its inbox.
//!
//! Per task.h, on the executor's own thread "a task pending launch is
//! unlinked and never runs, its result becomes ECANCELED and cancel
//! returns success"; such a task is pending launch (attach set ATTACHED |
//! PENDING_LAUNCH), whichever path it came by. Kept in its own test binary
//! because a failure here can corrupt the executor's queues.

use monad_async::{Executor, Priority};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn cancel_of_a_remotely_spawned_pending_task() {
    let ex = Executor::new().unwrap();
    // Tasks already queued on the owner thread at the same priority.
    let local: Vec<_> = (0..3)
        .map(|i| ex.spawn(Priority::Normal, move |_cx| i))
        .collect();

    let ran = Arc::new(AtomicBool::new(false));
    let handle = ex.handle();
    let r = ran.clone();
    let remote = std::thread::spawn(move || {
        handle
            .spawn(Priority::Normal, move |_cx| r.store(true, Ordering::SeqCst))
            .unwrap()
    })
    .join()
    .unwrap();

    assert!(ex.cancel(&remote).unwrap());
    ex.run_until_idle().unwrap();
    assert!(remote.is_finished());
    assert!(remote.join().unwrap_err().is_cancelled());
    assert!(
        !ran.load(Ordering::SeqCst),
        "a cancelled pending task must never run"
    );
    // The tasks queued before it are unaffected.
    for (i, h) in local.into_iter().enumerate() {
        assert!(h.is_finished(), "local task {i} was lost");
        assert_eq!(h.join().unwrap(), i);
    }
    let s = ex.stats();
    assert_eq!((s.exited, s.tasks_attached), (4, 0));
}
