/* Internal: the private part of an executor, and the operations the
 * task-side entry points (attach, yield, sleep, cancel) share with the
 * run loop. */
#ifndef MONAD_ASYNC_EXECUTOR_IMPL_H
#define MONAD_ASYNC_EXECUTOR_IMPL_H

#include <monad_async/executor.h>
#include <monad_async/trace.h>

#include "inbox.h"
#include "list.h"
#include "task_impl.h"
#include "ticks_impl.h"

#include <liburing.h>
#include <pthread.h>
#include <errno.h>
#include <stdbool.h>

/* One in-flight operation's identity. */
struct ma_io_slot
{
    struct monad_async_io_status *status; /* NULL while free */
    uint32_t generation;                  /* bumped at each use */
    uint32_t next_free;
};

#define MA_IO_NO_SLOT UINT32_MAX

/* The least time between two pumps made for a higher priority's sake
 * (run.c): bounds their cost to one system call per this span of
 * lower-priority work (about 1 us each, so under 5 %), and what a
 * higher-priority completion can wait behind lower-priority work to this
 * span plus one slice. */
#define MA_PRIO_PUMP_NS 20000

/* Idle spinning (wait.c). An executor about to sleep in its futex spins
 * up to MA_IDLE_SPIN_NS first, but only when its previous wait was ended
 * by another thread within MA_IDLE_SPIN_HOT_NS (a ping-pong, a producer
 * feeding it): sleeping and being woken costs two system calls and, on a
 * virtual machine, 5-30 us of the hypervisor's wake-up, against which a
 * spin of that order is the cheaper bet. An executor that is woken
 * rarely, by timers, or not at all never spins. */
#define MA_IDLE_SPIN_NS 20000
#define MA_IDLE_SPIN_HOT_NS 100000
/* Most waits slept without spinning after spins that found nothing (the
 * back-off doubles per failure, from 1). */
#define MA_IDLE_SPIN_BACKOFF_MAX 256
/* A spin that loses the CPU for this long (a gap between two of its
 * polls) was preempted: the machine has more runnable threads than CPUs.
 * A spinning thread then only competes with them for its share (the
 * scheduler favours threads that sleep), so the executor stops spinning
 * for MA_IDLE_SPIN_CONTENDED_NS. */
#define MA_IDLE_SPIN_PREEMPT_NS 50000
#define MA_IDLE_SPIN_CONTENDED_NS 50000000

/* Trace hooks around every slice (trace.h): compiled in only when the
 * library is built with MONAD_ASYNC_TRACE_HOOKS=1. */
#if defined(MONAD_ASYNC_TRACE_HOOKS) && MONAD_ASYNC_TRACE_HOOKS
#define MA_TRACE_HOOKS 1
#else
#define MA_TRACE_HOOKS 0
#endif

/* How a waiting executor sleeps, in `sleeping`. */
#define MA_SLEEP_FUTEX 1u
#define MA_SLEEP_RING 2u
/* user_data values that are not operations: the top bit is set, which
 * an operation's (generation << 32 | slot, generation < 2^31) never has.
 * liburing's own internal timeout uses all ones (LIBURING_UDATA_TIMEOUT). */
#define MA_UD_INTERNAL (1ull << 63)
#define MA_UD_WAKE (MA_UD_INTERNAL | 1u)
#define MA_UD_CANCEL (MA_UD_INTERNAL | 2u)

/* The two shares of the in-flight guard (executor.h, io_inflight_limit):
 * an operation that finishes by itself may take any slot; one that waits
 * on the outside world (a receive, an accept, a poll, a connect) only
 * while fewer than io_wait_limit are taken, so that the rest, the
 * reserve, is always there for the first kind. */
enum ma_io_class
{
    MA_IO_FINITE = 0,
    MA_IO_WAITS = 1,
    MA_IO_CLASSES
};

struct ma_executor
{
    struct monad_async_executor_head head; /* first: the public handle */

