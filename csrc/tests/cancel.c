/* monad_async_task_cancel.
 *  - a task pending launch: never runs, result ECANCELED, cancel returns
 *    success, user_on_exit called once;
 *  - a yielded task and a sleeping one: cancel returns EAGAIN; the task
 *    resumes with ECANCELED from its suspension point (a long sleep ends
 *    early), and every later suspension point returns ECANCELED at once
 *    (sticky); its own return value still becomes its result; the
 *    CANCELLED state bit is cleared by the next attach;
 *  - a running task cancelling itself: EAGAIN, its next suspension point
 *    returns ECANCELED;
 *  - from another thread: EAGAIN, takes effect (pending ones never run,
 *    started ones resume with ECANCELED), including a stress of many
 *    cross-thread cancels racing with execution;
 *  - of an unattached (never attached, or exited) task: ENOENT.
 * Header contract: task.h (monad_async_task_cancel, the CANCELLED state,
 * user_on_exit). */
#include "test_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static uint64_t const MS = 1000000ull;

struct rec
{
    int started;            /* user_code entered */
    int exits;              /* user_on_exit calls */
    int first_err;          /* result of the first suspension */
    int later_errs[3];      /* results of later suspension points */
    uint64_t first_wait_ns; /* how long the first suspension took */
    uint64_t later_ns;      /* how long the later suspension points took */
    int mode;               /* 0 yield first, 1 sleep first */
    int cancel_self;        /* cancel ourselves while running */
    monad_async_executor ex;
    int self_cancel_err;
};

static void on_exit_hook(monad_async_task task)
{
    struct rec *r = (struct rec *)task->user_ptr;
    r->exits++;
    CHECK(!test_task_attached(task));
    CHECK((test_task_state(task) & MONAD_ASYNC_TASK_STATE_EXITED) != 0);
}

static monad_async_result suspending_fn(monad_async_task task)
{
    struct rec *r = (struct rec *)task->user_ptr;
    r->started = 1;
    if (r->cancel_self) {
        r->self_cancel_err = monad_async_task_cancel(r->ex, task).error;
        CHECK((test_task_state(task) & MONAD_ASYNC_TASK_STATE_CANCELLED) !=
              0);
    }
    uint64_t t0 = test_now_ns();
    if (r->mode == 0) {
        r->first_err = monad_async_task_yield(task).error;
    }
    else {
        r->first_err =
            monad_async_task_suspend_for_duration(task, 10000 * MS).error;
    }
    r->first_wait_ns = test_now_ns() - t0;
    t0 = test_now_ns();
    r->later_errs[0] = monad_async_task_yield(task).error;
    r->later_errs[1] =
        monad_async_task_suspend_for_duration(task, 10000 * MS).error;
    r->later_errs[2] = monad_async_task_suspend_for_duration(task, 0).error;
    r->later_ns = test_now_ns() - t0;
    return monad_async_make_success(42);
}

static void check_cancelled_run(char const *what, monad_async_task t,
                                struct rec *r)
{
    CHECK_MSG(r->started, "%s: never started", what);
    CHECK_MSG(r->first_err == ECANCELED,
              "%s: first suspension gave %s, wanted ECANCELED", what,
              test_errno_name(r->first_err));
    CHECK_MSG(r->first_wait_ns < 5000 * MS,
              "%s: the cancelled suspension lasted %" PRIu64 " ns", what,
              r->first_wait_ns);
    for (int i = 0; i < 3; i++) {
        CHECK_MSG(r->later_errs[i] == ECANCELED,
                  "%s: later suspension point %d gave %s, wanted ECANCELED "
                  "(cancellation is sticky)",
                  what, i, test_errno_name(r->later_errs[i]));
    }
    CHECK_MSG(r->later_ns < 1000 * MS,
              "%s: later suspension points took %" PRIu64
              " ns; they must return at once", what, r->later_ns);
    CHECK(!test_task_attached(t));
    uint32_t st = test_task_state(t);
    CHECK((st & MONAD_ASYNC_TASK_STATE_EXITED) != 0);
    CHECK((st & MONAD_ASYNC_TASK_STATE_CANCELLED) != 0);
    /* user_code's return value is the result */
    CHECK_RESULT(t->result);
    CHECK_EQ(t->result.value, 42);
    CHECK_EQ(r->exits, 1);
}

