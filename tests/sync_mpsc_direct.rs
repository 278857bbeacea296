//! `sync::mpsc`'s same-executor fast path: a send to a receiver parked as
//! a task of the sender's executor hands the message over directly and
//! defers the wake to the sender's next suspension
//! (`monad_async_task_wake_deferred`), switching straight to the receiver
//! when it would run next. Whatever the path, the order tasks run in is
//! the one the plain wake gives: a ready task of higher priority, or one
//! already queued at the receiver's level, runs first; a cancel after the
//! send finds the message handed over; the last sender's drop ends a
//! parked receive; senders on other threads and executors, and a sender
//! on the executor's thread outside its tasks, take the general path.

use monad_async::sync::mpsc;
use monad_async::{Executor, JoinHandle, Priority};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// Runs every task that can run now, and returns once none can (parked
/// ones stay parked).
fn settle(ex: &Executor) {
    while ex.run(usize::MAX, Some(Duration::ZERO)).is_ok() {}
}

type Log = Rc<RefCell<Vec<&'static str>>>;

/// A Normal task of `ex` parked in `recv` on a fresh channel (the
/// executor settled): once a message comes it logs "receiver", answers 1
/// on a second channel and returns the message. Returns the channel's
/// sender, the answer's receiver and the task.
fn parked_receiver(
    ex: &Executor,
    log: &Log,
) -> (
    mpsc::Sender<u32>,
    mpsc::Receiver<u32>,
    JoinHandle<Option<u32>>,
) {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let (tx_back, rx_back) = mpsc::channel::<u32>(1);
    let l = log.clone();
    let receiver = ex.spawn(Priority::Normal, move |_cx| {
        let v = rx.recv().unwrap();
        l.borrow_mut().push("receiver");
        tx_back.send(1).unwrap();
        v
    });
    settle(ex);
    (tx, rx_back, receiver)
}

#[test]
fn a_ready_task_of_higher_priority_runs_before_the_woken_receiver() {
    let ex = Executor::new().unwrap();
    let log: Log = Rc::default();
    let (tx, mut rx_back, receiver) = parked_receiver(&ex, &log);
    let l = log.clone();
    let sender = ex.spawn(Priority::Normal, move |cx| {
        let l2 = l.clone();
        // Ready (High) before the send, running only once we suspend.
        let high = cx
            .spawn(Priority::High, move |_cx| l2.borrow_mut().push("high"))
            .unwrap();
        tx.send(7).unwrap();
        l.borrow_mut().push("sent");
        // Parks: the receiver must not run before the High task.
        assert_eq!(rx_back.recv().unwrap(), Some(1));
        l.borrow_mut().push("sender");
        high.join().unwrap();
    });
    ex.run_until_idle().unwrap();
    sender.join().unwrap();
    assert_eq!(receiver.join().unwrap(), Some(7));
    assert_eq!(*log.borrow(), ["sent", "high", "receiver", "sender"]);
}

#[test]
fn the_woken_receiver_does_not_jump_tasks_queued_at_its_level() {
    let ex = Executor::new().unwrap();
    let log: Log = Rc::default();
    let (tx, mut rx_back, receiver) = parked_receiver(&ex, &log);
    let l = log.clone();
    let sender = ex.spawn(Priority::Normal, move |cx| {
        let (l2, l3) = (l.clone(), l.clone());
        // Two Normal tasks queued before the send, and a Low one.
        let first = cx
            .spawn(Priority::Normal, move |_cx| l2.borrow_mut().push("queued"))
            .unwrap();
        let low = cx
            .spawn(Priority::Low, move |_cx| l3.borrow_mut().push("low"))
            .unwrap();
        tx.send(7).unwrap();
        assert_eq!(rx_back.recv().unwrap(), Some(1));
        l.borrow_mut().push("sender");
        first.join().unwrap();
        low.join().unwrap();
    });
    ex.run_until_idle().unwrap();
    sender.join().unwrap();
    assert_eq!(receiver.join().unwrap(), Some(7));
    assert_eq!(*log.borrow(), ["queued", "receiver", "sender", "low"]);
}

