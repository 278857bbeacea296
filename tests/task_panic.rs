//! A panic in a task is caught on the task's stack and handed to join; it
//! never crosses into C, and the executor carries on.

use monad_async::{Executor, Priority};
use std::panic;
use std::time::Duration;

#[test]
fn panic_is_returned_by_join() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |_cx| -> u32 { panic!("boom {}", 7) });
    let id = h.id();
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_cancelled());
    assert_eq!(err.to_string(), format!("task (id {id}) panicked: boom 7"));
    assert_eq!((err.task_id(), err.task_name()), (Some(id), None));
    let payload = err.into_panic();
    // A constant message may be a &'static str payload, a formatted one a
    // String: either way it is the original payload.
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    assert_eq!(msg, Some("boom 7"));
}

#[test]
fn resume_unwind_propagates_the_original_payload() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |_cx| -> () { panic::panic_any(123_u64) });
    let caught = panic::catch_unwind(|| {
        if let Err(e) = h.join() {
            panic::resume_unwind(e.into_panic());
        }
    })
    .unwrap_err();
    assert_eq!(caught.downcast_ref::<u64>(), Some(&123));
}

#[test]
fn executor_carries_on_after_panics() {
    let ex = Executor::new().unwrap();
    for i in 0..100 {
        let h = ex.spawn(Priority::Normal, move |cx| {
            cx.yield_now().unwrap();
            if i % 2 == 0 {
                panic!("even {i}");
            }
            i
        });
        let id = h.id();
        match h.join() {
            Ok(v) => assert_eq!(v % 2, 1),
            Err(e) => assert_eq!(e.to_string(), format!("task (id {id}) panicked: even {i}")),
        }
    }
    let s = ex.stats();
    assert_eq!(s.exited, 100);
    assert_eq!(s.tasks_created, 1);
}

#[test]
fn panic_in_a_remote_task_reaches_the_remote_joiner() {
    let ex = Executor::new().unwrap();
    let handle = ex.handle();
    let t = std::thread::spawn(move || {
        let h = handle
            .spawn(Priority::Normal, |cx| -> () {
                cx.sleep(Duration::from_millis(1)).unwrap();
                panic!("remote")
            })
            .unwrap();
        let id = h.id();
        (id, h.join())
    });
    while !t.is_finished() {
        let _ = ex.run(usize::MAX, Some(Duration::from_millis(5)));
    }
    let (id, joined) = t.join().unwrap();
    let err = joined.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.to_string(), format!("task (id {id}) panicked: remote"));
}

#[test]
fn panic_converts_to_io_error_and_back() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |_cx| -> () { panic!("as io") });
    let io: std::io::Error = h.join().unwrap_err().into();
    assert_eq!(io.kind(), std::io::ErrorKind::Other);
    let inner = io
        .into_inner()
        .unwrap()
        .downcast::<monad_async::JoinError>()
        .unwrap();
    assert!(inner.is_panic());

    let h = ex.spawn(Priority::Normal, |_cx| ());
    ex.cancel(&h).unwrap();
    let io: std::io::Error = h.join().unwrap_err().into();
    assert_eq!(io.raw_os_error(), Some(libc::ECANCELED));
}

#[test]
fn a_panic_wins_over_cancellation() {
    let ex = Executor::new().unwrap();
    let h = ex.spawn(Priority::Normal, |cx| -> () {
        let _ = cx.sleep(Duration::from_secs(60));
        panic!("after cancel");
    });
    ex.run(1, Some(Duration::ZERO)).unwrap();
    ex.cancel(&h).unwrap();
    assert!(h.join().unwrap_err().is_panic());
}

#[test]
fn a_panicking_drop_of_an_unrun_closure_does_not_abort() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop");
        }
    }
    let ex = Executor::new().unwrap();
    let guard = PanicOnDrop;
    let h = ex.spawn(Priority::Normal, move |_cx| {
        let _g = &guard;
    });
    ex.cancel(&h).unwrap();
    assert!(h.join().unwrap_err().is_cancelled());
}
