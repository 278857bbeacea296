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

/* After the kernel refused a submission: EBUSY (kernels before 5.19 or
 * so refuse while completions wait in their overflow list) is cured by
 * reaping, which flushes that list; EAGAIN (no memory for requests right
 * now) may be. Reaps, then submits once more: -errno if the kernel still
 * takes nothing. */
static int ma_io_resubmit(struct ma_executor *ex, int ret)
{
    if (ret >= 0 || io_uring_sq_ready(&ex->ring) == 0) {
        return ret;
    }
    ma_io_reap_cqes(ex);
    return ma_io_submit(ex);
}

/* The tasks the pass's completions and submissions let go on. The
 * queues are nearly always empty: checked here, inline, first. */
static inline __attribute__((always_inline)) void
ma_io_after_pass(struct ma_executor *ex)
{
    ma_io_reap_cqes(ex);
    if (__builtin_expect(ex->io_sq_blocked.head != NULL, 0)) {
        ma_io_wake_sq_blocked(ex);
    }
    if (__builtin_expect(ex->io_waiters_count != 0, 0)) {
        ma_io_grant_waiters(ex);
    }
}

void ma_io_pump(struct ma_executor *ex)
{
    ex->slices_since_pump = 0;
    int const ret = io_uring_submit_and_get_events(&ex->ring);
    ex->head.io.enters++;
    /* The tasks this pass completes were woken now (the resume-latency
     * histogram), and the next slice starts now (run.c). */
    if (ex->track_time) {
        ex->last_stamp = ma_ticks_read();
    }
    if (__builtin_expect(ret < 0, 0)) {
        /* EINTR: nothing was taken, try again; EBUSY, EAGAIN: reap, then
         * try again. Still refused: the SQEs stay queued and the tasks
         * waiting for the kernel stay waiting; the next pass tries
         * again. */
        (void)ma_io_resubmit(ex, ret == -EINTR ? ma_io_submit(ex) : ret);
    }
    ma_io_after_pass(ex);
}

/* How long a wait that a wake cannot end may last: the wake read is not
 * armed, or not submitted, because the kernel refused the queue it is in
 * (EBUSY, EAGAIN). The run loop then retries at this pace, never
 * spinning. */
#define MA_IO_REFUSED_WAIT_NS 1000000ull

void ma_io_wait(struct ma_executor *ex, uint64_t deadline_ticks)
{
    if (!ex->wake_armed) {
        ma_io_arm_wake(ex);
    }
    atomic_store(&ex->sleeping, MA_SLEEP_RING);
    if (!ma_executor_inboxes_empty(ex) || atomic_load(&ex->wake_pending)) {
        atomic_store(&ex->sleeping, 0);
        return;
    }
    uint64_t ns = UINT64_MAX;
    if (deadline_ticks != UINT64_MAX) {
        uint64_t const now = ma_ticks_read();
        uint64_t const left = deadline_ticks > now ? deadline_ticks - now : 0;
        /* Round up a microsecond, as the futex wait does: never wake a
         * hair early and spin. */
        ns = ma_ticks_to_ns(left, ex->ticks_per_second) + 1000;
    }
    if (!ex->wake_armed && ns > MA_IO_REFUSED_WAIT_NS) {
        ns = MA_IO_REFUSED_WAIT_NS;
    }
    struct __kernel_timespec ts;
    struct __kernel_timespec *tsp = NULL;
    if (ns != UINT64_MAX) {
        ts.tv_sec = (long long)(ns / 1000000000ull);
        ts.tv_nsec = (long long)(ns % 1000000000ull);
        tsp = &ts;
    }
    struct io_uring_cqe *cqe;
    int ret = io_uring_submit_and_wait_timeout(&ex->ring, &cqe, 1, tsp, NULL);
    ex->head.io.enters++;
    if ((ret == -EBUSY || ret == -EAGAIN || ret == -EINTR) &&
        io_uring_sq_ready(&ex->ring) != 0) {
        /* The kernel refused the submission, so it did not wait either
         * (io_uring_enter skips the wait when the submission falls
         * short). Reap and submit again; if it still refuses, wait
         * without submitting, a millisecond at most (the wake read may be
         * among the refused entries), so that the run loop retries soon
         * without spinning. */
        if (ma_io_resubmit(ex, ret) < 0) {
            if (ns > MA_IO_REFUSED_WAIT_NS) {
                ns = MA_IO_REFUSED_WAIT_NS;
            }
            ts.tv_sec = 0;
            ts.tv_nsec = (long long)ns;
            (void)io_uring_wait_cqe_timeout(&ex->ring, &cqe, &ts);
            ex->head.io.enters++;
        }
    }
    atomic_store(&ex->sleeping, 0);
    ex->slices_since_pump = 0;
    if (ex->track_time) {
        ex->last_stamp = ma_ticks_read(); /* the completions' wake time */
    }
    ma_io_after_pass(ex);
}

/* Any thread. Called after `sleeping` was seen set and swapped to 0. */
void ma_io_notify(struct ma_executor *ex)
{
    uint64_t const one = 1;
    ssize_t const w = write(ex->wake_fd, &one, sizeof(one));
    /* EAGAIN: the counter is saturated, so a wake is pending anyway. */
    (void)w;
}
