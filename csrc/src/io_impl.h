/* Internal: what the operation files (io_op.c, io_file.c, io_socket.c)
 * share. Each operation is: ma_io_begin (checks, and a submission entry,
 * suspending for one if none is free), an io_uring_prep_* on op.sqe,
 * ma_io_commit (identity, accounting, and for the blocking form the wait
 * for the completion). */
#ifndef MONAD_ASYNC_IO_IMPL_H
#define MONAD_ASYNC_IO_IMPL_H

#include "executor_impl.h"

/* Private bits of monad_async_io_status.flags. */
enum
{
    MA_IO_ST_BLOCKING = 1u << 0,    /* the blocking form's own status */
    MA_IO_ST_TIMEOUT = 1u << 1,     /* ETIME is the normal outcome */
    MA_IO_ST_CANCEL_SENT = 1u << 2, /* an ASYNC_CANCEL was made for it */
    MA_IO_ST_PRESET = 1u << 3,      /* result set already (a NOP carries it) */
};

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

/* 0, or the error the operation returns. On 0, op->sqe is ready for an
 * io_uring_prep_* and ma_io_commit must follow without suspending. */
int ma_io_begin(struct ma_io_op *op, monad_async_task task,
                struct monad_async_io_status *opt_status);

/* `flags`: MA_IO_COMMIT_* | MA_IO_ST_TIMEOUT / MA_IO_ST_PRESET. */
monad_async_result ma_io_commit(struct ma_io_op *op, unsigned flags);

/* Shorthand for an operation whose begin failed. */
#define MA_IO_TRY_BEGIN(op, task, st)                                         \
    do {                                                                      \
        int const ma_err_ = ma_io_begin((op), (task), (st));                  \
        if (ma_err_ != 0) {                                                   \
            return monad_async_make_failure(ma_err_);                         \
        }                                                                     \
    } while (0)

#endif
