//! The echo servers, one per contender, each written as that runtime's
//! user would write it: one listener, one task (coroutine) per connection
//! that reads into an 8 KiB buffer and writes back what it read, until
//! the peer shuts its side down. TCP_NODELAY on every accepted socket,
//! default runtime settings (may: one worker, as its coroutines then share
//! one thread as ours do).
//!
//! Invariant: a server accepts exactly `conns` connections and returns
//! once every one has been echoed to its end; an I/O error panics, so the
//! server process exits non-zero and the run fails.

use crate::sys::nodelay;
use std::net::TcpListener as StdListener;
use std::os::fd::{AsRawFd, IntoRawFd};

/// The read buffer of every server's connection task.
pub const BUF: usize = 8 * 1024;

/// The contenders, in the harness's default order.
pub const CONTENDERS: &[&str] = &[
    "monad_async",
    "tokio",
    "may",
    "monoio",
    "uring_floor",
    "epoll_floor",
];

/// Serves `conns` connections on `l` with `contender`'s server.
pub fn serve(contender: &str, l: StdListener, conns: usize) {
    match contender {
        "monad_async" => monad_async(l, conns),
        "tokio" => tokio(l, conns),
        "may" => may(l, conns),
        "monoio" => monoio(l, conns),
        "uring_floor" => crate::floors::uring_floor(l, conns),
        "epoll_floor" => crate::floors::epoll_floor(l, conns),
        "broken" => broken(l, conns),
        other => panic!("unknown contender {other}"),
    }
}

fn monad_async(l: StdListener, conns: usize) {
    use monad_async::io::TcpListener;
    use monad_async::{Executor, Priority};
    // `Executor::new()`, as a user writes it. For diagnosis only (never
    // in the published tables), NET_ECHO_MONAD_RING and
    // NET_ECHO_MONAD_STACK set the ring's entries and the task stack size.
    let env = |k: &str| std::env::var(k).ok().map(|v| v.parse().expect(k));
    let ex = match (env("NET_ECHO_MONAD_RING"), env("NET_ECHO_MONAD_STACK")) {
        (None, None) => Executor::new(),
        (ring, stack) => {
            let mut b = Executor::builder();
            if let Some(r) = ring {
                b = b.ring_entries(r as u32);
            }
            if let Some(st) = stack {
                b = b.stack_size(st);
            }
            b.build()
        }
    }
    .expect("executor");
    let l = TcpListener::from(l);
    ex.spawn(Priority::Normal, move |cx| {
        for _ in 0..conns {
            let (s, _) = l.accept(cx).expect("accept");
            nodelay(s.as_raw_fd()).expect("nodelay");
            cx.spawn(Priority::Normal, move |cx| {
                let mut buf = vec![0u8; BUF];
                loop {
                    let n = s.recv(cx, &mut buf).expect("recv");
                    if n == 0 {
                        break;
                    }
                    s.write_all(cx, &buf[..n]).expect("send");
                }
                s.close(cx).expect("close");
            })
            .expect("spawn");
        }
    });
    ex.run_until_idle().expect("run");
}

fn tokio(l: StdListener, conns: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        l.set_nonblocking(true).expect("nonblocking");
        let l = tokio::net::TcpListener::from_std(l).expect("listener");
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (mut s, _) = l.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; BUF];
                loop {
                    let n = s.read(&mut buf).await.expect("recv");
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).await.expect("send");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
}

fn may(l: StdListener, conns: usize) {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    may::config().set_workers(1);
    // SAFETY (may's contract for spawn): these coroutines use no
    // thread-local storage and never block their worker thread.
    let h = unsafe {
        may::coroutine::spawn(move || {
            // SAFETY: the fd is a listening socket whose ownership moves
            // from `l` into may's listener.
            let l = may::net::TcpListener::from_raw_fd(l.into_raw_fd());
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (mut s, _) = l.accept().expect("accept");
                s.set_nodelay(true).expect("nodelay");
                tasks.push(may::coroutine::spawn(move || {
                    let mut buf = vec![0u8; BUF];
                    loop {
                        let n = s.read(&mut buf).expect("recv");
                        if n == 0 {
                            break;
                        }
                        s.write_all(&buf[..n]).expect("send");
                    }
                }));
            }
            for t in tasks {
                t.join().expect("coroutine");
            }
        })
    };
    h.join().expect("coroutine");
}

fn monoio(l: StdListener, conns: usize) {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("runtime (io_uring)");
    rt.block_on(async move {
        let l = monoio::net::TcpListener::from_std(l).expect("listener");
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (mut s, _) = l.accept().await.expect("accept");
            s.set_nodelay(true).expect("nodelay");
            tasks.push(monoio::spawn(async move {
                // monoio owns the buffer during an operation: a read fills
                // it from the start up to its capacity and sets its length
                // to what arrived, which write_all then sends.
                let mut buf = Vec::with_capacity(BUF);
                loop {
                    let (r, b) = s.read(buf).await;
                    let n = r.expect("recv");
                    if n == 0 {
                        break;
                    }
                    let (r, b) = s.write_all(b).await;
                    r.expect("send");
                    buf = b;
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    });
}

/// A wrong server for the harness's self-check: it echoes, but flips one
/// bit of the third read of each connection, and of every 50th after it
/// (the warm-up alone has two round trips per connection, so the third
/// read always comes, however slow the machine). The generator must catch it and
/// fail the run (main.rs checks that it does, before measuring anything).
fn broken(l: StdListener, conns: usize) {
    use std::io::{Read, Write};
    let mut threads = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (mut s, _) = l.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; BUF];
            let mut reads = 0u64;
            loop {
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                reads += 1;
                if reads == 3 || reads.is_multiple_of(50) {
                    buf[n - 1] ^= 1;
                }
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
}
