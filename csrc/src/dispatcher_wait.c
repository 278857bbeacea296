/* Waiting on a dispatcher: for its work to drain (wait), for its executors
 * to acknowledge a quit (quit), and waking the threads blocked in either.
 *
 * Both block on the dispatcher's condition variable (CLOCK_MONOTONIC,
 * against a deadline fixed on entry, so spurious wake-ups never stretch
 * a timeout). Quit acknowledgements are rare and always broadcast. Task
 * exits and dispatches are not: they broadcast only when a thread is
 * blocked in wait and the loosest of the waiters' thresholds holds, so the
 * executors' hot path pays one load when nobody waits. */
#include "dispatcher_impl.h"

#include <errno.h>

/* One thread blocked in wait, on the dispatcher's wait_records. */
struct ma_wd_wait_record
{
    struct ma_link link;
    uint64_t max_queued;
    uint64_t max_unexecuted;
};

int ma_wd_deadline(struct timespec const *timeout, struct timespec *deadline,
                   bool *forever)
{
    *forever = timeout == NULL;
    if (timeout == NULL) {
        return 0;
    }
    if (timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L) {
        return EINVAL;
    }
    clock_gettime(CLOCK_MONOTONIC, deadline);
    if (timeout->tv_sec < 0) {
        return 0; /* already past: check once */
    }
    deadline->tv_nsec += timeout->tv_nsec;
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_nsec -= 1000000000L;
        deadline->tv_sec++;
    }
    /* Saturate rather than wrap for absurdly long timeouts. */
    time_t const max_sec = (time_t)(((uint64_t)1 << (sizeof(time_t) * 8 - 1)) - 1);
    deadline->tv_sec = timeout->tv_sec > max_sec - deadline->tv_sec
                           ? max_sec
                           : deadline->tv_sec + timeout->tv_sec;
    return 0;
}

/* Under wd->lock: blocks on the condition variable until woken or the
 * deadline. ETIME once the deadline has passed. */
static int ma_wd_block(struct ma_wd *wd, struct timespec const *deadline,
                       bool forever)
{
    if (forever) {
        pthread_cond_wait(&wd->cond, &wd->lock);
        return 0;
    }
    int const err = pthread_cond_timedwait(&wd->cond, &wd->lock, deadline);
    return err == ETIMEDOUT ? ETIME : 0;
}

/* Under wd->lock: recomputes the loosest waiter thresholds. */
static void ma_wd_update_wake_thresholds(struct ma_wd *wd)
{
    uint64_t q = 0, e = 0;
    for (struct ma_link *l = wd->wait_records.head; l != NULL; l = l->next) {
        struct ma_wd_wait_record const *const w =
            ma_container_of(l, struct ma_wd_wait_record, link);
        q = w->max_queued > q ? w->max_queued : q;
        e = w->max_unexecuted > e ? w->max_unexecuted : e;
    }
    atomic_store(&wd->wake_queued_at, q);
    atomic_store(&wd->wake_unexecuted_at, e);
}

void ma_wd_poke_waiters(struct ma_wd *wd)
{
    /* Pairs with wait's registration then check: the count this thread
     * just changed is sequentially consistent too. */
    if (atomic_load(&wd->waiters) == 0) {
        return;
    }
    if (ma_wd_queued_bound(wd) > atomic_load(&wd->wake_queued_at) ||
        ma_wd_unexecuted_bound(wd) > atomic_load(&wd->wake_unexecuted_at)) {
        return;
    }
    pthread_mutex_lock(&wd->lock);
    pthread_cond_broadcast(&wd->cond);
    pthread_mutex_unlock(&wd->lock);
}

/* The entry checks of wait and quit: 0, or the errno they return; sets
 * the deadline. A NULL timeout from inside one of the dispatcher's
 * executors would wait for work that executor can no longer do. */
static int ma_wd_begin_wait(monad_async_work_dispatcher wd_,
                            struct timespec const *timeout,
                            struct timespec *deadline, bool *forever)
{
    if (wd_ == NULL) {
        return EINVAL;
    }
    int const err = ma_wd_deadline(timeout, deadline, forever);
    if (err != 0) {
        return err;
    }
    bool const deadlock = *forever && ma_wd_tls_running != NULL &&
                          ma_wd_tls_running->wd == ma_wd_from(wd_);
    return deadlock ? EDEADLK : 0;
}

