//! A bounded randomized stress of the cross-thread paths of `sync`: tasks
//! of two executors and a stackful thread pool, plain threads and tokio
//! futures (some dropped by a timeout mid-wait) hammer one mutex, one
//! semaphore and one bounded channel, while another thread cancels random
//! tasks. Afterwards the primitives must balance exactly: every lock
//! section counted once, every permit back, every message accepted
//! received once and none of those handed back received at all.

use monad_async::sync::{mpsc, Mutex, Semaphore};
use monad_async::{Executor, JoinHandle, Priority, Switcher, ThreadPool};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PERMITS: usize = 3;
const TASKS_PER_EXECUTOR: usize = 150;
const OPS: u64 = 200;
/// Messages of futures whose send may be cut short by a timeout: unique
/// values from here up (the others are below 1000).
const CUT_BASE: u64 = 1_000_000;

/// xorshift64*: enough randomness for op choice, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct Shared {
    mutex: Mutex<u64>,
    sections: AtomicU64,
    sem: Semaphore,
    inside: AtomicUsize,
    sent_sum: AtomicU64,
    sent_count: AtomicU64,
}

impl Shared {
    fn in_semaphore(&self) {
        let n = self.inside.fetch_add(1, Ordering::AcqRel) + 1;
        assert!(n <= PERMITS, "{n} holders of {PERMITS} permits");
    }
    fn out_of_semaphore(&self) {
        self.inside.fetch_sub(1, Ordering::AcqRel);
    }
    fn sent(&self, v: u64) {
        self.sent_sum.fetch_add(v, Ordering::Relaxed);
        self.sent_count.fetch_add(1, Ordering::Relaxed);
    }
}

