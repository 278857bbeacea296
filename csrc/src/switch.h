/* Internal: the hand-written register switch (switch_<arch>.S).
 *
 * Each function saves the callee-saved registers on the current stack,
 * stores the stack pointer in *save_sp, loads new_sp and restores the
 * registers saved there. `_fp` variants also save the floating-point
 * control words; `_ret` variants return with `ret`, the others pop the
 * return address and jump to it: a `ret` into another stack mispredicts
 * the return-stack buffer, an indirect jump is predicted by target. */
#ifndef MONAD_ASYNC_SWITCH_H
#define MONAD_ASYNC_SWITCH_H

#include <stddef.h>

#if defined(__x86_64__) || defined(__aarch64__)
#define MA_HAVE_ASM_SWITCH 1

void monad_async_switch_fp(void **save_sp, void *new_sp);
void monad_async_switch_nofp(void **save_sp, void *new_sp);
void monad_async_switch_fp_ret(void **save_sp, void *new_sp);
void monad_async_switch_nofp_ret(void **save_sp, void *new_sp);

/* Builds the initial frame on a fresh stack whose top is `top` (16-byte
 * aligned) so that switching to the returned stack pointer calls
 * entry(arg) with a valid ABI frame. `with_fp` matches the variant. */
void *monad_async_switch_make_frame(
    void *top, void (*entry)(void *), void *arg, int with_fp);
#else
#define MA_HAVE_ASM_SWITCH 0
#endif

#endif
