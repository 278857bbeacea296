/* Task dumps (dump.h): one record per attached task, in every state a
 * task can be in, on executors with and without a ring:
 *
 *  1. pending launch, runnable (yielded), running (the dumping task),
 *     sleeping (with its deadline), parked without and with a deadline,
 *     waiting for a recv (opcode and fd), cancelled while still pending;
 *  2. the count when the buffer is too small, and nothing after all
 *     tasks exited;
 *  3. bad input: NULL executor, NULL buffer with room, another thread
 *     (EPERM).
 */
#include "test_common.h"

#include <liburing.h>
#include <pthread.h>
#include <sys/socket.h>

enum role
{
    ROLE_YIELDER,
    ROLE_SLEEPER,
    ROLE_PARKER,
    ROLE_PARKER_DEADLINE,
    ROLE_RECEIVER,
    ROLE_DUMPER,
    ROLE_PENDING,
    ROLE_CANCELLED,
    ROLE_COUNT
};

struct world
{
    monad_async_executor ex;
    bool ring;
    int fds[2]; /* a socketpair: the receiver waits on fds[0] */
    monad_async_task tasks[ROLE_COUNT];
    uint64_t parker_token;
    bool dumped;
    bool stop;
    struct monad_async_task_info infos[ROLE_COUNT + 4];
    intptr_t count;
};

static struct world *g;

static enum role role_of(monad_async_task t)
{
    return (enum role)(uintptr_t)t->user_ptr;
}


static monad_async_result role_fn(monad_async_task task)
{
    switch (role_of(task)) {
    case ROLE_YIELDER:
        while (!g->stop) {
            CHECK_RESULT(monad_async_task_yield(task));
        }
        break;
    case ROLE_SLEEPER:
        /* Long, and cut short by a cancel at the end. */
        CHECK_ERROR(monad_async_task_suspend_for_duration(task, 60ull * 1000000000ull),
                    ECANCELED);
        break;
    case ROLE_PARKER:
        CHECK_RESULT(monad_async_task_wake_token(task, &g->parker_token));
        CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
        break;
    case ROLE_PARKER_DEADLINE:
        CHECK_ERROR(monad_async_task_park(task, 60ull * 1000000000ull), ECANCELED);
        break;
    case ROLE_RECEIVER: {
        char buf[8];
        monad_async_result const r =
            monad_async_io_recv(task, NULL, g->fds[0], buf, sizeof(buf), 0);
        CHECK_RESULT(r);
        CHECK_EQ(r.value, 1);
        break;
    }
    case ROLE_DUMPER:
        /* Let the others reach their waits first. */
        for (int i = 0; i < 4; i++) {
            CHECK_RESULT(monad_async_task_yield(task));
        }
        g->count = monad_async_executor_dump(g->ex, g->infos, ROLE_COUNT + 4).value;
        g->dumped = true;
        break;
    default:
        break;
    }
    return monad_async_make_success(0);
}

static struct monad_async_task_info const *info_of(enum role r)
{
    for (intptr_t i = 0; i < g->count; i++) {
        if (g->infos[i].task == g->tasks[r]) {
            return &g->infos[i];
        }
    }
    TEST_FAIL("role %d missing from the dump", (int)r);
    return NULL;
}

static void *other_thread(void *arg)
{
    struct monad_async_task_info info;
    CHECK_ERROR(monad_async_executor_dump((monad_async_executor)arg, &info, 1), EPERM);
    return NULL;
}

