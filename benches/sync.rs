//! `sync` primitives against tokio's, in the same run (issue 10).
//!
//! * `pingpong_same`: two tasks of one executor bounce a message through
//!   two `mpsc` channels (capacity 1); per round trip (two sends, two
//!   receives, two parks and wakes). Against tokio's `mpsc` between two
//!   tasks of a current-thread runtime, and our yield (one suspend and
//!   resume) as the reference the issue names; the floor is the bare
//!   park/wake round trip the channel is built on. Ours also without
//!   time tracking (`no_ticks`).
//! * `pingpong_cross`: the same between tasks of two executors on two
//!   threads; tokio: two current-thread runtimes on two threads.
//! * `mutex_1000`: 1,000 tasks of one executor each lock a shared mutex 10
//!   times, yielding once while holding it; per lock. tokio: 1,000 tasks
//!   on a current-thread runtime with `tokio::sync::Mutex`.
//!
//! may (stackful coroutines, one worker thread) runs the same-thread
//! ping-pong and the mutex in the same run; its cross-thread placement is
//! its scheduler's choice, so it has no cross-thread row.

use criterion::{criterion_group, criterion_main, Criterion};
use monad_async::sync::{mpsc, Mutex};
use monad_async::{Executor, Priority};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/contenders.rs"]
mod contenders;

/// Round trips between two tasks of `ex`; the time of the loop.
fn ours_same(ex: &Executor, iters: u64) -> Duration {
    let (tx_a, mut rx_a) = mpsc::channel::<u64>(1);
    let (tx_b, mut rx_b) = mpsc::channel::<u64>(1);
    ex.spawn(Priority::Normal, move |_cx| {
        while let Some(v) = rx_a.recv().unwrap() {
            tx_b.send(v).unwrap();
        }
    });
    let h = ex.spawn(Priority::Normal, move |_cx| {
        let start = Instant::now();
        for i in 0..iters {
            tx_a.send(i).unwrap();
            rx_b.recv().unwrap();
        }
        start.elapsed()
    });
    ex.run_until_idle().unwrap();
    h.join().unwrap()
}

/// The floor under a same-executor ping-pong: the bare park/wake round
/// trip (two wakes, two parks) through `TaskWaker`s, as in
/// `benches/park.rs`.
#[path = "common/park_ping_pong.rs"]
mod park_ping_pong;
use park_ping_pong::ping_pong_same_thread as park_floor;

fn tokio_same(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    rt.block_on(async {
        let (tx_a, mut rx_a) = tokio::sync::mpsc::channel::<u64>(1);
        let (tx_b, mut rx_b) = tokio::sync::mpsc::channel::<u64>(1);
        let echo = tokio::spawn(async move {
            while let Some(v) = rx_a.recv().await {
                tx_b.send(v).await.unwrap();
            }
        });
        let start = Instant::now();
        for i in 0..iters {
            tx_a.send(i).await.unwrap();
            rx_b.recv().await.unwrap();
        }
        let t = start.elapsed();
        drop(tx_a);
        echo.await.unwrap();
        t
    })
}

fn pingpong_same(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync/pingpong_same");
    let ex = Executor::new().unwrap();
    g.bench_function("monad_async/mpsc", |b| {
        b.iter_custom(|iters| ours_same(&ex, iters))
    });
    // Time tracking off: no tick read and no time figures per slice.
    let ex_nt = Executor::builder().time_tracking(false).build().unwrap();
    g.bench_function("monad_async/mpsc/no_ticks", |b| {
        b.iter_custom(|iters| ours_same(&ex_nt, iters))
    });
    g.bench_function("monad_async/yield", |b| {
        b.iter_custom(|iters| {
            let h = ex.spawn(Priority::Normal, move |cx| {
                let start = Instant::now();
                for _ in 0..iters {
                    cx.yield_now().unwrap();
                }
                start.elapsed()
            });
            ex.run_until_idle().unwrap();
            h.join().unwrap()
        })
    });
    g.bench_function("floor/park_wake", |b| {
        b.iter_custom(|iters| park_floor(&ex, iters))
    });
    let rt = contenders::current_thread();
    g.bench_function("tokio/mpsc", |b| {
        b.iter_custom(|iters| tokio_same(&rt, iters))
    });
    g.bench_function("may/mpsc", |b| b.iter_custom(may_same));
    g.finish();
}

