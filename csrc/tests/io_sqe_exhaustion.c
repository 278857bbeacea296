/* In-flight guard exhaustion and I/O priority.
 *
 * 1. A ring of 4 entries with an in-flight limit of 4 and 1,000 tasks at
 *    mixed priorities, each doing three operations: all complete, tasks
 *    wait for slots (no busy loop: the executor sleeps in the ring), and
 *    within each priority level the tasks get their slots in the order
 *    they asked (the order their first operation completes is their
 *    attach order: a task granted a slot runs ahead of the tasks of its
 *    level that have not asked yet, also when the priority pump resumes
 *    it while a lower-priority slice was about to run, so its operation
 *    reaches the kernel first). (The limit is explicit: it used to follow the ring's
 *    size, and a full submission queue alone no longer makes a task
 *    wait: it is submitted and refilled.)
 * 2. With the guard contended (limit 2, both slots held), 50 tasks of
 *    high I/O priority that ask after 50 low ones all get their slots,
 *    and their completions, before any low one.
 * Header contract: io.h (submission, I/O priority), executor.h
 * (io_inflight_limit). */
#include "test_common.h"

#define NTASKS 1000

static monad_async_executor g_ex;
static int g_remaining;
static int g_seq;
static int g_first_done[NTASKS];

static monad_async_result three_ops_fn(monad_async_task task)
{
    int const id = (int)(intptr_t)task->user_ptr;
    CHECK_RESULT(monad_async_io_nop(task, NULL));
    g_first_done[id] = g_seq++;
    CHECK_RESULT(monad_async_io_timeout(task, NULL, 0));
    CHECK_RESULT(monad_async_io_nop(task, NULL));
    CHECK_LE(g_ex->io.in_flight, g_ex->ring.inflight_limit);
    g_remaining--;
    return monad_async_make_success(0);
}

static void exhaustion(monad_async_context_switcher sw)
{
    g_ex = test_make_ring_executor(4, 4);
    CHECK_EQ(g_ex->ring.sq_entries, 4);
    CHECK_EQ(g_ex->ring.inflight_limit, 4);
    monad_async_task *tasks = calloc(NTASKS, sizeof(*tasks));
    CHECK(tasks != NULL);
    g_seq = 0;
    for (int i = 0; i < NTASKS; i++) {
        tasks[i] = test_make_task(sw, 32 * 1024);
        tasks[i]->priority.cpu = (monad_async_priority)(i % 3);
        tasks[i]->priority.io = (monad_async_priority)(i % 3);
        tasks[i]->user_code = three_ops_fn;
        tasks[i]->user_ptr = (void *)(intptr_t)i;
    }
    g_remaining = NTASKS;
    for (int i = 0; i < NTASKS; i++) {
        CHECK_RESULT(monad_async_task_attach(g_ex, tasks[i], NULL));
    }
    test_run_until_zero(g_ex, &g_remaining, 60000);
    CHECK_EQ(g_ex->io.submitted, 3 * NTASKS);
    CHECK_EQ(g_ex->io.completed, 3 * NTASKS);
    CHECK_GT(g_ex->io.sqe_waits, NTASKS / 2);
    for (int level = 0; level < 3; level++) {
        int prev = -1;
        for (int i = level; i < NTASKS; i += 3) {
            CHECK_MSG(g_first_done[i] > prev,
                      "level %d: task %d got its entry out of order (%d after %d)",
                      level, i, g_first_done[i], prev);
            prev = g_first_done[i];
        }
    }
    test_note("4-entry ring, guard 4, %d tasks x 3 ops: %" PRIu64 " waits for a slot, %"
              PRIu64 " io_uring_enter calls",
              NTASKS, g_ex->io.sqe_waits, g_ex->io.enters);
    for (int i = 0; i < NTASKS; i++) {
        CHECK_RESULT(tasks[i]->result);
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    free(tasks);
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
}

#define NPRIO 50

static int g_order[2 * NPRIO];
static int g_pipe[2];

static monad_async_result one_op_fn(monad_async_task task)
{
    CHECK_RESULT(monad_async_io_nop(task, NULL));
    g_order[g_seq++] = (int)(intptr_t)task->user_ptr;
    g_remaining--;
    return monad_async_make_success(0);
}

/* Holds a slot until the pipe is written. */
static monad_async_result holder_fn(monad_async_task task)
{
    char b;
    monad_async_result r = monad_async_io_read(task, NULL, g_pipe[0], &b, 1, -1);
    CHECK_RESULT(r);
    test_kernel_wrote(&b, (size_t)r.value);
    g_remaining--;
    return r;
}

static void priority(monad_async_context_switcher sw)
{
    g_ex = test_make_ring_executor(4, 2);
    CHECK_EQ(g_ex->ring.inflight_limit, 2);
    CHECK_EQ(pipe(g_pipe), 0);
    monad_async_task holders[2];
    monad_async_task tasks[2 * NPRIO];
    g_seq = 0;
    g_remaining = 2 * NPRIO + 2;
    for (int i = 0; i < 2; i++) {
        holders[i] = test_make_task(sw, 32 * 1024);
        holders[i]->user_code = holder_fn;
        CHECK_RESULT(monad_async_task_attach(g_ex, holders[i], NULL));
    }
    /* Same CPU priority: the low-I/O tasks launch (and ask) first. */
    for (int i = 0; i < 2 * NPRIO; i++) {
        tasks[i] = test_make_task(sw, 32 * 1024);
        tasks[i]->priority.io =
            i < NPRIO ? monad_async_priority_low : monad_async_priority_high;
        tasks[i]->user_code = one_op_fn;
        tasks[i]->user_ptr = (void *)(intptr_t)i;
        CHECK_RESULT(monad_async_task_attach(g_ex, tasks[i], NULL));
    }
    /* Everyone asks; the holders keep both slots. */
    struct timespec const ms = {0, 5 * 1000 * 1000};
    while (g_ex->io.sqe_waits < 2 * NPRIO) {
        monad_async_result r = monad_async_executor_run(g_ex, 1024, &ms);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    CHECK_EQ(g_ex->io.in_flight, 2);
    CHECK_EQ(write(g_pipe[1], "ab", 2), 2);
    test_run_until_zero(g_ex, &g_remaining, 60000);
    for (int k = 0; k < 2 * NPRIO; k++) {
        CHECK_MSG((k < NPRIO) == (g_order[k] >= NPRIO),
                  "completion %d was task %d (%s I/O priority): every high "
                  "one must come before every low one",
                  k, g_order[k], g_order[k] >= NPRIO ? "high" : "low");
    }
    for (int i = 0; i < 2 * NPRIO; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(monad_async_task_destroy(holders[i]));
    }
    close(g_pipe[0]);
    close(g_pipe[1]);
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
}

int main(void)
{
    test_watchdog(120, "io_sqe_exhaustion");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    exhaustion(sw);
    priority(sw);
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("io_sqe_exhaustion: ok\n");
    return 0;
}
