/* monad_async_executor_destroy with tasks still attached: pending ones
 * never run (result ECANCELED, user_on_exit called), started ones (yielded,
 * sleeping) resume with ECANCELED and run to their exit, as do tasks whose
 * cross-thread attach is still in the inbox; every task ends detached and
 * reusable on another executor; attaches made during destroy (from a
 * cancelled task, an exit hook, or another thread while destroy runs) get
 * ESHUTDOWN or are cancelled, never run, never lost. Nothing leaks (ASan's leak check runs at exit in sanitizer builds).
 * Header contract: executor.h (monad_async_executor_destroy). */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>

static uint64_t const MS = 1000000ull;

enum kind
{
    K_PENDING,
    K_YIELDED,
    K_SLEEPING,
    K_ATTACH_DURING, /* started; on ECANCELED tries to attach another task */
    K_INBOX          /* attached from another thread, never drained */
};

struct rec
{
    enum kind kind;
    int started;
    int finished;  /* reached its return */
    int exits;     /* user_on_exit calls */
    int susp_err;  /* first suspension's result */
    int later_err; /* a later suspension's result */
    int attach_err;
    monad_async_executor ex;
    monad_async_task extra; /* for K_ATTACH_DURING */
    uint64_t cancelled_wait_ns;
};

static void hook(monad_async_task task)
{
    struct rec *r = (struct rec *)task->user_ptr;
    r->exits++;
    CHECK(!test_task_attached(task));
}

static monad_async_result fn(monad_async_task task)
{
    struct rec *r = (struct rec *)task->user_ptr;
    r->started = 1;
    uint64_t const t0 = test_now_ns();
    if (r->kind == K_SLEEPING) {
        r->susp_err =
            monad_async_task_suspend_for_duration(task, 20000 * MS).error;
    }
    else {
        /* yield until something other than success happens */
        do {
            r->susp_err = monad_async_task_yield(task).error;
        } while (r->susp_err == 0 && r->kind != K_PENDING &&
                 test_now_ns() - t0 < 20000 * MS);
    }
    r->cancelled_wait_ns = test_now_ns() - t0;
    r->later_err = monad_async_task_suspend_for_duration(task, 20000 * MS).error;
    if (r->kind == K_ATTACH_DURING) {
        monad_async_result a = monad_async_task_attach(r->ex, r->extra, NULL);
        r->attach_err = a.error;
    }
    r->finished = 1;
    return monad_async_make_success(9);
}

static int extra_ran;
static int extra_exits;

static monad_async_result extra_fn(monad_async_task task)
{
    (void)task;
    extra_ran++;
    return monad_async_make_success(0);
}

static void extra_hook(monad_async_task task)
{
    (void)task;
    extra_exits++;
}

/* An exit hook that attaches its task again, once, during destroy. */
static int reattach_tries;
static int reattach_err = -1;
static int reattach_exits;
static monad_async_executor reattach_ex;

static void reattach_hook(monad_async_task task)
{
    reattach_exits++;
    if (reattach_tries == 0) {
        reattach_tries = 1;
        reattach_err = monad_async_task_attach(reattach_ex, task, NULL).error;
    }
}

/* An attach from another thread made while destroy is running (the other
 * thread is told to attach by an exit hook that destroy runs, and the hook
 * waits for it, so the executor is certainly still there): ESHUTDOWN, or
 * accepted and then cancelled without running. */
static atomic_int remote_go;   /* 1: attach now */
static atomic_int remote_done; /* 1: attach returned */
static int remote_err = -1;
static monad_async_executor remote_ex;
static monad_async_task remote_task;
static int remote_ran;
static int remote_exits;
static int remote_hook_waited;

static monad_async_result remote_fn(monad_async_task task)
{
    (void)task;
    remote_ran++;
    return monad_async_make_success(0);
}

static void remote_task_hook(monad_async_task task)
{
    (void)task;
    remote_exits++;
}

