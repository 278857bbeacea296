/* Changing attached work's CPU priority from other threads (task.h:
 * monad_async_task_set_cpu_priority), on executors with and without a
 * ring:
 *
 *  1. a task still in the executor's inbox (attached from another
 *     thread, not yet taken): a change from the owner thread, outside the
 *     run and inside it, is adopted when the task is taken from there, so
 *     it runs ahead of the Normal task queued before it;
 *  2. a task still in a work dispatcher's queue: its executor runs it at
 *     the new level; a cancel of the queue makes its token stale;
 *  3. a remote raise while the executor sleeps wakes it and applies
 *     before the next slice;
 *  4. under load: three threads change the priorities of eight long-lived
 *     tasks (yielding, parking with deadlines, sleeping) and of short-lived
 *     tasks whose tokens go stale as they are used, while the executor
 *     runs thousands of short tasks at mixed priorities (bounded). Each
 *     thread owns some long-lived tasks and remembers the last level it
 *     set for each: once the threads are done, every one of them must read
 *     exactly that level (changes coalesce, the last one made wins). A
 *     short-lived task must never start its work at a level meant for an
 *     earlier work of the same task (the threads only ever raise them to
 *     High; they are attached at Normal or Low). For TSan.
 */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>

static uint64_t token_of(monad_async_task t)
{
    uint64_t tok = 0;
    CHECK_RESULT(monad_async_task_wake_token(t, &tok));
    return tok;
}

static void run_all(monad_async_executor ex)
{
    struct timespec const tick = {0, 1000 * 1000};
    uint64_t const deadline = test_now_ns() + 30ull * 1000 * 1000 * 1000;
    while (ex->tasks_attached != 0) {
        CHECK_LT(test_now_ns(), deadline);
        monad_async_result const r = monad_async_executor_run(ex, SIZE_MAX, &tick);
        if (r.error != ETIME) {
            CHECK_RESULT(r);
        }
    }
}

static int order[16];
static _Atomic int norder;

static monad_async_result id_fn(monad_async_task task)
{
    order[atomic_fetch_add(&norder, 1)] = (int)(intptr_t)task->user_ptr;
    return monad_async_make_success(0);
}

static void prep(monad_async_task t, monad_async_result (*fn)(monad_async_task),
                 intptr_t id, monad_async_priority p)
{
    t->user_code = fn;
    t->user_ptr = (void *)id;
    t->priority.cpu = p;
}

/* ---- 1: in the inbox ---- */

struct remote_attach
{
    monad_async_executor ex;
    monad_async_task task;
    _Atomic int done;
};

static void *remote_attach_fn(void *arg)
{
    struct remote_attach *const ra = arg;
    CHECK_RESULT(monad_async_task_attach(ra->ex, ra->task, NULL));
    atomic_store(&ra->done, 1);
    return NULL;
}

static struct remote_attach *g_ra;
static pthread_t g_ra_thread;

/* High, running: has a thread attach the task and waits for it (the
 * executor takes nothing from its inbox during this slice), then raises
 * the task in the inbox. */
static monad_async_result raise_in_inbox_fn(monad_async_task task)
{
    (void)task;
    CHECK_EQ(pthread_create(&g_ra_thread, NULL, remote_attach_fn, g_ra), 0);
    uint64_t const deadline = test_now_ns() + 10ull * 1000 * 1000 * 1000;
    while (!atomic_load(&g_ra->done)) {
        CHECK_LT(test_now_ns(), deadline);
    }
    CHECK(test_task_state(g_ra->task) & MONAD_ASYNC_TASK_STATE_IN_INBOX);
    CHECK_RESULT(monad_async_task_set_cpu_priority(
        g_ra->task, token_of(g_ra->task), monad_async_priority_high));
    return monad_async_make_success(0);
}

