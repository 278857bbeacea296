/* Operations and their life: a slot of the in-flight guard (waiting for
 * one, highest I/O priority first, when the operation's share is used
 * up) and a submission entry (handing a full queue to the kernel first),
 * the identity in user_data, completion, reaping, cancellation; and the
 * generic operations (NOP, timeout, poll).
 *
 * An operation's user_data is (slot generation << 32 | slot index). The
 * slot table is reserved with the ring, one slot per operation that may
 * be in flight (the in-flight guard), and backed by memory only where
 * slots have been used, so starting an operation never allocates; a
 * completion whose slot has since been reused (another generation) is
 * counted as stale and never delivered to the wrong operation. */
#include "io_impl.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* ---- submission entries and slots ---- */

int ma_io_submit(struct ma_executor *ex)
{
    int ret;
    int tries = 0;
    do {
        ret = io_uring_submit(&ex->ring);
        ex->head.io.enters++;
    } while (ret == -EINTR && ++tries < 8);
    return ret;
}

struct io_uring_sqe *ma_io_internal_sqe(struct ma_executor *ex)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ex->ring);
    if (sqe == NULL) {
        /* Full: hand what is queued to the kernel (a system call). If it
         * refuses (EBUSY, EAGAIN), the caller retries later: a cancel at
         * the next cancellation point or drain, the wake before the next
         * sleep. */
        (void)ma_io_submit(ex);
        sqe = io_uring_get_sqe(&ex->ring);
    }
    return sqe;
}

static inline uint32_t ma_io_class_limit(struct ma_executor const *ex,
                                         enum ma_io_class cls)
{
    return cls == MA_IO_WAITS ? ex->io_wait_limit : ex->io_slot_count;
}

/* The waiter to serve next: of the classes whose share has a slot free,
 * the first waiter of the highest I/O priority, the earlier ticket when
 * both classes have one at that priority. NULL: none can be served. */
static struct ma_task *ma_io_next_waiter(struct ma_executor *ex,
                                         enum ma_io_class *cls_out)
{
    struct ma_task *best = NULL;
    int best_p = monad_async_priority_max;
    for (int c = 0; c < MA_IO_CLASSES; c++) {
        if (ex->io_slots_used >= ma_io_class_limit(ex, (enum ma_io_class)c)) {
            continue;
        }
        for (int p = 0; p < monad_async_priority_max && p <= best_p; p++) {
            struct ma_link *const l = ex->io_waiters[c][p].head;
            if (l == NULL) {
                continue;
            }
            struct ma_task *const t = ma_task_from_link(l);
            if (best == NULL || p < best_p ||
                t->io_wait_ticket < best->io_wait_ticket) {
                best = t;
                best_p = p;
                *cls_out = (enum ma_io_class)c;
            }
            break;
        }
    }
    return best;
}

/* Serves waiters while slots are free. Slots free only when operations
 * complete (then the reaper calls this) or when a granted waiter gives
 * its slot back (then this is called too), so between calls every task
 * still waiting is one whose class's share is used up: ma_io_begin may
 * take a slot whenever its class's share has one, without looking at the
 * queues. */
void ma_io_grant_waiters(struct ma_executor *ex)
{
    while (ex->io_waiters_count != 0) {
        enum ma_io_class cls = MA_IO_FINITE;
        struct ma_task *const t = ma_io_next_waiter(ex, &cls);
        if (t == NULL) {
            break;
        }
        ma_list_remove(&ex->io_waiters[cls][ma_io_prio(t)], &t->link);
        ex->io_waiters_count--;
        t->io_granted = true;
        ex->io_slots_used++; /* set aside until it runs */
        ma_executor_make_ready_resumed(ex, t);
    }
}

void ma_io_wake_sq_blocked(struct ma_executor *ex)
{
    struct ma_link *l;
    while (io_uring_sq_space_left(&ex->ring) != 0 &&
           (l = ma_list_pop_front(&ex->io_sq_blocked)) != NULL) {
        ma_executor_make_ready_resumed(ex, ma_task_from_link(l));
    }
}

void ma_io_cancel_sqe_wait(struct ma_executor *ex, struct ma_task *t)
{
    if (t->io_wait_queue == MA_IO_SQ_BLOCKED) {
        ma_list_remove(&ex->io_sq_blocked, &t->link);
    }
    else {
        ma_list_remove(&ex->io_waiters[t->io_wait_queue][ma_io_prio(t)],
                       &t->link);
        ex->io_waiters_count--;
    }
    t->resume_error = ECANCELED;
    ma_executor_make_ready_woken(ex, t);
}

