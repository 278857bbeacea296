/* The ring in the run loop: NOP, timeout and poll in both forms (blocking
 * and initiate-then-reap, completions reaped in completion order), the
 * errors of every entry point (outside a task, no ring, no stack, a
 * status still in flight), the accounting (submitted == completed, each
 * operation its own user_data), the ring description (default CQ size
 * and in-flight guard, the attr fields' bounds), and a timer that sleeps
 * at least its duration and not much more.
 * Header contract: io.h, executor.h (io counters, ring info,
 * monad_async_executor_describe_error). */
#include "test_common.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/uio.h>

static uint64_t const MS = 1000000ull;

struct ctx
{
    int fds[2];
    int step;
    int done;
};

static monad_async_result nop_fn(monad_async_task task)
{
    struct ctx *c = task->user_ptr;
    for (int i = 0; i < 100; i++) {
        monad_async_result r = monad_async_io_nop(task, NULL);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 0);
    }
    c->done++;
    return monad_async_make_success(1);
}

/* Initiate timeouts of decreasing length: they must be reaped shortest
 * first, i.e. in completion order, not initiation order. */
static monad_async_result reap_order_fn(monad_async_task task)
{
    struct monad_async_io_status st[5];
    memset(st, 0, sizeof(st));
    static uint64_t const ms[5] = {50, 40, 30, 20, 10};
    for (int i = 0; i < 5; i++) {
        CHECK_RESULT(monad_async_io_timeout(task, &st[i], ms[i] * MS));
        CHECK_EQ(st[i].state, MONAD_ASYNC_IO_STATE_IN_FLIGHT);
        CHECK(st[i].task == task);
    }
    /* A status in flight cannot start another operation. */
    CHECK_ERROR(monad_async_io_nop(task, &st[0]), EBUSY);
    /* Nothing completed yet: try_reap says so without suspending. */
    struct monad_async_io_status *got = NULL;
    CHECK_ERROR(monad_async_io_try_reap(task, &got), EAGAIN);
    for (int i = 4; i >= 0; i--) {
        CHECK_RESULT(monad_async_io_reap(task, &got));
        CHECK(got == &st[i]);
        CHECK_RESULT(got->result); /* ETIME is a timeout's success */
        CHECK_EQ(got->state, MONAD_ASYNC_IO_STATE_IDLE);
    }
    CHECK_ERROR(monad_async_io_reap(task, &got), ENOENT);

    /* wait() picks one out of the completion order. */
    CHECK_RESULT(monad_async_io_nop(task, &st[0]));
    CHECK_RESULT(monad_async_io_timeout(task, &st[1], 1 * MS));
    CHECK_RESULT(monad_async_io_nop(task, &st[2]));
    CHECK_RESULT(monad_async_io_wait(task, &st[1]));
    CHECK_ERROR(monad_async_io_wait(task, &st[1]), ENOENT);
    CHECK_RESULT(monad_async_io_reap(task, &got));
    CHECK(got == &st[0]);
    CHECK_RESULT(monad_async_io_reap(task, &got));
    CHECK(got == &st[2]);
    /* Statuses are reusable once reaped. */
    CHECK_RESULT(monad_async_io_nop(task, &st[0]));
    CHECK_RESULT(monad_async_io_wait(task, &st[0]));
    ((struct ctx *)task->user_ptr)->done++;
    return monad_async_make_success(0);
}

static monad_async_result poll_fn(monad_async_task task)
{
    struct ctx *c = task->user_ptr;
    c->step = 1;
    monad_async_result r = monad_async_io_poll(task, NULL, c->fds[0], POLLIN);
    CHECK_RESULT(r);
    CHECK(r.value & POLLIN);
    c->step = 2;
    char b;
    CHECK_EQ(monad_async_io_read(task, NULL, c->fds[0], &b, 1, -1).value, 1);
    test_kernel_wrote(&b, 1);
    CHECK_EQ(b, 'x');
    CHECK_ERROR(monad_async_io_poll(task, NULL, -1, POLLIN), EBADF);
    /* A bad fd is the kernel's error, as an errno, never a crash. */
    CHECK_ERROR(monad_async_io_read(task, NULL, 12345, &b, 1, 0), EBADF);
    c->done++;
    return monad_async_make_success(0);
}

