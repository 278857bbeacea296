//! A tick stamp as the executor takes its own slice stamps: a bare read
//! of the tick counter (`rdtsc` on x86-64, `cntvct_el0` on aarch64),
//! without the wait for earlier instructions that the public
//! `monad_async::ticks_now` adds (`lfence` before `rdtsc`) so that stamps
//! compare across threads. On the 2-vCPU KVM guest of `BENCHMARKS.md`
//! the bare read costs about 9.5 ns in a loop of back-to-back reads, the
//! ordered one about 19 ns: a floor or an interval measured with the
//! ordered read would carry the difference. Shared by the bench files
//! with `#[path]`; each uses what it needs.

#![allow(dead_code)]

/// The tick counter, read as the executor's slice stamps read it.
#[inline(always)]
pub fn bare_ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc reads a counter; it touches no memory and every
        // x86-64 CPU has it.
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: reads the virtual counter, which EL0 may read on Linux;
        // touches no memory.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
        v
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        monad_async::ticks_now()
    }
}

/// A span of [`bare_ticks`] as a `Duration`, at the rate the crate
/// calibrated (`monad_async::ticks_per_second`).
pub fn ticks_to_duration(ticks: u64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(ticks as f64 / monad_async::ticks_per_second() as f64)
}
