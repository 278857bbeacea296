/* Multishot accept: one IORING_ACCEPT_MULTISHOT request per listening
 * socket posts every accepted fd; the acceptor queues them for a task.
 *
 * The request belongs to the acceptor, not to a task: a task arms it from
 * inside monad_async_io_acceptor_accept (ma_io_begin: a slot of the
 * in-flight guard, a submission entry) and may exit while it stays armed.
 * So its status is on no task's lists, counts in no task's I/O (nor in
 * io_inflight_above: a request armed for hours must not make every
 * lower-priority slice pump the ring), and its completions come here
 * (ma_io_complete sees MA_IO_ST_MULTISHOT), keeping the slot while the
 * kernel says IORING_CQE_F_MORE.
 *
 * The waiting task parks (park.c) with a wake token: cancellation and
 * deadlines come with the park, and a completion wakes it by token, so a
 * wake can never reach other work. Arming happens only in the task's
 * accept, when nothing is queued: the kernel ending the request (CQ
 * overflow, an error), or the acceptor pausing it at `capacity` queued
 * fds (backpressure: connections wait in the listen backlog), is cured by
 * the next accept that finds the queue empty. */
#include "io_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ma_acceptor
{
    struct monad_async_io_acceptor_head head; /* first: the handle */
    struct ma_executor *ex;
    struct ma_link link; /* on ex->acceptors */
    struct monad_async_io_status st; /* the multishot request's */
    int *fds;       /* a ring of `fds_cap` (a power of two) */
    unsigned fds_cap;
    unsigned fds_head; /* index of the oldest */
    int error;         /* the kernel's, for the next accept */
    bool in_accept;    /* a task is inside accept */
    bool cancel_sent;  /* the armed request was asked to end */
    bool destroyed;    /* freed at the request's last completion */
    struct ma_task *waiter; /* parked in accept, or NULL */
    uint64_t waiter_token;
};

#define MA_ACCEPTOR_MAX_CAPACITY 65536u

static inline struct ma_acceptor *ma_acceptor_from(monad_async_io_acceptor a)
{
    return (struct ma_acceptor *)a;
}

/* Appends `fd`; grows the ring (doubling) when full: false if that
 * fails. Growth happens only while a pause asked of the kernel is on its
 * way, or in a burst a CQ's worth long, so it is rare. */
static bool ma_acceptor_push(struct ma_acceptor *a, int fd)
{
    if (a->head.queued == a->fds_cap) {
        unsigned const cap = a->fds_cap * 2;
        int *const fds = malloc(sizeof(int) * cap);
        if (fds == NULL) {
            return false;
        }
        for (unsigned i = 0; i < a->head.queued; i++) {
            fds[i] = a->fds[(a->fds_head + i) & (a->fds_cap - 1)];
        }
        free(a->fds);
        a->fds = fds;
        a->fds_cap = cap;
        a->fds_head = 0;
    }
    a->fds[(a->fds_head + a->head.queued) & (a->fds_cap - 1)] = fd;
    a->head.queued++;
    return true;
}

static int ma_acceptor_pop(struct ma_acceptor *a)
{
    int const fd = a->fds[a->fds_head];
    a->fds_head = (a->fds_head + 1) & (a->fds_cap - 1);
    a->head.queued--;
    return fd;
}

static void ma_acceptor_close_queued(struct ma_acceptor *a)
{
    while (a->head.queued != 0) {
        (void)close(ma_acceptor_pop(a));
    }
}

static void ma_acceptor_free(struct ma_acceptor *a)
{
    ma_acceptor_close_queued(a);
    ma_list_remove(&a->ex->acceptors, &a->link);
    free(a->fds);
    free(a);
}

/* Asks the kernel to end the armed request (it completes with ECANCELED
 * and no F_MORE). If no submission entry can be had now, the next
 * completion or the executor's destroy asks again. */
