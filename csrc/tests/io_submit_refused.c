/* The kernel refusing submissions (io_uring_enter's EBUSY, EAGAIN, EINTR)
 * on every submit path: nothing is lost, and nothing spins.
 *
 * The Makefile links this program with -Wl,--wrap for liburing's three
 * submitting calls (io_uring_submit, io_uring_submit_and_get_events,
 * io_uring_submit_and_wait_timeout): the wrappers below refuse some calls
 * without entering the kernel, as a kernel that takes nothing does.
 *
 * 1. Every third call refused (EBUSY, EAGAIN, EINTR in turn) on a 4-entry
 *    ring: 2,000 blocking NOPs, 50 batches of 8 initiated NOPs and 20
 *    short sleeps all complete; submitted == completed; tasks waited for
 *    the kernel rather than retry in a loop.
 * 2. Every call refused for 30 ms while a task needs an entry of a full
 *    queue: the task waits, and the executor retries about once a
 *    millisecond (bounded calls), then finishes once the kernel takes
 *    submissions again.
 * Header contract: executor.h (io counters: sqe_waits), io.h
 * (Submission). */
#include "test_common.h"

#include <liburing.h>

int __real_io_uring_submit(struct io_uring *ring);
int __real_io_uring_submit_and_get_events(struct io_uring *ring);
int __real_io_uring_submit_and_wait_timeout(struct io_uring *ring,
                                            struct io_uring_cqe **cqe_ptr,
                                            unsigned wait_nr,
                                            struct __kernel_timespec *ts,
                                            sigset_t *sigmask);
int __wrap_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit_and_get_events(struct io_uring *ring);
int __wrap_io_uring_submit_and_wait_timeout(struct io_uring *ring,
                                            struct io_uring_cqe **cqe_ptr,
                                            unsigned wait_nr,
                                            struct __kernel_timespec *ts,
                                            sigset_t *sigmask);

enum refuse_mode
{
    REFUSE_NONE,
    REFUSE_EVERY_THIRD,
    REFUSE_ALL
};

static enum refuse_mode g_mode;
static uint64_t g_calls;
static uint64_t g_refused;

/* 0: let the call through; else the -errno to return instead. */
static int refusal(void)
{
    uint64_t const c = g_calls++;
    if (g_mode == REFUSE_NONE || (g_mode == REFUSE_EVERY_THIRD && c % 3 != 1)) {
        return 0;
    }
    g_refused++;
    static int const errs[3] = {EBUSY, EAGAIN, EINTR};
    return -errs[(c / 3) % 3];
}

int __wrap_io_uring_submit(struct io_uring *ring)
{
    int const r = refusal();
    return r != 0 ? r : __real_io_uring_submit(ring);
}

int __wrap_io_uring_submit_and_get_events(struct io_uring *ring)
{
    int const r = refusal();
    return r != 0 ? r : __real_io_uring_submit_and_get_events(ring);
}

int __wrap_io_uring_submit_and_wait_timeout(struct io_uring *ring,
                                            struct io_uring_cqe **cqe_ptr,
                                            unsigned wait_nr,
                                            struct __kernel_timespec *ts,
                                            sigset_t *sigmask)
{
    int const r = refusal();
    return r != 0 ? r
                  : __real_io_uring_submit_and_wait_timeout(ring, cqe_ptr,
                                                            wait_nr, ts, sigmask);
}

static int g_remaining;

