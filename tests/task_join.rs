//! JoinHandle: join from the owner thread (drives the executor), from
//! inside a task (suspends it), from another thread (blocks); try_join,
//! is_finished, detaching by drop.

use monad_async::{Executor, JoinHandle, Priority};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn join_on_the_owner_thread_drives_the_executor() {
    let ex = Executor::new().unwrap();
    let first = ex.spawn(Priority::High, |cx| {
        cx.sleep(Duration::from_millis(5)).map(|()| 1)
    });
    let second = ex.spawn(Priority::Low, |_cx| 2);
    // Joining the low task runs the high one first, and waits for nothing
    // more than it has to.
    assert_eq!(second.join().unwrap(), 2);
    assert!(!first.is_finished(), "the sleeper is still asleep");
    let start = Instant::now();
    assert_eq!(first.join().unwrap().unwrap(), 1);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn join_inside_a_task_waits_for_a_lower_priority_task() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::High, |cx| {
        let low = cx
            .spawn(Priority::Low, |cx| {
                cx.yield_now().unwrap();
                "low done"
            })
            .unwrap();
        // The high task must get off the ready queue for the low one to run.
        low.join().unwrap()
    });
    assert_eq!(h.join().unwrap(), "low done");
}

#[test]
fn join_inside_a_task_waits_for_a_sleeper() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let sleeper = cx
            .spawn(Priority::Normal, |cx| {
                cx.sleep(Duration::from_millis(10)).map(|()| 5)
            })
            .unwrap();
        let start = Instant::now();
        let v = sleeper.join().unwrap().unwrap();
        (v, start.elapsed())
    });
    let (v, waited) = h.join().unwrap();
    assert_eq!(v, 5);
    assert!(waited >= Duration::from_millis(9), "{waited:?}");
}

#[test]
fn join_inside_a_task_that_gets_cancelled_returns_cancelled() {
    let ex = Rc::new(Executor::new().unwrap());
    let sleeper = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(200)));
    let waiter = Rc::new(ex.spawn(Priority::Normal, move |_cx| sleeper.join().map(|_| ())));
    let (e, w) = (ex.clone(), waiter.clone());
    ex.spawn(Priority::Low, move |cx| {
        cx.sleep(Duration::from_millis(5)).unwrap();
        e.cancel(&w).unwrap();
    });
    let start = Instant::now();
    while !waiter.is_finished() {
        let _ = ex.run(usize::MAX, Some(Duration::from_millis(10)));
    }
    // The waiter is cancelled (well before the sleeper wakes); the sleeper
    // it waited for is not: it sleeps on (its handle went with the
    // waiter's closure) and is cancelled when the executor is dropped.
    assert!(
        start.elapsed() < Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ex.stats().tasks_sleeping, 1);
    let waiter = Rc::try_unwrap(waiter).unwrap();
    assert!(waiter.join().unwrap_err().is_cancelled());
}

#[test]
fn join_from_another_thread_blocks_until_done() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.sleep(Duration::from_millis(20)).unwrap();
        String::from("from the executor")
    });
    let t = std::thread::spawn(move || {
        let start = Instant::now();
        let v = h.join().unwrap();
        (v, start.elapsed())
    });
    ex.run_until_idle().unwrap();
    let (v, waited) = t.join().unwrap();
    assert_eq!(v, "from the executor");
    assert!(waited < Duration::from_secs(5));
}

#[test]
fn many_blocked_joiners_all_wake() {
    let ex = Executor::new().unwrap();
    let joiners: Vec<_> = (0..8)
        .map(|i| {
            let h = ex.spawn(Priority::Normal, move |cx| {
                cx.sleep(Duration::from_millis(2)).unwrap();
                i
            });
            std::thread::spawn(move || h.join().unwrap())
        })
        .collect();
    ex.run_until_idle().unwrap();
    let sum: i32 = joiners.into_iter().map(|j| j.join().unwrap()).sum();
    assert_eq!(sum, 28);
}

#[test]
fn try_join_and_is_finished() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.yield_now().unwrap();
        9
    });
    assert!(!h.is_finished());
    assert!(h.stats().is_none());
    let h = h.try_join().unwrap_err();
    ex.run(1, Some(Duration::ZERO)).unwrap(); // launched, yielded
    let h = h.try_join().unwrap_err();
    ex.run(1, Some(Duration::ZERO)).unwrap(); // resumed, exited
    assert!(h.is_finished());
    assert!(h.stats().is_some());
    assert_eq!(h.try_join().ok().unwrap().unwrap(), 9);
}

#[test]
fn dropping_a_handle_detaches_the_task() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let ex = Executor::new().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Rc::new(Cell::new(false));
    let (d, r) = (drops.clone(), ran.clone());
    drop(ex.spawn(Priority::Normal, move |cx| {
        cx.yield_now().unwrap();
        r.set(true);
        Counted(d)
    }));
    ex.run_until_idle().unwrap();
    assert!(ran.get());
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the output is dropped");
}

#[test]
fn handles_of_send_outputs_move_between_threads() {
    let ex = Executor::new().unwrap();
    let hs: Vec<JoinHandle<u64>> = (0..4)
        .map(|i| ex.spawn(Priority::Normal, move |_cx| i))
        .collect();
    let t = std::thread::spawn(move || hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>());
    ex.run_until_idle().unwrap();
    assert_eq!(t.join().unwrap(), 6);
}

#[test]
fn join_of_a_handle_after_its_executor_is_gone() {
    let ex = Executor::new().unwrap();
    let done = ex.spawn(Priority::Normal, |_cx| 1);
    ex.run_until_idle().unwrap();
    let pending = ex.spawn(Priority::Normal, |_cx| 2);
    drop(ex);
    assert_eq!(done.join().unwrap(), 1);
    assert!(pending.join().unwrap_err().is_cancelled());
}
