/* monad_async_executor_run's timeout: {0, 0} with no work gives ETIME at
 * once; a short timeout gives ETIME after at least that long; a NULL
 * timeout waits until monad_async_executor_wake from another thread (which
 * returns success with 0 items); a wake before the run makes the next wait
 * return at once; work arriving from another thread during a timed wait
 * ends the wait early. For a compute-only executor and one with a ring.
 * Header contract: executor.h (monad_async_executor_run,
 * monad_async_executor_wake). */
#include "test_common.h"

#include <pthread.h>

static uint64_t const MS = 1000000ull;

struct delayed
{
    monad_async_executor ex;
    monad_async_task task; /* attach this, or NULL to wake */
    uint64_t delay_ns;
    uint64_t done_at;
    int error;
};

static void *delayed_main(void *arg)
{
    struct delayed *d = (struct delayed *)arg;
    test_sleep_ns(d->delay_ns);
    d->done_at = test_now_ns();
    if (d->task != NULL) {
        d->error = monad_async_task_attach(d->ex, d->task, NULL).error;
    }
    else {
        d->error = monad_async_executor_wake(d->ex).error;
    }
    return NULL;
}

static int ran;

static monad_async_result count_fn(monad_async_task task)
{
    (void)task;
    ran++;
    return monad_async_make_success(0);
}

static void check_zero_timeout(monad_async_executor ex)
{
    struct timespec const zero = {0, 0};
    for (int i = 0; i < 100; i++) {
        uint64_t const t0 = test_now_ns();
        monad_async_result r = monad_async_executor_run(ex, 1, &zero);
        uint64_t const el = test_now_ns() - t0;
        CHECK_ERROR(r, ETIME);
        CHECK_MSG(el < 1000 * MS, "run with {0,0} took %" PRIu64 " ns",
                  el);
    }
    /* {0, 0} with work: the work is done, no ETIME. */
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_NONE);
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = count_fn;
    ran = 0;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    monad_async_result r = monad_async_executor_run(ex, 1, &zero);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK_EQ(ran, 1);
    CHECK_ERROR(monad_async_executor_run(ex, 1, &zero), ETIME);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

static void check_short_timeout(monad_async_executor ex)
{
    static uint64_t const waits_ms[] = {20, 1, 35};
    for (size_t i = 0; i < sizeof(waits_ms) / sizeof(waits_ms[0]); i++) {
        uint64_t const w = waits_ms[i] * MS;
        struct timespec const ts = {0, (long)w};
        uint64_t const t0 = test_now_ns();
        monad_async_result r = monad_async_executor_run(ex, 10, &ts);
        uint64_t const el = test_now_ns() - t0;
        CHECK_ERROR(r, ETIME);
        CHECK_MSG(el >= w, "run with a %" PRIu64 " ms timeout returned "
                  "after only %" PRIu64 " ns", waits_ms[i], el);
        CHECK_MSG(el < w + 2000 * MS, "run with a %" PRIu64 " ms timeout "
                  "returned after %" PRIu64 " ns", waits_ms[i], el);
    }
    /* Seconds and nanoseconds both count: {1, 0} waits a second. */
    struct timespec const one_s = {1, 0};
    uint64_t const t0 = test_now_ns();
    CHECK_ERROR(monad_async_executor_run(ex, 1, &one_s), ETIME);
    uint64_t const el = test_now_ns() - t0;
    CHECK_MSG(el >= 1000 * MS && el < 3000 * MS,
              "run with a {1, 0} timeout took %" PRIu64 " ns", el);
}

