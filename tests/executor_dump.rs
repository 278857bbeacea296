//! Task dumps under a service's load: 1,000 idle connections parked in
//! `recv`, an acceptor, parked and sleeping tasks, and Low tasks burning
//! CPU in 1 ms slices. A dump taken from another thread while the
//! executor is busy lists every task with what it waits for (the
//! connection's fd for each receive), answers within a few slices, and
//! leaves out the task that took it; a task can ask for one (it waits,
//! parked). Without time tracking, the times are absent.

mod common;

use monad_async::io::TcpListener;
use monad_async::{Activity, Executor, Priority};
use std::cell::RefCell;
use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 1000;
const PARKED: usize = 50;
const SLEEPERS: usize = 20;
const SLICERS: usize = 4;

fn count(dump: &monad_async::Dump, a: Activity) -> usize {
    dump.iter().filter(|t| t.activity() == a).count()
}

#[test]
fn a_dump_from_another_thread_lists_every_task_of_a_busy_executor() {
    let ex = Executor::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server_fds: Rc<RefCell<HashSet<i32>>> = Rc::default();
    let stop = Arc::new(AtomicBool::new(false));

    // The acceptor: a task per connection, parked in recv until the
    // client closes.
    let fds = server_fds.clone();
    let acceptor = ex.spawn(Priority::Normal, move |cx| {
        let mut conns = Vec::new();
        for _ in 0..CONNECTIONS {
            let (s, _) = listener.accept(cx)?;
            fds.borrow_mut().insert(s.as_raw_fd());
            conns.push(cx.spawn(Priority::Normal, move |cx| {
                let mut buf = [0u8; 16];
                s.recv(cx, &mut buf)
            })?);
        }
        // Then waits for one more connection that never comes.
        let _ = listener.accept(cx);
        Ok::<_, std::io::Error>(conns)
    });
    let clients = std::thread::spawn(move || {
        (0..CONNECTIONS)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect::<Vec<_>>()
    });
    let parked: Vec<_> = (0..PARKED)
        .map(|i| {
            ex.build_task()
                .name(format!("parked-{i}"))
                .priority(Priority::High)
                .spawn(|cx| cx.park())
        })
        .collect();
    let sleepers: Vec<_> = (0..SLEEPERS)
        .map(|_| ex.spawn(Priority::Low, |cx| cx.sleep(Duration::from_secs(60))))
        .collect();

    // Every connection in, and its receive parked.
    let deadline = Instant::now() + Duration::from_secs(30);
    // (in flight: the receives, the acceptor's next accept, the sleeps)
    let expected = (CONNECTIONS + 1 + SLEEPERS) as u64;
    while !clients.is_finished() || ex.stats().io.in_flight < expected {
        assert!(
            Instant::now() < deadline,
            "connections not parked: {:?}",
            ex.stats().io
        );
        let _ = ex.run(64, Some(Duration::from_millis(1)));
    }
    let client_streams = clients.join().unwrap();
    assert_eq!(ex.stats().io.in_flight, expected);

    // Now the CPU-bound Low work.
    let slicers: Vec<_> = (0..SLICERS)
        .map(|_| {
            let stop = stop.clone();
            ex.spawn(Priority::Low, move |cx| {
                common::slice_until(cx, &stop, Duration::from_millis(1))
            })
        })
        .collect();

    // A dump from another thread while the Low slicers keep it busy.
    let handle = ex.handle();
    let asker = std::thread::spawn(move || {
        let t = Instant::now();
        let d = handle.dump();
        (d, t.elapsed())
    });
    while !asker.is_finished() {
        let _ = ex.run(64, Some(Duration::from_millis(1)));
    }
    let (dump, took) = asker.join().unwrap();
    let dump = dump.unwrap();
    eprintln!(
        "executor_dump: {} tasks dumped from another thread in {took:?}",
        dump.len()
    );
    // The High dump task runs at the next slice: a few 1 ms slices at most,
    // whatever the machine's load.
    assert!(took < Duration::from_millis(500), "the dump took {took:?}");

    assert_eq!(
        dump.len(),
        1 + CONNECTIONS + PARKED + SLEEPERS + SLICERS,
        "{dump}"
    );
    assert_eq!(
        count(&dump, Activity::Running),
        0,
        "the dump's own task is left out"
    );
    assert_eq!(count(&dump, Activity::Parked), PARKED);
    assert_eq!(count(&dump, Activity::Sleeping), SLEEPERS);
    assert_eq!(count(&dump, Activity::Io), CONNECTIONS + 1);
    assert_eq!(
        count(&dump, Activity::Runnable) + count(&dump, Activity::PendingLaunch),
        SLICERS
    );
    let fds = server_fds.borrow();
    let mut seen = HashSet::new();
    for t in dump.iter().filter(|t| t.activity() == Activity::Io) {
        let io = t.io().unwrap();
        match &*io.name() {
            "recv" => {
                let fd = io.fd().unwrap();
                assert!(fds.contains(&fd), "recv on an unknown fd {fd}");
                assert!(seen.insert(fd), "two receives on fd {fd}");
                assert!(t.waiting().unwrap() > Duration::ZERO);
            }
            "accept" => assert_eq!(t.priority(), Priority::Normal),
            other => panic!("unexpected operation {other}: {t}"),
        }
    }
    assert_eq!(seen.len(), CONNECTIONS);
    let parked_ids: std::collections::HashMap<u64, usize> = parked
        .iter()
        .enumerate()
        .map(|(i, h)| (h.id(), i))
        .collect();
    for t in dump.iter().filter(|t| t.activity() == Activity::Parked) {
        assert_eq!(t.priority(), Priority::High);
        assert!(t.deadline().is_none());
        let i = parked_ids[&t.id()];
        assert_eq!(t.name(), Some(format!("parked-{i}").as_str()), "{t}");
    }
    assert_eq!(dump.iter().filter(|t| t.name().is_some()).count(), PARKED);
    for t in dump.iter().filter(|t| t.activity() == Activity::Sleeping) {
        assert_eq!(t.io().unwrap().name(), "timeout");
        assert!(t.age().unwrap() >= t.waiting().unwrap());
    }
    let text = dump.to_string();
    assert!(text.contains("recv fd"), "{text}");
    drop(fds);

    // From inside a task (an admin connection's "dump" command): the
    // asking task waits for the answer, parked in the join.
    let admin = ex.handle();
    let inner = ex.spawn(Priority::High, move |_cx| admin.dump());
    while !inner.is_finished() {
        let _ = ex.run(64, Some(Duration::from_millis(1)));
    }
    let from_task = inner.join().unwrap().unwrap();
    assert_eq!(from_task.len(), dump.len() + 1, "{from_task}");
    assert_eq!(count(&from_task, Activity::Parked), PARKED + 1);

    // Wind down: the clients close, the parked and the sleepers are
    // cancelled, the slicers stop; nothing is left.
    stop.store(true, Ordering::Relaxed);
    drop(client_streams);
    for h in &parked {
        h.cancel().unwrap();
    }
    for h in &sleepers {
        h.cancel().unwrap();
    }
    acceptor.cancel().unwrap();
    ex.run_until_idle().unwrap();
    for h in slicers {
        h.join().unwrap().unwrap();
    }
    assert!(ex.dump().unwrap().is_empty());
    let handle = ex.handle();
    drop(ex);
    assert!(handle.dump().is_err());
}

#[test]
fn without_time_tracking_a_dump_has_no_times() {
    let ex = Executor::builder().time_tracking(false).build().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.park_timeout(Duration::from_secs(60))
    });
    ex.run(16, Some(Duration::ZERO)).unwrap();
    let dump = ex.dump().unwrap();
    assert_eq!(dump.len(), 1);
    let t = &dump[0];
    assert_eq!(t.activity(), Activity::Parked);
    assert_eq!(t.suspensions(), 1);
    assert_eq!(
        (t.age(), t.executing(), t.waiting(), t.deadline()),
        (None, None, None, None)
    );
    h.cancel().unwrap();
    ex.run_until_idle().unwrap();
    assert!(ex.dump().unwrap().is_empty());
}
