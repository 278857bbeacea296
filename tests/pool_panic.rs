//! Panics in pool closures are caught on their task, reported on join
//! (the payload intact, for resume_unwind), and leave the pool working.

use monad_async::{Priority, ThreadPool};
use std::panic;

#[test]
fn panic_is_reported_on_join() {
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    let h = pool.spawn(Priority::High, |_cx| -> u32 { panic!("boom {}", 7) });
    let id = h.id();
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.to_string(), format!("task (id {id}) panicked: boom 7"));
}

#[test]
fn payload_survives_for_resume_unwind() {
    let pool = ThreadPool::builder().threads(1).build().unwrap();
    let h = pool.spawn(Priority::Normal, |_cx| -> () { panic::panic_any(42_i32) });
    let payload = h.join().unwrap_err().into_panic();
    let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| panic::resume_unwind(payload)));
    assert_eq!(caught.unwrap_err().downcast_ref::<i32>(), Some(&42));
}

#[test]
fn pool_keeps_working_after_panics() {
    let pool = ThreadPool::builder().threads(2).build().unwrap();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            pool.spawn(Priority::ALL[i % 3], move |_cx| {
                if i % 7 == 0 {
                    panic!("closure {i}");
                }
                i
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let id = h.id();
        match h.join() {
            Ok(v) => assert_eq!(v, i),
            Err(e) => {
                assert_eq!(i % 7, 0);
                assert_eq!(
                    e.to_string(),
                    format!("task (id {id}) panicked: closure {i}")
                );
            }
        }
    }
    assert_eq!(
        pool.spawn(Priority::Low, |_cx| "still here")
            .join()
            .unwrap(),
        "still here"
    );
    pool.wait_idle().unwrap();
    assert_eq!(pool.stats().executed, 201);
}
