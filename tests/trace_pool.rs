//! The `tracing` feature on a thread pool: each pool task is a span too,
//! entered on the worker that runs it (a global subscriber, since the
//! workers are other threads). Run with `cargo test --features tracing
//! --test trace_pool`.
#![cfg(feature = "tracing")]

use monad_async::{Priority, Switcher, ThreadPool};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Debug, Clone, PartialEq)]
enum Rec {
    NewSpan { id: u64, fields: String },
    Enter(u64),
    Exit(u64),
    Event { span: u64, text: String },
}

#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    log: Arc<Mutex<Vec<Rec>>>,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!("{}={} ", field.name(), value));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut f = Fields(String::new());
        attrs.record(&mut f);
        self.log
            .lock()
            .unwrap()
            .push(Rec::NewSpan { id, fields: f.0 });
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields(String::new());
        event.record(&mut f);
        let span = event.parent().map_or(0, |id| id.into_u64());
        self.log
            .lock()
            .unwrap()
            .push(Rec::Event { span, text: f.0 });
    }
    fn enter(&self, id: &Id) {
        self.log.lock().unwrap().push(Rec::Enter(id.into_u64()));
    }
    fn exit(&self, id: &Id) {
        self.log.lock().unwrap().push(Rec::Exit(id.into_u64()));
    }
}

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
