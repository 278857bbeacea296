//! Split TCP streams: a reader task and a writer task on one connection
//! (many connections at once), halves on two executors of two threads
//! with more bytes in flight than the socket buffers hold (a reader that
//! did not run while the writer is blocked would deadlock the test),
//! the write half's drop as end of stream for the peer, `forget` and
//! `reunite`, and a cancelled reader beside a writer that goes on.

mod common;

use monad_async::io::{BufStream, TcpListener, TcpStream};
use monad_async::{Executor, Priority};
use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// An echo server on its own thread and executor, for `conns`
/// connections; returns its address and the thread (joined: bytes
/// echoed per connection).
fn echo_server(conns: usize) -> (SocketAddr, std::thread::JoinHandle<Vec<usize>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let ex = Executor::new().unwrap();
        let acceptor = ex.spawn(Priority::High, move |cx| -> std::io::Result<Vec<_>> {
            let mut hs = Vec::new();
            for _ in 0..conns {
                let (s, _) = l.accept(cx)?;
                hs.push(
                    cx.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
                        let mut buf = vec![0u8; 16 * 1024];
                        let mut total = 0;
                        loop {
                            let n = s.recv(cx, &mut buf)?;
                            if n == 0 {
                                return Ok(total);
                            }
                            s.write_all(cx, &buf[..n])?;
                            total += n;
                        }
                    })?,
                );
            }
            Ok(hs)
        });
        let hs = acceptor.join().unwrap().unwrap();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    (addr, t)
}

fn payload(conn: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ conn.wrapping_mul(7)) as u8)
        .collect()
}

#[test]
fn reader_and_writer_tasks_on_many_connections() -> std::io::Result<()> {
    const CONNS: usize = 200;
    const LINES: usize = 200;
    let (addr, server) = echo_server(CONNS);
    common::driven::within(Duration::from_secs(60), move || -> std::io::Result<()> {
        let ex = Executor::new()?;
        let mut readers = Vec::new();
        for c in 0..CONNS {
            let s = ex.spawn(Priority::Normal, move |cx| TcpStream::connect(cx, addr));
            let (r, w) = s.join().unwrap()?.into_split();
            // The writer at Low, busy between lines; the reader at Normal.
            ex.spawn(Priority::Low, move |cx| -> std::io::Result<()> {
                let mut out = std::io::BufWriter::with_capacity(512, w.io(cx));
                for m in 0..LINES {
                    writeln!(out, "conn {c} line {m} {}", "x".repeat((c + m) % 90))?;
                }
                out.flush()
                // w dropped: shuts down the write side; the echo then ends.
            });
            readers.push(
                ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
                    let mut r = BufStream::with_capacity(128, r);
                    let mut n = 0;
                    for line in r.io(cx).lines() {
                        let line = line?;
                        assert_eq!(
                            line,
                            format!("conn {c} line {n} {}", "x".repeat((c + n) % 90))
                        );
                        n += 1;
                    }
                    Ok(n)
                }),
            );
        }
        for h in readers {
            assert_eq!(h.join().unwrap()?, LINES);
        }
        Ok(())
    })?;
    assert_eq!(server.join().unwrap().len(), CONNS);
    Ok(())
}

