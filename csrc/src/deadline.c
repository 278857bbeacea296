/* Deadlines: a running task bounds every wait it makes (task.h).
 *
 * A task with a deadline that suspends goes, besides the queue of what it
 * waits for, on its executor's deadline list (sorted, through its own
 * `deadline_link`, so it can be on both), and comes off it when it
 * resumes. The run loop ends the waits of tasks whose deadline has
 * passed, as a cancel would but with ETIMEDOUT, and without marking the
 * task: the next wait is normal again.
 *
 * Ending a wait depends on where the task waits (`where`):
 *   - a queue of its executor (the timer list, a slot or submission
 *     queue, a buffer pool's queue, parked): it is taken off and made
 *     ready with ETIMEDOUT;
 *   - I/O in flight: the kernel is asked to cancel it and the task waits
 *     on for the completion (the kernel may be using its buffers), which
 *     then says ETIMEDOUT (MA_IO_ST_DEADLINE);
 *   - already resumed (ready, or claimed by a remote wake): nothing, it
 *     goes on with what resumed it.
 *
 * A task without a deadline pays one branch per suspension (suspend.c),
 * one per blocking I/O call (io_impl.h) and the run loop one load per pass
 * (run.c). */
#include "executor_impl.h"

#include <errno.h>

static inline struct ma_task *ma_task_from_deadline_link(struct ma_link *l)
{
    return ma_container_of(l, struct ma_task, deadline_link);
}

/* Inserts from the back, as the timer list does: tasks mostly arrive in
 * deadline order (one timeout for many requests), so this is usually one
 * comparison. */
static void ma_deadline_insert(struct ma_executor *ex, struct ma_task *t)
{
    struct ma_link *pos = ex->deadlines.tail;
    while (pos != NULL && ma_task_from_deadline_link(pos)->deadline > t->deadline) {
        pos = pos->prev;
    }
    if (pos == NULL) {
        if (ex->deadlines.head == NULL) {
            ma_list_push_back(&ex->deadlines, &t->deadline_link);
        }
        else {
            ma_list_insert_before(&ex->deadlines, ex->deadlines.head,
                                  &t->deadline_link);
        }
    }
    else if (pos->next == NULL) {
        ma_list_push_back(&ex->deadlines, &t->deadline_link);
    }
    else {
        ma_list_insert_before(&ex->deadlines, pos->next, &t->deadline_link);
    }
    t->deadline_armed = true;
}

static void ma_deadline_disarm(struct ma_executor *ex, struct ma_task *t)
{
    ma_list_remove(&ex->deadlines, &t->deadline_link);
    t->deadline_armed = false;
}

/* Ends the wait of suspended (or suspending) `t`: true if it is now ready
 * with ETIMEDOUT; false if it waits on (for the kernel to finish its
 * I/O, or for the remote wake that claimed it) or was resumed already.
 * `*retry` is set when a kernel cancel could not be queued. */
static bool ma_deadline_interrupt(struct ma_executor *ex, struct ma_task *t,
                                  bool *retry)
{
    switch (t->where) {
    case MA_TASK_TIMERS:
        /* A sleep on an executor without a ring. */
        ma_list_remove(&ex->timers, &t->link);
        ex->head.tasks_timed--;
        t->resume_error = ETIMEDOUT;
        ma_executor_make_ready_woken(ex, t);
        return true;
    case MA_TASK_SQE_WAIT:
        ma_io_cancel_sqe_wait(ex, t);
        t->resume_error = ETIMEDOUT; /* it set ECANCELED */
        return true;
    case MA_TASK_BUF_WAIT:
        ma_io_cancel_buffer_wait(ex, t);
        t->resume_error = ETIMEDOUT;
        return true;
    case MA_TASK_PARKED:
        return ma_park_interrupt(ex, t, ETIMEDOUT);
    case MA_TASK_IO_WAIT:
        *retry = !ma_io_cancel_for_deadline(ex, t);
        return false;
    default:
        /* READY (resumed, or a yield), WAKE_PENDING (a remote wake won),
         * NOWHERE: nothing to end. */
        return false;
    }
}

monad_async_result ma_deadline_suspend(struct ma_executor *ex, struct ma_task *t)
{
    bool retry = false;
    if (ma_ticks_read() >= t->deadline) {
        /* Past it: the wait does not start. A task waiting in one of our
         * queues is taken off it and told at once, without a switch. */
        if (t->where == MA_TASK_READY ||
            ma_deadline_interrupt(ex, t, &retry)) {
            ma_executor_unlink_ready(ex, t, t->queue);
            t->where = MA_TASK_NOWHERE;
            t->wake_won = false;
            return monad_async_make_failure(ETIMEDOUT);
        }
        /* Its I/O was asked to end (or a wake claimed it): wait for that,
         * on the deadline list only if the cancel must be retried. */
        if (!retry) {
            return ma_task_switch_out(ex, t);
        }
    }
    if (t->where == MA_TASK_READY || t->where == MA_TASK_WAKE_PENDING) {
        /* Resumes without waiting for anything the deadline could end. */
        return ma_task_switch_out(ex, t);
    }
    ma_deadline_insert(ex, t);
    monad_async_result const r = ma_task_switch_out(ex, t);
    if (t->deadline_armed) {
        ma_deadline_disarm(ex, t);
    }
    return r;
}

void ma_executor_fire_deadlines(struct ma_executor *ex, uint64_t now)
{
    struct ma_link *l;
    while ((l = ex->deadlines.head) != NULL) {
        struct ma_task *const t = ma_task_from_deadline_link(l);
        if (t->deadline > now) {
            break;
        }
        bool retry = false;
        (void)ma_deadline_interrupt(ex, t, &retry);
        if (retry) {
            /* The kernel takes no submissions right now (EBUSY, EAGAIN):
             * keep it armed and try again on the next pass, after the
             * run loop's pump has reaped and submitted. */
            break;
        }
        ma_deadline_disarm(ex, t);
    }
}

monad_async_result monad_async_task_set_deadline(
    monad_async_task task, monad_async_cpu_ticks_count_t deadline)
{
    if (task == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_tls_executor;
    if (ex == NULL ||
        atomic_load_explicit(&ex->head.current_task, memory_order_relaxed) != task) {
        return monad_async_make_failure(EPERM);
    }
    /* Running, so on no list: the next suspension reads it. */
    ma_task_from(task)->deadline = deadline;
    return monad_async_make_success(0);
}

monad_async_result monad_async_task_get_deadline(
    monad_async_task task, monad_async_cpu_ticks_count_t *deadline)
{
    if (task == NULL || deadline == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_tls_executor;
    if (ex == NULL ||
        atomic_load_explicit(&ex->head.current_task, memory_order_relaxed) != task) {
        return monad_async_make_failure(EPERM);
    }
    *deadline = ma_task_from(task)->deadline;
    return monad_async_make_success(0);
}
