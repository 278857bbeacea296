/* The dispatcher's queue: submitting tasks (any thread, never blocking)
 * and taking them (an executor's thread, one at a time). */
#include "dispatcher_impl.h"

#include <errno.h>
#include <sched.h>

/* Claims every task for the queue, or none: on a task already attached
 * or queued (EBUSY) the claims made so far are undone. */
static int ma_wd_claim_all(monad_async_task const *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct ma_task *const t = ma_task_from(tasks[i]);
        uint32_t before;
        if (ma_task_claim(t, MONAD_ASYNC_TASK_STATE_QUEUED, &before) != 0) {
            while (i-- > 0) {
                struct ma_task *const u = ma_task_from(tasks[i]);
                atomic_store_explicit(&u->head.state, u->state_before_submit,
                                      memory_order_release);
            }
            return EBUSY;
        }
        t->state_before_submit = before;
    }
    return 0;
}

monad_async_result monad_async_work_dispatcher_submit(
    monad_async_work_dispatcher wd_, monad_async_task const *tasks, size_t n)
{
    if (wd_ == NULL || (tasks == NULL && n != 0)) {
        return monad_async_make_failure(EINVAL);
    }
    for (size_t i = 0; i < n; i++) {
        if (!ma_task_is_ready(tasks[i])) {
            return monad_async_make_failure(EINVAL);
        }
    }
    struct ma_wd *const wd = ma_wd_from(wd_);
    /* Keeps destroy from deciding the queue is empty under us. */
    atomic_fetch_add(&wd->submits_inflight, 1);
    int err = 0;
    if (atomic_load(&wd->closed) != 0) {
        err = ESHUTDOWN;
        goto out;
    }
    err = ma_wd_claim_all(tasks, n);
    if (err != 0 || n == 0) {
        goto out;
    }
    uint64_t const stamp = ma_ticks_read_ordered();
    struct ma_inbox_node *first[monad_async_priority_max] = {NULL};
    struct ma_inbox_node *last[monad_async_priority_max] = {NULL};
    uint64_t count[monad_async_priority_max] = {0};
    for (size_t i = 0; i < n; i++) {
        struct ma_task *const t = ma_task_from(tasks[i]);
        int const p = (int)t->head.priority.cpu;
        t->head.ticks.attached = stamp;
        atomic_store_explicit(&t->attach_node.next, NULL, memory_order_relaxed);
        if (last[p] == NULL) {
            first[p] = &t->attach_node;
        }
        else {
            atomic_store_explicit(
                &last[p]->next, &t->attach_node, memory_order_relaxed);
        }
        last[p] = &t->attach_node;
        count[p]++;
    }
    /* Counts rise before the tasks become takeable (see dispatcher_impl.h),
     * the total before the levels so that queued <= submitted - dispatched
     * holds for readers. */
    atomic_fetch_add(&wd->submitted, n);
    for (int p = 0; p < monad_async_priority_max; p++) {
        if (count[p] != 0) {
            atomic_fetch_add(&wd->queued[p], count[p]);
            ma_inbox_push_chain(&wd->levels[p], first[p], last[p]);
        }
    }
    ma_wd_wake_idle(wd, n);
out:
    atomic_fetch_sub(&wd->submits_inflight, 1);
    return err ? monad_async_make_failure(err)
               : monad_async_make_success((intptr_t)n);
}

void ma_wd_wake_idle(struct ma_wd *wd, size_t n)
{
    /* Pairs with the executor's idle_count rise then count check. */
    if (atomic_load(&wd->idle_count) == 0) {
        return;
    }
    pthread_mutex_lock(&wd->lock);
    struct ma_link *l;
    /* The most recently idle first: its caches are the warmest. Waking
     * under the lock keeps the executor from being destroyed meanwhile. */
    while (n-- > 0 && (l = wd->idle.tail) != NULL) {
        struct ma_wd_executor *const e =
            ma_container_of(l, struct ma_wd_executor, idle_link);
        ma_wd_unlist_idle(wd, e);
        monad_async_result const r = monad_async_executor_wake(&e->ex->head);
        (void)r;
    }
    pthread_mutex_unlock(&wd->lock);
}

