//! `tracing` integration (feature `tracing`): a span per task, entered
//! for each slice it runs.
//!
//! The C core's trace hook (compiled in by this feature) calls [`hook`]
//! at the start and the end of every slice. At a task's launch the hook
//! makes its span, `task` at INFO level with the task's `id`, `name` and
//! `priority`, and emits a `launch` event in it; at each later slice's
//! start it enters the span and emits `resume`; at each slice's end it
//! emits `suspend` with the `reason` (`yield`, `sleep`, `park`, `io`
//! with the operation, ...), exits the span, and at the work's end emits
//! `exit` and drops the span. So a subscriber sees every task as a span
//! whose enter/exit pairs are its slices: time inside is CPU time on the
//! executor, and the gaps are waits.
//!
//! # Invariants
//!
//! * Everything happens on the executor's thread, between its steps:
//!   the span lives in the task's slot and only the hook touches it.
//! * Without the feature no hook is compiled into the C core: the run
//!   loop is the same instruction for instruction.
//! * Spans are made for the tasks of [`Executor`](crate::Executor)s and
//!   of [`ThreadPool`](crate::ThreadPool)s (each worker's executor has
//!   the hook).

use crate::sys;
use crate::task::Slot;
use std::io;

/// Sets the hook on `ex`.
///
/// # Safety
/// `ex` is a live executor of this crate, on its thread, not running.
pub(crate) unsafe fn install(ex: sys::monad_async_executor) -> io::Result<()> {
    // SAFETY: per the contract.
    crate::error::check(unsafe {
        sys::monad_async_executor_set_trace_hook(ex, Some(hook), std::ptr::null_mut())
    })
    .map(drop)
}

fn reason(detail: u32, opcode: i32) -> &'static str {
    use sys::monad_async_task_activity as A;
    match detail {
        x if x == A::MONAD_ASYNC_TASK_ACTIVITY_RUNNABLE.0 => "yield",
        x if x == A::MONAD_ASYNC_TASK_ACTIVITY_SLEEPING.0 => "sleep",
        x if x == A::MONAD_ASYNC_TASK_ACTIVITY_PARKED.0 => "park",
        x if x == A::MONAD_ASYNC_TASK_ACTIVITY_IO.0 => match opcode {
            27 => "io: recv",
            26 => "io: send",
            13 => "io: accept",
            16 => "io: connect",
            22 => "io: read",
            23 => "io: write",
            6 => "io: poll",
            _ => "io",
        },
        x if x == A::MONAD_ASYNC_TASK_ACTIVITY_IO_QUEUED.0 => "io queued",
        x if x == A::MONAD_ASYNC_TASK_ACTIVITY_BUFFER.0 => "buffer",
        x if x == A::MONAD_ASYNC_TASK_ACTIVITY_EXITING.0 => "exiting",
        _ => "other",
    }
}

/// The trace hook: see the module docs.
unsafe extern "C" fn hook(
    _arg: *mut std::ffi::c_void,
    task: sys::monad_async_task,
    event: u32,
    detail: u32,
    opcode: i32,
) {
    // SAFETY: a live task of this executor.
    if unsafe { crate::dump::is_remote_dump_task(task) } {
        return; // a thread pool's dump task: no slot, no span
    }
    // A panic must not cross into C: a subscriber that panics aborts
    // the process here rather than unwinding through the run loop.
    let _abort = AbortOnUnwind;
    // SAFETY: every task of this crate's executors carries a slot; its
    // work is live for both events (the end of its last slice comes
    // before its exit is recorded), and only this hook, on this thread,
    // touches the span.
    let slot = unsafe { Slot::of(task) };
    // SAFETY: as above.
    let span = unsafe { &mut *slot.span.get() };
    if event == sys::monad_async_trace_event::MONAD_ASYNC_TRACE_SLICE_BEGIN.0 {
        if detail == 1 || span.is_none() {
            // SAFETY: as above: the slot is held by its live work.
            let name = unsafe { slot.name() };
            // SAFETY: `task` is live (above).
            let priority = crate::Priority::from_sys(unsafe { (*task).priority.cpu });
            let s = tracing::info_span!(
                "task",
                id = slot.id(),
                name = name.unwrap_or(""),
                priority = ?priority
            );
            tracing::trace!(parent: &s, "launch");
            *span = Some(s);
        } else if let Some(s) = span.as_ref().filter(|s| !s.is_disabled()) {
            tracing::trace!(parent: s, "resume");
        }
        if let Some(s) = span.as_ref().filter(|s| !s.is_disabled()) {
            s.with_subscriber(|(id, d)| d.enter(id));
        }
    } else if let Some(s) = span.as_ref() {
        if s.is_disabled() {
            // No subscriber wanted it: nothing to tell, but the span goes
            // with its work.
            if detail == sys::MONAD_ASYNC_TRACE_EXITED {
                *span = None;
            }
            std::mem::forget(_abort);
            return;
        }
        if detail == sys::MONAD_ASYNC_TRACE_EXITED {
            tracing::trace!(parent: s, "exit");
            s.with_subscriber(|(id, d)| d.exit(id));
            *span = None;
        } else {
            tracing::trace!(parent: s, reason = reason(detail, opcode), "suspend");
            s.with_subscriber(|(id, d)| d.exit(id));
        }
    }
    std::mem::forget(_abort);
}

/// Aborts if dropped while unwinding (a panic in a subscriber).
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("monad-async: a tracing subscriber panicked inside the trace hook");
        std::process::abort();
    }
}
