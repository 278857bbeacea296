/* Executors: creation, destruction (cancel and drain), wake. */
#include "executor_impl.h"
#include "io_impl.h"
#include "stack_guard.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(MONAD_ASYNC_ATOMIC(uint32_t)) == sizeof(uint32_t),
               "Rust reads task state as AtomicU32");
_Static_assert(sizeof(MONAD_ASYNC_ATOMIC(void *)) == sizeof(void *),
               "Rust reads atomic pointers as AtomicPtr");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_POINTER_LOCK_FREE == 2,
               "atomics shared with Rust must be lock-free");
_Static_assert(sizeof(monad_async_priority) == sizeof(int),
               "Rust maps monad_async_priority to a C int");
/* The Rust crate builds this struct field by field (src/options.rs), and
 * the fields added since its first release took words of `reserved`: its
 * size and the offsets below never change. */
_Static_assert(sizeof(struct monad_async_executor_attr) == 40 &&
                   offsetof(struct monad_async_executor_attr, flags) == 8 &&
                   offsetof(struct monad_async_executor_attr,
                            io_inflight_limit) == 12 &&
                   offsetof(struct monad_async_executor_attr, io_cq_entries) ==
                       16 &&
                   offsetof(struct monad_async_executor_attr, reserved) == 20,
               "struct monad_async_executor_attr keeps its layout");
_Static_assert(offsetof(struct ma_executor, head) == 0 &&
                   offsetof(struct ma_task, head) == 0,
               "public handles point at the private structs");

