/* Attaching tasks to executors: the hot path from the owner thread, the
 * inbox from any other. */
#include "executor_impl.h"

#include <errno.h>

int ma_task_claim(struct ma_task *t, uint32_t bits, uint32_t *before)
{
    uint32_t expected =
        atomic_load_explicit(&t->head.state, memory_order_relaxed);
    if (expected & MONAD_ASYNC_TASK_STATE_ATTACHED) {
        return EBUSY;
    }
    if (!atomic_compare_exchange_strong_explicit(
            &t->head.state,
            &expected,
            MONAD_ASYNC_TASK_STATE_ATTACHED |
                MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH | bits,
            /* acq_rel: whoever sees the claimed state (an owner-thread
             * cancel checking a task still in the inbox, an executor
             * taking a task from a work dispatcher) also sees the fields
             * the attacher set before attaching. */
            memory_order_acq_rel,
            memory_order_relaxed)) {
        return EBUSY;
    }
    *before = expected;
    /* A new piece of work: tokens of the last one are refused. */
    ma_task_gen_begin(t);
    return 0;
}

void ma_task_bind(struct ma_task *t, struct ma_executor *ex)
{
    atomic_store_explicit(&t->head.current_executor,
                          ex != NULL ? &ex->head : NULL,
                          memory_order_relaxed);
    t->head.result = monad_async_make_success(0);
    t->head.suspensions = 0;
    t->head.ticks.launched = t->head.ticks.suspended = 0;
    t->head.ticks.resumed = t->head.ticks.exited = 0;
    t->head.ticks.executing = 0;
    t->resume_error = 0;
    t->woken_at = 0;
    t->deadline = 0; /* each piece of work starts without one */
    t->queue = t->head.priority.cpu;
}

/* No deferred wake may be pending (park.c): the callers inside a task
 * apply it first, so that this stays a leaf function. */
void ma_executor_enqueue_attached(struct ma_executor *ex, struct ma_task *t)
{
    ex->head.tasks_attached++;
    ex->head.counters.attached++;
    ma_cycle_push_back(&ex->all_tasks, &t->all_link);
    ma_executor_make_ready_now(ex, t);
}

void ma_executor_enqueue_from_inbox(struct ma_executor *ex, struct ma_task *t)
{
    uint32_t const state =
        atomic_load_explicit(&t->head.state, memory_order_acquire);
    /* Sequentially consistent, then the priority request: a changer
     * stores its request, then looks at the state (priority_change.c);
     * one of us sees the other. */
    atomic_store(&t->head.state,
                 state & ~(uint32_t)MONAD_ASYNC_TASK_STATE_IN_INBOX);
    ma_priority_take_pending(t);
    ma_executor_enqueue_attached(ex, t);
    if (state & MONAD_ASYNC_TASK_STATE_CANCELLED) {
        /* Cancelled by this thread while still in the inbox. */
        (void)ma_executor_cancel_local(ex, t);
    }
}

void ma_executor_attach_claimed(struct ma_executor *ex, struct ma_task *t)
{
    ma_task_bind(t, ex);
    if (!ex->track_time) {
        t->head.ticks.attached = 0;
    }
    /* QUEUED cleared sequentially consistent, then the priority request,
     * as for a task from the inbox (ma_executor_enqueue_from_inbox). */
    atomic_store(&t->head.state,
                 MONAD_ASYNC_TASK_STATE_ATTACHED |
                     MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH |
                     (ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED));
    ma_priority_take_pending(t);
    ma_executor_flush_deferred(ex);
    ma_executor_enqueue_attached(ex, t);
}

monad_async_result monad_async_task_attach(
    monad_async_executor ex_, monad_async_task task,
    monad_async_context_switcher opt_switcher)
{
    if (ex_ == NULL || !ma_task_is_ready(task)) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    struct ma_task *const t = ma_task_from(task);
    bool const local = ma_executor_is_owner(ex);
    if (!local) {
        /* Keep destroy from freeing ex under us; see executor.c. */
        atomic_fetch_add(&ex->remote_inflight, 1);
    }
    int err = 0;
    if (atomic_load(&ex->closing)) {
        err = ESHUTDOWN;
        goto out;
    }
    uint32_t before;
    err = ma_task_claim(
        t, local ? 0 : MONAD_ASYNC_TASK_STATE_IN_INBOX, &before);
    if (err != 0) {
        goto out;
    }
    ma_task_bind(t, ex);
    if (opt_switcher != NULL && opt_switcher != task->switcher) {
        /* Not the hot path: a first stackful switcher maps a stack. The
         * claim makes the task ours while we change it. */
        err = ma_context_set_switcher(&t->ctx, opt_switcher, t->stack_size);
        if (err != 0) {
            atomic_store_explicit(
                &task->current_executor, NULL, memory_order_relaxed);
            atomic_store_explicit(&task->state, before, memory_order_release);
            goto out;
        }
        task->switcher = opt_switcher;
    }
    if (local) {
        task->ticks.attached = ma_executor_stamp(ex);
        ma_executor_flush_deferred(ex); /* a deferred wake goes first */
        ma_executor_enqueue_attached(ex, t);
        return monad_async_make_success(0);
    }
    task->ticks.attached = ex->track_time ? ma_ticks_read_ordered() : 0;
    ma_inbox_push(&ex->inbox, &t->attach_node);
    ma_executor_notify(ex);
out:
    if (!local) {
        atomic_fetch_sub(&ex->remote_inflight, 1);
    }
    return err ? monad_async_make_failure(err) : monad_async_make_success(0);
}
