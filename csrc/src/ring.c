/* The executor's io_uring: set-up, tear-down, and what its errors mean.
 *
 * One ring per executor, used only by its owning thread, so it is created
 * with SINGLE_ISSUER and DEFER_TASKRUN where the kernel knows them, and
 * without when it does not (EINVAL from an older kernel). Ring memory is
 * not inherited across fork (MADV_DONTFORK, via liburing).
 *
 * Set-up also allocates the operation slot table (one slot per operation
 * that may be in flight, so the hot path never allocates), creates the
 * wake eventfd and arms its read, and works out the kernel I/O priority
 * of each level. */
#include "executor_impl.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

/* <linux/ioprio.h> is not in every distribution's headers. */
#define MA_IOPRIO_CLASS_SHIFT 13
#define MA_IOPRIO_VALUE(class, data) (((class) << MA_IOPRIO_CLASS_SHIFT) | (data))
#define MA_IOPRIO_CLASS_RT 1
#define MA_IOPRIO_CLASS_BE 2
#define MA_IOPRIO_CLASS_IDLE 3

/* The kernel lets a request use the real-time I/O class only with
 * CAP_SYS_NICE or CAP_SYS_ADMIN (ioprio_check_cap), and refuses the whole
 * request with EPERM otherwise: ask once, up front. */
static bool ma_may_use_rt_ioprio(void)
{
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    memset(&hdr, 0, sizeof(hdr));
    memset(data, 0, sizeof(data));
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    if (syscall(SYS_capget, &hdr, data) != 0) {
        return false;
    }
    uint32_t const eff = data[0].effective;
    return (eff & (1u << CAP_SYS_NICE)) || (eff & (1u << CAP_SYS_ADMIN));
}

static int ma_ring_init(struct ma_executor *ex,
                        struct monad_async_executor_attr const *attr,
                        struct io_uring_params *p)
{
    unsigned const want =
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    memset(p, 0, sizeof(*p));
    p->flags = attr->io_uring_ring.flags | want;
    int ret = io_uring_queue_init_params(attr->io_uring_ring.entries, &ex->ring, p);
    if (ret == -EINVAL && !(attr->io_uring_ring.flags & want)) {
        /* A kernel before 6.1: try without the two. */
        memset(p, 0, sizeof(*p));
        p->flags = attr->io_uring_ring.flags;
        ret = io_uring_queue_init_params(
            attr->io_uring_ring.entries, &ex->ring, p);
    }
    return ret < 0 ? -ret : 0;
}

int ma_ring_setup(struct ma_executor *ex, struct monad_async_executor_attr const *attr)
{
    ex->has_ring = false;
    ex->wake_fd = -1;
    if (attr->io_uring_ring.entries == 0) {
        return 0;
    }
    struct io_uring_params p;
    int err = ma_ring_init(ex, attr, &p);
    if (err != 0) {
        return err;
    }
    io_uring_ring_dontfork(&ex->ring);

    /* Each operation may produce its own completion and that of one
     * cancel request: half the CQ keeps it from overflowing. More than
     * the CQ holds could overflow it; the kernel would keep the excess
     * (IORING_FEAT_NODROP) and the reaper flushes it, but at a cost. */
    uint32_t limit = attr->io_inflight_limit;
    if (limit == 0) {
        limit = p.cq_entries / 2 ? p.cq_entries / 2 : 1;
    }
    if (limit > p.cq_entries) {
        limit = p.cq_entries;
    }
    ex->io_slots = calloc(limit, sizeof(*ex->io_slots));
    if (ex->io_slots == NULL) {
        io_uring_queue_exit(&ex->ring);
        return ENOMEM;
    }
    for (uint32_t i = 0; i < limit; i++) {
        ex->io_slots[i].next_free = i + 1 < limit ? i + 1 : MA_IO_NO_SLOT;
    }
    ex->io_slot_count = limit;
    ex->io_free_slot = 0;

    /* Blocking on purpose: io_uring completes a read of an O_NONBLOCK
     * file with EAGAIN instead of waiting for it. Writers never block
     * (the counter would have to reach 2^64 - 2). */
    ex->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (ex->wake_fd < 0) {
        err = errno;
        free(ex->io_slots);
        ex->io_slots = NULL;
        io_uring_queue_exit(&ex->ring);
        return err;
    }

    struct io_uring_probe *const probe = io_uring_get_probe_ring(&ex->ring);
    if (probe != NULL) {
        ex->has_op_socket = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
        io_uring_free_probe(probe);
    }

    bool const rt = ma_may_use_rt_ioprio();
    ex->ioprio[monad_async_priority_high] =
        rt ? MA_IOPRIO_VALUE(MA_IOPRIO_CLASS_RT, 4)
           : MA_IOPRIO_VALUE(MA_IOPRIO_CLASS_BE, 0);
    ex->ioprio[monad_async_priority_normal] =
        MA_IOPRIO_VALUE(MA_IOPRIO_CLASS_BE, 4);
    ex->ioprio[monad_async_priority_low] = MA_IOPRIO_VALUE(MA_IOPRIO_CLASS_IDLE, 0);

    ex->head.ring.sq_entries = p.sq_entries;
    ex->head.ring.cq_entries = p.cq_entries;
    ex->head.ring.setup_flags = p.flags;
    ex->head.ring.features = p.features;
    ex->head.ring.inflight_limit = limit;
    ex->head.ring.io_priority_rt = rt;
    ex->has_ring = true;

    /* Arm the wake read now and submit it, so that a ring executor with
     * no I/O has nothing queued and its hot path stays free of system
     * calls. */
    ma_io_arm_wake(ex);
    (void)io_uring_submit(&ex->ring);
    return 0;
}

