/* Context switchers (sjlj, asm, asm with NO_FP_CONTROL, none):
 *  - each runs tasks, on the task's own stack (stackful) or on the
 *    executor's stack (none), with the right state and current-task view;
 *  - callee-saved registers survive a switch, in the task and in the
 *    executor, with two tasks interleaving (many live values across yield,
 *    and an assembly probe that fills the callee-saved registers with
 *    task-specific patterns across the call: rbx, rbp, r12-r15 on x86-64,
 *    x19-x29 and d8-d15 on aarch64);
 *  - the asm switcher (FP control on) keeps each side's floating-point
 *    control: a task changing the rounding mode, MXCSR and x87 control word
 *    and yielding leaves the executor's unchanged, and sees its own again
 *    when resumed, with two tasks using different modes interleaved;
 *  - tasks with different switchers interleave FIFO on one executor;
 *  - attach with opt_switcher changes the switcher (and the old one can
 *    then be destroyed), including to and from none;
 *  - the none switcher's yield and sleep give ENOTSUP.
 * Header contract: context.h, task.h (monad_async_task_attach's
 * opt_switcher, yield's ENOTSUP), executor.h (current_task,
 * monad_async_executor_current). */
#include "test_common.h"

#include <fenv.h> /* FE_* values only: the Makefile does not link libm */
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

/* fegetround/fesetround without libm. x86-64: glibc's FE_* values are the
 * x87 control word's rounding bits (10-11); MXCSR has the same encoding at
 * bits 13-14. aarch64: glibc's FE_* values are FPCR's RMode bits. */
static int test_fegetround(void)
{
#if defined(__x86_64__)
    unsigned short cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw & 0xc00;
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (int)(fpcr & 0xc00000);
#else
#error "switchers.c: add rounding-mode access for this architecture"
#endif
}

static int test_fesetround(int mode)
{
#if defined(__x86_64__)
    if ((mode & ~0xc00) != 0) {
        return 1;
    }
    unsigned short cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    cw = (unsigned short)((cw & ~0xc00) | mode);
    __asm__ volatile("fldcw %0" : : "m"(cw));
    unsigned csr = _mm_getcsr();
    csr = (csr & ~0x6000u) | ((unsigned)mode << 3);
    _mm_setcsr(csr);
    return 0;
#elif defined(__aarch64__)
    if ((mode & ~0xc00000) != 0) {
        return 1;
    }
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = (fpcr & ~(uint64_t)0xc00000) | (uint64_t)mode;
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
    return 0;
#endif
}

static uint64_t const MS = 1000000ull;

/* ------------------------------------------------------------------ */
/* basics: runs, stack placement, state                                */

static uintptr_t main_frame;

/* The mapping (from /proc/self/maps) that holds `addr`: 1 and its bounds,
 * or 0. */
