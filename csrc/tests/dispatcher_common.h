/* monad-async C test suite: helpers shared by the dispatcher_*.c tests.
 *
 *   test_pool_start(&pool, wd, n, ring_entries)
 *       n threads, each creating an executor of `wd` and running it until
 *       its run returns a negative value, then destroying it; returns once
 *       every executor is created.
 *   test_pool_join(&pool)   joins them (after a quit).
 *   test_gate_*             a task body that holds its executor's thread
 *                           until the gate opens, to make executors busy.
 *   test_make_dispatcher(spin_ns, flags)
 */
#ifndef MONAD_ASYNC_TEST_DISPATCHER_COMMON_H
#define MONAD_ASYNC_TEST_DISPATCHER_COMMON_H

#include "test_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

#define TEST_POOL_MAX 8

struct test_pool;

struct test_pool_thread
{
    struct test_pool *pool;
    size_t index;
};

struct test_pool
{
    monad_async_work_dispatcher wd;
    size_t n;
    unsigned ring_entries;
    pthread_t threads[TEST_POOL_MAX];
    monad_async_work_dispatcher_executor ex[TEST_POOL_MAX];
    /* Set by each thread once its run returned a negative value. */
    _Atomic int quit_seen[TEST_POOL_MAX];
    _Atomic size_t created;
    struct test_pool_thread args[TEST_POOL_MAX];
};

static void *test_pool_main_(void *arg)
{
    struct test_pool_thread const *const a = (struct test_pool_thread *)arg;
    struct test_pool *const p = a->pool;
    struct monad_async_work_dispatcher_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.executor.io_uring_ring.entries = p->ring_entries;
    monad_async_work_dispatcher_executor ex = NULL;
    CHECK_RESULT(monad_async_work_dispatcher_executor_create(&ex, p->wd, &attr));
    CHECK(ex != NULL);
    CHECK(ex->dispatcher == p->wd);
    p->ex[a->index] = ex;
    atomic_fetch_add(&p->created, 1);
    for (;;) {
        monad_async_result const r = monad_async_work_dispatcher_executor_run(ex);
        CHECK_RESULT(r);
        if (r.value < 0) {
            break;
        }
    }
    atomic_store(&p->quit_seen[a->index], 1);
    /* Quit is sticky. */
    monad_async_result const again = monad_async_work_dispatcher_executor_run(ex);
    CHECK_RESULT(again);
    CHECK_LT(again.value, 0);
    CHECK_RESULT(monad_async_work_dispatcher_executor_destroy(ex));
    return NULL;
}

static void test_pool_start(struct test_pool *p, monad_async_work_dispatcher wd,
                            size_t n, unsigned ring_entries)
    __attribute__((unused));

static void test_pool_start(struct test_pool *p, monad_async_work_dispatcher wd,
                            size_t n, unsigned ring_entries)
{
    CHECK_LE(n, TEST_POOL_MAX);
    test_need_ring(ring_entries);
    memset(p, 0, sizeof(*p));
    p->wd = wd;
    p->n = n;
    p->ring_entries = ring_entries;
    atomic_store(&p->created, 0);
    for (size_t i = 0; i < n; i++) {
        atomic_store(&p->quit_seen[i], 0);
        p->args[i].pool = p;
        p->args[i].index = i;
        CHECK_EQ(pthread_create(&p->threads[i], NULL, test_pool_main_,
                                &p->args[i]),
                 0);
    }
    while (atomic_load(&p->created) < n) {
        test_sleep_ns(100000);
    }
}

static void test_pool_join(struct test_pool *p) __attribute__((unused));

static void test_pool_join(struct test_pool *p)
{
    for (size_t i = 0; i < p->n; i++) {
        CHECK_EQ(pthread_join(p->threads[i], NULL), 0);
        CHECK(atomic_load(&p->quit_seen[i]));
    }
}

/* Quits every executor, joins the threads, destroys the dispatcher. */
static void test_pool_shutdown(struct test_pool *p) __attribute__((unused));

static void test_pool_shutdown(struct test_pool *p)
{
    CHECK_RESULT(monad_async_work_dispatcher_quit(p->wd, SIZE_MAX, NULL));
    test_pool_join(p);
    CHECK_RESULT(monad_async_work_dispatcher_destroy(p->wd));
}

static monad_async_work_dispatcher test_make_dispatcher(uint64_t spin_ns,
                                                        uint32_t flags)
    __attribute__((unused));

static monad_async_work_dispatcher test_make_dispatcher(uint64_t spin_ns,
                                                        uint32_t flags)
{
    struct monad_async_work_dispatcher_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.spin_ns = spin_ns;
    attr.flags = flags;
    monad_async_work_dispatcher wd = NULL;
    CHECK_RESULT(monad_async_work_dispatcher_create(&wd, &attr));
    CHECK(wd != NULL);
    return wd;
}

/* ---- gates: tasks that hold their executor's thread ---- */

struct test_gate
{
    _Atomic int open;
    _Atomic int entered; /* tasks inside */
    _Atomic int left;    /* tasks that finished */
};

static void test_gate_init(struct test_gate *g) __attribute__((unused));

static void test_gate_init(struct test_gate *g)
{
    atomic_store(&g->open, 0);
    atomic_store(&g->entered, 0);
    atomic_store(&g->left, 0);
}

/* user_code of a gate task (user_ptr: the gate). It blocks its thread in
 * short sleeps rather than suspending, so its executor stays busy. */
static monad_async_result test_gate_task(monad_async_task task)
    __attribute__((unused));

static monad_async_result test_gate_task(monad_async_task task)
{
    struct test_gate *const g = (struct test_gate *)task->user_ptr;
    atomic_fetch_add(&g->entered, 1);
    while (!atomic_load(&g->open)) {
        test_sleep_ns(50000);
    }
    atomic_fetch_add(&g->left, 1);
    return monad_async_make_success(0);
}

/* Waits until `n` gate tasks are inside. */
static void test_gate_wait_entered(struct test_gate *g, int n)
    __attribute__((unused));

static void test_gate_wait_entered(struct test_gate *g, int n)
{
    while (atomic_load(&g->entered) < n) {
        test_sleep_ns(100000);
    }
}

/* A task set up to run `fn` at `prio` with `ptr`. */
static monad_async_task test_make_work(monad_async_context_switcher sw,
                                       monad_async_result (*fn)(monad_async_task),
                                       monad_async_priority prio, void *ptr)
    __attribute__((unused));

static monad_async_task test_make_work(monad_async_context_switcher sw,
                                       monad_async_result (*fn)(monad_async_task),
                                       monad_async_priority prio, void *ptr)
{
    monad_async_task t = test_make_task(sw, 16384);
    t->priority.cpu = prio;
    t->user_code = fn;
    t->user_ptr = ptr;
    return t;
}

static void test_submit1(monad_async_work_dispatcher wd, monad_async_task t)
    __attribute__((unused));

static void test_submit1(monad_async_work_dispatcher wd, monad_async_task t)
{
    monad_async_result const r = monad_async_work_dispatcher_submit(wd, &t, 1);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
}

#endif
