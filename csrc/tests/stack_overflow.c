/* A task's stack has a guard page: a task recursing without bound dies by
 * SIGSEGV at about its stack size below where it started (not exit 0, not a
 * hang, not after corrupting whatever lies below). Under ASan the child
 * instead exits non-zero after ASan's stack-overflow report. And a task can
 * use a large, in-bounds part of its stack (200 KiB of the default 256 KiB,
 * and most of custom sizes), across a suspension.
 * Header contract: task.h (struct monad_async_task_attr.stack_size:
 * "0 picks the default (256 KiB). Rounded up to whole pages; a guard page
 * below it catches overflow"). */
#include "test_common.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

static size_t const KiB = 1024;

struct shared
{
    volatile uintptr_t stack_lo, stack_hi; /* the task's stack mapping */
    volatile uintptr_t guard_lo;           /* the mapping right below it */
    volatile int guard_found;              /* adjacent, no access at all */
    char guard_line[256];
    volatile uintptr_t task_top;  /* frame address at the task's entry */
    volatile uintptr_t deepest;   /* lowest frame reached */
    volatile uintptr_t fault_addr;
    volatile int faulted;
    volatile uint64_t depth;
};

static struct shared *shm;
static volatile uint64_t never = UINT64_MAX;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    shm->fault_addr = (uintptr_t)si->si_addr;
    shm->faulted = 1;
    /* Die by the signal: restore the default action and return, so the
     * faulting access repeats and kills the process. */
    signal(sig, SIG_DFL);
}

static __attribute__((noinline)) uint64_t recurse(uint64_t depth)
{
    volatile char buf[512];
    buf[0] = (char)depth;
    buf[sizeof(buf) - 1] = (char)(depth >> 8);
    shm->deepest = (uintptr_t)&buf[0];
    shm->depth = depth;
    if (depth == never) {
        return 0;
    }
    uint64_t r = recurse(depth + 1);
    return r + (uint64_t)buf[depth % sizeof(buf)]; /* no tail call */
}

static monad_async_result overflow_fn(monad_async_task task)
{
    shm->task_top = (uintptr_t)__builtin_frame_address(0);
    /* Go through a suspension first, so the overflow happens on a resumed
     * stack. */
    CHECK_RESULT(monad_async_task_yield(task));
    return monad_async_make_success((intptr_t)recurse(0));
}

/* From /proc/self/maps: the mapping holding `addr`, and whether the
 * mapping right below it (adjacent) allows no access at all: the guard. */
static void find_guard(uintptr_t addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    char line[512];
    uintptr_t lo = 0, hi = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long a, b;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && a <= addr &&
            addr < b) {
            lo = a;
            hi = b;
        }
    }
    shm->stack_lo = lo;
    shm->stack_hi = hi;
    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long a, b;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && b == lo) {
            shm->guard_lo = a;
            shm->guard_found = strncmp(perms, "---", 3) == 0;
            snprintf(shm->guard_line, sizeof(shm->guard_line), "%.200s", line);
        }
    }
    fclose(f);
}

static void overflow_child(enum test_switcher_kind kind, size_t stack_size)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    alarm(30);
    if (!TEST_UNDER_ANY_SANITIZER) {
        static char altstack[64 * 1024];
        stack_t ss;
        memset(&ss, 0, sizeof(ss));
        ss.ss_sp = altstack;
        ss.ss_size = sizeof(altstack);
        CHECK_EQ(sigaltstack(&ss, NULL), 0);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = segv_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        CHECK_EQ(sigaction(SIGSEGV, &sa, NULL), 0);
    }
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task t = test_make_task(sw, stack_size);
    t->user_code = overflow_fn;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    /* The launch: the task records its entry frame and yields. */
    struct timespec const zero = {0, 0};
    CHECK_RESULT(monad_async_executor_run(ex, 1, &zero));
    CHECK(shm->task_top != 0);
    find_guard(shm->task_top);
    test_run_until_detached(ex, t, 20000);
    /* Not reached if the guard page works. */
    fprintf(stderr, "the unbounded recursion returned?!\n");
    _exit(0);
}

