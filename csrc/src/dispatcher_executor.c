/* A dispatcher's executors: joining and leaving the pool, and the run loop
 * that takes work, runs it, spins, sleeps and quits.
 *
 * Everything here runs on the executor's own thread except what touches
 * the pool lists, which is under the dispatcher's lock. The executor
 * underneath is driven only through its public run, one item at a time,
 * so that before every slice the executor can see whether the queue holds
 * something more urgent than its own runnable tasks. */
#include "cpu_relax.h"
#include "dispatcher_impl.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

__thread struct ma_wd_executor *ma_wd_tls_running MA_TLS_HOT;

/* Publishes the executor's tick totals for other threads. */
static void ma_wd_publish_ticks(struct ma_wd_executor *wex)
{
    struct monad_async_executor_ticks const *const t = &wex->ex->head.ticks;
    atomic_store_explicit(
        &wex->busy_ticks, t->launching + t->resuming, memory_order_relaxed);
    atomic_store_explicit(
        &wex->idle_ticks, t->sleeping + wex->spun_ticks, memory_order_relaxed);
}

void ma_wd_task_exited(void *arg)
{
    ((struct ma_wd_executor *)arg)->exits_pending++;
}

/* Adds the exits of dispatched tasks to the dispatcher's count. */
static void ma_wd_flush_exits(struct ma_wd_executor *wex)
{
    if (wex->exits_pending != 0) {
        atomic_fetch_add(&wex->wd->executed, wex->exits_pending);
        wex->exits_pending = 0;
        ma_wd_poke_waiters(wex->wd);
    }
}

/* After a run of the executor underneath: publishes what other threads
 * read, the exits last, so that whoever sees a task executed (wait) also
 * sees the items and ticks of its last slice. */
static void ma_wd_after_run(struct ma_wd_executor *wex, monad_async_result r)
{
    if (r.error == 0 && r.value > 0) {
        ma_counter_add(&wex->items, (uint64_t)r.value);
    }
    ma_wd_publish_ticks(wex);
    ma_wd_flush_exits(wex);
}

