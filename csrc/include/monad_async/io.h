/* monad-async: io_uring I/O from inside tasks.
 *
 * Every operation here is called from inside a running task on an executor
 * with a ring (attr.io_uring_ring.entries > 0), and is a cancellation
 * point: a task already cancelled gets ECANCELED at once.
 *
 * Two ways to call each operation, chosen by its `opt_status` argument:
 *
 *  - NULL: the blocking-looking form. The task suspends until the kernel
 *    has finished the operation and resumes with its outcome: `value` is
 *    the CQE's `res` on success, `error` is -res on failure. The task never
 *    resumes before the kernel is done with the operation's buffers, even
 *    when it is cancelled, so the buffers may live on the task's stack.
 *
 *  - a caller-owned `struct monad_async_io_status`: the initiate form. The
 *    operation is queued and the call returns success (value 0) at once;
 *    one task may keep many operations in flight. Collect them with
 *    monad_async_io_reap (completion order) or monad_async_io_wait (one in
 *    particular). The status, and every buffer the operation uses, must
 *    stay valid until the status has been reaped or waited for, or until
 *    the task's work is over: a task that returns with operations still in
 *    flight has them cancelled and is not recorded as exited until the
 *    kernel has finished them all.
 *
 * Submission: operations are queued into the submission queue and the
 * executor submits them all in one system call per pass of its run loop.
 * The queue's size is only the batch: a task that finds it full hands it
 * to the kernel at once (one system call) and takes an entry, so any
 * number of operations may be in flight (the waiting ones cost memory:
 * a slot of 16 bytes, the kernel's request, their buffers). The limit is
 * the executor's in-flight guard (executor.h, io_inflight_limit, 262,144
 * by default): operations that wait on the outside world (recv,
 * recvmsg, recv_provided, accept, connect, poll) may hold all of it but
 * a reserve, which only operations that finish by themselves (the
 * others: NOP, timeout, reads, writes, send, sendmsg, ...) may use; so
 * receives waiting for data never hold the slot a send needs. (A read or
 * write of a socket or pipe counts as finishing by itself: receive from
 * sockets with recv.) A task that finds its share used up suspends in a
 * per-I/O-priority queue and resumes, highest priority first and first
 * come, first served within a level, when a slot frees; it never spins
 * and gets no error for it. It also suspends, until the run loop's next
 * pass, if the kernel refuses a submission for the moment (EBUSY: it
 * has completions to flush first; EAGAIN: no memory for requests).
 *
 * I/O priority: `task->priority.io` orders the queue above and becomes the
 * kernel I/O priority of reads and writes: high is the real-time class
 * (falling back to best effort level 0 when the process may not use it),
 * normal is best effort level 4, low is the idle class.
 *
 * Errors common to every operation: EINVAL (NULL task, not the task
 * running on this thread, bad arguments), ENOTSUP (the task's switcher
 * cannot suspend, or its executor has no ring), ECANCELED (the task was
 * cancelled), EBUSY (an initiate-form status still in use: in flight, or
 * completed and not yet reaped or waited for). */
#ifndef MONAD_ASYNC_IO_H
#define MONAD_ASYNC_IO_H

#include "task.h"

#include <sys/types.h>
#include <time.h>

MONAD_ASYNC_BEGIN_EXTERN_C

struct iovec;
struct msghdr;
struct sockaddr;

/* Values of `monad_async_io_status.state`. */
enum monad_async_io_state
{
    /* Never used, or reaped: may be used for a new operation. */
    MONAD_ASYNC_IO_STATE_IDLE = 0,
    /* Queued or submitted; the kernel may be using its buffers. */
    MONAD_ASYNC_IO_STATE_IN_FLIGHT = 1,
    /* Finished by the kernel, `result` valid, not yet reaped. */
    MONAD_ASYNC_IO_STATE_COMPLETED = 2
};

