//! Sockets through the ring from the safe API: TCP echo over IPv4 and
//! IPv6 with many connections checked byte for byte, UDP echo, nop, and
//! cancellation of a task blocked in a receive (its buffer on its stack).

use monad_async::io::{self, TcpListener, TcpStream, UdpSocket};
use monad_async::{Executor, Priority};
use std::net::{Shutdown, SocketAddr};

fn tcp_echo(bind: &str, conns: usize, msgs: usize) -> std::io::Result<()> {
    let ex = Executor::new()?;
    let listener = TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    let acceptor = ex.spawn(Priority::High, move |cx| -> std::io::Result<()> {
        for _ in 0..conns {
            let (s, _peer) = listener.accept(cx)?;
            cx.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                let mut buf = [0u8; 1024];
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
    let clients: Vec<_> = (0..conns)
        .map(|c| {
            ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
                let s = TcpStream::connect(cx, addr)?;
                let mut total = 0;
                for m in 0..msgs {
                    let len = 1 + (m * 7 + c * 13) % 200;
                    let out: Vec<u8> = (0..len).map(|j| (c * 31 + m * 17 + j) as u8).collect();
                    s.write_all(cx, &out)?;
                    let mut back = vec![0u8; len];
                    s.read_exact(cx, &mut back)?;
                    assert_eq!(back, out, "connection {c} message {m}");
                    total += len;
                }
                s.shutdown(cx, Shutdown::Write)?;
                let mut rest = [0u8; 1];
                assert_eq!(s.recv(cx, &mut rest)?, 0);
                s.close(cx)?;
                Ok(total)
            })
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap()? > 0);
    }
    acceptor.join().unwrap()
}

#[test]
fn tcp_echo_ipv4() -> std::io::Result<()> {
    tcp_echo("127.0.0.1:0", 20, 500)
}

#[test]
fn tcp_echo_ipv6() -> std::io::Result<()> {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("IPv6 loopback unavailable: test not run");
        return Ok(());
    }
    tcp_echo("[::1]:0", 10, 200)
}

#[test]
fn udp_echo() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let server = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    let addr = server.local_addr()?;
    let s = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let mut buf = [0u8; 1500];
        for _ in 0..300 {
            let (n, peer) = server.recv_from(cx, &mut buf)?;
            assert_eq!(server.send_to(cx, &buf[..n], peer)?, n);
        }
        Ok(())
    });
    let clients: Vec<_> = (0..3usize)
        .map(|c| {
            ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                let sock = UdpSocket::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())?;
                sock.connect(addr)?;
                for m in 0..100usize {
                    let out: Vec<u8> = (0..(1 + (m * 37 + c) % 1200))
                        .map(|j| (j + m + c) as u8)
                        .collect();
                    assert_eq!(sock.send(cx, &out)?, out.len());
                    let mut back = [0u8; 1500];
                    let n = sock.recv(cx, &mut back)?;
                    assert_eq!(&back[..n], &out[..]);
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap()?;
    }
    s.join().unwrap()
}

#[test]
fn nop_and_cancel_a_blocked_recv() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    let a = std::os::fd::OwnedFd::from(a);
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
        io::nop(cx)?;
        let s = TcpStream::from(a); // any stream socket: recv is recv
        let mut buf = [0u8; 64]; // on the task's stack
        s.recv(cx, &mut buf)
    });
    // Launch it and let its recv reach the kernel (run_until_idle would
    // wait for the recv forever).
    for _ in 0..3 {
        match ex.run(64, Some(std::time::Duration::from_millis(10))) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
            Err(e) => return Err(e),
        }
    }
    assert!(!h.is_finished());
    assert!(ex.cancel(&h)?);
    ex.run_until_idle()?;
    // A cancelled task ends Cancelled whatever it returned (its recv gave
    // ECANCELED, once the kernel was done with the stack buffer).
    assert!(h.join().unwrap_err().is_cancelled());
    Ok(())
}