static monad_async_result timer_fn(monad_async_task task)
{
    static uint64_t const durations[] = {0, 1 * MS, 20 * MS, 100 * MS};
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        uint64_t const t0 = test_now_ns();
        CHECK_RESULT(monad_async_io_timeout(task, NULL, durations[i]));
        uint64_t const el = test_now_ns() - t0;
        CHECK_MSG(el >= durations[i], "a %" PRIu64 " ns timeout took %" PRIu64,
                  durations[i], el);
        CHECK_MSG(el < durations[i] + 2000 * MS,
                  "a %" PRIu64 " ns timeout took %" PRIu64, durations[i], el);
        uint64_t const t1 = test_now_ns();
        CHECK_RESULT(monad_async_task_suspend_for_duration(task, durations[i]));
        uint64_t const el2 = test_now_ns() - t1;
        CHECK_GE(el2, durations[i]);
        CHECK_LT(el2, durations[i] + 2000 * MS);
    }
    ((struct ctx *)task->user_ptr)->done++;
    return monad_async_make_success(0);
}

static monad_async_result errors_fn(monad_async_task task)
{
    struct monad_async_io_status *got;
    CHECK_ERROR(monad_async_io_reap(task, NULL), EINVAL);
    CHECK_ERROR(monad_async_io_reap(task, &got), ENOENT);
    CHECK_ERROR(monad_async_io_wait(task, NULL), EINVAL);
    CHECK_ERROR(monad_async_io_cancel(task, NULL), EINVAL);
    struct monad_async_io_status idle;
    memset(&idle, 0, sizeof(idle));
    CHECK_ERROR(monad_async_io_wait(task, &idle), ENOENT);
    CHECK_ERROR(monad_async_io_cancel(task, &idle), ENOENT);
    CHECK_ERROR(monad_async_io_read(task, NULL, 0, NULL, 1, 0), EFAULT);
    CHECK_ERROR(monad_async_io_openat(task, NULL, AT_FDCWD, NULL, 0, 0), EFAULT);
    CHECK_ERROR(monad_async_io_send(task, NULL, 0, NULL, 1, 0), EFAULT);
    CHECK_ERROR(monad_async_io_sendmsg(task, NULL, 0, NULL, 0), EFAULT);
    CHECK_ERROR(monad_async_io_connect(task, NULL, 0, NULL, 0), EFAULT);
    CHECK_ERROR(monad_async_io_fallocate(task, NULL, 0, 0, -1, 1), EINVAL);
    CHECK_ERROR(monad_async_io_readv(task, NULL, 0, NULL, 1, 0), EFAULT);
    /* Another task's operations are not ours to wait for. */
    ((struct ctx *)task->user_ptr)->done++;
    return monad_async_make_success(0);
}

static monad_async_result ring_needed_fn(monad_async_task task)
{
    CHECK_ERROR(monad_async_io_nop(task, NULL), ENOTSUP);
    struct monad_async_io_status *got;
    CHECK_ERROR(monad_async_io_reap(task, &got), ENOTSUP);
    ((struct ctx *)task->user_ptr)->done++;
    return monad_async_make_success(0);
}

static void run_task(monad_async_executor ex, monad_async_task t,
                     monad_async_result (*fn)(monad_async_task), struct ctx *c)
{
    t->user_code = fn;
    t->user_ptr = c;
    int const before = c->done;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_detached(ex, t, 20000);
    CHECK_RESULT(t->result);
    CHECK_EQ(c->done, before + 1);
}