    /* --- owner thread only --- */
    void const *owner; /* the owning thread's ma_tls_thread_token */
    bool track_time;
    bool in_run;
    bool has_ring;
    uint64_t ticks_per_second;
    struct ma_list ready[monad_async_priority_max];
    /* [q]: the last task at the front of ready[q] that was resumed to
     * start I/O it had waited for (a slot or a queue entry), or NULL.
     * Such tasks run ahead of their level, in the order they were
     * resumed: they already waited their turn once, and their operation
     * must reach the kernel before those of tasks that asked later
     * (first come, first served within a level). */
    struct ma_link *ready_resumed_tail[monad_async_priority_max];
    struct ma_list timers; /* sorted by deadline, FIFO among equals */
    /* [q]: operations in flight whose task's CPU priority is higher than
     * q (the wake read and cancel requests are not counted). A slice at
     * priority q first pumps the ring when [q] is non-zero, so that their
     * completions are seen before the slice, not after it: one load per
     * slice (ma_io_prio_count keeps them). */
    uint32_t io_inflight_above[monad_async_priority_max];
    /* Slices run since the ring was last pumped. */
    uint32_t slices_since_pump;
    /* Slices the run under way may still start without its loop: a
     * parking task hands the thread straight to the next ready one
     * (handoff.c) only while this is non-zero, so run's max_items holds.
     * run sets it before each slice and counts what was used after. */
    size_t direct_left;
    struct io_uring ring;

    /* I/O (io_op.c, io_pump.c). Each operation in flight holds a slot;
     * its user_data names the slot and the slot's generation, so a
     * completion can never be taken for another operation. The table is
     * reserved address space (MAP_NORESERVE): slots are handed out from
     * the free list, else from the high-water mark, so only pages of slots
     * that have been used are ever touched. */
    struct ma_io_slot *io_slots;
    size_t io_slots_mapped;  /* bytes reserved for the table */
    uint32_t io_slot_count;  /* = the in-flight limit */
    uint32_t io_wait_limit;  /* the MA_IO_WAITS share (executor.h) */
    uint32_t io_free_slot;   /* head of the free list, MA_IO_NO_SLOT: none */
    uint32_t io_slot_hwm;    /* slots [0, hwm) have been used */
    /* Slots taken: in flight, plus those set aside for waiters that were
     * granted one and have not run yet. */
    uint32_t io_slots_used;
    /* Tasks waiting for a slot, per class and I/O priority (FIFO within
     * a list; tickets order waiters of both classes at one priority). */
    struct ma_list io_waiters[MA_IO_CLASSES][monad_async_priority_max];
    uint32_t io_waiters_count;
    uint64_t io_wait_tickets;
    /* Tasks waiting for the kernel to take submissions again (it refused
     * with EBUSY or EAGAIN): resumed by the next pump that submits. */
    struct ma_list io_sq_blocked;
    uint16_t ioprio[monad_async_priority_max]; /* SQE ioprio per level */
    bool has_op_socket; /* the kernel knows IORING_OP_SOCKET */
    bool has_buffers;   /* buffers registered */
    struct ma_list buffer_pools; /* its pools (io_buffers.c) */
    struct ma_list buffer_rings; /* its provided-buffer rings */
    struct ma_list acceptors;    /* its multishot acceptors */
    /* Buffer-group ids in use, one bit per id (io_buffer_ring.c);
     * allocated with the first ring. */
    uint64_t *buffer_group_bits;
    uint32_t buffer_groups_used;
    uint16_t next_buffer_group; /* where the search for a free id starts */
    /* Wakes a ring-sleeping executor: other threads write it, the ring
     * reads it (see io_pump.c). */
    int wake_fd;
    bool wake_armed;
    uint64_t wake_buf;
    /* The latest time stamp the run loop took (0 without time tracking):
     * a wake's time for the resume-latency histogram (executor.h). */
    uint64_t last_stamp;
#if MA_TRACE_HOOKS
    /* Called around every slice when set (trace.h, run.c). */
    monad_async_trace_hook trace_hook;
    void *trace_arg;
#endif
    /* A wake deferred by monad_async_task_wake_deferred (park.c): the
     * parked task (NULL: none) and the token it was given. Applied before
     * any other task is made ready (ma_executor_make_ready*) or a cancel
     * is applied, and when the running task's slice ends (suspend.c,
     * run.c, the hand-off); a park of the running task that finds it may
     * switch straight to it instead (handoff.c). On the cache line the
     * loop reads each slice anyway (last_stamp, deadlines). */
    struct ma_task *deferred_wake;
    uint64_t deferred_token;
    /* Suspended tasks with a deadline (deadline.c), through
     * deadline_link, sorted by deadline. */
    struct ma_list deadlines;
    /* Ticks of the last pump made for a higher priority's sake, and the
     * least span between two such pumps (MA_PRIO_PUMP_NS). */
    uint64_t last_prio_pump;
    uint64_t prio_pump_ticks;
    /* Idle spinning (wait.c): how long a futex wait spins first when a
     * remote wake looks imminent (0: never), whether it does (the last
     * wait was ended soon by another thread), and the back-off after a
     * spin that found nothing. */
    uint64_t spin_ticks;
    uint64_t spin_hot_ticks;
    uint64_t spin_preempt_ticks;
    uint64_t spin_contended_ticks;
    uint64_t spin_off_until; /* ticks: no spin before (contention) */
    bool spin_hot;
    uint32_t spin_skip;
    uint32_t spin_backoff;
    /* Every attached task, through all_link, in attach order (dump.c):
     * a circular list, this its sentinel. Only attach and exit touch it:
     * it sits past the lines every slice reads. */
    struct ma_link all_tasks;

