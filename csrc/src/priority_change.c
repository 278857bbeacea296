/* Changing the CPU priority of attached work, from any thread: what a
 * lock needs for priority inheritance (a Low task holding a lock a High
 * task waits for runs at High until it releases it).
 *
 * The request. `prio_target` holds the latest request for the task:
 * generation << 2 | priority. It only moves to the same or a later
 * generation, and only a generation that was live when its caller looked,
 * so it never runs ahead of the task's work. Whoever applies it checks
 * that its generation is the work's: a request for work that is over is
 * dropped, never applied to later work.
 *
 * Where it is applied, always on the executor's thread:
 *   - by the caller itself, on that thread, at once;
 *   - from the executor's inbox (`prio_node`, kind MA_MSG_PRIORITY) for a
 *     caller on another thread: before the executor's next slice;
 *   - by the executor taking the task from its inbox (a remote attach) or
 *     from a work dispatcher, when the change was made on its way there
 *     (ma_priority_take_pending).
 *
 * One node per task, so requests coalesce: `prio_queued` says the node is
 * taken. A changer stores its request first, then tries to take the node;
 * if it is taken, the holder delivers the request: the drain clears
 * `prio_queued`, then reads `prio_target` (both sequentially consistent),
 * so it sees every request whose maker found the node taken; a holder
 * that lets the node go without pushing it looks at `prio_target` again
 * afterwards, for the same reason.
 *
 * Lifetimes, as for a remote cancel (cancel.c): holding `prio_queued`
 * and then seeing the work live means the executor cannot finish that
 * work (ma_executor_finish waits for `prio_queued` to clear, draining its
 * inbox), so it is alive while we push; `remote_inflight` covers the
 * notify after the push, which destroy waits out. The caller keeps the
 * task alive for the call.
 *
 * Applying: the task's `queue` (and its public `priority.cpu`) change;
 * a task on a ready queue moves to the back of the new level's queue;
 * anywhere else (running, sleeping, parked, waiting for I/O) nothing
 * moves and the new level applies when it is next made ready. The
 * per-level counts of I/O in flight (io_inflight_above) follow its
 * operations to the new level. */
#include "executor_impl.h"
#include "io_impl.h"

#include <errno.h>
#include <sched.h>

#define MA_PRIO_BITS 2u
#define MA_PRIO_MASK 3u

_Static_assert(monad_async_priority_max <= (1 << MA_PRIO_BITS),
               "a priority fits in the request's low bits");

static inline uint64_t ma_prio_word_gen(uint64_t w)
{
    return w >> MA_PRIO_BITS;
}

/* The work's generation, sequentially consistent (the handshakes above). */
static inline uint64_t ma_prio_live_gen(struct ma_task *t)
{
    return atomic_load(&t->park_word) >> MA_PARK_GEN_SHIFT;
}

/* Operations of `t` counted in its executor's io_inflight_above: those
 * it started and not yet seen complete. */
static uint32_t ma_prio_io_counted(struct ma_task const *t)
{
    uint32_t n = t->io_inflight; /* the initiated ones */
    struct monad_async_io_status const *const w = t->io_waiting_for;
    if (w != NULL && w != MA_IO_WAIT_ANY && (w->flags & MA_IO_ST_BLOCKING)) {
        n++; /* the blocking one it is suspended on */
    }
    return n;
}

/* Owner thread: `t`'s live work, attached to `ex` and out of any inbox,
 * now runs at `p`. */
static void ma_prio_apply(struct ma_executor *ex, struct ma_task *t,
                          monad_async_priority p)
{
    monad_async_priority const old = t->queue;
    t->head.priority.cpu = p;
    if (old == p) {
        return; /* a same-level change keeps its place in line */
    }
    t->queue = p;
    if (t->where == MA_TASK_READY) {
        ma_executor_unlink_ready(ex, t, old);
        ma_executor_make_ready(ex, t);
    }
    uint32_t const n = ma_prio_io_counted(t);
    if (n != 0) {
        ma_io_prio_count(ex, old, (uint32_t)-n);
        ma_io_prio_count(ex, p, n);
    }
}

void ma_priority_drain(struct ma_executor *ex, struct ma_task *t)
{
    /* Release the node first, then read the request: a changer that found
     * the node taken stored its request before looking. */
    atomic_store(&t->prio_queued, 0);
    uint64_t const w = atomic_load(&t->prio_target);
    uint64_t const gen = ma_task_gen(t);
    /* Pushed for live work out of the inbox, on this executor; that work
     * cannot have ended while the node was queued (its end waits for
     * it), so a generation that matches is that work. */
    if (ma_task_gen_is_live(gen) && ma_prio_word_gen(w) == gen) {
        ma_prio_apply(ex, t, (monad_async_priority)(w & MA_PRIO_MASK));
    }
}

void ma_priority_take_pending(struct ma_task *t)
{
    uint64_t const w = atomic_load(&t->prio_target);
    if (ma_prio_word_gen(w) == ma_task_gen(t)) {
        /* Not on any list yet: only the fields change. */
        t->queue = (monad_async_priority)(w & MA_PRIO_MASK);
        t->head.priority.cpu = t->queue;
    }
}

/* Records `token`'s request for `p`, unless a later work's request is
 * there already. False: the token is stale. */
