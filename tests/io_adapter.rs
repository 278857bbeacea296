//! std `Read`/`Write`/`BufRead` on ring streams ([`Io`], [`BufStream`])
//! as a line-based service uses them: hundreds of connections with lines
//! split across packets and many lines per packet, beside Low CPU work;
//! very long lines; end of stream mid-line; a deadline and a cancel while
//! blocked in `read_line`; a non-blocking socket; a header + body
//! protocol; `BufWriter` and `read_to_end`; files at the file position
//! and a pipe.

mod common;

use monad_async::error::ErrorExt;
use monad_async::io::{BufStream, File, TcpListener, TcpStream};
use monad_async::{Executor, Priority};
use std::cell::RefCell;
use std::io::{BufRead, BufWriter, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// A connected pair: the ring side (for a task) and a plain std side
/// (for the test thread).
fn pair() -> (TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nodelay(true).unwrap();
    (TcpStream::from(s), c)
}

/// Runs the executor until `done`, failing after `limit`.
fn run_until(ex: &Executor, limit: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < end, "not done within {limit:?}");
        match ex.run(256, Some(Duration::from_millis(5))) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
            Err(e) => panic!("run: {e}"),
        }
    }
}

/// The line server: answers each line with its length and its bytes
/// reversed, until the peer closes; returns the lines served.
fn serve_lines(cx: &mut monad_async::TaskContext<'_>, s: TcpStream) -> std::io::Result<usize> {
    let mut conn = BufStream::with_capacity(256, s); // small: lines span refills
    let mut line = String::new();
    let mut served = 0;
    loop {
        line.clear();
        if conn.io(cx).read_line(&mut line)? == 0 {
            return Ok(served);
        }
        let body = line.trim_end_matches('\n');
        let rev: String = body.chars().rev().collect();
        writeln!(conn.io(cx), "{} {}", body.len(), rev)?;
        served += 1;
    }
}

fn line_of(c: usize, m: usize) -> String {
    let len = (c * 37 + m * 101) % 700; // 0..700: some beyond the buffer
    (0..len)
        .map(|j| char::from(b'a' + ((c + m + j) % 26) as u8))
        .collect()
}

#[test]
fn many_connections_lines_split_and_batched_beside_low_work() -> std::io::Result<()> {
    const CONNS: usize = 300;
    const LINES: usize = 12;
    let ex = Executor::new()?;
    let (l, addr) = listener();
    let served = Rc::new(RefCell::new(Vec::new()));
    let sv = served.clone();
    ex.spawn(Priority::High, move |cx| -> std::io::Result<()> {
        for _ in 0..CONNS {
            let (s, _) = l.accept(cx)?;
            let sv = sv.clone();
            cx.spawn(Priority::Normal, move |cx| {
                let n = serve_lines(cx, s).expect("serve");
                sv.borrow_mut().push(n);
            })?;
        }
        Ok(())
    });
    // CPU-bound Low work that must not starve the service, nor be lost.
    let low: Vec<_> = (0..20)
        .map(|i| {
            ex.spawn(Priority::Low, move |cx| -> std::io::Result<u64> {
                let mut x = i as u64;
                for _ in 0..50 {
                    for k in 0..20_000u64 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(k);
                    }
                    cx.yield_now()?;
                }
                Ok(x)
            })
        })
        .collect();
    let clients: Vec<_> = (0..CONNS)
        .map(|c| {
            ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                let s = TcpStream::connect(cx, addr)?;
                let mut conn = BufStream::new(s);
                let mut m = 0;
                while m < LINES {
                    // Even connections: each line in three packets, with
                    // pauses; odd ones: three lines in one packet.
                    if c % 2 == 0 {
                        let line = format!("{}\n", line_of(c, m));
                        let (a, rest) = line.as_bytes().split_at(line.len() / 3);
                        let (b, d) = rest.split_at(rest.len() / 2);
                        for part in [a, b, d] {
                            conn.io(cx).write_all(part)?;
                            cx.sleep(Duration::from_micros(200))?;
                        }
                        m += 1;
                    } else {
                        let batch: String = (m..(m + 3).min(LINES))
                            .map(|k| format!("{}\n", line_of(c, k)))
                            .collect();
                        conn.io(cx).write_all(batch.as_bytes())?;
                        m = (m + 3).min(LINES);
                    }
                }
                for k in 0..LINES {
                    let mut reply = String::new();
                    assert!(conn.io(cx).read_line(&mut reply)? > 0, "c{c} early EOF");
                    let body = line_of(c, k);
                    let rev: String = body.chars().rev().collect();
                    assert_eq!(reply, format!("{} {}\n", body.len(), rev), "c{c} line {k}");
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap()?;
    }
    ex.run_until_idle()?;
    let mut served = served.borrow().clone();
    served.sort_unstable();
    assert_eq!(served, vec![LINES; CONNS]);
    for h in low {
        h.join().unwrap()?;
    }
    Ok(())
}

#[test]
fn a_very_long_line_and_read_to_end() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (s, mut peer) = pair();
    // 3 MiB of line, far beyond the buffer and the socket buffers.
    let long: Vec<u8> = (0..3 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    let expect = long.clone();
    let writer = std::thread::spawn(move || {
        peer.write_all(&long).unwrap();
        peer.write_all(b"\nshort\n").unwrap();
        peer.write_all(&[7u8; 100_000]).unwrap(); // the binary tail
        drop(peer);
    });
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let mut conn = BufStream::new(s);
        let mut line = Vec::new();
        conn.io(cx).read_until(b'\n', &mut line)?;
        assert_eq!(line.len(), expect.len() + 1);
        assert!(line[..expect.len()] == expect[..]);
        let mut short = String::new();
        conn.io(cx).read_line(&mut short)?;
        assert_eq!(short, "short\n");
        let mut tail = Vec::new();
        conn.io(cx).read_to_end(&mut tail)?;
        assert_eq!(tail, vec![7u8; 100_000]);
        Ok(())
    });
    h.join().unwrap()?;
    writer.join().unwrap();
    Ok(())
}

