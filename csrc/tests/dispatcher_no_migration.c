/* Tasks never migrate: a dispatched task that yields and sleeps (on
 * executors with and without an io_uring, and with the sjlj and asm
 * switchers) resumes on the executor, and the thread, that launched it,
 * and its executor, free while it is suspended, takes more work
 * meanwhile.
 * Header contract: dispatcher.h ("A task runs on the executor that took
 * it from its launch to its exit: it never migrates"). */
#include "dispatcher_common.h"

#define NTASKS 200
#define SLICES 5

struct record
{
    _Atomic int moved;
    _Atomic int slices;
    monad_async_executor where;
};

static struct record records[NTASKS];

/* Tasks in flight per executor, and the most seen at once. */
static monad_async_executor executors[4];
static _Atomic int in_flight[4];
static _Atomic int most_in_flight;

static int executor_index(monad_async_executor ex)
{
    for (int i = 0; i < 4; i++) {
        if (executors[i] == ex) {
            return i;
        }
    }
    TEST_FAIL("task ran on an executor not in the pool");
}

static monad_async_result hopping_task(monad_async_task task)
{
    struct record *const rec = (struct record *)task->user_ptr;
    monad_async_executor const ex =
        (monad_async_executor)monad_async_executor_current().value;
    pthread_t const self = pthread_self();
    rec->where = ex;
    int const slot = executor_index(ex);
    int const now = atomic_fetch_add(&in_flight[slot], 1) + 1;
    int most = atomic_load(&most_in_flight);
    while (now > most &&
           !atomic_compare_exchange_weak(&most_in_flight, &most, now)) {
    }
    for (int s = 0; s < SLICES; s++) {
        atomic_fetch_add(&rec->slices, 1);
        monad_async_result const r =
            (s % 2) ? monad_async_task_suspend_for_duration(
                          task, 100000ull * (uint64_t)(1 + s))
                    : monad_async_task_yield(task);
        CHECK_RESULT(r);
        if ((monad_async_executor)monad_async_executor_current().value != ex ||
            !pthread_equal(pthread_self(), self)) {
            atomic_store(&rec->moved, 1);
        }
    }
    atomic_fetch_sub(&in_flight[slot], 1);
    return monad_async_make_success(0);
}

int main(void)
{
    test_watchdog(120, "dispatcher_no_migration");
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool with_ring, without_ring;
    test_pool_start(&with_ring, wd, 2, 64);
    test_pool_start(&without_ring, wd, 2, 0);
    for (int p = 0; p < 2; p++) {
        struct test_pool const *const pool = p ? &without_ring : &with_ring;
        for (size_t k = 0; k < pool->n; k++) {
            executors[p * 2 + (int)k] = pool->ex[k]->executor;
        }
    }
    monad_async_context_switcher sw[2] = {
        test_make_switcher(TEST_SWITCHER_ASM),
        test_make_switcher(TEST_SWITCHER_SJLJ)};
    monad_async_task tasks[NTASKS];
    for (int i = 0; i < NTASKS; i++) {
        tasks[i] = test_make_work(sw[i % 2], hopping_task,
                                  (monad_async_priority)(i % 3), &records[i]);
    }
    CHECK_EQ(monad_async_work_dispatcher_submit(wd, tasks, NTASKS).value,
             NTASKS);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));

    size_t per_executor[4] = {0};
    struct test_pool *const pools[2] = {&with_ring, &without_ring};
    for (int i = 0; i < NTASKS; i++) {
        CHECK_MSG(!atomic_load(&records[i].moved), "task %d migrated", i);
        CHECK_EQ(atomic_load(&records[i].slices), SLICES);
        CHECK_RESULT(tasks[i]->result);
        CHECK_EQ(tasks[i]->suspensions, SLICES);
        for (int p = 0; p < 2; p++) {
            for (size_t k = 0; k < pools[p]->n; k++) {
                if (pools[p]->ex[k]->executor == records[i].where) {
                    per_executor[p * 2 + k]++;
                }
            }
        }
    }
    size_t sum = 0;
    for (int k = 0; k < 4; k++) {
        sum += per_executor[k];
    }
    CHECK_EQ(sum, NTASKS);
    test_note("tasks per executor (two with a ring, two without): %zu %zu "
              "%zu %zu; at most %d in flight on one",
              per_executor[0], per_executor[1], per_executor[2],
              per_executor[3], atomic_load(&most_in_flight));
    /* A suspended task leaves its executor free to take more work, which
     * then shares the executor with it until it exits. */
    CHECK_GE(atomic_load(&most_in_flight), 2);

    CHECK_RESULT(monad_async_work_dispatcher_quit(wd, SIZE_MAX, NULL));
    test_pool_join(&with_ring);
    test_pool_join(&without_ring);
    CHECK_RESULT(monad_async_work_dispatcher_destroy(wd));
    for (int i = 0; i < NTASKS; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw[0]));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw[1]));
    printf("dispatcher_no_migration: ok\n");
    return 0;
}
