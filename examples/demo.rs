//! A tour of monad-async: priorities, suspension, cross-thread spawning and
//! the built-in time tracking.
//!
//! Run it with `cargo run --release --example demo`.

use monad_async::{Executor, JoinHandle, Priority, TaskStats};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let ex = Executor::new()?;
    priorities(&ex)?;
    suspension(&ex)?;
    cross_thread(&ex)?;
    time_tracking(&ex)?;
    Ok(())
}

/// Nine tasks spawned in an interleaved order run high first, normal next,
/// low last, first-in first-out within a level; each yields once, which
/// sends it to the back of its own level.
fn priorities(ex: &Executor) -> std::io::Result<()> {
    println!("== 1. Priorities ==========================================");
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut spawned = Vec::new();
    for i in 0..3 {
        for p in [Priority::Low, Priority::Normal, Priority::High] {
            let name = format!("{}#{i}", label(p));
            spawned.push(name.clone());
            let log = log.clone();
            ex.spawn(p, move |cx| {
                log.borrow_mut().push(format!("{name} starts"));
                cx.yield_now().expect("yield");
                log.borrow_mut().push(format!("{name} resumes and ends"));
            });
        }
    }
    println!("spawned in this order: {}", spawned.join(" "));
    ex.run_until_idle()?;
    println!("ran in this order:");
    for (n, line) in log.borrow().iter().enumerate() {
        println!("  {:>2}. {line}", n + 1);
    }
    // What the listing shows, checked: each level whole before the next,
    // its three tasks starting in spawn order, then resuming in it.
    let expected: Vec<String> = [Priority::High, Priority::Normal, Priority::Low]
        .into_iter()
        .flat_map(|p| {
            let starts = (0..3).map(move |i| format!("{}#{i} starts", label(p)));
            let ends = (0..3).map(move |i| format!("{}#{i} resumes and ends", label(p)));
            starts.chain(ends)
        })
        .collect();
    assert_eq!(
        *log.borrow(),
        expected,
        "strict priority, FIFO within a level"
    );
    println!();
    Ok(())
}

/// A sleeping task does not hold up the others: while it sleeps, two tasks
/// take turns by yielding.
fn suspension(ex: &Executor) -> std::io::Result<()> {
    println!("== 2. Suspension: sleep and yield ===========================");
    let start = Instant::now();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ex.spawn(Priority::High, move |cx| {
        l.borrow_mut().push((
            start.elapsed(),
            "sleeper: going to sleep for 20 ms".to_owned(),
        ));
        cx.sleep(Duration::from_millis(20)).expect("sleep");
        l.borrow_mut()
            .push((start.elapsed(), "sleeper: awake, done".to_owned()));
    });
    for who in ["ping", "pong"] {
        let l = log.clone();
        ex.spawn(Priority::Normal, move |cx| {
            for round in 1..=3 {
                l.borrow_mut()
                    .push((start.elapsed(), format!("{who}: round {round}, yielding")));
                cx.yield_now().expect("yield");
            }
            cx.sleep(Duration::from_millis(5)).expect("sleep");
            l.borrow_mut()
                .push((start.elapsed(), format!("{who}: slept 5 ms, done")));
        });
    }
    ex.run_until_idle()?;
    for (at, line) in log.borrow().iter() {
        println!("  {:>9}  {line}", fmt(*at));
    }
    println!();
    Ok(())
}

/// Another thread spawns onto this executor through an ExecutorHandle; the
/// tasks run here, on the executor's thread, and their results go back.
fn cross_thread(ex: &Executor) -> std::io::Result<()> {
    println!("== 3. Cross-thread spawning =================================");
    let handle = ex.handle();
    let producer = std::thread::Builder::new()
        .name("producer".into())
        .spawn(move || {
            let handles: Vec<_> = [Priority::Low, Priority::High, Priority::Normal]
                .into_iter()
                .map(|p| {
                    std::thread::sleep(Duration::from_millis(2));
                    let from = std::thread::current().name().unwrap_or("?").to_owned();
                    let h = handle
                        .spawn(p, move |_cx| {
                            let on = std::thread::current().name().unwrap_or("?").to_owned();
                            format!("{} task spawned on '{from}' ran on '{on}'", label(p))
                        })
                        .expect("spawn from another thread");
                    (p, h)
                })
                .collect();
            // Blocking joins: this thread is not the executor's.
            handles
                .into_iter()
                .map(|(_, h)| h.join().expect("remote task"))
                .collect::<Vec<_>>()
        })?;
    // Wait in run() until the producer is done: each remote spawn wakes us.
    while !producer.is_finished() {
        match ex.run(usize::MAX, Some(Duration::from_millis(50))) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
            Err(e) => return Err(e),
        }
    }
    let here = std::thread::current().name().unwrap_or("?").to_owned();
    for msg in producer.join().expect("producer thread") {
        println!("  {msg}");
        // Spawned on the producer, run here on the executor's thread.
        assert!(msg.ends_with(&format!("spawned on 'producer' ran on '{here}'")));
    }
    let s = ex.stats();
    println!(
        "  attaches received through the inbox so far: {}",
        s.inbox_drained
    );
    println!();
    Ok(())
}