static void fresh(monad_async_task t, struct rec *r, monad_async_executor ex,
                  int mode)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
    r->ex = ex;
    t->user_code = suspending_fn;
    t->user_ptr = r;
    t->user_on_exit = on_exit_hook;
}

static int never_ran;

static monad_async_result must_not_run(monad_async_task task)
{
    (void)task;
    never_ran++;
    return monad_async_make_success(1);
}

static void same_thread(monad_async_executor ex, enum test_switcher_kind kind)
{
    char const *swn = test_switcher_names[kind];
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task t = test_make_task(sw, 0);
    struct rec r;
    struct timespec const zero = {0, 0};

    /* Unattached: ENOENT. */
    CHECK_ERROR(monad_async_task_cancel(ex, t), ENOENT);

    /* Pending launch: success, never runs. */
    fresh(t, &r, ex, 0);
    t->user_code = must_not_run;
    never_ran = 0;
    uint64_t const cancelled_before = ex->counters.cancelled;
    uint64_t const exited_before = ex->counters.exited;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH);
    monad_async_result c = monad_async_task_cancel(ex, t);
    CHECK_RESULT(c);
    CHECK_ERROR(t->result, ECANCELED);
    /* Run whatever is left: the task must not run. */
    for (int i = 0; i < 3; i++) {
        monad_async_result rr = monad_async_executor_run(ex, 10, &zero);
        CHECK(rr.error == ETIME || rr.error == 0);
    }
    CHECK_EQ(never_ran, 0);
    CHECK_EQ(r.exits, 1);
    CHECK(!test_task_attached(t));
    CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_EXITED);
    CHECK_ERROR(t->result, ECANCELED);
    CHECK_EQ(ex->counters.cancelled - cancelled_before, 1);
    CHECK_EQ(ex->counters.exited - exited_before, 1);
    CHECK_EQ(ex->tasks_attached, 0);
    /* Cancelling again: no longer attached. */
    CHECK_ERROR(monad_async_task_cancel(ex, t), ENOENT);

    if (kind != TEST_SWITCHER_NONE) {
        /* Yielded, then cancelled. */
        fresh(t, &r, ex, 0);
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        CHECK_EQ(monad_async_executor_run(ex, 1, &zero).value, 1);
        CHECK(r.started);
        CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
        CHECK_ERROR(monad_async_task_cancel(ex, t), EAGAIN);
        CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED);
        test_run_until_detached(ex, t, 5000);
        check_cancelled_run("yielded", t, &r);

        /* The CANCELLED bit is cleared by the next attach: the same task
         * suspends normally again. */
        fresh(t, &r, ex, 0);
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        CHECK((test_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED) == 0);
        CHECK_EQ(monad_async_executor_run(ex, 1, &zero).value, 1);
        /* The first yield succeeds (not cancelled); cancel it in its second
         * yield instead. */
        CHECK_EQ(monad_async_executor_run(ex, 1, &zero).value, 1);
        CHECK_EQ(r.first_err, 0);
        CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
        CHECK_ERROR(monad_async_task_cancel(ex, t), EAGAIN);
        test_run_until_detached(ex, t, 5000);
        CHECK_EQ(r.later_errs[0], ECANCELED);
        CHECK_EQ(r.later_errs[1], ECANCELED);
        CHECK_EQ(r.later_errs[2], ECANCELED);
        CHECK_EQ(t->result.value, 42);
        CHECK_EQ(r.exits, 1);

        /* Sleeping, then cancelled: the 10 s sleep ends at once. */
        fresh(t, &r, ex, 1);
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        CHECK_EQ(monad_async_executor_run(ex, 1, &zero).value, 1);
        CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
        CHECK_EQ(ex->tasks_timed, 1);
        uint64_t const t0 = test_now_ns();
        CHECK_ERROR(monad_async_task_cancel(ex, t), EAGAIN);
        test_run_until_detached(ex, t, 5000);
        CHECK_LT(test_now_ns() - t0, 5000 * MS);
        check_cancelled_run("sleeping", t, &r);
        CHECK_EQ(ex->tasks_timed, 0);

        /* Running, cancels itself. */
        fresh(t, &r, ex, 0);
        r.cancel_self = 1;
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        test_run_until_detached(ex, t, 5000);
        CHECK_ERROR(
            test_errno_result(r.self_cancel_err),
            EAGAIN);
        check_cancelled_run("self-cancelled", t, &r);
    }
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("ok   same-thread cancels, %s switcher\n", swn);
}

