/* Parking and waking (task.h: monad_async_task_park, _wake, _wake_token),
 * in every state, on executors with and without a ring:
 *
 *  1. park then wake from another task of the same executor;
 *  2. wake then park: the permit makes the park return at once, and only
 *     once (a second park waits again);
 *  3. wake from another thread while the executor sleeps (in the ring, or
 *     in its futex without one), measured: it must not wait for a
 *     timeout;
 *  4. a deadline: ETIME, never early; a wake before it wins;
 *  5. cancel while parked, from the owner thread and from another thread:
 *     ECANCELED;
 *  6. stale tokens: after the work exits, and after the task is reused
 *     for new work, a wake is refused with ESRCH and resumes nothing;
 *  7. destroy with tasks parked (with and without deadlines): they resume
 *     with ECANCELED and run to their exit;
 *  8. bad input: NULL, not inside the task, the none switcher, a task
 *     not attached;
 *  9. a cross-thread race: waker threads and deadlines hit the same
 *     parkings; every parking is resumed exactly once (no double resume,
 *     no lost wake), for TSan.
 */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- shared by the scenarios ---- */

struct parker
{
    monad_async_task task;
    uint64_t token;
    _Atomic int parked_now; /* set just before park, for remote wakers */
    int results[8];
    int nresults;
    uint64_t timeout_ns;
    int parks;
};

static monad_async_result park_n_fn(monad_async_task task)
{
    struct parker *const p = task->user_ptr;
    CHECK_RESULT(monad_async_task_wake_token(task, &p->token));
    for (int i = 0; i < p->parks; i++) {
        atomic_store(&p->parked_now, 1);
        monad_async_result const r = monad_async_task_park(task, p->timeout_ns);
        atomic_store(&p->parked_now, 0);
        p->results[p->nresults++] = r.error;
        if (r.error == ECANCELED) {
            break;
        }
    }
    return monad_async_make_success(0);
}

static struct parker *g_target;

static monad_async_result waker_fn(monad_async_task task)
{
    (void)task;
    monad_async_result const r =
        monad_async_task_wake(g_target->task, g_target->token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1); /* it was parked: resumed */
    return monad_async_make_success(0);
}

static void attach(monad_async_executor ex, monad_async_task t,
                   monad_async_result (*fn)(monad_async_task), void *arg)
{
    t->user_code = fn;
    t->user_ptr = arg;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
}

static void run_some(monad_async_executor ex)
{
    struct timespec const zero = {0, 0};
    for (int i = 0; i < 16; i++) {
        monad_async_result const r = monad_async_executor_run(ex, 64, &zero);
        if (r.error == ETIME) {
            return;
        }
        CHECK_RESULT(r);
    }
}

/* ---- 1, 2: same thread ---- */

