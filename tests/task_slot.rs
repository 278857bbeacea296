//! The per-task slot that carries a spawn's closure and outcome: reused
//! with its task once the handle is gone, replaced while a stale handle is
//! still alive, and every closure and outcome dropped exactly once, on
//! every path (joined, detached before or after the task ran, cancelled,
//! executor dropped first, handle on another thread), for small values
//! stored in place and large or over-aligned ones that are boxed.

use monad_async::{Executor, JoinHandle, Priority};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

/// Counts its drops.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn count(c: &AtomicUsize) -> usize {
    c.load(Ordering::SeqCst)
}

/// Too large to be stored in place.
#[derive(Clone, PartialEq, Debug)]
struct Big([u64; 40]);

/// Alignment larger than the in-place storage offers.
#[derive(Clone, Copy, PartialEq, Debug)]
#[repr(align(128))]
struct OverAligned(u64);

#[test]
fn a_finished_unjoined_handle_survives_its_task_being_reused() {
    let ex = Executor::new().unwrap();
    let stale = ex.spawn(Priority::Normal, |_cx| String::from("first"));
    ex.run_until_idle().unwrap();
    assert!(stale.is_finished());
    // The only task is idle again, but its slot still holds "first" for
    // the stale handle: new work must not overwrite it.
    let values: Vec<String> = (0..100)
        .map(|i| {
            ex.spawn(Priority::Normal, move |_cx| format!("later {i}"))
                .join()
                .unwrap()
        })
        .collect();
    assert_eq!(values[99], "later 99");
    assert_eq!(stale.stats().unwrap().suspensions, 0);
    assert_eq!(stale.join().unwrap(), "first");
    assert_eq!(ex.stats().tasks_created, 1);
}

#[test]
fn stale_handles_dropped_later_drop_their_outcomes_once() {
    let ex = Executor::new().unwrap();
    let drops = counter();
    let mut stale = Vec::new();
    for _ in 0..50 {
        let d = drops.clone();
        let h = ex.spawn(Priority::Normal, move |_cx| Counted(d));
        ex.run_until_idle().unwrap();
        stale.push(h);
    }
    assert_eq!(
        count(&drops),
        0,
        "outcomes live in the stale handles' slots"
    );
    // Interleave more reuse with the drops of the stale handles.
    for (i, h) in stale.into_iter().enumerate() {
        drop(h);
        assert_eq!(count(&drops), i + 1);
        let d = drops.clone();
        ex.spawn(Priority::Normal, move |_cx| Counted(d))
            .join()
            .unwrap();
        assert_eq!(count(&drops), i + 2);
        drops.fetch_sub(1, Ordering::SeqCst);
    }
    assert_eq!(count(&drops), 50);
    assert_eq!(ex.stats().tasks_created, 1);
}

#[test]
fn a_handle_dropped_before_its_task_runs() {
    let ex = Executor::new().unwrap();
    let (ran, drops) = (counter(), counter());
    for _ in 0..10 {
        let (r, d) = (ran.clone(), drops.clone());
        drop(ex.spawn(Priority::Normal, move |cx| {
            cx.yield_now().unwrap();
            r.fetch_add(1, Ordering::SeqCst);
            Counted(d)
        }));
    }
    assert_eq!(count(&drops), 0);
    ex.run_until_idle().unwrap();
    assert_eq!(count(&ran), 10, "detached tasks still run");
    assert_eq!(
        count(&drops),
        10,
        "their outcomes are dropped by the executor"
    );
    // Their slots are free again: the next spawns reuse them.
    let created = ex.stats().tasks_created;
    for i in 0..10 {
        assert_eq!(ex.spawn(Priority::Normal, move |_cx| i).join().unwrap(), i);
    }
    assert_eq!(ex.stats().tasks_created, created);
}

#[test]
fn a_handle_dropped_while_its_task_is_suspended() {
    let ex = Executor::new().unwrap();
    let drops = counter();
    let d = drops.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        cx.sleep(Duration::from_millis(2)).unwrap();
        Counted(d)
    });
    ex.run(1, Some(Duration::ZERO)).unwrap(); // launched, now sleeping
    drop(h);
    ex.run_until_idle().unwrap();
    assert_eq!(count(&drops), 1);
}