/* ---- from another thread ---- */

struct xcancel
{
    monad_async_executor ex;
    monad_async_task task;
    uint64_t delay_ns;
    int also_wake;
    int err;
};

static void *xcancel_main(void *arg)
{
    struct xcancel *x = (struct xcancel *)arg;
    test_sleep_ns(x->delay_ns);
    x->err = monad_async_task_cancel(x->ex, x->task).error;
    if (x->also_wake) {
        CHECK_RESULT(monad_async_executor_wake(x->ex));
    }
    return NULL;
}

static void other_thread(monad_async_executor ex)
{
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task t = test_make_task(sw, 0);
    struct rec r;
    struct timespec const zero = {0, 0};

    /* Unattached: ENOENT from another thread too. */
    {
        struct xcancel x = {ex, t, 0, 0, 0};
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, xcancel_main, &x), 0);
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_ERROR(test_errno_result(x.err), ENOENT);
    }

    /* Pending launch, cancelled from another thread before the executor
     * runs: EAGAIN, and the task never runs. */
    {
        fresh(t, &r, ex, 0);
        t->user_code = must_not_run;
        never_ran = 0;
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        struct xcancel x = {ex, t, 0, 0, 0};
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, xcancel_main, &x), 0);
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_ERROR(test_errno_result(x.err), EAGAIN);
        test_run_until_detached(ex, t, 5000);
        CHECK_EQ(never_ran, 0);
        CHECK_ERROR(t->result, ECANCELED);
        CHECK_EQ(r.exits, 1);
    }

    /* Sleeping 10 s while the executor waits in run with a NULL timeout;
     * another thread cancels and wakes it. */
    for (int with_wake = 1; with_wake >= 0; with_wake--) {
        fresh(t, &r, ex, 1);
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        CHECK_EQ(monad_async_executor_run(ex, 1, &zero).value, 1);
        struct xcancel x = {ex, t, 30 * MS, with_wake, 0};
        pthread_t th;
        uint64_t const t0 = test_now_ns();
        CHECK_EQ(pthread_create(&th, NULL, xcancel_main, &x), 0);
        /* With the explicit wake, a NULL timeout; without, the cancel
         * itself must end the wait ("takes effect when the executor next
         * runs" -- and it is running, waiting): bounded at 5 s so a miss
         * fails instead of sleeping out the 10 s. */
        struct timespec const five = {5, 0};
        while (!r.started || r.first_err == 0) {
            monad_async_result rr =
                monad_async_executor_run(ex, 1, with_wake ? NULL : &five);
            if (rr.error == ETIME) {
                break;
            }
            CHECK_RESULT(rr);
        }
        uint64_t const el = test_now_ns() - t0;
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_ERROR(test_errno_result(x.err), EAGAIN);
        CHECK_MSG(r.first_err == ECANCELED,
                  "cross-thread cancel (%s) of a sleeping task did not "
                  "take effect within %" PRIu64 " ms while the executor "
                  "waited in run",
                  with_wake ? "followed by a wake" : "without a wake",
                  el / MS);
        test_run_until_detached(ex, t, 5000);
        check_cancelled_run("cross-thread cancelled sleeper", t, &r);
    }
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("ok   cross-thread cancels\n");
}

/* Stress: many tasks that yield until cancelled; another thread cancels
 * them all while the executor runs. Every task exits exactly once. */
#define STRESS_TASKS 64

static atomic_int stress_go;
static atomic_int stress_cancels_done;

struct stress_rec
{
    int started;
    int exits;
    int saw_cancel;
    uint64_t slices;
};

static monad_async_result stress_fn(monad_async_task task)
{
    struct stress_rec *s = (struct stress_rec *)task->user_ptr;
    s->started = 1;
    for (;;) {
        monad_async_result r = (s->slices & 1)
                                   ? monad_async_task_yield(task)
                                   : monad_async_task_suspend_for_duration(
                                         task, (s->slices % 5) * 100000);
        s->slices++;
        if (r.error == ECANCELED) {
            s->saw_cancel = 1;
            return monad_async_make_failure(ECANCELED);
        }
        CHECK_RESULT(r);
        if (s->slices > 10000000) {
            return monad_async_make_failure(ETIMEDOUT);
        }
    }
}

static void stress_exit(monad_async_task task)
{
    struct stress_rec *s = (struct stress_rec *)task->user_ptr;
    s->exits++;
}

