/* Bad input gives an errno value, never a crash, and leaves the objects
 * usable: NULLs give EINVAL; attach twice EBUSY; destroying an attached
 * task EBUSY; yield/suspend_for_duration outside a task EINVAL; cancel of
 * an unattached task ENOENT; run/destroy from a non-owning thread EPERM;
 * run with max_items 0 EINVAL; task_create with a NULL switcher EINVAL;
 * switcher destroy while a task uses it EBUSY; run (and destroy) from
 * inside a task of the same executor EBUSY; unknown layout items and
 * switcher flags EINVAL. Failures carry value 0 (result.h).
 * Header contract: every public header's "EINVAL/EBUSY/..." lines. */
#include "test_common.h"

#include <pthread.h>
#include <stddef.h>

static int ran;

static monad_async_result plain_fn(monad_async_task task)
{
    (void)task;
    ran++;
    return monad_async_make_success(5);
}

static void check_nulls(void)
{
    monad_async_executor ex = NULL;
    monad_async_context_switcher sw = NULL;
    monad_async_task t = NULL;
    struct monad_async_executor_attr ea;
    memset(&ea, 0, sizeof(ea));
    struct monad_async_task_attr ta;
    memset(&ta, 0, sizeof(ta));

    CHECK_ERROR(monad_async_executor_create(NULL, &ea), EINVAL);
    CHECK_ERROR(monad_async_executor_create(NULL, NULL), EINVAL);
    CHECK_ERROR(monad_async_executor_destroy(NULL), EINVAL);
    CHECK_ERROR(monad_async_executor_run(NULL, 1, NULL), EINVAL);
    CHECK_ERROR(monad_async_executor_wake(NULL), EINVAL);

    CHECK_ERROR(monad_async_context_switcher_sjlj_create(NULL), EINVAL);
    CHECK_ERROR(monad_async_context_switcher_asm_create(NULL), EINVAL);
    CHECK_ERROR(monad_async_context_switcher_asm_create_with_attr(NULL, NULL),
                EINVAL);
    CHECK_ERROR(monad_async_context_switcher_none_create(NULL), EINVAL);
    CHECK_ERROR(monad_async_context_switcher_destroy(NULL), EINVAL);

    CHECK_RESULT(monad_async_context_switcher_sjlj_create(&sw));
    CHECK_ERROR(monad_async_task_create(NULL, sw, &ta), EINVAL);
    CHECK_ERROR(monad_async_task_create(&t, NULL, &ta), EINVAL);
    CHECK_ERROR(monad_async_task_destroy(NULL), EINVAL);

    CHECK_ERROR(monad_async_task_yield(NULL), EINVAL);
    CHECK_ERROR(monad_async_task_suspend_for_duration(NULL, 1000), EINVAL);

    /* NULL attr for an executor is allowed (compute-only). */
    CHECK_RESULT(monad_async_executor_create(&ex, NULL));
    CHECK(ex != NULL);
    t = test_make_task(sw, 0);
    t->user_code = plain_fn;
    CHECK_ERROR(monad_async_task_attach(NULL, t, NULL), EINVAL);
    CHECK_ERROR(monad_async_task_attach(ex, NULL, NULL), EINVAL);
    CHECK_ERROR(monad_async_task_attach(NULL, NULL, NULL), EINVAL);
    CHECK_ERROR(monad_async_task_cancel(NULL, t), EINVAL);
    CHECK_ERROR(monad_async_task_cancel(ex, NULL), EINVAL);
    CHECK_ERROR(monad_async_task_cancel(NULL, NULL), EINVAL);

    /* NULL user_code at attach. */
    t->user_code = NULL;
    CHECK_ERROR(monad_async_task_attach(ex, t, NULL), EINVAL);
    CHECK(!test_task_attached(t));
    /* Priorities out of range. */
    t->user_code = plain_fn;
    t->priority.cpu = monad_async_priority_max;
    CHECK_ERROR(monad_async_task_attach(ex, t, NULL), EINVAL);
    t->priority.cpu = (monad_async_priority)77;
    CHECK_ERROR(monad_async_task_attach(ex, t, NULL), EINVAL);
    t->priority.cpu = (monad_async_priority)-1;
    CHECK_ERROR(monad_async_task_attach(ex, t, NULL), EINVAL);
    t->priority.cpu = monad_async_priority_normal;
    t->priority.io = monad_async_priority_max;
    CHECK_ERROR(monad_async_task_attach(ex, t, NULL), EINVAL);
    t->priority.io = (monad_async_priority)-1;
    CHECK_ERROR(monad_async_task_attach(ex, t, NULL), EINVAL);
    t->priority.io = monad_async_priority_low;
    CHECK(!test_task_attached(t));
    CHECK_EQ(ex->tasks_attached, 0);

    /* None of that broke anything: the task still runs, exactly once. */
    ran = 0;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_detached(ex, t, 5000);
    CHECK_EQ(ran, 1);
    CHECK_EQ(t->result.value, 5);

    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

static void check_switcher_flags(void)
{
    monad_async_context_switcher sw = NULL;
    struct monad_async_context_switcher_attr a;
    memset(&a, 0, sizeof(a));
    a.flags = 1u << 7;
    CHECK_ERROR(monad_async_context_switcher_asm_create_with_attr(&sw, &a),
                EINVAL);
    a.flags = MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL | (1u << 31);
    CHECK_ERROR(monad_async_context_switcher_asm_create_with_attr(&sw, &a),
                EINVAL);
    /* A NULL attr is allowed. */
    CHECK_RESULT(monad_async_context_switcher_asm_create_with_attr(&sw, NULL));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

static void check_layout(void)
{
    CHECK_ERROR(monad_async_layout(MONAD_ASYNC_LAYOUT_COUNT), EINVAL);
    CHECK_ERROR(monad_async_layout((enum monad_async_layout_item)1000),
                EINVAL);
    CHECK_ERROR(monad_async_layout((enum monad_async_layout_item)-1), EINVAL);
    struct
    {
        enum monad_async_layout_item item;
        size_t want;
    } const items[] = {
        {MONAD_ASYNC_LAYOUT_TASK_SIZE, sizeof(struct monad_async_task_head)},
        {MONAD_ASYNC_LAYOUT_TASK_STATE_OFFSET,
         offsetof(struct monad_async_task_head, state)},
        {MONAD_ASYNC_LAYOUT_TASK_STATE_SIZE,
         sizeof(((struct monad_async_task_head *)0)->state)},
        {MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_OFFSET,
         offsetof(struct monad_async_task_head, current_executor)},
        {MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_SIZE,
         sizeof(((struct monad_async_task_head *)0)->current_executor)},
        {MONAD_ASYNC_LAYOUT_EXECUTOR_SIZE,
         sizeof(struct monad_async_executor_head)},
        {MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_OFFSET,
         offsetof(struct monad_async_executor_head, current_task)},
        {MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_SIZE,
         sizeof(((struct monad_async_executor_head *)0)->current_task)},
        {MONAD_ASYNC_LAYOUT_RESULT_SIZE, sizeof(monad_async_result)},
    };
    CHECK_EQ(sizeof(items) / sizeof(items[0]), MONAD_ASYNC_LAYOUT_COUNT);
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        monad_async_result r = monad_async_layout(items[i].item);
        CHECK_RESULT(r);
        CHECK_MSG((size_t)r.value == items[i].want,
                  "layout item %d: library says %" PRIdPTR
                  ", this compilation unit says %zu",
                  (int)items[i].item, r.value, items[i].want);
    }
}

/* Attach twice, destroy while attached, switcher destroy while used,
 * cancel of unattached, yield/sleep outside a task, max_items 0. */
static void check_busy(void)
{
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_executor ex2 =
        test_make_executor(test_ring_entries(64, "check_busy's second executor"), 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task t = test_make_task(sw, 0);
    monad_async_task other = test_make_task(sw, 0);
    t->user_code = plain_fn;
    other->user_code = plain_fn;

    /* Outside any task. */
    CHECK_ERROR(monad_async_task_yield(t), EINVAL);
    CHECK_ERROR(monad_async_task_suspend_for_duration(t, 1000), EINVAL);
    CHECK_ERROR(monad_async_task_suspend_for_duration(t, 0), EINVAL);
    CHECK_ERROR(monad_async_executor_run(ex, 0, NULL), EINVAL);
    struct timespec const zero = {0, 0};
    CHECK_ERROR(monad_async_executor_run(ex, 0, &zero), EINVAL);

    /* Cancel of an unattached task. */
    CHECK_ERROR(monad_async_task_cancel(ex, t), ENOENT);

    /* Switcher in use by an unattached task: still in use. */
    CHECK_ERROR(monad_async_context_switcher_destroy(sw), EBUSY);

    ran = 0;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    CHECK_ERROR(monad_async_task_attach(ex, t, NULL), EBUSY);
    CHECK_ERROR(monad_async_task_attach(ex2, t, NULL), EBUSY);
    CHECK(atomic_load(&t->current_executor) == ex);
    CHECK_ERROR(monad_async_task_destroy(t), EBUSY);
    CHECK_ERROR(monad_async_context_switcher_destroy(sw), EBUSY);
    /* Attached to ex, not ex2: cancel through ex2 is ENOENT. */
    CHECK_ERROR(monad_async_task_cancel(ex2, t), ENOENT);
    /* Still runnable, and runs once. */
    CHECK_EQ(ex->tasks_attached, 1);
    test_run_until_detached(ex, t, 5000);
    CHECK_EQ(ran, 1);
    /* Yield on an exited task, outside any task. */
    CHECK_ERROR(monad_async_task_yield(t), EINVAL);
    /* Cancel after exit: no longer attached. */
    CHECK_ERROR(monad_async_task_cancel(ex, t), ENOENT);

    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_ERROR(monad_async_context_switcher_destroy(sw), EBUSY); /* other */
    CHECK_RESULT(monad_async_task_destroy(other));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex2));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

/* From inside a task. */
struct inside
{
    monad_async_executor ex;
    monad_async_executor other_ex;
    monad_async_task other_task; /* attached, not running */
    int checked;
};

static monad_async_result inside_fn(monad_async_task task)
{
    struct inside *in = (struct inside *)task->user_ptr;
    struct timespec const zero = {0, 0};
    /* run/destroy of our own executor from inside its task */
    CHECK_ERROR(monad_async_executor_run(in->ex, 1, NULL), EBUSY);
    CHECK_ERROR(monad_async_executor_run(in->ex, 1, &zero), EBUSY);
    CHECK_ERROR(monad_async_executor_destroy(in->ex), EBUSY);
    /* max_items 0 is still EINVAL (or EBUSY: both are errors; EINVAL is
     * the argument check) */
    monad_async_result r = monad_async_executor_run(in->ex, 0, NULL);
    CHECK(r.error == EINVAL || r.error == EBUSY);
    /* attach ourselves again: we are attached */
    CHECK_ERROR(monad_async_task_attach(in->ex, task, NULL), EBUSY);
    /* destroy ourselves: attached */
    CHECK_ERROR(monad_async_task_destroy(task), EBUSY);
    /* yield/sleep of a task that is not the running one */
    CHECK_ERROR(monad_async_task_yield(in->other_task), EINVAL);
    CHECK_ERROR(monad_async_task_suspend_for_duration(in->other_task, 1000),
                EINVAL);
    /* our switcher is in use */
    CHECK_ERROR(monad_async_context_switcher_destroy(task->switcher), EBUSY);
    /* current executor and task */
    monad_async_result cur = monad_async_executor_current();
    CHECK_RESULT(cur);
    CHECK(cur.value == (intptr_t)in->ex);
    CHECK(atomic_load(&in->ex->current_task) == task);
    /* the executor is fine after all that: yield works */
    CHECK_RESULT(monad_async_task_yield(task));
    CHECK_ERROR(monad_async_executor_run(in->ex, 1, NULL), EBUSY);
    in->checked = 1;
    return monad_async_make_success(0);
}

static monad_async_result inside_none_fn(monad_async_task task)
{
    struct inside *in = (struct inside *)task->user_ptr;
    struct timespec const zero = {0, 0};
    CHECK_ERROR(monad_async_executor_run(in->ex, 1, NULL), EBUSY);
    CHECK_ERROR(monad_async_executor_run(in->ex, 1, &zero), EBUSY);
    CHECK_ERROR(monad_async_executor_destroy(in->ex), EBUSY);
    CHECK_ERROR(monad_async_task_attach(in->ex, task, NULL), EBUSY);
    CHECK_ERROR(monad_async_task_destroy(task), EBUSY);
    CHECK_ERROR(monad_async_context_switcher_destroy(task->switcher), EBUSY);
    CHECK_ERROR(monad_async_task_yield(task), ENOTSUP);
    CHECK_ERROR(monad_async_task_suspend_for_duration(task, 1000), ENOTSUP);
    CHECK(monad_async_executor_current().value == (intptr_t)in->ex);
    CHECK(atomic_load(&in->ex->current_task) == task);
    in->checked = 1;
    return monad_async_make_success(0);
}

static void check_inside(void)
{
    for (int k = 0; k < 2; k++) {
        if (k && test_skip_ring_part("check_inside on a ring executor")) {
            continue;
        }
        monad_async_executor ex = test_make_executor(k ? 64 : 0, 0);
        monad_async_context_switcher sw =
            test_make_switcher(k ? TEST_SWITCHER_SJLJ : TEST_SWITCHER_ASM);
        monad_async_task t = test_make_task(sw, 0);
        monad_async_task other = test_make_task(sw, 0);
        struct inside in = {ex, NULL, other, 0};
        t->user_code = inside_fn;
        t->user_ptr = &in;
        other->user_code = plain_fn;
        other->priority.cpu = monad_async_priority_low;
        CHECK_RESULT(monad_async_task_attach(ex, other, NULL));
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        CHECK_EQ(monad_async_executor_current().value, 0);
        test_run_until_detached(ex, t, 5000);
        test_run_until_detached(ex, other, 5000);
        CHECK(in.checked);
        CHECK_RESULT(t->result);
        CHECK_EQ(monad_async_executor_current().value, 0);
        CHECK(atomic_load(&ex->current_task) == NULL);
        CHECK_RESULT(monad_async_task_destroy(t));
        CHECK_RESULT(monad_async_task_destroy(other));
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }
    /* A none-switcher task runs on the executor's own stack, inside run:
     * run and destroy are EBUSY there too, and it cannot suspend. */
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_NONE);
    monad_async_task t = test_make_task(sw, 0);
    struct inside in = {ex, NULL, NULL, 0};
    t->user_code = inside_none_fn;
    t->user_ptr = &in;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_detached(ex, t, 5000);
    CHECK(in.checked);
    CHECK_RESULT(t->result);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

/* From a thread that does not own the executor. */
struct foreign
{
    monad_async_executor ex;
    monad_async_task t;
    int run_err, run_err0, destroy_err, wake_err, cancel_err, attach_err;
};

static void *foreign_main(void *arg)
{
    struct foreign *f = (struct foreign *)arg;
    struct timespec const zero = {0, 0};
    f->run_err = monad_async_executor_run(f->ex, 1, NULL).error;
    f->run_err0 = monad_async_executor_run(f->ex, 1, &zero).error;
    f->destroy_err = monad_async_executor_destroy(f->ex).error;
    f->wake_err = monad_async_executor_wake(f->ex).error;
    /* Any thread may cancel: not attached gives ENOENT. */
    f->cancel_err = monad_async_task_cancel(f->ex, f->t).error;
    /* Any thread may attach. */
    f->attach_err = monad_async_task_attach(f->ex, f->t, NULL).error;
    return NULL;
}

static void check_foreign(void)
{
    for (int k = 0; k < 2; k++) {
        if (k && test_skip_ring_part("check_foreign on a ring executor")) {
            continue;
        }
        monad_async_executor ex = test_make_executor(k ? 64 : 0, 0);
        monad_async_context_switcher sw =
            test_make_switcher(TEST_SWITCHER_SJLJ);
        monad_async_task t = test_make_task(sw, 0);
        t->user_code = plain_fn;
        struct foreign f;
        memset(&f, 0, sizeof(f));
        f.ex = ex;
        f.t = t;
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, foreign_main, &f), 0);
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_ERROR(test_errno_result(f.run_err), EPERM);
        CHECK_ERROR(test_errno_result(f.run_err0), EPERM);
        CHECK_ERROR(test_errno_result(f.destroy_err), EPERM);
        CHECK_ERROR(test_errno_result(f.wake_err), 0);
        CHECK_ERROR(test_errno_result(f.cancel_err), ENOENT);
        CHECK_ERROR(test_errno_result(f.attach_err), 0);
        /* The executor survived and runs the foreign attach. */
        ran = 0;
        test_run_until_detached(ex, t, 5000);
        CHECK_EQ(ran, 1);
        CHECK_RESULT(monad_async_task_destroy(t));
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }
}

int main(void)
{
    test_watchdog(60, "bad_input");
    check_nulls();
    check_switcher_flags();
    check_layout();
    check_busy();
    check_inside();
    check_foreign();
    printf("bad_input: ok\n");
    return 0;
}
