//! Dropping an executor cancels and drains its tasks, wakes their joiners,
//! frees everything, and closes its handles.

use monad_async::{Executor, Priority};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

struct SetOnDrop(Rc<Cell<bool>>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn drop_cancels_pending_and_sleeping_tasks() {
    let ex = Executor::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let sleep_result = Rc::new(Cell::new(None));

    let (r, guard) = (ran.clone(), SetOnDrop(dropped.clone()));
    let pending = ex.spawn(Priority::Low, move |_cx| {
        let _guard = guard;
        r.set(true);
    });
    let sr = sleep_result.clone();
    let sleeping = ex.spawn(Priority::High, move |cx| {
        let r = cx.sleep(Duration::from_secs(3600));
        sr.set(Some(r.map_err(|e| e.raw_os_error())));
        "returned after the sleep"
    });
    // Launch only the high task: it goes to sleep; the low one stays pending.
    assert_eq!(ex.run(1, Some(Duration::ZERO)).unwrap(), 1);
    assert!(!sleeping.is_finished() && !pending.is_finished());

    let start = Instant::now();
    drop(ex);
    assert!(start.elapsed() < Duration::from_secs(5));

    assert!(pending.is_finished() && sleeping.is_finished());
    assert!(pending.join().unwrap_err().is_cancelled());
    assert!(!ran.get(), "a pending task must never run");
    assert!(dropped.get(), "its closure must be dropped");
    assert!(sleeping.join().unwrap_err().is_cancelled());
    assert_eq!(sleep_result.get(), Some(Err(Some(libc::ECANCELED))));
}

#[test]
fn drop_wakes_joiners_on_other_threads() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_secs(3600)));
    ex.run(1, Some(Duration::ZERO)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let joiner = std::thread::spawn(move || {
        tx.send(()).unwrap();
        h.join()
    });
    rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20)); // let it block
    drop(ex);
    assert!(joiner.join().unwrap().unwrap_err().is_cancelled());
}

#[test]
fn handles_are_closed_after_drop() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    drop(ex);
    assert!(handle.is_closed());
    let err = handle.spawn(Priority::Normal, |_cx| ()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ESHUTDOWN));
    assert_eq!(
        handle.wake().unwrap_err().raw_os_error(),
        Some(libc::ESHUTDOWN)
    );
}

#[test]
fn started_tasks_run_to_their_end_during_drop() {
    let ex = Executor::new().unwrap();
    let steps = Rc::new(Cell::new(0));
    let s = steps.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        s.set(1);
        // Every suspension point fails at once after cancellation.
        assert_eq!(
            cx.yield_now().unwrap_err().raw_os_error(),
            Some(libc::ECANCELED)
        );
        assert!(cx.is_cancelled());
        assert_eq!(
            cx.sleep(Duration::from_secs(1)).unwrap_err().raw_os_error(),
            Some(libc::ECANCELED)
        );
        // Spawning during the drop is refused, not lost.
        let err = cx.spawn(Priority::High, |_cx| ()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESHUTDOWN));
        s.set(2);
    });
    ex.run(1, Some(Duration::ZERO)).unwrap(); // launch; it yields
    drop(ex);
    assert_eq!(steps.get(), 2);
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn drop_racing_remote_spawns_loses_nothing() {
    for _ in 0..20 {
        let ex = Executor::new().unwrap();
        let handle = ex.handle();
        let ran = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(Barrier::new(2));
        let (r, g) = (ran.clone(), go.clone());
        let spawner = std::thread::spawn(move || {
            g.wait();
            let (mut ok, mut cancelled) = (0, 0);
            let mut outstanding = std::collections::VecDeque::new();
            let mut settle = |h: monad_async::JoinHandle<()>| match h.join() {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert!(e.is_cancelled());
                    cancelled += 1;
                }
            };
            loop {
                let r = r.clone();
                match handle.spawn(Priority::Normal, move |_cx| {
                    r.fetch_add(1, Ordering::Relaxed);
                }) {
                    Ok(h) => outstanding.push_back(h),
                    Err(e) => {
                        assert_eq!(e.raw_os_error(), Some(libc::ESHUTDOWN));
                        break;
                    }
                }
                // Bound the unfinished tasks (each holds a stack): wait for
                // the oldest, which the executor runs or its drop cancels.
                if outstanding.len() >= 256 {
                    settle(outstanding.pop_front().unwrap());
                }
            }
            // Every spawn that succeeded finishes, by running or by
            // cancellation; none hangs.
            outstanding.into_iter().for_each(&mut settle);
            (ok, cancelled)
        });
        go.wait();
        for _ in 0..5 {
            let _ = ex.run(64, Some(Duration::from_micros(200)));
        }
        drop(ex);
        let (ok, _cancelled) = spawner.join().unwrap();
        assert_eq!(ok, ran.load(Ordering::Relaxed));
    }
}

