/* A cross-thread cancel that finds the task's cancel word held by the
 * withdrawal of an earlier request still takes effect (task.h:
 * monad_async_task_cancel: EAGAIN means the cancel will be applied).
 *
 * A canceller whose target work ended while it was making its request
 * holds the task's cancel word for a few instructions before letting go.
 * A cancel of the task's next work made in that window found the word
 * taken, took it for a request of its own work already queued, returned
 * EAGAIN, and was lost: the work ran on as if never cancelled. The window
 * is a few instructions wide, so this test holds it open by hand, through
 * the internal word itself, as that canceller would (the word names the
 * earlier work's generation), and lets go 20 ms later. Header contract:
 * task.h (monad_async_task_cancel, monad_async_task_park). */
#include "test_common.h"

#include "task_impl.h"

#include <pthread.h>
#include <stdatomic.h>

static monad_async_result first_fn(monad_async_task task)
{
    (void)task;
    return monad_async_make_success(0);
}

/* Parks for 2 s: ECANCELED if the cancel took effect, ETIME if it was
 * lost. */
static monad_async_result parker_fn(monad_async_task task)
{
    return monad_async_task_park(task, 2ull * 1000 * 1000 * 1000);
}

struct canceller
{
    monad_async_executor ex;
    monad_async_task task;
    monad_async_result r;
    _Atomic int done;
};

static void *cancel_thread(void *p)
{
    struct canceller *const c = p;
    c->r = monad_async_task_cancel(c->ex, c->task);
    atomic_store(&c->done, 1);
    return NULL;
}

int main(void)
{
    test_watchdog(60, "cancel_withdraw_window");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_task task = test_make_task(sw, 64 * 1024);
    struct timespec const ms = {0, 1000 * 1000};

    /* An earlier piece of work, so that the request being withdrawn names
     * a real earlier generation. */
    task->user_code = first_fn;
    CHECK_RESULT(monad_async_task_attach(ex, task, NULL));
    while (!(atomic_load(&task->state) & MONAD_ASYNC_TASK_STATE_EXITED)) {
        monad_async_result r = monad_async_executor_run(ex, 16, &ms);
        CHECK(r.error == 0 || r.error == ETIME);
    }

    task->user_code = parker_fn;
    CHECK_RESULT(monad_async_task_attach(ex, task, NULL));
    struct ma_task *const t = ma_task_from(task);
    while (t->where != MA_TASK_PARKED) {
        monad_async_result r = monad_async_executor_run(ex, 1, &ms);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    uint64_t const gen = ma_task_gen(t);
    CHECK(ma_task_gen_is_live(gen) && gen >= 3);

    /* The earlier work's canceller, in its withdrawal window. */
    atomic_store(&t->cancel_queued, (uint32_t)(gen - 2));
    struct canceller c = {.ex = ex, .task = task};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, cancel_thread, &c), 0);
    struct timespec const twenty_ms = {0, 20 * 1000 * 1000};
    nanosleep(&twenty_ms, NULL);
    int const returned_while_held = atomic_load(&c.done);
    atomic_store(&t->cancel_queued, 0); /* the withdrawal ends */
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_ERROR(c.r, EAGAIN);

    /* The cancel must reach the parked work: it ends with ECANCELED, long
     * before its 2 s park would time out. */
    uint64_t const t0 = test_now_ns();
    while (!(atomic_load(&task->state) & MONAD_ASYNC_TASK_STATE_EXITED)) {
        monad_async_result r = monad_async_executor_run(ex, 16, &ms);
        CHECK(r.error == 0 || r.error == ETIME);
    }
    uint64_t const took = test_now_ns() - t0;
    CHECK_MSG(task->result.error == ECANCELED,
              "the cancel returned EAGAIN (%s while the word was held) but "
              "the work ended with error %d (ETIME: the cancel was lost)",
              returned_while_held ? "returned" : "waited",
              task->result.error);
    CHECK_LT(took, 1000ull * 1000 * 1000);

    CHECK_RESULT(monad_async_task_destroy(task));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("cancel_withdraw_window: ok\n");
    return 0;
}
