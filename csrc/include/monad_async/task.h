/* monad-async: tasks, units of work with their own stacks.
 *
 * A task is created once (expensive: it reserves its stack) and then
 * reused for any number of pieces of work (cheap): set `user_code`,
 * `user_ptr` and `priority`, attach it to an executor, and once it has
 * exited attach it again. */
#ifndef MONAD_ASYNC_TASK_H
#define MONAD_ASYNC_TASK_H

#include "context.h"
#include "priority.h"
#include "ticks.h"

MONAD_ASYNC_BEGIN_EXTERN_C

typedef struct monad_async_executor_head *monad_async_executor;
typedef struct monad_async_task_head *monad_async_task;

/* Bits of `monad_async_task_head.state`. */
enum monad_async_task_state_flag
{
    /* Attached to an executor: from monad_async_task_attach until the
     * executor has recorded its exit. While set, the task cannot be
     * attached again or destroyed (EBUSY). */
    MONAD_ASYNC_TASK_STATE_ATTACHED = 1u << 0,
    /* Attached but not yet started. */
    MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH = 1u << 1,
    /* Executing on its executor's thread right now. */
    MONAD_ASYNC_TASK_STATE_RUNNING = 1u << 2,
    /* Started, then suspended (yielded, sleeping, awaiting I/O). */
    MONAD_ASYNC_TASK_STATE_SUSPENDED = 1u << 3,
    /* Its last piece of work is over; `result` holds its outcome. */
    MONAD_ASYNC_TASK_STATE_EXITED = 1u << 4,
    /* Cancellation was requested: every suspension point from now until
     * exit returns ECANCELED. Cleared by the next attach. */
    MONAD_ASYNC_TASK_STATE_CANCELLED = 1u << 5,
    /* Attached from another thread and still in the executor's inbox. */
    MONAD_ASYNC_TASK_STATE_IN_INBOX = 1u << 6,
    /* Submitted to a work dispatcher and still in its queue: no executor
     * yet (`current_executor` is NULL). Set with ATTACHED and
     * PENDING_LAUNCH, so the task can be neither attached nor submitted
     * again, nor destroyed (EBUSY), until its work is over. */
    MONAD_ASYNC_TASK_STATE_QUEUED = 1u << 7
};

/* Tick stamps of the task's current (or last) piece of work, from
 * monad_async_ticks_now(). Zero where time tracking is off. */
struct monad_async_task_ticks
{
    monad_async_cpu_ticks_count_t attached;       /* attach called */
    monad_async_cpu_ticks_count_t launched;       /* first ran */
    monad_async_cpu_ticks_count_t suspended;      /* last suspended */
    monad_async_cpu_ticks_count_t resumed;        /* last resumed */
    monad_async_cpu_ticks_count_t exited;         /* exit recorded */
    monad_async_cpu_ticks_count_t executing;      /* total ticks running */
};

/* The public part of a task. Fields under "set by you" may be changed
 * while the task is not attached; everything else is read-only. Two
 * exceptions: a running task may change its own `priority.io`, which
 * applies to the operations it starts afterwards (it is read only on the
 * executor's thread, when an operation starts or leaves the queue of
 * tasks waiting for a slot of the in-flight guard); and attached work's
 * `priority.cpu` changes through monad_async_task_set_cpu_priority only
 * (never by a plain store: the executor queues by its own copy), which
 * writes the field on the executor's thread, where it may be read. */
struct monad_async_task_head
{
    /* --- set by you --- */
    struct
    {
        monad_async_priority cpu; /* order on the executor's ready queues */
        monad_async_priority io;  /* order and kernel priority of its I/O (io.h) */
    } priority;
    /* The work. Runs on the task's own stack (for stackful switchers);
     * its return value becomes `result`. Must not be NULL at attach. */
    monad_async_result (*user_code)(monad_async_task task);
    /* Anything you like; the library never touches it. */
    void *user_ptr;
    /* Optional. Called on the executor's thread once the task's work is
     * over, whether it ran to its return or was cancelled before it
     * launched (then `result.error` is ECANCELED and user_code never ran).
     * The task is already reusable: the hook may attach it again. So
     * may any other thread that sees EXITED in `state`, racing with the
     * hook: where other threads re-attach tasks by watching `state`, the
     * hook must not read the task's fields. */
    void (*user_on_exit)(monad_async_task task);

    /* --- read-only from here on --- */

