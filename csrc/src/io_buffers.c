/* Registered buffers: one registration per ring (the kernel's rule),
 * either a caller's array of iovecs or a pool of buffers the library
 * allocates and hands out with claim and release. A task that finds the
 * pool empty waits in the pool's FIFO queue; release hands the buffer
 * straight to the first waiter, so a buffer never sits free while a task
 * waits for one. */
#include "io_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

struct ma_buffer_pool
{
    struct monad_async_io_buffer_pool_head head; /* first: the handle */
    struct ma_executor *ex;
    struct ma_link link;     /* on ex->buffer_pools */
    unsigned char *base;     /* count * buffer_size bytes, mmapped */
    size_t mapped;
    uint32_t *free_stack;    /* indices of free buffers */
    unsigned char *claimed;  /* per buffer: 1 while claimed */
    struct ma_list waiters;  /* tasks, FIFO */
};

static inline struct ma_buffer_pool *ma_pool_from(monad_async_io_buffer_pool p)
{
    return (struct ma_buffer_pool *)p;
}

/* A pool and what it holds; any part may be missing (a create that
 * failed half way). Unregistering its buffers is the caller's part. */
static void ma_pool_free(struct ma_buffer_pool *p)
{
    if (p->base != NULL) {
        munmap(p->base, p->mapped);
    }
    free(p->free_stack);
    free(p->claimed);
    free(p);
}

/* Registering needs what every ring setup call needs, and no buffers
 * registered yet: the kernel takes one registration per ring. */
static int ma_buffers_check_register(struct ma_executor const *ex)
{
    int const err = ma_io_check_setup(ex);
    if (err != 0) {
        return err;
    }
    return ex->has_buffers ? EBUSY : 0;
}