#[test]
fn a_sender_that_yields_or_exits_after_the_send_lets_the_receiver_run_first() {
    let ex = Executor::new().unwrap();
    let log: Log = Rc::default();
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let l = log.clone();
    let receiver = ex.spawn(Priority::Normal, move |_cx| {
        let mut got = Vec::new();
        while let Some(v) = rx.recv().unwrap() {
            l.borrow_mut().push("received");
            got.push(v);
        }
        got
    });
    settle(&ex);
    let l = log.clone();
    let sender = ex.spawn(Priority::Normal, move |cx| {
        tx.send(1).unwrap();
        cx.yield_now().unwrap(); // behind the woken receiver
        l.borrow_mut().push("yielded");
        tx.send(2).unwrap();
        l.borrow_mut().push("exits");
        // Exit: the deferred wake is applied; then the drop ends the stream.
    });
    ex.run_until_idle().unwrap();
    sender.join().unwrap();
    assert_eq!(receiver.join().unwrap(), [1, 2]);
    assert_eq!(*log.borrow(), ["received", "yielded", "exits", "received"]);
}

#[test]
fn a_cancel_after_the_send_finds_the_message_handed_over() {
    let ex = Executor::new().unwrap();
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    type Seen = Rc<RefCell<Option<(Result<Option<u32>, Option<i32>>, Option<i32>)>>>;
    let seen: Seen = Rc::default();
    let s = seen.clone();
    let receiver = ex.spawn(Priority::Normal, move |cx| {
        let v = rx.recv().map_err(|e| e.raw_os_error());
        // The send won: the next suspension point says ECANCELED.
        let after = cx.yield_now().err().and_then(|e| e.raw_os_error());
        *s.borrow_mut() = Some((v, after));
    });
    settle(&ex);
    let handle: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::new(RefCell::new(Some(receiver)));
    let h = handle.clone();
    let sender = ex.spawn(Priority::Normal, move |_cx| {
        tx.send(5).unwrap();
        // Before the receiver runs: the wake (deferred) came first.
        h.borrow().as_ref().unwrap().cancel().unwrap();
    });
    ex.run_until_idle().unwrap();
    sender.join().unwrap();
    let receiver = handle.borrow_mut().take().unwrap();
    assert!(receiver.join().unwrap_err().is_cancelled());
    assert_eq!(*seen.borrow(), Some((Ok(Some(5)), Some(libc::ECANCELED))));
}

#[test]
fn a_cancelled_parked_receiver_loses_nothing_and_receives_later() {
    let ex = Executor::new().unwrap();
    let (tx, rx) = mpsc::channel::<u32>(1);
    let rx = Rc::new(RefCell::new(rx));
    let seen: Rc<RefCell<Option<Option<i32>>>> = Rc::default();
    let (r, s) = (rx.clone(), seen.clone());
    let first = ex.spawn(Priority::Normal, move |_cx| {
        *s.borrow_mut() = Some(r.borrow_mut().recv().err().and_then(|e| e.raw_os_error()));
    });
    settle(&ex);
    first.cancel().unwrap();
    settle(&ex);
    assert_eq!(*seen.borrow(), Some(Some(libc::ECANCELED)));
    // The channel is as if it never waited: a parked receive works again.
    let r = rx.clone();
    let second = ex.spawn(Priority::Normal, move |_cx| r.borrow_mut().recv().unwrap());
    settle(&ex);
    let sender = ex.spawn(Priority::Normal, move |_cx| tx.send(9).unwrap());
    ex.run_until_idle().unwrap();
    sender.join().unwrap();
    assert_eq!(second.join().unwrap(), Some(9));
}

