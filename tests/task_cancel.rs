//! Executor::cancel: pending tasks never run, started ones see ECANCELED
//! at their suspension points, and both end Cancelled.

use monad_async::{Executor, Priority};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

struct SetOnDrop(Rc<Cell<bool>>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn cancel_pending_drops_the_closure_unrun() {
    let ex = Executor::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let (r, guard) = (ran.clone(), SetOnDrop(dropped.clone()));
    let h = ex.spawn(Priority::Normal, move |_cx| {
        let _g = guard;
        r.set(true);
    });
    let other = ex.spawn(Priority::Normal, |_cx| "other");
    assert!(ex.cancel(&h).unwrap());
    // Cancelling a pending task completes it at once.
    assert!(h.is_finished());
    assert!(dropped.get(), "the closure is dropped by the cancel");
    ex.run_until_idle().unwrap();
    assert!(!ran.get(), "a cancelled pending task never runs");
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(other.join().unwrap(), "other");
    assert_eq!(ex.stats().cancelled, 1);
}

#[test]
fn cancel_sleeping_makes_sleep_return_ecanceled() {
    let ex = Executor::new().unwrap();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        let start = Instant::now();
        let r = cx.sleep(Duration::from_secs(3600));
        s.set(Some((r.map_err(|e| e.raw_os_error()), start.elapsed())));
        cx.is_cancelled()
    });
    ex.run(1, Some(Duration::ZERO)).unwrap(); // launch: sleeping
    assert_eq!(ex.stats().tasks_sleeping, 1);
    assert!(ex.cancel(&h).unwrap());
    ex.run_until_idle().unwrap();
    let (result, slept) = seen.get().unwrap();
    assert_eq!(result, Err(Some(libc::ECANCELED)));
    assert!(slept < Duration::from_secs(60));
    // Whatever the closure returned, a cancelled task ends Cancelled.
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn cancel_yielded_task_makes_later_suspensions_fail() {
    let ex = Executor::new().unwrap();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        let first = cx.yield_now().map_err(|e| e.raw_os_error());
        let second = cx.yield_now().map_err(|e| e.raw_os_error());
        s.set(Some((first, second)));
    });
    ex.run(1, Some(Duration::ZERO)).unwrap(); // launch: it yields
    assert!(ex.cancel(&h).unwrap());
    ex.run_until_idle().unwrap();
    let ecanceled = Err(Some(libc::ECANCELED));
    assert_eq!(seen.get(), Some((ecanceled, ecanceled)));
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn cancel_finished_task_is_false() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |_cx| 1);
    ex.run_until_idle().unwrap();
    assert!(!ex.cancel(&h).unwrap());
    assert_eq!(h.join().unwrap(), 1);
}

#[test]
fn cancel_twice_is_harmless() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_secs(60)));
    ex.run(1, Some(Duration::ZERO)).unwrap();
    assert!(ex.cancel(&h).unwrap());
    assert!(ex.cancel(&h).unwrap());
    ex.run_until_idle().unwrap();
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(ex.stats().cancelled, 1);
}

#[test]
fn cancel_from_inside_a_task() {
    let ex = Rc::new(Executor::new().unwrap());
    let woke = Rc::new(Cell::new(None));
    let w = woke.clone();
    let victim = Rc::new(ex.spawn(Priority::High, move |cx| {
        w.set(Some(
            cx.sleep(Duration::from_secs(60))
                .map_err(|e| e.raw_os_error()),
        ));
    }));
    let (e, v) = (ex.clone(), victim.clone());
    // Low: runs after the victim has gone to sleep.
    let killer = ex.spawn(Priority::Low, move |_cx| e.cancel(&v).unwrap());
    ex.run_until_idle().unwrap();
    assert!(killer.join().unwrap());
    assert_eq!(woke.get(), Some(Err(Some(libc::ECANCELED))));
    let victim = Rc::try_unwrap(victim).unwrap();
    assert!(victim.join().unwrap_err().is_cancelled());
}

#[test]
fn a_task_may_cancel_itself() {
    let ex = Rc::new(Executor::new().unwrap());
    let slot: Rc<Cell<Option<monad_async::JoinHandle<()>>>> = Rc::new(Cell::new(None));
    let done = Rc::new(Cell::new(false));
    let (e, s, d) = (ex.clone(), slot.clone(), done.clone());
    let h = ex.spawn(Priority::Normal, move |cx| {
        let me = s.take().unwrap();
        assert!(e.cancel(&me).unwrap());
        assert!(cx.is_cancelled());
        assert!(cx.yield_now().is_err());
        d.set(true);
    });
    slot.set(Some(h));
    ex.run_until_idle().unwrap();
    assert!(done.get());
    let s = ex.stats();
    assert_eq!((s.cancelled, s.exited, s.suspended), (1, 1, 0));
}

#[test]
fn cancel_with_a_foreign_handle_is_einval() {
    let a = Executor::new().unwrap();
    let b = Executor::new().unwrap();
    let h = b.spawn(Priority::Normal, |_cx| ());
    assert_eq!(a.cancel(&h).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    b.run_until_idle().unwrap();
}