monad_async_result monad_async_io_buffers_register(monad_async_executor ex_,
                                                   struct iovec const *iov,
                                                   unsigned count)
{
    if (ex_ == NULL || iov == NULL || count == 0) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    int const err = ma_buffers_check_register(ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    int const ret = io_uring_register_buffers(&ex->ring, iov, count);
    if (ret < 0) {
        return monad_async_make_failure(-ret);
    }
    ex->has_buffers = true;
    return monad_async_make_success(0);
}

monad_async_result monad_async_io_buffers_unregister(monad_async_executor ex_)
{
    if (ex_ == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    int err = ma_io_check_setup(ex);
    if (err == 0 && !ex->has_buffers) {
        err = ENOENT;
    }
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    int const ret = io_uring_unregister_buffers(&ex->ring);
    if (ret < 0) {
        return monad_async_make_failure(-ret);
    }
    ex->has_buffers = false;
    return monad_async_make_success(0);
}

monad_async_result monad_async_io_buffer_pool_create(
    monad_async_io_buffer_pool *out, monad_async_executor ex_,
    size_t buffer_size, unsigned count)
{
    if (out == NULL || ex_ == NULL || buffer_size == 0 || count == 0 ||
        count > 16384) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    int err = ma_buffers_check_register(ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    size_t const page = (size_t)sysconf(_SC_PAGESIZE);
    if (buffer_size > SIZE_MAX / 2 / count) {
        return monad_async_make_failure(EINVAL);
    }
    /* Page-aligned buffers suit O_DIRECT and pin whole pages. */
    size_t const size = (buffer_size + page - 1) & ~(page - 1);
    struct ma_buffer_pool *const p = calloc(1, sizeof(*p));
    struct iovec *const iov = calloc(count, sizeof(*iov));
    if (p != NULL) {
        p->free_stack = calloc(count, sizeof(*p->free_stack));
        p->claimed = calloc(count, 1);
    }
    if (p == NULL || iov == NULL || p->free_stack == NULL || p->claimed == NULL) {
        err = ENOMEM;
        goto fail;
    }
    p->mapped = size * count;
    p->base = ma_io_map_pages(p->mapped);
    if (p->base == NULL) {
        err = errno;
        goto fail;
    }
    for (unsigned i = 0; i < count; i++) {
        iov[i].iov_base = p->base + (size_t)i * size;
        iov[i].iov_len = size;
        /* Hand out low indices first. */
        p->free_stack[i] = count - 1 - i;
    }
    int const ret = io_uring_register_buffers(&ex->ring, iov, count);
    if (ret < 0) {
        err = -ret;
        goto fail;
    }
    free(iov);
    ex->has_buffers = true;
    p->ex = ex;
    p->head.executor = ex_;
    p->head.buffer_size = size;
    p->head.count = count;
    p->head.free = count;
    ma_list_push_back(&ex->buffer_pools, &p->link);
    *out = &p->head;
    return monad_async_make_success(0);
fail:
    if (p != NULL) {
        ma_pool_free(p);
    }
    free(iov);
    return monad_async_make_failure(err);
}

monad_async_result
monad_async_io_buffer_pool_destroy(monad_async_io_buffer_pool pool)
{
    if (pool == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_buffer_pool *const p = ma_pool_from(pool);
    struct ma_executor *const ex = p->ex;
    if (!ma_executor_is_owner(ex)) {
        return monad_async_make_failure(EPERM);
    }
    if (pool->free != pool->count || p->waiters.head != NULL) {
        return monad_async_make_failure(EBUSY);
    }
    int const ret = io_uring_unregister_buffers(&ex->ring);
    if (ret < 0) {
        return monad_async_make_failure(-ret);
    }
    ex->has_buffers = false;
    ma_list_remove(&ex->buffer_pools, &p->link);
    ma_pool_free(p);
    return monad_async_make_success(0);
}

static void ma_buffer_fill(struct ma_buffer_pool *p, uint32_t idx,
                           struct monad_async_io_buffer *buf)
{
    p->claimed[idx] = 1;
    buf->data = p->base + (size_t)idx * p->head.buffer_size;
    buf->size = p->head.buffer_size;
    buf->index = idx;
    buf->reserved = 0;
}

static monad_async_result ma_buffer_claim(monad_async_task task,
                                          monad_async_io_buffer_pool pool,
                                          struct monad_async_io_buffer *buf,
                                          bool wait)
{
    struct ma_executor *const ex = ma_tls_executor;
    if (task == NULL || pool == NULL || buf == NULL || ex == NULL ||
        ma_pool_from(pool)->ex != ex ||
        atomic_load_explicit(&ex->head.current_task, memory_order_relaxed) !=
            task) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_task *const t = ma_task_from(task);
    if (ma_task_state(t) & MONAD_ASYNC_TASK_STATE_CANCELLED) {
        return monad_async_make_failure(ECANCELED);
    }
    struct ma_buffer_pool *const p = ma_pool_from(pool);
    if (pool->free != 0) {
        uint32_t const idx = p->free_stack[--pool->free];
        ma_buffer_fill(p, idx, buf);
        return monad_async_make_success((intptr_t)idx);
    }
    if (!wait) {
        return monad_async_make_failure(EAGAIN);
    }
    if (!task->switcher->has_stacks) {
        return monad_async_make_failure(ENOTSUP);
    }
    pool->waits++;
    t->buf_pool = p;
    t->buf_index = UINT32_MAX;
    t->where = MA_TASK_BUF_WAIT;
    ma_list_push_back(&p->waiters, &t->link);
    monad_async_result const r = ma_task_suspend(ex, t);
    uint32_t const idx = t->buf_index;
    t->buf_pool = NULL;
    if (idx == UINT32_MAX) {
        /* Only a cancel resumes a waiter without a buffer. */
        return monad_async_make_failure(r.error != 0 ? r.error : ECANCELED);
    }
    if (r.error != 0) {
        /* Cancelled after the hand-over: pass the buffer on. */
        p->claimed[idx] = 1;
        struct monad_async_io_buffer tmp = {NULL, 0, idx, 0};
        monad_async_result const rel = monad_async_io_buffer_release(pool, &tmp);
        (void)rel;
        return r;
    }
    ma_buffer_fill(p, idx, buf);
    return monad_async_make_success((intptr_t)idx);
}

monad_async_result monad_async_io_buffer_claim(monad_async_task task,
                                               monad_async_io_buffer_pool pool,
                                               struct monad_async_io_buffer *buf)
{
    return ma_buffer_claim(task, pool, buf, true);
}

monad_async_result monad_async_io_buffer_try_claim(
    monad_async_task task, monad_async_io_buffer_pool pool,
    struct monad_async_io_buffer *buf)
{
    return ma_buffer_claim(task, pool, buf, false);
}

monad_async_result monad_async_io_buffer_release(
    monad_async_io_buffer_pool pool, struct monad_async_io_buffer const *buf)
{
    if (pool == NULL || buf == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_buffer_pool *const p = ma_pool_from(pool);
    uint32_t const idx = buf->index;
    int const err = ma_io_buffer_unmark(p->ex, p->claimed, pool->count, idx);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_link *const l = ma_list_pop_front(&p->waiters);
    if (l != NULL) {
        /* Straight to the first waiter: it marks it claimed on resume. */
        struct ma_task *const t = ma_task_from_link(l);
        t->buf_index = idx;
        ma_executor_make_ready_woken(p->ex, t);
        return monad_async_make_success(0);
    }
    p->free_stack[pool->free++] = idx;
    return monad_async_make_success(0);
}

void ma_io_cancel_buffer_wait(struct ma_executor *ex, struct ma_task *t)
{
    ma_list_remove(&t->buf_pool->waiters, &t->link);
    t->resume_error = ECANCELED;
    ma_executor_make_ready_woken(ex, t);
}

void ma_io_cancel_all_buffer_waits(struct ma_executor *ex)
{
    for (struct ma_link *l = ex->buffer_pools.head; l != NULL; l = l->next) {
        struct ma_buffer_pool *const p =
            ma_container_of(l, struct ma_buffer_pool, link);
        while (p->waiters.head != NULL) {
            (void)ma_executor_cancel_local(ex, ma_task_from_link(p->waiters.head));
        }
    }
}

void ma_io_free_buffer_pools(struct ma_executor *ex)
{
    struct ma_link *l;
    while ((l = ma_list_pop_front(&ex->buffer_pools)) != NULL) {
        struct ma_buffer_pool *const p =
            ma_container_of(l, struct ma_buffer_pool, link);
        /* The ring's teardown unregisters the buffers with it. */
        ma_pool_free(p);
    }
}