/* A caller-owned record of one operation in the initiate form. Zero it
 * once before first use; after it is reaped it may be reused. Everything
 * is read-only to the caller. */
struct monad_async_io_status
{
    /* The outcome once COMPLETED: value = CQE res, or error = -res. */
    monad_async_result result;
    /* The CQE's flags (IORING_CQE_F_*), e.g. the buffer id of a provided
     * buffer in the upper 16 bits. */
    uint32_t cqe_flags;
    /* enum monad_async_io_state. */
    uint32_t state;
    /* The task that initiated it. */
    monad_async_task task;
    /* Library-private from here on. */
    uint64_t user_data;
    struct monad_async_io_status *prev;
    struct monad_async_io_status *next;
    uint32_t flags;
    int32_t fd; /* the fd its SQE names, for task dumps (dump.h) */
    uint64_t scratch[2]; /* e.g. a timeout's timespec, read at submission */
};

/* ---- collecting initiated operations ---- */

/* Suspends until one of `task`'s initiated operations has completed and
 * stores the earliest-completed one in `*completed` (then IDLE again;
 * its outcome is in `result`). `value` is 0.
 * ENOENT: the task has no initiated operation in flight or unreaped.
 * Cancellation: a cancelled task's operations are cancelled and reap goes
 * on returning them (with ECANCELED or their real outcome) until none is
 * left, and only then returns ECANCELED, so that buffers are never
 * released while the kernel may still write them. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_reap(
    monad_async_task task, struct monad_async_io_status **completed);

/* Like monad_async_io_reap, without suspending: EAGAIN when nothing has
 * completed yet. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_try_reap(
    monad_async_task task, struct monad_async_io_status **completed);

/* Suspends until `status` (initiated by `task`) has completed, takes it
 * out of the completion order, and returns its outcome. ENOENT: `status`
 * is IDLE. On a cancelled task, cancels the operation and still waits for
 * the kernel to finish it. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_wait(
    monad_async_task task, struct monad_async_io_status *status);

/* Asks the kernel to cancel one in-flight initiated operation
 * (IORING_OP_ASYNC_CANCEL). It still completes (with ECANCELED, or its
 * real outcome if it was already done) and must still be reaped.
 * Success: the request was made; ENOENT: `status` is not in flight. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_cancel(
    monad_async_task task, struct monad_async_io_status *status);

/* ---- generic ---- */

/* A no-op through the kernel: the cheapest suspend and resume. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_nop(
    monad_async_task task, struct monad_async_io_status *opt_status);

/* Completes after `ns` nanoseconds of CLOCK_MONOTONIC (success, value 0:
 * the kernel's ETIME is the normal outcome and is reported as success). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_timeout(
    monad_async_task task, struct monad_async_io_status *opt_status,
    uint64_t ns);

/* Completes when `fd` is ready for the poll(2) `events` (POLLIN, ...):
 * value is the ready events. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_poll(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    unsigned events);

/* ---- files ---- */

