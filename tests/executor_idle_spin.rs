//! Cross-thread wakes and the idle spin ([`ExecutorBuilder::idle_spin`]):
//! an executor with nothing to do spins briefly before it sleeps while
//! its recent sleeps were ended soon by other threads, never otherwise.
//!
//! * Two executors on two threads pass a turn through `TaskWaker`s, with
//!   and without the spin, also with the waker pausing 0-40 us before each
//!   wake so that wakes land before, during and after the spin's end (the
//!   executor falling asleep): no wake is lost (a lost one hangs the test).
//! * After that ping-pong, an idle executor uses (almost) no CPU.
//! * Four threads wake 100 parked tasks until each has resumed 200 times.
//! * An executor dropped while threads keep waking its parked tasks.
//!
//! [`ExecutorBuilder::idle_spin`]: monad_async::ExecutorBuilder::idle_spin

mod common;

use monad_async::{Executor, Priority, TaskWaker};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

fn busy_wait(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {}
}

/// `rounds` round trips between a task here and one on another thread's
/// executor; the other side pauses up to 40 us before each wake when
/// `jitter`. Returns this thread's executor CPU time while it then idles
/// 300 ms.
fn ping_pong(idle_spin: bool, rounds: u32, jitter: bool) -> Duration {
    let (tx_b, rx_b) = mpsc::channel::<TaskWaker>();
    let (tx_a, rx_a) = mpsc::channel::<TaskWaker>();
    let other = thread::spawn(move || {
        let ex = Executor::builder().idle_spin(idle_spin).build().unwrap();
        let h = ex.spawn(Priority::Normal, move |cx| {
            tx_b.send(cx.waker()).unwrap();
            let a = rx_a.recv().unwrap();
            let mut seed = 12345u32;
            for _ in 0..rounds {
                cx.park().unwrap();
                if jitter {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    busy_wait(Duration::from_nanos(u64::from((seed >> 8) % 40_000)));
                }
                a.wake();
            }
        });
        ex.run_until_idle().unwrap();
        h.join().unwrap();
    });
    let ex = Executor::builder().idle_spin(idle_spin).build().unwrap();
    let h = ex.spawn(Priority::Normal, move |cx| {
        tx_a.send(cx.waker()).unwrap();
        let b = rx_b.recv().unwrap();
        for _ in 0..rounds {
            b.wake();
            cx.park().unwrap();
        }
    });
    ex.run_until_idle().unwrap();
    h.join().unwrap();
    other.join().unwrap();
    // Idle with a parked task: nothing wakes it for 300 ms.
    let (wtx, wrx) = mpsc::channel::<TaskWaker>();
    let parked = ex.spawn(Priority::Normal, move |cx| {
        wtx.send(cx.waker()).unwrap();
        cx.park()
    });
    let _ = ex.run(1, Some(Duration::ZERO));
    let waker = wrx.recv().unwrap();
    let cpu0 = common::thread_cpu();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        let left = Duration::from_millis(300).saturating_sub(start.elapsed());
        let _ = ex.run(usize::MAX, Some(left));
    }
    let idle_cpu = common::thread_cpu() - cpu0;
    waker.wake();
    ex.run_until_idle().unwrap();
    parked.join().unwrap().unwrap();
    idle_cpu
}

#[test]
fn ping_pong_loses_no_wake_and_idles_without_cpu() {
    for idle_spin in [true, false] {
        for jitter in [false, true] {
            let rounds = if jitter { 2_000 } else { 20_000 };
            let start = Instant::now();
            let idle_cpu = ping_pong(idle_spin, rounds, jitter);
            println!(
                "idle_spin {idle_spin}, jitter {jitter}: {rounds} round trips in {:?} \
                 (with 300 ms idle); idle CPU {idle_cpu:?}",
                start.elapsed()
            );
            // At most one spin (20 us) and the sleeps around it.
            assert!(
                idle_cpu < Duration::from_millis(5),
                "an idle executor used {idle_cpu:?} of CPU in 300 ms"
            );
        }
    }
}

