/* A task's stack has a guard page, and a task that overflows it says so:
 * a task recursing without bound faults at about its stack size below
 * where it started, in the guard page right below its stack (not exit 0,
 * not a hang, not after corrupting whatever lies below), and the process
 * ends by SIGABRT after the library's message on stderr, which names the
 * stack size and how to raise it (issue 9):
 *
 *   monad-async: task stack overflow: the task's stack is 262144 bytes;
 *   raise it with ... (task 0x..., fault at 0x... in its guard page)
 *
 * Each overflow runs in a forked child, in three set-ups: nothing of the
 * test's own (the library's alternate signal stack is used); the test's
 * own sigaltstack and SIGSEGV handler set before the first executor (the
 * library keeps the sigaltstack, and a task's overflow is still its
 * message); the test's handler set after the executor, handing the
 * signal on to the one before it (the library's). And faults that are not
 * an overflow of the running task still reach the handler installed
 * before, or the default action (SIGSEGV, no message): a task touching a
 * PROT_NONE page, and a task touching the guard page of another,
 * suspended task. The alternate stacks the library gives executor
 * threads are unmapped when those threads exit. And a task can use a
 * large, in-bounds part of its stack (200 KiB of the default 256 KiB, and
 * most of custom sizes), across a suspension.
 *
 * The library installs its handler once per process, with the first
 * executor: every child is forked before this process creates one, so
 * each starts without it (checked before each fork).
 *
 * Sanitizers: ASan and TSan install SIGSEGV handlers of their own at
 * start-up; the library's, installed later, comes first and hands other
 * faults on to theirs. Should ASan's handler run first all the same
 * (ASAN_OPTIONS=allow_user_segv_handler=0), the message cannot appear:
 * the test then accepts ASan's stack-overflow report instead and says so
 * in a note.
 *
 * Header contract: task.h (struct monad_async_task_attr.stack_size). */
#include "test_common.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

static size_t const KiB = 1024;

static char const MSG_PREFIX[] =
    "monad-async: task stack overflow: the task's stack is ";
static char const MSG_ADVICE[] =
    " bytes; raise it with ExecutorBuilder::stack_size or "
    "ThreadPoolBuilder::stack_size (Rust) or monad_async_task_attr.stack_size "
    "(C) (task ";

enum mode
{
    MODE_PLAIN,       /* nothing of the test's own */
    MODE_USER_BEFORE, /* test's sigaltstack + handler before the executor */
    MODE_USER_AFTER,  /* test's handler after it, chaining to the library's */
    MODE_NOT_GUARD,   /* a task faults on a PROT_NONE page (test's handler) */
    MODE_OTHER_GUARD, /* a task faults in a suspended task's guard page */
    MODE_COUNT
};

static char const *const mode_names[MODE_COUNT] = {
    "no handler of the test's",
    "test's sigaltstack and handler set before the executor",
    "test's handler set after the executor, chaining",
    "fault on a PROT_NONE page that is no guard",
    "fault in another (suspended) task's guard page",
};

struct shared
{
    volatile uintptr_t stack_lo, stack_hi; /* the task's stack mapping */
    volatile uintptr_t guard_lo;           /* the mapping right below it */
    volatile int guard_found;              /* adjacent, no access at all */
    char guard_line[256];
    volatile uintptr_t task_top;  /* frame address at the task's entry */
    volatile uintptr_t task_handle;
    volatile uintptr_t deepest;   /* lowest frame reached */
    volatile uintptr_t fault_addr; /* as the test's handler saw it */
    volatile int faulted;          /* the test's handler ran */
    volatile int chained;          /* ... and handed the signal on */
    volatile uint64_t depth;
    volatile uintptr_t touch_addr; /* NOT_GUARD / OTHER_GUARD: touched */
    volatile int altstack_on;      /* after executor create */
    volatile int altstack_kept;    /* ... and it is the test's own */
};

