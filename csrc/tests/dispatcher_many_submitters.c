/* Submission is thread-safe: 8 threads each submit 100,000 pieces of work
 * (scaled down under sanitizers) to a dispatcher with 2 executors, reusing
 * a small pool of tasks each, one by one and in batches, at all three
 * priorities; every piece runs exactly once (none lost, none duplicated),
 * and the counters agree. A lost wake-up or a lost task shows as the
 * watchdog firing with the counts.
 * Header contract: dispatcher.h ("Thread-safe, from any number of
 * threads"; "No task is lost, none runs twice" is the issue's). */
#include "dispatcher_common.h"

#define SUBMITTERS 8
#define EXECUTORS 2
#define POOL 32
#define BATCH 8

struct piece
{
    uint32_t source;
    uint32_t seq;
};

static uint8_t *executed[SUBMITTERS]; /* filled before threads start */
static _Atomic uint64_t total_executed;
static _Atomic uint64_t duplicates;
static _Atomic uint64_t out_of_range;
static unsigned long per_source;

static monad_async_result work_fn(monad_async_task task)
{
    struct piece const *const p = (struct piece const *)task->user_ptr;
    if (p->source >= SUBMITTERS || p->seq >= per_source) {
        atomic_fetch_add(&out_of_range, 1);
    }
    else {
        /* Each byte is written by whichever executor runs that piece:
         * once, unless it ran twice. */
        uint8_t *const row = executed[p->source];
        _Atomic uint8_t *const cell = (_Atomic uint8_t *)&row[p->seq];
        if (atomic_fetch_add(cell, 1) != 0) {
            atomic_fetch_add(&duplicates, 1);
        }
    }
    atomic_fetch_add(&total_executed, 1);
    return monad_async_make_success(0);
}

struct submitter
{
    pthread_t thread;
    monad_async_work_dispatcher wd;
    uint32_t id;
    monad_async_task tasks[POOL];
    struct piece pieces[POOL];
    unsigned long submit_failures;
    int last_error;
    uint64_t batches;
};

static monad_async_context_switcher g_sw;

static void *submitter_main(void *arg)
{
    struct submitter *const s = (struct submitter *)arg;
    uint32_t seq = 0;
    size_t idx = 0;
    while (seq < per_source) {
        /* Gather up to BATCH free tasks (odd submitters submit one at a
         * time), then submit them together. */
        monad_async_task batch[BATCH];
        size_t const want = (s->id % 2) ? 1 : BATCH;
        size_t got = 0;
        for (size_t scanned = 0; scanned < POOL && got < want && seq < per_source;
             scanned++, idx = (idx + 1) % POOL) {
            monad_async_task const t = s->tasks[idx];
            if (test_task_attached(t)) {
                continue;
            }
            s->pieces[idx].source = s->id;
            s->pieces[idx].seq = seq++;
            t->priority.cpu = (monad_async_priority)(s->pieces[idx].seq % 3);
            t->user_code = work_fn;
            t->user_ptr = &s->pieces[idx];
            batch[got++] = t;
        }
        if (got == 0) {
            sched_yield(); /* all in flight */
            continue;
        }
        monad_async_result const r =
            monad_async_work_dispatcher_submit(s->wd, batch, got);
        if (r.error != 0 || r.value != (intptr_t)got) {
            s->submit_failures++;
            s->last_error = r.error;
            return NULL;
        }
        s->batches++;
    }
    return NULL;
}

int main(void)
{
    test_watchdog(240, "dispatcher_many_submitters (a lost task or wake-up?)");
    per_source = test_scaled(100000);
    if (per_source != 100000) {
        test_note("scaled down to %lu tasks per thread "
                  "(MONAD_ASYNC_TEST_SCALE)",
                  per_source);
    }
    for (int i = 0; i < SUBMITTERS; i++) {
        executed[i] = (uint8_t *)calloc(per_source, 1);
        CHECK(executed[i] != NULL);
    }
    g_sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, EXECUTORS, 0);

    static struct submitter subs[SUBMITTERS];
    for (uint32_t i = 0; i < SUBMITTERS; i++) {
        subs[i].wd = wd;
        subs[i].id = i;
        for (int k = 0; k < POOL; k++) {
            subs[i].tasks[k] = test_make_task(g_sw, 16384);
        }
    }
    uint64_t const t0 = test_now_ns();
    for (int i = 0; i < SUBMITTERS; i++) {
        CHECK_EQ(pthread_create(&subs[i].thread, NULL, submitter_main,
                                &subs[i]),
                 0);
    }
    for (int i = 0; i < SUBMITTERS; i++) {
        CHECK_EQ(pthread_join(subs[i].thread, NULL), 0);
        CHECK_MSG(subs[i].submit_failures == 0,
                  "submitter %d: submit failed with %s", i,
                  test_errno_name(subs[i].last_error));
    }
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));
    uint64_t const t1 = test_now_ns();

    uint64_t const target = (uint64_t)per_source * SUBMITTERS;
    CHECK_EQ(atomic_load(&total_executed), target);
    CHECK_EQ(atomic_load(&duplicates), 0);
    CHECK_EQ(atomic_load(&out_of_range), 0);
    for (int i = 0; i < SUBMITTERS; i++) {
        uint8_t const *const row = executed[i];
        for (unsigned long s = 0; s < per_source; s++) {
            CHECK_MSG(row[s] == 1, "submitter %d piece %lu ran %d times", i,
                      s, row[s]);
        }
    }
    struct monad_async_work_dispatcher_counters c;
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.submitted, target);
    CHECK_EQ(c.dispatched, target);
    CHECK_EQ(c.executed, target);
    CHECK_EQ(c.queued, 0);
    uint64_t by_executors = 0;
    for (size_t i = 0; i < pool.n; i++) {
        struct monad_async_work_dispatcher_executor_counters ec;
        CHECK_RESULT(monad_async_work_dispatcher_executor_read_counters(
            pool.ex[i], &ec));
        by_executors += ec.dispatched;
        CHECK_GE(ec.items, ec.dispatched);
    }
    CHECK_EQ(by_executors, target);
    uint64_t batches = 0;
    for (int i = 0; i < SUBMITTERS; i++) {
        batches += subs[i].batches;
    }
    printf("%" PRIu64 " tasks from %d threads (%" PRIu64
           " submissions) through %d executors in %.3f s\n",
           target, SUBMITTERS, batches, EXECUTORS, (double)(t1 - t0) / 1e9);

    test_pool_shutdown(&pool);
    for (int i = 0; i < SUBMITTERS; i++) {
        for (int k = 0; k < POOL; k++) {
            CHECK_RESULT(monad_async_task_destroy(subs[i].tasks[k]));
        }
        free(executed[i]);
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(g_sw));
    printf("dispatcher_many_submitters: ok\n");
    return 0;
}