    /* enum monad_async_task_state_flag bits. */
    MONAD_ASYNC_ATOMIC(uint32_t) state;
    /* The executor it is attached to, or NULL. */
    MONAD_ASYNC_ATOMIC(monad_async_executor) current_executor;
    /* The switcher it runs with. */
    monad_async_context_switcher switcher;
    /* The outcome of its last piece of work (valid once EXITED). */
    monad_async_result result;
    /* How many times it has been suspended in its current piece of work. */
    uint64_t suspensions;
    struct monad_async_task_ticks ticks;
};

/* Options for a task. Zero-initialise, then set what you need. */
struct monad_async_task_attr
{
    /* Usable stack bytes; 0 picks the default (256 KiB). Rounded up to
     * whole pages; a guard page below it catches overflow: the process
     * prints "monad-async: task stack overflow: the task's stack is N
     * bytes; ..." and aborts (the handler that does so comes with the
     * first executor; other faults go to the handler installed before
     * it). Pages are committed as they are touched. Ignored for the none
     * switcher. */
    size_t stack_size;
    uint32_t reserved[4];
};

/* Creates a task that runs with `switcher`. Its priority starts at normal
 * for CPU and I/O. Expensive: reserves the stack.
 * EINVAL: NULL `task` or `switcher`, or a `stack_size` above half the
 * address space. ENOMEM: no memory for the task, or its stack (with the
 * guard page) could not be mapped: the address space, or the number of
 * mappings (vm.max_map_count), ran out. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_task_create(
    monad_async_task *task, monad_async_context_switcher switcher,
    struct monad_async_task_attr const *attr);

/* Destroys a task. EBUSY while it is attached. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_destroy(monad_async_task task);

/* Schedules `task` on `ex`. Thread-safe.
 *
 * From the executor's own thread: O(1), no lock, no malloc, no system
 * call; the task goes to the back of its CPU priority's ready queue.
 * From any other thread: the task goes through the executor's lock-free
 * inbox and a sleeping executor is woken.
 *
 * `opt_switcher`, if not NULL, replaces the task's switcher first (the
 * first launch with a new switcher sets up its stack again).
 *
 * EINVAL: NULL ex or task, NULL user_code, or a priority out of range.
 * EBUSY: the task is already attached (to this or any executor).
 * ESHUTDOWN: the executor is being destroyed. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_task_attach(
    monad_async_executor ex, monad_async_task task,
    monad_async_context_switcher opt_switcher);

/* Inside a running task: go to the back of its priority's ready queue and
 * let others run. Success when resumed; ECANCELED if the task was
 * cancelled; EINVAL when `task` is not the task running on this thread;
 * ENOTSUP for a task on the none switcher. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_yield(monad_async_task task);

/* Inside a running task: suspend for at least `ns` nanoseconds. Errors
 * as for monad_async_task_yield; ECANCELED wakes it early. On an executor
 * with a ring this is an io_uring timeout (monad_async_io_timeout), which
 * like any I/O may wait for a slot of the in-flight guard (a timeout
 * finishes by itself, so it may use the reserve that waiting receives
 * leave: io.h); without a ring, the executor's own timer list. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_suspend_for_duration(monad_async_task task, uint64_t ns);

/* Parking: a task waits for anything at all (a lock, a message, another
 * task's exit) by parking, and whoever makes its condition true wakes it.
 *
 * A token names one piece of work of a task (each attach starts a new
 * one): a wake carrying a stale token (the work it named is over, the
 * task exited or carries other work now) is refused with ESRCH, so a late
 * wake never resumes the wrong work. Each piece of work holds at most one
 * pending wake (a permit, as for a thread's park): a wake of a task that
 * is not parked leaves the permit, and its next park consumes it and
 * returns at once, so no wake-up is lost between deciding to park and
 * parking. A park may also return because of a permit left by an earlier,
 * unrelated wake of the same work: re-check the condition after a park
 * and park again if it does not hold.
 *
 * Parking costs the task's memory only: a parked task holds no submission
 * entry and no operation slot. */

