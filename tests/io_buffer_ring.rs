//! Provided receive buffers from the safe API: a TCP echo whose many
//! connections share a ring smaller than their number, checked byte for
//! byte; UDP datagrams; every buffer out gives ENOBUFS; a stream's end
//! gives None; errors (bad sizes, another executor's ring); cancellation
//! while waiting; and a ring outliving its executor.

use monad_async::io::{BufferRing, TcpListener, TcpStream, UdpSocket};
use monad_async::{Executor, Priority};
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// The message client `c` sends as its `i`th.
fn message(c: usize, i: usize) -> Vec<u8> {
    let len = 1 + (c * 31 + i * 7) % 200;
    (0..len).map(|k| (c + i + k) as u8).collect()
}

#[test]
fn tcp_echo_many_connections_share_a_small_ring() -> io::Result<()> {
    const CLIENTS: usize = 32;
    const MESSAGES: usize = 200;
    let ex = Executor::new()?;
    // Fewer buffers than connections: only receives with data hold one.
    let ring = Rc::new(BufferRing::new(&ex, 256, 8)?);
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0")?);
    let addr = listener.local_addr()?;
    let mut servers = Vec::new();
    for _ in 0..CLIENTS {
        let (l, r) = (listener.clone(), ring.clone());
        servers.push(ex.spawn(Priority::Normal, move |cx| -> io::Result<usize> {
            let (conn, _) = l.accept(cx)?;
            let mut echoed = 0;
            loop {
                let buf = match conn.recv_provided(cx, &r) {
                    Ok(Some(buf)) => buf,
                    Ok(None) => return Ok(echoed),
                    // Every buffer is out with other connections: let
                    // them finish and try again.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        cx.yield_now()?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                assert!(buf.len() <= 256);
                conn.write_all(cx, &buf)?;
                echoed += buf.len();
            }
        }));
    }
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        clients.push(ex.spawn(Priority::Normal, move |cx| -> io::Result<usize> {
            let s = TcpStream::connect(cx, addr)?;
            let mut sent = 0;
            for i in 0..MESSAGES {
                let m = message(c, i);
                s.write_all(cx, &m)?;
                let mut back = vec![0u8; m.len()];
                s.read_exact(cx, &mut back)?;
                assert_eq!(back, m, "client {c} message {i}");
                sent += m.len();
            }
            s.close(cx)?;
            Ok(sent)
        }));
    }
    ex.run_until_idle()?;
    let sent: usize = clients
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .sum();
    let echoed: usize = servers
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .sum();
    assert_eq!(sent, echoed);
    let expected: usize = (0..CLIENTS)
        .flat_map(|c| (0..MESSAGES).map(move |i| message(c, i).len()))
        .sum();
    assert_eq!(sent, expected);
    assert_eq!(ring.outstanding(), 0);
    Ok(())
}

#[test]
fn udp_datagrams_and_enobufs_when_every_buffer_is_out() -> io::Result<()> {
    let ex = Executor::new()?;
    let ring = Rc::new(BufferRing::new(&ex, 64, 2)?);
    let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    a.connect(b.local_addr()?)?;
    b.connect(a.local_addr()?)?;
    let r = ring.clone();
    let h = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        for m in [&b"one"[..], b"two", b"three"] {
            a.send(cx, m)?;
        }
        let first = b.recv_provided(cx, &r)?.expect("a buffer");
        let second = b.recv_provided(cx, &r)?.expect("a buffer");
        assert_eq!((&*first, &*second), (&b"one"[..], &b"two"[..]));
        assert_ne!(first.index(), second.index());
        assert_eq!(r.outstanding(), 2);
        // Both buffers held: the kernel has none to pick.
        let err = b.recv_provided(cx, &r).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOBUFS));
        drop(first);
        assert_eq!(r.outstanding(), 1);
        // A datagram longer than the buffers is cut to them.
        a.send(cx, &[7u8; 100])?;
        let mut got = Vec::new();
        while got.len() < 2 {
            let buf = b.recv_provided(cx, &r)?.expect("a buffer");
            got.push(buf.to_vec());
        }
        assert_eq!(got[0], b"three");
        assert_eq!(got[1], vec![7u8; 64]);
        Ok(())
    });
    h.join().unwrap()?;
    assert_eq!(ring.outstanding(), 0);
    Ok(())
}

