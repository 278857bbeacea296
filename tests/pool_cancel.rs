//! `JoinHandle::cancel` on a thread pool's work, from any thread: queued
//! work never starts and joins as cancelled; running work sees
//! `ECANCELED` at its next suspension point (or `is_cancelled`, without
//! one) and joins as cancelled; finished work is unaffected (`false`),
//! and so is later work on the same reused task, which a stale handle's
//! cancel must never hit.

use monad_async::{Priority, Switcher, ThreadPool};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pool(threads: usize, switcher: Switcher) -> ThreadPool {
    ThreadPool::builder()
        .threads(threads)
        .switcher(switcher)
        .ring_entries(if switcher == Switcher::None { 0 } else { 32 })
        .build()
        .unwrap()
}

/// Occupies the pool's only worker until `release` is set.
fn blocker(pool: &ThreadPool, release: &Arc<AtomicBool>) -> monad_async::JoinHandle<()> {
    let r = Arc::clone(release);
    let started = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&started);
    let h = pool.spawn(Priority::High, move |_cx| {
        s.store(true, Ordering::SeqCst);
        while !r.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    h
}

#[test]
fn queued_work_never_starts_and_joins_cancelled() {
    for sw in [Switcher::None, Switcher::Asm] {
        let pool = pool(1, sw);
        let release = Arc::new(AtomicBool::new(false));
        let b = blocker(&pool, &release);
        let ran = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let ran = Arc::clone(&ran);
                pool.spawn(Priority::ALL[i % 3], move |_cx| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        // Cancel every other one, from another thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                for h in handles.iter().step_by(2) {
                    assert!(h.cancel().unwrap());
                }
            });
        });
        release.store(true, Ordering::SeqCst);
        b.join().unwrap();
        for (i, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(v) => {
                    assert_eq!(i % 2, 1, "{sw:?}");
                    assert_eq!(v, i);
                }
                Err(e) => {
                    assert_eq!(i % 2, 0, "{sw:?}");
                    assert!(e.is_cancelled());
                }
            }
        }
        assert_eq!(ran.load(Ordering::SeqCst), 50, "{sw:?}");
    }
}

#[test]
fn sleeping_work_is_woken_and_joins_cancelled() {
    let pool = pool(2, Switcher::Asm);
    let (tx, rx) = std::sync::mpsc::channel();
    let h = pool.spawn(Priority::Normal, move |cx| {
        tx.send(()).unwrap();
        cx.sleep(Duration::from_secs(60))
    });
    rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(5)); // asleep by now
    let start = Instant::now();
    assert!(h.cancel().unwrap());
    // The closure's outcome is dropped: the work ends cancelled.
    let err = h.join().unwrap_err();
    assert!(err.is_cancelled());
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn running_work_observes_the_cancel_through_its_context() {
    // Observed through a channel, since the outcome is dropped.
    let pool = pool(2, Switcher::Asm);
    let (tx, rx) = std::sync::mpsc::channel();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let h = pool.spawn(Priority::Normal, move |cx| {
        tx.send(()).unwrap();
        let e = cx.sleep(Duration::from_secs(60)).unwrap_err();
        seen_tx
            .send((
                e.raw_os_error(),
                cx.yield_now().unwrap_err().raw_os_error(),
                cx.is_cancelled(),
            ))
            .unwrap();
    });
    rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert!(h.cancel().unwrap());
    let ecanceled = Some(libc::ECANCELED);
    assert_eq!(seen_rx.recv().unwrap(), (ecanceled, ecanceled, true));
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn running_work_without_suspensions_sees_is_cancelled() {
    // The none switcher: the closure polls is_cancelled while it computes.
    let pool = pool(1, Switcher::None);
    let (tx, rx) = std::sync::mpsc::channel();
    let h = pool.spawn(Priority::Normal, move |cx| {
        tx.send(()).unwrap();
        let start = Instant::now();
        while !cx.is_cancelled() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "never saw the cancel"
            );
            std::hint::spin_loop();
        }
        "saw it"
    });
    rx.recv().unwrap();
    assert!(h.cancel().unwrap());
    assert!(h.join().unwrap_err().is_cancelled());
}

#[test]
fn finished_work_is_not_affected() {
    let pool = pool(1, Switcher::None);
    let h = pool.spawn(Priority::Normal, |_cx| 5);
    pool.wait_idle().unwrap();
    assert!(!h.cancel().unwrap());
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn a_stale_cancel_never_hits_later_work_on_the_reused_task() {
    // Many short jobs on few tasks, each cancelled by its handle (from
    // another thread) racing with its end: every job either ends
    // normally or cancelled, while jobs spawned after it (reusing its
    // task) and never cancelled must all return their value.
    let pool = Arc::new(pool(2, Switcher::Asm));
    const ROUNDS: usize = 2000;
    let mut cancelled = 0;
    for i in 0..ROUNDS {
        let victim = pool.spawn(Priority::ALL[i % 3], move |cx| {
            if i % 4 == 0 {
                let _ = cx.yield_now();
            }
            i
        });
        let canceller = std::thread::spawn(move || {
            let _ = victim.cancel().unwrap();
            victim
        });
        let bystanders: Vec<_> = (0..3)
            .map(|j| {
                pool.spawn(Priority::ALL[(i + j) % 3], move |cx| {
                    cx.yield_now().unwrap();
                    i * 10 + j
                })
            })
            .collect();
        let victim = canceller.join().unwrap();
        match victim.join() {
            Ok(v) => assert_eq!(v, i),
            Err(e) => {
                assert!(e.is_cancelled());
                cancelled += 1;
            }
        }
        for (j, b) in bystanders.into_iter().enumerate() {
            assert_eq!(b.join().unwrap(), i * 10 + j, "round {i}");
        }
    }
    // Tasks were reused, not one per job.
    assert!(pool.stats().tasks_created < 64, "{:?}", pool.stats());
    eprintln!("{cancelled} of {ROUNDS} victims ended cancelled");
}

#[test]
fn cancel_from_a_sibling_task_on_the_same_worker() {
    // The canceller runs on the very worker that runs (and has suspended)
    // the victim: the local path, which must not wait for itself.
    let pool = Arc::new(pool(1, Switcher::Asm));
    let victim = pool.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_secs(60)));
    let h = pool.spawn(Priority::Normal, move |cx| {
        cx.sleep(Duration::from_millis(2)).unwrap(); // the victim sleeps
        let requested = victim.cancel().unwrap();
        (requested, victim.join().unwrap_err().is_cancelled())
    });
    assert_eq!(h.join().unwrap(), (true, true));
}
