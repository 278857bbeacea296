/* monad_async_task_wake_deferred (task.h): a wake from a task of the
 * woken task's own executor is applied as late as the waker's suspension,
 * and a park that follows switches straight to the woken task when it
 * would run next; nothing else may tell the difference from an ordinary
 * wake.
 *
 * Cases, each with fresh tasks, on the asm switcher (which can switch
 * straight to the woken task) and sjlj (which cannot: the wake is applied
 * and the loop runs it), on executors without and with a ring:
 *  1. defer, then park: value 2; the woken task is not ready until the
 *     waker parks, then runs, and its park returns success;
 *  2. defer a wake of B, then wake C (same level): B runs before C;
 *  3. defer a wake of B, then wake a High task: the High one runs first,
 *     then B, then the waker (which yielded);
 *  9. defer a wake of a Low task while a Normal one is ready, then park:
 *     the Normal one runs first (no switch straight to the woken task
 *     past a ready task of higher priority);
 *  4. defer, then yield: the woken task runs before the yielder resumes;
 *  5. defer, then exit: the woken task runs;
 *  6. defer, then cancel the woken task: its park succeeds (the wake was
 *     first) and its next suspension point says ECANCELED;
 *  7. two deferred wakes in a row: both run, in wake order;
 *  8. from outside the run: an ordinary wake (value 1); of the caller
 *     itself: a permit (value 0), its park returns at once; a stale
 *     token: ESRCH; NULL: EINVAL. */
#include "test_common.h"

static char g_log[64];
static unsigned g_len;
static monad_async_task g_task[4]; /* 0: the waker, 1-3: others */
static uint64_t g_token[4];
static int g_park_err[4];
static int g_after_err[4];
static intptr_t g_value[4];
static int g_case;
static monad_async_executor g_ex;

static void note(char c)
{
    CHECK_LT(g_len, sizeof(g_log) - 1);
    g_log[g_len++] = c;
    g_log[g_len] = 0;
}

static unsigned index_of(monad_async_task task)
{
    for (unsigned i = 0; i < 4; i++) {
        if (g_task[i] == task) {
            return i;
        }
    }
    TEST_FAIL("unknown task");
}

/* Takes its token, parks, notes its letter ('B', 'C', 'D' for 1-3). */
static monad_async_result parker_fn(monad_async_task task)
{
    unsigned const i = index_of(task);
    CHECK_RESULT(monad_async_task_wake_token(task, &g_token[i]));
    g_park_err[i] = monad_async_task_park(task, UINT64_MAX).error;
    note((char)('A' + i));
    g_after_err[i] = monad_async_task_yield(task).error;
    return monad_async_make_success(0);
}

/* A task that only notes its letter when it runs. */
static monad_async_result noter_fn(monad_async_task task)
{
    note((char)('A' + index_of(task)));
    return monad_async_make_success(0);
}

static monad_async_result defer(unsigned i)
{
    return monad_async_task_wake_deferred(g_task[i], g_token[i]);
}