monad_async_result monad_async_work_dispatcher_wait(
    monad_async_work_dispatcher wd_, size_t max_undispatched,
    size_t max_unexecuted, struct timespec const *timeout)
{
    struct timespec deadline;
    bool forever;
    int err = ma_wd_begin_wait(wd_, timeout, &deadline, &forever);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_wd *const wd = ma_wd_from(wd_);
    struct ma_wd_wait_record rec;
    rec.max_queued = max_undispatched;
    rec.max_unexecuted = max_unexecuted;
    pthread_mutex_lock(&wd->lock);
    ma_list_push_back(&wd->wait_records, &rec.link);
    ma_wd_update_wake_thresholds(wd);
    atomic_fetch_add(&wd->waiters, 1);
    uint64_t unexecuted;
    for (;;) {
        unexecuted = ma_wd_unexecuted_bound(wd);
        if (ma_wd_queued_bound(wd) <= max_undispatched &&
            unexecuted <= max_unexecuted) {
            break;
        }
        err = ma_wd_block(wd, &deadline, forever);
        if (err != 0) {
            break;
        }
    }
    atomic_fetch_sub(&wd->waiters, 1);
    ma_list_remove(&wd->wait_records, &rec.link);
    ma_wd_update_wake_thresholds(wd);
    pthread_mutex_unlock(&wd->lock);
    return err ? monad_async_make_failure(err)
               : monad_async_make_success((intptr_t)unexecuted);
}

/* Any activity, for ma_wd_tell. */
#define MA_WD_ANY_ACTIVITY UINT32_MAX

/* Under wd->lock: tells up to `max` executors of the pool, not told yet,
 * in state `activity` (or any), to quit, and wakes them. Returns how
 * many. */
static size_t ma_wd_tell(struct ma_wd *wd, size_t max, uint32_t activity)
{
    size_t told = 0;
    for (struct ma_link *l = wd->executors.head; l != NULL && told < max;
         l = l->next) {
        struct ma_wd_executor *const e =
            ma_container_of(l, struct ma_wd_executor, pool_link);
        if (atomic_load(&e->told_to_quit) ||
            (activity != MA_WD_ANY_ACTIVITY &&
             atomic_load_explicit(&e->activity, memory_order_relaxed) !=
                 activity)) {
            continue;
        }
        atomic_store(&e->told_to_quit, 1);
        wd->quit_pending++;
        told++;
        ma_wd_unlist_idle(wd, e);
        monad_async_result const r = monad_async_executor_wake(&e->ex->head);
        (void)r;
    }
    return told;
}

monad_async_result monad_async_work_dispatcher_quit(
    monad_async_work_dispatcher wd_, size_t max_executors,
    struct timespec const *timeout)
{
    struct timespec deadline;
    bool forever;
    int err = ma_wd_begin_wait(wd_, timeout, &deadline, &forever);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_wd *const wd = ma_wd_from(wd_);
    pthread_mutex_lock(&wd->lock);
    if (max_executors == SIZE_MAX) {
        /* Under the lock: executor_create checks it under the lock too,
         * so no executor joins the pool untold from here on. */
        atomic_fetch_or(&wd->closed, MA_WD_QUIT_ALL);
    }
    /* Idle ones first (asleep, then spinning), then the rest: busy ones,
     * and any whose activity changed between the passes. */
    size_t told = ma_wd_tell(wd, max_executors, MA_WD_SLEEPING);
    told += ma_wd_tell(wd, max_executors - told, MA_WD_SPINNING);
    told += ma_wd_tell(wd, max_executors - told, MA_WD_ANY_ACTIVITY);
    wd->quit_waiters++;
    while (wd->quit_pending != 0) {
        err = ma_wd_block(wd, &deadline, forever);
        if (err != 0) {
            break;
        }
    }
    wd->quit_waiters--;
    pthread_mutex_unlock(&wd->lock);
    return err ? monad_async_make_failure(err)
               : monad_async_make_success((intptr_t)told);
}
