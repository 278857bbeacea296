//! Changing a running task's CPU priority (`TaskWaker::set_priority`,
//! `TaskContext::set_priority`): a raised Low task overtakes CPU-bound
//! Normal work, from another task and from another thread; priority
//! inversion resolved by hand the way a lock with priority inheritance
//! does it, with the High task's wait measured against the version without
//! the raise; stale wakers change nothing.

mod common;

use monad_async::{Executor, Priority, TaskWaker};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

type Log = Rc<RefCell<Vec<&'static str>>>;

/// A Low task that has started (and published its waker) and yields
/// `steps` times; `normals` Normal tasks each burning `slices` slices of
/// 20 us; a High task that raises the Low one when `raise`. Returns the
/// log of events.
fn overtake(raise: bool, normals: usize, slices: usize, steps: usize) -> Vec<&'static str> {
    let ex = Executor::new().unwrap();
    let log: Log = Rc::default();
    let waker: Rc<RefCell<Option<TaskWaker>>> = Rc::default();
    let (l, w) = (log.clone(), waker.clone());
    let low = ex.spawn(Priority::Low, move |cx| {
        *w.borrow_mut() = Some(cx.waker());
        for _ in 0..steps {
            cx.yield_now().unwrap();
            l.borrow_mut().push("low step");
        }
        l.borrow_mut().push("low done");
    });
    // Its first slice: it publishes its waker and yields, back on the Low
    // queue, behind everything spawned below.
    assert_eq!(ex.run(1, None).unwrap(), 1);
    let mut handles = Vec::new();
    for _ in 0..normals {
        let l = log.clone();
        handles.push(ex.spawn(Priority::Normal, move |cx| {
            for _ in 0..slices {
                common::burn(Duration::from_micros(20));
                cx.yield_now().unwrap();
            }
            l.borrow_mut().push("normal done");
        }));
    }
    let w = waker.clone();
    let l = log.clone();
    let high = ex.spawn(Priority::High, move |_cx| {
        if raise {
            let w = w.borrow_mut().take().unwrap();
            assert!(w.set_priority(Priority::High));
            l.borrow_mut().push("raised");
        }
    });
    ex.run_until_idle().unwrap();
    high.join().unwrap();
    low.join().unwrap();
    for h in handles {
        h.join().unwrap();
    }
    let v = log.borrow().clone();
    v
}

#[test]
fn low_task_raised_by_another_task_overtakes_cpu_bound_normal_tasks() {
    let steps = 20;
    let log = overtake(true, 16, 50, steps);
    // Raised: all of its steps run before any Normal task gets to its end.
    let first_normal = log.iter().position(|e| *e == "normal done").unwrap();
    let low_done = log.iter().position(|e| *e == "low done").unwrap();
    assert_eq!(log[0], "raised");
    assert!(
        low_done < first_normal,
        "raised Low task finished at event {low_done}, after a Normal one ({first_normal})"
    );
    assert_eq!(log[1..=steps], vec!["low step"; steps][..]);

    // The same without the raise: it waits for all 16 Normal tasks.
    let log = overtake(false, 16, 50, steps);
    assert_eq!(log[..16], vec!["normal done"; 16][..]);
    assert_eq!(log.last(), Some(&"low done"));
}

#[test]
fn cross_thread_raise_reaches_a_busy_executor_before_its_next_slice() {
    let ex = Executor::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<TaskWaker>();
    let raised_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let s = stop.clone();
    let r = raised_at.clone();
    // Low: publishes its waker and yields; once raised, its next slice
    // comes before the Normal tasks' next ones: it stops them.
    let low = ex.spawn(Priority::Low, move |cx| {
        tx.send(cx.waker()).unwrap();
        cx.yield_now().unwrap();
        let latency = r.lock().unwrap().expect("ran only once raised").elapsed();
        s.store(true, Ordering::SeqCst);
        (cx.priority(), latency)
    });
    assert_eq!(ex.run(1, None).unwrap(), 1);
    // Normal, CPU-bound: 50 us slices until stopped (or 10 s).
    let mut normals = Vec::new();
    for _ in 0..8 {
        let s = stop.clone();
        normals.push(ex.spawn(Priority::Normal, move |cx| {
            let give_up = Instant::now() + Duration::from_secs(10);
            let mut slices = 0u64;
            while !s.load(Ordering::SeqCst) && Instant::now() < give_up {
                common::burn(Duration::from_micros(50));
                cx.yield_now().unwrap();
                slices += 1;
            }
            slices
        }));
    }
    let waker = rx.recv().unwrap();
    let r = raised_at.clone();
    let raiser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20)); // the executor is busy
        *r.lock().unwrap() = Some(Instant::now());
        let ok = waker.set_priority(Priority::High);
        (ok, waker)
    });
    ex.run_until_idle().unwrap();
    let (ok, waker) = raiser.join().unwrap();
    assert!(ok, "the raise reached live work");
    let (p, latency) = low.join().unwrap();
    assert_eq!(p, Priority::High);
    let slices: u64 = normals.into_iter().map(|h| h.join().unwrap()).sum();
    eprintln!("cross-thread raise: Low ran {latency:?} after it, {slices} Normal slices in all");
    // Applied before the next slice: a few 50 us slices at most, far from
    // the 10 s the Normal tasks would otherwise run for (generous bound
    // for a loaded CI machine).
    assert!(latency < Duration::from_millis(200), "latency {latency:?}");
    // The work is over: the waker changes nothing now.
    assert!(!waker.set_priority(Priority::Low));
}

