//! Unix domain sockets through the ring: stream echo with hundreds of
//! concurrent connections on one executor beside CPU-bound Low work,
//! abstract addresses, datagrams (bound, unbound, connected), the
//! std/OwnedFd conversions, the errors a caller handles (ENOENT,
//! EADDRINUSE, ECONNREFUSED, EINVAL) and an executor dropped with tasks
//! blocked in accepts and receives.

use monad_async::io::{UnixDatagram, UnixListener, UnixStream};
use monad_async::{Executor, Priority};
use std::cell::Cell;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A fresh directory for this test's socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("monad-io-unix-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn abstract_addr(name: &str) -> SocketAddr {
    SocketAddr::from_abstract_name(format!("monad-io-unix-{}-{name}", std::process::id())).unwrap()
}

/// `conns` clients, all connected at once, each sending `msgs` messages of
/// its own bytes and checking the echo, while a Low task burns CPU in
/// slices: every byte comes back, to its sender, and the Low work does
/// not starve the echo (nor the echo the Low work).
fn stream_echo(listener: UnixListener, addr: SocketAddr, conns: usize, msgs: usize) {
    let ex = Executor::new().unwrap();
    let done = Rc::new(Cell::new(0usize));
    let acceptor = ex.spawn(Priority::High, move |cx| -> std::io::Result<()> {
        for _ in 0..conns {
            let (s, peer) = listener.accept(cx)?;
            assert!(peer.is_unnamed());
            cx.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                let mut buf = [0u8; 512];
                loop {
                    let n = s.recv(cx, &mut buf)?;
                    if n == 0 {
                        return s.close(cx);
                    }
                    s.write_all(cx, &buf[..n])?;
                }
            })?;
        }
        Ok(())
    });
    let mut clients = Vec::new();
    for c in 0..conns {
        let addr = addr.clone();
        let done = done.clone();
        clients.push(
            ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                let s = UnixStream::connect_addr(cx, &addr)?;
                for m in 0..msgs {
                    let out: Vec<u8> = (0..100).map(|i| (c * 7 + m * 3 + i) as u8).collect();
                    s.write_all(cx, &out)?;
                    let mut back = vec![0u8; out.len()];
                    s.read_exact(cx, &mut back)?;
                    assert_eq!(back, out, "client {c} message {m}");
                }
                s.shutdown(cx, std::net::Shutdown::Write)?;
                assert_eq!(s.recv(cx, &mut [0u8; 8])?, 0);
                done.set(done.get() + 1);
                Ok(())
            }),
        );
    }
    let d = done.clone();
    let low = ex.spawn(Priority::Low, move |cx| -> std::io::Result<()> {
        while d.get() < conns {
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(200) {
                std::hint::spin_loop();
            }
            cx.yield_now()?;
        }
        Ok(())
    });
    ex.run_until_idle().unwrap();
    acceptor.join().unwrap().unwrap();
    for c in clients {
        c.join().unwrap().unwrap();
    }
    low.join().unwrap().unwrap();
    assert_eq!(done.get(), conns);
}

#[test]
fn stream_echo_path_hundreds_of_connections() {
    let dir = TempDir::new("echo");
    let path = dir.0.join("echo.sock");
    // A backlog for all of them: the clients connect before the
    // acceptor gets to them.
    let listener = UnixListener::bind(&path).unwrap();
    let addr = SocketAddr::from_pathname(&path).unwrap();
    assert_eq!(
        listener.local_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    stream_echo(listener, addr, 300, 5);
}

#[test]
fn stream_echo_abstract_address() {
    let addr = abstract_addr("echo");
    let listener = UnixListener::bind_addr(&addr).unwrap();
    assert_eq!(
        listener.local_addr().unwrap().as_abstract_name(),
        addr.as_abstract_name()
    );
    stream_echo(listener, addr, 50, 3);
}

#[test]
fn stream_addresses() {
    let addr = abstract_addr("addrs");
    let listener = UnixListener::bind_addr(&addr).unwrap();
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let c = UnixStream::connect_addr(cx, &addr)?;
        let (s, _) = listener.accept(cx)?;
        assert_eq!(c.peer_addr()?.as_abstract_name(), addr.as_abstract_name());
        assert!(c.local_addr()?.is_unnamed());
        assert_eq!(s.local_addr()?.as_abstract_name(), addr.as_abstract_name());
        assert!(s.peer_addr()?.is_unnamed());
        Ok(())
    });
    h.join().unwrap().unwrap();
}