#[test]
fn halves_on_two_executors_of_two_threads() -> std::io::Result<()> {
    const CONNS: usize = 8;
    // Per connection: far more than the socket buffers of both
    // directions, so the writer blocks until the reader drains.
    const BYTES: usize = 8 << 20;
    let (addr, server) = echo_server(CONNS);
    common::driven::within(Duration::from_secs(120), move || -> std::io::Result<()> {
        let ex = Executor::new()?;
        let mut halves = Vec::new();
        for _ in 0..CONNS {
            let h = ex.spawn(Priority::Normal, move |cx| TcpStream::connect(cx, addr));
            halves.push(h.join().unwrap()?.into_split());
        }
        let (readers, writers): (Vec<_>, Vec<_>) = halves.into_iter().unzip();
        // Writers on this thread's executor; readers on another thread's.
        let reader_thread = std::thread::spawn(move || -> std::io::Result<Vec<Vec<u8>>> {
            let ex = Executor::new()?;
            let hs: Vec<_> = readers
                .into_iter()
                .map(|r| {
                    ex.spawn(Priority::Normal, move |cx| -> std::io::Result<Vec<u8>> {
                        let mut all = Vec::with_capacity(BYTES);
                        r.io(cx).read_to_end(&mut all)?;
                        Ok(all)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ws: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(c, w)| {
                ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
                    let data = payload(c, BYTES);
                    for chunk in data.chunks(100_000) {
                        w.io(cx).write_all(chunk)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in ws {
            w.join().unwrap()?;
        }
        let got = reader_thread.join().unwrap()?;
        for (c, g) in got.iter().enumerate() {
            assert_eq!(g.len(), BYTES, "connection {c}");
            assert!(*g == payload(c, BYTES), "connection {c}: bytes differ");
        }
        Ok(())
    })?;
    assert_eq!(server.join().unwrap(), vec![BYTES; CONNS]);
    Ok(())
}

#[test]
fn dropping_the_write_half_is_eof_for_the_peer_while_reading_goes_on() -> std::io::Result<()> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<String> {
        let (r, w) = TcpStream::connect(cx, addr)?.into_split();
        w.write_all(cx, b"request")?;
        drop(w);
        let mut reply = String::new();
        r.io(cx).read_to_string(&mut reply)?;
        Ok(reply)
    });
    let peer = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = l.accept()?;
        // Without the shutdown the read would wait for ever: fail instead.
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut req = String::new();
        s.read_to_string(&mut req)?; // ends only at the half's shutdown
        assert_eq!(req, "request");
        s.write_all(b"reply to request")
    });
    assert_eq!(h.join().unwrap()?, "reply to request");
    peer.join().unwrap()?;
    Ok(())
}

#[test]
fn forget_keeps_the_write_side_open_and_reunite_gives_the_stream() -> std::io::Result<()> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        // Halves of different streams do not reunite, and come back.
        let (ra, wa) = TcpStream::connect(cx, addr)?.into_split();
        let (rb, wb) = TcpStream::connect(cx, addr)?.into_split();
        let err = ra.reunite(wb).unwrap_err();
        let (ra, wb) = (err.0, err.1);
        let a = ra.reunite(wa).unwrap();
        let b = rb.reunite(wb).unwrap();
        a.write_all(cx, b"a still open")?; // reunite did not shut it down
        let (_rb, wb) = b.into_split();
        wb.write_all(cx, b"b")?;
        let (_rb2, wb2) = (_rb, wb);
        wb2.forget(); // no shutdown: the peer must not see EOF yet
        cx.sleep(Duration::from_millis(400))?;
        a.write_all(cx, b"!")?;
        Ok(())
    });
    let peer = std::thread::spawn(move || -> std::io::Result<(String, usize)> {
        let (mut a, _) = l.accept()?;
        let (mut b, _) = l.accept()?;
        // b: its byte, then no EOF while the task sleeps with the read
        // half alive (the forget did not shut down).
        let mut buf = [0u8; 8];
        let n = b.read(&mut buf)?;
        b.set_read_timeout(Some(Duration::from_millis(50)))?;
        let more = b.read(&mut buf);
        assert!(
            more.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "EOF or data after forget: {more:?}"
        );
        let mut sa = String::new();
        a.read_to_string(&mut sa)?;
        Ok((sa, n))
    });
    h.join().unwrap()?;
    let (sa, n) = peer.join().unwrap()?;
    assert_eq!(sa, "a still open!");
    assert_eq!(n, 1);
    Ok(())
}

#[test]
fn cancelling_the_reader_leaves_the_writer_working() -> std::io::Result<()> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let peer = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
        let (mut s, _) = l.accept()?;
        let mut all = Vec::new();
        s.read_to_end(&mut all)?; // sends nothing: the reader stays blocked
        Ok(all)
    });
    let ex = Executor::new()?;
    let (r, w) = ex
        .spawn(Priority::Normal, move |cx| TcpStream::connect(cx, addr))
        .join()
        .unwrap()?
        .into_split();
    let reader = ex.spawn(Priority::Normal, move |cx| {
        let mut line = String::new();
        BufStream::new(r).io(cx).read_line(&mut line)
    });
    let (tx, mut rx) = monad_async::sync::mpsc::channel::<usize>(4);
    let writer = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<usize> {
        let mut sent = 0;
        while let Some(i) = rx.recv()? {
            writeln!(w.io(cx), "message {i}")?;
            sent += 1;
        }
        Ok(sent) // w dropped: the peer's read_to_end ends
    });
    let feeder = ex.spawn(Priority::Low, move |cx| -> std::io::Result<()> {
        for i in 0..100 {
            tx.send(i)
                .map_err(|_| std::io::Error::other("the writer is gone"))?;
            if i == 50 {
                cx.sleep(Duration::from_millis(5))?;
            }
        }
        Ok(())
    });
    let _ = ex.run(64, Some(Duration::from_millis(2)));
    assert!(!reader.is_finished());
    assert!(reader.cancel()?);
    feeder.join().unwrap()?;
    assert_eq!(writer.join().unwrap()?, 100);
    assert!(reader.join().unwrap_err().is_cancelled());
    let got = String::from_utf8(peer.join().unwrap()?).unwrap();
    let expect: String = (0..100).map(|i| format!("message {i}\n")).collect();
    assert_eq!(got, expect);
    Ok(())
}
