/* Reaching the in-flight guard: a wait that cannot deadlock.
 *
 * 1. A guard of 16 (a reserve of 16 / 8 = 2 slots for operations that
 *    finish by themselves) and 20 tasks each blocked in a recv on its own
 *    idle socketpair: 14 receives start, 6 wait for a slot. A feeder task
 *    then sends a byte to each connection, sleeps 1 ms and does a NOP
 *    between sends: none of that waits (the reserve), every receive
 *    completes, and the waiting receivers start as slots free, in the
 *    order they asked.
 * 2. The reserve is not queued behind waiting receivers: with a guard of 2
 *    (one slot for receives) held by one idle recv and a second recv of
 *    high I/O priority waiting, a NOP of low I/O priority starts at once.
 * Header contract: executor.h (io_inflight_limit), io.h (Submission). */
#include "test_common.h"

#include <sys/socket.h>

#define NRECV 20
#define GUARD 16
#define WAIT_SHARE (GUARD - GUARD / 8)

static monad_async_executor g_ex;
static int g_sp[NRECV][2];
static int g_started[NRECV]; /* order in which receivers' recvs started */
static int g_start_seq;
static int g_received;
static int g_feeder_done;
static uint64_t g_peak_in_flight;

static void note_peak(void)
{
    if (g_ex->io.in_flight > g_peak_in_flight) {
        g_peak_in_flight = g_ex->io.in_flight;
    }
}

static monad_async_result receiver_fn(monad_async_task task)
{
    int const i = (int)(intptr_t)task->user_ptr;
    struct monad_async_io_status st;
    memset(&st, 0, sizeof(st));
    char b[4];
    /* The initiate form, so the order in which receives start shows. */
    CHECK_RESULT(monad_async_io_recv(task, &st, g_sp[i][0], b, sizeof(b), 0));
    g_started[i] = g_start_seq++;
    note_peak();
    CHECK_LE(g_ex->io.in_flight, GUARD);
    monad_async_result r = monad_async_io_wait(task, &st);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    test_kernel_wrote(b, 1);
    CHECK_EQ(b[0], (char)('a' + i));
    g_received++;
    return r;
}

static monad_async_result feeder_fn(monad_async_task task)
{
    uint64_t const waits = g_ex->io.sqe_waits;
    for (int i = 0; i < NRECV; i++) {
        char const b = (char)('a' + i);
        monad_async_result r = monad_async_io_send(task, NULL, g_sp[i][1], &b, 1, 0);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 1);
        note_peak();
        uint64_t const t0 = test_now_ns();
        CHECK_RESULT(monad_async_task_suspend_for_duration(task, 1000000));
        CHECK_GE(test_now_ns() - t0, 1000000);
        CHECK_RESULT(monad_async_io_nop(task, NULL));
    }
    CHECK_MSG(g_ex->io.sqe_waits == waits,
              "the feeder's sends, sleeps and NOPs waited for a slot (%" PRIu64
              " waits): the reserve must keep them going",
              g_ex->io.sqe_waits - waits);
    g_feeder_done = 1;
    return monad_async_make_success(0);
}

