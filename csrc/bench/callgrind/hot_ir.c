/* Instructions per operation on the hot path, for callgrind (exact and
 * repeatable where wall time on a shared machine is not).
 *
 *   hot_ir y N   N yields of one task
 *   hot_ir a N   N attach + run(1) + exit of one task
 *
 * One executor without time tracking, the asm switcher. Only the loop is
 * counted (CALLGRIND_ZERO_STATS .. CALLGRIND_DUMP_STATS), so set-up such
 * as the tick calibration is left out; run.sh runs N and 2N and divides
 * the difference by N, which also cancels the first-iteration costs. */
#include <monad_async.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

static unsigned long g_left;
/* Every result is checked, once, at the end (an OR per call). */
static int g_errors;

static monad_async_result yield_fn(monad_async_task t)
{
    while (g_left > 0) {
        g_left--;
        g_errors |= monad_async_task_yield(t).error;
    }
    return monad_async_make_success(0);
}

static monad_async_result nothing_fn(monad_async_task t)
{
    (void)t;
    return monad_async_make_success(0);
}

static void check(monad_async_result r, char const *what)
{
    if (r.error != 0) {
        fprintf(stderr, "hot_ir: %s: %s\n", what, strerror(r.error));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || (argv[1][0] != 'y' && argv[1][0] != 'a')) {
        fprintf(stderr, "usage: hot_ir y|a N (under valgrind --tool=callgrind)\n");
        return 2;
    }
    unsigned long const n = strtoul(argv[2], NULL, 10);
    struct monad_async_executor_attr ea;
    memset(&ea, 0, sizeof(ea));
    ea.flags = MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING;
    monad_async_executor ex;
    check(monad_async_executor_create(&ex, &ea), "executor_create");
    monad_async_context_switcher sw;
    check(monad_async_context_switcher_asm_create(&sw), "switcher");
    struct monad_async_task_attr ta;
    memset(&ta, 0, sizeof(ta));
    monad_async_task t;
    check(monad_async_task_create(&t, sw, &ta), "task_create");
    CALLGRIND_ZERO_STATS;
    if (argv[1][0] == 'y') {
        t->user_code = yield_fn;
        g_left = n;
        check(monad_async_task_attach(ex, t, NULL), "attach");
        while (ex->tasks_attached) {
            g_errors |= monad_async_executor_run(ex, 1000000, NULL).error;
        }
    }
    else {
        t->user_code = nothing_fn;
        for (unsigned long i = 0; i < n; i++) {
            g_errors |= monad_async_task_attach(ex, t, NULL).error;
            g_errors |= monad_async_executor_run(ex, 1, NULL).error;
        }
    }
    CALLGRIND_DUMP_STATS;
    if (g_errors != 0) {
        fprintf(stderr, "hot_ir: a call failed (errors or-ed: %d)\n", g_errors);
        return 1;
    }
    check(monad_async_task_destroy(t), "task_destroy");
    check(monad_async_context_switcher_destroy(sw), "switcher_destroy");
    check(monad_async_executor_destroy(ex), "executor_destroy");
    return 0;
}
