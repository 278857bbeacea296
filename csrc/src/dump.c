/* Task dumps (dump.h): one record per attached task, from the executor's
 * own bookkeeping. Every attached task is on `all_tasks` from its enqueue
 * to its exit; what it waits for is read from `where` and, for I/O, from
 * the status it is suspended on, which keeps the opcode and fd its SQE
 * had (ma_io_commit). */
#include <monad_async/dump.h>

#include "io_impl.h"

#include <errno.h>

/* The operation a task in MA_TASK_IO_WAIT waits for: the status it is
 * suspended on, or for a wait on any completion its newest operation. */
static struct monad_async_io_status const *ma_dump_waited_op(struct ma_task const *t)
{
    if (t->io_waiting_for != NULL && t->io_waiting_for != MA_IO_WAIT_ANY) {
        return t->io_waiting_for;
    }
    return t->io_inflight_head;
}

uint32_t ma_task_activity(struct ma_executor const *ex, struct ma_task const *t,
                          int32_t *io_opcode, int32_t *io_fd)
{
    *io_opcode = -1;
    *io_fd = -1;
    switch (t->where) {
    case MA_TASK_READY:
        return (ma_task_state(t) & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH)
                   ? MONAD_ASYNC_TASK_ACTIVITY_PENDING_LAUNCH
                   : MONAD_ASYNC_TASK_ACTIVITY_RUNNABLE;
    case MA_TASK_TIMERS:
        return MONAD_ASYNC_TASK_ACTIVITY_SLEEPING;
    case MA_TASK_SQE_WAIT:
        return MONAD_ASYNC_TASK_ACTIVITY_IO_QUEUED;
    case MA_TASK_IO_WAIT: {
        if (t->io_draining) {
            return MONAD_ASYNC_TASK_ACTIVITY_EXITING;
        }
        struct monad_async_io_status const *const st = ma_dump_waited_op(t);
        if (st == NULL) {
            return MONAD_ASYNC_TASK_ACTIVITY_IO;
        }
        *io_opcode = (int32_t)(st->flags >> MA_IO_ST_OPCODE_SHIFT);
        *io_fd = st->fd;
        /* A sleep on an executor with a ring is a kernel timeout. */
        return *io_opcode == IORING_OP_TIMEOUT ? MONAD_ASYNC_TASK_ACTIVITY_SLEEPING
                                               : MONAD_ASYNC_TASK_ACTIVITY_IO;
    }
    case MA_TASK_BUF_WAIT:
        return MONAD_ASYNC_TASK_ACTIVITY_BUFFER;
    case MA_TASK_PARKED:
        return MONAD_ASYNC_TASK_ACTIVITY_PARKED;
    case MA_TASK_WAKE_PENDING:
        /* Woken from another thread; the wake is in the inbox. */
        return MONAD_ASYNC_TASK_ACTIVITY_RUNNABLE;
    case MA_TASK_NOWHERE:
    default:
        /* Off every list: the running task (the dump's caller), or one
         * the run loop holds between two steps. */
        return atomic_load_explicit(
                   &((struct ma_executor *)ex)->head.current_task,
                   memory_order_relaxed) == &t->head
                   ? MONAD_ASYNC_TASK_ACTIVITY_RUNNING
                   : MONAD_ASYNC_TASK_ACTIVITY_RUNNABLE;
    }
}

static void ma_dump_task(struct ma_executor const *ex, struct ma_task const *t,
                         struct monad_async_task_info *info)
{
    uint32_t const state = ma_task_state(t);
    *info = (struct monad_async_task_info){
        .task = (monad_async_task)&t->head,
        .user_ptr = t->head.user_ptr,
        .cpu_priority = t->queue,
        .io_priority = ma_io_prio(t),
        .io_inflight = t->io_inflight,
        .cancelled = (state & MONAD_ASYNC_TASK_STATE_CANCELLED) != 0,
        .suspensions = t->head.suspensions,
        .ticks_attached = t->head.ticks.attached,
        .ticks_suspended = t->head.ticks.suspended,
        .ticks_executing = t->head.ticks.executing,
        .deadline = t->deadline,
    };
    info->activity = ma_task_activity(ex, t, &info->io_opcode, &info->io_fd);
    uint64_t timer = 0;
    if (t->where == MA_TASK_TIMERS ||
        (t->where == MA_TASK_PARKED && t->timer_deadline != UINT64_MAX)) {
        timer = t->timer_deadline;
    }
    if (timer != 0 && (info->deadline == 0 || timer < info->deadline)) {
        info->deadline = timer;
    }
}

monad_async_result monad_async_executor_dump(
    monad_async_executor ex_, struct monad_async_task_info *out,
    size_t capacity)
{
    if (ex_ == NULL || (out == NULL && capacity != 0)) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor const *const ex = ma_executor_from(ex_);
    if (!ma_executor_is_owner(ex)) {
        return monad_async_make_failure(EPERM);
    }
    size_t n = 0;
    for (struct ma_link const *l = ex->all_tasks.next; l != &ex->all_tasks;
         l = l->next, n++) {
        if (n < capacity) {
            ma_dump_task(ex, ma_container_of(l, struct ma_task, all_link), &out[n]);
        }
    }
    return monad_async_make_success((intptr_t)n);
}
