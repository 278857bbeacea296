//! A `tracing` subscriber that records every span, enter, exit and event
//! it sees, in order, for the trace tests to compare (`trace_spans`,
//! `trace_pool`). Only with the `tracing` feature.
//!
//! # Invariants
//!
//! * Span ids are 1, 2, 3, ... in creation order; an event outside any
//!   span records span 0.
//! * A field is recorded as `name=value ` (debug formatting for all but
//!   strings), in the order the callsite gives them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One thing the subscriber saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Rec {
    NewSpan { id: u64, fields: String },
    Enter(u64),
    Exit(u64),
    Event { span: u64, text: String },
}

#[derive(Default)]
/// The subscriber: clone `log` before installing it to read the records.
pub struct Recorder {
    next: AtomicU64,
    pub log: Arc<Mutex<Vec<Rec>>>,
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
