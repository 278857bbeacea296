/* A cross-thread cancel names the piece of work it aims at, and never
 * outlives it (task.h: monad_async_task_cancel). In each case another
 * thread cancels a task while it runs, and the work then returns in that
 * same slice, before the executor has drained the request:
 *
 *  1. the task, no longer attached, can be destroyed (it was EBUSY);
 *  2. its exit hook attaches it again to the same executor: the new work
 *     is not cancelled (it was, though nobody cancelled it);
 *  3. attached to a second executor and cancelled there from another
 *     thread, the cancel takes effect (it returned EAGAIN and was lost).
 * Then a race: a thread cancels a task in a loop while the executor runs
 * short pieces of work on it, re-attached by its exit hook (200,000
 * pieces): every cancel call answers EAGAIN or ENOENT, every piece ends,
 * and the task is destroyed (never EBUSY) once unattached; under TSan
 * too. How many pieces a cancel hits depends on scheduling: counted, not
 * asserted (case 3 proves a cancel takes effect). */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>

static _Atomic int g_running;
static _Atomic int g_release;
static monad_async_executor g_ex;

/* Runs until the canceller has made its request, then returns without
 * suspending: the request is still in the inbox when the work ends. */
static monad_async_result spin_fn(monad_async_task task)
{
    (void)task;
    atomic_store(&g_running, 1);
    while (!atomic_load(&g_release)) {
    }
    return monad_async_make_success(1);
}

struct cancel_args
{
    monad_async_executor ex;
    monad_async_task task;
    int expect; /* the errno the cancel must return */
};

static void *cancel_when_running(void *arg)
{
    struct cancel_args *const c = arg;
    while (!atomic_load(&g_running)) {
    }
    CHECK_ERROR(monad_async_task_cancel(c->ex, c->task), c->expect);
    atomic_store(&g_release, 1);
    return NULL;
}

static void run_with_canceller(monad_async_executor ex, monad_async_task t)
{
    atomic_store(&g_running, 0);
    atomic_store(&g_release, 0);
    struct cancel_args c = {ex, t, EAGAIN};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, cancel_when_running, &c), 0);
    struct timespec const zero = {0, 0};
    /* One item: the whole work, which never suspends. */
    monad_async_result const r = monad_async_executor_run(ex, 1, NULL);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK_EQ(pthread_join(th, NULL), 0);
    (void)zero;
}

/* ---- 2: the exit hook re-attaches ---- */

static int g_second_result = -1;

static monad_async_result yield_once_fn(monad_async_task task)
{
    monad_async_result const r = monad_async_task_yield(task);
    g_second_result = r.error;
    return r;
}

static void reattach_hook(monad_async_task task)
{
    task->user_on_exit = NULL;
    task->user_code = yield_once_fn;
    CHECK_RESULT(monad_async_task_attach(g_ex, task, NULL));
}

/* ---- 3: a second executor ---- */

static _Atomic int g_on_second;

static monad_async_result yield_until_cancelled_fn(monad_async_task task)
{
    atomic_store(&g_on_second, 1);
    uint64_t const deadline = test_now_ns() + 10ull * 1000 * 1000 * 1000;
    for (;;) {
        monad_async_result const r = monad_async_task_yield(task);
        if (r.error != 0) {
            return r;
        }
        if (test_now_ns() > deadline) {
            return monad_async_make_success(0); /* never cancelled */
        }
    }
}

static void *cancel_on_second(void *arg)
{
    struct cancel_args *const c = arg;
    while (!atomic_load(&g_on_second)) {
    }
    CHECK_ERROR(monad_async_task_cancel(c->ex, c->task), EAGAIN);
    return NULL;
}

