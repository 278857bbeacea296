//! Suspend and resume through the kernel: a task suspending on an io_uring
//! NOP in a loop. monad-async (asm with and without tick stamps, sjlj)
//! against a plain io_uring NOP loop at the same batch size (the floor),
//! that loop plus one bare switch round trip and one tick read per NOP
//! (the least a stackful executor with time tracking adds: the target
//! with ticks on is measured against it, the one without against the
//! plain floor) and tokio's `yield_now` (tokio has no kernel round trip to offer for a
//! no-op: its cheapest suspend and resume), in one group per batch size.
//!
//! Batch 1: one task, one NOP per io_uring_enter. Batch 32: 32 tasks, the
//! executor submitting and reaping 32 NOPs per io_uring_enter (its pump
//! interval); one iteration is 32 NOPs, the floor submits 32 and waits for
//! 32.

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use io_uring::opcode;
use monad_async::{Executor, Priority, Switcher};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "common/contenders.rs"]
mod contenders;
#[path = "common/floor.rs"]
mod floor;
#[path = "common/stamp.rs"]
mod stamp;
#[path = "common/uring.rs"]
mod uring;

const BATCH: u64 = 32;

fn executors() -> Vec<(&'static str, Executor)> {
    contenders::executors(
        &[
            ("monad_async/asm", Switcher::Asm, true),
            ("monad_async/asm/no_ticks", Switcher::Asm, false),
            ("monad_async/sjlj", Switcher::Sjlj, true),
        ],
        128,
    )
}

/// The floor: `batch` NOPs prepared, submitted and waited for with one
/// io_uring_enter, then reaped; `iters` times. With `sw`, each reaped NOP
/// also costs a switch round trip and a tick read.
fn floor_loop(
    ring: &mut io_uring::IoUring,
    batch: u64,
    iters: u64,
    mut sw: Option<&mut floor::SwitchFloor>,
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        for i in 0..batch {
            let sqe = opcode::Nop::new().build().user_data(i + 1);
            // SAFETY: a NOP references no memory.
            unsafe { ring.submission().push(&sqe).expect("sq full") };
        }
        ring.submit_and_wait(batch as usize).expect("submit");
        for cqe in ring.completion() {
            black_box(cqe.result());
            if let Some(sw) = sw.as_deref_mut() {
                sw.round_trip();
                // The read a slice's end stamp uses, not the ordered
                // public one (common/stamp.rs).
                black_box(stamp::bare_ticks());
            }
        }
    }
    start.elapsed()
}

/// The floor contender of a group: [`floor_loop`] of `batch` on its own
/// ring.
fn bench_floor(g: &mut BenchmarkGroup<'_, WallTime>, batch: u64) {
    let mut ring = uring::ring(128);
    g.bench_function("floor/io_uring_nop", |b| {
        b.iter_custom(|iters| floor_loop(&mut ring, batch, iters, None))
    });
    let mut sw = floor::SwitchFloor::new();
    g.bench_function("floor/io_uring_nop+switch+tick", |b| {
        b.iter_custom(|iters| floor_loop(&mut ring, batch, iters, Some(&mut sw)))
    });
}

fn nop_batch1(c: &mut Criterion) {
    let mut g = c.benchmark_group("io_nop_batch1");
    for (name, ex) in executors() {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let h = ex.spawn(Priority::Normal, move |cx| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        monad_async::io::nop(cx).unwrap();
                    }
                    start.elapsed()
                });
                ex.run_until_idle().unwrap();
                h.join().unwrap()
            })
        });
    }
    bench_floor(&mut g, 1);
    let rt = contenders::current_thread();
    g.bench_function("tokio/yield_now", |b| {
        b.iter_custom(|iters| contenders::yield_loop(&rt, iters))
    });
    g.finish();
}

fn nop_batch32(c: &mut Criterion) {
    let mut g = c.benchmark_group("io_nop_batch32");
    g.throughput(Throughput::Elements(BATCH));
    for (name, ex) in executors() {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..BATCH {
                    ex.spawn(Priority::Normal, move |cx| {
                        for _ in 0..iters {
                            monad_async::io::nop(cx).unwrap();
                        }
                    });
                }
                ex.run_until_idle().unwrap();
                start.elapsed()
            })
        });
    }
    bench_floor(&mut g, BATCH);
    let rt = contenders::current_thread();
    g.bench_function("tokio/yield_now", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let hs: Vec<_> = (0..BATCH)
                    .map(|_| {
                        tokio::spawn(async move {
                            for _ in 0..iters {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, nop_batch1, nop_batch32);
criterion_main!(benches);
