//! `sync::mpsc`: bounded and unbounded channels from tasks of one
//! executor, across executors and a pool, from threads and async code;
//! back-pressure, priority order of waiting senders, closing like tokio,
//! and cancellation of a parked send or receive without losing a message.

use monad_async::sync::mpsc;
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
fn ping_pong_between_two_tasks_of_one_executor() {
    let ex = Executor::new().unwrap();
    let (tx_a, mut rx_a) = mpsc::channel(1);
    let (tx_b, mut rx_b) = mpsc::channel(1);
    let ping = ex.spawn(Priority::Normal, move |_cx| {
        for i in 0..10_000u32 {
            tx_a.send(i).unwrap();
            assert_eq!(rx_b.recv().unwrap(), Some(i + 1));
        }
    });
    let pong = ex.spawn(Priority::Normal, move |_cx| {
        let mut n = 0;
        while let Some(v) = rx_a.recv().unwrap() {
            tx_b.send(v + 1).unwrap();
            n += 1;
        }
        n
    });
    ex.run_until_idle().unwrap();
    ping.join().unwrap();
    assert_eq!(pong.join().unwrap(), 10_000);
}

#[test]
fn a_full_channel_parks_senders_and_serves_them_by_priority() {
    let ex = Executor::new().unwrap();
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(100).unwrap();
    tx.try_send(101).unwrap();
    let mut hs = Vec::new();
    for (p, id) in [
        (Priority::Low, 0),
        (Priority::Normal, 1),
        (Priority::High, 2),
        (Priority::Normal, 3),
    ] {
        let tx = tx.clone();
        hs.push(ex.spawn(p, move |_cx| tx.send(id).map_err(|e| e.into_inner())));
        settle(&ex);
    }
    assert!(hs.iter().all(|h| !h.is_finished())); // all parked: full
    assert!(tx.try_send(99).unwrap_err().error().kind() == std::io::ErrorKind::WouldBlock);
    drop(tx);
    let mut got = Vec::new();
    while let Some(v) = rx.recv().unwrap() {
        got.push(v);
        settle(&ex);
    }
    assert_eq!(got, [100, 101, 2, 1, 3, 0]);
    for h in hs {
        h.join().unwrap().unwrap();
    }
}

#[test]
fn receiver_sees_the_end_after_draining_once_all_senders_are_gone() {
    let ex = Executor::new().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let h = ex.spawn(Priority::Normal, move |_cx| {
        let mut got = Vec::new();
        while let Some(v) = rx.recv()? {
            got.push(v);
        }
        Ok::<_, std::io::Error>(got)
    });
    settle(&ex); // parked, empty
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    drop(tx);
    settle(&ex);
    assert!(!h.is_finished()); // tx2 still alive
    tx2.send(3).unwrap();
    drop(tx2);
    ex.run_until_idle().unwrap();
    assert_eq!(h.join().unwrap().unwrap(), [1, 2, 3]);
}

#[test]
fn dropping_the_receiver_fails_parked_senders_with_their_messages() {
    let ex = Executor::new().unwrap();
    let (tx, rx) = mpsc::channel(1);
    tx.send(String::from("buffered")).unwrap();
    let hs: Vec<_> = (0..3)
        .map(|i| {
            let tx = tx.clone();
            ex.spawn(Priority::Normal, move |_cx| {
                let e = tx.send(format!("m{i}")).unwrap_err();
                assert!(e.is_closed());
                e.into_inner()
            })
        })
        .collect();
    settle(&ex);
    drop(rx);
    ex.run_until_idle().unwrap();
    let back: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(back, ["m0", "m1", "m2"]);
    assert!(tx.is_closed());
}

#[test]
fn cancelled_sender_gets_its_message_back_and_nothing_is_lost() {
    let ex = Executor::new().unwrap();
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(0).unwrap();
    let back = Rc::new(RefCell::new(None));
    let (t1, b) = (tx.clone(), back.clone());
    let a = ex.spawn(Priority::High, move |_cx| {
        let e = t1.send(1).unwrap_err();
        *b.borrow_mut() = Some((e.error().raw_os_error(), e.into_inner()));
    });
    let t2 = tx.clone();
    let c = ex.spawn(Priority::Normal, move |_cx| t2.send(2).map_err(drop));
    settle(&ex);
    a.cancel().unwrap();
    settle(&ex);
    assert_eq!(*back.borrow(), Some((Some(libc::ECANCELED), 1)));
    drop(tx);
    let mut got = Vec::new();
    while let Some(v) = rx.recv().unwrap() {
        got.push(v);
        settle(&ex);
    }
    assert_eq!(got, [0, 2]);
    c.join().unwrap().unwrap();
}