static int mapping_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= addr && addr < b) {
            *lo = a;
            *hi = b;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

struct basic
{
    monad_async_executor ex;
    int stackful;
    int ran;
    uintptr_t frame;
    int yield_err, sleep_err;
};

static monad_async_result basic_fn(monad_async_task task)
{
    struct basic *b = (struct basic *)task->user_ptr;
    b->frame = (uintptr_t)__builtin_frame_address(0);
    CHECK(test_task_state(task) & MONAD_ASYNC_TASK_STATE_RUNNING);
    CHECK((test_task_state(task) & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH) ==
          0);
    CHECK(atomic_load(&b->ex->current_task) == task);
    CHECK(monad_async_executor_current().value == (intptr_t)b->ex);
    CHECK(atomic_load(&task->current_executor) == b->ex);
    b->yield_err = monad_async_task_yield(task).error;
    b->sleep_err = monad_async_task_suspend_for_duration(task, 1 * MS).error;
    CHECK(atomic_load(&b->ex->current_task) == task);
    CHECK(monad_async_executor_current().value == (intptr_t)b->ex);
    b->ran++;
    return monad_async_make_success(11);
}

static void basics(enum test_switcher_kind kind)
{
    char const *swn = test_switcher_names[kind];
    int const stackful = kind != TEST_SWITCHER_NONE;
    monad_async_executor ex =
        test_make_executor(test_ring_entries(64, "basics"), 0);
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task t = test_make_task(sw, 0);
    CHECK(t->switcher == sw);
    CHECK_EQ(t->priority.cpu, monad_async_priority_normal);
    CHECK_EQ(t->priority.io, monad_async_priority_normal);
    CHECK(atomic_load(&t->current_executor) == NULL);
    struct basic b;
    memset(&b, 0, sizeof(b));
    b.ex = ex;
    b.stackful = stackful;
    t->user_code = basic_fn;
    t->user_ptr = &b;
    for (int round = 0; round < 3; round++) {
        b.ran = 0;
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        CHECK(test_task_state(t) & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH);
        struct timespec const zero = {0, 0};
        CHECK_EQ(monad_async_executor_run(ex, 1, &zero).value, 1);
        if (stackful) {
            uint32_t st = test_task_state(t);
            CHECK(st & MONAD_ASYNC_TASK_STATE_SUSPENDED);
            CHECK((st & MONAD_ASYNC_TASK_STATE_RUNNING) == 0);
            CHECK(atomic_load(&ex->current_task) == NULL);
            CHECK_EQ(monad_async_executor_current().value, 0);
        }
        test_run_until_detached(ex, t, 5000);
        CHECK_EQ(b.ran, 1);
        CHECK_EQ(t->result.value, 11);
        if (stackful) {
            CHECK_EQ(b.yield_err, 0);
            CHECK_EQ(b.sleep_err, 0);
            CHECK_EQ(t->suspensions, 2);
        }
        else {
            CHECK_ERROR(test_errno_result(b.yield_err), ENOTSUP);
            CHECK_ERROR(test_errno_result(b.sleep_err), ENOTSUP);
            CHECK_EQ(t->suspensions, 0);
        }
        uintptr_t const dist = b.frame > main_frame ? b.frame - main_frame
                                                    : main_frame - b.frame;
        if (stackful) {
            /* On its own stack: outside the mapping that holds main's
             * (where the kernel or an emulator places stacks and mappings
             * decides the distance, not the library). */
            uintptr_t lo = 0, hi = 0;
            CHECK(mapping_of(main_frame, &lo, &hi));
            CHECK_MSG(b.frame < lo || b.frame >= hi,
                      "%s: the task ran %zu bytes from main's frame, in the "
                      "same mapping [0x%lx, 0x%lx): not on its own stack",
                      swn, (size_t)dist, (unsigned long)lo, (unsigned long)hi);
        }
        else {
            CHECK_MSG(b.frame < main_frame && dist < 1024 * 1024,
                      "none switcher: the task's frame is %zu bytes from "
                      "main's: not on the executor's stack?",
                      (size_t)dist);
        }
    }
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    printf("ok   basics, %s switcher\n", swn);
}

/* ------------------------------------------------------------------ */
/* callee-saved registers                                              */

#if defined(__x86_64__)
/* uint32_t regs_probe(a0, a1, a2, fn, salt): fills rbx, rbp, r12-r15 with
 * salt ^ constant, calls fn(a0, a1, a2), returns a bit mask of the
 * registers that came back changed. */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl monad_async_test_regs_probe\n"
        ".type monad_async_test_regs_probe, @function\n"
        "monad_async_test_regs_probe:\n"
        "    push %rbx\n"
        "    push %rbp\n"
        "    push %r12\n"
        "    push %r13\n"
        "    push %r14\n"
        "    push %r15\n"
        "    sub $8, %rsp\n"
        "    mov %r8, (%rsp)\n"
        "    movabs $0x1111111111111111, %rbx\n"
        "    xor %r8, %rbx\n"
        "    movabs $0x2222222222222222, %rbp\n"
        "    xor %r8, %rbp\n"
        "    movabs $0x3333333333333333, %r12\n"
        "    xor %r8, %r12\n"
        "    movabs $0x4444444444444444, %r13\n"
        "    xor %r8, %r13\n"
        "    movabs $0x5555555555555555, %r14\n"
        "    xor %r8, %r14\n"
        "    movabs $0x6666666666666666, %r15\n"
        "    xor %r8, %r15\n"
        "    call *%rcx\n"
        "    mov (%rsp), %rcx\n"
        "    xor %eax, %eax\n"
        "    movabs $0x1111111111111111, %rdx\n"
        "    xor %rcx, %rdx\n"
        "    cmp %rdx, %rbx\n"
        "    je 1f\n"
        "    or $1, %eax\n"
        "1:  movabs $0x2222222222222222, %rdx\n"
        "    xor %rcx, %rdx\n"
        "    cmp %rdx, %rbp\n"
        "    je 2f\n"
        "    or $2, %eax\n"
        "2:  movabs $0x3333333333333333, %rdx\n"
        "    xor %rcx, %rdx\n"
        "    cmp %rdx, %r12\n"
        "    je 3f\n"
        "    or $4, %eax\n"
        "3:  movabs $0x4444444444444444, %rdx\n"
        "    xor %rcx, %rdx\n"
        "    cmp %rdx, %r13\n"
        "    je 4f\n"
        "    or $8, %eax\n"
        "4:  movabs $0x5555555555555555, %rdx\n"
        "    xor %rcx, %rdx\n"
        "    cmp %rdx, %r14\n"
        "    je 5f\n"
        "    or $16, %eax\n"
        "5:  movabs $0x6666666666666666, %rdx\n"
        "    xor %rcx, %rdx\n"
        "    cmp %rdx, %r15\n"
        "    je 6f\n"
        "    or $32, %eax\n"
        "6:  add $8, %rsp\n"
        "    pop %r15\n"
        "    pop %r14\n"
        "    pop %r13\n"
        "    pop %r12\n"
        "    pop %rbp\n"
        "    pop %rbx\n"
        "    ret\n"
        ".size monad_async_test_regs_probe, .-monad_async_test_regs_probe\n");
