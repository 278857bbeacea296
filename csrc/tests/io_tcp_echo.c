/* TCP echo over loopback, IPv4 and IPv6: 100 client tasks each connect
 * and send 10,000 messages of varying size, an acceptor task accepts the
 * connections and hands each to an echo task; every reply is checked
 * byte for byte. All on one executor, every socket call through the ring
 * (socket, accept, connect, send, recv, shutdown, close). The message
 * count scales down under sanitizers (MONAD_ASYNC_TEST_SCALE), and IPv6
 * runs a tenth of IPv4's count to keep the suite's time modest.
 * Header contract: io.h (sockets). */
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define NCONN 100
#define MAXMSG 256

struct echo
{
    int family;
    int listen_fd;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    unsigned long messages;
    monad_async_executor ex;
    monad_async_task servers[NCONN];
    int server_fd[NCONN];
    int remaining;
    uint64_t bytes_checked;
};

static struct echo g;

static size_t msg_len(int conn, unsigned long i)
{
    return 1 + (size_t)((i * 7 + (unsigned long)conn * 13) % MAXMSG);
}

static unsigned char msg_byte(int conn, unsigned long i, size_t j)
{
    return (unsigned char)(((unsigned)conn * 31u + (unsigned)i * 17u + (unsigned)j) & 0xff);
}

static monad_async_result server_fn(monad_async_task task)
{
    int const idx = (int)(intptr_t)task->user_ptr;
    int const fd = g.server_fd[idx];
    unsigned char buf[4096];
    for (;;) {
        monad_async_result r = monad_async_io_recv(task, NULL, fd, buf, sizeof(buf), 0);
        CHECK_RESULT(r);
        test_kernel_wrote(buf, (size_t)r.value);
        if (r.value == 0) {
            break;
        }
        size_t off = 0;
        while (off < (size_t)r.value) {
            monad_async_result s = monad_async_io_send(
                task, NULL, fd, buf + off, (size_t)r.value - off, MSG_NOSIGNAL);
            CHECK_RESULT(s);
            CHECK_GT(s.value, 0);
            off += (size_t)s.value;
        }
    }
    CHECK_RESULT(monad_async_io_close(task, NULL, fd));
    g.remaining--;
    return monad_async_make_success(0);
}

