//! The `tracing` feature on a thread pool: each pool task is a span too,
//! entered on the worker that runs it (a global subscriber, since the
//! workers are other threads). Run with `cargo test --features tracing
//! --test trace_pool`.
#![cfg(feature = "tracing")]

use monad_async::{Priority, Switcher, ThreadPool};
use std::time::Duration;

#[path = "common/recorder.rs"]
mod recorder;
use recorder::{Rec, Recorder};

#[test]
fn pool_tasks_are_spans_entered_on_their_worker() {
    let rec = Recorder::default();
    let log = rec.log.clone();
    tracing::subscriber::set_global_default(rec).unwrap();
    let pool = ThreadPool::builder()
        .threads(2)
        .switcher(Switcher::Asm)
        .build()
        .unwrap();
    let hs: Vec<_> = (0..4)
        .map(|i| {
            pool.build_task()
                .name(format!("job-{i}"))
                .priority(Priority::Normal)
                .spawn(|cx| {
                    cx.sleep(Duration::from_millis(1))?;
                    cx.yield_now()
                })
        })
        .collect();
    for h in hs {
        h.join().unwrap().unwrap();
    }
    drop(pool);
    let log = log.lock().unwrap().clone();
    for i in 0..4 {
        let name = format!("name=job-{i} ");
        let span = log
            .iter()
            .find_map(|r| match r {
                Rec::NewSpan { id, fields } if fields.contains(&name) => Some(*id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no span for job-{i}: {log:#?}"));
        let events: Vec<String> = log
            .iter()
            .filter_map(|r| match r {
                Rec::Event { span: s, text } if *s == span => Some(text.trim().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            events,
            [
                "message=launch",
                "message=suspend reason=sleep",
                "message=resume",
                "message=suspend reason=yield",
                "message=resume",
                "message=exit"
            ],
            "job-{i}"
        );
        let enters = log.iter().filter(|r| **r == Rec::Enter(span)).count();
        let exits = log.iter().filter(|r| **r == Rec::Exit(span)).count();
        assert_eq!((enters, exits), (3, 3), "job-{i}");
    }
}
