/* One task reused a million times (attach, run, exit, attach again), its
 * result checked each time, for each switcher (sjlj, asm, none). Every
 * 64th piece of work on a stackful switcher also yields once and checks
 * its stack is fresh, so reuse after a suspension is covered too.
 * Header contract: task.h ("created once ... reused for any number of
 * pieces of work"), executor.h (run's item count). */
#include "test_common.h"

struct work
{
    uint64_t n;          /* which piece of work this is */
    int yield_once;      /* yield once before returning */
    uint64_t ran;        /* incremented by the task */
    void *first_frame;   /* frame address of the first piece of work */
    int frame_moved;     /* a later piece ran with a different frame */
};

static monad_async_result work_fn(monad_async_task task)
{
    struct work *w = (struct work *)task->user_ptr;
    void *frame = __builtin_frame_address(0);
    if (w->n == 2) {
        w->first_frame = frame;
    }
    else if (w->n > 2 && frame != w->first_frame) {
        /* A fresh launch starts at the same place every time (on the
         * task's own stack, or, for the none switcher, on the executor's
         * stack under the same run call site): a drifting frame means the
         * stack is not being reset between pieces of work. (The first two
         * pieces are exempt, in case a first launch sets up differently.) */
        w->frame_moved = 1;
    }
    w->ran++;
    uint64_t const n = w->n;
    if (w->yield_once) {
        CHECK_RESULT(monad_async_task_yield(task));
        CHECK_EQ(w->n, n);
    }
    if (n % 7 == 3) {
        /* failures propagate into task->result too */
        return monad_async_make_failure(EDOM);
    }
    return monad_async_make_success((intptr_t)(n * 3 + 1));
}

static void reuse(monad_async_executor ex, enum test_switcher_kind kind,
                  unsigned long count)
{
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task task = test_make_task(sw, 0);
    int const stackful = kind != TEST_SWITCHER_NONE;
    struct work w;
    memset(&w, 0, sizeof(w));
    task->user_code = work_fn;
    task->user_ptr = &w;
    struct monad_async_executor_counters const before = ex->counters;
    uint64_t yields = 0;
    uint64_t const t0 = test_now_ns();
    for (unsigned long i = 0; i < count; i++) {
        w.n = i;
        w.yield_once = stackful && (i % 64) == 5;
        task->priority.cpu = (monad_async_priority)(i % 3);
        monad_async_result r = monad_async_task_attach(ex, task, NULL);
        if (r.error != 0) {
            TEST_FAIL("%s: attach #%lu failed: %s", test_switcher_names[kind],
                      i, strerror(r.error));
        }
        r = monad_async_executor_run(ex, 16, NULL);
        if (r.error != 0 || r.value != 1 + w.yield_once) {
            TEST_FAIL("%s: run #%lu gave error %d value %" PRIdPTR
                      " (want %d items)",
                      test_switcher_names[kind], i, r.error, r.value,
                      1 + w.yield_once);
        }
        yields += (uint64_t)w.yield_once;
        uint32_t const st = test_task_state(task);
        if ((st & MONAD_ASYNC_TASK_STATE_ATTACHED) != 0 ||
            (st & MONAD_ASYNC_TASK_STATE_EXITED) == 0) {
            TEST_FAIL("%s: after run #%lu state is 0x%x (want EXITED, not "
                      "ATTACHED)",
                      test_switcher_names[kind], i, (unsigned)st);
        }
        if (i % 7 == 3) {
            if (task->result.error != EDOM || task->result.value != 0) {
                TEST_FAIL("%s: #%lu result {%" PRIdPTR ", %d}, want EDOM",
                          test_switcher_names[kind], i, task->result.value,
                          task->result.error);
            }
        }
        else if (task->result.error != 0 ||
                 task->result.value != (intptr_t)(i * 3 + 1)) {
            TEST_FAIL("%s: #%lu result {%" PRIdPTR ", %d}, want {%lu, 0}",
                      test_switcher_names[kind], i, task->result.value,
                      task->result.error, i * 3 + 1);
        }
        if (task->suspensions != (uint64_t)w.yield_once) {
            TEST_FAIL("%s: #%lu suspensions %" PRIu64 ", want %d",
                      test_switcher_names[kind], i, task->suspensions,
                      w.yield_once);
        }
        if (atomic_load(&task->current_executor) != NULL) {
            TEST_FAIL("%s: #%lu current_executor still set after exit",
                      test_switcher_names[kind], i);
        }
    }
    uint64_t const t1 = test_now_ns();
    CHECK_EQ(w.ran, count);
    CHECK_MSG(!w.frame_moved,
              "%s: the task's first frame moved between pieces of work",
              test_switcher_names[kind]);
    CHECK_EQ(ex->counters.attached - before.attached, count);
    CHECK_EQ(ex->counters.launched - before.launched, count);
    CHECK_EQ(ex->counters.exited - before.exited, count);
    CHECK_EQ(ex->counters.resumed - before.resumed, yields);
    CHECK_EQ(ex->counters.suspended - before.suspended, yields);
    CHECK_EQ(ex->counters.cancelled - before.cancelled, 0);
    CHECK_EQ(ex->tasks_attached, 0);
    printf("%s: %lu reuses (%" PRIu64 " with a yield) in %.3f s, %.1f ns "
           "each\n",
           test_switcher_names[kind], count, yields, (double)(t1 - t0) / 1e9,
           (double)(t1 - t0) / (double)count);
    CHECK_RESULT(monad_async_task_destroy(task));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

int main(void)
{
    test_watchdog(240, "task_reuse");
    unsigned long const count = test_scaled(1000000);
    if (count != 1000000) {
        test_note("scaled down to %lu reuses per switcher "
                  "(MONAD_ASYNC_TEST_SCALE)",
                  count);
    }
    static enum test_switcher_kind const kinds[3] = {
        TEST_SWITCHER_SJLJ, TEST_SWITCHER_ASM, TEST_SWITCHER_NONE};
    monad_async_executor ex = test_make_executor(0, 0);
    for (int k = 0; k < 3; k++) {
        reuse(ex, kinds[k], count);
    }
    CHECK_RESULT(monad_async_executor_destroy(ex));
    /* And on an executor with a ring, a shorter run. */
    if (!test_skip_ring_part("reuse on a ring executor")) {
        ex = test_make_executor(64, 0);
        for (int k = 0; k < 3; k++) {
            reuse(ex, kinds[k], count / 10 + 1);
        }
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }
    printf("task_reuse: ok\n");
    return 0;
}
