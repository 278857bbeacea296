//! Cross-thread attach: the bench thread spawns onto an executor running
//! on another thread and waits until the task has run. Against an
//! executor that is awake (polling), one that sleeps (blocked waiting
//! for work, so every spawn must wake it: `idle_spin(false)`), and one
//! left to its default, which spins briefly before it sleeps while spawns
//! keep coming soon after it goes idle (`idle`). tokio: `Runtime::spawn` from
//! the bench thread onto a one-worker multi-thread runtime, whose worker
//! is kept awake by a yielding task or left to park.
//!
//! Each figure is a full round trip: spawn, the executor notices, runs the
//! task, the bench thread sees its effect. The floor does the same through
//! the C API alone (`sys`): a task attached from the bench thread to a C
//! executor (same ring, same switcher) polling on its own thread, so the
//! difference to it is what the Rust layer adds. The `awake/join` pair instead
//! joins the task's handle from the bench thread (tokio: `block_on` of its
//! `JoinHandle`), so it also measures how a blocked joiner is woken.

use criterion::{criterion_group, criterion_main, Criterion};
use monad_async::{sys, Executor, ExecutorBuilder, ExecutorHandle, Priority};
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
    fn start(awake: bool, idle_spin: bool) -> Remote {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let ex = Executor::builder().idle_spin(idle_spin).build().unwrap();
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

/// Bumped by every contender's task; each round trip waits for it. A
/// static, not an `Arc` cloned per spawn: a reference count written by
/// both threads would add a cache-line transfer per round trip that
/// belongs to the bench, not to the executor measured.
static DONE: AtomicU64 = AtomicU64::new(0);

extern "C" fn raw_bump(_task: sys::monad_async_task) -> sys::monad_async_result {
    DONE.fetch_add(1, Ordering::Release);
    sys::monad_async_result { value: 0, error: 0 }
}

fn raw_ok(r: sys::monad_async_result) {
    assert_eq!(r.error, 0, "C call failed: errno {}", r.error);
}

/// The floor: a C executor polling on its own thread (as `Remote` with
/// `awake`), and one C task the bench thread attaches to it again and
/// again through `monad_async_task_attach`.
struct RawRemote {
    ex: usize,
    switcher: sys::monad_async_context_switcher,
    task: sys::monad_async_task,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RawRemote {
    fn start() -> RawRemote {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let mut attr = sys::monad_async_executor_attr::default();
            attr.io_uring_ring.entries = ExecutorBuilder::DEFAULT_RING_ENTRIES;
            let mut ex = std::ptr::null_mut();
            // SAFETY: valid out-pointer and attributes; created and run on
            // this thread only.
            raw_ok(unsafe { sys::monad_async_executor_create(&mut ex, &attr) });
            tx.send(ex as usize).unwrap();
            let zero = sys::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            while !stop2.load(Ordering::Relaxed) {
                // SAFETY: our executor, on its thread. ETIME (nothing to do)
                // is the usual outcome.
                let _ = unsafe { sys::monad_async_executor_run(ex, usize::MAX, &zero) };
            }
            // SAFETY: as above; it drains what is left.
            raw_ok(unsafe { sys::monad_async_executor_destroy(ex) });
        });
        let ex = rx.recv().unwrap();
        let mut switcher = std::ptr::null_mut();
        let mut task = std::ptr::null_mut();
        let attr = sys::monad_async_task_attr::default();
        // SAFETY: valid out-pointers; the task is set up before its first
        // attach publishes it to the executor's thread.
        unsafe {
            raw_ok(sys::monad_async_context_switcher_asm_create(&mut switcher));
            raw_ok(sys::monad_async_task_create(&mut task, switcher, &attr));
            (*task).user_code = Some(raw_bump);
        }
        RawRemote {
            ex,
            switcher,
            task,
            stop,
            thread: Some(thread),
        }
    }

    /// Attaches the task again, once its previous run has exited.
    fn attach(&self) {
        loop {
            // SAFETY: the executor lives until drop joins its thread;
            // attach is thread-safe and refuses a still-attached task.
            let r = unsafe {
                sys::monad_async_task_attach(
                    self.ex as sys::monad_async_executor,
                    self.task,
                    std::ptr::null_mut(),
                )
            };
            match r.error {
                0 => return,
                libc::EBUSY => std::hint::spin_loop(), // still exiting
                e => panic!("attach: errno {e}"),
            }
        }
    }
}

impl Drop for RawRemote {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // SAFETY: the executor is alive until its thread ends; wake is
        // thread-safe.
        let _ = unsafe { sys::monad_async_executor_wake(self.ex as sys::monad_async_executor) };
        let _ = self.thread.take().unwrap().join();
        // SAFETY: the executor is gone, so the task is attached nowhere;
        // then its switcher has no user.
        unsafe {
            raw_ok(sys::monad_async_task_destroy(self.task));
            raw_ok(sys::monad_async_context_switcher_destroy(self.switcher));
        }
    }
}

fn wait_for(counter: &AtomicU64, want: u64) {
    while counter.load(Ordering::Acquire) < want {
        std::hint::spin_loop();
    }
}

/// `iters` round trips, timed together: each calls `spawn` for a task
/// that bumps `DONE`, then waits until the task has.
fn round_trips(iters: u64, mut spawn: impl FnMut(&'static AtomicU64)) -> Duration {
    let base = DONE.load(Ordering::Acquire);
    let start = Instant::now();
    for i in 1..=iters {
        spawn(&DONE);
        wait_for(&DONE, base + i);
    }
    start.elapsed()
}

fn cross_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_thread_attach");
    for (name, awake, idle_spin) in [
        ("monad_async/awake", true, false),
        ("monad_async/sleeping", false, false),
        ("monad_async/idle", false, true),
    ] {
        let remote = Remote::start(awake, idle_spin);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                round_trips(iters, |d| {
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

    {
        let raw = RawRemote::start();
        g.bench_function("floor/c_attach/awake", |b| {
            b.iter_custom(|iters| round_trips(iters, |_| raw.attach()))
        });
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
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                round_trips(iters, |d| {
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