static struct shared *shm;
static volatile uint64_t never = UINT64_MAX;
static struct sigaction prev_action; /* MODE_USER_AFTER: the library's */
static int chain_to_prev;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    shm->fault_addr = (uintptr_t)si->si_addr;
    shm->faulted = 1;
    if (chain_to_prev && (prev_action.sa_flags & SA_SIGINFO)) {
        /* What a well-behaved handler does with faults it does not own. */
        shm->chained = 1;
        prev_action.sa_sigaction(sig, si, uc);
        return;
    }
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
    shm->task_handle = (uintptr_t)task;
    /* Go through a suspension first, so the overflow happens on a resumed
     * stack. */
    CHECK_RESULT(monad_async_task_yield(task));
    return monad_async_make_success((intptr_t)recurse(0));
}

static monad_async_result touch_fn(monad_async_task task)
{
    (void)task;
    return monad_async_make_success(*(volatile char *)shm->touch_addr);
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

static void install_test_handler(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGSEGV, &sa, old), 0);
}

static void overflow_child(enum test_switcher_kind kind, size_t stack_size,
                           enum mode mode)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    alarm(30);
    static char altstack[64 * 1024];
    if (mode == MODE_USER_BEFORE || mode == MODE_NOT_GUARD) {
        stack_t ss;
        memset(&ss, 0, sizeof(ss));
        ss.ss_sp = altstack;
        ss.ss_size = sizeof(altstack);
        CHECK_EQ(sigaltstack(&ss, NULL), 0);
        install_test_handler(NULL);
    }
    monad_async_executor ex = test_make_executor(0, 0);
    stack_t cur;
    CHECK_EQ(sigaltstack(NULL, &cur), 0);
    shm->altstack_on = !(cur.ss_flags & SS_DISABLE);
    shm->altstack_kept = cur.ss_sp == (void *)altstack;
    if (mode == MODE_USER_AFTER) {
        install_test_handler(&prev_action);
        chain_to_prev = 1;
    }
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task t = test_make_task(sw, stack_size);
    struct timespec const zero = {0, 0};
    if (mode == MODE_NOT_GUARD) {
        long const page = sysconf(_SC_PAGESIZE);
        char *p = mmap(NULL, (size_t)page, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(p != MAP_FAILED);
        shm->touch_addr = (uintptr_t)(p + 100);
        t->user_code = touch_fn;
        CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
        test_run_until_detached(ex, t, 20000);
        fprintf(stderr, "the PROT_NONE read returned?!\n");
        _exit(0);
    }
    if (mode == MODE_OTHER_GUARD) {
        /* The victim launches on a second executor and stays suspended. */
        monad_async_executor ex2 = test_make_executor(0, 0);
        t->user_code = overflow_fn;
        CHECK_RESULT(monad_async_task_attach(ex2, t, NULL));
        CHECK_RESULT(monad_async_executor_run(ex2, 1, &zero));
        CHECK(shm->task_top != 0);
        find_guard(shm->task_top);
        CHECK(shm->guard_found);
        shm->touch_addr = shm->guard_lo + 64;
        monad_async_task t2 = test_make_task(sw, stack_size);
        t2->user_code = touch_fn;
        CHECK_RESULT(monad_async_task_attach(ex, t2, NULL));
        test_run_until_detached(ex, t2, 20000);
        fprintf(stderr, "the guard page read returned?!\n");
        _exit(0);
    }
    t->user_code = overflow_fn;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    /* The launch: the task records its entry frame and yields. */
    CHECK_RESULT(monad_async_executor_run(ex, 1, &zero));
    CHECK(shm->task_top != 0);
    find_guard(shm->task_top);
    test_run_until_detached(ex, t, 20000);
    /* Not reached if the guard page works. */
    fprintf(stderr, "the unbounded recursion returned?!\n");
    _exit(0);
}

/* The SIGSEGV action this process started with: children must be forked
 * before the library has replaced it (its first executor). */
static struct sigaction initial_segv;

