/* monad_async_task_suspend_for_duration: sleeps at least its duration (with
 * a generous upper bound); several sleepers wake in deadline order, not
 * attach order; a sleeping task does not hold up runnable ones; a run with
 * a NULL timeout waits for the next timer; a run with a timeout shorter
 * than the next timer gives ETIME; sleep 0 returns promptly. On a
 * compute-only executor (entries 0) and one with a ring (entries 64), with
 * each stackful switcher.
 * Header contract: task.h (monad_async_task_suspend_for_duration: "suspend
 * for at least ns nanoseconds"), executor.h (tasks_timed, run). */
#include "test_common.h"

#include <sys/wait.h>

static uint64_t const MS = 1000000ull;
static uint64_t const SLACK = 2000ull * 1000000ull; /* generous: 2 s */

struct sleeper
{
    uint64_t ns;       /* how long to sleep */
    int repeats;       /* how many sleeps */
    uint64_t start, end;
    int err;
    int woke_order;
};

static int wake_counter;

static monad_async_result sleep_fn(monad_async_task task)
{
    struct sleeper *s = (struct sleeper *)task->user_ptr;
    s->start = test_now_ns();
    for (int i = 0; i < s->repeats; i++) {
        uint64_t const t0 = test_now_ns();
        monad_async_result r = monad_async_task_suspend_for_duration(task, s->ns);
        if (r.error != 0) {
            s->err = r.error;
            return r;
        }
        uint64_t const el = test_now_ns() - t0;
        CHECK_MSG(el >= s->ns,
                  "slept %" PRIu64 " ns of CLOCK_MONOTONIC, asked for %" PRIu64
                  " (%" PRIu64 " ns early; ticks_per_second %" PRIdPTR ")",
                  el, s->ns, s->ns - el, monad_async_ticks_per_second().value);
    }
    s->end = test_now_ns();
    s->woke_order = wake_counter++;
    return monad_async_make_success(0);
}

/* Runs until all of `tasks` are detached, with NULL-timeout runs (the
 * executor must wait for its timers itself). */
static void run_all_null(monad_async_executor ex, monad_async_task *tasks,
                         int n)
{
    uint64_t const deadline = test_now_ns() + 20000 * MS;
    for (;;) {
        int any = 0;
        for (int i = 0; i < n; i++) {
            any |= test_task_attached(tasks[i]);
        }
        if (!any) {
            return;
        }
        CHECK_MSG(test_now_ns() < deadline, "sleepers still attached after "
                  "20 s");
        monad_async_result r = monad_async_executor_run(ex, 16, NULL);
        CHECK_RESULT(r);
    }
}

static void single(monad_async_executor ex, monad_async_context_switcher sw)
{
    static uint64_t const durations[] = {20 * MS, 1 * MS, 50 * MS, 100000};
    monad_async_task t = test_make_task(sw, 0);
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        struct sleeper s = {durations[i], 1, 0, 0, 0, 0};
        t->user_code = sleep_fn;
        t->user_ptr = &s;
        uint64_t const t0 = test_now_ns();
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        /* launch: the task suspends into the timer list */
        struct timespec const zero = {0, 0};
        monad_async_result r = monad_async_executor_run(ex, 1, &zero);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 1);
        CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
        CHECK_EQ(ex->tasks_timed, 1);
        CHECK_EQ(t->suspensions, 1);
        run_all_null(ex, &t, 1);
        uint64_t const el = test_now_ns() - t0;
        CHECK_RESULT(t->result);
        CHECK_GE(s.end - s.start, durations[i]);
        CHECK_MSG(el < durations[i] + SLACK,
                  "a %" PRIu64 " ns sleep took %" PRIu64 " ns", durations[i],
                  el);
        CHECK_EQ(ex->tasks_timed, 0);
    }
    /* Repeated sleeps by one task add up. */
    struct sleeper s = {5 * MS, 5, 0, 0, 0, 0};
    t->user_ptr = &s;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    run_all_null(ex, &t, 1);
    CHECK_RESULT(t->result);
    CHECK_GE(s.end - s.start, 25 * MS);
    CHECK_EQ(t->suspensions, 5);
    /* Sleep 0 succeeds and returns promptly. */
    struct sleeper z = {0, 3, 0, 0, 0, 0};
    t->user_ptr = &z;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    run_all_null(ex, &t, 1);
    CHECK_RESULT(t->result);
    CHECK_LT(z.end - z.start, SLACK);
    CHECK_RESULT(monad_async_task_destroy(t));
}

/* Five sleepers attached in an order unrelated to their durations wake in
 * deadline order. */