#[test]
fn eof_mid_line_gives_the_partial_line_then_zero() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (s, mut peer) = pair();
    peer.write_all(b"one\ntw")?;
    drop(peer);
    let h = ex.spawn(
        Priority::Normal,
        move |cx| -> std::io::Result<Vec<String>> {
            let mut conn = BufStream::new(s);
            let mut out = Vec::new();
            loop {
                let mut line = String::new();
                if conn.io(cx).read_line(&mut line)? == 0 {
                    // And again: end of stream stays end of stream.
                    assert_eq!(conn.io(cx).read_line(&mut line)?, 0);
                    return Ok(out);
                }
                out.push(line);
            }
        },
    );
    assert_eq!(h.join().unwrap()?, ["one\n", "tw"]);
    Ok(())
}

#[test]
fn a_deadline_mid_line_keeps_the_partial_line_and_the_buffer() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (s, mut peer) = pair();
    let done = Rc::new(RefCell::new(None));
    let d = done.clone();
    let timed_out = Rc::new(std::cell::Cell::new(false));
    let t = timed_out.clone();
    ex.spawn(Priority::Normal, move |cx| {
        let r = (|| -> std::io::Result<(String, String)> {
            let mut conn = BufStream::new(s);
            let mut line = String::new();
            let err = cx
                .timeout(Duration::from_millis(30), |cx| {
                    conn.io(cx).read_line(&mut line)
                })
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
            assert_eq!(line, "par"); // what arrived before the deadline
            t.set(true);
            conn.io(cx).read_line(&mut line)?; // the rest, nothing lost
            let mut next = String::new();
            conn.io(cx).read_line(&mut next)?; // read ahead before
            Ok((line, next))
        })();
        *d.borrow_mut() = Some(r);
    });
    peer.write_all(b"par")?;
    run_until(&ex, Duration::from_secs(10), || timed_out.get());
    // Now blocked in the second read_line.
    let _ = ex.run(16, Some(Duration::from_millis(5)));
    peer.write_all(b"tial\nnext\n")?;
    run_until(&ex, Duration::from_secs(10), || done.borrow().is_some());
    let (line, next) = done.borrow_mut().take().unwrap()?;
    assert_eq!(line, "partial\n");
    assert_eq!(next, "next\n");
    Ok(())
}