static void check_accounting(monad_async_executor ex)
{
    CHECK_EQ(ex->io.submitted, ex->io.completed);
    CHECK_EQ(ex->io.in_flight, 0);
    CHECK_EQ(ex->io.stale, 0);
}

int main(void)
{
    test_watchdog(120, "io_basic");
    test_need_ring(64);
    /* Outside a task: EINVAL. */
    CHECK_ERROR(monad_async_io_nop(NULL, NULL), EINVAL);

    /* The ring description names the causes. */
    char buf[512];
    monad_async_result d = monad_async_executor_describe_error(EPERM, buf, sizeof(buf));
    CHECK_RESULT(d);
    CHECK(strstr(buf, "io_uring_disabled") != NULL);
    d = monad_async_executor_describe_error(ENOMEM, buf, sizeof(buf));
    CHECK(strstr(buf, "RLIMIT_MEMLOCK") != NULL);
    d = monad_async_executor_describe_error(EINVAL, buf, sizeof(buf));
    CHECK(strstr(buf, "entries") != NULL);
    CHECK_ERROR(monad_async_executor_describe_error(EINVAL, NULL, 4), EINVAL);
    d = monad_async_executor_describe_error(EINVAL, NULL, 0);
    CHECK_GT(d.value, 10);
    d = monad_async_executor_describe_error(ENOTSUP, buf, sizeof(buf));
    CHECK(strstr(buf, "IORING_FEAT_NODROP") != NULL);
    /* Too many entries, a CQ smaller than the SQ or above the kernel's
     * 65,536, an in-flight guard above its maximum: EINVAL, described. */
    {
        struct monad_async_executor_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.io_uring_ring.entries = 1u << 20;
        monad_async_executor bad = NULL;
        CHECK_ERROR(monad_async_executor_create(&bad, &attr), EINVAL);
        attr.io_uring_ring.entries = 64;
        attr.io_cq_entries = 32;
        CHECK_ERROR(monad_async_executor_create(&bad, &attr), EINVAL);
        attr.io_cq_entries = MONAD_ASYNC_IO_CQ_ENTRIES_MAX + 1;
        CHECK_ERROR(monad_async_executor_create(&bad, &attr), EINVAL);
        attr.io_cq_entries = 0;
        attr.io_inflight_limit = MONAD_ASYNC_IO_INFLIGHT_LIMIT_MAX + 1;
        CHECK_ERROR(monad_async_executor_create(&bad, &attr), EINVAL);
        CHECK(bad == NULL);
        d = monad_async_executor_describe_error(EINVAL, buf, sizeof(buf));
        CHECK(strstr(buf, "completion queue") != NULL &&
              strstr(buf, "in-flight limit") != NULL);
    }
    /* The CQ and the guard as asked for: the CQ rounded up to a power of
     * two, the largest the kernel takes, the largest guard. */
    {
        struct monad_async_executor_attr attr;
        memset(&attr, 0, sizeof(attr));
        attr.io_uring_ring.entries = 64;
        attr.io_cq_entries = 1000;
        attr.io_inflight_limit = 10;
        monad_async_executor ex = NULL;
        CHECK_RESULT(monad_async_executor_create(&ex, &attr));
        CHECK_EQ(ex->ring.cq_entries, 1024);
        CHECK_EQ(ex->ring.inflight_limit, 10);
        CHECK_RESULT(monad_async_executor_destroy(ex));
        attr.io_cq_entries = MONAD_ASYNC_IO_CQ_ENTRIES_MAX;
        attr.io_inflight_limit = MONAD_ASYNC_IO_INFLIGHT_LIMIT_MAX;
        CHECK_RESULT(monad_async_executor_create(&ex, &attr));
        CHECK_EQ(ex->ring.cq_entries, MONAD_ASYNC_IO_CQ_ENTRIES_MAX);
        CHECK_EQ(ex->ring.inflight_limit, MONAD_ASYNC_IO_INFLIGHT_LIMIT_MAX);
        CHECK_RESULT(monad_async_executor_destroy(ex));
        /* A big SQ gets a CQ twice its size by default, as the kernel's. */
        attr.io_uring_ring.entries = 8192;
        attr.io_cq_entries = 0;
        attr.io_inflight_limit = 0;
        CHECK_RESULT(monad_async_executor_create(&ex, &attr));
        CHECK_EQ(ex->ring.cq_entries, 16384);
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }

    for (int k = TEST_SWITCHER_SJLJ; k <= TEST_SWITCHER_ASM; k++) {
        monad_async_context_switcher sw = test_make_switcher((enum test_switcher_kind)k);
        monad_async_executor ex = test_make_ring_executor(64, 0);
        CHECK_EQ(ex->ring.sq_entries, 64);
        /* The defaults: the guard is a memory bound far above any CQ,
         * and the CQ is sized for the work, not for the SQ. */
        CHECK_EQ(ex->ring.inflight_limit, MONAD_ASYNC_IO_INFLIGHT_LIMIT_DEFAULT);
        CHECK_EQ(ex->ring.cq_entries, MONAD_ASYNC_IO_CQ_ENTRIES_DEFAULT);
        if (k == TEST_SWITCHER_SJLJ) {
            test_note("ring: sq %u cq %u setup flags 0x%x, high I/O "
                      "priority %s",
                      ex->ring.sq_entries, ex->ring.cq_entries,
                      ex->ring.setup_flags,
                      ex->ring.io_priority_rt ? "real-time class"
                                              : "best effort 0 (no CAP_SYS_NICE)");
        }
        monad_async_task t = test_make_task(sw, 0);
        struct ctx c;
        memset(&c, 0, sizeof(c));
        run_task(ex, t, nop_fn, &c);
        CHECK_EQ(ex->io.submitted, 100);
        check_accounting(ex);
        run_task(ex, t, reap_order_fn, &c);
        check_accounting(ex);
        run_task(ex, t, errors_fn, &c);

        CHECK_EQ(pipe(c.fds), 0);
        t->user_code = poll_fn;
        t->user_ptr = &c;
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        struct timespec const zero = {0, 0};
        CHECK_RESULT(monad_async_executor_run(ex, 1, &zero));
        CHECK_EQ(c.step, 1);
        /* Nothing happens until the pipe is written. */
        struct timespec const ten_ms = {0, 10 * 1000 * 1000};
        CHECK_ERROR(monad_async_executor_run(ex, 1, &ten_ms), ETIME);
        CHECK_EQ(c.step, 1);
        CHECK_EQ(write(c.fds[1], "x", 1), 1);
        test_run_until_detached(ex, t, 5000);
        CHECK_RESULT(t->result);
        close(c.fds[0]);
        close(c.fds[1]);

        run_task(ex, t, timer_fn, &c);
        check_accounting(ex);
        CHECK_EQ(ex->tasks_timed, 0);
        CHECK_RESULT(monad_async_task_destroy(t));
        CHECK_RESULT(monad_async_executor_destroy(ex));

        /* A compute-only executor has no ring: ENOTSUP. */
        ex = test_make_executor(0, 0);
        CHECK_EQ(ex->ring.sq_entries, 0);
        t = test_make_task(sw, 0);
        run_task(ex, t, ring_needed_fn, &c);
        CHECK_RESULT(monad_async_task_destroy(t));
        CHECK_RESULT(monad_async_executor_destroy(ex));
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    }

    /* The none switcher cannot suspend: ENOTSUP, even with a ring. */
    {
        monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_NONE);
        monad_async_executor ex = test_make_ring_executor(8, 0);
        monad_async_task t = test_make_task(sw, 0);
        struct ctx c;
        memset(&c, 0, sizeof(c));
        run_task(ex, t, ring_needed_fn, &c);
        CHECK_RESULT(monad_async_task_destroy(t));
        CHECK_RESULT(monad_async_executor_destroy(ex));
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    }
    printf("io_basic: ok\n");
    return 0;
}
