//! Errors people can match: ECANCELED, ETIMEDOUT/ETIME and ESHUTDOWN as
//! they come back from real calls, through `ErrorExt`, the free functions,
//! `kind()`, `raw_os_error()` and `describe()`.

use monad_async::error::{self, ErrorExt};
use monad_async::{Executor, Priority};
use std::io::{self, ErrorKind};
use std::time::Duration;

/// The helpers and free functions agree, and exactly one (or none) holds.
fn classify(e: &io::Error) -> (bool, bool, bool) {
    let got = (e.is_cancelled(), e.is_timed_out(), e.is_shutdown());
    assert_eq!(
        got,
        (
            error::is_cancelled(e),
            error::is_timed_out(e),
            error::is_shutdown(e)
        )
    );
    assert!(
        u8::from(got.0) + u8::from(got.1) + u8::from(got.2) <= 1,
        "{e:?}"
    );
    got
}

#[test]
fn deadline_gives_timed_out() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| {
        cx.timeout(Duration::from_millis(1), |cx| {
            cx.sleep(Duration::from_secs(60))
        })
    });
    let e = h.join().unwrap().unwrap_err();
    assert_eq!(classify(&e), (false, true, false));
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert_eq!(e.raw_os_error(), Some(libc::ETIMEDOUT));
    assert_eq!(e.errno(), Some(libc::ETIMEDOUT));
    assert_eq!(e.describe().to_string(), "timed out (os error 110)");
    Ok(())
}

#[test]
fn run_timeout_is_etime_and_timed_out() -> io::Result<()> {
    let ex = Executor::new()?;
    let e = ex.run(1, Some(Duration::from_millis(1))).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ETIME)); // unchanged, as documented
    assert_eq!(classify(&e), (false, true, false));
    assert_eq!(
        e.describe().to_string(),
        format!("timed out (os error {})", libc::ETIME)
    );
    Ok(())
}

#[test]
fn cancelled_sleep_and_join_give_cancelled() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| {
        // Checked inside: a failed assertion would make the join a panic,
        // not a cancellation.
        let e = cx.sleep(Duration::from_secs(60)).unwrap_err();
        assert_eq!(classify(&e), (true, false, false));
        assert_eq!(e.raw_os_error(), Some(libc::ECANCELED));
        assert_eq!(e.describe().to_string(), "task cancelled (os error 125)");
    });
    let _ = ex.run(1, Some(Duration::from_millis(1)));
    assert!(h.cancel()?);
    let je = h.join().unwrap_err();
    assert!(
        je.is_cancelled() && !je.is_timed_out() && !je.is_panic(),
        "{je}"
    );
    let e = io::Error::from(je);
    assert_eq!(classify(&e), (true, false, false));
    assert_eq!(e.raw_os_error(), Some(libc::ECANCELED));
    Ok(())
}

#[test]
fn dropped_executor_gives_shutdown() -> io::Result<()> {
    let ex = Executor::new()?;
    let handle = ex.handle();
    drop(ex);
    let e = handle.spawn(Priority::Normal, |_cx| ()).unwrap_err();
    assert_eq!(classify(&e), (false, false, true));
    assert_eq!(e.raw_os_error(), Some(libc::ESHUTDOWN));
    assert_eq!(
        e.describe().to_string(),
        "executor shut down (os error 108)"
    );
    // std's own text stays the C library's.
    assert!(!e.to_string().contains("executor"));
    Ok(())
}

#[test]
fn timed_out_join_converts_to_timed_out() -> io::Result<()> {
    let ex = Executor::new()?;
    let h = ex.spawn(Priority::Normal, |cx| {
        let slow = cx
            .spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(300)))
            .unwrap();
        cx.timeout(Duration::from_millis(1), |_cx| slow.join())
    });
    let je = h.join().unwrap().unwrap_err();
    assert!(je.is_timed_out() && !je.is_cancelled() && !je.is_panic());
    assert_eq!(je.to_string(), "timed out waiting for the task");
    assert!(je.try_into_panic().unwrap_err().is_timed_out());
    let h = ex.spawn(Priority::Normal, |cx| {
        let slow = cx
            .spawn(Priority::Normal, |cx| cx.sleep(Duration::from_millis(300)))
            .unwrap();
        cx.timeout(Duration::from_millis(1), |_cx| slow.join())
    });
    let e = io::Error::from(h.join().unwrap().unwrap_err());
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert_eq!(classify(&e), (false, true, false));
    Ok(())
}

#[test]
fn other_errors_are_none_of_them() -> io::Result<()> {
    for code in [libc::ENOENT, libc::EINVAL, libc::EAGAIN, libc::EBUSY] {
        let e = io::Error::from_raw_os_error(code);
        assert_eq!(classify(&e), (false, false, false));
        assert_eq!(e.describe().to_string(), e.to_string());
        assert_eq!(e.errno(), Some(code));
    }
    let custom = io::Error::other("x");
    assert_eq!(classify(&custom), (false, false, false));
    assert_eq!(custom.errno(), None);
    // A ring that cannot be made: the errno is inside, not raw.
    let e = Executor::builder()
        .ring_entries(1 << 20)
        .build()
        .unwrap_err();
    assert_eq!(e.raw_os_error(), None);
    assert_eq!(e.errno(), Some(libc::EINVAL));
    assert_eq!(classify(&e), (false, false, false));
    Ok(())
}