uint32_t monad_async_test_regs_probe(void *a0, uintptr_t a1, uintptr_t a2,
                                     void *fn, uintptr_t salt);
#define HAVE_REGS_PROBE 1
#define REGS_PROBE_ARCH "x86-64"
#define REGS_PROBE_BITS "1 rbx, 2 rbp, 4 r12, 8 r13, 16 r14, 32 r15"
#elif defined(__aarch64__)
/* The same for AAPCS64: fills x19-x28, x29 and d8-d15 (the low halves of
 * v8-v15) with salt ^ constant, calls fn(a0, a1, a2), returns a bit mask
 * of the registers that came back changed (bit i: the i-th of them). */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl monad_async_test_regs_probe\n"
        ".type monad_async_test_regs_probe, %function\n"
        "monad_async_test_regs_probe:\n"
        "    stp x29, x30, [sp, #-176]!\n"
        "    stp x19, x20, [sp, #16]\n"
        "    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n"
        "    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    str x4, [sp, #160]\n"
        "    ldr x10, =0x1111111111111111\n"
        "    eor x19, x10, x4\n"
        "    ldr x10, =0x2322222222222222\n"
        "    eor x20, x10, x4\n"
        "    ldr x10, =0x3133333333333333\n"
        "    eor x21, x10, x4\n"
        "    ldr x10, =0x4744444444444444\n"
        "    eor x22, x10, x4\n"
        "    ldr x10, =0x5155555555555555\n"
        "    eor x23, x10, x4\n"
        "    ldr x10, =0x6366666666666666\n"
        "    eor x24, x10, x4\n"
        "    ldr x10, =0x7177777777777777\n"
        "    eor x25, x10, x4\n"
        "    ldr x10, =0x8f88888888888888\n"
        "    eor x26, x10, x4\n"
        "    ldr x10, =0x9199999999999999\n"
        "    eor x27, x10, x4\n"
        "    ldr x10, =0xa3aaaaaaaaaaaaaa\n"
        "    eor x28, x10, x4\n"
        "    ldr x10, =0xb1bbbbbbbbbbbbbb\n"
        "    eor x29, x10, x4\n"
        "    ldr x10, =0xc7cccccccccccccc\n"
        "    eor x10, x10, x4\n"
        "    fmov d8, x10\n"
        "    ldr x10, =0xd1dddddddddddddd\n"
        "    eor x10, x10, x4\n"
        "    fmov d9, x10\n"
        "    ldr x10, =0xe3eeeeeeeeeeeeee\n"
        "    eor x10, x10, x4\n"
        "    fmov d10, x10\n"
        "    ldr x10, =0xf1ffffffffffffff\n"
        "    eor x10, x10, x4\n"
        "    fmov d11, x10\n"
        "    ldr x10, =0x1e11111111111111\n"
        "    eor x10, x10, x4\n"
        "    fmov d12, x10\n"
        "    ldr x10, =0x3222222222222222\n"
        "    eor x10, x10, x4\n"
        "    fmov d13, x10\n"
        "    ldr x10, =0x2233333333333333\n"
        "    eor x10, x10, x4\n"
        "    fmov d14, x10\n"
        "    ldr x10, =0x5644444444444444\n"
        "    eor x10, x10, x4\n"
        "    fmov d15, x10\n"
        "    blr x3\n"
        "    ldr x9, [sp, #160]\n"
        "    mov w11, #0\n"
        "    ldr x10, =0x1111111111111111\n"
        "    eor x10, x10, x9\n"
        "    cmp x19, x10\n"
        "    b.eq 1f\n"
        "    orr w11, w11, #0x1\n"
        "1:\n"
        "    ldr x10, =0x2322222222222222\n"
        "    eor x10, x10, x9\n"
        "    cmp x20, x10\n"
        "    b.eq 2f\n"
        "    orr w11, w11, #0x2\n"
        "2:\n"
        "    ldr x10, =0x3133333333333333\n"
        "    eor x10, x10, x9\n"
        "    cmp x21, x10\n"
        "    b.eq 3f\n"
        "    orr w11, w11, #0x4\n"
        "3:\n"
        "    ldr x10, =0x4744444444444444\n"
        "    eor x10, x10, x9\n"
        "    cmp x22, x10\n"
        "    b.eq 4f\n"
        "    orr w11, w11, #0x8\n"
        "4:\n"
        "    ldr x10, =0x5155555555555555\n"
        "    eor x10, x10, x9\n"
        "    cmp x23, x10\n"
        "    b.eq 5f\n"
        "    orr w11, w11, #0x10\n"
        "5:\n"
        "    ldr x10, =0x6366666666666666\n"
        "    eor x10, x10, x9\n"
        "    cmp x24, x10\n"
        "    b.eq 6f\n"
        "    orr w11, w11, #0x20\n"
        "6:\n"
        "    ldr x10, =0x7177777777777777\n"
        "    eor x10, x10, x9\n"
        "    cmp x25, x10\n"
        "    b.eq 7f\n"
        "    orr w11, w11, #0x40\n"
        "7:\n"
        "    ldr x10, =0x8f88888888888888\n"
        "    eor x10, x10, x9\n"
        "    cmp x26, x10\n"
        "    b.eq 8f\n"
        "    orr w11, w11, #0x80\n"
        "8:\n"
        "    ldr x10, =0x9199999999999999\n"
        "    eor x10, x10, x9\n"
        "    cmp x27, x10\n"
        "    b.eq 9f\n"
        "    orr w11, w11, #0x100\n"
        "9:\n"
        "    ldr x10, =0xa3aaaaaaaaaaaaaa\n"
        "    eor x10, x10, x9\n"
        "    cmp x28, x10\n"
        "    b.eq 10f\n"
        "    orr w11, w11, #0x200\n"
        "10:\n"
        "    ldr x10, =0xb1bbbbbbbbbbbbbb\n"
        "    eor x10, x10, x9\n"
        "    cmp x29, x10\n"
        "    b.eq 11f\n"
        "    orr w11, w11, #0x400\n"
        "11:\n"
        "    ldr x10, =0xc7cccccccccccccc\n"
        "    eor x10, x10, x9\n"
        "    fmov x12, d8\n"
        "    cmp x12, x10\n"
        "    b.eq 12f\n"
        "    orr w11, w11, #0x800\n"
        "12:\n"
        "    ldr x10, =0xd1dddddddddddddd\n"
        "    eor x10, x10, x9\n"
        "    fmov x12, d9\n"
        "    cmp x12, x10\n"
        "    b.eq 13f\n"
        "    orr w11, w11, #0x1000\n"
        "13:\n"
        "    ldr x10, =0xe3eeeeeeeeeeeeee\n"
        "    eor x10, x10, x9\n"
        "    fmov x12, d10\n"
        "    cmp x12, x10\n"
        "    b.eq 14f\n"
        "    orr w11, w11, #0x2000\n"
        "14:\n"
        "    ldr x10, =0xf1ffffffffffffff\n"
        "    eor x10, x10, x9\n"
        "    fmov x12, d11\n"
        "    cmp x12, x10\n"
        "    b.eq 15f\n"
        "    orr w11, w11, #0x4000\n"
        "15:\n"
        "    ldr x10, =0x1e11111111111111\n"
        "    eor x10, x10, x9\n"
        "    fmov x12, d12\n"
        "    cmp x12, x10\n"
        "    b.eq 16f\n"
        "    orr w11, w11, #0x8000\n"
        "16:\n"
        "    ldr x10, =0x3222222222222222\n"
        "    eor x10, x10, x9\n"
        "    fmov x12, d13\n"
        "    cmp x12, x10\n"
        "    b.eq 17f\n"
        "    orr w11, w11, #0x10000\n"
        "17:\n"
        "    ldr x10, =0x2233333333333333\n"
        "    eor x10, x10, x9\n"
        "    fmov x12, d14\n"
        "    cmp x12, x10\n"
        "    b.eq 18f\n"
        "    orr w11, w11, #0x20000\n"
        "18:\n"
        "    ldr x10, =0x5644444444444444\n"
        "    eor x10, x10, x9\n"
        "    fmov x12, d15\n"
        "    cmp x12, x10\n"
        "    b.eq 19f\n"
        "    orr w11, w11, #0x40000\n"
        "19:\n"
        "    mov w0, w11\n"
        "    ldp x19, x20, [sp, #16]\n"
        "    ldp x21, x22, [sp, #32]\n"
        "    ldp x23, x24, [sp, #48]\n"
        "    ldp x25, x26, [sp, #64]\n"
        "    ldp x27, x28, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        "    .ltorg\n"
        ".size monad_async_test_regs_probe, .-monad_async_test_regs_probe\n");
