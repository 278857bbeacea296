/* The run loop: drain the inboxes, fire timers, run the highest-priority
 * ready task, repeat; wait when there is nothing to do.
 *
 * Time stamps: one tick read per slice. The stamp that ends one slice is
 * the stamp that starts the next, so a task's launch, the previous task's
 * exit and the executor's accounting share one read. */
#include "executor_impl.h"
#include "prefetch.h"

#include <errno.h>
#include <sched.h>

__thread struct ma_executor *ma_tls_executor MA_TLS_HOT;
__thread char ma_tls_thread_token MA_TLS_HOT;

struct ma_context const *ma_executor_running_context(void)
{
    /* The innermost executor running on this thread, and its task. Between
     * two slices of an executor run inside a task of another, this finds
     * none (the outer task's stack is in use then, by the inner run loop):
     * an overflow there is a plain SIGSEGV. */
    struct ma_executor const *const ex = ma_tls_executor;
    if (ex == NULL) {
        return NULL;
    }
    monad_async_task const t = atomic_load_explicit(
        &((struct ma_executor *)ex)->head.current_task, memory_order_relaxed);
    return t != NULL ? &ma_task_from(t)->ctx : NULL;
}

/* Drains the inbox until `t`'s cancel and priority requests have been
 * taken (their pushers are between two atomic steps at worst). */
static __attribute__((noinline)) void
ma_executor_take_cancel(struct ma_executor *ex, struct ma_task *t)
{
    for (unsigned spins = 0;
         atomic_load(&t->cancel_queued) || atomic_load(&t->prio_queued);
         spins++) {
        ma_executor_drain_inboxes(ex);
        if (spins >= 64) {
            sched_yield(); /* the pusher may be waiting for our core */
        }
    }
}

/* ma_executor_finish, inlined into the run loop's end of a slice: the
 * exit path of every task (a join's wake-up among it) pays no call. */
static inline __attribute__((always_inline)) void
ma_executor_finish_inline(struct ma_executor *ex, struct ma_task *t, uint64_t now)
{
    void (*const hook)(monad_async_task) = t->head.user_on_exit;
    void (*const observer)(void *) = t->exit_observer;
    void *const observer_arg = t->exit_observer_arg;
    t->exit_observer = NULL;
    t->head.ticks.exited = now;
    t->where = MA_TASK_NOWHERE;
    /* Tokens of this work, and cancel requests aimed at it, are refused
     * from here on. */
    /* Store the generation, then load cancel_queued; a remote canceller
     * does the reverse (cancel.c), and one of us must see the other: both
     * sequentially consistent (on x86 the exchange is the barrier, cheaper
     * than a store and a fence). */
    ma_task_gen_end_sc(t);
    if (__builtin_expect(atomic_load(&t->cancel_queued) |
                             atomic_load(&t->prio_queued),
                         0)) {
        /* A request for this work is in our inbox, or being pushed into
         * it (the canceller saw the old generation: see cancel.c; the
         * same for priority changes, priority_change.c). Take it out (it
         * is dropped: wrong generation) before the task can be reused,
         * attached elsewhere or destroyed. */
        ma_executor_take_cancel(ex, t);
    }
    ex->head.tasks_attached--;
    ex->head.counters.exited++;
    ma_cycle_remove(&t->all_link);
    atomic_store_explicit(&t->head.current_executor, NULL, memory_order_relaxed);
    /* From this store on the task belongs to whoever attaches it next. */
    uint32_t const cancelled =
        ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED;
    atomic_store_explicit(
        &t->head.state,
        MONAD_ASYNC_TASK_STATE_EXITED | cancelled,
        memory_order_release);
    if (hook != NULL) {
        hook(&t->head);
    }
    if (observer != NULL) {
        observer(observer_arg);
    }
}

void ma_executor_finish(struct ma_executor *ex, struct ma_task *t, uint64_t now)
{
    ma_executor_finish_inline(ex, t, now);
}

static void ma_executor_drain_cancel(struct ma_executor *ex, struct ma_task *t)
{
    uint64_t const gen = t->cancel_gen;
    atomic_store_explicit(&t->cancel_queued, 0, memory_order_release);
    if (ma_task_gen(t) != gen) {
        return; /* aimed at work that is over: dropped, never re-aimed */
    }
    (void)ma_executor_cancel_local(ex, t);
}