#[test]
fn cancel_while_blocked_in_read_line_is_ecanceled() -> std::io::Result<()> {
    const CONNS: usize = 200;
    let ex = Executor::new()?;
    let errors = Rc::new(RefCell::new(Vec::new()));
    let started = Rc::new(std::cell::Cell::new(0usize));
    let mut peers = Vec::new();
    let mut handles = Vec::new();
    for i in 0..CONNS {
        let (s, mut peer) = pair();
        if i % 2 == 0 {
            peer.write_all(b"half a li")?; // blocked mid-line
        }
        peers.push(peer);
        let errors = errors.clone();
        let started = started.clone();
        handles.push(ex.spawn(Priority::Normal, move |cx| {
            started.set(started.get() + 1);
            let mut conn = BufStream::new(s);
            let mut line = String::new();
            let r = conn.io(cx).read_line(&mut line);
            errors
                .borrow_mut()
                .push((i, r.map_err(|e| e.raw_os_error()), line));
        }));
    }
    run_until(&ex, Duration::from_secs(10), || {
        started.get() == CONNS && ex.stats().tasks_runnable == [0; 3]
    });
    // Give the even ones' first bytes time to be read into their buffers.
    let _ = ex.run(1024, Some(Duration::from_millis(20)));
    for h in &handles {
        assert!(ex.cancel(h)?);
    }
    ex.run_until_idle()?;
    for h in handles {
        assert!(h.join().unwrap_err().is_cancelled());
    }
    let errors = errors.borrow();
    assert_eq!(errors.len(), CONNS);
    for (i, r, line) in errors.iter() {
        assert_eq!(*r, Err(Some(libc::ECANCELED)), "connection {i}");
        let expect = if i % 2 == 0 { "half a li" } else { "" };
        assert_eq!(line, expect, "connection {i}");
    }
    drop(peers);
    Ok(())
}

#[test]
fn a_non_blocking_socket_never_shows_would_block() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (s, mut peer) = pair();
    std::net::TcpStream::from(std::os::fd::AsFd::as_fd(&s).try_clone_to_owned()?)
        .set_nonblocking(true)?;
    let writer = std::thread::spawn(move || {
        for i in 0..20 {
            std::thread::sleep(Duration::from_millis(2));
            writeln!(peer, "line {i}").unwrap();
        }
    });
    let h = ex.spawn(
        Priority::Normal,
        move |cx| -> std::io::Result<Vec<String>> {
            let mut conn = BufStream::new(s);
            conn.io(cx).lines().take(20).collect()
        },
    );
    let lines = h.join().unwrap()?;
    assert_eq!(
        lines,
        (0..20).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    writer.join().unwrap();
    Ok(())
}

/// A header line, `Content-Length`, then a body: std parsing on the
/// buffer, the body read partly from the buffer and partly from the
/// socket; replies through a `BufWriter` (one send per reply).
#[test]
fn header_and_body_protocol_with_buf_writer() -> std::io::Result<()> {
    const REQUESTS: usize = 200;
    let ex = Executor::new()?;
    let (l, addr) = listener();
    let server = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
        let (s, _) = l.accept(cx)?;
        let mut conn = BufStream::with_capacity(64, s);
        let mut n = 0;
        loop {
            let mut head = String::new();
            if conn.io(cx).read_line(&mut head)? == 0 {
                return Ok(n);
            }
            let len: usize = head
                .trim_end()
                .strip_prefix("Content-Length: ")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, head.clone()))?;
            let mut body = vec![0u8; len];
            conn.io(cx).read_exact(&mut body)?;
            let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
            let mut out = BufWriter::new(conn.io(cx));
            write!(out, "len {len}\r\n")?;
            write!(out, "sum {sum}\r\n")?;
            out.flush()?;
            n += 1;
        }
    });
    let client = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        let s = TcpStream::connect(cx, addr)?;
        let mut conn = BufStream::new(s);
        for r in 0..REQUESTS {
            let body: Vec<u8> = (0..(r * 13) % 300).map(|j| (j * r) as u8).collect();
            let mut req = format!("Content-Length: {}\n", body.len()).into_bytes();
            req.extend_from_slice(&body);
            conn.io(cx).write_all(&req)?;
            let mut a = String::new();
            let mut b = String::new();
            conn.io(cx).read_line(&mut a)?;
            conn.io(cx).read_line(&mut b)?;
            let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
            assert_eq!(a, format!("len {}\r\n", body.len()));
            assert_eq!(b, format!("sum {sum}\r\n"));
        }
        Ok(())
    });
    client.join().unwrap()?;
    assert_eq!(server.join().unwrap()?, REQUESTS);
    Ok(())
}

