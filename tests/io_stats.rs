//! `ExecutorStats::io`: the ring's counters as seen from Rust. Each
//! operation is submitted once and completed once, also when it is
//! cancelled; the ring's shape is reported, as the builder asked for it; a
//! full submission queue is submitted and refilled, never waited for; no
//! ring, no counts.

use monad_async::io::File;
use monad_async::{Executor, ExecutorBuilder, Priority, RingSetupError};
use std::io;
use std::time::Duration;

#[test]
fn counts_operations_and_ring_shape() -> io::Result<()> {
    let ex = Executor::builder().ring_entries(8).build()?;
    let before = ex.stats().io;
    assert_eq!(
        (before.submitted, before.completed, before.in_flight),
        (0, 0, 0)
    );
    assert_eq!(before.sq_entries, 8);
    assert!(before.cq_entries >= 8 && before.inflight_limit > 0);

    let hs: Vec<_> = (0..100)
        .map(|_| ex.spawn(Priority::Normal, monad_async::io::nop))
        .collect();
    ex.run_until_idle()?;
    for h in hs {
        h.join().unwrap()?;
    }
    let io = ex.stats().io;
    assert_eq!((io.submitted, io.completed, io.in_flight), (100, 100, 0));
    // The 8 entries are a batch: each full queue goes to the kernel at
    // once (one enter per 8 operations at least) and nobody waits.
    assert!(io.enters >= 100 / 8, "{io:?}");
    assert_eq!(
        io.sqe_waits, 0,
        "100 nops through 8 entries: a full queue is submitted, not waited for: {io:?}"
    );
    assert_eq!((io.stale, io.cq_overflows), (0, 0));
    Ok(())
}

#[test]
fn cancelled_operations_still_complete() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| cx.sleep(Duration::from_secs(60)));
    let _ = ex.run(8, Some(Duration::from_millis(5)));
    assert_eq!(ex.stats().io.in_flight, 1);
    assert!(h.cancel()?);
    assert!(h.join().unwrap_err().is_cancelled());
    ex.run_until_idle()?;
    let io = ex.stats().io;
    assert!(io.cancels >= 1, "{io:?}");
    assert_eq!(io.submitted, io.completed);
    assert_eq!(io.in_flight, 0);

    // A batch of reads counts one operation per read.
    let path = std::env::temp_dir().join(format!("monad-async-stats-{}", std::process::id()));
    let p = path.clone();
    let before = ex.stats().io.submitted;
    ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let f = File::create(cx, &p)?;
        let mut bufs = [[0u8; 8]; 10];
        let mut reads: Vec<(u64, &mut [u8])> = bufs.iter_mut().map(|b| (0, &mut b[..])).collect();
        for r in f.read_many_at(cx, &mut reads) {
            assert_eq!(r?, 0);
        }
        f.close(cx)
    })
    .join()
    .unwrap()?;
    let io = ex.stats().io;
    assert_eq!(io.submitted - before, 12, "open, 10 reads, close");
    assert_eq!(io.submitted, io.completed);
    std::fs::remove_file(path)
}

#[test]
fn ring_shape_from_the_builder() -> io::Result<()> {
    let io = Executor::new()?.stats().io;
    assert_eq!(
        (io.sq_entries, io.cq_entries, io.inflight_limit),
        (
            ExecutorBuilder::DEFAULT_RING_ENTRIES,
            ExecutorBuilder::DEFAULT_CQ_ENTRIES,
            ExecutorBuilder::DEFAULT_IO_INFLIGHT_LIMIT
        )
    );
    let io = Executor::builder()
        .ring_entries(16)
        .cq_entries(100)
        .io_inflight_limit(5000)
        .build()?
        .stats()
        .io;
    assert_eq!(
        (io.sq_entries, io.cq_entries, io.inflight_limit),
        (16, 128, 5000)
    );
    // A CQ smaller than the SQ, or above the kernel's 65,536, and a guard
    // above 16,777,216 are refused.
    for b in [
        Executor::builder().ring_entries(16).cq_entries(8),
        Executor::builder().cq_entries(65_537),
        Executor::builder().io_inflight_limit(16_777_217),
    ] {
        let err = b.build().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let why = err
            .get_ref()
            .unwrap()
            .downcast_ref::<RingSetupError>()
            .unwrap();
        assert_eq!(why.errno(), libc::EINVAL);
        assert!(why.explanation().contains("completion queue"), "{why}");
    }
    Ok(())
}

#[test]
fn no_ring_no_counts() -> io::Result<()> {
    let ex = Executor::builder().ring_entries(0).build()?;
    ex.spawn(Priority::Normal, |cx| {
        assert_eq!(
            monad_async::io::nop(cx).unwrap_err().raw_os_error(),
            Some(libc::ENOTSUP)
        );
    })
    .join()
    .unwrap();
    assert_eq!(ex.stats().io, Default::default());
    Ok(())
}