static void *remote_main(void *arg)
{
    (void)arg;
    uint64_t const give_up = test_now_ns() + 20000 * MS;
    while (!atomic_load(&remote_go)) {
        if (test_now_ns() > give_up) {
            return NULL;
        }
        test_sleep_ns(100000);
    }
    remote_err = monad_async_task_attach(remote_ex, remote_task, NULL).error;
    atomic_store(&remote_done, 1);
    return NULL;
}

/* The exit hook (run inside destroy) that sets the other thread going. */
static void trigger_hook(monad_async_task task)
{
    struct rec *r = (struct rec *)task->user_ptr;
    r->exits++;
    atomic_store(&remote_go, 1);
    uint64_t const give_up = test_now_ns() + 10000 * MS;
    while (!atomic_load(&remote_done) && test_now_ns() < give_up) {
        test_sleep_ns(100000);
    }
    remote_hook_waited = atomic_load(&remote_done);
}

struct inbox_attach
{
    monad_async_executor ex;
    monad_async_task *tasks;
    int n;
    int errs[8];
};

static void *inbox_main(void *arg)
{
    struct inbox_attach *ia = (struct inbox_attach *)arg;
    for (int i = 0; i < ia->n; i++) {
        ia->errs[i] = monad_async_task_attach(ia->ex, ia->tasks[i], NULL).error;
    }
    return NULL;
}

