/* Bad input to the work dispatcher gives an errno value, never a crash,
 * and leaves everything usable: NULLs, unknown flags and bad timeouts
 * give EINVAL; submitting a task that is attached or already queued (the
 * same task twice in one batch included) gives EBUSY and queues none of
 * the batch, restoring each task's state; a queued task cannot be
 * attached, destroyed (EBUSY) or cancelled on an executor (ENOENT);
 * destroying a dispatcher with executors in its pool or tasks queued gives
 * EBUSY; running or destroying an executor from another thread gives
 * EPERM, from inside its own run EBUSY; waiting or quitting without a
 * timeout from inside a pool task gives EDEADLK. Failures carry value 0.
 * Header contract: dispatcher.h's EINVAL/EBUSY/EPERM/EDEADLK lines. */
#include "dispatcher_common.h"

static struct timespec const no_wait = {0, 0};

static monad_async_result plain_task(monad_async_task task)
{
    (void)task;
    return monad_async_make_success(1);
}

static void nulls_and_flags(void)
{
    struct monad_async_work_dispatcher_attr a;
    memset(&a, 0, sizeof(a));
    monad_async_work_dispatcher wd = NULL;
    CHECK_ERROR(monad_async_work_dispatcher_create(NULL, &a), EINVAL);
    a.flags = 1u << 7;
    CHECK_ERROR(monad_async_work_dispatcher_create(&wd, &a), EINVAL);
    CHECK(wd == NULL);
    CHECK_RESULT(monad_async_work_dispatcher_create(&wd, NULL));

    monad_async_work_dispatcher_executor ex = NULL;
    CHECK_ERROR(monad_async_work_dispatcher_destroy(NULL), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_executor_create(NULL, wd, NULL),
                EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_executor_create(&ex, NULL, NULL),
                EINVAL);
    struct monad_async_work_dispatcher_executor_attr ea;
    memset(&ea, 0, sizeof(ea));
    ea.executor.flags = 1u << 9; /* unknown executor flag */
    CHECK_ERROR(monad_async_work_dispatcher_executor_create(&ex, wd, &ea),
                EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_executor_destroy(NULL), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_executor_run(NULL), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_executor_read_counters(NULL, NULL),
                EINVAL);

    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_NONE);
    monad_async_task ok = test_make_work(sw, plain_task,
                                         monad_async_priority_normal, NULL);
    CHECK_ERROR(monad_async_work_dispatcher_submit(NULL, &ok, 1), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, NULL, 1), EINVAL);
    monad_async_result r = monad_async_work_dispatcher_submit(wd, NULL, 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0);
    monad_async_task with_null[2] = {ok, NULL};
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, with_null, 2), EINVAL);
    monad_async_task no_code = test_make_task(sw, 0);
    monad_async_task pair[2] = {ok, no_code};
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, pair, 2), EINVAL);
    no_code->user_code = plain_task;
    no_code->priority.cpu = monad_async_priority_max;
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, pair, 2), EINVAL);
    no_code->priority.cpu = monad_async_priority_low;
    no_code->priority.io = (monad_async_priority)-1;
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, pair, 2), EINVAL);
    no_code->priority.io = monad_async_priority_low;
    CHECK_EQ(test_task_state(ok), 0); /* nothing was claimed */

    struct timespec bad = {0, 1000000000L};
    CHECK_ERROR(monad_async_work_dispatcher_wait(NULL, 0, 0, NULL), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 0, 0, &bad), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_quit(NULL, 1, NULL), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, 1, &bad), EINVAL);
    bad.tv_nsec = -1;
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 0, 0, &bad), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, 1, &bad), EINVAL);
    struct monad_async_work_dispatcher_counters c;
    CHECK_ERROR(monad_async_work_dispatcher_read_counters(NULL, &c), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_read_counters(wd, NULL), EINVAL);
    CHECK_ERROR(monad_async_work_dispatcher_cancel_queued(NULL), EINVAL);
    /* None of that queued anything or broke anything. */
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.submitted, 0);
    CHECK_RESULT(monad_async_work_dispatcher_destroy(wd));
    CHECK_RESULT(monad_async_task_destroy(ok));
    CHECK_RESULT(monad_async_task_destroy(no_code));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

