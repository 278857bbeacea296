/* Trace hooks (trace.h). The run loop calls the hook around each slice
 * (run.c, under MA_TRACE_HOOKS); this file sets it and classifies where a
 * task went at the end of its slice, with the dump's classification. */
#include <monad_async/trace.h>

#include "executor_impl.h"

#include <errno.h>

monad_async_result monad_async_trace_hooks_built(void)
{
    return monad_async_make_success(MA_TRACE_HOOKS);
}

monad_async_result monad_async_executor_set_trace_hook(
    monad_async_executor ex_, monad_async_trace_hook hook, void *arg)
{
    if (ex_ == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    if (!ma_executor_is_owner(ex)) {
        return monad_async_make_failure(EPERM);
    }
#if MA_TRACE_HOOKS
    if (ex->in_run) {
        return monad_async_make_failure(EBUSY);
    }
    ex->trace_hook = hook;
    ex->trace_arg = arg;
    return monad_async_make_success(0);
#else
    (void)hook;
    (void)arg;
    return monad_async_make_failure(ENOTSUP);
#endif
}

#if MA_TRACE_HOOKS
void ma_trace_slice_end(struct ma_executor *ex, struct ma_task *t)
{
    if (t->exiting) {
        ex->trace_hook(ex->trace_arg, &t->head, MONAD_ASYNC_TRACE_SLICE_END,
                       MONAD_ASYNC_TRACE_EXITED, -1);
        return;
    }
    int32_t opcode = -1;
    int32_t fd = -1;
    uint32_t const activity = ma_task_activity(ex, t, &opcode, &fd);
    ex->trace_hook(ex->trace_arg, &t->head, MONAD_ASYNC_TRACE_SLICE_END,
                   activity, opcode);
}
#endif
