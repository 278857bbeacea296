/* Fault injection: every allocation, mapping, eventfd and ring set-up
 * point the library reaches in a scenario fails in turn, and each failure
 * surfaces as the errno the public function's header documents (or is
 * absorbed where the header says it is), leaks nothing, and the program
 * goes on: the same call made again succeeds and the scenario runs to its
 * end.
 *
 * Mechanism. The Makefile links the static library's objects into one
 * relocatable object with -Wl,--wrap for the calls they make to get
 * memory, mappings, descriptors and ring resources (malloc, calloc,
 * aligned_alloc, free, mmap, munmap, mprotect, eventfd,
 * io_uring_queue_init_params, io_uring_get_probe_ring,
 * io_uring_register_buffers, io_uring_register_buf_ring,
 * pthread_cond_init, pthread_key_create, pthread_setspecific,
 * sigaltstack): in it, and only there, a reference to malloc is one to
 * __wrap_malloc, defined below, which calls the real malloc. Nothing else
 * is redirected: not this program's own calls, not libc's or liburing's
 * internal ones, and not those of what a --wrap in the program's own link
 * would catch too (the sanitizer runtime that clang links statically,
 * whose ASan calls sigaltstack on every longjmp, or libc.a in the static
 * aarch64 build). A call is a point only while this program is inside a
 * public function of the library on that thread (the LIB and MUST macros
 * say which, and name it in the reports); the library's heap blocks and
 * mappings are tracked wherever they are made and freed (the alternate
 * signal stack of a thread is unmapped at its exit).
 *
 * The scenario (scenario() below) uses: switchers (sjlj, asm, none), a
 * compute-only executor running stackful tasks that park, wake, yield and
 * sleep; an executor with a ring, a registered buffer pool (fixed writes
 * and reads through a pipe), provided-buffer rings (a receive into a
 * kernel-picked buffer; one ring left for the executor's destroy to free),
 * park and wake on the ring executor, a socket through the ring; and a
 * work dispatcher with two executors on their own threads (one with a
 * ring), tasks submitted, waited for, quit. Creation across threads is
 * serialised, so the points come in the same order every run.
 *
 * The parent never touches the library: it runs the scenario once in a
 * fork()ed child that only counts the points (N, each with its kind and
 * the public function it was reached from), then once more in a fresh
 * child for every point i in 1..N and every error that point's call can
 * really give (ENOMEM; EMFILE, ENFILE for descriptors; ...), failing only
 * the i-th call. A child fails, and so the test, if the failure crashed,
 * aborted or hung (its watchdog, then SIGKILL from the parent), gave
 * another errno than the injected one, an errno the header does not
 * document, or was swallowed where the header promises it surfaces; or if
 * after the scenario it holds more file descriptors (/proc/self/fd), more
 * mappings (/proc/self/maps lines in the plain builds; the library's own
 * mmap/munmap and the io_uring mappings in every build) or more of the
 * library's heap blocks (its malloc/calloc/aligned_alloc less its free;
 * and LeakSanitizer at the child's exit in the ASan build) than before,
 * the main thread's alternate signal stack excepted (executor.h: it is
 * kept). The test fails if it exercised fewer injections than it counted.
 *
 * io_uring_enter refusals (EINTR, EAGAIN, EBUSY) are not repeated here:
 * io_submit_refused.c covers them.
 *
 * Header contract: context.h, task.h, executor.h (create: errors, the
 * signal stack, the CQ fallback), io.h (buffer pools, buffer rings,
 * socket), dispatcher.h (create, executor create). */
#include "test_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

/* ---- the injection points ---- */

enum fi_kind
{
    FI_MALLOC,
    FI_CALLOC,
    FI_ALIGNED_ALLOC,
    FI_MMAP,
    FI_MPROTECT,
    FI_EVENTFD,
    FI_RING_INIT,
    FI_PROBE,
    FI_REGISTER_BUFFERS,
    FI_REGISTER_BUF_RING,
    FI_COND_INIT,
    FI_KEY_CREATE,
    FI_SETSPECIFIC,
    FI_SIGALTSTACK,
    FI_KINDS
};

static char const *const fi_kind_names[FI_KINDS] = {
    "malloc",
    "calloc",
    "aligned_alloc",
    "mmap",
    "mprotect",
    "eventfd",
    "io_uring_queue_init_params",
    "io_uring_get_probe_ring",
    "io_uring_register_buffers",
    "io_uring_register_buf_ring",
    "pthread_cond_init",
    "pthread_key_create",
    "pthread_setspecific",
    "sigaltstack",
};

/* What each call gives when memory or descriptors run out (its man
 * page): every point is failed once with each. 0 ends a list. */
#define FI_MAX_ERRNOS 3
static int const fi_kind_errnos[FI_KINDS][FI_MAX_ERRNOS] = {
    [FI_MALLOC] = {ENOMEM},
    [FI_CALLOC] = {ENOMEM},
    [FI_ALIGNED_ALLOC] = {ENOMEM},
    [FI_MMAP] = {ENOMEM},
    [FI_MPROTECT] = {ENOMEM},
    [FI_EVENTFD] = {EMFILE, ENFILE, ENOMEM},
    [FI_RING_INIT] = {ENOMEM, EMFILE, ENFILE},
    [FI_PROBE] = {ENOMEM},
    [FI_REGISTER_BUFFERS] = {ENOMEM},
    [FI_REGISTER_BUF_RING] = {ENOMEM},
    [FI_COND_INIT] = {ENOMEM},
    [FI_KEY_CREATE] = {EAGAIN, ENOMEM},
    [FI_SETSPECIFIC] = {ENOMEM},
    [FI_SIGALTSTACK] = {ENOMEM},
};

/* The errnos each public function that reaches a point documents (its
 * header), for failures of memory, descriptors and ring set-up. 0 ends a
 * list. A point reached from a function not listed fails the test: a new
 * allocation somewhere needs its contract written down here. */