uint32_t monad_async_test_regs_probe(void *a0, uintptr_t a1, uintptr_t a2,
                                     void *fn, uintptr_t salt);
#define HAVE_REGS_PROBE 1
#define REGS_PROBE_ARCH "aarch64"
#define REGS_PROBE_BITS "1 x19, 2 x20, 4 x21, 8 x22, 16 x23, 32 x24, 64 x25, 128 x26, 256 x27, 512 x28, 1024 x29, 2048 d8, 4096 d9, 8192 d10, 16384 d11, 32768 d12, 65536 d13, 131072 d14, 262144 d15"
#else
#define HAVE_REGS_PROBE 0
#define REGS_PROBE_ARCH ""
#define REGS_PROBE_BITS ""
#endif

/* run, as called through the probe (a1 = max_items, a2 = timeout). */
static monad_async_result probe_run(void *ex, uintptr_t max_items,
                                    uintptr_t timeout)
{
    return monad_async_executor_run((monad_async_executor)ex,
                                    (size_t)max_items,
                                    (struct timespec const *)timeout);
}

static monad_async_result probe_yield(void *task, uintptr_t a1, uintptr_t a2)
{
    (void)a1;
    (void)a2;
    return monad_async_task_yield((monad_async_task)task);
}

/* Many live values across a yield: with 16 integers and 8 doubles live,
 * the compiler keeps as many as it can in callee-saved registers. */
