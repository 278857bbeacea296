/* monad-async: context switchers, the strategies that move execution
 * between an executor and a task's own stack.
 *
 * Each task carries a switcher; tasks with different switchers share one
 * executor freely. A switcher is created once and outlives every task that
 * uses it (destroying one still in use gives EBUSY). */
#ifndef MONAD_ASYNC_CONTEXT_H
#define MONAD_ASYNC_CONTEXT_H

#include "result.h"

MONAD_ASYNC_BEGIN_EXTERN_C

/* Opaque handle to a context switcher. */
typedef struct monad_async_context_switcher_head *monad_async_context_switcher;

/* Flags for `struct monad_async_context_switcher_attr`. */
enum monad_async_context_switcher_flag
{
    /* The asm switcher normally saves and restores the floating-point
     * control words (MXCSR and the x87 control word on x86-64, FPCR on
     * aarch64) on every switch, as the ABI requires of a call. Set this
     * when no task ever changes rounding or exception modes, to save the
     * few cycles that costs. */
    MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL = 1u << 0
};

/* Options for a switcher. Zero-initialise, then set what you need. */
struct monad_async_context_switcher_attr
{
    uint32_t flags; /* enum monad_async_context_switcher_flag bits */
    uint32_t reserved[3];
};

/* A switcher using setjmp/longjmp (the spec's portable switcher).
 * ENOMEM: no memory for it. EINVAL: NULL `sw`. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_context_switcher_sjlj_create(monad_async_context_switcher *sw);

/* A switcher using our hand-written register switch (x86-64 and aarch64):
 * it saves exactly the callee-saved registers of the ABI, and the
 * floating-point control words. ENOTSUP on other architectures. ENOMEM:
 * no memory for it. EINVAL: NULL `sw`. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_context_switcher_asm_create(monad_async_context_switcher *sw);

/* As monad_async_context_switcher_asm_create, with options. `attr` may be
 * NULL. Unknown flags give EINVAL; otherwise its errors. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_context_switcher_asm_create_with_attr(
    monad_async_context_switcher *sw,
    struct monad_async_context_switcher_attr const *attr);

/* A switcher without stacks: a task using it runs to completion on the
 * executor's stack and cannot suspend (its suspension points give
 * ENOTSUP). Cheapest of all for run-to-completion work. ENOMEM: no memory
 * for it. EINVAL: NULL `sw`. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_context_switcher_none_create(monad_async_context_switcher *sw);

/* Destroys a switcher. EBUSY while any task still uses it. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_context_switcher_destroy(monad_async_context_switcher sw);

MONAD_ASYNC_END_EXTERN_C

#endif
