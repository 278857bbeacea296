/* Operations and their life: a submission entry and a slot (waiting for
 * one, highest I/O priority first, when none is free), the identity in
 * user_data, completion, reaping, cancellation; and the generic
 * operations (NOP, timeout, poll).
 *
 * An operation's user_data is (slot generation << 32 | slot index). The
 * slot table is allocated with the ring and holds one slot per operation
 * that may be in flight (the in-flight limit), so starting an operation
 * never allocates, and a completion whose slot has since been reused
 * (another generation) is counted as stale and never delivered to the
 * wrong operation. */
#include "io_impl.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* ---- submission entries and slots ---- */

struct io_uring_sqe *ma_io_internal_sqe(struct ma_executor *ex)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ex->ring);
    for (int i = 0; sqe == NULL && i < 4; i++) {
        /* Full: hand what is queued to the kernel (the rare case of an
         * internal request on a full queue; costs a system call). */
        (void)io_uring_submit(&ex->ring);
        ex->head.io.enters++;
        sqe = io_uring_get_sqe(&ex->ring);
    }
    return sqe;
}

/* Entries a new operation may take without waiting: free slots and free
 * submission entries, less those set aside for woken waiters. */
static inline uint32_t ma_io_available(struct ma_executor *ex)
{
    uint32_t const slots = ex->io_slot_count - ex->io_slots_used;
    uint32_t const sq = io_uring_sq_space_left(&ex->ring);
    uint32_t const a = slots < sq ? slots : sq;
    return a > ex->io_granted ? a - ex->io_granted : 0;
}

void ma_io_grant_waiters(struct ma_executor *ex)
{
    while (ex->sqe_waiters_count != 0 && ma_io_available(ex) != 0) {
        struct ma_link *l = NULL;
        for (int p = 0; p < monad_async_priority_max && l == NULL; p++) {
            l = ma_list_pop_front(&ex->sqe_waiters[p]);
        }
        struct ma_task *const t = ma_task_from_link(l);
        ex->sqe_waiters_count--;
        t->io_granted = true;
        ex->io_granted++;
        ma_executor_make_ready(ex, t);
    }
}

void ma_io_cancel_sqe_wait(struct ma_executor *ex, struct ma_task *t)
{
    ma_list_remove(&ex->sqe_waiters[ma_io_prio(t)], &t->link);
    ex->sqe_waiters_count--;
    t->resume_error = ECANCELED;
    ma_executor_make_ready(ex, t);
}

/* Waits, if need be, until the task may start an operation. A task
 * queues behind waiters of its own or higher I/O priority (first come,
 * first served within a level; higher levels first), never busy-waits,
 * and is woken by ma_io_grant_waiters with a slot set aside for it. */
static int ma_io_acquire(struct ma_executor *ex, struct ma_task *t)
{
    monad_async_priority const prio = ma_io_prio(t);
    if (ma_io_available(ex) != 0) {
        bool queued_ahead = false;
        for (int p = 0; p <= (int)prio; p++) {
            queued_ahead |= ex->sqe_waiters[p].head != NULL;
        }
        if (!queued_ahead) {
            return 0;
        }
    }
    ex->head.io.sqe_waits++;
    t->where = MA_TASK_SQE_WAIT;
    ma_list_push_back(&ex->sqe_waiters[prio], &t->link);
    ex->sqe_waiters_count++;
    monad_async_result const r = ma_task_suspend(ex, t);
    if (t->io_granted) {
        t->io_granted = false;
        ex->io_granted--;
        if (r.error != 0) {
            /* Cancelled after the grant: pass the slot on. */
            ma_io_grant_waiters(ex);
            return r.error;
        }
        return 0;
    }
    /* Only a cancel resumes a waiter without a grant. */
    return r.error != 0 ? r.error : EAGAIN;
}

