/* The asm switcher's register switch for aarch64 (AAPCS64).
 *
 * Callee-saved: x19-x28, x29 (frame pointer), x30 (link register), sp,
 * the low halves of v8-v15 (d8-d15), and FPCR's mode bits.
 *
 * Saved frame, 176 bytes from the saved stack pointer up:
 *   x19..x28, x29, x30, d8..d15, fpcr, pad */

    .text

.macro MA_SWITCH name, fp, useret
    .globl \name
    .type \name,%function
    .p2align 4
\name:
    .cfi_startproc
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
.if \fp
    mrs x9, fpcr
    str x9, [sp, #160]
.endif
    mov x9, sp
    str x9, [x0]
    mov sp, x1
.if \fp
    /* Write FPCR only when it differs: the write may serialise. */
    mrs x10, fpcr
    ldr x9, [sp, #160]
    cmp x9, x10
    b.eq 1f
    msr fpcr, x9
1:
.endif
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
.if \useret
    ret
.else
    br x30
.endif
    .cfi_endproc
    .size \name, .-\name
.endm

MA_SWITCH monad_async_switch_fp, 1, 0
MA_SWITCH monad_async_switch_nofp, 0, 0
MA_SWITCH monad_async_switch_fp_ret, 1, 1
MA_SWITCH monad_async_switch_nofp_ret, 0, 1

/* First code run on a fresh stack: entry(arg) with x19 = arg and
 * x20 = entry, as monad_async_switch_make_frame left them. */
    .globl monad_async_switch_trampoline
    .type monad_async_switch_trampoline,%function
    .p2align 4
monad_async_switch_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov x0, x19
    mov x29, #0
    blr x20
    brk #0
    .cfi_endproc
    .size monad_async_switch_trampoline, .-monad_async_switch_trampoline

    .section .note.GNU-stack,"",%progbits