static void scenario(bool ring, monad_async_context_switcher sw)
{
    struct world w;
    memset(&w, 0, sizeof(w));
    g = &w;
    w.ring = ring;
    w.ex = ring ? test_make_ring_executor(16, 0) : test_make_executor(0, 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, w.fds), 0);

    /* Nothing attached: an empty dump, with and without a buffer. */
    CHECK_EQ(monad_async_executor_dump(w.ex, NULL, 0).value, 0);

    monad_async_priority const prio[ROLE_COUNT] = {
        [ROLE_YIELDER] = monad_async_priority_normal,
        [ROLE_SLEEPER] = monad_async_priority_normal,
        [ROLE_PARKER] = monad_async_priority_normal,
        [ROLE_PARKER_DEADLINE] = monad_async_priority_normal,
        [ROLE_RECEIVER] = monad_async_priority_high,
        [ROLE_DUMPER] = monad_async_priority_normal,
        [ROLE_PENDING] = monad_async_priority_low,
        [ROLE_CANCELLED] = monad_async_priority_low,
    };
    for (int r = 0; r < ROLE_COUNT; r++) {
        if (r == ROLE_RECEIVER && !ring) {
            continue;
        }
        monad_async_task t = test_make_task(sw, 0);
        t->user_code = role_fn;
        t->user_ptr = (void *)(uintptr_t)r;
        t->priority.cpu = prio[r];
        t->priority.io = r == ROLE_RECEIVER ? monad_async_priority_low
                                            : monad_async_priority_normal;
        w.tasks[r] = t;
        if (r != ROLE_CANCELLED) {
            CHECK_RESULT(monad_async_task_attach(w.ex, t, NULL));
        }
    }
    int const attached = ROLE_COUNT - 1 - (ring ? 0 : 1);

    /* Run until the dumper has dumped (the Low pending task cannot start
     * before: Normal tasks are ready all along). */
    struct timespec const tick = {0, 1000000};
    int spins = 0;
    while (!w.dumped) {
        if (spins == 3) {
            CHECK_RESULT(monad_async_task_attach(w.ex, w.tasks[ROLE_CANCELLED], NULL));
            /* Cancelled while pending: it never launches. */
            CHECK_RESULT(monad_async_task_cancel(w.ex, w.tasks[ROLE_CANCELLED]));
        }
        monad_async_result const r = monad_async_executor_run(w.ex, 1, &tick);
        CHECK(r.error == 0 || r.error == ETIME);
        CHECK_LT(++spins, 10000);
    }
    /* The task cancelled while pending has ended: not listed. */
    CHECK_EQ(w.count, attached);
    CHECK(!test_task_attached(w.tasks[ROLE_CANCELLED]));
    for (intptr_t i = 1; i < w.count; i++) {
        /* Oldest attach first. */
        CHECK(w.infos[i - 1].ticks_attached <= w.infos[i].ticks_attached);
    }
    struct monad_async_task_info const *i;
    i = info_of(ROLE_DUMPER);
    CHECK_EQ(i->activity, MONAD_ASYNC_TASK_ACTIVITY_RUNNING);
    CHECK_EQ(i->suspensions, 4);
    i = info_of(ROLE_PENDING);
    CHECK_EQ(i->activity, MONAD_ASYNC_TASK_ACTIVITY_PENDING_LAUNCH);
    CHECK_EQ(i->cpu_priority, monad_async_priority_low);
    CHECK_EQ(i->suspensions, 0);
    i = info_of(ROLE_YIELDER);
    CHECK_EQ(i->activity, MONAD_ASYNC_TASK_ACTIVITY_RUNNABLE);
    CHECK_EQ(i->cpu_priority, monad_async_priority_normal);
    CHECK_GE(i->suspensions, 1);
    CHECK_EQ(i->io_opcode, -1);
    CHECK_EQ(i->io_fd, -1);
    CHECK_EQ(i->user_ptr, (void *)(uintptr_t)ROLE_YIELDER);
    i = info_of(ROLE_SLEEPER);
    CHECK_EQ(i->activity, MONAD_ASYNC_TASK_ACTIVITY_SLEEPING);
    if (ring) {
        CHECK_EQ(i->io_opcode, IORING_OP_TIMEOUT);
    }
    else {
        CHECK_GT(i->deadline, i->ticks_suspended);
    }
    i = info_of(ROLE_PARKER);
    CHECK_EQ(i->activity, MONAD_ASYNC_TASK_ACTIVITY_PARKED);
    CHECK_EQ(i->deadline, 0);
    i = info_of(ROLE_PARKER_DEADLINE);
    CHECK_EQ(i->activity, MONAD_ASYNC_TASK_ACTIVITY_PARKED);
    CHECK_GT(i->deadline, i->ticks_suspended);
    CHECK_EQ(i->cancelled, 0);
    if (ring) {
        i = info_of(ROLE_RECEIVER);
        CHECK_EQ(i->activity, MONAD_ASYNC_TASK_ACTIVITY_IO);
        CHECK_EQ(i->io_opcode, IORING_OP_RECV);
        CHECK_EQ(i->io_fd, w.fds[0]);
        CHECK_EQ(i->cpu_priority, monad_async_priority_high);
        CHECK_EQ(i->io_priority, monad_async_priority_low);
    }

    /* Between runs too, and with too small a buffer: the count, and only
     * `capacity` records written. */
    struct monad_async_task_info two[3];
    memset(two, 0xAB, sizeof(two));
    CHECK_EQ(monad_async_executor_dump(w.ex, two, 2).value, attached - 1);
    unsigned char const *const third = (unsigned char const *)&two[2];
    CHECK_EQ(third[0], 0xAB);
    CHECK(two[0].task != NULL && two[1].task != NULL);

    /* Bad input. */
    CHECK_ERROR(monad_async_executor_dump(NULL, two, 1), EINVAL);
    CHECK_ERROR(monad_async_executor_dump(w.ex, NULL, 1), EINVAL);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, other_thread, w.ex), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);

    /* Wind down: wake, write, cancel; then nothing is listed. */
    w.stop = true;
    CHECK_EQ(monad_async_task_wake(w.tasks[ROLE_PARKER], w.parker_token).value, 1);
    if (ring) {
        CHECK_EQ(write(w.fds[1], "x", 1), 1);
    }
    CHECK_ERROR(monad_async_task_cancel(w.ex, w.tasks[ROLE_SLEEPER]), EAGAIN);
    CHECK_ERROR(monad_async_task_cancel(w.ex, w.tasks[ROLE_PARKER_DEADLINE]), EAGAIN);
    /* A cancelled wait is marked so in the dump. */
    CHECK_EQ(monad_async_executor_dump(w.ex, w.infos, ROLE_COUNT + 4).value, attached - 1);
    g->count = attached - 1;
    CHECK_EQ(info_of(ROLE_PARKER_DEADLINE)->cancelled, 1);
    for (int r = 0; r < ROLE_COUNT; r++) {
        if (w.tasks[r] != NULL) {
            (void)test_run_until_detached(w.ex, w.tasks[r], 10000);
        }
    }
    CHECK_EQ(monad_async_executor_dump(w.ex, two, 2).value, 0);
    for (int r = 0; r < ROLE_COUNT; r++) {
        if (w.tasks[r] != NULL) {
            CHECK_RESULT(monad_async_task_destroy(w.tasks[r]));
        }
    }
    CHECK_RESULT(monad_async_executor_destroy(w.ex));
    close(w.fds[0]);
    close(w.fds[1]);
}

int main(void)
{
    test_watchdog(120, "dump");
    for (int s = 0; s < TEST_SWITCHER_NONE; s++) {
        monad_async_context_switcher sw =
            test_make_switcher((enum test_switcher_kind)s);
        scenario(false, sw);
        if (!test_skip_ring_part("dumps of tasks waiting for I/O")) {
            scenario(true, sw);
        }
        CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    }
    return 0;
}
