/* Task dumps: what every task attached to an executor is doing now.
 *
 * A stackful task that is suspended is invisible to tools that walk
 * threads. monad_async_executor_dump lists the tasks an executor holds,
 * one record each, in the order they were attached: where each is
 * (runnable, parked, waiting for which I/O on which fd, ...), its
 * priorities, and its time figures. It reads only the executor's own
 * bookkeeping: no lock, no allocation, no system call, so a service can
 * call it from a task, between slices, or from a signal-triggered task
 * (see the crate docs for the SIGQUIT pattern).
 *
 * Tasks attached from other threads appear once the executor has taken
 * them from its inbox (its next pass of the run loop). */
#ifndef MONAD_ASYNC_DUMP_H
#define MONAD_ASYNC_DUMP_H

#include "config.h"
#include "executor.h"
#include "priority.h"
#include "result.h"
#include "task.h"
#include "ticks.h"

#include <stddef.h>
#include <stdint.h>

MONAD_ASYNC_BEGIN_EXTERN_C

/* What a task is doing (monad_async_task_info.activity). */
enum monad_async_task_activity
{
    /* Attached, not yet started. */
    MONAD_ASYNC_TASK_ACTIVITY_PENDING_LAUNCH = 0,
    /* Ready to resume (yielded, or woken and not yet run). */
    MONAD_ASYNC_TASK_ACTIVITY_RUNNABLE,
    /* Running now: the task that called the dump. */
    MONAD_ASYNC_TASK_ACTIVITY_RUNNING,
    /* In a timed sleep (monad_async_task_suspend_for_duration). */
    MONAD_ASYNC_TASK_ACTIVITY_SLEEPING,
    /* Parked (monad_async_task_park: a join, a lock, a channel, ...),
     * until woken or, if `deadline` is non-zero, until then. */
    MONAD_ASYNC_TASK_ACTIVITY_PARKED,
    /* Waiting for an I/O completion: `io_opcode` and `io_fd` say which. */
    MONAD_ASYNC_TASK_ACTIVITY_IO,
    /* Waiting to start I/O: for a slot of the in-flight guard, or for
     * the kernel to take submissions again. */
    MONAD_ASYNC_TASK_ACTIVITY_IO_QUEUED,
    /* Waiting for a registered buffer of a buffer pool. */
    MONAD_ASYNC_TASK_ACTIVITY_BUFFER,
    /* Its code returned; waiting for the kernel to finish the
     * operations it left in flight before its exit is recorded. */
    MONAD_ASYNC_TASK_ACTIVITY_EXITING
};

/* One task of a dump. */
struct monad_async_task_info
{
    monad_async_task task;
    /* The task's user_ptr: what the caller made it for. */
    void *user_ptr;
    /* enum monad_async_task_activity. */
    uint32_t activity;
    /* The ready queue it runs from (its CPU priority now) and its I/O
     * priority. */
    monad_async_priority cpu_priority;
    monad_async_priority io_priority;
    /* For MONAD_ASYNC_TASK_ACTIVITY_IO (and SLEEPING on an executor with
     * a ring, where a sleep is a kernel timeout): the io_uring opcode
     * (IORING_OP_*) of the operation it waits for, and the fd the
     * operation names (an index into the registered files for fixed-file
     * operations); -1 when there is none. */
    int32_t io_opcode;
    int32_t io_fd;
    /* Operations it has in flight in the initiate form. */
    uint32_t io_inflight;
    /* Non-zero once cancellation was requested. */
    uint32_t cancelled;
    /* Times it has been suspended in its current piece of work. */
    uint64_t suspensions;
    /* Tick stamps (monad_async_ticks_now) of its attach and of its last
     * suspension, its ticks spent running, and the deadline of its
     * current wait (0: none). Zero where time tracking is off. */
    monad_async_cpu_ticks_count_t ticks_attached;
    monad_async_cpu_ticks_count_t ticks_suspended;
    monad_async_cpu_ticks_count_t ticks_executing;
    monad_async_cpu_ticks_count_t deadline;
};

/* Fills `out[0 .. capacity)` with the tasks attached to `ex`, oldest
 * attach first. Call it on the executor's thread, from a task or between
 * runs. Success: `value` is the number of tasks attached, which may be
 * more than `capacity` (only the first `capacity` are written; call
 * again with room for `value`). EINVAL: `ex` is NULL, or `out` is NULL
 * with a non-zero `capacity`. EPERM: not the executor's thread. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_dump(
    monad_async_executor ex, struct monad_async_task_info *out,
    size_t capacity);

MONAD_ASYNC_END_EXTERN_C

#endif
