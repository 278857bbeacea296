/* Kernel-provided receive buffers: a buffer ring registered as a buffer
 * group (io_uring_register_buf_ring); a receive with IOSQE_BUFFER_SELECT
 * lets the kernel pick a buffer when data arrives, and its CQE names the
 * buffer (IORING_CQE_F_BUFFER, id in the upper 16 bits of the flags). The
 * caller gives each buffer back with release, which re-adds it to the
 * ring. liburing 2.3 has no io_uring_setup_buf_ring, so the ring memory
 * is mapped here. */
#include "io_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct ma_buffer_ring
{
    struct monad_async_io_buffer_ring_head head; /* first: the handle */
    struct ma_executor *ex;
    struct ma_link link; /* on ex->buffer_rings */
    struct io_uring_buf_ring *br;
    size_t br_mapped;
    unsigned char *base; /* count * buffer_size */
    size_t mapped;
    unsigned char *out;  /* per buffer: 1 while outstanding */
};

static inline struct ma_buffer_ring *ma_bring_from(monad_async_io_buffer_ring r)
{
    return (struct ma_buffer_ring *)r;
}

static void ma_bring_free(struct ma_buffer_ring *r)
{
    if (r->br != NULL) {
        munmap(r->br, r->br_mapped);
    }
    if (r->base != NULL) {
        munmap(r->base, r->mapped);
    }
    free(r->out);
    free(r);
}

#define MA_BUFFER_GROUP_WORDS (MA_BUFFER_GROUPS / 64u)

int ma_io_buffer_group_alloc(struct ma_executor *ex, uint16_t *id)
{
    if (ex->buffer_groups_used == MA_BUFFER_GROUPS) {
        return ENOSPC;
    }
    if (ex->buffer_group_bits == NULL) {
        ex->buffer_group_bits = calloc(MA_BUFFER_GROUP_WORDS, sizeof(uint64_t));
        if (ex->buffer_group_bits == NULL) {
            return ENOMEM;
        }
    }
    /* Word by word from the hint's, wrapping round: the hint's own word is
     * looked at first from the hint's bit up, and last in full. */
    uint32_t const start = ex->next_buffer_group;
    for (uint32_t n = 0; n <= MA_BUFFER_GROUP_WORDS; n++) {
        uint32_t const w = ((start / 64u) + n) % MA_BUFFER_GROUP_WORDS;
        uint64_t free_bits = ~ex->buffer_group_bits[w];
        if (n == 0) {
            free_bits &= ~0ull << (start % 64u);
        }
        if (free_bits != 0) {
            uint32_t const got = w * 64u + (uint32_t)__builtin_ctzll(free_bits);
            ex->buffer_group_bits[w] |= 1ull << (got % 64u);
            ex->buffer_groups_used++;
            ex->next_buffer_group = (uint16_t)(got + 1u);
            *id = (uint16_t)got;
            return 0;
        }
    }
    /* Not reached: fewer than MA_BUFFER_GROUPS are used. */
    return ENOSPC;
}

void ma_io_buffer_group_free(struct ma_executor *ex, uint16_t id)
{
    uint64_t const bit = 1ull << (id % 64u);
    assert(ex->buffer_group_bits != NULL &&
           (ex->buffer_group_bits[id / 64u] & bit) != 0);
    ex->buffer_group_bits[id / 64u] &= ~bit;
    ex->buffer_groups_used--;
}

monad_async_result monad_async_io_buffer_ring_create(
    monad_async_io_buffer_ring *out, monad_async_executor ex_,
    size_t buffer_size, unsigned count)
{
    if (out == NULL || ex_ == NULL || buffer_size == 0 ||
        buffer_size > UINT32_MAX || count == 0 || count > 32768 ||
        (count & (count - 1)) != 0) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_executor *const ex = ma_executor_from(ex_);
    int err = ma_io_check_setup(ex);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    struct ma_buffer_ring *const r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return monad_async_make_failure(ENOMEM);
    }
    size_t const page = (size_t)sysconf(_SC_PAGESIZE);
    r->out = calloc(count, 1);
    r->br_mapped = (count * sizeof(struct io_uring_buf) + page - 1) & ~(page - 1);
    r->mapped = buffer_size * count;
    if (r->out == NULL) {
        err = ENOMEM;
        goto fail;
    }
    /* The ring (the kernel wants it page aligned), then its buffers;
     * r->base stays NULL (calloc) when the first fails. */
    r->br = ma_io_map_pages(r->br_mapped);
    if (r->br != NULL) {
        r->base = ma_io_map_pages(r->mapped);
    }
    if (r->base == NULL) {
        err = errno;
        goto fail;
    }
    /* A group id no live ring of this executor has (a wrapped counter
     * would hand out a live one, which the kernel refuses with EEXIST). */
    uint16_t group = 0;
    err = ma_io_buffer_group_alloc(ex, &group);
    if (err != 0) {
        goto fail;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)r->br;
    reg.ring_entries = count;
    reg.bgid = group;
    int const ret = io_uring_register_buf_ring(&ex->ring, &reg, 0);
    if (ret < 0) {
        /* EINVAL from a kernel before 5.19 that lacks the opcode. */
        err = ret == -EINVAL ? ENOTSUP : -ret;
        ma_io_buffer_group_free(ex, group);
        goto fail;
    }
    io_uring_buf_ring_init(r->br);
    int const mask = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; i++) {
        io_uring_buf_ring_add(r->br, r->base + (size_t)i * buffer_size,
                              (unsigned)buffer_size, (unsigned short)i, mask, (int)i);
    }
    io_uring_buf_ring_advance(r->br, (int)count);
    r->ex = ex;
    r->head.executor = ex_;
    r->head.buffer_size = buffer_size;
    r->head.count = count;
    r->head.group = group;
    ma_list_push_back(&ex->buffer_rings, &r->link);
    *out = &r->head;
    return monad_async_make_success(0);
