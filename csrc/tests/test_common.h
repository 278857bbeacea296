/* monad-async C test suite: a tiny header-only harness.
 *
 * Every check prints `FAILED file:line: ...` to stderr and exits the program
 * with status 1 on failure, so a test program passes only by reaching the
 * end of main. Helpers:
 *
 *   CHECK(cond)                 cond must be true
 *   CHECK_MSG(cond, fmt, ...)   same, with an explanation
 *   CHECK_RESULT(r)             r (a monad_async_result) must be a success
 *   CHECK_ERROR(r, ERRNO)       r must be a failure with exactly ERRNO
 *   CHECK_EQ(a, b)              integers, printed on failure
 *   CHECK_NE/LT/LE/GT/GE(a, b)  likewise
 *   test_scaled(n)              n divided by MONAD_ASYNC_TEST_SCALE (>= 1)
 *   test_now_ns()               CLOCK_MONOTONIC in nanoseconds
 *   test_thread_cpu_ns()        the calling thread's CPU time, likewise
 *   test_watchdog(seconds)      fail (not hang) if the program runs longer
 *   test_note(fmt, ...)         a `note:` line the runner shows even on pass
 *   TEST_UNDER_ASAN/TSAN/UBSAN/ANY_SANITIZER   1 when built so
 *   test_skip(fmt, ...)         end the test as skipped (exit 77): the
 *                               runner prints SKIP and the reason
 *   test_emulator()             the emulator this run is under, or NULL
 *   test_no_ring_reason()       why no io_uring ring can be made, or NULL
 *   test_skip_ring_part(what)   1 (with a note) if a ring part must go
 *   test_ring_entries(n, what)  n, or 0 (with a note) without io_uring
 *   test_kernel_wrote(p, n)     tell valgrind the kernel wrote these bytes
 *   test_under_valgrind()       1 when running under valgrind
 *
 * Runs under an emulator (`make test-aarch64`: qemu-user) set
 * MONAD_ASYNC_TEST_EMULATOR. Only there may a test lack an io_uring ring,
 * and only if io_uring_setup really is ENOSYS: the helpers that make ring
 * executors then skip the test (or the test skips its ring part, saying
 * so). Everywhere else a ring that cannot be made fails the test.
 */
#ifndef MONAD_ASYNC_TEST_COMMON_H
#define MONAD_ASYNC_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <monad_async.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- which sanitizers this program was built with ---- */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define TEST_UNDER_TSAN 1
#endif
#if __has_feature(undefined_behavior_sanitizer)
#define TEST_UNDER_UBSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TEST_UNDER_ASAN)
#define TEST_UNDER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(TEST_UNDER_TSAN)
#define TEST_UNDER_TSAN 1
#endif
#ifndef TEST_UNDER_ASAN
#define TEST_UNDER_ASAN 0
#endif
#ifndef TEST_UNDER_TSAN
#define TEST_UNDER_TSAN 0
#endif
#ifndef TEST_UNDER_UBSAN
#define TEST_UNDER_UBSAN 0
#endif
#define TEST_UNDER_ANY_SANITIZER (TEST_UNDER_ASAN || TEST_UNDER_TSAN)

/* ---- valgrind ---- */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define TEST_HAVE_MEMCHECK 1
#endif
#endif
#ifndef TEST_HAVE_MEMCHECK
#define TEST_HAVE_MEMCHECK 0
#endif

/* Memory the kernel wrote for an io_uring operation (a read's or a
 * receive's buffer, an accepted peer's address): memcheck sees the system
 * calls a program makes, not what the kernel does on behalf of the
 * operations of a ring, so without this a buffer it filled still reads as
 * undefined. Marks `n` bytes at `p` defined; nothing without valgrind's
 * headers, and a few instructions outside valgrind. */
static void test_kernel_wrote(void const *p, size_t n) __attribute__((unused));

