//! The thread pool against tokio's multi-thread runtime, two threads each.
//!
//! * Throughput (criterion, group `pool_throughput`): 100,000 tiny closures
//!   spawned from the bench thread and joined. monad-async's ThreadPool
//!   (its defaults: stackless tasks), tokio multi_thread `spawn` + `await`, and as the floor the C dispatcher alone: 100,000
//!   pre-made stackless C tasks submitted one by one, then waited for (no
//!   Rust job, no allocation). Criterion reports time per 100,000; per
//!   thread, a task costs twice that over 100,000 in thread time.
//! * The headline latency (printed percentiles, not criterion): the time
//!   from spawning one high-priority closure to its first instruction
//!   while 10,000 low-priority closures are queued, p50 and p99 over many
//!   trials, with two backlogs: `held`, empty closures queued behind both
//!   threads held in a gate that opens as the high closure is spawned
//!   (scheduling alone); `busy`, closures of 10 µs of work each that both
//!   threads are running when the high closure is spawned. Each at one
//!   worker thread and at two (on two cores, two workers and the
//!   spawning thread oversubscribe the machine). tokio has no
//!   priorities: its high closure runs after the backlog.
//!
//! `cargo bench -p monad-async-benches --bench pool` runs both; under
//! `cargo test -p monad-async-benches --benches` (no
//! `--bench` argument) the latency part runs a few trials only, and
//! MONAD_ASYNC_BENCH_TRIALS sets their number (0: none).

use criterion::{Criterion, Throughput};
use monad_async::{sys, Priority, ThreadPool};
use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/common/gate.rs"]
mod gate;
use gate::Gate;

const THREADS: usize = 2;
const TASKS: usize = 100_000;
const BACKLOG: usize = 10_000;

fn tokio_rt(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .unwrap()
}

/// The pool as built by default (stackless tasks: 100,000 queued
/// closures with a stack each would exceed Linux's default mapping
/// limit), on two threads.
fn pool(threads: usize) -> ThreadPool {
    ThreadPool::builder().threads(threads).build().unwrap()
}

// ---------------------------------------------------------------------------
// The floor: the C dispatcher driven through the raw bindings.

struct CPool {
    wd: sys::monad_async_work_dispatcher,
    sw: sys::monad_async_context_switcher,
    tasks: Vec<sys::monad_async_task>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy)]
struct Raw(sys::monad_async_work_dispatcher);
// SAFETY: the dispatcher is thread-safe for what the workers do with it.
unsafe impl Send for Raw {}

unsafe extern "C" fn empty_task(_task: sys::monad_async_task) -> sys::monad_async_result {
    sys::monad_async_make_success(0)
}

impl CPool {
    fn new() -> CPool {
        let mut wd = ptr::null_mut();
        let mut sw = ptr::null_mut();
        // SAFETY: valid out-pointers; NULL attrs pick the defaults.
        unsafe {
            assert_eq!(
                sys::monad_async_work_dispatcher_create(&mut wd, ptr::null()).error,
                0
            );
            assert_eq!(
                sys::monad_async_context_switcher_none_create(&mut sw).error,
                0
            );
        }
        let tasks = (0..TASKS)
            .map(|_| {
                let mut t = ptr::null_mut();
                // SAFETY: valid out-pointer and switcher; NULL attr.
                unsafe {
                    assert_eq!(
                        sys::monad_async_task_create(&mut t, sw, ptr::null()).error,
                        0
                    );
                    (*t).user_code = Some(empty_task);
                }
                t
            })
            .collect();
        let threads = (0..THREADS)
            .map(|_| {
                let wd = Raw(wd);
                std::thread::spawn(move || {
                    let wd = wd;
                    let mut ex = ptr::null_mut();
                    // SAFETY: our own executor, created, run and destroyed
                    // on this thread; the dispatcher outlives it.
                    unsafe {
                        assert_eq!(
                            sys::monad_async_work_dispatcher_executor_create(
                                &mut ex,
                                wd.0,
                                ptr::null()
                            )
                            .error,
                            0
                        );
                        loop {
                            let r = sys::monad_async_work_dispatcher_executor_run(ex);
                            if r.error != 0 || r.value < 0 {
                                break;
                            }
                        }
                        let _ = sys::monad_async_work_dispatcher_executor_destroy(ex);
                    }
                })
            })
            .collect();
        CPool {
            wd,
            sw,
            tasks,
            threads,
        }
    }

    fn run_all(&self) {
        for t in &self.tasks {
            // SAFETY: the task is idle (the previous round was waited for).
            let r = unsafe { sys::monad_async_work_dispatcher_submit(self.wd, t, 1) };
            assert_eq!(r.error, 0);
        }
        // SAFETY: live dispatcher; NULL: wait as long as it takes.
        let r = unsafe { sys::monad_async_work_dispatcher_wait(self.wd, 0, 0, ptr::null()) };
        assert_eq!(r.error, 0);
    }
}

