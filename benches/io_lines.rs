//! Line protocols on loopback through std's `BufRead`/`Write` on the
//! ring (`BufStream`, `io(cx)`) against tokio's `BufReader` /
//! `AsyncBufReadExt` on a current-thread runtime, the client and the
//! server on one thread, TCP_NODELAY on every socket:
//!
//! * `tcp_lines_ping_pong`: one 32-byte request line, one reply line,
//!   in turn (latency: two ring operations per side per line);
//! * `tcp_lines_stream`: a client writes lines through a 16 KiB
//!   `BufWriter` while the server reads them with `read_line` (throughput
//!   of the line parsing on the buffer: one receive per buffer fill).
//!
//! Each sample opens a fresh connection outside the timed part.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monad_async::io::{BufStream, TcpListener, TcpStream};
use monad_async::{Executor, Priority};
use std::hint::black_box;
use std::io::{BufRead, BufWriter, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

const LINE: &[u8; 32] = b"GET some-key-of-a-line-protocol\n";

#[path = "common/sock.rs"]
mod sock;

/// The server: answers each line with "OK\n" (if `reply`) until EOF;
/// returns the lines read and when it read the last one.
fn spawn_server(
    ex: &Executor,
    listener: &Rc<TcpListener>,
    reply: bool,
) -> monad_async::JoinHandle<(u64, Instant)> {
    let l = Rc::clone(listener);
    ex.spawn(Priority::Normal, move |cx| {
        let (s, _) = l.accept(cx).unwrap();
        sock::nodelay(s.as_raw_fd()).unwrap();
        let mut conn = BufStream::with_capacity(16 * 1024, s);
        let mut line = String::new();
        let mut n = 0;
        let mut last = Instant::now();
        loop {
            line.clear();
            if conn.io(cx).read_line(&mut line).unwrap() == 0 {
                return (n, last);
            }
            last = Instant::now();
            n += 1;
            if reply {
                conn.io(cx).write_all(b"OK\n").unwrap();
            }
        }
    })
}

fn ours(
    ex: &Executor,
    listener: &Rc<TcpListener>,
    addr: SocketAddr,
    iters: u64,
    ping_pong: bool,
) -> Duration {
    let server = spawn_server(ex, listener, ping_pong);
    let h = ex.spawn(Priority::Normal, move |cx| {
        let s = TcpStream::connect(cx, addr).unwrap();
        sock::nodelay(s.as_raw_fd()).unwrap();
        let mut conn = BufStream::new(s);
        let mut reply = String::new();
        let start = Instant::now();
        let mut took = None;
        if ping_pong {
            for _ in 0..iters {
                conn.io(cx).write_all(LINE).unwrap();
                reply.clear();
                conn.io(cx).read_line(&mut reply).unwrap();
            }
            took = Some(start.elapsed());
        } else {
            let mut out = BufWriter::with_capacity(16 * 1024, conn.get_ref().io(cx));
            for _ in 0..iters {
                out.write_all(LINE).unwrap();
            }
            out.flush().unwrap();
        }
        let (s, _) = conn.into_parts();
        s.shutdown(cx, std::net::Shutdown::Write).unwrap();
        (start, took)
    });
    ex.run_until_idle().unwrap();
    let (start, took) = h.join().unwrap();
    let (n, last) = server.join().unwrap();
    assert_eq!(n, iters);
    // Ping-pong: the client's own time; stream: until the server has
    // read the last line.
    took.unwrap_or_else(|| last - start)
}

fn tokio_run(
    rt: &tokio::runtime::Runtime,
    tl: &tokio::net::TcpListener,
    addr: SocketAddr,
    iters: u64,
    ping_pong: bool,
) -> Duration {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
    rt.block_on(async {
        let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), tl.accept());
        let (c, (s, _)) = (client.unwrap(), accepted.unwrap());
        c.set_nodelay(true).unwrap();
        s.set_nodelay(true).unwrap();
        let server = tokio::spawn(async move {
            let (r, mut w) = s.into_split();
            let mut r = BufReader::with_capacity(16 * 1024, r);
            let mut line = String::new();
            let mut n = 0u64;
            let mut last = Instant::now();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    return (n, last);
                }
                last = Instant::now();
                n += 1;
                if ping_pong {
                    w.write_all(b"OK\n").await.unwrap();
                }
            }
        });
        let (r, w) = c.into_split();
        let mut r = BufReader::new(r);
        let start = Instant::now();
        let mut took = None;
        let mut w = if ping_pong {
            let mut w = w;
            let mut reply = String::new();
            for _ in 0..iters {
                w.write_all(LINE).await.unwrap();
                reply.clear();
                r.read_line(&mut reply).await.unwrap();
            }
            took = Some(start.elapsed());
            w
        } else {
            let mut out = BufWriter::with_capacity(16 * 1024, w);
            for _ in 0..iters {
                out.write_all(LINE).await.unwrap();
            }
            out.flush().await.unwrap();
            out.into_inner()
        };
        w.shutdown().await.unwrap();
        let (n, last) = server.await.unwrap();
        assert_eq!(n, iters);
        black_box(took.unwrap_or_else(|| last - start))
    })
}

fn bench(c: &mut Criterion, name: &str, ping_pong: bool) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    let ex = Executor::new().unwrap();
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    g.bench_function("monad_async/asm", |b| {
        b.iter_custom(|iters| ours(&ex, &listener, addr, iters, ping_pong))
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tl = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let taddr = tl.local_addr().unwrap();
    g.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| tokio_run(&rt, &tl, taddr, iters, ping_pong))
    });
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    bench(c, "tcp_lines_ping_pong", true);
}

fn stream(c: &mut Criterion) {
    bench(c, "tcp_lines_stream", false);
}

criterion_group!(benches, ping_pong, stream);
criterion_main!(benches);