static void ma_acceptor_stop(struct ma_executor *ex, struct ma_acceptor *a)
{
    if (!a->head.armed || a->cancel_sent) {
        return;
    }
    struct io_uring_sqe *const sqe = ma_io_internal_sqe(ex);
    if (sqe == NULL) {
        return;
    }
    io_uring_prep_cancel64(sqe, a->st.user_data, 0);
    io_uring_sqe_set_data64(sqe, MA_UD_CANCEL);
    a->cancel_sent = true;
    ex->head.io.cancels++;
}

void ma_io_multishot_cqe(struct ma_executor *ex,
                         struct monad_async_io_status *st, int res,
                         uint32_t flags)
{
    struct ma_acceptor *const a = ma_container_of(st, struct ma_acceptor, st);
    bool const more = (flags & IORING_CQE_F_MORE) != 0;
    if (res >= 0) {
        a->head.accepted++;
        if (a->destroyed) {
            (void)close(res);
        }
        else if (!ma_acceptor_push(a, res)) {
            /* No memory to keep it: the connection is lost, and the next
             * accept says so. */
            (void)close(res);
            a->error = ENOMEM;
        }
    }
    else if (-res == ECANCELED && a->cancel_sent) {
        /* Our own pause, destroy or shutdown. */
    }
    else if (-res == EINVAL && a->head.accepted == 0 && a->head.multishot) {
        /* A kernel without multishot accept refuses the flag: accept one
         * at a time from now on (a socket that does not listen gets its
         * EINVAL from that accept). */
        a->head.multishot = 0;
    }
    else {
        a->error = -res;
    }
    if (more && a->head.queued >= a->head.capacity && !a->destroyed) {
        ma_acceptor_stop(ex, a);
    }
    if (!more) {
        a->head.armed = 0;
        a->cancel_sent = false;
        st->state = MONAD_ASYNC_IO_STATE_IDLE;
        if (a->destroyed) {
            ma_acceptor_free(a);
            return;
        }
    }
    struct ma_task *const w = a->waiter;
    if (w != NULL) {
        a->waiter = NULL;
        /* Cannot fail: the token is the parked work's own. */
        monad_async_result const r =
            monad_async_task_wake(&w->head, a->waiter_token);
        (void)r;
    }
}

/* Makes the multishot request (inside `task`'s accept): 0 or an errno. */
static int ma_acceptor_arm(struct ma_acceptor *a, monad_async_task task)
{
    struct ma_io_op op;
    int const err = ma_io_begin(&op, task, &a->st, MA_IO_WAITS);
    if (err != 0) {
        return err;
    }
    io_uring_prep_multishot_accept(op.sqe, a->head.fd, NULL, NULL, a->head.flags);
    struct monad_async_io_status *const st = &a->st;
    uint64_t const ud = ma_io_slot_take(op.ex, st);
    io_uring_sqe_set_data64(op.sqe, ud);
    st->user_data = ud;
    st->task = NULL; /* no task's: see the top of this file */
    st->state = MONAD_ASYNC_IO_STATE_IN_FLIGHT;
    st->flags = MA_IO_ST_MULTISHOT;
    st->result = monad_async_make_success(0);
    st->cqe_flags = 0;
    st->prev = st->next = NULL;
    op.ex->head.io.submitted++;
    op.ex->head.io.in_flight++;
    a->head.armed = 1;
    a->head.arms++;
    a->cancel_sent = false;
    return 0;
}

