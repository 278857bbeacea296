/* Internal: the private part of a task. */
#ifndef MONAD_ASYNC_TASK_IMPL_H
#define MONAD_ASYNC_TASK_IMPL_H

#include <monad_async/task.h>
#include <monad_async/io.h>

#include "context_impl.h"
#include "inbox.h"
#include "list.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which owner-thread list a task's `link` is on. */
enum ma_task_where
{
    MA_TASK_NOWHERE = 0,
    MA_TASK_READY,  /* a ready queue: pending launch or waiting to resume */
    MA_TASK_TIMERS, /* the timer list: sleeping */
    MA_TASK_SQE_WAIT, /* an executor's queue of tasks waiting to start I/O */
    MA_TASK_IO_WAIT,  /* on no list: suspended until a completion */
    MA_TASK_BUF_WAIT, /* a buffer pool's queue of tasks waiting for one */
    MA_TASK_PARKED,   /* parked: the timer list (with a deadline), or on
                         no list (without: destroy finds it through
                         all_tasks) */
    MA_TASK_WAKE_PENDING, /* parked, then claimed by a remote wake whose
                             message is still in the wake inbox: on no
                             list */
};

struct ma_buffer_pool;

/* Layout. Tasks are 64-byte aligned (task.c). A round trip of a task
 * (ready-queue pop, switch in and out, I/O begin and complete, wake)
 * touches its public head (lines 0-1: state, priority, suspensions,
 * ticks), the owner-thread fields below it (line 2 and the first part of
 * line 3) and its context's switch fields (sw .. resumer_sp, the rest of
 * line 3). With a thousand tasks in turn none of them is still in cache
 * when it next runs, so every line a round trip touches is a miss: the
 * hot fields are packed into those four lines, and the cold ones (the
 * context's jmp_bufs and stack record, cross-thread message nodes, the
 * dispatcher's and buffer pool's bookkeeping) come after. The
 * _Static_asserts below the struct hold the grouping. */
struct ma_task
{
    struct monad_async_task_head head; /* first: the public handle */

    /* --- hot: owner-thread state of the executor it is attached to --- */
    struct ma_link link;
    enum ma_task_where where;
    monad_async_priority queue; /* ready queue chosen at attach */
    int resume_error;           /* delivered by the next resumption */
    uint32_t io_inflight;
    /* A wake resumed its parking (park.c): the park succeeds even if a
     * cancel lands before the task runs again (task.h: a wake that
     * arrived first wins); the cancel leaves resume_error alone and the
     * next suspension point says ECANCELED. Cleared at each suspension. */
    bool wake_won;
    bool exiting;               /* user_code returned, set on its stack */
    /* On its executor's deadline list (deadline.c): suspended with a
     * deadline, in a wait the list may still have to end. */
    bool deadline_armed;
    /* A slot was set aside for it when it left the slot wait queue
     * (counted in the executor's io_slots_used); it takes it when it
     * runs. */
    bool io_granted;
    /* Readied by ma_executor_make_ready_resumed and not yet back in
     * ma_io_begin_slow: it belongs ahead of its level's queue. */
    bool io_resumed;
    /* While MA_TASK_SQE_WAIT: the queue it is on, an enum ma_io_class
     * (waiting for a slot) or MA_IO_SQ_BLOCKED (waiting for the kernel to
     * take submissions); its place in line is io_wait_ticket (cold). */
    uint8_t io_wait_queue;
    /* user_code returned with operations in flight: it is recorded as
     * exited once the kernel has finished them. */
    bool io_draining;
    /* The deadline of the task's waits (task.h), ticks, 0: none. Read at
     * each suspension: next to resume_error, which it writes then. */
    uint64_t deadline;
    /* The executor's stamp when a wake readied it, for the resume-latency
     * histogram; 0: no sample pending (a yield, or no time tracking). */
    uint64_t woken_at;
    uint64_t timer_deadline;    /* ticks, while on the timer list */
    /* Parking (park.c): generation << 2 | MA_PARK_PERMIT | MA_PARK_PARKED.
     * The generation names the piece of work (bumped at each bind and at
     * each exit); the bits are that work's pending wake and whether it is
     * parked now. Whoever clears PARKED owns the task's resumption. */
    _Atomic uint64_t park_word;
    /* I/O (owner thread of its executor). Operations in flight, a
     * doubly linked list through the statuses' prev/next; completed
     * initiate-form operations not yet reaped, in completion order (the
     * tail, written only when one completes, is cold). */
    struct monad_async_io_status *io_inflight_head;
    struct monad_async_io_status *io_done_head;
    /* While MA_TASK_IO_WAIT: the status whose completion resumes it, or
     * MA_IO_WAIT_ANY for any initiate-form completion. */
    struct monad_async_io_status *io_waiting_for;