/// The classic inversion: Low holds a lock; Normal tasks burn CPU; High
/// wants the lock. With `inherit`, High raises the holder while it waits
/// (what a lock with priority inheritance does) and the holder lowers
/// itself on release. Returns how long High waited for the lock, and how
/// many Normal tasks had finished by then.
fn inversion(inherit: bool, normals: usize) -> (Duration, usize) {
    const SECTION_STEPS: usize = 20;
    let ex = Executor::new().unwrap();
    let locked = Rc::new(Cell::new(false));
    let holder: Rc<RefCell<Option<TaskWaker>>> = Rc::default();
    let waiter: Rc<RefCell<Option<TaskWaker>>> = Rc::default();
    let normals_done = Rc::new(Cell::new(0usize));

    let (lk, ho, wa) = (locked.clone(), holder.clone(), waiter.clone());
    let low = ex.spawn(Priority::Low, move |cx| {
        // Take the lock; the critical section yields (say it does I/O).
        lk.set(true);
        *ho.borrow_mut() = Some(cx.waker());
        for _ in 0..SECTION_STEPS {
            common::burn(Duration::from_micros(10));
            cx.yield_now().unwrap();
        }
        lk.set(false);
        ho.borrow_mut().take();
        if let Some(w) = wa.borrow_mut().take() {
            w.wake();
        }
        // Back to its own level (a no-op when it was never raised).
        cx.set_priority(Priority::Low);
        cx.priority()
    });
    assert_eq!(ex.run(1, None).unwrap(), 1); // it holds the lock now

    let mut handles = Vec::new();
    for _ in 0..normals {
        let d = normals_done.clone();
        handles.push(ex.spawn(Priority::Normal, move |cx| {
            for _ in 0..100 {
                common::burn(Duration::from_micros(20));
                cx.yield_now().unwrap();
            }
            d.set(d.get() + 1);
        }));
    }
    let (lk, ho, wa, d) = (
        locked.clone(),
        holder.clone(),
        waiter.clone(),
        normals_done.clone(),
    );
    let high = ex.spawn(Priority::High, move |cx| {
        let start = Instant::now();
        while lk.get() {
            *wa.borrow_mut() = Some(cx.waker());
            if inherit {
                if let Some(h) = ho.borrow().as_ref() {
                    assert!(h.set_priority(Priority::High));
                }
            }
            cx.park().unwrap();
        }
        lk.set(true); // ours
        (start.elapsed(), d.get())
    });
    ex.run_until_idle().unwrap();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(low.join().unwrap(), Priority::Low);
    high.join().unwrap()
}

#[test]
fn priority_inversion_resolved_by_raising_the_holder() {
    let normals = 16;
    let (with, done_with) = inversion(true, normals);
    let (without, done_without) = inversion(false, normals);
    eprintln!(
        "inversion, {normals} Normal tasks of 100 x 20 us: High waited {with:?} with the \
         holder raised, {without:?} without"
    );
    // Raised, the holder finishes its section before any Normal work:
    // High waits for the section (20 x 10 us) only.
    assert_eq!(
        done_with, 0,
        "no Normal task finishes before High has the lock"
    );
    assert!(
        with < Duration::from_millis(25),
        "High waited {with:?} with inheritance"
    );
    // Without it, High waits behind all the Normal work (16 x 2 ms).
    assert_eq!(done_without, normals);
    assert!(without > with * 5, "with {with:?}, without {without:?}");
}

#[test]
fn own_priority_change_applies_at_the_next_yield() {
    let ex = Executor::new().unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    let a = ex.spawn(Priority::Normal, move |cx| {
        cx.set_priority(Priority::Low);
        assert_eq!(cx.priority(), Priority::Low);
        cx.yield_now().unwrap(); // behind the Normal task
        l.borrow_mut().push("lowered");
        cx.set_priority(Priority::High);
        cx.priority()
    });
    let l = log.clone();
    let b = ex.spawn(Priority::Normal, move |_cx| l.borrow_mut().push("normal"));
    ex.run_until_idle().unwrap();
    assert_eq!(a.join().unwrap(), Priority::High);
    b.join().unwrap();
    assert_eq!(*log.borrow(), ["normal", "lowered"]);
}