static void ordered(monad_async_executor ex, monad_async_context_switcher sw)
{
    static uint64_t const ms[5] = {50, 10, 40, 20, 30};
    static int const want_order[5] = {4, 0, 3, 1, 2};
    monad_async_task t[5];
    struct sleeper s[5];
    wake_counter = 0;
    for (int i = 0; i < 5; i++) {
        t[i] = test_make_task(sw, 0);
        memset(&s[i], 0, sizeof(s[i]));
        s[i].ns = ms[i] * MS;
        s[i].repeats = 1;
        t[i]->user_code = sleep_fn;
        t[i]->user_ptr = &s[i];
        /* One priority for all: were several to expire together (a
         * preempted executor), their run order would follow priority, as
         * it must, and not show the timer order. */
        t[i]->priority.cpu = monad_async_priority_normal;
        CHECK_RESULT(monad_async_task_attach(ex, t[i], NULL));
    }
    uint64_t const t0 = test_now_ns();
    run_all_null(ex, t, 5);
    uint64_t const el = test_now_ns() - t0;
    /* Deadlines count from each sleeper's own start, which a loaded
     * machine can spread out: so compare each pair by its actual deadline
     * (start + duration), where those are clearly apart (5 ms). On an idle
     * machine that is exactly want_order. */
    int exact = 1;
    for (int i = 0; i < 5; i++) {
        CHECK_RESULT(t[i]->result);
        CHECK_GE(s[i].end - s[i].start, ms[i] * MS);
        exact &= s[i].woke_order == want_order[i];
        for (int j = 0; j < 5; j++) {
            uint64_t const di = s[i].start + ms[i] * MS;
            uint64_t const dj = s[j].start + ms[j] * MS;
            if (di + 5 * MS < dj) {
                CHECK_MSG(s[i].woke_order < s[j].woke_order,
                          "sleeper of %" PRIu64 " ms (deadline %.3f ms after "
                          "the first start) woke after the sleeper of %" PRIu64
                          " ms (deadline %.3f ms)",
                          ms[i], (double)(di - t0) / 1e6, ms[j],
                          (double)(dj - t0) / 1e6);
            }
        }
    }
    if (!exact) {
        test_note("sleepers woke in deadline order, but their starts were "
                  "spread out (loaded machine) so not in duration order");
    }
    for (int i = 0; i < 5; i++) {
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
    CHECK_LT(el, 50 * MS + SLACK);
}

/* A sleeping task does not hold up runnable work; a run whose timeout is
 * shorter than the next timer gives ETIME; then the timer fires. */
static int quick_ran;

static monad_async_result quick_fn(monad_async_task task)
{
    (void)task;
    quick_ran++;
    return monad_async_make_success(0);
}

static void not_blocking(monad_async_executor ex,
                         monad_async_context_switcher sw)
{
    monad_async_task sl = test_make_task(sw, 0);
    monad_async_task q = test_make_task(sw, 0);
    struct sleeper s = {300 * MS, 1, 0, 0, 0, 0};
    sl->user_code = sleep_fn;
    sl->user_ptr = &s;
    sl->priority.cpu = monad_async_priority_high;
    q->user_code = quick_fn;
    q->priority.cpu = monad_async_priority_low;
    quick_ran = 0;
    uint64_t const t0 = test_now_ns();
    CHECK_RESULT(monad_async_task_attach(ex, sl, NULL));
    struct timespec const zero = {0, 0};
    CHECK_EQ(monad_async_executor_run(ex, 10, &zero).value, 1);
    for (int i = 0; i < 100; i++) {
        CHECK_RESULT(monad_async_task_attach(ex, q, NULL));
        monad_async_result r = monad_async_executor_run(ex, 10, &zero);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 1);
    }
    CHECK_EQ(quick_ran, 100);
    CHECK(test_task_attached(sl));
    /* nothing runnable, timer up to 300 ms away: a 20 ms run times out
     * (if the machine was so slow that too little of the 300 ms is left,
     * the check cannot be made this time: say so) */
    uint64_t const used = test_now_ns() - t0;
    if (used < 200 * MS) {
        struct timespec const twenty = {0, (long)(20 * MS)};
        uint64_t const w0 = test_now_ns();
        CHECK_ERROR(monad_async_executor_run(ex, 10, &twenty), ETIME);
        CHECK_GE(test_now_ns() - w0, 20 * MS);
        CHECK(test_task_attached(sl));
    }
    else {
        test_note("machine too slow: %" PRIu64 " ms of a 300 ms sleep gone "
                  "before the short-timeout check; it was skipped this time",
                  used / MS);
    }
    /* a 10 s run returns as soon as the timer fires */
    struct timespec const ten_s = {10, 0};
    monad_async_result r = monad_async_executor_run(ex, 10, &ten_s);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    uint64_t const el = test_now_ns() - t0;
    CHECK(!test_task_attached(sl));
    CHECK_GE(el, 300 * MS);
    CHECK_LT(el, 300 * MS + SLACK);
    CHECK_RESULT(monad_async_task_destroy(sl));
    CHECK_RESULT(monad_async_task_destroy(q));
}

