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
static monad_async_executor executors[2];
static _Atomic int in_flight[2];
static _Atomic int most_in_flight;

static int executor_index(monad_async_executor ex)
{
    for (int i = 0; i < 2; i++) {
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

/* Two executors with `ring_entries`, NTASKS tasks. */
static void run_case(unsigned ring_entries)
{
    monad_async_work_dispatcher wd = test_make_dispatcher(0, 0);
    struct test_pool pool;
    test_pool_start(&pool, wd, 2, ring_entries);
    for (int k = 0; k < 2; k++) {
        executors[k] = pool.ex[k]->executor;
        atomic_store(&in_flight[k], 0);
    }
    atomic_store(&most_in_flight, 0);
    monad_async_context_switcher sw[2] = {
        test_make_switcher(TEST_SWITCHER_ASM),
        test_make_switcher(TEST_SWITCHER_SJLJ)};
    monad_async_task tasks[NTASKS];
    for (int i = 0; i < NTASKS; i++) {
        memset(&records[i], 0, sizeof(records[i]));
        tasks[i] = test_make_work(sw[i % 2], hopping_task,
                                  (monad_async_priority)(i % 3), &records[i]);
    }
    CHECK_EQ(monad_async_work_dispatcher_submit(wd, tasks, NTASKS).value,
             NTASKS);
    CHECK_RESULT(monad_async_work_dispatcher_wait(wd, 0, 0, NULL));

    size_t per_executor[2] = {0};
    for (int i = 0; i < NTASKS; i++) {
        CHECK_MSG(!atomic_load(&records[i].moved), "task %d migrated", i);
        CHECK_EQ(atomic_load(&records[i].slices), SLICES);
        CHECK_RESULT(tasks[i]->result);
        if (ring_entries != 0) {
            /* On a ring a sleep is a kernel timeout, and a task that finds
             * every submission slot taken (more sleepers on one executor
             * than ring entries) also waits for one. */
            CHECK_GE(tasks[i]->suspensions, SLICES);
        }
        else {
            CHECK_EQ(tasks[i]->suspensions, SLICES);
        }
        per_executor[executor_index(records[i].where)]++;
    }
    CHECK_EQ(per_executor[0] + per_executor[1], NTASKS);
    test_note("%s: tasks per executor %zu and %zu; at most %d in flight on "
              "one",
              ring_entries ? "with rings" : "without rings", per_executor[0],
              per_executor[1], atomic_load(&most_in_flight));
    /* A suspended task leaves its executor free to take more work, which
     * then shares the executor with it until it exits. */
    CHECK_GE(atomic_load(&most_in_flight), 2);

    test_pool_shutdown(&pool);
    for (int i = 0; i < NTASKS; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw[0]));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw[1]));
}

int main(void)
{
    test_watchdog(120, "dispatcher_no_migration");
    if (!test_skip_ring_part("executors with rings")) {
        run_case(64);
    }
    run_case(0);
    printf("dispatcher_no_migration: ok\n");
    return 0;
}
