//! A gate that holds threads until it is opened, counting those that have
//! reached it. Shared by tests (through `tests/common`) and by the pool
//! bench (with `#[path]`).
//!
//! # Invariants
//!
//! * [`Gate::hold`] counts its caller in before it waits, so once
//!   [`Gate::wait_entered`] has seen `n`, `n` holders are inside (or past)
//!   the gate.
//! * A holder returns only after [`Gate::open`]; the gate never closes
//!   again. Opening is a release store that holders load with acquire, so
//!   what the opener wrote before opening is visible to every holder after.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Holds threads until opened; see the module docs.
///
/// ```ignore
/// let gate = Gate::new();
/// let g = Arc::clone(&gate);
/// let t = std::thread::spawn(move || g.hold(std::hint::spin_loop));
/// gate.wait_entered(1, std::thread::yield_now);
/// gate.open();
/// t.join().unwrap();
/// ```
pub struct Gate {
    open: AtomicBool,
    entered: AtomicUsize,
}

impl Gate {
    /// A closed gate nobody has entered.
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate {
            open: AtomicBool::new(false),
            entered: AtomicUsize::new(0),
        })
    }

    /// Counts the caller in, then waits until the gate is open, calling
    /// `pause` between looks (a spin hint, a yield, a sleep).
    pub fn hold(&self, pause: impl Fn()) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        while !self.open.load(Ordering::Acquire) {
            pause();
        }
    }

    /// Lets every holder, present and future, through.
    pub fn open(&self) {
        self.open.store(true, Ordering::Release);
    }

    /// Waits until `n` holders have entered, calling `pause` between
    /// looks.
    pub fn wait_entered(&self, n: usize, pause: impl Fn()) {
        while self.entered.load(Ordering::SeqCst) < n {
            pause();
        }
    }
}