#[test]
fn a_detached_cancelled_task_drops_its_closure_once() {
    let ex = Executor::new().unwrap();
    let drops = counter();
    let guard = Counted(drops.clone());
    let h = ex.spawn(Priority::Normal, move |_cx| {
        let _g = &guard;
        unreachable!("cancelled before launch")
    });
    let again = ex.spawn(Priority::Normal, |_cx| 1);
    assert!(ex.cancel(&h).unwrap());
    assert_eq!(
        count(&drops),
        1,
        "the unrun closure is dropped by the cancel"
    );
    drop(h);
    assert_eq!(again.join().unwrap(), 1);
    assert_eq!(count(&drops), 1);
}

#[test]
fn a_handle_joined_on_another_thread_before_and_after_completion() {
    let ex = Executor::new().unwrap();
    // Before: the other thread blocks until the executor runs the task.
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.sleep(Duration::from_millis(5)).unwrap();
        Big([7; 40])
    });
    let (tx, rx) = mpsc::channel();
    let joiner = std::thread::spawn(move || {
        tx.send(()).unwrap();
        h.join().unwrap()
    });
    rx.recv().unwrap();
    ex.run_until_idle().unwrap();
    assert_eq!(joiner.join().unwrap(), Big([7; 40]));

    // After: the task finished and its task was reused meanwhile.
    let h = ex.spawn(Priority::Normal, |_cx| 5u64);
    ex.run_until_idle().unwrap();
    for i in 0..10u64 {
        assert_eq!(ex.spawn(Priority::Normal, move |_cx| i).join().unwrap(), i);
    }
    assert_eq!(
        std::thread::spawn(move || h.join().unwrap())
            .join()
            .unwrap(),
        5
    );
    assert_eq!(ex.stats().tasks_created, 1);
}

#[test]
fn stale_handles_released_on_other_threads_while_the_owner_reuses() {
    // Handles of finished work go to another thread, which drops or joins
    // them while this thread keeps reusing (and orphaning) their slots.
    let ex = Executor::new().unwrap();
    let drops = counter();
    let (tx, rx) = mpsc::channel::<JoinHandle<Counted>>();
    let releaser = std::thread::spawn(move || {
        let mut joined = 0;
        for (i, h) in rx.into_iter().enumerate() {
            if i % 2 == 0 {
                drop(h);
            } else {
                drop(h.join().unwrap());
                joined += 1;
            }
        }
        joined
    });
    const N: usize = 20_000;
    let mut batch = Vec::new();
    for i in 0..N {
        let d = drops.clone();
        batch.push(ex.spawn(Priority::Normal, move |_cx| Counted(d)));
        if batch.len() == 8 || i == N - 1 {
            ex.run_until_idle().unwrap();
            for h in batch.drain(..) {
                tx.send(h).unwrap();
            }
        }
    }
    drop(tx);
    assert_eq!(releaser.join().unwrap(), N / 2);
    assert_eq!(count(&drops), N);
}

#[test]
fn large_and_over_aligned_closures_and_results() {
    let ex = Executor::new().unwrap();
    let big = Big([3; 40]);
    let captured = big.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        cx.yield_now().unwrap();
        let mut out = captured.clone();
        out.0[0] = 4;
        (captured, out)
    });
    let (a, b) = h.join().unwrap();
    assert_eq!(a, big);
    assert_eq!(b.0[0], 4);

    let al = OverAligned(9);
    let h = ex.spawn(Priority::Normal, move |_cx| {
        assert_eq!(std::ptr::addr_of!(al) as usize % 128, 0);
        OverAligned(al.0 + 1)
    });
    let got = h.join().unwrap();
    assert_eq!(got, OverAligned(10));

    // Boxed outcomes dropped by every path: join, detach before and after
    // the run, executor drop.
    let drops = counter();
    let spawn_big = |ex: &Executor| {
        let d = drops.clone();
        ex.spawn(Priority::Normal, move |_cx| (Counted(d), Big([1; 40])))
    };
    let joined = spawn_big(&ex);
    drop(spawn_big(&ex)); // detached before it runs
    let finished = spawn_big(&ex);
    ex.run_until_idle().unwrap();
    assert_eq!(count(&drops), 1);
    drop(finished); // detached after it ran
    assert_eq!(count(&drops), 2);
    drop(joined.join().unwrap());
    assert_eq!(count(&drops), 3);
    let pending = spawn_big(&ex);
    drop(ex);
    assert!(pending.join().unwrap_err().is_cancelled());
    assert_eq!(count(&drops), 3, "never ran, so never made a value");

    // A large closure never run: dropped by the cancel.
    let ex = Executor::new().unwrap();
    let d = Counted(drops.clone());
    let payload = Big([2; 40]);
    let h = ex.spawn(Priority::Normal, move |_cx| {
        let _ = (&d, &payload);
    });
    ex.cancel(&h).unwrap();
    assert_eq!(count(&drops), 4);
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn zero_sized_closures_and_results() {
    let ex = Executor::new().unwrap();
    #[derive(Debug, PartialEq)]
    struct Unit;
    for _ in 0..3 {
        assert_eq!(ex.spawn(Priority::Normal, |_cx| Unit).join().unwrap(), Unit);
    }
}

