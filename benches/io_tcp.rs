//! TCP on loopback: ping-pong round trips of 64-byte messages, and echo
//! throughput in 16 KiB writes. monad-async against tokio, may and monoio,
//! each with the client and the echo server on one thread (tokio's
//! current-thread runtime, may with one worker, monoio's io_uring driver),
//! TCP_NODELAY on every socket. There is no floor contender here: the
//! kernel's loopback path is most of the cost and both sides pay it.
//!
//! Each sample opens a fresh connection outside the timed part; the time
//! runs from the first send to the last byte back.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monad_async::io::{TcpListener, TcpStream};
use monad_async::{Executor, Priority};
use std::cell::Cell;
use std::hint::black_box;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "common/contenders.rs"]
mod contenders;

const PING: usize = 64;
const CHUNK: usize = 16 * 1024;

#[path = "common/sock.rs"]
mod sock;

/// The echo server task for one connection: echoes until the peer shuts
/// down its side.
fn spawn_echo(ex: &Executor, listener: &Rc<TcpListener>) {
    let l = Rc::clone(listener);
    ex.spawn(Priority::Normal, move |cx| {
        let (s, _) = l.accept(cx).unwrap();
        sock::nodelay(s.as_raw_fd()).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.recv(cx, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(cx, &buf[..n]).unwrap();
        }
        s.close(cx).unwrap();
    });
}

fn ours_ping_pong(
    ex: &Executor,
    listener: &Rc<TcpListener>,
    addr: SocketAddr,
    iters: u64,
) -> Duration {
    spawn_echo(ex, listener);
    let h = ex.spawn(Priority::Normal, move |cx| {
        let s = TcpStream::connect(cx, addr).unwrap();
        sock::nodelay(s.as_raw_fd()).unwrap();
        let out = [7u8; PING];
        let mut back = [0u8; PING];
        let start = Instant::now();
        for _ in 0..iters {
            s.write_all(cx, &out).unwrap();
            s.read_exact(cx, &mut back).unwrap();
        }
        let el = start.elapsed();
        s.shutdown(cx, std::net::Shutdown::Write).unwrap();
        while s.recv(cx, &mut back).unwrap() != 0 {}
        s.close(cx).unwrap();
        el
    });
    ex.run_until_idle().unwrap();
    h.join().unwrap()
}

fn ours_echo(ex: &Executor, listener: &Rc<TcpListener>, addr: SocketAddr, iters: u64) -> Duration {
    spawn_echo(ex, listener);
    let start = Rc::new(Cell::new(None::<Instant>));
    let st = Rc::clone(&start);
    let h = ex.spawn(Priority::Normal, move |cx| {
        let s = Rc::new(TcpStream::connect(cx, addr).unwrap());
        sock::nodelay(s.as_raw_fd()).unwrap();
        // A writer task beside this reader, on the same connection.
        let w = Rc::clone(&s);
        cx.spawn(Priority::Normal, move |cx| {
            let chunk = vec![1u8; CHUNK];
            st.set(Some(Instant::now()));
            for _ in 0..iters {
                w.write_all(cx, &chunk).unwrap();
            }
            w.shutdown(cx, std::net::Shutdown::Write).unwrap();
        })
        .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = s.recv(cx, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        assert_eq!(total, iters * CHUNK as u64);
        Instant::now()
    });
    ex.run_until_idle().unwrap();
    let end = h.join().unwrap();
    end - start.get().unwrap()
}

/// Our contender's set-up: an executor and a loopback listener for it.
fn ours_setup() -> (Executor, Rc<TcpListener>, SocketAddr) {
    let ex = Executor::new().unwrap();
    let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    (ex, listener, addr)
}

/// tokio's set-up: a current-thread runtime with I/O and timers, and a
/// loopback listener on it.
fn tokio_setup() -> (tokio::runtime::Runtime, tokio::net::TcpListener, SocketAddr) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tl = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let taddr = tl.local_addr().unwrap();
    (rt, tl, taddr)
}

/// A fresh tokio connection to `addr` (TCP_NODELAY), accepted on
/// `listener` by a new echo server task, which is returned with it.
async fn tokio_connect(
    addr: SocketAddr,
    listener: &tokio::net::TcpListener,
) -> (tokio::net::TcpStream, tokio::task::JoinHandle<()>) {
    let (client, server) = tokio::join!(
        tokio::net::TcpStream::connect(addr),
        tokio_echo_server(listener)
    );
    let s = client.unwrap();
    s.set_nodelay(true).unwrap();
    (s, server)
}

async fn tokio_echo_server(listener: &tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut s, _) = listener.accept().await.unwrap();
    s.set_nodelay(true).unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await.unwrap();
        }
    })
}

/// may's echo pair: a fresh listener, an echo server coroutine for one
/// connection, and the client's connected stream (TCP_NODELAY on both).
/// Call inside a may coroutine.
fn may_connect() -> (may::net::TcpStream, may::coroutine::JoinHandle<()>) {
    use std::io::{Read, Write};
    let l = may::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // SAFETY: as in contenders::in_may.
    let server = unsafe {
        may::coroutine::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).unwrap();
            }
        })
    };
    let s = may::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    (s, server)
}

