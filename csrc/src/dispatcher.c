/* Work dispatchers: creation, destruction, counters. */
#include "dispatcher_impl.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* An idle executor looks for work this long before it sleeps: long enough
 * to catch the next task of a steady stream without a wake-up system call,
 * short enough to give the core back soon when work stops. */
#define MA_WD_DEFAULT_SPIN_NS 20000ull
/* An idle run returns after this long, so its caller's loop comes round
 * now and then even with no work and no quit. */
#define MA_WD_DEFAULT_IDLE_NS 100000000ull

monad_async_result monad_async_work_dispatcher_create(
    monad_async_work_dispatcher *out,
    struct monad_async_work_dispatcher_attr const *attr)
{
    static struct monad_async_work_dispatcher_attr const defaults;
    if (out == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    if (attr == NULL) {
        attr = &defaults;
    }
    if (attr->flags & ~(uint32_t)MONAD_ASYNC_WORK_DISPATCHER_FLAG_NO_SPIN) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_wd *const wd =
        aligned_alloc(64, (sizeof(*wd) + 63) & ~(size_t)63);
    if (wd == NULL) {
        return monad_async_make_failure(ENOMEM);
    }
    memset(wd, 0, sizeof(*wd));
    pthread_condattr_t ca;
    int err = pthread_condattr_init(&ca);
    if (err == 0) {
        err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (err == 0) {
            err = pthread_cond_init(&wd->cond, &ca);
        }
        pthread_condattr_destroy(&ca);
    }
    if (err != 0) {
        free(wd);
        return monad_async_make_failure(err);
    }
    pthread_mutex_init(&wd->lock, NULL);
    pthread_mutex_init(&wd->take_lock, NULL);
    for (int p = 0; p < monad_async_priority_max; p++) {
        ma_inbox_init(&wd->levels[p]);
        atomic_init(&wd->queued[p], 0);
    }
    atomic_init(&wd->submitted, 0);
    atomic_init(&wd->dispatched, 0);
    atomic_init(&wd->executed, 0);
    atomic_init(&wd->cancelled, 0);
    atomic_init(&wd->idle_count, 0);
    atomic_init(&wd->waiters, 0);
    atomic_init(&wd->wake_queued_at, 0);
    atomic_init(&wd->wake_unexecuted_at, 0);
    atomic_init(&wd->closed, 0);
    atomic_init(&wd->submits_inflight, 0);
    atomic_init(&wd->refs, 1);

    uint64_t const spin_ns =
        attr->spin_ns != 0 ? attr->spin_ns : MA_WD_DEFAULT_SPIN_NS;
    wd->spin_ticks = (attr->flags & MONAD_ASYNC_WORK_DISPATCHER_FLAG_NO_SPIN)
                         ? 0
                         : ma_ns_to_ticks(spin_ns, ma_ticks_per_second());
    uint64_t const idle_ns =
        attr->idle_ns != 0 ? attr->idle_ns : MA_WD_DEFAULT_IDLE_NS;
    wd->idle_period.tv_sec = (time_t)(idle_ns / 1000000000ull);
    wd->idle_period.tv_nsec = (long)(idle_ns % 1000000000ull);
    *out = (monad_async_work_dispatcher)wd;
    return monad_async_make_success(0);
}

void ma_wd_unref(struct ma_wd *wd)
{
    if (atomic_fetch_sub(&wd->refs, 1) != 1) {
        return;
    }
    pthread_cond_destroy(&wd->cond);
    pthread_mutex_destroy(&wd->lock);
    pthread_mutex_destroy(&wd->take_lock);
    free(wd);
}

monad_async_result
monad_async_work_dispatcher_destroy(monad_async_work_dispatcher wd_)
{
    if (wd_ == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_wd *const wd = ma_wd_from(wd_);
    pthread_mutex_lock(&wd->lock);
    /* Threads blocked in wait or quit touch the dispatcher when they
     * wake: it must outlive them. */
    if (wd->executors_count != 0 || atomic_load(&wd->waiters) != 0 ||
        wd->quit_waiters != 0) {
        pthread_mutex_unlock(&wd->lock);
        return monad_async_make_failure(EBUSY);
    }
    /* New submissions fail from here on; wait out those already in, then
     * see whether any of them queued work. */
    atomic_fetch_or(&wd->closed, MA_WD_DESTROYING);
    pthread_mutex_unlock(&wd->lock);
    while (atomic_load(&wd->submits_inflight) != 0) {
        sched_yield();
    }
    if (ma_wd_queued_bound(wd) != 0) {
        atomic_fetch_and(&wd->closed, ~(uint32_t)MA_WD_DESTROYING);
        return monad_async_make_failure(EBUSY);
    }
    ma_wd_unref(wd);
    return monad_async_make_success(0);
}

monad_async_result monad_async_work_dispatcher_read_counters(
    monad_async_work_dispatcher wd_,
    struct monad_async_work_dispatcher_counters *out)
{
    if (wd_ == NULL || out == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_wd *const wd = ma_wd_from(wd_);
    memset(out, 0, sizeof(*out));
    /* Later stages first: each is counted after the one before it. */
    out->cancelled = atomic_load(&wd->cancelled);
    out->executed = atomic_load(&wd->executed);
    out->dispatched = atomic_load(&wd->dispatched);
    out->submitted = atomic_load(&wd->submitted);
    for (int p = 0; p < monad_async_priority_max; p++) {
        out->queued_by_priority[p] = atomic_load(&wd->queued[p]);
        out->queued += out->queued_by_priority[p];
    }
    pthread_mutex_lock(&wd->lock);
    out->executors = wd->executors_count;
    out->busy_ticks = wd->departed_busy_ticks;
    out->idle_ticks = wd->departed_idle_ticks;
    for (struct ma_link *l = wd->executors.head; l != NULL; l = l->next) {
        struct ma_wd_executor *const e =
            ma_container_of(l, struct ma_wd_executor, pool_link);
        if (atomic_load_explicit(&e->activity, memory_order_relaxed) !=
            MA_WD_BUSY) {
            out->executors_idle++;
        }
        out->busy_ticks +=
            atomic_load_explicit(&e->busy_ticks, memory_order_relaxed);
        out->idle_ticks += ma_wd_executor_idle_ticks(e);
    }
    pthread_mutex_unlock(&wd->lock);
    return monad_async_make_success(0);
}