/// may's coroutines on its one worker thread (see
/// `contenders::may_one_worker`), with
/// its coroutine-aware unbounded channels.
fn may_same(iters: u64) -> Duration {
    contenders::may_one_worker();
    let (tx_a, rx_a) = may::sync::mpsc::channel::<u64>();
    let (tx_b, rx_b) = may::sync::mpsc::channel::<u64>();
    // SAFETY (may's contract for spawn): the coroutines use no
    // thread-local storage and do not block their worker thread.
    let echo = unsafe {
        may::coroutine::spawn(move || {
            while let Ok(v) = rx_a.recv() {
                tx_b.send(v).unwrap();
            }
        })
    };
    // SAFETY: as above.
    let h = unsafe {
        may::coroutine::spawn(move || {
            let start = Instant::now();
            for i in 0..iters {
                tx_a.send(i).unwrap();
                rx_b.recv().unwrap();
            }
            start.elapsed()
        })
    };
    let t = h.join().unwrap();
    echo.join().unwrap();
    t
}

fn pingpong_cross(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync/pingpong_cross");
    g.bench_function("monad_async/mpsc", |b| {
        b.iter_custom(|iters| {
            let (tx_a, mut rx_a) = mpsc::channel::<u64>(1);
            let (tx_b, mut rx_b) = mpsc::channel::<u64>(1);
            let echo = thread::spawn(move || {
                let ex = Executor::new().unwrap();
                ex.spawn(Priority::Normal, move |_cx| {
                    while let Some(v) = rx_a.recv().unwrap() {
                        tx_b.send(v).unwrap();
                    }
                });
                ex.run_until_idle().unwrap();
            });
            let ex = Executor::new().unwrap();
            let h = ex.spawn(Priority::Normal, move |_cx| {
                let start = Instant::now();
                for i in 0..iters {
                    tx_a.send(i).unwrap();
                    rx_b.recv().unwrap();
                }
                start.elapsed()
            });
            let t = h.join().unwrap();
            echo.join().unwrap();
            t
        })
    });
    g.bench_function("tokio/mpsc", |b| {
        b.iter_custom(|iters| {
            let (tx_a, mut rx_a) = tokio::sync::mpsc::channel::<u64>(1);
            let (tx_b, mut rx_b) = tokio::sync::mpsc::channel::<u64>(1);
            let echo = thread::spawn(move || {
                contenders::current_thread().block_on(async move {
                    while let Some(v) = rx_a.recv().await {
                        tx_b.send(v).await.unwrap();
                    }
                })
            });
            let t = contenders::current_thread().block_on(async move {
                let start = Instant::now();
                for i in 0..iters {
                    tx_a.send(i).await.unwrap();
                    rx_b.recv().await.unwrap();
                }
                start.elapsed()
            });
            echo.join().unwrap();
            t
        })
    });
    g.finish();
}

const TASKS: u64 = 1_000;
const LOCKS: u64 = 10;

fn mutex_1000(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync/mutex_1000");
    g.throughput(criterion::Throughput::Elements(TASKS * LOCKS));
    let ex = Executor::new().unwrap();
    g.bench_function("monad_async", |b| {
        b.iter(|| {
            let m = Arc::new(Mutex::new(0u64));
            for _ in 0..TASKS {
                let m = m.clone();
                ex.spawn(Priority::Normal, move |cx| {
                    for _ in 0..LOCKS {
                        let mut g = m.lock().unwrap();
                        cx.yield_now().unwrap();
                        *g += 1;
                    }
                });
            }
            ex.run_until_idle().unwrap();
            assert_eq!(*m.try_lock().unwrap(), TASKS * LOCKS);
        })
    });
    let rt = contenders::current_thread();
    g.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let m = Arc::new(tokio::sync::Mutex::new(0u64));
                let hs: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let m = m.clone();
                        tokio::spawn(async move {
                            for _ in 0..LOCKS {
                                let mut g = m.lock().await;
                                tokio::task::yield_now().await;
                                *g += 1;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                assert_eq!(*m.lock().await, TASKS * LOCKS);
            })
        })
    });
    contenders::may_one_worker();
    g.bench_function("may", |b| {
        b.iter(|| {
            let m = Arc::new(may::sync::Mutex::new(0u64));
            let hs: Vec<_> = (0..TASKS)
                .map(|_| {
                    let m = m.clone();
                    // SAFETY (may's contract for spawn): no thread-local
                    // storage, no blocking of the worker thread.
                    unsafe {
                        may::coroutine::spawn(move || {
                            for _ in 0..LOCKS {
                                let mut g = m.lock().unwrap();
                                may::coroutine::yield_now();
                                *g += 1;
                            }
                        })
                    }
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(*m.lock().unwrap(), TASKS * LOCKS);
        })
    });
    g.finish();
}

criterion_group!(benches, pingpong_same, pingpong_cross, mutex_1000);
criterion_main!(benches);
