/* wait and quit, including their timeouts.
 *
 * wait: returns at once when its thresholds hold ({0, 0} and NULL alike),
 * ETIME after about its timeout when they do not, for each threshold on
 * its own; several threads block in it at once with different thresholds
 * and each returns when its own hold.
 * quit: tells idle executors before busy ones; waits for acknowledgement
 * (ETIME after its timeout when a busy executor's task is still running);
 * a busy executor finishes its task first, and a task asleep on its
 * executor (one with a ring) finishes there before the executor quits.
 * SIZE_MAX reaches executors created later and refuses submissions
 * (ESHUTDOWN); tasks still queued stay queued (destroy says EBUSY) until
 * monad_async_work_dispatcher_cancel_queued ends them with ECANCELED,
 * calling their user_on_exit.
 * Header contract: dispatcher.h (wait, quit, cancel_queued, destroy). */
#include "dispatcher_common.h"

static struct timespec const no_wait = {0, 0};

static struct timespec ms(long n)
{
    struct timespec ts;
    ts.tv_sec = n / 1000;
    ts.tv_nsec = (n % 1000) * 1000000L;
    return ts;
}

static _Atomic int plain_runs;

static monad_async_result plain_task(monad_async_task task)
{
    (void)task;
    atomic_fetch_add(&plain_runs, 1);
    return monad_async_make_success(0);
}

/* ---- wait ---- */

struct waiter
{
    pthread_t thread;
    monad_async_work_dispatcher wd;
    size_t max_undispatched;
    size_t max_unexecuted;
    _Atomic int returned;
    int error;
};

static void *waiter_main(void *arg)
{
    struct waiter *const w = (struct waiter *)arg;
    w->error = monad_async_work_dispatcher_wait(w->wd, w->max_undispatched,
                                                w->max_unexecuted, NULL)
                   .error;
    atomic_store(&w->returned, 1);
    return NULL;
}

static void wait_semantics(monad_async_context_switcher sw)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    monad_async_result r = monad_async_work_dispatcher_wait(wd, 0, 0, &no_wait);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));

    /* No executors yet: ten tasks stay queued. */
    monad_async_task t[10];
    for (int i = 0; i < 10; i++) {
        t[i] = test_make_work(sw, plain_task,
                              (monad_async_priority)(1 + i % 2), NULL);
    }
    CHECK_EQ(monad_async_work_dispatcher_submit(wd, t, 10).value, 10);
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 0, 0, &no_wait), ETIME);
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 9, SIZE_MAX, &no_wait),
                ETIME);
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, SIZE_MAX, 9, &no_wait),
                ETIME);
    r = monad_async_work_dispatcher_wait(wd, 10, 10, &no_wait);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 10);
    struct timespec const twenty = ms(20);
    uint64_t const t0 = test_now_ns();
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 0, 0, &twenty), ETIME);
    uint64_t const waited = test_now_ns() - t0;
    CHECK_GE(waited, 20000000ull);
    CHECK_LT(waited, 5000000000ull);
    struct timespec const negative = {-1, 0};
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 0, 0, &negative), ETIME);

    /* Waiters with different thresholds, blocked together: one needs the
     * queue down to 4, the other everything done. */
    struct waiter some = {.wd = wd, .max_undispatched = 4,
                          .max_unexecuted = SIZE_MAX};
    struct waiter all = {.wd = wd, .max_undispatched = 0, .max_unexecuted = 0};
    CHECK_EQ(pthread_create(&some.thread, NULL, waiter_main, &some), 0);
    CHECK_EQ(pthread_create(&all.thread, NULL, waiter_main, &all), 0);
    test_sleep_ns(20000000);
    CHECK(!atomic_load(&some.returned));
    CHECK(!atomic_load(&all.returned));
    /* destroy refuses while threads wait (and tasks are queued). */
    CHECK_ERROR(monad_async_work_dispatcher_destroy(wd), EBUSY);

    /* One executor, held by a gate: the first task to reach it is the
     * gate, so the queue stays at 10 until the gate opens. */
    struct test_gate gate;
    test_gate_init(&gate);
    monad_async_task g =
        test_make_work(sw, test_gate_task, monad_async_priority_high, &gate);
    test_submit1(wd, g);
    struct test_pool pool;
    test_pool_start(&pool, wd, 1, 0);
    test_gate_wait_entered(&gate, 1);
    test_sleep_ns(20000000);
    CHECK(!atomic_load(&some.returned));
    CHECK(!atomic_load(&all.returned));
    struct monad_async_work_dispatcher_counters c;
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.queued, 10);
    CHECK_EQ(c.submitted, 11);
    CHECK_EQ(c.dispatched, 1);
    CHECK_EQ(c.executed, 0);
    CHECK_EQ(c.executors, 1);
    CHECK_EQ(c.executors_idle, 0);
    atomic_store(&gate.open, 1);
    CHECK_EQ(pthread_join(some.thread, NULL), 0);
    CHECK_EQ(pthread_join(all.thread, NULL), 0);
    CHECK_EQ(some.error, 0);
    CHECK_EQ(all.error, 0);
    CHECK_EQ(atomic_load(&plain_runs), 10);
    r = monad_async_work_dispatcher_wait(wd, 0, 0, &no_wait);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);

    test_pool_shutdown(&pool);
    for (int i = 0; i < 10; i++) {
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(g));
}

