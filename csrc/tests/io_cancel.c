/* Cancelling tasks doing I/O, in every state: pending launch; waiting for
 * a submission entry; operation in flight (blocking recv with its buffer
 * on the task's stack, a ring sleep, many initiated recvs, one operation
 * alone, and from another thread while the executor sleeps in the ring);
 * completion arrived but not yet resumed (the real result is delivered);
 * and a task whose code returns with operations in flight (not recorded
 * as exited until the kernel has finished them). The task never resumes
 * before the kernel has finished its operation (checked from inside the
 * task: nothing of it is in flight any more when it resumes), cancellation
 * is sticky, and submitted == completed at the end of each case.
 * Header contract: io.h (cancellation), task.h (monad_async_task_cancel). */
#include "test_common.h"

#include <pthread.h>
#include <sys/socket.h>

static monad_async_executor g_ex;
static int g_sp[2];   /* a socket pair nobody writes to: recv never ends */
static int g_flag;

static void check_clean(void)
{
    CHECK_EQ(g_ex->io.submitted, g_ex->io.completed);
    CHECK_EQ(g_ex->io.in_flight, 0);
    CHECK_EQ(g_ex->io.stale, 0);
}

static monad_async_result blocked_recv_fn(monad_async_task task)
{
    char buf[64]; /* on the task's stack: the kernel must be done with it */
    g_flag = 1;
    monad_async_result r = monad_async_io_recv(task, NULL, g_sp[0], buf, sizeof(buf), 0);
    /* Resumed only after the completion was reaped. */
    CHECK_EQ(g_ex->io.in_flight, 0);
    CHECK_ERROR(r, ECANCELED);
    /* Sticky: every later cancellation point says so at once. */
    CHECK_ERROR(monad_async_io_nop(task, NULL), ECANCELED);
    CHECK_ERROR(monad_async_task_yield(task), ECANCELED);
    g_flag = 2;
    return r;
}

static monad_async_result sleep_fn(monad_async_task task)
{
    g_flag = 1;
    monad_async_result r = monad_async_task_suspend_for_duration(task, 60ull * 1000000000ull);
    CHECK_EQ(g_ex->io.in_flight, 0); /* the kernel timer is gone */
    g_flag = 2;
    return r;
}

/* Initiated recvs: reap goes on returning them until none is left. */
static monad_async_result many_fn(monad_async_task task)
{
    struct monad_async_io_status st[8];
    char bufs[8][16];
    memset(st, 0, sizeof(st));
    for (int i = 0; i < 8; i++) {
        CHECK_RESULT(monad_async_io_recv(task, &st[i], g_sp[0], bufs[i], 16, 0));
    }
    g_flag = 1;
    int got_n = 0;
    struct monad_async_io_status *got;
    monad_async_result r;
    while ((r = monad_async_io_reap(task, &got)).error == 0) {
        CHECK_ERROR(got->result, ECANCELED);
        got_n++;
    }
    CHECK_ERROR(r, ECANCELED);
    CHECK_EQ(got_n, 8);
    g_flag = 2;
    return monad_async_make_failure(ECANCELED);
}

/* One operation cancelled on its own; the task is not cancelled. */
static monad_async_result one_fn(monad_async_task task)
{
    struct monad_async_io_status a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    char x[8], y[8];
    CHECK_RESULT(monad_async_io_recv(task, &a, g_sp[0], x, 8, 0));
    CHECK_RESULT(monad_async_io_recv(task, &b, g_sp[0], y, 8, 0));
    CHECK_RESULT(monad_async_io_cancel(task, &a));
    CHECK_ERROR(monad_async_io_wait(task, &a), ECANCELED);
    CHECK_EQ(b.state, MONAD_ASYNC_IO_STATE_IN_FLIGHT);
    CHECK_ERROR(monad_async_io_cancel(task, &a), ENOENT);
    CHECK_RESULT(monad_async_io_cancel(task, &b));
    CHECK_ERROR(monad_async_io_wait(task, &b), ECANCELED);
    CHECK_RESULT(monad_async_io_nop(task, NULL)); /* task not cancelled */
    g_flag = 2;
    return monad_async_make_success(0);
}

/* Returns with a recv in flight: the executor drains it. */
static monad_async_result leaves_op_fn(monad_async_task task)
{
    static struct monad_async_io_status st;
    static char buf[16];
    memset(&st, 0, sizeof(st));
    CHECK_RESULT(monad_async_io_recv(task, &st, g_sp[0], buf, 16, 0));
    g_flag = 2;
    return monad_async_make_success(7);
}

