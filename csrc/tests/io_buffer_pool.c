/* Registered buffer pools: claim and release, fixed-buffer writes and
 * reads through claimed buffers checked byte for byte, tasks finding the
 * pool empty wait and are served first come first served, a task
 * cancelled while waiting for a buffer resumes with ECANCELED (and a
 * buffer handed to a task cancelled before it ran is passed on), errors
 * (try_claim EAGAIN, double release, destroy while claimed, a second
 * registration), and an executor destroyed with a task waiting for a
 * buffer and a pool still alive.
 * Header contract: io.h (registered buffer pools). */
#include "test_common.h"

#include <fcntl.h>

#define NTASKS 10

static monad_async_executor g_ex;
static monad_async_io_buffer_pool g_pool;
static int g_fd;
static int g_order[NTASKS];
static int g_seq;
static int g_remaining;

static monad_async_result worker_fn(monad_async_task task)
{
    int const id = (int)(intptr_t)task->user_ptr;
    struct monad_async_io_buffer b;
    monad_async_result r = monad_async_io_buffer_claim(task, g_pool, &b);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, b.index);
    g_order[g_seq++] = id;
    CHECK_EQ(b.size, g_pool->buffer_size);
    memset(b.data, 'a' + id, b.size);
    r = monad_async_io_write_fixed(task, NULL, g_fd, b.data, b.size,
                                   (int64_t)id * (int64_t)b.size, b.index);
    CHECK_RESULT(r);
    CHECK_EQ((size_t)r.value, b.size);
    memset(b.data, 0, b.size);
    r = monad_async_io_read_fixed(task, NULL, g_fd, b.data, b.size,
                                  (int64_t)id * (int64_t)b.size, b.index);
    CHECK_EQ((size_t)r.value, b.size);
    test_kernel_wrote(b.data, b.size);
    for (size_t i = 0; i < b.size; i++) {
        CHECK_EQ(((unsigned char *)b.data)[i], 'a' + id);
    }
    CHECK_RESULT(monad_async_io_buffer_release(g_pool, &b));
    CHECK_ERROR(monad_async_io_buffer_release(g_pool, &b), EINVAL);
    g_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result hog_fn(monad_async_task task)
{
    struct monad_async_io_buffer b[2];
    CHECK_RESULT(monad_async_io_buffer_claim(task, g_pool, &b[0]));
    CHECK_RESULT(monad_async_io_buffer_claim(task, g_pool, &b[1]));
    CHECK_ERROR(monad_async_io_buffer_try_claim(task, g_pool, &b[0]), EAGAIN);
    /* Keep them across a suspension so others must wait. */
    CHECK_RESULT(monad_async_io_timeout(task, NULL, 20 * 1000000ull));
    CHECK_RESULT(monad_async_io_buffer_release(g_pool, &b[0]));
    CHECK_RESULT(monad_async_io_buffer_release(g_pool, &b[1]));
    g_remaining--;
    return monad_async_make_success(0);
}

static monad_async_task g_w2;

/* Hands a buffer to the first waiter, then cancels that waiter before it
 * could run: it must pass the buffer on rather than leak it. */
static monad_async_result handover_fn(monad_async_task task)
{
    struct monad_async_io_buffer b[2];
    CHECK_RESULT(monad_async_io_buffer_claim(task, g_pool, &b[0]));
    CHECK_RESULT(monad_async_io_buffer_claim(task, g_pool, &b[1]));
    CHECK_RESULT(monad_async_io_timeout(task, NULL, 20 * 1000000ull));
    CHECK_RESULT(monad_async_io_buffer_release(g_pool, &b[0])); /* to w2 */
    CHECK_EQ(g_pool->free, 0);
    CHECK_ERROR(monad_async_task_cancel(g_ex, g_w2), EAGAIN);
    CHECK_RESULT(monad_async_io_buffer_release(g_pool, &b[1])); /* to w3 */
    g_remaining--;
    return monad_async_make_success(0);
}

/* Wants two buffers of a one-buffer pool: waits for ever. */
static monad_async_result greedy_fn(monad_async_task task)
{
    struct monad_async_io_buffer b[2];
    CHECK_RESULT(monad_async_io_buffer_claim(task, g_pool, &b[0]));
    monad_async_result r = monad_async_io_buffer_claim(task, g_pool, &b[1]);
    CHECK_RESULT(monad_async_io_buffer_release(g_pool, &b[0]));
    return r;
}

static monad_async_result waiter_fn(monad_async_task task)
{
    struct monad_async_io_buffer b;
    monad_async_result r = monad_async_io_buffer_claim(task, g_pool, &b);
    if (r.error == 0) {
        CHECK_RESULT(monad_async_io_buffer_release(g_pool, &b));
    }
    return r;
}

