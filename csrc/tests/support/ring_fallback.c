/* Linked into the `*-no_defer_taskrun` copies of the I/O tests: makes
 * every ring creation that asks for IORING_SETUP_SINGLE_ISSUER or
 * IORING_SETUP_DEFER_TASKRUN fail with EINVAL, as a kernel before 6.1
 * does, so the whole test runs on the executor's fallback ring.
 *
 * The executor calls liburing's io_uring_queue_init_params; the Makefile
 * links these programs with -Wl,--wrap=io_uring_queue_init_params, which
 * routes the library's call here and leaves the real one reachable as
 * __real_io_uring_queue_init_params.
 *
 * So that such a test can never pass without exercising the fallback, the
 * program fails at exit unless at least one ring was refused and then
 * created without the two flags. */
#include <liburing.h>

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

int __real_io_uring_queue_init_params(
    unsigned entries, struct io_uring *ring, struct io_uring_params *p);
int __wrap_io_uring_queue_init_params(
    unsigned entries, struct io_uring *ring, struct io_uring_params *p);

static unsigned ring_fallback_refused;
static unsigned ring_fallback_created;

int __wrap_io_uring_queue_init_params(
    unsigned entries, struct io_uring *ring, struct io_uring_params *p)
{
    if (p->flags & (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN)) {
        __atomic_fetch_add(&ring_fallback_refused, 1, __ATOMIC_RELAXED);
        return -EINVAL;
    }
    int const ret = __real_io_uring_queue_init_params(entries, ring, p);
    if (ret == 0) {
        __atomic_fetch_add(&ring_fallback_created, 1, __ATOMIC_RELAXED);
    }
    return ret;
}

__attribute__((destructor)) static void ring_fallback_check(void)
{
    unsigned const refused =
        __atomic_load_n(&ring_fallback_refused, __ATOMIC_RELAXED);
    unsigned const created =
        __atomic_load_n(&ring_fallback_created, __ATOMIC_RELAXED);
    if (refused == 0 || created == 0) {
        fprintf(stderr,
                "FAILED %s: the fallback ring was not exercised (%u refused, "
                "%u created without SINGLE_ISSUER|DEFER_TASKRUN)\n",
                __FILE__, refused, created);
        fflush(stderr);
        _exit(1);
    }
    printf("note: %u rings refused SINGLE_ISSUER|DEFER_TASKRUN and made "
           "without them\n",
           created);
    fflush(stdout);
}
