/* Hand-off (handoff.c): a task that parks right after waking a sibling
 * switches straight to the task the run loop would have run next. What a
 * user relies on, checked here on every stackful switcher (asm hands off,
 * sjlj goes through the loop: both must behave the same), with and
 * without a ring:
 *
 *  1. ping-pong: two tasks pass a turn N times; run's max_items counts
 *     every slice, hand-offs included (run(1) runs exactly one, run(3)
 *     three), and the time figures add up exactly: the executor's
 *     launching + resuming ticks equal the sum of its tasks' executing
 *     ticks, and every suspension is matched by a resumption;
 *  2. priorities: a pair at Normal, a High task parked; when one of the
 *     pair wakes the High task and its partner and parks, the High task
 *     runs next, then the partner; a Low task ready all along runs only
 *     once the pair is done;
 *  3. a High task is never starved by a ping-pong pair at Low: it wakes
 *     from a park with a deadline (the timer list) and from another
 *     thread (the inbox) while the pair passes its turn, within a bound;
 *  4. a thread waking one of the pair (spurious permits) and then
 *     cancelling both while they pass their turn: no wake-up lost, no
 *     double resume, both end (cancelled or done);
 *  5. a pair on two different switchers (asm and sjlj): no hand-off
 *     possible, same behaviour. */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- a ping-pong pair ---- */

struct pair
{
    monad_async_task task[2];
    uint64_t token[2];
    _Atomic unsigned turn; /* whose turn: 0 or 1 */
    unsigned long rounds;  /* each passes the turn this many times */
    unsigned long passes[2];
    int err[2];
    /* Case 2: when passes[0] reaches this, task 0 wakes `high` too. */
    unsigned long wake_high_at;
    monad_async_task high;
    uint64_t high_token;
    /* An order log: 'a', 'b', 'H', 'L'. */
    char *log;
    size_t log_len, log_cap;
};

static void log_char(struct pair *p, char c)
{
    if (p->log != NULL && p->log_len + 1 < p->log_cap) {
        p->log[p->log_len++] = c;
        p->log[p->log_len] = 0;
    }
}

static monad_async_result pair_fn(monad_async_task task)
{
    struct pair *const p = task->user_ptr;
    unsigned const me = task == p->task[1];
    monad_async_result r = monad_async_task_wake_token(task, &p->token[me]);
    if (r.error != 0) {
        return r;
    }
    /* Task 1 starts by parking until task 0 has its token too. */
    while (p->passes[me] < p->rounds) {
        while (atomic_load(&p->turn) != me) {
            r = monad_async_task_park(task, UINT64_MAX);
            if (r.error != 0) {
                p->err[me] = r.error;
                return r;
            }
        }
        log_char(p, me ? 'b' : 'a');
        p->passes[me]++;
        if (me == 0 && p->high != NULL && p->passes[0] == p->wake_high_at) {
            CHECK_RESULT(monad_async_task_wake(p->high, p->high_token));
        }
        atomic_store(&p->turn, 1 - me);
        /* The partner may not have taken its token yet (its first
         * launch): then it has not parked either, and finds the turn. */
        if (p->token[1 - me] != 0) {
            r = monad_async_task_wake(p->task[1 - me], p->token[1 - me]);
            if (r.error != 0 && r.error != ESRCH) {
                return r;
            }
        }
    }
    return monad_async_make_success(0);
}

static void pair_attach(monad_async_executor ex, struct pair *p,
                        monad_async_context_switcher sw0,
                        monad_async_context_switcher sw1,
                        monad_async_priority prio, unsigned long rounds)
{
    memset(p->token, 0, sizeof(p->token));
    memset(p->passes, 0, sizeof(p->passes));
    memset(p->err, 0, sizeof(p->err));
    atomic_store(&p->turn, 0);
    p->rounds = rounds;
    monad_async_context_switcher const sw[2] = {sw0, sw1};
    for (int i = 0; i < 2; i++) {
        if (p->task[i] == NULL) {
            p->task[i] = test_make_task(sw[i], 0);
        }
        p->task[i]->user_code = pair_fn;
        p->task[i]->user_ptr = p;
        p->task[i]->priority.cpu = prio;
        CHECK_RESULT(monad_async_task_attach(ex, p->task[i], sw[i]));
    }
}

static void pair_destroy(struct pair *p)
{
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(monad_async_task_destroy(p->task[i]));
        p->task[i] = NULL;
    }
}

/* ---- 1. ping-pong, max_items, time figures ---- */