static monad_async_result nops_fn(monad_async_task task)
{
    for (int i = 0; i < 2000; i++) {
        CHECK_RESULT(monad_async_io_nop(task, NULL));
    }
    g_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result batches_fn(monad_async_task task)
{
    struct monad_async_io_status st[8];
    for (int b = 0; b < 50; b++) {
        memset(st, 0, sizeof(st));
        for (int i = 0; i < 8; i++) {
            CHECK_RESULT(monad_async_io_nop(task, &st[i]));
        }
        struct monad_async_io_status *got;
        monad_async_result r;
        int n = 0;
        while ((r = monad_async_io_reap(task, &got)).error == 0) {
            CHECK_RESULT(got->result);
            n++;
        }
        CHECK_ERROR(r, ENOENT);
        CHECK_EQ(n, 8);
    }
    g_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result sleeps_fn(monad_async_task task)
{
    for (int i = 0; i < 20; i++) {
        uint64_t const t0 = test_now_ns();
        CHECK_RESULT(monad_async_task_suspend_for_duration(task, 100000));
        CHECK_GE(test_now_ns() - t0, 100000);
    }
    g_remaining--;
    return monad_async_make_success(0);
}

static void every_third_refused(monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_ring_executor(4, 0);
    monad_async_task tasks[3];
    monad_async_result (*const fns[3])(monad_async_task) = {nops_fn, batches_fn,
                                                             sleeps_fn};
    for (int i = 0; i < 3; i++) {
        tasks[i] = test_make_task(sw, 32 * 1024);
        tasks[i]->user_code = fns[i];
        CHECK_RESULT(monad_async_task_attach(ex, tasks[i], NULL));
    }
    g_remaining = 3;
    g_calls = g_refused = 0;
    g_mode = REFUSE_EVERY_THIRD;
    test_run_until_zero(ex, &g_remaining, 30000);
    g_mode = REFUSE_NONE;
    uint64_t const ops = 2000 + 50 * 8 + 20;
    CHECK_EQ(ex->io.submitted, ops);
    CHECK_EQ(ex->io.completed, ops);
    CHECK_EQ(ex->io.stale, 0);
    CHECK_GT(g_refused, 0);
    CHECK_MSG(ex->io.sqe_waits > 0,
              "%" PRIu64 " refusals and no task waited for the kernel",
              g_refused);
    /* A spinning task or run loop would make calls without bound; these
     * make a few per batch of 4 entries. */
    CHECK_MSG(g_calls < 3 * ops,
              "%" PRIu64 " submitting calls for %" PRIu64 " operations",
              g_calls, ops);
    test_note("every third submit refused: %" PRIu64 " operations, %" PRIu64
              " submitting calls (%" PRIu64 " refused), %" PRIu64
              " waits for the kernel",
              ops, g_calls, g_refused, ex->io.sqe_waits);
    for (int i = 0; i < 3; i++) {
        CHECK_RESULT(tasks[i]->result);
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

/* Ten initiated NOPs: the fifth needs an entry of a full 4-entry queue. */
static monad_async_result ten_nops_fn(monad_async_task task)
{
    struct monad_async_io_status st[10];
    memset(st, 0, sizeof(st));
    for (int i = 0; i < 10; i++) {
        CHECK_RESULT(monad_async_io_nop(task, &st[i]));
    }
    for (int i = 0; i < 10; i++) {
        CHECK_RESULT(monad_async_io_wait(task, &st[i]));
    }
    return monad_async_make_success(0);
}

static void all_refused_for_a_while(monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_ring_executor(4, 0);
    monad_async_task t = test_make_task(sw, 32 * 1024);
    t->user_code = ten_nops_fn;
    g_calls = g_refused = 0;
    g_mode = REFUSE_ALL;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    uint64_t const t0 = test_now_ns();
    struct timespec const tick = {0, 5 * 1000 * 1000};
    while (test_now_ns() - t0 < 30ull * 1000000ull) {
        monad_async_result r = monad_async_executor_run(ex, 64, &tick);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    uint64_t const calls = g_calls;
    CHECK(test_task_attached(t));
    CHECK_EQ(ex->io.completed, 0);
    CHECK_GT(ex->io.sqe_waits, 0);
    /* About four calls a millisecond (pump, resubmit, wait, resubmit),
     * never a busy loop. */
    CHECK_MSG(calls < 1000,
              "%" PRIu64 " submitting calls in 30 ms of refusals: spinning",
              calls);
    g_mode = REFUSE_NONE;
    test_run_until_detached(ex, t, 5000);
    CHECK_RESULT(t->result);
    CHECK_EQ(ex->io.submitted, 10);
    CHECK_EQ(ex->io.completed, 10);
    test_note("30 ms of refused submits: %" PRIu64 " calls, the task waited "
              "%" PRIu64 " times, then finished",
              calls, ex->io.sqe_waits);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

int main(void)
{
    test_watchdog(60, "io_submit_refused");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    every_third_refused(sw);
    all_refused_for_a_while(sw);
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("io_submit_refused: ok\n");
    return 0;
}