#[test]
fn cancelled_receiver_loses_no_message() {
    let ex = Executor::new().unwrap();
    let (tx, rx) = mpsc::channel(4);
    let rx = Rc::new(RefCell::new(rx));
    let seen = Rc::new(RefCell::new(None));
    let (r, s) = (rx.clone(), seen.clone());
    let a = ex.spawn(Priority::Normal, move |_cx| {
        *s.borrow_mut() = Some(r.borrow_mut().recv().map_err(|e| e.raw_os_error()));
    });
    settle(&ex);
    a.cancel().unwrap();
    settle(&ex);
    assert_eq!(*seen.borrow(), Some(Err(Some(libc::ECANCELED))));
    tx.send(7).unwrap();
    assert_eq!(rx.borrow_mut().try_recv().unwrap(), 7);
}

#[test]
fn async_senders_and_receiver_on_tokio_with_task_and_thread_senders() {
    const PER: u64 = 2_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let mut joins = Vec::new();
    for k in 0..2u64 {
        let tx = tx.clone();
        joins.push(rt.spawn(async move {
            for i in 0..PER {
                tx.send_async(k * PER + i).await.unwrap();
            }
        }));
    }
    let tx_exec = tx.clone();
    let exec = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        ex.spawn(Priority::Normal, move |_cx| {
            for i in 0..PER {
                tx_exec.send(2 * PER + i).unwrap();
            }
        })
        .join()
        .unwrap();
    });
    let tx_thread = tx.clone();
    let thread = std::thread::spawn(move || {
        for i in 0..PER {
            tx_thread.send(3 * PER + i).unwrap();
        }
    });
    drop(tx);
    let sum = rt.block_on(async move {
        let mut sum = 0u64;
        let mut last = [None::<u64>; 4];
        while let Some(v) = rx.recv_async().await {
            // Per producer, messages arrive in order.
            let k = (v / PER) as usize;
            assert!(last[k].is_none_or(|l| l < v));
            last[k] = Some(v);
            sum += v;
        }
        sum
    });
    let n = 4 * PER;
    assert_eq!(sum, n * (n - 1) / 2);
    exec.join().unwrap();
    thread.join().unwrap();
    rt.block_on(async {
        for j in joins {
            j.await.unwrap();
        }
    });
}

#[test]
fn across_executors_and_a_pool_with_back_pressure() {
    const PER: u64 = 3_000;
    let (tx, mut rx) = mpsc::channel(4);
    let mut threads = Vec::new();
    for k in 0..2u64 {
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            let ex = Executor::new().unwrap();
            for j in 0..3u64 {
                let tx = tx.clone();
                ex.spawn(Priority::ALL[j as usize], move |_cx| {
                    for i in 0..PER / 3 {
                        tx.send(k * PER + j * (PER / 3) + i).unwrap();
                    }
                });
            }
            drop(tx);
            ex.run_until_idle().unwrap();
        }));
    }
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    let tx_pool = tx.clone();
    let p = pool.spawn(Priority::Normal, move |_cx| {
        for i in 0..PER {
            tx_pool.send(2 * PER + i).unwrap();
        }
    });
    drop(tx);
    // The receiver is a task of yet another executor.
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Low, move |_cx| {
        let mut seen = vec![false; 3 * PER as usize];
        while let Some(v) = rx.recv().unwrap() {
            assert!(!std::mem::replace(&mut seen[v as usize], true));
        }
        seen.iter().all(|&s| s)
    });
    assert!(h.join().unwrap());
    for t in threads {
        t.join().unwrap();
    }
    p.join().unwrap();
}

