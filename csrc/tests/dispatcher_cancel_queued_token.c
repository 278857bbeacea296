/* A task whose work monad_async_work_dispatcher_cancel_queued ended has
 * tokens that name work that is over: a wake with one is refused with
 * ESRCH and leaves nothing behind (task.h, monad_async_task_wake: "ESRCH:
 * the work `token` names is over (refused; nothing happens)").
 *
 * Found by the fuzzer (csrc/fuzz/api_fuzz.c): cancel_queued ended the
 * work (result ECANCELED, EXITED, exit hook) without ending its
 * generation, as an executor does when work ends on it, so the token
 * taken while the task was queued stayed live: a wake with it answered
 * success and left a permit on work that was over.
 *
 *  1. submit, take the token while queued, cancel_queued: the token is
 *     refused (ESRCH), also after the task is submitted again;
 *  2. the new work runs on an executor of the dispatcher (this thread):
 *     its own token is another, and a park(0) finds no permit (ETIME).
 * Header contract: task.h (tokens), dispatcher.h (cancel_queued). */
#include "test_common.h"

static int g_exits;
static int g_park_err = -1;

static void on_exit_count(monad_async_task task)
{
    (void)task;
    g_exits++;
}

static monad_async_result park_zero_fn(monad_async_task task)
{
    g_park_err = monad_async_task_park(task, 0).error;
    return monad_async_make_success(0);
}

int main(void)
{
    test_watchdog(60, "dispatcher_cancel_queued_token");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_work_dispatcher wd = NULL;
    CHECK_RESULT(monad_async_work_dispatcher_create(&wd, NULL));
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = park_zero_fn;
    t->user_on_exit = on_exit_count;

    /* 1 */
    CHECK_RESULT(monad_async_work_dispatcher_submit(wd, &t, 1));
    uint64_t queued_token = 0;
    CHECK_RESULT(monad_async_task_wake_token(t, &queued_token));
    monad_async_result r = monad_async_work_dispatcher_cancel_queued(wd);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK_EQ(g_exits, 1);
    CHECK_ERROR(t->result, ECANCELED);
    CHECK(!test_task_attached(t));
    uint64_t token;
    CHECK_ERROR(monad_async_task_wake_token(t, &token), ENOENT);
    CHECK_ERROR(monad_async_task_wake(t, queued_token), ESRCH);

    CHECK_RESULT(monad_async_work_dispatcher_submit(wd, &t, 1));
    CHECK_ERROR(monad_async_task_wake(t, queued_token), ESRCH);
    uint64_t new_token = 0;
    CHECK_RESULT(monad_async_task_wake_token(t, &new_token));
    CHECK_NE(new_token, queued_token);

    /* 2 */
    monad_async_work_dispatcher_executor wex = NULL;
    CHECK_RESULT(monad_async_work_dispatcher_executor_create(&wex, wd, NULL));
    for (int i = 0; i < 100 && test_task_attached(t); i++) {
        CHECK_RESULT(monad_async_work_dispatcher_executor_run(wex));
    }
    CHECK(!test_task_attached(t));
    CHECK_EQ(g_exits, 2);
    CHECK_MSG(g_park_err == ETIME,
              "park(0) of the new work returned %s: a permit was left",
              test_errno_name(g_park_err));
    CHECK_ERROR(monad_async_task_wake(t, new_token), ESRCH);

    struct timespec const zero = {0, 0};
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, SIZE_MAX, &zero), ETIME);
    for (int i = 0; i < 100; i++) {
        r = monad_async_work_dispatcher_executor_run(wex);
        CHECK_RESULT(r);
        if (r.value < 0) {
            break;
        }
    }
    CHECK_LT(r.value, 0);
    CHECK_RESULT(monad_async_work_dispatcher_executor_destroy(wex));
    CHECK_RESULT(monad_async_work_dispatcher_destroy(wd));
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    return 0;
}
