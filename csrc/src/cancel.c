/* Cancellation: immediate on the owner thread, through the inbox from
 * any other.
 *
 * A remote cancel names the piece of work it aims at (the task's
 * generation, odd while the work is live) and never outlives it: the end
 * of that work takes a queued request out of the inbox before the task
 * can be reused (ma_executor_finish), and a request whose work ended
 * while it was being made is withdrawn. That hand-over is a
 * store-then-load on each side (the generation, then cancel_queued, at
 * the end of work; cancel_queued, then the generation, here), with a
 * full barrier between on both sides: one of the two sees the other.
 *
 * Measured before settling on the end of work's fence (about 3 ns per
 * attach+run+exit here): membarrier(2) on this side instead costs the
 * end of work nothing, but 20 us per remote cancel on this machine and
 * an interrupt of every running thread of the process. */
#include "executor_impl.h"

#include <errno.h>
#include <sched.h>

int ma_executor_cancel_local(struct ma_executor *ex, struct ma_task *t)
{
    /* A wake deferred before this cancel happened before it. */
    ma_executor_flush_deferred(ex);
    uint32_t state = atomic_load_explicit(&t->head.state, memory_order_acquire);
    if (!(state & MONAD_ASYNC_TASK_STATE_ATTACHED) ||
        atomic_load_explicit(&t->head.current_executor, memory_order_acquire) !=
            &ex->head) {
        return ENOENT;
    }
    if (state & MONAD_ASYNC_TASK_STATE_IN_INBOX) {
        /* Attached from another thread, not yet drained. The drain may
         * end this work (a cancel queued behind its attach), and the exit
         * hook may then attach the task again, here or to another
         * executor: that later work is not the one this call names. */
        uint64_t const gen = ma_task_gen(t);
        ma_executor_drain_inboxes(ex);
        if (ma_task_gen(t) != gen) {
            return 0; /* the drain cancelled it before it launched */
        }
        state = atomic_load_explicit(&t->head.state, memory_order_acquire);
        if (state & MONAD_ASYNC_TASK_STATE_IN_INBOX) {
            /* Its push is half done: the drain that takes it cancels it
             * before it can run. */
            atomic_store_explicit(
                &t->head.state,
                state | MONAD_ASYNC_TASK_STATE_CANCELLED,
                memory_order_release);
            return 0;
        }
        if (!(state & MONAD_ASYNC_TASK_STATE_ATTACHED)) {
            return 0; /* the drain applied a queued cancel already */
        }
    }
    if (state & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH) {
        /* Never launched: unlink it and end its work right here. */
        ma_executor_unlink_ready(ex, t, t->queue);
        t->where = MA_TASK_NOWHERE;
        t->head.result = monad_async_make_failure(ECANCELED);
        ex->head.counters.cancelled++;
        ma_executor_finish(ex, t, ma_executor_stamp(ex));
        return 0;
    }
    if (!(state & MONAD_ASYNC_TASK_STATE_CANCELLED)) {
        ex->head.counters.cancelled++;
        atomic_store_explicit(
            &t->head.state,
            state | MONAD_ASYNC_TASK_STATE_CANCELLED,
            memory_order_release);
    }
    if (state & MONAD_ASYNC_TASK_STATE_SUSPENDED) {
        if (!t->wake_won) {
            /* A parking a wake has resumed keeps its success: the wake
             * arrived first (task.h). It is ready to run, on no list. */
            t->resume_error = ECANCELED;
        }
        if (t->where == MA_TASK_TIMERS) {
            ma_list_remove(&ex->timers, &t->link);
            ex->head.tasks_timed--;
            ma_executor_make_ready_woken(ex, t);
        }
        else if (t->where == MA_TASK_SQE_WAIT) {
            ma_io_cancel_sqe_wait(ex, t);
        }
        else if (t->where == MA_TASK_BUF_WAIT) {
            ma_io_cancel_buffer_wait(ex, t);
        }
        else if (t->where == MA_TASK_PARKED) {
            ma_park_cancel(ex, t);
        }
        else if (t->where == MA_TASK_IO_WAIT) {
            /* The kernel ends its operations early; it resumes when the
             * one it waits for has completed, never before: the kernel
             * may be using buffers on its stack. */
            ma_io_cancel_task_ops(ex, t);
        }
        /* A yielded task is already queued: it keeps its place. */
    }
    return EAGAIN;
}

monad_async_result
monad_async_task_cancel(monad_async_executor ex_, monad_async_task task)
{
    if (ex_ == NULL || task == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    struct ma_task *const t = ma_task_from(task);
    if (ma_executor_is_owner(ex)) {
        int const err = ma_executor_cancel_local(ex, t);
        return err ? monad_async_make_failure(err) : monad_async_make_success(0);
    }
    if (!(atomic_load_explicit(&task->state, memory_order_acquire) &
          MONAD_ASYNC_TASK_STATE_ATTACHED) ||
        atomic_load_explicit(&task->current_executor, memory_order_acquire) !=
            ex_) {
        return monad_async_make_failure(ENOENT);
    }
    atomic_fetch_add(&ex->remote_inflight, 1);
    int err = EAGAIN;
    if (atomic_load(&ex->closing)) {
        /* Destroy cancels everything anyway. */
    }
    else {
        /* The piece of work we aim at: read before the checks below, so
         * that if they pass it is this work's generation or an older one
         * (refused when drained), never a later work's. */
        uint64_t const gen =
            atomic_load(&t->park_word) >> MA_PARK_GEN_SHIFT;
        /* cancel_queued holds the low half of the generation its request
         * names (odd, so never 0): a canceller that finds it taken can
         * tell a request for its own work from one being withdrawn. */
        uint32_t const mark = (uint32_t)gen;
        for (unsigned spins = 0;; spins++) {
            uint32_t expected = 0;
            if (!ma_task_gen_is_live(gen) ||
                (atomic_load(&t->park_word) >> MA_PARK_GEN_SHIFT) != gen) {
                err = ENOENT; /* its work is being wound up, or is over */
                break;
            }
            if (atomic_compare_exchange_strong(&t->cancel_queued, &expected, mark)) {
                /* Ours to push. Its work may have ended since we looked
                 * (the executor bumps the generation, then looks at
                 * cancel_queued; we did the reverse: one of us sees the
                 * other). Ended: withdraw, so the request never outlives
                 * it. Otherwise the end of that work waits for this push
                 * and takes the request out of the inbox. */
                uint64_t const now = atomic_load(&t->park_word) >> MA_PARK_GEN_SHIFT;
                if (now != gen ||
                    !(atomic_load(&task->state) & MONAD_ASYNC_TASK_STATE_ATTACHED) ||
                    atomic_load(&task->current_executor) != ex_) {
                    atomic_store(&t->cancel_queued, 0);
                    err = ENOENT;
                }
                else {
                    t->cancel_gen = gen;
                    ma_inbox_push(&ex->inbox, &t->cancel_node);
                    ma_executor_notify(ex);
                }
                break;
            }
            if (expected == mark) {
                /* A request for this same work is queued, or being pushed
                 * (one for an earlier work is always taken out before
                 * that work's task can be attached again): it takes
                 * effect. */
                break;
            }
            /* Another thread holds the word for an earlier work of this
             * task and is withdrawing it (it found that work over): gone
             * in a few instructions, unless that thread lost its core. */
            if (spins >= 64) {
                sched_yield();
            }
        }
    }
    atomic_fetch_sub(&ex->remote_inflight, 1);
    return monad_async_make_failure(err);
}
