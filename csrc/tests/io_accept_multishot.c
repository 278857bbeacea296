/* Multishot accept (monad_async_io_acceptor_*): one task takes every
 * connection of a storm from one multishot request; every accepted fd is
 * a distinct, connected socket whose first bytes are its client's.
 * Backpressure (a small capacity pauses the request and the next accept
 * re-arms it), the kernel ending the request itself (a tiny completion
 * queue), cancellation of a task waiting in accept, destroy of an armed
 * acceptor, executor destroy with one armed and never destroyed (ASan
 * finds any leak), a socket that does not listen, and bad input.
 * Header contract: io.h (multishot accept). */
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

static struct sockaddr_in listen_addr(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return a;
}

static int make_listener(int backlog)
{
    int const fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_RESULT(monad_async_socket_bind(fd, (struct sockaddr *)&a, sizeof(a)));
    CHECK_RESULT(monad_async_socket_listen(fd, backlog));
    return fd;
}

/* A blocking client: connects and sends its 4-byte id. */
static int connect_client(struct sockaddr_in const *a, uint32_t id)
{
    int const fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK_EQ(connect(fd, (struct sockaddr const *)a, sizeof(*a)), 0);
    CHECK_EQ(send(fd, &id, sizeof(id), MSG_NOSIGNAL), (ssize_t)sizeof(id));
    return fd;
}

/* ---- the storm ---- */

struct storm
{
    monad_async_io_acceptor acc;
    int n;
    unsigned char *seen; /* per client id */
    int remaining;
    struct sockaddr_in addr;
};

static monad_async_result storm_acceptor(monad_async_task task)
{
    struct storm *const s = task->user_ptr;
    for (int i = 0; i < s->n; i++) {
        monad_async_result r = monad_async_io_acceptor_accept(task, s->acc);
        CHECK_RESULT(r);
        int const fd = (int)r.value;
        uint32_t id = UINT32_MAX;
        size_t got = 0;
        while (got < sizeof(id)) {
            r = monad_async_io_recv(task, NULL, fd, (char *)&id + got,
                                    sizeof(id) - got, 0);
            CHECK_RESULT(r);
            test_kernel_wrote((char *)&id + got, (size_t)r.value);
            CHECK_GT(r.value, 0);
            got += (size_t)r.value;
        }
        CHECK_LT(id, (uint32_t)s->n);
        CHECK_MSG(!s->seen[id], "client %u accepted twice", id);
        s->seen[id] = 1;
        CHECK_RESULT(monad_async_io_close(task, NULL, fd));
    }
    s->remaining--;
    return monad_async_make_success(0);
}

static void *storm_clients(void *arg)
{
    struct storm *const s = arg;
    for (int i = 0; i < s->n; i++) {
        int const fd = connect_client(&s->addr, (uint32_t)i);
        close(fd);
    }
    return NULL;
}

/* `n` connections from another thread while one task accepts; with
 * `capacity` small, the request pauses and re-arms along the way. */
static void storm(int n, unsigned capacity, unsigned cq_entries)
{
    monad_async_executor ex =
        test_make_ring_executor_cq(cq_entries ? cq_entries : 64, 0, cq_entries);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    struct storm s;
    memset(&s, 0, sizeof(s));
    s.n = n;
    s.seen = calloc((size_t)n, 1);
    CHECK(s.seen != NULL);
    int const lfd = make_listener(4096);
    s.addr = listen_addr(lfd);
    CHECK_RESULT(monad_async_io_acceptor_create(&s.acc, ex, lfd, SOCK_CLOEXEC,
                                                capacity));
    CHECK_EQ(s.acc->armed, 0);
    CHECK_EQ(s.acc->multishot, 1);
    monad_async_task t = test_make_task(sw, 64 * 1024);
    t->user_code = storm_acceptor;
    t->user_ptr = &s;
    s.remaining = 1;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, storm_clients, &s), 0);
    test_run_until_zero(ex, &s.remaining, 120000);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_RESULT(t->result);
    for (int i = 0; i < n; i++) {
        CHECK_MSG(s.seen[i], "client %d never accepted", i);
    }
    CHECK_EQ(s.acc->accepted, (uint64_t)n);
    CHECK_EQ(s.acc->queued, 0);
    CHECK_GE(s.acc->arms, 1);
    test_note("storm of %d, capacity %u, cq %u: %" PRIu64
              " multishot requests made",
              n, capacity, cq_entries, s.acc->arms);
    /* Still armed (nobody cancelled it): destroy ends it, the executor
     * collects its last completion. */
    CHECK_RESULT(monad_async_io_acceptor_destroy(s.acc));
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    close(lfd);
    free(s.seen);
}

