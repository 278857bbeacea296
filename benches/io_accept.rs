//! Accepting connections on loopback: a loop of single accepts through
//! the ring, one multishot accept request (`TcpListener::incoming`), and
//! tokio's accept loop (current-thread runtime), in the same run.
//!
//! What is timed is the accept side draining a backlog: each batch of
//! `BATCH` connections is made first (blocking connects from this thread,
//! completed by the kernel into the listen backlog, outside the timed
//! part), then one task accepts them all and closes each socket. That is
//! the situation of a connection storm, where the listener, not the
//! network, is the bottleneck. Clients close with SO_LINGER 0 (a reset),
//! so no TIME_WAIT piles up over hundreds of thousands of connections.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monad_async::io::{setsockopt, TcpListener};
use monad_async::{Executor, Priority};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const BATCH: u64 = 256;

/// `n` connections to `addr`, completed by the kernel (in the backlog).
fn connect_batch(addr: SocketAddr, n: u64) -> Vec<std::net::TcpStream> {
    (0..n)
        .map(|_| {
            let s = std::net::TcpStream::connect(addr).unwrap();
            let lg = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            setsockopt(&s, libc::SOL_SOCKET, libc::SO_LINGER, &lg).unwrap();
            s
        })
        .collect()
}

fn listener() -> (std::rc::Rc<TcpListener>, SocketAddr) {
    let l = TcpListener::builder("127.0.0.1:0".parse().unwrap())
        .backlog(4096)
        .bind()
        .unwrap();
    let addr = l.local_addr().unwrap();
    (std::rc::Rc::new(l), addr)
}

/// Times `accept_all(n)` over batches covering `iters` accepts.
fn batches(iters: u64, addr: SocketAddr, mut accept_all: impl FnMut(u64) -> Duration) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let clients = connect_batch(addr, n);
        total += accept_all(n);
        drop(clients);
        left -= n;
    }
    total
}

fn accept(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp_accept_backlog");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);

    let ex = Executor::new().unwrap();
    let (l, addr) = listener();
    g.bench_function("monad_async/single_shot", |b| {
        b.iter_custom(|iters| {
            batches(iters, addr, |n| {
                let l = l.clone();
                let h = ex.spawn(Priority::Normal, move |cx| {
                    let start = Instant::now();
                    for _ in 0..n {
                        drop(l.accept(cx).unwrap());
                    }
                    start.elapsed()
                });
                ex.run_until_idle().unwrap();
                h.join().unwrap()
            })
        })
    });

    let (l, addr) = listener();
    g.bench_function("monad_async/multishot", |b| {
        b.iter_custom(|iters| {
            batches(iters, addr, |n| {
                let l = l.clone();
                let h = ex.spawn(Priority::Normal, move |cx| {
                    let start = Instant::now();
                    let mut incoming = l.incoming(cx).unwrap();
                    for _ in 0..n {
                        drop(incoming.accept(cx).unwrap());
                    }
                    start.elapsed()
                });
                ex.run_until_idle().unwrap();
                h.join().unwrap()
            })
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tl = rt
        .block_on(async {
            // The same backlog as ours.
            let (l, _) = listener();
            let s = std::net::TcpListener::from(std::rc::Rc::into_inner(l).unwrap());
            s.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(s)
        })
        .unwrap();
    let taddr = tl.local_addr().unwrap();
    g.bench_function("tokio/current_thread", |b| {
        b.iter_custom(|iters| {
            batches(iters, taddr, |n| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..n {
                        drop(tl.accept().await.unwrap());
                    }
                    start.elapsed()
                })
            })
        })
    });
    g.finish();
}

criterion_group!(benches, accept);
criterion_main!(benches);