monad_async_result monad_async_work_dispatcher_executor_create(
    monad_async_work_dispatcher_executor *out, monad_async_work_dispatcher wd_,
    struct monad_async_work_dispatcher_executor_attr const *attr)
{
    if (out == NULL || wd_ == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_wd *const wd = ma_wd_from(wd_);
    struct ma_wd_executor *const wex =
        aligned_alloc(64, (sizeof(*wex) + 63) & ~(size_t)63);
    if (wex == NULL) {
        return monad_async_make_failure(ENOMEM);
    }
    memset(wex, 0, sizeof(*wex));
    monad_async_executor ex = NULL;
    /* The dispatcher spins by its own rule (spin_ns, FLAG_NO_SPIN) before
     * its executors sleep: theirs would only add to it. */
    struct monad_async_executor_attr ex_attr = {0};
    if (attr != NULL) {
        ex_attr = attr->executor;
    }
    ex_attr.flags |= MONAD_ASYNC_EXECUTOR_FLAG_NO_SPIN;
    monad_async_result const r = monad_async_executor_create(&ex, &ex_attr);
    if (r.error != 0) {
        free(wex);
        return r;
    }
    wex->head.executor = ex;
    wex->head.dispatcher = wd_;
    wex->wd = wd;
    wex->ex = ma_executor_from(ex);
    atomic_init(&wex->asleep_listed, 0);
    atomic_init(&wex->activity, MA_WD_BUSY);
    atomic_init(&wex->told_to_quit, 0);
    atomic_init(&wex->items, 0);
    atomic_init(&wex->dispatched, 0);
    atomic_init(&wex->sleeps, 0);
    atomic_init(&wex->busy_ticks, 0);
    atomic_init(&wex->idle_ticks, 0);
    atomic_init(&wex->asleep_since, 0);
    atomic_fetch_add(&wd->refs, 1);
    pthread_mutex_lock(&wd->lock);
    if (atomic_load(&wd->closed) & MA_WD_QUIT_ALL) {
        /* Quitting for good: born told, and already out of the pool. */
        atomic_store(&wex->told_to_quit, 1);
        wex->left = true;
    }
    else {
        ma_list_push_back(&wd->executors, &wex->pool_link);
        wd->executors_count++;
        wex->in_pool = true;
    }
    pthread_mutex_unlock(&wd->lock);
    *out = &wex->head;
    return monad_async_make_success(0);
}

void ma_wd_executor_leave(struct ma_wd_executor *wex)
{
    struct ma_wd *const wd = wex->wd;
    pthread_mutex_lock(&wd->lock);
    if (wex->in_pool) {
        ma_list_remove(&wd->executors, &wex->pool_link);
        wd->executors_count--;
        wex->in_pool = false;
        ma_wd_unlist_idle(wd, wex);
        if (atomic_load(&wex->told_to_quit) && !wex->quit_acknowledged) {
            wex->quit_acknowledged = true;
            wd->quit_pending--;
        }
        wd->departed_busy_ticks +=
            atomic_load_explicit(&wex->busy_ticks, memory_order_relaxed);
        wd->departed_idle_ticks +=
            atomic_load_explicit(&wex->idle_ticks, memory_order_relaxed);
        pthread_cond_broadcast(&wd->cond);
    }
    pthread_mutex_unlock(&wd->lock);
    wex->left = true;
}

/* What destroy and run need: a handle, the executor's own thread, and no
 * run of it (this one or the plain executor's) on the stack. 0, or the
 * errno they return. */
static int ma_wd_executor_check_call(monad_async_work_dispatcher_executor ex_)
{
    if (ex_ == NULL) {
        return EINVAL;
    }
    struct ma_wd_executor const *const wex = ma_wd_executor_from(ex_);
    if (!ma_executor_is_owner(wex->ex)) {
        return EPERM;
    }
    return wex->in_run || wex->ex->in_run ? EBUSY : 0;
}

monad_async_result monad_async_work_dispatcher_executor_destroy(
    monad_async_work_dispatcher_executor ex_)
{
    int const err = ma_wd_executor_check_call(ex_);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_wd_executor *const wex = ma_wd_executor_from(ex_);
    struct ma_wd *const wd = wex->wd;
    ma_wd_executor_leave(wex);
    /* Cancels what is still attached; dispatched tasks among them count
     * as executed, so the dispatcher must still be alive here. */
    monad_async_result const r = monad_async_executor_destroy(&wex->ex->head);
    if (r.error != 0) {
        return r; /* not reached: ownership and re-entry were checked */
    }
    ma_wd_flush_exits(wex);
    free(wex);
    ma_wd_unref(wd);
    return monad_async_make_success(0);
}

/* The most urgent level with a runnable task of the executor's own, or
 * monad_async_priority_max when it has none. */
static int ma_wd_best_local(struct ma_wd_executor const *wex)
{
    for (int p = 0; p < monad_async_priority_max; p++) {
        if (wex->ex->head.tasks_runnable[p] != 0) {
            return p;
        }
    }
    return monad_async_priority_max;
}

/* Something for an idle executor to do: a task to take, or a quit. */
static bool ma_wd_wanted(struct ma_wd_executor *wex)
{
    return atomic_load(&wex->told_to_quit) ||
           ma_wd_best_queued(wex->wd) < monad_async_priority_max;
}

static struct timespec const ma_no_wait = {0, 0};

/* Runs one item of the executor's own, if one is runnable (or becomes so
 * from its inbox or timers). 1 if it ran one, 0 if not, or -errno. */
static int ma_wd_run_one(struct ma_wd_executor *wex, struct timespec const *wait)
{
    monad_async_result const r =
        monad_async_executor_run(&wex->ex->head, 1, wait);
    ma_wd_after_run(wex, r);
    if (r.error == ETIME || (r.error == 0 && r.value == 0)) {
        return 0;
    }
    if (r.error != 0) {
        return -r.error;
    }
    return (int)r.value;
}

/* Spins for the dispatcher's spin period while nothing is to be done,
 * adding any items of its own it runs meanwhile to `*done`. 1 if it found
 * something (work to take, a quit, or one of its own items), 0 if the
 * period ran out, or -errno. */
static int ma_wd_spin(struct ma_wd_executor *wex, intptr_t *done)
{
    struct ma_wd *const wd = wex->wd;
    uint64_t const start = ma_ticks_read();
    uint64_t now = start;
    int found = 0;
    atomic_store_explicit(&wex->activity, MA_WD_SPINNING, memory_order_relaxed);
    while (now - start < wd->spin_ticks) {
        for (int i = 0; i < 16; i++) {
            ma_cpu_relax();
        }
        if (ma_wd_wanted(wex)) {
            found = 1;
            break;
        }
        /* Its own inbox, timers (and, with a ring, completions): the run
         * of the executor underneath is what knows them all. */
        int const ran = ma_wd_run_one(wex, &ma_no_wait);
        if (ran != 0) {
            found = ran < 0 ? ran : 1;
            *done += ran > 0 ? ran : 0;
            break;
        }
        now = ma_ticks_read();
    }
    atomic_store_explicit(&wex->activity, MA_WD_BUSY, memory_order_relaxed);
    if (wex->ex->track_time) {
        wex->spun_ticks += ma_ticks_read() - start;
        ma_wd_publish_ticks(wex);
    }
    return found;
}

/* Sleeps on the idle list until work, a quit, one of its own items (run
 * and added to `*done`), or the idle period. 0, or -errno (-ETIME: the
 * idle period passed). */
static int ma_wd_sleep(struct ma_wd_executor *wex, intptr_t *done)
{
    struct ma_wd *const wd = wex->wd;
    atomic_store_explicit(&wex->activity, MA_WD_SLEEPING, memory_order_relaxed);
    pthread_mutex_lock(&wd->lock);
    ma_list_push_back(&wd->idle, &wex->idle_link);
    atomic_store(&wex->asleep_listed, 1);
    atomic_fetch_add(&wd->idle_count, 1);
    pthread_mutex_unlock(&wd->lock);
    int err = 0;
    /* Pairs with the submitter's count rise then idle_count check. */
    if (!ma_wd_wanted(wex)) {
        ma_counter_add(&wex->sleeps, 1);
        if (wex->ex->track_time) {
            atomic_store_explicit(
                &wex->asleep_since, ma_ticks_read(), memory_order_relaxed);
        }
        monad_async_result const r =
            monad_async_executor_run(&wex->ex->head, 1, &wd->idle_period);
        /* Cleared first: a reader in between undercounts, never counts
         * the sleep twice. */
        atomic_store_explicit(&wex->asleep_since, 0, memory_order_relaxed);
        ma_wd_after_run(wex, r);
        if (r.error != 0) {
            err = -r.error;
        }
        else {
            *done += r.value;
        }
    }
    /* Still listed unless a submitter (or quit) took us off to wake us. */
    if (atomic_load(&wex->asleep_listed)) {
        pthread_mutex_lock(&wd->lock);
        ma_wd_unlist_idle(wd, wex);
        pthread_mutex_unlock(&wd->lock);
    }
    atomic_store_explicit(&wex->activity, MA_WD_BUSY, memory_order_relaxed);
    return err;
}

/* The loop of monad_async_work_dispatcher_executor_run, inside the
 * executor's in_run bracket. Items run, -1 once quit, or -errno - 1. */
static intptr_t ma_wd_run_loop(struct ma_wd_executor *wex)
{
    struct ma_wd *const wd = wex->wd;
    intptr_t done = 0;
    unsigned takes_pending = 0;
    for (;;) {
        bool const quitting = atomic_load_explicit(
            &wex->told_to_quit, memory_order_relaxed);
        if (!quitting &&
            ma_wd_take(wex, ma_wd_best_local(wex)) < 0) {
            /* Another executor is taking, or a submitter is between its
             * two steps at a level we want: let them finish (they may be
             * waiting for our core). */
            if (++takes_pending % 64 == 0) {
                sched_yield();
            }
            else {
                ma_cpu_relax();
            }
        }
        int ran = ma_wd_run_one(wex, &ma_no_wait);
        if (ran < 0) {
            return ran - 1;
        }
        if (ran > 0) {
            done += ran;
            continue;
        }
        /* Nothing of its own is runnable right now. */
        if (quitting) {
            if (wex->ex->head.tasks_attached == 0) {
                ma_wd_executor_leave(wex);
                return -1;
            }
            if (done > 0) {
                return done;
            }
            /* Its tasks are asleep or awaiting I/O: they finish here
             * (tasks never migrate), so wait for them, off the idle list
             * (there is no work it could be woken for). */
            ran = ma_wd_run_one(wex, &wd->idle_period);
            if (ran <= 0) {
                return ran < 0 ? ran - 1 : 0;
            }
            done += ran;
            continue;
        }
        if (done > 0) {
            return done;
        }
        if (ma_wd_wanted(wex)) {
            continue;
        }
        if (wd->spin_ticks != 0) {
            ran = ma_wd_spin(wex, &done);
            if (ran < 0) {
                return ran - 1;
            }
            if (ran > 0) {
                continue;
            }
        }
        int const err = ma_wd_sleep(wex, &done);
        if (err == -ETIME) {
            return done;
        }
        if (err < 0) {
            return err - 1;
        }
    }
}

monad_async_result monad_async_work_dispatcher_executor_run(
    monad_async_work_dispatcher_executor ex_)
{
    int const err = ma_wd_executor_check_call(ex_);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_wd_executor *const wex = ma_wd_executor_from(ex_);
    if (wex->left) {
        return monad_async_make_success(-1);
    }
    wex->in_run = true;
    struct ma_wd_executor *const outer = ma_wd_tls_running;
    ma_wd_tls_running = wex;
    intptr_t const v = ma_wd_run_loop(wex);
    ma_wd_tls_running = outer;
    wex->in_run = false;
    if (v < -1) {
        return monad_async_make_failure((int)(-(v + 1)));
    }
    return monad_async_make_success(v);
}

monad_async_result monad_async_work_dispatcher_executor_read_counters(
    monad_async_work_dispatcher_executor ex_,
    struct monad_async_work_dispatcher_executor_counters *out)
{
    if (ex_ == NULL || out == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_wd_executor *const wex = ma_wd_executor_from(ex_);
    out->items = atomic_load_explicit(&wex->items, memory_order_relaxed);
    out->dispatched =
        atomic_load_explicit(&wex->dispatched, memory_order_relaxed);
    out->sleeps = atomic_load_explicit(&wex->sleeps, memory_order_relaxed);
    out->busy_ticks =
        atomic_load_explicit(&wex->busy_ticks, memory_order_relaxed);
    out->idle_ticks = ma_wd_executor_idle_ticks(wex);
    return monad_async_make_success(0);
}
