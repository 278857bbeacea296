/* The same-thread hot path (attach, run, yield, exit; park and wake, the
 * hand-off between tasks that wake each other and park, with ordinary
 * and deferred wakes, and CPU priority changes, from the owner thread)
 * makes no system call
 * and no heap allocation (spec: "100% deterministic in the hot path ... no
 * thread synchronisation, no malloc"; task.h: same-thread attach is "O(1),
 * no lock, no malloc, no system call"; ARCHITECTURE.md: each arrow of the
 * journey is "no allocation, no lock, no system call").
 *
 * How: for each switcher and executor kind, a forked child sets up, warms
 * up, then installs a seccomp filter that traps every system call except
 * exit/exit_group (SECCOMP_RET_TRAP: a SIGSYS handler records which call
 * and a backtrace in shared memory, then exits), and runs 100,000 cycles.
 * Heap calls are counted by interposing malloc and friends (plain build) or
 * through the sanitizer allocator's hooks (ASan/TSan replace malloc, so the
 * interposition cannot be used there); the count must be zero. Under
 * TSan only the heap half runs (see SYSCALL_TRAP_USABLE), and says so.
 * Controls prove both mechanisms live on every run: a child that calls
 * getpid() after the filter must be caught, and a malloc()/free() inside
 * the counting window must be counted. */
#include "test_common.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#else
#error "hot_path.c: add this architecture's AUDIT_ARCH value"
#endif

/* ------------------------------------------------------------------ */
/* Heap call counting                                                  */

static atomic_int counting;
static atomic_uint_fast64_t heap_allocs;
static atomic_uint_fast64_t heap_frees;

static inline void count_alloc(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&heap_allocs, 1, memory_order_relaxed);
    }
}

static inline void count_free(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&heap_frees, 1, memory_order_relaxed);
    }
}

#if TEST_UNDER_ANY_SANITIZER
/* The sanitizer runtimes own malloc; they call these hooks for every user
 * allocation and deallocation. */
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t),
    void (*free_hook)(const volatile void *));

static void san_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    count_alloc();
}

static void san_free_hook(const volatile void *p)
{
    (void)p;
    count_free();
}

static char const *heap_method =
    "sanitizer allocator hooks (__sanitizer_install_malloc_and_free_hooks)";

static void heap_counting_init(void)
{
    CHECK_MSG(__sanitizer_install_malloc_and_free_hooks(san_malloc_hook,
                                                        san_free_hook) != 0,
              "could not install the sanitizer malloc hooks");
}
#elif defined(MONAD_ASYNC_TEST_STATIC)
/* A statically linked program (make test-aarch64) cannot interpose libc's
 * malloc: its definitions would clash with libc.a's. */
static char const *heap_method = "none (statically linked)";

static void heap_counting_init(void)
{
    test_skip("statically linked: malloc cannot be interposed to count "
              "heap calls");
}
#else
/* Interpose the allocator: the library (a static archive) and libc's own
 * PLT calls resolve to these. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

void *malloc(size_t n)
{
    count_alloc();
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    count_alloc();
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    count_alloc();
    return __libc_realloc(p, n);
}

void *reallocarray(void *p, size_t a, size_t b)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    count_alloc();
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p != NULL) {
        count_free();
    }
    __libc_free(p);
}

void *memalign(size_t align, size_t n)
{
    count_alloc();
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count_alloc();
    return __libc_memalign(align, n);
}

int posix_memalign(void **pp, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0) {
        return EINVAL;
    }
    count_alloc();
    void *p = __libc_memalign(align, n);
    if (p == NULL) {
        return ENOMEM;
    }
    *pp = p;
    return 0;
}

void *valloc(size_t n)
{
    count_alloc();
    return __libc_valloc(n);
}

void *pvalloc(size_t n)
{
    count_alloc();
    return __libc_pvalloc(n);
}

static char const *heap_method = "interposed malloc/calloc/realloc/free/"
                                 "memalign/aligned_alloc/posix_memalign";

static void heap_counting_init(void)
{
}
#endif

/* Under TSan the runtime itself makes system calls from instrumented code
 * at any time (it maps fresh trace memory as its event trace fills:
 * __tsan::TraceSwitchPartImpl -> MmapOrDie, and takes futex-based locks),
 * so a syscall trap there would measure TSan, not the library. The TSan
 * build checks the heap half only; the plain and ASan builds check both. */
