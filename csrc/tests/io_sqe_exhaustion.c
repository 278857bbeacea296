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
 * 3. A task granted a slot, and so queued ahead of its level, whose CPU
 *    priority changes before it runs leaves that place: it runs at its new
 *    level, and later grants at its old level still run in grant order,
 *    ahead of it when it was lowered.
 * Header contract: io.h (submission, I/O priority), executor.h
 * (io_inflight_limit), task.h (monad_async_task_set_cpu_priority). */
#include "test_common.h"

#include <poll.h>

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

/* 3: the only two slots are held by a Normal task's read of a pipe and a
 * High task's poll of the same pipe; three Normal waiters wait. One write
 * ends both: the pump grants W0 and W1 (queued ahead of Normal, in that
 * order, W1 last) and readies the High task, which runs first and lowers
 * W1. The holder then keeps the Normal level busy in yields; W0's
 * operation ends meanwhile and W2 is granted: it must run at Normal, not
 * be queued behind W1 wherever W1 went (the place behind the last granted
 * task must follow W1 out). Expected: W0, W2, then W1 (Low, after the
 * holder's yields). */
static int g_rp_pipe[2];
static monad_async_task g_waiters[3];
static uint64_t g_w1_token;

static monad_async_result pipe_holder_fn(monad_async_task task)
{
    char b;
    monad_async_result r = monad_async_io_read(task, NULL, g_rp_pipe[0], &b, 1, -1);
    CHECK_RESULT(r);
    test_kernel_wrote(&b, (size_t)r.value);
    /* Keep the Normal level busy, so that the lowered W1 waits at Low
     * while W0's operation ends and W2 is granted. */
    for (int i = 0; i < 256; i++) {
        CHECK_RESULT(monad_async_task_yield(task));
    }
    g_remaining--;
    return r;
}

static monad_async_result lowerer_fn(monad_async_task task)
{
    CHECK_RESULT(monad_async_io_poll(task, NULL, g_rp_pipe[0], POLLIN));
    CHECK_RESULT(monad_async_task_set_cpu_priority(g_waiters[1], g_w1_token,
                                                   monad_async_priority_low));
    g_remaining--;
    return monad_async_make_success(0);
}

static void resumed_then_reprioritised(monad_async_context_switcher sw)
{
    g_ex = test_make_ring_executor(8, 2);
    CHECK_EQ(pipe(g_rp_pipe), 0);
    g_seq = 0;
    g_remaining = 2 + 3;
    /* High first: its poll takes a slot before the holder's read. */
    monad_async_task lowerer = test_make_task(sw, 32 * 1024);
    lowerer->priority.cpu = monad_async_priority_high;
    lowerer->user_code = lowerer_fn;
    CHECK_RESULT(monad_async_task_attach(g_ex, lowerer, NULL));
    monad_async_task holder = test_make_task(sw, 32 * 1024);
    holder->user_code = pipe_holder_fn;
    CHECK_RESULT(monad_async_task_attach(g_ex, holder, NULL));
    for (int i = 0; i < 3; i++) {
        g_waiters[i] = test_make_task(sw, 32 * 1024);
        g_waiters[i]->user_code = one_op_fn;
        g_waiters[i]->user_ptr = (void *)(intptr_t)i;
        CHECK_RESULT(monad_async_task_attach(g_ex, g_waiters[i], NULL));
    }
    CHECK_RESULT(monad_async_task_wake_token(g_waiters[1], &g_w1_token));
    struct timespec const ms = {0, 5 * 1000 * 1000};
    while (g_ex->io.sqe_waits < 3) {
        monad_async_result r = monad_async_executor_run(g_ex, 1024, &ms);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    CHECK_EQ(g_ex->io.in_flight, 2);
    CHECK_EQ(write(g_rp_pipe[1], "a", 1), 1);
    test_run_until_zero(g_ex, &g_remaining, 60000);
    CHECK_MSG(g_order[0] == 0 && g_order[1] == 2 && g_order[2] == 1,
              "completion order W%d W%d W%d: expected W0, W2 (Normal, in "
              "grant order), then W1 (lowered to Low)",
              g_order[0], g_order[1], g_order[2]);
    CHECK_EQ(g_waiters[1]->priority.cpu, monad_async_priority_low);
    for (int p = 0; p < monad_async_priority_max; p++) {
        CHECK_EQ(g_ex->tasks_runnable[p], 0);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_RESULT(monad_async_task_destroy(g_waiters[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(holder));
    CHECK_RESULT(monad_async_task_destroy(lowerer));
    close(g_rp_pipe[0]);
    close(g_rp_pipe[1]);
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
}

int main(void)
{
    test_watchdog(120, "io_sqe_exhaustion");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    exhaustion(sw);
    priority(sw);
    resumed_then_reprioritised(sw);
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("io_sqe_exhaustion: ok\n");
    return 0;
}