/* Suspends `t` on the queue `q` (an ma_io_class, or MA_IO_SQ_BLOCKED):
 * 0 when resumed to go on, or the cancellation's error. */
static int ma_io_wait_turn(struct ma_executor *ex, struct ma_task *t,
                           unsigned q)
{
    ex->head.io.sqe_waits++;
    t->where = MA_TASK_SQE_WAIT;
    t->io_wait_queue = (uint8_t)q;
    if (q == MA_IO_SQ_BLOCKED) {
        ma_list_push_back(&ex->io_sq_blocked, &t->link);
    }
    else {
        t->io_wait_ticket = ex->io_wait_tickets++;
        ma_list_push_back(&ex->io_waiters[q][ma_io_prio(t)], &t->link);
        ex->io_waiters_count++;
    }
    monad_async_result const r = ma_task_suspend(ex, t);
    return r.error;
}

/* Gives back a slot set aside for `t` (taken, not committed). */
static void ma_io_release_slot(struct ma_executor *ex)
{
    ex->io_slots_used--;
    ma_io_grant_waiters(ex);
}

int ma_io_begin_slow(struct ma_io_op *op, enum ma_io_class cls)
{
    struct ma_executor *const ex = op->ex;
    struct ma_task *const t = op->t;
    /* 1. A slot, set aside in io_slots_used until the commit takes it. A
     * task queues behind waiters of its own class at its own or a higher
     * I/O priority (first come, first served within a level), never
     * busy-waits, and is woken by ma_io_grant_waiters with a slot. */
    if (ex->io_slots_used < ma_io_class_limit(ex, cls)) {
        ex->io_slots_used++;
    }
    else {
        int const err = ma_io_wait_turn(ex, t, (unsigned)cls);
        t->io_resumed = false;
        if (!t->io_granted) {
            /* Only a cancel resumes a waiter without a grant. */
            return err != 0 ? err : EAGAIN;
        }
        t->io_granted = false;
        if (err != 0) {
            /* Cancelled after the grant: pass the slot on. */
            ma_io_release_slot(ex);
            return err;
        }
    }
    /* 2. An entry: a full queue goes to the kernel now, and the task waits
     * only for that system call. If the kernel takes nothing (EBUSY: it
     * has completions to flush first; EAGAIN: no memory for requests),
     * the task waits, behind any other that did, for the run loop's next
     * pump, which reaps and submits again: it never spins. */
    for (;;) {
        if (ex->io_sq_blocked.head == NULL) {
            op->sqe = io_uring_get_sqe(&ex->ring);
            if (op->sqe != NULL) {
                break;
            }
            (void)ma_io_submit(ex);
            op->sqe = io_uring_get_sqe(&ex->ring);
            if (op->sqe != NULL) {
                break;
            }
        }
        int const err = ma_io_wait_turn(ex, t, MA_IO_SQ_BLOCKED);
        t->io_resumed = false;
        if (err != 0) {
            ma_io_release_slot(ex);
            return err;
        }
    }
    /* The commit that follows counts the slot again. */
    ex->io_slots_used--;
    return 0;
}

/* ---- completion ---- */

static void ma_io_unlink_inflight(struct ma_task *t, struct monad_async_io_status *st)
{
    if (st->prev != NULL) {
        st->prev->next = st->next;
    }
    else {
        t->io_inflight_head = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    }
    t->io_inflight--;
}

static void ma_io_unlink_done(struct ma_task *t, struct monad_async_io_status *st)
{
    if (st->prev != NULL) {
        st->prev->next = st->next;
    }
    else {
        t->io_done_head = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    }
    else {
        t->io_done_tail = st->prev;
    }
    st->prev = st->next = NULL;
}

/* The end of ma_io_complete for an initiated operation: off the task's
 * in-flight list, onto its done list, and the task resumed if it waits
 * for it. Out of line: the reap loop then keeps its few live values in
 * registers for the blocking form, which is what the std-like API uses. */