static struct
{
    char const *fn;
    int errnos[8];
} const fi_documented[] = {
    /* context.h */
    {"monad_async_context_switcher_sjlj_create", {ENOMEM}},
    {"monad_async_context_switcher_asm_create", {ENOMEM, ENOTSUP}},
    {"monad_async_context_switcher_none_create", {ENOMEM}},
    /* task.h */
    {"monad_async_task_create", {EINVAL, ENOMEM}},
    /* executor.h */
    {"monad_async_executor_create",
     {ENOMEM, EPERM, ENOSYS, EINVAL, ENOTSUP, EMFILE, ENFILE}},
    /* io.h */
    {"monad_async_io_buffers_register", {EBUSY, ENOTSUP, EPERM, EINVAL, ENOMEM}},
    /* io.h: "ENOMEM, or the kernel's error" (ENOMEM is what pinning or
     * allocating in the kernel gives). */
    {"monad_async_io_buffer_pool_create",
     {EINVAL, EBUSY, ENOTSUP, EPERM, ENOMEM}},
    {"monad_async_io_buffer_ring_create",
     {EINVAL, ENOTSUP, EPERM, ENOSPC, ENOMEM}},
    /* dispatcher.h: executor create has executor create's errors. */
    {"monad_async_work_dispatcher_create", {EINVAL, ENOMEM}},
    {"monad_async_work_dispatcher_executor_create",
     {EINVAL, ENOMEM, EPERM, ENOSYS, ENOTSUP, EMFILE, ENFILE}},
};

/* Why a failure may leave the public call succeeding (the header says
 * so), or FI_SURFACES. */
enum fi_why
{
    FI_SURFACES = 0,
    /* executor.h: the alternate signal stack and the overflow handler are
     * best effort; without them an overflow is a plain SIGSEGV. */
    FI_WHY_STACK_GUARD,
    /* io.h (socket): without the probe, IORING_OP_SOCKET is taken as
     * missing and the system call is used. */
    FI_WHY_PROBE,
    /* executor.h (io_cq_entries): the default CQ's memory refused
     * (ENOMEM), the kernel's default of twice the SQ is used. */
    FI_WHY_CQ_FALLBACK,
    FI_WHYS
};

static char const *const fi_why_names[FI_WHYS] = {
    "surfaced",
    "stack guard (best effort, executor.h)",
    "ring probe (socket falls back to the system call, io.h)",
    "CQ fallback to twice the SQ (executor.h)",
};

/* ---- what the children tell the parent (shared memory) ---- */

#define FI_MAX_POINTS 512
#define FI_SITE_LEN 64

struct fi_point
{
    int kind;
    char site[FI_SITE_LEN];
};

struct fi_shared
{
    /* The counting run. */
    uint32_t npoints;
    bool overflow;
    struct fi_point points[FI_MAX_POINTS];
    /* An injection run. */
    bool fired;    /* the chosen point was reached and failed */
    bool mismatch; /* ... but it was another kind or site than counted */
    struct fi_point fired_point;
    int why;       /* enum fi_why */
    bool done;     /* the child passed every check */
    /* The counting run: threads that created executors, and how many of
     * them had an alternate signal stack already (a sanitizer's). */
    unsigned guard_threads;
    unsigned guard_threads_foreign;
};

static struct fi_shared *fi_shared;

/* ---- injection state (one child) ---- */

static _Atomic uint32_t fi_count; /* points reached so far */
static uint32_t fi_fail_at;       /* the point to fail, from 1; 0: none */
static int fi_fail_errno;

/* The public function in progress on this thread (NULL: none), and what
 * happened inside it. */
static __thread char const *fi_tls_site;
static __thread bool fi_tls_fired;
static __thread int fi_tls_fired_kind;
static __thread int fi_tls_fired_flags; /* mmap's flags */
static __thread int fi_tls_last_why;    /* of the last MUST on this thread */

/* 0: let the call through. Else the errno to fail it with. */
static int fi_point(int kind, int flags)
{
    char const *const site = fi_tls_site;
    if (site == NULL) {
        return 0;
    }
    uint32_t const n = atomic_fetch_add(&fi_count, 1) + 1;
    if (fi_fail_at == 0) {
        if (n <= FI_MAX_POINTS) {
            struct fi_point *const p = &fi_shared->points[n - 1];
            p->kind = kind;
            snprintf(p->site, sizeof(p->site), "%s", site);
            fi_shared->npoints = n;
        }
        else {
            fi_shared->overflow = true;
        }
        return 0;
    }
    if (n != fi_fail_at) {
        return 0;
    }
    struct fi_point const *const want = &fi_shared->points[n - 1];
    fi_shared->fired = true;
    fi_shared->fired_point.kind = kind;
    snprintf(fi_shared->fired_point.site, sizeof(fi_shared->fired_point.site),
             "%s", site);
    fi_shared->mismatch = want->kind != kind || strcmp(want->site, site) != 0;
    fi_tls_fired = true;
    fi_tls_fired_kind = kind;
    fi_tls_fired_flags = flags;
    return fi_fail_errno;
}

/* ---- what the library holds: heap blocks and mappings it made ---- */

#define FI_TRACK_MAX 1024

struct fi_block
{
    void *p;
    size_t len;
    char const *site;
};

static struct fi_block fi_heap[FI_TRACK_MAX];
static struct fi_block fi_maps[FI_TRACK_MAX];
static atomic_flag fi_track_lock = ATOMIC_FLAG_INIT;

static void fi_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&fi_track_lock,
                                             memory_order_acquire)) {
    }
}

static void fi_unlock(void)
{
    atomic_flag_clear_explicit(&fi_track_lock, memory_order_release);
}

static void fi_track_add(struct fi_block *t, void *p, size_t len)
{
    fi_lock();
    for (size_t i = 0; i < FI_TRACK_MAX; i++) {
        if (t[i].p == NULL) {
            t[i].p = p;
            t[i].len = len;
            t[i].site = fi_tls_site != NULL ? fi_tls_site
                                            : "(outside any public call)";
            fi_unlock();
            return;
        }
    }
    fi_unlock();
    static char const msg[] = "FAILED: fault_injection: tracking table full\n";
    ssize_t const w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(1);
}

static void fi_track_remove(struct fi_block *t, void *p)
{
    fi_lock();
    for (size_t i = 0; i < FI_TRACK_MAX; i++) {
        if (t[i].p == p) {
            t[i].p = NULL;
            break;
        }
    }
    fi_unlock();
}

/* ---- the wrappers ---- */

/* The wrappers: the library's references are to these (the Makefile);
 * they call the real functions. */
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
void __wrap_free(void *p);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off);
int __wrap_munmap(void *addr, size_t len);
int __wrap_mprotect(void *addr, size_t len, int prot);
int __wrap_eventfd(unsigned int initval, int flags);
int __wrap_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                      struct io_uring_params *p);
struct io_uring_probe *__wrap_io_uring_get_probe_ring(struct io_uring *ring);
int __wrap_io_uring_register_buffers(struct io_uring *ring,
                                     struct iovec const *iov, unsigned nr);
