/* Changing attached work's CPU priority on the executor's own thread
 * (task.h: monad_async_task_set_cpu_priority), on executors with and
 * without a ring, on every stackful switcher:
 *
 *  1. a ready task raised from inside the run overtakes the Normal tasks
 *     queued before it; one lowered goes behind them; a change to the
 *     level it has keeps its place; from outside the run as well;
 *  2. a parked task raised keeps parked (nothing runs it early) and, once
 *     woken, runs at its new level; a sleeping task the same (on a ring
 *     executor its sleep is I/O in flight, counted per level: destroy
 *     asserts the counts come back to zero);
 *  3. a running task changes its own priority: up, it resumes from its
 *     yield before the Normal tasks; down, after them; `priority.cpu`
 *     reads the new level, inside and after the work;
 *  4. stale tokens: after the work's exit and after the task's reuse the
 *     change is refused with ENOENT and changes nothing; an even (no
 *     work) token and a token of work that has not begun, likewise, and
 *     they do not block later changes of the live work;
 *  5. bad input: NULL, priorities out of range, a task never attached.
 */
#include "test_common.h"

#include <stdatomic.h>

#define MAX_ORDER 64

static int order[MAX_ORDER];
static int norder;

static void record(int id)
{
    CHECK_LT(norder, MAX_ORDER);
    order[norder++] = id;
}

static void expect_order(int const *want, int n, char const *what)
{
    if (norder != n || memcmp(order, want, sizeof(int) * (size_t)n) != 0) {
        char got[256] = "";
        char exp[256] = "";
        for (int i = 0; i < norder; i++) {
            snprintf(got + strlen(got), sizeof(got) - strlen(got), " %d", order[i]);
        }
        for (int i = 0; i < n; i++) {
            snprintf(exp + strlen(exp), sizeof(exp) - strlen(exp), " %d", want[i]);
        }
        TEST_FAIL("%s: ran in order [%s ], want [%s ]", what, got, exp);
    }
    norder = 0;
}

/* A task that records its id (user_ptr) once. */
static monad_async_result id_fn(monad_async_task task)
{
    record((int)(intptr_t)task->user_ptr);
    return monad_async_make_success(0);
}

static void attach_prio(monad_async_executor ex, monad_async_task t,
                        monad_async_result (*fn)(monad_async_task), intptr_t id,
                        monad_async_priority p)
{
    t->user_code = fn;
    t->user_ptr = (void *)id;
    t->priority.cpu = p;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
}

static uint64_t token_of(monad_async_task t)
{
    uint64_t tok = 0;
    CHECK_RESULT(monad_async_task_wake_token(t, &tok));
    return tok;
}

static void run_all(monad_async_executor ex)
{
    struct timespec const zero = {0, 0};
    while (ex->tasks_attached != 0) {
        monad_async_result const r = monad_async_executor_run(ex, SIZE_MAX, &zero);
        if (r.error != ETIME) {
            CHECK_RESULT(r);
        }
    }
}

/* ---- 1: ready tasks ---- */

static monad_async_task g_victim[2];
static monad_async_priority g_to[2];

/* Runs first (High): changes the priorities of two queued tasks. */
static monad_async_result changer_fn(monad_async_task task)
{
    record((int)(intptr_t)task->user_ptr);
    for (int i = 0; i < 2; i++) {
        if (g_victim[i] != NULL) {
            CHECK_RESULT(monad_async_task_set_cpu_priority(
                g_victim[i], token_of(g_victim[i]), g_to[i]));
            CHECK_EQ(g_victim[i]->priority.cpu, g_to[i]);
        }
    }
    return monad_async_make_success(0);
}