static void start(monad_async_task t, monad_async_result (*fn)(monad_async_task))
{
    g_flag = 0;
    t->user_code = fn;
    CHECK_RESULT(monad_async_task_attach(g_ex, t, NULL));
    struct timespec const zero = {0, 0};
    CHECK_RESULT(monad_async_executor_run(g_ex, 1, &zero));
    /* Let the operation reach the kernel and settle. */
    struct timespec const ms = {0, 5 * 1000 * 1000};
    monad_async_result r = monad_async_executor_run(g_ex, 16, &ms);
    CHECK(r.error == ETIME || r.error == 0);
    CHECK_EQ(g_flag, 1);
    CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
}

/* ---- waiting for a submission entry ---- */

static monad_async_result holder_fn(monad_async_task task)
{
    char b[4];
    return monad_async_io_recv(task, NULL, g_sp[0], b, sizeof(b), 0);
}

static int g_waiter_ran_op;

static monad_async_result waiter_fn(monad_async_task task)
{
    g_flag = 1;
    monad_async_result r = monad_async_io_nop(task, NULL);
    g_waiter_ran_op = r.error == 0;
    return r;
}

static void sqe_wait_case(monad_async_context_switcher sw)
{
    /* A limit of one operation in flight. */
    monad_async_executor saved = g_ex;
    g_ex = test_make_ring_executor(4, 1);
    CHECK_EQ(g_ex->ring.inflight_limit, 1);
    monad_async_task holder = test_make_task(sw, 0);
    monad_async_task waiter = test_make_task(sw, 0);
    holder->user_code = holder_fn;
    waiter->user_code = waiter_fn;
    CHECK_RESULT(monad_async_task_attach(g_ex, holder, NULL));
    CHECK_RESULT(monad_async_task_attach(g_ex, waiter, NULL));
    struct timespec const ms = {0, 5 * 1000 * 1000};
    monad_async_result r = monad_async_executor_run(g_ex, 16, &ms);
    CHECK_RESULT(r);
    CHECK_EQ(g_flag, 1);
    CHECK_EQ(g_ex->io.sqe_waits, 1);
    CHECK_EQ(g_ex->io.in_flight, 1);
    CHECK_ERROR(monad_async_task_cancel(g_ex, waiter), EAGAIN);
    test_run_until_detached(g_ex, waiter, 5000);
    CHECK_ERROR(waiter->result, ECANCELED);
    CHECK_EQ(g_waiter_ran_op, 0);
    CHECK_EQ(g_ex->io.submitted, 1); /* the waiter never started its op */
    CHECK_ERROR(monad_async_task_cancel(g_ex, holder), EAGAIN);
    test_run_until_detached(g_ex, holder, 5000);
    CHECK_ERROR(holder->result, ECANCELED);
    check_clean();
    CHECK_RESULT(monad_async_task_destroy(holder));
    CHECK_RESULT(monad_async_task_destroy(waiter));
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
    g_ex = saved;
}

/* ---- completion arrived, not yet resumed ---- */

static monad_async_task g_victim;
static int g_pipe[2];

static monad_async_result victim_fn(monad_async_task task)
{
    char b = 0;
    monad_async_result r = monad_async_io_read(task, NULL, g_pipe[0], &b, 1, -1);
    /* The read had completed when the cancel came: its real result. */
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    test_kernel_wrote(&b, 1);
    CHECK_EQ(b, 'z');
    CHECK(test_task_state(task) & MONAD_ASYNC_TASK_STATE_CANCELLED);
    CHECK_ERROR(monad_async_io_nop(task, NULL), ECANCELED);
    g_flag = 2;
    return monad_async_make_success(0);
}