#[test]
fn datagrams_bound_unbound_and_connected() {
    let dir = TempDir::new("dgram");
    let server_path = dir.0.join("server.sock");
    let server = UnixDatagram::bind(&server_path).unwrap();
    const CLIENTS: usize = 64;
    let ex = Executor::new().unwrap();
    // The server answers each datagram to its sender's address.
    let srv = ex.spawn(Priority::High, move |cx| -> std::io::Result<usize> {
        let mut buf = [0u8; 64];
        let mut unnamed = 0;
        for _ in 0..CLIENTS * 2 {
            let (n, from) = server.recv_from(cx, &mut buf)?;
            if from.is_unnamed() {
                unnamed += 1; // an unbound sender: cannot be answered
                continue;
            }
            let mut reply = buf[..n].to_vec();
            reply.reverse();
            assert_eq!(server.send_to_addr(cx, &reply, &from)?, n);
        }
        Ok(unnamed)
    });
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let p = server_path.clone();
        // Half bound to a path, half to an abstract name; each also sends
        // once from an unbound socket.
        let client = if c % 2 == 0 {
            UnixDatagram::bind(dir.0.join(format!("c{c}.sock"))).unwrap()
        } else {
            UnixDatagram::bind_addr(&abstract_addr(&format!("dgram-c{c}"))).unwrap()
        };
        clients.push(
            ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                let unbound = UnixDatagram::unbound()?;
                assert_eq!(unbound.send_to(cx, b"anonymous", &p)?, 9);
                let msg = format!("client-{c}");
                assert_eq!(client.send_to(cx, msg.as_bytes(), &p)?, msg.len());
                let mut buf = [0u8; 64];
                let (n, from) = client.recv_from(cx, &mut buf)?;
                assert_eq!(from.as_pathname(), Some(p.as_path()));
                let mut want = msg.into_bytes();
                want.reverse();
                assert_eq!(&buf[..n], &want[..]);
                Ok(())
            }),
        );
    }
    ex.run_until_idle().unwrap();
    for c in clients {
        c.join().unwrap().unwrap();
    }
    assert_eq!(srv.join().unwrap().unwrap(), CLIENTS);

    // Connected: send and recv without addresses; a pair.
    let (a, b) = UnixDatagram::pair().unwrap();
    let peer_addr = abstract_addr("dgram-connected");
    let peer = UnixDatagram::bind_addr(&peer_addr).unwrap();
    let me = UnixDatagram::unbound().unwrap();
    me.connect_addr(&peer_addr).unwrap();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        assert_eq!(a.send(cx, b"one")?, 3);
        assert_eq!(a.send(cx, b"two!")?, 4);
        let mut buf = [0u8; 8];
        assert_eq!(b.recv(cx, &mut buf)?, 3); // datagram boundaries kept
        assert_eq!(b.recv(cx, &mut buf)?, 4);
        assert_eq!(me.send(cx, b"hi")?, 2);
        let (n, from) = peer.recv_from(cx, &mut buf)?;
        assert_eq!((n, from.is_unnamed()), (2, true));
        Ok(())
    });
    h.join().unwrap().unwrap();
}

#[test]
fn conversions_keep_the_descriptor() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let raw = a.as_raw_fd();
    let s = UnixStream::from(a);
    assert_eq!(s.as_raw_fd(), raw);
    let fd = OwnedFd::from(s);
    assert_eq!(fd.as_raw_fd(), raw);
    let s = UnixStream::from(fd);
    let back = std::os::unix::net::UnixStream::from(s);
    assert_eq!(back.as_raw_fd(), raw);
    // Still the connected socket: std and the ring talk over it.
    let ex = Executor::new().unwrap();
    let mine = UnixStream::from(b);
    use std::io::Write;
    (&back).write_all(b"std->ring").unwrap();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
        let mut buf = [0u8; 9];
        mine.read_exact(cx, &mut buf)?;
        Ok(buf.to_vec())
    });
    assert_eq!(h.join().unwrap().unwrap(), b"std->ring");

    let l = std::os::unix::net::UnixListener::bind_addr(&abstract_addr("conv")).unwrap();
    let raw = l.as_raw_fd();
    let l = UnixListener::from(l);
    assert_eq!(std::os::unix::net::UnixListener::from(l).as_raw_fd(), raw);
    let d = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let raw = d.as_raw_fd();
    let d = UnixDatagram::from(OwnedFd::from(d));
    assert_eq!(std::os::unix::net::UnixDatagram::from(d).as_raw_fd(), raw);
}

