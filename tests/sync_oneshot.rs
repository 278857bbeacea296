//! `sync::oneshot`: one value from tasks, threads, other executors and
//! async code; the sender's drop ends the wait; a cancelled receive loses
//! nothing.

use monad_async::sync::oneshot;
use monad_async::{Executor, Priority, ThreadPool};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Runs every task that can run now, and returns once none can (parked
/// ones stay parked).
fn settle(ex: &Executor) {
    while ex.run(usize::MAX, Some(Duration::ZERO)).is_ok() {}
}

#[test]
fn a_thousand_pairs_of_tasks_on_one_executor() {
    let ex = Executor::new().unwrap();
    let mut hs = Vec::new();
    for i in 0..1000u32 {
        let (tx, mut rx) = oneshot::channel();
        // Receivers first at every priority, senders at another.
        hs.push(ex.spawn(Priority::ALL[(i % 3) as usize], move |_cx| rx.recv()));
        ex.spawn(Priority::ALL[((i + 1) % 3) as usize], move |cx| {
            cx.yield_now().unwrap();
            tx.send(i).unwrap();
        });
    }
    ex.run_until_idle().unwrap();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().unwrap().unwrap(), i as u32);
    }
}

#[test]
fn sender_dropped_unsent_gives_epipe_to_a_parked_receiver() {
    let ex = Executor::new().unwrap();
    let (tx, mut rx) = oneshot::channel::<String>();
    let h = ex.spawn(Priority::Normal, move |_cx| rx.recv());
    settle(&ex);
    drop(tx);
    settle(&ex);
    let e = h.join().unwrap().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
}

#[test]
fn receiver_gone_gives_the_value_back() {
    let (tx, rx) = oneshot::channel();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(vec![1]), Err(vec![1]));
}

#[test]
fn cancelled_receive_leaves_the_value_for_the_next_one() {
    let ex = Executor::new().unwrap();
    let (tx, rx) = oneshot::channel();
    let rx = Rc::new(RefCell::new(rx));
    let seen = Rc::new(RefCell::new(None));
    let (r, s) = (rx.clone(), seen.clone());
    let a = ex.spawn(Priority::Normal, move |_cx| {
        *s.borrow_mut() = r.borrow_mut().recv().err().and_then(|e| e.raw_os_error());
    });
    settle(&ex);
    a.cancel().unwrap();
    settle(&ex);
    assert_eq!(*seen.borrow(), Some(libc::ECANCELED));
    tx.send(5).unwrap();
    assert_eq!(rx.borrow_mut().try_recv().unwrap(), 5);
}

#[test]
fn across_executors_a_pool_and_threads() {
    let (tx1, mut rx1) = oneshot::channel();
    let (tx2, mut rx2) = oneshot::channel();
    let (tx3, mut rx3) = oneshot::channel();
    // executor A's task -> pool task -> executor B's task -> this thread.
    let a = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        ex.spawn(Priority::Low, move |cx| {
            cx.sleep(Duration::from_millis(5)).unwrap();
            tx1.send(1u32).unwrap();
        })
        .join()
        .unwrap();
    });
    let pool = ThreadPool::builder().threads(1).build().unwrap();
    let p = pool.spawn(Priority::Normal, move |_cx| {
        let v = rx1.recv().unwrap(); // the none switcher: blocks its thread
        tx2.send(v + 1).unwrap();
    });
    let b = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        ex.spawn(Priority::High, move |_cx| {
            let v = rx2.recv().unwrap();
            tx3.send(v + 1).unwrap();
        })
        .join()
        .unwrap();
    });
    assert_eq!(rx3.recv().unwrap(), 3);
    a.join().unwrap();
    b.join().unwrap();
    p.join().unwrap();
}

#[test]
fn async_receive_on_tokio_and_a_dropped_future_keeps_the_value() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (tx, mut rx) = oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        tx.send("late").unwrap();
    });
    assert_eq!(rt.block_on(rx.recv_async()).unwrap(), "late");

    let (tx, mut rx) = oneshot::channel();
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut f = Box::pin(rx.recv_async());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        tx.send(9).unwrap(); // handed to the future
    } // dropped unreturned: the value goes back
    let mut f = Box::pin(rx.recv_async());
    assert!(matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(9))));
}
