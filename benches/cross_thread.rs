//! Cross-thread attach: the bench thread spawns onto an executor running
//! on another thread and waits until the task has run. Against an
//! executor that is awake (polling) and one that sleeps (blocked waiting
//! for work, so every spawn must wake it). tokio: `Runtime::spawn` from
//! the bench thread onto a one-worker multi-thread runtime, whose worker
//! is kept awake by a yielding task or left to park.
//!
//! Each figure is a full round trip: spawn, the executor notices, runs the
//! task, the bench thread sees its effect. The `awake/join` pair instead
//! joins the task's handle from the bench thread (tokio: `block_on` of its
//! `JoinHandle`), so it also measures how a blocked joiner is woken.

use criterion::{criterion_group, criterion_main, Criterion};
use monad_async::{Executor, ExecutorHandle, Priority};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

struct Remote {
    handle: ExecutorHandle,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Remote {
    fn start(awake: bool) -> Remote {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let ex = Executor::new().unwrap();
            tx.send(ex.handle()).unwrap();
            let timeout = if awake { Some(Duration::ZERO) } else { None };
            while !stop2.load(Ordering::Relaxed) {
                let _ = ex.run(usize::MAX, timeout);
            }
        });
        Remote {
            handle: rx.recv().unwrap(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.wake();
        let _ = self.thread.take().unwrap().join();
    }
}

fn wait_for(counter: &AtomicU64, want: u64) {
    while counter.load(Ordering::Acquire) < want {
        std::hint::spin_loop();
    }
}

/// `iters` round trips, timed together: each hands `spawn` a clone of
/// `done` for a task that bumps it, then waits until the task has.
fn round_trips(
    done: &Arc<AtomicU64>,
    iters: u64,
    mut spawn: impl FnMut(Arc<AtomicU64>),
) -> Duration {
    let base = done.load(Ordering::Acquire);
    let start = Instant::now();
    for i in 1..=iters {
        spawn(done.clone());
        wait_for(done, base + i);
    }
    start.elapsed()
}

fn cross_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_thread_attach");
    for (name, awake) in [("monad_async/awake", true), ("monad_async/sleeping", false)] {
        let remote = Remote::start(awake);
        let done = Arc::new(AtomicU64::new(0));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                round_trips(&done, iters, |d| {
                    remote
                        .handle
                        .spawn(Priority::Normal, move |_cx| {
                            d.fetch_add(1, Ordering::Release);
                        })
                        .unwrap();
                })
            })
        });
        if awake {
            // Spawn, then join from this (non-executor) thread: the join
            // blocks until the executor has run the task.
            g.bench_function("monad_async/awake/join", |b| {
                b.iter(|| {
                    remote
                        .handle
                        .spawn(Priority::Normal, |_cx| 1u64)
                        .unwrap()
                        .join()
                        .unwrap()
                })
            });
        }
        drop(remote);
    }

    for (name, awake) in [("tokio/awake", true), ("tokio/sleeping", false)] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let keeper = awake.then(|| {
            let stop = stop.clone();
            rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::task::yield_now().await;
                }
            })
        });
        let done = Arc::new(AtomicU64::new(0));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                round_trips(&done, iters, |d| {
                    rt.spawn(async move {
                        d.fetch_add(1, Ordering::Release);
                    });
                })
            })
        });
        if awake {
            g.bench_function("tokio/awake/join", |b| {
                b.iter(|| rt.block_on(rt.spawn(async { 1u64 })).unwrap())
            });
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(k) = keeper {
            rt.block_on(k).unwrap();
        }
    }
    g.finish();
}

criterion_group!(benches, cross_thread);
criterion_main!(benches);