#[test]
fn errors_are_the_kernels() {
    let dir = TempDir::new("errors");
    let ex = Executor::new().unwrap();

    // ENOENT: no such path.
    let missing = dir.0.join("missing.sock");
    let h = ex.spawn(Priority::Normal, move |cx| {
        UnixStream::connect(cx, &missing).map(drop)
    });
    let e = h.join().unwrap().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // EADDRINUSE: the path exists; an abstract name is taken.
    let path = dir.0.join("taken.sock");
    let _first = UnixListener::bind(&path).unwrap();
    let e = UnixListener::bind(&path).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));
    let e = UnixDatagram::bind(&path).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));
    let taken = abstract_addr("taken");
    let _held = UnixListener::bind_addr(&taken).unwrap();
    let e = UnixListener::bind_addr(&taken).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);

    // ECONNREFUSED: a socket file nobody listens on any more.
    let stale = dir.0.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let h = ex.spawn(Priority::Normal, move |cx| {
        UnixStream::connect(cx, &stale).map(drop)
    });
    assert_eq!(
        h.join().unwrap().unwrap_err().raw_os_error(),
        Some(libc::ECONNREFUSED)
    );

    // EINVAL: an unnamed address names nobody to connect or send to.
    let unnamed = UnixDatagram::unbound().unwrap().local_addr().unwrap();
    let (u1, u2) = (unnamed.clone(), unnamed.clone());
    let h = ex.spawn(Priority::Normal, move |cx| {
        UnixStream::connect_addr(cx, &u1).map(drop)
    });
    assert_eq!(
        h.join().unwrap().unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    let d = UnixDatagram::unbound().unwrap();
    let h = ex.spawn(Priority::Normal, move |cx| d.send_to_addr(cx, b"x", &u2));
    assert_eq!(
        h.join().unwrap().unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );

    // A path longer than sun_path: refused before any system call.
    let long = dir.0.join("x".repeat(200));
    let h = ex.spawn(Priority::Normal, move |cx| {
        UnixStream::connect(cx, &long).map(drop)
    });
    assert_eq!(
        h.join().unwrap().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    // A peer that is gone: a receive reads end of stream, a send EPIPE.
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        assert_eq!(a.recv(cx, &mut [0u8; 4])?, 0);
        let e = a.send(cx, b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE)); // and no SIGPIPE
        Ok(())
    });
    h.join().unwrap().unwrap();
}

/// Dropping the executor while tasks wait in accepts and receives on
/// Unix sockets ends them (ECANCELED), returns, and leaks no descriptor.
#[test]
fn executor_drop_with_waiters() {
    let addr = abstract_addr("drop");
    let listener = Rc::new(UnixListener::bind_addr(&addr).unwrap());
    let ex = Executor::new().unwrap();
    let mut handles = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..4 {
        let l = listener.clone();
        handles.push(ex.spawn(Priority::Normal, move |cx| l.accept(cx).map(drop)));
    }
    for _ in 0..100 {
        let (a, b) = UnixStream::pair().unwrap();
        keep.push(b);
        handles.push(ex.spawn(Priority::Low, move |cx| {
            a.recv(cx, &mut [0u8; 16]).map(drop)
        }));
    }
    if let Err(e) = ex.run(1000, Some(Duration::ZERO)) {
        assert_eq!(e.raw_os_error(), Some(libc::ETIME), "{e}"); // nothing ran
    }
    let start = Instant::now();
    drop(ex);
    assert!(start.elapsed() < Duration::from_secs(5));
    for h in handles {
        match h.join() {
            Ok(r) => assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ECANCELED)),
            Err(e) => assert!(e.is_cancelled(), "{e:?}"),
        }
    }
}

/// Datagrams to a receiver whose queue is full wait for room and arrive
/// whole: none is lost, truncated or sent empty (io_uring's own retry of
/// such a send sends an empty datagram; the library must not let it).
#[test]
fn datagrams_to_a_full_receiver_arrive_whole() {
    const N: usize = 200; // far above net.unix.max_dgram_qlen (10)
    let addr = abstract_addr("full");
    let server = UnixDatagram::bind_addr(&addr).unwrap();
    // Connected one way (a pair's sockets are connected both ways, which
    // the kernel treats apart).
    let b_addr = abstract_addr("full-connected");
    let b = UnixDatagram::bind_addr(&b_addr).unwrap();
    let a = UnixDatagram::unbound().unwrap();
    a.connect_addr(&b_addr).unwrap();
    let ex = Executor::new().unwrap();
    let unconnected = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let u = UnixDatagram::unbound()?;
        for i in 0..N {
            let msg = format!("unconnected-{i}");
            assert_eq!(u.send_to_addr(cx, msg.as_bytes(), &addr)?, msg.len());
        }
        Ok(())
    });
    let connected = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        for i in 0..N {
            let msg = format!("connected-{i}");
            assert_eq!(a.send(cx, msg.as_bytes())?, msg.len());
        }
        Ok(())
    });
    // Slow receivers: the queues fill up first.
    let r1 = ex.spawn(Priority::Low, move |cx| -> std::io::Result<()> {
        let mut buf = [0u8; 64];
        for i in 0..N {
            if i % 50 == 0 {
                cx.sleep(Duration::from_millis(5))?;
            }
            let n = server.recv(cx, &mut buf)?;
            assert_eq!(&buf[..n], format!("unconnected-{i}").as_bytes());
        }
        Ok(())
    });
    let r2 = ex.spawn(Priority::Low, move |cx| -> std::io::Result<()> {
        let mut buf = [0u8; 64];
        for i in 0..N {
            if i % 50 == 0 {
                cx.sleep(Duration::from_millis(5))?;
            }
            let n = b.recv(cx, &mut buf)?;
            assert_eq!(&buf[..n], format!("connected-{i}").as_bytes());
        }
        Ok(())
    });
    ex.run_until_idle().unwrap();
    for h in [unconnected, connected, r1, r2] {
        h.join().unwrap().unwrap();
    }
}
