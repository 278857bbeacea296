//! C objects that belong to an executor's ring (buffer pools, buffer
//! rings): made on the executor's thread, and freed by whichever comes
//! first, their Rust owner's drop or the executor's destroy.
//!
//! Invariants: `raw` is valid exactly while `alive` is true; the executor
//! clears `alive` when its destroy frees the object (see
//! `Executor::raw_with_liveness`); everything here runs on the executor's
//! thread (the owners are neither `Send` nor `Sync`), so the public head
//! the C side keeps is never written while it is read here.

use crate::error::check;
use crate::executor::Executor;
use crate::sys;
use std::cell::Cell;
use std::io;
use std::ptr;
use std::rc::Rc;

/// A C object of type `H` (its public head) owned by an executor's ring.
pub(crate) struct Registered<H> {
    raw: *mut H,
    alive: Rc<Cell<bool>>,
    /// Frees the object; called by drop while it is alive.
    destroy: unsafe extern "C" fn(*mut H) -> sys::monad_async_result,
}

impl<H: Copy> Registered<H> {
    /// Makes the object with `create(executor, out)`, tied to `ex`'s
    /// lifetime.
    pub(crate) fn create(
        ex: &Executor,
        create: impl FnOnce(sys::monad_async_executor, &mut *mut H) -> sys::monad_async_result,
        destroy: unsafe extern "C" fn(*mut H) -> sys::monad_async_result,
    ) -> io::Result<Registered<H>> {
        let (ex, alive) = ex.raw_with_liveness();
        let mut raw = ptr::null_mut();
        check(create(ex, &mut raw))?;
        Ok(Registered {
            raw,
            alive,
            destroy,
        })
    }

    /// The public head, while the object is alive.
    pub(crate) fn head(&self) -> Option<H> {
        // SAFETY: alive, so not freed; written only on this thread, which
        // is not inside a C call now.
        self.alive.get().then(|| unsafe { self.raw.read() })
    }

    /// The C handle, while the object is alive.
    pub(crate) fn raw(&self) -> Option<*mut H> {
        self.alive.get().then_some(self.raw)
    }
}

impl<H> Drop for Registered<H> {
    fn drop(&mut self) {
        if self.alive.get() {
            // SAFETY: alive, on its executor's thread. Borrowers (claimed
            // or received buffers) borrow the owner, so none is out unless
            // one was leaked; then destroy refuses (EBUSY) and the
            // executor frees the object when it goes.
            let _ = unsafe { (self.destroy)(self.raw) };
        }
    }
}