/* Runs the child; its stderr into `out`, its status into `*status`. */
static void run_child(enum test_switcher_kind kind, size_t stack_size,
                      enum mode mode, char *out, size_t out_size, int *status)
{
    struct sigaction now;
    CHECK_EQ(sigaction(SIGSEGV, NULL, &now), 0);
    CHECK_MSG(now.sa_sigaction == initial_segv.sa_sigaction,
              "this process changed its SIGSEGV action before forking a "
              "child (an executor was created too early)");
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
        overflow_child(kind, stack_size, mode);
        _exit(99);
    }
    close(pipefd[1]);
    /* Collect the child's stderr while it runs. */
    size_t got = 0;
    for (;;) {
        ssize_t r = read(pipefd[0], out + got, out_size - 1 - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
        if (got == out_size - 1) {
            /* keep draining so the child never blocks */
            char sink[4096];
            while (read(pipefd[0], sink, sizeof(sink)) > 0) {
            }
            break;
        }
    }
    out[got] = 0;
    close(pipefd[0]);
    CHECK_EQ(waitpid(pid, status, 0), pid);
}

static char const *status_text(int status)
{
    static char buf[64];
    if (WIFSIGNALED(status)) {
        snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(status));
    }
    else {
        snprintf(buf, sizeof(buf), "exit code %d", WEXITSTATUS(status));
    }
    return buf;
}

/* The fault address in the library's message for a stack of `usable`
 * bytes and task `handle`, or 0 (with `*why` saying what is missing). */
static uintptr_t parse_message(char const *out, size_t usable,
                               uintptr_t handle, char const **why)
{
    char want[512];
    snprintf(want, sizeof(want), "%s%zu%s0x%lx, fault at 0x", MSG_PREFIX,
             usable, MSG_ADVICE, (unsigned long)handle);
    char const *at = strstr(out, want);
    if (at == NULL) {
        *why = strstr(out, MSG_PREFIX) != NULL
                   ? "the message is there but not as expected"
                   : "no \"monad-async: task stack overflow\" message";
        return 0;
    }
    char *end = NULL;
    unsigned long const addr = strtoul(at + strlen(want), &end, 16);
    if (strncmp(end, " in its guard page)\n", 20) != 0) {
        *why = "the message does not end as expected";
        return 0;
    }
    return (uintptr_t)addr;
}

/* A fault that is not the running task's overflow: no message, and the
 * handler before the library's (or the default action) has it. */
static int check_not_ours(enum test_switcher_kind kind, enum mode mode)
{
    static char out[65536];
    int status = 0;
    run_child(kind, 0, mode, out, sizeof(out), &status);
    char label[160];
    snprintf(label, sizeof(label), "%s switcher, %s", test_switcher_names[kind],
             mode_names[mode]);
    if (strstr(out, MSG_PREFIX) != NULL) {
        fprintf(stderr, "FAIL: %s: the library claimed a fault that is not "
                "the running task's overflow:\n%s", label, out);
        return 1;
    }
    int const by_segv = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
    if (shm->touch_addr == 0) {
        fprintf(stderr, "FAIL: %s: the child did not get to the fault (%s)\n%s",
                label, status_text(status), out);
        return 1;
    }
    /* A sanitizer's deadly-signal report about the touched address (ASan
     * says SEGV; ASan and TSan call a fault near the stack pointer a
     * stack-overflow), after which it exits non-zero. */
    char where[64];
    snprintf(where, sizeof(where), "0x%lx", (unsigned long)shm->touch_addr);
    int const san_report =
        TEST_UNDER_ANY_SANITIZER && WIFEXITED(status) &&
        WEXITSTATUS(status) != 0 &&
        (strstr(out, "SEGV") != NULL ||
         strstr(out, "Sanitizer: stack-overflow") != NULL) &&
        strstr(out, where) != NULL;
    if (mode == MODE_NOT_GUARD) {
        /* The test's own handler, installed before the library's, runs. */
        int const handled = shm->faulted && shm->fault_addr == shm->touch_addr;
        if (!handled && !shm->faulted && san_report) {
            test_note("%s: the sanitizer kept SIGSEGV to itself (ASan with "
                      "allow_user_segv_handler=0?): the test's handler never "
                      "ran; accepted its report on %s instead",
                      label, where);
        }
        else if (!handled || !by_segv) {
            fprintf(stderr, "FAIL: %s: wanted the test's handler to see the "
                    "fault at %s and death by SIGSEGV; handler ran %d, "
                    "fault 0x%lx, child %s\n%s",
                    label, where, shm->faulted,
                    (unsigned long)shm->fault_addr, status_text(status), out);
            return 1;
        }
    }
    else if (!by_segv && !san_report) {
        /* The action before the library's: the default, or a sanitizer's. */
        fprintf(stderr, "FAIL: %s: child %s, wanted SIGSEGV (or a "
                "sanitizer's report on %s)\n%s",
                label, status_text(status), where, out);
        return 1;
    }
    printf("ok   %s: %s, no overflow message\n", label,
           by_segv ? "SIGSEGV" : "the sanitizer's deadly-signal report");
    return 0;
}

