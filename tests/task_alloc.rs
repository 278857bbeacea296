//! Memory: a warm executor's spawn, run and join allocate nothing, and
//! every slot is freed in the end, whichever of the executor side and the
//! handle lets go last (stale handles, orphaned slots, handles outliving
//! the executor).
//!
//! A counting global allocator tallies this process's allocations; the
//! file holds a single test so that no other test allocates meanwhile.

use monad_async::{Executor, Priority};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

struct Counting;

/// Bytes allocated and not yet freed, process-wide.
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Allocations made by this thread.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the bookkeeping allocates
// nothing (a const thread-local without drop glue, an atomic).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: the caller's contract is System's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

fn warm_spawns_allocate_nothing() {
    let ex = Executor::new().unwrap();
    // Warm up: one task, then a batch's worth.
    ex.spawn(Priority::Normal, |_cx| 0u64).join().unwrap();
    let mut handles = Vec::with_capacity(64);
    for i in 0..64u64 {
        handles.push(ex.spawn(Priority::Normal, move |cx| {
            cx.yield_now().unwrap();
            i
        }));
    }
    ex.run_until_idle().unwrap();
    handles.drain(..).for_each(|h| drop(h.join()));

    let before = allocs();
    for i in 0..10_000u64 {
        let v = [i; 4]; // a 32-byte capture: stored in place
        let h = ex.spawn(Priority::Normal, move |_cx| black_box(v[3]));
        ex.run(1, None).unwrap();
        assert_eq!(h.join().unwrap(), i);
    }
    for _ in 0..100 {
        for i in 0..64u64 {
            handles.push(ex.spawn(Priority::High, move |cx| {
                cx.yield_now().unwrap();
                i
            }));
        }
        ex.run_until_idle().unwrap();
        for (i, h) in handles.drain(..).enumerate() {
            assert!(h.is_finished());
            assert_eq!(h.join().unwrap(), i as u64);
        }
    }
    let stats_before = allocs();
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_micros(10)));
    ex.run_until_idle().unwrap();
    assert!(h.stats().unwrap().total > Duration::ZERO);
    h.join().unwrap().unwrap();
    assert_eq!(
        allocs(),
        stats_before,
        "sleep, stats and join allocate nothing"
    );
    assert_eq!(allocs(), before, "warm spawns must not allocate");
}

fn every_slot_is_freed() {
    let base = live();
    {
        let ex = Executor::new().unwrap();
        let handle = ex.handle();
        // Stale handles: their slots are orphaned by reuse, then freed by
        // the handles, some on this thread, some on another.
        let mut stale = Vec::new();
        for i in 0..20u64 {
            let h = ex.spawn(Priority::Normal, move |_cx| vec![i; 100]);
            ex.run_until_idle().unwrap();
            stale.push(h);
        }
        for i in 0..20u64 {
            assert_eq!(ex.spawn(Priority::Normal, move |_cx| i).join().unwrap(), i);
        }
        let moved: Vec<_> = stale.drain(10..).collect();
        std::thread::spawn(move || {
            for (i, h) in moved.into_iter().enumerate() {
                if i % 2 == 0 {
                    drop(h);
                } else {
                    assert_eq!(h.join().unwrap().len(), 100);
                }
            }
        })
        .join()
        .unwrap();
        // Remote slots, reused while stale handles live.
        let remote = std::thread::spawn(move || {
            (0..20u64)
                .map(|i| handle.spawn(Priority::Normal, move |_cx| i).unwrap())
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        ex.run_until_idle().unwrap();
        // Handles alive when the executor goes: finished and pending ones.
        let pending = ex.spawn(Priority::Normal, |_cx| vec![0u8; 10]);
        drop(ex);
        drop(stale);
        assert!(pending.join().unwrap_err().is_cancelled());
        assert_eq!(
            remote.into_iter().map(|h| h.join().unwrap()).sum::<u64>(),
            190
        );
    }
    // The calibration cache and similar process-wide state allocate nothing
    // per executor, so everything must be back.
    assert_eq!(live(), base, "leaked bytes");
}

#[test]
fn allocation() {
    // Process-wide state (tick calibration, thread ids) settles first.
    let ex = Executor::new().unwrap();
    ex.spawn(Priority::Normal, |_cx| ()).join().unwrap();
    drop(ex);
    std::thread::spawn(|| ()).join().unwrap();

    warm_spawns_allocate_nothing();
    every_slot_is_freed();
}
