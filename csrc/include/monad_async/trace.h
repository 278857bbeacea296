/* Trace hooks: a callback at the start and the end of every slice a task
 * runs, for tracers (the Rust crate's `tracing` feature enters a task's
 * span for each slice with it).
 *
 * Compiled in only when the library is built with MONAD_ASYNC_TRACE_HOOKS
 * defined to 1 (`make -C csrc TRACE_HOOKS=1`; the crate's `tracing`
 * feature). Otherwise the run loop has no hook to test, so tracing costs
 * nothing, and monad_async_executor_set_trace_hook says ENOTSUP. */
#ifndef MONAD_ASYNC_TRACE_H
#define MONAD_ASYNC_TRACE_H

#include "config.h"
#include "dump.h"
#include "executor.h"
#include "result.h"
#include "task.h"

#include <stdint.h>

MONAD_ASYNC_BEGIN_EXTERN_C

/* monad_async_trace_hook's `event`. */
enum monad_async_trace_event
{
    /* The task is about to run a slice; `detail` is 1 for its first
     * (launch), 0 for a resumption. */
    MONAD_ASYNC_TRACE_SLICE_BEGIN = 0,
    /* Its slice has ended; `detail` is why: the enum
     * monad_async_task_activity it is in now (RUNNABLE after a yield,
     * SLEEPING, PARKED, IO with `io_opcode`, ...), or
     * MONAD_ASYNC_TRACE_EXITED when its work is over (the last event of
     * that work: the task may be reused after it). */
    MONAD_ASYNC_TRACE_SLICE_END = 1
};

#define MONAD_ASYNC_TRACE_EXITED 0xffffffffu

/* Called on the executor's thread, between the run loop's steps: it must
 * not run the executor, suspend, or attach to or cancel `task`.
 * `io_opcode`: for a slice that ended waiting for I/O, the operation's
 * io_uring opcode, else -1. */
typedef void (*monad_async_trace_hook)(void *arg, monad_async_task task,
                                       uint32_t event, uint32_t detail,
                                       int32_t io_opcode);

/* Sets (or with NULL clears) `ex`'s trace hook, on its thread. EINVAL:
 * NULL `ex`. EPERM: another thread. EBUSY: inside a task of `ex` (set it
 * between runs). ENOTSUP: the library was built without
 * MONAD_ASYNC_TRACE_HOOKS. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_set_trace_hook(
    monad_async_executor ex, monad_async_trace_hook hook, void *arg);

/* 1 if this library was built with trace hooks, else 0 (value). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_trace_hooks_built(void);

MONAD_ASYNC_END_EXTERN_C

#endif