#define SYSCALL_TRAP_USABLE (!TEST_UNDER_TSAN)

/* ------------------------------------------------------------------ */
/* Shared memory between parent and child                              */

struct shared
{
    volatile long syscall_nr;     /* -1: none trapped */
    volatile uintptr_t call_addr;
    void *volatile bt[32];
    volatile int bt_n;
    volatile uint64_t allocs;
    volatile uint64_t frees;
    volatile uint64_t cycles_done;
    volatile int fail_line;
    volatile long fail_a, fail_b;
};

static struct shared *shm;

#define EXIT_TRAPPED 42
#define EXIT_CHECK_FAILED 43

static void sigsys_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    shm->syscall_nr = si->si_syscall;
    shm->call_addr = (uintptr_t)si->si_call_addr;
    shm->bt_n = backtrace((void **)shm->bt, 32);
    syscall(SYS_exit_group, EXIT_TRAPPED);
}

/* A check inside the filtered region: no printing (that is a system call),
 * just record and leave. */
#define HOT_CHECK(cond, a, b)                                                \
    do {                                                                     \
        if (__builtin_expect(!(cond), 0)) {                                  \
            shm->fail_line = __LINE__;                                       \
            shm->fail_a = (long)(a);                                         \
            shm->fail_b = (long)(b);                                         \
            syscall(SYS_exit_group, EXIT_CHECK_FAILED);                      \
        }                                                                    \
    } while (0)