monad_async_result monad_async_io_acceptor_create(monad_async_io_acceptor *acc,
                                                  monad_async_executor ex_,
                                                  int fd, int flags,
                                                  unsigned capacity)
{
    if (acc == NULL || ex_ == NULL || fd < 0 ||
        (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) != 0 || capacity == 0 ||
        capacity > MA_ACCEPTOR_MAX_CAPACITY) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    int const err = ma_io_check_setup(ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_acceptor *const a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return monad_async_make_failure(ENOMEM);
    }
    /* Room for the capacity and a CQ's burst beyond it without growing. */
    unsigned cap = 16;
    while (cap < capacity * 2) {
        cap *= 2;
    }
    a->fds = malloc(sizeof(int) * cap);
    if (a->fds == NULL) {
        free(a);
        return monad_async_make_failure(ENOMEM);
    }
    a->fds_cap = cap;
    a->ex = ex;
    a->head.executor = ex_;
    a->head.fd = fd;
    a->head.flags = flags;
    a->head.capacity = capacity;
    a->head.multishot = 1;
    ma_list_push_back(&ex->acceptors, &a->link);
    *acc = &a->head;
    return monad_async_make_success(0);
}

monad_async_result monad_async_io_acceptor_accept(monad_async_task task,
                                                  monad_async_io_acceptor acc)
{
    struct ma_executor *ex;
    int err = acc == NULL ? EINVAL : ma_check_suspendable(task, &ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_acceptor *const a = ma_acceptor_from(acc);
    if (a->ex != ex) {
        return monad_async_make_failure(EINVAL);
    }
    if (!ex->has_ring) {
        return monad_async_make_failure(ENOTSUP);
    }
    if (a->in_accept) {
        return monad_async_make_failure(EBUSY);
    }
    struct ma_task *const t = ma_task_from(task);
    a->in_accept = true;
    monad_async_result r;
    for (;;) {
        if (ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED) {
            r = monad_async_make_failure(ECANCELED);
            break;
        }
        if (a->head.queued != 0) {
            r = monad_async_make_success(ma_acceptor_pop(a));
            break;
        }
        if (a->error != 0) {
            r = monad_async_make_failure(a->error);
            a->error = 0;
            break;
        }
        if (!a->head.multishot && !a->head.armed) {
            r = monad_async_io_accept(task, NULL, a->head.fd, NULL, NULL,
                                      a->head.flags);
            break;
        }
        if (!a->head.armed) {
            err = ma_acceptor_arm(a, task);
            if (err != 0) {
                r = monad_async_make_failure(err);
                break;
            }
        }
        uint64_t token;
        r = monad_async_task_wake_token(task, &token);
        if (r.error != 0) {
            break;
        }
        a->waiter = t;
        a->waiter_token = token;
        r = monad_async_task_park(task, UINT64_MAX);
        a->waiter = NULL;
        if (r.error != 0) {
            break; /* ECANCELED, ETIMEDOUT */
        }
    }
    a->in_accept = false;
    return r;
}

monad_async_result monad_async_io_acceptor_destroy(monad_async_io_acceptor acc)
{
    if (acc == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_acceptor *const a = ma_acceptor_from(acc);
    if (!ma_executor_is_owner(a->ex)) {
        return monad_async_make_failure(EPERM);
    }
    if (a->in_accept) {
        return monad_async_make_failure(EBUSY);
    }
    if (a->head.armed) {
        /* The kernel may still post fds into it: closed as they come,
         * freed with the last completion. */
        ma_acceptor_close_queued(a);
        a->destroyed = true;
        ma_acceptor_stop(a->ex, a);
        return monad_async_make_success(0);
    }
    ma_acceptor_free(a);
    return monad_async_make_success(0);
}

bool ma_io_acceptors_cancel(struct ma_executor *ex)
{
    bool armed = false;
    for (struct ma_link *l = ex->acceptors.head; l != NULL; l = l->next) {
        struct ma_acceptor *const a = ma_container_of(l, struct ma_acceptor, link);
        if (a->head.armed) {
            ma_acceptor_stop(ex, a);
            armed = true;
        }
    }
    return armed;
}

void ma_io_free_acceptors(struct ma_executor *ex)
{
    while (ex->acceptors.head != NULL) {
        ma_acceptor_free(
            ma_container_of(ex->acceptors.head, struct ma_acceptor, link));
    }
}