int ma_wd_take(struct ma_wd_executor *wex, int below)
{
    struct ma_wd *const wd = wex->wd;
    /* Cheap look first: takers only lock when there is something to
     * take at a level that matters. */
    if (ma_wd_best_queued(wd) >= below) {
        return 0;
    }
    /* Another taker holds the lock for a few dozen nanoseconds: retry
     * from the run loop rather than sleep in the kernel for it. */
    if (pthread_mutex_trylock(&wd->take_lock) != 0) {
        return -1;
    }
    struct ma_inbox_node *n = NULL;
    int p = ma_wd_best_queued(wd);
    if (p < below) {
        n = ma_inbox_pop(&wd->levels[p]);
        if (n != NULL) {
            atomic_fetch_sub(&wd->queued[p], 1);
        }
    }
    pthread_mutex_unlock(&wd->take_lock);
    if (n == NULL) {
        /* Counted but not linked yet: its submitter is between its two
         * steps. Strict priority says wait for it rather than take a
         * lower level. */
        return p < below ? -1 : 0;
    }
    struct ma_task *const t = ma_container_of(n, struct ma_task, attach_node);
    t->exit_observer = ma_wd_task_exited;
    t->exit_observer_arg = wex;
    ma_executor_attach_claimed(wex->ex, t);
    atomic_fetch_add(&wd->dispatched, 1);
    ma_counter_add(&wex->dispatched, 1);
    ma_wd_poke_waiters(wd);
    return 1;
}

monad_async_result
monad_async_work_dispatcher_cancel_queued(monad_async_work_dispatcher wd_)
{
    if (wd_ == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_wd *const wd = ma_wd_from(wd_);
    /* Empty the queue under the takers' lock, into a private list linked
     * through the same nodes; end the tasks' work outside it, since their
     * hooks may submit again. */
    struct ma_inbox_node *taken = NULL;
    struct ma_inbox_node *last = NULL;
    intptr_t count = 0;
    pthread_mutex_lock(&wd->take_lock);
    for (int p = 0; p < monad_async_priority_max; p++) {
        while (atomic_load(&wd->queued[p]) != 0) {
            struct ma_inbox_node *const n = ma_inbox_pop(&wd->levels[p]);
            if (n == NULL) {
                sched_yield(); /* counted, its push half done: wait */
                continue;
            }
            atomic_fetch_sub(&wd->queued[p], 1);
            atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
            if (last != NULL) {
                atomic_store_explicit(&last->next, n, memory_order_relaxed);
            }
            else {
                taken = n;
            }
            last = n;
            count++;
        }
    }
    pthread_mutex_unlock(&wd->take_lock);
    uint64_t const stamp = ma_ticks_read();
    while (taken != NULL) {
        struct ma_task *const t =
            ma_container_of(taken, struct ma_task, attach_node);
        taken = atomic_load_explicit(&taken->next, memory_order_relaxed);
        /* As the executor ends a task cancelled before it launched. */
        void (*const hook)(monad_async_task) = t->head.user_on_exit;
        ma_task_bind(t, NULL);
        t->head.result = monad_async_make_failure(ECANCELED);
        t->head.ticks.exited = stamp;
        /* The work is over: its tokens are refused from here on, as
         * ma_executor_finish does for work that ends on an executor. (No
         * cancel request can be queued for it: it had no executor.) */
        ma_task_gen_end_sc(t);
        atomic_fetch_add(&wd->dispatched, 1);
        atomic_fetch_add(&wd->cancelled, 1);
        /* From this store on the task belongs to whoever attaches it. */
        atomic_store_explicit(
            &t->head.state, MONAD_ASYNC_TASK_STATE_EXITED, memory_order_release);
        if (hook != NULL) {
            hook(&t->head);
        }
        atomic_fetch_add(&wd->executed, 1);
    }
    ma_wd_poke_waiters(wd);
    return monad_async_make_success(count);
}
