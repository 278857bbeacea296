/* Internal: the private parts of a work dispatcher and of its executors,
 * and what the dispatcher's files share.
 *
 * Files: dispatcher.c (life cycle, counters), dispatcher_queue.c (submit,
 * take and cancel: the shared queue), dispatcher_executor.c (an executor's run
 * loop: take, run, spin, sleep, quit), dispatcher_wait.c (wait, quit, and
 * waking the threads blocked in them).
 *
 * The queue: one lock-free multi-producer queue per CPU priority (the
 * executor inbox of inbox.h, linked through each task's attach_node), so
 * submitting never blocks; executors take from it one at a time under
 * `take_lock`, which makes them its single consumer. The per-level counts
 * are raised before a task is pushed and lowered after it is taken, so a
 * count never says "empty" while a task is in the queue.
 *
 * No lost wake-up: an executor that is about to sleep puts itself on the
 * idle list (raising `idle_count`) and then looks at the counts once
 * more; a submitter raises the counts and then looks at `idle_count`. All
 * four are sequentially consistent, so one of the two sees the other, and
 * an executor woken before it sleeps finds its executor's wake flag set
 * (monad_async_executor_wake is sticky) and does not sleep. */
#ifndef MONAD_ASYNC_DISPATCHER_IMPL_H
#define MONAD_ASYNC_DISPATCHER_IMPL_H

#include <monad_async/dispatcher.h>

#include "executor_impl.h"

#include <pthread.h>
#include <stdbool.h>

/* `ma_wd.closed` bits: why submissions get ESHUTDOWN. */
enum
{
    MA_WD_QUIT_ALL = 1u << 0,   /* quit(SIZE_MAX): quitting for good */
    MA_WD_DESTROYING = 1u << 1, /* destroy is checking it may free */
};

/* `ma_wd_executor.activity`: what quit looks at to tell idle ones first. */
enum
{
    MA_WD_BUSY = 0,
    MA_WD_SPINNING,
    MA_WD_SLEEPING,
};

struct ma_wd
{
    /* --- the queue: submitters and takers --- */
    struct ma_inbox levels[monad_async_priority_max];
    /* Tasks in each level; see the file comment. */
    _Alignas(64) _Atomic uint64_t queued[monad_async_priority_max];
    /* Serialises takers: the queues have a single consumer. */
    _Alignas(64) pthread_mutex_t take_lock;

    /* --- totals, each on its own line: different writers --- */
    _Alignas(64) _Atomic uint64_t submitted;
    _Alignas(64) _Atomic uint64_t dispatched;
    _Alignas(64) _Atomic uint64_t executed;
    _Atomic uint64_t cancelled; /* rare: shares executed's line */

    /* --- written by every submission: its own line, or each would
     * stall the executors reading the line below --- */
    _Alignas(64) _Atomic uint32_t submits_inflight; /* destroy waits them out */
    _Atomic uint32_t closed; /* MA_WD_* bits; read by every submission */
    _Atomic uint32_t refs; /* the creator's, and one per live executor */

    /* --- read on every submission and take: rarely written --- */
    _Alignas(64) _Atomic uint32_t idle_count; /* executors on `idle` */
    _Atomic uint32_t waiters;                 /* threads blocked in wait */
    /* The loosest thresholds of the threads blocked in wait: when even
     * these do not hold, no waiter needs waking. */
    _Atomic uint64_t wake_queued_at;
    _Atomic uint64_t wake_unexecuted_at;

    /* --- under `lock` --- */
    _Alignas(64) pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; wait and quit block on it */
    struct ma_list executors; /* in the pool */
    struct ma_list idle;      /* asleep, most recent at the back */
    uint64_t executors_count;
    uint64_t quit_pending; /* told to quit, not yet acknowledged */
    uint64_t quit_waiters; /* threads blocked in quit */
    struct ma_list wait_records; /* threads blocked in wait */
    /* Tick totals of executors that have left the pool. */
    uint64_t departed_busy_ticks;
    uint64_t departed_idle_ticks;

    /* --- set at create --- */
    uint64_t spin_ticks; /* 0: no spin */
    struct timespec idle_period;
};

struct ma_wd_executor
{
    struct monad_async_work_dispatcher_executor_head head; /* first */
    struct ma_wd *wd;
    struct ma_executor *ex;

    /* --- under wd->lock --- */
    struct ma_link pool_link; /* in wd->executors */
    struct ma_link idle_link; /* in wd->idle */
    bool in_pool;
    bool quit_acknowledged;

    /* --- owner thread --- */
    bool in_run;
    bool left; /* out of the pool: run returns negative */
    uint64_t spun_ticks;
    /* Dispatched tasks whose work ended since the last run returned:
     * added to wd->executed after each run (see ma_wd_task_exited). */
    uint64_t exits_pending;