static void in_inbox(monad_async_executor ex, monad_async_task *t)
{
    for (int inside = 0; inside < 2; inside++) {
        struct remote_attach ra = {.ex = ex, .task = t[0]};
        atomic_init(&ra.done, 0);
        g_ra = &ra;
        prep(t[0], id_fn, 0, monad_async_priority_low);
        prep(t[1], id_fn, 1, monad_async_priority_normal);
        CHECK_RESULT(monad_async_task_attach(ex, t[1], NULL));
        if (inside) {
            prep(t[2], raise_in_inbox_fn, 2, monad_async_priority_high);
            CHECK_RESULT(monad_async_task_attach(ex, t[2], NULL));
        }
        else {
            CHECK_EQ(pthread_create(&g_ra_thread, NULL, remote_attach_fn, &ra), 0);
            CHECK_EQ(pthread_join(g_ra_thread, NULL), 0);
            CHECK(test_task_state(t[0]) & MONAD_ASYNC_TASK_STATE_IN_INBOX);
            CHECK_RESULT(monad_async_task_set_cpu_priority(
                t[0], token_of(t[0]), monad_async_priority_high));
        }
        atomic_store(&norder, 0);
        run_all(ex);
        if (inside) {
            CHECK_EQ(pthread_join(g_ra_thread, NULL), 0);
        }
        CHECK_EQ(atomic_load(&norder), 2);
        CHECK_MSG(order[0] == 0 && order[1] == 1,
                  "in the inbox (%s the run): ran %d then %d, want 0 then 1",
                  inside ? "inside" : "outside", order[0], order[1]);
        CHECK_EQ(t[0]->priority.cpu, monad_async_priority_high);
    }
}

/* ---- 2: in a work dispatcher's queue ---- */

static monad_async_priority g_seen;

static monad_async_result seen_fn(monad_async_task task)
{
    g_seen = task->priority.cpu;
    return monad_async_make_success(0);
}

static void in_dispatcher(monad_async_task *t)
{
    monad_async_work_dispatcher wd;
    CHECK_RESULT(monad_async_work_dispatcher_create(&wd, NULL));
    prep(t[0], seen_fn, 0, monad_async_priority_low);
    CHECK_RESULT(monad_async_work_dispatcher_submit(wd, &t[0], 1));
    CHECK(test_task_state(t[0]) & MONAD_ASYNC_TASK_STATE_QUEUED);
    uint64_t const tok = token_of(t[0]);
    CHECK_RESULT(
        monad_async_task_set_cpu_priority(t[0], tok, monad_async_priority_high));
    struct monad_async_work_dispatcher_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    monad_async_work_dispatcher_executor wex;
    CHECK_RESULT(monad_async_work_dispatcher_executor_create(&wex, wd, &attr));
    g_seen = monad_async_priority_max;
    uint64_t const deadline = test_now_ns() + 10ull * 1000 * 1000 * 1000;
    while (test_task_attached(t[0])) {
        CHECK_LT(test_now_ns(), deadline);
        monad_async_result const r = monad_async_work_dispatcher_executor_run(wex);
        CHECK_RESULT(r);
    }
    CHECK_EQ(g_seen, monad_async_priority_high);
    CHECK_ERROR(
        monad_async_task_set_cpu_priority(t[0], tok, monad_async_priority_low),
        ENOENT);

    /* Cancelled while queued: its token is stale. */
    prep(t[0], seen_fn, 0, monad_async_priority_low);
    CHECK_RESULT(monad_async_work_dispatcher_executor_destroy(wex));
    CHECK_RESULT(monad_async_work_dispatcher_submit(wd, &t[0], 1));
    uint64_t const tok2 = token_of(t[0]);
    CHECK_RESULT(monad_async_work_dispatcher_cancel_queued(wd));
    CHECK_ERROR(
        monad_async_task_set_cpu_priority(t[0], tok2, monad_async_priority_high),
        ENOENT);
    CHECK_EQ(t[0]->priority.cpu, monad_async_priority_low);
    CHECK_RESULT(monad_async_work_dispatcher_destroy(wd));
}

/* ---- 3: a sleeping executor ---- */

struct raiser
{
    monad_async_task task;
    uint64_t token;
    uint64_t delay_ns;
};