static void case_ping_pong(unsigned entries, monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    struct pair p;
    memset(&p, 0, sizeof(p));
    unsigned long const rounds = test_scaled(20000);
    pair_attach(ex, &p, sw, sw, monad_async_priority_normal, rounds);
    /* run(1) runs exactly one slice, hand-off or not; then run(3) three. */
    struct timespec const zero = {0, 0};
    uint64_t slices = 0;
    for (int i = 0; i < 20; i++) {
        monad_async_result const r = monad_async_executor_run(ex, 1, &zero);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 1);
        slices++;
    }
    for (int i = 0; i < 20; i++) {
        monad_async_result const r = monad_async_executor_run(ex, 3, &zero);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 3);
        slices += 3;
    }
    while (test_task_attached(p.task[0]) || test_task_attached(p.task[1])) {
        monad_async_result const r = monad_async_executor_run(ex, 1000, &zero);
        CHECK_RESULT(r);
        CHECK_LE(r.value, 1000);
        slices += (uint64_t)r.value;
    }
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(p.task[i]->result);
        CHECK_EQ(p.passes[i], rounds);
    }
    /* Every slice ends in a suspension or the exit; every suspension but
     * the launch slice's is resumed. Parks that found their permit did
     * not suspend at all. */
    uint64_t const susp = p.task[0]->suspensions + p.task[1]->suspensions;
    CHECK_EQ(slices, susp + 2);
    CHECK_EQ(ex->counters.suspended, susp);
    CHECK_EQ(ex->counters.resumed, susp);
    CHECK_EQ(ex->counters.launched, 2);
    CHECK_GE(susp, 2 * rounds - 2);
    /* Each slice's ticks went to its task and to the executor, once. */
    uint64_t const task_ticks =
        p.task[0]->ticks.executing + p.task[1]->ticks.executing;
    CHECK_EQ(ex->ticks.launching + ex->ticks.resuming, task_ticks);
    CHECK_GT(task_ticks, 0);
    CHECK_LE(task_ticks, ex->ticks.in_run);
    pair_destroy(&p);
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

/* ---- 2. priorities ---- */

static monad_async_result high_fn(monad_async_task task)
{
    struct pair *const p = task->user_ptr;
    CHECK_RESULT(monad_async_task_wake_token(task, &p->high_token));
    monad_async_result const r = monad_async_task_park(task, UINT64_MAX);
    log_char(p, 'H');
    return r;
}

static monad_async_result low_fn(monad_async_task task)
{
    struct pair *const p = task->user_ptr;
    log_char(p, 'L');
    return monad_async_make_success(0);
}