    /* --- touched by other threads --- */
    /* Attaches, cancels and wakes from other threads, in one inbox so
     * that the run loop checks one word pair per pass (task_impl.h: the
     * nodes say which they are). */
    struct ma_inbox inbox;
    /* Non-zero while run may be waiting: MA_SLEEP_FUTEX in the futex on
     * this word (wait.c), MA_SLEEP_RING in the ring (io_pump.c). */
    _Alignas(64) _Atomic uint32_t sleeping;
    _Atomic uint32_t wake_pending;
    /* Set once destroy begins: later attaches get ESHUTDOWN. */
    _Atomic uint32_t closing;
    /* Other threads inside attach/cancel/wake right now. */
    _Atomic uint32_t remote_inflight;
};

static inline struct ma_executor *ma_executor_from(monad_async_executor ex)
{
    return (struct ma_executor *)ex;
}

/* Thread-locals the hot paths read take the initial-exec model: the
 * library is compiled position-independent (the Rust crate links it into
 * whatever it builds), which by default means the general-dynamic model,
 * a __tls_get_addr call the linker can only rewrite after the fact (it
 * still costs the caller the registers it saves around the call). The
 * variables are a few bytes, well within the static TLS space the C
 * library keeps spare for a shared object that is loaded later. */
#define MA_TLS_HOT __attribute__((tls_model("initial-exec")))

/* The executor running on this thread (its run, or one of its tasks). */
extern __thread struct ma_executor *ma_tls_executor MA_TLS_HOT;

/* The context of the task running on this thread, for the stack guard's
 * signal handler (stack_guard.h): async-signal-safe. */
struct ma_context const *ma_executor_running_context(void);

/* A per-thread address: comparing it is cheaper than pthread_self(),
 * which is a call into libc. */
extern __thread char ma_tls_thread_token MA_TLS_HOT;

static inline bool ma_executor_is_owner(struct ma_executor const *ex)
{
    return ex->owner == &ma_tls_thread_token;
}

static inline uint64_t ma_executor_stamp(struct ma_executor const *ex)
{
    return ex->track_time ? ma_ticks_read() : 0;
}

/* Claims the resumption of `t`'s parked work `token`, or leaves it a
 * permit: 1 if the caller now owns the resumption (PARKED cleared), 0 if
 * it left a permit (or one was pending), -1 if the work is not `token`'s
 * (ESRCH). Any thread. */
static inline int ma_park_claim_wake(struct ma_task *t, uint64_t token)
{
    uint64_t w = atomic_load_explicit(&t->park_word, memory_order_acquire);
    for (;;) {
        if ((w >> MA_PARK_GEN_SHIFT) != token) {
            return -1;
        }
        if (w & MA_PARK_PARKED) {
            if (atomic_compare_exchange_weak_explicit(
                    &t->park_word, &w, w & ~(uint64_t)MA_PARK_PARKED,
                    memory_order_acq_rel, memory_order_acquire)) {
                return 1; /* its resumption is ours */
            }
            continue;
        }
        if (w & MA_PARK_PERMIT) {
            return 0;
        }
        if (atomic_compare_exchange_weak_explicit(
                &t->park_word, &w, w | MA_PARK_PERMIT, memory_order_acq_rel,
                memory_order_acquire)) {
            return 0;
        }
    }
}

