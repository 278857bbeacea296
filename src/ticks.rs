//! The CPU tick counter every time stamp uses, and tick-to-time conversion.
//!
//! # Invariants
//!
//! * Ticks come from `monad_async_ticks_now` (the invariant TSC on x86-64,
//!   the virtual counter on aarch64): monotonic on one machine, cheap, and
//!   not in nanoseconds.
//! * The frequency is calibrated once by the C side; this module caches it
//!   in a process-wide atomic so that conversions cost no FFI call.
//! * A tick figure of zero means "not stamped" (time tracking off, or the
//!   event has not happened); differences saturate at zero.

use crate::sys;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static TICKS_PER_SECOND: AtomicU64 = AtomicU64::new(0);

/// Reads the CPU tick counter now.
///
/// ```
/// let a = monad_async::ticks_now();
/// let b = monad_async::ticks_now();
/// assert!(b >= a);
/// ```
#[inline]
pub fn ticks_now() -> u64 {
    // SAFETY: monad_async_ticks_now has no preconditions and never fails.
    let r = unsafe { sys::monad_async_ticks_now() };
    r.value as u64
}

/// The tick counter's frequency in ticks per second.
///
/// The first call in the process calibrates it (a few milliseconds);
/// later calls return the cached figure.
///
/// ```
/// assert!(monad_async::ticks_per_second() > 1_000_000);
/// ```
#[inline]
pub fn ticks_per_second() -> u64 {
    let cached = TICKS_PER_SECOND.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: no preconditions; thread-safe per the header.
    let r = unsafe { sys::monad_async_ticks_per_second() };
    let tps = (r.value as u64).max(1);
    TICKS_PER_SECOND.store(tps, Ordering::Relaxed);
    tps
}

/// Converts a tick count to a [`Duration`].
#[inline]
pub(crate) fn ticks_to_duration(ticks: u64) -> Duration {
    if ticks == 0 {
        return Duration::ZERO;
    }
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_second());
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// `to - from` as a [`Duration`], zero when either stamp is missing (0)
/// or they are out of order.
#[inline]
pub(crate) fn span(from: u64, to: u64) -> Duration {
    if from == 0 || to == 0 {
        return Duration::ZERO;
    }
    ticks_to_duration(to.saturating_sub(from))
}
