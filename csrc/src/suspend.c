/* Suspension points inside a task: yield and timed sleep (an io_uring
 * timeout where the executor has a ring), and the timer list that wakes
 * sleepers on executors without one. */
#include "executor_impl.h"

#include <errno.h>

/* The task has been queued somewhere; switch back to the run loop and
 * report what the resumption brought. Inlined into ma_task_suspend: an
 * extern call there would be one more jump per suspension (-fPIC). */
static inline __attribute__((always_inline)) monad_async_result
ma_task_switch_out_inline(struct ma_executor *ex, struct ma_task *t)
{
    t->head.suspensions++;
    ex->head.counters.suspended++;
    t->resume_error = 0;
    t->wake_won = false;
    ma_task_set_state(
        t, MONAD_ASYNC_TASK_STATE_ATTACHED | MONAD_ASYNC_TASK_STATE_SUSPENDED);
    ma_context_suspend(&t->ctx);
    /* Resumed by the run loop, which set RUNNING again. */
    if (t->resume_error != 0) {
        return monad_async_make_failure(t->resume_error);
    }
    return monad_async_make_success(0);
}

/* Both entry points apply a deferred wake first (park.c): the slice ends
 * here. */
monad_async_result ma_task_switch_out(struct ma_executor *ex, struct ma_task *t)
{
    ma_executor_flush_deferred(ex);
    return ma_task_switch_out_inline(ex, t);
}

/* ma_task_suspend with no deferred wake pending. */
static inline __attribute__((always_inline)) monad_async_result
ma_task_suspend_inline(struct ma_executor *ex, struct ma_task *t)
{
    /* The one branch a task without a deadline pays (task.h). */
    if (__builtin_expect(t->deadline != 0, 0)) {
        return ma_deadline_suspend(ex, t);
    }
    return ma_task_switch_out_inline(ex, t);
}

monad_async_result ma_task_suspend(struct ma_executor *ex, struct ma_task *t)
{
    ma_executor_flush_deferred(ex);
    return ma_task_suspend_inline(ex, t);
}

/* The tick deadline `ns` from now. Padded by 500 ppm and a microsecond:
 * the tick rate is calibrated, not exact, and NTP may slew
 * CLOCK_MONOTONIC by up to 500 ppm against the tick counter; a sleep must
 * never be shorter than asked. */
uint64_t ma_timer_deadline(struct ma_executor const *ex, uint64_t ns)
{
    uint64_t const now = ma_ticks_read();
    uint64_t const padded = ns + ns / 2000 + 1000;
    uint64_t const span =
        ma_ns_to_ticks(padded < ns ? UINT64_MAX : padded, ex->ticks_per_second);
    return span > UINT64_MAX - now ? UINT64_MAX : now + span;
}

void ma_timer_insert(struct ma_executor *ex, struct ma_task *t)
{
    /* Insert from the back: deadlines mostly arrive in order, so this is
     * usually one comparison. Equal deadlines keep arrival order. */
    struct ma_link *pos = ex->timers.tail;
    while (pos != NULL && ma_task_from_link(pos)->timer_deadline > t->timer_deadline) {
        pos = pos->prev;
    }
    if (pos == NULL) {
        if (ex->timers.head == NULL) {
            ma_list_push_back(&ex->timers, &t->link);
        }
        else {
            ma_list_insert_before(&ex->timers, ex->timers.head, &t->link);
        }
    }
    else if (pos->next == NULL) {
        ma_list_push_back(&ex->timers, &t->link);
    }
    else {
        ma_list_insert_before(&ex->timers, pos->next, &t->link);
    }
}

monad_async_result monad_async_task_yield(monad_async_task task)
{
    struct ma_executor *ex;
    int const err = ma_check_suspendable(task, &ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_task *const t = ma_task_from(task);
    ma_executor_make_ready(ex, t); /* applies a deferred wake first */
    return ma_task_suspend_inline(ex, t);
}

monad_async_result
monad_async_task_suspend_for_duration(monad_async_task task, uint64_t ns)
{
    struct ma_executor *ex;
    int const err = ma_check_suspendable(task, &ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_task *const t = ma_task_from(task);
    if (ex->has_ring) {
        /* A kernel timeout on CLOCK_MONOTONIC, relative to its submission
         * (after this call), so never short. The task waits for its
         * completion even when cancelled (the cancel makes the kernel
         * complete it early with ECANCELED), so no timer is ever left
         * armed once the task has moved on. */
        ex->head.tasks_timed++;
        monad_async_result const r = monad_async_io_timeout(task, NULL, ns);
        ex->head.tasks_timed--;
        return r;
    }
    t->timer_deadline = ma_timer_deadline(ex, ns);
    ma_timer_insert(ex, t);
    t->where = MA_TASK_TIMERS;
    ex->head.tasks_timed++;
    return ma_task_suspend(ex, t);
}

void ma_executor_fire_timers(struct ma_executor *ex, uint64_t now)
{
    struct ma_link *l;
    while ((l = ex->timers.head) != NULL &&
           ma_task_from_link(l)->timer_deadline <= now) {
        struct ma_task *const t = ma_task_from_link(l);
        if (t->where == MA_TASK_PARKED) {
            ma_park_expire(ex, t); /* unlinks it */
            continue;
        }
        ma_list_pop_front(&ex->timers);
        ex->head.tasks_timed--;
        ma_executor_make_ready_woken(ex, t);
    }
}
