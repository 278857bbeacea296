/* The none switcher: no stack, no switch. The task's work runs to
 * completion on the executor's own stack; suspension points refuse with
 * ENOTSUP before ever reaching suspend. */
#include "context_impl.h"

#include <stdlib.h>

static void ma_none_resume(struct ma_context *ctx)
{
    ctx->entry(ctx);
}

static void ma_none_suspend(struct ma_context *ctx)
{
    (void)ctx;
    abort(); /* unreachable: the task layer checks has_stacks first */
}

static struct ma_switcher_ops const ma_none_ops = {
    .first_resume = ma_none_resume,
    .resume = ma_none_resume,
    .suspend = ma_none_suspend,
};

monad_async_result
monad_async_context_switcher_none_create(monad_async_context_switcher *sw)
{
    return ma_switcher_new(sw, &ma_none_ops, false);
}
