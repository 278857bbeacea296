/* The executor's io_uring: set-up, tear-down, and what its errors mean.
 *
 * One ring per executor, used only by its owning thread, so it is created
 * with SINGLE_ISSUER and DEFER_TASKRUN where the kernel knows them, and
 * without when it does not (EINVAL from an older kernel). Ring memory is
 * not inherited across fork (MADV_DONTFORK, via liburing).
 *
 * The completion queue is sized for the work (IORING_SETUP_CQSIZE, 4,096
 * entries by default) and must never lose a completion: the kernel must
 * keep what does not fit (IORING_FEAT_NODROP), which the reaper collects.
 *
 * Set-up also reserves the operation slot table (one slot per operation
 * that may be in flight, so the hot path never allocates; address space
 * only, backed as slots are first used), creates the wake eventfd and
 * arms its read, and works out the kernel I/O priority of each level. */
#include "executor_impl.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
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

/* The CQ size to ask for: the attr's, or the default (at least twice the
 * SQ, as the kernel's own default, and at most the kernel's maximum). */
static unsigned ma_ring_cq_entries(struct monad_async_executor_attr const *attr)
{
    if (attr->io_cq_entries != 0) {
        return attr->io_cq_entries;
    }
    unsigned sq = 1;
    while (sq < attr->io_uring_ring.entries && sq < (1u << 15)) {
        sq <<= 1;
    }
    unsigned const twice = 2 * sq;
    unsigned cq = MONAD_ASYNC_IO_CQ_ENTRIES_DEFAULT;
    if (twice > cq) {
        cq = twice;
    }
    return cq > MONAD_ASYNC_IO_CQ_ENTRIES_MAX ? MONAD_ASYNC_IO_CQ_ENTRIES_MAX
                                              : cq;
}

static int ma_ring_init_flags(struct ma_executor *ex,
                              struct monad_async_executor_attr const *attr,
                              struct io_uring_params *p, unsigned flags,
                              unsigned cq)
{
    memset(p, 0, sizeof(*p));
    p->flags = flags;
    if (cq != 0) {
        p->flags |= IORING_SETUP_CQSIZE;
        p->cq_entries = cq;
    }
    return io_uring_queue_init_params(attr->io_uring_ring.entries, &ex->ring, p);
}

static int ma_ring_init(struct ma_executor *ex,
                        struct monad_async_executor_attr const *attr,
                        struct io_uring_params *p)
{
    unsigned const want =
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    unsigned const flags = attr->io_uring_ring.flags & ~IORING_SETUP_CQSIZE;
    unsigned cq = ma_ring_cq_entries(attr);
    int ret = ma_ring_init_flags(ex, attr, p, flags | want, cq);
    if (ret == -EINVAL && !(flags & want)) {
        /* A kernel before 6.1: try without the two. */
        ret = ma_ring_init_flags(ex, attr, p, flags, cq);
    }
    if (ret == -ENOMEM && attr->io_cq_entries == 0) {
        /* The default CQ's memory could not be locked (RLIMIT_MEMLOCK
         * before Linux 5.12): the kernel's own default, twice the SQ. A
         * smaller CQ only means more passes to collect a burst. */
        ret = ma_ring_init_flags(ex, attr, p, flags | want, 0);
        if (ret == -EINVAL && !(flags & want)) {
            ret = ma_ring_init_flags(ex, attr, p, flags, 0);
        }
    }
    return ret < 0 ? -ret : 0;
}

/* The slot table: `count` slots of reserved address space. Anonymous
 * memory reads as zeroes, which is a free slot of generation 0; a page is
 * backed only once a slot on it is first used (slots are handed out from
 * the free list, else from the high-water mark). NULL on failure, with
 * errno set. */
static struct ma_io_slot *ma_io_map_slots(uint32_t count, size_t *mapped)
{
    *mapped = (size_t)count * sizeof(struct ma_io_slot);
    void *const p = mmap(NULL, *mapped, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int ma_ring_setup(struct ma_executor *ex, struct monad_async_executor_attr const *attr)
{
    ex->has_ring = false;
    ex->wake_fd = -1;
    if (attr->io_uring_ring.entries == 0) {
        return 0;
    }
    uint32_t limit = attr->io_inflight_limit;
    if (limit == 0) {
        limit = MONAD_ASYNC_IO_INFLIGHT_LIMIT_DEFAULT;
    }
    if (limit > MONAD_ASYNC_IO_INFLIGHT_LIMIT_MAX) {
        return EINVAL;
    }
    struct io_uring_params p;
    int err = ma_ring_init(ex, attr, &p);
    if (err != 0) {
        return err;
    }
    if (!(p.features & IORING_FEAT_NODROP)) {
        /* Before Linux 5.5 a full CQ drops completions, and a task
         * waiting for one would wait forever. */
        io_uring_queue_exit(&ex->ring);
        return ENOTSUP;
    }
    io_uring_ring_dontfork(&ex->ring);

    ex->io_slots = ma_io_map_slots(limit, &ex->io_slots_mapped);
    if (ex->io_slots == NULL) {
        io_uring_queue_exit(&ex->ring);
        return ENOMEM;
    }
    ex->io_slot_count = limit;
    /* The reserve for operations that finish by themselves (executor.h):
     * an eighth, at least one slot once there are two. */
    uint32_t reserve = limit / 8;
    if (reserve == 0 && limit >= 2) {
        reserve = 1;
    }
    ex->io_wait_limit = limit - reserve;
    ex->io_free_slot = MA_IO_NO_SLOT;
    ex->io_slot_hwm = 0;

    /* Blocking on purpose: io_uring completes a read of an O_NONBLOCK
     * file with EAGAIN instead of waiting for it. Writers never block
     * (the counter would have to reach 2^64 - 2). */
    ex->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (ex->wake_fd < 0) {
        err = errno;
        munmap(ex->io_slots, ex->io_slots_mapped);
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
    (void)ma_io_submit(ex);
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
    if (ex->io_slots != NULL) {
        munmap(ex->io_slots, ex->io_slots_mapped);
        ex->io_slots = NULL;
    }
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
               "(at most 32768 submission entries), a completion queue "
               "size out of range (at least the submission queue's, at "
               "most 65536), an in-flight limit above 16777216, or "
               "IORING_SETUP_* flags it does not know.";
        break;
    case ENOTSUP:
        what = "the kernel's io_uring lacks IORING_FEAT_NODROP (Linux "
               "5.5): its completion queue could lose completions, and a "
               "task waiting for a lost one would wait forever. Use a newer "
               "kernel.";
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
