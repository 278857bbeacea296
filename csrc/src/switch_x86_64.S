/* The asm switcher's register switch for x86-64 (System V ABI).
 *
 * Callee-saved: rbx, rbp, r12-r15, rsp, plus the MXCSR control bits and
 * the x87 control word (the MXCSR status flags are caller-saved). Everything else is caller-saved, so a switch that
 * looks like a function call needs to save nothing more.
 *
 * Saved frame, from the saved stack pointer up:
 *   [fp variants only: mxcsr (4 bytes), x87 cw (2), pad (2)]
 *   r15, r14, r13, r12, rbx, rbp, return address */

    .text

.macro MA_SWITCH name, fp, useret
    .globl \name
    .type \name,@function
    .p2align 4
\name:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
.if \fp
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
.endif
    movq %rsp, (%rdi)
.if \fp
    movl (%rsp), %eax
    movzwl 4(%rsp), %edx
.endif
    movq %rsi, %rsp
.if \fp
    /* Load the control words only when they differ. Writing MXCSR with
     * a new value stalls the pipeline (it is renamed only so far), and
     * the status flags (bits 0-5) differ all the time: one inexact
     * operation on either side sets them. The ABI makes only the control
     * bits callee-saved, so equal control bits mean nothing to do. */
    xorl (%rsp), %eax
    testl $0xffc0, %eax
    jz 1f
    ldmxcsr (%rsp)
1:
    cmpw 4(%rsp), %dx
    je 2f
    fldcw 4(%rsp)
2:
    addq $8, %rsp
.endif
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
.if \useret
    ret
.else
    popq %rcx
    jmpq *%rcx
.endif
    .cfi_endproc
    .size \name, .-\name
.endm

MA_SWITCH monad_async_switch_fp, 1, 0
MA_SWITCH monad_async_switch_nofp, 0, 0
MA_SWITCH monad_async_switch_fp_ret, 1, 1
MA_SWITCH monad_async_switch_nofp_ret, 0, 1

/* First code run on a fresh stack: entry(arg) with r12 = arg and
 * r13 = entry, as monad_async_switch_make_frame left them. rsp is 16-byte
 * aligned here, so the call leaves the callee the alignment it expects.
 * The undefined return address ends unwinding and backtraces here. */
    .globl monad_async_switch_trampoline
    .type monad_async_switch_trampoline,@function
    .p2align 4
monad_async_switch_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size monad_async_switch_trampoline, .-monad_async_switch_trampoline

    .section .note.GNU-stack,"",@progbits