static void install_filter(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sigsys_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGSYS, &sa, NULL), 0);
    /* Warm the unwinder (backtrace() loads libgcc_s on first use). */
    void *warm[4];
    CHECK_GT(backtrace(warm, 4), 0);

    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* Under ASan only: ASan instruments every noreturn call (longjmp
         * in the sjlj switcher) with __asan_handle_no_return, which calls
         * sigaltstack to find the signal stack. That is the sanitizer's
         * cost, not the library's; the plain build traps it like any. */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                 TEST_UNDER_ASAN ? __NR_sigaltstack : 0xffffffffu, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    };
    struct sock_fprog prog = {
        (unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
    CHECK_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    CHECK_MSG(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0,
              "seccomp: %s", strerror(errno));
}

static void start_counting(void)
{
    atomic_store(&heap_allocs, 0);
    atomic_store(&heap_frees, 0);
    atomic_store(&counting, 1);
}

static void stop_counting(void)
{
    atomic_store(&counting, 0);
    shm->allocs = atomic_load(&heap_allocs);
    shm->frees = atomic_load(&heap_frees);
}

/* ------------------------------------------------------------------ */
/* The work                                                            */

enum mode
{
    MODE_EXIT,   /* attach, run (launch + exit) */
    MODE_YIELD,  /* attach, run (launch + yield), run (resume + exit) */
    MODE_BATCH,  /* attach 6 tasks of mixed priority, run them all */
    MODE_PARK,   /* a task parks, another wakes it (or a wake from outside
                    the run leaves a permit first), both exit */
    MODE_PRIORITY, /* a Low task is raised by a task (or from outside the
                      run), yields, exits */
    MODE_PINGPONG, /* two tasks pass a turn by wake and park: the parks
                      hand the thread straight to each other (handoff.c) */
    MODE_PINGPONG_DEFERRED, /* the same with monad_async_task_wake_deferred:
                               each park switches straight to the task its
                               deferred wake names */
    MODE_CONTROL_SYSCALL, /* control: getpid() in the filtered region */
    MODE_CONTROL_MALLOC   /* control: malloc()/free() in the window */
};

static char const *const mode_names[] = {"attach-run-exit",
                                         "attach-run-yield-run-exit",
                                         "attach 6, run 6",
                                         "park + same-thread wake",
                                         "same-thread priority change",
                                         "ping-pong park/wake (hand-off)",
                                         "ping-pong park/deferred wake",
                                         "control: getpid()",
                                         "control: malloc()+free()"};

#define BATCH 6

static monad_async_result exit_fn(monad_async_task task)
{
    return monad_async_make_success((intptr_t)task->user_ptr + 1);
}

static monad_async_result yield_fn(monad_async_task task)
{
    monad_async_result r = monad_async_task_yield(task);
    if (r.error != 0) {
        return r;
    }
    return monad_async_make_success((intptr_t)task->user_ptr + 1);
}

static uint64_t park_token;

static monad_async_result park_fn(monad_async_task task)
{
    monad_async_result r = monad_async_task_wake_token(task, &park_token);
    if (r.error == 0) {
        r = monad_async_task_park(task, UINT64_MAX);
    }
    if (r.error != 0) {
        return r;
    }
    return monad_async_make_success((intptr_t)task->user_ptr + 1);
}

static monad_async_task park_target;

static monad_async_result wake_fn(monad_async_task task)
{
    monad_async_result const r = monad_async_task_wake(park_target, park_token);
    if (r.error != 0 || r.value != 1) {
        return monad_async_make_failure(EPROTO);
    }
    return monad_async_make_success((intptr_t)task->user_ptr + 1);
}

static monad_async_task prio_target;

/* Raises prio_target (Low, queued) to High, inside the run. */
static monad_async_result raise_fn(monad_async_task task)
{
    uint64_t token;
    monad_async_result r = monad_async_task_wake_token(prio_target, &token);
    if (r.error == 0) {
        r = monad_async_task_set_cpu_priority(prio_target, token,
                                              monad_async_priority_high);
    }
    if (r.error != 0) {
        return r;
    }
    return monad_async_make_success((intptr_t)task->user_ptr + 1);
}

/* MODE_PINGPONG: whose turn it is, the two tasks and their tokens. */
#define PINGPONG_ROUNDS 4
static unsigned pp_turn;
static monad_async_task pp_task[2];
static uint64_t pp_token[2];
static unsigned pp_passes[2];
static int pp_deferred; /* wake with monad_async_task_wake_deferred */

static monad_async_result pingpong_fn(monad_async_task task)
{
    unsigned const me = task == pp_task[1];
    monad_async_result r = monad_async_task_wake_token(task, &pp_token[me]);
    for (unsigned k = 0; r.error == 0 && k < PINGPONG_ROUNDS; k++) {
        while (r.error == 0 && pp_turn != me) {
            r = monad_async_task_park(task, UINT64_MAX);
        }
        pp_passes[me]++;
        pp_turn = 1 - me;
        if (pp_token[1 - me] != 0) {
            monad_async_result const w =
                pp_deferred
                    ? monad_async_task_wake_deferred(pp_task[1 - me], pp_token[1 - me])
                    : monad_async_task_wake(pp_task[1 - me], pp_token[1 - me]);
            if (w.error != 0 && w.error != ESRCH) {
                return w;
            }
        }
    }
    if (r.error != 0) {
        return r;
    }
    return monad_async_make_success((intptr_t)task->user_ptr + 1);
}

static void *(*volatile malloc_fn)(size_t) = malloc;
static void (*volatile free_fn)(void *) = free;

static void cycles(monad_async_executor ex, monad_async_task *tasks,
                   enum mode mode, unsigned long n)
{
    struct timespec const zero = {0, 0};
    for (unsigned long i = 0; i < n; i++) {
        monad_async_result r;
        switch (mode) {
        case MODE_EXIT:
            tasks[0]->user_ptr = (void *)(uintptr_t)i;
            r = monad_async_task_attach(ex, tasks[0], NULL);
            HOT_CHECK(r.error == 0, i, r.error);
            r = monad_async_executor_run(ex, 1, &zero);
            HOT_CHECK(r.error == 0 && r.value == 1, r.error, r.value);
            HOT_CHECK(tasks[0]->result.value == (intptr_t)i + 1, i,
                      tasks[0]->result.value);
            break;
        case MODE_YIELD:
            tasks[0]->user_ptr = (void *)(uintptr_t)i;
            r = monad_async_task_attach(ex, tasks[0], NULL);
            HOT_CHECK(r.error == 0, i, r.error);
            if (i & 1) {
                r = monad_async_executor_run(ex, 1, &zero);
                HOT_CHECK(r.error == 0 && r.value == 1, r.error, r.value);
                r = monad_async_executor_run(ex, 1, &zero);
                HOT_CHECK(r.error == 0 && r.value == 1, r.error, r.value);
            }
            else {
                r = monad_async_executor_run(ex, 8, NULL);
                HOT_CHECK(r.error == 0 && r.value == 2, r.error, r.value);
            }
            HOT_CHECK(tasks[0]->result.value == (intptr_t)i + 1, i,
                      tasks[0]->result.value);
            break;
        case MODE_BATCH:
            for (int k = 0; k < BATCH; k++) {
                tasks[k]->user_ptr = (void *)(uintptr_t)(i + (unsigned)k);
                tasks[k]->priority.cpu = (monad_async_priority)((i + k) % 3);
                r = monad_async_task_attach(ex, tasks[k], NULL);
                HOT_CHECK(r.error == 0, k, r.error);
            }
            r = monad_async_executor_run(ex, 100, &zero);
            HOT_CHECK(r.error == 0 && r.value == BATCH, r.error, r.value);
            for (int k = 0; k < BATCH; k++) {
                HOT_CHECK(tasks[k]->result.value == (intptr_t)(i + k) + 1, k,
                          tasks[k]->result.value);
            }
            break;
        case MODE_PARK:
            tasks[0]->user_ptr = (void *)(uintptr_t)i;
            tasks[1]->user_ptr = (void *)(uintptr_t)i;
            r = monad_async_task_attach(ex, tasks[0], NULL);
            HOT_CHECK(r.error == 0, i, r.error);
            if (i & 1) {
                /* Wake before park, from the owner thread outside the
                 * run: a permit, and the park returns at once. */
                uint64_t token;
                r = monad_async_task_wake_token(tasks[0], &token);
                HOT_CHECK(r.error == 0, i, r.error);
                r = monad_async_task_wake(tasks[0], token);
                HOT_CHECK(r.error == 0 && r.value == 0, r.error, r.value);
                r = monad_async_executor_run(ex, 8, &zero);
                HOT_CHECK(r.error == 0 && r.value == 1, r.error, r.value);
            }
            else {
                r = monad_async_task_attach(ex, tasks[1], NULL);
                HOT_CHECK(r.error == 0, i, r.error);
                /* park, wake (from the other task), resume */
                r = monad_async_executor_run(ex, 8, &zero);
                HOT_CHECK(r.error == 0 && r.value == 3, r.error, r.value);
                HOT_CHECK(tasks[1]->result.value == (intptr_t)i + 1, i,
                          tasks[1]->result.error);
            }
            HOT_CHECK(tasks[0]->result.value == (intptr_t)i + 1, i,
                      tasks[0]->result.error);
            break;
        case MODE_PRIORITY:
            tasks[0]->user_ptr = (void *)(uintptr_t)i;
            tasks[1]->user_ptr = (void *)(uintptr_t)i;
            tasks[0]->priority.cpu = monad_async_priority_low;
            r = monad_async_task_attach(ex, tasks[0], NULL);
            HOT_CHECK(r.error == 0, i, r.error);
            if (i & 1) {
                /* From the owner thread outside the run. */
                uint64_t token;
                r = monad_async_task_wake_token(tasks[0], &token);
                HOT_CHECK(r.error == 0, i, r.error);
                r = monad_async_task_set_cpu_priority(tasks[0], token,
                                                      monad_async_priority_high);
                HOT_CHECK(r.error == 0, i, r.error);
                HOT_CHECK(ex->tasks_runnable[monad_async_priority_high] == 1,
                          i, ex->tasks_runnable[monad_async_priority_high]);
                r = monad_async_executor_run(ex, 8, &zero);
                HOT_CHECK(r.error == 0 && r.value == 2, r.error, r.value);
            }
            else {
                /* From a task (High) that runs first. */
                tasks[1]->priority.cpu = monad_async_priority_high;
                r = monad_async_task_attach(ex, tasks[1], NULL);
                HOT_CHECK(r.error == 0, i, r.error);
                r = monad_async_executor_run(ex, 8, &zero);
                HOT_CHECK(r.error == 0 && r.value == 3, r.error, r.value);
                HOT_CHECK(tasks[1]->result.value == (intptr_t)i + 1, i,
                          tasks[1]->result.error);
            }
            HOT_CHECK(tasks[0]->result.value == (intptr_t)i + 1 &&
                          tasks[0]->priority.cpu == monad_async_priority_high,
                      i, tasks[0]->result.error);
            break;
        case MODE_PINGPONG:
        case MODE_PINGPONG_DEFERRED:
            pp_deferred = mode == MODE_PINGPONG_DEFERRED;
            pp_turn = 0;
            for (int k = 0; k < 2; k++) {
                pp_token[k] = 0;
                pp_passes[k] = 0;
                tasks[k]->user_ptr = (void *)(uintptr_t)i;
                r = monad_async_task_attach(ex, tasks[k], NULL);
                HOT_CHECK(r.error == 0, k, r.error);
            }
            /* Launch a (parks), launch b (wakes a, hands off to it), then
             * hand-offs until both exit: in one run. */
            r = monad_async_executor_run(ex, 64, &zero);
            HOT_CHECK(r.error == 0 && r.value == 2 * PINGPONG_ROUNDS,
                      r.error, r.value);
            for (int k = 0; k < 2; k++) {
                HOT_CHECK(tasks[k]->result.value == (intptr_t)i + 1, k,
                          tasks[k]->result.error);
                HOT_CHECK(pp_passes[k] == PINGPONG_ROUNDS, k, pp_passes[k]);
            }
            break;
        case MODE_CONTROL_SYSCALL:
            if (i == n / 2) {
                /* must be caught */
                shm->cycles_done = (uint64_t)syscall(SYS_getpid);
            }
            break;
        case MODE_CONTROL_MALLOC:
            if (i == n / 2) {
                void *p = malloc_fn(48);
                HOT_CHECK(p != NULL, 0, 0);
                free_fn(p);
            }
            break;
        }
        shm->cycles_done = i + 1;
    }
}

static void child(enum test_switcher_kind kind, unsigned entries,
                  enum mode mode, unsigned long n)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    monad_async_executor ex = test_make_executor(entries, 0);
    monad_async_context_switcher sw = test_make_switcher(kind);
    monad_async_task tasks[BATCH];
    for (int k = 0; k < BATCH; k++) {
        tasks[k] = test_make_task(sw, 0);
        tasks[k]->user_code = mode == MODE_YIELD ? yield_fn : exit_fn;
    }
    if (mode == MODE_PARK) {
        tasks[0]->user_code = park_fn;
        tasks[1]->user_code = wake_fn;
        park_target = tasks[0];
    }
    if (mode == MODE_PINGPONG || mode == MODE_PINGPONG_DEFERRED) {
        for (int k = 0; k < 2; k++) {
            tasks[k]->user_code = pingpong_fn;
            pp_task[k] = tasks[k];
        }
    }
    if (mode == MODE_PRIORITY) {
        tasks[0]->user_code = yield_fn;
        tasks[1]->user_code = raise_fn;
        prio_target = tasks[0];
    }
    /* Warm up: first launches, lazily set-up state, page faults, tick
     * calibration, the malloc arena used by the controls. */
    void *p = malloc(48);
    free(p);
    enum mode warm = mode >= MODE_CONTROL_SYSCALL ? MODE_EXIT : mode;
    cycles(ex, tasks, warm, 1000);
    /* Nothing may remain attached or runnable. */
    CHECK_EQ(ex->tasks_attached, 0);

    /* The malloc control runs without the syscall filter: its deliberate
     * malloc may legitimately need the kernel (a sanitizer allocator maps
     * fresh memory for it), and it only has to prove counting is live. */
    if (mode != MODE_CONTROL_MALLOC && SYSCALL_TRAP_USABLE) {
        install_filter();
    }
    shm->cycles_done = 0;
    start_counting();
    cycles(ex, tasks, mode, n);
    stop_counting();
    syscall(SYS_exit_group, 0);
}

