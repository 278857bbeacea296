/* monad-async: the work dispatcher, a priority-based thread pool of
 * executors fed by one shared queue.
 *
 * Any thread submits tasks to the dispatcher; each executor of the pool
 * runs on its own thread, in a loop of
 * monad_async_work_dispatcher_executor_run, and takes queued tasks
 * strictly by CPU priority (first in, first out within a level) whenever
 * it is free. A task runs on the executor that took it from its launch to
 * its exit: it never migrates, even when it suspends (sleeps, awaits I/O).
 *
 * An executor takes a queued task only when that task's priority is
 * strictly higher than anything runnable of its own, so it never hoards
 * work another executor could start, and what it takes runs next. With
 * nothing to do it spins briefly, then sleeps until work arrives (or its
 * own tasks need it) and is woken by the submitter.
 *
 * Life cycle: create the dispatcher, create executors on their threads
 * and run them, submit, wait, quit, destroy the executors on their
 * threads, destroy the dispatcher. */
#ifndef MONAD_ASYNC_DISPATCHER_H
#define MONAD_ASYNC_DISPATCHER_H

#include "executor.h"

MONAD_ASYNC_BEGIN_EXTERN_C

/* Opaque handle to a work dispatcher. */
typedef struct monad_async_work_dispatcher_head *monad_async_work_dispatcher;
typedef struct monad_async_work_dispatcher_executor_head
    *monad_async_work_dispatcher_executor;

/* Flags for `struct monad_async_work_dispatcher_attr`. */
enum monad_async_work_dispatcher_flag
{
    /* An idle executor sleeps at once instead of spinning first. Saves CPU
     * time when work is sparse; costs a wake-up (a system call on the
     * submitting thread, a few microseconds) on every task that finds the
     * pool asleep. */
    MONAD_ASYNC_WORK_DISPATCHER_FLAG_NO_SPIN = 1u << 0
};

/* Options for a dispatcher. Zero-initialise, then set what you need. */
struct monad_async_work_dispatcher_attr
{
    /* How long an executor with nothing to do keeps looking for work
     * before it goes to sleep, in nanoseconds. 0 picks the default,
     * 20 microseconds (see also MONAD_ASYNC_WORK_DISPATCHER_FLAG_NO_SPIN). */
    uint64_t spin_ns;
    /* How long monad_async_work_dispatcher_executor_run sleeps with
     * nothing to do before it returns 0, in nanoseconds. 0 picks the
     * default, 100 milliseconds. Work, and quit, wake it at once. */
    uint64_t idle_ns;
    uint32_t flags; /* enum monad_async_work_dispatcher_flag bits */
    uint32_t reserved[5];
};

/* Options for an executor of a dispatcher. Zero-initialise, then set what
 * you need. */
struct monad_async_work_dispatcher_executor_attr
{
    /* The executor's own options, as for monad_async_executor_create:
     * `executor.io_uring_ring.entries = 0` makes a compute-only executor. */
    struct monad_async_executor_attr executor;
    uint32_t reserved[4];
};

/* The public part of a dispatcher's executor: read-only. */
struct monad_async_work_dispatcher_executor_head
{
    /* The executor underneath, owned by the thread that created this one.
     * Tasks may be attached to it directly (they are its own work, and
     * keep it from taking lower-priority work from the queue); never run
     * or destroy it directly. */
    monad_async_executor executor;
    /* The dispatcher it takes work from. */
    monad_async_work_dispatcher dispatcher;
};

/* A snapshot of a dispatcher's counters. The totals count from the
 * dispatcher's creation. */
