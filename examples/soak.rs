//! The soak: launch N tasks (default one billion) through one executor, in
//! batches, and show that it neither slows down nor grows.
//!
//! ```text
//! cargo run --release --example soak -- [N]
//! ```
//!
//! Prints the rate every tenth of the way and the resident memory at the
//! start (after a warm-up) and at the end. Exits non-zero if the resident
//! memory grew by more than 1 MiB, or if any task's result was wrong.

use monad_async::{Executor, Priority};
use std::time::Instant;

const BATCH: u64 = 1024;

/// Resident set size in bytes, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("parse /proc/self/statm");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

fn run_batches(ex: &Executor, batches: u64, first: u64) {
    let mut handles = Vec::with_capacity(BATCH as usize);
    for b in 0..batches {
        let base = first + b * BATCH;
        for i in 0..BATCH {
            let n = base + i;
            // Every task suspends once, so each one really uses its stack.
            handles.push(ex.spawn(Priority::Normal, move |cx| {
                cx.yield_now().expect("yield");
                n.wrapping_mul(3)
            }));
        }
        ex.run_until_idle().expect("run");
        for (i, h) in handles.drain(..).enumerate() {
            let want = (base + i as u64).wrapping_mul(3);
            let got = h.join().expect("task failed");
            if got != want {
                eprintln!("task {} returned {got}, wanted {want}", base + i as u64);
                std::process::exit(1);
            }
        }
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| {
            s.replace('_', "")
                .parse()
                .expect("N must be a whole number")
        })
        .unwrap_or(1_000_000_000);
    let batches = n.div_ceil(BATCH).max(1);
    let ex = Executor::new().expect("executor");

    // Warm-up: the task pool and the handle vector reach their steady size.
    run_batches(&ex, 4, 0);
    let rss_start = rss_bytes();
    println!(
        "soak: {} tasks in batches of {BATCH}, each launched, yielding once, exiting",
        batches * BATCH
    );
    println!("rss at start: {:.1} MiB", rss_start as f64 / 1048576.0);

    let start = Instant::now();
    let tenth = (batches / 10).max(1);
    let mut done = 0;
    while done < batches {
        let step = tenth.min(batches - done);
        let t0 = Instant::now();
        run_batches(&ex, step, 4 * BATCH + done * BATCH);
        done += step;
        let rate = (step * BATCH) as f64 / t0.elapsed().as_secs_f64();
        println!(
            "  {:>13} tasks  {:>7.2} M tasks/s  rss {:.1} MiB",
            done * BATCH,
            rate / 1e6,
            rss_bytes() as f64 / 1048576.0
        );
    }
    let secs = start.elapsed().as_secs_f64();
    let rss_end = rss_bytes();
    let stats = ex.stats();
    println!(
        "done: {} tasks in {secs:.2} s, {:.2} M tasks/s ({:.1} ns per task)",
        batches * BATCH,
        (batches * BATCH) as f64 / secs / 1e6,
        secs * 1e9 / (batches * BATCH) as f64
    );
    println!("executor: {stats:?}");
    println!(
        "rss at end: {:.1} MiB ({:+.1} KiB)",
        rss_end as f64 / 1048576.0,
        (rss_end as f64 - rss_start as f64) / 1024.0
    );
    if rss_end > rss_start + 1024 * 1024 {
        eprintln!("resident memory grew by more than 1 MiB");
        std::process::exit(1);
    }
}
