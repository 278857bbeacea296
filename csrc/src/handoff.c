/* Hand-off: a task that parks, or suspends on a blocking I/O operation
 * (io_impl.h), switches straight to the task the run loop would run next,
 * instead of switching to the loop and the loop switching to that task.
 *
 * A same-executor wake-up (a channel's receiver woken by its sender, a
 * lock's next holder by its releaser) is followed by the waker's park
 * more often than not; through the loop that is two switches and a pass
 * of the loop, here one switch. Likewise many tasks each starting their
 * own I/O (connections) pass the thread from one to the next until the
 * pump is due. The loop is skipped only when it would have done nothing
 * but pop that task:
 *
 *   - the task is the first of the highest non-empty ready level (so
 *     priorities hold exactly as in the loop: a higher-priority ready
 *     task, which would be that one, is never passed over);
 *   - the inbox is empty (cross-thread attaches, wakes, cancels and
 *     priority changes are taken by the loop first), no timer and no
 *     deadline is due, no trace hook is set;
 *   - the loop would not pump the ring first: neither the pump interval
 *     with I/O busy, nor the pump before a lower-priority slice while a
 *     higher priority has I/O in flight (issue 8 B);
 *   - run's max_items leaves room for one more slice (direct_left);
 *   - it is a task of the same switcher, and the switcher can transfer
 *     (asm; sjlj and none cannot). A task pending launch is launched so
 *     (a joined child, typically).
 *
 * The bookkeeping the loop does around a slice is done here instead, with
 * one stamp shared by the end of the parking task's slice and the start
 * of the next: time figures, counters, the resume-latency sample, the
 * state bits, `current_task`. The next task takes over the parking
 * task's resumer, so when it suspends the normal way control goes back to
 * the loop, which reads `current_task` to learn which task came back
 * (run.c). No lock, no malloc, no system call: a bounded number of loads
 * and stores. */
#include "executor_impl.h"
#include "prefetch.h"

#include <errno.h>

/* The first task of the highest non-empty ready level, if the loop would
 * run it next without doing anything else first and it can be switched
 * to directly; its level in `*level`. Everything here but the timers and
 * deadlines (which need a stamp) is a plain load. */
static inline struct ma_task *
ma_handoff_pick(struct ma_executor *ex, struct ma_task const *t, int *level)
{
    if (ex->direct_left == 0 || !ma_inbox_is_empty(&ex->inbox)) {
        return NULL;
    }
#if MA_TRACE_HOOKS
    if (ex->trace_hook != NULL) {
        return NULL; /* every slice is traced by the loop */
    }
#endif
    int p = 0;
    struct ma_link *l;
    while ((l = ex->ready[p].head) == NULL) {
        if (++p == monad_async_priority_max) {
            return NULL;
        }
    }
    struct ma_task *const n = ma_task_from_link(l);
    struct ma_switcher_ops const *const ops = t->ctx.sw->ops;
    if (n->ctx.sw->ops != ops || ops->transfer == NULL) {
        return NULL;
    }
    /* The loop's pumps: for a higher priority's I/O, and the interval. */
    if (ex->io_inflight_above[p] != 0 ||
        (ex->slices_since_pump >= MA_IO_PUMP_INTERVAL && ex->has_ring &&
         ma_io_busy(ex))) {
        return NULL;
    }
    *level = p;
    return n;
}

/* Switches from the suspending `t` straight to `n` (off every queue,
 * `where` NOWHERE), with the bookkeeping the loop does around a slice,
 * both slices stamped `now`. */
static inline __attribute__((always_inline)) monad_async_result
ma_handoff_switch(struct ma_executor *ex, struct ma_task *t, struct ma_task *n,
                  uint64_t now)
{
    ex->direct_left--;
    ex->slices_since_pump++;

    /* The end of t's slice, as run_slice records it. Its first suspension
     * of this work ends the slice that launched it (stamped in
     * ticks.launched), any other one a slice that resumed it. */
    uint64_t const suspensions = ++t->head.suspensions;
    ex->head.counters.suspended++;
    t->resume_error = 0;
    t->wake_won = false;
    ex->last_stamp = now;
    uint64_t const slice =
        now - (suspensions == 1 ? t->head.ticks.launched : t->head.ticks.resumed);
    t->head.ticks.executing += slice;
    if (suspensions == 1) {
        ex->head.ticks.launching += slice;
    }
    else {
        ex->head.ticks.resuming += slice;
    }
    t->head.ticks.suspended = now;
    ma_task_set_state(
        t, MONAD_ASYNC_TASK_STATE_ATTACHED | MONAD_ASYNC_TASK_STATE_SUSPENDED);

    /* The start of n's slice, as run_slice records it: its launch (a
     * join's child, say), or a resumption. */
    if (ma_task_state(n) & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH) {
        n->head.ticks.launched = now;
        ex->head.counters.launched++;
        if (now != 0) {
            ma_latency_add(ex->head.latency.launch[n->queue],
                           n->head.ticks.attached, now);
        }
    }
    else {
        n->head.ticks.resumed = now;
        ex->head.counters.resumed++;
        if (n->woken_at != 0) {
            ma_latency_add(ex->head.latency.resume[n->queue], n->woken_at, now);
            n->woken_at = 0;
        }
    }
    ma_task_set_state(
        n, MONAD_ASYNC_TASK_STATE_ATTACHED | MONAD_ASYNC_TASK_STATE_RUNNING);
    atomic_store_explicit(&ex->head.current_task, &n->head, memory_order_relaxed);
    ma_context_transfer(&t->ctx, &n->ctx);
    /* Resumed, by the loop or by a sibling's hand-off, RUNNING again. */
    if (t->resume_error != 0) {
        return monad_async_make_failure(t->resume_error);
    }
    return monad_async_make_success(0);
}