static void busy_tasks(void)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task a =
        test_make_work(sw, plain_task, monad_async_priority_normal, NULL);
    monad_async_task b =
        test_make_work(sw, plain_task, monad_async_priority_high, NULL);

    /* A task that ran before (EXITED) and a fresh one, then the first
     * again: EBUSY, and both states are back as they were. */
    monad_async_executor plain = test_make_executor(0, 0);
    CHECK_RESULT(monad_async_task_attach(plain, a, NULL));
    test_run_until_detached(plain, a, 5000);
    CHECK_EQ(test_task_state(a), MONAD_ASYNC_TASK_STATE_EXITED);
    monad_async_task twice[3] = {a, b, a};
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, twice, 3), EBUSY);
    CHECK_EQ(test_task_state(a), MONAD_ASYNC_TASK_STATE_EXITED);
    CHECK_EQ(test_task_state(b), 0);
    struct monad_async_work_dispatcher_counters c;
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.submitted, 0);
    CHECK_EQ(c.queued, 0);

    /* A task attached to an executor cannot be submitted. */
    CHECK_RESULT(monad_async_task_attach(plain, b, NULL));
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, &b, 1), EBUSY);
    test_run_until_detached(plain, b, 5000);

    /* A queued task: not again, not attached, not destroyed, not
     * cancelled on an executor. */
    test_submit1(wd, a);
    CHECK_ERROR(monad_async_work_dispatcher_submit(wd, &a, 1), EBUSY);
    CHECK_ERROR(monad_async_task_attach(plain, a, NULL), EBUSY);
    CHECK_ERROR(monad_async_task_destroy(a), EBUSY);
    CHECK_ERROR(monad_async_task_cancel(plain, a), ENOENT);
    CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
    CHECK_EQ(c.submitted, 1);
    CHECK_EQ(c.queued, 1);

    /* Queued work keeps the dispatcher alive... */
    CHECK_ERROR(monad_async_work_dispatcher_destroy(wd), EBUSY);
    /* ...and so does an executor in its pool. */
    struct test_pool pool;
    test_pool_start(&pool, wd, 1, 0);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));
    CHECK_EQ(a->result.value, 1);
    CHECK_ERROR(monad_async_work_dispatcher_destroy(wd), EBUSY);

    /* Not the executor's thread. */
    CHECK_ERROR(monad_async_work_dispatcher_executor_run(pool.ex[0]), EPERM);
    CHECK_ERROR(monad_async_work_dispatcher_executor_destroy(pool.ex[0]),
                EPERM);
    test_pool_shutdown(&pool);

    CHECK_RESULT(monad_async_executor_destroy(plain));
    CHECK_RESULT(monad_async_task_destroy(a));
    CHECK_RESULT(monad_async_task_destroy(b));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

/* ---- from inside a pool task ---- */

static struct test_pool *inside_pool;
static _Atomic int inside_checked;

static monad_async_result inside_task(monad_async_task task)
{
    (void)task;
    monad_async_executor const cur =
        (monad_async_executor)monad_async_executor_current().value;
    monad_async_work_dispatcher_executor mine = NULL;
    for (size_t i = 0; i < inside_pool->n; i++) {
        if (inside_pool->ex[i]->executor == cur) {
            mine = inside_pool->ex[i];
        }
    }
    CHECK(mine != NULL);
    monad_async_work_dispatcher const wd = mine->dispatcher;
    CHECK_ERROR(monad_async_work_dispatcher_executor_run(mine), EBUSY);
    CHECK_ERROR(monad_async_work_dispatcher_executor_destroy(mine), EBUSY);
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 0, 0, NULL), EDEADLK);
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, SIZE_MAX, SIZE_MAX, NULL),
                EDEADLK);
    CHECK_ERROR(monad_async_work_dispatcher_quit(wd, SIZE_MAX, NULL), EDEADLK);
    /* With a timeout it is allowed: this task itself is unexecuted. */
    CHECK_ERROR(monad_async_work_dispatcher_wait(wd, 0, 0, &no_wait), ETIME);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 1, &no_wait));
    /* The executor underneath belongs to this run. */
    CHECK_ERROR(monad_async_executor_run(cur, 1, &no_wait), EBUSY);
    atomic_store(&inside_checked, 1);
    return monad_async_make_success(0);
}

static void from_inside(void)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, 2, 0);
    inside_pool = &pool;
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task t =
        test_make_work(sw, inside_task, monad_async_priority_normal, NULL);
    test_submit1(wd, t);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));
    CHECK(atomic_load(&inside_checked));
    CHECK_RESULT(t->result);
    test_pool_shutdown(&pool);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

int main(void)
{
    test_watchdog(60, "dispatcher_bad_input");
    nulls_and_flags();
    busy_tasks();
    from_inside();
    printf("dispatcher_bad_input: ok\n");
    return 0;
}