monad_async_result monad_async_executor_create(
    monad_async_executor *out, struct monad_async_executor_attr const *attr)
{
    static struct monad_async_executor_attr const defaults;
    if (out == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    if (attr == NULL) {
        attr = &defaults;
    }
    if (attr->flags & ~(uint32_t)(MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING |
                                  MONAD_ASYNC_EXECUTOR_FLAG_NO_SPIN)) {
        return monad_async_make_failure(EINVAL);
    }
    /* This thread will run tasks: a task overflowing its stack here must
     * be able to say so (stack_guard.h). */
    ma_stack_guard_thread_init(ma_executor_running_context);
    struct ma_executor *const ex =
        aligned_alloc(64, (sizeof(*ex) + 63) & ~(size_t)63);
    if (ex == NULL) {
        return monad_async_make_failure(ENOMEM);
    }
    memset(ex, 0, sizeof(*ex));
    atomic_init(&ex->head.current_task, NULL);
    ex->owner = &ma_tls_thread_token;
    ex->track_time = !(attr->flags & MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING);
    ex->ticks_per_second = ma_ticks_per_second();
    ex->prio_pump_ticks = ma_ns_to_ticks(MA_PRIO_PUMP_NS, ex->ticks_per_second);
    if (!(attr->flags & MONAD_ASYNC_EXECUTOR_FLAG_NO_SPIN)) {
        ex->spin_ticks = ma_ns_to_ticks(MA_IDLE_SPIN_NS, ex->ticks_per_second);
        ex->spin_hot_ticks =
            ma_ns_to_ticks(MA_IDLE_SPIN_HOT_NS, ex->ticks_per_second);
        ex->spin_preempt_ticks =
            ma_ns_to_ticks(MA_IDLE_SPIN_PREEMPT_NS, ex->ticks_per_second);
        ex->spin_contended_ticks =
            ma_ns_to_ticks(MA_IDLE_SPIN_CONTENDED_NS, ex->ticks_per_second);
    }
    ex->spin_backoff = 1;
    ma_inbox_init(&ex->inbox);
    ma_cycle_init(&ex->all_tasks);
    atomic_init(&ex->sleeping, 0);
    atomic_init(&ex->wake_pending, 0);
    atomic_init(&ex->closing, 0);
    atomic_init(&ex->remote_inflight, 0);
    int const err = ma_ring_setup(ex, attr);
    if (err != 0) {
        free(ex);
        return monad_async_make_failure(err);
    }
    *out = &ex->head;
    return monad_async_make_success(0);
}

/* Cancels every task attached to ex, as the owner thread would. */
static void ma_executor_cancel_all(struct ma_executor *ex)
{
    ma_executor_drain_inboxes(ex);
    while (ex->timers.head != NULL) {
        (void)ma_executor_cancel_local(ex, ma_task_from_link(ex->timers.head));
    }
    /* Tasks waiting to start an operation move to the ready queues with
     * ECANCELED; tasks with operations in flight have them cancelled and
     * resume once the kernel has finished each (they are on no list:
     * find them through the slots, all below the high-water mark). */
    for (int c = 0; c < MA_IO_CLASSES; c++) {
        for (int p = 0; p < monad_async_priority_max; p++) {
            while (ex->io_waiters[c][p].head != NULL) {
                (void)ma_executor_cancel_local(
                    ex, ma_task_from_link(ex->io_waiters[c][p].head));
            }
        }
    }
    while (ex->io_sq_blocked.head != NULL) {
        (void)ma_executor_cancel_local(ex,
                                       ma_task_from_link(ex->io_sq_blocked.head));
    }
    /* Parked without a deadline: on no list but all_tasks. A cancel only
     * makes such a task ready (nothing runs, nothing leaves all_tasks). */
    for (struct ma_link *l = ex->all_tasks.next, *next; l != &ex->all_tasks;
         l = next) {
        next = l->next;
        struct ma_task *const t = ma_container_of(l, struct ma_task, all_link);
        if (t->where == MA_TASK_PARKED) {
            (void)ma_executor_cancel_local(ex, t);
        }
    }
    ma_io_cancel_all_buffer_waits(ex);
    for (uint32_t i = 0; i < ex->io_slot_hwm; i++) {
        struct monad_async_io_status *const st = ex->io_slots[i].status;
        /* An acceptor's multishot request has no task: ended by
         * ma_io_acceptors_cancel. */
        if (st != NULL && !(st->flags & MA_IO_ST_MULTISHOT)) {
            (void)ma_executor_cancel_local(ex, ma_task_from(st->task));
        }
    }
    /* Take each queue whole first: exit hooks run by the cancels may
     * touch the queues, never the tasks set aside here (they are still
     * attached, so nobody can destroy or re-attach them). */
    for (int p = 0; p < monad_async_priority_max; p++) {
        struct ma_list pending = ex->ready[p];
        ex->ready[p].head = ex->ready[p].tail = NULL;
        ex->ready_resumed_tail[p] = NULL;
        ex->head.tasks_runnable[p] = 0;
        struct ma_link *l;
        /* Off the ready queues: a priority change a hook makes meanwhile
         * must not unlink them (priority_change.c). */
        for (l = pending.head; l != NULL; l = l->next) {
            ma_task_from_link(l)->where = MA_TASK_NOWHERE;
        }
        while ((l = ma_list_pop_front(&pending)) != NULL) {
            struct ma_task *const t = ma_task_from_link(l);
            ma_executor_make_ready(ex, t);
            (void)ma_executor_cancel_local(ex, t);
        }
    }
}

monad_async_result monad_async_executor_destroy(monad_async_executor ex_)
{
    if (ex_ == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    if (!ma_executor_is_owner(ex)) {
        return monad_async_make_failure(EPERM);
    }
    if (ex->in_run) {
        return monad_async_make_failure(EBUSY);
    }
    /* From here on attaches fail; wait out those already inside. */
    atomic_store(&ex->closing, 1);
    while (atomic_load(&ex->remote_inflight) != 0) {
        sched_yield();
    }
    /* Started tasks resume with ECANCELED and run to their exit; their
     * later suspension points return ECANCELED at once, so each pass
     * makes progress. */
    static struct timespec const no_wait = {0, 0};
    /* With operations in flight, wait in the ring for their completions
     * rather than spin. */
    static struct timespec const io_wait = {0, 10 * 1000 * 1000};
    for (;;) {
        ma_executor_cancel_all(ex);
        bool const armed = ma_io_acceptors_cancel(ex);
        if (ex->head.tasks_attached == 0 && ma_executor_inboxes_empty(ex) &&
            !armed) {
            break;
        }
        monad_async_result const r = monad_async_executor_run(
            ex_, SIZE_MAX, ex->io_slots_used != 0 ? &io_wait : &no_wait);
        (void)r;
    }
    /* Every operation a task started has completed: nothing the kernel
     * could still write to is left. */
    assert(ex->io_slots_used == 0 &&
           ex->head.io.submitted == ex->head.io.completed);
    /* The per-level counts came back with them (priority changes move a
     * task's operations between levels: priority_change.c). */
    assert(ex->io_inflight_above[monad_async_priority_normal] == 0 &&
           ex->io_inflight_above[monad_async_priority_low] == 0);
    /* A remote waker that resumed one of our parked tasks may still be
     * between its push and its notify. */
    while (atomic_load(&ex->remote_inflight) != 0) {
        sched_yield();
    }
    ma_ring_teardown(ex);
    ma_io_free_buffer_pools(ex);
    ma_io_free_buffer_rings(ex);
    ma_io_free_acceptors(ex);
    free(ex);
    return monad_async_make_success(0);
}

monad_async_result monad_async_executor_wake(monad_async_executor ex_)
{
    if (ex_ == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    atomic_store(&ex->wake_pending, 1);
    ma_executor_notify(ex);
    return monad_async_make_success(0);
}

monad_async_result monad_async_executor_current(void)
{
    return monad_async_make_success((intptr_t)ma_tls_executor);
}