static void case_priorities(unsigned entries, monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    struct pair p;
    memset(&p, 0, sizeof(p));
    char log[64];
    log[0] = 0;
    p.log = log;
    p.log_cap = sizeof(log);
    monad_async_task const high = test_make_task(sw, 0);
    monad_async_task const low = test_make_task(sw, 0);
    high->user_code = high_fn;
    high->user_ptr = &p;
    high->priority.cpu = monad_async_priority_high;
    low->user_code = low_fn;
    low->user_ptr = &p;
    low->priority.cpu = monad_async_priority_low;
    CHECK_RESULT(monad_async_task_attach(ex, high, NULL));
    struct timespec const zero = {0, 0};
    CHECK_EQ(monad_async_executor_run(ex, 1, &zero).value, 1); /* H parks */
    p.high = high;
    p.wake_high_at = 3;
    CHECK_RESULT(monad_async_task_attach(ex, low, NULL));
    pair_attach(ex, &p, sw, sw, monad_async_priority_normal, 5);
    while (test_task_attached(p.task[0]) || test_task_attached(p.task[1]) ||
           test_task_attached(high) || test_task_attached(low)) {
        CHECK_RESULT(monad_async_executor_run(ex, 1000, &zero));
    }
    /* a's third pass wakes H and b: H runs before b; L runs last. */
    CHECK_MSG(strcmp(log, "ababaHbababL") == 0, "order %s", log);
    CHECK_RESULT(high->result);
    CHECK_RESULT(monad_async_task_destroy(high));
    CHECK_RESULT(monad_async_task_destroy(low));
    pair_destroy(&p);
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

/* ---- 3. a High task beside a Low ping-pong pair ---- */

struct high_sleeper
{
    unsigned naps;
    uint64_t nap_ns;
    uint64_t worst_late_ns;
    _Atomic int remote_woken; /* set by the remote waker, before its wake */
    uint64_t remote_at_ns;    /* when the remote thread woke it */
    uint64_t remote_late_ns;
    _Atomic int ready_for_remote;
    uint64_t token;
    _Atomic int stop;
};

static monad_async_result high_sleeper_fn(monad_async_task task)
{
    struct high_sleeper *const h = task->user_ptr;
    for (unsigned i = 0; i < h->naps; i++) {
        uint64_t const start = test_now_ns();
        monad_async_result const r = monad_async_task_park(task, h->nap_ns);
        CHECK_ERROR(r, ETIME);
        uint64_t const late = test_now_ns() - start - h->nap_ns;
        if (late > h->worst_late_ns) {
            h->worst_late_ns = late;
        }
    }
    /* Now a wake from another thread, through the inbox. */
    CHECK_RESULT(monad_async_task_wake_token(task, &h->token));
    atomic_store(&h->ready_for_remote, 1);
    while (!atomic_load(&h->remote_woken)) {
        monad_async_result const r = monad_async_task_park(task, UINT64_MAX);
        CHECK_RESULT(r);
    }
    h->remote_late_ns = test_now_ns() - h->remote_at_ns;
    atomic_store(&h->stop, 1);
    return monad_async_make_success(0);
}

struct remote_waker
{
    struct high_sleeper *h;
    monad_async_task task;
};

static void *remote_waker_fn(void *arg)
{
    struct remote_waker *const w = arg;
    while (!atomic_load(&w->h->ready_for_remote)) {
        test_sleep_ns(100000);
    }
    test_sleep_ns(2000000); /* let it park */
    w->h->remote_at_ns = test_now_ns();
    atomic_store(&w->h->remote_woken, 1);
    monad_async_result const r = monad_async_task_wake(w->task, w->h->token);
    CHECK_RESULT(r);
    return NULL;
}

static void case_high_beside_low_pair(unsigned entries,
                                      monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    struct high_sleeper h;
    memset(&h, 0, sizeof(h));
    h.naps = 20;
    h.nap_ns = 1000000;
    monad_async_task const high = test_make_task(sw, 0);
    high->user_code = high_sleeper_fn;
    high->user_ptr = &h;
    high->priority.cpu = monad_async_priority_high;
    CHECK_RESULT(monad_async_task_attach(ex, high, NULL));
    struct pair p;
    memset(&p, 0, sizeof(p));
    /* Far more rounds than the High task needs: it must not wait for the
     * pair to finish (which would take seconds). */
    pair_attach(ex, &p, sw, sw, monad_async_priority_low, 1ul << 40);
    struct remote_waker w = {&h, high};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, remote_waker_fn, &w), 0);
    struct timespec const zero = {0, 0};
    uint64_t const deadline = test_now_ns() + 20000000000ull;
    while (test_task_attached(high)) {
        CHECK_MSG(test_now_ns() < deadline,
                  "the High task starved beside a Low ping-pong pair");
        CHECK_RESULT(monad_async_executor_run(ex, 100000, &zero));
    }
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_RESULT(high->result);
    CHECK_GT(p.passes[0], 0);
    test_note("High beside a Low ping-pong pair: naps late by %" PRIu64
              " us at worst, a remote wake taken after %" PRIu64 " us",
              h.worst_late_ns / 1000, h.remote_late_ns / 1000);
    /* Bounds far above a slice of the pair (a few hundred ns): only a
     * starvation (the pair handing off to each other with the timer due
     * or the inbox full) could reach them, machine load aside. */
    CHECK_LT(h.worst_late_ns, 500000000ull);
    CHECK_LT(h.remote_late_ns, 500000000ull);
    /* Stop the pair: cancel both (from this thread: local cancels). */
    for (int i = 0; i < 2; i++) {
        monad_async_result const r = monad_async_task_cancel(ex, p.task[i]);
        CHECK(r.error == 0 || r.error == EAGAIN);
    }
    while (test_task_attached(p.task[0]) || test_task_attached(p.task[1])) {
        CHECK_RESULT(monad_async_executor_run(ex, 1000, &zero));
    }
    CHECK_RESULT(monad_async_task_destroy(high));
    pair_destroy(&p);
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

/* ---- 4. remote wakes and cancels during hand-offs ---- */

struct meddler
{
    monad_async_executor ex;
    struct pair *p;
    _Atomic int go;
    unsigned wakes;
};