int ma_io_begin_slow(struct ma_io_op *op)
{
    struct ma_executor *const ex = op->ex;
    int const err = ma_io_acquire(ex, op->t);
    if (err != 0) {
        return err;
    }
    op->sqe = ma_io_internal_sqe(ex);
    if (op->sqe == NULL) {
        /* The kernel would take nothing (it cannot flush its overflowed
         * completions): give the entry back rather than spin. */
        ma_io_grant_waiters(ex);
        return EBUSY;
    }
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

/* Handles one operation's CQE (ma_io_reap_cqes, inlined there). */
static inline __attribute__((always_inline)) void
ma_io_complete(struct ma_executor *ex, uint64_t user_data, int res,
               uint32_t flags)
{
    uint32_t const idx = (uint32_t)user_data;
    uint32_t const gen = (uint32_t)(user_data >> 32);
    if (idx >= ex->io_slot_count || ex->io_slots[idx].status == NULL ||
        ex->io_slots[idx].generation != gen) {
        ex->head.io.stale++;
        return;
    }
    struct ma_io_slot *const slot = &ex->io_slots[idx];
    struct monad_async_io_status *const st = slot->status;
    slot->status = NULL;
    slot->next_free = ex->io_free_slot;
    ex->io_free_slot = idx;
    ex->io_slots_used--;
    ex->head.io.completed++;
    ex->head.io.in_flight--;

    struct ma_task *const t = ma_task_from(st->task);
    ex->io_inflight_by_prio[t->queue]--;
    uint32_t const st_flags = st->flags;
    if (!(st_flags & MA_IO_ST_PRESET)) {
        if ((st_flags & MA_IO_ST_TIMEOUT) && res == -ETIME) {
            res = 0; /* a timeout that ran its course */
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
        ma_executor_make_ready(ex, t);
        return;
    }
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
        ma_executor_make_ready(ex, t);
    }
}

/* ---- reaping (the run loop, io_pump.c) ---- */

/* Next to ma_io_complete, so that it is inlined into the loop. */
void ma_io_reap_cqes(struct ma_executor *ex)
{
    if (IO_URING_READ_ONCE(*ex->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW) {
        /* peek flushes the kernel's overflow list once the CQ is empty;
         * nothing is lost (IORING_FEAT_NODROP). */
        ex->head.io.cq_overflows++;
    }
    /* In bulk, straight from the ring: take up to a batch of entries,
     * copy them out and free them with one store to the CQ head (before
     * handling: handlers may queue more), then handle them. When the CQ
     * is empty and the kernel reports an overflow, one GETEVENTS enter
     * flushes its overflow list, as peek did (once per reap). */
    enum { MA_REAP_BATCH = 32 };
    struct io_uring *const ring = &ex->ring;
    unsigned const mask = ring->cq.ring_mask;
    unsigned const shift = io_uring_cqe_shift(ring);
    bool flushed = false;
    for (;;) {
        unsigned const head = *ring->cq.khead;
        unsigned n = io_uring_smp_load_acquire(ring->cq.ktail) - head;
        if (n == 0) {
            if (flushed ||
                !(IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_CQ_OVERFLOW)) {
                break;
            }
            flushed = true;
            (void)io_uring_get_events(ring);
            ex->head.io.enters++;
            continue;
        }
        if (n > MA_REAP_BATCH) {
            n = MA_REAP_BATCH;
        }
        uint64_t ud[MA_REAP_BATCH];
        int res[MA_REAP_BATCH];
        uint32_t flags[MA_REAP_BATCH];
        for (unsigned i = 0; i < n; i++) {
            struct io_uring_cqe const *const cqe =
                &ring->cq.cqes[((head + i) & mask) << shift];
            ud[i] = cqe->user_data;
            res[i] = cqe->res;
            flags[i] = cqe->flags;
        }
        io_uring_cq_advance(ring, n);
        for (unsigned i = 0; i < n; i++) {
            if (__builtin_expect(!(ud[i] & MA_UD_INTERNAL), 1)) {
                ma_io_complete(ex, ud[i], res[i], flags[i]);
            }
            else if (ud[i] == MA_UD_WAKE) {
                ex->wake_armed = false;
                ma_io_arm_wake(ex);
            }
            /* MA_UD_CANCEL, LIBURING_UDATA_TIMEOUT: nothing to do. */
        }
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
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_nop(op.sqe);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_timeout(monad_async_task task,
                                          struct monad_async_io_status *opt_status,
                                          uint64_t ns)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
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
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_poll_add(op.sqe, fd, events);
    return ma_io_commit(&op, 0);
}
