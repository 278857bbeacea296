/* Trace hooks (trace.h): with the library built with
 * MONAD_ASYNC_TRACE_HOOKS=1 (`make test TRACE_HOOKS=1`), the hook sees a
 * begin and an end for every slice, in order, with why each slice ended:
 * a yield (runnable), a park, a sleep, a recv (with its opcode), the exit.
 * Cleared, it is called no more. In the default build the call says
 * ENOTSUP and the library says it has no hooks. */
#include "test_common.h"

#include <liburing.h>
#include <sys/socket.h>

struct ev
{
    monad_async_task task;
    uint32_t event, detail;
    int32_t opcode;
};

static struct ev g_ev[256];
static int g_nev;
static int g_sock[2];
static uint64_t g_token;
static monad_async_task g_a, g_b;

static void hook(void *arg, monad_async_task task, uint32_t event, uint32_t detail,
                 int32_t opcode)
{
    CHECK_EQ((uintptr_t)arg, 42);
    CHECK_LT(g_nev, 256);
    g_ev[g_nev++] = (struct ev){task, event, detail, opcode};
}

static monad_async_result a_fn(monad_async_task task)
{
    CHECK_RESULT(monad_async_task_yield(task));
    CHECK_RESULT(monad_async_task_wake_token(task, &g_token));
    CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
    char c;
    monad_async_result const r = monad_async_io_recv(task, NULL, g_sock[0], &c, 1, 0);
    CHECK_EQ(r.value, 1);
    return monad_async_make_success(0);
}

static monad_async_result b_fn(monad_async_task task)
{
    CHECK_RESULT(monad_async_task_suspend_for_duration(task, 1000000));
    CHECK_EQ(monad_async_task_wake(g_a, g_token).value, 1);
    CHECK_RESULT(monad_async_task_suspend_for_duration(task, 1000000));
    CHECK_EQ(write(g_sock[1], "x", 1), 1);
    return monad_async_make_success(0);
}

static monad_async_result sleeper_fn(monad_async_task task)
{
    CHECK_RESULT(monad_async_task_suspend_for_duration(task, 1000000));
    CHECK_RESULT(monad_async_task_yield(task));
    return monad_async_make_success(0);
}

/* The details of `t`'s slice ends, in order. */
static int ends_of(monad_async_task t, uint32_t *out, int32_t *ops)
{
    int n = 0;
    int begun = 0;
    for (int i = 0; i < g_nev; i++) {
        if (g_ev[i].task != t) {
            continue;
        }
        if (g_ev[i].event == MONAD_ASYNC_TRACE_SLICE_BEGIN) {
            CHECK_MSG(!begun, "two begins without an end");
            CHECK_EQ(g_ev[i].detail, n == 0 ? 1u : 0u); /* launch first */
            begun = 1;
        }
        else {
            CHECK_EQ(g_ev[i].event, MONAD_ASYNC_TRACE_SLICE_END);
            CHECK_MSG(begun, "an end without a begin");
            begun = 0;
            ops[n] = g_ev[i].opcode;
            out[n++] = g_ev[i].detail;
        }
    }
    CHECK(!begun);
    return n;
}

int main(void)
{
    test_watchdog(60, "trace_hooks");
    monad_async_executor ex = test_make_ring_executor(16, 0);
    monad_async_result const built = monad_async_trace_hooks_built();
    CHECK_RESULT(built);
#if defined(MONAD_ASYNC_TRACE_HOOKS) && MONAD_ASYNC_TRACE_HOOKS
    CHECK_EQ(built.value, 1);
#else
    CHECK_EQ(built.value, 0);
    CHECK_ERROR(monad_async_executor_set_trace_hook(ex, hook, (void *)42), ENOTSUP);
    CHECK_ERROR(monad_async_executor_set_trace_hook(NULL, hook, NULL), EINVAL);
    CHECK_RESULT(monad_async_executor_destroy(ex));
    test_note("built without trace hooks: ENOTSUP, as documented");
    return 0;
#endif
    CHECK_ERROR(monad_async_executor_set_trace_hook(NULL, hook, NULL), EINVAL);
    CHECK_RESULT(monad_async_executor_set_trace_hook(ex, hook, (void *)42));
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sock), 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    g_a = test_make_task(sw, 0);
    g_a->user_code = a_fn;
    g_b = test_make_task(sw, 0);
    g_b->user_code = b_fn;
    CHECK_RESULT(monad_async_task_attach(ex, g_a, NULL));
    CHECK_RESULT(monad_async_task_attach(ex, g_b, NULL));
    (void)test_run_until_detached(ex, g_a, 10000);
    (void)test_run_until_detached(ex, g_b, 10000);

    uint32_t d[16];
    int32_t op[16];
    int const na = ends_of(g_a, d, op);
    CHECK_EQ(na, 4);
    CHECK_EQ(d[0], MONAD_ASYNC_TASK_ACTIVITY_RUNNABLE); /* the yield */
    CHECK_EQ(d[1], MONAD_ASYNC_TASK_ACTIVITY_PARKED);
    CHECK_EQ(d[2], MONAD_ASYNC_TASK_ACTIVITY_IO);
    CHECK_EQ(op[2], IORING_OP_RECV);
    CHECK_EQ(d[3], MONAD_ASYNC_TRACE_EXITED);
    int const nb = ends_of(g_b, d, op);
    CHECK_EQ(nb, 3);
    CHECK_EQ(d[0], MONAD_ASYNC_TASK_ACTIVITY_SLEEPING);
    CHECK_EQ(op[0], IORING_OP_TIMEOUT);
    CHECK_EQ(d[1], MONAD_ASYNC_TASK_ACTIVITY_SLEEPING);
    CHECK_EQ(d[2], MONAD_ASYNC_TRACE_EXITED);

    /* Cleared: no more calls. Inside a run: EBUSY is for tasks; between
     * runs it is allowed. */
    CHECK_RESULT(monad_async_executor_set_trace_hook(ex, NULL, NULL));
    int const before = g_nev;
    g_a->user_code = sleeper_fn;
    CHECK_RESULT(monad_async_task_attach(ex, g_a, NULL));
    (void)test_run_until_detached(ex, g_a, 10000);
    CHECK_EQ(g_nev, before);

    CHECK_RESULT(monad_async_task_destroy(g_a));
    CHECK_RESULT(monad_async_task_destroy(g_b));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    close(g_sock[0]);
    close(g_sock[1]);
    return 0;
}