static void check_wake(monad_async_executor ex)
{
    /* Woken while waiting with a NULL timeout. */
    for (int i = 0; i < 5; i++) {
        struct delayed d = {ex, NULL, 30 * MS, 0, 0};
        pthread_t th;
        uint64_t const t0 = test_now_ns();
        CHECK_EQ(pthread_create(&th, NULL, delayed_main, &d), 0);
        monad_async_result r = monad_async_executor_run(ex, 1, NULL);
        uint64_t const t1 = test_now_ns();
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_EQ(d.error, 0);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 0);
        CHECK_MSG(t1 - t0 >= 30 * MS,
                  "a NULL-timeout run returned after %" PRIu64
                  " ns, before the wake (30 ms)", t1 - t0);
        CHECK_MSG(t1 - d.done_at < 1000 * MS,
                  "a NULL-timeout run returned %" PRIu64
                  " ns after the wake", t1 - d.done_at);
    }
    /* Woken while waiting with a long timeout: returns early, success 0. */
    {
        struct delayed d = {ex, NULL, 20 * MS, 0, 0};
        struct timespec const long_ts = {10, 0};
        pthread_t th;
        uint64_t const t0 = test_now_ns();
        CHECK_EQ(pthread_create(&th, NULL, delayed_main, &d), 0);
        monad_async_result r = monad_async_executor_run(ex, 1, &long_ts);
        uint64_t const t1 = test_now_ns();
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 0);
        CHECK_MSG(t1 - t0 < 5000 * MS, "woken run took %" PRIu64 " ns",
                  t1 - t0);
    }
    /* A wake with no run waiting makes the next wait return at once. */
    {
        CHECK_RESULT(monad_async_executor_wake(ex));
        uint64_t const t0 = test_now_ns();
        monad_async_result r = monad_async_executor_run(ex, 1, NULL);
        uint64_t const t1 = test_now_ns();
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 0);
        CHECK_MSG(t1 - t0 < 1000 * MS, "run after an earlier wake took %"
                  PRIu64 " ns", t1 - t0);
        /* ... and the wake was consumed: the next run waits again. */
        struct timespec const ts = {0, (long)(20 * MS)};
        CHECK_ERROR(monad_async_executor_run(ex, 1, &ts), ETIME);
    }
    /* Wake from the owning thread itself also counts. */
    {
        CHECK_RESULT(monad_async_executor_wake(ex));
        CHECK_RESULT(monad_async_executor_wake(ex));
        monad_async_result r = monad_async_executor_run(ex, 1, NULL);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 0);
        /* Several wakes before a wait may coalesce into one, or not; either
         * way a {0, 0} run now returns at once. */
        struct timespec const zero = {0, 0};
        monad_async_result r2 = monad_async_executor_run(ex, 1, &zero);
        CHECK(r2.error == ETIME || (r2.error == 0 && r2.value == 0));
    }
}

static void check_work_ends_wait(monad_async_executor ex)
{
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_SJLJ);
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = count_fn;
    ran = 0;
    struct delayed d = {ex, t, 30 * MS, 0, 0};
    struct timespec const long_ts = {10, 0};
    pthread_t th;
    uint64_t const t0 = test_now_ns();
    CHECK_EQ(pthread_create(&th, NULL, delayed_main, &d), 0);
    int items = 0;
    while (ran == 0) {
        monad_async_result r = monad_async_executor_run(ex, 5, &long_ts);
        CHECK_RESULT(r);
        items += (int)r.value;
        CHECK_MSG(test_now_ns() - t0 < 5000 * MS,
                  "attach from another thread did not end a 10 s wait");
    }
    uint64_t const t1 = test_now_ns();
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(d.error, 0);
    CHECK_EQ(items, 1);
    CHECK_MSG(t1 - d.done_at < 1000 * MS,
              "task ran %" PRIu64 " ns after its cross-thread attach",
              t1 - d.done_at);
    CHECK(!test_task_attached(t));
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

int main(void)
{
    test_watchdog(60, "run_timeout (a wait that never returned?)");
    for (unsigned entries = 0; entries <= 64; entries += 64) {
        monad_async_executor ex = test_make_executor(entries, 0);
        check_zero_timeout(ex);
        check_short_timeout(ex);
        check_wake(ex);
        check_work_ends_wait(ex);
        CHECK_RESULT(monad_async_executor_destroy(ex));
        printf("%s executor: ok\n", entries ? "ring" : "compute-only");
    }
    printf("run_timeout: ok\n");
    return 0;
}
