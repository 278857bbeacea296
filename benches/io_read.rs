//! 4 KiB random reads from a 128 MiB file at queue depth 1 and 64:
//! monad-async against a plain io_uring read loop (the floor) and tokio.
//!
//! The file is created once per run in /var/tmp and removed at the end.
//! Two modes, one group each per queue depth:
//!  - `direct`: O_DIRECT for monad-async and the floor (the device, no
//!    page cache). tokio's `fs::File` cannot do O_DIRECT (it reads through
//!    its own unaligned buffer), so its contender there is what
//!    `tokio::fs` does inside, a `spawn_blocking` pread, on an O_DIRECT fd
//!    into an aligned buffer.
//!  - `cached`: buffered reads of a file that is in the page cache (the
//!    software cost of a read); tokio reads with `tokio::fs::File` (seek,
//!    then read_exact).
//!
//! QD64: monad-async runs 64 tasks each reading in a loop; the floor keeps
//! 64 reads in flight, refilling as each completes; tokio spawns 64 tasks
//! on a multi-thread runtime. One iteration is 64 reads.
//!
//! After the criterion groups, the `direct` contenders run again
//! interleaved round by round (see `interleaved`), which is the comparison
//! to read for the device-bound figures.

use criterion::{Criterion, Throughput};
use io_uring::{opcode, types};
use monad_async::{Executor, Priority};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/uring.rs"]
mod uring;

const FILE_SIZE: u64 = 128 << 20;
const BLOCK: usize = 4096;
const BLOCKS: u64 = FILE_SIZE / BLOCK as u64;
const QD: usize = 64;

/// A 4 KiB buffer aligned for O_DIRECT.
struct AlignedBuf(*mut u8);

impl AlignedBuf {
    fn new() -> Self {
        // SAFETY: non-zero size, valid alignment.
        let p = unsafe { alloc_zeroed(Self::layout()) };
        assert!(!p.is_null());
        AlignedBuf(p)
    }
    fn layout() -> Layout {
        Layout::from_size_align(BLOCK, BLOCK).unwrap()
    }
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: BLOCK bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.0, BLOCK) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout.
        unsafe { dealloc(self.0, Self::layout()) };
    }
}

// SAFETY: a plain heap allocation, used by one thread at a time.
unsafe impl Send for AlignedBuf {}