/* A token naming `task`'s current piece of work, for
 * monad_async_task_wake, written to `*token`. Any thread. Take it while
 * the task is attached (inside the task, or after attaching it): ENOENT
 * when the task is not attached. EINVAL: NULL arguments. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_wake_token(monad_async_task task, uint64_t *token);

/* The task running on this thread right now (a task of an executor, or
 * of a work dispatcher's executor, between its launch and its exit):
 * `value` is the monad_async_task, or 0 for none. When one runs and
 * `token` is not NULL, its wake token (as monad_async_task_wake_token
 * gives) is written to `*token`. One call where a wait built on park
 * needs both: the task to park and the token its waker will use. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_current(uint64_t *token);

/* Inside a running task: suspends it until a wake names this piece of
 * work, for at most `timeout_ns` nanoseconds (UINT64_MAX: no deadline;
 * 0: only consume a pending permit).
 *
 * Success: woken (or a permit was pending, and no suspension happened).
 * ETIME: the timeout passed without a wake. ECANCELED: the task was
 * cancelled (before or while parked; a wake that arrived first wins and
 * the park succeeds, the next suspension point then says ECANCELED).
 * EINVAL: `task` is not the task running on this thread. ENOTSUP: a task
 * on the none switcher. The deadline is kept by the executor's timer
 * list, on executors with and without a ring alike. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_park(monad_async_task task, uint64_t timeout_ns);

/* Wakes the parked work that `token` names, or leaves it a permit if it
 * is not parked (yet). Thread-safe.
 *
 * From the thread of the task's executor (inside one of its tasks, or
 * outside its run): the task goes straight to the back of its ready
 * queue; O(1), no lock, no malloc, no system call. From any other thread:
 * the task goes through the executor's lock-free inbox and a sleeping
 * executor is woken (a system call only then), as a remote attach does.
 * The caller must keep `task` alive (not destroyed) for the call; its
 * executor is kept alive by the parked task itself.
 *
 * Success: `value` is 1 when this call resumed a parked task, 0 when it
 * left a permit (or one was already pending). ESRCH: the work `token`
 * names is over (refused; nothing happens). EINVAL: NULL task. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_wake(monad_async_task task, uint64_t token);

/* monad_async_task_wake for a waker that is a task of the woken task's
 * own executor, running on its thread, and that is likely to park (or
 * wait on I/O) next: a channel's send to a waiting receiver, followed by
 * the sender's wait for the reply.
 *
 * On the executor's own thread the woken task cannot run before the
 * running task suspends, so the wake is kept by the executor and applied
 * as late as that: before anything else is made ready or cancelled
 * there (so the woken task keeps its place in line, and a cancel that
 * follows finds it woken), and when the running task's slice ends. If the
 * running task then parks (or waits on I/O) and the woken task is the one
 * the run loop would run next (nothing ready at its priority or above,
 * nothing for the loop to do first), it switches straight to it: no
 * ready-queue round trip, no second pass of the hand-off's checks. One
 * wake is kept at a time (an earlier one is applied first). Meanwhile the
 * woken task is still parked: observers (dump, tasks_runnable) show it
 * so, and another wake of it that gets there first resumes it (value 1),
 * the deferred one then leaving a permit, as a wake that finds the task
 * already woken does.
 *
 * When the caller is not a task of that executor running on its thread,
 * or the work `token` names is not parked there now, or `task` is the
 * caller itself, this is monad_async_task_wake, applied at once.
 *
 * Success: `value` is 2 when the wake was deferred, else as for
 * monad_async_task_wake (1: it resumed a parked task; 0: it left a
 * permit). ESRCH: the work `token` names is over (refused; nothing
 * happens). EINVAL: NULL task. No lock, no malloc, no system call on the
 * deferred path.
 *
 * Example, in task `me` handing `msg` to the parked `peer` and waiting for
 * its reply: store `msg` where `peer` looks for it; call
 * `monad_async_task_wake_deferred(peer, peer_token)` (value 2); then
 * `while (!reply_ready) monad_async_task_park(me, UINT64_MAX);`, whose
 * first park switches straight to `peer` (tests/wake_deferred.c). */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_wake_deferred(monad_async_task task, uint64_t token);

