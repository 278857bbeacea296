//! `ThreadPool::dump`: every worker answers with what its tasks are doing,
//! while Low closures keep the workers busy in 1 ms slices: tasks parked,
//! sleeping and waiting in a receive are listed on the worker that runs
//! them, with their names; a dump from inside a pool closure is refused
//! (its worker could not answer) instead of deadlocking.

mod common;

use monad_async::error::ErrorExt;
use monad_async::io::UnixStream;
use monad_async::{Activity, Priority, Switcher, TaskWaker, ThreadPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Stops the slicers when the test ends, however it ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn every_worker_lists_its_tasks_while_busy() {
    let pool = ThreadPool::builder()
        .threads(2)
        .switcher(Switcher::Asm)
        .ring_entries(64)
        // A failed assertion must not leave the drop waiting for the
        // parked task and the sleeper.
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_panic = StopOnDrop(stop.clone());
    let slicers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            pool.spawn(Priority::Low, move |cx| {
                common::slice_until(cx, &stop, Duration::from_millis(1))
            })
        })
        .collect();
    let (tx, rx) = mpsc::channel::<TaskWaker>();
    let parked = pool
        .build_task()
        .name("parked")
        .priority(Priority::High)
        .spawn(move |cx| {
            tx.send(cx.waker()).unwrap();
            cx.park()
        });
    let sleeper = pool
        .build_task()
        .name("sleeper")
        .priority(Priority::Normal)
        .spawn(|cx| cx.sleep(Duration::from_secs(30)));
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = UnixStream::from(a);
    let receiver = pool
        .build_task()
        .name("receiver")
        .priority(Priority::Normal)
        .spawn(move |cx| {
            let mut buf = [0u8; 1];
            a.recv(cx, &mut buf)
        });
    let waker = rx.recv().unwrap();
    // Everything reaches its wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    let dumps = loop {
        let dumps = pool.dump().unwrap();
        let waiting = dumps
            .iter()
            .flat_map(|d| d.iter())
            .filter(|t| {
                matches!(
                    t.activity(),
                    Activity::Parked | Activity::Sleeping | Activity::Io
                )
            })
            .count();
        if waiting == 3 {
            break dumps;
        }
        assert!(Instant::now() < deadline, "not all waiting: {dumps:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(dumps.len(), 2);
    let all: Vec<_> = dumps.iter().flat_map(|d| d.iter()).collect();
    let named = |n: &str| all.iter().find(|t| t.name() == Some(n)).copied().unwrap();
    assert_eq!(named("parked").activity(), Activity::Parked);
    assert_eq!(named("parked").id(), parked.id());
    assert_eq!(named("sleeper").activity(), Activity::Sleeping);
    assert_eq!(named("receiver").activity(), Activity::Io);
    assert_eq!(named("receiver").io().unwrap().name(), "recv");
    // The slicers a worker has taken are listed (one may still be queued
    // while both workers are busy), as runnable Low tasks; no dump task
    // (it leaves itself out).
    let others: Vec<_> = all.iter().filter(|t| t.name().is_none()).collect();
    assert!((1..=2).contains(&others.len()), "{all:#?}");
    for t in others {
        assert_eq!(t.priority(), Priority::Low);
        assert!(
            matches!(t.activity(), Activity::Runnable | Activity::PendingLaunch),
            "{t}"
        );
    }

    // From inside a pool closure: refused, not a deadlock.
    let inner = {
        let p2 = Arc::new(ThreadPool::builder().threads(1).build().unwrap());
        let p3 = p2.clone();
        let h = p2.spawn(Priority::Normal, move |_cx| p3.dump().map(|_| ()));
        h.join().unwrap()
    };
    assert_eq!(inner.unwrap_err().raw_os_error(), Some(libc::EDEADLK));

    stop.store(true, Ordering::Relaxed);
    waker.wake();
    std::io::Write::write_all(&mut &b, b"x").unwrap();
    sleeper.cancel().unwrap();
    parked.join().unwrap().unwrap();
    receiver.join().unwrap().unwrap();
    match sleeper.join() {
        Ok(Err(e)) => assert!(e.is_cancelled(), "{e}"),
        Err(e) => assert!(e.is_cancelled(), "{e}"),
        Ok(Ok(())) => panic!("the sleeper slept 30 s"),
    }
    for s in slicers {
        s.join().unwrap().unwrap();
    }
}