#[test]
fn dropped_futures_give_back_their_place_or_their_message() {
    let (tx, mut rx) = mpsc::channel(2);
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut f = Box::pin(rx.recv_async());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        tx.send(1).unwrap(); // handed to the future
    } // dropped: 1 goes back to the front
    tx.send(2).unwrap();
    // A send future dropped while the channel is full takes its message away.
    {
        let mut f = Box::pin(tx.send_async(3));
        assert!(f.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(rx.try_recv().unwrap(), 1);
    assert_eq!(rx.try_recv().unwrap(), 2);
    assert_eq!(
        rx.try_recv().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    // A send future whose message was accepted completes Ok.
    tx.send(4).unwrap();
    tx.send(5).unwrap();
    let mut f = Box::pin(tx.send_async(6));
    assert!(f.as_mut().poll(&mut cx).is_pending());
    assert_eq!(rx.try_recv().unwrap(), 4); // admits 6
    assert!(matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv().unwrap(), 5);
    assert_eq!(rx.try_recv().unwrap(), 6);
}

#[test]
fn a_send_future_dropped_before_ok_never_sends() {
    // Cancel-safe as tokio's `send`: a future granted room but dropped
    // before it was polled again has not sent; its room passes on.
    let (tx, mut rx) = mpsc::channel(1);
    let mut cx = Context::from_waker(Waker::noop());
    tx.send(1).unwrap();
    let mut dropped = Box::pin(tx.send_async(2));
    assert!(dropped.as_mut().poll(&mut cx).is_pending());
    let mut next = Box::pin(tx.send_async(3));
    assert!(next.as_mut().poll(&mut cx).is_pending());
    assert_eq!(rx.try_recv().unwrap(), 1); // room for the first waiter
                                           // Its room is reserved: nobody else gets in meanwhile.
    assert_eq!(
        tx.try_send(4).unwrap_err().error().kind(),
        std::io::ErrorKind::WouldBlock
    );
    drop(dropped); // as a timeout or a losing select! branch would
    assert!(matches!(next.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv().unwrap(), 3);
    assert_eq!(
        rx.try_recv().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    // With no other waiter, the room comes back to the channel.
    tx.send(5).unwrap();
    let mut lone = Box::pin(tx.send_async(6));
    assert!(lone.as_mut().poll(&mut cx).is_pending());
    assert_eq!(rx.try_recv().unwrap(), 5);
    drop(lone);
    tx.try_send(7).unwrap();
    assert_eq!(rx.try_recv().unwrap(), 7);
    // A granted future polled after the receiver closed gets its message
    // back with EPIPE.
    tx.send(8).unwrap();
    let mut late = Box::pin(tx.send_async(9));
    assert!(late.as_mut().poll(&mut cx).is_pending());
    assert_eq!(rx.try_recv().unwrap(), 8);
    rx.close();
    match late.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => {
            assert!(e.is_closed());
            assert_eq!(e.into_inner(), 9);
        }
        other => panic!("expected EPIPE with the message, got {other:?}"),
    }
}

/// A granted future's message goes straight to a receiver that waits.
#[test]
fn a_granted_send_future_hands_over_to_a_waiting_receiver() {
    let (tx, mut rx) = mpsc::channel(1);
    let mut cx = Context::from_waker(Waker::noop());
    tx.send(1).unwrap();
    let mut f = Box::pin(tx.send_async(2));
    assert!(f.as_mut().poll(&mut cx).is_pending());
    assert_eq!(rx.try_recv().unwrap(), 1);
    let t = std::thread::spawn(move || rx.recv().unwrap());
    while !t.is_finished() {
        // Let the thread reach its wait, then complete the send.
        std::thread::sleep(std::time::Duration::from_millis(20));
        if matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(()))) {
            break;
        }
    }
    assert_eq!(t.join().unwrap(), Some(2));
}

/// A minimal `block_on`: polls on this thread, parks it between polls;
/// the waker unparks it (as `futures::executor::block_on` does).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn futures_on_a_plain_block_on_are_woken_by_tasks_of_another_thread() {
    let (tx, mut rx) = mpsc::channel(2);
    let (back_tx, mut back_rx) = mpsc::channel(2);
    let t = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        ex.spawn(Priority::High, move |_cx| {
            while let Some(v) = rx.recv().unwrap() {
                back_tx.send(v * 2).unwrap();
            }
        })
        .join()
        .unwrap();
    });
    let sum = block_on(async move {
        let mut sum = 0u64;
        for i in 0..2_000u64 {
            tx.send_async(i).await.unwrap();
            sum += back_rx.recv_async().await.unwrap();
        }
        drop(tx);
        assert_eq!(back_rx.recv_async().await, None);
        sum
    });
    assert_eq!(sum, 2 * (1999 * 2000 / 2));
    t.join().unwrap();
}
