/* Internal: task stacks. Reserved with mmap, committed by the kernel as
 * pages are touched, with an inaccessible guard page below so that an
 * overflow faults instead of corrupting memory. */
#ifndef MONAD_ASYNC_STACK_H
#define MONAD_ASYNC_STACK_H

#include <stddef.h>

#define MA_STACK_DEFAULT_SIZE (256u * 1024u)

struct ma_stack
{
    void *base;     /* lowest usable byte */
    size_t size;    /* usable bytes */
    void *top;      /* where the first frame goes: at most 2 KiB below
                       base + size, 16-byte aligned (see stack.c) */
    void *map;      /* the whole mapping, guard page included */
    size_t map_size;
    unsigned valgrind_id;
};

/* 0 or an errno value. `size` 0 picks the default. */
int ma_stack_alloc(struct ma_stack *s, size_t size);
void ma_stack_free(struct ma_stack *s);

#endif
