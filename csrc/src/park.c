/* Parking and waking: the one primitive every wait that is not I/O or a
 * timer is built on (joins, locks, channels, futures, deadlines).
 *
 * A task's `park_word` holds the generation of its current piece of work
 * and two bits: PARKED (it is suspended in park now) and PERMIT (a wake
 * is pending for its next park). Every change is a compare-and-swap on
 * that word, and whoever clears PARKED owns the task's resumption:
 *
 *   - a wake from the executor's thread makes it ready at once;
 *   - a wake from another thread pushes it to the executor's wake inbox
 *     (`wake_node`, used once per parking because only one party can
 *     clear PARKED) and wakes the executor, as a remote attach does;
 *   - its deadline (the timer list) resumes it with ETIME;
 *   - a cancel resumes it with ECANCELED.
 *
 * An owner-thread party that loses the race to a remote waker takes the
 * task off its list (so timer and destroy loops make progress) and leaves
 * it MA_TASK_WAKE_PENDING: the wake inbox resumes it. No double resume,
 * no lost wake-up: a wake that finds no PARKED leaves PERMIT, which the
 * next park consumes without suspending.
 *
 * A task that parks hands the thread straight to the next ready task
 * when the run loop has nothing else to do first (handoff.c): the task a
 * same-thread wake just readied, typically.
 *
 * A remote waker that won the task keeps its executor alive while it
 * pushes and notifies with `remote_inflight`: the executor cannot finish
 * destroying while a parked task is attached, and destroy waits for
 * `remote_inflight` to drop to zero before it frees itself. */
#include "executor_impl.h"

#include <errno.h>

static inline uint64_t ma_park_gen(uint64_t w)
{
    return w >> MA_PARK_GEN_SHIFT;
}

/* Takes a parked task off the timer list if it has a deadline (a park
 * without one is on no list: a wake, the common end of a park, has
 * nothing to unlink, and destroy finds it through `all_tasks`). */
static void ma_park_unlink(struct ma_executor *ex, struct ma_task *t)
{
    if (t->timer_deadline != UINT64_MAX) {
        ma_list_remove(&ex->timers, &t->link);
    }
    t->where = MA_TASK_NOWHERE;
}

/* Owner thread: resumes a task whose resumption we own. No deferred wake
 * may be pending (callers running inside a task apply it first): this
 * stays a leaf function. */
static inline __attribute__((always_inline)) void
ma_park_resume(struct ma_executor *ex, struct ma_task *t, int err)
{
    if (t->where == MA_TASK_PARKED) {
        ma_park_unlink(ex, t);
    }
    t->resume_error = err;
    t->wake_won = err == 0;
    ma_executor_make_ready_woken_now(ex, t);
}

/* Owner thread: clears PARKED for the timer or a cancel. True if we now
 * own the resumption; false if a remote waker got there first (the task
 * is then taken off its list and waits for the wake inbox). */
static bool ma_park_claim_local(struct ma_executor *ex, struct ma_task *t)
{
    uint64_t w = atomic_load_explicit(&t->park_word, memory_order_acquire);
    while (w & MA_PARK_PARKED) {
        if (atomic_compare_exchange_weak_explicit(
                &t->park_word, &w, w & ~(uint64_t)MA_PARK_PARKED,
                memory_order_acq_rel, memory_order_acquire)) {
            return true;
        }
    }
    if (t->where == MA_TASK_PARKED) {
        ma_park_unlink(ex, t);
        t->where = MA_TASK_WAKE_PENDING;
    }
    return false;
}

void ma_park_expire(struct ma_executor *ex, struct ma_task *t)
{
    if (ma_park_claim_local(ex, t)) {
        ma_park_resume(ex, t, ETIME);
    }
}

bool ma_park_interrupt(struct ma_executor *ex, struct ma_task *t, int err)
{
    if (t->where == MA_TASK_PARKED && ma_park_claim_local(ex, t)) {
        ma_park_resume(ex, t, err);
        return true;
    }
    return false;
}

