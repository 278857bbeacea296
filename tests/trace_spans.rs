//! The `tracing` feature: every task of an executor is a span, entered
//! for each slice it runs, with events for its launch, each suspension
//! (and why), each resumption and its exit, seen by a subscriber that
//! records them. Run with `cargo test --features tracing --test
//! trace_spans`.
#![cfg(feature = "tracing")]

use monad_async::{Executor, Priority, TaskWaker};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

#[path = "common/recorder.rs"]
mod recorder;
use recorder::{Rec, Recorder};

/// One test at a time: `tracing` caches each callsite's interest the
/// first time it is hit, so a callsite first hit by a thread without our
/// subscriber (the other test) could be cached as uninteresting.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn a_task_is_a_span_entered_for_each_slice_with_its_suspensions_and_why() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = Recorder::default();
    let log = rec.log.clone();
    tracing::subscriber::with_default(rec, || {
        let ex = Executor::new().unwrap();
        let waker: Rc<RefCell<Option<TaskWaker>>> = Rc::default();
        let w = waker.clone();
        let worker = ex
            .build_task()
            .name("worker")
            .priority(Priority::Normal)
            .spawn(move |cx| {
                *w.borrow_mut() = Some(cx.waker());
                cx.yield_now()?;
                cx.sleep(Duration::from_millis(1))?;
                cx.park()?;
                Ok::<_, std::io::Error>(())
            });
        let waker_task = ex.spawn(Priority::Low, move |cx| {
            cx.sleep(Duration::from_millis(5))?;
            waker.borrow().as_ref().unwrap().wake();
            Ok::<_, std::io::Error>(())
        });
        ex.run_until_idle().unwrap();
        worker.join().unwrap().unwrap();
        waker_task.join().unwrap().unwrap();
    });
    let log = log.lock().unwrap().clone();
    let (span, fields) = log
        .iter()
        .find_map(|r| match r {
            Rec::NewSpan { id, fields } if fields.contains("name=worker") => Some((*id, fields)),
            _ => None,
        })
        .expect("a span for the named task");
    assert!(
        fields.contains("priority=Normal") && fields.contains("id="),
        "{fields}"
    );
    let mine: Vec<&Rec> = log
        .iter()
        .filter(|r| match r {
            Rec::Enter(i) | Rec::Exit(i) => *i == span,
            Rec::Event { span: s, .. } => *s == span,
            _ => false,
        })
        .collect();
    let text: Vec<String> = mine
        .iter()
        .map(|r| match r {
            Rec::Enter(_) => "enter".to_string(),
            Rec::Exit(_) => "exit-span".to_string(),
            Rec::Event { text, .. } => text.trim().to_string(),
            _ => unreachable!(),
        })
        .collect();
    let expected = [
        "message=launch",
        "enter",
        "message=suspend reason=yield",
        "exit-span",
        "message=resume",
        "enter",
        "message=suspend reason=sleep",
        "exit-span",
        "message=resume",
        "enter",
        "message=suspend reason=park",
        "exit-span",
        "message=resume",
        "enter",
        "message=exit",
        "exit-span",
    ];
    assert_eq!(text, expected, "{log:#?}");
    // Two tasks, two spans; every enter has its exit.
    let spans = log
        .iter()
        .filter(|r| matches!(r, Rec::NewSpan { .. }))
        .count();
    assert_eq!(spans, 2);
    let enters = log.iter().filter(|r| matches!(r, Rec::Enter(_))).count();
    let exits = log.iter().filter(|r| matches!(r, Rec::Exit(_))).count();
    assert_eq!(enters, exits);
}

#[test]
fn without_a_subscriber_tasks_run_as_usual() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ex = Executor::new().unwrap();
    let hs: Vec<_> = (0..100)
        .map(|i| {
            ex.spawn(Priority::Normal, move |cx| {
                cx.yield_now()?;
                Ok::<_, std::io::Error>(i)
            })
        })
        .collect();
    ex.run_until_idle().unwrap();
    let sum: i32 = hs.into_iter().map(|h| h.join().unwrap().unwrap()).sum();
    assert_eq!(sum, 4950);
}