static char const *syscall_name(long nr)
{
    static struct
    {
        long nr;
        char const *name;
    } const names[] = {
        {SYS_read, "read"},
        {SYS_write, "write"},
        {SYS_mmap, "mmap"},
        {SYS_munmap, "munmap"},
        {SYS_mprotect, "mprotect"},
        {SYS_madvise, "madvise"},
        {SYS_brk, "brk"},
        {SYS_futex, "futex"},
        {SYS_getpid, "getpid"},
        {SYS_gettid, "gettid"},
        {SYS_sched_yield, "sched_yield"},
        {SYS_clock_gettime, "clock_gettime"},
        {SYS_clock_nanosleep, "clock_nanosleep"},
        {SYS_nanosleep, "nanosleep"},
        {SYS_rt_sigprocmask, "rt_sigprocmask"},
        {SYS_sigaltstack, "sigaltstack"},
        {SYS_io_uring_enter, "io_uring_enter"},
        {SYS_eventfd2, "eventfd2"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].nr == nr) {
            return names[i].name;
        }
    }
    return "?";
}

static void describe_trap(void)
{
    fprintf(stderr, "    system call %ld (%s), issued at %p; backtrace:\n",
            shm->syscall_nr, syscall_name(shm->syscall_nr),
            (void *)shm->call_addr);
    int n = shm->bt_n;
    if (n < 0 || n > 32) {
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        void *a = shm->bt[i];
        Dl_info info;
        memset(&info, 0, sizeof(info));
        if (dladdr(a, &info) != 0 && info.dli_fname != NULL) {
            uintptr_t off = (uintptr_t)a - (uintptr_t)info.dli_fbase;
            char where[512] = "";
            char cmd[1024];
            snprintf(cmd, sizeof(cmd),
                     "addr2line -f -i -p -C -e '%s' 0x%lx 2>/dev/null",
                     strstr(info.dli_fname, "/") ? info.dli_fname
                                                 : "/proc/self/exe",
                     (unsigned long)(off ? off - 1 : 0));
            FILE *f = popen(cmd, "r");
            if (f != NULL) {
                size_t got = fread(where, 1, sizeof(where) - 1, f);
                where[got] = 0;
                pclose(f);
                char *nl;
                while ((nl = strchr(where, '\n')) != NULL) {
                    *nl = ' ';
                }
            }
            fprintf(stderr, "      #%d %p %s+0x%lx %s %s\n", i, a,
                    info.dli_fname, (unsigned long)off,
                    info.dli_sname ? info.dli_sname : "", where);
        }
        else {
            fprintf(stderr, "      #%d %p\n", i, a);
        }
    }
}

