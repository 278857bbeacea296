//! Multishot accept from the safe API: a storm of 1,000 connects (from
//! tasks of the same executor and from outside threads at once) taken
//! by one task through `incoming`, beside CPU-bound Low work, each
//! connection served by its own task and checked; Unix listeners too; a
//! deadline and a cancel ending the wait; an executor dropped while a
//! task waits in it with connections queued.

use monad_async::io::{TcpListener, TcpStream, UnixListener, UnixStream};
use monad_async::{Executor, Priority};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// One pass of the run loop; ETIME (nothing ran before the wait was up)
/// is no error here.
fn run_a_bit(ex: &Executor, items: usize, wait: Duration) {
    if let Err(e) = ex.run(items, Some(wait)) {
        assert_eq!(e.raw_os_error(), Some(libc::ETIME), "{e}");
    }
}

#[test]
fn storm_of_a_thousand_connects() {
    const IN_TASKS: u32 = 600;
    const FROM_THREADS: u32 = 400;
    const N: u32 = IN_TASKS + FROM_THREADS;
    let ex = Executor::new().unwrap();
    let listener = TcpListener::builder("127.0.0.1:0".parse().unwrap())
        .backlog(4096)
        .bind()
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Rc::new(RefCell::new(vec![false; N as usize]));
    let served = Rc::new(Cell::new(0u32));
    let (s2, sv2) = (seen.clone(), served.clone());
    let server = ex.spawn(Priority::High, move |cx| -> std::io::Result<(u64, bool)> {
        let mut incoming = listener.incoming(cx)?;
        for _ in 0..N {
            let conn = incoming.accept(cx)?;
            let (seen, served) = (s2.clone(), sv2.clone());
            cx.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                let mut id = [0u8; 4];
                conn.read_exact(cx, &mut id)?;
                let id = u32::from_le_bytes(id);
                assert!(!std::mem::replace(
                    &mut seen.borrow_mut()[id as usize],
                    true
                ));
                conn.write_all(cx, &id.to_le_bytes())?;
                served.set(served.get() + 1);
                Ok(())
            })?;
        }
        Ok((incoming.requests(), incoming.is_multishot()))
    });
    let mut clients = Vec::new();
    for id in 0..IN_TASKS {
        clients.push(
            ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                let s = TcpStream::connect(cx, addr)?;
                s.write_all(cx, &id.to_le_bytes())?;
                let mut back = [0u8; 4];
                s.read_exact(cx, &mut back)?;
                assert_eq!(u32::from_le_bytes(back), id);
                Ok(())
            }),
        );
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for id in (IN_TASKS + t..N).step_by(4) {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.write_all(&id.to_le_bytes()).unwrap();
                    let mut back = [0u8; 4];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(u32::from_le_bytes(back), id);
                }
            })
        })
        .collect();
    let sv = served.clone();
    let low = ex.spawn(Priority::Low, move |cx| -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while sv.get() < N && Instant::now() < deadline {
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(200) {
                std::hint::spin_loop();
            }
            cx.yield_now()?;
        }
        Ok(())
    });
    let start = Instant::now();
    while !(server.is_finished() && served.get() == N) {
        assert!(start.elapsed() < Duration::from_secs(60), "storm stuck");
        run_a_bit(&ex, 1024, Duration::from_millis(10));
    }
    ex.run_until_idle().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    for c in clients {
        c.join().unwrap().unwrap();
    }
    low.join().unwrap().unwrap();
    let (requests, multishot) = server.join().unwrap().unwrap();
    assert!(multishot);
    assert!(requests >= 1);
    assert!(seen.borrow().iter().all(|&s| s));
    assert_eq!(served.get(), N);
}

#[test]
fn unix_listener_incoming() {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(format!(
        "monad-accept-multi-{}",
        std::process::id()
    ))
    .unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let ex = Executor::new().unwrap();
    const N: usize = 200;
    let server = ex.spawn(Priority::High, move |cx| -> std::io::Result<usize> {
        let mut incoming = listener.incoming(cx)?;
        let mut total = 0;
        for _ in 0..N {
            let c = incoming.accept(cx)?;
            total += c.recv(cx, &mut [0u8; 8])?;
        }
        Ok(total)
    });
    for _ in 0..N {
        let addr = addr.clone();
        ex.spawn(Priority::Normal, move |cx| {
            UnixStream::connect_addr(cx, &addr)?.write_all(cx, b"abc")
        });
    }
    ex.run_until_idle().unwrap();
    assert_eq!(server.join().unwrap().unwrap(), 3 * N);
}

#[test]
fn deadline_and_cancel_end_the_wait() {
    let ex = Executor::new().unwrap();
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let l = listener.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let mut incoming = l.incoming(cx)?;
        let start = Instant::now();
        let e = cx
            .timeout(Duration::from_millis(20), |cx| incoming.accept(cx))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(20));
        // Still usable: the request stayed armed; a connect now arrives.
        let c = std::net::TcpStream::connect(addr)?;
        let s = incoming.accept(cx)?;
        assert_eq!(s.peer_addr()?, c.local_addr()?);
        assert_eq!(incoming.requests(), 1);
        Ok(())
    });
    ex.run_until_idle().unwrap();
    h.join().unwrap().unwrap();

    // A task waiting in accept, cancelled: ECANCELED (or Cancelled).
    let l = listener.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let mut incoming = l.incoming(cx)?;
        incoming.accept(cx).map(drop)
    });
    run_a_bit(&ex, 100, Duration::ZERO);
    assert!(!h.is_finished());
    h.cancel().unwrap();
    ex.run_until_idle().unwrap();
    match h.join() {
        Ok(r) => assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ECANCELED)),
        Err(e) => assert!(e.is_cancelled()),
    }
    // The listener is fine afterwards: a plain accept works.
    let l = listener.clone();
    let h = ex.spawn(Priority::Normal, move |cx| l.accept(cx).map(drop));
    let _c = std::net::TcpStream::connect(addr).unwrap();
    ex.run_until_idle().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn executor_drop_with_a_waiter_and_queued_connections() {
    let ex = Executor::new().unwrap();
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let l = listener.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let mut incoming = l.incoming(cx)?;
        loop {
            // Takes one, then parks for more; the rest stay queued.
            drop(incoming.accept(cx)?);
            cx.sleep(Duration::from_secs(3600))?;
        }
    });
    let clients: Vec<_> = (0..5)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for _ in 0..20 {
        run_a_bit(&ex, 100, Duration::from_millis(1));
    }
    assert!(!h.is_finished());
    let start = Instant::now();
    drop(ex);
    assert!(start.elapsed() < Duration::from_secs(5));
    match h.join() {
        Ok(r) => assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ECANCELED)),
        Err(e) => assert!(e.is_cancelled()),
    }
    // The queued connections were closed: each client reads end of
    // stream (or a reset), never hangs.
    for mut c in clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match c.read(&mut [0u8; 1]) {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
        }
    }
    drop(listener);
}