static __attribute__((noinline)) void
ma_io_complete_initiated(struct ma_executor *ex, struct ma_task *t,
                         struct monad_async_io_status *st)
{
    ma_io_unlink_inflight(t, st);
    if (t->io_draining) {
        /* Its work returned with this in flight: nobody reaps it. */
        if (t->io_inflight == 0) {
            t->io_draining = false;
            ma_executor_finish(ex, t, ma_executor_stamp(ex));
        }
        return;
    }
    st->next = NULL;
    st->prev = t->io_done_tail;
    if (t->io_done_tail != NULL) {
        t->io_done_tail->next = st;
    }
    else {
        t->io_done_head = st;
    }
    t->io_done_tail = st;
    if (t->where == MA_TASK_IO_WAIT &&
        (t->io_waiting_for == st || t->io_waiting_for == MA_IO_WAIT_ANY)) {
        t->io_waiting_for = NULL;
        ma_executor_make_ready_woken_now(ex, t); /* flushed by the reap */
    }
}

/* Handles one operation's CQE (ma_io_reap_cqes, inlined there). */
static inline __attribute__((always_inline)) void
ma_io_complete(struct ma_executor *ex, uint64_t user_data, int res,
               uint32_t flags)
{
    uint32_t const idx = (uint32_t)user_data;
    uint32_t const gen = (uint32_t)(user_data >> 32);
    if (idx >= ex->io_slot_hwm || ex->io_slots[idx].status == NULL ||
        ex->io_slots[idx].generation != gen) {
        ex->head.io.stale++;
        return;
    }
    struct ma_io_slot *const slot = &ex->io_slots[idx];
    struct monad_async_io_status *const st = slot->status;
    uint32_t const st_flags = st->flags;
    if (__builtin_expect(st_flags & MA_IO_ST_MULTISHOT, 0) &&
        (flags & IORING_CQE_F_MORE)) {
        /* One of many: the request goes on and keeps its slot. */
        ma_io_multishot_cqe(ex, st, res, flags);
        return;
    }
    slot->status = NULL;
    slot->next_free = ex->io_free_slot;
    ex->io_free_slot = idx;
    ex->io_slots_used--;
    ex->head.io.completed++;
    ex->head.io.in_flight--;
    if (__builtin_expect(st_flags & MA_IO_ST_MULTISHOT, 0)) {
        /* Its last: owned by an acceptor, counted for no task. */
        ma_io_multishot_cqe(ex, st, res, flags);
        return;
    }

    struct ma_task *const t = ma_task_from(st->task);
    ma_io_prio_count(ex, t->queue, (uint32_t)-1);
    if (!(st_flags & MA_IO_ST_PRESET)) {
        if (__builtin_expect(st_flags & (MA_IO_ST_TIMEOUT | MA_IO_ST_DEADLINE), 0)) {
            if ((st_flags & MA_IO_ST_TIMEOUT) && res == -ETIME) {
                res = 0; /* a timeout that ran its course */
            }
            /* Ended by the task's deadline (its own cancel, or a
             * cancellation of the task, says ECANCELED; some operations
             * the kernel interrupts say EINTR). */
            if ((st_flags & MA_IO_ST_DEADLINE) && (res == -ECANCELED || res == -EINTR) &&
                !(ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED)) {
                res = -ETIMEDOUT;
            }
        }
        st->result = res < 0 ? monad_async_make_failure(-res)
                             : monad_async_make_success(res);
    }
    st->cqe_flags = flags;
    st->state = MONAD_ASYNC_IO_STATE_COMPLETED;

    if (st_flags & MA_IO_ST_BLOCKING) {
        /* Its task has been suspended on this operation alone since it
         * was committed (ma_io_commit): on no list, resumed only here. */
        assert(t->where == MA_TASK_IO_WAIT && t->io_waiting_for == st);
        t->io_waiting_for = NULL;
        ma_executor_make_ready_woken_now(ex, t); /* flushed by the reap */
        return;
    }
    ma_io_complete_initiated(ex, t, st);
}

/* ---- reaping (the run loop, io_pump.c) ---- */