static monad_async_result acceptor_fn(monad_async_task task)
{
    for (int i = 0; i < NCONN; i++) {
        struct sockaddr_storage peer;
        uint32_t plen = sizeof(peer);
        monad_async_result r = monad_async_io_accept(
            task, NULL, g.listen_fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
        CHECK_RESULT(r);
        test_kernel_wrote(&plen, sizeof(plen));
        test_kernel_wrote(&peer, plen < sizeof(peer) ? plen : sizeof(peer));
        CHECK_EQ(peer.ss_family, g.family);
        g.server_fd[i] = (int)r.value;
        g.servers[i]->user_code = server_fn;
        g.servers[i]->user_ptr = (void *)(intptr_t)i;
        CHECK_RESULT(monad_async_task_attach(g.ex, g.servers[i], NULL));
    }
    g.remaining--;
    return monad_async_make_success(0);
}

static monad_async_result client_fn(monad_async_task task)
{
    int const conn = (int)(intptr_t)task->user_ptr;
    monad_async_result r =
        monad_async_io_socket(task, NULL, g.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_RESULT(r);
    int const fd = (int)r.value;
    int one = 1;
    CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
    CHECK_RESULT(monad_async_io_connect(task, NULL, fd, (struct sockaddr *)&g.addr,
                                        g.addrlen));
    unsigned char out[MAXMSG], in[MAXMSG];
    for (unsigned long i = 0; i < g.messages; i++) {
        size_t const n = msg_len(conn, i);
        for (size_t j = 0; j < n; j++) {
            out[j] = msg_byte(conn, i, j);
        }
        size_t off = 0;
        while (off < n) {
            r = monad_async_io_send(task, NULL, fd, out + off, n - off, MSG_NOSIGNAL);
            CHECK_RESULT(r);
            off += (size_t)r.value;
        }
        off = 0;
        while (off < n) {
            r = monad_async_io_recv(task, NULL, fd, in + off, n - off, 0);
            CHECK_RESULT(r);
            test_kernel_wrote(in + off, (size_t)r.value);
            CHECK_MSG(r.value > 0, "connection %d closed early at message %lu",
                      conn, i);
            off += (size_t)r.value;
        }
        for (size_t j = 0; j < n; j++) {
            CHECK_MSG(in[j] == out[j],
                      "connection %d message %lu byte %zu: got %u, sent %u",
                      conn, i, j, in[j], out[j]);
        }
        g.bytes_checked += n;
    }
    CHECK_RESULT(monad_async_io_shutdown(task, NULL, fd, SHUT_WR));
    r = monad_async_io_recv(task, NULL, fd, in, sizeof(in), 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 0); /* the echo task closed after our shutdown */
    CHECK_RESULT(monad_async_io_close(task, NULL, fd));
    g.remaining--;
    return monad_async_make_success(0);
}

static void run_family(int family, unsigned long messages)
{
    memset(&g, 0, sizeof(g));
    g.family = family;
    g.messages = messages;
    g.ex = test_make_ring_executor(256, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);

    g.listen_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(g.listen_fd >= 0);
    int one = 1;
    CHECK_EQ(setsockopt(g.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    memset(&g.addr, 0, sizeof(g.addr));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&g.addr;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        g.addrlen = sizeof(*a);
    }
    else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&g.addr;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        g.addrlen = sizeof(*a);
    }
    CHECK_RESULT(monad_async_socket_bind(g.listen_fd, (struct sockaddr *)&g.addr,
                                         g.addrlen));
    CHECK_EQ(getsockname(g.listen_fd, (struct sockaddr *)&g.addr, &g.addrlen), 0);
    CHECK_RESULT(monad_async_socket_listen(g.listen_fd, NCONN));
    CHECK_ERROR(monad_async_socket_bind(g.listen_fd, NULL, 0), EFAULT);

    monad_async_task acceptor = test_make_task(sw, 64 * 1024);
    monad_async_task clients[NCONN];
    for (int i = 0; i < NCONN; i++) {
        g.servers[i] = test_make_task(sw, 64 * 1024);
        clients[i] = test_make_task(sw, 64 * 1024);
    }
    g.remaining = 1 + 2 * NCONN;
    acceptor->user_code = acceptor_fn;
    CHECK_RESULT(monad_async_task_attach(g.ex, acceptor, NULL));
    for (int i = 0; i < NCONN; i++) {
        clients[i]->user_code = client_fn;
        clients[i]->user_ptr = (void *)(intptr_t)i;
        CHECK_RESULT(monad_async_task_attach(g.ex, clients[i], NULL));
    }
    uint64_t const t0 = test_now_ns();
    test_run_until_zero(g.ex, &g.remaining, 240000);
    uint64_t const el = test_now_ns() - t0;
    CHECK_EQ(g.ex->io.submitted, g.ex->io.completed);
    test_note("%s: %d connections x %lu messages, %" PRIu64
              " bytes echoed and checked in %.2f s (%" PRIu64 " ops, %" PRIu64
              " io_uring_enter calls)",
              family == AF_INET ? "IPv4" : "IPv6", NCONN, messages,
              g.bytes_checked, (double)el / 1e9, g.ex->io.completed,
              g.ex->io.enters);
    uint64_t expect = 0;
    for (int c = 0; c < NCONN; c++) {
        for (unsigned long i = 0; i < messages; i++) {
            expect += msg_len(c, i);
        }
    }
    CHECK_EQ(g.bytes_checked, expect);
    for (int i = 0; i < NCONN; i++) {
        CHECK_RESULT(clients[i]->result);
        CHECK_RESULT(g.servers[i]->result);
        CHECK_RESULT(monad_async_task_destroy(clients[i]));
        CHECK_RESULT(monad_async_task_destroy(g.servers[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(acceptor));
    close(g.listen_fd);
    CHECK_RESULT(monad_async_executor_destroy(g.ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

int main(void)
{
    test_watchdog(280, "io_tcp_echo");
    unsigned long const n = test_scaled(10000);
    run_family(AF_INET, n);
    int const probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0) {
        test_note("IPv6 NOT tested: socket(AF_INET6) failed: %s", strerror(errno));
    }
    else {
        close(probe);
        run_family(AF_INET6, n / 10 ? n / 10 : 1);
    }
    printf("io_tcp_echo: ok\n");
    return 0;
}