#[test]
fn many_threads_wake_many_tasks() {
    const TASKS: usize = 100;
    const RESUMES: usize = 200;
    const WAKERS: usize = 4;
    for idle_spin in [true, false] {
        let ex = Executor::builder().idle_spin(idle_spin).build().unwrap();
        let (tx, rx) = mpsc::channel::<TaskWaker>();
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let tx = tx.clone();
                ex.spawn(Priority::Normal, move |cx| {
                    tx.send(cx.waker()).unwrap();
                    let mut resumed = 0;
                    while resumed < RESUMES {
                        cx.park()?;
                        resumed += 1;
                    }
                    Ok::<_, std::io::Error>(resumed)
                })
            })
            .collect();
        drop(tx);
        let _ = ex.run(usize::MAX, Some(Duration::ZERO));
        let wakers: Arc<Vec<TaskWaker>> = Arc::new(rx.iter().take(TASKS).collect());
        assert_eq!(wakers.len(), TASKS);
        let done = Arc::new(AtomicBool::new(false));
        let resumed_by_wake = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..WAKERS)
            .map(|w| {
                let (wakers, done, won) = (wakers.clone(), done.clone(), resumed_by_wake.clone());
                thread::spawn(move || {
                    let mut seed = 777u32 + w as u32;
                    while !done.load(Ordering::Acquire) {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        if wakers[(seed >> 8) as usize % TASKS].wake() {
                            won.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), RESUMES);
        }
        done.store(true, Ordering::Release);
        for t in threads {
            t.join().unwrap();
        }
        // Each resume came from one wake that found the task parked, or
        // from a permit a wake left: never more resuming wakes than parks.
        let won = resumed_by_wake.load(Ordering::Relaxed);
        assert!(won > 0 && won <= TASKS * RESUMES, "{won} resuming wakes");
    }
}

#[test]
fn drop_while_remote_wakes_are_in_flight() {
    const TASKS: usize = 64;
    for round in 0..20u64 {
        let ex = Executor::builder()
            .idle_spin(round % 2 == 0)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel::<TaskWaker>();
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let tx = tx.clone();
                ex.spawn(Priority::Normal, move |cx| {
                    tx.send(cx.waker()).unwrap();
                    loop {
                        cx.park()?; // ECANCELED when the executor goes
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), std::io::Error>(())
                })
            })
            .collect();
        drop(tx);
        let _ = ex.run(usize::MAX, Some(Duration::ZERO));
        let wakers: Arc<Vec<TaskWaker>> = Arc::new(rx.iter().take(TASKS).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|w| {
                let (wakers, stop, calls) = (wakers.clone(), stop.clone(), calls.clone());
                thread::spawn(move || {
                    let mut seed = 99u32 + w;
                    while !stop.load(Ordering::Acquire) {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        wakers[(seed >> 8) as usize % TASKS].wake();
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Run while the wakes pour in, then drop in the middle of them.
        let until = Instant::now() + Duration::from_micros(2_000 + 100 * round);
        while Instant::now() < until {
            let _ = ex.run(usize::MAX, Some(Duration::from_micros(200)));
        }
        drop(ex);
        // Wakes after the drop find the executor gone.
        let c0 = calls.load(Ordering::Relaxed);
        while calls.load(Ordering::Relaxed) < c0 + 100 {
            thread::yield_now();
        }
        assert!(!wakers[0].wake());
        stop.store(true, Ordering::Release);
        for t in threads {
            t.join().unwrap();
        }
        // Every task ended cancelled: none was lost or resumed twice.
        for h in handles {
            match h.join() {
                Err(e) => assert!(e.is_cancelled(), "{e:?}"),
                Ok(r) => assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ECANCELED)),
            }
        }
    }
}
