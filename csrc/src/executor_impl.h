/* Internal: the private part of an executor, and the operations the
 * task-side entry points (attach, yield, sleep, cancel) share with the
 * run loop. */
#ifndef MONAD_ASYNC_EXECUTOR_IMPL_H
#define MONAD_ASYNC_EXECUTOR_IMPL_H

#include <monad_async/executor.h>

#include "inbox.h"
#include "list.h"
#include "task_impl.h"
#include "ticks_impl.h"

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>

struct ma_executor
{
    struct monad_async_executor_head head; /* first: the public handle */

    /* --- owner thread only --- */
    void const *owner; /* the owning thread's ma_tls_thread_token */
    bool track_time;
    bool in_run;
    bool has_ring;
    uint64_t ticks_per_second;
    struct ma_list ready[monad_async_priority_max];
    struct ma_list timers; /* sorted by deadline, FIFO among equals */
    struct io_uring ring;

    /* --- touched by other threads --- */
    struct ma_inbox attaches;
    struct ma_inbox cancels;
    /* 1 while run may be waiting in the futex; see wait.c. */
    _Alignas(64) _Atomic uint32_t sleeping;
    _Atomic uint32_t wake_pending;
    /* Set once destroy begins: later attaches get ESHUTDOWN. */
    _Atomic uint32_t closing;
    /* Other threads inside attach/cancel/wake right now. */
    _Atomic uint32_t remote_inflight;
};

static inline struct ma_executor *ma_executor_from(monad_async_executor ex)
{
    return (struct ma_executor *)ex;
}

/* The executor running on this thread (its run, or one of its tasks). */
extern __thread struct ma_executor *ma_tls_executor;

/* A per-thread address: comparing it is cheaper than pthread_self(),
 * which is a call into libc. */
extern __thread char ma_tls_thread_token;

static inline bool ma_executor_is_owner(struct ma_executor const *ex)
{
    return ex->owner == &ma_tls_thread_token;
}

static inline uint64_t ma_executor_stamp(struct ma_executor const *ex)
{
    return ex->track_time ? ma_ticks_read() : 0;
}

/* Appends a runnable task to its queue. */
static inline void ma_executor_make_ready(struct ma_executor *ex, struct ma_task *t)
{
    t->where = MA_TASK_READY;
    ma_list_push_back(&ex->ready[t->queue], &t->link);
    ex->head.tasks_runnable[t->queue]++;
}

/* Claims an unattached task: the one compare-and-swap on the task's own
 * state word that refuses a second attach (or submission), to ATTACHED |
 * PENDING_LAUNCH | `bits`. 0 with the replaced state in `*before`, or
 * EBUSY. */
int ma_task_claim(struct ma_task *t, uint32_t bits, uint32_t *before);
/* Readies a claimed task's fields for a new piece of work on `ex` (NULL:
 * on no executor, for work ended before it reached one). */
void ma_task_bind(struct ma_task *t, struct ma_executor *ex);
/* Owner thread: attaches a task that a work dispatcher claimed when it was
 * submitted (see dispatcher_queue.c), as a same-thread attach would. Keeps
 * the submission's `ticks.attached` stamp. */
void ma_executor_attach_claimed(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: links a freshly claimed task into its ready queue. */
void ma_executor_enqueue_attached(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: the same for a task popped from the attach inbox. */
void ma_executor_enqueue_from_inbox(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: applies a cancel. Returns 0, EAGAIN or ENOENT. */
int ma_executor_cancel_local(struct ma_executor *ex, struct ma_task *t);
/* Owner thread: drains both inboxes into the ready queues. */
void ma_executor_drain_inboxes(struct ma_executor *ex);
/* Owner thread: records the end of a task's work and calls its hook. */
void ma_executor_finish(struct ma_executor *ex, struct ma_task *t, uint64_t now);
/* Owner thread: moves expired sleepers to the ready queues. */
void ma_executor_fire_timers(struct ma_executor *ex, uint64_t now);

/* Waits for work until the tick deadline (UINT64_MAX: forever). */
void ma_executor_wait(struct ma_executor *ex, uint64_t deadline_ticks);
/* Wakes a waiting executor; any thread. */
void ma_executor_notify(struct ma_executor *ex);

/* io_uring set-up (ring.c). 0 or errno. */
int ma_ring_setup(struct ma_executor *ex, struct monad_async_executor_attr const *attr);
void ma_ring_teardown(struct ma_executor *ex);

#endif
