/* The tick counter: monad_async_ticks_now is monotonic (on one thread and
 * across threads); monad_async_ticks_per_second is plausible, agrees with
 * CLOCK_MONOTONIC over ~50 ms within 2%, its first call (calibration) does
 * not block for anything like a second, later calls are cached, and
 * concurrent first calls agree. A task's tick stamps are ordered
 * (attached <= launched <= suspended <= resumed <= exited), lie within the
 * caller's own readings, and `executing` is positive and no more than the
 * task's life, also for tasks attached from another thread while the
 * executor is busy; the executor's tick totals grow. With
 * MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING all of them stay zero.
 * Header contract: ticks.h, task.h (struct monad_async_task_ticks),
 * executor.h (struct monad_async_executor_ticks, the flag). */
#include "test_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>

static uint64_t const MS = 1000000ull;

static uint64_t now_ticks(void)
{
    monad_async_result r = monad_async_ticks_now();
    CHECK_RESULT(r);
    return (uint64_t)r.value;
}

/* ---- calibration: must be the very first call in a process ---- */

#define CAL_THREADS 4
static atomic_int cal_go;
static uint64_t cal_values[CAL_THREADS];
static int cal_errors[CAL_THREADS];

static void *cal_main(void *arg)
{
    int i = (int)(intptr_t)arg;
    while (!atomic_load(&cal_go)) {
    }
    monad_async_result r = monad_async_ticks_per_second();
    cal_errors[i] = r.error;
    cal_values[i] = (uint64_t)r.value;
    return NULL;
}

/* In a fresh child (no call made yet): concurrent first calls from several
 * threads all succeed and agree within 2%. */
static void concurrent_first_calls(void)
{
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        pthread_t th[CAL_THREADS];
        for (int i = 0; i < CAL_THREADS; i++) {
            CHECK_EQ(pthread_create(&th[i], NULL, cal_main,
                                    (void *)(intptr_t)i),
                     0);
        }
        atomic_store(&cal_go, 1);
        for (int i = 0; i < CAL_THREADS; i++) {
            CHECK_EQ(pthread_join(th[i], NULL), 0);
        }
        for (int i = 0; i < CAL_THREADS; i++) {
            CHECK_EQ(cal_errors[i], 0);
            double const ratio = (double)cal_values[i] / (double)cal_values[0];
            CHECK_MSG(ratio > 0.98 && ratio < 1.02,
                      "concurrent first calls disagree: %" PRIu64
                      " vs %" PRIu64, cal_values[i], cal_values[0]);
        }
        /* later calls: cached, equal */
        uint64_t const v = (uint64_t)monad_async_ticks_per_second().value;
        for (int i = 0; i < 10; i++) {
            CHECK_EQ((uint64_t)monad_async_ticks_per_second().value, v);
        }
        exit(0);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "concurrent first-call child failed (status 0x%x)", status);
}

static uint64_t first_call(void)
{
    uint64_t const t0 = test_now_ns();
    monad_async_result r = monad_async_ticks_per_second();
    uint64_t const el = test_now_ns() - t0;
    CHECK_RESULT(r);
    printf("ticks_per_second = %" PRIdPTR " (first call took %.3f ms)\n",
           r.value, (double)el / 1e6);
    CHECK_MSG(el < 500 * MS, "calibration blocked for %" PRIu64 " ms",
              el / MS);
    uint64_t const tps = (uint64_t)r.value;
    CHECK_MSG(tps >= 1000000ull && tps <= 10000000000ull,
              "implausible ticks per second %" PRIu64, tps);
    /* later calls: cached, fast, equal */
    uint64_t const t1 = test_now_ns();
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ((uint64_t)monad_async_ticks_per_second().value, tps);
    }
    CHECK_LT(test_now_ns() - t1, 100 * MS);
    return tps;
}

/* One (ticks, ns) sample, tightly bracketed. */
static void sample(uint64_t *ticks, uint64_t *ns)
{
    uint64_t best_gap = UINT64_MAX;
    *ticks = 0;
    *ns = 0;
    for (int i = 0; i < 5; i++) {
        uint64_t const a = now_ticks();
        uint64_t const n = test_now_ns();
        uint64_t const b = now_ticks();
        if (b - a < best_gap) {
            best_gap = b - a;
            *ticks = a + (b - a) / 2;
            *ns = n;
        }
    }
}

static int cmp_double(void const *a, void const *b)
{
    double const x = *(double const *)a, y = *(double const *)b;
    return x < y ? -1 : x > y;
}

