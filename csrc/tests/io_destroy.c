/* Destroying an executor with I/O in flight: tasks blocked in a recv
 * (buffers on their stacks), tasks with initiated operations, tasks
 * waiting for a slot of the in-flight guard, a task sleeping in the ring, a task
 * whose code returned with an operation in flight, and a task pending
 * launch. Destroy cancels and drains them all: every task ends (its exit
 * hook runs), none resumes before the kernel is done, nothing aborts,
 * and submitted == completed (destroy asserts it in debug builds).
 * Header contract: executor.h (monad_async_executor_destroy), io.h. */
#include "test_common.h"

#include <sys/socket.h>

static int g_sp[2];
static int g_exits;
static monad_async_executor g_ex;

static void on_exit_hook(monad_async_task task)
{
    (void)task;
    g_exits++;
}

static monad_async_result recv_fn(monad_async_task task)
{
    char buf[128];
    return monad_async_io_recv(task, NULL, g_sp[0], buf, sizeof(buf), 0);
}

static monad_async_result initiated_fn(monad_async_task task)
{
    struct monad_async_io_status st[4];
    char bufs[4][32];
    memset(st, 0, sizeof(st));
    for (int i = 0; i < 4; i++) {
        CHECK_RESULT(monad_async_io_recv(task, &st[i], g_sp[0], bufs[i], 32, 0));
    }
    struct monad_async_io_status *got;
    monad_async_result r;
    int n = 0;
    while ((r = monad_async_io_reap(task, &got)).error == 0) {
        n++;
    }
    CHECK_EQ(n, 4);
    return r;
}

static monad_async_result sleep_fn(monad_async_task task)
{
    return monad_async_task_suspend_for_duration(task, 3600ull * 1000000000ull);
}

static monad_async_result leaves_fn(monad_async_task task)
{
    static struct monad_async_io_status st;
    static char buf[8];
    memset(&st, 0, sizeof(st));
    CHECK_RESULT(monad_async_io_recv(task, &st, g_sp[0], buf, 8, 0));
    return monad_async_make_success(0);
}

int main(void)
{
    test_watchdog(60, "io_destroy");
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_sp), 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    for (int round = 0; round < 3; round++) {
        /* A guard of 16: operations that wait on the outside world (the
         * receives) may hold 16 - 16 / 8 = 14 slots, sleeps included in
         * the count; the last recv tasks wait for a slot. */
        g_ex = test_make_ring_executor(32, 16);
        enum { N = 20 };
        monad_async_task tasks[N];
        g_exits = 0;
        for (int i = 0; i < N; i++) {
            tasks[i] = test_make_task(sw, 64 * 1024);
            tasks[i]->user_on_exit = on_exit_hook;
            tasks[i]->user_code = i < 2   ? initiated_fn
                                  : i < 4 ? sleep_fn
                                  : i < 5 ? leaves_fn
                                          : recv_fn;
            CHECK_RESULT(monad_async_task_attach(g_ex, tasks[i], NULL));
        }
        struct timespec const ms = {0, 5 * 1000 * 1000};
        if (round > 0) {
            monad_async_result r = monad_async_executor_run(g_ex, 1024, &ms);
            CHECK(r.error == 0 || r.error == ETIME);
            if (round == 2) {
                r = monad_async_executor_run(g_ex, 1024, &ms);
                CHECK(r.error == 0 || r.error == ETIME);
            }
            CHECK_EQ(g_ex->io.in_flight, 16 - 16 / 8);
            CHECK_GT(g_ex->io.sqe_waits, 0);
        }
        /* One more, pending launch. */
        monad_async_task pending = test_make_task(sw, 0);
        pending->user_on_exit = on_exit_hook;
        pending->user_code = recv_fn;
        CHECK_RESULT(monad_async_task_attach(g_ex, pending, NULL));
        CHECK_RESULT(monad_async_executor_destroy(g_ex));
        CHECK_EQ(g_exits, N + 1);
        CHECK_ERROR(pending->result, ECANCELED);
        for (int i = 0; i < N; i++) {
            CHECK(!test_task_attached(tasks[i]));
            if (round > 0 && i != 4) {
                CHECK_ERROR(tasks[i]->result, ECANCELED);
            }
            CHECK_RESULT(monad_async_task_destroy(tasks[i]));
        }
        CHECK_RESULT(monad_async_task_destroy(pending));
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    close(g_sp[0]);
    close(g_sp[1]);
    printf("io_destroy: ok\n");
    return 0;
}
