//! The bare park/wake round trip between two tasks of one executor: a
//! contender in `benches/park.rs` and the floor under the channel
//! ping-pong of `benches/sync.rs`.

use monad_async::{Executor, Priority, TaskWaker};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Two tasks of `ex` passing a turn `iters` times through `TaskWaker`s
/// (two wakes, two parks per round trip); the loop's time.
pub fn ping_pong_same_thread(ex: &Executor, iters: u64) -> Duration {
    let b_waker: Rc<RefCell<Option<TaskWaker>>> = Rc::default();
    let a_waker: Rc<RefCell<Option<TaskWaker>>> = Rc::default();
    let (bw, aw) = (b_waker.clone(), a_waker.clone());
    let b = ex.spawn(Priority::Normal, move |cx| {
        *bw.borrow_mut() = Some(cx.waker());
        for _ in 0..iters {
            cx.park().unwrap();
            aw.borrow().as_ref().unwrap().wake();
        }
    });
    let (bw, aw) = (b_waker, a_waker);
    let a = ex.spawn(Priority::Normal, move |cx| {
        *aw.borrow_mut() = Some(cx.waker());
        let start = Instant::now();
        for _ in 0..iters {
            bw.borrow().as_ref().unwrap().wake();
            cx.park().unwrap();
        }
        start.elapsed()
    });
    ex.run_until_idle().unwrap();
    b.join().unwrap();
    a.join().unwrap()
}