#[test]
fn dropping_an_idle_executor_after_heavy_use_frees_its_tasks() {
    // Exercises the destroy path with many pooled tasks of both pools.
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let local: Vec<_> = (0..500)
        .map(|_| ex.spawn(Priority::Normal, |cx| cx.yield_now()))
        .collect();
    let remote = std::thread::spawn(move || {
        (0..500)
            .map(|_| handle.spawn(Priority::Normal, |cx| cx.yield_now()).unwrap())
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    ex.run_until_idle().unwrap();
    assert!(ex.stats().tasks_created >= 1000);
    drop(ex);
    assert!(local
        .into_iter()
        .chain(remote)
        .all(|h| h.join().unwrap().is_ok()));
}

#[test]
fn dropping_the_last_reference_inside_its_own_task_leaks_safely() {
    // The only owner of the executor is a task's closure. Joining the task
    // drives the executor from this thread; the task drops the executor
    // while running on it. Destroying it then would pull the task's stack
    // from under it, so the executor is leaked instead, and everything
    // goes on working.
    let ex = Rc::new(Executor::new().unwrap());
    let handle = ex.handle();
    let in_task = ex.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        drop(in_task); // the last strong reference: Executor::drop runs here
        cx.yield_now().unwrap(); // the executor is still there
        "survived"
    });
    drop(ex);
    assert_eq!(h.join().unwrap(), "survived");
    assert!(handle.is_closed());
    let err = handle.spawn(Priority::Normal, |_cx| ()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ESHUTDOWN));
}

#[test]
fn drop_ends_tasks_that_ignore_cancellation() {
    // Each task swallows ECANCELED and suspends again, forever: the drop
    // must still return, unwinding each one's stack once it has been told
    // 64 times (destructors run) and reporting it cancelled.
    let ex = Executor::new().unwrap();
    let dropped: Vec<Rc<Cell<bool>>> = (0..4).map(|_| Rc::new(Cell::new(false))).collect();
    let told = Rc::new(Cell::new(0u32));
    let mut handles = Vec::new();
    for (i, d) in dropped.iter().enumerate() {
        let (guard, told) = (SetOnDrop(d.clone()), told.clone());
        handles.push(ex.spawn(Priority::Normal, move |cx| {
            let _guard = guard;
            loop {
                let r = match i {
                    0 => cx.sleep(Duration::from_millis(100)),
                    1 => cx.yield_now(),
                    2 => cx.park(),
                    _ => monad_async::io::nop(cx),
                };
                if r.is_err() {
                    told.set(told.get() + 1);
                }
            }
        }));
    }
    assert_eq!(ex.run(4, Some(Duration::ZERO)).unwrap(), 4);
    let start = Instant::now();
    drop(ex);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    for (h, d) in handles.into_iter().zip(&dropped) {
        assert!(h.join().unwrap_err().is_cancelled());
        assert!(d.get(), "the task's stack was unwound: its locals dropped");
    }
    // Each was told 64 times, then unwound at its next suspension.
    assert_eq!(told.get(), 4 * 64);
}

#[test]
fn a_cancelled_task_may_still_finish_its_work() {
    // Told once, a task that stops suspending ends normally (its outcome is
    // Cancelled, as for every cancelled task): the unwind is only for one
    // that suspends again.
    let ex = Executor::new().unwrap();
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        let r = cx.sleep(Duration::from_secs(3600));
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        f.set(true);
        "cleaned up"
    });
    ex.run(1, Some(Duration::ZERO)).unwrap();
    ex.cancel(&h).unwrap();
    ex.run_until_idle().unwrap();
    assert!(finished.get());
    assert!(h.join().unwrap_err().is_cancelled());
}
