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
#include "cpu_relax.h"
#include "executor_impl.h"

#include <errno.h>
#include <stdbool.h>
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

/* Whether another thread left work (an inbox message or a wake). */
static inline bool ma_executor_has_remote_work(struct ma_executor *ex)
{
    return !ma_executor_inboxes_empty(ex) ||
           atomic_load_explicit(&ex->wake_pending, memory_order_relaxed);
}

/* Spins until another thread leaves work (true) or until the spin period
 * or the deadline is over, or the thread was preempted (false; the last
 * also turns spinning off for a while). `sleeping` stays 0 meanwhile, so
 * a waker finds the executor awake and makes no system call either. */
static bool ma_executor_spin(struct ma_executor *ex, uint64_t deadline_ticks)
{
    uint64_t last = ma_ticks_read();
    uint64_t end = last + ex->spin_ticks;
    if (deadline_ticks < end) {
        end = deadline_ticks;
    }
    for (;;) {
        if (ma_executor_has_remote_work(ex)) {
            return true;
        }
        uint64_t const now = ma_ticks_read();
        if (now - last >= ex->spin_preempt_ticks) {
            ex->spin_off_until = now + ex->spin_contended_ticks;
            return false;
        }
        if (now >= end) {
            return false;
        }
        last = now;
        ma_cpu_relax();
    }
}

/* Decides whether to spin before sleeping; true if the spin found work.
 * The bet (executor_impl.h, MA_IDLE_SPIN_NS) is made only while the last
 * sleep was ended soon by another thread, and backs off exponentially
 * after spins that found nothing: an executor woken at an interval just
 * over the spin period wastes at most one spin per
 * MA_IDLE_SPIN_BACKOFF_MAX waits. */
static bool ma_executor_try_spin(struct ma_executor *ex, uint64_t deadline_ticks)
{
    if (!ex->spin_hot) {
        return false;
    }
    if (__builtin_expect(ex->spin_off_until != 0, 0)) {
        if (ma_ticks_read() < ex->spin_off_until) {
            return false;
        }
        ex->spin_off_until = 0;
    }
    if (ex->spin_skip != 0) {
        ex->spin_skip--;
        return false;
    }
    if (ma_executor_spin(ex, deadline_ticks)) {
        ex->spin_backoff = 1;
        return true;
    }
    ex->spin_skip = ex->spin_backoff;
    if (ex->spin_backoff < MA_IDLE_SPIN_BACKOFF_MAX) {
        ex->spin_backoff *= 2;
    }
    return false;
}

void ma_executor_wait(struct ma_executor *ex, uint64_t deadline_ticks)
{
    if (ex->spin_ticks != 0 && ma_executor_try_spin(ex, deadline_ticks)) {
        return;
    }
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
    uint64_t const slept_from = ma_ticks_read();
    ma_futex_wait(&ex->sleeping, MA_SLEEP_FUTEX, relp);
    /* 0: a waker swapped the word (ma_executor_notify), so this sleep was
     * ended by another thread; otherwise a time-out (or a spurious
     * return). Only a sleep another thread ended soon makes the next wait
     * spin first. */
    bool const notified = atomic_exchange(&ex->sleeping, 0) == 0;
    ex->spin_hot = notified &&
                   ma_ticks_read() - slept_from <= ex->spin_hot_ticks;
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