static void same_thread(monad_async_executor ex, monad_async_context_switcher sw)
{
    monad_async_task a = test_make_task(sw, 0);
    monad_async_task b = test_make_task(sw, 0);
    struct parker p;
    memset(&p, 0, sizeof(p));
    p.task = a;
    p.parks = 1;
    p.timeout_ns = UINT64_MAX;
    attach(ex, a, park_n_fn, &p);
    run_some(ex);
    /* Parked: attached, suspended, on no ready queue, and it stays so. */
    CHECK(test_task_attached(a));
    CHECK(test_task_state(a) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    CHECK_EQ(p.nresults, 0);
    run_some(ex);
    CHECK_EQ(p.nresults, 0);
    g_target = &p;
    attach(ex, b, waker_fn, NULL);
    test_run_until_detached(ex, a, 5000);
    CHECK_EQ(p.nresults, 1);
    CHECK_EQ(p.results[0], 0);

    /* 2: wake before park, from the owner thread outside the run. Two
     * parks with a short deadline: the first takes the permit at once,
     * the second waits and times out (one permit, not two). */
    memset(&p, 0, sizeof(p));
    p.task = a;
    p.parks = 2;
    p.timeout_ns = 2 * 1000 * 1000;
    a->user_code = park_n_fn;
    a->user_ptr = &p;
    CHECK_RESULT(monad_async_task_attach(ex, a, NULL));
    uint64_t token;
    CHECK_RESULT(monad_async_task_wake_token(a, &token));
    monad_async_result r = monad_async_task_wake(a, token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0); /* a permit */
    r = monad_async_task_wake(a, token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0); /* still one permit */
    uint64_t const t0 = test_now_ns();
    test_run_until_detached(ex, a, 5000);
    uint64_t const took = test_now_ns() - t0;
    CHECK_EQ(p.nresults, 2);
    CHECK_EQ(p.results[0], 0);
    CHECK_EQ(p.results[1], ETIME);
    CHECK_GE(took, 2 * 1000 * 1000); /* the deadline is never early */

    /* 6: the token of that work is stale now, and after reuse too. */
    CHECK_ERROR(monad_async_task_wake(a, token), ESRCH);
    memset(&p, 0, sizeof(p));
    p.task = a;
    p.parks = 1;
    p.timeout_ns = 20 * 1000 * 1000;
    a->user_ptr = &p;
    CHECK_RESULT(monad_async_task_attach(ex, a, NULL));
    CHECK_ERROR(monad_async_task_wake(a, token), ESRCH);
    run_some(ex);
    CHECK_ERROR(monad_async_task_wake(a, token), ESRCH);
    CHECK_EQ(p.nresults, 0); /* the stale wake resumed nothing */
    test_run_until_detached(ex, a, 5000);
    CHECK_EQ(p.results[0], ETIME);
    CHECK_ERROR(monad_async_task_wake_token(a, &token), ENOENT);

    CHECK_RESULT(monad_async_task_destroy(a));
    CHECK_RESULT(monad_async_task_destroy(b));
}

/* ---- 3: from another thread while the executor sleeps ---- */

struct remote
{
    struct parker *p;
    uint64_t delay_ns;
    uint64_t woke_at;
    monad_async_executor ex;
    int cancel; /* cancel instead of wake */
};

static void *remote_fn(void *arg)
{
    struct remote *const rm = arg;
    while (!atomic_load(&rm->p->parked_now)) {
        test_sleep_ns(100 * 1000);
    }
    test_sleep_ns(rm->delay_ns);
    rm->woke_at = test_now_ns();
    if (rm->cancel) {
        CHECK_ERROR(monad_async_task_cancel(rm->ex, rm->p->task), EAGAIN);
    }
    else {
        monad_async_result const r =
            monad_async_task_wake(rm->p->task, rm->p->token);
        CHECK_RESULT(r);
    }
    return NULL;
}

static void remote_wake(monad_async_executor ex, monad_async_context_switcher sw,
                        int cancel)
{
    monad_async_task a = test_make_task(sw, 0);
    struct parker p;
    memset(&p, 0, sizeof(p));
    p.task = a;
    p.parks = 1;
    p.timeout_ns = UINT64_MAX;
    attach(ex, a, park_n_fn, &p);
    struct remote rm = {&p, 20 * 1000 * 1000, 0, ex, cancel};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, remote_fn, &rm), 0);
    uint64_t const sleeps_before = ex->counters.sleeps;
    /* run with no timeout: only the wake (or cancel) can end this. */
    while (test_task_attached(a)) {
        monad_async_result const r = monad_async_executor_run(ex, 64, NULL);
        CHECK_RESULT(r);
    }
    uint64_t const latency = test_now_ns() - rm.woke_at;
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(p.nresults, 1);
    CHECK_EQ(p.results[0], cancel ? ECANCELED : 0);
    CHECK_GT(ex->counters.sleeps, sleeps_before); /* it really slept */
    /* A wake-up, not a poll: well under the 20 ms the waker waited. */
    CHECK_LT(latency, (TEST_UNDER_ANY_SANITIZER ? 200u : 10u) * 1000 * 1000);
    test_note("%s: remote %s to resumed in %.1f us",
              ex->ring.sq_entries ? "ring" : "no ring",
              cancel ? "cancel" : "wake", (double)latency / 1000.0);
    CHECK_RESULT(monad_async_task_destroy(a));
}

/* ---- 4, 5: deadline races and local cancel ---- */

