//! Parking and waking from the safe API: same-thread and cross-thread
//! wakes (the executor asleep), the permit of a wake that comes first,
//! deadlines, cancellation while parked, wakers of work that is over and
//! of an executor that is gone, and a cross-thread race that must resume
//! every park exactly once.

use monad_async::{Executor, Priority, TaskWaker};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Runs what is runnable now, without waiting (a parked task keeps
/// `run_until_idle` waiting for its wake, as it should).
fn run_ready(ex: &Executor) {
    loop {
        match ex.run(usize::MAX, Some(Duration::ZERO)) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => return,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn same_thread_wake_resumes_a_parked_task() {
    let ex = Executor::new().unwrap();
    let (tx, rx) = mpsc::channel::<TaskWaker>();
    let parked = ex.spawn(Priority::Low, move |cx| {
        tx.send(cx.waker()).unwrap();
        cx.park().map(|()| cx.stats().suspensions)
    });
    run_ready(&ex);
    assert!(!parked.is_finished(), "a park waits for its wake");
    let waker = rx.recv().unwrap();
    let w = ex.spawn(Priority::High, move |_cx| waker.wake());
    ex.run_until_idle().unwrap();
    assert!(w.join().unwrap(), "the wake resumed a parked task");
    assert_eq!(
        parked.join().unwrap().unwrap(),
        1,
        "parked once, woken once"
    );
}

#[test]
fn a_wake_before_the_park_is_kept_once() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let w = cx.waker();
        assert!(!w.wake(), "not parked: a permit");
        assert!(!w.wake(), "still one permit");
        let first = cx.park_timeout(Duration::from_secs(60))?;
        let second = cx.park_timeout(Duration::from_millis(2))?;
        Ok::<_, std::io::Error>((first, second, cx.stats().suspensions))
    });
    // The first park took the permit without suspending.
    assert_eq!(h.join().unwrap().unwrap(), (true, false, 1));
}

#[test]
fn cross_thread_wake_reaches_a_sleeping_executor() {
    for entries in [0, 64] {
        let ex = Executor::builder().ring_entries(entries).build().unwrap();
        let (tx, rx) = mpsc::channel::<TaskWaker>();
        let woke_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let parked = ex.spawn(Priority::Normal, move |cx| {
            tx.send(cx.waker()).unwrap();
            cx.park().map(|()| Instant::now())
        });
        let wa = woke_at.clone();
        let t = std::thread::spawn(move || {
            let w = rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(30));
            *wa.lock().unwrap() = Some(Instant::now());
            assert!(w.wake());
        });
        let sleeps = ex.stats().sleeps;
        // run with no timeout: only the wake can end this.
        while !parked.is_finished() {
            ex.run(16, None).unwrap();
        }
        t.join().unwrap();
        let resumed = parked.join().unwrap().unwrap();
        let latency = resumed - woke_at.lock().unwrap().unwrap();
        assert!(ex.stats().sleeps > sleeps, "the executor slept meanwhile");
        assert!(
            latency < Duration::from_millis(10),
            "ring entries {entries}: woken after {latency:?}"
        );
    }
}

