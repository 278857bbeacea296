/* monad_async_executor_run returns once it has ended a task, even when it
 * ran no slice to do so (executor.h), so that
 * `while (ex->tasks_attached) run(ex, SIZE_MAX, NULL);` ends:
 *
 *  1. a pending task cancelled from another thread while the executor
 *     waits with no timeout: the drain of the inbox ends it;
 *  2. a task that returned with an initiate-form operation in flight:
 *     its exit is recorded when the kernel has finished the operation
 *     (which the exit cancels), in a later run that runs no slice;
 *  3. the same with a finite timeout: run returns at the exit, not at the
 *     end of the timeout.
 * Before the fix, run counted no item and went back to waiting: forever,
 * or for the whole timeout. */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>

static monad_async_result never_runs_fn(monad_async_task task)
{
    (void)task;
    TEST_FAIL("a task cancelled before launch ran");
}

struct canceller
{
    monad_async_executor ex;
    monad_async_task task;
};

static void *attach_then_cancel(void *arg)
{
    struct canceller *const c = arg;
    CHECK_RESULT(monad_async_task_attach(c->ex, c->task, NULL));
    CHECK_ERROR(monad_async_task_cancel(c->ex, c->task), EAGAIN);
    return NULL;
}

static void pending_cancelled_remotely(unsigned entries,
                                       monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = never_runs_fn;
    /* Both the attach and the cancel come from another thread and wait
     * in the inboxes: the one drain ends the task without a slice. */
    struct canceller c = {ex, t};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, attach_then_cancel, &c), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(test_task_attached(t));
    /* NULL timeout: before the fix this never returned. */
    monad_async_result const r = monad_async_executor_run(ex, SIZE_MAX, NULL);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0); /* no slice ran */
    CHECK(!test_task_attached(t));
    CHECK_ERROR(t->result, ECANCELED);
    CHECK_EQ(ex->tasks_attached, 0);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

static struct monad_async_io_status g_st;

static monad_async_result return_with_io_fn(monad_async_task task)
{
    memset(&g_st, 0, sizeof(g_st));
    /* 40 ms, initiated and left in flight: the exit waits for it. */
    CHECK_RESULT(monad_async_io_timeout(task, &g_st, 40 * 1000 * 1000));
    return monad_async_make_success(7);
}

static void exit_after_drain(monad_async_context_switcher sw, int finite)
{
    monad_async_executor ex = test_make_ring_executor(16, 0);
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = return_with_io_fn;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    struct timespec const ten_s = {10, 0};
    uint64_t const t0 = test_now_ns();
    /* One item: the launch, after which the task has returned but its
     * exit waits for the kernel to finish (cancel) its operation. */
    CHECK_EQ(monad_async_executor_run(ex, 1, NULL).value, 1);
    CHECK(test_task_attached(t));
    int passes = 0;
    while (ex->tasks_attached) {
        monad_async_result const r =
            monad_async_executor_run(ex, SIZE_MAX, finite ? &ten_s : NULL);
        CHECK_RESULT(r);
        CHECK_LT(++passes, 100);
    }
    uint64_t const took = test_now_ns() - t0;
    CHECK(!test_task_attached(t));
    CHECK_EQ(t->result.value, 7);
    /* The exit came with the completion (the cancelled timeout), not
     * after run's own timeout or never. */
    CHECK_LT(took, 2ull * 1000 * 1000 * 1000);
    test_note("%s timeout: exit recorded %.1f ms after attach, %d run calls",
              finite ? "10 s" : "no", (double)took / 1e6, passes);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

int main(void)
{
    test_watchdog(60, "run_returns");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    pending_cancelled_remotely(0, sw);
    char const *const no_ring = test_no_ring_reason();
    if (no_ring == NULL) {
        pending_cancelled_remotely(16, sw);
        exit_after_drain(sw, 0);
        exit_after_drain(sw, 1);
    }
    else {
        test_note("SKIPPED the cases on a ring executor: %s", no_ring);
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    return 0;
}