/* Deadlines: a running task bounds every wait it makes from now on.
 *
 * While a task has a deadline (a tick count, monad_async_ticks_now()'s
 * clock), each of its suspension points that is still waiting when the
 * deadline passes returns ETIMEDOUT, and one that starts after it passed
 * returns ETIMEDOUT at once:
 *   - a sleep, a park or a wait for a buffer, a slot of the in-flight
 *     guard or the kernel to take submissions ends (the task leaves the
 *     queue it was in; a buffer or slot already handed to it is passed
 *     on);
 *   - an operation in flight is cancelled in the kernel
 *     (IORING_OP_ASYNC_CANCEL) and the task resumes only once the kernel
 *     has finished with it, so its buffers are safe: it then reports
 *     ETIMEDOUT, or its real outcome if it finished first. For
 *     monad_async_io_wait that is the operation waited for; for
 *     monad_async_io_reap every initiated operation of the task still in
 *     flight (each reports ETIMEDOUT through its status); a blocking
 *     operation past the deadline is not started at all, an initiated one
 *     is (initiating is not a suspension);
 *   - a yield past the deadline returns ETIMEDOUT without suspending (a
 *     yield is not waiting for anything, so one queued before the
 *     deadline resumes normally).
 * Unlike cancellation it is not sticky: clearing or moving the deadline
 * restores normal behaviour, and the task goes on normally afterwards.
 * Cancellation wins: a cancelled task gets ECANCELED, deadline or not. A
 * wake that resumed a parking before the deadline passed wins too (the
 * park succeeds). Each attach starts its work with no deadline. Without
 * one, suspension points cost one predictable branch more. */

/* Sets the running task's deadline (0: none). Only the task itself, while
 * it runs: EPERM for a task that is not the one running on this thread.
 * EINVAL: NULL task. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_task_set_deadline(
    monad_async_task task, monad_async_cpu_ticks_count_t deadline);

/* The running task's deadline (0: none) into `*deadline`, for nesting:
 * take it, set an earlier one, put it back. EPERM as for
 * monad_async_task_set_deadline; EINVAL: NULL arguments. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_task_get_deadline(
    monad_async_task task, monad_async_cpu_ticks_count_t *deadline);

/* Changes the CPU priority of the work `token` names (from
 * monad_async_task_wake_token) to `priority`, for the rest of that work:
 * the tool for priority inheritance (a task holding a lock that a
 * higher-priority task waits for is raised to that priority until it
 * releases it). Thread-safe; a running task may change its own.
 *
 * Wherever the work is: on a ready queue, it moves to the back of the new
 * level's queue (a change to the level it has keeps its place); running,
 * it goes to the new level the next time it is queued (its next yield,
 * say); suspended (sleeping, parked, waiting for I/O or for a slot or a
 * buffer), it applies when it is next made ready; still in an executor's
 * inbox (a remote attach), when the executor takes it from there; still
 * in a work dispatcher's queue, when an executor takes it (it keeps its
 * place in the dispatcher's queue, which is ordered by the priority it
 * was submitted with). `priority.cpu` then reads the new level, and keeps
 * it after the work ends.
 *
 * From the executor's thread: at once (outside its run, if a change
 * from another thread is on its way, that one carries it: before the
 * next slice); O(1), no lock, no malloc, no system call. From any other
 * thread: the change goes through the executor's lock-free inbox and is
 * applied before its next slice, waking it if it sleeps (a system call
 * only then); changes made while one is on its way replace its level
 * instead of queueing another (the last one made wins). A change whose
 * work ends before it is applied is dropped, never applied to later work
 * of the task. The caller must keep `task` alive (not destroyed) for
 * the call; the executor needs no help: the call holds it while the work
 * is live.
 *
 * ENOENT: the work `token` names is over, or is not attached (nothing
 * changes). EINVAL: NULL task, or a priority out of range. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_task_set_cpu_priority(
    monad_async_task task, uint64_t token, monad_async_priority priority);

/* Cancels `task`'s current work. Thread-safe.
 *
 * On the executor's own thread: a task pending launch is unlinked and
 * never runs, its result becomes ECANCELED and cancel returns success; a
 * started task (suspended or running) is marked cancelled, a suspended
 * one is woken, and it resumes with ECANCELED from its suspension point:
 * cancel returns EAGAIN. From another thread the request goes through the
 * executor's inbox and returns EAGAIN; it takes effect when the executor
 * next runs. It names the piece of work the task is running when the call
 * is made: if that work ends first, the request is dropped (it never
 * cancels later work of the same task, and is never left behind: the
 * task can be destroyed or attached anywhere as soon as it has exited).
 *
 * ENOENT: the task is not attached to `ex` (from another thread also:
 * its work ended while the request was being made). EINVAL: NULL
 * arguments. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_task_cancel(monad_async_executor ex, monad_async_task task);

MONAD_ASYNC_END_EXTERN_C

#endif
