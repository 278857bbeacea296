/* A work dispatcher hands out queued tasks strictly by CPU priority, first
 * in first out within a level: with its one executor busy, tasks
 * submitted low, normal, high (twice over, one by one and as one batch)
 * run high, high, normal, normal, low, low. An executor takes a queued
 * task ahead of its own runnable work only when the queued one is
 * strictly more urgent (a high task submitted from inside a yielding low
 * one runs before the low one resumes; a normal one waits for a yielding
 * normal one). With two executors busy on a backlog of low tasks, a high
 * task submitted behind the backlog starts long before the backlog ends.
 * Header contract: dispatcher.h ("takes queued tasks strictly by CPU
 * priority", "strictly higher than anything runnable of its own"). */
#include "dispatcher_common.h"

#define LOG_MAX 64

static _Atomic int order_log[LOG_MAX];
static _Atomic size_t order_len;

static void log_event(int ev)
{
    size_t const i = atomic_fetch_add(&order_len, 1);
    CHECK_LT(i, LOG_MAX);
    atomic_store(&order_log[i], ev);
}

static void check_log(char const *what, int const *want, size_t n)
{
    int ok = atomic_load(&order_len) == n;
    for (size_t i = 0; ok && i < n; i++) {
        ok = atomic_load(&order_log[i]) == want[i];
    }
    if (!ok) {
        fprintf(stderr, "%s: execution order wrong\n  want:", what);
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr, " %d", want[i]);
        }
        fprintf(stderr, "\n  got: ");
        for (size_t i = 0; i < atomic_load(&order_len); i++) {
            fprintf(stderr, " %d", atomic_load(&order_log[i]));
        }
        fprintf(stderr, "\n");
        TEST_FAIL("%s: order differs", what);
    }
    atomic_store(&order_len, 0);
}

/* user_ptr is the id to log. */
static monad_async_result log_task(monad_async_task task)
{
    log_event((int)(intptr_t)task->user_ptr);
    return monad_async_make_success(0);
}

/* Low, normal, high, low, normal, high behind a busy executor. */
static void strict_order(bool batch)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, 1, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    struct test_gate gate;
    test_gate_init(&gate);
    monad_async_task g =
        test_make_work(sw, test_gate_task, monad_async_priority_low, &gate);
    test_submit1(wd, g);
    test_gate_wait_entered(&gate, 1);

    monad_async_priority const prio[6] = {
        monad_async_priority_low, monad_async_priority_normal,
        monad_async_priority_high, monad_async_priority_low,
        monad_async_priority_normal, monad_async_priority_high};
    int const id[6] = {1, 2, 3, 4, 5, 6};
    monad_async_task t[6];
    for (int i = 0; i < 6; i++) {
        t[i] = test_make_work(sw, log_task, prio[i], (void *)(intptr_t)id[i]);
    }
    if (batch) {
        CHECK_EQ(monad_async_work_dispatcher_submit(wd, t, 6).value, 6);
    }
    else {
        for (int i = 0; i < 6; i++) {
            test_submit1(wd, t[i]);
        }
    }
    struct monad_async_work_dispatcher_counters c;
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.queued, 6);
    CHECK_EQ(c.queued_by_priority[monad_async_priority_high], 2);
    CHECK_EQ(c.queued_by_priority[monad_async_priority_normal], 2);
    CHECK_EQ(c.queued_by_priority[monad_async_priority_low], 2);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(test_task_state(t[i]), MONAD_ASYNC_TASK_STATE_ATTACHED |
                                            MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH |
                                            MONAD_ASYNC_TASK_STATE_QUEUED);
        CHECK(atomic_load(&t[i]->current_executor) == NULL);
    }
    atomic_store(&gate.open, 1);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));
    int const want[6] = {3, 6, 2, 5, 1, 4};
    check_log(batch ? "one batch" : "one by one", want, 6);

    test_pool_shutdown(&pool);
    for (int i = 0; i < 6; i++) {
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(g));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

/* ---- an executor's own runnable work against the queue ---- */

struct yielder
{
    monad_async_work_dispatcher wd;
    int id;
    monad_async_task submit_on_first_slice[2];
};

/* Logs id*10 + slice over four slices, submitting its tasks in the
 * first. */
