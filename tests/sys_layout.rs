//! The Rust view of the C structs agrees with the C compiler's: sizes and
//! the offsets and sizes of every `_Atomic` field the atomic shims expose.

use monad_async::sys::{self, atomics};
use std::mem::{offset_of, size_of, size_of_val};
use std::ptr;
use std::sync::atomic::Ordering;

fn c_layout(item: sys::monad_async_layout_item) -> usize {
    // SAFETY: monad_async_layout has no preconditions.
    let r = unsafe { sys::monad_async_layout(item) };
    assert_eq!(r.error, 0, "monad_async_layout({item:?})");
    r.value as usize
}

#[test]
fn struct_sizes_match_c() {
    use sys::monad_async_layout_item as L;
    assert_eq!(
        size_of::<sys::monad_async_task_head>(),
        c_layout(L::MONAD_ASYNC_LAYOUT_TASK_SIZE)
    );
    assert_eq!(
        size_of::<sys::monad_async_executor_head>(),
        c_layout(L::MONAD_ASYNC_LAYOUT_EXECUTOR_SIZE)
    );
    assert_eq!(
        size_of::<sys::monad_async_result>(),
        c_layout(L::MONAD_ASYNC_LAYOUT_RESULT_SIZE)
    );
}

#[test]
fn atomic_field_offsets_and_sizes_match_c() {
    use sys::monad_async_layout_item as L;
    let task = std::mem::MaybeUninit::<sys::monad_async_task_head>::uninit();
    let ex = std::mem::MaybeUninit::<sys::monad_async_executor_head>::uninit();
    let (tp, ep) = (task.as_ptr(), ex.as_ptr());

    // Offsets as bindgen laid the structs out...
    assert_eq!(
        offset_of!(sys::monad_async_task_head, state),
        c_layout(L::MONAD_ASYNC_LAYOUT_TASK_STATE_OFFSET)
    );
    assert_eq!(
        offset_of!(sys::monad_async_task_head, current_executor),
        c_layout(L::MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_OFFSET)
    );
    assert_eq!(
        offset_of!(sys::monad_async_executor_head, current_task),
        c_layout(L::MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_OFFSET)
    );

    // ...and as the shims compute them, with the atomic types' sizes.
    // SAFETY: the shims only compute field addresses here (no access).
    let (state, cur_ex, cur_task) = unsafe {
        (
            atomics::task_state(tp),
            atomics::task_current_executor(tp),
            atomics::executor_current_task(ep),
        )
    };
    let off = |field: *const u8, base: *const u8| field as usize - base as usize;
    assert_eq!(
        off(ptr::from_ref(state).cast(), tp.cast()),
        c_layout(L::MONAD_ASYNC_LAYOUT_TASK_STATE_OFFSET)
    );
    assert_eq!(
        size_of_val(state),
        c_layout(L::MONAD_ASYNC_LAYOUT_TASK_STATE_SIZE)
    );
    assert_eq!(
        off(ptr::from_ref(cur_ex).cast(), tp.cast()),
        c_layout(L::MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_OFFSET)
    );
    assert_eq!(
        size_of_val(cur_ex),
        c_layout(L::MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_SIZE)
    );
    assert_eq!(
        off(ptr::from_ref(cur_task).cast(), ep.cast()),
        c_layout(L::MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_OFFSET)
    );
    assert_eq!(
        size_of_val(cur_task),
        c_layout(L::MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_SIZE)
    );
}

#[test]
fn unknown_layout_item_is_einval() {
    // SAFETY: no preconditions; any integer is a valid newtype value.
    let r =
        unsafe { sys::monad_async_layout(sys::monad_async_layout_item::MONAD_ASYNC_LAYOUT_COUNT) };
    assert_eq!(r.error, libc::EINVAL);
    assert_eq!(r.value, 0);
}

#[test]
fn atomic_shims_see_c_writes() {
    // Attach a task through the raw API and watch its state through the
    // shims: ATTACHED | PENDING_LAUNCH, then EXITED after a run.
    unsafe extern "C" fn work(_task: sys::monad_async_task) -> sys::monad_async_result {
        sys::monad_async_make_success(5)
    }
    let mut ex: sys::monad_async_executor = ptr::null_mut();
    let mut sw: sys::monad_async_context_switcher = ptr::null_mut();
    let mut task: sys::monad_async_task = ptr::null_mut();
    // SAFETY: valid out-pointers; objects destroyed in reverse order on
    // this thread.
    unsafe {
        assert_eq!(
            sys::monad_async_executor_create(&mut ex, ptr::null()).error,
            0
        );
        assert_eq!(
            sys::monad_async_context_switcher_asm_create(&mut sw).error,
            0
        );
        assert_eq!(
            sys::monad_async_task_create(&mut task, sw, ptr::null()).error,
            0
        );
        (*task).user_code = Some(work);
        assert_eq!(
            sys::monad_async_task_attach(ex, task, ptr::null_mut()).error,
            0
        );

        use sys::monad_async_task_state_flag as S;
        let state = atomics::task_state(task).load(Ordering::Acquire);
        assert_eq!(
            state,
            (S::MONAD_ASYNC_TASK_STATE_ATTACHED | S::MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH).0
        );
        assert_eq!(
            atomics::task_current_executor(task).load(Ordering::Acquire),
            ex
        );
        assert!(atomics::executor_current_task(ex)
            .load(Ordering::Relaxed)
            .is_null());

        let r = sys::monad_async_executor_run(ex, 1, ptr::null());
        assert_eq!((r.error, r.value), (0, 1));
        let state = atomics::task_state(task).load(Ordering::Acquire);
        assert_eq!(
            state & S::MONAD_ASYNC_TASK_STATE_EXITED.0,
            S::MONAD_ASYNC_TASK_STATE_EXITED.0
        );
        assert_eq!(state & S::MONAD_ASYNC_TASK_STATE_ATTACHED.0, 0);
        assert!(atomics::task_current_executor(task)
            .load(Ordering::Acquire)
            .is_null());
        assert_eq!((*task).result.value, 5);

        assert_eq!(sys::monad_async_task_destroy(task).error, 0);
        assert_eq!(sys::monad_async_context_switcher_destroy(sw).error, 0);
        assert_eq!(sys::monad_async_executor_destroy(ex).error, 0);
    }
}

#[test]
fn inline_result_helpers_match_c_semantics() {
    let ok = sys::monad_async_make_success(-3);
    assert_eq!((ok.value, ok.error), (-3, 0));
    assert!(!sys::monad_async_is_failure(ok));
    let bad = sys::monad_async_make_failure(libc::EAGAIN);
    assert_eq!((bad.value, bad.error), (0, libc::EAGAIN));
    assert!(sys::monad_async_is_failure(bad));
}