static void test_kernel_wrote(void const *p, size_t n)
{
#if TEST_HAVE_MEMCHECK
    if (p != NULL && n != 0) {
        (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
    }
#else
    (void)p;
    (void)n;
#endif
}

/* 1 under valgrind (0 also when built without its headers). */
static int test_under_valgrind(void) __attribute__((unused));

static int test_under_valgrind(void)
{
#if TEST_HAVE_MEMCHECK
    return RUNNING_ON_VALGRIND ? 1 : 0;
#else
    return 0;
#endif
}

/* ---- reporting ---- */
static void test_fail_(char const *file, int line, char const *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn, unused));

static void test_fail_(char const *file, int line, char const *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "FAILED %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}

static void test_note(char const *fmt, ...)
    __attribute__((format(printf, 1, 2), unused));

static void test_note(char const *fmt, ...)
{
    va_list ap;
    printf("note: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* The name of an errno value, for messages ("ECANCELED (Operation
 * canceled)"). */
static char const *test_errno_name(int e) __attribute__((unused));

static char const *test_errno_name(int e)
{
    switch (e) {
    case 0: return "success";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EAGAIN: return "EAGAIN";
    case ECANCELED: return "ECANCELED";
    case ETIME: return "ETIME";
    case ENOTSUP: return "ENOTSUP";
    case ESHUTDOWN: return "ESHUTDOWN";
    case ENOMEM: return "ENOMEM";
    case EDOM: return "EDOM";
    case ERANGE: return "ERANGE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case EEXIST: return "EEXIST";
    case ENOSPC: return "ENOSPC";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    default: return "E?";
    }
}

#define TEST_FAIL(...) test_fail_(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            TEST_FAIL("CHECK(%s) is false", #cond);                          \
        }                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                 \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fflush(stdout);                                                  \
            fprintf(stderr, "FAILED %s:%d: CHECK(%s) is false: ", __FILE__,  \
                    __LINE__, #cond);                                        \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            fflush(stderr);                                                  \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define CHECK_RESULT(r)                                                      \
    do {                                                                     \
        monad_async_result check_r_ = (r);                                   \
        if (monad_async_is_failure(check_r_)) {                              \
            TEST_FAIL("%s failed: %s %d (%s)", #r,                           \
                      test_errno_name(check_r_.error), check_r_.error,       \
                      strerror(check_r_.error));                             \
        }                                                                    \
    } while (0)

#define CHECK_ERROR(r, ERR)                                                  \
    do {                                                                     \
        monad_async_result check_r_ = (r);                                   \
        int check_want_ = (ERR);                                             \
        if (check_r_.error != check_want_) {                                 \
            if (check_r_.error == 0) {                                       \
                TEST_FAIL("%s succeeded (value %" PRIdPTR "), wanted %s",    \
                          #r, check_r_.value, #ERR);                         \
            }                                                                \
            TEST_FAIL("%s gave %s %d (%s), wanted %s", #r,                   \
                      test_errno_name(check_r_.error), check_r_.error,       \
                      strerror(check_r_.error), #ERR);                       \
        }                                                                    \
        if (check_r_.value != 0) {                                           \
            TEST_FAIL("%s failed with %s but value is %" PRIdPTR             \
                      " (must be 0)",                                        \
                      #r, #ERR, check_r_.value);                             \
        }                                                                    \
    } while (0)

#define CHECK_CMP_(a, op, b)                                                 \
    do {                                                                     \
        long long check_a_ = (long long)(a);                                 \
        long long check_b_ = (long long)(b);                                 \
        if (!(check_a_ op check_b_)) {                                       \
            TEST_FAIL("CHECK(%s %s %s) is false: %lld vs %lld", #a, #op, #b, \
                      check_a_, check_b_);                                   \
        }                                                                    \
    } while (0)

#define CHECK_EQ(a, b) CHECK_CMP_(a, ==, b)
#define CHECK_NE(a, b) CHECK_CMP_(a, !=, b)
#define CHECK_LT(a, b) CHECK_CMP_(a, <, b)
#define CHECK_LE(a, b) CHECK_CMP_(a, <=, b)
#define CHECK_GT(a, b) CHECK_CMP_(a, >, b)
#define CHECK_GE(a, b) CHECK_CMP_(a, >=, b)

/* An errno value observed elsewhere (another thread, a child), as a result
 * for CHECK_ERROR: test_errno_result(0) is a success. */
static monad_async_result test_errno_result(int e) __attribute__((unused));

static monad_async_result test_errno_result(int e)
{
    monad_async_result r;
    r.value = 0;
    r.error = e;
    return r;
}

/* ---- scale, time, watchdog ---- */

/* The divisor the runner sets under sanitizers (MONAD_ASYNC_TEST_SCALE);
 * 1 otherwise. */
static unsigned long test_scale_divisor(void) __attribute__((unused));

static unsigned long test_scale_divisor(void)
{
    char const *s = getenv("MONAD_ASYNC_TEST_SCALE");
    if (s == NULL || *s == 0) {
        return 1;
    }
    unsigned long v = strtoul(s, NULL, 10);
    return v == 0 ? 1 : v;
}

/* `n` scaled down by MONAD_ASYNC_TEST_SCALE, never below 1. */
static unsigned long test_scaled(unsigned long n) __attribute__((unused));

static unsigned long test_scaled(unsigned long n)
{
    unsigned long v = n / test_scale_divisor();
    return v == 0 ? 1 : v;
}

static uint64_t test_now_ns(void) __attribute__((unused));

static uint64_t test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t test_thread_cpu_ns(void) __attribute__((unused));

static uint64_t test_thread_cpu_ns(void)
{
    struct timespec ts;
    CHECK_EQ(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void test_sleep_ns(uint64_t ns) __attribute__((unused));

static void test_sleep_ns(uint64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static char const *test_watchdog_what_ = "the test";

static void test_watchdog_fired_(int sig)
{
    (void)sig;
    static char const msg1[] = "FAILED: watchdog fired: ";
    static char const msg2[] = " did not finish in time (hang?)\n";
    ssize_t w = write(2, msg1, sizeof(msg1) - 1);
    w = write(2, test_watchdog_what_, strlen(test_watchdog_what_));
    w = write(2, msg2, sizeof(msg2) - 1);
    (void)w;
    _exit(1);
}

/* After `seconds`, print which step hung and exit 1. Call again to re-arm
 * with a new description; test_watchdog(0, NULL) disarms. */
static void test_watchdog(unsigned seconds, char const *what)
    __attribute__((unused));

static void test_watchdog(unsigned seconds, char const *what)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = test_watchdog_fired_;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    if (what != NULL) {
        test_watchdog_what_ = what;
    }
    alarm(seconds);
}

/* ---- skipping what cannot run here ---- */

static void test_skip(char const *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn, unused));

static void test_skip(char const *fmt, ...)
{
    va_list ap;
    printf("skip: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    fflush(stderr);
    exit(77);
}

static char const *test_emulator(void) __attribute__((unused));

static char const *test_emulator(void)
{
    char const *emu = getenv("MONAD_ASYNC_TEST_EMULATOR");
    return emu != NULL && *emu != 0 ? emu : NULL;
}

static char const *test_no_ring_reason(void) __attribute__((unused));

static char const *test_no_ring_reason(void)
{
    static int probed;
    static char why[160];
    char const *const emu = test_emulator();
    if (emu == NULL) {
        return NULL;
    }
    if (!probed) {
        probed = 1;
        /* struct io_uring_params is 120 bytes; zero asks for defaults. */
        unsigned char params[120];
        memset(params, 0, sizeof(params));
        long const fd = syscall(SYS_io_uring_setup, 1u, params);
        if (fd >= 0) {
            close((int)fd);
        }
        else if (errno == ENOSYS) {
            snprintf(why, sizeof(why),
                     "io_uring_setup is ENOSYS under %s (it emulates no "
                     "io_uring)",
                     emu);
        }
    }
    return why[0] != 0 ? why : NULL;
}

/* For a test with parts on a ring executor and parts without: 1, and a
 * note, when the ring part `what` cannot run here. */
static int test_skip_ring_part(char const *what) __attribute__((unused));

static int test_skip_ring_part(char const *what)
{
    char const *const why = test_no_ring_reason();
    if (why == NULL) {
        return 0;
    }
    test_note("SKIPPED %s: %s", what, why);
    return 1;
}

/* `entries`, or 0 (with a note) where no ring can be made: for a part
 * that runs as well on a compute-only executor. */
static unsigned test_ring_entries(unsigned entries, char const *what)
    __attribute__((unused));

static unsigned test_ring_entries(unsigned entries, char const *what)
{
    char const *const why = test_no_ring_reason();
    if (entries == 0 || why == NULL) {
        return entries;
    }
    test_note("%s ran on a compute-only executor instead of one with a "
              "ring: %s",
              what, why);
    return 0;
}

static void test_need_ring(unsigned entries) __attribute__((unused));

static void test_need_ring(unsigned entries)
{
    char const *const why = test_no_ring_reason();
    if (entries != 0 && why != NULL) {
        test_skip("needs an executor with an io_uring ring: %s", why);
    }
}

/* ---- small conveniences over the library ---- */

/* Non-zero while `task` is attached. */
static int test_task_attached(monad_async_task task) __attribute__((unused));

static int test_task_attached(monad_async_task task)
{
    return (atomic_load(&task->state) & MONAD_ASYNC_TASK_STATE_ATTACHED) != 0;
}

static uint32_t test_task_state(monad_async_task task) __attribute__((unused));

static uint32_t test_task_state(monad_async_task task)
{
    return atomic_load(&task->state);
}

/* Runs `ex` until `task` is no longer attached, failing after
 * `timeout_ms` of wall time. Returns the number of items done. */
static uint64_t test_run_until_detached(monad_async_executor ex,
                                        monad_async_task task,
                                        uint64_t timeout_ms)
    __attribute__((unused));

static uint64_t test_run_until_detached(monad_async_executor ex,
                                        monad_async_task task,
                                        uint64_t timeout_ms)
{
    uint64_t const deadline = test_now_ns() + timeout_ms * 1000000ull;
    uint64_t items = 0;
    struct timespec const tick = {0, 10 * 1000 * 1000};
    while (test_task_attached(task)) {
        if (test_now_ns() > deadline) {
            TEST_FAIL("task %p still attached after %" PRIu64
                      " ms of running its executor (state 0x%x)",
                      (void *)task, timeout_ms,
                      (unsigned)test_task_state(task));
        }
        monad_async_result r = monad_async_executor_run(ex, 64, &tick);
        if (r.error == ETIME) {
            continue;
        }
        CHECK_RESULT(r);
        items += (uint64_t)r.value;
    }
    return items;
}

/* The switchers every test can iterate over. */
enum test_switcher_kind
{
    TEST_SWITCHER_SJLJ = 0,
    TEST_SWITCHER_ASM,
    TEST_SWITCHER_ASM_NO_FP,
    TEST_SWITCHER_NONE,
    TEST_SWITCHER_COUNT
};

static char const *const test_switcher_names[TEST_SWITCHER_COUNT]
    __attribute__((unused)) = {"sjlj", "asm", "asm(NO_FP_CONTROL)", "none"};

static monad_async_context_switcher
test_make_switcher(enum test_switcher_kind kind) __attribute__((unused));

static monad_async_context_switcher
test_make_switcher(enum test_switcher_kind kind)
{
    monad_async_context_switcher sw = NULL;
    switch (kind) {
    case TEST_SWITCHER_SJLJ:
        CHECK_RESULT(monad_async_context_switcher_sjlj_create(&sw));
        break;
    case TEST_SWITCHER_ASM:
        CHECK_RESULT(monad_async_context_switcher_asm_create(&sw));
        break;
    case TEST_SWITCHER_ASM_NO_FP: {
        struct monad_async_context_switcher_attr a;
        memset(&a, 0, sizeof(a));
        a.flags = MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL;
        CHECK_RESULT(
            monad_async_context_switcher_asm_create_with_attr(&sw, &a));
        break;
    }
    case TEST_SWITCHER_NONE:
        CHECK_RESULT(monad_async_context_switcher_none_create(&sw));
        break;
    default:
        TEST_FAIL("bad switcher kind %d", (int)kind);
    }
    CHECK(sw != NULL);
    return sw;
}

static monad_async_executor test_make_executor(unsigned entries,
                                               uint32_t flags)
    __attribute__((unused));

static monad_async_executor test_make_executor(unsigned entries,
                                               uint32_t flags)
{
    test_need_ring(entries);
    struct monad_async_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.io_uring_ring.entries = entries;
    attr.flags = flags;
    monad_async_executor ex = NULL;
    CHECK_RESULT(monad_async_executor_create(&ex, &attr));
    CHECK(ex != NULL);
    return ex;
}

/* An executor with a ring of `entries`. A ring that cannot be created
 * fails the test with the library's explanation: I/O tests never pass
 * silently without a ring. */
static monad_async_executor test_make_ring_executor(unsigned entries,
                                                    uint32_t inflight_limit)
    __attribute__((unused));

static monad_async_executor test_make_ring_executor_cq(unsigned entries,
                                                       uint32_t inflight_limit,
                                                       uint32_t cq_entries)
    __attribute__((unused));

static monad_async_executor test_make_ring_executor(unsigned entries,
                                                    uint32_t inflight_limit)
{
    return test_make_ring_executor_cq(entries, inflight_limit, 0);
}

/* The same with a completion queue of `cq_entries` (0: the default). */
static monad_async_executor test_make_ring_executor_cq(unsigned entries,
                                                       uint32_t inflight_limit,
                                                       uint32_t cq_entries)
{
    test_need_ring(entries);
    struct monad_async_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.io_uring_ring.entries = entries;
    attr.io_inflight_limit = inflight_limit;
    attr.io_cq_entries = cq_entries;
    monad_async_executor ex = NULL;
    monad_async_result r = monad_async_executor_create(&ex, &attr);
    if (r.error != 0) {
        char why[512];
        monad_async_result d =
            monad_async_executor_describe_error(r.error, why, sizeof(why));
        (void)d;
        TEST_FAIL("cannot create an executor with a %u-entry io_uring: %s "
                  "(%d): %s",
                  entries, strerror(r.error), r.error, why);
    }
    CHECK(ex != NULL);
    CHECK_GE(ex->ring.sq_entries, entries);
    return ex;
}

/* Runs `ex` until `*remaining` reaches 0, failing after `timeout_ms`. */
static void test_run_until_zero(monad_async_executor ex,
                                int volatile *remaining, uint64_t timeout_ms)
    __attribute__((unused));

static void test_run_until_zero(monad_async_executor ex,
                                int volatile *remaining, uint64_t timeout_ms)
{
    uint64_t const deadline = test_now_ns() + timeout_ms * 1000000ull;
    struct timespec const tick = {0, 50 * 1000 * 1000};
    while (*remaining > 0) {
        if (test_now_ns() > deadline) {
            TEST_FAIL("%d tasks still running after %" PRIu64 " ms",
                      *remaining, timeout_ms);
        }
        monad_async_result r = monad_async_executor_run(ex, 1024, &tick);
        if (r.error == ETIME) {
            continue;
        }
        CHECK_RESULT(r);
    }
}

static monad_async_task test_make_task(monad_async_context_switcher sw,
                                       size_t stack_size)
    __attribute__((unused));

static monad_async_task test_make_task(monad_async_context_switcher sw,
                                       size_t stack_size)
{
    struct monad_async_task_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.stack_size = stack_size;
    monad_async_task t = NULL;
    CHECK_RESULT(monad_async_task_create(&t, sw, &attr));
    CHECK(t != NULL);
    return t;
}

#endif