static __attribute__((noinline)) uint64_t many_live(monad_async_task task,
                                                    uint64_t seed, int rounds)
{
    volatile uint64_t vs = seed;
    uint64_t a0 = vs * 3 + 1, a1 = vs * 5 + 2, a2 = vs * 7 + 3,
             a3 = vs * 11 + 4, a4 = vs * 13 + 5, a5 = vs * 17 + 6,
             a6 = vs * 19 + 7, a7 = vs * 23 + 8, a8 = vs ^ 0x9e3779b97f4a7c15,
             a9 = vs + 0x1234, a10 = vs << 3, a11 = vs >> 2, a12 = ~vs,
             a13 = vs * vs, a14 = vs | 0xff00, a15 = vs & 0xf0f0f0f0;
    double d0 = (double)(vs & 0xffff) * 1.5, d1 = d0 + 0.25, d2 = d0 * 3.0,
           d3 = d0 - 7.0, d4 = d0 / 3.0, d5 = d0 * d0, d6 = d0 + 1e6,
           d7 = -d0;
    for (int i = 0; i < rounds; i++) {
        if (task != NULL) {
            CHECK_RESULT(monad_async_task_yield(task));
        }
        a0 += a15; a1 ^= a0; a2 += a1 * 3; a3 ^= a2 >> 1; a4 += a3;
        a5 ^= a4 << 1; a6 += a5; a7 ^= a6; a8 += a7; a9 ^= a8; a10 += a9;
        a11 ^= a10; a12 += a11; a13 ^= a12; a14 += a13; a15 ^= a14;
        d0 += d7 * 0.5; d1 += d0; d2 -= d1 * 0.25; d3 += d2; d4 -= d3 * 0.125;
        d5 += d4; d6 -= d5 * 0.0625; d7 += d6;
    }
    uint64_t h = a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7 ^ a8 ^ a9 ^ a10 ^
                 a11 ^ a12 ^ a13 ^ a14 ^ a15;
    double const d = d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7;
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return h ^ bits;
}

struct regs_task
{
    uint64_t seed;
    uint64_t got, want;
    uint32_t probe_mask;
    int probes;
};

static monad_async_result regs_fn(monad_async_task task)
{
    struct regs_task *rt = (struct regs_task *)task->user_ptr;
    rt->got = many_live(task, rt->seed, 20);
#if HAVE_REGS_PROBE
    for (int i = 0; i < 10; i++) {
        rt->probe_mask |= monad_async_test_regs_probe(
            task, 0, 0, (void *)probe_yield, (uintptr_t)task ^ (uintptr_t)i);
        rt->probes++;
    }
#endif
    return monad_async_make_success(0);
}

