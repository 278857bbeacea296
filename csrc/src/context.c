/* Contexts: set-up, the entry loop, switcher life cycle. */
#include "context_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ma_context_init(struct ma_context *ctx, void (*entry)(struct ma_context *))
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->entry = entry;
#if MA_TSAN
    ctx->tsan_task_fiber = __tsan_create_fiber(0);
#endif
}

int ma_context_set_switcher(
    struct ma_context *ctx, monad_async_context_switcher sw, size_t stack_size)
{
    if (sw->has_stacks && ctx->stack.map == NULL) {
        int const err = ma_stack_alloc(&ctx->stack, stack_size);
        if (err != 0) {
            return err;
        }
    }
    atomic_fetch_add_explicit(&sw->users, 1, memory_order_relaxed);
    if (ctx->sw != NULL) {
        atomic_fetch_sub_explicit(&ctx->sw->users, 1, memory_order_release);
    }
    ctx->sw = sw;
    /* Whatever was parked on the stack for the old switcher is abandoned;
     * the next resume starts the entry loop from the top. */
    ctx->started = false;
#if MA_ASAN
    if (ctx->stack.map != NULL) {
        ASAN_UNPOISON_MEMORY_REGION(ctx->stack.base, ctx->stack.size);
    }
    ctx->asan_task_fake_stack = NULL;
#endif
    return 0;
}

void ma_context_destroy(struct ma_context *ctx)
{
    ma_stack_free(&ctx->stack);
    if (ctx->sw != NULL) {
        atomic_fetch_sub_explicit(&ctx->sw->users, 1, memory_order_release);
        ctx->sw = NULL;
    }
#if MA_TSAN
    __tsan_destroy_fiber(ctx->tsan_task_fiber);
    ctx->tsan_task_fiber = NULL;
#endif
}

void ma_context_main(struct ma_context *ctx)
{
    ma_context_after_suspend(ctx);
    for (;;) {
        ctx->entry(ctx);
        /* The piece of work is over: park here until the next one. */
        ma_context_suspend(ctx);
    }
}

monad_async_result ma_switcher_new(
    monad_async_context_switcher *out, struct ma_switcher_ops const *ops,
    bool has_stacks)
{
    if (out == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    struct monad_async_context_switcher_head *const sw = malloc(sizeof(*sw));
    if (sw == NULL) {
        return monad_async_make_failure(ENOMEM);
    }
    sw->ops = ops;
    atomic_init(&sw->users, 0);
    sw->has_stacks = has_stacks;
    *out = sw;
    return monad_async_make_success(0);
}

monad_async_result
monad_async_context_switcher_destroy(monad_async_context_switcher sw)
{
    if (sw == NULL) {
        return monad_async_make_failure(EINVAL);
    }
    if (atomic_load_explicit(&sw->users, memory_order_acquire) != 0) {
        return monad_async_make_failure(EBUSY);
    }
    free(sw);
    return monad_async_make_success(0);
}
