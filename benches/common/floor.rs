//! The floor every comparison is measured against: a bare register-switch
//! round trip through the library's own asm switch (`switch_<arch>.S`),
//! with no executor around it. Shared by the bench files with `#[path]`.

use std::ffi::c_void;

extern "C" {
    // Internal symbols of the C library (csrc/src/switch.h), linked in
    // through the crate's static library.
    fn monad_async_switch_nofp(save_sp: *mut *mut c_void, new_sp: *mut c_void);
    fn monad_async_switch_make_frame(
        top: *mut c_void,
        entry: extern "C" fn(*mut c_void),
        arg: *mut c_void,
        with_fp: i32,
    ) -> *mut c_void;
}

struct Pair {
    main_sp: *mut c_void,
    co_sp: *mut c_void,
}

extern "C" fn co_main(arg: *mut c_void) {
    let pair = arg.cast::<Pair>();
    loop {
        // SAFETY: `pair` outlives the coroutine (see SwitchFloor), and we
        // switch back to the stack that resumed us.
        unsafe { monad_async_switch_nofp(&mut (*pair).co_sp, (*pair).main_sp) };
    }
}

/// A coroutine on its own stack that does nothing but switch back.
pub struct SwitchFloor {
    pair: Box<Pair>,
    _stack: Vec<u128>,
}

impl SwitchFloor {
    pub fn new() -> Self {
        let mut stack = vec![0u128; 64 * 1024 / 16];
        let mut pair = Box::new(Pair {
            main_sp: std::ptr::null_mut(),
            co_sp: std::ptr::null_mut(),
        });
        // SAFETY: the frame is built inside `stack`, which lives as long
        // as the coroutine; the top is 16-byte aligned (u128 elements).
        unsafe {
            let top = stack.as_mut_ptr().add(stack.len()).cast::<c_void>();
            pair.co_sp =
                monad_async_switch_make_frame(top, co_main, (&mut *pair as *mut Pair).cast(), 0);
        }
        SwitchFloor {
            pair,
            _stack: stack,
        }
    }

    /// One round trip: into the coroutine and back.
    #[inline]
    pub fn round_trip(&mut self) {
        let p: *mut Pair = &mut *self.pair;
        // SAFETY: the coroutine's frame is valid and parked in co_main.
        unsafe { monad_async_switch_nofp(&mut (*p).main_sp, (*p).co_sp) };
    }
}