static void callee_saved(enum test_switcher_kind kind)
{
    char const *swn = test_switcher_names[kind];
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task t[2] = {test_make_task(sw, 0), test_make_task(sw, 0)};
    struct regs_task rt[2];
    for (int i = 0; i < 2; i++) {
        memset(&rt[i], 0, sizeof(rt[i]));
        rt[i].seed = 0xabcdef12345ull * (uint64_t)(i + 1);
        rt[i].want = many_live(NULL, rt[i].seed, 20);
        t[i]->user_code = regs_fn;
        t[i]->user_ptr = &rt[i];
        CHECK_RESULT(monad_async_task_attach(ex, t[i], NULL));
    }
    /* The executor side: run one item at a time through the probe, with
     * many live values of our own across the runs too. */
    uint32_t exec_mask = 0;
    int runs = 0;
    uint64_t const mine_want = many_live(NULL, 777, 1);
    struct timespec const zero = {0, 0};
    while (test_task_attached(t[0]) || test_task_attached(t[1])) {
        CHECK_LT(runs, 10000);
#if HAVE_REGS_PROBE
        exec_mask |= monad_async_test_regs_probe(
            ex, 1, (uintptr_t)&zero, (void *)probe_run,
            (uintptr_t)ex ^ (uintptr_t)runs);
#else
        (void)probe_run;
        monad_async_result r = monad_async_executor_run(ex, 1, &zero);
        CHECK(r.error == 0 || r.error == ETIME);
#endif
        runs++;
    }
    CHECK_EQ(many_live(NULL, 777, 1), mine_want);
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(t[i]->result);
        CHECK_MSG(rt[i].got == rt[i].want,
                  "%s: values live across yields were corrupted in task %d",
                  swn, i);
        CHECK_MSG(rt[i].probe_mask == 0,
                  "%s: callee-saved registers changed across a yield inside "
                  "task %d (mask 0x%x: " REGS_PROBE_BITS ")",
                  swn, i, rt[i].probe_mask);
        CHECK_EQ(rt[i].probes, HAVE_REGS_PROBE ? 10 : 0);
    }
    CHECK_MSG(exec_mask == 0,
              "%s: callee-saved registers changed across "
              "monad_async_executor_run (mask 0x%x: " REGS_PROBE_BITS ")",
              swn, exec_mask);
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    printf("ok   callee-saved registers, %s switcher (%d runs%s)\n", swn, runs,
           HAVE_REGS_PROBE ? ", with the " REGS_PROBE_ARCH " register probe"
                           : "");
}

/* ------------------------------------------------------------------ */
/* floating-point control (asm switcher with FP control)              */

struct fpenv
{
    int round;
#if defined(__x86_64__)
    unsigned mxcsr;
    unsigned short x87cw;
#endif
};

static void get_fpenv(struct fpenv *e)
{
    e->round = test_fegetround();
#if defined(__x86_64__)
    e->mxcsr = _mm_getcsr();
    __asm__ volatile("fnstcw %0" : "=m"(e->x87cw));
#endif
}

static int fpenv_eq(struct fpenv const *a, struct fpenv const *b)
{
#if defined(__x86_64__)
    /* compare the control bits of MXCSR (not the sticky exception flags,
     * bits 0-5, which arithmetic sets) */
    return a->round == b->round &&
           (a->mxcsr & ~0x3fu) == (b->mxcsr & ~0x3fu) && a->x87cw == b->x87cw;
#else
    return a->round == b->round;
#endif
}

static void print_fpenv(char const *what, struct fpenv const *e)
{
#if defined(__x86_64__)
    fprintf(stderr, "  %s: round %d mxcsr 0x%x x87cw 0x%x\n", what, e->round,
            e->mxcsr, e->x87cw);
#else
    fprintf(stderr, "  %s: round %d\n", what, e->round);
#endif
}

struct fp_task
{
    int mode;     /* FE_UPWARD or FE_DOWNWARD */
    int yields;
    int bad;      /* times its own environment was not restored */
    struct fpenv mine;
    struct fpenv seen_bad;
};

static monad_async_result fp_fn(monad_async_task task)
{
    struct fp_task *f = (struct fp_task *)task->user_ptr;
    CHECK_EQ(test_fesetround(f->mode), 0);
#if defined(__x86_64__)
    /* flush-to-zero and denormals-are-zero too */
    _mm_setcsr(_mm_getcsr() | 0x8040u);
#endif
    get_fpenv(&f->mine);
    for (int i = 0; i < f->yields; i++) {
        CHECK_RESULT(monad_async_task_yield(task));
        struct fpenv now;
        get_fpenv(&now);
        if (!fpenv_eq(&now, &f->mine)) {
            f->bad++;
            f->seen_bad = now;
        }
        /* the rounding mode really is in force */
        volatile double one = 1.0, three = 3.0;
        volatile double q = one / three;
        volatile double neg = -one / three;
        double const nearest = 0.33333333333333331483; /* 1/3 to nearest */
        if (f->mode == FE_UPWARD && !(q > nearest)) {
            f->bad++;
        }
        if (f->mode == FE_DOWNWARD && !(neg < -nearest)) {
            f->bad++;
        }
    }
    /* exit with the changed environment: the executor must get its own
     * back */
    return monad_async_make_success(0);
}