static void scenario(unsigned entries, enum test_switcher_kind swk)
{
    monad_async_executor ex = test_make_executor(entries, 0);
    monad_async_context_switcher sw = test_make_switcher(swk);
    enum
    {
        N = 12
    };
    static enum kind const kinds[N] = {
        K_PENDING, K_YIELDED, K_SLEEPING, K_PENDING, K_ATTACH_DURING,
        K_YIELDED, K_SLEEPING, K_PENDING, K_INBOX, K_INBOX, K_INBOX,
        K_INBOX};
    monad_async_task t[N];
    struct rec r[N];
    monad_async_task extra = test_make_task(sw, 0);
    extra->user_code = extra_fn;
    extra->user_on_exit = extra_hook;
    extra_ran = 0;
    extra_exits = 0;
    for (int i = 0; i < N; i++) {
        t[i] = test_make_task(sw, 0);
        memset(&r[i], 0, sizeof(r[i]));
        r[i].kind = kinds[i];
        r[i].ex = ex;
        r[i].extra = extra;
        t[i]->user_code = fn;
        t[i]->user_ptr = &r[i];
        t[i]->user_on_exit = hook;
        /* Tasks to be started share one level, so round-robin launches
         * them all; the rest get mixed priorities. */
        t[i]->priority.cpu =
            (kinds[i] == K_PENDING || kinds[i] == K_INBOX)
                ? (monad_async_priority)(i % 3)
                : monad_async_priority_normal;
    }
    /* Start the ones that must be started. */
    for (int i = 0; i < N; i++) {
        if (kinds[i] == K_YIELDED || kinds[i] == K_SLEEPING ||
            kinds[i] == K_ATTACH_DURING) {
            CHECK_RESULT(monad_async_task_attach(ex, t[i], NULL));
        }
    }
    struct timespec const zero = {0, 0};
    for (int k = 0; k < 3; k++) {
        monad_async_result rr = monad_async_executor_run(ex, 100, &zero);
        CHECK(rr.error == 0 || rr.error == ETIME);
    }
    for (int i = 0; i < N; i++) {
        if (kinds[i] != K_PENDING && kinds[i] != K_INBOX) {
            CHECK(r[i].started);
            CHECK(test_task_state(t[i]) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
        }
    }
    /* Pending ones: attached last, never run. */
    for (int i = 0; i < N; i++) {
        if (kinds[i] == K_PENDING) {
            CHECK_RESULT(monad_async_task_attach(ex, t[i], NULL));
        }
    }
    /* Inbox ones: attached from another thread, not yet drained. */
    monad_async_task inbox_tasks[4];
    int ni = 0;
    for (int i = 0; i < N; i++) {
        if (kinds[i] == K_INBOX) {
            inbox_tasks[ni++] = t[i];
        }
    }
    struct inbox_attach ia;
    memset(&ia, 0, sizeof(ia));
    ia.ex = ex;
    ia.tasks = inbox_tasks;
    ia.n = ni;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, inbox_main, &ia), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    for (int i = 0; i < ni; i++) {
        CHECK_EQ(ia.errs[i], 0);
    }
    /* A task whose exit hook reattaches it during destroy. */
    monad_async_task again = test_make_task(sw, 0);
    again->user_code = extra_fn;
    again->user_on_exit = reattach_hook;
    reattach_tries = 0;
    reattach_err = -1;
    reattach_exits = 0;
    reattach_ex = ex;
    CHECK_RESULT(monad_async_task_attach(ex, again, NULL));

    /* The pending task 0's exit hook sets off a remote attach during
     * destroy. */
    t[0]->user_on_exit = trigger_hook;
    monad_async_task rtask = test_make_task(sw, 0);
    rtask->user_code = remote_fn;
    rtask->user_on_exit = remote_task_hook;
    remote_task = rtask;
    remote_ex = ex;
    remote_err = -1;
    remote_ran = 0;
    remote_exits = 0;
    remote_hook_waited = 0;
    atomic_store(&remote_go, 0);
    atomic_store(&remote_done, 0);
    pthread_t rth;
    CHECK_EQ(pthread_create(&rth, NULL, remote_main, NULL), 0);

    uint64_t const t0 = test_now_ns();
    CHECK_RESULT(monad_async_executor_destroy(ex));
    uint64_t const el = test_now_ns() - t0;
    CHECK_MSG(el < 5000 * MS, "destroy took %" PRIu64 " ms (did it wait out "
              "a 20 s sleep?)", el / MS);

    for (int i = 0; i < N; i++) {
        char const *what = kinds[i] == K_PENDING    ? "pending"
                           : kinds[i] == K_INBOX    ? "in the inbox"
                           : kinds[i] == K_YIELDED  ? "yielded"
                           : kinds[i] == K_SLEEPING ? "sleeping"
                                                    : "attach-during-destroy";
        CHECK_MSG(!test_task_attached(t[i]), "%s task %d still attached after "
                  "destroy", what, i);
        CHECK_MSG(atomic_load(&t[i]->current_executor) == NULL,
                  "%s task %d still points at the destroyed executor", what,
                  i);
        CHECK_MSG(r[i].exits == 1, "%s task %d: user_on_exit called %d times",
                  what, i, r[i].exits);
        CHECK(test_task_state(t[i]) & MONAD_ASYNC_TASK_STATE_EXITED);
        if (kinds[i] == K_PENDING || kinds[i] == K_INBOX) {
            CHECK_MSG(!r[i].started, "%s task %d ran during destroy", what,
                      i);
            CHECK_ERROR(t[i]->result, ECANCELED);
        }
        else {
            CHECK_MSG(r[i].finished, "%s task %d did not run to its exit",
                      what, i);
            CHECK_MSG(r[i].susp_err == ECANCELED,
                      "%s task %d resumed with %s, wanted ECANCELED", what, i,
                      test_errno_name(r[i].susp_err));
            CHECK_MSG(r[i].later_err == ECANCELED,
                      "%s task %d: a later suspension gave %s", what, i,
                      test_errno_name(r[i].later_err));
            CHECK_RESULT(t[i]->result);
            CHECK_EQ(t[i]->result.value, 9);
        }
    }
    /* The attach made by a task during destroy: refused, or cancelled. */
    int const k = 4;
    CHECK(kinds[k] == K_ATTACH_DURING);
    CHECK(!test_task_attached(extra));
    if (r[k].attach_err == ESHUTDOWN) {
        CHECK_EQ(extra_exits, 0);
    }
    else {
        CHECK_MSG(r[k].attach_err == 0, "attach during destroy gave %s",
                  test_errno_name(r[k].attach_err));
        CHECK_EQ(extra_ran, 0);
        CHECK_EQ(extra_exits, 1);
        CHECK_ERROR(extra->result, ECANCELED);
    }
    /* The hook's reattach during destroy: refused, or cancelled. */
    CHECK(!test_task_attached(again));
    CHECK_EQ(reattach_tries, 1);
    CHECK_EQ(extra_ran, 0);
    if (reattach_err == ESHUTDOWN) {
        CHECK_EQ(reattach_exits, 1);
    }
    else {
        CHECK_MSG(reattach_err == 0, "reattach from an exit hook during "
                  "destroy gave %s", test_errno_name(reattach_err));
        CHECK_EQ(reattach_exits, 2);
        CHECK_ERROR(again->result, ECANCELED);
    }

    /* The remote attach made during destroy: refused, or cancelled. */
    CHECK_EQ(pthread_join(rth, NULL), 0);
    CHECK_MSG(remote_hook_waited, "the remote attach during destroy did not "
              "return within 10 s");
    CHECK(!test_task_attached(rtask));
    CHECK_EQ(remote_ran, 0);
    if (remote_err == ESHUTDOWN) {
        CHECK_EQ(remote_exits, 0);
    }
    else {
        CHECK_MSG(remote_err == 0, "an attach from another thread during "
                  "destroy gave %s", test_errno_name(remote_err));
        CHECK_EQ(remote_exits, 1);
        CHECK_ERROR(rtask->result, ECANCELED);
    }
    CHECK_RESULT(monad_async_task_destroy(rtask));

    /* Every task is reusable on a new executor. */
    monad_async_executor ex2 = test_make_executor(entries, 0);
    t[0]->user_on_exit = hook;
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].kind = K_PENDING; /* yields once, then a short run to exit */
        r[i].ex = ex2;
        t[i]->user_code = extra_fn;
        CHECK_RESULT(monad_async_task_attach(ex2, t[i], NULL));
    }
    for (int i = 0; i < N; i++) {
        test_run_until_detached(ex2, t[i], 5000);
        CHECK_RESULT(t[i]->result);
        CHECK_EQ(r[i].exits, 1);
    }
    CHECK_EQ(extra_ran, N);
    CHECK_RESULT(monad_async_executor_destroy(ex2));

    for (int i = 0; i < N; i++) {
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(extra));
    CHECK_RESULT(monad_async_task_destroy(again));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("ok   %s executor, %s switcher (destroy took %.1f ms)\n",
           entries ? "ring" : "compute-only", test_switcher_names[swk],
           (double)el / 1e6);
}

