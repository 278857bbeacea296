//! Joining inside the pool: with stackful tasks (asm, sjlj), a closure
//! joining another closure of the same pool suspends its task (in naps)
//! instead of blocking its thread, so even a one-thread pool runs
//! fork-join work to the end; with stackless ones (Switcher::None, the
//! default) the join blocks its thread instead.
//! Tasks never migrate: a joining task resumes on its own thread.

use monad_async::{Priority, Switcher, ThreadPool};
use std::sync::Arc;

fn fib(pool: &Arc<ThreadPool>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let p = Arc::clone(pool);
    let left = pool.spawn(Priority::Normal, move |_cx| fib(&p, n - 1));
    let right = fib(pool, n - 2);
    left.join().unwrap() + right
}

#[test]
fn fork_join_on_one_thread() {
    let pool = Arc::new(
        ThreadPool::builder()
            .threads(1)
            .switcher(Switcher::Asm)
            .build()
            .unwrap(),
    );
    let p = Arc::clone(&pool);
    let h = pool.spawn(Priority::Normal, move |_cx| {
        let me = std::thread::current().id();
        let v = fib(&p, 12);
        assert_eq!(std::thread::current().id(), me, "a task never migrates");
        v
    });
    assert_eq!(h.join().unwrap(), 144);
}

#[test]
fn fork_join_on_two_threads() {
    let pool = Arc::new(
        ThreadPool::builder()
            .threads(2)
            .switcher(Switcher::Sjlj)
            .build()
            .unwrap(),
    );
    let p = Arc::clone(&pool);
    assert_eq!(
        pool.spawn(Priority::High, move |_cx| fib(&p, 14))
            .join()
            .unwrap(),
        377
    );
}

#[test]
fn stackless_tasks_block_their_thread_to_join() {
    let pool = Arc::new(
        ThreadPool::builder()
            .threads(2)
            .switcher(Switcher::None)
            .build()
            .unwrap(),
    );
    let p = Arc::clone(&pool);
    let h = pool.spawn(Priority::Normal, move |_cx| {
        p.spawn(Priority::Normal, |_cx| 5).join().unwrap() + 1
    });
    assert_eq!(h.join().unwrap(), 6);
}