static void reserve_serves_finite_ops(monad_async_context_switcher sw)
{
    for (int i = 0; i < NRECV; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_sp[i]), 0);
    }
    g_ex = test_make_ring_executor(8, GUARD);
    CHECK_EQ(g_ex->ring.inflight_limit, GUARD);
    monad_async_task recv_tasks[NRECV];
    for (int i = 0; i < NRECV; i++) {
        recv_tasks[i] = test_make_task(sw, 32 * 1024);
        recv_tasks[i]->user_code = receiver_fn;
        recv_tasks[i]->user_ptr = (void *)(intptr_t)i;
        g_started[i] = -1;
        CHECK_RESULT(monad_async_task_attach(g_ex, recv_tasks[i], NULL));
    }
    struct timespec const ms = {0, 5 * 1000 * 1000};
    for (int k = 0; k < 4; k++) {
        monad_async_result r = monad_async_executor_run(g_ex, 1024, &ms);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    /* The receives' share is full; the rest wait, nothing spins. */
    CHECK_EQ(g_ex->io.in_flight, WAIT_SHARE);
    CHECK_EQ(g_ex->io.sqe_waits, NRECV - WAIT_SHARE);
    CHECK_EQ(g_start_seq, WAIT_SHARE);

    monad_async_task feeder = test_make_task(sw, 32 * 1024);
    feeder->user_code = feeder_fn;
    CHECK_RESULT(monad_async_task_attach(g_ex, feeder, NULL));
    uint64_t const deadline = test_now_ns() + 10000ull * 1000000ull;
    while (g_received < NRECV || !g_feeder_done) {
        CHECK_MSG(test_now_ns() < deadline,
                  "stalled at the guard: %d of %d received, feeder %s, %" PRIu64
                  " in flight",
                  g_received, NRECV, g_feeder_done ? "done" : "not done",
                  g_ex->io.in_flight);
        monad_async_result r = monad_async_executor_run(g_ex, 1024, &ms);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    CHECK_LE(g_peak_in_flight, GUARD);
    CHECK_EQ(g_ex->io.sqe_waits, NRECV - WAIT_SHARE);
    /* The waiting receivers started first come, first served. */
    for (int i = 1; i < NRECV; i++) {
        CHECK_MSG(g_started[i] > g_started[i - 1],
                  "receiver %d started its recv %d-th, after receiver %d (%d-th)",
                  i, g_started[i], i - 1, g_started[i - 1]);
    }
    CHECK_EQ(g_ex->io.in_flight, 0);
    CHECK_EQ(g_ex->io.submitted, g_ex->io.completed);
    test_note("guard %d: %d receives held %d slots, %d waited; the feeder's "
              "%d sends, sleeps and NOPs never waited (peak %" PRIu64
              " in flight)",
              GUARD, NRECV, WAIT_SHARE, NRECV - WAIT_SHARE, NRECV,
              g_peak_in_flight);
    for (int i = 0; i < NRECV; i++) {
        CHECK_RESULT(recv_tasks[i]->result);
        CHECK_RESULT(monad_async_task_destroy(recv_tasks[i]));
        close(g_sp[i][0]);
        close(g_sp[i][1]);
    }
    CHECK_RESULT(feeder->result);
    CHECK_RESULT(monad_async_task_destroy(feeder));
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
}

static int g_nop_done;

static monad_async_result idle_recv_fn(monad_async_task task)
{
    char b[4];
    return monad_async_io_recv(task, NULL, g_sp[0][0], b, sizeof(b), 0);
}

static monad_async_result nop_fn(monad_async_task task)
{
    uint64_t const waits = g_ex->io.sqe_waits;
    CHECK_RESULT(monad_async_io_nop(task, NULL));
    CHECK_EQ(g_ex->io.sqe_waits, waits);
    g_nop_done = 1;
    return monad_async_make_success(0);
}

static void reserve_not_queued_behind(monad_async_context_switcher sw)
{
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_sp[0]), 0);
    g_ex = test_make_ring_executor(4, 2);
    monad_async_task holder = test_make_task(sw, 0);
    monad_async_task high = test_make_task(sw, 0);
    monad_async_task low = test_make_task(sw, 0);
    holder->user_code = idle_recv_fn;
    high->user_code = idle_recv_fn;
    high->priority.io = monad_async_priority_high;
    low->user_code = nop_fn;
    low->priority.io = monad_async_priority_low;
    CHECK_RESULT(monad_async_task_attach(g_ex, holder, NULL));
    CHECK_RESULT(monad_async_task_attach(g_ex, high, NULL));
    struct timespec const ms = {0, 5 * 1000 * 1000};
    monad_async_result r = monad_async_executor_run(g_ex, 16, &ms);
    CHECK_RESULT(r);
    CHECK_EQ(g_ex->io.in_flight, 1);
    CHECK_EQ(g_ex->io.sqe_waits, 1);
    CHECK_RESULT(monad_async_task_attach(g_ex, low, NULL));
    test_run_until_detached(g_ex, low, 5000);
    CHECK_EQ(g_nop_done, 1);
    CHECK_RESULT(low->result);
    /* The waiting receive gets the holder's slot once that completes. */
    CHECK_EQ(write(g_sp[0][1], "x", 1), 1);
    test_run_until_detached(g_ex, holder, 5000);
    CHECK_RESULT(holder->result);
    CHECK_EQ(holder->result.value, 1);
    CHECK_EQ(write(g_sp[0][1], "y", 1), 1);
    test_run_until_detached(g_ex, high, 5000);
    CHECK_RESULT(high->result);
    CHECK_EQ(high->result.value, 1);
    CHECK_EQ(g_ex->io.submitted, g_ex->io.completed);
    CHECK_RESULT(monad_async_task_destroy(holder));
    CHECK_RESULT(monad_async_task_destroy(high));
    CHECK_RESULT(monad_async_task_destroy(low));
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
    close(g_sp[0][0]);
    close(g_sp[0][1]);
}

int main(void)
{
    test_watchdog(60, "io_inflight_guard");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    reserve_serves_finite_ops(sw);
    reserve_not_queued_behind(sw);
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("io_inflight_guard: ok\n");
    return 0;
}