/* Runs one child; returns 0 if it made no syscall and no heap call. For
 * the controls, returns 0 if the mechanism caught the deliberate call. */
static int run_child(enum test_switcher_kind kind, unsigned entries,
                     enum mode mode, unsigned long n)
{
    memset((void *)shm, 0, sizeof(*shm));
    shm->syscall_nr = -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        child(kind, entries, mode, n);
        _exit(99); /* not reached */
    }
    int status = 0;
    uint64_t const deadline = test_now_ns() + 60ull * 1000000000ull;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        CHECK(w >= 0);
        if (w == pid) {
            break;
        }
        if (test_now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "FAIL: %s, %s executor, %s: child hung (%" PRIu64
                    " cycles done)\n",
                    test_switcher_names[kind],
                    entries ? "ring" : "compute-only", mode_names[mode],
                    (uint64_t)shm->cycles_done);
            return 1;
        }
        test_sleep_ns(1000000);
    }
    char label[160];
    snprintf(label, sizeof(label), "%s, %s executor, %s",
             test_switcher_names[kind], entries ? "ring" : "compute-only",
             mode_names[mode]);
    int const trapped = (WIFEXITED(status) &&
                         WEXITSTATUS(status) == EXIT_TRAPPED) ||
                        (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS);

    if (mode == MODE_CONTROL_SYSCALL) {
        if (!trapped) {
            fprintf(stderr, "FAIL: %s: the deliberate getpid() was not "
                    "caught (status 0x%x): the syscall trap is not live\n",
                    label, status);
            return 1;
        }
        if (WIFEXITED(status) && shm->syscall_nr != SYS_getpid) {
            fprintf(stderr, "FAIL: %s: trapped syscall %ld, not getpid "
                    "(%d)\n", label, shm->syscall_nr, (int)SYS_getpid);
            return 1;
        }
        if (shm->cycles_done != n / 2) {
            fprintf(stderr, "FAIL: %s: trapped after %" PRIu64
                    " cycles, expected at cycle %lu\n",
                    label, (uint64_t)shm->cycles_done, n / 2);
            return 1;
        }
        printf("ok   %s: caught as it must be\n", label);
        return 0;
    }
    if (trapped) {
        fprintf(stderr, "FAIL: %s: the hot path made a system call after %"
                PRIu64 " cycles\n", label, (uint64_t)shm->cycles_done);
        if (WIFEXITED(status)) {
            describe_trap();
        }
        else {
            fprintf(stderr, "    (killed by SIGSYS before the handler could "
                    "record which call)\n");
        }
        return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CHECK_FAILED) {
        fprintf(stderr, "FAIL: %s: check at hot_path.c:%d failed in cycle %"
                PRIu64 " (values %ld, %ld)\n",
                label, shm->fail_line, (uint64_t)shm->cycles_done,
                shm->fail_a, shm->fail_b);
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: %s: child ended with status 0x%x (%s %d)\n",
                label, status,
                WIFSIGNALED(status) ? "signal" : "exit code",
                WIFSIGNALED(status) ? WTERMSIG(status)
                                    : WEXITSTATUS(status));
        return 1;
    }
    if (shm->cycles_done != n) {
        fprintf(stderr, "FAIL: %s: only %" PRIu64 " of %lu cycles done\n",
                label, (uint64_t)shm->cycles_done, n);
        return 1;
    }
    if (mode == MODE_CONTROL_MALLOC) {
        if (shm->allocs < 1 || shm->frees < 1) {
            fprintf(stderr, "FAIL: %s: the deliberate malloc/free was not "
                    "counted (%" PRIu64 " allocs, %" PRIu64 " frees): the "
                    "heap counting is not live\n",
                    label, (uint64_t)shm->allocs, (uint64_t)shm->frees);
            return 1;
        }
        printf("ok   %s: counted as it must be\n", label);
        return 0;
    }
    if (shm->allocs != 0 || shm->frees != 0) {
        fprintf(stderr, "FAIL: %s: %" PRIu64 " heap allocations and %" PRIu64
                " frees in %lu cycles of the hot path\n",
                label, (uint64_t)shm->allocs, (uint64_t)shm->frees, n);
        return 1;
    }
    printf("ok   %s: %lu cycles, %s no heap call\n", label, n,
           SYSCALL_TRAP_USABLE ? "no system call," : "(syscalls not checked)");
    return 0;
}