static void deadline_and_cancel(monad_async_executor ex,
                                monad_async_context_switcher sw)
{
    /* A wake before the deadline wins; the deadline then never fires. */
    monad_async_task a = test_make_task(sw, 0);
    monad_async_task b = test_make_task(sw, 0);
    struct parker p;
    memset(&p, 0, sizeof(p));
    p.task = a;
    p.parks = 1;
    p.timeout_ns = 50 * 1000 * 1000;
    attach(ex, a, park_n_fn, &p);
    run_some(ex);
    g_target = &p;
    attach(ex, b, waker_fn, NULL);
    uint64_t const t0 = test_now_ns();
    test_run_until_detached(ex, a, 5000);
    CHECK_LT(test_now_ns() - t0, 40 * 1000 * 1000);
    CHECK_EQ(p.results[0], 0);

    /* Cancel from the owner thread while parked, with and without a
     * deadline. */
    for (int with_deadline = 0; with_deadline < 2; with_deadline++) {
        memset(&p, 0, sizeof(p));
        p.task = a;
        p.parks = 3;
        p.timeout_ns = with_deadline ? 10ull * 1000 * 1000 * 1000 : UINT64_MAX;
        attach(ex, a, park_n_fn, &p);
        run_some(ex);
        CHECK_EQ(p.nresults, 0);
        CHECK_ERROR(monad_async_task_cancel(ex, a), EAGAIN);
        test_run_until_detached(ex, a, 5000);
        CHECK_EQ(p.nresults, 1);
        CHECK_EQ(p.results[0], ECANCELED);
    }
    CHECK_RESULT(monad_async_task_destroy(a));
    CHECK_RESULT(monad_async_task_destroy(b));
}

/* ---- 7: destroy with parked tasks ---- */

static void destroy_with_parked(unsigned entries, monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    enum { N = 6 };
    monad_async_task t[N];
    struct parker p[N];
    memset(p, 0, sizeof(p));
    for (int i = 0; i < N; i++) {
        t[i] = test_make_task(sw, 0);
        p[i].task = t[i];
        p[i].parks = 1;
        p[i].timeout_ns = (i & 1) ? 60ull * 1000 * 1000 * 1000 : UINT64_MAX;
        attach(ex, t[i], park_n_fn, &p[i]);
    }
    run_some(ex);
    uint64_t const t0 = test_now_ns();
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_LT(test_now_ns() - t0, 1000ull * 1000 * 1000);
    for (int i = 0; i < N; i++) {
        CHECK(!test_task_attached(t[i]));
        CHECK_EQ(p[i].nresults, 1);
        CHECK_EQ(p[i].results[0], ECANCELED);
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
}

/* ---- 8: bad input ---- */

static monad_async_result park_none_fn(monad_async_task task)
{
    CHECK_ERROR(monad_async_task_park(task, UINT64_MAX), ENOTSUP);
    return monad_async_make_success(0);
}

static void bad_input(monad_async_executor ex, monad_async_context_switcher sw)
{
    uint64_t token;
    CHECK_ERROR(monad_async_task_park(NULL, 0), EINVAL);
    CHECK_ERROR(monad_async_task_wake(NULL, 0), EINVAL);
    CHECK_ERROR(monad_async_task_wake_token(NULL, &token), EINVAL);
    monad_async_task a = test_make_task(sw, 0);
    CHECK_ERROR(monad_async_task_wake_token(a, NULL), EINVAL);
    CHECK_ERROR(monad_async_task_wake_token(a, &token), ENOENT);
    /* Not inside the task. */
    CHECK_ERROR(monad_async_task_park(a, 0), EINVAL);
    /* A token of no work at all. */
    CHECK_ERROR(monad_async_task_wake(a, 12345), ESRCH);
    CHECK_RESULT(monad_async_task_destroy(a));

    monad_async_context_switcher none = test_make_switcher(TEST_SWITCHER_NONE);
    monad_async_task n = test_make_task(none, 0);
    attach(ex, n, park_none_fn, NULL);
    test_run_until_detached(ex, n, 5000);
    CHECK_RESULT(monad_async_task_destroy(n));
    CHECK_RESULT(monad_async_context_switcher_destroy(none));
}

/* ---- 9: cross-thread race ---- */

enum { RACE_TASKS = 8 };

struct race
{
    monad_async_task task;
    _Atomic uint64_t token; /* 0: not published */
    _Atomic int parks_left;
    int resumes;
    int woken;
    int timed_out;
};

static struct race g_race[RACE_TASKS];
static _Atomic int g_race_stop;
static _Atomic uint64_t g_race_wakes;

static monad_async_result race_fn(monad_async_task task)
{
    struct race *const rc = task->user_ptr;
    uint64_t token;
    CHECK_RESULT(monad_async_task_wake_token(task, &token));
    atomic_store(&rc->token, token);
    while (atomic_load(&rc->parks_left) > 0) {
        atomic_fetch_sub(&rc->parks_left, 1);
        /* Deadlines of 0-20 us race with the wakers. */
        uint64_t const ns = (uint64_t)(atomic_load(&rc->parks_left) % 21) * 1000;
        monad_async_result const r = monad_async_task_park(task, ns + 1);
        rc->resumes++;
        if (r.error == 0) {
            rc->woken++;
        }
        else {
            CHECK_EQ(r.error, ETIME);
            rc->timed_out++;
        }
    }
    return monad_async_make_success(0);
}

static void *race_waker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&g_race_stop)) {
        seed = seed * 1103515245u + 12345u;
        struct race *const rc = &g_race[(seed >> 16) % RACE_TASKS];
        uint64_t const token = atomic_load(&rc->token);
        if (token != 0) {
            monad_async_result const r = monad_async_task_wake(rc->task, token);
            CHECK(r.error == 0 || r.error == ESRCH);
            atomic_fetch_add(&g_race_wakes, 1);
        }
    }
    return NULL;
}