static void *meddler_fn(void *arg)
{
    struct meddler *const m = arg;
    while (!atomic_load(&m->go)) {
        sched_yield();
    }
    /* Spurious wakes of both: permits, or resumptions the pair must
     * survive (it re-checks its turn). */
    for (unsigned i = 0; i < m->wakes; i++) {
        int const k = (int)(i & 1);
        monad_async_result const r =
            monad_async_task_wake(m->p->task[k], m->p->token[k]);
        CHECK(r.error == 0 || r.error == ESRCH);
    }
    for (int k = 0; k < 2; k++) {
        monad_async_result const r =
            monad_async_task_cancel(m->ex, m->p->task[k]);
        CHECK(r.error == EAGAIN || r.error == ENOENT);
    }
    return NULL;
}

static void case_remote_meddling(unsigned entries,
                                 monad_async_context_switcher sw)
{
    unsigned const reps = (unsigned)test_scaled(20);
    for (unsigned rep = 0; rep < reps; rep++) {
        monad_async_executor ex = test_make_executor(entries, 0);
        struct pair p;
        memset(&p, 0, sizeof(p));
        pair_attach(ex, &p, sw, sw, monad_async_priority_normal,
                    test_scaled(200000));
        struct timespec const zero = {0, 0};
        /* Both launched and their tokens taken before the meddler starts. */
        while (p.token[0] == 0 || p.token[1] == 0) {
            CHECK_RESULT(monad_async_executor_run(ex, 1, &zero));
        }
        struct meddler m = {ex, &p, 0, 1000u + rep * 100u};
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, meddler_fn, &m), 0);
        atomic_store(&m.go, 1);
        uint64_t const deadline = test_now_ns() + 30000000000ull;
        while (test_task_attached(p.task[0]) || test_task_attached(p.task[1])) {
            CHECK_MSG(test_now_ns() < deadline, "the pair never ended");
            /* ETIME: both wait for a remote wake still on its way. */
            monad_async_result const r = monad_async_executor_run(ex, 64, &zero);
            CHECK(r.error == 0 || r.error == ETIME);
        }
        CHECK_EQ(pthread_join(th, NULL), 0);
        for (int i = 0; i < 2; i++) {
            /* Done (every pass made), or cancelled at a park. */
            if (p.task[i]->result.error == 0) {
                CHECK_EQ(p.passes[i], p.rounds);
            }
            else {
                CHECK_ERROR(p.task[i]->result, ECANCELED);
                CHECK_EQ(p.err[i], ECANCELED);
            }
        }
        /* No pass was made twice or skipped: the turn alternated. */
        CHECK(p.passes[0] == p.passes[1] || p.passes[0] == p.passes[1] + 1);
        pair_destroy(&p);
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }
}

int main(void)
{
    test_watchdog(600, "park_handoff");
    enum test_switcher_kind const kinds[] = {
        TEST_SWITCHER_SJLJ, TEST_SWITCHER_ASM, TEST_SWITCHER_ASM_NO_FP};
    unsigned const ring_entries[] = {0, test_ring_entries(64, "ring executors")};
    for (size_t e = 0; e < 2; e++) {
        if (e == 1 && ring_entries[1] == 0) {
            continue;
        }
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            monad_async_context_switcher sw = test_make_switcher(kinds[k]);
            case_ping_pong(ring_entries[e], sw);
            case_priorities(ring_entries[e], sw);
            case_high_beside_low_pair(ring_entries[e], sw);
            case_remote_meddling(ring_entries[e], sw);
            CHECK_RESULT(monad_async_context_switcher_destroy(sw));
        }
        /* 5. A pair on two switchers: no hand-off between them. */
        monad_async_context_switcher a = test_make_switcher(TEST_SWITCHER_ASM);
        monad_async_context_switcher s = test_make_switcher(TEST_SWITCHER_SJLJ);
        monad_async_executor ex = test_make_executor(ring_entries[e], 0);
        struct pair p;
        memset(&p, 0, sizeof(p));
        pair_attach(ex, &p, a, s, monad_async_priority_normal, test_scaled(5000));
        struct timespec const zero = {0, 0};
        while (test_task_attached(p.task[0]) || test_task_attached(p.task[1])) {
            CHECK_RESULT(monad_async_executor_run(ex, 1000, &zero));
        }
        CHECK_RESULT(p.task[0]->result);
        CHECK_RESULT(p.task[1]->result);
        CHECK_EQ(p.passes[1], p.rounds);
        pair_destroy(&p);
        CHECK_RESULT(monad_async_executor_destroy(ex));
        CHECK_RESULT(monad_async_context_switcher_destroy(a));
        CHECK_RESULT(monad_async_context_switcher_destroy(s));
    }
    printf("park_handoff: ok\n");
    return 0;
}