static int check_overflow(enum test_switcher_kind kind, size_t stack_size,
                          enum mode mode)
{
    long const page = sysconf(_SC_PAGESIZE);
    size_t const usable = stack_size
        ? (stack_size + (size_t)page - 1) & ~((size_t)page - 1)
        : 256 * KiB;
    static char out[65536];
    int status = 0;
    run_child(kind, stack_size, mode, out, sizeof(out), &status);

    char label[160];
    snprintf(label, sizeof(label), "%s switcher, stack_size %zu, %s",
             test_switcher_names[kind], stack_size, mode_names[mode]);
    uintptr_t const top = shm->task_top;
    if (top == 0) {
        fprintf(stderr, "FAIL: %s: the task never started (%s)\n%s",
                label, status_text(status), out);
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
    /* The thread that runs tasks has an alternate signal stack, and the
     * test's own is never replaced. */
    if (!shm->altstack_on) {
        fprintf(stderr, "FAIL: %s: no alternate signal stack on the "
                "executor's thread\n", label);
        return 1;
    }
    if (mode == MODE_USER_BEFORE && !shm->altstack_kept) {
        fprintf(stderr, "FAIL: %s: creating an executor replaced the "
                "thread's own sigaltstack\n", label);
        return 1;
    }

    char const *why = NULL;
    uintptr_t const fault =
        parse_message(out, usable, shm->task_handle, &why);
    if (fault == 0 && TEST_UNDER_ASAN && strstr(out, MSG_PREFIX) == NULL &&
        strstr(out, "stack-overflow") != NULL) {
        /* ASan's handler ran before the library's: the message cannot
         * appear. Say so; check what ASan reported instead. */
        test_note("%s: ASan's SEGV handler ran first "
                  "(allow_user_segv_handler=0?): the library's message was "
                  "NOT checked, ASan's stack-overflow report was",
                  label);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            return 0;
        }
    }
    if (fault == 0) {
        fprintf(stderr, "FAIL: %s: %s for a %zu-byte stack and task 0x%lx "
                "(child %s); stderr:\n%s",
                label, why, usable, (unsigned long)shm->task_handle,
                status_text(status), out);
        return 1;
    }
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
        fprintf(stderr, "FAIL: %s: child %s, wanted death by SIGABRT after "
                "the message\n%s",
                label, status_text(status), out);
        return 1;
    }
    if (mode == MODE_USER_AFTER) {
        /* The test's handler saw the fault first and handed it on. */
        if (!shm->faulted || !shm->chained || shm->fault_addr != fault) {
            fprintf(stderr, "FAIL: %s: the test's handler ran %d, chained %d, "
                    "saw 0x%lx; the message says 0x%lx\n",
                    label, shm->faulted, shm->chained,
                    (unsigned long)shm->fault_addr, (unsigned long)fault);
            return 1;
        }
    }
    else if (shm->faulted) {
        fprintf(stderr, "FAIL: %s: the test's handler ran for the task's "
                "overflow, which is the library's to report\n", label);
        return 1;
    }
    /* The fault is in the guard, just below the stack mapping, after
     * using about the usable size (the entry frame sits a little below the
     * top of the stack). */
    uintptr_t const dist = top - fault;
    if (fault < shm->guard_lo || fault >= shm->stack_lo) {
        fprintf(stderr, "FAIL: %s: fault at 0x%lx, not in the guard "
                "[0x%lx, 0x%lx) below the stack\n",
                label, (unsigned long)fault,
                (unsigned long)shm->guard_lo, (unsigned long)shm->stack_lo);
        return 1;
    }
    if (fault > top || dist < usable - 32 * KiB || dist > usable + 16 * KiB ||
        reached > usable + 16 * KiB) {
        fprintf(stderr, "FAIL: %s: fault at %zu bytes below the task's entry "
                "frame, expected about %zu (the usable stack size)\n",
                label, (size_t)dist, usable);
        return 1;
    }
    printf("ok   %s: SIGABRT after the message, fault in the guard page at "
           "%zu bytes below the task's entry (depth %" PRIu64 ")\n",
           label, (size_t)dist, (uint64_t)shm->depth);
    return 0;
}

