/* File operations through the ring (buffer registration for the fixed
 * ones is in io_buffers.c). Offsets of -1 mean the file position (as
 * preadv2/pwritev2). */
#define _GNU_SOURCE 1 /* IOV_MAX from <limits.h> */
#include "io_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>

/* The kernel caps one transfer at INT_MAX-ish (MAX_RW_COUNT); a length
 * the 32-bit SQE field cannot hold is refused, never truncated. */
static inline bool ma_io_len_ok(size_t len)
{
    return len <= UINT32_MAX;
}

/* A buffer and its length as read and write take them: 0, EFAULT for a
 * NULL buffer with a length, or EINVAL for a length out of range. */
static inline int ma_io_check_buf(void const *buf, size_t len)
{
    if (!ma_io_len_ok(len) || (buf == NULL && len != 0)) {
        return buf == NULL ? EFAULT : EINVAL;
    }
    return 0;
}

monad_async_result monad_async_io_openat(monad_async_task task,
                                         struct monad_async_io_status *opt_status,
                                         int dirfd, char const *path, int flags,
                                         mode_t mode)
{
    if (path == NULL) {
        return monad_async_make_failure(EFAULT);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    io_uring_prep_openat(op.sqe, dirfd, path, flags, mode);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_close(monad_async_task task,
                                        struct monad_async_io_status *opt_status,
                                        int fd)
{
    if (fd < 0) {
        return monad_async_make_failure(EBADF);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    io_uring_prep_close(op.sqe, fd);
    return ma_io_commit(&op, 0);
}

/* The reads and writes: liburing's preps for all six are
 * io_uring_prep_rw with their opcode (the fixed ones then name their
 * buffer), so one body serves them. Always inline: each entry point
 * stays one frame with a constant opcode, as with the named preps. */
static inline __attribute__((always_inline)) monad_async_result
ma_io_rw(monad_async_task task, struct monad_async_io_status *opt_status,
         int opcode, int fd, void const *addr, unsigned len, int64_t offset,
         unsigned buf_index)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    struct io_uring_sqe *const sqe = op.sqe; /* one load, as the preps */
    io_uring_prep_rw(opcode, sqe, fd, addr, len, (uint64_t)offset);
    if (opcode == IORING_OP_READ_FIXED || opcode == IORING_OP_WRITE_FIXED) {
        /* As io_uring_prep_{read,write}_fixed; folded away for the rest,
         * whose buf_index io_uring_prep_rw has zeroed. */
        sqe->buf_index = (uint16_t)buf_index;
    }
    return ma_io_commit(&op, MA_IO_COMMIT_RW);
}

/* read and write: EFAULT for a NULL buffer with a length, EINVAL for a
 * length out of range. */
static inline __attribute__((always_inline)) monad_async_result
ma_io_rw_buf(monad_async_task task, struct monad_async_io_status *opt_status,
             int opcode, int fd, void const *buf, size_t len, int64_t offset)
{
    int const err = ma_io_check_buf(buf, len);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    return ma_io_rw(task, opt_status, opcode, fd, buf, (unsigned)len, offset, 0);
}

/* readv and writev: EFAULT for a NULL array with a count, EINVAL for
 * more than IOV_MAX iovecs. */
static inline __attribute__((always_inline)) monad_async_result
ma_io_rw_iov(monad_async_task task, struct monad_async_io_status *opt_status,
             int opcode, int fd, struct iovec const *iov, unsigned iovcnt,
             int64_t offset)
{
    if (iov == NULL && iovcnt != 0) {
        return monad_async_make_failure(EFAULT);
    }
    if (iovcnt > IOV_MAX) {
        return monad_async_make_failure(EINVAL);
    }
    return ma_io_rw(task, opt_status, opcode, fd, iov, iovcnt, offset, 0);
}

/* read_fixed and write_fixed: the buffer is never NULL (it lies in a
 * registered one) and its index fits the SQE's 16 bits. */
static inline __attribute__((always_inline)) monad_async_result
ma_io_rw_fixed(monad_async_task task, struct monad_async_io_status *opt_status,
               int opcode, int fd, void const *buf, size_t len, int64_t offset,
               unsigned buf_index)
{
    if (!ma_io_len_ok(len) || buf == NULL || buf_index > UINT16_MAX) {
        return monad_async_make_failure(buf == NULL ? EFAULT : EINVAL);
    }
    return ma_io_rw(task, opt_status, opcode, fd, buf, (unsigned)len, offset,
                    buf_index);
}

monad_async_result monad_async_io_read(monad_async_task task,
                                       struct monad_async_io_status *opt_status,
                                       int fd, void *buf, size_t len,
                                       int64_t offset)
{
    return ma_io_rw_buf(task, opt_status, IORING_OP_READ, fd, buf, len, offset);
}

monad_async_result monad_async_io_readv(monad_async_task task,
                                        struct monad_async_io_status *opt_status,
                                        int fd, struct iovec const *iov,
                                        unsigned iovcnt, int64_t offset)
{
    return ma_io_rw_iov(task, opt_status, IORING_OP_READV, fd, iov, iovcnt,
                        offset);
}

monad_async_result monad_async_io_write(monad_async_task task,
                                        struct monad_async_io_status *opt_status,
                                        int fd, void const *buf, size_t len,
                                        int64_t offset)
{
    return ma_io_rw_buf(task, opt_status, IORING_OP_WRITE, fd, buf, len, offset);
}

monad_async_result monad_async_io_writev(monad_async_task task,
                                         struct monad_async_io_status *opt_status,
                                         int fd, struct iovec const *iov,
                                         unsigned iovcnt, int64_t offset)
{
    return ma_io_rw_iov(task, opt_status, IORING_OP_WRITEV, fd, iov, iovcnt,
                        offset);
}

monad_async_result monad_async_io_read_fixed(monad_async_task task,
                                             struct monad_async_io_status *opt_status,
                                             int fd, void *buf, size_t len,
                                             int64_t offset, unsigned buf_index)
{
    return ma_io_rw_fixed(task, opt_status, IORING_OP_READ_FIXED, fd, buf, len,
                          offset, buf_index);
}

monad_async_result monad_async_io_write_fixed(monad_async_task task,
                                              struct monad_async_io_status *opt_status,
                                              int fd, void const *buf, size_t len,
                                              int64_t offset, unsigned buf_index)
{
    return ma_io_rw_fixed(task, opt_status, IORING_OP_WRITE_FIXED, fd, buf, len,
                          offset, buf_index);
}

monad_async_result monad_async_io_fsync(monad_async_task task,
                                        struct monad_async_io_status *opt_status,
                                        int fd)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    io_uring_prep_fsync(op.sqe, fd, 0);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_fdatasync(monad_async_task task,
                                            struct monad_async_io_status *opt_status,
                                            int fd)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    io_uring_prep_fsync(op.sqe, fd, IORING_FSYNC_DATASYNC);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_fallocate(monad_async_task task,
                                            struct monad_async_io_status *opt_status,
                                            int fd, int mode, int64_t offset,
                                            int64_t len)
{
    if (offset < 0 || len <= 0) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    io_uring_prep_fallocate(op.sqe, fd, mode, (off_t)offset, (off_t)len);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_sync_file_range(monad_async_task task,
                                                  struct monad_async_io_status *opt_status,
                                                  int fd, int64_t offset,
                                                  int64_t len, unsigned flags)
{
    if (offset < 0 || len < 0 || len > UINT32_MAX) {
        /* The SQE carries the length in 32 bits. */
        return monad_async_make_failure(EINVAL);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    io_uring_prep_sync_file_range(op.sqe, fd, (unsigned)len, (uint64_t)offset,
                                  (int)flags);
    return ma_io_commit(&op, 0);
}
