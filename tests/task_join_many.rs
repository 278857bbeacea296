//! Joins at a service's scale: 1,000 tasks each joining a Low child that
//! sleeps 1 s, on a default executor, finish in about 1 s of wall time
//! and almost no CPU: the joiners park (no polling), and the sleepers
//! hold no scarce ring resource.

mod common;

use monad_async::{Executor, Priority};
use std::time::{Duration, Instant};

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
    let (wall0, cpu0) = (Instant::now(), common::thread_cpu());
    ex.run_until_idle().unwrap();
    let (wall, cpu) = (wall0.elapsed(), common::thread_cpu() - cpu0);
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