int main(void)
{
    test_watchdog(60, "io_buffer_pool");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    g_ex = test_make_ring_executor(16, 0);
    CHECK_ERROR(monad_async_io_buffer_pool_create(&g_pool, g_ex, 0, 2), EINVAL);
    CHECK_RESULT(monad_async_io_buffer_pool_create(&g_pool, g_ex, 1000, 2));
    CHECK_EQ(g_pool->buffer_size % 4096, 0);
    CHECK_EQ(g_pool->free, 2);
    monad_async_io_buffer_pool second;
    CHECK_ERROR(monad_async_io_buffer_pool_create(&second, g_ex, 4096, 1), EBUSY);

    char path[64];
    snprintf(path, sizeof(path), "/tmp/monad_async_pool.%d", (int)getpid());
    g_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(g_fd >= 0);
    unlink(path);

    /* A hog takes both buffers; ten workers queue, served in order. */
    monad_async_task hog = test_make_task(sw, 0);
    hog->user_code = hog_fn;
    hog->priority.cpu = monad_async_priority_high;
    monad_async_task tasks[NTASKS];
    g_remaining = NTASKS + 1;
    CHECK_RESULT(monad_async_task_attach(g_ex, hog, NULL));
    for (int i = 0; i < NTASKS; i++) {
        tasks[i] = test_make_task(sw, 0);
        tasks[i]->user_code = worker_fn;
        tasks[i]->user_ptr = (void *)(intptr_t)i;
        CHECK_RESULT(monad_async_task_attach(g_ex, tasks[i], NULL));
    }
    test_run_until_zero(g_ex, &g_remaining, 20000);
    CHECK_GE(g_pool->waits, NTASKS);
    for (int i = 0; i < NTASKS; i++) {
        CHECK_EQ(g_order[i], i);
    }
    CHECK_EQ(g_pool->free, 2);

    /* Cancelled while waiting; and cancelled after a hand-over. */
    hog->user_code = handover_fn;
    g_remaining = 1;
    CHECK_RESULT(monad_async_task_attach(g_ex, hog, NULL));
    monad_async_task w1 = tasks[0], w2 = tasks[1], w3 = tasks[2];
    g_w2 = w2;
    w1->user_code = w2->user_code = w3->user_code = waiter_fn;
    CHECK_RESULT(monad_async_task_attach(g_ex, w1, NULL));
    CHECK_RESULT(monad_async_task_attach(g_ex, w2, NULL));
    CHECK_RESULT(monad_async_task_attach(g_ex, w3, NULL));
    struct timespec const zero = {0, 0};
    CHECK_RESULT(monad_async_executor_run(g_ex, 4, &zero));
    CHECK(test_task_state(w1) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    CHECK_ERROR(monad_async_task_cancel(g_ex, w1), EAGAIN);
    test_run_until_detached(g_ex, w1, 5000);
    CHECK_ERROR(w1->result, ECANCELED);
    test_run_until_detached(g_ex, w2, 5000);
    test_run_until_detached(g_ex, w3, 5000);
    test_run_until_detached(g_ex, hog, 5000);
    CHECK_ERROR(w2->result, ECANCELED);
    CHECK_RESULT(w3->result);
    CHECK_EQ(g_pool->free, 2);

    /* Destroy refuses while claimed. */
    struct monad_async_io_buffer fake = {NULL, 0, 5, 0};
    CHECK_ERROR(monad_async_io_buffer_release(g_pool, &fake), EINVAL);
    CHECK_RESULT(monad_async_io_buffer_pool_destroy(g_pool));
    CHECK_RESULT(monad_async_io_buffer_pool_create(&g_pool, g_ex, 4096, 1));

    /* Executor destroyed with a task waiting for a buffer and the pool
     * still alive: the waiter is cancelled, the pool freed. */
    hog->user_code = greedy_fn; /* needs 2, the pool has 1: it waits */
    CHECK_RESULT(monad_async_task_attach(g_ex, hog, NULL));
    CHECK_RESULT(monad_async_executor_run(g_ex, 4, &zero));
    CHECK(test_task_state(hog) & MONAD_ASYNC_TASK_STATE_SUSPENDED);
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
    CHECK(!test_task_attached(hog));
    CHECK_ERROR(hog->result, ECANCELED);

    CHECK_RESULT(monad_async_task_destroy(hog));
    for (int i = 0; i < NTASKS; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    close(g_fd);
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("io_buffer_pool: ok\n");
    return 0;
}