void ma_executor_drain_inboxes(struct ma_executor *ex)
{
    struct ma_inbox_node *n;
    while ((n = ma_inbox_pop(&ex->inbox)) != NULL) {
        ex->head.counters.inbox_drained++;
        switch (n->kind) {
        case MA_MSG_ATTACH:
            ma_executor_enqueue_from_inbox(
                ex, ma_container_of(n, struct ma_task, attach_node));
            break;
        case MA_MSG_CANCEL:
            /* Its attach was pushed first, or is half pushed: a cancel of
             * a task still IN_INBOX is applied when its attach drains
             * (ma_executor_cancel_local). */
            ma_executor_drain_cancel(
                ex, ma_container_of(n, struct ma_task, cancel_node));
            break;
        case MA_MSG_PRIORITY:
            ma_priority_drain(ex, ma_container_of(n, struct ma_task, prio_node));
            break;
        default:
            ma_park_drain_wake(ex, ma_container_of(n, struct ma_task, wake_node));
            break;
        }
    }
}

static inline struct ma_task *ma_executor_pop_ready(struct ma_executor *ex)
{
    for (int p = 0; p < monad_async_priority_max; p++) {
        struct ma_task *const t = ma_executor_pop_level(ex, p);
        if (t != NULL) {
            /* Off its queue from here: a priority change made before the
             * slice (by a hook run by a pump) must not unlink it. */
            t->where = MA_TASK_NOWHERE;
            /* With few tasks all stay in cache: no prefetch to pay for. */
            ma_prefetch_turn(ex, t, &ex->ready[p]);
            return t;
        }
    }
    return NULL;
}

/* user_code returned with initiated operations still in flight, whose
 * buffers it may own: cancel them, and record the exit only once the
 * kernel has finished them all (ma_io_complete), so the task cannot be
 * reused, nor its stack, while the kernel may still write to it. */
static void ma_executor_drain_exited(struct ma_executor *ex, struct ma_task *t)
{
    t->io_draining = true;
    t->io_waiting_for = NULL;
    t->where = MA_TASK_IO_WAIT;
    ma_task_set_state(t, MONAD_ASYNC_TASK_STATE_ATTACHED);
    ma_io_cancel_task_ops(ex, t);
}

/* Runs one slice of `t`, starting at stamp `now`; returns the end stamp. */
static inline uint64_t
ma_executor_run_slice(struct ma_executor *ex, struct ma_task *t, uint64_t now)
{
    bool launch = ma_task_state(t) & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH;
    /* `where` is MA_TASK_NOWHERE since it left its ready queue. */
    if (launch) {
        t->head.ticks.launched = now;
        ex->head.counters.launched++;
        if (now != 0) { /* time tracking on */
            ma_latency_add(ex->head.latency.launch[t->queue],
                           t->head.ticks.attached, now);
        }
    }
    else {
        t->head.ticks.resumed = now;
        ex->head.counters.resumed++;
        if (t->woken_at != 0) {
            ma_latency_add(ex->head.latency.resume[t->queue], t->woken_at, now);
            t->woken_at = 0;
        }
    }
    ma_task_set_state(
        t, MONAD_ASYNC_TASK_STATE_ATTACHED | MONAD_ASYNC_TASK_STATE_RUNNING);
    atomic_store_explicit(&ex->head.current_task, &t->head, memory_order_relaxed);
#if MA_TRACE_HOOKS
    if (__builtin_expect(ex->trace_hook != NULL, 0)) {
        ex->trace_hook(ex->trace_arg, &t->head, MONAD_ASYNC_TRACE_SLICE_BEGIN,
                       launch, -1);
    }
#endif
    size_t const direct_left = ex->direct_left;
    ma_context_resume(&t->ctx);
    /* A wake deferred by the slice (park.c) was applied where the task
     * suspended (suspend.c, handoff.c), or is applied below if it exited:
     * none is left once anything else runs here. */
    if (__builtin_expect(ex->direct_left != direct_left, 0)) {
        /* t parked and handed the thread on (handoff.c), maybe along a
         * chain (which may have come back to t): the task that came back
         * is the last of it, whose slice began when it was handed the
         * thread. That slice launched it if the task has not suspended
         * before it: it has now suspended once, or exited never having
         * suspended. */
        t = ma_task_from(
            atomic_load_explicit(&ex->head.current_task, memory_order_relaxed));
        launch = t->head.suspensions == (t->exiting ? 0u : 1u);
        now = launch ? t->head.ticks.launched : t->head.ticks.resumed;
    }
    atomic_store_explicit(&ex->head.current_task, NULL, memory_order_relaxed);
    uint64_t const end = ma_executor_stamp(ex);
    ex->last_stamp = end;
#if MA_TRACE_HOOKS
    /* After the stamp: the tracer's time is not the task's. */
    if (__builtin_expect(ex->trace_hook != NULL, 0)) {
        ma_trace_slice_end(ex, t);
    }
#endif
    uint64_t const slice = end - now;
    t->head.ticks.executing += slice;
    if (launch) {
        ex->head.ticks.launching += slice;
    }
    else {
        ex->head.ticks.resuming += slice;
    }
    if (t->exiting) {
        ma_executor_flush_deferred(ex); /* before the exit's hooks */
        t->exiting = false;
        /* Completed operations nobody reaped are simply forgotten. */
        t->io_done_head = t->io_done_tail = NULL;
        if (__builtin_expect(t->io_inflight != 0, 0)) {
            ma_executor_drain_exited(ex, t);
        }
        else {
            ma_executor_finish_inline(ex, t, end);
        }
    }
    else {
        t->head.ticks.suspended = end;
    }
    return end;
}