static void *raise_later_fn(void *arg)
{
    struct raiser const *const r = arg;
    test_sleep_ns(r->delay_ns);
    CHECK_RESULT(monad_async_task_set_cpu_priority(r->task, r->token,
                                                   monad_async_priority_high));
    return NULL;
}

static uint64_t g_park_token;

static monad_async_result park_fn(monad_async_task task)
{
    g_park_token = token_of(task);
    CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
    order[atomic_fetch_add(&norder, 1)] = (int)(intptr_t)task->user_ptr;
    return monad_async_make_success(0);
}

static void sleeping_executor(monad_async_executor ex, monad_async_task *t)
{
    /* A parked Low task raised by a thread while the executor waits with
     * nothing to run: the change wakes it (it drains the change and goes
     * back to sleep until its timeout), and the task, once woken, runs at
     * its new level ahead of a Normal task. */
    struct timespec const zero = {0, 0};
    prep(t[0], park_fn, 0, monad_async_priority_low);
    CHECK_RESULT(monad_async_task_attach(ex, t[0], NULL));
    CHECK_RESULT(monad_async_executor_run(ex, SIZE_MAX, &zero));
    CHECK(test_task_state(t[0]) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    uint64_t const sleeps = ex->counters.sleeps;
    uint64_t const drained = ex->counters.inbox_drained;
    struct raiser r = {t[0], g_park_token, 20 * 1000 * 1000};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, raise_later_fn, &r), 0);
    struct timespec const wait = {0, 300 * 1000 * 1000};
    CHECK_ERROR(monad_async_executor_run(ex, SIZE_MAX, &wait), ETIME);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(ex->counters.inbox_drained, drained + 1);
    CHECK_GE(ex->counters.sleeps, sleeps + 2); /* woken, slept again */
    CHECK_EQ(t[0]->priority.cpu, monad_async_priority_high);
    prep(t[1], id_fn, 1, monad_async_priority_normal);
    CHECK_RESULT(monad_async_task_attach(ex, t[1], NULL));
    atomic_store(&norder, 0);
    monad_async_result const w = monad_async_task_wake(t[0], g_park_token);
    CHECK_RESULT(w);
    CHECK_EQ(w.value, 1);
    run_all(ex);
    CHECK_EQ(atomic_load(&norder), 2);
    CHECK_MSG(order[0] == 0 && order[1] == 1,
              "raised while parked: ran %d then %d, want 0 then 1", order[0],
              order[1]);
}

/* ---- 4: under load ---- */

#define LONG_TASKS 8
#define SHORT_TASKS 64
#define THREADS 3

struct load
{
    monad_async_executor ex;
    monad_async_task longs[LONG_TASKS];
    _Atomic uint64_t long_tokens[LONG_TASKS];
    monad_async_priority last[LONG_TASKS];     /* by the owning thread */
    _Atomic int last_set[LONG_TASKS];          /* it set one */
    monad_async_task shorts[SHORT_TASKS];
    _Atomic uint64_t short_tokens[SHORT_TASKS];
    _Atomic int stop_changers;
    _Atomic int verify;                        /* the longs check and end */
    _Atomic int changers_done;
    int short_left;                            /* works still to attach */
    int short_live;
    unsigned long iterations;
    _Atomic uint64_t ok;
    _Atomic uint64_t stale;
    int leaked;
};

static struct load *g_load;
static volatile unsigned g_sink;

static monad_async_result long_fn(monad_async_task task)
{
    struct load *const L = g_load;
    int const i = (int)(intptr_t)task->user_ptr;
    atomic_store(&L->long_tokens[i], token_of(task));
    for (unsigned n = 0; !atomic_load(&L->verify); n++) {
        monad_async_result r;
        switch (n % 4) {
        case 0:
        case 1:
            r = monad_async_task_yield(task);
            break;
        case 2:
            r = monad_async_task_park(task, 100 * 1000); /* 100 us */
            if (r.error == ETIME) {
                r = monad_async_make_success(0);
            }
            break;
        default:
            r = monad_async_task_suspend_for_duration(task, 50 * 1000);
            break;
        }
        CHECK_RESULT(r);
    }
    if (atomic_load(&L->last_set[i])) {
        CHECK_MSG(task->priority.cpu == L->last[i],
                  "long task %d runs at %d after the changes, but the last "
                  "change made was to %d",
                  i, (int)task->priority.cpu, (int)L->last[i]);
    }
    return monad_async_make_success(0);
}

