//! Spawning from many threads at once: 8 threads x 100,000 closures
//! (divided by MONAD_ASYNC_TEST_SCALE when set) through a 2-thread pool;
//! every closure runs exactly once, every handle gives its own value.

use monad_async::{Priority, ThreadPool};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

fn scaled(n: usize) -> usize {
    let div = std::env::var("MONAD_ASYNC_TEST_SCALE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&d| d > 0)
        .unwrap_or(1);
    (n / div).max(1)
}

#[test]
fn eight_threads_spawning_lose_and_duplicate_nothing() {
    const SPAWNERS: usize = 8;
    let per = scaled(100_000);
    let pool = Arc::new(ThreadPool::builder().threads(2).build().unwrap());
    let runs: Arc<Vec<AtomicU8>> =
        Arc::new((0..SPAWNERS * per).map(|_| AtomicU8::new(0)).collect());
    let spawners: Vec<_> = (0..SPAWNERS)
        .map(|s| {
            let pool = Arc::clone(&pool);
            let runs = Arc::clone(&runs);
            std::thread::spawn(move || {
                // Join in windows, so handles do not pile up unboundedly.
                let mut window = Vec::with_capacity(256);
                for k in 0..per {
                    let id = s * per + k;
                    let runs = Arc::clone(&runs);
                    window.push(pool.spawn(Priority::ALL[k % 3], move |_cx| {
                        runs[id].fetch_add(1, Ordering::Relaxed);
                        id
                    }));
                    if window.len() == 256 || k + 1 == per {
                        let first = id + 1 - window.len();
                        for (j, h) in window.drain(..).enumerate() {
                            assert_eq!(h.join().unwrap(), first + j);
                        }
                    }
                }
            })
        })
        .collect();
    for t in spawners {
        t.join().unwrap();
    }
    pool.wait_idle().unwrap();
    for (id, r) in runs.iter().enumerate() {
        assert_eq!(r.load(Ordering::Relaxed), 1, "closure {id}");
    }
    let total = (SPAWNERS * per) as u64;
    let s = pool.stats();
    assert_eq!(
        (s.submitted, s.dispatched, s.executed),
        (total, total, total)
    );
    // Tasks are reused: at most about a window per spawner is alive.
    assert!(s.tasks_created <= (SPAWNERS * 256 + 16) as u64, "{s:?}");
}
