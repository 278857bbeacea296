//! The I/O floor: a plain io_uring (the `io-uring` crate, no executor)
//! made like the executor's ring, with SINGLE_ISSUER and DEFER_TASKRUN
//! where the kernel has them. Shared by the I/O bench files with `#[path]`.

#![allow(dead_code)]

use io_uring::IoUring;

/// A ring of `entries` with the executor's setup flags (falling back to
/// none on a kernel before 6.1, as the executor does).
pub fn ring(entries: u32) -> IoUring {
    ring_cq(entries, None)
}

/// [`ring`] with a completion queue of `cq` entries (IORING_SETUP_CQSIZE),
/// as the executor sizes its own for the work in flight.
pub fn ring_cq(entries: u32, cq: Option<u32>) -> IoUring {
    let build = |flags: bool| {
        let mut b = IoUring::builder();
        if flags {
            b.setup_single_issuer().setup_defer_taskrun();
        }
        if let Some(cq) = cq {
            b.setup_cqsize(cq);
        }
        b.build(entries)
    };
    build(true).or_else(|_| build(false)).expect("io_uring")
}

/// A 64-bit xorshift: cheap random block numbers, the same sequence for
/// every contender.
pub struct XorShift(pub u64);

impl XorShift {
    #[inline]
    pub fn next_below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n
    }
}