static monad_async_result short_fn(monad_async_task task)
{
    struct load *const L = g_load;
    int const i = (int)(intptr_t)task->user_ptr;
    /* Attached at Normal or Low; only a change for this work, which needs
     * the token published below, could have made it High. */
    if (task->priority.cpu == monad_async_priority_high) {
        L->leaked++;
    }
    atomic_store(&L->short_tokens[i], token_of(task));
    for (int y = 0; y < 3; y++) {
        CHECK_RESULT(monad_async_task_yield(task));
    }
    /* A little CPU, so that the levels' queues fill up. */
    for (int k = 0; k < 200; k++) {
        g_sink += (unsigned)k;
    }
    return monad_async_make_success(0);
}

static void short_exit(monad_async_task task)
{
    struct load *const L = g_load;
    L->short_live--;
    if (L->short_left > 0) {
        L->short_left--;
        task->priority.cpu = (L->short_left % 3 == 0)
                                 ? monad_async_priority_low
                                 : monad_async_priority_normal;
        CHECK_RESULT(monad_async_task_attach(L->ex, task, NULL));
        L->short_live++;
    }
}

struct changer
{
    struct load *L;
    int id;
    unsigned seed;
};

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void *changer_fn(void *arg)
{
    struct changer *const c = arg;
    struct load *const L = c->L;
    /* Start once every long task has published its token. */
    for (int i = 0; i < LONG_TASKS; i++) {
        while (atomic_load(&L->long_tokens[i]) == 0) {
            sched_yield();
        }
    }
    for (unsigned long n = 0;
         n < L->iterations && !atomic_load(&L->stop_changers); n++) {
        unsigned const r = next_rand(&c->seed);
        if (r % 2 == 0) {
            /* One of its own long-lived tasks, to any level. */
            int const i = c->id + THREADS * (int)((r / 2) % ((LONG_TASKS + THREADS - 1 - c->id) / THREADS));
            if (i >= LONG_TASKS) {
                continue;
            }
            uint64_t const tok = atomic_load(&L->long_tokens[i]);
            if (tok == 0) {
                continue; /* not started yet */
            }
            monad_async_priority const p =
                (monad_async_priority)((r / 64) % monad_async_priority_max);
            CHECK_RESULT(monad_async_task_set_cpu_priority(L->longs[i], tok, p));
            L->last[i] = p;
            atomic_store(&L->last_set[i], 1);
            atomic_fetch_add(&L->ok, 1);
        }
        else {
            /* Any short-lived task, with the token of whatever work it
             * last published: often over by now. */
            int const i = (int)((r / 2) % SHORT_TASKS);
            uint64_t const tok = atomic_load(&L->short_tokens[i]);
            if (tok == 0) {
                continue;
            }
            monad_async_result const res = monad_async_task_set_cpu_priority(
                L->shorts[i], tok, monad_async_priority_high);
            if (res.error == 0) {
                atomic_fetch_add(&L->ok, 1);
            }
            else {
                CHECK_EQ(res.error, ENOENT);
                atomic_fetch_add(&L->stale, 1);
            }
        }
        if (n % 64 == 0) {
            sched_yield();
        }
    }
    atomic_fetch_add(&L->changers_done, 1);
    return NULL;
}

