/* Waiting for work, and waking a waiting executor, for executors
 * without a ring, and with one that has nothing in flight (with I/O in
 * flight they sleep in the ring: io_pump.c).
 *
 * The executor announces it may sleep (sleeping = MA_SLEEP_FUTEX), then
 * checks its inboxes and the wake flag once more, then sleeps in a futex
 * on `sleeping`. A waker publishes its work first (inbox push or wake flag),
 * then reads `sleeping`. Both sides use sequentially consistent
 * operations, so either the executor sees the work or the waker sees
 * `sleeping` set and issues the futex wake: no wake-up is lost, and a
 * waker pays for a system call only when the executor really sleeps. */
#include "executor_impl.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void ma_futex_wait(_Atomic uint32_t *word, uint32_t expected,
                          struct timespec const *rel)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, rel,
            NULL, 0);
}

static void ma_futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void ma_executor_wait(struct ma_executor *ex, uint64_t deadline_ticks)
{
    atomic_store(&ex->sleeping, MA_SLEEP_FUTEX);
    if (!ma_executor_inboxes_empty(ex) ||
        atomic_load(&ex->wake_pending)) {
        atomic_store(&ex->sleeping, 0);
        return;
    }
    struct timespec rel;
    struct timespec const *relp = NULL;
    if (deadline_ticks != UINT64_MAX) {
        uint64_t const now = ma_ticks_read();
        uint64_t const left =
            deadline_ticks > now ? deadline_ticks - now : 0;
        uint64_t ns = ma_ticks_to_ns(left, ex->ticks_per_second);
        /* The tick clock and the futex clock differ by rounding: never
         * wake a hair early and spin, round up to the next microsecond. */
        ns += 1000;
        rel.tv_sec = (time_t)(ns / 1000000000ull);
        rel.tv_nsec = (long)(ns % 1000000000ull);
        relp = &rel;
    }
    ma_futex_wait(&ex->sleeping, MA_SLEEP_FUTEX, relp);
    atomic_store(&ex->sleeping, 0);
}

void ma_executor_notify(struct ma_executor *ex)
{
    uint32_t how = atomic_load(&ex->sleeping);
    if (how != 0 && (how = atomic_exchange(&ex->sleeping, 0)) != 0) {
        if (how == MA_SLEEP_RING) {
            ma_io_notify(ex); /* it sleeps in the ring: see io_pump.c */
        }
        else {
            ma_futex_wake(&ex->sleeping);
        }
    }
}