static void defects(unsigned entries, monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    g_ex = ex;

    /* 1 */
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = spin_fn;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    run_with_canceller(ex, t);
    CHECK(!test_task_attached(t));
    CHECK_EQ(t->result.value, 1); /* it returned before the cancel arrived */
    CHECK_RESULT(monad_async_task_destroy(t));
    /* Draining what is left of the inbox is harmless. */
    struct timespec const zero = {0, 0};
    monad_async_result r = monad_async_executor_run(ex, 16, &zero);
    CHECK(r.error == 0 || r.error == ETIME);

    /* 2 */
    t = test_make_task(sw, 0);
    t->user_code = spin_fn;
    t->user_on_exit = reattach_hook;
    g_second_result = -1;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    run_with_canceller(ex, t);
    test_run_until_detached(ex, t, 5000);
    CHECK_EQ(g_second_result, 0); /* the new work was not cancelled */
    CHECK_RESULT(t->result);

    /* 3 */
    t->user_code = spin_fn;
    t->user_on_exit = NULL;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    run_with_canceller(ex, t);
    CHECK(!test_task_attached(t));
    monad_async_executor ex2 = test_make_executor(entries, 0);
    atomic_store(&g_on_second, 0);
    t->user_code = yield_until_cancelled_fn;
    CHECK_RESULT(monad_async_task_attach(ex2, t, NULL));
    struct cancel_args c = {ex2, t, EAGAIN};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, cancel_on_second, &c), 0);
    test_run_until_detached(ex2, t, 20000);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_ERROR(t->result, ECANCELED); /* the cancel took effect */

    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex2));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

/* ---- the race ---- */

static _Atomic int g_race_stop;
static _Atomic uint64_t g_race_calls;
static int g_race_works;
static int g_race_cancelled;

static monad_async_result short_work_fn(monad_async_task task)
{
    /* A suspension point, so a cancel can land inside the work too. */
    monad_async_result const r = monad_async_task_yield(task);
    return r;
}

static void race_hook(monad_async_task task)
{
    g_race_works++;
    if (task->result.error == ECANCELED) {
        g_race_cancelled++;
    }
    if (!atomic_load(&g_race_stop)) {
        CHECK_RESULT(monad_async_task_attach(g_ex, task, NULL));
    }
}

static void *race_canceller(void *arg)
{
    monad_async_task const t = arg;
    while (!atomic_load(&g_race_stop)) {
        monad_async_result const r = monad_async_task_cancel(g_ex, t);
        CHECK(r.error == EAGAIN || r.error == ENOENT);
        atomic_fetch_add(&g_race_calls, 1);
    }
    return NULL;
}

static void race(unsigned entries, monad_async_context_switcher sw)
{
    g_ex = test_make_executor(entries, 0);
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = short_work_fn;
    t->user_on_exit = race_hook;
    g_race_works = g_race_cancelled = 0;
    atomic_store(&g_race_stop, 0);
    atomic_store(&g_race_calls, 0);
    CHECK_RESULT(monad_async_task_attach(g_ex, t, NULL));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, race_canceller, t), 0);
    int const target = (int)test_scaled(200000);
    struct timespec const tick = {0, 1000 * 1000};
    uint64_t const deadline = test_now_ns() + 60ull * 1000 * 1000 * 1000;
    while (g_race_works < target) {
        CHECK_LT(test_now_ns(), deadline);
        monad_async_result const r = monad_async_executor_run(g_ex, 1024, &tick);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    atomic_store(&g_race_stop, 1);
    CHECK_EQ(pthread_join(th, NULL), 0);
    test_run_until_detached(g_ex, t, 5000);
    /* Unattached now, no request pending: destroy never says EBUSY. */
    CHECK_RESULT(monad_async_task_destroy(t));
    test_note("%s: %d pieces of work, %d cancelled, %" PRIu64 " cancel calls",
              entries ? "ring" : "no ring", g_race_works, g_race_cancelled,
              atomic_load(&g_race_calls));
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
}

int main(void)
{
    test_watchdog(240, "cancel_generation");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    char const *const no_ring = test_no_ring_reason();
    defects(0, sw);
    race(0, sw);
    if (no_ring == NULL) {
        defects(16, sw);
        race(16, sw);
    }
    else {
        test_note("SKIPPED the cases on a ring executor: %s", no_ring);
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    return 0;
}
