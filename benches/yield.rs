//! Suspend and resume: a task yielding in a loop. monad-async (asm and
//! sjlj switchers) against tokio's `yield_now` on a current-thread
//! runtime and may's coroutine `yield_now` on one worker, with a bare
//! register-switch round trip as the floor.

use criterion::{criterion_group, criterion_main, Criterion};
use monad_async::{ExecutorBuilder, Priority, Switcher};
use std::time::{Duration, Instant};

#[path = "common/contenders.rs"]
mod contenders;
#[path = "common/floor.rs"]
mod floor;

fn yield_loop(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield");
    for (name, sw, track) in [
        ("monad_async/asm", Switcher::Asm, true),
        ("monad_async/asm/no_ticks", Switcher::Asm, false),
        ("monad_async/sjlj", Switcher::Sjlj, true),
    ] {
        let ex = contenders::executor(sw, track, ExecutorBuilder::DEFAULT_RING_ENTRIES);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let h = ex.spawn(Priority::Normal, move |cx| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        cx.yield_now().unwrap();
                    }
                    start.elapsed()
                });
                ex.run_until_idle().unwrap();
                h.join().unwrap_or(Duration::ZERO)
            })
        });
    }
    let rt = contenders::current_thread();
    g.bench_function("tokio/yield_now", |b| {
        b.iter_custom(|iters| contenders::yield_loop(&rt, iters))
    });
    g.bench_function("may/yield_now", |b| {
        b.iter_custom(contenders::may_yield_loop)
    });
    let mut floor = floor::SwitchFloor::new();
    g.bench_function("floor/bare_switch_round_trip", |b| {
        b.iter(|| floor.round_trip())
    });
    g.finish();
}

criterion_group!(benches, yield_loop);
criterion_main!(benches);