/* openat(2): value is the new fd. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_openat(
    monad_async_task task, struct monad_async_io_status *opt_status,
    int dirfd, char const *path, int flags, mode_t mode);

/* close(2) through the ring. Also closes sockets. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_close(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd);

/* pread(2) (offset -1: the file position): value is the bytes read. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_read(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    void *buf, size_t len, int64_t offset);

/* preadv(2). `iov` must stay valid until completion. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_readv(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    struct iovec const *iov, unsigned iovcnt, int64_t offset);

/* pwrite(2): value is the bytes written. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_write(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    void const *buf, size_t len, int64_t offset);

/* pwritev(2). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_writev(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    struct iovec const *iov, unsigned iovcnt, int64_t offset);

/* Read into a buffer registered with the executor
 * (monad_async_io_buffers_register, or a buffer pool); `buf` must lie
 * inside registered buffer `buf_index`. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_read_fixed(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    void *buf, size_t len, int64_t offset, unsigned buf_index);

/* Write from a registered buffer. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_write_fixed(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    void const *buf, size_t len, int64_t offset, unsigned buf_index);

/* fsync(2). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_fsync(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd);

/* fdatasync(2). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_fdatasync(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd);

/* fallocate(2). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_fallocate(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    int mode, int64_t offset, int64_t len);

/* sync_file_range(2). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_sync_file_range(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    int64_t offset, int64_t len, unsigned flags);

/* Registers `count` buffers with the executor's ring for the *_fixed
 * operations (io_uring_register_buffers); they are numbered from 0.
 * On the executor's thread, outside its tasks' I/O. EBUSY: buffers are
 * already registered; ENOTSUP: no ring; EPERM: not the executor's
 * thread; EINVAL: NULL `ex` or `iov`, or `count` 0; ENOMEM (the pages
 * could not be pinned: RLIMIT_MEMLOCK, or no memory), or the kernel's
 * other error. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_buffers_register(
    monad_async_executor ex, struct iovec const *iov, unsigned count);

/* Unregisters them. ENOENT: none registered; EPERM, ENOTSUP, EINVAL as
 * for monad_async_io_buffers_register. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_io_buffers_unregister(monad_async_executor ex);

/* ---- registered buffer pools ---- */

/* A pool of equally sized, page-aligned buffers registered with an
 * executor's ring, for the *_fixed operations. Tasks claim a buffer (or
 * wait for one, first come first served) and release it when done. */
typedef struct monad_async_io_buffer_pool_head *monad_async_io_buffer_pool;

/* The public part of a pool: read-only. */
struct monad_async_io_buffer_pool_head
{
    monad_async_executor executor;
    size_t buffer_size; /* bytes per buffer (a multiple of the page size) */
    unsigned count;     /* buffers in the pool */
    unsigned free;      /* buffers not claimed right now */
    uint64_t waits;     /* times a task waited for a buffer */
};

/* A claimed buffer: pass `data` and `index` to monad_async_io_read_fixed
 * / monad_async_io_write_fixed (buf_index = index). */
struct monad_async_io_buffer
{
    void *data;
    size_t size;
    unsigned index;
    unsigned reserved;
};

/* Creates a pool of `count` buffers of `buffer_size` bytes (rounded up to
 * whole pages) and registers them with `ex`'s ring; on the executor's
 * thread. An executor has at most one registration: EBUSY if buffers are
 * registered already (monad_async_io_buffers_register or another pool).
 * EINVAL: zero size or count, or count > 16384. ENOTSUP: no ring.
 * EPERM: not the executor's thread. ENOMEM, or the kernel's error. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_buffer_pool_create(
    monad_async_io_buffer_pool *pool, monad_async_executor ex,
    size_t buffer_size, unsigned count);

/* Unregisters and frees the pool. EBUSY while a buffer is claimed or a
 * task waits for one. Pools still alive when their executor is destroyed
 * are freed with it (their handles become invalid). */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_io_buffer_pool_destroy(monad_async_io_buffer_pool pool);

/* Inside a task of the pool's executor: claims a free buffer into `*buf`,
 * suspending until one is released if none is free (waiters are served
 * in arrival order). `value` is the buffer's index. A cancellation point:
 * ECANCELED (also when cancelled while waiting). EINVAL: bad arguments or
 * another executor's pool. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_buffer_claim(
    monad_async_task task, monad_async_io_buffer_pool pool,
    struct monad_async_io_buffer *buf);

/* As monad_async_io_buffer_claim without waiting: EAGAIN if none free. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_buffer_try_claim(
    monad_async_task task, monad_async_io_buffer_pool pool,
    struct monad_async_io_buffer *buf);

/* Releases a claimed buffer (on the executor's thread, in a task or not):
 * the first waiter, if any, gets it. EINVAL: not a claimed buffer of this
 * pool. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_buffer_release(
    monad_async_io_buffer_pool pool, struct monad_async_io_buffer const *buf);

/* ---- kernel-provided receive buffers ---- */