struct stress_canceller
{
    monad_async_executor ex;
    monad_async_task *tasks;
    int errs[STRESS_TASKS];
};

static void *stress_main(void *arg)
{
    struct stress_canceller *sc = (struct stress_canceller *)arg;
    while (!atomic_load(&stress_go)) {
    }
    for (int i = 0; i < STRESS_TASKS; i++) {
        sc->errs[i] = monad_async_task_cancel(sc->ex, sc->tasks[i]).error;
        atomic_fetch_add(&stress_cancels_done, 1);
        if (i % 8 == 0) {
            test_sleep_ns(100000);
        }
    }
    return NULL;
}

static void stress(monad_async_executor ex, unsigned rounds)
{
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task tasks[STRESS_TASKS];
    struct stress_rec recs[STRESS_TASKS];
    for (int i = 0; i < STRESS_TASKS; i++) {
        tasks[i] = test_make_task(sw, 32768);
    }
    uint64_t pending_cancels = 0, started_cancels = 0;
    for (unsigned round = 0; round < rounds; round++) {
        memset(recs, 0, sizeof(recs));
        for (int i = 0; i < STRESS_TASKS; i++) {
            tasks[i]->user_code = stress_fn;
            tasks[i]->user_ptr = &recs[i];
            tasks[i]->user_on_exit = stress_exit;
            tasks[i]->priority.cpu = (monad_async_priority)(i % 3);
            CHECK_RESULT(monad_async_task_attach(ex, tasks[i], NULL));
        }
        struct stress_canceller sc;
        memset(&sc, 0, sizeof(sc));
        sc.ex = ex;
        sc.tasks = tasks;
        atomic_store(&stress_go, 0);
        atomic_store(&stress_cancels_done, 0);
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, stress_main, &sc), 0);
        /* Round kinds: 0, all cancels land before the executor runs (every
         * task pending launch); 1, a few items run first, so some tasks
         * are started and some pending; 2, cancels race with running. */
        struct timespec const zero = {0, 0};
        if (round % 3 == 1) {
            monad_async_result rr = monad_async_executor_run(
                ex, (size_t)(round % STRESS_TASKS) + 1, &zero);
            CHECK_RESULT(rr);
        }
        atomic_store(&stress_go, 1);
        if (round % 3 == 0) {
            while (atomic_load(&stress_cancels_done) < STRESS_TASKS) {
                sched_yield();
            }
        }
        uint64_t const deadline = test_now_ns() + 20000 * MS;
        struct timespec const tick = {0, (long)(5 * MS)};
        for (;;) {
            int attached = 0;
            for (int i = 0; i < STRESS_TASKS; i++) {
                attached += test_task_attached(tasks[i]);
            }
            if (attached == 0) {
                break;
            }
            CHECK_MSG(test_now_ns() < deadline,
                      "stress round %u: %d tasks still attached after 20 s",
                      round, attached);
            monad_async_result rr = monad_async_executor_run(ex, 32, &tick);
            CHECK(rr.error == 0 || rr.error == ETIME);
        }
        CHECK_EQ(pthread_join(th, NULL), 0);
        for (int i = 0; i < STRESS_TASKS; i++) {
            CHECK_ERROR(test_errno_result(sc.errs[i]),
                        EAGAIN);
            CHECK_EQ(recs[i].exits, 1);
            CHECK_ERROR(tasks[i]->result, ECANCELED);
            if (recs[i].started) {
                CHECK(recs[i].saw_cancel);
                started_cancels++;
            }
            else {
                pending_cancels++;
            }
        }
    }
    for (int i = 0; i < STRESS_TASKS; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("ok   cross-thread cancel stress: %u rounds, %" PRIu64
           " cancelled before launch, %" PRIu64 " after\n",
           rounds, pending_cancels, started_cancels);
}

int main(void)
{
    test_watchdog(240, "cancel");
    for (unsigned entries = 0; entries <= 64; entries += 64) {
        if (entries && test_skip_ring_part("cancel on a ring executor")) {
            continue;
        }
        monad_async_executor ex = test_make_executor(entries, 0);
        for (int k = 0; k < TEST_SWITCHER_COUNT; k++) {
            same_thread(ex, (enum test_switcher_kind)k);
        }
        other_thread(ex);
        stress(ex, (unsigned)test_scaled(200));
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }
    printf("cancel: ok\n");
    return 0;
}