/* Applies the deferred wake now (park.c); owner thread, one pending. */
void ma_park_flush_deferred(struct ma_executor *ex);

/* Applies a deferred wake, if there is one: before anything else is made
 * ready (so that the woken task keeps its place in line), and wherever
 * the executor must see the task ready. One load when there is none. */
static inline void ma_executor_flush_deferred(struct ma_executor *ex)
{
    if (__builtin_expect(ex->deferred_wake != NULL, 0)) {
        ma_park_flush_deferred(ex);
    }
}

/* Appends a runnable task to its queue, with no deferred wake pending
 * (applied by the caller, or none can be: the loop between slices). */
static inline void ma_executor_make_ready_now(struct ma_executor *ex,
                                              struct ma_task *t)
{
    t->where = MA_TASK_READY;
    ma_list_push_back(&ex->ready[t->queue], &t->link);
    ex->head.tasks_runnable[t->queue]++;
}

/* Appends a runnable task to its queue (a deferred wake goes first). */
static inline void ma_executor_make_ready(struct ma_executor *ex, struct ma_task *t)
{
    ma_executor_flush_deferred(ex);
    ma_executor_make_ready_now(ex, t);
}

/* Counts the latency from stamp `from` to stamp `to` in a histogram's
 * buckets (executor.h). Stamps of two threads (a remote attach) may be a
 * hair out of order: a negative span counts as zero. */
static inline void ma_latency_add(uint64_t *buckets, uint64_t from, uint64_t to)
{
    uint64_t const ticks = to >= from ? to - from : 0;
    unsigned b = 63u - (unsigned)__builtin_clzll(ticks | 1);
    if (b >= MONAD_ASYNC_LATENCY_BUCKETS) {
        b = MONAD_ASYNC_LATENCY_BUCKETS - 1;
    }
    buckets[b]++;
}

/* Readies a task whose wait a wake, a completion, a timer or a cancel
 * ended: stamped for its resume-latency sample (run.c). A yield readies
 * with ma_executor_make_ready: not a wake, no sample. */
static inline void ma_executor_make_ready_woken(struct ma_executor *ex,
                                                struct ma_task *t)
{
    t->woken_at = ex->last_stamp;
    ma_executor_make_ready(ex, t);
}

/* ma_executor_make_ready_woken with no deferred wake pending. */
static inline void ma_executor_make_ready_woken_now(struct ma_executor *ex,
                                                    struct ma_task *t)
{
    t->woken_at = ex->last_stamp;
    ma_executor_make_ready_now(ex, t);
}

/* Readies a task that waited to start I/O: ahead of its level's other
 * runnable tasks, behind those readied this way before it. */
static inline void ma_executor_make_ready_resumed(struct ma_executor *ex,
                                                  struct ma_task *t)
{
    ma_executor_flush_deferred(ex);
    struct ma_list *const q = &ex->ready[t->queue];
    t->woken_at = ex->last_stamp;
    struct ma_link *const after = ex->ready_resumed_tail[t->queue];
    t->where = MA_TASK_READY;
    t->io_resumed = true;
    if (after == NULL) {
        ma_list_push_front(q, &t->link);
    }
    else {
        ma_list_insert_after(q, after, &t->link);
    }
    ex->ready_resumed_tail[t->queue] = &t->link;
    ex->head.tasks_runnable[t->queue]++;
}

/* Takes a task off ready[q], wherever it is in the queue (the resumed
 * prefix is contiguous from the front, so the link before the prefix's
 * last one is in it too, or there is none). Its `where` is left to the
 * caller. */
static inline void ma_executor_unlink_ready(struct ma_executor *ex,
                                            struct ma_task *t, unsigned q)
{
    if (ex->ready_resumed_tail[q] == &t->link) {
        ex->ready_resumed_tail[q] = t->link.prev;
    }
    ma_list_remove(&ex->ready[q], &t->link);
    ex->head.tasks_runnable[q]--;
}