/* ---- quit: idle first, busy ones finish their task ---- */

static _Atomic(monad_async_executor) gate_ran_on;

static monad_async_result recording_gate(monad_async_task task)
{
    atomic_store(&gate_ran_on,
                 (monad_async_executor)monad_async_executor_current().value);
    return test_gate_task(task);
}

static void quit_idle_first(monad_async_context_switcher sw)
{
    /* Short spin so that the idle executor is asleep, as well as idle. */
    monad_async_work_dispatcher wd = test_make_dispatcher(1000, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, 2, 0);
    struct test_gate gate;
    test_gate_init(&gate);
    monad_async_task g =
        test_make_work(sw, recording_gate, monad_async_priority_normal, &gate);
    test_submit1(wd, g);
    test_gate_wait_entered(&gate, 1);
    size_t busy = pool.n;
    for (size_t i = 0; i < pool.n; i++) {
        if (pool.ex[i]->executor == atomic_load(&gate_ran_on)) {
            busy = i;
        }
    }
    CHECK_LT(busy, pool.n);
    size_t const idle = 1 - busy;
    struct monad_async_work_dispatcher_counters c;
    do {
        test_sleep_ns(1000000);
        CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    } while (c.executors_idle != 1);

    /* One executor to quit: the idle one, at once, though the busy one's
     * task is still running. */
    uint64_t t0 = test_now_ns();
    monad_async_result r = monad_async_work_dispatcher_quit(wd, 1, NULL);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK_LT(test_now_ns() - t0, 5000000000ull);
    CHECK_EQ(atomic_load(&gate.left), 0);
    test_sleep_ns(5000000);
    CHECK(atomic_load(&pool.quit_seen[idle]));
    CHECK(!atomic_load(&pool.quit_seen[busy]));
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.executors, 1);

    /* The next: the busy one, whose task does not finish in 30 ms. */
    struct timespec const thirty = ms(30);
    t0 = test_now_ns();
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, 1, &thirty), ETIME);
    CHECK_GE(test_now_ns() - t0, 30000000ull);
    CHECK(!atomic_load(&pool.quit_seen[busy]));
    CHECK_EQ(atomic_load(&gate.left), 0);
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, 0, &no_wait), ETIME);
    /* No executor left untold: nothing more to tell. */
    struct timespec const one = ms(1);
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, 5, &one), ETIME);

    /* Its task finishes, then it acknowledges. */
    atomic_store(&gate.open, 1);
    r = monad_async_work_dispatcher_quit(wd, 0, NULL);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);
    CHECK_EQ(atomic_load(&gate.left), 1);
    CHECK_EQ(test_task_state(g), MONAD_ASYNC_TASK_STATE_EXITED);
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.executors, 0);
    CHECK_EQ(c.executed, 1);
    test_pool_join(&pool);
    CHECK_RESULT(monad_async_work_dispatcher_destroy(wd));
    CHECK_RESULT(monad_async_task_destroy(g));
}

/* ---- quit waits for a sleeping task, which stays on its executor ---- */

static _Atomic int sleeper_started;
static _Atomic int sleeper_same_executor;

static monad_async_result sleeper(monad_async_task task)
{
    monad_async_executor const before =
        (monad_async_executor)monad_async_executor_current().value;
    atomic_store(&sleeper_started, 1);
    monad_async_result const r =
        monad_async_task_suspend_for_duration(task, 60000000ull);
    atomic_store(&sleeper_same_executor,
                 (monad_async_executor)monad_async_executor_current().value ==
                     before);
    return r;
}