impl Drop for CPool {
    fn drop(&mut self) {
        // SAFETY: nothing is queued; the threads are joined before the
        // dispatcher is destroyed, the tasks before their switcher.
        unsafe {
            let _ = sys::monad_async_work_dispatcher_quit(self.wd, usize::MAX, ptr::null());
            for t in self.threads.drain(..) {
                t.join().unwrap();
            }
            let _ = sys::monad_async_work_dispatcher_destroy(self.wd);
            for &t in &self.tasks {
                let _ = sys::monad_async_task_destroy(t);
            }
            let _ = sys::monad_async_context_switcher_destroy(self.sw);
        }
    }
}

// ---------------------------------------------------------------------------
// Throughput

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool_throughput");
    g.throughput(Throughput::Elements(TASKS as u64));
    g.sample_size(20);
    {
        let name = "monad_async";
        let pool = pool(THREADS);
        g.bench_function(name, |b| {
            b.iter(|| {
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| pool.spawn(Priority::Normal, move |_cx| black_box(i)))
                    .collect();
                for h in handles {
                    black_box(h.join().unwrap());
                }
            })
        });
    }
    let rt = tokio_rt(THREADS);
    g.bench_function("tokio/multi_thread", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| tokio::spawn(async move { black_box(i) }))
                    .collect();
                for h in handles {
                    black_box(h.await.unwrap());
                }
            })
        })
    });
    drop(rt);
    let floor = CPool::new();
    g.bench_function("floor/c_dispatcher_submit_wait", |b| {
        b.iter(|| floor.run_all())
    });
    drop(floor);
    g.finish();
}

// ---------------------------------------------------------------------------
// The headline: a high-priority closure behind a 10,000-closure backlog.

/// Holds a worker in `gate` until it opens, spinning: a worker that gave
/// its core away would measure the scheduler's wake-up, not the pool's.
fn hold(gate: &Gate) {
    gate.hold(std::hint::spin_loop);
}

/// Waits until `n` workers are held in `gate`.
fn wait_held(gate: &Gate, n: usize) {
    gate.wait_entered(n, std::thread::yield_now);
}