/* A ring of equally sized buffers the kernel picks from when a receive
 * completes (io_uring provided buffers, IOSQE_BUFFER_SELECT): receives on
 * many sockets share a few buffers instead of holding one each while
 * they wait. */
typedef struct monad_async_io_buffer_ring_head *monad_async_io_buffer_ring;

/* The public part of a buffer ring: read-only. */
struct monad_async_io_buffer_ring_head
{
    monad_async_executor executor;
    size_t buffer_size;
    unsigned count;       /* buffers */
    unsigned outstanding; /* handed out by receives, not yet released */
    uint16_t group;       /* the kernel buffer group id */
    uint16_t reserved[3];
};

/* Creates `count` buffers (a power of two, at most 32768) of
 * `buffer_size` bytes and gives them to the kernel as a new buffer group;
 * on the executor's thread. Its `group` id is one that none of the
 * executor's live rings has (ids of destroyed rings are reused).
 * EINVAL: bad sizes; ENOTSUP: no ring, or a kernel without buffer rings
 * (before 5.19); EPERM: not the executor's thread; ENOSPC: all 65,536
 * group ids are taken by live rings of this executor; ENOMEM, or the
 * kernel's error. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_buffer_ring_create(
    monad_async_io_buffer_ring *ring, monad_async_executor ex,
    size_t buffer_size, unsigned count);

/* Unregisters and frees it. EBUSY while buffers are outstanding. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_io_buffer_ring_destroy(monad_async_io_buffer_ring ring);

/* recv(2) into a buffer the kernel picks from `ring`: value is the bytes
 * received, ENOBUFS if every buffer is outstanding. Blocking form: `*out`
 * is the buffer (data NULL if none was used); release it with
 * monad_async_io_buffer_ring_release. Initiate form: `out` is unused;
 * after reaping, get the buffer with monad_async_io_buffer_ring_take. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_recv_provided(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    monad_async_io_buffer_ring ring, int flags,
    struct monad_async_io_buffer *out);

/* The buffer a reaped initiate-form monad_async_io_recv_provided used:
 * ENOENT if it used none. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_buffer_ring_take(
    monad_async_io_buffer_ring ring, struct monad_async_io_status const *status,
    struct monad_async_io_buffer *out);

/* Gives a buffer back to the kernel. EINVAL: not an outstanding buffer of
 * this ring. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_buffer_ring_release(
    monad_async_io_buffer_ring ring, struct monad_async_io_buffer const *buf);

/* ---- sockets ---- */

/* socket(2): through the ring where the kernel has IORING_OP_SOCKET, else
 * the system call (then it is not a suspension point, but still a
 * cancellation point). value is the new fd. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_socket(
    monad_async_task task, struct monad_async_io_status *opt_status,
    int domain, int type, int protocol);

/* bind(2) and listen(2) are system calls that never block; these are
 * plain calls, usable anywhere (no task needed). */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_socket_bind(int fd, struct sockaddr const *addr, uint32_t addrlen);
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_socket_listen(int fd, int backlog);

/* accept4(2): value is the new fd. `addr`/`addrlen` may be NULL. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_accept(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    struct sockaddr *addr, uint32_t *addrlen, int flags);

/* connect(2). `addr` must stay valid until completion. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_connect(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    struct sockaddr const *addr, uint32_t addrlen);

/* send(2): value is the bytes sent. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_send(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    void const *buf, size_t len, int flags);

/* recv(2): value is the bytes received (0: orderly shutdown). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_recv(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    void *buf, size_t len, int flags);

/* sendmsg(2). Unix datagram sockets: pass MSG_DONTWAIT and wait out
 * EAGAIN yourself (poll, then sleep): a send that finds the receiver's
 * queue full has already consumed its iovec, and the kernel's own retry
 * then sends an empty datagram and reports 0 (seen on Linux 6.18; the
 * same holds for monad_async_io_send). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_sendmsg(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    struct msghdr const *msg, int flags);

/* recvmsg(2). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_recvmsg(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    struct msghdr *msg, int flags);

/* shutdown(2). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_shutdown(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    int how);

/* ---- multishot accept ---- */

