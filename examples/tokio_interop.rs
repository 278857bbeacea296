//! A tokio service and monad-async tasks working together.
//!
//! 1. The service (tokio tasks on a multi-thread runtime) handles
//!    requests whose CPU-heavy part runs on a monad-async thread pool at
//!    High priority, beside a backlog of Low-priority batch work on the
//!    same pool; the service `.await`s the pool's `JoinHandle`s. A High
//!    request waits for a pool thread to finish its current slice, never
//!    for the backlog.
//! 2. A monad-async task on an executor of its own thread serves a tokio
//!    `mpsc` channel through `TaskContext::block_on`: it parks (its thread
//!    keeps running other tasks) until tokio tasks send it work, and
//!    answers through tokio `oneshot` channels the senders await.
//!
//! Runs to completion by itself in about a second:
//! `cargo run --release --example tokio_interop`.

use monad_async::{Executor, Priority, ThreadPool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// CPU work of about `d`.
fn burn(d: Duration) -> u64 {
    let end = Instant::now() + d;
    let mut n = 0u64;
    while Instant::now() < end {
        n = n.wrapping_add(1);
        std::hint::spin_loop();
    }
    n
}

fn main() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let pool = Arc::new(ThreadPool::builder().threads(2).build()?);
    rt.block_on(service_on_the_pool(Arc::clone(&pool)));
    rt.block_on(task_serving_a_tokio_channel())?;
    Ok(())
}

/// Part 1: tokio requests awaiting High work on the pool, behind a Low
/// backlog.
async fn service_on_the_pool(pool: Arc<ThreadPool>) {
    println!("== 1. A tokio service awaiting prioritised pool work ======");
    // 400 Low batch jobs of 2 ms: 0.4 s of work for the 2 pool threads.
    let backlog: Vec<_> = (0..400)
        .map(|_| pool.spawn(Priority::Low, |_cx| burn(Duration::from_millis(2))))
        .collect();
    let backlog_start = Instant::now();
    // 20 requests, one every 5 ms, each awaiting 200 us of High work.
    let mut requests = Vec::new();
    for id in 0..20u64 {
        let pool = Arc::clone(&pool);
        requests.push(tokio::spawn(async move {
            let start = Instant::now();
            let h = pool.spawn(Priority::High, move |_cx| {
                burn(Duration::from_micros(200));
                id * id
            });
            let answer = h.await.expect("the work ran");
            (id, answer, start.elapsed())
        }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies = Vec::new();
    for r in requests {
        let (id, answer, took) = r.await.expect("request task");
        assert_eq!(answer, id * id);
        latencies.push(took);
    }
    let done = futures_join_all(backlog).await;
    latencies.sort();
    println!(
        "   20 High requests beside 400 Low jobs: latency p50 {:?}, max {:?}",
        latencies[10], latencies[19]
    );
    println!(
        "   (the Low backlog took {:?} in all, {} jobs done)",
        backlog_start.elapsed(),
        done
    );
}

/// Awaits every handle in turn; how many finished.
async fn futures_join_all(handles: Vec<monad_async::JoinHandle<u64>>) -> usize {
    let mut n = 0;
    for h in handles {
        if h.await.is_ok() {
            n += 1;
        }
    }
    n
}

/// A request to the monad-async side: a number, and where to answer.
struct Request {
    n: u64,
    reply: oneshot::Sender<u64>,
}

/// Part 2: a task awaiting a tokio channel with `block_on`.
async fn task_serving_a_tokio_channel() -> std::io::Result<()> {
    println!("== 2. A monad-async task awaiting a tokio channel =========");
    let (tx, mut rx) = mpsc::channel::<Request>(64);
    // The executor runs on its own thread, with a Low task keeping it busy
    // while the High server task waits for requests.
    let executor_thread = std::thread::spawn(move || -> std::io::Result<(u64, u64)> {
        let ex = Executor::new()?;
        let server = ex.spawn(Priority::High, move |cx| {
            let mut served = 0u64;
            // Parks (not the thread) whenever the channel is empty.
            while let Some(Request { n, reply }) = cx.block_on(rx.recv())? {
                let _ = reply.send(n * 2);
                served += 1;
            }
            Ok::<_, std::io::Error>(served)
        });
        let background = ex.spawn(Priority::Low, |cx| {
            let mut slices = 0u64;
            while slices < 500 {
                burn(Duration::from_micros(500));
                slices += 1;
                cx.yield_now()?;
            }
            Ok::<_, std::io::Error>(slices)
        });
        ex.run_until_idle()?;
        let served = server.join().expect("server task")?;
        let slices = background.join().expect("background task")?;
        Ok((served, slices))
    });
    // Tokio tasks send requests and await the answers.
    let start = Instant::now();
    let mut clients = Vec::new();
    for c in 0..4u64 {
        let tx = tx.clone();
        clients.push(tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            for i in 0..50u64 {
                let (reply, answer) = oneshot::channel();
                let sent = Instant::now();
                tx.send(Request {
                    n: c * 100 + i,
                    reply,
                })
                .await
                .expect("server alive");
                assert_eq!(answer.await.expect("answered"), (c * 100 + i) * 2);
                worst = worst.max(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            worst
        }));
    }
    drop(tx); // the server ends when every client is done
    let mut worst = Duration::ZERO;
    for c in clients {
        worst = worst.max(c.await.expect("client task"));
    }
    let (served, slices) = tokio::task::spawn_blocking(move || executor_thread.join())
        .await
        .expect("join")
        .expect("executor thread")?;
    println!(
        "   {served} requests served in {:?} beside {slices} Low slices; worst round trip {worst:?}",
        start.elapsed()
    );
    Ok(())
}