static void cross_thread_race(unsigned entries, monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    int const parks = (int)test_scaled(20000);
    for (int i = 0; i < RACE_TASKS; i++) {
        memset(&g_race[i], 0, sizeof(g_race[i]));
        g_race[i].task = test_make_task(sw, 0);
        atomic_store(&g_race[i].parks_left, parks);
        attach(ex, g_race[i].task, race_fn, &g_race[i]);
    }
    atomic_store(&g_race_stop, 0);
    atomic_store(&g_race_wakes, 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(pthread_create(&th[i], NULL, race_waker, (void *)(uintptr_t)(i + 1)), 0);
    }
    int remaining = RACE_TASKS;
    uint64_t const deadline = test_now_ns() + 120ull * 1000 * 1000 * 1000;
    struct timespec const tick = {0, 10 * 1000 * 1000};
    while (remaining > 0) {
        CHECK_LT(test_now_ns(), deadline);
        monad_async_result const r = monad_async_executor_run(ex, 256, &tick);
        CHECK(r.error == 0 || r.error == ETIME);
        remaining = 0;
        for (int i = 0; i < RACE_TASKS; i++) {
            remaining += test_task_attached(g_race[i].task);
        }
    }
    atomic_store(&g_race_stop, 1);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    }
    int woken = 0, timed_out = 0;
    for (int i = 0; i < RACE_TASKS; i++) {
        /* Exactly one resumption per park: a double resume would run the
         * task past a parking twice (and corrupt the queues); a lost one
         * would hang it (the deadline bounds the run here). */
        CHECK_EQ(g_race[i].resumes, parks);
        CHECK_EQ(g_race[i].woken + g_race[i].timed_out, parks);
        woken += g_race[i].woken;
        timed_out += g_race[i].timed_out;
        CHECK_RESULT(monad_async_task_destroy(g_race[i].task));
    }
    CHECK_EQ(ex->tasks_attached, 0);
    test_note("%s race: %d parks, %d woken, %d timed out, %" PRIu64 " wake calls",
              entries ? "ring" : "no ring", RACE_TASKS * parks, woken,
              timed_out, atomic_load(&g_race_wakes));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

int main(void)
{
    test_watchdog(240, "park");
    unsigned const kinds[] = {0, 16};
    char const *const no_ring = test_no_ring_reason();
    for (int k = 0; k < 2; k++) {
        unsigned const entries = kinds[k];
        if (entries != 0 && no_ring != NULL) {
            test_note("SKIPPED parking on a ring executor: %s", no_ring);
            continue;
        }
        for (int s = 0; s < TEST_SWITCHER_NONE; s++) {
            monad_async_context_switcher sw =
                test_make_switcher((enum test_switcher_kind)s);
            monad_async_executor ex = entries ? test_make_ring_executor(entries, 0)
                                              : test_make_executor(0, 0);
            same_thread(ex, sw);
            remote_wake(ex, sw, 0);
            remote_wake(ex, sw, 1);
            deadline_and_cancel(ex, sw);
            bad_input(ex, sw);
            CHECK_EQ(ex->tasks_attached, 0);
            CHECK_RESULT(monad_async_executor_destroy(ex));
            destroy_with_parked(entries, sw);
            if (s == TEST_SWITCHER_ASM) {
                cross_thread_race(entries, sw);
            }
            CHECK_RESULT(monad_async_context_switcher_destroy(sw));
        }
    }
    return 0;
}