static void ready_tasks(monad_async_executor ex, monad_async_task *t)
{
    /* Inside the run: 0 (High) raises 4 (Low) to High and lowers 1
     * (Normal) to Low (the back of the Low queue). Want 0, 4, 2, 3, 5, 1. */
    attach_prio(ex, t[0], changer_fn, 0, monad_async_priority_high);
    attach_prio(ex, t[1], id_fn, 1, monad_async_priority_normal);
    attach_prio(ex, t[2], id_fn, 2, monad_async_priority_normal);
    attach_prio(ex, t[3], id_fn, 3, monad_async_priority_normal);
    attach_prio(ex, t[4], id_fn, 4, monad_async_priority_low);
    attach_prio(ex, t[5], id_fn, 5, monad_async_priority_low);
    g_victim[0] = t[4];
    g_to[0] = monad_async_priority_high;
    g_victim[1] = t[1];
    g_to[1] = monad_async_priority_low;
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_normal], 3);
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_low], 2);
    run_all(ex);
    static int const want1[] = {0, 4, 2, 3, 5, 1}; /* 1 behind 5 */
    expect_order(want1, 6, "raised and lowered inside the run");
    CHECK_EQ(t[4]->priority.cpu, monad_async_priority_high); /* kept */

    /* A change to the level it has keeps its place: 0 sets 1 (Normal,
     * first in line) to Normal. Want 0, 1, 2. */
    attach_prio(ex, t[0], changer_fn, 0, monad_async_priority_high);
    attach_prio(ex, t[1], id_fn, 1, monad_async_priority_normal);
    attach_prio(ex, t[2], id_fn, 2, monad_async_priority_normal);
    g_victim[0] = t[1];
    g_to[0] = monad_async_priority_normal;
    g_victim[1] = NULL;
    run_all(ex);
    static int const want2[] = {0, 1, 2};
    expect_order(want2, 3, "same level");

    /* From the owner thread outside the run: at once as well. */
    attach_prio(ex, t[1], id_fn, 1, monad_async_priority_normal);
    attach_prio(ex, t[2], id_fn, 2, monad_async_priority_normal);
    attach_prio(ex, t[3], id_fn, 3, monad_async_priority_low);
    CHECK_RESULT(monad_async_task_set_cpu_priority(
        t[3], token_of(t[3]), monad_async_priority_high));
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_high], 1);
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_low], 0);
    CHECK_RESULT(monad_async_task_set_cpu_priority(
        t[1], token_of(t[1]), monad_async_priority_low));
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_normal], 1);
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_low], 1);
    run_all(ex);
    static int const want3[] = {3, 2, 1};
    expect_order(want3, 3, "outside the run");
}

/* ---- 2: parked and sleeping tasks ---- */

static uint64_t g_park_token;

static monad_async_result park_fn(monad_async_task task)
{
    g_park_token = token_of(task);
    CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
    record((int)(intptr_t)task->user_ptr);
    return monad_async_make_success(0);
}

static _Atomic int g_sleeper_woke;

static monad_async_result sleep_fn(monad_async_task task)
{
    CHECK_RESULT(monad_async_task_suspend_for_duration(task, 20 * 1000 * 1000));
    record((int)(intptr_t)task->user_ptr);
    atomic_store(&g_sleeper_woke, 1);
    return monad_async_make_success(0);
}

/* Normal: yields until the sleeper has run again (at most 2 s). Without
 * the raise the Low sleeper would wait for both to end. */
static monad_async_result busy_fn(monad_async_task task)
{
    uint64_t const give_up = test_now_ns() + 2000ull * 1000 * 1000;
    while (atomic_load(&g_sleeper_woke) == 0 && test_now_ns() < give_up) {
        CHECK_RESULT(monad_async_task_yield(task));
    }
    record((int)(intptr_t)task->user_ptr);
    return monad_async_make_success(0);
}

static monad_async_task g_sleeper;
static uint64_t g_sleeper_token;

