/* Internal: execution contexts and the switcher vtable.
 *
 * A context is one task's stack plus the saved state of both sides of a
 * switch: the task's own, and its resumer's (the executor's run loop).
 * The switchers know only contexts, never tasks or executors: the task
 * layer hands them an entry function, and the executor calls
 * ma_context_resume / the task calls ma_context_suspend.
 *
 * A context's entry function is run in an endless loop on the context's
 * stack (see ma_context_main): when one piece of work ends, the context
 * suspends at the bottom of that loop, and resuming it starts the next
 * piece. Reusing a task therefore costs one ordinary switch, never a new
 * stack set-up. */
#ifndef MONAD_ASYNC_CONTEXT_IMPL_H
#define MONAD_ASYNC_CONTEXT_IMPL_H

#include <monad_async/context.h>

#include "sanitizer.h"
#include "stack.h"
#include "stack_guard.h"

#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>

struct ma_context;

struct ma_switcher_ops
{
    /* Start ctx's entry loop on its (fresh) stack; returns when it first
     * suspends. */
    void (*first_resume)(struct ma_context *ctx);
    /* Switch from the resumer into the suspended context. */
    void (*resume)(struct ma_context *ctx);
    /* Switch from inside the context back to its resumer. */
    void (*suspend)(struct ma_context *ctx);
    /* Switch from inside `from` straight into the context `to` of the
     * same switcher (suspended, or never run), which takes over `from`'s
     * resumer: its next suspend returns to whoever resumed `from`. NULL
     * where the switcher cannot (sjlj, none): the task goes through its
     * resumer instead (see ma_context_transfer). */
    void (*transfer)(struct ma_context *from, struct ma_context *to);
};

struct monad_async_context_switcher_head
{
    struct ma_switcher_ops const *ops;
    /* Contexts set up for this switcher; destroy refuses while non-zero. */
    _Atomic uint32_t users;
    /* False for the none switcher: tasks run on the resumer's stack. */
    bool has_stacks;
};

struct ma_context
{
    monad_async_context_switcher sw;
    /* The stack is set up for `sw` and parked in its entry loop. */
    bool started;
    /* asm switcher: saved stack pointers of each side. */
    void *task_sp;
    void *resumer_sp;
    /* sjlj switcher: saved registers of each side. */
    jmp_buf task_jb;
    jmp_buf resumer_jb;
    struct ma_stack stack;
    /* What the context runs for (the task's handle), named in the stack
     * overflow message (stack_guard.c); set by the task layer. */
    void const *owner;
    /* Runs one piece of work; set by the task layer. */
    void (*entry)(struct ma_context *ctx);
#if MA_ASAN
    void *asan_task_fake_stack;
    void *asan_resumer_fake_stack;
    void const *asan_resumer_bottom;
    size_t asan_resumer_size;
    /* Entered by a transfer, which set asan_resumer_* to the resumer's:
     * the stack ASan reports we came from is the transferring task's. */
    bool asan_transferred_in;
#endif
#if MA_TSAN
    void *tsan_task_fiber;
    void *tsan_resumer_fiber;
#endif
};

/* Initialise a context (no stack yet). */
void ma_context_init(struct ma_context *ctx, void (*entry)(struct ma_context *));
/* Point ctx at switcher `sw`, allocating its stack if `sw` needs one and
 * it has none. The next resume starts the entry loop afresh. 0 or errno. */
int ma_context_set_switcher(
    struct ma_context *ctx, monad_async_context_switcher sw, size_t stack_size);
/* Release the stack and the switcher. */
void ma_context_destroy(struct ma_context *ctx);

/* The loop every stackful context runs; never returns. */
__attribute__((noreturn)) void ma_context_main(struct ma_context *ctx);

/* Sanitizer hand-offs around a switch (no-ops in plain builds). */
__attribute__((always_inline)) static inline void ma_context_before_resume(struct ma_context *ctx)
{
#if MA_ASAN
    __sanitizer_start_switch_fiber(
        &ctx->asan_resumer_fake_stack, ctx->stack.base, ctx->stack.size);
#endif
    (void)ctx;
}