    /* The context: its switch fields (sw .. resumer_sp) come first and
     * end the hot lines; its jmp_bufs and stack record are cold. */
    struct ma_context ctx;

    /* --- cold --- */
    size_t stack_size; /* as asked for at create, for later switchers */
    /* On its executor's list of all attached tasks (for dumps, dump.c),
     * from its enqueue to its exit. */
    struct ma_link all_link;
    struct ma_link deadline_link;
    struct monad_async_io_status *io_done_tail;
    uint64_t io_wait_ticket;
    /* While MA_TASK_BUF_WAIT: the pool; the index handed over on
     * release (UINT32_MAX until then). */
    struct ma_buffer_pool *buf_pool;
    uint32_t buf_index;

    /* Told on the executor's thread once this piece of work has ended,
     * after user_on_exit; cleared before the task becomes reusable, so the
     * observer gets only `exit_observer_arg`, never the task. A work
     * dispatcher counts executed tasks with it. */
    void (*exit_observer)(void *arg);
    void *exit_observer_arg;
    /* The state a work dispatcher's claim replaced, restored if that
     * submission is rolled back. */
    uint32_t state_before_submit;

    /* Cross-thread messages to the executor. `attach_node` also links the
     * task into a work dispatcher's queue while it waits there (it is on
     * no executor's inbox then). */
    struct ma_inbox_node attach_node; /* kind MA_MSG_ATTACH */
    struct ma_inbox_node cancel_node; /* kind MA_MSG_CANCEL */
    /* A cancel request for this task's current work sits in (or is being
     * pushed to) the inbox of the executor running it; `cancel_gen` is
     * the generation (park_word) of the work it targets. The work's end
     * takes it out of that inbox before the task can be reused
     * (ma_executor_finish), so a request never outlives its work. */
    _Atomic uint32_t cancel_queued;
    uint64_t cancel_gen;

    /* Carries a remote wake to the executor's wake inbox; used by the one
     * waker that cleared PARKED, so at most once per parking. */
    struct ma_inbox_node wake_node; /* kind MA_MSG_WAKE */

    /* CPU priority changes (priority_change.c). `prio_target` is the
     * latest request: generation << 2 | priority, only ever raised to a
     * later generation. `prio_queued` is non-zero while `prio_node` sits
     * in (or is being pushed to, or withdrawn from) the inbox of the
     * executor running the work; like `cancel_queued`, the work's end
     * waits for it to clear, so a request never outlives its work. */
    _Atomic uint64_t prio_target;
    _Atomic uint32_t prio_queued;
    struct ma_inbox_node prio_node; /* kind MA_MSG_PRIORITY */
};