static int check_overflow(enum test_switcher_kind kind, size_t stack_size)
{
    size_t const usable = stack_size ? stack_size : 256 * KiB;
    memset((void *)shm, 0, sizeof(*shm));
    int pipefd[2];
    CHECK_EQ(pipe(pipefd), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        close(pipefd[1]);
        overflow_child(kind, stack_size);
        _exit(99);
    }
    close(pipefd[1]);
    /* Collect the child's stderr (sanitizer reports) while it runs. */
    static char out[65536];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(pipefd[0], out + got, sizeof(out) - 1 - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
        if (got == sizeof(out) - 1) {
            /* keep draining so the child never blocks */
            char sink[4096];
            while (read(pipefd[0], sink, sizeof(sink)) > 0) {
            }
            break;
        }
    }
    out[got] = 0;
    close(pipefd[0]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);

    char label[96];
    snprintf(label, sizeof(label), "%s switcher, stack_size %zu",
             test_switcher_names[kind], stack_size);
    uintptr_t const top = shm->task_top;
    if (top == 0) {
        fprintf(stderr, "FAIL: %s: the task never started (status 0x%x)\n%s",
                label, status, out);
        return 1;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        fprintf(stderr, "FAIL: %s: the overflowing child hung\n%s", label,
                out);
        return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        fprintf(stderr, "FAIL: %s: the overflowing child exited 0\n%s", label,
                out);
        return 1;
    }
    uintptr_t const reached = top - shm->deepest;
    /* The stack mapping holds at least the usable size asked for (rounded
     * up to pages), and right below it lies a mapping with no access. */
    size_t const mapped = (size_t)(shm->stack_hi - shm->stack_lo);
    if (shm->stack_lo == 0 || mapped < usable) {
        fprintf(stderr, "FAIL: %s: the task's stack mapping is %zu bytes, "
                "less than the %zu usable bytes asked for\n",
                label, mapped, usable);
        return 1;
    }
    if (!shm->guard_found) {
        fprintf(stderr, "FAIL: %s: no inaccessible guard mapping directly "
                "below the task's stack [0x%lx, 0x%lx) (mapping below: %s)\n",
                label, (unsigned long)shm->stack_lo,
                (unsigned long)shm->stack_hi,
                shm->guard_line[0] ? shm->guard_line : "none adjacent\n");
        return 1;
    }
    if (TEST_UNDER_ANY_SANITIZER) {
        /* The sanitizer's SEGV handler reports and exits non-zero (or the
         * process dies by SIGSEGV). The report must be about this. */
        int const by_segv = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
        int const reported = strstr(out, "stack-overflow") != NULL ||
                             strstr(out, "SEGV") != NULL;
        if (!by_segv && !(WIFEXITED(status) && reported)) {
            fprintf(stderr, "FAIL: %s: status 0x%x and no sanitizer "
                    "stack-overflow/SEGV report:\n%s",
                    label, status, out);
            return 1;
        }
        /* The report names the faulting address ("... on address 0x..."
         * from ASan, "SEGV on unknown address 0x..." from others): it must
         * be in the guard. */
        char const *at = strstr(out, "address 0x");
        if (at != NULL) {
            unsigned long addr = strtoul(at + strlen("address "), NULL, 16);
            if (addr < shm->guard_lo || addr >= shm->stack_lo) {
                fprintf(stderr, "FAIL: %s: the sanitizer reports the fault at "
                        "0x%lx, not in the guard [0x%lx, 0x%lx)\n%s",
                        label, addr, (unsigned long)shm->guard_lo,
                        (unsigned long)shm->stack_lo, out);
                return 1;
            }
        }
        else {
            test_note("%s: the sanitizer's report names no address; fault "
                      "location not checked", label);
        }
        if (reached > usable + 64 * KiB) {
            fprintf(stderr, "FAIL: %s: recursion reached %zu bytes below the "
                    "task's entry on a %zu-byte stack before the fault\n",
                    label, (size_t)reached, usable);
            return 1;
        }
        printf("ok   %s: child ended by %s after %zu KiB of recursion "
               "(sanitizer build: %s)\n",
               label, by_segv ? "SIGSEGV" : "a sanitizer report",
               (size_t)reached / KiB,
               strstr(out, "stack-overflow") ? "stack-overflow reported"
                                             : "SEGV reported");
        return 0;
    }
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV) {
        fprintf(stderr, "FAIL: %s: child status 0x%x (%s %d), wanted death by "
                "SIGSEGV\n%s",
                label, status, WIFSIGNALED(status) ? "signal" : "exit code",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                out);
        return 1;
    }
    if (!shm->faulted) {
        fprintf(stderr, "FAIL: %s: died by SIGSEGV but the handler did not "
                "run\n", label);
        return 1;
    }
    /* The fault is in the guard, just below the stack mapping, after
     * using about the usable size (the entry frame sits a little below the
     * top of the stack). */
    uintptr_t const dist = top - shm->fault_addr;
    if (shm->fault_addr < shm->guard_lo || shm->fault_addr >= shm->stack_lo) {
        fprintf(stderr, "FAIL: %s: fault at 0x%lx, not in the guard "
                "[0x%lx, 0x%lx) below the stack\n",
                label, (unsigned long)shm->fault_addr,
                (unsigned long)shm->guard_lo, (unsigned long)shm->stack_lo);
        return 1;
    }
    if (shm->fault_addr > top || dist < usable - 32 * KiB ||
        dist > usable + 16 * KiB) {
        fprintf(stderr, "FAIL: %s: fault at %zu bytes below the task's entry "
                "frame, expected about %zu (the usable stack size)\n",
                label, (size_t)dist, usable);
        return 1;
    }
    printf("ok   %s: SIGSEGV in the guard page at %zu bytes below the task's "
           "entry (depth %" PRIu64 ")\n",
           label, (size_t)dist, (uint64_t)shm->depth);
    return 0;
}

