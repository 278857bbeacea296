/* Waiting costs memory, not a slot: on a 16-entry ring with the default
 * in-flight guard, 2,000 receives parked on idle connections (1,000 tasks
 * each blocked in a recv on its own socketpair, and one task with 1,000
 * initiated recvs on others), an accept nobody connects to and a poll
 * nobody satisfies all stay in flight while
 *   - 1,000 NOPs complete,
 *   - 20 timeouts of 1 ms complete, none early,
 *   - a TCP connection on loopback is accepted and echoed,
 * and no task ever waits for a submission entry: the 16-entry queue only
 * bounds a batch (a full queue is submitted and refilled). Then every
 * parked receive gets its byte, the poll its readiness, the accept its
 * cancellation; submitted == completed, nothing stale.
 *
 * Before the guard this test exercises, the in-flight limit was half the
 * CQ (16 here): the 17th idle receive stalled the executor for good.
 * Header contract: executor.h (io_inflight_limit, io_cq_entries), io.h
 * (Submission). */
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define WANT_IDLE 2000

static monad_async_executor g_ex;
static int (*g_sp)[2];     /* the idle socketpairs */
static int g_nidle;        /* how many */
static int g_pipe[2];      /* the idle poll's pipe */
static int g_idle_listener; /* nobody connects to it */
static int g_echo_listener;
static struct sockaddr_in g_echo_addr;

static int g_parked_tasks_done;
static int g_bulk_done;
static int g_poll_done;
static int g_accept_done;
static int g_busy_remaining;
static uint64_t g_echo_ns;
static uint64_t g_timer_min_ns;
static uint64_t g_timer_max_ns;