    /* --- any thread --- */
    /* On wd->idle; cleared (under wd->lock) by whoever takes it off. */
    _Atomic uint32_t asleep_listed;
    _Atomic uint32_t activity; /* MA_WD_BUSY, ... */
    _Atomic uint32_t told_to_quit;
    /* Counters, written by the owner with relaxed stores. */
    _Atomic uint64_t items;
    _Atomic uint64_t dispatched;
    _Atomic uint64_t sleeps;
    _Atomic uint64_t busy_ticks;
    _Atomic uint64_t idle_ticks;
    /* When its current sleep began (0: awake), so that readers count a
     * long sleep before it ends. */
    _Atomic uint64_t asleep_since;
};

/* An executor's idle ticks as of now, its current sleep included. */
static inline uint64_t ma_wd_executor_idle_ticks(struct ma_wd_executor *wex)
{
    uint64_t const since =
        atomic_load_explicit(&wex->asleep_since, memory_order_relaxed);
    uint64_t const published =
        atomic_load_explicit(&wex->idle_ticks, memory_order_relaxed);
    if (since == 0) {
        return published;
    }
    uint64_t const now = ma_ticks_read();
    return published + (now > since ? now - since : 0);
}

static inline struct ma_wd *ma_wd_from(monad_async_work_dispatcher wd)
{
    return (struct ma_wd *)wd;
}

static inline struct ma_wd_executor *
ma_wd_executor_from(monad_async_work_dispatcher_executor ex)
{
    return (struct ma_wd_executor *)ex;
}

/* The dispatcher executor whose run is on this thread's stack, or NULL. */
extern __thread struct ma_wd_executor *ma_wd_tls_running MA_TLS_HOT;

/* Tasks queued now: an upper bound (dispatched is read first). */
static inline uint64_t ma_wd_queued_bound(struct ma_wd *wd)
{
    uint64_t const d = atomic_load(&wd->dispatched);
    return atomic_load(&wd->submitted) - d;
}

/* Submitted tasks not yet finished: an upper bound (executed first). */
static inline uint64_t ma_wd_unexecuted_bound(struct ma_wd *wd)
{
    uint64_t const e = atomic_load(&wd->executed);
    return atomic_load(&wd->submitted) - e;
}

/* Lowest (most urgent) priority level with queued tasks, or
 * monad_async_priority_max when the queue is empty. */
static inline int ma_wd_best_queued(struct ma_wd *wd)
{
    for (int p = 0; p < monad_async_priority_max; p++) {
        if (atomic_load(&wd->queued[p]) != 0) {
            return p;
        }
    }
    return monad_async_priority_max;
}

/* A counter only its owner thread writes, which other threads read. */
static inline void ma_counter_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(
        c, atomic_load_explicit(c, memory_order_relaxed) + v,
        memory_order_relaxed);
}

/* Under wd->lock: takes `wex` off the idle list if it is on it. */
static inline void ma_wd_unlist_idle(struct ma_wd *wd, struct ma_wd_executor *wex)
{
    if (atomic_load(&wex->asleep_listed)) {
        ma_list_remove(&wd->idle, &wex->idle_link);
        atomic_store(&wex->asleep_listed, 0);
        atomic_fetch_sub(&wd->idle_count, 1);
    }
}

/* Drops a reference; the last one frees the dispatcher. */
void ma_wd_unref(struct ma_wd *wd);

/* Owner thread of `wex`: takes the most urgent queued task if it is
 * strictly more urgent than `below` and attaches it to wex's executor.
 * Returns 1 if it took one, 0 if there was none to take, -1 if there is
 * one it cannot take this instant (another executor is taking, or its
 * submitter is mid-push): try again in a moment. */
int ma_wd_take(struct ma_wd_executor *wex, int below);

/* The exit observer of a dispatched task (arg: the executor running it),
 * called on that executor's thread once the task's work is over. It only
 * counts: the executor adds the count to the dispatcher's after its run
 * returns, once the slice's own figures are published, so that a thread
 * that sees the task executed sees those too. */
void ma_wd_task_exited(void *arg);

/* Wakes up to `n` sleeping executors of the pool. */
void ma_wd_wake_idle(struct ma_wd *wd, size_t n);

/* After `executed` or `dispatched` rose: wakes threads blocked in wait if
 * their thresholds may now hold. */
void ma_wd_poke_waiters(struct ma_wd *wd);

/* Takes `wex` out of the pool (quit acknowledged, or destroyed): under
 * wd->lock, wakes quit's waiters. */
void ma_wd_executor_leave(struct ma_wd_executor *wex);

/* A relative timeout as an absolute CLOCK_MONOTONIC deadline: 0, or
 * EINVAL for a tv_nsec out of range. NULL sets `*forever` instead. */
int ma_wd_deadline(struct timespec const *timeout, struct timespec *deadline,
                   bool *forever);

#endif