fail:
    ma_bring_free(r);
    return monad_async_make_failure(err);
}

monad_async_result
monad_async_io_buffer_ring_destroy(monad_async_io_buffer_ring ring)
{
    if (ring == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_buffer_ring *const r = ma_bring_from(ring);
    if (!ma_executor_is_owner(r->ex)) {
        return monad_async_make_failure(EPERM);
    }
    if (ring->outstanding != 0) {
        return monad_async_make_failure(EBUSY);
    }
    int const ret = io_uring_unregister_buf_ring(&r->ex->ring, ring->group);
    if (ret < 0) {
        return monad_async_make_failure(-ret);
    }
    ma_io_buffer_group_free(r->ex, ring->group);
    ma_list_remove(&r->ex->buffer_rings, &r->link);
    ma_bring_free(r);
    return monad_async_make_success(0);
}

void ma_io_free_buffer_rings(struct ma_executor *ex)
{
    struct ma_link *l;
    while ((l = ma_list_pop_front(&ex->buffer_rings)) != NULL) {
        /* The ring's teardown unregistered the group with it. */
        ma_bring_free(ma_container_of(l, struct ma_buffer_ring, link));
    }
    free(ex->buffer_group_bits);
    ex->buffer_group_bits = NULL;
    ex->buffer_groups_used = 0;
}

/* The buffer a CQE with `flags` used, or ENOENT. */
static int ma_bring_take(struct ma_buffer_ring *r, uint32_t flags,
                         monad_async_result res, struct monad_async_io_buffer *out)
{
    if (!(flags & IORING_CQE_F_BUFFER)) {
        return ENOENT;
    }
    unsigned const bid = flags >> IORING_CQE_BUFFER_SHIFT;
    if (bid >= r->head.count || r->out[bid]) {
        return EINVAL;
    }
    r->out[bid] = 1;
    r->head.outstanding++;
    out->data = r->base + (size_t)bid * r->head.buffer_size;
    out->size = res.error == 0 ? (size_t)res.value : 0;
    out->index = bid;
    out->reserved = 0;
    return 0;
}

monad_async_result monad_async_io_recv_provided(
    monad_async_task task, struct monad_async_io_status *opt_status, int fd,
    monad_async_io_buffer_ring ring, int flags, struct monad_async_io_buffer *out)
{
    if (ring == NULL || (opt_status == NULL && out == NULL)) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_buffer_ring *const r = ma_bring_from(ring);
    if (r->ex != ma_tls_executor) {
        return monad_async_make_failure(EINVAL);
    }
    if (out != NULL) {
        out->data = NULL;
        out->size = 0;
    }
    struct ma_io_op op;
    MA_IO_TRY_BEGIN(&op, task, opt_status, MA_IO_WAITS);
    io_uring_prep_recv(op.sqe, fd, NULL, (size_t)ring->buffer_size, flags);
    op.sqe->flags |= IOSQE_BUFFER_SELECT;
    op.sqe->buf_group = ring->group;
    monad_async_result const res = ma_io_commit(&op, 0);
    if (opt_status == NULL) {
        /* The blocking form's status is still in this frame. */
        (void)ma_bring_take(r, op.local.cqe_flags, res, out);
    }
    return res;
}

monad_async_result monad_async_io_buffer_ring_take(
    monad_async_io_buffer_ring ring, struct monad_async_io_status const *status,
    struct monad_async_io_buffer *out)
{
    if (ring == NULL || status == NULL || out == NULL ||
        status->state == MONAD_ASYNC_IO_STATE_IN_FLIGHT) {
        return monad_async_make_failure(EINVAL);
    }
    int const err = ma_bring_take(ma_bring_from(ring), status->cqe_flags,
                                  status->result, out);
    return err ? monad_async_make_failure(err) : monad_async_make_success(0);
}

monad_async_result monad_async_io_buffer_ring_release(
    monad_async_io_buffer_ring ring, struct monad_async_io_buffer const *buf)
{
    if (ring == NULL || buf == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct ma_buffer_ring *const r = ma_bring_from(ring);
    unsigned const bid = buf->index;
    int const err = ma_io_buffer_unmark(r->ex, r->out, ring->count, bid);
    if (err != 0) {
        return monad_async_make_failure(err);
    }
    ring->outstanding--;
    io_uring_buf_ring_add(r->br, r->base + (size_t)bid * ring->buffer_size,
                          (unsigned)ring->buffer_size, (unsigned short)bid,
                          io_uring_buf_ring_mask(ring->count), 0);
    io_uring_buf_ring_advance(r->br, 1);
    return monad_async_make_success(0);
}