/* In-bounds use of a large part of the stack, across a yield. */
struct big_use
{
    size_t bytes;
    uint64_t sum;
};

static __attribute__((noinline)) uint64_t use_stack(monad_async_task task,
                                                    size_t bytes)
{
    volatile unsigned char *buf = (volatile unsigned char *)__builtin_alloca(
        bytes);
    for (size_t i = 0; i < bytes; i += 64) {
        buf[i] = (unsigned char)(i >> 6);
    }
    buf[bytes - 1] = 0x5a;
    CHECK_RESULT(monad_async_task_yield(task));
    uint64_t sum = 0;
    for (size_t i = 0; i < bytes; i += 64) {
        CHECK_EQ(buf[i], (unsigned char)(i >> 6));
        sum += buf[i];
    }
    CHECK_EQ(buf[bytes - 1], 0x5a);
    return sum;
}

static monad_async_result big_fn(monad_async_task task)
{
    struct big_use *b = (struct big_use *)task->user_ptr;
    b->sum = use_stack(task, b->bytes);
    return monad_async_make_success(0);
}

static void check_in_bounds(enum test_switcher_kind kind, size_t stack_size,
                            size_t use)
{
    monad_async_executor ex = test_make_executor(0, 0);
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task t = test_make_task(sw, stack_size);
    struct big_use b = {use, 0};
    t->user_code = big_fn;
    t->user_ptr = &b;
    for (int round = 0; round < 3; round++) {
        b.sum = 0;
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        test_run_until_detached(ex, t, 10000);
        CHECK_RESULT(t->result);
        CHECK_GT(b.sum, 0);
    }
    printf("ok   %s switcher, stack_size %zu: used %zu bytes in bounds\n",
           test_switcher_names[kind], stack_size, use);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

int main(void)
{
    test_watchdog(240, "stack_overflow");
    shm = (struct shared *)mmap(NULL, sizeof(struct shared),
                                PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shm != MAP_FAILED);
    if (TEST_UNDER_ANY_SANITIZER) {
        test_note("sanitizer build: overflow accepted as SIGSEGV or a "
                  "sanitizer stack-overflow/SEGV report; the guard mapping "
                  "is checked in /proc/self/maps, and the fault address is "
                  "taken from the sanitizer's report (sanitizers own "
                  "SIGSEGV)");
    }
    static enum test_switcher_kind const kinds[3] = {
        TEST_SWITCHER_SJLJ, TEST_SWITCHER_ASM, TEST_SWITCHER_ASM_NO_FP};
    for (int k = 0; k < 3; k++) {
        check_in_bounds(kinds[k], 0, 200 * KiB);
        check_in_bounds(kinds[k], 1024 * KiB, 900 * KiB);
        check_in_bounds(kinds[k], 64 * KiB, 40 * KiB);
        /* not a page multiple: rounded up, never down */
        check_in_bounds(kinds[k], 100000, 88000);
    }
    int failures = 0;
    for (int k = 0; k < 3; k++) {
        failures += check_overflow(kinds[k], 0);
        failures += check_overflow(kinds[k], 64 * KiB);
    }
    failures += check_overflow(TEST_SWITCHER_ASM, 1024 * KiB);
    CHECK_MSG(failures == 0, "%d overflow case(s) failed", failures);
    printf("stack_overflow: ok\n");
    return 0;
}
