//! Registered buffer pools from the safe API: fixed writes and reads
//! checked byte for byte (also with O_DIRECT where the file system has
//! it), many tasks contending for few buffers (waiting, all released),
//! one registration per executor, errors, cancellation while waiting, and
//! a pool handle outliving its executor.

use monad_async::io::{BufferPool, File};
use monad_async::{Executor, Priority};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("monad-async-pool-{tag}-{}", std::process::id()))
}

/// A task of another executor than `pool`'s may not claim from it:
/// `EINVAL`.
fn assert_foreign_claim_refused(pool: &Rc<BufferPool>) -> io::Result<()> {
    let other = Executor::new()?;
    let pl = pool.clone();
    let e = other
        .spawn(Priority::Normal, move |cx| pl.try_claim(cx).map(drop))
        .join()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    Ok(())
}

#[test]
fn fixed_write_read_back_with_contention() -> io::Result<()> {
    let ex = Executor::new()?;
    let pool = Rc::new(BufferPool::new(&ex, 4096, 2)?);
    assert_eq!(
        (pool.count(), pool.free(), pool.buffer_size()),
        (2, 2, 4096)
    );
    let path = temp_path("rw");
    std::fs::write(&path, [])?;
    let hs: Vec<_> = (0..16u8)
        .map(|i| {
            let (p, pl) = (path.clone(), pool.clone());
            ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
                let f = File::open(cx, &p)?;
                let mut b = pl.claim(cx)?;
                b.fill(i);
                let off = u64::from(i) * 4096;
                assert_eq!(f.write_fixed_at(cx, &b, 4096, off)?, 4096);
                b.fill(0xff);
                cx.yield_now()?; // hold it while others wait
                assert_eq!(f.read_fixed_at(cx, &mut b, 4096, off)?, 4096);
                assert!(b.iter().all(|&x| x == i), "task {i}");
                drop(b);
                f.close(cx)
            })
        })
        .collect();
    ex.run_until_idle()?;
    for h in hs {
        h.join().unwrap()?;
    }
    assert_eq!(pool.free(), 2);
    assert!(pool.waits() > 0);
    let data = std::fs::read(&path)?;
    assert_eq!(data.len(), 16 * 4096);
    for (i, chunk) in data.chunks(4096).enumerate() {
        assert!(chunk.iter().all(|&x| usize::from(x) == i));
    }
    std::fs::remove_file(path)
}

#[test]
fn o_direct_with_registered_buffers() -> io::Result<()> {
    let ex = Executor::new()?;
    let pool = Rc::new(BufferPool::new(&ex, 4096, 1)?);
    // Cargo's scratch directory for integration tests, in the target
    // directory: a disk file system, not tmpfs (no O_DIRECT there), and
    // present wherever CARGO_TARGET_DIR points.
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("monad-async-odirect-{}", std::process::id()));
    let (p, pl) = (path.clone(), pool.clone());
    let r = ex
        .spawn(Priority::Normal, move |cx| -> io::Result<()> {
            let f = File::open_with(
                cx,
                &p,
                libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_DIRECT,
                0o644,
            )?;
            let mut b = pl.claim(cx)?;
            for (j, x) in b.iter_mut().enumerate() {
                *x = (j % 251) as u8;
            }
            f.write_fixed_at(cx, &b, 4096, 8192)?;
            b.fill(0);
            assert_eq!(f.read_fixed_at(cx, &mut b, 4096, 8192)?, 4096);
            assert!(b.iter().enumerate().all(|(j, &x)| x == (j % 251) as u8));
            f.close(cx)
        })
        .join()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()), // no O_DIRECT here
        r => r,
    }
}

#[test]
fn one_registration_per_executor_and_errors() -> io::Result<()> {
    let ex = Executor::new()?;
    let pool = BufferPool::new(&ex, 4096, 1)?;
    let again = BufferPool::new(&ex, 4096, 1).unwrap_err();
    assert_eq!(again.raw_os_error(), Some(libc::EBUSY));
    drop(pool);
    let pool = Rc::new(BufferPool::new(&ex, 1, 1)?);
    assert_eq!(pool.buffer_size() % 4096, 0);
    assert_eq!(
        BufferPool::new(&Executor::builder().ring_entries(0).build()?, 4096, 1)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOTSUP)
    );
    let pl = pool.clone();
    let path = temp_path("err");
    let p = path.clone();
    ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let f = File::create(cx, &p)?;
        let mut a = pl.try_claim(cx)?;
        assert_eq!(
            pl.try_claim(cx).unwrap_err().raw_os_error(),
            Some(libc::EAGAIN)
        );
        let too_long = a.len() + 1;
        assert_eq!(
            f.read_fixed_at(cx, &mut a, too_long, 0)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EINVAL)
        );
        drop(a);
        let b = pl.try_claim(cx)?;
        drop(b);
        f.close(cx)
    })
    .join()
    .unwrap()?;
    // Another executor's task may not claim from it.
    assert_foreign_claim_refused(&pool)?;
    std::fs::remove_file(path)
}

#[test]
fn cancelled_while_waiting_for_a_buffer() -> io::Result<()> {
    let ex = Executor::new()?;
    let pool = Rc::new(BufferPool::new(&ex, 4096, 1)?);
    let pl = pool.clone();
    let holder = ex.spawn(Priority::Normal, move |cx| -> io::Result<()> {
        let _b = pl.claim(cx)?;
        cx.sleep(Duration::from_millis(50))
    });
    let pl = pool.clone();
    let waiter = ex.spawn(Priority::Normal, move |cx| {
        pl.claim(cx).map(drop).unwrap_err().raw_os_error()
    });
    let _ = ex.run(16, Some(Duration::from_millis(5)));
    assert!(!waiter.is_finished());
    assert!(waiter.cancel()?);
    assert!(waiter.join().unwrap_err().is_cancelled());
    holder.join().unwrap()?;
    assert_eq!(pool.free(), 1);
    Ok(())
}

#[test]
fn pool_handle_outliving_its_executor_is_inert() -> io::Result<()> {
    let ex = Executor::new()?;
    let pool = Rc::new(BufferPool::new(&ex, 4096, 4)?);
    let pl = pool.clone();
    ex.spawn(Priority::Normal, move |cx| pl.claim(cx).map(|b| b.len()))
        .join()
        .unwrap()?;
    drop(ex);
    assert_eq!((pool.count(), pool.free()), (0, 0));
    assert_foreign_claim_refused(&pool)?;
    drop(pool); // no double free
    Ok(())
}