static monad_async_result waker_fn(monad_async_task task)
{
    monad_async_result r;
    switch (g_case) {
    case 1:
        CHECK_RESULT(monad_async_task_wake_token(task, &g_token[0]));
        r = defer(1);
        CHECK_RESULT(r);
        g_value[0] = r.value;
        /* Deferred: B is not ready yet. */
        CHECK_EQ(g_ex->tasks_runnable[monad_async_priority_normal], 0);
        note('a');
        /* B runs, then wakes us (parker_fn's yield: we are woken by the
         * main loop below, see run_case). */
        CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
        note('A');
        break;
    case 2:
        r = defer(1);
        CHECK_RESULT(r);
        g_value[0] = r.value;
        CHECK_RESULT(monad_async_task_wake(g_task[2], g_token[2]));
        CHECK_RESULT(monad_async_task_yield(task));
        note('A');
        break;
    case 3:
        r = defer(1); /* B, Normal */
        CHECK_RESULT(r);
        g_value[0] = r.value;
        CHECK_RESULT(monad_async_task_wake(g_task[2], g_token[2])); /* C, High */
        CHECK_RESULT(monad_async_task_yield(task));
        note('A');
        break;
    case 4:
        r = defer(1);
        CHECK_RESULT(r);
        g_value[0] = r.value;
        CHECK_RESULT(monad_async_task_yield(task));
        note('A');
        break;
    case 5:
        r = defer(1);
        CHECK_RESULT(r);
        g_value[0] = r.value;
        note('A');
        break;
    case 6:
        r = defer(1);
        CHECK_RESULT(r);
        g_value[0] = r.value;
        /* A started task: marked, and EAGAIN (task.h). */
        CHECK_ERROR(monad_async_task_cancel(g_ex, g_task[1]), EAGAIN);
        note('A');
        break;
    case 7:
        r = defer(1);
        CHECK_RESULT(r);
        g_value[0] = r.value;
        r = defer(2);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 2);
        CHECK_EQ(g_ex->tasks_runnable[monad_async_priority_normal], 1); /* B */
        CHECK_RESULT(monad_async_task_wake_token(task, &g_token[0]));
        CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
        note('A');
        break;
    case 8:
        /* Of itself: a permit, consumed by the park at once. */
        CHECK_RESULT(monad_async_task_wake_token(task, &g_token[0]));
        r = monad_async_task_wake_deferred(task, g_token[0]);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 0);
        CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
        note('A');
        break;
    case 9:
        r = defer(3); /* D, Low; C (Normal) is ready */
        CHECK_RESULT(r);
        g_value[0] = r.value;
        CHECK_ERROR(monad_async_task_park(task, 1000000), ETIME);
        note('A');
        break;
    default:
        TEST_FAIL("no case %d", g_case);
    }
    return monad_async_make_success(0);
}

static void run_until_idle(monad_async_executor ex)
{
    for (int k = 0; k < 1000 && ex->tasks_attached != 0; k++) {
        struct timespec const wait = {0, 10000000};
        monad_async_result const r = monad_async_executor_run(ex, 1000, &wait);
        CHECK(r.error == 0 || r.error == ETIME); /* ETIME: nothing ran */
        /* Cases 1 and 7: the waker parks until we wake it here, once the
         * tasks it woke have run. */
        if ((g_case == 1 || g_case == 7) && g_len >= 2) {
            monad_async_result const w = monad_async_task_wake(g_task[0], g_token[0]);
            CHECK(w.error == 0 || w.error == ESRCH);
        }
    }
    CHECK_EQ(ex->tasks_attached, 0);
}

static void attach(monad_async_executor ex, unsigned i, monad_async_priority p)
{
    g_task[i]->priority.cpu = p;
    CHECK_RESULT(monad_async_task_attach(ex, g_task[i], NULL));
}

