//! Socket set-up and options: bind by any ToSocketAddrs, the listener
//! builder (backlog, SO_REUSEADDR, SO_REUSEPORT), TCP stream options and
//! addresses, the setsockopt/getsockopt escape hatch, and a connect that
//! really hangs (a listener whose accept queue is full drops SYNs) given
//! up by its deadline with TimedOut while the task, and other tasks' I/O,
//! go on.

use monad_async::io::{getsockopt, setsockopt, TcpListener, TcpStream};
use monad_async::{Executor, Priority};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[test]
fn bind_takes_to_socket_addrs() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let c = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    // Several candidates: the first that binds is kept.
    let taken = a.local_addr().unwrap();
    let d = TcpListener::bind(&[taken, SocketAddr::from(([127, 0, 0, 1], 0))][..]).unwrap();
    assert_ne!(d.local_addr().unwrap(), taken);
    for l in [&a, &b, &c, &d] {
        assert_ne!(l.local_addr().unwrap().port(), 0);
    }
    // Nothing binds: the last error.
    assert_eq!(
        TcpListener::bind(taken).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert!(TcpListener::bind("no-such-host.invalid:1").is_err());
}

#[test]
fn builder_sets_options_and_backlog() {
    let l = TcpListener::builder("127.0.0.1:0".parse().unwrap())
        .reuse_address(false)
        .reuse_port(true)
        .backlog(7)
        .bind()
        .unwrap();
    assert_eq!(
        getsockopt::<i32>(&l, libc::SOL_SOCKET, libc::SO_REUSEADDR).unwrap(),
        0
    );
    assert_eq!(
        getsockopt::<i32>(&l, libc::SOL_SOCKET, libc::SO_REUSEPORT).unwrap(),
        1
    );
    assert_eq!(
        getsockopt::<i32>(&l, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).unwrap(),
        1
    );
    // SO_REUSEPORT: a second listener on the same port; without it on
    // both, EADDRINUSE.
    let addr = l.local_addr().unwrap();
    let l2 = TcpListener::builder(addr).reuse_port(true).bind().unwrap();
    assert_eq!(l2.local_addr().unwrap(), addr);
    let e = TcpListener::builder(addr).bind().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    // The default keeps SO_REUSEADDR on, as std does.
    let d = TcpListener::builder("127.0.0.1:0".parse().unwrap())
        .bind()
        .unwrap();
    assert_eq!(
        getsockopt::<i32>(&d, libc::SOL_SOCKET, libc::SO_REUSEADDR).unwrap(),
        1
    );
}

#[test]
fn stream_options_and_addresses() {
    let ex = Executor::new().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let s = TcpStream::connect(cx, addr)?;
        let (conn, peer) = l.accept(cx)?;
        assert_eq!(s.peer_addr()?, addr);
        assert_eq!(conn.peer_addr()?, peer);
        assert_eq!(peer, s.local_addr()?);
        assert!(!s.nodelay()?);
        s.set_nodelay(true)?;
        assert!(s.nodelay()?);
        s.set_nodelay(false)?;
        assert!(!s.nodelay()?);
        s.set_ttl(3)?;
        assert_eq!(s.ttl()?, 3);
        assert_eq!(
            s.set_ttl(256).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        // The escape hatch on a stream: SO_LINGER as a C struct.
        let lg = libc::linger {
            l_onoff: 1,
            l_linger: 2,
        };
        setsockopt(&s, libc::SOL_SOCKET, libc::SO_LINGER, &lg)?;
        let back: libc::linger = getsockopt(&s, libc::SOL_SOCKET, libc::SO_LINGER)?;
        assert_eq!((back.l_onoff, back.l_linger), (1, 2));
        // The kernel's errors come back with their codes.
        let e = getsockopt::<i32>(&s, libc::SOL_SOCKET, 12345).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT));
        s.write_all(cx, b"x")?;
        conn.read_exact(cx, &mut [0u8; 1])
    });
    h.join().unwrap().unwrap();
    // Not a socket: ENOTSOCK.
    let f = std::fs::File::open("/dev/null").unwrap();
    let e = getsockopt::<i32>(&f, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTSOCK));
}

/// A loopback listener whose accept queue is full: the kernel drops new
/// SYNs (whatever the SYN-cookie setting: that guards the SYN queue, not
/// the accept queue), so a connect to it hangs in SYN retransmits for
/// over a minute. Filled with blocking connects until one times out.
fn full_listener() -> (TcpListener, Vec<std::net::TcpStream>, SocketAddr) {
    let l = TcpListener::builder("127.0.0.1:0".parse().unwrap())
        .backlog(0)
        .bind()
        .unwrap();
    let addr = l.local_addr().unwrap();
    let mut fill = Vec::new();
    for _ in 0..64 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fill.push(s),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                // Backlog 0 queues one connection: had the first connect
                // been slow instead, the listener would not be full.
                assert!(!fill.is_empty(), "the first connect timed out");
                return (l, fill, addr);
            }
        }
    }
    panic!("64 connects to a listener with backlog 0 all completed");
}

#[test]
fn connect_timeout_gives_up_on_a_hanging_connect() {
    let (_l, _fill, hanging) = full_listener();
    let ex = Executor::new().unwrap();
    let ok = TcpListener::bind("127.0.0.1:0").unwrap();
    let ok_addr = ok.local_addr().unwrap();
    const HANGING: usize = 20;
    let mut waiters = Vec::new();
    for i in 0..HANGING {
        // Mixed deadlines: each times out on its own.
        let dur = Duration::from_millis(100 + 10 * i as u64);
        waiters.push(
            ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Duration> {
                let start = Instant::now();
                let e = TcpStream::connect_timeout(cx, hanging, dur).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT));
                let took = start.elapsed();
                assert!(took >= dur, "{took:?} < {dur:?}");
                // The task goes on: its next waits have no deadline.
                cx.sleep(Duration::from_millis(1))?;
                let s = TcpStream::connect(cx, ok_addr)?;
                s.write_all(cx, b"after")?;
                Ok(took)
            }),
        );
    }
    // Meanwhile other tasks' I/O is served.
    let server = ex.spawn(Priority::High, move |cx| -> std::io::Result<()> {
        for _ in 0..HANGING {
            let (c, _) = ok.accept(cx)?;
            let mut buf = [0u8; 5];
            c.read_exact(cx, &mut buf)?;
            assert_eq!(&buf, b"after");
        }
        Ok(())
    });
    let start = Instant::now();
    ex.run_until_idle().unwrap();
    for w in waiters {
        let took = w.join().unwrap().unwrap();
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
    server.join().unwrap().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));

    // A connect that succeeds within its deadline is just a connect.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = ex.spawn(Priority::Normal, move |cx| {
        TcpStream::connect_timeout(cx, addr, Duration::from_secs(5))?.peer_addr()
    });
    assert_eq!(h.join().unwrap().unwrap(), addr);
}