/* True when a timer or a deadline is due at `now` (the loop fires them
 * before running anything). */
static inline bool ma_handoff_timers_due(struct ma_executor const *ex, uint64_t now)
{
    if (__builtin_expect(ex->timers.head != NULL || ex->deadlines.head != NULL, 0)) {
        uint64_t const tk = ex->track_time ? now : ma_ticks_read();
        return (ex->timers.head != NULL &&
                ma_task_from_link(ex->timers.head)->timer_deadline <= tk) ||
               ma_executor_next_deadline(ex) <= tk;
    }
    return false;
}

monad_async_result ma_task_suspend_handoff(struct ma_executor *ex,
                                           struct ma_task *t)
{
    if (__builtin_expect(t->deadline != 0, 0)) {
        return ma_deadline_suspend(ex, t);
    }
    int p;
    struct ma_task *const n = ma_handoff_pick(ex, t, &p);
    if (n == NULL) {
        return ma_task_switch_out(ex, t);
    }
    uint64_t const now = ma_executor_stamp(ex);
    if (ma_handoff_timers_due(ex, now)) {
        return ma_task_switch_out(ex, t); /* the loop fires them first */
    }
    (void)ma_executor_pop_level(ex, p); /* n */
    n->where = MA_TASK_NOWHERE;
    /* As the loop's pop does (run.c): with many tasks, ask for n's stack
     * top, which the switch below reads, and for the hot lines of the
     * task now first at n's level, which runs a slice from now. Without
     * it a chain of hand-offs (connections each starting their I/O)
     * takes every task's misses one after the other. */
    ma_prefetch_turn(ex, n, &ex->ready[p]);
    return ma_handoff_switch(ex, t, n, now);
}

/* ma_task_suspend_handoff once a deferred wake was applied, by a call,
 * not a tail call: the park's tail call is then the only way into the
 * hand-off by tail calls, which lets a debugger rebuild the parked
 * task's park frame (gdb_view). */
static __attribute__((noinline)) monad_async_result
ma_handoff_after_flush(struct ma_executor *ex, struct ma_task *t)
{
    monad_async_result const r = ma_task_suspend_handoff(ex, t);
    __asm__ volatile("");
    return r;
}

/* The hand-off when a wake is deferred (park.c): the woken task `d` would
 * go to the back of its level; if no task is ready at its level or above
 * and the loop would do nothing first, it is the one the loop would run
 * next, and `t` switches straight to it (it never enters a ready queue).
 * Otherwise the wake is applied and the hand-off goes on as usual. */
monad_async_result ma_task_suspend_deferred(struct ma_executor *ex,
                                            struct ma_task *t)
{
    if (__builtin_expect(t->deadline != 0, 0)) {
        return ma_deadline_suspend(ex, t); /* its switch-out applies it */
    }
    struct ma_task *const d = ex->deferred_wake;
    int const p = (int)d->queue;
    /* Nothing ready at all (in the common case, a ping-pong, nothing is;
     * a task ready below d's level would not stop d, but this keeps the
     * test to one pass of three loads). */
    bool direct = !ma_executor_any_ready(ex) && ex->direct_left != 0 &&
                  ma_inbox_is_empty(&ex->inbox) && d != t;
#if MA_TRACE_HOOKS
    direct = direct && ex->trace_hook == NULL;
#endif
    struct ma_switcher_ops const *const ops = t->ctx.sw->ops;
    direct = direct && d->ctx.sw->ops == ops && ops->transfer != NULL &&
             ex->io_inflight_above[p] == 0 &&
             !(ex->slices_since_pump >= MA_IO_PUMP_INTERVAL && ex->has_ring &&
               ma_io_busy(ex));
    uint64_t now = 0;
    if (direct) {
        now = ma_executor_stamp(ex);
        direct = !ma_handoff_timers_due(ex, now);
    }
    if (!direct) {
        ma_park_flush_deferred(ex);
        return ma_handoff_after_flush(ex, t);
    }
    ex->deferred_wake = NULL;
    if (ma_park_claim_wake(d, ex->deferred_token) <= 0) {
        /* Not parked any more (a remote wake or cancel claimed it first):
         * the wake left a permit; nothing new is ready. */
        return ma_handoff_after_flush(ex, t);
    }
    /* Its resumption is ours: as ma_park_resume would ready it, but it
     * runs now. */
    if (d->timer_deadline != UINT64_MAX) {
        ma_list_remove(&ex->timers, &d->link);
    }
    d->where = MA_TASK_NOWHERE;
    d->resume_error = 0;
    d->wake_won = true;
    d->woken_at = ex->last_stamp;
    return ma_handoff_switch(ex, t, d, now);
}
