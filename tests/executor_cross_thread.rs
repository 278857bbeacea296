//! Spawning from other threads through ExecutorHandle: nothing is lost,
//! the executor is woken, and results come back to the spawning threads.

use monad_async::{Executor, Priority};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const THREADS: usize = 4;

/// Spawns `per_thread` tasks from each of `THREADS` threads, keeping at
/// most `window` of each thread's spawns unjoined, while this thread runs
/// the executor. Every task returns a distinct value; all must come back.
///
/// The window exists because every unfinished task holds a stack mapping
/// (two VMAs with its guard page), and the kernel's default
/// vm.max_map_count (65530) caps a process at about 32,000 of them: a
/// burst of 100,000 unfinished tasks cannot exist at once.
fn spawn_from_threads(per_thread: usize, window: usize) -> u64 {
    let ex = Executor::new().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let spawners: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = ex.handle();
            let ran = ran.clone();
            std::thread::spawn(move || {
                let prios = [Priority::High, Priority::Normal, Priority::Low];
                let mut sum = 0u64;
                let mut pending = Vec::with_capacity(window.min(per_thread));
                for i in 0..per_thread {
                    let ran = ran.clone();
                    let value = (t * per_thread + i) as u64;
                    let h = handle
                        .spawn(prios[i % 3], move |_cx| {
                            ran.fetch_add(1, Ordering::Relaxed);
                            value
                        })
                        .unwrap();
                    pending.push(h);
                    if pending.len() == window {
                        // Blocking joins from this (non-executor) thread.
                        sum += pending.drain(..).map(|h| h.join().unwrap()).sum::<u64>();
                    }
                }
                sum + pending.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
        })
        .collect();

    let total = THREADS * per_thread;
    while ran.load(Ordering::Relaxed) < total && !spawners.iter().all(|s| s.is_finished()) {
        match ex.run(usize::MAX, Some(Duration::from_millis(20))) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ETIME)),
        }
    }
    let sum: u64 = spawners.into_iter().map(|s| s.join().unwrap()).sum();
    let n = total as u64;
    assert_eq!(sum, n * (n - 1) / 2);
    assert_eq!(ran.load(Ordering::Relaxed), total);

    let s = ex.stats();
    assert_eq!(s.attached, n);
    assert_eq!(s.exited, n);
    assert_eq!(s.inbox_drained, n);
    assert_eq!(s.tasks_attached, 0);
    eprintln!("{n} remote spawns created {} tasks", s.tasks_created);
    s.tasks_created
}

#[test]
fn four_threads_spawn_25k_each_none_lost() {
    let created = spawn_from_threads(25_000, 1_000);
    assert!(
        created <= (THREADS * 1_000) as u64 + 1,
        "tasks created: {created}"
    );
}

#[test]
fn four_threads_burst_5k_each_unjoined_none_lost() {
    spawn_from_threads(5_000, usize::MAX);
}

#[test]
fn a_waiting_executor_is_woken_by_a_remote_spawn() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        handle.spawn(Priority::Normal, |_cx| 7).unwrap()
    });
    // Waits (no timeout) until the spawn arrives, then runs it.
    assert_eq!(ex.run(1, None).unwrap(), 1);
    assert_eq!(t.join().unwrap().join().unwrap(), 7);
}

#[test]
fn run_until_idle_includes_remote_spawns_that_returned() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let hs = std::thread::spawn(move || {
        (0..100)
            .map(|i| {
                handle
                    .spawn(Priority::Normal, move |cx| {
                        cx.sleep(Duration::from_micros(100)).unwrap();
                        i
                    })
                    .unwrap()
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    ex.run_until_idle().unwrap();
    assert!(hs.iter().all(|h| h.is_finished()));
    assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>(), 4950);
}

#[test]
fn remote_tasks_may_spawn_locally_and_remotely() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let h = std::thread::spawn(move || {
        handle
            .spawn(Priority::Normal, |cx| {
                let local = cx.spawn(Priority::High, |_cx| 1).unwrap();
                let remote = cx.executor_handle().spawn(Priority::High, |_cx| 2).unwrap();
                local.join().unwrap() + remote.join().unwrap()
            })
            .unwrap()
    })
    .join()
    .unwrap();
    ex.run_until_idle().unwrap();
    assert_eq!(h.join().unwrap(), 3);
}