int main(void)
{
    test_watchdog(280, "hot_path");
    if (test_emulator() != NULL) {
        test_skip("under %s a seccomp filter would trap the emulator's own "
                  "host system calls, not the emulated program's",
                  test_emulator());
    }
    heap_counting_init();
    shm = (struct shared *)mmap(NULL, sizeof(struct shared),
                                PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shm != MAP_FAILED);
    unsigned long const n = test_scaled(100000);
    test_note("heap calls counted with %s", heap_method);
    if (TEST_UNDER_ASAN) {
        test_note("ASan build: sigaltstack is let through the syscall trap "
                  "(ASan's own longjmp instrumentation calls it); every "
                  "other system call is still trapped");
    }
    if (n != 100000) {
        test_note("scaled down to %lu cycles per case", n);
    }

    /* In-process proof that heap counting sees a malloc. */
    start_counting();
    void *p = malloc_fn(32);
    free_fn(p);
    atomic_store(&counting, 0);
    CHECK_MSG(atomic_load(&heap_allocs) >= 1 && atomic_load(&heap_frees) >= 1,
              "heap counting did not see a malloc/free (%s)", heap_method);

    if (!SYSCALL_TRAP_USABLE) {
        test_note("TSan build: system calls NOT checked (the TSan runtime "
                  "maps trace memory and takes futex locks from instrumented "
                  "code); heap calls are; the plain and ASan builds check "
                  "system calls");
    }
    int failures = 0;
    /* Controls first: the mechanisms must catch deliberate calls. */
    if (SYSCALL_TRAP_USABLE) {
        failures += run_child(TEST_SWITCHER_SJLJ, 0, MODE_CONTROL_SYSCALL, n);
    }
    failures += run_child(TEST_SWITCHER_SJLJ, 0, MODE_CONTROL_MALLOC, n);
    CHECK_MSG(failures == 0, "the controls failed: the test cannot see "
              "system calls or heap calls, so it proves nothing");

    for (int k = 0; k < TEST_SWITCHER_COUNT; k++) {
        enum test_switcher_kind const kind = (enum test_switcher_kind)k;
        for (unsigned entries = 0; entries <= 64; entries += 64) {
            failures += run_child(kind, entries, MODE_EXIT, n);
            if (kind != TEST_SWITCHER_NONE) {
                failures += run_child(kind, entries, MODE_YIELD, n);
                failures += run_child(kind, entries, MODE_PARK, n);
                failures += run_child(kind, entries, MODE_PRIORITY, n);
                failures += run_child(kind, entries, MODE_PINGPONG, n);
                failures += run_child(kind, entries, MODE_PINGPONG_DEFERRED, n);
            }
        }
        failures += run_child(kind, 64, MODE_BATCH, n / BATCH + 1);
    }
    /* Controls again at the end, so a passing run proves they were live. */
    if (SYSCALL_TRAP_USABLE) {
        failures += run_child(TEST_SWITCHER_ASM, 64, MODE_CONTROL_SYSCALL, n);
    }
    failures += run_child(TEST_SWITCHER_ASM, 64, MODE_CONTROL_MALLOC, n);
    CHECK_MSG(failures == 0, "%d hot-path case(s) failed", failures);
    printf("hot_path: ok\n");
    return 0;
}