/* Threads that create an executor get an alternate signal stack of the
 * library's (unless they have one), unmapped when the thread exits. */
struct thread_report
{
    int on;
    void *sp;
};

static void *executor_thread(void *arg)
{
    struct thread_report *rep = (struct thread_report *)arg;
    monad_async_executor ex = test_make_executor(0, 0);
    stack_t cur;
    CHECK_EQ(sigaltstack(NULL, &cur), 0);
    rep->on = !(cur.ss_flags & SS_DISABLE);
    rep->sp = cur.ss_sp;
    CHECK_RESULT(monad_async_executor_destroy(ex));
    return NULL;
}

static void check_thread_altstacks(void)
{
    long const page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < 20; i++) {
        struct thread_report rep = {0, NULL};
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, executor_thread, &rep), 0);
        CHECK_EQ(pthread_join(th, NULL), 0);
        CHECK_MSG(rep.on, "thread %d: no alternate signal stack after "
                  "creating an executor", i);
        /* Gone with its thread: msync on an unmapped page is ENOMEM. */
        void *const pg = (void *)((uintptr_t)rep.sp & ~((uintptr_t)page - 1));
        errno = 0;
        CHECK_MSG(msync(pg, (size_t)page, MS_ASYNC) != 0 && errno == ENOMEM,
                  "thread %d's alternate signal stack at %p is still mapped "
                  "after the thread exited", i, rep.sp);
    }
    printf("ok   20 executor threads: each had an alternate signal stack, "
           "unmapped at its exit\n");
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
    CHECK_EQ(sigaction(SIGSEGV, NULL, &initial_segv), 0);
    shm = (struct shared *)mmap(NULL, sizeof(struct shared),
                                PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shm != MAP_FAILED);
    static enum test_switcher_kind const kinds[3] = {
        TEST_SWITCHER_SJLJ, TEST_SWITCHER_ASM, TEST_SWITCHER_ASM_NO_FP};
    /* The children first: they must start before this process creates an
     * executor (run_child checks). */
    int failures = 0;
    for (int k = 0; k < 3; k++) {
        failures += check_overflow(kinds[k], 0, MODE_PLAIN);
        failures += check_overflow(kinds[k], 64 * KiB, MODE_PLAIN);
    }
    failures += check_overflow(TEST_SWITCHER_ASM, 1024 * KiB, MODE_PLAIN);
    failures += check_overflow(TEST_SWITCHER_ASM, 100000, MODE_PLAIN);
    failures += check_overflow(TEST_SWITCHER_SJLJ, 0, MODE_USER_BEFORE);
    failures += check_overflow(TEST_SWITCHER_ASM, 0, MODE_USER_BEFORE);
    failures += check_overflow(TEST_SWITCHER_SJLJ, 0, MODE_USER_AFTER);
    failures += check_overflow(TEST_SWITCHER_ASM, 64 * KiB, MODE_USER_AFTER);
    failures += check_not_ours(TEST_SWITCHER_ASM, MODE_NOT_GUARD);
    failures += check_not_ours(TEST_SWITCHER_ASM, MODE_OTHER_GUARD);
    failures += check_not_ours(TEST_SWITCHER_SJLJ, MODE_OTHER_GUARD);
    CHECK_MSG(failures == 0, "%d overflow case(s) failed", failures);
    for (int k = 0; k < 3; k++) {
        check_in_bounds(kinds[k], 0, 200 * KiB);
        check_in_bounds(kinds[k], 1024 * KiB, 900 * KiB);
        check_in_bounds(kinds[k], 64 * KiB, 40 * KiB);
        /* not a page multiple: rounded up, never down */
        check_in_bounds(kinds[k], 100000, 88000);
    }
    check_thread_altstacks();
    printf("stack_overflow: ok\n");
    return 0;
}
