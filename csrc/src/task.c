/* Tasks: life cycle, and the entry run on the task's own stack. */
#include "executor_impl.h"
#include "task_impl.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* One piece of work, on the task's stack (or the executor's, for the none
 * switcher). The executor sees `exiting` when control comes back. */
static void ma_task_entry(struct ma_context *ctx)
{
    struct ma_task *const t = ma_container_of(ctx, struct ma_task, ctx);
    t->head.result = t->head.user_code(&t->head);
    t->exiting = true;
}

monad_async_result monad_async_task_create(
    monad_async_task *task, monad_async_context_switcher switcher,
    struct monad_async_task_attr const *attr)
{
    if (task == NULL || switcher == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_task *const t = aligned_alloc(64, (sizeof(*t) + 63) & ~(size_t)63);
    if (t == NULL) {
        return monad_async_make_failure(ENOMEM);
    }
    memset(t, 0, sizeof(*t));
    t->head.priority.cpu = monad_async_priority_normal;
    t->head.priority.io = monad_async_priority_normal;
    atomic_init(&t->head.state, 0);
    atomic_init(&t->head.current_executor, NULL);
    atomic_init(&t->cancel_queued, 0);
    atomic_init(&t->park_word, 0);
    t->attach_node.kind = MA_MSG_ATTACH;
    t->cancel_node.kind = MA_MSG_CANCEL;
    t->wake_node.kind = MA_MSG_WAKE;
    atomic_init(&t->prio_target, 0);
    atomic_init(&t->prio_queued, 0);
    t->prio_node.kind = MA_MSG_PRIORITY;
    t->stack_size = attr != NULL ? attr->stack_size : 0;
    ma_context_init(&t->ctx, ma_task_entry);
    t->ctx.owner = &t->head;
    int const err = ma_context_set_switcher(&t->ctx, switcher, t->stack_size);
    if (err != 0) {
        ma_context_destroy(&t->ctx);
        free(t);
        return monad_async_make_failure(err);
    }
    t->head.switcher = switcher;
    *task = &t->head;
    return monad_async_make_success(0);
}

monad_async_result monad_async_task_destroy(monad_async_task task)
{
    if (task == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_task *const t = ma_task_from(task);
    if (atomic_load_explicit(&task->state, memory_order_acquire) &
        MONAD_ASYNC_TASK_STATE_ATTACHED) {
        return monad_async_make_failure(EBUSY);
    }
    /* A request to cancel (or change the priority of) its last work that
     * another thread is withdrawing right now (its work ended as it was made): never queued
     * once the task is unattached, and gone in a few instructions. */
    while (atomic_load_explicit(&t->cancel_queued, memory_order_acquire) ||
           atomic_load_explicit(&t->prio_queued, memory_order_acquire)) {
        sched_yield();
    }
    ma_context_destroy(&t->ctx);
    free(t);
    return monad_async_make_success(0);
}
