/* Kernel-provided receive buffers: a ring of 4 buffers shared by 8
 * receiving tasks on 8 socket pairs; each message arrives in a buffer
 * the kernel picked, checked byte for byte, then given back (a receive
 * that finds all 4 out gets ENOBUFS and retries: no data is lost). With every
 * buffer outstanding a receive fails with ENOBUFS; the initiate form
 * finds its buffer with take; destroy refuses while buffers are out.
 * Header contract: io.h (kernel-provided receive buffers). */
#include "test_common.h"

#include <sys/socket.h>

#define NPAIRS 8
#define NMSG 200

static monad_async_io_buffer_ring g_ring;
static int g_pairs[NPAIRS][2];
static int g_remaining;
static int g_nobufs;

static monad_async_result receiver_fn(monad_async_task task)
{
    int const id = (int)(intptr_t)task->user_ptr;
    for (int m = 0; m < NMSG; m++) {
        struct monad_async_io_buffer b;
        monad_async_result r = monad_async_io_recv_provided(task, NULL, g_pairs[id][0],
                                                            g_ring, 0, &b);
        if (r.error == ENOBUFS) {
            /* More receives completed at once than there are buffers:
             * the data waits in the socket; try again once others have
             * given theirs back. */
            CHECK(b.data == NULL);
            g_nobufs++;
            CHECK_RESULT(monad_async_task_yield(task));
            m--;
            continue;
        }
        CHECK_RESULT(r);
        CHECK(b.data != NULL);
        CHECK_EQ(b.size, (size_t)r.value);
        CHECK_EQ(r.value, 16);
        test_kernel_wrote(b.data, b.size);
        char want[17];
        snprintf(want, sizeof(want), "p%02d-m%03d-xxxxxx", id, m);
        CHECK(memcmp(b.data, want, 16) == 0);
        CHECK_RESULT(monad_async_io_buffer_ring_release(g_ring, &b));
        CHECK_ERROR(monad_async_io_buffer_ring_release(g_ring, &b), EINVAL);
    }
    g_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result sender_fn(monad_async_task task)
{
    for (int m = 0; m < NMSG; m++) {
        for (int id = 0; id < NPAIRS; id++) {
            char msg[17];
            snprintf(msg, sizeof(msg), "p%02d-m%03d-xxxxxx", id, m);
            CHECK_EQ(monad_async_io_send(task, NULL, g_pairs[id][1], msg, 16, 0).value, 16);
        }
        /* One message at a time per pair: let the receivers drain. */
        CHECK_RESULT(monad_async_io_timeout(task, NULL, 100000));
    }
    g_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result exhaust_fn(monad_async_task task)
{
    /* Take all 4 buffers, then a fifth receive has none. */
    struct monad_async_io_buffer held[4];
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(send(g_pairs[0][1], "abcdefghijklmnop", 16, 0), 16);
        CHECK_EQ(monad_async_io_recv_provided(task, NULL, g_pairs[0][0], g_ring, 0,
                                              &held[i]).value, 16);
    }
    CHECK_EQ(g_ring->outstanding, 4);
    CHECK_ERROR(monad_async_io_buffer_ring_destroy(g_ring), EBUSY);
    CHECK_EQ(send(g_pairs[0][1], "abcdefghijklmnop", 16, 0), 16);
    struct monad_async_io_buffer none;
    CHECK_ERROR(monad_async_io_recv_provided(task, NULL, g_pairs[0][0], g_ring, 0, &none),
                ENOBUFS);
    CHECK(none.data == NULL);
    CHECK_RESULT(monad_async_io_buffer_ring_release(g_ring, &held[0]));
    /* Initiate form: the buffer is found from the status. */
    struct monad_async_io_status st;
    memset(&st, 0, sizeof(st));
    CHECK_RESULT(monad_async_io_recv_provided(task, &st, g_pairs[0][0], g_ring, 0, NULL));
    CHECK_EQ(monad_async_io_wait(task, &st).value, 16);
    struct monad_async_io_buffer b;
    CHECK_RESULT(monad_async_io_buffer_ring_take(g_ring, &st, &b));
    test_kernel_wrote(b.data, b.size);
    CHECK(memcmp(b.data, "abcdefghijklmnop", 16) == 0);
    CHECK_RESULT(monad_async_io_buffer_ring_release(g_ring, &b));
    for (int i = 1; i < 4; i++) {
        CHECK_RESULT(monad_async_io_buffer_ring_release(g_ring, &held[i]));
    }
    CHECK_EQ(g_ring->outstanding, 0);
    g_remaining--;
    return monad_async_make_success(0);
}

int main(void)
{
    test_watchdog(60, "io_buffer_ring");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_executor ex = test_make_ring_executor(32, 0);
    CHECK_ERROR(monad_async_io_buffer_ring_create(&g_ring, ex, 64, 3), EINVAL);
    CHECK_RESULT(monad_async_io_buffer_ring_create(&g_ring, ex, 64, 4));
    for (int i = 0; i < NPAIRS; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, g_pairs[i]), 0);
    }
    monad_async_task recv_tasks[NPAIRS];
    g_remaining = NPAIRS + 1;
    for (int i = 0; i < NPAIRS; i++) {
        recv_tasks[i] = test_make_task(sw, 0);
        recv_tasks[i]->user_code = receiver_fn;
        recv_tasks[i]->user_ptr = (void *)(intptr_t)i;
        CHECK_RESULT(monad_async_task_attach(ex, recv_tasks[i], NULL));
    }
    monad_async_task sender = test_make_task(sw, 0);
    sender->user_code = sender_fn;
    CHECK_RESULT(monad_async_task_attach(ex, sender, NULL));
    test_run_until_zero(ex, &g_remaining, 30000);
    CHECK_EQ(g_ring->outstanding, 0);
    test_note("%d receives of %d found every buffer out (ENOBUFS, retried)",
              g_nobufs, NPAIRS * NMSG);

    g_remaining = 1;
    sender->user_code = exhaust_fn;
    CHECK_RESULT(monad_async_task_attach(ex, sender, NULL));
    test_run_until_zero(ex, &g_remaining, 30000);
    CHECK_RESULT(sender->result);
    CHECK_EQ(ex->io.submitted, ex->io.completed);

    CHECK_RESULT(monad_async_io_buffer_ring_destroy(g_ring));
    /* One left alive for the executor's destroy to free. */
    CHECK_RESULT(monad_async_io_buffer_ring_create(&g_ring, ex, 128, 8));
    for (int i = 0; i < NPAIRS; i++) {
        CHECK_RESULT(monad_async_task_destroy(recv_tasks[i]));
        close(g_pairs[i][0]);
        close(g_pairs[i][1]);
    }
    CHECK_RESULT(monad_async_task_destroy(sender));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("io_buffer_ring: ok\n");
    return 0;
}