struct monad_async_work_dispatcher_counters
{
    uint64_t submitted; /* tasks submitted */
    /* Tasks taken from the queue: by an executor, or by
     * monad_async_work_dispatcher_cancel_queued. */
    uint64_t dispatched;
    /* Dispatched tasks whose work is over (returned or cancelled), their
     * user_on_exit called. */
    uint64_t executed;
    /* Of those, tasks monad_async_work_dispatcher_cancel_queued took. */
    uint64_t cancelled;
    /* Tasks in the queue now, per CPU priority; `queued` is their sum. */
    uint64_t queued;
    uint64_t queued_by_priority[monad_async_priority_max];
    uint64_t executors;      /* executors in the pool now */
    uint64_t executors_idle; /* of those, spinning or asleep for lack of work */
    /* Tick totals of every executor that was ever in the pool: running
     * task slices (counted as each slice ends), and spinning or sleeping
     * for lack of work (a sleep counted as it goes). Zero for executors
     * created with MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING. */
    monad_async_cpu_ticks_count_t busy_ticks;
    monad_async_cpu_ticks_count_t idle_ticks;
};

/* A snapshot of one executor's counters. */
struct monad_async_work_dispatcher_executor_counters
{
    uint64_t items;      /* task slices run (launches and resumptions) */
    uint64_t dispatched; /* tasks it took from the dispatcher's queue */
    uint64_t sleeps;     /* times it slept for lack of work */
    /* As in monad_async_work_dispatcher_counters. */
    monad_async_cpu_ticks_count_t busy_ticks; /* running task slices */
    monad_async_cpu_ticks_count_t idle_ticks; /* spinning or asleep */
};