static void against_monotonic(uint64_t tps)
{
    double measured[3];
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = 0, n0 = 0, t1 = 0, n1 = 0;
        sample(&t0, &n0);
        test_sleep_ns(50 * MS);
        sample(&t1, &n1);
        measured[i] = (double)(t1 - t0) * 1e9 / (double)(n1 - n0);
    }
    qsort(measured, 3, sizeof(double), cmp_double);
    double const median = measured[1];
    double const err = (median - (double)tps) / (double)tps;
    printf("measured over 50 ms: %.0f ticks/s (median of 3), library says "
           "%" PRIu64 ", error %+.3f%%\n",
           median, tps, err * 100);
    CHECK_MSG(err > -0.02 && err < 0.02,
              "ticks_per_second %" PRIu64 " is off by %.2f%% from the %.0f "
              "measured against CLOCK_MONOTONIC",
              tps, err * 100, median);
}

static void monotonic_one_thread(void)
{
    uint64_t prev = now_ticks();
    unsigned long const n = test_scaled(1000000);
    for (unsigned long i = 0; i < n; i++) {
        uint64_t const t = now_ticks();
        CHECK_MSG(t >= prev, "ticks went backwards: %" PRIu64 " then %" PRIu64,
                  prev, t);
        prev = t;
    }
}

/* Ping-pong between two threads: a reading taken after seeing the other
 * thread's reading is never smaller. */
static atomic_uint_fast64_t pp_slot;
static atomic_int pp_turn;
static atomic_int pp_stop;
static unsigned long pp_rounds;
static unsigned long pp_backwards;

static void *pp_main(void *arg)
{
    (void)arg;
    for (;;) {
        while (atomic_load(&pp_turn) != 1) {
            sched_yield();
        }
        if (atomic_load(&pp_stop)) {
            return NULL;
        }
        uint64_t const seen = atomic_load(&pp_slot);
        uint64_t const t = now_ticks();
        if (t < seen) {
            pp_backwards++;
        }
        atomic_store(&pp_slot, t);
        atomic_store(&pp_turn, 0);
    }
    return NULL;
}

static void monotonic_across_threads(void)
{
    /* Up to a million round trips, or 3 s on a loaded machine. */
    unsigned long const max_rounds = test_scaled(1000000);
    uint64_t const until = test_now_ns() + 3000 * MS;
    pp_backwards = 0;
    atomic_store(&pp_turn, 0);
    atomic_store(&pp_stop, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, pp_main, NULL), 0);
    unsigned long backwards = 0;
    for (pp_rounds = 0; pp_rounds < max_rounds; pp_rounds++) {
        while (atomic_load(&pp_turn) != 0) {
            sched_yield();
        }
        if ((pp_rounds & 1023) == 0 && test_now_ns() > until) {
            break;
        }
        uint64_t const seen = atomic_load(&pp_slot);
        uint64_t const t = now_ticks();
        if (t < seen) {
            backwards++;
        }
        atomic_store(&pp_slot, t);
        atomic_store(&pp_turn, 1);
    }
    while (atomic_load(&pp_turn) != 0) {
        sched_yield();
    }
    atomic_store(&pp_stop, 1);
    atomic_store(&pp_turn, 1);
    CHECK_EQ(pthread_join(th, NULL), 0);
    if (pp_rounds < max_rounds) {
        test_note("cross-thread tick ordering: only %lu of %lu round trips "
                  "in 3 s (loaded machine)", pp_rounds, max_rounds);
    }
    CHECK_GE(pp_rounds, 1000);
    CHECK_MSG(backwards + pp_backwards == 0,
              "%lu of %lu cross-thread readings went backwards",
              backwards + pp_backwards, 2 * pp_rounds);
}

/* ---- task and executor stamps ---- */

static monad_async_result stamped_fn(monad_async_task task)
{
    /* burn a little CPU so `executing` is clearly non-zero */
    volatile uint64_t x = 0;
    for (int i = 0; i < 100000; i++) {
        x += (uint64_t)i;
    }
    CHECK_RESULT(monad_async_task_yield(task));
    CHECK_RESULT(monad_async_task_suspend_for_duration(task, 2 * MS));
    for (int i = 0; i < 100000; i++) {
        x += (uint64_t)i;
    }
    return monad_async_make_success((intptr_t)(x & 1));
}

/* The none switcher's task (it cannot suspend): it runs until the tick
 * counter has moved on, so that `executing` is non-zero with a counter of
 * any resolution (cntvct_el0 on aarch64 may tick at 24-62.5 MHz, slower
 * than a task that does nothing takes). */