static void run_case(monad_async_executor ex, monad_async_context_switcher sw,
                     int c, char const *expect)
{
    g_ex = ex;
    g_case = c;
    g_len = 0;
    g_log[0] = 0;
    for (unsigned i = 0; i < 4; i++) {
        g_task[i] = test_make_task(sw, 0);
        g_token[i] = 0;
        g_park_err[i] = g_after_err[i] = -1;
        g_value[i] = -1;
    }
    g_task[0]->user_code = waker_fn;
    /* Which tasks park first (bit i: task i), at which priority. */
    unsigned const parkers = c == 2 || c == 3 || c == 7 ? 0x6u
                             : c == 8                   ? 0u
                             : c == 9                   ? 0x8u
                                                        : 0x2u;
    for (unsigned i = 1; i < 4; i++) {
        if (parkers & (1u << i)) {
            g_task[i]->user_code = parker_fn;
            attach(ex, i,
                   c == 3 && i == 2   ? monad_async_priority_high
                   : c == 9 && i == 3 ? monad_async_priority_low
                                      : monad_async_priority_normal);
        }
    }
    /* Let them park. */
    if (parkers != 0) {
        struct timespec const zero = {0, 0};
        CHECK_RESULT(monad_async_executor_run(ex, 1000, &zero));
    }
    for (unsigned i = 1; i < 4; i++) {
        if (parkers & (1u << i)) {
            CHECK(g_token[i] != 0);
            CHECK(g_task[i]->state & MONAD_ASYNC_TASK_STATE_SUSPENDED);
        }
    }
    attach(ex, 0, monad_async_priority_normal);
    if (c == 9) {
        /* Ready (behind the waker) when the waker parks. */
        g_task[2]->user_code = noter_fn;
        attach(ex, 2, monad_async_priority_normal);
    }
    run_until_idle(ex);
    CHECK_MSG(strcmp(g_log, expect) == 0, "case %d: ran \"%s\", expected \"%s\"",
              c, g_log, expect);
    if (c != 8) {
        CHECK_EQ(g_value[0], 2); /* deferred */
    }
    for (unsigned i = 1; i < 4; i++) {
        if (parkers & (1u << i)) {
            CHECK_EQ(g_park_err[i], 0); /* woken, the wake won */
            CHECK_EQ(g_after_err[i], c == 6 ? ECANCELED : 0);
        }
    }
    for (unsigned i = 0; i < 4; i++) {
        CHECK_RESULT(monad_async_task_destroy(g_task[i]));
    }
}

/* Case 8's second half: from outside the run, and bad input. */
static void outside(monad_async_executor ex, monad_async_context_switcher sw)
{
    g_ex = ex;
    g_case = 0;
    g_len = 0;
    g_task[1] = test_make_task(sw, 0);
    g_task[0] = g_task[2] = g_task[3] = NULL;
    g_task[1]->user_code = parker_fn;
    g_park_err[1] = g_after_err[1] = -1;
    attach(ex, 1, monad_async_priority_normal);
    struct timespec const zero = {0, 0};
    CHECK_RESULT(monad_async_executor_run(ex, 1000, &zero));
    uint64_t const token = g_token[1];
    monad_async_result r = monad_async_task_wake_deferred(g_task[1], token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1); /* an ordinary wake: not inside a task */
    CHECK_EQ(ex->tasks_runnable[monad_async_priority_normal], 1);
    while (ex->tasks_attached != 0) {
        CHECK_RESULT(monad_async_executor_run(ex, 1000, &zero));
    }
    CHECK_EQ(g_park_err[1], 0);
    CHECK_ERROR(monad_async_task_wake_deferred(g_task[1], token), ESRCH);
    CHECK_ERROR(monad_async_task_wake_deferred(NULL, token), EINVAL);
    CHECK_RESULT(monad_async_task_destroy(g_task[1]));
}

int main(void)
{
    test_watchdog(60, "wake_deferred");
    enum test_switcher_kind const kinds[] = {TEST_SWITCHER_ASM, TEST_SWITCHER_SJLJ};
    for (unsigned k = 0; k < 2; k++) {
        for (unsigned entries = 0; entries <= 64; entries += 64) {
            if (entries != 0 && test_no_ring_reason() != NULL) {
                continue;
            }
            monad_async_executor ex = test_make_executor(entries, 0);
            monad_async_context_switcher sw = test_make_switcher(kinds[k]);
            run_case(ex, sw, 1, "aBA");
            run_case(ex, sw, 2, "BCA");
            run_case(ex, sw, 3, "CBA");
            run_case(ex, sw, 4, "BA");
            run_case(ex, sw, 5, "AB");
            run_case(ex, sw, 6, "AB");
            run_case(ex, sw, 7, "BCA");
            run_case(ex, sw, 8, "A");
            run_case(ex, sw, 9, "CDA");
            outside(ex, sw);
            CHECK_RESULT(monad_async_executor_destroy(ex));
            CHECK_RESULT(monad_async_context_switcher_destroy(sw));
        }
    }
    printf("wake_deferred: ok\n");
    return 0;
}
