//! Joins at a service's scale: 1,000 tasks each joining a Low child that
//! sleeps 1 s, on a default executor, finish in about 1 s of wall time
//! and almost no CPU: the joiners park (no polling), and the sleepers
//! hold no scarce ring resource.

use monad_async::{Executor, Priority};
use std::time::{Duration, Instant};

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn a_thousand_joiners_of_sleeping_children_cost_no_cpu() {
    const N: usize = 1000;
    let ex = Executor::new().unwrap();
    // Warm: the tasks (and their stacks) exist before the measurement.
    let warm: Vec<_> = (0..2 * N)
        .map(|_| ex.spawn(Priority::Normal, |cx| cx.yield_now()))
        .collect();
    ex.run_until_idle().unwrap();
    for h in warm {
        h.join().unwrap().unwrap();
    }

    let parents: Vec<_> = (0..N)
        .map(|i| {
            ex.spawn(Priority::Normal, move |cx| {
                let child = cx
                    .spawn(Priority::Low, move |cx| {
                        cx.sleep(Duration::from_secs(1)).map(|()| i)
                    })
                    .unwrap();
                let v = child.join().unwrap().unwrap();
                (v, cx.stats().suspensions)
            })
        })
        .collect();
    let (wall0, cpu0) = (Instant::now(), thread_cpu());
    ex.run_until_idle().unwrap();
    let (wall, cpu) = (wall0.elapsed(), thread_cpu() - cpu0);
    for (i, h) in parents.into_iter().enumerate() {
        let (v, suspensions) = h.join().unwrap();
        assert_eq!(v, i);
        assert_eq!(suspensions, 1, "parked once, woken once: no polling");
    }
    println!("1,000 joiners of 1 s sleepers: {wall:?} wall, {cpu:?} CPU");
    assert!(wall < Duration::from_millis(1100), "wall {wall:?}");
    // Spawning, running and joining 2,000 warm tasks, plus 1,000 timer
    // completions: a few ms even unoptimised. Polling joins burnt a core.
    let cpu_limit = Duration::from_millis(50);
    assert!(cpu < cpu_limit, "CPU {cpu:?}");
}
