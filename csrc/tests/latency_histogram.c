/* Launch and resume latency histograms (executor.h,
 * monad_async_executor_head.latency): counts exact for a scripted
 * scenario, per CPU priority, on executors with and without a ring:
 *
 *  - 10 High, 5 Normal and 3 Low tasks attached: launch counts 10, 5, 3;
 *  - each High task parks once and a Normal task wakes it; each Normal
 *    task sleeps once; each Low task yields three times: resume counts
 *    10, 5 and 0 (a yield is not a wake);
 *  - a task cancelled while sleeping counts one resume;
 *  - the spans are where they must be: every launch and wake-up here is
 *    under a second (bucket below the last), the sleeps' resumes are not
 *    their sleep (the wake is the timer's, not the suspension's);
 *  - without time tracking nothing is counted.
 */
#include "test_common.h"

#include <stdbool.h>

#define NHIGH 10
#define NNORMAL 5
#define NLOW 3

static uint64_t g_tokens[NHIGH];
static monad_async_task g_high[NHIGH];
static int g_parked;

static monad_async_result high_fn(monad_async_task task)
{
    int const i = (int)(uintptr_t)task->user_ptr;
    CHECK_RESULT(monad_async_task_wake_token(task, &g_tokens[i]));
    g_parked++;
    CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
    return monad_async_make_success(0);
}

static monad_async_result normal_fn(monad_async_task task)
{
    if (task->user_ptr == (void *)1) {
        /* The waker: every High task is parked by now (they ran first). */
        CHECK_EQ(g_parked, NHIGH);
        for (int i = 0; i < NHIGH; i++) {
            CHECK_EQ(monad_async_task_wake(g_high[i], g_tokens[i]).value, 1);
        }
    }
    CHECK_RESULT(monad_async_task_suspend_for_duration(task, 1000000));
    return monad_async_make_success(0);
}

static monad_async_result low_fn(monad_async_task task)
{
    for (int i = 0; i < 3; i++) {
        CHECK_RESULT(monad_async_task_yield(task));
    }
    return monad_async_make_success(0);
}

static monad_async_result victim_fn(monad_async_task task)
{
    CHECK_ERROR(monad_async_task_suspend_for_duration(task, 60ull * 1000000000ull),
                ECANCELED);
    return monad_async_make_success(0);
}

static uint64_t sum(uint64_t const *b)
{
    uint64_t s = 0;
    for (int i = 0; i < MONAD_ASYNC_LATENCY_BUCKETS; i++) {
        s += b[i];
    }
    return s;
}

static void scenario(unsigned entries, bool track)
{
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_executor ex = test_make_executor(
        entries, track ? 0 : MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING);
    monad_async_task tasks[NHIGH + NNORMAL + NLOW];
    int n = 0;
    g_parked = 0;
    for (int i = 0; i < NHIGH; i++, n++) {
        tasks[n] = g_high[i] = test_make_task(sw, 0);
        tasks[n]->user_code = high_fn;
        tasks[n]->user_ptr = (void *)(uintptr_t)i;
        tasks[n]->priority.cpu = monad_async_priority_high;
    }
    for (int i = 0; i < NNORMAL; i++, n++) {
        tasks[n] = test_make_task(sw, 0);
        tasks[n]->user_code = normal_fn;
        tasks[n]->user_ptr = (void *)(uintptr_t)(i == 0);
    }
    for (int i = 0; i < NLOW; i++, n++) {
        tasks[n] = test_make_task(sw, 0);
        tasks[n]->user_code = low_fn;
        tasks[n]->priority.cpu = monad_async_priority_low;
    }
    for (int i = 0; i < n; i++) {
        CHECK_RESULT(monad_async_task_attach(ex, tasks[i], NULL));
    }
    for (int i = 0; i < n; i++) {
        (void)test_run_until_detached(ex, tasks[i], 10000);
    }
    struct monad_async_executor_latency const *const l = &ex->latency;
    uint64_t const hi = monad_async_priority_high, no = monad_async_priority_normal,
                   lo = monad_async_priority_low;
    if (!track) {
        for (int p = 0; p < monad_async_priority_max; p++) {
            CHECK_EQ(sum(l->launch[p]), 0);
            CHECK_EQ(sum(l->resume[p]), 0);
        }
    }
    else {
        CHECK_EQ(sum(l->launch[hi]), NHIGH);
        CHECK_EQ(sum(l->launch[no]), NNORMAL);
        CHECK_EQ(sum(l->launch[lo]), NLOW);
        CHECK_EQ(sum(l->resume[hi]), NHIGH);
        CHECK_EQ(sum(l->resume[no]), NNORMAL);
        CHECK_EQ(sum(l->resume[lo]), 0);
        for (int p = 0; p < monad_async_priority_max; p++) {
            CHECK_EQ(l->launch[p][MONAD_ASYNC_LATENCY_BUCKETS - 1], 0);
            CHECK_EQ(l->resume[p][MONAD_ASYNC_LATENCY_BUCKETS - 1], 0);
        }
        /* A 1 ms sleep's resume counts from its timer, not from its
         * suspension: under a millisecond's bucket in all but a loaded
         * machine's worst case; at least the median is. */
        monad_async_result const tps = monad_async_ticks_per_second();
        CHECK_RESULT(tps);
        unsigned const ms_bucket = 63u - (unsigned)__builtin_clzll((uint64_t)tps.value / 1000);
        uint64_t below = 0;
        for (unsigned b = 0; b < ms_bucket; b++) {
            below += l->resume[no][b];
        }
        if (test_under_valgrind()) {
            /* Slices take a hundred times longer there: no timing. */
            test_note("valgrind: %lu of %d sleep resumes under a millisecond",
                      (unsigned long)below, NNORMAL);
        }
        else {
            CHECK_MSG(below * 2 >= NNORMAL,
                      "only %lu of %d sleep resumes under a millisecond",
                      (unsigned long)below, NNORMAL);
        }
    }

    /* A cancel ends a wait too: one more Normal resume. */
    uint64_t const before = sum(l->resume[no]);
    tasks[0]->user_code = victim_fn;
    tasks[0]->priority.cpu = monad_async_priority_normal;
    CHECK_RESULT(monad_async_task_attach(ex, tasks[0], NULL));
    struct timespec const zero = {0, 0};
    monad_async_result r = monad_async_executor_run(ex, 1, &zero);
    CHECK(r.error == 0 || r.error == ETIME);
    CHECK_ERROR(monad_async_task_cancel(ex, tasks[0]), EAGAIN);
    (void)test_run_until_detached(ex, tasks[0], 10000);
    CHECK_EQ(sum(l->resume[no]), before + (track ? 1 : 0));

    for (int i = 0; i < n; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

int main(void)
{
    test_watchdog(120, "latency_histogram");
    scenario(0, true);
    scenario(0, false);
    if (!test_skip_ring_part("histograms on an executor with a ring")) {
        scenario(16, true);
        scenario(16, false);
    }
    return 0;
}