#[test]
fn into_parts_hands_back_the_read_ahead() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (s, mut peer) = pair();
    peer.write_all(b"first\nsecond\nthird")?;
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
        let mut conn = BufStream::new(s);
        let mut line = String::new();
        conn.io(cx).read_line(&mut line)?;
        assert_eq!(line, "first\n");
        assert_eq!(conn.buffer(), b"second\nthird");
        let (_s, rest) = conn.into_parts();
        Ok(rest)
    });
    assert_eq!(h.join().unwrap()?, b"second\nthird");
    Ok(())
}

#[test]
fn the_unbuffered_adapter_reads_and_writes_through_the_ring() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (s, mut peer) = pair();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<String> {
        let mut io = s.io(cx);
        io.write_all(b"ping")?;
        io.flush()?;
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf)?;
        assert_eq!(io.read(&mut [])?, 0); // no wait for an empty read
        Ok(String::from_utf8_lossy(&buf).into_owned())
    });
    let echo = std::thread::spawn(move || {
        let mut b = [0u8; 4];
        peer.read_exact(&mut b).unwrap();
        peer.write_all(&b).unwrap();
        peer
    });
    assert_eq!(h.join().unwrap()?, "ping");
    drop(echo.join().unwrap());
    Ok(())
}

#[test]
fn a_peer_reset_is_an_error_not_a_hang() -> std::io::Result<()> {
    let ex = Executor::new()?;
    let (s, peer) = pair();
    // SO_LINGER 0: the close sends a reset.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid option of the right size on an open socket.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&peer),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    assert_eq!(r, 0);
    drop(peer);
    let h = ex.spawn(Priority::Normal, move |cx| {
        let mut conn = BufStream::new(s);
        let mut line = String::new();
        conn.io(cx).read_line(&mut line)
    });
    let r = h.join().unwrap();
    assert!(
        matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset) || matches!(r, Ok(0)),
        "{r:?}"
    );
    assert!(!matches!(&r, Err(e) if e.is_cancelled()));
    Ok(())
}

#[test]
fn files_read_and_write_at_the_file_position() -> std::io::Result<()> {
    const LINES: usize = 10_000;
    let path = std::env::temp_dir().join(format!("ma-io-adapter-{}", std::process::id()));
    let ex = Executor::new()?;
    let p = path.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
        let f = File::create(cx, &p)?;
        let mut out = BufWriter::with_capacity(1000, f.io(cx)); // writes split lines
        for i in 0..LINES {
            writeln!(out, "{i} {}", "y".repeat(i % 50))?;
        }
        out.flush()?;
        drop(out);
        f.io(cx).write_all(b"tail")?; // at the position the writes left
        let mut r = BufStream::with_capacity(100, File::open(cx, &p)?);
        let mut n = 0;
        let mut line = String::new();
        while r.io(cx).read_line(&mut line)? > 0 {
            if n < LINES {
                assert_eq!(line, format!("{n} {}\n", "y".repeat(n % 50)));
            } else {
                assert_eq!(line, "tail");
            }
            n += 1;
            line.clear();
        }
        Ok(n)
    });
    let n = h.join().unwrap();
    std::fs::remove_file(&path)?;
    assert_eq!(n?, LINES + 1);
    Ok(())
}

#[test]
fn a_pipe_as_a_file_is_a_stream() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: a valid array of two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just made them; each is owned once.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (
            File::from(std::os::fd::OwnedFd::from_raw_fd(fds[0])),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    let writer = std::thread::spawn(move || {
        let mut w = w;
        for i in 0..50 {
            write!(w, "pi").unwrap();
            std::thread::sleep(Duration::from_micros(300));
            writeln!(w, "pe {i}").unwrap();
        }
    });
    let ex = Executor::new()?;
    let h = ex.spawn(
        Priority::Normal,
        move |cx| -> std::io::Result<Vec<String>> { BufStream::new(r).io(cx).lines().collect() },
    );
    let lines = h.join().unwrap()?;
    assert_eq!(
        lines,
        (0..50).map(|i| format!("pipe {i}")).collect::<Vec<_>>()
    );
    writer.join().unwrap();
    Ok(())
}
