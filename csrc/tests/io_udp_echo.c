/* UDP echo over loopback, IPv4 and IPv6: a server task answers each
 * datagram with recvmsg/sendmsg (learning the peer's address from the
 * message header); 8 client tasks each send 1,000 datagrams of varying
 * size with send/recv on connected sockets and check every reply byte
 * for byte. Loopback does not drop datagrams at this rate; a lost one
 * would hang and the watchdog would fail the test.
 * Header contract: io.h (sockets: socket, sendmsg, recvmsg, send, recv,
 * connect, close). */
#include "test_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define NCLIENTS 8
#define MAXDGRAM 1200

static int g_family;
static int g_server_fd;
static struct sockaddr_storage g_addr;
static socklen_t g_addrlen;
static unsigned long g_messages;
static int g_remaining;
static unsigned long g_total;

static size_t dgram_len(int c, unsigned long i)
{
    return 1 + (size_t)((i * 37 + (unsigned long)c * 101) % MAXDGRAM);
}

static monad_async_result server_fn(monad_async_task task)
{
    unsigned char buf[MAXDGRAM];
    unsigned long const expect = NCLIENTS * g_messages;
    for (unsigned long k = 0; k < expect; k++) {
        struct sockaddr_storage peer;
        struct iovec iov = {buf, sizeof(buf)};
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_name = &peer;
        msg.msg_namelen = sizeof(peer);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        monad_async_result r = monad_async_io_recvmsg(task, NULL, g_server_fd, &msg, 0);
        CHECK_RESULT(r);
        CHECK_GT(r.value, 0);
        /* The kernel wrote the datagram, the peer's address, and the
         * header's lengths and flags. */
        test_kernel_wrote(buf, (size_t)r.value);
        test_kernel_wrote(&msg.msg_namelen, sizeof(msg.msg_namelen));
        test_kernel_wrote(&msg.msg_flags, sizeof(msg.msg_flags));
        test_kernel_wrote(&peer, msg.msg_namelen < sizeof(peer) ? msg.msg_namelen
                                                                : sizeof(peer));
        iov.iov_len = (size_t)r.value;
        r = monad_async_io_sendmsg(task, NULL, g_server_fd, &msg, 0);
        CHECK_RESULT(r);
        CHECK_EQ((size_t)r.value, iov.iov_len);
    }
    g_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result client_fn(monad_async_task task)
{
    int const c = (int)(intptr_t)task->user_ptr;
    monad_async_result r = monad_async_io_socket(task, NULL, g_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK_RESULT(r);
    int const fd = (int)r.value;
    CHECK_RESULT(monad_async_io_connect(task, NULL, fd, (struct sockaddr *)&g_addr, g_addrlen));
    unsigned char out[MAXDGRAM], in[MAXDGRAM];
    for (unsigned long i = 0; i < g_messages; i++) {
        size_t const n = dgram_len(c, i);
        for (size_t j = 0; j < n; j++) {
            out[j] = (unsigned char)(c * 7 + i * 3 + j);
        }
        r = monad_async_io_send(task, NULL, fd, out, n, 0);
        CHECK_RESULT(r);
        CHECK_EQ((size_t)r.value, n);
        r = monad_async_io_recv(task, NULL, fd, in, sizeof(in), 0);
        CHECK_RESULT(r);
        CHECK_EQ((size_t)r.value, n);
        test_kernel_wrote(in, n);
        CHECK(memcmp(in, out, n) == 0);
        g_total += n;
    }
    CHECK_RESULT(monad_async_io_close(task, NULL, fd));
    g_remaining--;
    return monad_async_make_success(0);
}

static void run_family(int family)
{
    g_family = family;
    g_total = 0;
    monad_async_executor ex = test_make_ring_executor(64, 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_SJLJ);
    g_server_fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(g_server_fd >= 0);
    memset(&g_addr, 0, sizeof(g_addr));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&g_addr;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        g_addrlen = sizeof(*a);
    }
    else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&g_addr;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        g_addrlen = sizeof(*a);
    }
    CHECK_RESULT(monad_async_socket_bind(g_server_fd, (struct sockaddr *)&g_addr, g_addrlen));
    CHECK_EQ(getsockname(g_server_fd, (struct sockaddr *)&g_addr, &g_addrlen), 0);
    monad_async_task server = test_make_task(sw, 0);
    monad_async_task clients[NCLIENTS];
    server->user_code = server_fn;
    g_remaining = 1 + NCLIENTS;
    CHECK_RESULT(monad_async_task_attach(ex, server, NULL));
    for (int i = 0; i < NCLIENTS; i++) {
        clients[i] = test_make_task(sw, 0);
        clients[i]->user_code = client_fn;
        clients[i]->user_ptr = (void *)(intptr_t)i;
        CHECK_RESULT(monad_async_task_attach(ex, clients[i], NULL));
    }
    test_run_until_zero(ex, &g_remaining, 60000);
    test_note("UDP %s: %d clients x %lu datagrams, %lu bytes echoed and checked",
              family == AF_INET ? "IPv4" : "IPv6", NCLIENTS, g_messages, g_total);
    CHECK_EQ(ex->io.submitted, ex->io.completed);
    for (int i = 0; i < NCLIENTS; i++) {
        CHECK_RESULT(monad_async_task_destroy(clients[i]));
    }
    CHECK_RESULT(monad_async_task_destroy(server));
    close(g_server_fd);
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
}

int main(void)
{
    test_watchdog(120, "io_udp_echo");
    g_messages = test_scaled(1000);
    run_family(AF_INET);
    int const probe = socket(AF_INET6, SOCK_DGRAM, 0);
    if (probe < 0) {
        test_note("IPv6 NOT tested: socket(AF_INET6) failed: %s", strerror(errno));
    }
    else {
        close(probe);
        run_family(AF_INET6);
    }
    printf("io_udp_echo: ok\n");
    return 0;
}
