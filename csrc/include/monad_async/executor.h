/* monad-async: executors, which run tasks by priority on one thread.
 *
 * An executor belongs to the thread that created it: only that thread may
 * run or destroy it (EPERM otherwise). Any thread may attach tasks to it,
 * cancel them, or wake it. */
#ifndef MONAD_ASYNC_EXECUTOR_H
#define MONAD_ASYNC_EXECUTOR_H

#include "task.h"

#include <time.h>

MONAD_ASYNC_BEGIN_EXTERN_C

/* Flags for `struct monad_async_executor_attr`. */
enum monad_async_executor_flag
{
    /* Take no tick stamps: task and executor tick figures stay zero.
     * Saves a tick read (about 10 ns) per state change. */
    MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING = 1u << 0
};

/* Options for an executor. Zero-initialise, then set what you need. */
struct monad_async_executor_attr
{
    struct
    {
        /* Submission queue entries of the executor's io_uring. 0 makes a
         * compute-only executor with no ring. */
        unsigned entries;
        /* Extra IORING_SETUP_* flags. */
        unsigned flags;
    } io_uring_ring;
    uint32_t flags; /* enum monad_async_executor_flag bits */
    uint32_t reserved[7];
};

/* Counters, maintained by the executor's thread. Read them on that
 * thread (they are plain integers, not synchronised). */
struct monad_async_executor_counters
{
    uint64_t attached;   /* tasks attached (both paths) */
    uint64_t launched;   /* first slices run */
    uint64_t resumed;    /* later slices run */
    uint64_t suspended;  /* suspensions */
    uint64_t exited;     /* tasks whose work ended, cancelled ones too */
    uint64_t cancelled;  /* tasks cancelled (pending or started) */
    uint64_t inbox_drained; /* attaches and cancels from other threads */
    uint64_t sleeps;     /* times run waited for work */
};

/* Tick totals, maintained like the counters. */
struct monad_async_executor_ticks
{
    monad_async_cpu_ticks_count_t in_run;     /* inside run, overall */
    monad_async_cpu_ticks_count_t launching;  /* running first slices */
    monad_async_cpu_ticks_count_t resuming;   /* running later slices */
    monad_async_cpu_ticks_count_t sleeping;   /* waiting for work */
};

/* The public part of an executor: read-only. */
struct monad_async_executor_head
{
    /* The task running on the executor right now, or NULL. */
    MONAD_ASYNC_ATOMIC(monad_async_task) current_task;
    /* Tasks attached and not yet exited (owner thread's view). */
    uint64_t tasks_attached;
    /* Tasks ready to run, per CPU priority (owner thread's view). */
    uint64_t tasks_runnable[monad_async_priority_max];
    /* Tasks sleeping in suspend_for_duration. */
    uint64_t tasks_timed;
    struct monad_async_executor_counters counters;
    struct monad_async_executor_ticks ticks;
};

/* Creates an executor owned by the calling thread. Expensive.
 * `attr` may be NULL (compute-only, time tracking on). ENOMEM, or the
 * error of io_uring set-up when a ring is asked for. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_create(
    monad_async_executor *ex, struct monad_async_executor_attr const *attr);

/* Destroys an executor, on its own thread (EPERM otherwise; EBUSY from
 * inside one of its tasks). Tasks still attached are cancelled first:
 * pending ones never run, started ones resume with ECANCELED and are run
 * to their exit. Attaches from other threads that begin before destroy
 * returns get ESHUTDOWN or are cancelled, none is lost; the caller must
 * make sure none begins after destroy returns (the executor is gone). */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_executor_destroy(monad_async_executor ex);

/* Runs tasks on the calling (owning) thread.
 *
 * An item is one slice of a task: its launch, or one resumption, running
 * until it suspends or exits. run returns once it has done `max_items`
 * items, or once it has done at least one and nothing more is runnable
 * right now. When nothing is runnable at the start it waits up to
 * `timeout` for work (NULL: until work arrives or monad_async_executor_wake;
 * {0, 0}: not at all).
 *
 * Success: `value` is the number of items done (0 when woken by
 * monad_async_executor_wake with nothing to do). ETIME: the timeout passed
 * with nothing done. EPERM: not the owning thread. EBUSY: called from
 * inside one of this executor's tasks. EINVAL: max_items is 0. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_run(
    monad_async_executor ex, size_t max_items, struct timespec const *timeout);

/* Makes a waiting run return (or the next wait, if none is waiting).
 * Thread-safe; costs a system call only when the executor sleeps. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_executor_wake(monad_async_executor ex);

/* The executor whose task, or whose run, is executing on this thread
 * right now: `value` is the monad_async_executor, or 0 for none. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_current(void);

MONAD_ASYNC_END_EXTERN_C

#endif
