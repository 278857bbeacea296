//! An active connection beside many idle ones: 64-byte TCP ping-pong
//! round trips on loopback while 0 or 5,000 other connections each have
//! a task parked in a receive that never completes. monad-async against
//! tokio (current-thread runtime), client and server on one thread, as
//! in `io_tcp`. What it shows: an idle connection costs memory, not
//! time, on either; on monad-async it also holds no submission entry
//! (the default 64-entry ring holds all 5,000 receives).

use criterion::{criterion_group, criterion_main, Criterion};
use monad_async::io::TcpStream;
use monad_async::{Executor, Priority};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::{Duration, Instant};

const PING: usize = 64;

/// `n` connected loopback pairs: (the server ends, the client ends).
fn pairs(n: usize) -> (Vec<std::net::TcpStream>, Vec<std::net::TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut servers = Vec::with_capacity(n);
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(std::net::TcpStream::connect(addr).unwrap());
        servers.push(l.accept().unwrap().0);
    }
    (servers, clients)
}

fn active_pair() -> (std::net::TcpStream, std::net::TcpStream, SocketAddr) {
    let (mut s, mut c) = pairs(1);
    let (s, c) = (s.pop().unwrap(), c.pop().unwrap());
    s.set_nodelay(true).unwrap();
    c.set_nodelay(true).unwrap();
    let addr = s.local_addr().unwrap();
    (s, c, addr)
}

fn ours(c: &mut Criterion, idle: usize) {
    let ex = Executor::new().unwrap();
    let (idle_servers, _idle_clients) = pairs(idle);
    // One task per idle connection, parked in a receive.
    let idle_tasks: Vec<_> = idle_servers
        .into_iter()
        .map(|s| {
            let s = Rc::new(TcpStream::from(s));
            ex.spawn(Priority::Normal, move |cx| {
                let mut b = [0u8; 64];
                s.recv(cx, &mut b)
            })
        })
        .collect();
    let _ = ex.run(usize::MAX, Some(Duration::ZERO));
    let (server, client, _) = active_pair();
    let server = Rc::new(TcpStream::from(server));
    let client = Rc::new(TcpStream::from(client));
    c.bench_function(
        &format!("io_idle/monad_async/ping_pong_beside_{idle}_idle"),
        |b| {
            b.iter_custom(|iters| {
                let s = server.clone();
                ex.spawn(Priority::Normal, move |cx| {
                    let mut buf = [0u8; PING];
                    for _ in 0..iters {
                        s.read_exact(cx, &mut buf).unwrap();
                        s.write_all(cx, &buf).unwrap();
                    }
                });
                let cl = client.clone();
                let h = ex.spawn(Priority::Normal, move |cx| {
                    let out = [7u8; PING];
                    let mut back = [0u8; PING];
                    let start = Instant::now();
                    for _ in 0..iters {
                        cl.write_all(cx, &out).unwrap();
                        cl.read_exact(cx, &mut back).unwrap();
                    }
                    start.elapsed()
                });
                while !h.is_finished() {
                    let _ = ex.run(usize::MAX, Some(Duration::from_millis(10)));
                }
                h.join().unwrap()
            })
        },
    );
    assert_eq!(
        ex.stats().io.in_flight as usize,
        idle,
        "the idle receives stayed in flight"
    );
    drop(ex); // cancels the idle receives
    for h in idle_tasks {
        assert!(h.join().unwrap_err().is_cancelled());
    }
}

fn tokio(c: &mut Criterion, idle: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let (idle_servers, _idle_clients) = pairs(idle);
    let (server, client, _) = active_pair();
    let (server, client) = local.block_on(&rt, async move {
        for s in idle_servers {
            s.set_nonblocking(true).unwrap();
            let s = tokio::net::TcpStream::from_std(s).unwrap();
            tokio::task::spawn_local(async move {
                let mut b = [0u8; 64];
                let _ = s.readable().await;
                let _ = s.try_read(&mut b);
            });
        }
        tokio::task::yield_now().await;
        server.set_nonblocking(true).unwrap();
        client.set_nonblocking(true).unwrap();
        (
            Rc::new(tokio::sync::Mutex::new(
                tokio::net::TcpStream::from_std(server).unwrap(),
            )),
            Rc::new(tokio::sync::Mutex::new(
                tokio::net::TcpStream::from_std(client).unwrap(),
            )),
        )
    });
    c.bench_function(
        &format!("io_idle/tokio/ping_pong_beside_{idle}_idle"),
        |b| {
            b.iter_custom(|iters| {
                let (s, cl) = (server.clone(), client.clone());
                local.block_on(&rt, async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let echo = tokio::task::spawn_local(async move {
                        let mut s = s.lock().await;
                        let mut buf = [0u8; PING];
                        for _ in 0..iters {
                            s.read_exact(&mut buf).await.unwrap();
                            s.write_all(&buf).await.unwrap();
                        }
                    });
                    let mut cl = cl.lock().await;
                    let out = [7u8; PING];
                    let mut back = [0u8; PING];
                    let start = Instant::now();
                    for _ in 0..iters {
                        cl.write_all(&out).await.unwrap();
                        cl.read_exact(&mut back).await.unwrap();
                    }
                    let el = start.elapsed();
                    echo.await.unwrap();
                    el
                })
            })
        },
    );
}

fn idle_connections(c: &mut Criterion) {
    for idle in [0, 5000] {
        ours(c, idle);
        tokio(c, idle);
    }
}

criterion_group!(benches, idle_connections);
criterion_main!(benches);