#[test]
fn panics_with_large_payloads_through_reused_slots() {
    let ex = Executor::new().unwrap();
    for i in 0..20 {
        let big = Big([i; 40]);
        let h = ex.spawn(Priority::Normal, move |_cx| -> Big {
            if i % 2 == 0 {
                std::panic::panic_any(big)
            }
            big
        });
        match h.join() {
            Ok(b) => assert_eq!(b, Big([i; 40])),
            Err(e) => {
                let payload = e.into_panic();
                assert_eq!(payload.downcast_ref::<Big>(), Some(&Big([i; 40])));
            }
        }
    }
    assert_eq!(ex.stats().tasks_created, 1);
}

#[test]
fn the_executor_dropped_before_finished_and_pending_handles() {
    let drops = counter();
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let d = drops.clone();
    let finished = ex.spawn(Priority::Normal, move |_cx| Counted(d));
    let d = drops.clone();
    let finished_remote = std::thread::spawn(move || {
        handle
            .spawn(Priority::Normal, move |_cx| Counted(d))
            .unwrap()
    })
    .join()
    .unwrap();
    ex.run_until_idle().unwrap();
    let d = drops.clone();
    let pending = ex.spawn(Priority::Normal, move |_cx| Counted(d));
    drop(ex);
    assert_eq!(count(&drops), 0);
    // The handles outlive the executor: their slots are theirs to free.
    assert!(pending.join().unwrap_err().is_cancelled());
    drop(finished_remote);
    assert_eq!(count(&drops), 1);
    drop(finished.join().unwrap());
    assert_eq!(count(&drops), 2);
}

#[test]
fn remote_slots_reused_while_stale_handles_live_on_many_threads() {
    let ex = Executor::new().unwrap();
    let drops = counter();
    const THREADS: usize = 3;
    const PER: usize = 5_000;
    let go = Arc::new(Barrier::new(THREADS));
    let spawners: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = ex.handle();
            let (drops, go) = (drops.clone(), go.clone());
            std::thread::spawn(move || {
                go.wait();
                let mut kept = Vec::new();
                let mut sum = 0;
                for i in 0..PER {
                    let d = drops.clone();
                    let h = handle
                        .spawn(Priority::Normal, move |_cx| (Counted(d), i))
                        .unwrap();
                    match i % 3 {
                        0 => drop(h),      // detached at once
                        1 => kept.push(h), // stale while its slot is reused
                        _ => sum += h.join().unwrap().1,
                    }
                    if kept.len() == 16 {
                        sum += kept.drain(..).map(|h| h.join().unwrap().1).sum::<usize>();
                    }
                }
                sum + kept.into_iter().map(|h| h.join().unwrap().1).sum::<usize>() + t
            })
        })
        .collect();
    while !spawners.iter().all(|s| s.is_finished()) {
        let _ = ex.run(usize::MAX, Some(Duration::from_millis(1)));
    }
    let sum: usize = spawners.into_iter().map(|s| s.join().unwrap()).sum();
    ex.run_until_idle().unwrap();
    let want: usize = (0..PER).filter(|i| i % 3 != 0).sum::<usize>() * THREADS + 3;
    assert_eq!(sum, want);
    assert_eq!(count(&drops), THREADS * PER);
    assert_eq!(ex.stats().exited, (THREADS * PER) as u64);
}
