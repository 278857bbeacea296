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
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
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
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_WAITS);
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
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_WAITS);
    io_uring_prep_connect(op.sqe, fd, addr, (socklen_t)addrlen);
    return ma_io_commit(&op, 0);
}

/* send, recv, sendmsg and recvmsg: liburing's preps for the four are
 * io_uring_prep_rw with their opcode (no offset), then the flags, so one
 * body serves them. Always inline, as the reads and writes: one frame
 * each, a constant opcode. */
static inline __attribute__((always_inline)) monad_async_result
ma_io_sock_xfer(monad_async_task task, struct monad_async_io_status *opt_status,
                int opcode, int fd, void const *addr, unsigned len, int flags)
{
    struct ma_io_op op;
    /* A receive waits for the peer; a send finishes by itself (once the
     * peer's window takes the data), so it may use the guard's reserve. */
    MA_IO_TRY_BEGIN(&op, task, opt_status,
                    opcode == IORING_OP_RECV || opcode == IORING_OP_RECVMSG
                        ? MA_IO_WAITS
                        : MA_IO_FINITE);
    /* One load of op.sqe, as the named preps take it: a reload after
     * the prep's stores would keep its rw_flags store alive. */
    struct io_uring_sqe *const sqe = op.sqe;
    io_uring_prep_rw(opcode, sqe, fd, addr, len, 0);
    sqe->msg_flags = (uint32_t)flags;
    return ma_io_commit(&op, 0);
}

/* send and recv: read and write's buffer checks (EFAULT, then EINVAL),
 * kept as two tests here: so written, clang's send and recv are one
 * instruction shorter than through io_file.c's ma_io_check_buf. */
static inline __attribute__((always_inline)) monad_async_result
ma_io_sock_buf(monad_async_task task, struct monad_async_io_status *opt_status,
               int opcode, int fd, void const *buf, size_t len, int flags)
{
    if (buf == NULL && len != 0) {
        return monad_async_make_failure(EFAULT);
    }
    if (len > UINT32_MAX) {
        return monad_async_make_failure(EINVAL);
    }
    return ma_io_sock_xfer(task, opt_status, opcode, fd, buf, (unsigned)len,
                           flags);
}

monad_async_result monad_async_io_send(monad_async_task task,
                                       struct monad_async_io_status *opt_status,
                                       int fd, void const *buf, size_t len,
                                       int flags)
{
    return ma_io_sock_buf(task, opt_status, IORING_OP_SEND, fd, buf, len, flags);
}

monad_async_result monad_async_io_recv(monad_async_task task,
                                       struct monad_async_io_status *opt_status,
                                       int fd, void *buf, size_t len, int flags)
{
    return ma_io_sock_buf(task, opt_status, IORING_OP_RECV, fd, buf, len, flags);
}

/* sendmsg and recvmsg check their msghdr here, not in a second inline
 * layer as send and recv do: there gcc returns the result through three
 * more moves. */
monad_async_result monad_async_io_sendmsg(monad_async_task task,
                                          struct monad_async_io_status *opt_status,
                                          int fd, struct msghdr const *msg,
                                          int flags)
{
    if (msg == NULL) {
        return monad_async_make_failure(EFAULT);
    }
    return ma_io_sock_xfer(task, opt_status, IORING_OP_SENDMSG, fd, msg, 1,
                           flags);
}

monad_async_result monad_async_io_recvmsg(monad_async_task task,
                                          struct monad_async_io_status *opt_status,
                                          int fd, struct msghdr *msg, int flags)
{
    if (msg == NULL) {
        return monad_async_make_failure(EFAULT);
    }
    return ma_io_sock_xfer(task, opt_status, IORING_OP_RECVMSG, fd, msg, 1,
                           flags);
}

monad_async_result monad_async_io_shutdown(monad_async_task task,
                                           struct monad_async_io_status *opt_status,
                                           int fd, int how)
{
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_FINITE);
    io_uring_prep_shutdown(op.sqe, fd, how);
    return ma_io_commit(&op, 0);
}
