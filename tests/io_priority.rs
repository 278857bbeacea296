//! I/O priority from Rust: `TaskContext::set_io_priority` maps to the C
//! task's `priority.io`. With the in-flight guard contended (a limit of 4,
//! 64 tasks), the operations of high I/O priority tasks are granted
//! slots, and so complete, before those of low ones, whatever the tasks'
//! (equal) CPU priority and spawn order. (The guard is set explicitly: a
//! full submission queue alone no longer makes a task wait.)

use monad_async::{Executor, Priority};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

#[test]
fn high_io_priority_first_when_contended() -> io::Result<()> {
    let ex = Executor::builder()
        .ring_entries(4)
        .io_inflight_limit(4)
        .build()?;
    let order = Rc::new(RefCell::new(Vec::new()));
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let order = order.clone();
            ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
                let p = if i % 2 == 0 {
                    Priority::Low
                } else {
                    Priority::High
                };
                cx.set_io_priority(p);
                assert_eq!(cx.io_priority(), p);
                assert_eq!(cx.priority(), Priority::Normal);
                monad_async::io::nop(cx)?;
                order.borrow_mut().push((i, p));
                Ok(())
            })
        })
        .collect();
    ex.run_until_idle()?;
    for h in handles {
        h.join().unwrap()?;
    }
    let order = order.borrow();
    assert_eq!(order.len(), 64);
    // The first few took free slots without waiting; from then on every
    // high one completes before any low one.
    let waited = &order[8..];
    let last_high = waited.iter().rposition(|&(_, p)| p == Priority::High);
    let first_low = waited.iter().position(|&(_, p)| p == Priority::Low);
    if let (Some(h), Some(l)) = (last_high, first_low) {
        assert!(
            h < l,
            "a low-priority operation overtook a high one: {order:?}"
        );
    }
    // And in spawn order within a level.
    for p in [Priority::High, Priority::Low] {
        let ids: Vec<_> = waited.iter().filter(|e| e.1 == p).map(|e| e.0).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{p:?}: {ids:?}");
    }
    let io = ex.stats().io;
    assert_eq!((io.sq_entries, io.inflight_limit), (4, 4));
    assert!(io.sqe_waits >= 32, "{io:?}");
    assert_eq!((io.submitted, io.completed, io.in_flight), (64, 64, 0));
    Ok(())
}

#[test]
fn spawn_priority_is_the_initial_io_priority() -> io::Result<()> {
    let ex = Executor::new()?;
    for p in [Priority::High, Priority::Normal, Priority::Low] {
        let h = ex.spawn(p, |cx| {
            let before = cx.io_priority();
            cx.set_io_priority(Priority::Low);
            before
        });
        assert_eq!(h.join().unwrap(), p);
    }
    // The next spawn on the same (reused) task starts afresh.
    assert_eq!(
        ex.spawn(Priority::High, |cx| cx.io_priority())
            .join()
            .unwrap(),
        Priority::High
    );
    Ok(())
}