/* Pumps the ring; returns the stamp the next slice starts at. */
static inline uint64_t ma_executor_pump(struct ma_executor *ex, uint64_t now)
{
    ma_io_pump(ex);
    /* The pump is a system call: the next slice starts after it, not at
     * the previous slice's end, or the task resumed next would be
     * charged for the kernel's time. The pump took that stamp between
     * its system call and the reaping (io_pump.c). */
    return ex->track_time ? ex->last_stamp : now;
}

/* `t`, of a lower priority, is about to run while a higher priority has
 * I/O in flight: see whether any of it has completed first (unless the
 * ring was pumped for this less than MA_PRIO_PUMP_NS ago and nothing is
 * queued for the kernel). Returns the task to run: `t`, or a
 * higher-priority one that became ready, with `t` back at the front of
 * its queue.
 *
 * Queued submissions always go first: a higher-priority task that just
 * started an operation (a receive right after the previous one
 * completed) must not wait for the kernel to even see it until a lower
 * slice ends, or data already there costs it a whole slice. */
static __attribute__((noinline)) struct ma_task *
ma_executor_pump_for_priority(struct ma_executor *ex, struct ma_task *t,
                              uint64_t *now)
{
    uint64_t const tk = ma_ticks_read();
    if (tk - ex->last_prio_pump < ex->prio_pump_ticks &&
        io_uring_sq_ready(&ex->ring) == 0) {
        return t;
    }
    ex->last_prio_pump = tk;
    ma_io_pump(ex);
    if (ex->track_time) {
        *now = ex->last_stamp; /* taken by the pump (io_pump.c) */
    }
    for (int p = 0; p < (int)t->queue; p++) {
        struct ma_task *const first = ma_executor_pop_level(ex, p);
        if (first != NULL) {
            /* t was first of its level: it goes back where it was. A task
             * resumed to start its I/O was ahead of all readied since
             * (and stays in front of the resumed ones); any other goes
             * behind those the pump just resumed, which asked for their
             * I/O before t could. */
            unsigned const q = t->queue;
            t->where = MA_TASK_READY;
            if (t->io_resumed) {
                ma_list_push_front(&ex->ready[q], &t->link);
                if (ex->ready_resumed_tail[q] == NULL) {
                    ex->ready_resumed_tail[q] = &t->link;
                }
            }
            else if (ex->ready_resumed_tail[q] != NULL) {
                ma_list_insert_after(&ex->ready[q], ex->ready_resumed_tail[q],
                                     &t->link);
            }
            else {
                ma_list_push_front(&ex->ready[q], &t->link);
            }
            ex->head.tasks_runnable[q]++;
            first->where = MA_TASK_NOWHERE;
            return first;
        }
    }
    return t;
}

static uint64_t ma_timespec_to_deadline(
    struct ma_executor const *ex, struct timespec const *timeout, uint64_t now)
{
    if (timeout == NULL) {
        return UINT64_MAX;
    }
    if (timeout->tv_sec < 0 || (timeout->tv_sec == 0 && timeout->tv_nsec <= 0)) {
        return 0;
    }
    uint64_t const ns = (uint64_t)timeout->tv_sec * 1000000000ull +
                        (uint64_t)timeout->tv_nsec;
    uint64_t const span = ma_ns_to_ticks(ns, ex->ticks_per_second);
    return span > UINT64_MAX - now ? UINT64_MAX : now + span;
}

