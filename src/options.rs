//! The options an [`ExecutorBuilder`] and a [`ThreadPoolBuilder`] share:
//! the ring's sizes (submission queue, completion queue, in-flight
//! guard), time tracking, the task stack size and the context switcher. Both builders hold one [`Options`], generate their setters for
//! it with [`setters!`] (each builder keeps its own docs), and turn it into
//! C objects with the methods here.
//!
//! # Invariants
//!
//! * An `Options` is plain data: it owns nothing, and every value it can
//!   hold is valid (0 ring entries means no ring, 0 stack bytes, CQ
//!   entries or in-flight limit the C default), so the setters check
//!   nothing and `build` reports what C refuses.
//! * [`Options::create_switcher`] returns a switcher with no users, owned
//!   by the caller, who destroys it after the last task using it (or at
//!   once when building fails).
//!
//! [`ExecutorBuilder`]: crate::ExecutorBuilder
//! [`ThreadPoolBuilder`]: crate::ThreadPoolBuilder

use crate::error::check;
use crate::executor::Switcher;
use crate::sys;
use std::fmt;
use std::io;
use std::ptr;

/// The shared builder options; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// Submission queue entries of each executor's io_uring; 0: no ring.
    pub(crate) ring_entries: u32,
    /// Completion queue entries; 0: the C default.
    pub(crate) cq_entries: u32,
    /// The in-flight guard; 0: the C default.
    pub(crate) io_inflight_limit: u32,
    /// Whether executors take tick stamps.
    pub(crate) time_tracking: bool,
    /// Usable stack bytes of each task; 0: the C default.
    pub(crate) stack_size: usize,
    /// The context switcher every task uses.
    pub(crate) switcher: Switcher,
    /// Whether an idle executor may spin before it sleeps (executors
    /// only: a pool's workers spin by the pool's own rule).
    pub(crate) idle_spin: bool,
}

impl Options {
    /// Time tracking on, the C default stack size, and the given ring size
    /// and switcher (the two defaults that differ between the builders).
    pub(crate) const fn new(ring_entries: u32, switcher: Switcher) -> Options {
        Options {
            ring_entries,
            cq_entries: 0,
            io_inflight_limit: 0,
            time_tracking: true,
            stack_size: 0,
            switcher,
            idle_spin: true,
        }
    }

    /// Creates the context switcher chosen; the caller owns it.
    ///
    /// # Errors
    ///
    /// The C error: `ENOMEM`; `ENOTSUP` for [`Switcher::Asm`] and
    /// [`Switcher::AsmFpControl`] on an architecture without them.
    pub(crate) fn create_switcher(&self) -> io::Result<sys::monad_async_context_switcher> {
        let mut sw: sys::monad_async_context_switcher = ptr::null_mut();
        // SAFETY: `sw` is a valid out-pointer; `attr` lives across the call.
        check(unsafe {
            match self.switcher {
                Switcher::Asm => {
                    // No FP control words: Rust code only runs with their
                    // defaults (Switcher::Asm's docs).
                    let attr = sys::monad_async_context_switcher_attr {
                        flags: sys::monad_async_context_switcher_flag::MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL.0,
                        reserved: [0; 3],
                    };
                    sys::monad_async_context_switcher_asm_create_with_attr(&mut sw, &attr)
                }
                Switcher::AsmFpControl => sys::monad_async_context_switcher_asm_create(&mut sw),
                Switcher::Sjlj => sys::monad_async_context_switcher_sjlj_create(&mut sw),
                Switcher::None => sys::monad_async_context_switcher_none_create(&mut sw),
            }
        })?;
        Ok(sw)
    }

    /// The C executor attributes these options ask for.
    pub(crate) fn executor_attr(&self) -> sys::monad_async_executor_attr {
        sys::monad_async_executor_attr {
            io_uring_ring: sys::monad_async_executor_attr__bindgen_ty_1 {
                entries: self.ring_entries,
                flags: 0,
            },
            flags: if self.time_tracking {
                0
            } else {
                sys::monad_async_executor_flag::MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING.0
            } | if self.idle_spin {
                0
            } else {
                sys::monad_async_executor_flag::MONAD_ASYNC_EXECUTOR_FLAG_NO_SPIN.0
            },
            io_inflight_limit: self.io_inflight_limit,
            io_cq_entries: self.cq_entries,
            reserved: [0; 5],
        }
    }

    /// The error to return when creating an executor with these options
    /// failed with `err`: explained (a [`RingSetupError`]) when a ring was
    /// asked for, as it is otherwise.
    ///
    /// [`RingSetupError`]: crate::RingSetupError
    pub(crate) fn creation_error(&self, err: io::Error) -> io::Error {
        match err.raw_os_error() {
            Some(code) if self.ring_entries > 0 => {
                crate::error::RingSetupError::into_io_error(code)
            }
            _ => err,
        }
    }

    /// Adds the options to a builder's `Debug` output, one field each, as
    /// if they were the builder's own fields.
    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("ring_entries", &self.ring_entries)
            .field("cq_entries", &self.cq_entries)
            .field("io_inflight_limit", &self.io_inflight_limit)
            .field("time_tracking", &self.time_tracking)
            .field("stack_size", &self.stack_size)
            .field("switcher", &self.switcher);
    }
}

/// Generates a builder's by-value setters of its `options` field, one per
/// `name(arg: Type);` line, each with the docs (and attributes) written
/// above it, so that each builder documents the option in its own terms.
macro_rules! setters {
    ($($(#[$attr:meta])* $name:ident($arg:ident: $ty:ty);)+) => {$(
        $(#[$attr])*
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.options.$name = $arg;
            self
        }
    )+};
}
pub(crate) use setters;
