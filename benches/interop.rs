//! Async interop (issue 10 B): futures inside tasks, tasks awaited from
//! tokio.
//!
//! * `block_on_ready`: per call, `TaskContext::block_on` of a ready
//!   future inside one task (`monad_async/block_on`); the same value from
//!   a plain closure call (`direct/closure`, the floor); what an
//!   `Arc`-allocated waker per call would cost instead of the borrowed one
//!   (`emulated/arc_waker_per_call`: a `TaskWaker` in a fresh `Arc` made
//!   into a `Waker`, and one poll); tokio's `Runtime::block_on` of a ready
//!   future on a current-thread runtime (`tokio/runtime_block_on`).
//! * `await_join_handle`: per spawn + `.await` from a task of a tokio
//!   current-thread runtime: onto an executor driven on its own thread
//!   (`monad_async/executor_thread`), onto a 1-thread pool
//!   (`monad_async/thread_pool`); the same cross-thread spawn joined by
//!   blocking instead (`monad_async/executor_thread_blocking_join`, no
//!   runtime); `tokio::spawn` + `.await` on the same runtime
//!   (`tokio/spawn_same_runtime`); a spawn onto a 1-worker multi-thread
//!   runtime awaited from the current-thread one
//!   (`tokio/spawn_other_runtime`, tokio's cross-thread counterpart).

use criterion::{criterion_group, criterion_main, Criterion};
use monad_async::{Priority, Switcher, TaskWaker, ThreadPool};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Instant;

#[path = "common/contenders.rs"]
mod contenders;

/// A `Wake` over a `TaskWaker`, as a block_on with an allocated waker
/// would make per call.
struct ArcWaker(TaskWaker);

impl Wake for ArcWaker {
    fn wake(self: Arc<Self>) {
        self.0.wake();
    }
}

fn block_on_ready(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_on_ready");
    let ex = contenders::executor(Switcher::Asm, true, 64);
    g.bench_function("monad_async/block_on", |b| {
        b.iter_custom(|iters| {
            let h = ex.spawn(Priority::Normal, move |cx| {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(cx.block_on(std::future::ready(black_box(i))).unwrap());
                }
                start.elapsed()
            });
            h.join().unwrap()
        })
    });
    g.bench_function("emulated/arc_waker_per_call", |b| {
        b.iter_custom(|iters| {
            let h = ex.spawn(Priority::Normal, move |cx| {
                let start = Instant::now();
                for i in 0..iters {
                    let waker = Waker::from(Arc::new(ArcWaker(cx.waker())));
                    let mut pcx = Context::from_waker(&waker);
                    let f = pin!(std::future::ready(black_box(i)));
                    black_box(f.poll(&mut pcx).is_ready());
                }
                start.elapsed()
            });
            h.join().unwrap()
        })
    });
    g.bench_function("direct/closure", |b| {
        let f = |i: u64| i;
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(black_box(f)(black_box(i)))
        })
    });
    let rt = contenders::current_thread();
    g.bench_function("tokio/runtime_block_on", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            black_box(rt.block_on(std::future::ready(black_box(i))))
        })
    });
    g.finish();
}

/// An executor driven on its own thread until dropped (the tests' own).
#[path = "../tests/common/driven.rs"]
#[allow(dead_code)] // its `within` serves the tests
mod driven;
use driven::Driven;

fn await_join_handle(c: &mut Criterion) {
    let mut g = c.benchmark_group("await_join_handle");
    let rt = contenders::current_thread();
    let driven = Driven::start();
    g.bench_function("monad_async/executor_thread", |b| {
        b.iter_custom(|iters| {
            let handle = driven.handle.clone();
            rt.block_on(async move {
                let start = Instant::now();
                for i in 0..iters {
                    let h = handle.spawn(Priority::High, move |_cx| i).unwrap();
                    black_box(h.await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("monad_async/executor_thread_blocking_join", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                let h = driven.handle.spawn(Priority::High, move |_cx| i).unwrap();
                black_box(h.join().unwrap());
            }
            start.elapsed()
        })
    });
    drop(driven);
    let pool = Arc::new(ThreadPool::builder().threads(1).build().unwrap());
    g.bench_function("monad_async/thread_pool", |b| {
        b.iter_custom(|iters| {
            let pool = Arc::clone(&pool);
            rt.block_on(async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(pool.spawn(Priority::High, move |_cx| i).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    drop(pool);
    g.bench_function("tokio/spawn_same_runtime", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(tokio::spawn(async move { i }).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let oh = other.handle().clone();
    g.bench_function("tokio/spawn_other_runtime", |b| {
        b.iter_custom(|iters| {
            let oh = oh.clone();
            rt.block_on(async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(oh.spawn(async move { i }).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, block_on_ready, await_join_handle);
criterion_main!(benches);
