//! Waiting for something that is not I/O: park and wake, joins, and how
//! late a High task wakes beside busy Low tasks.
//!
//! * `park_wake/same_thread`: two tasks of one executor hand a turn back
//!   and forth, each waking the other then parking; per round trip (two
//!   wakes, two parks). tokio: two tasks of a current-thread runtime doing
//!   the same with two `Notify`s. Floor: two bare switch round trips.
//! * `park_wake/cross_thread`: the same between two executors (runtimes)
//!   on two threads, each idle while it waits: ours spin briefly before
//!   they sleep once wakes come soon after they go idle (the default,
//!   `ExecutorBuilder::idle_spin`); `cross_thread_no_spin` sleeps at
//!   once, as tokio's current-thread runtime does.
//! * `join`: a task spawns a child of lower priority and joins it; per
//!   spawn + join. `join/park` is the join (parks, woken by the child's
//!   exit); `exit_to_joiner_resumed` times only the wake-up, from the
//!   child's last instruction to the joiner running again (bare tick
//!   stamps, as the executor's own: `common/stamp.rs`), and `stamp_pair`
//!   what two such stamps back to back read, the share of that interval
//!   that is the measurement's own;
//!   `yield_until_done` polls with yields instead, the cheapest poll there
//!   is; `yield` is one yield, for scale.
//! * `high_wakeup_late`: a High task sleeps 200 us, 10 Low tasks burn
//!   CPU in 50 us slices; per sleep, how late it woke. tokio has no
//!   priorities: its sleeper waits behind the run queue.

use criterion::{criterion_group, criterion_main, Criterion};
use monad_async::{Executor, ExecutorBuilder, Priority, Switcher, TaskContext, TaskWaker};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[path = "common/contenders.rs"]
mod contenders;
#[path = "common/floor.rs"]
mod floor;
#[path = "common/stamp.rs"]
mod stamp;

#[path = "common/park_ping_pong.rs"]
mod park_ping_pong;
use park_ping_pong::ping_pong_same_thread;

fn park_wake(c: &mut Criterion) {
    let mut g = c.benchmark_group("park_wake");
    let ex = contenders::executor(Switcher::Asm, true, ExecutorBuilder::DEFAULT_RING_ENTRIES);
    g.bench_function("monad_async/same_thread", |b| {
        b.iter_custom(|iters| ping_pong_same_thread(&ex, iters))
    });
    drop(ex);
    let rt = contenders::current_thread();
    let local = tokio::task::LocalSet::new();
    g.bench_function("tokio/notify_same_thread", |b| {
        b.iter_custom(|iters| tokio_ping_pong_local(&rt, &local, iters))
    });
    let mut fl = floor::SwitchFloor::new();
    g.bench_function("floor/two_bare_switch_round_trips", |b| {
        b.iter(|| {
            fl.round_trip();
            fl.round_trip()
        })
    });

    g.bench_function("monad_async/cross_thread", |b| {
        b.iter_custom(|iters| cross_thread_monad(iters, true))
    });
    g.bench_function("monad_async/cross_thread_no_spin", |b| {
        b.iter_custom(|iters| cross_thread_monad(iters, false))
    });
    g.bench_function("tokio/notify_cross_thread", |b| {
        b.iter_custom(cross_thread_tokio)
    });
    g.finish();
}

/// Two tasks of a current-thread runtime passing a turn with two
/// `Notify`s; the loop's time.
fn tokio_ping_pong_local(
    rt: &tokio::runtime::Runtime,
    local: &tokio::task::LocalSet,
    iters: u64,
) -> Duration {
    local.block_on(rt, async {
        let (na, nb) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (na2, nb2) = (na.clone(), nb.clone());
        let b = tokio::task::spawn_local(async move {
            for _ in 0..iters {
                nb2.notified().await;
                na2.notify_one();
            }
        });
        let start = Instant::now();
        for _ in 0..iters {
            nb.notify_one();
            na.notified().await;
        }
        let t = start.elapsed();
        b.await.unwrap();
        t
    })
}

