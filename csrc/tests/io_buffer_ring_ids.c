/* Buffer-group ids are never handed out twice while in use (issue 9).
 *
 * The kernel names a buffer ring by a 16-bit group id. With one ring kept
 * alive, 70,000 more are created and destroyed (a window of WINDOW alive
 * at once, so several ids are live together): every create must succeed,
 * and no id may equal a live ring's. A 16-bit counter that wraps fails
 * here at about the 65,536th create, with the kernel's EEXIST for the
 * kept ring's id. After the churn, receives through the kept ring and
 * through the newest one (whose id has been used before) arrive in
 * their own ring's buffers.
 *
 * Exhaustion: 65,536 live rings cannot be made for real on a default
 * system (each ring is two mappings, and vm.max_map_count is 65,530), so
 * the test takes every free id through the executor's own id allocator
 * (ma_io_buffer_group_alloc, the function create uses), checks that the
 * ids it hands out are all distinct, and that create then fails with
 * ENOSPC (io.h) without leaking; freeing one id makes create work again.
 * Header contract: io.h (monad_async_io_buffer_ring_create). */
#include "test_common.h"

#include "io_impl.h"

#include <sys/socket.h>

#define CYCLES 70000
#define WINDOW 8
#define NGROUPS 65536

static monad_async_io_buffer_ring g_keep;
static monad_async_io_buffer_ring g_newest;
static int g_pair[2];
static int g_done;

/* One message through `ring`: it must land in one of `ring`'s buffers,
 * which `ring` (and only it) takes back. */
static void recv_through(monad_async_task task, monad_async_io_buffer_ring ring,
                         monad_async_io_buffer_ring other, char const *msg)
{
    CHECK_EQ(send(g_pair[1], msg, 16, 0), 16);
    struct monad_async_io_buffer b;
    monad_async_result const r =
        monad_async_io_recv_provided(task, NULL, g_pair[0], ring, 0, &b);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 16);
    CHECK(b.data != NULL);
    test_kernel_wrote(b.data, b.size);
    CHECK(memcmp(b.data, msg, 16) == 0);
    CHECK_EQ(ring->outstanding, 1);
    CHECK_EQ(other->outstanding, 0);
    CHECK_ERROR(monad_async_io_buffer_ring_release(other, &b), EINVAL);
    CHECK_RESULT(monad_async_io_buffer_ring_release(ring, &b));
}

static monad_async_result receiver_fn(monad_async_task task)
{
    recv_through(task, g_keep, g_newest, "kept-ring-abcdef");
    recv_through(task, g_newest, g_keep, "newest-ring-0123");
    g_done = 1;
    return monad_async_make_success(0);
}

static int is_live(monad_async_io_buffer_ring const *window, uint16_t id,
                   int skip)
{
    for (int w = 0; w < WINDOW; w++) {
        if (w != skip && window[w] != NULL && window[w]->group == id) {
            return 1;
        }
    }
    return 0;
}

static void churn(monad_async_executor ex)
{
    monad_async_io_buffer_ring window[WINDOW];
    memset(window, 0, sizeof(window));
    uint32_t reused = 0; /* creates that got an id seen before */
    static unsigned char seen[NGROUPS];
    memset(seen, 0, sizeof(seen));
    seen[g_keep->group] = 1;
    for (int i = 0; i < CYCLES; i++) {
        int const w = i % WINDOW;
        if (window[w] != NULL) {
            CHECK_RESULT(monad_async_io_buffer_ring_destroy(window[w]));
            window[w] = NULL;
        }
        monad_async_result const r =
            monad_async_io_buffer_ring_create(&window[w], ex, 64, 1);
        if (r.error != 0) {
            TEST_FAIL("create #%d (with %d rings alive, the kept one's id "
                      "%u) failed: %s %d (%s)",
                      i + 1, 1 + (i < WINDOW ? i : WINDOW - 1),
                      (unsigned)g_keep->group, test_errno_name(r.error),
                      r.error, strerror(r.error));
        }
        uint16_t const id = window[w]->group;
        CHECK_MSG(id != g_keep->group,
                  "create #%d got id %u, the kept ring's", i + 1,
                  (unsigned)id);
        CHECK_MSG(!is_live(window, id, w),
                  "create #%d got id %u, which a live ring has", i + 1,
                  (unsigned)id);
        reused += seen[id];
        seen[id] = 1;
    }
    /* Past 65,536 creates ids must have been reused. */
    CHECK_GT(reused, CYCLES - NGROUPS);
    g_newest = window[(CYCLES - 1) % WINDOW];
    for (int w = 0; w < WINDOW; w++) {
        if (window[w] != NULL && window[w] != g_newest) {
            CHECK_RESULT(monad_async_io_buffer_ring_destroy(window[w]));
        }
    }
    test_note("%d creates with %d+1 rings alive: ids reused %u times, never "
              "a live one",
              CYCLES, WINDOW, (unsigned)reused);
}