void ma_ring_teardown(struct ma_executor *ex)
{
    if (ex->has_ring) {
        /* Every operation of a task has been drained by destroy. The wake
         * read targets the executor's own memory: cancel it and see its
         * completion before that memory goes. */
        struct io_uring_sqe *const sqe =
            ex->wake_armed ? ma_io_internal_sqe(ex) : NULL;
        if (sqe != NULL) {
            io_uring_prep_cancel64(sqe, MA_UD_WAKE, 0);
            io_uring_sqe_set_data64(sqe, MA_UD_CANCEL);
            for (int i = 0; i < 1000 && ex->wake_armed; i++) {
                struct io_uring_cqe *cqe;
                struct __kernel_timespec ts = {0, 1000000};
                (void)io_uring_submit_and_wait_timeout(&ex->ring, &cqe, 1, &ts, NULL);
                while (io_uring_peek_cqe(&ex->ring, &cqe) == 0) {
                    if (cqe->user_data == MA_UD_WAKE) {
                        ex->wake_armed = false;
                    }
                    io_uring_cqe_seen(&ex->ring, cqe);
                }
            }
        }
        io_uring_queue_exit(&ex->ring);
        ex->has_ring = false;
    }
    if (ex->wake_fd >= 0) {
        close(ex->wake_fd);
        ex->wake_fd = -1;
    }
    free(ex->io_slots);
    ex->io_slots = NULL;
}

static int ma_read_io_uring_disabled(void)
{
    FILE *const f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f == NULL) {
        return -1;
    }
    int v = -1;
    if (fscanf(f, "%d", &v) != 1) {
        v = -1;
    }
    fclose(f);
    return v;
}

monad_async_result
monad_async_executor_describe_error(int error, char *buf, size_t len)
{
    if (buf == NULL && len != 0) {
        return monad_async_make_failure(EINVAL);
    }
    char detail[160] = "";
    char const *what;
    switch (error) {
    case 0:
        what = "no error";
        break;
    case EPERM:
    case ENOSYS: {
        int const disabled = ma_read_io_uring_disabled();
        if (disabled > 0) {
            snprintf(detail, sizeof(detail),
                     " Here kernel.io_uring_disabled is %d (%s).", disabled,
                     disabled == 1 ? "only members of kernel.io_uring_group "
                                     "may create rings"
                                   : "no process may create rings");
        }
        else if (disabled == 0) {
            snprintf(detail, sizeof(detail),
                     " Here kernel.io_uring_disabled is 0, so a seccomp "
                     "filter (container runtime profile) is the likely "
                     "cause.");
        }
        what = error == ENOSYS
                   ? "io_uring_setup is not available: the kernel was built "
                     "without io_uring, or a seccomp filter answers ENOSYS."
                   : "io_uring_setup was refused: the sysctl "
                     "kernel.io_uring_disabled forbids it, or a seccomp "
                     "filter does (Docker and Kubernetes default profiles "
                     "do).";
        break;
    }
    case ENOMEM: {
        struct rlimit rl;
        if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
            if (rl.rlim_cur == RLIM_INFINITY) {
                snprintf(detail, sizeof(detail),
                         " RLIMIT_MEMLOCK is unlimited here.");
            }
            else {
                snprintf(detail, sizeof(detail),
                         " RLIMIT_MEMLOCK is %llu KiB here (ulimit -l).",
                         (unsigned long long)rl.rlim_cur / 1024);
            }
        }
        what = "the ring's memory could not be allocated or locked: before "
               "Linux 5.12 rings count against RLIMIT_MEMLOCK; raise it or "
               "ask for fewer entries.";
        break;
    }
    case EINVAL:
        what = "the kernel refused the ring's parameters: too many entries "
               "(at most 32768 submission entries) or IORING_SETUP_* flags "
               "it does not know.";
        break;
    case EMFILE:
    case ENFILE:
        what = "no file descriptor is left for the ring or its wake "
               "eventfd (RLIMIT_NOFILE or the system-wide limit).";
        break;
    default:
        what = strerror(error);
        break;
    }
    int const n = snprintf(buf, len, "%s%s", what, detail);
    return monad_async_make_success(n < 0 ? 0 : (intptr_t)n);
}
