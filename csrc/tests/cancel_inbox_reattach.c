/* A local cancel of a task still in the inbox cancels that work only,
 * never the work its exit hook attaches next (task.h,
 * monad_async_task_cancel: "It names the piece of work the task is
 * running when the call is made: if that work ends first, the request is
 * dropped (it never cancels later work of the same task ...)").
 *
 * Found by the fuzzer (csrc/fuzz/api_fuzz.c). A task attached from
 * another thread and cancelled from another thread has both requests in
 * its executor's inbox. A cancel on the owner thread then drains the
 * inbox to reach it: the queued cancel ends the work there, and the exit
 * hook attaches the task again. The local cancel went on with the task's
 * new state and cancelled the new work, which nobody had cancelled (it
 * ended ECANCELED without running); with the new work on another
 * executor it unlinked the task from this executor's lists.
 *
 *  1. the hook re-attaches to the same executor: the new work runs;
 *  2. the hook re-attaches to a second executor: the new work runs there,
 *     and both executors' counts stay right;
 * both with and without a ring. */
#include "test_common.h"

#include <pthread.h>

static int g_ran;       /* user_code runs */
static int g_exits;     /* exit hook calls */
static int g_cancelled; /* of which ECANCELED */
static monad_async_executor g_reattach_to;

static monad_async_result work_fn(monad_async_task task)
{
    (void)task;
    g_ran++;
    return monad_async_make_success(7);
}

static void reattach_hook(monad_async_task task)
{
    g_exits++;
    if (task->result.error == ECANCELED) {
        g_cancelled++;
    }
    if (g_reattach_to != NULL) {
        monad_async_executor const to = g_reattach_to;
        g_reattach_to = NULL; /* once */
        CHECK_RESULT(monad_async_task_attach(to, task, NULL));
    }
}

struct remote
{
    monad_async_executor ex;
    monad_async_task task;
};

static void *attach_then_cancel(void *arg)
{
    struct remote *const rm = arg;
    CHECK_RESULT(monad_async_task_attach(rm->ex, rm->task, NULL));
    CHECK_ERROR(monad_async_task_cancel(rm->ex, rm->task), EAGAIN);
    return NULL;
}

static void one(unsigned entries, monad_async_context_switcher sw, int other)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    monad_async_executor ex2 = other ? test_make_executor(entries, 0) : NULL;
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = work_fn;
    t->user_on_exit = reattach_hook;
    g_ran = g_exits = g_cancelled = 0;
    g_reattach_to = other ? ex2 : ex;

    struct remote rm = {ex, t};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, attach_then_cancel, &rm), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_IN_INBOX);

    /* The first work was pending: cancelled (by the queued request, or by
     * this call: either way success, and it never ran). */
    CHECK_RESULT(monad_async_task_cancel(ex, t));
    CHECK_EQ(g_exits, 1);
    CHECK_EQ(g_cancelled, 1);
    CHECK_EQ(g_ran, 0);
    /* The hook's work is attached, not cancelled. */
    CHECK(test_task_attached(t));
    CHECK(atomic_load(&t->current_executor) == (other ? ex2 : ex));
    CHECK_MSG(!(test_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED),
              "the work attached by the exit hook is cancelled (state 0x%x)",
              (unsigned)test_task_state(t));
    CHECK_EQ(ex->tasks_attached, other ? 0u : 1u);
    CHECK_EQ(ex->counters.attached - ex->counters.exited, ex->tasks_attached);

    test_run_until_detached(other ? ex2 : ex, t, 5000);
    CHECK_EQ(g_ran, 1);
    CHECK_EQ(g_exits, 2);
    CHECK_EQ(g_cancelled, 1);
    CHECK_RESULT(t->result);
    CHECK_EQ(t->result.value, 7);

    CHECK_EQ(ex->tasks_attached, 0);
    CHECK_EQ(ex->counters.attached, ex->counters.exited);
    CHECK_RESULT(monad_async_task_destroy(t));
    if (ex2 != NULL) {
        CHECK_EQ(ex2->counters.attached, 1);
        CHECK_EQ(ex2->counters.exited, 1);
        CHECK_RESULT(monad_async_executor_destroy(ex2));
    }
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

int main(void)
{
    test_watchdog(60, "cancel_inbox_reattach");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    for (int other = 0; other < 2; other++) {
        one(0, sw, other);
        if (!test_skip_ring_part("the cases on a ring executor")) {
            one(16, sw, other);
        }
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    return 0;
}