static void receive_after_churn(monad_async_executor ex)
{
    CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, g_pair), 0);
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task t = test_make_task(sw, 0);
    t->user_code = receiver_fn;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_detached(ex, t, 10000);
    CHECK_RESULT(t->result);
    CHECK(g_done);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    close(g_pair[0]);
    close(g_pair[1]);
}

static void exhaust(monad_async_executor ex)
{
    struct ma_executor *const e = ma_executor_from(ex);
    static unsigned char taken[NGROUPS];
    memset(taken, 0, sizeof(taken));
    taken[g_keep->group] = 1;
    taken[g_newest->group] = 1;
    /* Every id the two live rings do not hold, each once. */
    uint32_t got = 0;
    for (;;) {
        uint16_t id = 0;
        int const err = ma_io_buffer_group_alloc(e, &id);
        if (err != 0) {
            CHECK_ERROR(test_errno_result(err), ENOSPC);
            break;
        }
        CHECK_MSG(!taken[id], "id %u handed out twice", (unsigned)id);
        taken[id] = 1;
        got++;
        CHECK_LE(got, NGROUPS - 2);
    }
    CHECK_EQ(got, NGROUPS - 2);
    /* All 65,536 in use: create says so, and leaks nothing (ASan). */
    monad_async_io_buffer_ring r = NULL;
    CHECK_ERROR(monad_async_io_buffer_ring_create(&r, ex, 64, 1), ENOSPC);
    CHECK(r == NULL);
    /* One id freed: create takes exactly that one. */
    uint16_t const freed = (uint16_t)12345;
    CHECK(freed != g_keep->group && freed != g_newest->group);
    ma_io_buffer_group_free(e, freed);
    CHECK_RESULT(monad_async_io_buffer_ring_create(&r, ex, 64, 1));
    CHECK_EQ(r->group, freed);
    CHECK_ERROR(monad_async_io_buffer_ring_create(&r, ex, 64, 1), ENOSPC);
    CHECK_RESULT(monad_async_io_buffer_ring_destroy(r));
    for (uint32_t id = 0; id < NGROUPS; id++) {
        if (id != g_keep->group && id != g_newest->group && id != freed) {
            ma_io_buffer_group_free(e, (uint16_t)id);
        }
    }
    CHECK_RESULT(monad_async_io_buffer_ring_create(&r, ex, 64, 1));
    CHECK_RESULT(monad_async_io_buffer_ring_destroy(r));
    test_note("all %d ids in use: create gives ENOSPC", NGROUPS);
}

int main(void)
{
    test_watchdog(240, "io_buffer_ring_ids");
    monad_async_executor ex = test_make_ring_executor(8, 0);
    CHECK_RESULT(monad_async_io_buffer_ring_create(&g_keep, ex, 64, 1));
    churn(ex);
    receive_after_churn(ex);
    exhaust(ex);
    CHECK_RESULT(monad_async_io_buffer_ring_destroy(g_newest));
    CHECK_RESULT(monad_async_io_buffer_ring_destroy(g_keep));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    printf("io_buffer_ring_ids: ok\n");
    return 0;
}
