/* Tasks run strictly by CPU priority (high, then normal, then low), FIFO
 * within a level; a yielding task goes to the back of its own level's queue;
 * a higher-priority task that becomes runnable (attached from inside a
 * task, or woken from a sleep) runs before lower ones.
 * Header contract: priority.h ("an executor always picks the highest level,
 * and within one level the task that became runnable first"), task.h
 * (monad_async_task_yield). */
#include "test_common.h"

#define LOG_MAX 256

static int order_log[LOG_MAX];
static size_t order_len;

static void log_event(int ev)
{
    CHECK_LT(order_len, LOG_MAX);
    order_log[order_len++] = ev;
}

static void check_log(char const *what, int const *want, size_t n)
{
    int ok = order_len == n;
    for (size_t i = 0; ok && i < n; i++) {
        ok = order_log[i] == want[i];
    }
    if (!ok) {
        fprintf(stderr, "%s: execution order wrong\n  want:", what);
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr, " %d", want[i]);
        }
        fprintf(stderr, "\n  got: ");
        for (size_t i = 0; i < order_len; i++) {
            fprintf(stderr, " %d", order_log[i]);
        }
        fprintf(stderr, "\n");
        TEST_FAIL("%s: order differs", what);
    }
}

struct tinfo
{
    int id;
    int yields;           /* how many times to yield */
    monad_async_executor ex;
    /* For the "attach from inside" scenario: tasks to attach on the first
     * slice, before yielding. */
    monad_async_task to_attach[2];
};

/* Logs id*10 + slice for each slice; yields `yields` times. */
static monad_async_result logging_task(monad_async_task task)
{
    struct tinfo *ti = (struct tinfo *)task->user_ptr;
    CHECK((test_task_state(task) & MONAD_ASYNC_TASK_STATE_RUNNING) != 0);
    for (int i = 0; i <= ti->yields; i++) {
        log_event(ti->id * 10 + i);
        if (i == 0) {
            for (int k = 0; k < 2; k++) {
                if (ti->to_attach[k] != NULL) {
                    CHECK_RESULT(monad_async_task_attach(
                        ti->ex, ti->to_attach[k], NULL));
                }
            }
        }
        if (i < ti->yields) {
            CHECK_RESULT(monad_async_task_yield(task));
        }
    }
    return monad_async_make_success(ti->id);
}

static void setup(monad_async_task t, struct tinfo *ti, int id,
                  monad_async_priority prio, int yields,
                  monad_async_executor ex)
{
    memset(ti, 0, sizeof(*ti));
    ti->id = id;
    ti->yields = yields;
    ti->ex = ex;
    t->priority.cpu = prio;
    t->priority.io = monad_async_priority_normal;
    t->user_code = logging_task;
    t->user_ptr = ti;
    t->user_on_exit = NULL;
}

static void run_all(monad_async_executor ex, size_t max_items,
                    monad_async_task *tasks, size_t n)
{
    uint64_t const deadline = test_now_ns() + 10ull * 1000000000ull;
    struct timespec const zero = {0, 0};
    for (;;) {
        int any = 0;
        for (size_t i = 0; i < n; i++) {
            any |= test_task_attached(tasks[i]);
        }
        if (!any) {
            return;
        }
        CHECK_MSG(test_now_ns() < deadline, "tasks did not finish in 10 s");
        monad_async_result r = monad_async_executor_run(ex, max_items, &zero);
        if (r.error == ETIME) {
            continue;
        }
        CHECK_RESULT(r);
        CHECK_LE((size_t)r.value, max_items);
    }
}

/* Scenario A: nine run-to-completion tasks attached interleaved
 * low, normal, high, low, normal, high, ... run high first, FIFO within a
 * level. Run once with a large max_items, once one item per run. */
