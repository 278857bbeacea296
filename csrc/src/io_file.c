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

monad_async_result monad_async_io_openat(monad_async_task task,
                                         struct monad_async_io_status *opt_status,
                                         int dirfd, char const *path, int flags,
                                         mode_t mode)
{
    if (path == NULL) {
        return monad_async_make_failure(EFAULT);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
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
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_close(op.sqe, fd);
    return ma_io_commit(&op, 0);
}

/* The argument checks the plain and vectored reads and writes share:
 * 0, or the errno their call returns. */
static inline int ma_io_check_buf(void const *buf, size_t len)
{
    if (!ma_io_len_ok(len) || (buf == NULL && len != 0)) {
        return buf == NULL ? EFAULT : EINVAL;
    }
    return 0;
}

static inline int ma_io_check_iov(struct iovec const *iov, unsigned iovcnt)
{
    if (iov == NULL && iovcnt != 0) {
        return EFAULT;
    }
    return iovcnt > IOV_MAX ? EINVAL : 0;
}

monad_async_result monad_async_io_read(monad_async_task task,
                                       struct monad_async_io_status *opt_status,
                                       int fd, void *buf, size_t len,
                                       int64_t offset)
{
    int const err = ma_io_check_buf(buf, len);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_read(op.sqe, fd, buf, (unsigned)len, (uint64_t)offset);
    return ma_io_commit(&op, MA_IO_COMMIT_RW);
}

monad_async_result monad_async_io_readv(monad_async_task task,
                                        struct monad_async_io_status *opt_status,
                                        int fd, struct iovec const *iov,
                                        unsigned iovcnt, int64_t offset)
{
    int const err = ma_io_check_iov(iov, iovcnt);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_readv(op.sqe, fd, iov, iovcnt, (uint64_t)offset);
    return ma_io_commit(&op, MA_IO_COMMIT_RW);
}

monad_async_result monad_async_io_write(monad_async_task task,
                                        struct monad_async_io_status *opt_status,
                                        int fd, void const *buf, size_t len,
                                        int64_t offset)
{
    int const err = ma_io_check_buf(buf, len);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_write(op.sqe, fd, buf, (unsigned)len, (uint64_t)offset);
    return ma_io_commit(&op, MA_IO_COMMIT_RW);
}

monad_async_result monad_async_io_writev(monad_async_task task,
                                         struct monad_async_io_status *opt_status,
                                         int fd, struct iovec const *iov,
                                         unsigned iovcnt, int64_t offset)
{
    int const err = ma_io_check_iov(iov, iovcnt);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_writev(op.sqe, fd, iov, iovcnt, (uint64_t)offset);
    return ma_io_commit(&op, MA_IO_COMMIT_RW);
}

monad_async_result monad_async_io_read_fixed(monad_async_task task,
                                             struct monad_async_io_status *opt_status,
                                             int fd, void *buf, size_t len,
                                             int64_t offset, unsigned buf_index)
{
    if (!ma_io_len_ok(len) || buf == NULL || buf_index > UINT16_MAX) {
        return monad_async_make_failure(buf == NULL ? EFAULT : EINVAL);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_read_fixed(op.sqe, fd, buf, (unsigned)len, (uint64_t)offset,
                             (int)buf_index);
    return ma_io_commit(&op, MA_IO_COMMIT_RW);
}

monad_async_result monad_async_io_write_fixed(monad_async_task task,
                                              struct monad_async_io_status *opt_status,
                                              int fd, void const *buf, size_t len,
                                              int64_t offset, unsigned buf_index)
{
    if (!ma_io_len_ok(len) || buf == NULL || buf_index > UINT16_MAX) {
        return monad_async_make_failure(buf == NULL ? EFAULT : EINVAL);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_write_fixed(op.sqe, fd, buf, (unsigned)len, (uint64_t)offset,
                              (int)buf_index);
    return ma_io_commit(&op, MA_IO_COMMIT_RW);
}

monad_async_result monad_async_io_fsync(monad_async_task task,
                                        struct monad_async_io_status *opt_status,
                                        int fd)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_fsync(op.sqe, fd, 0);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_fdatasync(monad_async_task task,
                                            struct monad_async_io_status *opt_status,
                                            int fd)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
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
    MA_IO_TRY_BEGIN(&op, task, opt_status);
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
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_sync_file_range(op.sqe, fd, (unsigned)len, (uint64_t)offset,
                                  (int)flags);
    return ma_io_commit(&op, 0);
}