/* Destroying an idle executor, and one that never ran, also works; and
 * many create/destroy cycles do not leak (ASan checks at exit). */
static void churn(void)
{
    unsigned long const n = test_scaled(200);
    unsigned const ring = test_ring_entries(64, "churn's odd executors");
    for (unsigned long i = 0; i < n; i++) {
        monad_async_executor ex = test_make_executor(i % 2 ? ring : 0, 0);
        if (i % 3 == 0) {
            struct timespec const zero = {0, 0};
            CHECK_ERROR(monad_async_executor_run(ex, 1, &zero), ETIME);
        }
        CHECK_RESULT(monad_async_executor_destroy(ex));
    }
    for (unsigned long i = 0; i < n; i++) {
        monad_async_context_switcher sw =
            test_make_switcher((enum test_switcher_kind)(i % 4));
        monad_async_task t = test_make_task(sw, i % 2 ? 65536 : 0);
        CHECK_RESULT(monad_async_task_destroy(t));
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    }
}

int main(void)
{
    test_watchdog(120, "executor_destroy");
    static enum test_switcher_kind const kinds[3] = {
        TEST_SWITCHER_SJLJ, TEST_SWITCHER_ASM, TEST_SWITCHER_ASM_NO_FP};
    for (unsigned entries = 0; entries <= 64; entries += 64) {
        if (entries &&
            test_skip_ring_part("destroy scenarios, ring executor")) {
            continue;
        }
        for (int k = 0; k < 3; k++) {
            scenario(entries, kinds[k]);
        }
    }
    churn();
    printf("executor_destroy: ok\n");
    return 0;
}
