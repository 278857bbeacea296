/* Socket operations through the ring; bind and listen, which never block,
 * as plain system calls. */
#include "io_impl.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

monad_async_result monad_async_io_socket(monad_async_task task,
                                         struct monad_async_io_status *opt_status,
                                         int domain, int type, int protocol)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    if (op.ex->has_op_socket) {
        io_uring_prep_socket(op.sqe, domain, type, protocol, 0);
        return ma_io_commit(&op, 0);
    }
    /* A kernel before 5.19: the system call (it never blocks), its
     * outcome carried by a NOP so both forms complete as usual. */
    int const fd = socket(domain, type, protocol);
    op.st->result = fd >= 0 ? monad_async_make_success(fd)
                            : monad_async_make_failure(errno);
    io_uring_prep_nop(op.sqe);
    return ma_io_commit(&op, MA_IO_ST_PRESET);
}

monad_async_result monad_async_socket_bind(int fd, struct sockaddr const *addr,
                                           uint32_t addrlen)
{
    if (addr == NULL) {
        return monad_async_make_failure(EFAULT);
    }
    if (bind(fd, addr, (socklen_t)addrlen) != 0) {
        return monad_async_make_failure(errno);
    }
    return monad_async_make_success(0);
}

monad_async_result monad_async_socket_listen(int fd, int backlog)
{
    if (listen(fd, backlog) != 0) {
        return monad_async_make_failure(errno);
    }
    return monad_async_make_success(0);
}

monad_async_result monad_async_io_accept(monad_async_task task,
                                         struct monad_async_io_status *opt_status,
                                         int fd, struct sockaddr *addr,
                                         uint32_t *addrlen, int flags)
{
    if ((addr == NULL) != (addrlen == NULL)) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_accept(op.sqe, fd, addr, (socklen_t *)addrlen, flags);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_connect(monad_async_task task,
                                          struct monad_async_io_status *opt_status,
                                          int fd, struct sockaddr const *addr,
                                          uint32_t addrlen)
{
    if (addr == NULL) {
        return monad_async_make_failure(EFAULT);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_connect(op.sqe, fd, addr, (socklen_t)addrlen);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_send(monad_async_task task,
                                       struct monad_async_io_status *opt_status,
                                       int fd, void const *buf, size_t len,
                                       int flags)
{
    if (buf == NULL && len != 0) {
        return monad_async_make_failure(EFAULT);
    }
    if (len > UINT32_MAX) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_send(op.sqe, fd, buf, len, flags);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_recv(monad_async_task task,
                                       struct monad_async_io_status *opt_status,
                                       int fd, void *buf, size_t len, int flags)
{
    if (buf == NULL && len != 0) {
        return monad_async_make_failure(EFAULT);
    }
    if (len > UINT32_MAX) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_recv(op.sqe, fd, buf, len, flags);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_sendmsg(monad_async_task task,
                                          struct monad_async_io_status *opt_status,
                                          int fd, struct msghdr const *msg,
                                          int flags)
{
    if (msg == NULL) {
        return monad_async_make_failure(EFAULT);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_sendmsg(op.sqe, fd, msg, (unsigned)flags);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_recvmsg(monad_async_task task,
                                          struct monad_async_io_status *opt_status,
                                          int fd, struct msghdr *msg, int flags)
{
    if (msg == NULL) {
        return monad_async_make_failure(EFAULT);
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_recvmsg(op.sqe, fd, msg, (unsigned)flags);
    return ma_io_commit(&op, 0);
}

monad_async_result monad_async_io_shutdown(monad_async_task task,
                                           struct monad_async_io_status *opt_status,
                                           int fd, int how)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status);
    io_uring_prep_shutdown(op.sqe, fd, how);
    return ma_io_commit(&op, 0);
}