/// The tick-based time tracking: per-task and per-executor figures.
fn time_tracking(ex: &Executor) -> std::io::Result<()> {
    println!("== 4. Time tracking ========================================");
    // A mix of tasks whose figures differ visibly.
    let spin = |n: u64| {
        let mut x = 0u64;
        for i in 0..n {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        x
    };
    let mut rows: Vec<(&str, Priority, JoinHandle<()>)> = vec![
        (
            "returns at once",
            Priority::High,
            ex.spawn(Priority::High, |_cx| ()),
        ),
        (
            "spins 200k",
            Priority::Normal,
            ex.spawn(Priority::Normal, move |_cx| {
                std::hint::black_box(spin(200_000));
            }),
        ),
        (
            "yields 10 times",
            Priority::Normal,
            ex.spawn(Priority::Normal, |cx| {
                for _ in 0..10 {
                    cx.yield_now().expect("yield");
                }
            }),
        ),
        (
            "sleeps 10 ms",
            Priority::Low,
            ex.spawn(Priority::Low, |cx| {
                cx.sleep(Duration::from_millis(10)).expect("sleep");
            }),
        ),
    ];
    let cancelled = ex.spawn(Priority::Low, |_cx| ());
    ex.cancel(&cancelled)?;
    rows.push(("cancelled unrun", Priority::Low, cancelled));
    ex.run_until_idle()?;

    println!(
        "  {:<18} {:<8} {:>14} {:>12} {:>12} {:>11}",
        "task", "priority", "launch latency", "executing", "total", "suspensions"
    );
    println!("  {}", "-".repeat(80));
    for (name, p, h) in &rows {
        let s: TaskStats = h.stats().expect("finished");
        println!(
            "  {:<18} {:<8} {:>14} {:>12} {:>12} {:>11}",
            name,
            label(*p),
            fmt(s.launch_latency),
            fmt(s.executing),
            fmt(s.total),
            s.suspensions
        );
    }
    println!("  (launch latency counts the time spent behind higher-priority tasks)");

    // The hot path: spawn a trivial task and run it, many times over.
    const N: u32 = 100_000;
    let before = ex.stats();
    let (mut latency, mut executing) = (Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    for _ in 0..N {
        let h = ex.spawn(Priority::Normal, |_cx| ());
        ex.run(1, Some(Duration::ZERO))?;
        let s = h.stats().expect("finished");
        latency += s.launch_latency;
        executing += s.executing;
    }
    let wall = start.elapsed();
    let after = ex.stats();
    println!();
    println!("  {N} trivial tasks, spawned and run one after another:");
    println!(
        "    wall time per task (spawn + run + stats): {}",
        fmt(wall / N)
    );
    println!(
        "    mean launch latency (attach -> running):  {}",
        fmt(latency / N)
    );
    println!(
        "    mean time executing:                      {}",
        fmt(executing / N)
    );
    println!(
        "    C tasks (stacks) created for them:        {}",
        after.tasks_created - before.tasks_created
    );

    let s = ex.stats();
    println!();
    println!("  executor totals:");
    println!(
        "    attached {}  launched {}  resumed {}  suspended {}  exited {}  cancelled {}",
        s.attached, s.launched, s.resumed, s.suspended, s.exited, s.cancelled
    );
    println!(
        "    in run {}  launching {}  resuming {}  waiting for work {} ({} waits)",
        fmt(s.time_in_run),
        fmt(s.time_launching),
        fmt(s.time_resuming),
        fmt(s.time_sleeping),
        s.sleeps
    );
    println!(
        "    tasks created {}  (tick counter: {} MHz)",
        s.tasks_created,
        monad_async::ticks_per_second() / 1_000_000
    );
    Ok(())
}

fn label(p: Priority) -> &'static str {
    match p {
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
    }
}

/// A duration in the unit that reads best.
fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}
