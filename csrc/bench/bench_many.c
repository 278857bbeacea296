/* The cost of a task's turn as the number of tasks grows: with a few
 * tasks everything a turn touches stays in cache; with thousands, each
 * task's struct and the top of its stack have been evicted by the time it
 * runs again, so the turn pays those cache (and TLB) misses. That is the
 * user-space part of a server's cost per round trip at many connections
 * (issue 12), without the kernel's share or the network's noise.
 *
 *   bench_many [y|n] [T]   y: yields, n: blocking NOPs (one pump per
 *                          batch); T: only that many tasks, one timed run
 *
 * For each task count T it runs T tasks that each take K turns (a yield,
 * or a NOP through the ring), round-robin, and prints the thread's CPU ns
 * per turn (median of 5 runs; for NOPs the kernel's share is in it). One
 * executor, the asm switcher, no time tracking. Yields mostly hand the
 * thread straight to the next task (handoff.c), NOPs go through the run
 * loop's pop. Run it under `valgrind --tool=callgrind --cache-sim=yes`
 * at two values of MONAD_ASYNC_BENCH_SCALE to count instructions and
 * misses per turn instead (repeatable on a loaded machine; BENCHMARKS.md,
 * "Many tasks"). */
#include "bench_common.h"

static unsigned long g_turns;
static int g_errors;

static monad_async_result yield_fn(monad_async_task t)
{
    for (unsigned long i = 0; i < g_turns; i++) {
        g_errors |= monad_async_task_yield(t).error;
    }
    return monad_async_make_success(0);
}

static monad_async_result nop_fn(monad_async_task t)
{
    for (unsigned long i = 0; i < g_turns; i++) {
        g_errors |= monad_async_io_nop(t, NULL).error;
    }
    return monad_async_make_success(0);
}

/* The thread's CPU time, ns: on a shared machine the time others run on
 * this core is left out (their effect on the caches is not). */
static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double run_once(monad_async_executor ex, monad_async_task *tasks,
                       unsigned n, bool nop)
{
    for (unsigned i = 0; i < n; i++) {
        tasks[i]->user_code = nop ? nop_fn : yield_fn;
        CHECK(monad_async_task_attach(ex, tasks[i], NULL));
    }
    double const t0 = cpu_ns();
    while (ex->tasks_attached) {
        g_errors |= monad_async_executor_run(ex, 1000000, NULL).error;
    }
    return cpu_ns() - t0;
}

int main(int argc, char **argv)
{
    bool const nop = argc > 1 && argv[1][0] == 'n';
    unsigned counts[] = {64, 1000, 10000};
    size_t ncounts = sizeof(counts) / sizeof(counts[0]);
    int const runs = argc > 2 ? 1 : 5;
    if (argc > 2) {
        counts[0] = (unsigned)strtoul(argv[2], NULL, 10);
        ncounts = 1;
    }
    /* Turns in all per run, about the same for every count. */
    unsigned long const total = scale(2000000);
    monad_async_context_switcher sw;
    CHECK(monad_async_context_switcher_asm_create(&sw));
    printf("%-6s %6s %12s\n", nop ? "nop" : "yield", "tasks", "ns/turn");
    for (size_t c = 0; c < ncounts; c++) {
        unsigned const n = counts[c];
        struct monad_async_executor_attr ea;
        memset(&ea, 0, sizeof(ea));
        ea.flags = MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING;
        if (nop) {
            ea.io_uring_ring.entries = 4096;
        }
        monad_async_executor ex;
        CHECK(monad_async_executor_create(&ex, &ea));
        struct monad_async_task_attr ta;
        memset(&ta, 0, sizeof(ta));
        monad_async_task *const tasks = calloc(n, sizeof(*tasks));
        if (tasks == NULL) {
            return 1;
        }
        for (unsigned i = 0; i < n; i++) {
            CHECK(monad_async_task_create(&tasks[i], sw, &ta));
        }
        g_turns = total / n ? total / n : 1;
        /* A first run touches every stack page once (page faults are not
         * what this measures). */
        (void)run_once(ex, tasks, n, nop);
        double v[5];
        for (int r = 0; r < runs; r++) {
            v[r] = run_once(ex, tasks, n, nop) / ((double)g_turns * n);
        }
        printf("%-6s %6u %12.1f\n", "", n, median(v, runs));
        for (unsigned i = 0; i < n; i++) {
            CHECK(monad_async_task_destroy(tasks[i]));
        }
        free(tasks);
        CHECK(monad_async_executor_destroy(ex));
    }
    CHECK(monad_async_context_switcher_destroy(sw));
    if (g_errors != 0) {
        fprintf(stderr, "bench_many: a call failed\n");
        return 1;
    }
    return 0;
}
