/* The ring in the run loop: one system call per pass submits everything
 * the tasks queued and collects what the kernel finished; when there is
 * nothing to run, the executor sleeps in the ring.
 *
 * An executor with nothing in flight sleeps in its futex instead (wait.c):
 * cheaper to enter and to wake, and nothing could complete meanwhile.
 *
 * Waking a ring-sleeping executor: the ring always has a read of the wake
 * eventfd armed (user_data MA_UD_WAKE). The executor announces it may
 * sleep (sleeping = MA_SLEEP_RING), checks its inboxes and wake flag once more, then
 * waits in io_uring_enter. A waker publishes its work, then reads
 * `sleeping`; if set, it writes the eventfd, which completes the read and
 * ends the wait. If the write lands before the executor enters the wait,
 * the eventfd counter stays non-zero and the read completes as soon as it
 * is (re)submitted, so the wait ends at once: no wake-up is lost. The
 * read is re-armed when its completion is reaped, and submitted with the
 * next pass's system call. */
#include "executor_impl.h"

#include <errno.h>
#include <unistd.h>

void ma_io_arm_wake(struct ma_executor *ex)
{
    struct io_uring_sqe *const sqe = ma_io_internal_sqe(ex);
    if (sqe == NULL) {
        ex->wake_armed = false; /* retried before the next sleep */
        return;
    }
    io_uring_prep_read(sqe, ex->wake_fd, &ex->wake_buf, sizeof(ex->wake_buf), 0);
    io_uring_sqe_set_data64(sqe, MA_UD_WAKE);
    ex->wake_armed = true;
}

void ma_io_pump(struct ma_executor *ex)
{
    ex->slices_since_pump = 0;
    /* Errors (EINTR, EBUSY, EAGAIN) leave the SQEs queued: the next pass
     * tries again. */
    (void)io_uring_submit_and_get_events(&ex->ring);
    ex->head.io.enters++;
    ma_io_reap_cqes(ex);
    ma_io_grant_waiters(ex);
}

void ma_io_wait(struct ma_executor *ex, uint64_t deadline_ticks)
{
    if (!ex->wake_armed) {
        ma_io_arm_wake(ex);
    }
    atomic_store(&ex->sleeping, MA_SLEEP_RING);
    if (!ma_executor_inboxes_empty(ex) ||
        atomic_load(&ex->wake_pending) || !ex->wake_armed) {
        atomic_store(&ex->sleeping, 0);
        return;
    }
    struct __kernel_timespec ts;
    struct __kernel_timespec *tsp = NULL;
    if (deadline_ticks != UINT64_MAX) {
        uint64_t const now = ma_ticks_read();
        uint64_t const left = deadline_ticks > now ? deadline_ticks - now : 0;
        /* Round up a microsecond, as the futex wait does: never wake a
         * hair early and spin. */
        uint64_t const ns = ma_ticks_to_ns(left, ex->ticks_per_second) + 1000;
        ts.tv_sec = (long long)(ns / 1000000000ull);
        ts.tv_nsec = (long long)(ns % 1000000000ull);
        tsp = &ts;
    }
    struct io_uring_cqe *cqe;
    (void)io_uring_submit_and_wait_timeout(&ex->ring, &cqe, 1, tsp, NULL);
    ex->head.io.enters++;
    atomic_store(&ex->sleeping, 0);
    ex->slices_since_pump = 0;
    ma_io_reap_cqes(ex);
    ma_io_grant_waiters(ex);
}

/* Any thread. Called after `sleeping` was seen set and swapped to 0. */
void ma_io_notify(struct ma_executor *ex)
{
    uint64_t const one = 1;
    ssize_t const w = write(ex->wake_fd, &one, sizeof(one));
    /* EAGAIN: the counter is saturated, so a wake is pending anyway. */
    (void)w;
}
