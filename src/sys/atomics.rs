//! Atomic views of the C `_Atomic` fields of the public structs.
//!
//! bindgen maps `_Atomic(T)` to a plain `T` (rust-bindgen issue 2151), but
//! the C side reads and writes these fields atomically, possibly from other
//! threads; reading them as plain fields from Rust would be a data race.
//! Each function here takes a raw struct pointer and returns the field as
//! the matching `std::sync::atomic` type, computed with `addr_of!` so that
//! no reference to the (concurrently mutated) struct is ever created.
//!
//! # Invariants
//!
//! * `AtomicU32` and `AtomicPtr<T>` have the size and alignment of `u32` and
//!   `*mut T` (checked at compile time below), and the C side asserts that
//!   its atomics of those types are lock-free and plain-sized, so both
//!   languages agree on the representation.
//! * The offsets bindgen computed are checked against the C compiler's own
//!   figures (`monad_async_layout`) by `tests/sys_layout.rs`.
//!
//! # Example
//!
//! ```
//! use monad_async::sys::{self, atomics};
//! use std::sync::atomic::Ordering;
//!
//! let mut sw: sys::monad_async_context_switcher = std::ptr::null_mut();
//! let mut task: sys::monad_async_task = std::ptr::null_mut();
//! // SAFETY: out-pointers are valid; the task is destroyed before its switcher.
//! unsafe {
//!     assert_eq!(sys::monad_async_context_switcher_none_create(&mut sw).error, 0);
//!     assert_eq!(sys::monad_async_task_create(&mut task, sw, std::ptr::null()).error, 0);
//!     // A fresh task is not attached to anything.
//!     assert_eq!(atomics::task_state(task).load(Ordering::Acquire), 0);
//!     assert!(atomics::task_current_executor(task).load(Ordering::Acquire).is_null());
//!     assert_eq!(sys::monad_async_task_destroy(task).error, 0);
//!     assert_eq!(sys::monad_async_context_switcher_destroy(sw).error, 0);
//! }
//! ```

use super::{monad_async_executor_head, monad_async_task_head};
use std::mem::{align_of, size_of};
use std::ptr::addr_of;
use std::sync::atomic::{AtomicPtr, AtomicU32};

const _: () = {
    assert!(size_of::<AtomicU32>() == size_of::<u32>());
    assert!(align_of::<AtomicU32>() == align_of::<u32>());
    assert!(
        size_of::<AtomicPtr<monad_async_executor_head>>()
            == size_of::<*mut monad_async_executor_head>()
    );
    assert!(
        align_of::<AtomicPtr<monad_async_executor_head>>()
            == align_of::<*mut monad_async_executor_head>()
    );
    assert!(
        size_of::<AtomicPtr<monad_async_task_head>>() == size_of::<*mut monad_async_task_head>()
    );
};

/// `monad_async_task_head.state` (`_Atomic(uint32_t)`, bits of
/// `monad_async_task_state_flag`) as an [`AtomicU32`].
///
/// # Safety
///
/// `task` must point to a live task (created by `monad_async_task_create`
/// and not yet destroyed) for all of `'a`.
///
/// # Example
///
/// See the [module example](self).
#[inline]
pub unsafe fn task_state<'a>(task: *const monad_async_task_head) -> &'a AtomicU32 {
    // SAFETY: the caller guarantees `task` is live for 'a; addr_of! forms
    // the field address without a reference to the struct; the field is
    // C11 `_Atomic(uint32_t)`, with AtomicU32's size and alignment (checked
    // above), and C touches it only atomically.
    unsafe { &*addr_of!((*task).state).cast::<AtomicU32>() }
}

/// `monad_async_task_head.current_executor`
/// (`_Atomic(monad_async_executor)`) as an [`AtomicPtr`].
///
/// # Safety
///
/// `task` must point to a live task for all of `'a`.
///
/// # Example
///
/// See the [module example](self).
#[inline]
pub unsafe fn task_current_executor<'a>(
    task: *const monad_async_task_head,
) -> &'a AtomicPtr<monad_async_executor_head> {
    // SAFETY: as for task_state: a live field of pointer type that C
    // accesses only atomically, with AtomicPtr's size and alignment.
    unsafe { &*addr_of!((*task).current_executor).cast::<AtomicPtr<monad_async_executor_head>>() }
}

/// `monad_async_executor_head.current_task` (`_Atomic(monad_async_task)`)
/// as an [`AtomicPtr`].
///
/// # Safety
///
/// `ex` must point to a live executor (created by
/// `monad_async_executor_create` and not yet destroyed) for all of `'a`.
///
/// # Example
///
/// ```
/// use monad_async::sys::{self, atomics};
/// use std::sync::atomic::Ordering;
///
/// let mut ex: sys::monad_async_executor = std::ptr::null_mut();
/// // SAFETY: the out-pointer is valid; ex is destroyed on this thread.
/// unsafe {
///     assert_eq!(sys::monad_async_executor_create(&mut ex, std::ptr::null()).error, 0);
///     // Outside run no task is current.
///     assert!(atomics::executor_current_task(ex).load(Ordering::Relaxed).is_null());
///     assert_eq!(sys::monad_async_executor_destroy(ex).error, 0);
/// }
/// ```
#[inline]
pub unsafe fn executor_current_task<'a>(
    ex: *const monad_async_executor_head,
) -> &'a AtomicPtr<monad_async_task_head> {
    // SAFETY: as for task_state: a live field of pointer type that C
    // accesses only atomically, with AtomicPtr's size and alignment.
    unsafe { &*addr_of!((*ex).current_task).cast::<AtomicPtr<monad_async_task_head>>() }
}
