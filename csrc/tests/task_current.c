/* monad_async_task_current (task.h): the task running on this thread and
 * its wake token, in one call.
 *
 *  1. outside any executor: 0, and the token is left alone;
 *  2. inside a task, with every switcher (the none switcher's tasks run
 *     too): the task, and the token monad_async_task_wake_token gives;
 *     a NULL token is allowed; the token names that work (a wake with it
 *     resumes the task parked), and the next work of the same task gets
 *     another one;
 *  3. in the exit hook, and in a task's executor's run between slices:
 *     no task runs (0);
 *  4. from another thread while a task runs on the executor's thread: 0
 *     there (the answer is per thread).
 */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define UNTOUCHED 0x5a5a5a5a5a5a5a5aull

struct seen
{
    intptr_t task;         /* monad_async_task_current's value */
    uint64_t token;        /* and its token */
    uint64_t wake_token;   /* monad_async_task_wake_token's */
    intptr_t task_no_token; /* the value with a NULL token */
    intptr_t in_hook;      /* the value in the exit hook */
    uint64_t hook_token;   /* the token there (must stay UNTOUCHED) */
    intptr_t remote;       /* the value on another thread meanwhile */
    uint64_t remote_token;
    bool can_park;
    int park_error;
};

static void *remote_fn(void *arg)
{
    struct seen *const s = arg;
    s->remote_token = UNTOUCHED;
    monad_async_result const r = monad_async_task_current(&s->remote_token);
    CHECK_RESULT(r);
    s->remote = r.value;
    return NULL;
}

static monad_async_result look_fn(monad_async_task task)
{
    struct seen *const s = task->user_ptr;
    monad_async_result r = monad_async_task_current(&s->token);
    CHECK_RESULT(r);
    s->task = r.value;
    CHECK_RESULT(monad_async_task_wake_token(task, &s->wake_token));
    r = monad_async_task_current(NULL);
    CHECK_RESULT(r);
    s->task_no_token = r.value;
    /* Another thread asks while this task runs here. */
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, remote_fn, s), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    if (s->can_park) {
        /* The token it gave names this work: a wake with it leaves a
         * permit that this park consumes at once. */
        CHECK_RESULT(monad_async_task_wake(task, s->token));
        s->park_error = monad_async_task_park(task, UINT64_MAX).error;
    }
    return monad_async_make_success(0);
}

static void exit_hook(monad_async_task task)
{
    struct seen *const s = task->user_ptr;
    s->hook_token = UNTOUCHED;
    monad_async_result const r = monad_async_task_current(&s->hook_token);
    CHECK_RESULT(r);
    s->in_hook = r.value;
}

static void one_work(monad_async_executor ex, monad_async_task t, bool can_park,
                     struct seen *s)
{
    memset(s, 0, sizeof(*s));
    s->in_hook = -1;
    s->can_park = can_park;
    t->user_code = look_fn;
    t->user_ptr = s;
    t->user_on_exit = exit_hook;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    /* Between slices, inside nothing: the executor's thread runs no task. */
    uint64_t token = UNTOUCHED;
    monad_async_result const r = monad_async_task_current(&token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);
    CHECK_EQ(token, UNTOUCHED);
    test_run_until_detached(ex, t, 5000);
    CHECK_EQ(s->task, (intptr_t)t);
    CHECK_EQ(s->task_no_token, (intptr_t)t);
    CHECK_EQ(s->token, s->wake_token);
    CHECK(s->token & 1); /* a live work's token */
    CHECK_EQ(s->in_hook, 0);
    CHECK_EQ(s->hook_token, UNTOUCHED);
    CHECK_EQ(s->remote, 0);
    CHECK_EQ(s->remote_token, UNTOUCHED);
    if (can_park) {
        CHECK_EQ(s->park_error, 0);
    }
}

int main(void)
{
    test_watchdog(60, "task_current");
    uint64_t token = UNTOUCHED;
    monad_async_result r = monad_async_task_current(&token);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);
    CHECK_EQ(token, UNTOUCHED);
    r = monad_async_task_current(NULL);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);

    monad_async_executor ex = test_make_executor(0, 0);
    for (int s = 0; s <= TEST_SWITCHER_NONE; s++) {
        monad_async_context_switcher sw =
            test_make_switcher((enum test_switcher_kind)s);
        monad_async_task t = test_make_task(sw, 0);
        struct seen first, second;
        one_work(ex, t, s != TEST_SWITCHER_NONE, &first);
        /* The same task, new work: a new token, given the same way. */
        one_work(ex, t, s != TEST_SWITCHER_NONE, &second);
        CHECK_NE(first.token, second.token);
        CHECK_RESULT(monad_async_task_destroy(t));
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    }
    CHECK_RESULT(monad_async_executor_destroy(ex));
    return 0;
}