static void fp_control(enum test_switcher_kind kind)
{
    char const *swn = test_switcher_names[kind];
    struct fpenv base;
    get_fpenv(&base);
    CHECK_EQ(base.round, FE_TONEAREST);
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task t[2] = {test_make_task(sw, 0), test_make_task(sw, 0)};
    struct fp_task f[2];
    static int const modes[2] = {FE_UPWARD, FE_DOWNWARD};
    for (int i = 0; i < 2; i++) {
        memset(&f[i], 0, sizeof(f[i]));
        f[i].mode = modes[i];
        f[i].yields = 50;
        t[i]->user_code = fp_fn;
        t[i]->user_ptr = &f[i];
        CHECK_RESULT(monad_async_task_attach(ex, t[i], NULL));
    }
    struct timespec const zero = {0, 0};
    int runs = 0;
    while (test_task_attached(t[0]) || test_task_attached(t[1])) {
        monad_async_result r = monad_async_executor_run(ex, 1, &zero);
        CHECK(r.error == 0 || r.error == ETIME);
        struct fpenv now;
        get_fpenv(&now);
        if (!fpenv_eq(&now, &base)) {
            print_fpenv("executor's environment before", &base);
            print_fpenv("executor's environment after a run", &now);
            /* put it back so the failure report itself is sane */
            test_fesetround(base.round);
            TEST_FAIL("%s: a task's floating-point control leaked into the "
                      "executor after run #%d",
                      swn, runs);
        }
        runs++;
    }
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(t[i]->result);
        if (f[i].bad != 0) {
            print_fpenv("task's own environment", &f[i].mine);
            print_fpenv("task's environment after a resume", &f[i].seen_bad);
            TEST_FAIL("%s: task %d (rounding %s) did not get its own "
                      "floating-point control back after %d of %d yields",
                      swn, i, i ? "downward" : "upward", f[i].bad,
                      f[i].yields);
        }
    }
    for (int i = 0; i < 2; i++) {
        CHECK_RESULT(monad_async_task_destroy(t[i]));
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    printf("ok   floating-point control kept per side, %s switcher\n", swn);
}

/* ------------------------------------------------------------------ */
/* different switchers interleaving on one executor                    */

static int order_log[64];
static int order_len;

struct mixed
{
    int id;
    int yields;
};

static monad_async_result mixed_fn(monad_async_task task)
{
    struct mixed *m = (struct mixed *)task->user_ptr;
    for (int i = 0; i <= m->yields; i++) {
        CHECK_LT(order_len, 64);
        order_log[order_len++] = m->id * 10 + i;
        if (i < m->yields) {
            CHECK_RESULT(monad_async_task_yield(task));
        }
    }
    return monad_async_make_success(m->id);
}

static void mixed_switchers(void)
{
    monad_async_executor ex =
        test_make_executor(test_ring_entries(64, "mixed switchers"), 0);
    monad_async_context_switcher sw[TEST_SWITCHER_COUNT];
    monad_async_task t[TEST_SWITCHER_COUNT];
    struct mixed m[TEST_SWITCHER_COUNT];
    for (int k = 0; k < TEST_SWITCHER_COUNT; k++) {
        sw[k] = test_make_switcher((enum test_switcher_kind)k);
        t[k] = test_make_task(sw[k], 0);
        m[k].id = k + 1;
        m[k].yields = k == TEST_SWITCHER_NONE ? 0 : 2;
        t[k]->user_code = mixed_fn;
        t[k]->user_ptr = &m[k];
    }
    order_len = 0;
    /* attach order: sjlj(1), none(4), asm(2), asm-nofp(3) */
    static int const attach_order[4] = {TEST_SWITCHER_SJLJ,
                                        TEST_SWITCHER_NONE, TEST_SWITCHER_ASM,
                                        TEST_SWITCHER_ASM_NO_FP};
    for (int i = 0; i < 4; i++) {
        CHECK_RESULT(monad_async_task_attach(ex, t[attach_order[i]], NULL));
    }
    for (int k = 0; k < TEST_SWITCHER_COUNT; k++) {
        test_run_until_detached(ex, t[k], 5000);
    }
    static int const want[10] = {10, 40, 20, 30, 11, 21, 31, 12, 22, 32};
    int ok = order_len == 10;
    for (int i = 0; ok && i < 10; i++) {
        ok = order_log[i] == want[i];
    }
    if (!ok) {
        fprintf(stderr, "  got:");
        for (int i = 0; i < order_len; i++) {
            fprintf(stderr, " %d", order_log[i]);
        }
        fprintf(stderr, "\n  want: 10 40 20 30 11 21 31 12 22 32\n");
        TEST_FAIL("tasks with different switchers did not interleave FIFO");
    }
    for (int k = 0; k < TEST_SWITCHER_COUNT; k++) {
        CHECK_EQ(t[k]->result.value, k + 1);
        CHECK_RESULT(monad_async_task_destroy(t[k]));
        CHECK_RESULT(monad_async_context_switcher_destroy(sw[k]));
    }
    CHECK_RESULT(monad_async_executor_destroy(ex));
    printf("ok   sjlj, asm, asm(NO_FP_CONTROL) and none tasks interleave on "
           "one executor\n");
}