/// monoio's echo pair, as [`may_connect`]. Call inside its runtime.
async fn monoio_connect() -> (monoio::net::TcpStream, monoio::task::JoinHandle<()>) {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    let l = monoio::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = monoio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        // monoio owns the buffer during an operation: a read fills it up
        // to its capacity and sets its length to what arrived.
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            let (r, b) = s.read(buf).await;
            if r.unwrap() == 0 {
                break;
            }
            let (r, b) = s.write_all(b).await;
            r.unwrap();
            buf = b;
        }
    });
    let s = monoio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    (s, server)
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_ping_pong_64B");
    let (ex, listener, addr) = ours_setup();
    g.bench_function("monad_async/asm", |b| {
        b.iter_custom(|iters| ours_ping_pong(&ex, &listener, addr, iters))
    });

    let (rt, tl, taddr) = tokio_setup();
    g.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (mut s, server) = tokio_connect(taddr, &tl).await;
                let out = [7u8; PING];
                let mut back = [0u8; PING];
                let start = Instant::now();
                for _ in 0..iters {
                    s.write_all(&out).await.unwrap();
                    s.read_exact(&mut back).await.unwrap();
                }
                let el = start.elapsed();
                s.shutdown().await.unwrap();
                while s.read(&mut back).await.unwrap() != 0 {}
                server.await.unwrap();
                black_box(el)
            })
        })
    });
    g.bench_function("may/one_worker", |b| {
        b.iter_custom(|iters| {
            contenders::in_may(move || {
                use std::io::{Read, Write};
                let (mut s, server) = may_connect();
                let out = [7u8; PING];
                let mut back = [0u8; PING];
                let start = Instant::now();
                for _ in 0..iters {
                    s.write_all(&out).unwrap();
                    s.read_exact(&mut back).unwrap();
                }
                let el = start.elapsed();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                while s.read(&mut back).unwrap() != 0 {}
                server.join().unwrap();
                el
            })
        })
    });
    let mut mrt = contenders::monoio_runtime();
    g.bench_function("monoio/io_uring", |b| {
        b.iter_custom(|iters| {
            mrt.block_on(async {
                use monoio::io::{
                    AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt,
                };
                let (mut s, server) = monoio_connect().await;
                let mut out = vec![7u8; PING];
                let mut back = vec![0u8; PING];
                let start = Instant::now();
                for _ in 0..iters {
                    let (r, o) = s.write_all(out).await;
                    r.unwrap();
                    out = o;
                    let (r, bk) = s.read_exact(back).await;
                    r.unwrap();
                    back = bk;
                }
                let el = start.elapsed();
                s.shutdown().await.unwrap();
                loop {
                    let (r, bk) = s.read(back).await;
                    if r.unwrap() == 0 {
                        break;
                    }
                    back = bk;
                }
                server.await;
                black_box(el)
            })
        })
    });
    g.finish();
}

fn echo(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_echo_16KiB");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    let (ex, listener, addr) = ours_setup();
    g.bench_function("monad_async/asm", |b| {
        b.iter_custom(|iters| ours_echo(&ex, &listener, addr, iters))
    });

    let (rt, tl, taddr) = tokio_setup();
    g.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let (s, server) = tokio_connect(taddr, &tl).await;
                let (mut r, mut w) = s.into_split();
                let start = Instant::now();
                let writer = tokio::spawn(async move {
                    let chunk = vec![1u8; CHUNK];
                    for _ in 0..iters {
                        w.write_all(&chunk).await.unwrap();
                    }
                    w.shutdown().await.unwrap();
                });
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0u64;
                loop {
                    let n = r.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                let el = start.elapsed();
                assert_eq!(total, iters * CHUNK as u64);
                writer.await.unwrap();
                server.await.unwrap();
                el
            })
        })
    });
    g.bench_function("may/one_worker", |b| {
        b.iter_custom(|iters| {
            contenders::in_may(move || {
                use std::io::{Read, Write};
                let (mut s, server) = may_connect();
                let mut w = s.try_clone().unwrap();
                let start = Instant::now();
                // SAFETY: as in contenders::in_may.
                let writer = unsafe {
                    may::coroutine::spawn(move || {
                        let chunk = vec![1u8; CHUNK];
                        for _ in 0..iters {
                            w.write_all(&chunk).unwrap();
                        }
                        w.shutdown(std::net::Shutdown::Write).unwrap();
                    })
                };
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0u64;
                loop {
                    let n = s.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                let el = start.elapsed();
                assert_eq!(total, iters * CHUNK as u64);
                writer.join().unwrap();
                server.join().unwrap();
                el
            })
        })
    });
    let mut mrt = contenders::monoio_runtime();
    g.bench_function("monoio/io_uring", |b| {
        b.iter_custom(|iters| {
            mrt.block_on(async {
                use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
                let (s, server) = monoio_connect().await;
                let (mut r, mut w) = s.into_split();
                let start = Instant::now();
                let writer = monoio::spawn(async move {
                    let mut chunk = vec![1u8; CHUNK];
                    for _ in 0..iters {
                        let (res, c) = w.write_all(chunk).await;
                        res.unwrap();
                        chunk = c;
                    }
                    w.shutdown().await.unwrap();
                });
                let mut buf = Vec::with_capacity(64 * 1024);
                let mut total = 0u64;
                loop {
                    let (res, b) = r.read(buf).await;
                    let n = res.unwrap();
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                    buf = b;
                }
                let el = start.elapsed();
                assert_eq!(total, iters * CHUNK as u64);
                writer.await;
                server.await;
                el
            })
        })
    });
    g.finish();
}

criterion_group!(benches, ping_pong, echo);
criterion_main!(benches);