fn make_file() -> PathBuf {
    let path = PathBuf::from(format!(
        "/var/tmp/monad-async-bench-io_read.{}",
        std::process::id()
    ));
    let mut f = std::fs::File::create(&path).expect("create bench file");
    let mut chunk = vec![0u8; 1 << 20];
    let mut rng = uring::XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..(FILE_SIZE >> 20) {
        for b in chunk.chunks_mut(8) {
            b.copy_from_slice(&rng.next_below(u64::MAX).to_le_bytes());
        }
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    path
}

fn open(path: &Path, direct: bool) -> std::fs::File {
    OpenOptions::new()
        .read(true)
        .custom_flags(if direct { libc::O_DIRECT } else { 0 })
        .open(path)
        .expect("open bench file")
}

fn offset(rng: &mut uring::XorShift) -> u64 {
    rng.next_below(BLOCKS) * BLOCK as u64
}

/// monad-async: `tasks` tasks, each `iters` reads; returns the elapsed time.
fn ours(ex: &Executor, file: &Rc<monad_async::io::File>, tasks: usize, iters: u64) -> Duration {
    let start = Instant::now();
    for t in 0..tasks {
        let f = Rc::clone(file);
        ex.spawn(Priority::Normal, move |cx| {
            let mut buf = AlignedBuf::new();
            let mut rng = uring::XorShift(0x1234_5678 + t as u64);
            for _ in 0..iters {
                let n = f.read_at(cx, buf.as_mut(), offset(&mut rng)).unwrap();
                assert_eq!(n, BLOCK);
            }
        });
    }
    ex.run_until_idle().unwrap();
    start.elapsed()
}

/// The floor: `depth` reads kept in flight until `total` have completed.
fn floor(ring: &mut io_uring::IoUring, fd: i32, bufs: &mut [AlignedBuf], total: u64) -> Duration {
    let depth = bufs.len() as u64;
    let mut rng = uring::XorShift(0x1234_5678);
    let push = |ring: &mut io_uring::IoUring, bufs: &mut [AlignedBuf], i: usize, off: u64| {
        let sqe = opcode::Read::new(types::Fd(fd), bufs[i].0, BLOCK as u32)
            .offset(off)
            .build()
            .user_data(i as u64);
        // SAFETY: the buffer outlives the read (we reap every read).
        unsafe { ring.submission().push(&sqe).expect("sq full") };
    };
    let start = Instant::now();
    let mut issued = 0;
    let mut done = 0;
    while issued < depth.min(total) {
        push(ring, bufs, issued as usize, offset(&mut rng));
        issued += 1;
    }
    while done < total {
        ring.submit_and_wait(1).expect("submit");
        let mut free = [0usize; QD];
        let mut nfree = 0;
        for cqe in ring.completion() {
            assert_eq!(cqe.result(), BLOCK as i32);
            free[nfree] = cqe.user_data() as usize;
            nfree += 1;
        }
        done += nfree as u64;
        for &i in &free[..nfree] {
            if issued < total {
                push(ring, bufs, i, offset(&mut rng));
                issued += 1;
            }
        }
    }
    start.elapsed()
}

/// tokio on an O_DIRECT fd: `tasks` tasks, each `iters` `spawn_blocking`
/// preads (what `tokio::fs` does inside) into an aligned buffer.
fn tokio_direct(
    rt: &tokio::runtime::Runtime,
    file: &Arc<std::fs::File>,
    tasks: usize,
    iters: u64,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        let hs: Vec<_> = (0..tasks)
            .map(|t| {
                let f = Arc::clone(file);
                tokio::spawn(async move {
                    let mut buf = AlignedBuf::new();
                    let mut rng = uring::XorShift(0x1234_5678 + t as u64);
                    for _ in 0..iters {
                        let off = offset(&mut rng);
                        let f = Arc::clone(&f);
                        buf = tokio::task::spawn_blocking(move || {
                            let n = f.read_at(buf.as_mut(), off).unwrap();
                            assert_eq!(n, BLOCK);
                            buf
                        })
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        start.elapsed()
    })
}

fn runtime(depth: usize) -> tokio::runtime::Runtime {
    if depth == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    }
}

/// The O_DIRECT contenders again, interleaved. A read from the device
/// takes tens of microseconds and drifts with the host's disk load over
/// seconds, by more than the contenders differ: criterion times each in a
/// window of its own, so its direct-I/O ratios move from run to run. Here
/// every round times each contender for `PER_ROUND` reads per queue slot,
/// in an order rotating from round to round, and the figures printed are
/// the median time per read of each and the median of the per-round
/// ratios, in which the drift cancels.
fn interleaved(path: &Path, depth: usize) {
    const ROUNDS: usize = 41;
    const PER_ROUND: u64 = 40;
    let ex = Executor::builder().ring_entries(128).build().unwrap();
    let file = Rc::new(monad_async::io::File::from(open(path, true)));
    let mut ring = uring::ring(128);
    let std_file = open(path, true);
    let mut bufs: Vec<AlignedBuf> = (0..depth).map(|_| AlignedBuf::new()).collect();
    let rt = runtime(depth);
    let shared = Arc::new(open(path, true));
    let reads = PER_ROUND * depth as u64;
    // Per round: µs per read of [monad_async, floor, tokio].
    let mut rounds: Vec<[f64; 3]> = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut t = [0f64; 3];
        for k in 0..3 {
            let who = (round + k) % 3;
            let took = match who {
                0 => ours(&ex, &file, depth, PER_ROUND),
                1 => floor(&mut ring, std_file.as_raw_fd(), &mut bufs, reads),
                _ => tokio_direct(&rt, &shared, depth, PER_ROUND),
            };
            t[who] = took.as_secs_f64() * 1e6 / reads as f64;
        }
        rounds.push(t);
    }
    let median = |f: &dyn Fn(&[f64; 3]) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let per = |who: usize| median(&|r| r[who]);
    let ratio = |a: usize, b: usize| median(&|r| r[a] / r[b]);
    println!(
        "io_read_4k_direct_qd{depth} interleaved ({ROUNDS} rounds of {reads} reads each, \
         rotating order): median us/read: monad_async {:.2}, floor {:.2}, tokio {:.2}; \
         median per-round ratio: monad_async/floor {:.3}, monad_async/tokio {:.3}",
        per(0),
        per(1),
        per(2),
        ratio(0, 1),
        ratio(0, 2)
    );
}

fn group(c: &mut Criterion, path: &Path, direct: bool, depth: usize) {
    let mode = if direct { "direct" } else { "cached" };
    let mut g = c.benchmark_group(format!("io_read_4k_{mode}_qd{depth}"));
    g.throughput(Throughput::Elements(depth as u64));

    let ex = Executor::builder().ring_entries(128).build().unwrap();
    let file = Rc::new(monad_async::io::File::from(open(path, direct)));
    g.bench_function("monad_async/asm", |b| {
        b.iter_custom(|iters| ours(&ex, &file, depth, iters))
    });

    let mut ring = uring::ring(128);
    let std_file = open(path, direct);
    let mut bufs: Vec<AlignedBuf> = (0..depth).map(|_| AlignedBuf::new()).collect();
    g.bench_function("floor/io_uring_read", |b| {
        b.iter_custom(|iters| {
            floor(
                &mut ring,
                std_file.as_raw_fd(),
                &mut bufs,
                iters * depth as u64,
            )
        })
    });

    let rt = runtime(depth);
    if direct {
        // tokio::fs's own mechanism (spawn_blocking + pread), which can
        // take an aligned buffer and so an O_DIRECT fd.
        let shared = Arc::new(open(path, true));
        g.bench_function("tokio/spawn_blocking_pread", |b| {
            b.iter_custom(|iters| tokio_direct(&rt, &shared, depth, iters))
        });
    } else {
        g.bench_function("tokio/fs_file", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    use tokio::io::{AsyncReadExt, AsyncSeekExt};
                    let mut files = Vec::with_capacity(depth);
                    for _ in 0..depth {
                        files.push(tokio::fs::File::open(path).await.unwrap());
                    }
                    let start = Instant::now();
                    let hs: Vec<_> = files
                        .into_iter()
                        .enumerate()
                        .map(|(t, mut f)| {
                            tokio::spawn(async move {
                                let mut buf = vec![0u8; BLOCK];
                                let mut rng = uring::XorShift(0x1234_5678 + t as u64);
                                for _ in 0..iters {
                                    let off = offset(&mut rng);
                                    f.seek(std::io::SeekFrom::Start(off)).await.unwrap();
                                    f.read_exact(&mut buf).await.unwrap();
                                    black_box(&buf);
                                }
                            })
                        })
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

fn main() {
    let path = make_file();
    let mut c = Criterion::default().configure_from_args();
    for direct in [true, false] {
        if !direct {
            // Pull the whole file into the page cache.
            let f = open(&path, false);
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0;
            while off < FILE_SIZE {
                off += f.read_at(&mut buf, off).unwrap() as u64;
            }
        }
        for depth in [1, QD] {
            group(&mut c, &path, direct, depth);
        }
    }
    c.final_summary();
    for depth in [1, QD] {
        interleaved(&path, depth);
    }
    let _ = std::fs::remove_file(&path);
}