static void under_load(unsigned entries, monad_async_context_switcher sw)
{
    struct load *const L = calloc(1, sizeof(*L));
    CHECK(L != NULL);
    g_load = L;
    L->ex = entries ? test_make_ring_executor(entries, 0) : test_make_executor(0, 0);
    L->iterations = test_scaled(TEST_UNDER_TSAN ? 200000 : 2000000);
    L->short_left = (int)test_scaled(TEST_UNDER_TSAN ? 5000 : 20000);
    for (int i = 0; i < LONG_TASKS; i++) {
        L->longs[i] = test_make_task(sw, 0);
        prep(L->longs[i], long_fn, i,
             (monad_async_priority)(i % monad_async_priority_max));
        CHECK_RESULT(monad_async_task_attach(L->ex, L->longs[i], NULL));
    }
    for (int i = 0; i < SHORT_TASKS; i++) {
        L->shorts[i] = test_make_task(sw, 0);
        prep(L->shorts[i], short_fn, i,
             i % 2 ? monad_async_priority_normal : monad_async_priority_low);
        L->shorts[i]->user_on_exit = short_exit;
        CHECK_RESULT(monad_async_task_attach(L->ex, L->shorts[i], NULL));
        L->short_live++;
    }
    pthread_t th[THREADS];
    struct changer c[THREADS];
    for (int k = 0; k < THREADS; k++) {
        c[k] = (struct changer){L, k, 7u + (unsigned)k * 7919u};
        CHECK_EQ(pthread_create(&th[k], NULL, changer_fn, &c[k]), 0);
    }
    uint64_t const min_ok = test_scaled(2000);
    uint64_t const t0 = test_now_ns();
    uint64_t const deadline = t0 + 100ull * 1000 * 1000 * 1000;
    struct timespec const tick = {0, 1000 * 1000};
    while (atomic_load(&L->changers_done) < THREADS || L->short_live > 0) {
        CHECK_LT(test_now_ns(), deadline);
        /* The load is over once the short works are done and the
         * changers have had their turn (threads may start late on a busy
         * machine: the long tasks keep running meanwhile). */
        if (L->short_live == 0 && atomic_load(&L->ok) >= min_ok) {
            atomic_store(&L->stop_changers, 1);
        }
        monad_async_result const r =
            monad_async_executor_run(L->ex, 256, &tick);
        if (r.error != ETIME) {
            CHECK_RESULT(r);
        }
    }
    for (int k = 0; k < THREADS; k++) {
        CHECK_EQ(pthread_join(th[k], NULL), 0);
    }
    /* Every change has been pushed: the next pass of the run loop drains
     * them all before any long task runs again. */
    atomic_store(&L->verify, 1);
    run_all(L->ex);
    CHECK_EQ(L->leaked, 0);
    test_note("%s executor: %d short works; %" PRIu64
              " changes reached live work, %" PRIu64 " were stale, in %.0f ms",
              entries ? "ring" : "ring-less",
              SHORT_TASKS + (int)test_scaled(TEST_UNDER_TSAN ? 5000 : 20000),
              atomic_load(&L->ok),
              atomic_load(&L->stale), (double)(test_now_ns() - t0) / 1e6);
    CHECK_GE(atomic_load(&L->ok), min_ok);
    for (int p = 0; p < monad_async_priority_max; p++) {
        CHECK_EQ(L->ex->tasks_runnable[p], 0);
    }
    CHECK_RESULT(monad_async_executor_destroy(L->ex));
    for (int i = 0; i < LONG_TASKS; i++) {
        CHECK_RESULT(monad_async_task_destroy(L->longs[i]));
    }
    for (int i = 0; i < SHORT_TASKS; i++) {
        CHECK_RESULT(monad_async_task_destroy(L->shorts[i]));
    }
    free(L);
}

int main(void)
{
    test_watchdog(240, "priority_change_remote");
    unsigned const kinds[] = {0, 16};
    char const *const no_ring = test_no_ring_reason();
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = test_make_task(sw, 0);
    }
    for (int k = 0; k < 2; k++) {
        unsigned const entries = kinds[k];
        if (entries != 0 && no_ring != NULL) {
            test_note("SKIPPED priority changes on a ring executor: %s", no_ring);
            continue;
        }
        monad_async_executor ex = entries ? test_make_ring_executor(entries, 0)
                                          : test_make_executor(0, 0);
        in_inbox(ex, t);
        sleeping_executor(ex, t);
        CHECK_RESULT(monad_async_executor_destroy(ex));
        under_load(entries, sw);
    }
    in_dispatcher(t);
    for (int i = 0; i < 3; i++) {
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    return 0;
}
