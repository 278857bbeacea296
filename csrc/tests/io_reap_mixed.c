/* Reaping under a mixed load: 384 tasks on three CPU priorities, on a
 * ring of 8 entries with a CQ of 16, so that every pass reaps completions
 * of blocking and initiated operations of many tasks together, the CQ
 * overflows and the submission queue fills while tasks start more (a
 * task entering the kernel between two reaps). Each task runs rounds of
 * a blocking NOP, an initiated NOP collected with monad_async_io_wait,
 * two initiated timeouts collected with monad_async_io_reap, and a short
 * blocking timeout; a third of the tasks return with an initiated
 * timeout still in flight (their exit waits for it: the draining path);
 * a quarter are cancelled halfway through. Checks: every operation
 * completes once with its own result (a NOP's 0, a timeout's 0 or
 * ECANCELED for a cancelled task), every task exits, submitted ==
 * completed, nothing stale, nothing left in flight.
 * Header contract: io.h (nop, timeout, wait, reap), executor.h (io
 * counters), task.h (cancel). */
#include "test_common.h"

enum
{
    TASKS = 384,
    ROUNDS = 12,
};

static int g_done_rounds[TASKS];
static int g_exits;
static int g_errors;

static void note_error(monad_async_result r, int tolerated)
{
    if (r.error != 0 && r.error != tolerated) {
        g_errors++;
        fprintf(stderr, "io_reap_mixed: unexpected error %d (%s)\n", r.error,
                strerror(r.error));
    }
}

static monad_async_result worker_fn(monad_async_task task)
{
    int const id = (int)(intptr_t)task->user_ptr;
    struct monad_async_io_status nop_st, to_st[2], tail_st;
    memset(&nop_st, 0, sizeof(nop_st));
    memset(to_st, 0, sizeof(to_st));
    memset(&tail_st, 0, sizeof(tail_st));
    for (int round = 0; round < ROUNDS; round++) {
        monad_async_result r = monad_async_io_nop(task, NULL);
        if (r.error == ECANCELED) {
            break;
        }
        note_error(r, 0);
        CHECK_EQ(r.value, 0);

        r = monad_async_io_nop(task, &nop_st);
        if (r.error == ECANCELED) {
            break;
        }
        note_error(r, 0);
        /* Two timeouts of different lengths, reaped in whichever order
         * they finish. */
        note_error(monad_async_io_timeout(task, &to_st[0], 20 * 1000), ECANCELED);
        note_error(monad_async_io_timeout(task, &to_st[1], 1000), ECANCELED);
        r = monad_async_io_wait(task, &nop_st);
        note_error(r, ECANCELED);
        for (int k = 0; k < 2; k++) {
            struct monad_async_io_status *got = NULL;
            if (to_st[k].state == MONAD_ASYNC_IO_STATE_IDLE) {
                continue; /* its initiation was refused (cancelled) */
            }
            r = monad_async_io_reap(task, &got);
            if (r.error != 0) {
                note_error(r, ECANCELED);
                break;
            }
            CHECK(got == &to_st[0] || got == &to_st[1]);
            note_error(got->result, ECANCELED);
        }
        if (to_st[0].state != MONAD_ASYNC_IO_STATE_IDLE ||
            to_st[1].state != MONAD_ASYNC_IO_STATE_IDLE) {
            /* Cancelled between the two: collect what is left. */
            struct monad_async_io_status *got;
            while (monad_async_io_reap(task, &got).error == 0) {
            }
        }
        r = monad_async_io_timeout(task, NULL, 2 * 1000);
        if (r.error == ECANCELED) {
            break;
        }
        note_error(r, 0);
        g_done_rounds[id]++;
    }
    if (id % 3 == 0) {
        /* Returns with a timeout in flight: the exit waits for the
         * kernel to finish it (it is cancelled). */
        monad_async_result const r =
            monad_async_io_timeout(task, &tail_st, 1000 * 1000 * 1000);
        note_error(r, ECANCELED);
    }
    return monad_async_make_success(0);
}

static void on_exit_hook(monad_async_task t)
{
    (void)t;
    g_exits++;
}

int main(void)
{
    test_watchdog(120, "io_reap_mixed");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_executor ex = test_make_ring_executor_cq(8, 0, 16);
    monad_async_task tasks[TASKS];
    for (int i = 0; i < TASKS; i++) {
        tasks[i] = test_make_task(sw, 0);
        tasks[i]->user_code = worker_fn;
        tasks[i]->user_ptr = (void *)(intptr_t)i;
        tasks[i]->user_on_exit = on_exit_hook;
        tasks[i]->priority.cpu = (monad_async_priority)(i % 3);
        tasks[i]->priority.io = (monad_async_priority)((i / 3) % 3);
        CHECK_RESULT(monad_async_task_attach(ex, tasks[i], NULL));
    }
    /* Halfway: cancel every fourth task wherever it is. */
    struct timespec const tick = {0, 10 * 1000 * 1000};
    for (int n = 0; n < 2 * TASKS; n += 64) {
        monad_async_result r = monad_async_executor_run(ex, 64, &tick);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    int cancelled = 0;
    for (int i = 0; i < TASKS; i += 4) {
        monad_async_result const r = monad_async_task_cancel(ex, tasks[i]);
        CHECK(r.error == 0 || r.error == EAGAIN || r.error == ENOENT);
        cancelled += r.error != ENOENT;
    }
    for (int i = 0; i < TASKS; i++) {
        test_run_until_detached(ex, tasks[i], 60000);
    }
    CHECK_EQ(g_errors, 0);
    CHECK_EQ(g_exits, TASKS);
    int full = 0;
    for (int i = 0; i < TASKS; i++) {
        CHECK_LE(g_done_rounds[i], ROUNDS);
        if (i % 4 != 0) {
            CHECK_EQ(g_done_rounds[i], ROUNDS); /* not cancelled: all done */
        }
        full += g_done_rounds[i] == ROUNDS;
    }
    CHECK_EQ(ex->io.submitted, ex->io.completed);
    CHECK_EQ(ex->io.in_flight, 0);
    CHECK_EQ(ex->io.stale, 0);
    /* More operations than the CQ holds complete between two reaps: or
     * this test did not test overflow. */
    CHECK_MSG(ex->io.cq_overflows > 0, "the CQ never overflowed");
    test_note("%d tasks, %d cancelled in the middle, %d ran every round; "
              "%" PRIu64 " operations, %" PRIu64 " enters, %" PRIu64
              " passes found the CQ overflowed",
              TASKS, cancelled, full, ex->io.completed, ex->io.enters,
              ex->io.cq_overflows);
    for (int i = 0; i < TASKS; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("io_reap_mixed: ok\n");
    return 0;
}
