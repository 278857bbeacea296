/* Instructions per operation on the hot path, for callgrind (exact and
 * repeatable where wall time on a shared machine is not).
 *
 *   hot_ir y N   N yields of one task
 *   hot_ir a N   N attach + run(1) + exit of one task
 *   hot_ir p N   N park/wake round trips of two tasks passing a turn
 *                (each wakes the other, then parks: two wakes, two parks)
 *
 * One executor without time tracking, the asm switcher. Only the loop is
 * counted (CALLGRIND_ZERO_STATS .. CALLGRIND_DUMP_STATS), so set-up such
 * as the tick calibration is left out; run.sh runs N and 2N and divides
 * the difference by N, which also cancels the first-iteration costs. */
#include <monad_async.h>

#include <errno.h>
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

/* Mode p: whose turn it is, the two tasks and their wake tokens. */
static unsigned g_turn;
static monad_async_task g_pp[2];
static uint64_t g_token[2];

static monad_async_result pingpong_fn(monad_async_task t)
{
    unsigned const me = t == g_pp[1];
    g_errors |= monad_async_task_wake_token(t, &g_token[me]).error;
    while (g_left > 0) {
        while (g_turn != me) {
            g_errors |= monad_async_task_park(t, UINT64_MAX).error;
        }
        if (me == 1) {
            g_left--; /* one round trip per pass of the second task */
        }
        g_turn = 1 - me;
        if (g_token[1 - me] != 0) {
            monad_async_result const w =
                monad_async_task_wake(g_pp[1 - me], g_token[1 - me]);
            g_errors |= w.error != ESRCH ? w.error : 0; /* it exited */
        }
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
    if (argc != 3 ||
        (argv[1][0] != 'y' && argv[1][0] != 'a' && argv[1][0] != 'p')) {
        fprintf(stderr, "usage: hot_ir y|a|p N (under valgrind --tool=callgrind)\n");
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
    else if (argv[1][0] == 'p') {
        monad_async_task u;
        check(monad_async_task_create(&u, sw, &ta), "task_create");
        g_pp[0] = t;
        g_pp[1] = u;
        t->user_code = u->user_code = pingpong_fn;
        g_left = n;
        check(monad_async_task_attach(ex, t, NULL), "attach");
        check(monad_async_task_attach(ex, u, NULL), "attach");
        while (ex->tasks_attached) {
            g_errors |= monad_async_executor_run(ex, 1000000, NULL).error;
        }
        check(monad_async_task_destroy(u), "task_destroy");
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
