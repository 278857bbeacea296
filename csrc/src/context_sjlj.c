/* The setjmp/longjmp switcher: portable C, the spec's original.
 *
 * Every switch is a setjmp on one side and a longjmp to the other. The
 * only non-portable step is the very first entry onto a fresh stack,
 * three instructions of inline assembly. glibc's fortified longjmp
 * (__longjmp_chk) aborts when it jumps to another stack, so this file is
 * always built without _FORTIFY_SOURCE. */
#undef _FORTIFY_SOURCE
#include "context_impl.h"

#include <errno.h>
#include <stdint.h>

static void ma_sjlj_first_resume(struct ma_context *ctx)
{
    if (setjmp(ctx->resumer_jb) == 0) {
        ma_context_tsan_to_task(ctx);
        uintptr_t const top =
            (uintptr_t)ctx->stack.top & ~(uintptr_t)15;
#if defined(__x86_64__)
        /* Enter with a zero return address and frame pointer: a call
         * would leave this function as the caller of the stack's first
         * frame, and unwinders (backtraces, debuggers) would read this
         * frame's data against the new stack and crash. Zero ends the
         * walk. Fixed registers, none of them rbp. */
        __asm__ volatile("movq %0, %%rsp\n\t"
                         "xorl %%ebp, %%ebp\n\t"
                         "pushq $0\n\t"
                         "jmpq *%1"
                         :
                         : "S"(top), "c"(ma_context_main), "D"(ctx)
                         : "memory");
#elif defined(__aarch64__)
        register struct ma_context *x0 __asm__("x0") = ctx;
        register uintptr_t x1 __asm__("x1") = top;
        register void (*x2)(struct ma_context *) __asm__("x2") =
            ma_context_main;
        /* As above: zero link register and frame pointer end unwinding. */
        __asm__ volatile("mov sp, %0\n\t"
                         "mov x29, #0\n\t"
                         "mov x30, xzr\n\t"
                         "br %1"
                         :
                         : "r"(x1), "r"(x2), "r"(x0)
                         : "memory");
#else
#error "sjlj switcher: first entry onto a stack not written for this arch"
#endif
        __builtin_unreachable();
    }
}

static void ma_sjlj_resume(struct ma_context *ctx)
{
    if (setjmp(ctx->resumer_jb) == 0) {
        ma_context_tsan_to_task(ctx);
        longjmp(ctx->task_jb, 1);
    }
}

static void ma_sjlj_suspend(struct ma_context *ctx)
{
    if (setjmp(ctx->task_jb) == 0) {
        ma_context_tsan_to_resumer(ctx);
        longjmp(ctx->resumer_jb, 1);
    }
}

static struct ma_switcher_ops const ma_sjlj_ops = {
    .first_resume = ma_sjlj_first_resume,
    .resume = ma_sjlj_resume,
    .suspend = ma_sjlj_suspend,
};

monad_async_result
monad_async_context_switcher_sjlj_create(monad_async_context_switcher *sw)
{
    return ma_switcher_new(sw, &ma_sjlj_ops, true);
}