#[test]
fn stale_waker_changes_nothing_and_a_dropped_executor_is_refused() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| cx.waker());
    let w = h.join().unwrap();
    // The pooled task carries new work now: it keeps its level.
    let next = ex.spawn(Priority::Low, move |cx| {
        cx.yield_now().unwrap();
        cx.priority()
    });
    ex.run(1, None).unwrap();
    assert!(!w.set_priority(Priority::High));
    assert_eq!(next.join().unwrap(), Priority::Low);

    let (tx, rx) = mpsc::channel();
    let h = ex.spawn(Priority::Normal, move |cx| {
        tx.send(cx.waker()).unwrap();
        cx.park()
    });
    ex.run(1, None).unwrap();
    let w = rx.recv().unwrap();
    assert!(w.set_priority(Priority::Low)); // parked: live work
    drop(ex); // cancels the parked task, then is gone
    assert!(h.join().unwrap_err().is_cancelled());
    assert!(!w.set_priority(Priority::High));
}

/// A service's load: 1,000 tasks at mixed levels (CPU-bound Low slicers,
/// Normal tasks parking with deadlines, High sleepers), two threads
/// changing their priorities at random through their wakers, the
/// executor dropped in the middle. Every call returns (true while the
/// work is live), the drop ends, and calls after it return false.
#[test]
fn changes_from_threads_under_load_with_shutdown_in_the_middle() {
    let ex = Executor::new().unwrap();
    let (tx, rx) = mpsc::channel::<TaskWaker>();
    let mut handles = Vec::new();
    for i in 0..1000usize {
        let tx = tx.clone();
        let p = Priority::ALL[i % 3];
        handles.push(ex.spawn(p, move |cx| {
            tx.send(cx.waker()).unwrap();
            for _ in 0..200 {
                let r = match p {
                    Priority::Low => {
                        common::burn(Duration::from_micros(5));
                        cx.yield_now()
                    }
                    Priority::Normal => cx.park_timeout(Duration::from_micros(200)).map(|_| ()),
                    Priority::High => cx.sleep(Duration::from_micros(100)),
                };
                if r.is_err() {
                    return; // cancelled by the drop
                }
            }
        }));
    }
    drop(tx);
    // Let every task publish its waker.
    let mut published = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(30);
    while published.len() < 1000 {
        assert!(
            Instant::now() < give_up,
            "{} wakers published",
            published.len()
        );
        ex.run(256, Some(Duration::from_millis(1))).ok();
        published.extend(rx.try_iter());
    }
    let wakers: Arc<Vec<TaskWaker>> = Arc::new(published);
    let stop = Arc::new(AtomicBool::new(false));
    let changers: Vec<_> = (0..2u64)
        .map(|k| {
            let (w, s) = (wakers.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut live, mut calls, mut seed) = (0u64, 0u64, 0x9e37_79b9 + k);
                while !s.load(Ordering::Relaxed) && calls < 2_000_000 {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let waker = &w[(seed >> 33) as usize % w.len()];
                    live += waker.set_priority(Priority::ALL[(seed >> 20) as usize % 3]) as u64;
                    calls += 1;
                }
                (live, calls)
            })
        })
        .collect();
    // Run for a while under the changes, then drop in the middle.
    let until = Instant::now() + Duration::from_millis(150);
    while Instant::now() < until {
        ex.run(usize::MAX, Some(Duration::from_millis(5))).ok();
    }
    let dropped = Instant::now();
    drop(ex);
    let drop_took = dropped.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut live = 0;
    for c in changers {
        let (l, calls) = c.join().unwrap();
        assert!(calls > 0);
        live += l;
    }
    for h in handles {
        // Finished or cancelled, never lost.
        let _ = h.join();
    }
    assert!(live > 0, "some changes reached live work");
    assert!(wakers.iter().all(|w| !w.set_priority(Priority::High)));
    eprintln!("under load: {live} changes reached live work; the drop took {drop_took:?}");
}

/// Normal work slices that ran while the client waited for each reply
/// (urgent requests, ordinary ones), and all the slices the Normal tasks
/// ran.
type Waits = (Vec<u64>, Vec<u64>, u64);

const NORMALS: u64 = 4;
const STEPS: u64 = 10;
/// Each Normal task stops by itself after this many slices.
const MAX_SLICES: u64 = 50_000;

