//! Spawn, run and complete: one task at a time, and 1,024 at once.
//! monad-async (asm switcher, with and without time tracking; the none
//! switcher) against tokio's current-thread runtime, may (one worker)
//! and monoio (io_uring driver), with the floor (a bare register-switch
//! round trip, and the raw C attach+run) in the same group.

use criterion::{criterion_group, criterion_main, Criterion};
use monad_async::{Executor, ExecutorBuilder, Priority, Switcher};
use std::hint::black_box;
use std::time::Instant;

#[path = "common/contenders.rs"]
mod contenders;
#[path = "common/floor.rs"]
mod floor;

fn executors() -> Vec<(&'static str, Executor)> {
    contenders::executors(
        &[
            ("monad_async/asm", Switcher::Asm, true),
            ("monad_async/asm/no_ticks", Switcher::Asm, false),
            ("monad_async/none", Switcher::None, true),
        ],
        ExecutorBuilder::DEFAULT_RING_ENTRIES,
    )
}

fn spawn_one(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_run_complete");
    for (name, ex) in executors() {
        g.bench_function(name, |b| {
            b.iter(|| {
                let h = ex.spawn(Priority::Normal, |_cx| black_box(1u64));
                ex.run(1, None).unwrap();
                h.join().unwrap()
            })
        });
    }
    let rt = contenders::current_thread();
    g.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(tokio::spawn(async { black_box(1u64) }).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("may/one_worker", |b| {
        b.iter_custom(|iters| {
            contenders::in_may(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    // SAFETY: as in contenders::in_may.
                    let h = unsafe { may::coroutine::spawn(|| black_box(1u64)) };
                    black_box(h.join().unwrap());
                }
                start.elapsed()
            })
        })
    });
    let mut mrt = contenders::monoio_runtime();
    g.bench_function("monoio/io_uring", |b| {
        b.iter_custom(|iters| {
            mrt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(monoio::spawn(async { black_box(1u64) }).await);
                }
                start.elapsed()
            })
        })
    });
    let mut floor = floor::SwitchFloor::new();
    g.bench_function("floor/bare_switch_round_trip", |b| {
        b.iter(|| floor.round_trip())
    });
    g.finish();
}

fn spawn_batch(c: &mut Criterion) {
    const N: usize = 1024;
    let mut g = c.benchmark_group("spawn_1024_then_run");
    g.throughput(criterion::Throughput::Elements(N as u64));
    for (name, ex) in executors() {
        g.bench_function(name, |b| {
            let mut handles = Vec::with_capacity(N);
            b.iter(|| {
                for i in 0..N {
                    handles.push(ex.spawn(Priority::Normal, move |_cx| black_box(i)));
                }
                ex.run(usize::MAX, None).unwrap();
                for h in handles.drain(..) {
                    black_box(h.join().unwrap());
                }
            })
        });
    }
    let rt = contenders::current_thread();
    g.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut handles = Vec::with_capacity(N);
                let start = Instant::now();
                for _ in 0..iters {
                    for i in 0..N {
                        handles.push(tokio::spawn(async move { black_box(i) }));
                    }
                    for h in handles.drain(..) {
                        black_box(h.await.unwrap());
                    }
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("may/one_worker", |b| {
        b.iter_custom(|iters| {
            contenders::in_may(move || {
                let mut handles = Vec::with_capacity(N);
                let start = Instant::now();
                for _ in 0..iters {
                    for i in 0..N {
                        // SAFETY: as in contenders::in_may.
                        handles.push(unsafe { may::coroutine::spawn(move || black_box(i)) });
                    }
                    for h in handles.drain(..) {
                        black_box(h.join().unwrap());
                    }
                }
                start.elapsed()
            })
        })
    });
    let mut mrt = contenders::monoio_runtime();
    g.bench_function("monoio/io_uring", |b| {
        b.iter_custom(|iters| {
            mrt.block_on(async {
                let mut handles = Vec::with_capacity(N);
                let start = Instant::now();
                for _ in 0..iters {
                    for i in 0..N {
                        handles.push(monoio::spawn(async move { black_box(i) }));
                    }
                    for h in handles.drain(..) {
                        black_box(h.await);
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, spawn_one, spawn_batch);
criterion_main!(benches);