static bool ma_prio_store(struct ma_task *t, uint64_t token,
                          monad_async_priority p)
{
    uint64_t const want = token << MA_PRIO_BITS | (uint64_t)p;
    uint64_t cur = atomic_load(&t->prio_target);
    do {
        if (ma_prio_word_gen(cur) > token) {
            return false;
        }
    } while (!atomic_compare_exchange_weak(&t->prio_target, &cur, want));
    return true;
}

static inline void ma_prio_relax(unsigned spins)
{
    if (spins >= 64) {
        sched_yield();
    }
#if defined(__x86_64__)
    else {
        __builtin_ia32_pause();
    }
#endif
}

/* Any thread, after storing a request: makes sure the executor running
 * the work gets it (module comment). */
static void ma_prio_post(struct ma_task *t)
{
    uint32_t const elsewhere =
        MONAD_ASYNC_TASK_STATE_IN_INBOX | MONAD_ASYNC_TASK_STATE_QUEUED;
    uint64_t applied = UINT64_MAX; /* the request we applied ourselves */
    for (;;) {
        uint32_t expected = 0;
        if (!atomic_compare_exchange_strong(&t->prio_queued, &expected, 1)) {
            return; /* its holder delivers our request */
        }
        uint64_t const w = atomic_load(&t->prio_target);
        uint64_t const gen = ma_prio_live_gen(t);
        uint32_t state = atomic_load(&t->head.state);
        if (ma_task_gen_is_live(gen) && ma_prio_word_gen(w) == gen &&
            w != applied && (state & MONAD_ASYNC_TASK_STATE_ATTACHED) &&
            !(state & elsewhere)) {
            /* The work is live and on an executor's queues (a task still
             * in an inbox or a dispatcher's queue takes the request on
             * its way out). Its executor: an attach on the owner thread
             * claims the task a few instructions before it names the
             * executor. */
            monad_async_executor exh;
            for (unsigned spins = 0;
                 (exh = atomic_load(&t->head.current_executor)) == NULL;
                 spins++) {
                state = atomic_load(&t->head.state);
                if (!(state & MONAD_ASYNC_TASK_STATE_ATTACHED)) {
                    break; /* that attach failed */
                }
                ma_prio_relax(spins);
            }
            if (exh != NULL) {
                struct ma_executor *const ex = ma_executor_from(exh);
                if (ma_executor_is_owner(ex)) {
                    /* Its thread, outside its run (or in a run of another
                     * executor): apply it ourselves. */
                    ma_prio_apply(ex, t, (monad_async_priority)(w & MA_PRIO_MASK));
                    applied = w;
                }
                else {
                    atomic_fetch_add(&ex->remote_inflight, 1);
                    ma_inbox_push(&ex->inbox, &t->prio_node);
                    ma_executor_notify(ex);
                    atomic_fetch_sub(&ex->remote_inflight, 1);
                    return; /* the drain releases the node */
                }
            }
        }
        atomic_store(&t->prio_queued, 0);
        /* A changer that found the node taken while we held it relies on
         * us: deliver its request if it is one we have not. */
        uint64_t const w2 = atomic_load(&t->prio_target);
        uint64_t const gen2 = ma_prio_live_gen(t);
        uint32_t const state2 = atomic_load(&t->head.state);
        if (!ma_task_gen_is_live(gen2) || ma_prio_word_gen(w2) != gen2 ||
            w2 == applied || !(state2 & MONAD_ASYNC_TASK_STATE_ATTACHED) ||
            (state2 & elsewhere)) {
            return;
        }
    }
}

monad_async_result monad_async_task_set_cpu_priority(
    monad_async_task task, uint64_t token, monad_async_priority priority)
{
    if (task == NULL || (unsigned)priority >= monad_async_priority_max) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_task *const t = ma_task_from(task);
    /* Checked before the request is stored, so that a stored request never
     * names work later than the task's (a wrong token cannot block the
     * requests of the work that follows). */
    if (!ma_task_gen_is_live(token) || ma_prio_live_gen(t) != token) {
        return monad_async_make_failure(ENOENT);
    }
    struct ma_executor *const here = ma_tls_executor;
    if (here != NULL &&
        atomic_load_explicit(&task->current_executor, memory_order_acquire) ==
            &here->head) {
        /* Inside a run of the task's executor (in one of its tasks, or the
         * task itself): the work cannot change under us, apply it now. A
         * task still in our inbox from a remote attach takes the request
         * when it is drained. */
        uint32_t const state =
            atomic_load_explicit(&task->state, memory_order_acquire);
        if (!(state & MONAD_ASYNC_TASK_STATE_ATTACHED) || ma_task_gen(t) != token ||
            !ma_prio_store(t, token, priority)) {
            return monad_async_make_failure(ENOENT);
        }
        if (!(state & MONAD_ASYNC_TASK_STATE_IN_INBOX)) {
            ma_prio_apply(here, t, priority);
        }
        return monad_async_make_success(0);
    }
    if (!ma_prio_store(t, token, priority)) {
        return monad_async_make_failure(ENOENT);
    }
    /* Still the same work after the store: the request was made while it
     * was live (if it ends now, the request is dropped with it). */
    if (ma_prio_live_gen(t) != token ||
        !(atomic_load(&task->state) & MONAD_ASYNC_TASK_STATE_ATTACHED)) {
        return monad_async_make_failure(ENOENT);
    }
    ma_prio_post(t);
    return monad_async_make_success(0);
}
