//! wait_idle and Drop: wait_idle returns once everything spawned so far
//! (and what it spawned) has finished, and refuses to wait from inside the
//! pool (EDEADLK); dropping a pool runs everything already spawned to its
//! end, running closures included, then stops and joins the threads; a
//! pool dropped from inside its own closure leaks rather than deadlock;
//! building with zero threads is EINVAL. (Cancelling pool work: see
//! pool_cancel.rs.)

use monad_async::{Priority, Switcher, ThreadPool};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[test]
fn zero_threads_is_einval() {
    let err = ThreadPool::builder().threads(0).build().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
}

#[test]
fn wait_idle_waits_for_children_too() {
    let pool = Arc::new(ThreadPool::builder().threads(2).build().unwrap());
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        let (p, d) = (Arc::clone(&pool), Arc::clone(&done));
        pool.spawn(Priority::Normal, move |_cx| {
            std::thread::sleep(Duration::from_micros(200));
            let d2 = Arc::clone(&d);
            // A child spawned from inside is waited for as well.
            p.spawn(Priority::Low, move |_cx| d2.fetch_add(1, Ordering::SeqCst));
            d.fetch_add(1, Ordering::SeqCst);
        });
    }
    pool.wait_idle().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 100);
    // Idle already: returns at once.
    let t0 = Instant::now();
    pool.wait_idle().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[test]
fn wait_idle_from_inside_is_edeadlk() {
    let pool = Arc::new(ThreadPool::builder().threads(1).build().unwrap());
    let p = Arc::clone(&pool);
    let err = pool
        .spawn(Priority::Normal, move |_cx| p.wait_idle().unwrap_err())
        .join()
        .unwrap();
    assert_eq!(err.raw_os_error(), Some(libc::EDEADLK));
}

#[test]
fn drop_runs_everything_spawned() {
    let done = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::builder().threads(1).build().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&release);
    // A running closure, and work queued behind it.
    pool.spawn(Priority::High, move |_cx| {
        while !r.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_micros(100));
        }
    });
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let d = Arc::clone(&done);
            pool.spawn(Priority::ALL[i % 3], move |_cx| {
                d.fetch_add(1, Ordering::SeqCst)
            })
        })
        .collect();
    let dropper = std::thread::spawn(move || drop(pool));
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !dropper.is_finished(),
        "drop must wait for the running closure"
    );
    release.store(true, Ordering::SeqCst);
    dropper.join().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 20);
    for h in handles {
        assert!(h.is_finished());
        h.join().unwrap();
    }
}

/// Counts worker threads that have exited: a thread-local whose
/// destructor runs when its thread ends.
struct ExitFlag(Arc<AtomicUsize>);

impl Drop for ExitFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static EXIT_FLAG: std::cell::RefCell<Option<ExitFlag>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn drop_stops_and_joins_the_threads() {
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    let exited = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let gate = Arc::new(std::sync::Barrier::new(2));
    // Two closures meeting at a barrier: one on each thread.
    for _ in 0..2 {
        let (tx, exited, gate) = (tx.clone(), Arc::clone(&exited), Arc::clone(&gate));
        pool.spawn(Priority::Normal, move |_cx| {
            gate.wait();
            EXIT_FLAG.with(|f| *f.borrow_mut() = Some(ExitFlag(exited)));
            tx.send(std::thread::current().name().unwrap().to_owned())
                .unwrap();
        });
    }
    drop(tx);
    let mut names: Vec<String> = rx.iter().collect();
    names.sort();
    assert_eq!(names, ["monad-async-pool-0", "monad-async-pool-1"]);
    assert_eq!(exited.load(Ordering::SeqCst), 0);
    drop(pool);
    // Both worker threads have ended (their thread-locals are gone).
    assert_eq!(exited.load(Ordering::SeqCst), 2);
}

#[test]
fn dropped_from_inside_its_own_closure_leaks_instead_of_deadlocking() {
    let pool = Arc::new(
        ThreadPool::builder()
            .threads(1)
            .switcher(Switcher::None)
            .build()
            .unwrap(),
    );
    let p = Arc::clone(&pool);
    let (tx, rx) = mpsc::channel();
    let h = pool.spawn(Priority::Normal, move |_cx| {
        // Wait until the outside reference is gone, then drop the last.
        rx.recv().unwrap();
        drop(p);
        "dropped"
    });
    drop(pool);
    tx.send(()).unwrap();
    assert_eq!(h.join().unwrap(), "dropped");
}