/// Nanoseconds since `base`, as stored by the high closure.
fn since(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// What one trial measured.
struct Trial {
    /// Spawn of the high closure to its first instruction, in ns.
    latency_ns: u64,
    /// Low closures that started before the high one did.
    lows_first: u64,
}

/// The high closure's view: when it started, and how many lows had.
struct Probe {
    base: Instant,
    lows_started: AtomicU64,
    high_started_at: AtomicU64,
    lows_before_high: AtomicU64,
}

impl Probe {
    fn new(base: Instant) -> Arc<Probe> {
        Arc::new(Probe {
            base,
            lows_started: AtomicU64::new(0),
            high_started_at: AtomicU64::new(0),
            lows_before_high: AtomicU64::new(0),
        })
    }

    fn low(&self) {
        self.lows_started.fetch_add(1, Ordering::Relaxed);
    }

    fn high(&self) {
        self.high_started_at
            .store(since(self.base), Ordering::Release);
        self.lows_before_high
            .store(self.lows_started.load(Ordering::Relaxed), Ordering::Release);
    }

    fn trial(&self, t0: u64) -> Trial {
        Trial {
            latency_ns: self.high_started_at.load(Ordering::Acquire) - t0,
            lows_first: self.lows_before_high.load(Ordering::Acquire),
        }
    }
}

/// The two backlogs measured.
#[derive(Clone, Copy)]
enum Backlog {
    /// Empty closures queued behind threads held in a gate; the gate opens
    /// as the high closure is spawned. Measures the scheduling alone.
    Held,
    /// Closures of BUSY_WORK each, which the threads are running when the
    /// high closure is spawned (the gate opened shortly before, so all but
    /// a few are still queued). A backlog of real work.
    Busy,
}

/// Work per closure of the Busy backlog.
const BUSY_WORK: Duration = Duration::from_micros(10);
/// How long after the gate opens the high closure is spawned (Busy).
const BUSY_HEAD_START: Duration = Duration::from_micros(100);

impl Backlog {
    fn name(self) -> &'static str {
        match self {
            Backlog::Held => "held",
            Backlog::Busy => "busy",
        }
    }

    /// A low closure's body.
    fn low(self, probe: &Probe) {
        probe.low();
        if let Backlog::Busy = self {
            let until = Instant::now() + BUSY_WORK;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }

    /// Opens the gate, spawns the high closure with `spawn`, and returns
    /// the time of its spawn.
    fn release(self, gate: &Gate, base: Instant, spawn: impl FnOnce()) -> u64 {
        if let Backlog::Busy = self {
            gate.open();
            let until = Instant::now() + BUSY_HEAD_START;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        let t0 = since(base);
        spawn();
        gate.open();
        t0
    }
}

fn trial_pool(pool: &ThreadPool, backlog: Backlog, base: Instant) -> Trial {
    let gate = Gate::new();
    for _ in 0..pool.threads() {
        let g = Arc::clone(&gate);
        pool.spawn(Priority::High, move |_cx| hold(&g));
    }
    wait_held(&gate, pool.threads());
    let probe = Probe::new(base);
    for _ in 0..BACKLOG {
        let p = Arc::clone(&probe);
        pool.spawn(Priority::Low, move |_cx| backlog.low(&p));
    }
    let p = Arc::clone(&probe);
    let t0 = backlog.release(&gate, base, || {
        pool.spawn(Priority::High, move |_cx| p.high());
    });
    pool.wait_idle().unwrap();
    probe.trial(t0)
}

fn trial_tokio(
    rt: &tokio::runtime::Runtime,
    threads: usize,
    backlog: Backlog,
    base: Instant,
) -> Trial {
    let gate = Gate::new();
    let gates: Vec<_> = (0..threads)
        .map(|_| {
            let g = Arc::clone(&gate);
            rt.spawn(async move { hold(&g) })
        })
        .collect();
    wait_held(&gate, threads);
    let probe = Probe::new(base);
    let lows: Vec<_> = (0..BACKLOG)
        .map(|_| {
            let p = Arc::clone(&probe);
            rt.spawn(async move { backlog.low(&p) })
        })
        .collect();
    let p = Arc::clone(&probe);
    let mut high = None;
    let t0 = backlog.release(&gate, base, || {
        high = Some(rt.spawn(async move { p.high() }));
    });
    rt.block_on(async {
        for h in gates.into_iter().chain(lows) {
            h.await.unwrap();
        }
        high.unwrap().await.unwrap();
    });
    probe.trial(t0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, trials: &[Trial]) -> (u64, u64) {
    let mut ns: Vec<u64> = trials.iter().map(|t| t.latency_ns).collect();
    let mut lows: Vec<u64> = trials.iter().map(|t| t.lows_first).collect();
    ns.sort_unstable();
    lows.sort_unstable();
    let (p50, p99) = (percentile(&ns, 0.50), percentile(&ns, 0.99));
    println!(
        "priority_latency/{name:<20} trials {:>4}  p50 {:>9.1} us  p99 {:>9.1} us  max {:>9.1} us  \
         low closures started first: p50 {} p99 {}",
        ns.len(),
        p50 as f64 / 1e3,
        p99 as f64 / 1e3,
        *ns.last().unwrap() as f64 / 1e3,
        percentile(&lows, 0.50),
        percentile(&lows, 0.99),
    );
    (p50, p99)
}

fn priority_latency(threads: usize, backlog: Backlog, trials: usize) {
    let name = format!("{}/{threads}t", backlog.name());
    match backlog {
        Backlog::Held => println!(
            "priority_latency/{name}: {threads} thread(s) held, {BACKLOG} empty low-priority \
             closures queued, one high-priority closure spawned as the threads are let go; \
             spawn to its first instruction"
        ),
        Backlog::Busy => println!(
            "priority_latency/{name}: {threads} thread(s) running a backlog of {BACKLOG} \
             low-priority closures of {BUSY_WORK:?} each, one high-priority closure spawned; \
             spawn to its first instruction"
        ),
    }
    let base = Instant::now();
    let pool = pool(threads);
    trial_pool(&pool, backlog, base); // warm: tasks created and pooled
    let ours: Vec<Trial> = (0..trials)
        .map(|_| trial_pool(&pool, backlog, base))
        .collect();
    drop(pool);
    let rt = tokio_rt(threads);
    trial_tokio(&rt, threads, backlog, base);
    let theirs: Vec<Trial> = (0..trials)
        .map(|_| trial_tokio(&rt, threads, backlog, base))
        .collect();
    drop(rt);
    let (o50, o99) = report(&format!("{name}/monad_async"), &ours);
    let (t50, t99) = report(&format!("{name}/tokio"), &theirs);
    println!(
        "priority_latency/{name}: tokio / monad_async: p50 {:.0}x, p99 {:.0}x",
        t50 as f64 / o50.max(1) as f64,
        t99 as f64 / o99.max(1) as f64
    );
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let trials = std::env::var("MONAD_ASYNC_BENCH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benching { 500 } else { 3 });
    if trials > 0 {
        // One thread as well as two: on a two-core machine, two workers
        // and the spawning thread do not fit on the cores, and the
        // scheduler's time slices then show in both runtimes' tails.
        for threads in [1, THREADS] {
            priority_latency(threads, Backlog::Held, trials);
        }
        // Each busy trial drains 50-100 ms of backlog work per runtime.
        for threads in [1, THREADS] {
            priority_latency(threads, Backlog::Busy, trials.div_ceil(5));
        }
    }
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