#[test]
fn end_of_stream_is_none_and_buffers_can_be_changed() -> io::Result<()> {
    let ex = Executor::new()?;
    let ring = Rc::new(BufferRing::new(&ex, 128, 4)?);
    let listener = TcpListener::bind("[::1]:0").or_else(|_| TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let r = ring.clone();
    let server = ex.spawn(Priority::Normal, move |cx| -> io::Result<Vec<u8>> {
        let (conn, _) = listener.accept(cx)?;
        let mut all = Vec::new();
        while let Some(mut buf) = conn.recv_provided(cx, &r)? {
            buf.make_ascii_uppercase();
            all.extend_from_slice(&buf);
        }
        // Still None after the end.
        assert!(conn.recv_provided(cx, &r)?.is_none());
        Ok(all)
    });
    ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let s = TcpStream::connect(cx, addr)?;
        s.write_all(cx, b"end of ")?;
        cx.sleep(Duration::from_millis(2))?;
        s.write_all(cx, b"stream")?;
        s.close(cx)
    });
    ex.run_until_idle()?;
    assert_eq!(server.join().unwrap()?, b"END OF STREAM");
    assert_eq!(ring.outstanding(), 0);
    Ok(())
}

#[test]
fn bad_sizes_and_another_executors_ring_are_refused() -> io::Result<()> {
    let ex = Executor::new()?;
    for (size, count) in [(0, 4), (64, 0), (64, 3), (64, 65536)] {
        let err = BufferRing::new(&ex, size, count).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{size} x {count}");
    }
    let no_ring = Executor::builder().ring_entries(0).build()?;
    let err = BufferRing::new(&no_ring, 64, 4).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTSUP));

    let other = Executor::new()?;
    let foreign = Rc::new(BufferRing::new(&other, 64, 4)?);
    let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    s.connect(s.local_addr()?)?;
    let f = foreign.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        s.recv_provided(cx, &f)
            .map(|b| b.map(|b| b.len()))
            .unwrap_err()
            .raw_os_error()
    });
    ex.run_until_idle()?;
    assert_eq!(h.join().unwrap(), Some(libc::EINVAL));
    assert_eq!(foreign.outstanding(), 0);
    Ok(())
}

#[test]
fn cancelled_while_waiting_returns_no_buffer() -> io::Result<()> {
    let ex = Executor::new()?;
    let ring = Rc::new(BufferRing::new(&ex, 64, 4)?);
    let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    s.connect(s.local_addr()?)?;
    let r = ring.clone();
    let h = ex.spawn(Priority::Normal, move |cx| {
        // Nothing is ever sent: only the cancel ends this wait.
        s.recv_provided(cx, &r).map(|b| b.is_some())
    });
    ex.run(1, Some(Duration::ZERO))?; // it is now waiting in the kernel
    assert!(ex.cancel(&h)?);
    ex.run_until_idle()?;
    assert!(h.join().unwrap_err().is_cancelled());
    assert_eq!(ring.outstanding(), 0);
    Ok(())
}

#[test]
fn a_ring_outliving_its_executor_is_inert() -> io::Result<()> {
    let ex = Executor::new()?;
    let ring = BufferRing::new(&ex, 64, 4)?;
    assert_eq!((ring.buffer_size(), ring.count()), (64, 4));
    drop(ex); // frees the ring's memory
    assert_eq!(
        (ring.buffer_size(), ring.count(), ring.outstanding()),
        (0, 0, 0)
    );
    drop(ring); // nothing left to free, no crash
    Ok(())
}