static void scenario_interleaved(monad_async_executor ex,
                                 monad_async_context_switcher sw,
                                 char const *swname)
{
    monad_async_task tasks[9];
    struct tinfo ti[9];
    for (int i = 0; i < 9; i++) {
        tasks[i] = test_make_task(sw, 0);
    }
    for (int round = 0; round < 2; round++) {
        order_len = 0;
        /* ids: low 1..3, normal 4..6, high 7..9, attached interleaved */
        static monad_async_priority const prio[3] = {
            monad_async_priority_low, monad_async_priority_normal,
            monad_async_priority_high};
        for (int i = 0; i < 9; i++) {
            int level = i % 3;  /* low, normal, high, low, ... */
            int nth = i / 3;
            setup(tasks[i], &ti[i], 1 + level * 3 + nth, prio[level], 0, ex);
            CHECK_RESULT(monad_async_task_attach(ex, tasks[i], NULL));
            uint32_t st = test_task_state(tasks[i]);
            CHECK((st & MONAD_ASYNC_TASK_STATE_ATTACHED) != 0);
            CHECK((st & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH) != 0);
            CHECK(atomic_load(&tasks[i]->current_executor) == ex);
        }
        CHECK_EQ(ex->tasks_runnable[monad_async_priority_high], 3);
        CHECK_EQ(ex->tasks_runnable[monad_async_priority_normal], 3);
        CHECK_EQ(ex->tasks_runnable[monad_async_priority_low], 3);
        CHECK_EQ(ex->tasks_attached, 9);
        run_all(ex, round == 0 ? 1000 : 1, tasks, 9);
        static int const want[9] = {70, 80, 90, 40, 50, 60, 10, 20, 30};
        char what[128];
        snprintf(what, sizeof(what), "interleaved attach, %s, max_items %d",
                 swname, round == 0 ? 1000 : 1);
        check_log(what, want, 9);
        for (int i = 0; i < 9; i++) {
            CHECK_RESULT(tasks[i]->result);
            CHECK_EQ(tasks[i]->result.value, ti[i].id);
            CHECK((test_task_state(tasks[i]) &
                   MONAD_ASYNC_TASK_STATE_EXITED) != 0);
        }
        CHECK_EQ(ex->tasks_attached, 0);
        CHECK_EQ(ex->tasks_runnable[0] + ex->tasks_runnable[1] +
                     ex->tasks_runnable[2],
                 0);
    }
    /* Same tasks, priorities permuted between pieces of work: a task's
     * priority is read at each attach. */
    order_len = 0;
    for (int i = 0; i < 9; i++) {
        /* i = 0..8: high for i%3==0, low for i%3==1, normal for i%3==2 */
        monad_async_priority p = i % 3 == 0   ? monad_async_priority_high
                                 : i % 3 == 1 ? monad_async_priority_low
                                              : monad_async_priority_normal;
        setup(tasks[i], &ti[i], i + 1, p, 0, ex);
        CHECK_RESULT(monad_async_task_attach(ex, tasks[i], NULL));
    }
    run_all(ex, 1000, tasks, 9);
    static int const want2[9] = {10, 40, 70, 30, 60, 90, 20, 50, 80};
    check_log("reused tasks with new priorities", want2, 9);
    for (int i = 0; i < 9; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
}

/* Scenario B: yields. Attach order L_a, N_a, H, N_b, L_b, N_c; every task
 * yields twice. High runs all its slices first (it is alone at its level),
 * then normal tasks round-robin, then low tasks round-robin. */
static void scenario_yields(monad_async_executor ex,
                            monad_async_context_switcher sw,
                            char const *swname, size_t max_items)
{
    monad_async_task tasks[6];
    struct tinfo ti[6];
    /* ids: L_a=1 N_a=2 H=3 N_b=4 L_b=5 N_c=6 */
    static monad_async_priority const prio[6] = {
        monad_async_priority_low,  monad_async_priority_normal,
        monad_async_priority_high, monad_async_priority_normal,
        monad_async_priority_low,  monad_async_priority_normal};
    order_len = 0;
    for (int i = 0; i < 6; i++) {
        tasks[i] = test_make_task(sw, 0);
        setup(tasks[i], &ti[i], i + 1, prio[i], 2, ex);
        CHECK_RESULT(monad_async_task_attach(ex, tasks[i], NULL));
    }
    run_all(ex, max_items, tasks, 6);
    static int const want[18] = {30, 31, 32,                         /* H */
                                 20, 40, 60, 21, 41, 61, 22, 42, 62, /* N */
                                 10, 50, 11, 51, 12, 52};            /* L */
    char what[128];
    snprintf(what, sizeof(what), "yield round-robin, %s, max_items %zu",
             swname, max_items);
    check_log(what, want, 18);
    for (int i = 0; i < 6; i++) {
        CHECK_RESULT(tasks[i]->result);
        CHECK_EQ(tasks[i]->suspensions, 2);
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
}

/* Scenario C: higher-priority work attached from inside a running task
 * runs before the lower-priority task resumes.
 *   L1 (low): logs 10, attaches H (high, id 3) and N (normal, id 4),
 *             yields, logs 11.
 *   L2 (low, attached after L1): logs 20.
 *   N: logs 40, attaches H2 (high, id 5), yields, logs 41.
 *   H, H2: log 30 / 50.
 * Want: 10 30 40 50 41 20 11. */
static void scenario_attach_from_inside(monad_async_executor ex,
                                        monad_async_context_switcher sw,
                                        char const *swname, size_t max_items)
{
    monad_async_task t[5];
    struct tinfo ti[5];
    for (int i = 0; i < 5; i++) {
        t[i] = test_make_task(sw, 0);
    }
    order_len = 0;
    setup(t[0], &ti[0], 1, monad_async_priority_low, 1, ex);  /* L1 */
    setup(t[1], &ti[1], 2, monad_async_priority_low, 0, ex);  /* L2 */
    setup(t[2], &ti[2], 3, monad_async_priority_high, 0, ex); /* H */
    setup(t[3], &ti[3], 4, monad_async_priority_normal, 1, ex); /* N */
    setup(t[4], &ti[4], 5, monad_async_priority_high, 0, ex); /* H2 */
    ti[0].to_attach[0] = t[2];
    ti[0].to_attach[1] = t[3];
    ti[3].to_attach[0] = t[4];
    CHECK_RESULT(monad_async_task_attach(ex, t[0], NULL));
    CHECK_RESULT(monad_async_task_attach(ex, t[1], NULL));
    run_all(ex, max_items, t, 5);
    static int const want[7] = {10, 30, 40, 50, 41, 20, 11};
    char what[128];
    snprintf(what, sizeof(what), "attach from inside a task, %s, max_items %zu",
             swname, max_items);
    check_log(what, want, 7);
    for (int i = 0; i < 5; i++) {
        CHECK_RESULT(t[i]->result);
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
}

/* Scenario D: a high-priority task sleeping 20 ms, and two normal tasks
 * that keep yielding (always runnable). Once H's deadline has passed, the
 * next item must be H's resumption, not another normal slice; and H must
 * not starve while normal work is always runnable. */
static uint64_t d_h_sleep_start;
static uint64_t d_h_resumed_at;
static int d_h_done;
static uint64_t d_normal_slices_after_deadline;
static uint64_t const D_SLEEP_NS = 20ull * 1000000ull;
static uint64_t const D_MARGIN_NS = 20ull * 1000000ull;

static monad_async_result d_high(monad_async_task task)
{
    d_h_sleep_start = test_now_ns();
    CHECK_RESULT(monad_async_task_suspend_for_duration(task, D_SLEEP_NS));
    d_h_resumed_at = test_now_ns();
    CHECK_MSG(d_h_resumed_at - d_h_sleep_start >= D_SLEEP_NS,
              "a %" PRIu64 " ns sleep ended after only %" PRIu64
              " ns of CLOCK_MONOTONIC (%" PRIu64 " ns early; ticks_per_second"
              " %" PRIdPTR "): suspend_for_duration promises at least its "
              "duration",
              D_SLEEP_NS, d_h_resumed_at - d_h_sleep_start,
              D_SLEEP_NS - (d_h_resumed_at - d_h_sleep_start),
              monad_async_ticks_per_second().value);
    d_h_done = 1;
    return monad_async_make_success(0);
}

static monad_async_result d_normal(monad_async_task task)
{
    uint64_t const give_up = test_now_ns() + 5ull * 1000000000ull;
    while (!d_h_done) {
        if (test_now_ns() > give_up) {
            return monad_async_make_failure(ETIMEDOUT);
        }
        CHECK_RESULT(monad_async_task_yield(task));
        if (!d_h_done &&
            test_now_ns() >= d_h_sleep_start + D_SLEEP_NS + D_MARGIN_NS) {
            d_normal_slices_after_deadline++;
        }
    }
    return monad_async_make_success(0);
}

static void scenario_sleeper_wakes_first(monad_async_executor ex,
                                         monad_async_context_switcher sw,
                                         char const *swname, size_t max_items)
{
    monad_async_task h = test_make_task(sw, 0);
    monad_async_task n[2] = {test_make_task(sw, 0), test_make_task(sw, 0)};
    d_h_done = 0;
    d_normal_slices_after_deadline = 0;
    h->priority.cpu = monad_async_priority_high;
    h->user_code = d_high;
    for (int i = 0; i < 2; i++) {
        n[i]->priority.cpu = monad_async_priority_normal;
        n[i]->user_code = d_normal;
    }
    CHECK_RESULT(monad_async_task_attach(ex, h, NULL));
    CHECK_RESULT(monad_async_task_attach(ex, n[0], NULL));
    CHECK_RESULT(monad_async_task_attach(ex, n[1], NULL));
    monad_async_task all[3] = {h, n[0], n[1]};
    run_all(ex, max_items, all, 3);
    CHECK_MSG(d_h_done, "high-priority sleeper never resumed (%s)", swname);
    CHECK_RESULT(h->result);
    CHECK_MSG(n[0]->result.error == 0 && n[1]->result.error == 0,
              "normal tasks gave up waiting for the high-priority sleeper "
              "to resume (starved by always-runnable normal work), %s",
              swname);
    if (max_items == 1) {
        /* One item per run: every run call is a fresh scheduling decision,
         * so once the deadline has passed (plus a margin) H must be the
         * next item. One normal slice is allowed: the executor may have
         * picked it just before the deadline and been preempted before the
         * slice read the clock; the slice after that cannot be excused. */
        CHECK_MSG(d_normal_slices_after_deadline <= 1,
                  "%" PRIu64 " normal-priority slices ran after the "
                  "high-priority sleeper's deadline had passed (+%" PRIu64
                  " ms margin) before it resumed (%s, max_items 1)",
                  d_normal_slices_after_deadline, D_MARGIN_NS / 1000000,
                  swname);
    }
    else if (d_normal_slices_after_deadline != 0) {
        test_note("%s, max_items %zu: %" PRIu64
                  " normal slices ran between the sleeper's deadline and "
                  "its resumption",
                  swname, max_items, d_normal_slices_after_deadline);
    }
    CHECK_RESULT(monad_async_task_destroy(h));
    CHECK_RESULT(monad_async_task_destroy(n[0]));
    CHECK_RESULT(monad_async_task_destroy(n[1]));
}

int main(void)
{
    test_watchdog(120, "priority_order");
    for (unsigned entries = 0; entries <= 64; entries += 64) {
        if (entries && test_skip_ring_part("priority order, ring executor")) {
            continue;
        }
        monad_async_executor ex = test_make_executor(entries, 0);
        for (int k = 0; k < TEST_SWITCHER_COUNT; k++) {
            monad_async_context_switcher sw =
                test_make_switcher((enum test_switcher_kind)k);
            char const *name = test_switcher_names[k];
            scenario_interleaved(ex, sw, name);
            if (k != TEST_SWITCHER_NONE) {
                scenario_yields(ex, sw, name, 1000);
                scenario_yields(ex, sw, name, 1);
                scenario_yields(ex, sw, name, 2);
                scenario_attach_from_inside(ex, sw, name, 1000);
                scenario_attach_from_inside(ex, sw, name, 1);
                scenario_sleeper_wakes_first(ex, sw, name, 1);
                scenario_sleeper_wakes_first(ex, sw, name, 1000);
            }
            CHECK_RESULT(monad_async_context_switcher_destroy(sw));
        }
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }
    printf("priority_order: ok\n");
    return 0;
}