int __wrap_io_uring_register_buf_ring(struct io_uring *ring,
                                      struct io_uring_buf_reg *reg,
                                      unsigned int flags);
int __wrap_pthread_cond_init(pthread_cond_t *cond,
                             pthread_condattr_t const *attr);
int __wrap_pthread_key_create(pthread_key_t *key, void (*dtor)(void *));
int __wrap_pthread_setspecific(pthread_key_t key, void const *value);
int __wrap_sigaltstack(stack_t const *ss, stack_t *old);

static void *fi_heap_got(void *p, size_t size)
{
    if (p != NULL) {
        fi_track_add(fi_heap, p, size);
    }
    return p;
}

void *__wrap_malloc(size_t size)
{
    int const e = fi_point(FI_MALLOC, 0);
    if (e != 0) {
        errno = e;
        return NULL;
    }
    return fi_heap_got(malloc(size), size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    int const e = fi_point(FI_CALLOC, 0);
    if (e != 0) {
        errno = e;
        return NULL;
    }
    return fi_heap_got(calloc(n, size), n * size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    int const e = fi_point(FI_ALIGNED_ALLOC, 0);
    if (e != 0) {
        errno = e;
        return NULL;
    }
    return fi_heap_got(aligned_alloc(align, size), size);
}

void __wrap_free(void *p)
{
    if (p != NULL) {
        fi_track_remove(fi_heap, p);
    }
    free(p);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off)
{
    int const e = fi_point(FI_MMAP, flags);
    if (e != 0) {
        errno = e;
        return MAP_FAILED;
    }
    void *const p = mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED) {
        fi_track_add(fi_maps, p, len);
    }
    return p;
}

/* Also at a thread's exit (the library's key destructor frees its
 * alternate signal stack there), outside any public call. */
int __wrap_munmap(void *addr, size_t len)
{
    fi_track_remove(fi_maps, addr);
    return munmap(addr, len);
}

int __wrap_mprotect(void *addr, size_t len, int prot)
{
    int const e = fi_point(FI_MPROTECT, 0);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return mprotect(addr, len, prot);
}

int __wrap_eventfd(unsigned int initval, int flags)
{
    int const e = fi_point(FI_EVENTFD, 0);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return eventfd(initval, flags);
}

int __wrap_io_uring_queue_init_params(unsigned entries, struct io_uring *ring,
                                      struct io_uring_params *p)
{
    int const e = fi_point(FI_RING_INIT, 0);
    if (e != 0) {
        return -e;
    }
    return io_uring_queue_init_params(entries, ring, p);
}

struct io_uring_probe *__wrap_io_uring_get_probe_ring(struct io_uring *ring)
{
    int const e = fi_point(FI_PROBE, 0);
    if (e != 0) {
        errno = e;
        return NULL;
    }
    return io_uring_get_probe_ring(ring);
}

int __wrap_io_uring_register_buffers(struct io_uring *ring,
                                     struct iovec const *iov, unsigned nr)
{
    int const e = fi_point(FI_REGISTER_BUFFERS, 0);
    if (e != 0) {
        return -e;
    }
    return io_uring_register_buffers(ring, iov, nr);
}

int __wrap_io_uring_register_buf_ring(struct io_uring *ring,
                                      struct io_uring_buf_reg *reg,
                                      unsigned int flags)
{
    int const e = fi_point(FI_REGISTER_BUF_RING, 0);
    if (e != 0) {
        return -e;
    }
    return io_uring_register_buf_ring(ring, reg, flags);
}

int __wrap_pthread_cond_init(pthread_cond_t *cond,
                             pthread_condattr_t const *attr)
{
    int const e = fi_point(FI_COND_INIT, 0);
    return e != 0 ? e : pthread_cond_init(cond, attr);
}

int __wrap_pthread_key_create(pthread_key_t *key, void (*dtor)(void *))
{
    int const e = fi_point(FI_KEY_CREATE, 0);
    return e != 0 ? e : pthread_key_create(key, dtor);
}

int __wrap_pthread_setspecific(pthread_key_t key, void const *value)
{
    int const e = fi_point(FI_SETSPECIFIC, 0);
    return e != 0 ? e : pthread_setspecific(key, value);
}

int __wrap_sigaltstack(stack_t const *ss, stack_t *old)
{
    int const e = fi_point(FI_SIGALTSTACK, 0);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return sigaltstack(ss, old);
}

/* ---- calling the library ---- */

static char const *fi_enter(char const *site)
{
    char const *const prev = fi_tls_site;
    fi_tls_site = site;
    return prev;
}

/* A public call, attributed to `fn` for the points it reaches. */
#define LIB(fn, ...)                                                         \
    ({                                                                       \
        char const *const fi_prev_ = fi_enter(#fn);                          \
        monad_async_result const fi_r_ = fn(__VA_ARGS__);                    \
        fi_tls_site = fi_prev_;                                              \
        fi_r_;                                                               \
    })

static bool fi_is_documented(char const *fn, int err)
{
    for (size_t i = 0; i < sizeof(fi_documented) / sizeof(fi_documented[0]);
         i++) {
        if (strcmp(fi_documented[i].fn, fn) != 0) {
            continue;
        }
        for (size_t j = 0; j < 8 && fi_documented[i].errnos[j] != 0; j++) {
            if (fi_documented[i].errnos[j] == err) {
                return true;
            }
        }
        return false;
    }
    TEST_FAIL("%s reached an injection point, and this test does not know "
              "what its header documents: add it to fi_documented",
              fn);
}

static bool fi_is_executor_create(char const *fn)
{
    return strcmp(fn, "monad_async_executor_create") == 0 ||
           strcmp(fn, "monad_async_work_dispatcher_executor_create") == 0;
}

/* The header's reason why the injected failure leaves `fn` succeeding,
 * or FI_SURFACES. */
static int fi_absorbed_by_design(char const *fn, int kind, int flags, int err,
                                 bool default_cq)
{
    if (fi_is_executor_create(fn)) {
        switch (kind) {
        case FI_KEY_CREATE:
        case FI_SETSPECIFIC:
        case FI_SIGALTSTACK:
        case FI_MPROTECT:
            return FI_WHY_STACK_GUARD;
        case FI_MMAP:
            /* The alternate signal stack (MAP_STACK), not the slot
             * table. */
            return (flags & MAP_STACK) ? FI_WHY_STACK_GUARD : FI_SURFACES;
        case FI_PROBE:
            return FI_WHY_PROBE;
        case FI_RING_INIT:
            return err == ENOMEM && default_cq ? FI_WHY_CQ_FALLBACK
                                               : FI_SURFACES;
        default:
            return FI_SURFACES;
        }
    }
    return FI_SURFACES;
}

/* After one attempt of a public call made with MUST: true when done (it
 * succeeded), false to make it again. Only the failure injected into this
 * very call may make it fail, with exactly the injected errno, which its
 * header must document; then the call is made again and must succeed. */
static bool fi_settle(char const *fn, monad_async_result r, int attempt,
                      bool default_cq, int line)
{
    bool const fired = fi_tls_fired;
    fi_tls_fired = false;
    fi_tls_last_why = FI_SURFACES;
    if (!fired) {
        if (r.error != 0) {
            TEST_FAIL("line %d: %s failed with %s (%d) on attempt %d, and no "
                      "failure was injected into it",
                      line, fn, test_errno_name(r.error), r.error,
                      attempt + 1);
        }
        return true;
    }
    char const *const kind = fi_kind_names[fi_tls_fired_kind];
    int const why = fi_absorbed_by_design(fn, fi_tls_fired_kind,
                                          fi_tls_fired_flags, fi_fail_errno,
                                          default_cq);
    fi_shared->why = why;
    fi_tls_last_why = why;
    if (why != FI_SURFACES) {
        if (r.error != 0) {
            TEST_FAIL("line %d: %s failed with %s after %s failed with %s, "
                      "which its header says it gets past (%s)",
                      line, fn, test_errno_name(r.error), kind,
                      test_errno_name(fi_fail_errno), fi_why_names[why]);
        }
        return true;
    }
    if (r.error == 0) {
        TEST_FAIL("line %d: %s succeeded although %s failed with %s inside "
                  "it: the failure was swallowed",
                  line, fn, kind, test_errno_name(fi_fail_errno));
    }
    if (r.error != fi_fail_errno) {
        TEST_FAIL("line %d: %s gave %s (%d) after %s failed with %s (%d): "
                  "the cause is lost",
                  line, fn, test_errno_name(r.error), r.error, kind,
                  test_errno_name(fi_fail_errno), fi_fail_errno);
    }
    if (!fi_is_documented(fn, r.error)) {
        TEST_FAIL("line %d: %s gave %s (%d), which its header does not "
                  "document",
                  line, fn, test_errno_name(r.error), r.error);
    }
    if (r.value != 0) {
        TEST_FAIL("line %d: %s failed with value %" PRIdPTR " (must be 0)",
                  line, fn, r.value);
    }
    if (attempt != 0) {
        TEST_FAIL("line %d: %s: a second injected failure", line, fn);
    }
    return false;
}

/* Creates into `out` with fn(...), again after an injected failure (which
 * must leave `out` unwritten). */
#define MUST_NEW_CQ(out, default_cq, fn, ...)                                \
    do {                                                                     \
        for (int fi_try_ = 0;; fi_try_++) {                                  \
            (out) = NULL;                                                    \
            fi_tls_fired = false;                                            \
            monad_async_result const fi_m_ = LIB(fn, __VA_ARGS__);           \
            if (fi_settle(#fn, fi_m_, fi_try_, (default_cq), __LINE__)) {    \
                CHECK((out) != NULL);                                        \
                break;                                                       \
            }                                                                \
            CHECK_MSG((out) == NULL, "%s wrote its handle on failure", #fn); \
        }                                                                    \
    } while (0)

#define MUST_NEW(out, fn, ...) MUST_NEW_CQ(out, false, fn, __VA_ARGS__)

/* fn(...), again after an injected failure. */
#define MUST(fn, ...)                                                        \
    do {                                                                     \
        for (int fi_try_ = 0;; fi_try_++) {                                  \
            fi_tls_fired = false;                                            \
            monad_async_result const fi_m_ = LIB(fn, __VA_ARGS__);           \
            if (fi_settle(#fn, fi_m_, fi_try_, false, __LINE__)) {           \
                break;                                                       \
            }                                                                \
        }                                                                    \
    } while (0)

/* A call that must succeed. */
#define OK(fn, ...) CHECK_RESULT(LIB(fn, __VA_ARGS__))

/* ---- the scenario ---- */

static bool g_have_ring;
static monad_async_context_switcher g_sw_sjlj, g_sw_asm, g_sw_none;
static monad_async_task g_ta, g_tb, g_tc; /* asm, sjlj, none */
static uint64_t g_token;
static int g_remaining;

/* A thread's alternate signal stack is one the library mapped. */
static bool fi_altstack_is_the_librarys(void)
{
    stack_t cur;
    CHECK_EQ(sigaltstack(NULL, &cur), 0);
    if (cur.ss_flags & SS_DISABLE) {
        return false;
    }
    bool found = false;
    fi_lock();
    for (size_t i = 0; i < FI_TRACK_MAX; i++) {
        char *const p = fi_maps[i].p;
        if (p != NULL && (char *)cur.ss_sp >= p &&
            (char *)cur.ss_sp < p + fi_maps[i].len) {
            found = true;
        }
    }
    fi_unlock();
    return found;
}

/* Before the first executor create on this thread, in the counting run:
 * whether the thread has an alternate signal stack already, which the
 * library keeps (so its stack guard maps none). */
static void fi_note_thread_altstack(void)
{
    if (fi_fail_at != 0) {
        return;
    }
    stack_t cur;
    CHECK_EQ(sigaltstack(NULL, &cur), 0);
    __atomic_fetch_add(&fi_shared->guard_threads, 1, __ATOMIC_RELAXED);
    if (!(cur.ss_flags & SS_DISABLE)) {
        __atomic_fetch_add(&fi_shared->guard_threads_foreign, 1,
                           __ATOMIC_RELAXED);
    }
}

/* After an executor create on this thread: if the stack guard's set-up
 * failed, the thread carries no alternate stack of the library's. */
static void fi_check_guard_after_create(void)
{
    if (fi_tls_last_why == FI_WHY_STACK_GUARD) {
        CHECK_MSG(!fi_altstack_is_the_librarys(),
                  "the stack guard's set-up failed, yet the thread has an "
                  "alternate stack mapped by the library");
    }
}

static monad_async_task fi_new_task(monad_async_context_switcher sw)
{
    struct monad_async_task_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.stack_size = 64 * 1024;
    monad_async_task t;
    MUST_NEW(t, monad_async_task_create, &t, sw, &attr);
    return t;
}

static void fi_run_until_done(monad_async_executor ex)
{
    uint64_t const deadline = test_now_ns() + 20ull * 1000000000ull;
    struct timespec const tick = {0, 10 * 1000 * 1000};
    while (g_remaining > 0) {
        CHECK_MSG(test_now_ns() < deadline, "%d tasks still running",
                  g_remaining);
        monad_async_result const r =
            LIB(monad_async_executor_run, ex, SIZE_MAX, &tick);
        if (r.error != ETIME) {
            CHECK_RESULT(r);
        }
    }
}

static void fi_attach(monad_async_executor ex, monad_async_task t,
                      monad_async_result (*fn)(monad_async_task))
{
    t->user_code = fn;
    OK(monad_async_task_attach, ex, t, NULL);
}

/* Compute-only: A parks until B wakes it, B parks until its deadline and
 * sleeps; C (no stack) cannot suspend and returns. */
static monad_async_result compute_a(monad_async_task task)
{
    OK(monad_async_task_wake_token, task, &g_token);
    OK(monad_async_task_park, task, UINT64_MAX);
    OK(monad_async_task_yield, task);
    g_remaining--;
    return monad_async_make_success(1);
}

static monad_async_result compute_b(monad_async_task task)
{
    monad_async_result const w = LIB(monad_async_task_wake, g_ta, g_token);
    CHECK_RESULT(w);
    CHECK_EQ(w.value, 1);
    CHECK_ERROR(LIB(monad_async_task_park, task, 1000000), ETIME);
    OK(monad_async_task_suspend_for_duration, task, 100000);
    g_remaining--;
    return monad_async_make_success(2);
}

static monad_async_result compute_c(monad_async_task task)
{
    CHECK_ERROR(LIB(monad_async_task_yield, task), ENOTSUP);
    g_remaining--;
    return monad_async_make_success(3);
}

static void fi_compute_part(void)
{
    monad_async_executor ex;
    fi_note_thread_altstack();
    MUST_NEW(ex, monad_async_executor_create, &ex, NULL);
    fi_check_guard_after_create();
    g_remaining = 3;
    fi_attach(ex, g_ta, compute_a);
    fi_attach(ex, g_tb, compute_b);
    fi_attach(ex, g_tc, compute_c);
    fi_run_until_done(ex);
    CHECK_EQ(g_ta->result.value, 1);
    CHECK_EQ(g_tb->result.value, 2);
    CHECK_EQ(g_tc->result.value, 3);
    OK(monad_async_executor_destroy, ex);
}

/* With a ring: first A writes from a buffer of ours registered with
 * monad_async_io_buffers_register; then A writes and reads through a
 * pooled registered buffer and
 * makes a socket through the ring; B receives into kernel-picked buffers
 * of two rings, then parks, and C's wake (made while B waited for I/O)
 * lets it through. */
static monad_async_io_buffer_pool g_pool;
static monad_async_io_buffer_ring g_bring[2];
static int g_pipe[2];
static int g_pair[2];

static unsigned char g_user_buf[4096] __attribute__((aligned(4096)));

static monad_async_result ring_user(monad_async_task task)
{
    memset(g_user_buf, 'u', 256);
    monad_async_result r = LIB(monad_async_io_write_fixed, task, NULL,
                               g_pipe[1], g_user_buf, 256, -1, 0);
    CHECK_EQ(r.value, 256);
    char back[256];
    r = LIB(monad_async_io_read, task, NULL, g_pipe[0], back, sizeof(back), -1);
    CHECK_EQ(r.value, 256);
    test_kernel_wrote(back, 256);
    CHECK(memcmp(back, g_user_buf, 256) == 0);
    g_remaining--;
    return monad_async_make_success(0);
}

static monad_async_result ring_a(monad_async_task task)
{
    struct monad_async_io_buffer b;
    OK(monad_async_io_buffer_claim, task, g_pool, &b);
    memset(b.data, 'x', 512);
    monad_async_result r = LIB(monad_async_io_write_fixed, task, NULL,
                               g_pipe[1], b.data, 512, -1, b.index);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 512);
    char back[512];
    r = LIB(monad_async_io_read, task, NULL, g_pipe[0], back, sizeof(back), -1);
    CHECK_EQ(r.value, 512);
    test_kernel_wrote(back, 512);
    CHECK(memcmp(back, b.data, 512) == 0);
    memset(back, 'y', sizeof(back));
    r = LIB(monad_async_io_write, task, NULL, g_pipe[1], back, sizeof(back), -1);
    CHECK_EQ(r.value, 512);
    r = LIB(monad_async_io_read_fixed, task, NULL, g_pipe[0], b.data, 512, -1,
            b.index);
    CHECK_EQ(r.value, 512);
    test_kernel_wrote(b.data, 512);
    CHECK(memcmp(back, b.data, 512) == 0);
    OK(monad_async_io_buffer_release, g_pool, &b);

    r = LIB(monad_async_io_socket, task, NULL, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_RESULT(r);
    OK(monad_async_io_close, task, NULL, (int)r.value);
    g_remaining--;
    return monad_async_make_success(1);
}

static monad_async_result ring_b(monad_async_task task)
{
    /* The token first: C wakes this work while it waits for I/O, which
     * leaves a permit that the park below consumes. */
    OK(monad_async_task_wake_token, task, &g_token);
    for (int i = 0; i < 2; i++) {
        char msg[16];
        memset(msg, 'a' + i, sizeof(msg));
        monad_async_result r =
            LIB(monad_async_io_send, task, NULL, g_pair[1], msg, 16, 0);
        CHECK_EQ(r.value, 16);
        struct monad_async_io_buffer b;
        r = LIB(monad_async_io_recv_provided, task, NULL, g_pair[0],
                g_bring[i], 0, &b);
        CHECK_EQ(r.value, 16);
        CHECK(b.data != NULL);
        test_kernel_wrote(b.data, 16);
        CHECK(memcmp(b.data, msg, 16) == 0);
        OK(monad_async_io_buffer_ring_release, g_bring[i], &b);
    }
    OK(monad_async_task_park, task, 5000000000ull);
    g_remaining--;
    return monad_async_make_success(2);
}

static monad_async_result ring_c(monad_async_task task)
{
    (void)task;
    monad_async_result const w = LIB(monad_async_task_wake, g_tb, g_token);
    CHECK_RESULT(w);
    CHECK_EQ(w.value, 0); /* B waits for I/O, not parked: a permit */
    g_remaining--;
    return monad_async_make_success(3);
}

static void fi_ring_part(void)
{
    struct monad_async_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.io_uring_ring.entries = 8;
    monad_async_executor ex;
    MUST_NEW_CQ(ex, true, monad_async_executor_create, &ex, &attr);
    fi_check_guard_after_create();
    CHECK_GE(ex->ring.sq_entries, 8);
    if (fi_tls_last_why == FI_WHY_CQ_FALLBACK) {
        CHECK_EQ(ex->ring.cq_entries, 2 * ex->ring.sq_entries);
    }
    else {
        CHECK_EQ(ex->ring.cq_entries, MONAD_ASYNC_IO_CQ_ENTRIES_DEFAULT);
    }
    CHECK_EQ(pipe2(g_pipe, O_CLOEXEC), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_pair), 0);

    struct iovec const iov = {g_user_buf, sizeof(g_user_buf)};
    MUST(monad_async_io_buffers_register, ex, &iov, 1);
    g_remaining = 1;
    fi_attach(ex, g_ta, ring_user);
    fi_run_until_done(ex);
    OK(monad_async_io_buffers_unregister, ex);

    MUST_NEW(g_pool, monad_async_io_buffer_pool_create, &g_pool, ex, 4096, 2);
    for (int i = 0; i < 2; i++) {
        MUST_NEW(g_bring[i], monad_async_io_buffer_ring_create, &g_bring[i],
                 ex, 256, 4);
    }
    CHECK_NE(g_bring[0]->group, g_bring[1]->group);

    g_remaining = 3;
    fi_attach(ex, g_ta, ring_a);
    fi_attach(ex, g_tb, ring_b);
    fi_attach(ex, g_tc, ring_c);
    fi_run_until_done(ex);
    CHECK_EQ(g_ta->result.value, 1);
    CHECK_EQ(g_tb->result.value, 2);
    CHECK_EQ(g_tc->result.value, 3);
    CHECK_EQ(ex->io.submitted, ex->io.completed);

    OK(monad_async_io_buffer_pool_destroy, g_pool);
    OK(monad_async_io_buffer_ring_destroy, g_bring[0]);
    /* g_bring[1] stays: the executor's destroy frees it (io.h). */
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(close(g_pipe[i]), 0);
        CHECK_EQ(close(g_pair[i]), 0);
    }
    OK(monad_async_executor_destroy, ex);
}

/* The work dispatcher: two executors on their own threads (the second
 * with a ring), created one after the other. Their threads run on stacks
 * of ours, so that no thread stack of the C library's outlives them. */
#define FI_THREADS 2
#define FI_THREAD_STACK (1024 * 1024)
static unsigned char g_thread_stacks[FI_THREADS][FI_THREAD_STACK]
    __attribute__((aligned(4096)));

static monad_async_work_dispatcher g_wd;

struct fi_thread
{
    pthread_t thread;
    unsigned ring_entries;
    _Atomic int created;
};

static struct fi_thread g_threads[FI_THREADS];

static void *fi_pool_thread(void *arg)
{
    struct fi_thread *const th = arg;
    struct monad_async_work_dispatcher_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.executor.io_uring_ring.entries = th->ring_entries;
    monad_async_work_dispatcher_executor ex;
    fi_note_thread_altstack();
    MUST_NEW_CQ(ex, true, monad_async_work_dispatcher_executor_create, &ex,
                g_wd, &attr);
    fi_check_guard_after_create();
    atomic_store(&th->created, 1);
    for (;;) {
        monad_async_result const r =
            LIB(monad_async_work_dispatcher_executor_run, ex);
        CHECK_RESULT(r);
        if (r.value < 0) {
            break;
        }
    }
    OK(monad_async_work_dispatcher_executor_destroy, ex);
    return NULL;
}

static monad_async_result disp_stackful(monad_async_task task)
{
    OK(monad_async_task_yield, task);
    OK(monad_async_task_suspend_for_duration, task, 50000);
    return monad_async_make_success(7);
}

static monad_async_result disp_none(monad_async_task task)
{
    (void)task;
    return monad_async_make_success(8);
}

static void fi_dispatcher_part(void)
{
    MUST_NEW(g_wd, monad_async_work_dispatcher_create, &g_wd, NULL);
    for (int i = 0; i < FI_THREADS; i++) {
        struct fi_thread *const th = &g_threads[i];
        th->ring_entries = i == 1 && g_have_ring ? 8 : 0;
        atomic_store(&th->created, 0);
        pthread_attr_t pa;
        CHECK_EQ(pthread_attr_init(&pa), 0);
        CHECK_EQ(pthread_attr_setstack(&pa, g_thread_stacks[i], FI_THREAD_STACK),
                 0);
        CHECK_EQ(pthread_create(&th->thread, &pa, fi_pool_thread, th), 0);
        CHECK_EQ(pthread_attr_destroy(&pa), 0);
        /* One at a time: the points keep their order. */
        while (!atomic_load(&th->created)) {
            test_sleep_ns(100000);
        }
    }
    g_ta->user_code = disp_stackful;
    g_tb->user_code = disp_stackful;
    g_tc->user_code = disp_none;
    monad_async_task const tasks[3] = {g_ta, g_tb, g_tc};
    monad_async_result r = LIB(monad_async_work_dispatcher_submit, g_wd, tasks, 3);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 3);
    OK(monad_async_work_dispatcher_wait, g_wd, 0, 0, NULL);
    CHECK_EQ(g_ta->result.value, 7);
    CHECK_EQ(g_tb->result.value, 7);
    CHECK_EQ(g_tc->result.value, 8);
    OK(monad_async_work_dispatcher_quit, g_wd, SIZE_MAX, NULL);
    for (int i = 0; i < FI_THREADS; i++) {
        CHECK_EQ(pthread_join(g_threads[i].thread, NULL), 0);
    }
    OK(monad_async_work_dispatcher_destroy, g_wd);
}

static void scenario(void)
{
    MUST_NEW(g_sw_sjlj, monad_async_context_switcher_sjlj_create, &g_sw_sjlj);
    MUST_NEW(g_sw_asm, monad_async_context_switcher_asm_create, &g_sw_asm);
    MUST_NEW(g_sw_none, monad_async_context_switcher_none_create, &g_sw_none);
    g_ta = fi_new_task(g_sw_asm);
    g_tb = fi_new_task(g_sw_sjlj);
    g_tc = fi_new_task(g_sw_none);
    fi_compute_part();
    if (g_have_ring) {
        fi_ring_part();
    }
    fi_dispatcher_part();
    OK(monad_async_task_destroy, g_ta);
    OK(monad_async_task_destroy, g_tb);
    OK(monad_async_task_destroy, g_tc);
    OK(monad_async_context_switcher_destroy, g_sw_sjlj);
    OK(monad_async_context_switcher_destroy, g_sw_asm);
    OK(monad_async_context_switcher_destroy, g_sw_none);
}

/* ---- what the process holds ---- */

struct fi_held
{
    int fds;
    int map_lines;  /* /proc/self/maps, less the library's altstack */
    int ring_lines; /* io_uring mappings */
};

static int fi_count_fds(void)
{
    DIR *const d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

static char g_maps_buf[4 << 20];

/* Lines of /proc/self/maps; those of the mapping [skip_lo, skip_hi) are
 * left out. */
static void fi_count_maps(struct fi_held *h, uintptr_t skip_lo,
                          uintptr_t skip_hi)
{
    int const fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    size_t len = 0;
    for (;;) {
        CHECK_MSG(len < sizeof(g_maps_buf) - 1, "/proc/self/maps too big");
        ssize_t const n = read(fd, g_maps_buf + len, sizeof(g_maps_buf) - 1 - len);
        CHECK(n >= 0);
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    g_maps_buf[len] = 0;
    h->map_lines = 0;
    h->ring_lines = 0;
    for (char *line = g_maps_buf; *line != 0;) {
        char *const nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = 0;
        }
        uintptr_t const lo = (uintptr_t)strtoull(line, NULL, 16);
        if (!(lo >= skip_lo && lo < skip_hi)) {
            h->map_lines++;
        }
        if (strstr(line, "[io_uring]") != NULL) {
            h->ring_lines++;
        }
        if (nl == NULL) {
            break;
        }
        line = nl + 1;
    }
}

static void fi_measure(struct fi_held *h)
{
    h->fds = fi_count_fds();
    /* The main thread's alternate signal stack, if the library made it,
     * is kept (executor.h). */
    uintptr_t lo = 0;
    uintptr_t hi = 0;
    stack_t cur;
    CHECK_EQ(sigaltstack(NULL, &cur), 0);
    if (!(cur.ss_flags & SS_DISABLE)) {
        fi_lock();
        for (size_t i = 0; i < FI_TRACK_MAX; i++) {
            char *const p = fi_maps[i].p;
            if (p != NULL && (char *)cur.ss_sp >= p &&
                (char *)cur.ss_sp < p + fi_maps[i].len) {
                lo = (uintptr_t)p;
                hi = (uintptr_t)p + fi_maps[i].len;
            }
        }
        fi_unlock();
    }
    fi_count_maps(h, lo, hi);
}

/* Under a sanitizer or valgrind, which map memory of their own. */
static bool fi_noisy_maps(void)
{
    return TEST_UNDER_ANY_SANITIZER || test_under_valgrind();
}

/* Slower under a sanitizer or valgrind. */
static unsigned fi_slow(void)
{
    return test_under_valgrind() ? 10u : TEST_UNDER_ANY_SANITIZER ? 3u : 1u;
}

/* What the library still holds once everything is destroyed. */
static void fi_check_nothing_held(struct fi_held const *before)
{
    struct fi_held after;
    fi_measure(&after);
    stack_t cur;
    CHECK_EQ(sigaltstack(NULL, &cur), 0);
    int leaks = 0;
    fi_lock();
    for (size_t i = 0; i < FI_TRACK_MAX; i++) {
        if (fi_heap[i].p != NULL) {
            fprintf(stderr, "leak: %zu heap bytes at %p from %s\n",
                    fi_heap[i].len, fi_heap[i].p, fi_heap[i].site);
            leaks++;
        }
        char *const p = fi_maps[i].p;
        if (p != NULL) {
            bool const altstack = !(cur.ss_flags & SS_DISABLE) &&
                                  (char *)cur.ss_sp >= p &&
                                  (char *)cur.ss_sp < p + fi_maps[i].len;
            if (!altstack) {
                fprintf(stderr, "leak: a %zu-byte mapping at %p from %s\n",
                        fi_maps[i].len, (void *)p, fi_maps[i].site);
                leaks++;
            }
        }
    }
    fi_unlock();
    CHECK_MSG(leaks == 0, "%d blocks of the library's leaked", leaks);
    CHECK_MSG(after.fds == before->fds, "%d file descriptors before, %d after",
              before->fds, after.fds);
    CHECK_MSG(after.ring_lines == before->ring_lines,
              "%d io_uring mappings before, %d after", before->ring_lines,
              after.ring_lines);
    /* The sanitizers' allocators, and valgrind, map and keep memory of
     * their own. */
    if (!fi_noisy_maps()) {
        CHECK_MSG(after.map_lines == before->map_lines,
                  "%d lines in /proc/self/maps before, %d after",
                  before->map_lines, after.map_lines);
    }
}

/* ---- the children ---- */

static void fi_child(uint32_t fail_at, int err)
{
    static char what[128];
    snprintf(what, sizeof(what), "fault_injection child (point %u, %s)",
             fail_at, test_errno_name(err));
    test_watchdog(30 * fi_slow(), what);
    fi_fail_at = fail_at;
    fi_fail_errno = err;
    struct fi_held before;
    fi_measure(&before);
    scenario();
    fi_check_nothing_held(&before);
    if (fail_at != 0) {
        CHECK_MSG(fi_shared->fired,
                  "point %u was never reached: the run reached %u points",
                  fail_at, (unsigned)atomic_load(&fi_count));
        CHECK_MSG(!fi_shared->mismatch,
                  "point %u was %s in %s, counted as %s in %s", fail_at,
                  fi_kind_names[fi_shared->fired_point.kind],
                  fi_shared->fired_point.site,
                  fi_kind_names[fi_shared->points[fail_at - 1].kind],
                  fi_shared->points[fail_at - 1].site);
    }
    fi_shared->done = true;
    fflush(stdout);
    fflush(stderr);
    /* exit, not _exit: LeakSanitizer checks the heap at exit. */
    exit(0);
}

/* Runs one child to its end: empty string if it passed, else why not. */
static char const *fi_run_child(uint32_t fail_at, int err)
{
    static char why[160];
    fi_shared->fired = false;
    fi_shared->mismatch = false;
    fi_shared->why = FI_SURFACES;
    fi_shared->done = false;
    fflush(stdout);
    fflush(stderr);
    pid_t const pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fi_child(fail_at, err);
    }
    uint64_t const limit_ns =
        (uint64_t)(30 * fi_slow() + 10) * 1000000000ull;
    uint64_t const t0 = test_now_ns();
    int status = 0;
    for (;;) {
        pid_t const w = waitpid(pid, &status, WNOHANG);
        CHECK(w >= 0);
        if (w == pid) {
            break;
        }
        if (test_now_ns() - t0 > limit_ns) {
            kill(pid, SIGKILL);
            CHECK_EQ(waitpid(pid, &status, 0), pid);
            snprintf(why, sizeof(why), "hung: killed after %llu s",
                     (unsigned long long)(limit_ns / 1000000000ull));
            return why;
        }
        test_sleep_ns(1000000);
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, sizeof(why), "killed by signal %d (%s)",
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
        return why;
    }
    if (WEXITSTATUS(status) != 0) {
        snprintf(why, sizeof(why), "exit status %d%s", WEXITSTATUS(status),
                 fi_shared->done ? " after its checks passed (a report at "
                                   "exit: LeakSanitizer's leaks, valgrind's "
                                   "errors)"
                                 : "");
        return why;
    }
    if (!fi_shared->done) {
        return "exited 0 without finishing its checks";
    }
    return "";
}

int main(void)
{
    test_watchdog(280, "fault_injection");
    /* One malloc arena: library blocks allocated on the dispatcher's
     * threads must not leave arenas mapped behind them. */
    (void)mallopt(M_ARENA_MAX, 1);
    g_have_ring = !test_skip_ring_part(
        "the ring parts (ring executor, buffer pool, buffer rings, the "
        "dispatcher's ring executor)");
    fi_shared = mmap(NULL, sizeof(*fi_shared), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(fi_shared != MAP_FAILED);
    memset(fi_shared, 0, sizeof(*fi_shared));

    /* The counting run. */
    char const *why = fi_run_child(0, 0);
    CHECK_MSG(why[0] == 0, "the scenario without injection failed: %s", why);
    CHECK_MSG(!fi_shared->overflow, "more than %d points", FI_MAX_POINTS);
    uint32_t const npoints = fi_shared->npoints;
    CHECK_GT(npoints, 0);
    static struct fi_point points[FI_MAX_POINTS];
    memcpy(points, fi_shared->points, sizeof(points));

    unsigned by_kind[FI_KINDS] = {0};
    unsigned counted = 0;
    for (uint32_t i = 0; i < npoints; i++) {
        by_kind[points[i].kind]++;
        for (int j = 0; j < FI_MAX_ERRNOS && fi_kind_errnos[points[i].kind][j]; j++) {
            counted++;
        }
    }

    unsigned exercised = 0;
    unsigned failed = 0;
    unsigned by_why[FI_WHYS] = {0};
    for (uint32_t i = 0; i < npoints; i++) {
        struct fi_point const *const p = &points[i];
        for (int j = 0; j < FI_MAX_ERRNOS && fi_kind_errnos[p->kind][j]; j++) {
            int const err = fi_kind_errnos[p->kind][j];
            why = fi_run_child(i + 1, err);
            if (fi_shared->fired && !fi_shared->mismatch) {
                exercised++;
            }
            if (why[0] != 0) {
                failed++;
                fprintf(stderr,
                        "FAILED injection at point %u of %u (%s in %s, %s): "
                        "%s\n",
                        (unsigned)(i + 1), (unsigned)npoints,
                        fi_kind_names[p->kind], p->site,
                        test_errno_name(err), why);
                continue;
            }
            by_why[fi_shared->why]++;
        }
    }

    char kinds[512];
    size_t off = 0;
    kinds[0] = 0;
    for (int k = 0; k < FI_KINDS; k++) {
        if (by_kind[k] != 0 && off < sizeof(kinds)) {
            off += (size_t)snprintf(kinds + off, sizeof(kinds) - off, "%s%s %u",
                                    off ? ", " : "", fi_kind_names[k],
                                    by_kind[k]);
        }
    }
    test_note("%u injection points counted (%s)", (unsigned)npoints, kinds);
    test_note("%u injections (each point with each error its call can give), "
              "%u exercised: %u surfaced as the injected errno and the call "
              "then succeeded, %u absorbed where the header says so (%u %s, "
              "%u %s, %u %s)",
              counted, exercised, by_why[FI_SURFACES],
              by_why[FI_WHY_STACK_GUARD] + by_why[FI_WHY_PROBE] +
                  by_why[FI_WHY_CQ_FALLBACK],
              by_why[FI_WHY_STACK_GUARD], fi_why_names[FI_WHY_STACK_GUARD],
              by_why[FI_WHY_PROBE], fi_why_names[FI_WHY_PROBE],
              by_why[FI_WHY_CQ_FALLBACK], fi_why_names[FI_WHY_CQ_FALLBACK]);
    if (fi_shared->guard_threads_foreign != 0) {
        test_note("%u of the %u threads that create executors already had "
                  "an alternate signal stack (the sanitizer's), which the "
                  "library keeps (executor.h): on %s the stack guard's mmap, "
                  "mprotect, pthread_setspecific and sigaltstack (set) points "
                  "are not reached (the plain builds reach them on every "
                  "thread)",
                  fi_shared->guard_threads_foreign, fi_shared->guard_threads,
                  fi_shared->guard_threads_foreign == 1 ? "it" : "them");
    }
    if (TEST_UNDER_ANY_SANITIZER) {
        test_note("the malloc, calloc and aligned_alloc points fail before "
                  "the sanitizer's allocator is called: all are exercised");
    }
    if (fi_noisy_maps()) {
        test_note("leaks checked per injection: file descriptors, io_uring "
                  "mappings, the library's own mappings and heap blocks (the "
                  "wrappers)%s; not the /proc/self/maps line count (%s maps "
                  "memory of its own)",
                  TEST_UNDER_ASAN ? ", and LeakSanitizer at each child's exit"
                                  : "",
                  test_under_valgrind() ? "valgrind"
                                        : "the sanitizer's allocator");
    }
    else {
        test_note("leaks checked per injection: file descriptors, "
                  "/proc/self/maps lines (io_uring's included), the "
                  "library's own mappings and heap blocks (the wrappers)");
    }
    test_note("io_uring_enter refusals (EINTR, EAGAIN, EBUSY) are covered by "
              "io_submit_refused, not repeated here");
    CHECK_MSG(failed == 0, "%u of %u injections failed", failed, counted);
    CHECK_MSG(exercised == counted, "exercised %u injections, counted %u",
              exercised, counted);
    printf("fault_injection: ok\n");
    return 0;
}