/* A listening socket's accepts as one multishot request
 * (IORING_ACCEPT_MULTISHOT, Linux 5.19): the kernel accepts each
 * connection as it arrives and posts its fd, without a request per
 * connection; the acceptor queues the fds and a task takes them one at a
 * time with monad_async_io_acceptor_accept. For listeners under
 * connection storms.
 *
 * The request is made by the first accept and made again whenever the
 * kernel ends it (it does when its completion queue overflows, or on an
 * error): a task never sees that. When `capacity` fds wait untaken, the
 * acceptor asks the kernel to end the request, so connections wait in the
 * listen backlog rather than as open fds here, and makes it again once
 * the queue is empty. On a kernel without multishot accept (EINVAL to
 * the first request, before any fd), it falls back to one
 * monad_async_io_accept per call: `multishot` says which is in use. The
 * request is not counted as a task's I/O (it has no task); it holds one
 * slot of the in-flight guard while armed. */
typedef struct monad_async_io_acceptor_head *monad_async_io_acceptor;

/* The public part of an acceptor: read-only. */
struct monad_async_io_acceptor_head
{
    monad_async_executor executor;
    int fd;            /* the listening socket (not owned) */
    int flags;         /* accept4(2) flags of the accepted fds */
    unsigned capacity; /* fds queued at which the request is ended */
    unsigned queued;   /* accepted fds waiting to be taken */
    uint8_t armed;     /* a multishot request is in the kernel */
    uint8_t multishot; /* 1: multishot; 0: the single-accept fallback */
    uint16_t reserved;
    uint32_t reserved2;
    uint64_t accepted; /* fds the kernel has posted */
    uint64_t arms;     /* multishot requests made */
};

/* Creates an acceptor for the listening socket `fd` of `ex` (which must
 * stay open while the acceptor lives), on the executor's thread; nothing
 * is asked of the kernel yet. `flags`: accept4(2) flags for the accepted
 * fds (SOCK_CLOEXEC, SOCK_NONBLOCK). `capacity`: 1 to 65536, the fds it
 * queues before it pauses the request. EINVAL: NULL `acc` or `ex`, `fd`
 * < 0, other flags, capacity out of range; EPERM: not the executor's
 * thread; ENOTSUP: no ring; ENOMEM. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_io_acceptor_create(
    monad_async_io_acceptor *acc, monad_async_executor ex, int fd, int flags,
    unsigned capacity);

/* Inside a task of the acceptor's executor: the next accepted fd (value),
 * suspending until one arrives; the caller owns it. Makes the multishot
 * request when none is armed. One task at a time may wait on an
 * acceptor. A cancellation point; bounded by the task's deadline
 * (ETIMEDOUT). EINVAL: NULL, another executor's acceptor, not the running
 * task; EBUSY: another task is waiting on it; ENOTSUP: the task cannot
 * suspend; ECANCELED; the kernel's accept error (EMFILE, ENFILE, ...),
 * once, after which the request is made again. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_io_acceptor_accept(monad_async_task task,
                               monad_async_io_acceptor acc);

/* Ends the acceptor, on its executor's thread (in a task or not): closes
 * the fds still queued and asks the kernel to end the request; its memory
 * goes once the kernel has (fds it still posts meanwhile are closed), at
 * the latest with the executor, which also ends acceptors never
 * destroyed. The handle is invalid afterwards. EINVAL: NULL; EPERM: not
 * the executor's thread; EBUSY: a task is waiting on it. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_io_acceptor_destroy(monad_async_io_acceptor acc);

MONAD_ASYNC_END_EXTERN_C

#endif