/* Sleepers woken while the executor is busy (another task keeps
 * yielding, so the executor never waits in the kernel and the timer fires
 * by comparing the tick counter with the deadline): each sleep still lasts
 * at least its duration by CLOCK_MONOTONIC. */
static int busy_stop;

static monad_async_result busy_fn(monad_async_task task)
{
    uint64_t const give_up = test_now_ns() + 10000 * MS;
    while (!busy_stop && test_now_ns() < give_up) {
        CHECK_RESULT(monad_async_task_yield(task));
    }
    return monad_async_make_success(0);
}

static void while_busy(monad_async_executor ex, monad_async_context_switcher sw)
{
    monad_async_task busy = test_make_task(sw, 0);
    monad_async_task sl = test_make_task(sw, 0);
    busy->user_code = busy_fn;
    busy_stop = 0;
    CHECK_RESULT(monad_async_task_attach(ex, busy, NULL));
    static uint64_t const durations[] = {5 * MS, 1 * MS, 10 * MS, 200000,
                                         3 * MS};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
            struct sleeper s = {durations[i], 2, 0, 0, 0, 0};
            sl->user_code = sleep_fn;
            sl->user_ptr = &s;
            sl->priority.cpu = round ? monad_async_priority_high
                                     : monad_async_priority_normal;
            CHECK_RESULT(monad_async_task_attach(ex, sl, NULL));
            test_run_until_detached(ex, sl, 5000);
            CHECK_RESULT(sl->result); /* sleep_fn checked each sleep */
            CHECK_GE(s.end - s.start, 2 * durations[i]);
        }
    }
    busy_stop = 1;
    test_run_until_detached(ex, busy, 5000);
    CHECK_RESULT(monad_async_task_destroy(busy));
    CHECK_RESULT(monad_async_task_destroy(sl));
}

/* The same in fresh processes: each calibrates the tick counter anew (the
 * figure is cached per process), so a sleep that comes out short whenever
 * the calibration errs low shows up in some of them, not by luck of one
 * calibration. Must run before anything in this process calibrates. */
static void fresh_calibrations(void)
{
    int const children = 8;
    int failed = 0;
    for (int c = 0; c < children; c++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            /* One 100 ms sleep beside a task that keeps yielding: long
             * enough that a calibration error of a few ppm is far more
             * than the ~100 ns between the executor's timer checks. */
            monad_async_executor ex = test_make_executor(0, 0);
            monad_async_context_switcher sw =
                test_make_switcher(TEST_SWITCHER_ASM);
            monad_async_task busy = test_make_task(sw, 0);
            monad_async_task sl = test_make_task(sw, 0);
            busy->user_code = busy_fn;
            busy_stop = 0;
            CHECK_RESULT(monad_async_task_attach(ex, busy, NULL));
            struct sleeper sp = {100 * MS, 1, 0, 0, 0, 0};
            sl->user_code = sleep_fn; /* checks the sleep's length */
            sl->user_ptr = &sp;
            CHECK_RESULT(monad_async_task_attach(ex, sl, NULL));
            test_run_until_detached(ex, sl, 5000);
            CHECK_RESULT(sl->result);
            busy_stop = 1;
            test_run_until_detached(ex, busy, 5000);
            CHECK_RESULT(monad_async_task_destroy(busy));
            CHECK_RESULT(monad_async_task_destroy(sl));
            CHECK_RESULT(monad_async_context_switcher_destroy(sw));
            CHECK_RESULT(monad_async_executor_destroy(ex));
            exit(0);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failed++;
        }
    }
    CHECK_MSG(failed == 0,
              "%d of %d fresh processes (each with its own tick "
              "calibration) saw a sleep end early (see above)",
              failed, children);
    printf("ok   sleeps while busy in %d freshly calibrated processes\n",
           children);
}

int main(void)
{
    test_watchdog(200, "sleep");
    fresh_calibrations();
    static enum test_switcher_kind const kinds[3] = {
        TEST_SWITCHER_SJLJ, TEST_SWITCHER_ASM, TEST_SWITCHER_ASM_NO_FP};
    for (unsigned entries = 0; entries <= 64; entries += 64) {
        if (entries && test_skip_ring_part("sleeps on a ring executor")) {
            continue;
        }
        monad_async_executor ex = test_make_executor(entries, 0);
        for (int k = 0; k < 3; k++) {
            monad_async_context_switcher sw = test_make_switcher(kinds[k]);
            single(ex, sw);
            ordered(ex, sw);
            not_blocking(ex, sw);
            while_busy(ex, sw);
            CHECK_RESULT(monad_async_context_switcher_destroy(sw));
            printf("ok   %s executor, %s switcher\n",
                   entries ? "ring" : "compute-only",
                   test_switcher_names[kinds[k]]);
        }
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }
    printf("sleep: ok\n");
    return 0;
}
