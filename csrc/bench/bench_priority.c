/* The cost of monad_async_task_set_cpu_priority (task.h), per call, median
 * of 7 runs:
 *
 *   - inside the run (a task changes a queued task's level, which moves
 *     it between ready queues): the at-once path;
 *   - on the owner thread outside the run: takes the task's message node,
 *     applies the change itself, lets the node go;
 *   - from another thread, the target parked, while the executor drains
 *     its inbox: mostly coalesced into a message already on its way (the
 *     number of messages the executor drained is printed beside it).
 *
 * tokio has no priorities: there is nothing to compare with. */
#include "bench_common.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

static monad_async_task g_target;
static unsigned long g_n;
static double g_inside_ns;

static monad_async_result queued_fn(monad_async_task t)
{
    (void)t;
    return monad_async_make_success(0);
}

static monad_async_result changer_fn(monad_async_task t)
{
    (void)t;
    uint64_t tok;
    CHECK(monad_async_task_wake_token(g_target, &tok));
    double const a = now_ns();
    for (unsigned long i = 0; i < g_n; i++) {
        CHECK(monad_async_task_set_cpu_priority(
            g_target, tok,
            (i & 1) ? monad_async_priority_high : monad_async_priority_low));
    }
    g_inside_ns = (now_ns() - a) / (double)g_n;
    return monad_async_make_success(0);
}

static uint64_t g_park_tok;

static monad_async_result park_fn(monad_async_task t)
{
    CHECK(monad_async_task_wake_token(t, &g_park_tok));
    CHECK(monad_async_task_park(t, UINT64_MAX));
    return monad_async_make_success(0);
}

static _Atomic int g_remote_done;
static double g_remote_ns;

static void *remote_fn(void *arg)
{
    (void)arg;
    double const a = now_ns();
    for (unsigned long i = 0; i < g_n; i++) {
        CHECK(monad_async_task_set_cpu_priority(
            g_target, g_park_tok,
            (i & 1) ? monad_async_priority_high : monad_async_priority_low));
    }
    g_remote_ns = (now_ns() - a) / (double)g_n;
    atomic_store(&g_remote_done, 1);
    return NULL;
}

static void run_all(monad_async_executor ex)
{
    while (ex->tasks_attached != 0) {
        CHECK(monad_async_executor_run(ex, SIZE_MAX, NULL));
    }
}

int main(void)
{
    enum { RUNS = 7 };
    g_n = scale(1000000);
    monad_async_executor ex;
    CHECK(monad_async_executor_create(&ex, NULL));
    monad_async_context_switcher sw;
    CHECK(monad_async_context_switcher_asm_create(&sw));
    monad_async_task changer;
    CHECK(monad_async_task_create(&g_target, sw, NULL));
    CHECK(monad_async_task_create(&changer, sw, NULL));
    double inside[RUNS], outside[RUNS], remote[RUNS];
    uint64_t drained = 0;
    for (int run = 0; run < RUNS; run++) {
        /* Inside the run. */
        g_target->user_code = queued_fn;
        g_target->priority.cpu = monad_async_priority_low;
        changer->user_code = changer_fn;
        changer->priority.cpu = monad_async_priority_high;
        CHECK(monad_async_task_attach(ex, g_target, NULL));
        CHECK(monad_async_task_attach(ex, changer, NULL));
        run_all(ex);
        inside[run] = g_inside_ns;

        /* The owner thread, outside the run. */
        g_target->priority.cpu = monad_async_priority_low;
        CHECK(monad_async_task_attach(ex, g_target, NULL));
        uint64_t tok;
        CHECK(monad_async_task_wake_token(g_target, &tok));
        double const a = now_ns();
        for (unsigned long i = 0; i < g_n; i++) {
            CHECK(monad_async_task_set_cpu_priority(
                g_target, tok,
                (i & 1) ? monad_async_priority_high : monad_async_priority_low));
        }
        outside[run] = (now_ns() - a) / (double)g_n;
        run_all(ex);

        /* Another thread, the target parked, the executor draining. */
        g_target->user_code = park_fn;
        CHECK(monad_async_task_attach(ex, g_target, NULL));
        struct timespec const zero = {0, 0};
        CHECK(monad_async_executor_run(ex, 1, &zero));
        uint64_t const drained0 = ex->counters.inbox_drained;
        atomic_store(&g_remote_done, 0);
        pthread_t th;
        if (pthread_create(&th, NULL, remote_fn, NULL) != 0) {
            return 1;
        }
        struct timespec const tick = {0, 1000 * 1000};
        while (!atomic_load(&g_remote_done)) {
            monad_async_result const r = monad_async_executor_run(ex, SIZE_MAX, &tick);
            if (r.error != 0 && r.error != ETIME) {
                CHECK(r);
            }
        }
        pthread_join(th, NULL);
        remote[run] = g_remote_ns;
        drained += ex->counters.inbox_drained - drained0;
        monad_async_result const w = monad_async_task_wake(g_target, g_park_tok);
        CHECK(w);
        run_all(ex);
    }
    printf("monad-async C benchmark: CPU priority changes (median of %d runs, "
           "%lu calls each, ns per call)\n",
           RUNS, g_n);
    printf("  inside the run, queued target moved between levels  %6.1f\n",
           median(inside, RUNS));
    printf("  owner thread outside the run                        %6.1f\n",
           median(outside, RUNS));
    printf("  another thread, target parked, executor draining    %6.1f  "
           "(%.4f inbox messages per call: coalesced)\n",
           median(remote, RUNS), (double)drained / ((double)g_n * RUNS));
    CHECK(monad_async_task_destroy(changer));
    CHECK(monad_async_task_destroy(g_target));
    CHECK(monad_async_executor_destroy(ex));
    CHECK(monad_async_context_switcher_destroy(sw));
    return 0;
}