/* Takes the first task of ready[p], or NULL. */
static inline struct ma_task *ma_executor_pop_level(struct ma_executor *ex, int p)
{
    struct ma_link *const l = ma_list_pop_front(&ex->ready[p]);
    if (l == NULL) {
        return NULL;
    }
    if (ex->ready_resumed_tail[p] == l) {
        ex->ready_resumed_tail[p] = NULL;
    }
    ex->head.tasks_runnable[p]--;
    return ma_task_from_link(l);
}

/* Claims an unattached task: the one compare-and-swap on the task's own
 * state word that refuses a second attach (or submission), to ATTACHED |
 * PENDING_LAUNCH | `bits`. 0 with the replaced state in `*before`, or
 * EBUSY. */
int ma_task_claim(struct ma_task *t, uint32_t bits, uint32_t *before);
/* Readies a claimed task's fields for a new piece of work on `ex` (NULL:
 * on no executor, for work ended before it reached one). */
void ma_task_bind(struct ma_task *t, struct ma_executor *ex);
/* Owner thread: attaches a task that a work dispatcher claimed when it was
 * submitted (see dispatcher_queue.c), as a same-thread attach would. Keeps
 * the submission's `ticks.attached` stamp. */
void ma_executor_attach_claimed(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: links a freshly claimed task into its ready queue (no
 * deferred wake pending: callers inside a task apply it first). */
void ma_executor_enqueue_attached(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: the same for a task popped from the attach inbox. */
void ma_executor_enqueue_from_inbox(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: applies a cancel. Returns 0, EAGAIN or ENOENT. */
int ma_executor_cancel_local(struct ma_executor *ex, struct ma_task *t);
/* An operation of a task at CPU priority `q` starts (+1) or ends (-1). */
static inline void ma_io_prio_count(struct ma_executor *ex, monad_async_priority q,
                                    uint32_t delta)
{
    _Static_assert(monad_async_priority_high == 0 &&
                       monad_async_priority_normal == 1 &&
                       monad_async_priority_low == 2 &&
                       monad_async_priority_max == 3,
                   "three levels, high first");
    if (q == monad_async_priority_high) {
        ex->io_inflight_above[monad_async_priority_normal] += delta;
        ex->io_inflight_above[monad_async_priority_low] += delta;
    }
    else if (q == monad_async_priority_normal) {
        ex->io_inflight_above[monad_async_priority_low] += delta;
    }
}

/* Owner thread: drains the inboxes into the ready queues. */
void ma_executor_drain_inboxes(struct ma_executor *ex);
/* Owner thread: whether another thread left work in an inbox. */
static inline bool ma_executor_inboxes_empty(struct ma_executor *ex)
{
    return ma_inbox_is_empty(&ex->inbox);
}

/* Parking (park.c), owner thread. */
/* A parked task's deadline passed (the timer list found it). */
void ma_park_expire(struct ma_executor *ex, struct ma_task *t);
/* A parked task is cancelled (MA_TASK_PARKED or MA_TASK_WAKE_PENDING). */
void ma_park_cancel(struct ma_executor *ex, struct ma_task *t);
/* A parked task resumes with `err` unless a remote wake got there first
 * (MA_TASK_PARKED or MA_TASK_WAKE_PENDING). True if it was made ready. */
bool ma_park_interrupt(struct ma_executor *ex, struct ma_task *t, int err);
/* A remote wake taken from the wake inbox. */
void ma_park_drain_wake(struct ma_executor *ex, struct ma_task *t);

/* CPU priority changes (priority_change.c), owner thread. */
/* A priority-change message taken from the inbox. */
void ma_priority_drain(struct ma_executor *ex, struct ma_task *t);
/* A task just taken from the inbox or a work dispatcher, whose
 * IN_INBOX/QUEUED bit was cleared with a sequentially consistent store:
 * adopts a change made while it was on its way (before it is queued). */
void ma_priority_take_pending(struct ma_task *t);
/* Puts a task on the timer list at its timer_deadline. */
void ma_timer_insert(struct ma_executor *ex, struct ma_task *t);
/* The tick deadline `ns` from now, never early (suspend.c). */
uint64_t ma_timer_deadline(struct ma_executor const *ex, uint64_t ns);
/* Checks that `task` is the one running on this thread and may suspend:
 * 0 (with its executor in *ex_out) or the error its suspension point
 * returns (EINVAL, ENOTSUP, ECANCELED). Inline: an out-of-line call that
 * -fPIC must treat as interposable costs yield a few ns. */
static inline int ma_check_suspendable(monad_async_task task,
                                       struct ma_executor **ex_out)
{
    struct ma_executor *const ex = ma_tls_executor;
    if (task == NULL || ex == NULL ||
        atomic_load_explicit(&ex->head.current_task, memory_order_relaxed) !=
            task) {
        return EINVAL;
    }
    if (!task->switcher->has_stacks) {
        return ENOTSUP;
    }
    if (ma_task_state(ma_task_from(task)) & MONAD_ASYNC_TASK_STATE_CANCELLED) {
        return ECANCELED;
    }
    *ex_out = ex;
    return 0;
}
/* Owner thread: records the end of a task's work and calls its hook. */
void ma_executor_finish(struct ma_executor *ex, struct ma_task *t, uint64_t now);
/* Owner thread: moves expired sleepers to the ready queues. */
void ma_executor_fire_timers(struct ma_executor *ex, uint64_t now);

/* What a task is doing (enum monad_async_task_activity), and for I/O the
 * opcode and fd of the operation it waits for (-1 otherwise); dump.c. */
uint32_t ma_task_activity(struct ma_executor const *ex, struct ma_task const *t,
                          int32_t *io_opcode, int32_t *io_fd);
#if MA_TRACE_HOOKS
/* Tells the trace hook (set) that `t`'s slice has ended; trace.c. */
void ma_trace_slice_end(struct ma_executor *ex, struct ma_task *t);
#endif

/* Waits for work until the tick deadline (UINT64_MAX: forever). */
void ma_executor_wait(struct ma_executor *ex, uint64_t deadline_ticks);
/* Wakes a waiting executor; any thread. */
void ma_executor_notify(struct ma_executor *ex);

/* io_uring set-up (ring.c). 0 or errno. */
int ma_ring_setup(struct ma_executor *ex, struct monad_async_executor_attr const *attr);
void ma_ring_teardown(struct ma_executor *ex);

/* The ring in the run loop (io_pump.c). */
/* Operations queued or in flight, or SQEs not yet submitted. */
static inline bool ma_io_busy(struct ma_executor *ex)
{
    return ex->io_slots_used != 0 || io_uring_sq_ready(&ex->ring) != 0;
}
/* Submits what is queued, reaps completions (making their tasks ready)
 * and wakes the tasks waiting for slots that freed or for the kernel to
 * take submissions. One system call, two when the kernel refused the
 * submission (EBUSY: reap, then submit again). */
void ma_io_pump(struct ma_executor *ex);
/* As ma_executor_wait for an executor with a ring: submits, then sleeps
 * in the ring until a completion, a wake or the deadline. */
void ma_io_wait(struct ma_executor *ex, uint64_t deadline_ticks);
/* (Re)arms the wake eventfd read. */
void ma_io_arm_wake(struct ma_executor *ex);
/* Any thread: ends a ring wait (writes the wake eventfd). */
void ma_io_notify(struct ma_executor *ex);
/* Hands the queued SQEs to the kernel, retrying on EINTR: the number it
 * took, or -errno (EBUSY: it has completions to flush first; EAGAIN: no
 * memory for requests right now). Never reaps: callers may be inside
 * the reaper. */
int ma_io_submit(struct ma_executor *ex);
/* Inside a task: suspends it (it has been queued somewhere) and returns
 * what the resumption brought (suspend.c). With a deadline set it goes
 * through ma_deadline_suspend. */
monad_async_result ma_task_suspend(struct ma_executor *ex, struct ma_task *t);
/* ma_task_suspend for a task that parks or waits on blocking I/O
 * (handoff.c): when the run loop would do nothing before running the next
 * ready task, switches straight to it instead of through the loop. No
 * deferred wake may be pending: callers with one call
 * ma_task_suspend_deferred instead. */
monad_async_result ma_task_suspend_handoff(struct ma_executor *ex,
                                           struct ma_task *t);
/* ma_task_suspend_handoff with a deferred wake pending (handoff.c):
 * switches straight to the woken task when it would run next, else
 * applies the wake and hands off as usual. */
monad_async_result ma_task_suspend_deferred(struct ma_executor *ex,
                                            struct ma_task *t);
/* Whether any task is ready: if none, a hand-off cannot happen, and a
 * suspension skips the hand-off's checks (three loads here). */
static inline bool ma_executor_any_ready(struct ma_executor const *ex)
{
    _Static_assert(monad_async_priority_max == 3, "one load per level");
    return ((uintptr_t)ex->ready[0].head | (uintptr_t)ex->ready[1].head |
            (uintptr_t)ex->ready[2].head) != 0;
}
/* The ring is pumped (one system call) when there is I/O queued or in
 * flight and either nothing is ready to run or this many slices have run
 * since the last pump, so that completions reach their tasks while other
 * tasks keep the executor busy (run.c, handoff.c). */
#define MA_IO_PUMP_INTERVAL 32
/* The suspension itself, deadline or not (suspend.c). */
monad_async_result ma_task_switch_out(struct ma_executor *ex, struct ma_task *t);

/* Deadlines (deadline.c), owner thread. */
/* ma_task_suspend of a task with a deadline: ETIMEDOUT at once past it,
 * else suspends on the deadline list too. */
monad_async_result ma_deadline_suspend(struct ma_executor *ex, struct ma_task *t);
/* Ends the waits of tasks whose deadline is at or before `now`. */
void ma_executor_fire_deadlines(struct ma_executor *ex, uint64_t now);
/* The earliest armed deadline, UINT64_MAX: none. */
static inline uint64_t ma_executor_next_deadline(struct ma_executor const *ex)
{
    struct ma_link const *const l = ex->deadlines.head;
    return l == NULL ? UINT64_MAX
                     : ma_container_of(l, struct ma_task, deadline_link)->deadline;
}

/* Operations and their life (io_op.c). */
/* An SQE for an internal request (cancel, wake), handing the queue to
 * the kernel first if it is full; NULL if the kernel takes nothing. */
struct io_uring_sqe *ma_io_internal_sqe(struct ma_executor *ex);
/* Frees and handles every CQE the ring holds, in bulk, and the kernel's
 * overflow backlog (a system call per CQ-full of it, only when the
 * kernel reports one). */
void ma_io_reap_cqes(struct ma_executor *ex);
/* Asks the kernel to cancel every operation `t` has in flight. */
void ma_io_cancel_task_ops(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: cancel of a task waiting to start an operation (unlinks
 * it). */
void ma_io_cancel_sqe_wait(struct ma_executor *ex, struct ma_task *t);
/* Asks the kernel to end, with ETIMEDOUT, what the task's I/O wait waits
 * for: its blocking operation, the initiated one it waits for, or (a
 * reap) all its initiated ones. False if a cancel could not be queued
 * (the kernel takes no submissions now): try again later. */
bool ma_io_cancel_for_deadline(struct ma_executor *ex, struct ma_task *t);
/* Gives free slots to waiting tasks, highest I/O priority first, each
 * class within its share. */
void ma_io_grant_waiters(struct ma_executor *ex);
/* Resumes the tasks waiting for the kernel to take submissions, once the
 * submission queue has room. */
void ma_io_wake_sq_blocked(struct ma_executor *ex);

/* Buffer pools (io_buffers.c). */
/* Owner thread: cancel of a task waiting for a buffer (unlinks it). */
void ma_io_cancel_buffer_wait(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: cancels every task waiting for a buffer (destroy). */
void ma_io_cancel_all_buffer_waits(struct ma_executor *ex);
/* Frees the pools still alive when the executor goes. */
void ma_io_free_buffer_pools(struct ma_executor *ex);
/* Frees the provided-buffer rings still alive (io_buffer_ring.c). */
void ma_io_free_buffer_rings(struct ma_executor *ex);

/* Multishot acceptors (io_accept_multishot.c). Destroy: asks the kernel
 * to end every armed one; true while one is still armed. */
bool ma_io_acceptors_cancel(struct ma_executor *ex);
/* Closes the fds they hold and frees them, after the ring is gone. */
void ma_io_free_acceptors(struct ma_executor *ex);

#endif