static void quit_waits_for_sleeper(monad_async_context_switcher sw)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, 1, 64); /* an executor with a ring */
    monad_async_task s =
        test_make_work(sw, sleeper, monad_async_priority_normal, NULL);
    test_submit1(wd, s);
    while (!atomic_load(&sleeper_started)) {
        test_sleep_ns(100000);
    }
    uint64_t const t0 = test_now_ns();
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, SIZE_MAX, &no_wait),
                ETIME);
    CHECK(test_task_attached(s));
    CHECK_RESULT(monad_async_work_dispatcher_quit(wd, SIZE_MAX, NULL));
    uint64_t const waited = test_now_ns() - t0;
    CHECK_EQ(test_task_state(s), MONAD_ASYNC_TASK_STATE_EXITED);
    CHECK_RESULT(s->result);
    CHECK(atomic_load(&sleeper_same_executor));
    test_note("quit waited %.1f ms for a task sleeping 60 ms",
              (double)waited / 1e6);
    CHECK_GT(waited, 1000000ull);

    /* Quitting for good: submissions refused, the task left untouched. */
    monad_async_task late =
        test_make_work(sw, plain_task, monad_async_priority_high, NULL);
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, &late, 1), ESHUTDOWN);
    CHECK_EQ(test_task_state(late), 0);
    test_pool_join(&pool);

    /* An executor created now is told at once: its first run returns a
     * negative value, and it never joins the pool. */
    struct test_pool later;
    test_pool_start(&later, wd, 1, 0);
    test_pool_join(&later);
    struct monad_async_work_dispatcher_counters c;
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.executors, 0);
    CHECK_RESULT(monad_async_work_dispatcher_destroy(wd));
    CHECK_RESULT(monad_async_task_destroy(s));
    CHECK_RESULT(monad_async_task_destroy(late));
}

/* ---- tasks left queued by a quit ---- */

static _Atomic int exit_hooks;

static void count_exit(monad_async_task task)
{
    (void)task;
    atomic_fetch_add(&exit_hooks, 1);
}

static void queued_after_quit(monad_async_context_switcher sw)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, 1, 0);
    struct test_gate gate;
    test_gate_init(&gate);
    monad_async_task g =
        test_make_work(sw, test_gate_task, monad_async_priority_low, &gate);
    test_submit1(wd, g);
    test_gate_wait_entered(&gate, 1);
    monad_async_task t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = test_make_work(sw, plain_task, monad_async_priority_high, NULL);
        t[i]->user_on_exit = count_exit;
    }
    CHECK_EQ(monad_async_work_dispatcher_submit(wd, t, 3).value, 3);
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, SIZE_MAX, &no_wait),
                ETIME);
    atomic_store(&gate.open, 1);
    CHECK_RESULT(monad_async_work_dispatcher_quit(wd, 0, NULL));
    test_pool_join(&pool);

    int const runs_before = atomic_load(&plain_runs);
    struct monad_async_work_dispatcher_counters c;
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.queued, 3);
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 0, 0, &no_wait), ETIME);
    CHECK_ERROR(monad_async_work_dispatcher_destroy(wd), EBUSY);
    for (int i = 0; i < 3; i++) {
        CHECK_ERROR(monad_async_task_destroy(t[i]), EBUSY);
    }
    monad_async_result r = monad_async_work_dispatcher_cancel_queued(wd);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 3);
    CHECK_EQ(atomic_load(&exit_hooks), 3);
    CHECK_EQ(atomic_load(&plain_runs), runs_before);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(test_task_state(t[i]), MONAD_ASYNC_TASK_STATE_EXITED);
        CHECK_ERROR(t[i]->result, ECANCELED);
        CHECK(atomic_load(&t[i]->current_executor) == NULL);
    }
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.queued, 0);
    CHECK_EQ(c.cancelled, 3);
    CHECK_EQ(c.executed, c.submitted);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, &no_wait));
    r = monad_async_work_dispatcher_cancel_queued(wd);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);
    CHECK_RESULT(monad_async_work_dispatcher_destroy(wd));
    for (int i = 0; i < 3; i++) {
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(g));
}

int main(void)
{
    test_watchdog(120, "dispatcher_wait_quit");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    wait_semantics(sw);
    quit_idle_first(sw);
    if (!test_skip_ring_part("quit waits for a sleeper on a ring executor")) {
        quit_waits_for_sleeper(sw);
    }
    queued_after_quit(sw);
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("dispatcher_wait_quit: ok\n");
    return 0;
}