/* ---- pause and re-arm, deterministic ---- */

struct burst
{
    monad_async_io_acceptor acc;
    int n;
    int fds[64];
    int remaining;
};

static monad_async_result burst_acceptor(monad_async_task task)
{
    struct burst *const b = task->user_ptr;
    for (int i = 0; i < b->n; i++) {
        monad_async_result r = monad_async_io_acceptor_accept(task, b->acc);
        CHECK_RESULT(r);
        b->fds[i] = (int)r.value;
        if (i == 0) {
            /* The first request took the whole backlog at once, over the
             * capacity: it was asked to end and has. */
            CHECK_GE(b->acc->accepted, (uint64_t)b->n);
        }
    }
    b->remaining--;
    return monad_async_make_success(0);
}

static void burst(void)
{
    monad_async_executor ex = test_make_ring_executor(64, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    int const lfd = make_listener(64);
    struct sockaddr_in const a = listen_addr(lfd);
    struct burst b;
    memset(&b, 0, sizeof(b));
    b.n = 32;
    int clients[32];
    for (int i = 0; i < b.n; i++) {
        clients[i] = connect_client(&a, (uint32_t)i); /* queued in the backlog */
    }
    CHECK_RESULT(monad_async_io_acceptor_create(&b.acc, ex, lfd, SOCK_CLOEXEC, 4));
    monad_async_task t = test_make_task(sw, 64 * 1024);
    t->user_code = burst_acceptor;
    t->user_ptr = &b;
    b.remaining = 1;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_zero(ex, &b.remaining, 30000);
    CHECK_RESULT(t->result);
    /* Paused at 4 queued while 32 were posted; the last accept found the
     * queue empty only after all 32, so no re-arm was needed yet. */
    CHECK_EQ(b.acc->accepted, 32);
    CHECK_EQ(b.acc->armed, 0);
    CHECK_EQ(b.acc->arms, 1);
    for (int i = 0; i < b.n; i++) {
        for (int j = 0; j < i; j++) {
            CHECK_NE(b.fds[i], b.fds[j]);
        }
        uint32_t id;
        CHECK_EQ(recv(b.fds[i], &id, sizeof(id), MSG_WAITALL), (ssize_t)sizeof(id));
        CHECK_LT(id, 32u);
        close(b.fds[i]);
    }
    /* One more connection: the next accept re-arms. */
    int const late = connect_client(&a, 99);
    b.n = 1;
    b.remaining = 1;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_zero(ex, &b.remaining, 30000);
    CHECK_RESULT(t->result);
    CHECK_EQ(b.acc->arms, 2);
    CHECK_EQ(b.acc->accepted, 33);
    close(b.fds[0]);
    close(late);
    for (int i = 0; i < 32; i++) {
        close(clients[i]);
    }
    CHECK_RESULT(monad_async_io_acceptor_destroy(b.acc));
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    close(lfd);
}

/* ---- cancellation, destroy, shutdown, bad input ---- */

/* One pass of the run loop (ETIME: nothing left to run is fine). */
static void run_a_bit(monad_async_executor ex, struct timespec const *wait)
{
    monad_async_result const r = monad_async_executor_run(ex, 16, wait);
    CHECK_MSG(r.error == 0 || r.error == ETIME, "run: %s", strerror(r.error));
}

struct waiter
{
    monad_async_io_acceptor acc;
    monad_async_result r;
    int done;
};

static monad_async_result wait_one(monad_async_task task)
{
    struct waiter *const w = task->user_ptr;
    w->r = monad_async_io_acceptor_accept(task, w->acc);
    w->done = 1;
    return monad_async_make_success(0);
}

static monad_async_result busy_probe(monad_async_task task)
{
    struct waiter *const w = task->user_ptr;
    /* Another task waits on it already. */
    CHECK_ERROR(monad_async_io_acceptor_accept(task, w->acc), EBUSY);
    CHECK_ERROR(monad_async_io_acceptor_destroy(w->acc), EBUSY);
    return monad_async_make_success(0);
}

static void *other_thread_create(void *arg)
{
    monad_async_executor ex = arg;
    monad_async_io_acceptor acc;
    CHECK_ERROR(monad_async_io_acceptor_create(&acc, ex, 0, 0, 16), EPERM);
    return NULL;
}

static void cancel_destroy_shutdown(void)
{
    monad_async_executor ex = test_make_ring_executor(64, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    int const lfd = make_listener(16);

    /* Bad input. */
    monad_async_io_acceptor acc = NULL;
    CHECK_ERROR(monad_async_io_acceptor_create(NULL, ex, lfd, 0, 16), EINVAL);
    CHECK_ERROR(monad_async_io_acceptor_create(&acc, NULL, lfd, 0, 16), EINVAL);
    CHECK_ERROR(monad_async_io_acceptor_create(&acc, ex, -1, 0, 16), EINVAL);
    CHECK_ERROR(monad_async_io_acceptor_create(&acc, ex, lfd, MSG_PEEK, 16), EINVAL);
    CHECK_ERROR(monad_async_io_acceptor_create(&acc, ex, lfd, 0, 0), EINVAL);
    CHECK_ERROR(monad_async_io_acceptor_create(&acc, ex, lfd, 0, 65537), EINVAL);
    CHECK_ERROR(monad_async_io_acceptor_destroy(NULL), EINVAL);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, other_thread_create, ex), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    monad_async_executor noring = test_make_executor(0, 0);
    CHECK_ERROR(monad_async_io_acceptor_create(&acc, noring, lfd, 0, 16), ENOTSUP);
    CHECK_RESULT(monad_async_executor_destroy(noring));
    CHECK_RESULT(monad_async_io_acceptor_create(&acc, ex, lfd, SOCK_CLOEXEC, 16));
    CHECK_ERROR(monad_async_io_acceptor_accept(NULL, acc), EINVAL);

    /* A task waiting in accept is cancelled: ECANCELED; the request
     * stays armed; a second task gets EBUSY meanwhile. */
    struct waiter w;
    memset(&w, 0, sizeof(w));
    w.acc = acc;
    monad_async_task t = test_make_task(sw, 64 * 1024);
    t->user_code = wait_one;
    t->user_ptr = &w;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    struct timespec const zero = {0, 0};
    for (int i = 0; i < 10; i++) {
        run_a_bit(ex, &zero);
    }
    CHECK_EQ(w.done, 0);
    CHECK_EQ(acc->armed, 1);
    monad_async_task probe = test_make_task(sw, 64 * 1024);
    probe->user_code = busy_probe;
    probe->user_ptr = &w;
    CHECK_RESULT(monad_async_task_attach(ex, probe, NULL));
    test_run_until_detached(ex, probe, 10000);
    CHECK_RESULT(probe->result);
    monad_async_result const cr = monad_async_task_cancel(ex, t);
    CHECK(cr.error == 0 || cr.error == EAGAIN); /* EAGAIN: it was started */
    test_run_until_detached(ex, t, 10000);
    CHECK_EQ(w.done, 1);
    CHECK_ERROR(w.r, ECANCELED);
    CHECK_EQ(acc->armed, 1);

    /* A connection arriving with nobody waiting is queued; the next
     * accept takes it at once. */
    struct sockaddr_in const a = listen_addr(lfd);
    int const c1 = connect_client(&a, 1);
    uint64_t const deadline = test_now_ns() + 10000000000ull;
    while (acc->queued == 0) {
        CHECK_LT(test_now_ns(), deadline);
        struct timespec const tick = {0, 1000000};
        run_a_bit(ex, &tick);
    }
    memset(&w, 0, sizeof(w));
    w.acc = acc;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_detached(ex, t, 10000);
    CHECK_RESULT(w.r);
    close((int)w.r.value);
    close(c1);

    /* Destroy while armed: freed with the request's last completion. */
    CHECK_EQ(acc->armed, 1);
    uint64_t const cancels = ex->io.cancels;
    CHECK_RESULT(monad_async_io_acceptor_destroy(acc));
    CHECK_EQ(ex->io.cancels, cancels + 1);
    for (int i = 0; i < 10; i++) {
        run_a_bit(ex, &zero);
    }

    /* Executor destroy with a task parked in accept on an acceptor never
     * destroyed: the task is cancelled, the request ended, the acceptor
     * and the fds it holds freed (ASan's leak check). */
    monad_async_io_acceptor acc2;
    CHECK_RESULT(monad_async_io_acceptor_create(&acc2, ex, lfd, SOCK_CLOEXEC, 16));
    monad_async_io_acceptor acc3; /* armed, not waited on, with an fd queued */
    int const lfd2 = make_listener(16);
    CHECK_RESULT(monad_async_io_acceptor_create(&acc3, ex, lfd2, SOCK_CLOEXEC, 16));
    memset(&w, 0, sizeof(w));
    w.acc = acc2;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    struct waiter w3;
    memset(&w3, 0, sizeof(w3));
    w3.acc = acc3;
    monad_async_task t3 = test_make_task(sw, 64 * 1024);
    t3->user_code = wait_one;
    t3->user_ptr = &w3;
    struct sockaddr_in const a2 = listen_addr(lfd2);
    int const c2 = connect_client(&a2, 2);
    int const c3 = connect_client(&a2, 3);
    CHECK_RESULT(monad_async_task_attach(ex, t3, NULL));
    test_run_until_detached(ex, t3, 10000); /* takes one, one stays queued */
    CHECK_RESULT(w3.r);
    close((int)w3.r.value);
    for (int i = 0; i < 10; i++) {
        run_a_bit(ex, &zero);
    }
    CHECK_EQ(acc2->armed, 1);
    CHECK_EQ(w.done, 0);
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_EQ(w.done, 1);
    CHECK_ERROR(w.r, ECANCELED);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_task_destroy(t3));
    CHECK_RESULT(monad_async_task_destroy(probe));
    close(c2);
    close(c3);
    close(lfd2);
    close(lfd);
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

/* A socket that does not listen: the multishot request is refused
 * (EINVAL, as a kernel without multishot accept refuses it), the
 * acceptor falls back to single accepts, and that accept's EINVAL comes
 * back: a clear error, no hang. */
static void not_listening(void)
{
    monad_async_executor ex = test_make_ring_executor(64, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    int const fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    monad_async_io_acceptor acc;
    CHECK_RESULT(monad_async_io_acceptor_create(&acc, ex, fd, SOCK_CLOEXEC, 16));
    struct waiter w;
    memset(&w, 0, sizeof(w));
    w.acc = acc;
    monad_async_task t = test_make_task(sw, 64 * 1024);
    t->user_code = wait_one;
    t->user_ptr = &w;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_detached(ex, t, 10000);
    CHECK_ERROR(w.r, EINVAL);
    CHECK_EQ(acc->multishot, 0);
    CHECK_RESULT(monad_async_io_acceptor_destroy(acc));
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    close(fd);
}

int main(void)
{
    test_watchdog(240, "io_accept_multishot");
    int const n = (int)test_scaled(1000);
    storm(n, 1024, 0);
    storm(n, 4, 0);
    /* A CQ of 8: the kernel cannot post a storm's fds and ends the
     * request; the acceptor makes it again. */
    storm(n, 1024, 8);
    burst();
    cancel_destroy_shutdown();
    not_listening();
    printf("io_accept_multishot: ok\n");
    return 0;
}