#[test]
fn deadlines_are_never_early_and_a_wake_beats_them() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        let t0 = Instant::now();
        let woken = cx.park_timeout(Duration::from_millis(3))?;
        let waited = t0.elapsed();
        let until = Instant::now() + Duration::from_millis(2);
        let woken2 = cx.park_until(until)?;
        Ok::<_, std::io::Error>((woken, waited, woken2, Instant::now() >= until))
    });
    let (woken, waited, woken2, after) = h.join().unwrap().unwrap();
    assert!(!woken && !woken2 && after);
    assert!(waited >= Duration::from_millis(3), "{waited:?}");

    let (tx, rx) = mpsc::channel::<TaskWaker>();
    let h = ex.spawn(Priority::Normal, move |cx| {
        tx.send(cx.waker()).unwrap();
        let t0 = Instant::now();
        cx.park_timeout(Duration::from_secs(30))
            .map(|w| (w, t0.elapsed()))
    });
    let t = std::thread::spawn(move || {
        let w = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        w.wake()
    });
    let (woken, waited) = h.join().unwrap().unwrap();
    assert!(t.join().unwrap());
    assert!(woken && waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn cancel_while_parked_returns_ecanceled() {
    let ex = Executor::new().unwrap();
    for deadline in [None, Some(Duration::from_secs(60))] {
        let h = ex.spawn(Priority::Normal, move |cx| match deadline {
            None => cx.park().map(|()| true),
            Some(d) => cx.park_timeout(d),
        });
        run_ready(&ex);
        assert!(!h.is_finished());
        // From another thread: through the inbox.
        let cancelled = std::thread::scope(|s| s.spawn(|| h.cancel()).join().unwrap());
        assert!(cancelled.unwrap());
        ex.run_until_idle().unwrap();
        assert!(h.join().unwrap_err().is_cancelled());
    }
    // A cancelled task's park fails at once.
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.waker().wake();
        cx.yield_now()
    });
    ex.cancel(&h).unwrap();
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn stale_wakers_do_nothing() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| cx.waker());
    let old = h.join().unwrap();
    // The same pooled task carries new work now: the old waker must not
    // resume it.
    let (tx, rx) = mpsc::channel::<TaskWaker>();
    let h = ex.spawn(Priority::Normal, move |cx| {
        tx.send(cx.waker()).unwrap();
        cx.park()
    });
    run_ready(&ex);
    assert!(!old.wake(), "a waker of finished work");
    run_ready(&ex);
    assert!(!h.is_finished(), "the stale wake resumed nothing");
    assert!(rx.recv().unwrap().wake());
    h.join().unwrap().unwrap();

    // Once the executor is dropped, its wakers do nothing (and do not
    // touch freed memory).
    let (tx, rx) = mpsc::channel::<TaskWaker>();
    let h = ex.spawn(Priority::Normal, move |cx| {
        tx.send(cx.waker()).unwrap();
        cx.park()
    });
    run_ready(&ex);
    let w = rx.recv().unwrap();
    drop(ex);
    assert!(h.join().unwrap_err().is_cancelled());
    assert!(!w.wake());
}

#[test]
fn many_threads_waking_many_parked_tasks_resume_each_park_once() {
    const TASKS: usize = 16;
    let parks: usize = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    let ex = Executor::new().unwrap();
    let wakers: Arc<std::sync::Mutex<Vec<TaskWaker>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let resumed = Rc::new(Cell::new(0usize));
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let (wakers, resumed) = (wakers.clone(), resumed.clone());
            ex.spawn(Priority::Normal, move |cx| {
                wakers.lock().unwrap().push(cx.waker());
                let (mut woken, mut timed_out) = (0, 0);
                for i in 0..parks {
                    // Short deadlines race with the wakers.
                    let d = Duration::from_micros((i % 20) as u64 + 1);
                    if cx.park_timeout(d)? {
                        woken += 1;
                    } else {
                        timed_out += 1;
                    }
                    resumed.set(resumed.get() + 1);
                }
                Ok::<_, std::io::Error>((woken, timed_out))
            })
        })
        .collect();
    let wake_calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..2)
        .map(|k| {
            let (wakers, stop, calls) = (wakers.clone(), stop.clone(), wake_calls.clone());
            std::thread::spawn(move || {
                let mut i = k;
                while !stop.load(Ordering::Relaxed) {
                    let w = wakers.lock().unwrap().get(i % TASKS).cloned();
                    if let Some(w) = w {
                        w.wake();
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 7;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while handles.iter().any(|h| !h.is_finished()) {
        assert!(Instant::now() < deadline, "a park was never resumed");
        ex.run(1024, Some(Duration::from_millis(10))).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    for h in handles {
        let (woken, timed_out) = h.join().unwrap().unwrap();
        assert_eq!(woken + timed_out, parks);
    }
    assert_eq!(
        resumed.get(),
        TASKS * parks,
        "each park resumed exactly once"
    );
    assert!(wake_calls.load(Ordering::Relaxed) > 0);
}