__attribute__((always_inline)) static inline void ma_context_after_resume(struct ma_context *ctx)
{
#if MA_ASAN
    __sanitizer_finish_switch_fiber(ctx->asan_resumer_fake_stack, NULL, NULL);
#endif
    (void)ctx;
}

__attribute__((always_inline)) static inline void ma_context_before_suspend(struct ma_context *ctx)
{
#if MA_ASAN
    __sanitizer_start_switch_fiber(
        &ctx->asan_task_fake_stack,
        ctx->asan_resumer_bottom,
        ctx->asan_resumer_size);
#endif
    (void)ctx;
}

__attribute__((always_inline)) static inline void ma_context_after_suspend(struct ma_context *ctx)
{
#if MA_ASAN
    void const *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(ctx->asan_task_fake_stack, &bottom, &size);
    if (ctx->asan_transferred_in) {
        ctx->asan_transferred_in = false; /* came from a sibling task */
    }
    else {
        ctx->asan_resumer_bottom = bottom;
        ctx->asan_resumer_size = size;
    }
#endif
    (void)ctx;
}

/* ThreadSanitizer keeps its view of setjmp buffers per fiber, so the
 * switchers tell it of the switch at the one point where the old side's
 * state is saved and the new side's not yet restored.
 *
 * Every helper here is always inlined: an out-of-line copy under TSan
 * would record its function entry on one fiber and its exit on the other,
 * corrupting both shadow call stacks (clang does not inline them at
 * -fsanitize=thread otherwise). */
__attribute__((always_inline)) static inline void ma_context_tsan_to_task(struct ma_context *ctx)
{
#if MA_TSAN
    ctx->tsan_resumer_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(ctx->tsan_task_fiber, 0);
#endif
    (void)ctx;
}

__attribute__((always_inline)) static inline void ma_context_tsan_to_resumer(struct ma_context *ctx)
{
#if MA_TSAN
    __tsan_switch_to_fiber(ctx->tsan_resumer_fiber, 0);
#endif
    (void)ctx;
}

/* Executor side: run the context until it next suspends. */
__attribute__((always_inline)) static inline void ma_context_resume(struct ma_context *ctx)
{
    struct ma_switcher_ops const *const ops = ctx->sw->ops;
    if (!ctx->sw->has_stacks) {
        ops->resume(ctx);
        return;
    }
    ma_context_before_resume(ctx);
    if (__builtin_expect(ctx->started, 1)) {
        ops->resume(ctx);
    }
    else {
        ctx->started = true;
        ops->first_resume(ctx);
    }
    ma_context_after_resume(ctx);
}

/* Task side: give control back to the resumer. */
__attribute__((always_inline)) static inline void ma_context_suspend(struct ma_context *ctx)
{
    ma_context_before_suspend(ctx);
    ctx->sw->ops->suspend(ctx);
    ma_context_after_suspend(ctx);
}

/* Task side: switch from `from` straight into `to` (same switcher ops,
 * which have a transfer; `to` suspended or never run), which inherits
 * `from`'s resumer. Returns when `from` is next resumed, by its resumer
 * or by another transfer. */
__attribute__((always_inline)) static inline void
ma_context_transfer(struct ma_context *from, struct ma_context *to)
{
#if MA_ASAN
    __sanitizer_start_switch_fiber(
        &from->asan_task_fake_stack, to->stack.base, to->stack.size);
    to->asan_resumer_bottom = from->asan_resumer_bottom;
    to->asan_resumer_size = from->asan_resumer_size;
    to->asan_transferred_in = true;
#endif
    from->sw->ops->transfer(from, to);
    ma_context_after_suspend(from);
}

/* Shared by the switcher constructors. */
monad_async_result ma_switcher_new(
    monad_async_context_switcher *out, struct ma_switcher_ops const *ops,
    bool has_stacks);

#endif