void ma_park_cancel(struct ma_executor *ex, struct ma_task *t)
{
    (void)ma_park_interrupt(ex, t, ECANCELED);
    /* If that failed, a remote wake owns it: it resumes successfully from
     * the wake inbox, and its next suspension point reports ECANCELED. */
}

void ma_park_drain_wake(struct ma_executor *ex, struct ma_task *t)
{
    ma_park_resume(ex, t, 0);
}

monad_async_result monad_async_task_wake_token(monad_async_task task,
                                               uint64_t *token)
{
    if (task == NULL || token == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_task *const t = ma_task_from(task);
    /* Generation first, then the attached bit: if the task was attached
     * when we look at the state, the generation we read is that work's or
     * an older one (refused later), never a newer one's. */
    uint64_t const w = atomic_load_explicit(&t->park_word, memory_order_acquire);
    if (!(atomic_load_explicit(&task->state, memory_order_acquire) &
          MONAD_ASYNC_TASK_STATE_ATTACHED) ||
        !ma_task_gen_is_live(ma_park_gen(w))) {
        return monad_async_make_failure(ENOENT);
    }
    *token = ma_park_gen(w);
    return monad_async_make_success(0);
}

monad_async_result monad_async_task_current(uint64_t *token)
{
    struct ma_executor const *const ex = ma_tls_executor;
    if (ex == NULL) {
        return monad_async_make_success(0);
    }
    monad_async_task const task =
        atomic_load_explicit(&ex->head.current_task, memory_order_relaxed);
    if (task != NULL && token != NULL) {
        /* Running: attached, its generation live and only this thread
         * changes it (at the work's end). */
        *token = ma_task_gen(ma_task_from(task));
    }
    return monad_async_make_success((intptr_t)task);
}

monad_async_result monad_async_task_park(monad_async_task task, uint64_t timeout_ns)
{
    struct ma_executor *ex;
    int const err = ma_check_suspendable(task, &ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_task *const t = ma_task_from(task);
    uint64_t w = atomic_load_explicit(&t->park_word, memory_order_acquire);
    if (w & MA_PARK_PERMIT) {
        /* Only this task clears PERMIT, and no waker writes a word that
         * has it (they return at once), nor does anyone bump the
         * generation of running work: a plain store is exact. */
        atomic_store_explicit(&t->park_word, w & ~(uint64_t)MA_PARK_PERMIT,
                              memory_order_release);
        return monad_async_make_success(0);
    }
    if (timeout_ns == 0) {
        return monad_async_make_failure(ETIME);
    }
    if (timeout_ns != UINT64_MAX) {
        t->timer_deadline = ma_timer_deadline(ex, timeout_ns);
        if (t->timer_deadline == UINT64_MAX) {
            t->timer_deadline = UINT64_MAX - 1; /* still "has a deadline" */
        }
        ma_timer_insert(ex, t);
    }
    else {
        t->timer_deadline = UINT64_MAX; /* on no list */
    }
    t->where = MA_TASK_PARKED;
    /* Publish PARKED; a remote waker may have left PERMIT meanwhile. */
    while (!atomic_compare_exchange_weak_explicit(
        &t->park_word, &w, w | MA_PARK_PARKED, memory_order_acq_rel,
        memory_order_acquire)) {
        if (w & MA_PARK_PERMIT) {
            ma_park_unlink(ex, t);
            atomic_store_explicit(&t->park_word, w & ~(uint64_t)MA_PARK_PERMIT,
                                  memory_order_release);
            return monad_async_make_success(0);
        }
    }
    /* Tail calls, as before the deferred wake existed: a call here costs
     * the park/wake ping-pong a tenth of its wall time (the return stack
     * mispredicts across the switch), and a debugger rebuilds this frame
     * from the call-site information (gdb_view). */
    if (__builtin_expect(ex->deferred_wake != NULL, 0)) {
        return ma_task_suspend_deferred(ex, t);
    }
    return ma_task_suspend_handoff(ex, t);
}

monad_async_result monad_async_task_wake(monad_async_task task, uint64_t token)
{
    if (task == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_task *const t = ma_task_from(task);
    if (!ma_task_gen_is_live(token)) {
        return monad_async_make_failure(ESRCH); /* names no work */
    }
    int const claimed = ma_park_claim_wake(t, token);
    if (claimed <= 0) {
        return claimed == 0 ? monad_async_make_success(0)
                            : monad_async_make_failure(ESRCH);
    }
    /* Parked means attached: its executor is alive and stays so until the
     * task resumes, which only we can now bring about. */
    struct ma_executor *const ex = ma_executor_from(
        atomic_load_explicit(&task->current_executor, memory_order_acquire));
    if (ma_executor_is_owner(ex)) {
        ma_executor_flush_deferred(ex); /* it was woken first */
        ma_park_resume(ex, t, 0);
        return monad_async_make_success(1);
    }
    atomic_fetch_add(&ex->remote_inflight, 1);
    ma_inbox_push(&ex->inbox, &t->wake_node);
    ma_executor_notify(ex);
    atomic_fetch_sub(&ex->remote_inflight, 1);
    return monad_async_make_success(1);
}

/* Deferred wakes. A wake from a task of the woken task's own executor
 * cannot let the woken task run before the waker suspends, so it may be
 * applied as late as that: the executor keeps it (one at a time) and
 * applies it before anything else is made ready or cancelled (so the
 * woken task keeps its place in line, and a cancel that follows the wake
 * finds it woken), and when the waker's slice ends. Until then the woken
 * task is still parked, PARKED set: nothing but this thread can claim it
 * meanwhile except a remote wake or a remote cancel, which reach the
 * executor through its inbox (drained only between slices, after the
 * flush), or claim the park word first, in which case the deferred wake
 * finds it taken and leaves a permit, as it would have a moment later.
 *
 * What it saves: when the waker parks next (a channel's receiver woken by
 * a send, the sender then waiting for the reply) and the woken task would
 * be the next to run, the park switches straight to it, without the
 * ready-queue push and pop and the hand-off's second search
 * (handoff.c). */

void ma_park_flush_deferred(struct ma_executor *ex)
{
    struct ma_task *const t = ex->deferred_wake;
    ex->deferred_wake = NULL; /* before the resume: it readies a task */
    if (ma_park_claim_wake(t, ex->deferred_token) > 0) {
        ma_park_resume(ex, t, 0);
    }
}

/* An earlier deferred wake is pending: it goes first. */
static __attribute__((noinline)) monad_async_result
ma_park_defer_again(struct ma_executor *ex, struct ma_task *t, uint64_t token)
{
    ma_park_flush_deferred(ex);
    ex->deferred_wake = t;
    ex->deferred_token = token;
    return monad_async_make_success(2);
}

monad_async_result monad_async_task_wake_deferred(monad_async_task task,
                                                  uint64_t token)
{
    /* The executor running here first: the arguments are all that must
     * survive the thread-local access. */
    struct ma_executor *const ex = ma_tls_executor;
    if (task == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_task *const t = ma_task_from(task);
    uint64_t const w = atomic_load_explicit(&t->park_word, memory_order_acquire);
    /* Deferred only when the task is parked with that work (PARKED never
     * comes with PERMIT, and a parked task's generation is live, so one
     * comparison says both) on the executor running here, and one of that
     * executor's tasks, not the woken one, is running: its slice's end
     * applies the wake. Anything else is an ordinary wake, now (which
     * also refuses a stale token). */
    if (ex != NULL && w == ((token << MA_PARK_GEN_SHIFT) | MA_PARK_PARKED) &&
        (w >> MA_PARK_GEN_SHIFT) == token &&
        atomic_load_explicit(&task->current_executor, memory_order_relaxed) ==
            &ex->head) {
        monad_async_task const running =
            atomic_load_explicit(&ex->head.current_task, memory_order_relaxed);
        if (running != NULL && running != task) {
            if (__builtin_expect(ex->deferred_wake != NULL, 0)) {
                return ma_park_defer_again(ex, t, token);
            }
            ex->deferred_wake = t;
            ex->deferred_token = token;
            return monad_async_make_success(2);
        }
    }
    return monad_async_task_wake(task, token);
}
