//! The async waiter of a slot: the [`Waker`] of a
//! [`JoinHandle`](crate::JoinHandle) being awaited.
//!
//! # Protocol
//!
//! The `WAKER` bit of the state word says who owns the `waker` field:
//!
//! * clear: the handle (only it sets the bit, and polls take
//!   `&mut JoinHandle`, so two polls never run at once, whichever threads
//!   they come from);
//! * set, before `DONE`: nobody may write it; the handle may read it (to
//!   compare wakers) and may take it back by clearing the bit, which
//!   succeeds only while `DONE` is clear;
//! * set when `DONE` went in: `finish` owns it, moves it out and wakes it.
//!
//! Every change of the bit is an atomic read-modify-write of the state
//! word, so the order between a poll and `finish` is the order of their
//! operations on that word:
//!
//! * a poll stores a waker, then sets `WAKER`: if `DONE` was already set,
//!   `finish` did not see the bit and the poll takes its waker back and
//!   returns the result; otherwise `finish` will see the bit;
//! * a poll with a different waker clears `WAKER` first: if `DONE` was
//!   already set, `finish` has taken (or is taking) the old waker and the
//!   poll returns the result without touching the field.
//!
//! So a waker is woken exactly once if the work ends while it is
//! registered, never lost between a poll's check and its registration, and
//! dropped exactly once: by `finish` (after waking it), by the poll that
//! replaces it, or by the handle's drop.
//!
//! `DONE` is set once per piece of work and `bind` resets the word, so a
//! `WAKER` bit left set after `DONE` (the waker moved out by `finish`)
//! means nothing.

use super::{Slot, DONE, EMPTY, WAKER};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::task::Waker;

impl Slot {
    /// The handle's poll: registers `waker` to be woken when the work is
    /// over, replacing a different one registered before. True if the work
    /// is over (nothing stays registered then; `DONE` has been observed
    /// with acquire ordering).
    ///
    /// # Safety
    /// The caller is the slot's handle.
    pub(crate) unsafe fn register_waker(&self, waker: &Waker) -> bool {
        let state = self.state.load(Ordering::Acquire);
        if state & DONE != 0 {
            return true;
        }
        if state & WAKER != 0 {
            // SAFETY: set before DONE: `finish` at most reads the field
            // (moving the value out copies bits; nothing writes them until
            // the handle registers again), so comparing is a read beside a
            // read.
            let same = unsafe { (*self.waker.get()).assume_init_ref().will_wake(waker) };
            if same {
                return false;
            }
            // SAFETY: we are the handle.
            match unsafe { self.unregister_waker() } {
                Some(old) => drop(old),
                None => return true,
            }
        }
        // SAFETY: WAKER is clear: the field is ours.
        unsafe { (*self.waker.get()).write(waker.clone()) };
        let prev = self.state.fetch_or(WAKER, Ordering::AcqRel);
        if prev & DONE != 0 {
            // `finish` ran before it could see the bit: take it back.
            // SAFETY: `finish` never saw WAKER, so the waker is still ours.
            drop(unsafe { (*self.waker.get()).assume_init_read() });
            return true;
        }
        false
    }

    /// Takes a registered waker back. `None` if the work finished first
    /// (then `finish` owns the waker, and `DONE` has been observed with
    /// acquire ordering).
    ///
    /// # Safety
    /// The caller is the slot's handle and saw `WAKER` set.
    pub(crate) unsafe fn unregister_waker(&self) -> Option<Waker> {
        let prev = self.state.fetch_and(!WAKER, Ordering::AcqRel);
        debug_assert!(prev & WAKER != 0);
        if prev & DONE != 0 {
            return None;
        }
        // SAFETY: we cleared WAKER before DONE: the waker is ours.
        Some(unsafe { (*self.waker.get()).assume_init_read() })
    }

    /// `finish`'s part: wakes the registered waker (moved out: dropped
    /// after the wake). A waker that panics is contained: this runs in the
    /// task's exit hook, under C.
    ///
    /// This is the one place where the executor side runs user code while
    /// it holds a slot: a waker may poll the handle, and drop it, before
    /// returning. That is sound: `DONE` is published, so the poll only
    /// takes the outcome, and after this call `finish` writes the state
    /// word only for a `JOINER`, which a handle being polled cannot have
    /// (a join holds the handle by value until it returns), so the plain
    /// update of [`release_handle`](super::release_handle) on the owner
    /// thread races with nothing.
    ///
    /// # Safety
    /// On the executor's thread, in `finish`, after the `DONE` update found
    /// `WAKER` set.
    #[cold]
    pub(super) unsafe fn wake_awaiter(&self) {
        // SAFETY: per the contract the waker is ours (module protocol).
        let waker = unsafe { (*self.waker.get()).assume_init_read() };
        let _ = panic::catch_unwind(AssertUnwindSafe(move || waker.wake()));
    }

    /// True when the outcome of finished work has been taken (a handle
    /// that returned `Ready` is spent): after `DONE`, the storage holds a
    /// value, a payload or "cancelled" until taken.
    ///
    /// # Safety
    /// `DONE` observed with acquire ordering, by the slot's handle.
    pub(crate) unsafe fn outcome_taken(&self) -> bool {
        // SAFETY: per the contract the storage is the handle's.
        unsafe { *self.kind.get() == EMPTY }
    }
}
