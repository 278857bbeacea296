//! An echo server: one task per connection, std `Read`/`Write` on the
//! ring (`stream.io(cx)`), graceful shutdown on SIGINT or SIGTERM (the
//! connections waiting for data are closed, one in the middle of an echo
//! finishes it first).
//!
//! `cargo run --release --example echo_server -- --addr 127.0.0.1:7007`
//! serves until a signal. With `--self-test N` it serves on a free port
//! and a client thread in the same process opens N connections (most of
//! them idle, an eighth busy echoing up to 64 KiB messages written in
//! pieces), checks every byte, sends the process SIGTERM, checks that
//! every connection is closed, and the process exits 0: what CI runs.

#[path = "common/args.rs"]
mod args;
#[path = "common/conns.rs"]
mod conns;
#[path = "common/signal.rs"]
mod signal;

use args::Args;
use conns::Conns;
use monad_async::io::{TcpListener, TcpStream};
use monad_async::{Executor, Priority, TaskContext};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let args = Args::from_env();
    let self_test = args.self_test();
    let addr = args.addr("--addr");

    let signals = signal::install()?;
    let ex = Executor::new()?;
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    println!("echo server on {addr}");
    let client = self_test
        .map(|n| std::thread::spawn(move || conns::self_test(move || self_test_client(addr, n))));

    let conns = Rc::new(Conns::default());
    let c = Rc::clone(&conns);
    // The acceptor and the signal waiter wait for long: at High they would
    // make every Normal slice check the ring first (a system call), so they
    // run at the connections' own priority.
    let acceptor = ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        loop {
            let (s, _peer) = listener.accept(cx)?; // ECANCELED at shutdown
            s.set_nodelay(true)?;
            c.spawn(cx, Priority::Normal, move |cx, conn| {
                let _ = echo(cx, &s, conn);
            })?;
        }
    });
    let c = Rc::clone(&conns);
    ex.spawn(Priority::Normal, move |cx| -> std::io::Result<()> {
        signal::wait(cx, &signals)?;
        println!("signal: shutting down ({} connections open)", c.open());
        acceptor.cancel()?;
        c.stop(cx);
        Ok(())
    });
    conns::run_to_end(&ex, &conns, client)
}

/// Echoes until the peer closes, or the server stops.
fn echo(cx: &mut TaskContext<'_>, s: &TcpStream, conn: &conns::Conn) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = conn.idle(cx, |cx| s.io(cx).read(&mut buf))?;
        if n == 0 {
            return Ok(());
        }
        s.io(cx).write_all(&buf[..n])?;
        if conn.stopping() {
            return Ok(());
        }
    }
}

/// The self-test's client: returns a summary, panics on any wrong byte.
fn self_test_client(addr: SocketAddr, n: usize) -> String {
    let timeout = Some(Duration::from_secs(20));
    let mut streams: Vec<std::net::TcpStream> = (0..n)
        .map(|_| {
            let s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(timeout).unwrap();
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    // An eighth busy, on 4 threads; the rest idle meanwhile.
    let busy: Vec<_> = streams.drain(..n / 8).collect();
    let mut bytes = 0usize;
    std::thread::scope(|scope| {
        let per = busy.len().div_ceil(4).max(1);
        let ts: Vec<_> = busy
            .chunks(per)
            .enumerate()
            .map(|(t, chunk)| {
                scope.spawn(move || {
                    let mut total = 0;
                    for round in 0..20 {
                        for (i, mut s) in chunk.iter().enumerate() {
                            let len = 1 + (round * 7919 + i * 104_729 + t) % 65_536;
                            let msg: Vec<u8> =
                                (0..len).map(|j| (j * 31 + round + i) as u8).collect();
                            // In three pieces, so the echo sees them apart.
                            for piece in msg.chunks(len / 3 + 1) {
                                s.write_all(piece).unwrap();
                            }
                            let mut back = vec![0u8; len];
                            s.read_exact(&mut back).expect("echo");
                            assert!(back == msg, "wrong echo, round {round}");
                            total += len;
                        }
                    }
                    total
                })
            })
            .collect();
        for t in ts {
            bytes += t.join().unwrap();
        }
    });
    // The idle ones are still served.
    for (i, s) in streams.iter_mut().enumerate() {
        let m = format!("idle {i}\n");
        s.write_all(m.as_bytes()).unwrap();
        let mut back = vec![0u8; m.len()];
        s.read_exact(&mut back).expect("idle echo");
        assert_eq!(back, m.as_bytes());
    }
    // Graceful shutdown by signal: every connection gets end of stream.
    // SAFETY: kill(2) to our own process; the handler is installed.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
    for mut s in streams.into_iter().chain(busy) {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("closed by the shutdown");
        assert!(rest.is_empty());
    }
    format!("{n} connections, {bytes} bytes echoed by the busy ones, all closed by SIGTERM")
}