static monad_async_result yielding_task(monad_async_task task)
{
    struct yielder *const y = (struct yielder *)task->user_ptr;
    monad_async_executor const mine =
        (monad_async_executor)monad_async_executor_current().value;
    for (int slice = 0; slice < 4; slice++) {
        log_event(y->id * 10 + slice);
        if (slice == 0) {
            for (int k = 0; k < 2; k++) {
                if (y->submit_on_first_slice[k] != NULL) {
                    test_submit1(y->wd, y->submit_on_first_slice[k]);
                }
            }
        }
        if (slice < 3) {
            CHECK_RESULT(monad_async_task_yield(task));
            /* Never migrates. */
            CHECK((monad_async_executor)monad_async_executor_current().value ==
                  mine);
        }
    }
    return monad_async_make_success(0);
}

static void own_work_against_queue(void)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, 1, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);

    /* A low task yielding: high and normal submitted from its first slice
     * run before its second. */
    monad_async_task high =
        test_make_work(sw, log_task, monad_async_priority_high, (void *)7);
    monad_async_task normal =
        test_make_work(sw, log_task, monad_async_priority_normal, (void *)8);
    struct yielder y = {wd, 1, {normal, high}};
    monad_async_task low =
        test_make_work(sw, yielding_task, monad_async_priority_low, &y);
    test_submit1(wd, low);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));
    int const want1[6] = {10, 7, 8, 11, 12, 13};
    check_log("queued high and normal against a yielding low", want1, 6);

    /* A normal task yielding: a normal one submitted meanwhile waits until
     * the yielding one is done (own runnable work first within a level). */
    struct yielder y2 = {wd, 2, {normal, NULL}};
    low->priority.cpu = monad_async_priority_normal;
    low->user_ptr = &y2;
    test_submit1(wd, low);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));
    int const want2[5] = {20, 21, 22, 23, 8};
    check_log("queued normal against a yielding normal", want2, 5);

    test_pool_shutdown(&pool);
    CHECK_RESULT(monad_async_task_destroy(low));
    CHECK_RESULT(monad_async_task_destroy(normal));
    CHECK_RESULT(monad_async_task_destroy(high));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

/* ---- a high task behind a backlog, two executors ---- */

#define BACKLOG 100

static _Atomic int lows_started;
static _Atomic int lows_before_high;

static monad_async_result slow_low(monad_async_task task)
{
    (void)task;
    atomic_fetch_add(&lows_started, 1);
    test_sleep_ns(1000000); /* holds the thread: 1 ms of "work" */
    return monad_async_make_success(0);
}

static monad_async_result urgent(monad_async_task task)
{
    (void)task;
    atomic_store(&lows_before_high, atomic_load(&lows_started));
    return monad_async_make_success(0);
}

static void high_behind_backlog(void)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, 2, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_NONE);
    monad_async_task lows[BACKLOG];
    for (int i = 0; i < BACKLOG; i++) {
        lows[i] = test_make_work(sw, slow_low, monad_async_priority_low, NULL);
    }
    monad_async_task high =
        test_make_work(sw, urgent, monad_async_priority_high, NULL);
    atomic_store(&lows_started, 0);
    atomic_store(&lows_before_high, -1);
    CHECK_EQ(monad_async_work_dispatcher_submit(wd, lows, BACKLOG).value,
             BACKLOG);
    while (atomic_load(&lows_started) < 4) {
        test_sleep_ns(100000);
    }
    int const started_at_submit = atomic_load(&lows_started);
    test_submit1(wd, high);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));
    int const overtaking = atomic_load(&lows_before_high) - started_at_submit;
    test_note("high task behind %d low ones on 2 executors: %d low tasks "
              "started between its submission and its start",
              BACKLOG - started_at_submit, overtaking);
    /* Each executor may start the low task it already took; beyond that,
     * only a long preemption of the executor that took the high task lets
     * the other start more (1 ms each). FIFO would start them all. */
    CHECK_GE(overtaking, 0);
    CHECK_LE(overtaking, 20);
    test_pool_shutdown(&pool);
    for (int i = 0; i < BACKLOG; i++) {
        CHECK_RESULT(monad_async_task_destroy(lows[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(high));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

int main(void)
{
    test_watchdog(120, "dispatcher_priority");
    strict_order(false);
    strict_order(true);
    own_work_against_queue();
    high_behind_backlog();
    printf("dispatcher_priority: ok\n");
    return 0;
}
