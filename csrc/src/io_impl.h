/* Internal: what the operation files (io_op.c, io_file.c, io_socket.c)
 * share. Each operation is: ma_io_begin (checks, a slot of the in-flight
 * guard, suspending for one only when its class's share is used up, and a
 * submission entry, handing a full queue to the kernel first), an
 * io_uring_prep_* on op.sqe, ma_io_commit (identity, accounting, and for
 * the blocking form the wait for the completion). */
#ifndef MONAD_ASYNC_IO_IMPL_H
#define MONAD_ASYNC_IO_IMPL_H

#include "executor_impl.h"

#include <assert.h>
#include <errno.h>
#include <sys/mman.h>

/* Private bits of monad_async_io_status.flags. */
enum
{
    MA_IO_ST_BLOCKING = 1u << 0,    /* the blocking form's own status */
    MA_IO_ST_TIMEOUT = 1u << 1,     /* ETIME is the normal outcome */
    MA_IO_ST_CANCEL_SENT = 1u << 2, /* an ASYNC_CANCEL was made for it */
    MA_IO_ST_PRESET = 1u << 3,      /* result set already (a NOP carries it) */
    /* Cancelled because its task's deadline passed: ECANCELED from the
     * kernel is reported as ETIMEDOUT (unless the task was cancelled). */
    MA_IO_ST_DEADLINE = 1u << 4,
    /* A multishot request owned by an acceptor, not by a task: its
     * completions go to ma_io_multishot_cqe (io_accept_multishot.c). */
    MA_IO_ST_MULTISHOT = 1u << 5,
};
/* The operation's io_uring opcode sits in the top byte of
 * monad_async_io_status.flags (for task dumps, dump.c). */
#define MA_IO_ST_OPCODE_SHIFT 24

/* A completion of a MA_IO_ST_MULTISHOT request (io_op.c calls it; the
 * slot is already free when `flags` lacks IORING_CQE_F_MORE). */
void ma_io_multishot_cqe(struct ma_executor *ex,
                         struct monad_async_io_status *st, int res,
                         uint32_t flags);

/* Flags of ma_io_commit. */
enum
{
    MA_IO_COMMIT_RW = 1u << 8, /* a read or write: apply the I/O priority */
};

struct ma_io_op
{
    struct ma_executor *ex;
    struct ma_task *t;
    struct monad_async_io_status *st;
    struct io_uring_sqe *sqe;
    /* The blocking form's status: lives in the operation's frame, which
     * stays on the task's stack until the completion has arrived. */
    struct monad_async_io_status local;
};

static inline monad_async_priority ma_io_prio(struct ma_task const *t)
{
    unsigned const p = (unsigned)t->head.priority.io;
    return p < monad_async_priority_max ? (monad_async_priority)p
                                        : monad_async_priority_normal;
}

/* The calls that set up or tear down what the ring uses (buffers,
 * buffer rings) run on the executor's own thread, with a ring: 0, or the
 * errno they return. */
static inline int ma_io_check_setup(struct ma_executor const *ex)
{
    if (!ma_executor_is_owner(ex)) {
        return EPERM;
    }
    return ex->has_ring ? 0 : ENOTSUP;
}

/* Buffer-group ids (io_buffer_ring.c): the kernel names a buffer ring by
 * a 16-bit group id, unique within the executor's ring while it lives. */
#define MA_BUFFER_GROUPS 65536u
/* A free id into `*id`, searching on from the last one handed out (so
 * that a just-freed id is not the next one given): 0, ENOSPC when all
 * MA_BUFFER_GROUPS are in use, or ENOMEM. */
int ma_io_buffer_group_alloc(struct ma_executor *ex, uint16_t *id);
/* Gives back an id that ma_io_buffer_group_alloc handed out. */
void ma_io_buffer_group_free(struct ma_executor *ex, uint16_t id);

/* Anonymous read-write pages for buffers and buffer rings (page aligned,
 * as the kernel wants a buffer ring): NULL on failure, with errno set. */