monad_async_result monad_async_executor_run(
    monad_async_executor ex_, size_t max_items, struct timespec const *timeout)
{
    if (ex_ == NULL || max_items == 0 ||
        (timeout != NULL &&
         (timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000L))) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    if (!ma_executor_is_owner(ex)) {
        return monad_async_make_failure(EPERM);
    }
    if (ex->in_run) {
        return monad_async_make_failure(EBUSY);
    }
    ex->in_run = true;
    struct ma_executor *const outer = ma_tls_executor;
    ma_tls_executor = ex;

    uint64_t const start = ma_executor_stamp(ex);
    uint64_t now = start;
    uint64_t deadline = 0; /* computed when first needed */
    bool deadline_known = false;
    size_t done = 0;
    int err = 0;
    /* Ending a task is progress even without a slice (a pending task
     * cancelled through the inbox, an exit completed when the last
     * operation of a task that returned drained): run returns then. */
    uint64_t const exited_at_start = ex->head.counters.exited;
    for (;;) {
        if (!ma_executor_inboxes_empty(ex)) {
            ma_executor_drain_inboxes(ex);
            /* Stamps of other threads' attaches may be later than ours:
             * launch them with a fresh, ordered stamp. */
            if (ex->track_time) {
                now = ma_ticks_read_ordered();
            }
        }
        if (ex->timers.head != NULL) {
            uint64_t const t = ex->track_time ? now : ma_ticks_read();
            ma_executor_fire_timers(ex, t);
        }
        if (__builtin_expect(ex->deadlines.head != NULL, 0)) {
            uint64_t const t = ex->track_time ? now : ma_ticks_read();
            if (ma_executor_next_deadline(ex) <= t) {
                ma_executor_fire_deadlines(ex, t);
            }
        }
        /* Pump when there is I/O and either the interval is up or
         * nothing is ready: tried before the pop in the first case and
         * after an empty pop in the second, so a busy queue costs no scan
         * of the ready queues beyond the pop itself. */
        bool pumped = false;
        if (ex->slices_since_pump >= MA_IO_PUMP_INTERVAL && ex->has_ring &&
            ma_io_busy(ex)) {
            now = ma_executor_pump(ex, now);
            pumped = true;
        }
        struct ma_task *t = ma_executor_pop_ready(ex);
        if (t == NULL && !pumped && ex->has_ring && ma_io_busy(ex)) {
            now = ma_executor_pump(ex, now);
            t = ma_executor_pop_ready(ex);
        }
        else if (t != NULL &&
                 /* First a load independent of t (any I/O of a level
                  * above Low in flight?), so that the common case, none,
                  * adds no step to the chain of loads through t. */
                 __builtin_expect(
                     ex->io_inflight_above[monad_async_priority_low] != 0, 0) &&
                 ex->io_inflight_above[t->queue] != 0) {
            /* Priority-correct wake-ups: a higher-priority task's
             * completed I/O runs before this lower-priority slice. */
            t = ma_executor_pump_for_priority(ex, t, &now);
        }
        if (t != NULL) {
            ex->slices_since_pump++;
            /* Parks may hand the thread on for the rest of max_items
             * (handoff.c); what they used counts as slices run. */
            ex->direct_left = max_items - done - 1;
            now = ma_executor_run_slice(ex, t, now);
            done = max_items - ex->direct_left;
            if (done >= max_items) {
                break;
            }
            continue;
        }
        if (done > 0 || ex->head.counters.exited != exited_at_start) {
            break;
        }
        /* Nothing runnable: wait for the inbox, a timer or a wake. */
        uint64_t const wait_start = ma_ticks_read();
        if (!deadline_known) {
            deadline = ma_timespec_to_deadline(ex, timeout, wait_start);
            deadline_known = true;
        }
        /* Read before exchanging: an awake executor passes here on every
         * idle loop, and an exchange would take the line that remote
         * attachers use. */
        if (atomic_load_explicit(&ex->wake_pending, memory_order_relaxed) &&
            atomic_exchange_explicit(&ex->wake_pending, 0, memory_order_acquire)) {
            break; /* woken: return with nothing done */
        }
        if (wait_start >= deadline) {
            err = ETIME;
            break;
        }
        uint64_t until = deadline;
        if (ex->timers.head != NULL) {
            uint64_t const next = ma_task_from_link(ex->timers.head)->timer_deadline;
            if (next < until) {
                until = next;
            }
        }
        if (ma_executor_next_deadline(ex) < until) {
            until = ma_executor_next_deadline(ex);
        }
        ex->head.counters.sleeps++;
        if (ex->has_ring && ma_io_busy(ex)) {
            ma_io_wait(ex, until);
        }
        else {
            ma_executor_wait(ex, until);
        }
        uint64_t const wait_end = ma_ticks_read();
        if (ex->track_time) {
            ex->head.ticks.sleeping += wait_end - wait_start;
            now = wait_end;
            ex->last_stamp = now; /* wakes drained next count from here */
        }
    }
    if (ex->has_ring && io_uring_sq_ready(&ex->ring) != 0) {
        /* Left with max_items reached: hand the kernel what the last
         * tasks queued rather than keep it until the next run. */
        (void)io_uring_submit(&ex->ring);
        ex->head.io.enters++;
    }
    if (ex->track_time) {
        ex->head.ticks.in_run += now - start;
    }
    ma_tls_executor = outer;
    ex->in_run = false;
    return err ? monad_async_make_failure(err)
               : monad_async_make_success((intptr_t)done);
}
