/* The asm switcher: our own register switch (switch_<arch>.S).
 *
 * A switch saves exactly the ABI's callee-saved registers and, unless the
 * switcher was created with MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL,
 * the floating-point control words, then swaps stack pointers. Returning
 * is a pop and an indirect jump rather than `ret`, which would mispredict
 * on every switch because the return-stack buffer tracks the other
 * stack's calls. */
#include "context_impl.h"
#include "switch.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#if MA_HAVE_ASM_SWITCH

void monad_async_switch_trampoline(void);

void *monad_async_switch_make_frame(
    void *top, void (*entry)(void *), void *arg, int with_fp)
{
    uintptr_t *sp = (uintptr_t *)((uintptr_t)top & ~(uintptr_t)15);
#if defined(__x86_64__)
    /* After the last pop the trampoline runs with rsp == top. */
    *--sp = (uintptr_t)monad_async_switch_trampoline; /* return address */
    *--sp = 0;                                        /* rbp */
    *--sp = 0;                                        /* rbx */
    *--sp = (uintptr_t)arg;                           /* r12 */
    *--sp = (uintptr_t)entry;                         /* r13 */
    *--sp = 0;                                        /* r14 */
    *--sp = 0;                                        /* r15 */
    if (with_fp) {
        /* Start the task with the creator's floating-point modes. */
        uint32_t mxcsr;
        uint16_t fcw;
        __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
        __asm__ volatile("fnstcw %0" : "=m"(fcw));
        uint64_t const slot = (uint64_t)mxcsr | ((uint64_t)fcw << 32);
        *--sp = (uintptr_t)slot;
    }
#elif defined(__aarch64__)
    sp -= 176 / sizeof(uintptr_t);
    memset(sp, 0, 176);
    sp[0] = (uintptr_t)arg;                            /* x19 */
    sp[1] = (uintptr_t)entry;                          /* x20 */
    sp[11] = (uintptr_t)monad_async_switch_trampoline; /* x30 */
    if (with_fp) {
        uint64_t fpcr;
        __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
        sp[20] = fpcr;
    }
#endif
    return sp;
}

static void ma_asm_first_resume_fp(struct ma_context *ctx)
{
    void *const sp = monad_async_switch_make_frame(
        ctx->stack.top,
        (void (*)(void *))ma_context_main,
        ctx,
        1);
    ma_context_tsan_to_task(ctx);
    monad_async_switch_fp(&ctx->resumer_sp, sp);
}

static void ma_asm_resume_fp(struct ma_context *ctx)
{
    ma_context_tsan_to_task(ctx);
    monad_async_switch_fp(&ctx->resumer_sp, ctx->task_sp);
}

static void ma_asm_suspend_fp(struct ma_context *ctx)
{
    ma_context_tsan_to_resumer(ctx);
    monad_async_switch_fp(&ctx->task_sp, ctx->resumer_sp);
}

/* A task hands the thread straight to a sibling: `to` takes over the
 * resumer (and, under TSan, the resumer's fiber) of `from`. A context
 * never run starts its entry loop on a fresh frame, as first_resume.
 * Returns the stack pointer to switch to; `fp`: whether the frame keeps
 * the floating-point control words, as the switch that follows does. */
static inline void *
ma_asm_transfer_begin(struct ma_context *from, struct ma_context *to, int fp)
{
    to->resumer_sp = from->resumer_sp;
#if MA_TSAN
    to->tsan_resumer_fiber = from->tsan_resumer_fiber;
    __tsan_switch_to_fiber(to->tsan_task_fiber, 0);
#endif
    if (!to->started) { /* its first launch: a fresh frame */
        to->started = true;
        return monad_async_switch_make_frame(
            to->stack.top, (void (*)(void *))ma_context_main, to, fp);
    }
    return to->task_sp;
}

static void ma_asm_transfer_fp(struct ma_context *from, struct ma_context *to)
{
    monad_async_switch_fp(&from->task_sp, ma_asm_transfer_begin(from, to, 1));
}

static void ma_asm_first_resume_nofp(struct ma_context *ctx)
{
    void *const sp = monad_async_switch_make_frame(
        ctx->stack.top,
        (void (*)(void *))ma_context_main,
        ctx,
        0);
    ma_context_tsan_to_task(ctx);
    monad_async_switch_nofp(&ctx->resumer_sp, sp);
}

static void ma_asm_resume_nofp(struct ma_context *ctx)
{
    ma_context_tsan_to_task(ctx);
    monad_async_switch_nofp(&ctx->resumer_sp, ctx->task_sp);
}

static void ma_asm_suspend_nofp(struct ma_context *ctx)
{
    ma_context_tsan_to_resumer(ctx);
    monad_async_switch_nofp(&ctx->task_sp, ctx->resumer_sp);
}

static void ma_asm_transfer_nofp(struct ma_context *from, struct ma_context *to)
{
    monad_async_switch_nofp(&from->task_sp, ma_asm_transfer_begin(from, to, 0));
}

static struct ma_switcher_ops const ma_asm_fp_ops = {
    .first_resume = ma_asm_first_resume_fp,
    .resume = ma_asm_resume_fp,
    .suspend = ma_asm_suspend_fp,
    .transfer = ma_asm_transfer_fp,
};

static struct ma_switcher_ops const ma_asm_nofp_ops = {
    .first_resume = ma_asm_first_resume_nofp,
    .resume = ma_asm_resume_nofp,
    .suspend = ma_asm_suspend_nofp,
    .transfer = ma_asm_transfer_nofp,
};

#endif

monad_async_result monad_async_context_switcher_asm_create_with_attr(
    monad_async_context_switcher *sw,
    struct monad_async_context_switcher_attr const *attr)
{
    uint32_t const flags = attr != NULL ? attr->flags : 0;
    if (sw == NULL ||
        (flags & ~(uint32_t)MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL)) {
        return monad_async_make_failure(EINVAL);
    }
#if MA_HAVE_ASM_SWITCH
    return ma_switcher_new(
        sw,
        (flags & MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL)
            ? &ma_asm_nofp_ops
            : &ma_asm_fp_ops,
        true);
#else
    return monad_async_make_failure(ENOTSUP);
#endif
}

monad_async_result
monad_async_context_switcher_asm_create(monad_async_context_switcher *sw)
{
    return monad_async_context_switcher_asm_create_with_attr(sw, NULL);
}