#[test]
fn dropping_the_last_sender_ends_a_parked_receive() {
    let ex = Executor::new().unwrap();
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let receiver = ex.spawn(Priority::Normal, move |_cx| rx.recv().unwrap());
    settle(&ex);
    let sender = ex.spawn(Priority::Normal, move |_cx| drop(tx));
    ex.run_until_idle().unwrap();
    sender.join().unwrap();
    assert_eq!(receiver.join().unwrap(), None);

    // From another thread.
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let receiver = ex.spawn(Priority::Normal, move |_cx| rx.recv().unwrap());
    settle(&ex);
    std::thread::spawn(move || drop(tx)).join().unwrap();
    ex.run_until_idle().unwrap();
    assert_eq!(receiver.join().unwrap(), None);
}

#[test]
fn a_send_from_the_executors_thread_outside_its_tasks_wakes_at_once() {
    let ex = Executor::new().unwrap();
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let receiver = ex.spawn(Priority::Normal, move |_cx| rx.recv().unwrap());
    settle(&ex);
    tx.send(3).unwrap(); // this thread owns the executor; no task runs
    ex.run_until_idle().unwrap();
    assert_eq!(receiver.join().unwrap(), Some(3));
}

#[test]
fn ping_pong_across_executors_and_threads_is_unchanged() {
    const N: u32 = 20_000;
    let (tx_a, mut rx_a) = mpsc::channel::<u32>(1);
    let (tx_b, mut rx_b) = mpsc::channel::<u32>(1);
    // Echo task on an executor of its own thread.
    let echo = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        let h = ex.spawn(Priority::Normal, move |_cx| {
            let mut n = 0;
            while let Some(v) = rx_a.recv().unwrap() {
                tx_b.send(v + 1).unwrap();
                n += 1;
            }
            n
        });
        ex.run_until_idle().unwrap();
        h.join().unwrap()
    });
    // Pinger: half from a task of another executor, half from a plain
    // thread (which blocks).
    let ex = Executor::new().unwrap();
    let (tx_a2, tx_a3) = (tx_a.clone(), tx_a);
    let ping = ex.spawn(Priority::Normal, move |_cx| {
        for i in 0..N / 2 {
            tx_a2.send(i).unwrap();
            assert_eq!(rx_b.recv().unwrap(), Some(i + 1));
        }
        rx_b
    });
    ex.run_until_idle().unwrap();
    let mut rx_b = ping.join().unwrap();
    for i in N / 2..N {
        tx_a3.send(i).unwrap();
        assert_eq!(rx_b.recv().unwrap(), Some(i + 1));
    }
    drop(tx_a3);
    assert_eq!(echo.join().unwrap(), N);
}

#[test]
fn many_same_executor_pairs_interleave_correctly() {
    // Several ping-pong pairs on one executor, at mixed priorities: the
    // deferred wakes of one pair meet ready tasks of the others.
    let ex = Executor::new().unwrap();
    let mut handles = Vec::new();
    for (k, p) in [
        Priority::High,
        Priority::Normal,
        Priority::Low,
        Priority::Normal,
    ]
    .into_iter()
    .enumerate()
    {
        let (tx_a, mut rx_a) = mpsc::channel::<u64>(1);
        let (tx_b, mut rx_b) = mpsc::channel::<u64>(1);
        handles.push(ex.spawn(p, move |_cx| {
            let mut sum = 0;
            while let Some(v) = rx_a.recv().unwrap() {
                sum += v;
                tx_b.send(v).unwrap();
            }
            sum
        }));
        handles.push(ex.spawn(p, move |cx| {
            for i in 0..2_000u64 {
                tx_a.send(i + k as u64).unwrap();
                assert_eq!(rx_b.recv().unwrap(), Some(i + k as u64));
                if i % 97 == 0 {
                    cx.yield_now().unwrap();
                }
            }
            0
        }));
    }
    ex.run_until_idle().unwrap();
    for (k, h) in handles.into_iter().enumerate() {
        let got = h.join().unwrap();
        if k % 2 == 0 {
            let base = (k / 2) as u64;
            assert_eq!(got, (0..2_000u64).map(|i| i + base).sum::<u64>());
        }
    }
}