/// A service: one connection task serving requests that take `STEPS`
/// slices of work each (a burn, then a yield), next to `NORMALS` Normal
/// tasks burning CPU in slices of 100 us. For an urgent request (`U`) the
/// connection task runs at High until it has replied; for an ordinary
/// one (`N`), at Normal. Between requests it waits at Normal
/// (`wait_high` false: it raises itself once it has read an urgent
/// request) or at High (it lowers itself for an ordinary one). The
/// client counts the Normal slices that ran while it waited for each
/// reply: counts, not times, so the machine's load does not matter.
fn serve(wait_high: bool) -> Waits {
    let ex = Executor::builder().ring_entries(64).build().unwrap();
    let slices = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let normals: Vec<_> = (0..NORMALS)
        .map(|_| {
            let (n, s) = (slices.clone(), stop.clone());
            ex.spawn(Priority::Normal, move |cx| {
                let mut mine = 0;
                while !s.load(Ordering::Relaxed) && mine < MAX_SLICES {
                    common::burn(Duration::from_micros(100));
                    n.fetch_add(1, Ordering::Relaxed);
                    mine += 1;
                    cx.yield_now().unwrap();
                }
                mine
            })
        })
        .collect();
    let listener =
        monad_async::io::TcpListener::bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
            .unwrap();
    let addr = listener.local_addr().unwrap();
    let idle = if wait_high {
        Priority::High
    } else {
        Priority::Normal
    };
    let conn = ex
        .build_task()
        .name("conn-1")
        .priority(idle)
        .spawn(move |cx| {
            let (stream, _) = listener.accept(cx)?;
            let mut served = 0;
            loop {
                cx.set_priority(idle);
                let mut req = [0u8; 1];
                stream.read_exact(cx, &mut req)?;
                if req[0] == b'Q' {
                    return Ok::<_, std::io::Error>(served);
                }
                cx.set_priority(if req[0] == b'U' {
                    Priority::High
                } else {
                    Priority::Normal
                });
                for _ in 0..STEPS {
                    common::burn(Duration::from_micros(100));
                    cx.yield_now()?;
                }
                stream.write_all(cx, &req)?;
                served += 1;
            }
        });
    let (n, s) = (slices.clone(), stop.clone());
    let client = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        let (mut urgent, mut ordinary) = (Vec::new(), Vec::new());
        for i in 0..20 {
            let kind = if i % 2 == 0 { b'U' } else { b'N' };
            let before = n.load(Ordering::Relaxed);
            c.write_all(&[kind]).unwrap();
            let mut reply = [0u8; 1];
            c.read_exact(&mut reply).unwrap();
            assert_eq!(reply[0], kind);
            let waited = n.load(Ordering::Relaxed) - before;
            if kind == b'U' {
                &mut urgent
            } else {
                &mut ordinary
            }
            .push(waited);
            std::thread::sleep(Duration::from_millis(1));
        }
        c.write_all(b"Q").unwrap();
        s.store(true, Ordering::Relaxed);
        (urgent, ordinary)
    });
    assert_eq!(conn.join().unwrap().unwrap(), 20);
    let (urgent, ordinary) = client.join().unwrap();
    let burnt = normals.into_iter().map(|h| h.join().unwrap()).sum();
    (urgent, ordinary, burnt)
}

/// The middle value: one outlier (the client's thread descheduled while
/// it counts) does not decide.
fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

/// An urgent request is served ahead of the Normal work, which goes on:
/// its reply waits a few Normal slices, an ordinary one a round of the
/// Normal tasks per step of its work.
#[test]
fn urgent_request_is_served_ahead_of_normal_work() {
    // Waiting at High: the request is picked up at the next slice
    // boundary (the executor looks at the ring before a lower-priority
    // slice while High I/O is in flight), then served at High.
    let (urgent, ordinary, burnt) = serve(true);
    eprintln!("waiting at High: urgent {urgent:?}, ordinary {ordinary:?}, {burnt} slices in all");
    assert!(burnt < NORMALS * MAX_SLICES, "the Normal work went on");
    assert!(
        median(&urgent) <= NORMALS,
        "urgent replies waited {urgent:?} Normal slices"
    );
    assert!(
        median(&ordinary) >= STEPS * NORMALS / 2,
        "ordinary replies waited only {ordinary:?}: the test cannot tell them apart"
    );

    // Waiting at Normal, raising itself once it has read the request: the
    // request's completion is seen at the executor's periodic look at the
    // ring (every 32 slices while tasks are runnable), then the task waits
    // a round of the Normal tasks before it can raise itself; after that
    // it is served ahead of them.
    let (urgent, ordinary, burnt) = serve(false);
    eprintln!("waiting at Normal: urgent {urgent:?}, ordinary {ordinary:?}, {burnt} slices in all");
    assert!(burnt < NORMALS * MAX_SLICES, "the Normal work went on");
    assert!(
        median(&urgent) <= 32 + 2 * NORMALS + 2,
        "urgent replies waited {urgent:?} Normal slices"
    );
    assert!(
        median(&urgent) + STEPS * NORMALS / 2 <= median(&ordinary),
        "raising saved less than expected: urgent {urgent:?}, ordinary {ordinary:?}"
    );
}