/// One worker's loop of random operations; `pause` is its way of
/// suspending (a task's yield, a thread's yield). Stops at the first
/// error (a cancelled task).
fn work(
    s: &Shared,
    tx: &mpsc::Sender<u64>,
    seed: u64,
    mut pause: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut rng = Rng(seed | 1);
    for _ in 0..OPS {
        match rng.next() % 3 {
            0 => {
                let mut g = s.mutex.lock()?;
                *g += 1;
                s.sections.fetch_add(1, Ordering::Relaxed);
                let r = if rng.next() % 2 == 0 { pause() } else { Ok(()) };
                drop(g);
                r?;
            }
            1 => {
                let p = s.sem.acquire()?;
                s.in_semaphore();
                let r = pause();
                s.out_of_semaphore();
                drop(p);
                r?;
            }
            _ => {
                let v = rng.next() % 1000;
                match tx.send(v) {
                    Ok(()) => s.sent(v),
                    Err(e) => {
                        assert_eq!(e.into_inner(), v); // handed back
                        return Err(std::io::Error::from_raw_os_error(libc::ECANCELED));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A thread's (or a none-switcher task's) pause.
fn thread_pause() -> std::io::Result<()> {
    std::thread::yield_now();
    Ok(())
}

#[test]
fn cross_thread_stress_balances_exactly() {
    let start = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    // A watchdog: a lost wake-up shows up as a hang; fail instead.
    {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if start.elapsed() > Duration::from_secs(120) {
                    eprintln!("sync_stress: no progress after 120 s (lost wake-up?)");
                    std::process::abort();
                }
            }
        });
    }
    let s = Arc::new(Shared {
        mutex: Mutex::new(0),
        sections: AtomicU64::new(0),
        sem: Semaphore::new(PERMITS),
        inside: AtomicUsize::new(0),
        sent_sum: AtomicU64::new(0),
        sent_count: AtomicU64::new(0),
    });
    let (tx, mut rx) = mpsc::channel::<u64>(4);

    // The consumer: a task of the test thread's executor, never cancelled.
    let ex = Executor::new().unwrap();
    let consumer = ex.spawn(Priority::Low, move |_cx| {
        let (mut sum, mut count) = (0u64, 0u64);
        let mut cut = HashSet::new();
        while let Some(v) = rx.recv().unwrap() {
            sum += v;
            count += 1;
            if v >= CUT_BASE {
                assert!(cut.insert(v), "message {v} received twice");
            }
        }
        (sum, count, cut)
    });

    // Two executors on their own threads; their handles go to the
    // canceller.
    let handles: Arc<std::sync::Mutex<Vec<JoinHandle<std::io::Result<()>>>>> = Arc::default();
    let mut threads = Vec::new();
    for e in 0..2u64 {
        let (s, tx, handles) = (s.clone(), tx.clone(), handles.clone());
        threads.push(std::thread::spawn(move || {
            let ex = Executor::new().unwrap();
            for i in 0..TASKS_PER_EXECUTOR as u64 {
                let (s, tx) = (s.clone(), tx.clone());
                let h = ex.spawn(Priority::ALL[(i % 3) as usize], move |cx| {
                    work(&s, &tx, e * 1_000_003 + i, || cx.yield_now())
                });
                handles.lock().unwrap().push(h);
            }
            drop(tx);
            ex.run_until_idle().unwrap();
        }));
    }
    // A stackful pool: its tasks park too.
    let pool = ThreadPool::builder()
        .threads(2)
        .switcher(Switcher::Asm)
        .build()
        .unwrap();
    let pool_hs: Vec<_> = (0..100u64)
        .map(|i| {
            let (s, tx) = (s.clone(), tx.clone());
            pool.spawn(Priority::ALL[(i % 3) as usize], move |_cx| {
                work(&s, &tx, 7_000_001 + i, thread_pause)
            })
        })
        .collect();
    // Plain threads.
    for t in 0..3u64 {
        let (s, tx) = (s.clone(), tx.clone());
        threads.push(std::thread::spawn(move || {
            work(&s, &tx, 9_000_001 + t, thread_pause).unwrap();
        }));
    }
    // Tokio futures, a third of whose waits are cut short by a timeout
    // (the future is dropped mid-wait, or just after being granted).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let cut_confirmed: Arc<std::sync::Mutex<HashSet<u64>>> = Arc::default();
    let futs: Vec<_> = (0..100u64)
        .map(|i| {
            let (s, tx) = (s.clone(), tx.clone());
            let cut_confirmed = cut_confirmed.clone();
            rt.spawn(async move {
                let mut rng = Rng(i * 31 + 5);
                let short = Duration::from_micros(20);
                for k in 0..OPS / 2 {
                    let cut = rng.next() % 3 == 0;
                    match rng.next() % 3 {
                        0 => {
                            let g = if cut {
                                tokio::time::timeout(short, s.mutex.lock_async()).await.ok()
                            } else {
                                Some(s.mutex.lock_async().await)
                            };
                            if let Some(mut g) = g {
                                *g += 1;
                                s.sections.fetch_add(1, Ordering::Relaxed);
                                tokio::task::yield_now().await;
                            }
                        }
                        1 => {
                            let p = if cut {
                                tokio::time::timeout(short, s.sem.acquire_async())
                                    .await
                                    .ok()
                            } else {
                                Some(s.sem.acquire_async().await)
                            };
                            if let Some(p) = p {
                                let _p = p.unwrap();
                                s.in_semaphore();
                                tokio::task::yield_now().await;
                                s.out_of_semaphore();
                            }
                        }
                        _ => {
                            let v = rng.next() % 1000;
                            if cut {
                                // A unique value: a future the timeout
                                // dropped before it returned Ok never
                                // sent it (send_async is cancel-safe),
                                // whatever the receiver did meanwhile.
                                let v = CUT_BASE + i * OPS + k;
                                if let Ok(r) = tokio::time::timeout(short, tx.send_async(v)).await {
                                    r.unwrap();
                                    s.sent(v);
                                    cut_confirmed.lock().unwrap().insert(v);
                                }
                            } else {
                                tx.send_async(v).await.unwrap();
                                s.sent(v);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    // The canceller: random cancels of executor tasks from another thread.
    let canceller = {
        let handles = handles.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(0xC0FFEE);
            let mut cancelled = 0;
            let until = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < until {
                {
                    let hs = handles.lock().unwrap();
                    if !hs.is_empty() {
                        let i = (rng.next() % hs.len() as u64) as usize;
                        if hs[i].cancel().unwrap() {
                            cancelled += 1;
                        }
                    }
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            cancelled
        })
    };

    let (sum, count, cut_received) = consumer.join().unwrap();
    let cancelled = canceller.join().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    for h in pool_hs {
        h.join().unwrap().unwrap();
    }
    rt.block_on(async {
        for f in futs {
            f.await.unwrap();
        }
    });
    let mut outcomes = (0, 0, 0);
    for h in handles.lock().unwrap().drain(..) {
        match h.join() {
            Ok(Ok(())) => outcomes.0 += 1,
            Ok(Err(e)) => {
                assert_eq!(e.raw_os_error(), Some(libc::ECANCELED));
                outcomes.1 += 1
            }
            Err(e) => {
                assert!(e.is_cancelled());
                outcomes.2 += 1
            }
        }
    }
    done.store(true, Ordering::Relaxed);

    // Every message confirmed sent was received once, and no other: a
    // timed-out send future's message never arrives.
    let cut_confirmed = cut_confirmed.lock().unwrap();
    assert_eq!(*cut_confirmed, cut_received);
    assert_eq!(count, s.sent_count.load(Ordering::Relaxed));
    assert_eq!(sum, s.sent_sum.load(Ordering::Relaxed));
    assert_eq!(
        *s.mutex.try_lock().unwrap(),
        s.sections.load(Ordering::Relaxed)
    );
    assert_eq!(s.sem.available_permits(), PERMITS);
    assert_eq!(s.inside.load(Ordering::Relaxed), 0);
    assert!(cancelled > 0, "the canceller cancelled nothing");
    eprintln!(
        "sync_stress: {count} messages ({} by futures under a timeout), {} \
         lock sections, {cancelled} cancels ({} tasks finished, {} \
         cancelled), {:?}",
        cut_confirmed.len(),
        s.sections.load(Ordering::Relaxed),
        outcomes.0,
        outcomes.1 + outcomes.2,
        start.elapsed()
    );
}

#[test]
fn executors_dropped_mid_wait_while_other_threads_hand_out_permits_and_messages() {
    // 40 rounds: an executor's 60 tasks wait on a semaphore and a channel
    // that two threads keep feeding; the executor is dropped after a
    // random short time, cancelling whoever still waits. Every permit must
    // come back and every message accepted be received or still buffered.
    let sem = Arc::new(Semaphore::new(0));
    let (tx, rx) = mpsc::channel::<u64>(8);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let feeders: Vec<_> = (0..2)
        .map(|k| {
            let (sem, tx, stop) = (sem.clone(), tx.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut sent, mut added) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    if sem.available_permits() < 1000 {
                        sem.add_permits(1);
                        added += 1;
                    }
                    if tx.try_send(k).is_ok() {
                        sent += 1;
                    }
                    std::thread::yield_now();
                }
                (sent, added)
            })
        })
        .collect();
    drop(tx);
    let mut rng = Rng(0x5EED);
    for _ in 0..40 {
        let (sem, rx, received) = (sem.clone(), rx.clone(), received.clone());
        let life = Duration::from_micros(rng.next() % 2000);
        std::thread::spawn(move || {
            let ex = Executor::new().unwrap();
            for i in 0..60 {
                let (sem, rx, received) = (sem.clone(), rx.clone(), received.clone());
                ex.spawn(Priority::ALL[i % 3], move |_cx| {
                    if i % 2 == 0 {
                        // Permits taken for good: counted by forget.
                        if let Ok(p) = sem.acquire() {
                            p.forget();
                            received.fetch_add(1 << 32, Ordering::Relaxed);
                        }
                    } else if let Ok(mut rx) = rx.try_lock() {
                        if let Ok(Some(_)) = rx.recv() {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            let end = Instant::now() + life;
            while Instant::now() < end {
                let _ = ex.run(usize::MAX, Some(Duration::from_micros(100)));
            }
            drop(ex);
        })
        .join()
        .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, added) = feeders
        .into_iter()
        .map(|f| f.join().unwrap())
        .fold((0, 0), |(s, a), (s2, a2)| (s + s2, a + a2));
    let got = received.load(Ordering::Relaxed);
    let (taken, msgs) = (got >> 32, got & 0xFFFF_FFFF);
    let mut rx = rx.lock().unwrap();
    let mut buffered = 0;
    while let Ok(Some(_)) = rx.recv() {
        buffered += 1;
    }
    assert_eq!(msgs + buffered, sent);
    // Every permit added is free, or was taken by a task that returned:
    // none lost to a cancelled waiter, none granted twice.
    assert!(taken > 0 && msgs > 0, "nothing was exchanged");
    assert_eq!(sem.available_permits() as u64 + taken, added);
}