/* The hot grouping above (64-byte lines, 64-bit targets): the head fills
 * lines 0-1, the owner-thread fields start line 2, and the context's
 * switch fields end in line 3, so a round trip touches four lines. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct monad_async_task_head) == 128,
               "the public head is two cache lines");
_Static_assert(offsetof(struct ma_task, link) == 128,
               "the hot owner-thread fields start line 2");
_Static_assert(offsetof(struct ma_task, io_waiting_for) + sizeof(void *) <=
                   offsetof(struct ma_task, ctx),
               "the hot owner-thread fields precede the context");
_Static_assert(offsetof(struct ma_task, ctx) +
                       offsetof(struct ma_context, resumer_sp) +
                       sizeof(void *) <=
                   256,
               "the context's switch fields end within line 3");
_Static_assert(offsetof(struct ma_context, sw) == 0 &&
                   offsetof(struct ma_context, task_sp) <
                       offsetof(struct ma_context, task_jb) &&
                   offsetof(struct ma_context, resumer_sp) <
                       offsetof(struct ma_context, task_jb),
               "a context's switch fields come before its jmp_bufs");
#endif

/* `kind` of a task's inbox nodes. */
enum
{
    MA_MSG_ATTACH = 0,
    MA_MSG_CANCEL,
    MA_MSG_WAKE,
    MA_MSG_PRIORITY,
};

#define MA_PARK_PARKED 1u
#define MA_PARK_PERMIT 2u
#define MA_PARK_GEN_SHIFT 2

/* Generations: odd while a piece of work is live (from its claim to its
 * end), even between two (the task is idle, or its work is being wound
 * up), so that a request made in between names no work and is refused.
 * Each change clears the permit. Plain stores: the caller owns the task's
 * state at both points, and a stale waker's compare-and-swap either lands
 * before (its permit is then wiped) or fails and re-reads. */
static inline bool ma_task_gen_is_live(uint64_t gen)
{
    return gen & 1;
}

static inline uint64_t ma_task_gen(struct ma_task const *t)
{
    return atomic_load_explicit(&((struct ma_task *)t)->park_word,
                                memory_order_acquire) >>
           MA_PARK_GEN_SHIFT;
}

static inline void ma_task_gen_store(struct ma_task *t, uint64_t gen)
{
    atomic_store_explicit(&t->park_word, gen << MA_PARK_GEN_SHIFT,
                          memory_order_release);
}

/* A new piece of work (claim): the next odd generation. */
static inline void ma_task_gen_begin(struct ma_task *t)
{
    ma_task_gen_store(t, (ma_task_gen(t) + 1) | 1);
}

/* The end of a piece of work: the next, even, generation, stored
 * sequentially consistent (see ma_executor_finish). */
static inline void ma_task_gen_end_sc(struct ma_task *t)
{
    (void)atomic_exchange(&t->park_word, (ma_task_gen(t) + 1)
                                             << MA_PARK_GEN_SHIFT);
}

#define MA_IO_WAIT_ANY ((struct monad_async_io_status *)1)
/* ma_task.io_wait_queue of a task waiting for the kernel to take
 * submissions (the slot queues are 0 and 1, enum ma_io_class). */
#define MA_IO_SQ_BLOCKED 2

static inline struct ma_task *ma_task_from(monad_async_task t)
{
    return (struct ma_task *)t;
}

static inline struct ma_task *ma_task_from_link(struct ma_link *l)
{
    return ma_container_of(l, struct ma_task, link);
}

/* A task ready to be given work: code to run and priorities in range
 * (attach and submit say EINVAL otherwise). */
static inline bool ma_task_is_ready(monad_async_task task)
{
    return task != NULL && task->user_code != NULL &&
           (unsigned)task->priority.cpu < monad_async_priority_max &&
           (unsigned)task->priority.io < monad_async_priority_max;
}

/* Plain owner-thread state transitions: while a task is attached only its
 * executor's thread writes `state`, so a release store suffices; the
 * cancel bit is kept across them. */
static inline uint32_t ma_task_state(struct ma_task const *t)
{
    return atomic_load_explicit(
        &((struct ma_task *)t)->head.state, memory_order_relaxed);
}

static inline void ma_task_set_state(struct ma_task *t, uint32_t bits)
{
    uint32_t const keep = ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED;
    atomic_store_explicit(&t->head.state, bits | keep, memory_order_release);
}

#endif