/* One of the 1,000: blocked in a recv on its own connection. */
static monad_async_result parked_fn(monad_async_task task)
{
    int const i = (int)(intptr_t)task->user_ptr;
    char b[8];
    monad_async_result r =
        monad_async_io_recv(task, NULL, g_sp[i][0], b, sizeof(b), 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    test_kernel_wrote(b, 1);
    CHECK_EQ(b[0], (char)i);
    g_parked_tasks_done++;
    return r;
}

/* The other 1,000: one task, one initiated recv per connection. */
static monad_async_result bulk_fn(monad_async_task task)
{
    int const first = g_nidle / 2;
    int const n = g_nidle - first;
    struct monad_async_io_status *st = calloc((size_t)n, sizeof(*st));
    char *bufs = calloc((size_t)n, 8);
    CHECK(st != NULL && bufs != NULL);
    for (int k = 0; k < n; k++) {
        CHECK_RESULT(monad_async_io_recv(task, &st[k], g_sp[first + k][0],
                                         bufs + 8 * k, 8, 0));
    }
    struct monad_async_io_status *got;
    monad_async_result r;
    int reaped = 0;
    while ((r = monad_async_io_reap(task, &got)).error == 0) {
        int const k = (int)(got - st);
        CHECK(k >= 0 && k < n);
        CHECK_RESULT(got->result);
        CHECK_EQ(got->result.value, 1);
        test_kernel_wrote(bufs + 8 * k, 1);
        CHECK_EQ(bufs[8 * k], (char)(first + k));
        reaped++;
    }
    CHECK_ERROR(r, ENOENT);
    CHECK_EQ(reaped, n);
    free(st);
    free(bufs);
    g_bulk_done = 1;
    return monad_async_make_success(0);
}

static monad_async_result idle_poll_fn(monad_async_task task)
{
    monad_async_result r = monad_async_io_poll(task, NULL, g_pipe[0], POLLIN);
    CHECK_RESULT(r);
    CHECK(r.value & POLLIN);
    g_poll_done = 1;
    return r;
}

static monad_async_result idle_accept_fn(monad_async_task task)
{
    monad_async_result r =
        monad_async_io_accept(task, NULL, g_idle_listener, NULL, NULL, 0);
    CHECK_ERROR(r, ECANCELED);
    g_accept_done = 1;
    return r;
}

static monad_async_result nops_fn(monad_async_task task)
{
    for (int i = 0; i < 1000; i++) {
        CHECK_RESULT(monad_async_io_nop(task, NULL));
    }
    g_busy_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result timers_fn(monad_async_task task)
{
    g_timer_min_ns = UINT64_MAX;
    for (int i = 0; i < 20; i++) {
        uint64_t const t0 = test_now_ns();
        CHECK_RESULT(monad_async_task_suspend_for_duration(task, 1000000));
        uint64_t const took = test_now_ns() - t0;
        CHECK_MSG(took >= 1000000, "a 1 ms sleep ended after %" PRIu64 " ns",
                  took);
        g_timer_min_ns = took < g_timer_min_ns ? took : g_timer_min_ns;
        g_timer_max_ns = took > g_timer_max_ns ? took : g_timer_max_ns;
    }
    g_busy_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result echo_server_fn(monad_async_task task)
{
    monad_async_result r =
        monad_async_io_accept(task, NULL, g_echo_listener, NULL, NULL, 0);
    CHECK_RESULT(r);
    int const fd = (int)r.value;
    char b[4];
    r = monad_async_io_recv(task, NULL, fd, b, sizeof(b), MSG_WAITALL);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 4);
    test_kernel_wrote(b, 4);
    r = monad_async_io_send(task, NULL, fd, b, sizeof(b), 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 4);
    CHECK_RESULT(monad_async_io_close(task, NULL, fd));
    g_busy_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result echo_client_fn(monad_async_task task)
{
    uint64_t const t0 = test_now_ns();
    monad_async_result r =
        monad_async_io_socket(task, NULL, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_RESULT(r);
    int const fd = (int)r.value;
    CHECK_RESULT(monad_async_io_connect(task, NULL, fd,
                                        (struct sockaddr const *)&g_echo_addr,
                                        sizeof(g_echo_addr)));
    r = monad_async_io_send(task, NULL, fd, "ping", 4, 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 4);
    char b[4];
    r = monad_async_io_recv(task, NULL, fd, b, sizeof(b), MSG_WAITALL);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 4);
    test_kernel_wrote(b, 4);
    CHECK(memcmp(b, "ping", 4) == 0);
    g_echo_ns = test_now_ns() - t0;
    CHECK_RESULT(monad_async_io_close(task, NULL, fd));
    g_busy_remaining--;
    return monad_async_make_success(0);
}

static int make_listener(struct sockaddr_in *addr)
{
    int const fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
    socklen_t len = sizeof(*addr);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    CHECK_EQ(listen(fd, 16), 0);
    return fd;
}

/* Runs the executor until `done()` or the deadline, failing with `what`. */
static void run_until(int (*done)(void), uint64_t timeout_ms, char const *what)
{
    uint64_t const deadline = test_now_ns() + timeout_ms * 1000000ull;
    struct timespec const tick = {0, 10 * 1000 * 1000};
    while (!done()) {
        if (test_now_ns() > deadline) {
            TEST_FAIL("%s: not done after %" PRIu64 " ms (%" PRIu64
                      " operations in flight, %" PRIu64
                      " waits for an entry, limit %u)",
                      what, timeout_ms, g_ex->io.in_flight, g_ex->io.sqe_waits,
                      g_ex->ring.inflight_limit);
        }
        monad_async_result r = monad_async_executor_run(g_ex, 4096, &tick);
        if (r.error != ETIME) {
            CHECK_RESULT(r);
        }
    }
}

static int all_parked(void)
{
    /* every idle recv, the poll and the accept */
    return g_ex->io.in_flight >= (uint64_t)g_nidle + 2;
}

static int busy_done(void)
{
    return g_busy_remaining == 0;
}

static int idle_done(void)
{
    return g_parked_tasks_done == g_nidle / 2 && g_bulk_done && g_poll_done &&
           g_accept_done;
}

int main(void)
{
    test_watchdog(120, "io_idle_connections");
    /* 2 descriptors a connection: raise the soft limit to the hard one. */
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    g_nidle = WANT_IDLE;
    if (rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)(2 * WANT_IDLE + 64)) {
        g_nidle = (int)((rl.rlim_cur - 64) / 2) & ~1;
        CHECK_MSG(g_nidle >= 64, "RLIMIT_NOFILE %llu is too low for this test",
                  (unsigned long long)rl.rlim_cur);
        test_note("WARNING: RLIMIT_NOFILE (hard) is %llu: only %d idle "
                  "connections instead of %d",
                  (unsigned long long)rl.rlim_cur, g_nidle, WANT_IDLE);
    }
    g_sp = calloc((size_t)g_nidle, sizeof(*g_sp));
    CHECK(g_sp != NULL);
    for (int i = 0; i < g_nidle; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_sp[i]), 0);
    }
    CHECK_EQ(pipe(g_pipe), 0);
    struct sockaddr_in idle_addr;
    g_idle_listener = make_listener(&idle_addr);
    g_echo_listener = make_listener(&g_echo_addr);

    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    g_ex = test_make_ring_executor(16, 0);
    CHECK_EQ(g_ex->ring.sq_entries, 16);
    CHECK_GE(g_ex->ring.inflight_limit, (uint32_t)g_nidle + 64);

    /* 1. Park everything. */
    int const ntasks = g_nidle / 2;
    monad_async_task *parked = calloc((size_t)ntasks, sizeof(*parked));
    CHECK(parked != NULL);
    for (int i = 0; i < ntasks; i++) {
        parked[i] = test_make_task(sw, 16 * 1024);
        parked[i]->user_code = parked_fn;
        parked[i]->user_ptr = (void *)(intptr_t)i;
        CHECK_RESULT(monad_async_task_attach(g_ex, parked[i], NULL));
    }
    monad_async_task bulk = test_make_task(sw, 64 * 1024);
    monad_async_task poller = test_make_task(sw, 16 * 1024);
    monad_async_task acceptor = test_make_task(sw, 16 * 1024);
    bulk->user_code = bulk_fn;
    poller->user_code = idle_poll_fn;
    acceptor->user_code = idle_accept_fn;
    CHECK_RESULT(monad_async_task_attach(g_ex, bulk, NULL));
    CHECK_RESULT(monad_async_task_attach(g_ex, poller, NULL));
    CHECK_RESULT(monad_async_task_attach(g_ex, acceptor, NULL));
    uint64_t const t_park = test_now_ns();
    run_until(all_parked, 10000,
              "parking the idle receives (each must cost memory, not a slot)");
    uint64_t const park_ns = test_now_ns() - t_park;
    CHECK_EQ(g_ex->io.in_flight, (uint64_t)g_nidle + 2);

    /* 2. Everything else still runs. */
    monad_async_task busy[4];
    monad_async_result (*const busy_fns[4])(monad_async_task) = {
        nops_fn, timers_fn, echo_server_fn, echo_client_fn};
    g_busy_remaining = 4;
    for (int i = 0; i < 4; i++) {
        busy[i] = test_make_task(sw, 32 * 1024);
        busy[i]->user_code = busy_fns[i];
        CHECK_RESULT(monad_async_task_attach(g_ex, busy[i], NULL));
    }
    run_until(busy_done, 10000,
              "NOPs, timeouts and an echo beside the idle receives");
    CHECK_EQ(g_ex->io.in_flight, (uint64_t)g_nidle + 2);
    CHECK_MSG(g_ex->io.sqe_waits == 0,
              "%" PRIu64 " waits for a submission entry: a full queue must be "
              "submitted and refilled, not waited for",
              g_ex->io.sqe_waits);

    /* 3. The idle ones wake: a byte each, readiness, a cancel. */
    for (int i = 0; i < g_nidle; i++) {
        char const b = (char)i;
        CHECK_EQ(write(g_sp[i][1], &b, 1), 1);
    }
    CHECK_EQ(write(g_pipe[1], "x", 1), 1);
    CHECK_ERROR(monad_async_task_cancel(g_ex, acceptor), EAGAIN);
    run_until(idle_done, 10000, "waking the idle operations");
    CHECK_EQ(g_ex->io.in_flight, 0);
    CHECK_EQ(g_ex->io.submitted, g_ex->io.completed);
    CHECK_EQ(g_ex->io.stale, 0);
    test_note("%d idle receives + a poll + an accept parked on a %u-entry "
              "ring (CQ %u, guard %u) in %.1f ms; beside them 1,000 NOPs, "
              "20 x 1 ms timeouts (%.3f-%.3f ms) and a loopback echo "
              "(connect to echo %.1f us); %" PRIu64 " enters, %" PRIu64
              " passes found the CQ overflowed",
              g_nidle, g_ex->ring.sq_entries, g_ex->ring.cq_entries,
              g_ex->ring.inflight_limit, (double)park_ns / 1e6,
              (double)g_timer_min_ns / 1e6, (double)g_timer_max_ns / 1e6,
              (double)g_echo_ns / 1e3, g_ex->io.enters, g_ex->io.cq_overflows);

    for (int i = 0; i < ntasks; i++) {
        CHECK_RESULT(monad_async_task_destroy(parked[i]));
    }
    free(parked);
    for (int i = 0; i < 4; i++) {
        CHECK_RESULT(busy[i]->result);
        CHECK_RESULT(monad_async_task_destroy(busy[i]));
    }
    CHECK_RESULT(bulk->result);
    CHECK_RESULT(poller->result);
    CHECK_ERROR(acceptor->result, ECANCELED);
    CHECK_RESULT(monad_async_task_destroy(bulk));
    CHECK_RESULT(monad_async_task_destroy(poller));
    CHECK_RESULT(monad_async_task_destroy(acceptor));
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    for (int i = 0; i < g_nidle; i++) {
        close(g_sp[i][0]);
        close(g_sp[i][1]);
    }
    free(g_sp);
    close(g_pipe[0]);
    close(g_pipe[1]);
    close(g_idle_listener);
    close(g_echo_listener);
    printf("io_idle_connections: ok\n");
    return 0;
}