/// Two executors on two threads passing a turn `iters` times, spinning
/// before they sleep or not (`idle_spin`).
fn cross_thread_monad(iters: u64, idle_spin: bool) -> Duration {
    let (tx_b, rx_b) = std::sync::mpsc::channel::<TaskWaker>();
    let (tx_a, rx_a) = std::sync::mpsc::channel::<TaskWaker>();
    let other = std::thread::spawn(move || {
        let ex = Executor::builder().idle_spin(idle_spin).build().unwrap();
        let h = ex.spawn(Priority::Normal, move |cx| {
            tx_b.send(cx.waker()).unwrap();
            let a = rx_a.recv().unwrap();
            for _ in 0..iters {
                cx.park().unwrap();
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
        let start = Instant::now();
        for _ in 0..iters {
            b.wake();
            cx.park().unwrap();
        }
        start.elapsed()
    });
    ex.run_until_idle().unwrap();
    other.join().unwrap();
    h.join().unwrap()
}

fn cross_thread_tokio(iters: u64) -> Duration {
    let (na, nb) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (na2, nb2) = (na.clone(), nb.clone());
    let other = std::thread::spawn(move || {
        contenders::current_thread().block_on(async move {
            for _ in 0..iters {
                nb2.notified().await;
                na2.notify_one();
            }
        })
    });
    let t = contenders::current_thread().block_on(async move {
        let start = Instant::now();
        for _ in 0..iters {
            nb.notify_one();
            na.notified().await;
        }
        start.elapsed()
    });
    other.join().unwrap();
    t
}

/// Runs `f` as a Normal task of `ex` until the executor is idle and
/// returns the time the task measured: each row of the `join` group.
fn in_task<F>(ex: &Executor, f: F) -> Duration
where
    F: FnOnce(&mut TaskContext<'_>) -> Duration + 'static,
{
    let h = ex.spawn(Priority::Normal, f);
    ex.run_until_idle().unwrap();
    h.join().unwrap()
}

fn join(c: &mut Criterion) {
    let mut g = c.benchmark_group("join");
    let ex = contenders::executor(Switcher::Asm, true, ExecutorBuilder::DEFAULT_RING_ENTRIES);
    g.bench_function("monad_async/park", |b| {
        b.iter_custom(|iters| {
            in_task(&ex, move |cx| {
                let start = Instant::now();
                for _ in 0..iters {
                    let child = cx.spawn(Priority::Low, |_cx| ()).unwrap();
                    child.join().unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("monad_async/exit_to_joiner_resumed", |b| {
        b.iter_custom(|iters| {
            in_task(&ex, move |cx| {
                let end = Rc::new(Cell::new(0u64));
                let mut total = 0u64;
                for _ in 0..iters {
                    let e = end.clone();
                    let child = cx
                        .spawn(Priority::Low, move |_cx| e.set(stamp::bare_ticks()))
                        .unwrap();
                    child.join().unwrap();
                    total += stamp::bare_ticks() - end.get();
                }
                stamp::ticks_to_duration(total)
            })
        })
    });
    g.bench_function("monad_async/stamp_pair", |b| {
        b.iter_custom(|iters| {
            in_task(&ex, move |_cx| {
                let end = Cell::new(0u64);
                let mut total = 0u64;
                for _ in 0..iters {
                    end.set(stamp::bare_ticks());
                    total += stamp::bare_ticks() - std::hint::black_box(&end).get();
                }
                stamp::ticks_to_duration(total)
            })
        })
    });
    g.bench_function("monad_async/yield_until_done", |b| {
        b.iter_custom(|iters| {
            in_task(&ex, move |cx| {
                let start = Instant::now();
                for _ in 0..iters {
                    let child = cx.spawn(Priority::Normal, |_cx| ()).unwrap();
                    while !child.is_finished() {
                        cx.yield_now().unwrap();
                    }
                    child.join().unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("monad_async/yield", |b| {
        b.iter_custom(|iters| {
            in_task(&ex, move |cx| {
                let start = Instant::now();
                for _ in 0..iters {
                    cx.yield_now().unwrap();
                }
                start.elapsed()
            })
        })
    });
    let rt = contenders::current_thread();
    let local = tokio::task::LocalSet::new();
    g.bench_function("tokio/spawn_local_await", |b| {
        b.iter_custom(|iters| {
            local.block_on(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::task::spawn_local(async {}).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

const LOWS: usize = 10;
const LOW_SLICE: Duration = Duration::from_micros(50);
const NAP: Duration = Duration::from_micros(200);

fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {}
}

fn high_wakeup_late(c: &mut Criterion) {
    let mut g = c.benchmark_group("high_wakeup_late");
    g.sample_size(10);
    let ex = Executor::new().unwrap();
    g.bench_function("monad_async/high_sleep_beside_10_low", |b| {
        b.iter_custom(|iters| {
            let stop = Rc::new(Cell::new(false));
            let lows: Vec<_> = (0..LOWS)
                .map(|_| {
                    let stop = stop.clone();
                    ex.spawn(Priority::Low, move |cx| {
                        while !stop.get() {
                            spin(LOW_SLICE);
                            cx.yield_now().unwrap();
                        }
                    })
                })
                .collect();
            let h = ex.spawn(Priority::High, move |cx| {
                let mut late = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    cx.sleep(NAP).unwrap();
                    late += t0.elapsed().saturating_sub(NAP);
                }
                stop.set(true);
                late
            });
            ex.run_until_idle().unwrap();
            for l in lows {
                l.join().unwrap();
            }
            h.join().unwrap()
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    g.bench_function("tokio/sleep_beside_10_busy", |b| {
        b.iter_custom(|iters| {
            local.block_on(&rt, async move {
                let stop = Rc::new(Cell::new(false));
                let lows: Vec<_> = (0..LOWS)
                    .map(|_| {
                        let stop = stop.clone();
                        tokio::task::spawn_local(async move {
                            while !stop.get() {
                                spin(LOW_SLICE);
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                let mut late = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    tokio::time::sleep(NAP).await;
                    late += t0.elapsed().saturating_sub(NAP);
                }
                stop.set(true);
                for l in lows {
                    l.await.unwrap();
                }
                late
            })
        })
    });
    g.finish();
}

criterion_group!(benches, park_wake, join, high_wakeup_late);
criterion_main!(benches);
