/* Task stacks: mmap, guard page, valgrind registration. */
#include "stack.h"
#include "sanitizer.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

int ma_stack_alloc(struct ma_stack *s, size_t size)
{
    size_t const page = (size_t)sysconf(_SC_PAGESIZE);
    if (size == 0) {
        size = MA_STACK_DEFAULT_SIZE;
    }
    if (size > SIZE_MAX / 2) {
        return EINVAL;
    }
    size = (size + page - 1) & ~(page - 1);
    size_t const total = size + page;
    void *const map = mmap(
        NULL,
        total,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
        -1,
        0);
    if (map == MAP_FAILED) {
        return errno;
    }
    /* The guard: the stack grows down into it and faults. */
    if (mprotect(map, page, PROT_NONE) != 0) {
        int const err = errno;
        munmap(map, total);
        return err;
    }
    s->map = map;
    s->map_size = total;
    s->base = (char *)map + page;
    s->size = size;
    /* Cache colouring: page-aligned stack tops would put every task's
     * hottest frames in the same cache sets, so a thousand tasks run in
     * turn would evict each other. Offset each top by a different number
     * of cache lines. */
    uintptr_t const colour = ((uintptr_t)map / page) % 32;
    s->top = (char *)s->base + s->size - colour * 64;
#if MA_VALGRIND
    s->valgrind_id =
        VALGRIND_STACK_REGISTER(s->base, (char *)s->base + s->size);
#else
    s->valgrind_id = 0;
#endif
    return 0;
}

void ma_stack_free(struct ma_stack *s)
{
    if (s->map == NULL) {
        return;
    }
#if MA_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
#if MA_ASAN
    /* Frames abandoned on this stack may have left poison behind. */
    ASAN_UNPOISON_MEMORY_REGION(s->base, s->size);
#endif
    munmap(s->map, s->map_size);
    s->map = NULL;
    s->base = NULL;
    s->top = NULL;
    s->size = 0;
}
