/* Instructions per operation on the hot path, for callgrind (exact and
 * repeatable where wall time on a shared machine is not).
 *
 *   hot_ir y N   N yields of one task
 *   hot_ir a N   N attach + run(1) + exit of one task
 *   hot_ir n N   N blocking NOPs of one task (one per io_uring_enter)
 *   hot_ir m N   N blocking NOPs by 32 tasks (32 per io_uring_enter)
 *   hot_ir i N   N initiated NOPs of one task, each waited for
 *   hot_ir p N   N round trips of 64 bytes between two tasks over a
 *                socketpair (a send and a receive on each side)
 *   hot_ir f N   the floor: N NOPs with plain liburing, one per enter
 *   hot_ir g N   the floor: N NOPs with plain liburing, 32 per enter
 *   hot_ir N|M N as n and m with time tracking on
 *   hot_ir w N   N park/wake round trips of two tasks passing a turn
 *                (each wakes the other, then parks: two wakes, two parks)
 *   hot_ir d N   the same with monad_async_task_wake_deferred: each park
 *                switches straight to the task it woke
 *
 * One executor, the asm switcher, without time tracking unless asked
 * (N, M); the NOP modes use a ring of 64 entries; the floor's ring has
 * the executor's setup flags (SINGLE_ISSUER | DEFER_TASKRUN). Only the
 * loop is counted (CALLGRIND_ZERO_STATS .. CALLGRIND_DUMP_STATS), so
 * set-up such as the tick calibration is left out; run.sh runs N and 2N
 * and divides the difference by N, which also cancels the first-iteration
 * costs. User space only: callgrind does not see the kernel. */
#include <monad_async.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <liburing.h>
#include <sys/socket.h>
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

/* NOPs left for all tasks (m: N / 32 each, so that the batch is whole). */
static monad_async_result nop_fn(monad_async_task t)
{
    while (g_left > 0) {
        g_left--;
        g_errors |= monad_async_io_nop(t, NULL).error;
    }
    return monad_async_make_success(0);
}

/* Mode w: whose turn it is, the two tasks and their wake tokens. */
static unsigned g_turn;
static monad_async_task g_pp[2];
static uint64_t g_token[2];
static int g_deferred; /* mode d */

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
                g_deferred ? monad_async_task_wake_deferred(g_pp[1 - me], g_token[1 - me])
                           : monad_async_task_wake(g_pp[1 - me], g_token[1 - me]);
            g_errors |= w.error != ESRCH ? w.error : 0; /* it exited */
        }
    }
    return monad_async_make_success(0);
}

/* The initiated form: a status of the task's own, monad_async_io_wait. */
static monad_async_result nop_initiated_fn(monad_async_task t)
{
    struct monad_async_io_status st;
    memset(&st, 0, sizeof(st));
    while (g_left > 0) {
        g_left--;
        g_errors |= monad_async_io_nop(t, &st).error;
        g_errors |= monad_async_io_wait(t, &st).error;
    }
    return monad_async_make_success(0);
}

/* Ping-pong over a socketpair: the pinger sends and waits for the echo,
 * the echoer receives and sends back. */
static int g_sp[2];

static monad_async_result ping_fn(monad_async_task t)
{
    char buf[64];
    memset(buf, 7, sizeof(buf));
    while (g_left > 0) {
        g_left--;
        g_errors |= monad_async_io_send(t, NULL, g_sp[0], buf, sizeof(buf), 0).error;
        g_errors |= monad_async_io_recv(t, NULL, g_sp[0], buf, sizeof(buf), 0).error;
    }
    return monad_async_io_shutdown(t, NULL, g_sp[0], SHUT_WR);
}

static monad_async_result echo_fn(monad_async_task t)
{
    char buf[64];
    for (;;) {
        monad_async_result const r =
            monad_async_io_recv(t, NULL, g_sp[1], buf, sizeof(buf), 0);
        if (r.error != 0 || r.value == 0) {
            g_errors |= r.error;
            return r;
        }
        g_errors |= monad_async_io_send(t, NULL, g_sp[1], buf, (size_t)r.value, 0).error;
    }
}

enum { NOP_BATCH = 32 };