/* Next to ma_io_complete, so that it is inlined into the loop. */
void ma_io_reap_cqes(struct ma_executor *ex)
{
    /* A deferred wake (park.c) goes before the tasks the completions
     * ready: applied once here (a reap inside a task's slice, when its
     * submission found the queue full), not per completion; nothing a
     * completion runs defers another. */
    ma_executor_flush_deferred(ex);
    struct io_uring *const ring = &ex->ring;
    /* Straight from the ring, one pass: each entry is copied out and
     * freed (a plain store to the CQ head: the kernel only reads it)
     * before it is handled, since a handler may queue more and so enter
     * the kernel, which must find the entry free. When the CQ is empty
     * and the kernel reports an overflow, a GETEVENTS enter moves as much
     * of its backlog as fits into the CQ; repeated while that yields
     * entries, so the whole backlog is collected in this pass, and never
     * spun on when it yields none. `head` stays in a register across the
     * handlers: none of them reaps (this runs only inside
     * monad_async_executor_run, which a hook calling it again gets EBUSY
     * from), so nobody else moves the CQ head meanwhile. */
    unsigned const mask = ring->cq.ring_mask;
    unsigned const shift = io_uring_cqe_shift(ring);
    struct io_uring_cqe const *const cqes = ring->cq.cqes;
    unsigned *const khead = ring->cq.khead;
    bool flushed = false;
    bool overflowed = false;
    for (;;) {
        unsigned head = *khead;
        unsigned const tail = io_uring_smp_load_acquire(ring->cq.ktail);
        if (head == tail) {
            if (flushed ||
                !(IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_CQ_OVERFLOW)) {
                break;
            }
            /* Completions wait in the kernel's overflow list: nothing is
             * lost (IORING_FEAT_NODROP, checked at set-up). Counted once
             * per pass. */
            if (!overflowed) {
                overflowed = true;
                ex->head.io.cq_overflows++;
            }
            flushed = true;
            (void)io_uring_get_events(ring);
            ex->head.io.enters++;
            continue;
        }
        flushed = false;
        do {
            struct io_uring_cqe const *const cqe = &cqes[(head & mask) << shift];
            uint64_t const ud = cqe->user_data;
            int const res = cqe->res;
            uint32_t const flags = cqe->flags;
            head++;
            io_uring_smp_store_release(khead, head);
            if (__builtin_expect(!(ud & MA_UD_INTERNAL), 1)) {
                ma_io_complete(ex, ud, res, flags);
            }
            else if (ud == MA_UD_WAKE) {
                ex->wake_armed = false;
                ma_io_arm_wake(ex);
            }
            /* MA_UD_CANCEL, LIBURING_UDATA_TIMEOUT: nothing to do. */
        } while (head != tail);
    }
}

/* ---- cancellation ---- */

static void ma_io_cancel_one(struct ma_executor *ex, struct monad_async_io_status *st)
{
    if (st->flags & MA_IO_ST_CANCEL_SENT) {
        return;
    }
    struct io_uring_sqe *const sqe = ma_io_internal_sqe(ex);
    if (sqe == NULL) {
        return; /* retried by the next cancellation point or drain */
    }
    io_uring_prep_cancel64(sqe, st->user_data, 0);
    io_uring_sqe_set_data64(sqe, MA_UD_CANCEL);
    st->flags |= MA_IO_ST_CANCEL_SENT;
    ex->head.io.cancels++;
}

/* One operation ended by the deadline: marked, unless a cancel was made
 * for it already (then its outcome is that cancel's). False if the cancel
 * could not be queued. */
static bool ma_io_deadline_one(struct ma_executor *ex, struct monad_async_io_status *st)
{
    if (st->flags & MA_IO_ST_CANCEL_SENT) {
        return true;
    }
    ma_io_cancel_one(ex, st);
    if (!(st->flags & MA_IO_ST_CANCEL_SENT)) {
        return false;
    }
    st->flags |= MA_IO_ST_DEADLINE;
    return true;
}

bool ma_io_cancel_for_deadline(struct ma_executor *ex, struct ma_task *t)
{
    struct monad_async_io_status *const w = t->io_waiting_for;
    if (w == NULL) {
        return true;
    }
    if (w != MA_IO_WAIT_ANY) {
        return ma_io_deadline_one(ex, w);
    }
    bool all = true;
    for (struct monad_async_io_status *st = t->io_inflight_head; st != NULL;
         st = st->next) {
        all &= ma_io_deadline_one(ex, st);
    }
    return all;
}

void ma_io_cancel_task_ops(struct ma_executor *ex, struct ma_task *t)
{
    struct monad_async_io_status *const w = t->io_waiting_for;
    if (t->where == MA_TASK_IO_WAIT && w != NULL && w != MA_IO_WAIT_ANY &&
        (w->flags & MA_IO_ST_BLOCKING)) {
        /* A blocking-form operation is on no list (ma_io_commit). */
        ma_io_cancel_one(ex, w);
    }
    for (struct monad_async_io_status *st = t->io_inflight_head; st != NULL;
         st = st->next) {
        ma_io_cancel_one(ex, st);
    }
}

/* ---- collecting initiated operations ---- */

