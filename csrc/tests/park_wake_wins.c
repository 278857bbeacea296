/* A wake that resumed a parked task wins over a cancel that lands before
 * the task runs again (task.h, monad_async_task_park: "a wake that
 * arrived first wins and the park succeeds, the next suspension point
 * then says ECANCELED"; monad_async_task_wake: value 1 "when this call
 * resumed a parked task").
 *
 * Found by the fuzzer (csrc/fuzz/api_fuzz.c): the cancel overwrote the
 * outcome of a parking already resumed and queued to run, so park said
 * ECANCELED although a wake had answered 1 for it; and destroy, which
 * cancels its ready tasks again on every pass, did the same to a task
 * woken just before it. A waker handing something over (a lock, a
 * message) by waking would have its hand-over reported as never made.
 *
 * Each case parks a task with no deadline, wakes it (value 1), cancels
 * it before it runs again, and checks that park returned success and the
 * next suspension point ECANCELED:
 *  1. local wake, then local cancel;
 *  2. wake from another thread, then local cancel;
 *  3. cancel from another thread (pending in the inbox), then local wake;
 *  4. local wake, then destroy of the executor;
 * on executors with and without a ring. */
#include "test_common.h"

#include <pthread.h>

struct parker
{
    int park_err;  /* what park returned (-1: not yet) */
    int after_err; /* the next suspension point's result (-1: not yet) */
};

static monad_async_result park_fn(monad_async_task task)
{
    struct parker *const p = task->user_ptr;
    p->park_err = monad_async_task_park(task, UINT64_MAX).error;
    p->after_err = monad_async_task_yield(task).error;
    return monad_async_make_success(0);
}

struct remote
{
    monad_async_executor ex;
    monad_async_task task;
    uint64_t token;
    int cancel; /* cancel instead of wake */
    monad_async_result r;
};

static void *remote_fn(void *arg)
{
    struct remote *const rm = arg;
    rm->r = rm->cancel ? monad_async_task_cancel(rm->ex, rm->task)
                       : monad_async_task_wake(rm->task, rm->token);
    return NULL;
}

static monad_async_result remote_call(monad_async_executor ex,
                                      monad_async_task task, uint64_t token,
                                      int cancel)
{
    struct remote rm = {ex, task, token, cancel, {0, 0}};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, remote_fn, &rm), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    return rm.r;
}

/* Attaches a parker and runs until it is parked; its token in *token. */
static monad_async_task start_parked(monad_async_executor ex,
                                     monad_async_context_switcher sw,
                                     struct parker *p, uint64_t *token)
{
    monad_async_task t = test_make_task(sw, 0);
    p->park_err = p->after_err = -1;
    t->user_code = park_fn;
    t->user_ptr = p;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    CHECK_RESULT(monad_async_task_wake_token(t, token));
    struct timespec const zero = {0, 0};
    monad_async_result const r = monad_async_executor_run(ex, 1, &zero);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    CHECK_EQ(p->park_err, -1);
    return t;
}

static void check_wake_won(struct parker const *p, char const *what)
{
    CHECK_MSG(p->park_err == 0, "%s: park returned %s after a wake that "
                                "resumed it",
              what, test_errno_name(p->park_err));
    CHECK_MSG(p->after_err == ECANCELED,
              "%s: the next suspension point returned %s", what,
              test_errno_name(p->after_err));
}

static void cases(unsigned entries, monad_async_context_switcher sw)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    struct parker p;
    uint64_t token;

    /* 1 */
    monad_async_task t = start_parked(ex, sw, &p, &token);
    monad_async_result r = monad_async_task_wake(t, token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK_ERROR(monad_async_task_cancel(ex, t), EAGAIN);
    test_run_until_detached(ex, t, 5000);
    check_wake_won(&p, "local wake, local cancel");
    CHECK_RESULT(monad_async_task_destroy(t));

    /* 2 */
    t = start_parked(ex, sw, &p, &token);
    r = remote_call(ex, t, token, 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK_ERROR(monad_async_task_cancel(ex, t), EAGAIN);
    test_run_until_detached(ex, t, 5000);
    check_wake_won(&p, "remote wake, local cancel");
    CHECK_RESULT(monad_async_task_destroy(t));

    /* 3 */
    t = start_parked(ex, sw, &p, &token);
    CHECK_ERROR(remote_call(ex, t, 0, 1), EAGAIN);
    r = monad_async_task_wake(t, token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1); /* the remote cancel has not been drained yet */
    test_run_until_detached(ex, t, 5000);
    check_wake_won(&p, "remote cancel, then local wake");
    CHECK_RESULT(monad_async_task_destroy(t));

    CHECK_RESULT(monad_async_executor_destroy(ex));

    /* 4 */
    ex = test_make_executor(entries, 0);
    t = start_parked(ex, sw, &p, &token);
    r = monad_async_task_wake(t, token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK(!test_task_attached(t));
    check_wake_won(&p, "local wake, destroy");
    CHECK_RESULT(monad_async_task_destroy(t));
}

int main(void)
{
    test_watchdog(60, "park_wake_wins");
    for (int s = 0; s < TEST_SWITCHER_NONE; s++) {
        monad_async_context_switcher sw =
            test_make_switcher((enum test_switcher_kind)s);
        cases(0, sw);
        if (!test_skip_ring_part("the cases on a ring executor")) {
            cases(16, sw);
        }
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    }
    return 0;
}