/* The floor: prepare `batch` NOPs, submit them and wait for all in one
 * call, reap them. */
static void floor_loop(unsigned long n, unsigned batch)
{
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(64, &ring, &p) != 0) {
        fprintf(stderr, "hot_ir: io_uring_queue_init_params failed\n");
        exit(1);
    }
    CALLGRIND_ZERO_STATS;
    for (unsigned long i = 0; i < n; i += batch) {
        for (unsigned b = 0; b < batch; b++) {
            struct io_uring_sqe *const sqe = io_uring_get_sqe(&ring);
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, b + 1);
        }
        g_errors |= io_uring_submit_and_wait(&ring, batch) < 0;
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            g_errors |= cqe->res != 0;
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
    }
    CALLGRIND_DUMP_STATS;
    io_uring_queue_exit(&ring);
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
    if (argc != 3 || argv[1][0] == 0 || strchr("yanNmMfgipwd", argv[1][0]) == NULL) {
        fprintf(stderr, "usage: hot_ir y|a|n|N|m|M|f|g|i|p|w|d N (under valgrind --tool=callgrind)\n");
        return 2;
    }
    char const mode = argv[1][0];
    unsigned long const n = strtoul(argv[2], NULL, 10);
    if (mode == 'f' || mode == 'g') {
        floor_loop(n, mode == 'f' ? 1 : NOP_BATCH);
        return g_errors != 0;
    }
    struct monad_async_executor_attr ea;
    memset(&ea, 0, sizeof(ea));
    if (mode != 'N' && mode != 'M') {
        ea.flags = MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING;
    }
    if (mode != 'y' && mode != 'a' && mode != 'w' && mode != 'd') {
        ea.io_uring_ring.entries = 64;
    }
    monad_async_executor ex;
    check(monad_async_executor_create(&ex, &ea), "executor_create");
    monad_async_context_switcher sw;
    check(monad_async_context_switcher_asm_create(&sw), "switcher");
    struct monad_async_task_attr ta;
    memset(&ta, 0, sizeof(ta));
    monad_async_task t;
    check(monad_async_task_create(&t, sw, &ta), "task_create");
    monad_async_task more[NOP_BATCH - 1];
    unsigned const extra =
        (mode == 'm' || mode == 'M') ? NOP_BATCH - 1 : (mode == 'p' ? 1 : 0);
    if (mode == 'p' && socketpair(AF_UNIX, SOCK_STREAM, 0, g_sp) != 0) {
        perror("hot_ir: socketpair");
        return 1;
    }
    for (unsigned i = 0; i < extra; i++) {
        check(monad_async_task_create(&more[i], sw, &ta), "task_create");
    }
    CALLGRIND_ZERO_STATS;
    if (mode != 'y' && mode != 'a' && mode != 'w' && mode != 'd') {
        /* Each task loops until the shared count is used up; with 32
         * tasks every pump submits and reaps 32. */
        t->user_code = mode == 'i' ? nop_initiated_fn
                       : mode == 'p' ? ping_fn
                                     : nop_fn;
        g_left = n;
        check(monad_async_task_attach(ex, t, NULL), "attach");
        for (unsigned i = 0; i < extra; i++) {
            more[i]->user_code = mode == 'p' ? echo_fn : nop_fn;
            check(monad_async_task_attach(ex, more[i], NULL), "attach");
        }
        while (ex->tasks_attached) {
            g_errors |= monad_async_executor_run(ex, 1000000, NULL).error;
        }
    }
    else if (mode == 'y') {
        t->user_code = yield_fn;
        g_left = n;
        check(monad_async_task_attach(ex, t, NULL), "attach");
        while (ex->tasks_attached) {
            g_errors |= monad_async_executor_run(ex, 1000000, NULL).error;
        }
    }
    else if (mode == 'w' || mode == 'd') {
        g_deferred = mode == 'd';
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
    for (unsigned i = 0; i < extra; i++) {
        check(monad_async_task_destroy(more[i]), "task_destroy");
    }
    check(monad_async_task_destroy(t), "task_destroy");
    check(monad_async_context_switcher_destroy(sw), "switcher_destroy");
    check(monad_async_executor_destroy(ex), "executor_destroy");
    return 0;
}