static monad_async_result quick_fn(monad_async_task task)
{
    (void)task;
    uint64_t const start = now_ticks();
    while (now_ticks() == start) {
    }
    return monad_async_make_success(0);
}

static void task_stamps(enum test_switcher_kind kind, uint32_t flags)
{
    int const tracking = !(flags & MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING);
    int const stackful = kind != TEST_SWITCHER_NONE;
    monad_async_executor ex = test_make_executor(0, flags);
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = stackful ? stamped_fn : quick_fn;
    for (int round = 0; round < 3; round++) {
        uint64_t const before = now_ticks();
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        /* NULL timeout: the run waits for the 2 ms timer itself, so the
         * executor's sleeping total grows */
        while (test_task_attached(t)) {
            CHECK_RESULT(monad_async_executor_run(ex, 1, NULL));
        }
        uint64_t const after = now_ticks();
        CHECK_RESULT(t->result);
        struct monad_async_task_ticks const tk = t->ticks;
        char const *swn = test_switcher_names[kind];
        if (!tracking) {
            CHECK_MSG(tk.attached == 0 && tk.launched == 0 &&
                          tk.suspended == 0 && tk.resumed == 0 &&
                          tk.exited == 0 && tk.executing == 0,
                      "%s: NO_TIME_TRACKING but task ticks are %" PRIu64
                      " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
                      " %" PRIu64,
                      swn, tk.attached, tk.launched, tk.suspended,
                      tk.resumed, tk.exited, tk.executing);
            continue;
        }
        CHECK_MSG(before <= tk.attached && tk.attached <= tk.launched &&
                      tk.launched <= tk.exited && tk.exited <= after,
                  "%s: stamps out of order: before %" PRIu64
                  " attached %" PRIu64 " launched %" PRIu64 " exited %" PRIu64
                  " after %" PRIu64,
                  swn, before, tk.attached, tk.launched, tk.exited, after);
        if (stackful) {
            CHECK_MSG(tk.launched <= tk.suspended &&
                          tk.suspended <= tk.resumed &&
                          tk.resumed <= tk.exited,
                      "%s: stamps out of order: launched %" PRIu64
                      " suspended %" PRIu64 " resumed %" PRIu64
                      " exited %" PRIu64,
                      swn, tk.launched, tk.suspended, tk.resumed, tk.exited);
            /* the last suspension was the 2 ms sleep */
            uint64_t const tps = (uint64_t)monad_async_ticks_per_second().value;
            uint64_t const slept = tk.resumed - tk.suspended;
            CHECK_MSG(slept >= tps / 1000 * 2 * 95 / 100,
                      "%s: suspended..resumed spans %" PRIu64
                      " ticks, less than the 2 ms sleep (%" PRIu64 " ticks)",
                      swn, slept, tps / 1000 * 2);
            CHECK_EQ(t->suspensions, 2);
        }
        CHECK_MSG(tk.executing > 0, "%s: executing total is zero", swn);
        CHECK_MSG(tk.executing <= tk.exited - tk.launched,
                  "%s: executing %" PRIu64 " exceeds the task's life %" PRIu64,
                  swn, tk.executing, tk.exited - tk.launched);
    }
    struct monad_async_executor_ticks const et = ex->ticks;
    if (!tracking) {
        CHECK_MSG(et.in_run == 0 && et.launching == 0 && et.resuming == 0 &&
                      et.sleeping == 0,
                  "NO_TIME_TRACKING but executor ticks are %" PRIu64
                  " %" PRIu64 " %" PRIu64 " %" PRIu64,
                  et.in_run, et.launching, et.resuming, et.sleeping);
    }
    else {
        CHECK_GT(et.in_run, 0);
        CHECK_GT(et.launching, 0);
        CHECK_LE(et.launching + et.resuming, et.in_run);
        if (stackful) {
            CHECK_GT(et.resuming, 0);
            CHECK_GT(et.sleeping, 0);
            CHECK_GE(ex->counters.sleeps, 1);
            CHECK_LE(et.sleeping, et.in_run);
        }
    }
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

/* Tasks attached from another thread while the executor is busy (a task
 * keeps yielding): each one's stamps still run attached <= launched <=
 * exited, though `attached` comes from the other thread's reading. */
#define XS_POOL 32
static atomic_int xs_stop;
static atomic_uint_fast64_t xs_exited;
static uint64_t xs_bad;
static uint64_t xs_first_bad[3];

static monad_async_result xs_busy_fn(monad_async_task task)
{
    while (!atomic_load(&xs_stop)) {
        CHECK_RESULT(monad_async_task_yield(task));
    }
    return monad_async_make_success(0);
}

static monad_async_result xs_fn(monad_async_task task)
{
    (void)task;
    atomic_fetch_add(&xs_exited, 1);
    return monad_async_make_success(0);
}

/* Called by the producer once it has seen the task detached (its last
 * piece of work's stamps are then final and visible), before reusing it.
 * (Not from user_on_exit: that runs after the task is released, so a
 * thread reusing tasks by polling `state` may already be re-attaching it,
 * which resets the stamps.) */
static void xs_check(monad_async_task task)
{
    struct monad_async_task_ticks const tk = task->ticks;
    if (!(tk.attached <= tk.launched && tk.launched <= tk.exited)) {
        if (xs_bad++ == 0) {
            xs_first_bad[0] = tk.attached;
            xs_first_bad[1] = tk.launched;
            xs_first_bad[2] = tk.exited;
        }
    }
}

struct xs_producer
{
    monad_async_executor ex;
    monad_async_task tasks[XS_POOL];
    unsigned long n;
    int err;
};

static void *xs_producer_main(void *arg)
{
    struct xs_producer *p = (struct xs_producer *)arg;
    uint64_t const give_up = test_now_ns() + 60000 * MS;
    unsigned long done = 0;
    while (done < p->n && test_now_ns() < give_up) {
        for (int i = 0; i < XS_POOL && done < p->n; i++) {
            if (!test_task_attached(p->tasks[i])) {
                if (p->tasks[i]->ticks.exited != 0) {
                    xs_check(p->tasks[i]);
                }
                monad_async_result r =
                    monad_async_task_attach(p->ex, p->tasks[i], NULL);
                if (r.error != 0) {
                    p->err = r.error;
                    return NULL;
                }
                done++;
            }
        }
        sched_yield();
    }
    return NULL;
}

static void cross_thread_stamps(void)
{
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task busy = test_make_task(sw, 0);
    busy->user_code = xs_busy_fn;
    busy->priority.cpu = monad_async_priority_low;
    atomic_store(&xs_stop, 0);
    atomic_store(&xs_exited, 0);
    xs_bad = 0;
    CHECK_RESULT(monad_async_task_attach(ex, busy, NULL));
    static struct xs_producer p;
    memset(&p, 0, sizeof(p));
    p.ex = ex;
    p.n = test_scaled(50000);
    for (int i = 0; i < XS_POOL; i++) {
        p.tasks[i] = test_make_task(sw, 16384);
        p.tasks[i]->user_code = xs_fn;
        p.tasks[i]->priority.cpu = (monad_async_priority)(i % 2);
    }
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, xs_producer_main, &p), 0);
    uint64_t const deadline = test_now_ns() + 60000 * MS;
    struct timespec const tick = {0, (long)(10 * MS)};
    while (atomic_load(&xs_exited) < p.n) {
        CHECK_MSG(test_now_ns() < deadline, "cross-thread stamps: only %"
                  PRIu64 " of %lu tasks ran in 60 s",
                  (uint64_t)atomic_load(&xs_exited), p.n);
        monad_async_result r = monad_async_executor_run(ex, 64, &tick);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(p.err, 0);
    atomic_store(&xs_stop, 1);
    test_run_until_detached(ex, busy, 5000);
    for (int i = 0; i < XS_POOL; i++) {
        CHECK(!test_task_attached(p.tasks[i]));
        xs_check(p.tasks[i]);
    }
    CHECK_MSG(xs_bad == 0,
              "%" PRIu64 " of %lu tasks attached from another thread had "
              "stamps out of order (first: attached %" PRIu64
              " launched %" PRIu64 " exited %" PRIu64 ")",
              xs_bad, p.n, xs_first_bad[0], xs_first_bad[1],
              xs_first_bad[2]);
    for (int i = 0; i < XS_POOL; i++) {
        CHECK_RESULT(monad_async_task_destroy(p.tasks[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(busy));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    printf("ok   stamps of %lu tasks attached from another thread are "
           "ordered\n", p.n);
}

int main(void)
{
    test_watchdog(120, "ticks");
    concurrent_first_calls();
    uint64_t const tps = first_call();
    monotonic_one_thread();
    monotonic_across_threads();
    against_monotonic(tps);
    for (int k = 0; k < TEST_SWITCHER_COUNT; k++) {
        task_stamps((enum test_switcher_kind)k, 0);
        task_stamps((enum test_switcher_kind)k,
                    MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING);
    }
    cross_thread_stamps();
    printf("ticks: ok\n");
    return 0;
}
