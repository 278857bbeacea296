//! Latency histograms: how long tasks waited to run, per CPU priority.
//!
//! This is how a service checks the priority promise in production: a
//! High task's wake-ups should wait a slice at most, whatever Low work
//! does. The executor counts two latencies as each slice starts, into
//! fixed power-of-two buckets (no allocation, a few instructions):
//!
//! * **launch**: from the spawn to the task's first slice;
//! * **resume**: from the wake that ended a wait (a wake of a park, a
//!   join or a lock, an I/O completion, a timer, a cancel) to the slice
//!   that resumes the task. The wake's time is the executor's last time
//!   stamp before it: the end of the previous slice, or the ring pump or
//!   wait that reaped the completion (so a wake by another task counts
//!   from the start of the waker's slice, and an I/O completion from when
//!   the executor reaped it: how long the kernel held it before is not
//!   seen). A yield is not a wake.
//!
//! # Invariants
//!
//! * Counted only with time tracking on (the default): an executor built
//!   with [`time_tracking(false)`](crate::ExecutorBuilder::time_tracking)
//!   has empty histograms.
//! * Bucket `b` holds latencies of `[2^b, 2^(b+1))` CPU ticks (bucket 0
//!   also 0 ticks); the last bucket holds everything from `2^31` ticks
//!   (about a second). Bounds are reported as [`Duration`]s converted with
//!   [`ticks_per_second`](crate::ticks_per_second), so a quantile is known
//!   to within a factor of two: read them as "at most".
//!
//! ```
//! use monad_async::{Executor, Priority};
//! use std::time::Duration;
//!
//! let ex = Executor::new()?;
//! for _ in 0..10 {
//!     ex.spawn(Priority::High, |cx| cx.sleep(Duration::from_millis(1)));
//! }
//! ex.run_until_idle()?;
//! let high = ex.stats().latency.resume(Priority::High);
//! assert_eq!(high.count(), 10);
//! println!("High wake-ups: {high}"); // n=10 p50<=... p99<=... max<=...
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::sys;
use crate::Priority;
use std::fmt;
use std::time::Duration;

const BUCKETS: usize = sys::MONAD_ASYNC_LATENCY_BUCKETS as usize;

/// One latency histogram: counts in power-of-two buckets of CPU ticks.
///
/// ```
/// use monad_async::{Executor, Priority};
/// let ex = Executor::new()?;
/// ex.spawn(Priority::Normal, |_cx| ()).join().unwrap();
/// let h = ex.stats().latency.launch(Priority::Normal);
/// assert_eq!(h.count(), 1);
/// assert!(h.quantile(0.5).unwrap() < std::time::Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Histogram {
    counts: [u64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
        }
    }
}

impl Histogram {
    /// How many buckets a histogram has.
    pub const BUCKETS: usize = BUCKETS;

    /// The number of latencies counted.
    ///
    /// ```
    /// let h = monad_async::Histogram::default();
    /// assert_eq!(h.count(), 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The counts, bucket by bucket (see [`bounds`](Histogram::bounds)).
    ///
    /// ```
    /// let h = monad_async::Histogram::default();
    /// assert_eq!(h.counts().len(), monad_async::Histogram::BUCKETS);
    /// ```
    pub fn counts(&self) -> &[u64; BUCKETS] {
        &self.counts
    }

    /// Bucket `b`'s bounds: it counts latencies `>= lower` and `< upper`
    /// (no upper bound for the last bucket).
    ///
    /// # Panics
    ///
    /// If `b >= Histogram::BUCKETS`.
    ///
    /// ```
    /// use monad_async::Histogram;
    /// let (lo, hi) = Histogram::bounds(10);
    /// assert!(lo < hi.unwrap());
    /// assert_eq!(Histogram::bounds(Histogram::BUCKETS - 1).1, None);
    /// ```
    pub fn bounds(b: usize) -> (Duration, Option<Duration>) {
        assert!(b < BUCKETS, "bucket {b} of {BUCKETS}");
        let lower = if b == 0 { 0 } else { 1u64 << b };
        let upper = (b + 1 < BUCKETS).then(|| crate::ticks::ticks_to_duration(1u64 << (b + 1)));
        (crate::ticks::ticks_to_duration(lower), upper)
    }

    /// At most how long the `q`-quantile waited (`q` in `0.0..=1.0`): the
    /// upper bound of the bucket that holds it (the last bucket's lower
    /// bound if it is there). `None` when nothing was counted.
    ///
    /// ```
    /// let h = monad_async::Histogram::default();
    /// assert_eq!(h.quantile(0.99), None);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lower, upper) = Histogram::bounds(b);
                return Some(upper.unwrap_or(lower));
            }
        }
        None
    }

    /// At most how long the longest wait was (see
    /// [`quantile`](Histogram::quantile)).
    ///
    /// ```
    /// let h = monad_async::Histogram::default();
    /// assert_eq!(h.max(), None);
    /// ```
    pub fn max(&self) -> Option<Duration> {
        self.quantile(1.0)
    }

    fn from_sys(c: &[u64; BUCKETS]) -> Histogram {
        Histogram { counts: *c }
    }
}

impl fmt::Display for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.count();
        if n == 0 {
            return f.write_str("n=0");
        }
        let d = |q| {
            self.quantile(q)
                .map(|d| format!("{d:.1?}"))
                .unwrap_or_default()
        };
        write!(f, "n={n} p50<={} p99<={} max<={}", d(0.5), d(0.99), d(1.0))
    }
}

/// An executor's launch and resume latency histograms, per CPU priority;
/// in [`ExecutorStats::latency`](crate::ExecutorStats::latency) and
/// [`Dump::latency`](crate::Dump::latency).
///
/// ```
/// use monad_async::{Executor, Priority};
/// let ex = Executor::new()?;
/// ex.spawn(Priority::Low, |cx| cx.yield_now());
/// ex.run_until_idle()?;
/// let l = ex.stats().latency;
/// assert_eq!(l.launch(Priority::Low).count(), 1);
/// assert_eq!(l.resume(Priority::Low).count(), 0); // a yield is not a wake
/// println!("{l}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LatencyStats {
    launch: [Histogram; 3],
    resume: [Histogram; 3],
}

impl LatencyStats {
    /// Spawn to first slice, for tasks of `priority`.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// assert_eq!(ex.stats().latency.launch(Priority::High).count(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn launch(&self, priority: Priority) -> Histogram {
        self.launch[priority.index()]
    }

    /// Wake to resuming slice, for tasks of `priority`.
    ///
    /// ```
    /// use monad_async::{Executor, Priority};
    /// let ex = Executor::new()?;
    /// assert_eq!(ex.stats().latency.resume(Priority::High).count(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn resume(&self, priority: Priority) -> Histogram {
        self.resume[priority.index()]
    }

    pub(crate) fn from_sys(l: &sys::monad_async_executor_latency) -> LatencyStats {
        LatencyStats {
            launch: [0, 1, 2].map(|p| Histogram::from_sys(&l.launch[p])),
            resume: [0, 1, 2].map(|p| Histogram::from_sys(&l.resume[p])),
        }
    }
}

impl fmt::Display for LatencyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in Priority::ALL {
            writeln!(
                f,
                "{:<6} launch {}; resume {}",
                format!("{p:?}"),
                self.launch(p),
                self.resume(p)
            )?;
        }
        Ok(())
    }
}