/* Creates a dispatcher. Expensive. `attr` may be NULL (the defaults).
 * EINVAL: NULL `wd`, or unknown flags. ENOMEM. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_work_dispatcher_create(
    monad_async_work_dispatcher *wd,
    struct monad_async_work_dispatcher_attr const *attr);

/* Destroys a dispatcher. EBUSY while executors are in its pool (created
 * and not yet quit or destroyed), tasks are queued, or threads are
 * blocked in its wait or quit. Executors that have
 * quit may be destroyed after their dispatcher: it is freed once the last
 * of them is. Submissions racing with destroy get ESHUTDOWN. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_work_dispatcher_destroy(monad_async_work_dispatcher wd);

/* Creates an executor on the calling thread (which alone may run and
 * destroy it) and adds it to `wd`'s pool. `attr` may be NULL
 * (compute-only, time tracking on). After
 * monad_async_work_dispatcher_quit(wd, SIZE_MAX, ...) the executor is
 * created already told to quit: its first run returns a negative value.
 * EINVAL: NULL `ex` or `wd`. Otherwise the errors of
 * monad_async_executor_create. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_work_dispatcher_executor_create(
    monad_async_work_dispatcher_executor *ex, monad_async_work_dispatcher wd,
    struct monad_async_work_dispatcher_executor_attr const *attr);

/* Destroys an executor, on its own thread, leaving the pool if it has not
 * quit. Its tasks still attached are cancelled and run to their exit, as
 * monad_async_executor_destroy does (dispatched ones count as executed):
 * quit it first to let them finish. EPERM: not the creating thread.
 * EBUSY: called from inside its run. EINVAL: NULL. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_work_dispatcher_executor_destroy(
    monad_async_work_dispatcher_executor ex);

/* Runs the executor on its thread: takes work from the dispatcher and
 * runs it, with its own tasks, by priority. Returns once it has run at
 * least one item (a task's launch or one resumption) and nothing more is
 * runnable or queued right now, or once it has had nothing to do for the
 * dispatcher's idle period (value 0).
 *
 * Once told to quit (monad_async_work_dispatcher_quit) it takes no more
 * work from the queue, runs the tasks it already has to their exit,
 * leaves the pool and returns a negative value; so does every later call.
 *
 * Success: `value` is the number of items run, or negative once quit.
 * EPERM: not the creating thread. EBUSY: called from inside its own run.
 * EINVAL: NULL. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_work_dispatcher_executor_run(
    monad_async_work_dispatcher_executor ex);

/* Queues `n` tasks for execution, in order, each behind those already
 * queued at its CPU priority, and wakes sleeping executors to take them.
 * Thread-safe, from any number of threads, executors' tasks included.
 *
 * Each task must be ready to attach: `user_code` set, its priorities
 * valid, not attached anywhere. From here until its work is over it is
 * the dispatcher's (its state has ATTACHED, PENDING_LAUNCH and, while
 * queued, QUEUED): do not change it, attach it, submit it again or
 * destroy it (EBUSY). Its `ticks.attached` is the submission's stamp.
 *
 * All or nothing: on any error none of the tasks is queued.
 * Success: `value` is `n`. EINVAL: NULL `wd`, NULL `tasks` with `n` > 0,
 * a NULL task, NULL `user_code`, a priority out of range. EBUSY: a task
 * is attached or queued already (the same task twice in `tasks`
 * included). ESHUTDOWN: the dispatcher is quitting for good or being
 * destroyed. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_work_dispatcher_submit(
    monad_async_work_dispatcher wd, monad_async_task const *tasks, size_t n);

/* Waits until at most `max_undispatched` tasks are still queued and at
 * most `max_unexecuted` submitted tasks have not finished (their
 * user_on_exit included). `timeout` is how long to wait (NULL: as long as
 * it takes; {0, 0}: not at all), counted against a CLOCK_MONOTONIC
 * deadline fixed on entry.
 *
 * Success: `value` is the number of submitted tasks not yet finished.
 * ETIME: the timeout passed first. EINVAL: NULL `wd`, or `tv_nsec` out of
 * range. EDEADLK: a NULL timeout on the thread of one of `wd`'s executors
 * while it runs (from one of its tasks): it would wait for work that
 * executor can no longer do. A finite timeout blocks that executor's
 * thread meanwhile. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_work_dispatcher_wait(
    monad_async_work_dispatcher wd, size_t max_undispatched,
    size_t max_unexecuted, struct timespec const *timeout);

/* Tells up to `max_executors` executors of the pool to quit, idle ones
 * first, then waits up to `timeout` (as for monad_async_work_dispatcher_
 * wait; NULL: until they have) for every executor told so far to
 * acknowledge, which it does from its run once its tasks have exited (a
 * running task always finishes first). SIZE_MAX tells every executor,
 * those created later included: the dispatcher is then quitting for good
 * and refuses submissions (ESHUTDOWN). Tasks still queued stay queued
 * (see monad_async_work_dispatcher_cancel_queued).
 *
 * Success: `value` is the number of executors this call told. ETIME: the
 * timeout passed before all acknowledged (they still quit later).
 * EINVAL: NULL `wd`, or `tv_nsec` out of range. EDEADLK: as for wait. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_work_dispatcher_quit(
    monad_async_work_dispatcher wd, size_t max_executors,
    struct timespec const *timeout);

/* Takes every task still queued out of the queue and ends its work
 * without running it, on the calling thread: its `result` becomes
 * ECANCELED, its state EXITED, and its user_on_exit is called here (not
 * on an executor's thread). For a dispatcher that quit with work left, or
 * for work no longer wanted. Tasks already dispatched are unaffected.
 * Thread-safe.
 *
 * Success: `value` is the number of tasks cancelled. EINVAL: NULL. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_work_dispatcher_cancel_queued(monad_async_work_dispatcher wd);

/* Copies the dispatcher's counters into `*out`. Thread-safe, any time.
 * The figures are read one by one while work goes on, in an order that
 * keeps executed <= dispatched <= submitted. EINVAL: NULL arguments. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_work_dispatcher_read_counters(
    monad_async_work_dispatcher wd,
    struct monad_async_work_dispatcher_counters *out);

/* Copies one executor's counters into `*out`. Thread-safe, any time until
 * the executor is destroyed. EINVAL: NULL arguments. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_work_dispatcher_executor_read_counters(
    monad_async_work_dispatcher_executor ex,
    struct monad_async_work_dispatcher_executor_counters *out);

MONAD_ASYNC_END_EXTERN_C

#endif