static monad_async_result raise_sleeper_fn(monad_async_task task)
{
    (void)task;
    CHECK(test_task_state(g_sleeper) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    CHECK_RESULT(monad_async_task_set_cpu_priority(g_sleeper, g_sleeper_token,
                                                   monad_async_priority_high));
    return monad_async_make_success(0);
}

static void parked_tasks(monad_async_executor ex, monad_async_task *t)
{
    struct timespec const zero = {0, 0};
    attach_prio(ex, t[0], park_fn, 0, monad_async_priority_low);
    monad_async_result r = monad_async_executor_run(ex, SIZE_MAX, &zero);
    CHECK_RESULT(r);
    CHECK(test_task_state(t[0]) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    /* Raised while parked: stays parked, queued nowhere. */
    CHECK_RESULT(monad_async_task_set_cpu_priority(t[0], g_park_token,
                                                   monad_async_priority_high));
    CHECK_EQ(t[0]->priority.cpu, monad_async_priority_high);
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_high], 0);
    r = monad_async_executor_run(ex, SIZE_MAX, &zero);
    CHECK_ERROR(r, ETIME);
    CHECK(test_task_state(t[0]) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    /* Normal tasks queued first; the wake puts it on the High queue. */
    attach_prio(ex, t[1], id_fn, 1, monad_async_priority_normal);
    attach_prio(ex, t[2], id_fn, 2, monad_async_priority_normal);
    r = monad_async_task_wake(t[0], g_park_token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    run_all(ex);
    static int const want[] = {0, 1, 2};
    expect_order(want, 3, "parked, raised, woken");

    /* Sleeping (on a ring executor an io_uring timeout in flight, counted
     * at its level): a Low sleeper raised mid-sleep by a High task while
     * two Normal tasks keep the executor busy runs as soon as its sleep
     * ends, before either of them ends. */
    atomic_store(&g_sleeper_woke, 0);
    g_sleeper = t[0];
    attach_prio(ex, t[0], sleep_fn, 7, monad_async_priority_low);
    r = monad_async_executor_run(ex, 1, &zero); /* it starts sleeping */
    CHECK_RESULT(r);
    CHECK(test_task_state(t[0]) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    g_sleeper_token = token_of(t[0]);
    attach_prio(ex, t[1], busy_fn, 1, monad_async_priority_normal);
    attach_prio(ex, t[2], busy_fn, 2, monad_async_priority_normal);
    attach_prio(ex, t[3], raise_sleeper_fn, 3, monad_async_priority_high);
    run_all(ex);
    /* Either busy task may be first in line when the sleeper is done. */
    if (norder == 3 && order[1] == 2) {
        order[1] = 1;
        order[2] = 2;
    }
    static int const want2[] = {7, 1, 2};
    expect_order(want2, 3, "sleeping, raised");
}

/* ---- 3: the running task itself ---- */

static monad_async_priority g_self_to;
static monad_async_priority g_self_seen;

static monad_async_result self_fn(monad_async_task task)
{
    record(10);
    CHECK_RESULT(
        monad_async_task_set_cpu_priority(task, token_of(task), g_self_to));
    g_self_seen = task->priority.cpu;
    CHECK_RESULT(monad_async_task_yield(task));
    record(11);
    return monad_async_make_success(0);
}

static void running_task(monad_async_executor ex, monad_async_task *t)
{
    /* Normal 10 first in line, then 1 and 2: up to High, it resumes from
     * its yield before them. */
    g_self_to = monad_async_priority_high;
    attach_prio(ex, t[0], self_fn, 0, monad_async_priority_normal);
    attach_prio(ex, t[1], id_fn, 1, monad_async_priority_normal);
    attach_prio(ex, t[2], id_fn, 2, monad_async_priority_normal);
    run_all(ex);
    static int const up[] = {10, 11, 1, 2};
    expect_order(up, 4, "raised itself");
    CHECK_EQ(g_self_seen, monad_async_priority_high);
    CHECK_EQ(t[0]->priority.cpu, monad_async_priority_high); /* kept */

    /* Down to Low: after them (behind the Low task 3 queued before). */
    g_self_to = monad_async_priority_low;
    attach_prio(ex, t[0], self_fn, 0, monad_async_priority_normal);
    attach_prio(ex, t[1], id_fn, 1, monad_async_priority_normal);
    attach_prio(ex, t[3], id_fn, 3, monad_async_priority_low);
    attach_prio(ex, t[2], id_fn, 2, monad_async_priority_normal);
    run_all(ex);
    static int const down[] = {10, 1, 2, 3, 11};
    expect_order(down, 5, "lowered itself");
    CHECK_EQ(g_self_seen, monad_async_priority_low);
}

/* ---- 4, 5: stale tokens, bad input ---- */

static monad_async_result stale_fn(monad_async_task task)
{
    monad_async_task const other = (monad_async_task)task->user_ptr;
    uint64_t const tok = token_of(task);
    /* A token of work that has not begun (the next odd one), and an even
     * one (between two works): refused, and they block nothing. */
    CHECK_ERROR(monad_async_task_set_cpu_priority(task, tok + 2,
                                                  monad_async_priority_high),
                ENOENT);
    CHECK_ERROR(monad_async_task_set_cpu_priority(task, tok + 1,
                                                  monad_async_priority_high),
                ENOENT);
    CHECK_ERROR(monad_async_task_set_cpu_priority(task, 0,
                                                  monad_async_priority_high),
                ENOENT);
    CHECK_EQ(task->priority.cpu, monad_async_priority_normal);
    CHECK_RESULT(
        monad_async_task_set_cpu_priority(task, tok, monad_async_priority_low));
    CHECK_EQ(task->priority.cpu, monad_async_priority_low);
    (void)other;
    return monad_async_make_success(0);
}

static void stale_and_bad(monad_async_executor ex, monad_async_task *t,
                          monad_async_context_switcher sw)
{
    attach_prio(ex, t[0], stale_fn, 0, monad_async_priority_normal);
    uint64_t const old = token_of(t[0]);
    run_all(ex);
    /* After the exit. */
    CHECK_ERROR(
        monad_async_task_set_cpu_priority(t[0], old, monad_async_priority_high),
        ENOENT);
    CHECK_EQ(t[0]->priority.cpu, monad_async_priority_low);
    /* After reuse: the new work keeps the priority it was attached with. */
    attach_prio(ex, t[0], id_fn, 5, monad_async_priority_normal);
    attach_prio(ex, t[1], id_fn, 1, monad_async_priority_normal);
    CHECK_ERROR(
        monad_async_task_set_cpu_priority(t[0], old, monad_async_priority_low),
        ENOENT);
    CHECK_EQ(t[0]->priority.cpu, monad_async_priority_normal);
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_normal], 2);
    run_all(ex);
    static int const want[] = {5, 1};
    expect_order(want, 2, "stale token");

    /* Bad input. */
    uint64_t const tok = old + 2;
    CHECK_ERROR(monad_async_task_set_cpu_priority(NULL, tok,
                                                  monad_async_priority_high),
                EINVAL);
    CHECK_ERROR(monad_async_task_set_cpu_priority(t[0], tok,
                                                  monad_async_priority_max),
                EINVAL);
    CHECK_ERROR(monad_async_task_set_cpu_priority(
                    t[0], tok, (monad_async_priority)-1),
                EINVAL);
    CHECK_ERROR(monad_async_task_set_cpu_priority(
                    t[0], tok, (monad_async_priority)1000),
                EINVAL);
    monad_async_task never = test_make_task(sw, 0);
    CHECK_ERROR(monad_async_task_set_cpu_priority(never, 1,
                                                  monad_async_priority_high),
                ENOENT);
    CHECK_ERROR(monad_async_task_set_cpu_priority(never, 0,
                                                  monad_async_priority_high),
                ENOENT);
    CHECK_EQ(never->priority.cpu, monad_async_priority_normal);
    CHECK_RESULT(monad_async_task_destroy(never));
}

int main(void)
{
    test_watchdog(120, "priority_change");
    unsigned const kinds[] = {0, 16};
    char const *const no_ring = test_no_ring_reason();
    for (int k = 0; k < 2; k++) {
        unsigned const entries = kinds[k];
        if (entries != 0 && no_ring != NULL) {
            test_note("SKIPPED priority changes on a ring executor: %s", no_ring);
            continue;
        }
        for (int s = 0; s < TEST_SWITCHER_NONE; s++) {
            monad_async_context_switcher sw =
                test_make_switcher((enum test_switcher_kind)s);
            monad_async_executor ex = entries ? test_make_ring_executor(entries, 0)
                                              : test_make_executor(0, 0);
            monad_async_task t[6];
            for (int i = 0; i < 6; i++) {
                t[i] = test_make_task(sw, 0);
            }
            ready_tasks(ex, t);
            parked_tasks(ex, t);
            running_task(ex, t);
            stale_and_bad(ex, t, sw);
            CHECK_EQ(ex->tasks_attached, 0);
            for (int p = 0; p < monad_async_priority_max; p++) {
                CHECK_EQ(ex->tasks_runnable[p], 0);
            }
            for (int i = 0; i < 6; i++) {
                CHECK_RESULT(monad_async_task_destroy(t[i]));
            }
            CHECK_RESULT(monad_async_executor_destroy(ex));
            CHECK_RESULT(monad_async_context_switcher_destroy(sw));
        }
    }
    return 0;
}
