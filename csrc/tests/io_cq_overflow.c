/* Completion-queue overflow: on a 4-entry ring with a CQ of 8 entries
 * (io_cq_entries; the in-flight guard, at its default, no longer follows
 * the CQ), a task with 8 receives in flight is cancelled: 8 cancel
 * requests and 8 cancelled receives complete at once, 16 completions for
 * 8 CQ entries. The kernel keeps the excess (IORING_FEAT_NODROP) and the
 * executor flushes it: every receive is reaped, none lost, submitted ==
 * completed.
 * Header contract: executor.h (io_cq_entries, io counters), io.h. */
#include "test_common.h"

#include <sys/socket.h>

static int g_sp[2];
static int g_reaped;

static monad_async_result many_fn(monad_async_task task)
{
    struct monad_async_io_status st[8];
    char bufs[8][8];
    memset(st, 0, sizeof(st));
    for (int i = 0; i < 8; i++) {
        CHECK_RESULT(monad_async_io_recv(task, &st[i], g_sp[0], bufs[i], 8, 0));
    }
    struct monad_async_io_status *got;
    monad_async_result r;
    while ((r = monad_async_io_reap(task, &got)).error == 0) {
        CHECK_ERROR(got->result, ECANCELED);
        g_reaped++;
    }
    CHECK_ERROR(r, ECANCELED);
    return r;
}

int main(void)
{
    test_watchdog(60, "io_cq_overflow");
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_sp), 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_executor ex = test_make_ring_executor_cq(4, 0, 8);
    CHECK_EQ(ex->ring.cq_entries, 8);
    CHECK_EQ(ex->ring.inflight_limit, MONAD_ASYNC_IO_INFLIGHT_LIMIT_DEFAULT);
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = many_fn;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    struct timespec const ms = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 3; i++) {
        monad_async_result r = monad_async_executor_run(ex, 16, &ms);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    CHECK_EQ(ex->io.in_flight, 8);
    CHECK_ERROR(monad_async_task_cancel(ex, t), EAGAIN);
    test_run_until_detached(ex, t, 5000);
    CHECK_EQ(g_reaped, 8);
    CHECK_EQ(ex->io.submitted, ex->io.completed);
    CHECK_EQ(ex->io.stale, 0);
    /* 16 completions are posted before the executor reaps any: the CQ
     * must have overflowed, or this test did not test overflow. */
    CHECK_MSG(ex->io.cq_overflows > 0,
              "the CQ never overflowed (16 completions for %u entries)",
              ex->ring.cq_entries);
    test_note("%" PRIu64 " passes found the CQ overflowed; nothing was lost",
              ex->io.cq_overflows);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    close(g_sp[0]);
    close(g_sp[1]);
    printf("io_cq_overflow: ok\n");
    return 0;
}