/* ------------------------------------------------------------------ */
/* attach with opt_switcher                                            */

struct sw_probe
{
    int yield_err;
    int ran;
    monad_async_context_switcher seen;
    uintptr_t frame;
};

static monad_async_result sw_probe_fn(monad_async_task task)
{
    struct sw_probe *p = (struct sw_probe *)task->user_ptr;
    p->seen = task->switcher;
    p->frame = (uintptr_t)__builtin_frame_address(0);
    p->yield_err = monad_async_task_yield(task).error;
    p->ran++;
    return monad_async_make_success(0);
}

static void opt_switcher(void)
{
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_context_switcher sjlj = test_make_switcher(TEST_SWITCHER_SJLJ);
    monad_async_context_switcher as = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_context_switcher none = test_make_switcher(TEST_SWITCHER_NONE);
    monad_async_task t = test_make_task(sjlj, 0);
    struct sw_probe p;
    t->user_code = sw_probe_fn;
    t->user_ptr = &p;

    /* sjlj first */
    memset(&p, 0, sizeof(p));
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    test_run_until_detached(ex, t, 5000);
    CHECK(p.seen == sjlj);
    CHECK_EQ(p.yield_err, 0);

    /* to asm: the old switcher is then free to go */
    memset(&p, 0, sizeof(p));
    CHECK_RESULT(monad_async_task_attach(ex, t, as));
    CHECK(t->switcher == as);
    /* a refused attach (already attached) changes nothing */
    CHECK_ERROR(monad_async_task_attach(ex, t, none), EBUSY);
    CHECK(t->switcher == as);
    test_run_until_detached(ex, t, 5000);
    CHECK(p.seen == as);
    CHECK_EQ(p.yield_err, 0);
    CHECK_EQ(p.ran, 1);
    CHECK_RESULT(monad_async_context_switcher_destroy(sjlj));
    CHECK_ERROR(monad_async_context_switcher_destroy(as), EBUSY);

    /* to none: cannot suspend, runs on the executor's stack */
    memset(&p, 0, sizeof(p));
    CHECK_RESULT(monad_async_task_attach(ex, t, none));
    CHECK(t->switcher == none);
    test_run_until_detached(ex, t, 5000);
    CHECK(p.seen == none);
    CHECK_ERROR(test_errno_result(p.yield_err), ENOTSUP);
    CHECK(p.frame < main_frame && main_frame - p.frame < 1024 * 1024);
    CHECK_RESULT(monad_async_context_switcher_destroy(as));

    /* back to a stackful one (a new sjlj): the stack is set up again */
    monad_async_context_switcher sjlj2 =
        test_make_switcher(TEST_SWITCHER_SJLJ);
    for (int i = 0; i < 3; i++) {
        memset(&p, 0, sizeof(p));
        CHECK_RESULT(monad_async_task_attach(ex, t, sjlj2));
        test_run_until_detached(ex, t, 5000);
        CHECK(p.seen == sjlj2);
        CHECK_EQ(p.yield_err, 0);
        uintptr_t const dist = p.frame > main_frame ? p.frame - main_frame
                                                    : main_frame - p.frame;
        CHECK(dist > 1024 * 1024);
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(none));
    CHECK_ERROR(monad_async_context_switcher_destroy(sjlj2), EBUSY);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sjlj2));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    printf("ok   attach with opt_switcher: sjlj -> asm -> none -> sjlj\n");
}

int main(void)
{
    test_watchdog(120, "switchers");
    main_frame = (uintptr_t)__builtin_frame_address(0);
    for (int k = 0; k < TEST_SWITCHER_COUNT; k++) {
        basics((enum test_switcher_kind)k);
    }
    for (int k = 0; k < TEST_SWITCHER_NONE; k++) {
        callee_saved((enum test_switcher_kind)k);
    }
    fp_control(TEST_SWITCHER_ASM);
    test_note("floating-point control is checked for the asm switcher with "
              "FP control on (the only one documented to keep it); sjlj and "
              "asm(NO_FP_CONTROL) make no such promise");
    mixed_switchers();
    opt_switcher();
    printf("switchers: ok\n");
    return 0;
}
