//! Priority order: high before normal before low, first in first out
//! within a level, and a yield goes to the back of its level.

use monad_async::{Executor, Priority};
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<(Priority, usize, &'static str)>>>;

#[test]
fn interleaved_spawns_run_by_priority_fifo_with_yields() {
    let ex = Executor::new().unwrap();
    let log: Log = Rc::default();
    let mut handles = Vec::new();
    for i in 0..3 {
        for p in [Priority::Low, Priority::Normal, Priority::High] {
            let log = log.clone();
            handles.push(ex.spawn(p, move |cx| {
                log.borrow_mut().push((p, i, "start"));
                cx.yield_now().unwrap();
                log.borrow_mut().push((p, i, "resumed"));
            }));
        }
    }
    ex.run_until_idle().unwrap();
    for h in handles {
        h.join().unwrap();
    }

    let mut expected = Vec::new();
    for p in [Priority::High, Priority::Normal, Priority::Low] {
        for i in 0..3 {
            expected.push((p, i, "start"));
        }
        for i in 0..3 {
            expected.push((p, i, "resumed"));
        }
    }
    assert_eq!(*log.borrow(), expected);
}

#[test]
fn higher_priority_spawned_by_a_task_runs_before_it_resumes() {
    let ex = Executor::new().unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    let outer = ex.spawn(Priority::Low, move |cx| {
        l.borrow_mut().push((Priority::Low, 0, "start"));
        for (i, p) in [Priority::Normal, Priority::High].into_iter().enumerate() {
            let l2 = l.clone();
            cx.spawn(p, move |_cx| l2.borrow_mut().push((p, i, "ran")))
                .unwrap();
        }
        cx.yield_now().unwrap();
        l.borrow_mut().push((Priority::Low, 0, "resumed"));
    });
    ex.run_until_idle().unwrap();
    outer.join().unwrap();
    assert_eq!(
        *log.borrow(),
        [
            (Priority::Low, 0, "start"),
            (Priority::High, 1, "ran"),
            (Priority::Normal, 0, "ran"),
            (Priority::Low, 0, "resumed"),
        ]
    );
}

#[test]
fn a_yielding_high_task_starves_lower_ones_until_it_exits() {
    let ex = Executor::new().unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    ex.spawn(Priority::Normal, move |_cx| {
        l.borrow_mut().push((Priority::Normal, 0, "ran"))
    });
    let l = log.clone();
    ex.spawn(Priority::High, move |cx| {
        for i in 0..5 {
            l.borrow_mut().push((Priority::High, i, "slice"));
            cx.yield_now().unwrap();
        }
    });
    ex.run_until_idle().unwrap();
    let log = log.borrow();
    assert_eq!(log.len(), 6);
    assert!(log[..5].iter().all(|e| e.0 == Priority::High));
    assert_eq!(log[5], (Priority::Normal, 0, "ran"));
}

#[test]
fn remote_spawns_also_run_by_priority() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let o = order.clone();
    std::thread::spawn(move || {
        for i in 0..3 {
            for p in [Priority::Low, Priority::Normal, Priority::High] {
                let o = o.clone();
                handle
                    .spawn(p, move |_cx| o.lock().unwrap().push((p, i)))
                    .unwrap();
            }
        }
    })
    .join()
    .unwrap();
    ex.run_until_idle().unwrap();
    let mut expected = Vec::new();
    for p in [Priority::High, Priority::Normal, Priority::Low] {
        for i in 0..3 {
            expected.push((p, i));
        }
    }
    assert_eq!(*order.lock().unwrap(), expected);
}