static int ma_io_check_task(monad_async_task task, struct ma_executor **ex_out)
{
    struct ma_executor *const ex = ma_tls_executor;
    if (task == NULL || ex == NULL ||
        atomic_load_explicit(&ex->head.current_task, memory_order_relaxed) !=
            task) {
        return EINVAL;
    }
    if (!ex->has_ring || !task->switcher->has_stacks) {
        return ENOTSUP;
    }
    *ex_out = ex;
    return 0;
}

static monad_async_result ma_io_reap(monad_async_task task,
                                     struct monad_async_io_status **completed,
                                     bool wait)
{
    struct ma_executor *ex;
    int const err = completed == NULL ? EINVAL : ma_io_check_task(task, &ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_task *const t = ma_task_from(task);
    for (;;) {
        struct monad_async_io_status *const st = t->io_done_head;
        if (st != NULL) {
            ma_io_unlink_done(t, st);
            st->state = MONAD_ASYNC_IO_STATE_IDLE;
            *completed = st;
            return monad_async_make_success(0);
        }
        bool const cancelled =
            ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED;
        if (t->io_inflight == 0) {
            return monad_async_make_failure(cancelled ? ECANCELED : ENOENT);
        }
        if (!wait) {
            return monad_async_make_failure(EAGAIN);
        }
        if (cancelled) {
            ma_io_cancel_task_ops(ex, t);
        }
        t->io_waiting_for = MA_IO_WAIT_ANY;
        t->where = MA_TASK_IO_WAIT;
        (void)ma_task_suspend(ex, t);
    }
}

monad_async_result monad_async_io_reap(monad_async_task task,
                                       struct monad_async_io_status **completed)
{
    return ma_io_reap(task, completed, true);
}

monad_async_result monad_async_io_try_reap(
    monad_async_task task, struct monad_async_io_status **completed)
{
    return ma_io_reap(task, completed, false);
}

monad_async_result monad_async_io_wait(monad_async_task task,
                                       struct monad_async_io_status *st)
{
    struct ma_executor *ex;
    int const err = st == NULL ? EINVAL : ma_io_check_task(task, &ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    if (st->state == MONAD_ASYNC_IO_STATE_IDLE) {
        return monad_async_make_failure(ENOENT);
    }
    if (st->task != task) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_task *const t = ma_task_from(task);
    while (st->state == MONAD_ASYNC_IO_STATE_IN_FLIGHT) {
        if (ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED) {
            ma_io_cancel_one(ex, st);
        }
        t->io_waiting_for = st;
        t->where = MA_TASK_IO_WAIT;
        (void)ma_task_suspend(ex, t);
    }
    ma_io_unlink_done(t, st);
    st->state = MONAD_ASYNC_IO_STATE_IDLE;
    return st->result;
}

monad_async_result monad_async_io_cancel(monad_async_task task,
                                         struct monad_async_io_status *st)
{
    struct ma_executor *ex;
    int const err = st == NULL ? EINVAL : ma_io_check_task(task, &ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    if (st->state != MONAD_ASYNC_IO_STATE_IN_FLIGHT) {
        return monad_async_make_failure(ENOENT);
    }
    if (st->task != task) {
        return monad_async_make_failure(EINVAL);
    }
    ma_io_cancel_one(ex, st);
    return monad_async_make_success(0);
}

/* ---- generic operations ---- */

monad_async_result monad_async_io_nop(monad_async_task task,
                                      struct monad_async_io_status *opt_status)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    io_uring_prep_nop(op.sqe);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_timeout(monad_async_task task,
                                          struct monad_async_io_status *opt_status,
                                          uint64_t ns)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    /* The kernel reads the timespec when the entry is submitted, after
     * this call has returned in the initiate form: keep it in the
     * status. */
    struct __kernel_timespec ts;
    ts.tv_sec = (long long)(ns / 1000000000ull);
    ts.tv_nsec = (long long)(ns % 1000000000ull);
    _Static_assert(sizeof(ts) <= sizeof(op.st->scratch), "timespec fits");
    memcpy(op.st->scratch, &ts, sizeof(ts));
    io_uring_prep_timeout(op.sqe, (struct __kernel_timespec *)op.st->scratch, 0, 0);
    return ma_io_commit(&op, MA_IO_ST_TIMEOUT);
}

monad_async_result monad_async_io_poll(monad_async_task task,
                                       struct monad_async_io_status *opt_status,
                                       int fd, unsigned events)
{
    if (fd < 0) {
        return monad_async_make_failure(EBADF);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_WAITS);
    io_uring_prep_poll_add(op.sqe, fd, events);
    return ma_io_commit(&op, 0);
}
