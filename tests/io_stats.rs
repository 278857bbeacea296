//! `ExecutorStats::io`: the ring's counters as seen from Rust. Each
//! operation is submitted once and completed once, also when it is
//! cancelled; the ring's shape is reported; no ring, no counts.

use monad_async::io::File;
use monad_async::{Executor, Priority};
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
    assert!(io.enters >= 1);
    assert!(
        io.sqe_waits > 0,
        "100 nops through 8 entries must wait: {io:?}"
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