static inline void *ma_io_map_pages(size_t size)
{
    void *const p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* A buffer given back to a pool or a buffer ring: `marks` holds 1 for
 * each of its `count` buffers that is out. 0 (and the mark cleared),
 * EPERM off the executor's thread, or EINVAL for a buffer not out. */
static inline int ma_io_buffer_unmark(struct ma_executor const *ex,
                                      unsigned char *marks, unsigned count,
                                      unsigned idx)
{
    if (!ma_executor_is_owner(ex)) {
        return EPERM;
    }
    if (idx >= count || !marks[idx]) {
        return EINVAL;
    }
    marks[idx] = 0;
    return 0;
}

/* ma_io_begin when the slot or the entry is not at hand: waits for a
 * slot, hands a full queue to the kernel (io_op.c). */
int ma_io_begin_slow(struct ma_io_op *op, enum ma_io_class cls);

/* 0, or the error the operation returns. On 0, op->sqe is ready for an
 * io_uring_prep_* and ma_io_commit must follow without suspending.
 * `cls`: MA_IO_WAITS for an operation that waits on the outside world
 * (a constant at every call site, so the share's limit is one load).
 * Inline, with ma_io_commit: each operation's entry point is then one
 * frame, and the op description stays in registers. */
static inline __attribute__((always_inline)) int
ma_io_begin(struct ma_io_op *op, monad_async_task task,
            struct monad_async_io_status *opt_status, enum ma_io_class cls)
{
    struct ma_executor *const ex = ma_tls_executor;
    if (__builtin_expect(
            task == NULL || ex == NULL ||
                atomic_load_explicit(&ex->head.current_task,
                                     memory_order_relaxed) != task,
            0)) {
        return EINVAL;
    }
    if (__builtin_expect(!ex->has_ring || !task->switcher->has_stacks, 0)) {
        return ENOTSUP;
    }
    struct ma_task *const t = ma_task_from(task);
    if (__builtin_expect(ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED, 0)) {
        return ECANCELED;
    }
    /* A blocking operation past the task's deadline is not started
     * (task.h); an initiated one is, as initiating does not suspend. */
    if (__builtin_expect(t->deadline != 0, 0) && opt_status == NULL &&
        ma_ticks_read() >= t->deadline) {
        return ETIMEDOUT;
    }
    if (opt_status != NULL) {
        if (opt_status->state != MONAD_ASYNC_IO_STATE_IDLE) {
            return EBUSY;
        }
        op->st = opt_status;
    }
    else {
        op->st = &op->local;
    }
    op->ex = ex;
    op->t = t;
    /* The common case: a slot within the class's share (slots set aside
     * for granted waiters count as taken; waiters of the same class imply
     * the share is used up, see ma_io_grant_waiters) and an SQE to hand. */
    uint32_t const limit =
        cls == MA_IO_WAITS ? ex->io_wait_limit : ex->io_slot_count;
    if (__builtin_expect(ex->io_slots_used < limit, 1)) {
        op->sqe = io_uring_get_sqe(&ex->ring);
        if (__builtin_expect(op->sqe != NULL, 1)) {
            return 0;
        }
        /* The queue is full: the slow path submits it and takes one. */
    }
    return ma_io_begin_slow(op, cls);
}

/* Takes a slot for `st` (ma_io_begin saw one free) and returns the
 * user_data that names it. */
static inline __attribute__((always_inline)) uint64_t
ma_io_slot_take(struct ma_executor *ex, struct monad_async_io_status *st)
{
    /* A recycled slot, else a never-used one (ma_io_begin saw one free:
     * used < count, and every slot below the high-water mark not in use is
     * on the free list). */
    uint32_t idx = ex->io_free_slot;
    if (__builtin_expect(idx != MA_IO_NO_SLOT, 1)) {
        ex->io_free_slot = ex->io_slots[idx].next_free;
    }
    else {
        idx = ex->io_slot_hwm++;
        assert(idx < ex->io_slot_count);
    }
    struct ma_io_slot *const slot = &ex->io_slots[idx];
    ex->io_slots_used++;
    uint32_t gen = (slot->generation + 1) & 0x7fffffffu;
    if (gen == 0) {
        gen = 1; /* user_data is never 0 */
    }
    slot->generation = gen;
    slot->status = st;
    uint64_t const ud = ((uint64_t)gen << 32) | idx;
    return ud;
}

/* `flags`: MA_IO_COMMIT_* | MA_IO_ST_TIMEOUT / MA_IO_ST_PRESET. */
static inline __attribute__((always_inline)) monad_async_result
ma_io_commit(struct ma_io_op *op, unsigned flags)
{
    struct ma_executor *const ex = op->ex;
    struct ma_task *const t = op->t;
    struct monad_async_io_status *const st = op->st;
    bool const blocking = st == &op->local;

    uint64_t const ud = ma_io_slot_take(ex, st);
    io_uring_sqe_set_data64(op->sqe, ud);
    if (flags & MA_IO_COMMIT_RW) {
        /* Only reads and writes take ioprio as a priority; other
         * operations read that field as flags. */
        op->sqe->ioprio = ex->ioprio[ma_io_prio(t)];
    }

    st->user_data = ud;
    st->task = &t->head;
    /* What it is and what it names, for task dumps: two loads from the
     * SQE just written, two stores. */
    st->fd = op->sqe->fd;
    unsigned const opcode = (unsigned)op->sqe->opcode << MA_IO_ST_OPCODE_SHIFT;
    st->state = MONAD_ASYNC_IO_STATE_IN_FLIGHT;
    ex->head.io.submitted++;
    ex->head.io.in_flight++;
    ma_io_prio_count(ex, t->queue, 1);
    if (!blocking) {
        st->cqe_flags = 0;
        st->flags = (flags & (MA_IO_ST_TIMEOUT | MA_IO_ST_PRESET)) | opcode;
        if (!(flags & MA_IO_ST_PRESET)) {
            st->result = monad_async_make_success(0);
        }
        st->prev = NULL;
        st->next = t->io_inflight_head;
        if (st->next != NULL) {
            st->next->prev = st;
        }
        t->io_inflight_head = st;
        t->io_inflight++;
        return monad_async_make_success(0);
    }
    /* The blocking form is on no list and not in io_inflight: the task
     * is suspended on it alone (io_waiting_for, where a cancel finds it,
     * ma_io_cancel_task_ops) from here until its completion, so it can
     * neither exit nor reap with it in flight. Its completion writes the
     * result (unless preset) and cqe_flags before anyone reads them.
     * Resumed only by this completion: a cancel asks the kernel to end
     * the operation early and still waits for it to say it has.
     * The thread goes straight to the next ready task when the loop would
     * do nothing else first (handoff.c): many tasks each waiting on their
     * own I/O (connections) pass the thread along without a pass of the
     * loop per operation. The check for a ready task is here, not in the
     * hand-off: an I/O wait often has nothing ready (one connection),
     * a park nearly always has the task it just woke, and inside the
     * hand-off the check would add 8 instructions to a park/wake round
     * trip (measured: 612 -> 620). */
    st->flags = (flags & (MA_IO_ST_TIMEOUT | MA_IO_ST_PRESET)) |
                MA_IO_ST_BLOCKING | opcode;
    t->io_waiting_for = st;
    t->where = MA_TASK_IO_WAIT;
    if (__builtin_expect(ex->deferred_wake != NULL, 0)) {
        (void)ma_task_suspend_deferred(ex, t);
    }
    else if (ma_executor_any_ready(ex)) {
        (void)ma_task_suspend_handoff(ex, t);
    }
    else {
        (void)ma_task_suspend(ex, t);
    }
    assert(st->state == MONAD_ASYNC_IO_STATE_COMPLETED);
    st->state = MONAD_ASYNC_IO_STATE_IDLE;
    return st->result;
}

/* Shorthand for an operation whose begin failed. */
#define MA_IO_TRY_BEGIN(op, task, st, cls)                                    \
    do {                                                                      \
        int const ma_err_ = ma_io_begin((op), (task), (st), (cls));           \
        if (ma_err_ != 0) {                                                   \
            return monad_async_make_failure(ma_err_);                         \
        }                                                                     \
    } while (0)

#endif
