/* Idle executors spin briefly, then sleep, and are woken when work
 * arrives: with nothing to do for 200 ms a pool's threads use almost no
 * CPU time; a task submitted to a sleeping pool starts promptly (the idle
 * period is set to 10 s, so a lost wake-up would show as a start seconds
 * late), with the default spin and with none; a run with nothing to do
 * returns 0 after the idle period; the busy, idle and sleep counters move.
 * Header contract: dispatcher.h (spin_ns, idle_ns, NO_SPIN, the executor
 * counters, run's "waited for the dispatcher's idle period (value 0)"). */
#include "dispatcher_common.h"

#include <time.h>

static _Atomic uint64_t started_at;

static monad_async_result stamp_task(monad_async_task task)
{
    (void)task;
    atomic_store(&started_at, test_now_ns());
    /* A little work, so busy time shows. */
    uint64_t const until = test_now_ns() + 200000;
    while (test_now_ns() < until) {
    }
    return monad_async_make_success(0);
}

static uint64_t thread_cpu_ns(pthread_t t)
{
    clockid_t clock;
    CHECK_EQ(pthread_getcpuclockid(t, &clock), 0);
    struct timespec ts;
    CHECK_EQ(clock_gettime(clock, &ts), 0);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(void const *a, void const *b)
{
    uint64_t const x = *(uint64_t const *)a, y = *(uint64_t const *)b;
    return x < y ? -1 : x > y;
}

static void sleeps_and_wakes(uint32_t flags, char const *what)
{
    struct monad_async_work_dispatcher_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.flags = flags;
    attr.idle_ns = 10000000000ull; /* 10 s: only a wake-up ends a sleep */
    monad_async_work_dispatcher wd = NULL;
    CHECK_RESULT(monad_async_work_dispatcher_create(&wd, &attr));
    struct test_pool pool;
    test_pool_start(&pool, wd, 2, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_NONE);
    monad_async_task t =
        test_make_work(sw, stamp_task, monad_async_priority_normal, NULL);

    /* Let them settle into sleep, then watch them idle. */
    struct monad_async_work_dispatcher_counters c;
    do {
        test_sleep_ns(1000000);
        CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    } while (c.executors_idle != 2);
    test_sleep_ns(10000000);
    uint64_t cpu0[2], cpu1[2];
    for (int i = 0; i < 2; i++) {
        cpu0[i] = thread_cpu_ns(pool.threads[i]);
    }
    test_sleep_ns(200000000);
    for (int i = 0; i < 2; i++) {
        cpu1[i] = thread_cpu_ns(pool.threads[i]);
        CHECK_MSG(cpu1[i] - cpu0[i] < 20000000ull,
                  "%s: idle executor thread %d used %.1f ms of CPU in 200 ms",
                  what, i, (double)(cpu1[i] - cpu0[i]) / 1e6);
    }
    for (int i = 0; i < 2; i++) {
        struct monad_async_work_dispatcher_executor_counters ec;
        CHECK_RESULT(monad_async_work_dispatcher_executor_read_counters(
            pool.ex[i], &ec));
        CHECK_GE(ec.sleeps, 1);
        CHECK_GT(ec.idle_ticks, 0);
    }

    /* Wake-ups: each submission to a sleeping pool starts promptly. */
    enum { ROUNDS = 40 };
    uint64_t latency[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        do {
            test_sleep_ns(2000000);
            CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
        } while (c.executors_idle != 2);
        atomic_store(&started_at, 0);
        uint64_t const t0 = test_now_ns();
        test_submit1(wd, t);
        CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));
        latency[k] = atomic_load(&started_at) - t0;
        CHECK_MSG(latency[k] < 1000000000ull,
                  "%s: a task submitted to a sleeping pool started after "
                  "%.1f ms (lost wake-up?)",
                  what, (double)latency[k] / 1e6);
    }
    qsort(latency, ROUNDS, sizeof(latency[0]), cmp_u64);
    test_note("%s: submit to start on a sleeping pool: median %.1f us, max "
              "%.1f us",
              what, (double)latency[ROUNDS / 2] / 1e3,
              (double)latency[ROUNDS - 1] / 1e3);
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_GT(c.busy_ticks, 0);
    CHECK_GT(c.idle_ticks, 0);
    CHECK_EQ(c.executed, ROUNDS);

    test_pool_shutdown(&pool);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

/* A run with nothing to do returns 0 once the idle period has passed. */
static void idle_period(void)
{
    struct monad_async_work_dispatcher_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.idle_ns = 20000000; /* 20 ms */
    monad_async_work_dispatcher wd = NULL;
    CHECK_RESULT(monad_async_work_dispatcher_create(&wd, &attr));
    monad_async_work_dispatcher_executor ex = NULL;
    CHECK_RESULT(monad_async_work_dispatcher_executor_create(&ex, wd, NULL));
    uint64_t const t0 = test_now_ns();
    monad_async_result const r = monad_async_work_dispatcher_executor_run(ex);
    uint64_t const took = test_now_ns() - t0;
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);
    CHECK_GE(took, 20000000ull);
    CHECK_LT(took, 5000000000ull);
    struct monad_async_work_dispatcher_executor_counters ec;
    CHECK_RESULT(monad_async_work_dispatcher_executor_read_counters(ex, &ec));
    CHECK_EQ(ec.items, 0);
    CHECK_EQ(ec.sleeps, 1);
    CHECK_RESULT(monad_async_work_dispatcher_executor_destroy(ex));
    CHECK_RESULT(monad_async_work_dispatcher_destroy(wd));
}

int main(void)
{
    test_watchdog(120, "dispatcher_idle");
    sleeps_and_wakes(0, "default spin");
    sleeps_and_wakes(MONAD_ASYNC_WORK_DISPATCHER_FLAG_NO_SPIN, "no spin");
    idle_period();
    printf("dispatcher_idle: ok\n");
    return 0;
}
