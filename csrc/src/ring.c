/* The executor's io_uring: set-up and tear-down.
 *
 * One ring per executor, used only by its owning thread, so it is created
 * with SINGLE_ISSUER and DEFER_TASKRUN where the kernel knows them, and
 * without when it does not (EINVAL from an older kernel). Ring memory is
 * not inherited across fork (MADV_DONTFORK, via liburing). */
#include "executor_impl.h"

#include <errno.h>
#include <string.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

int ma_ring_setup(struct ma_executor *ex, struct monad_async_executor_attr const *attr)
{
    ex->has_ring = false;
    if (attr->io_uring_ring.entries == 0) {
        return 0;
    }
    unsigned const want =
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = attr->io_uring_ring.flags | want;
    int ret = io_uring_queue_init_params(attr->io_uring_ring.entries, &ex->ring, &p);
    if (ret == -EINVAL && !(attr->io_uring_ring.flags & want)) {
        memset(&p, 0, sizeof(p));
        p.flags = attr->io_uring_ring.flags;
        ret = io_uring_queue_init_params(
            attr->io_uring_ring.entries, &ex->ring, &p);
    }
    if (ret < 0) {
        /* EPERM/ENOSYS: seccomp or kernel.io_uring_disabled; ENOMEM:
         * RLIMIT_MEMLOCK; EINVAL: too many entries or unknown flags. */
        return -ret;
    }
    io_uring_ring_dontfork(&ex->ring);
    ex->has_ring = true;
    return 0;
}

void ma_ring_teardown(struct ma_executor *ex)
{
    if (ex->has_ring) {
        io_uring_queue_exit(&ex->ring);
        ex->has_ring = false;
    }
}
