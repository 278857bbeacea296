//! The spec's thread-pool example through the safe API: 1,024 closures at
//! mixed priorities on 2 and on 4 threads (stackless tasks, the default,
//! and stackful ones), each run exactly once, on a pool thread, with its
//! result back through its handle.

use monad_async::{Priority, Switcher, ThreadPool};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

fn each_once(threads: usize, switcher: Switcher) {
    const N: usize = 1024;
    let pool = ThreadPool::builder()
        .threads(threads)
        .switcher(switcher)
        .build()
        .unwrap();
    assert_eq!(pool.threads(), threads);
    let runs: Arc<Vec<AtomicU32>> = Arc::new((0..N).map(|_| AtomicU32::new(0)).collect());
    let me = std::thread::current().id();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let runs = Arc::clone(&runs);
            pool.spawn(Priority::ALL[(i / 3) % 3], move |_cx| {
                runs[i].fetch_add(1, Ordering::Relaxed);
                assert_ne!(std::thread::current().id(), me);
                let name = std::thread::current().name().map(str::to_owned);
                (i, name)
            })
        })
        .collect();
    pool.wait_idle().unwrap();
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(
            run.load(Ordering::Relaxed),
            1,
            "closure {i} on {threads} threads"
        );
    }
    for (i, h) in handles.into_iter().enumerate() {
        let (got, name) = h.join().unwrap();
        assert_eq!(got, i);
        assert!(name.unwrap().starts_with("monad-async-pool-"));
    }
    let s = pool.stats();
    assert_eq!(
        (s.submitted, s.dispatched, s.executed),
        (N as u64, N as u64, N as u64)
    );
    assert_eq!(s.queued, 0);
    assert_eq!(s.threads, threads as u64);
    let per_thread = pool.thread_stats();
    assert_eq!(per_thread.len(), threads);
    assert_eq!(
        per_thread.iter().map(|t| t.dispatched).sum::<u64>(),
        N as u64
    );
}

#[test]
fn spec_example_on_two_threads() {
    each_once(2, Switcher::None);
}

#[test]
fn spec_example_on_four_threads() {
    each_once(4, Switcher::None);
}

#[test]
fn spec_example_with_stackful_tasks() {
    each_once(2, Switcher::Asm);
    each_once(4, Switcher::Sjlj);
}

#[test]
fn default_pool_has_one_thread_per_core() {
    let pool = ThreadPool::new().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(pool.threads(), cores);
    assert_eq!(pool.spawn(Priority::Normal, |_cx| 7).join().unwrap(), 7);
}
