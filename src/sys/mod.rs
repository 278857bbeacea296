//! Raw FFI to the C core: the bindgen output and the hand-written pieces
//! bindgen cannot produce.
//!
//! # Invariants
//!
//! * `bindings.rs` is generated from `csrc/include/monad_async.h` (see its
//!   header comment for how to regenerate it) and never edited by hand. It
//!   is included here rather than declared as a module so that `rustfmt`
//!   never reformats it.
//! * bindgen maps every C `_Atomic` field to a plain integer or pointer;
//!   [`atomics`] gives the atomic view of each such field. Access those
//!   fields only through [`atomics`], never through the plain field.
//! * The C `static inline` helpers of `monad_async/result.h` have no symbol
//!   to link against; [`monad_async_make_success`],
//!   [`monad_async_make_failure`] and [`monad_async_is_failure`] re-implement
//!   them.
//! * Enums are newtypes over the C integer (bit-flag enums support `|` and
//!   `&`), so any value the C side stores is a valid Rust value.
//!
//! Nothing here is safe to call without reading the C header docs, which
//! are the behaviour contract; the safe API is in [`crate::executor`] and
//! [`crate::task`].
//!
//! # Example
//!
//! ```
//! use monad_async::sys;
//!
//! // SAFETY: monad_async_ticks_now has no preconditions.
//! let r = unsafe { sys::monad_async_ticks_now() };
//! assert!(!sys::monad_async_is_failure(r));
//! ```

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    rustdoc::all,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks
)]
mod bindings {
    include!("bindings.rs");
}

pub use bindings::*;

pub mod atomics;

/// A successful result carrying `value`: C's `monad_async_make_success`.
///
/// ```
/// let r = monad_async::sys::monad_async_make_success(7);
/// assert_eq!((r.value, r.error), (7, 0));
/// ```
#[inline]
pub const fn monad_async_make_success(value: isize) -> monad_async_result {
    monad_async_result { value, error: 0 }
}

/// A failed result carrying the errno value `error` (which must be > 0):
/// C's `monad_async_make_failure`.
///
/// ```
/// let r = monad_async::sys::monad_async_make_failure(libc::EINVAL);
/// assert_eq!((r.value, r.error), (0, libc::EINVAL));
/// ```
#[inline]
pub const fn monad_async_make_failure(error: libc::c_int) -> monad_async_result {
    monad_async_result { value: 0, error }
}

/// True when `r` is a failure: C's `monad_async_is_failure`.
///
/// ```
/// use monad_async::sys::*;
/// assert!(monad_async_is_failure(monad_async_make_failure(libc::EBUSY)));
/// assert!(!monad_async_is_failure(monad_async_make_success(0)));
/// ```
#[inline]
pub const fn monad_async_is_failure(r: monad_async_result) -> bool {
    r.error != 0
}