static monad_async_result canceller_fn(monad_async_task task)
{
    CHECK_RESULT(monad_async_io_nop(task, NULL));
    /* Same pump reaped the victim's read: it is ready, not yet resumed. */
    CHECK(test_task_state(g_victim) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    CHECK_EQ(g_ex->io.in_flight, 0);
    CHECK_ERROR(monad_async_task_cancel(g_ex, g_victim), EAGAIN);
    return monad_async_make_success(0);
}

static void completed_case(monad_async_context_switcher sw)
{
    CHECK_EQ(pipe(g_pipe), 0);
    CHECK_EQ(write(g_pipe[1], "z", 1), 1);
    g_victim = test_make_task(sw, 0);
    monad_async_task c = test_make_task(sw, 0);
    g_victim->priority.cpu = monad_async_priority_low;
    c->priority.cpu = monad_async_priority_high;
    g_victim->user_code = victim_fn;
    c->user_code = canceller_fn;
    g_flag = 0;
    /* The victim starts its read first (queued, not yet submitted); then
     * the canceller, whose nop goes to the kernel in the same pump. A
     * High task's completion runs before a Low slice, so the canceller
     * must be attached only once the victim has launched. */
    CHECK_RESULT(monad_async_task_attach(g_ex, g_victim, NULL));
    struct timespec const zero = {0, 0};
    CHECK_RESULT(monad_async_executor_run(g_ex, 1, &zero));
    CHECK(test_task_state(g_victim) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    CHECK_RESULT(monad_async_task_attach(g_ex, c, NULL));
    test_run_until_detached(g_ex, g_victim, 5000);
    test_run_until_detached(g_ex, c, 5000);
    CHECK_EQ(g_flag, 2);
    CHECK_RESULT(g_victim->result);
    CHECK_RESULT(c->result);
    check_clean();
    CHECK_RESULT(monad_async_task_destroy(g_victim));
    CHECK_RESULT(monad_async_task_destroy(c));
    close(g_pipe[0]);
    close(g_pipe[1]);
}

/* ---- from another thread, the executor asleep in the ring ---- */

struct remote
{
    monad_async_task task;
    int rc;
};

static void *remote_cancel(void *arg)
{
    struct remote *r = arg;
    test_sleep_ns(20 * 1000000ull);
    r->rc = monad_async_task_cancel(g_ex, r->task).error;
    return NULL;
}

static void remote_case(monad_async_task t)
{
    start(t, blocked_recv_fn);
    struct remote rm = {t, -1};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, remote_cancel, &rm), 0);
    /* NULL timeouts: a lost wake-up hangs (the watchdog fails it). */
    while (test_task_attached(t)) {
        CHECK_RESULT(monad_async_executor_run(g_ex, 16, NULL));
    }
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(rm.rc, EAGAIN);
    CHECK_EQ(g_flag, 2);
    CHECK_ERROR(t->result, ECANCELED);
    check_clean();
}

int main(void)
{
    test_watchdog(120, "io_cancel");
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_sp), 0);
    for (int k = TEST_SWITCHER_SJLJ; k <= TEST_SWITCHER_ASM; k++) {
        monad_async_context_switcher sw = test_make_switcher((enum test_switcher_kind)k);
        g_ex = test_make_ring_executor(16, 0);
        monad_async_task t = test_make_task(sw, 0);

        /* Pending launch: never runs, nothing submitted. */
        t->user_code = blocked_recv_fn;
        g_flag = 0;
        CHECK_RESULT(monad_async_task_attach(g_ex, t, NULL));
        CHECK_RESULT(monad_async_task_cancel(g_ex, t));
        CHECK_ERROR(t->result, ECANCELED);
        CHECK_EQ(g_flag, 0);
        CHECK_EQ(g_ex->io.submitted, 0);

        /* In flight, blocking form, buffer on the stack. */
        start(t, blocked_recv_fn);
        uint64_t const cancels = g_ex->io.cancels;
        CHECK_ERROR(monad_async_task_cancel(g_ex, t), EAGAIN);
        CHECK_EQ(g_ex->io.cancels, cancels + 1);
        /* Not resumed before the kernel says it is done. */
        CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
        test_run_until_detached(g_ex, t, 5000);
        CHECK_EQ(g_flag, 2);
        CHECK_ERROR(t->result, ECANCELED);
        check_clean();

        /* A ring sleep. */
        start(t, sleep_fn);
        CHECK_EQ(g_ex->tasks_timed, 1);
        uint64_t const t0 = test_now_ns();
        CHECK_ERROR(monad_async_task_cancel(g_ex, t), EAGAIN);
        test_run_until_detached(g_ex, t, 5000);
        CHECK_LT(test_now_ns() - t0, 5000ull * 1000000ull);
        CHECK_ERROR(t->result, ECANCELED);
        CHECK_EQ(g_ex->tasks_timed, 0);
        check_clean();

        /* Many initiated. */
        start(t, many_fn);
        CHECK_ERROR(monad_async_task_cancel(g_ex, t), EAGAIN);
        test_run_until_detached(g_ex, t, 5000);
        CHECK_EQ(g_flag, 2);
        check_clean();

        /* One operation alone. */
        t->user_code = one_fn;
        g_flag = 0;
        CHECK_RESULT(monad_async_task_attach(g_ex, t, NULL));
        test_run_until_detached(g_ex, t, 5000);
        CHECK_RESULT(t->result);
        CHECK_EQ(g_flag, 2);
        check_clean();

        /* Returns with an operation in flight: drained, then exited. */
        t->user_code = leaves_op_fn;
        g_flag = 0;
        CHECK_RESULT(monad_async_task_attach(g_ex, t, NULL));
        test_run_until_detached(g_ex, t, 5000);
        CHECK_EQ(g_flag, 2);
        CHECK_RESULT(t->result);
        CHECK_EQ(t->result.value, 7);
        check_clean();

        remote_case(t);
        sqe_wait_case(sw);
        completed_case(sw);

        CHECK_RESULT(monad_async_task_destroy(t));
        CHECK_RESULT(monad_async_executor_destroy(g_ex));
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    }
    close(g_sp[0]);
    close(g_sp[1]);
    printf("io_cancel: ok\n");
    return 0;
}
