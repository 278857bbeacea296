//! Floating-point status hygiene at the hand-offs to the C switcher.
//!
//! On x86-64 the asm switcher saves and reloads the whole MXCSR register
//! on every switch (`stmxcsr` / `ldmxcsr`), its sticky exception flags
//! included. An `ldmxcsr` that *changes* MXCSR is slow (it costs about as
//! much as a whole spawn-run-complete on the machines we measured), so
//! once the executor's thread and a task disagree about a flag (one
//! inexact `f64` division on either side sets the precision flag, and it
//! stays set) every switch between them pays for it: a spawn-run-complete
//! took twice as long after a single division on the executor's thread.
//!
//! The Rust layer therefore clears the exception flags (MXCSR bits 0-5,
//! never the control bits: rounding, masks, FTZ/DAZ) wherever it hands
//! control to the C run loop or switcher: on entry to the run loop
//! ([`crate::Executor::run`], a join that drives the executor), when a
//! task's closure returns, and before a task suspends. Executor and tasks
//! then hold equal MXCSR values and every reload is a no-change.
//!
//! # Invariants
//!
//! * Only the status bits change. The System V x86-64 ABI makes them
//!   caller-saved (any call may change them), and Rust code cannot rely on
//!   them anyway: the compiler does not model floating-point exceptions.
//! * Elsewhere (aarch64) the switcher saves only FPCR, the control
//!   register; the status flags live in FPSR, so there is nothing to do.

/// Clears the floating-point exception flags of the calling thread, if
/// any is set. A read and a test when none is (the common case).
#[inline(always)]
pub(crate) fn clear() {
    #[cfg(target_arch = "x86_64")]
    {
        const STATUS: u32 = 0x3f;
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr stores MXCSR into the u32 we point it at, which
        // is valid, aligned and ours; it touches nothing else.
        unsafe {
            std::arch::asm!(
                "stmxcsr [{}]",
                in(reg) &mut csr,
                options(nostack, preserves_flags)
            );
        }
        if csr & STATUS != 0 {
            let clean = csr & !STATUS;
            // SAFETY: loads MXCSR from a valid u32 that differs from the
            // current value only in the sticky exception flags: rounding,
            // masks and FTZ/DAZ are unchanged, so no floating-point result
            // of any code changes.
            unsafe {
                std::arch::asm!(
                    "ldmxcsr [{}]",
                    in(reg) &clean,
                    options(nostack, preserves_flags, readonly)
                );
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::hint::black_box;

    fn mxcsr() -> u32 {
        let mut csr: u32 = 0;
        // SAFETY: as in `clear`.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
        csr
    }

    #[test]
    fn clears_the_flags_and_keeps_the_controls() {
        let before = mxcsr();
        black_box(black_box(1.0f64) / black_box(3.0f64)); // inexact
        assert_ne!(mxcsr() & 0x3f, 0, "an inexact division sets a flag");
        super::clear();
        assert_eq!(mxcsr(), before & !0x3f);
        super::clear(); // nothing set: no change
        assert_eq!(mxcsr(), before & !0x3f);
    }
}
