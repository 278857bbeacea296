/* The task stack overflow handler (see stack_guard.h).
 *
 * Everything the handler does is async-signal-safe: it reads one
 * thread-local and the running context's stack bounds, formats the
 * message by hand into a buffer on the alternate stack, and uses only
 * write(2), sigaction(2), pthread_sigmask, raise and abort. */
#include "stack_guard.h"

#include "context_impl.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Stored before the handler is installed (always the same function). */
static _Atomic(ma_stack_guard_running_fn) ma_guard_running;

/* Room for our handler, and for a handler we chain to (Rust's formats its
 * message, a sanitizer's symbolizes a report). Pages are committed only as
 * they are touched. */
#define MA_ALTSTACK_SIZE (64u * 1024u)

static pthread_once_t ma_guard_once = PTHREAD_ONCE_INIT;
static bool ma_guard_have_key;
static pthread_key_t ma_guard_key;  /* value: our altstack mapping */
static size_t ma_guard_page;
static size_t ma_guard_alt_size;    /* usable bytes of our altstacks */
/* What SIGSEGV and SIGBUS did before ours: faults that are not a task's
 * overflow go there. Written once, before our handler is installed. */
static struct sigaction ma_guard_prev_segv;
static struct sigaction ma_guard_prev_bus;
/* This thread has been through ma_stack_guard_thread_init. */
static __thread bool ma_tls_guard_thread_done;

/* ---- the message ---- */

struct ma_guard_msg
{
    char buf[512];
    size_t len;
};

static void ma_guard_put(struct ma_guard_msg *m, char const *s)
{
    while (*s != 0 && m->len < sizeof(m->buf)) {
        m->buf[m->len++] = *s++;
    }
}

static void ma_guard_put_uint(struct ma_guard_msg *m, uintptr_t v, unsigned base)
{
    char digits[24]; /* 20 decimal digits for 64 bits */
    size_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    }
    while (v != 0);
    if (base == 16) {
        ma_guard_put(m, "0x");
    }
    while (n > 0 && m->len < sizeof(m->buf)) {
        m->buf[m->len++] = digits[--n];
    }
}

static void ma_guard_write_all(char const *p, size_t n)
{
    while (n > 0) {
        ssize_t const w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Says which task overflowed and how to fix it, then aborts as Rust does
 * for a thread's stack overflow. */
__attribute__((noreturn)) static void
ma_guard_report(struct ma_context const *ctx, uintptr_t addr)
{
    struct ma_guard_msg m;
    m.len = 0;
    ma_guard_put(&m, "monad-async: task stack overflow: the task's stack is ");
    ma_guard_put_uint(&m, (uintptr_t)ctx->stack.size, 10);
    ma_guard_put(&m, " bytes; raise it with ExecutorBuilder::stack_size or "
                     "ThreadPoolBuilder::stack_size (Rust) or "
                     "monad_async_task_attr.stack_size (C) (task ");
    /* Tasks have no name yet: the handle is what identifies one. A name,
     * once tasks carry one, goes here. */
    ma_guard_put_uint(&m, (uintptr_t)ctx->owner, 16);
    ma_guard_put(&m, ", fault at ");
    ma_guard_put_uint(&m, addr, 16);
    ma_guard_put(&m, " in its guard page)\n");
    ma_guard_write_all(m.buf, m.len);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(SIGABRT, &dfl, NULL);
    abort();
}

/* ---- the handler ---- */

/* Hands the signal to what was installed before ours, as the kernel would
 * have delivered it. */
static void ma_guard_chain(int sig, siginfo_t *si, void *uc)
{
    struct sigaction const *const prev =
        sig == SIGBUS ? &ma_guard_prev_bus : &ma_guard_prev_segv;
    /* Sent by a process (kill, tgkill, sigqueue) rather than raised by a
     * fault: returning does not bring it back. */
    bool const sent = si == NULL || si->si_code <= 0;
    if (prev->sa_handler == SIG_IGN && sent) {
        return;
    }
    if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
        /* The default action. For a fault, returning repeats the faulting
         * access, which now kills the process (with the fault's own
         * siginfo in a core dump); a sent signal is raised again, pending
         * until this handler returns. (The kernel turns an ignored fault
         * signal into the default action too.) */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        (void)sigaction(sig, &dfl, NULL);
        if (sent) {
            (void)raise(sig);
        }
        return;
    }
    if (prev->sa_flags & SA_RESETHAND) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        (void)sigaction(sig, &dfl, NULL);
    }
    /* The previous handler's mask, as its own delivery would have set it
     * (the kernel restores ours from the signal frame on return). */
    (void)pthread_sigmask(SIG_BLOCK, &prev->sa_mask, NULL);
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
    }
    else {
        prev->sa_handler(sig);
    }
}

static void ma_guard_handler(int sig, siginfo_t *si, void *uc)
{
    int const saved_errno = errno;
    ma_stack_guard_running_fn const running =
        atomic_load_explicit(&ma_guard_running, memory_order_relaxed);
    struct ma_context const *const ctx = running != NULL ? running() : NULL;
    /* Only a fault the kernel raised has a meaningful si_addr. */
    if (ctx != NULL && ctx->stack.map != NULL && si != NULL && si->si_code > 0) {
        uintptr_t const addr = (uintptr_t)si->si_addr;
        /* The guard: from the start of the mapping to the usable stack. */
        if (addr >= (uintptr_t)ctx->stack.map &&
            addr < (uintptr_t)ctx->stack.base) {
            ma_guard_report(ctx, addr);
        }
    }
    ma_guard_chain(sig, si, uc);
    errno = saved_errno;
}

/* ---- set-up ---- */

/* Thread exit: our alternate stack goes (if the thread still uses it,
 * it is switched off first). */
static void ma_guard_thread_exit(void *map)
{
    char *const sp = (char *)map + ma_guard_page;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
        cur.ss_sp == sp) {
        stack_t off;
        memset(&off, 0, sizeof(off));
        off.ss_flags = SS_DISABLE;
        if (sigaltstack(&off, NULL) != 0) {
            return; /* on it right now (cannot happen here): keep it */
        }
    }
    munmap(map, ma_guard_page + ma_guard_alt_size);
}

static void ma_guard_install(void)
{
    long const page = sysconf(_SC_PAGESIZE);
    ma_guard_page = page > 0 ? (size_t)page : 4096u;
    size_t alt = MA_ALTSTACK_SIZE;
#ifdef _SC_SIGSTKSZ
    /* Machines with large vector registers need a larger signal frame. */
    long const min = sysconf(_SC_SIGSTKSZ);
    if (min > 0 && (size_t)min * 4u > alt) {
        alt = (size_t)min * 4u;
    }
#endif
    ma_guard_alt_size = (alt + ma_guard_page - 1) & ~(ma_guard_page - 1);
    ma_guard_have_key = pthread_key_create(&ma_guard_key, ma_guard_thread_exit) == 0;

    /* Read what is there before ours goes in, so that a fault on another
     * thread in between never finds the saved action half written. */
    if (sigaction(SIGSEGV, NULL, &ma_guard_prev_segv) != 0 ||
        sigaction(SIGBUS, NULL, &ma_guard_prev_bus) != 0) {
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = ma_guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGSEGV, &sa, NULL);
    (void)sigaction(SIGBUS, &sa, NULL);
}

void ma_stack_guard_thread_init(ma_stack_guard_running_fn running)
{
    atomic_store_explicit(&ma_guard_running, running, memory_order_relaxed);
    (void)pthread_once(&ma_guard_once, ma_guard_install);
    if (ma_tls_guard_thread_done) {
        return;
    }
    ma_tls_guard_thread_done = true;
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE)) {
        return; /* the thread has one already: never replace it */
    }
    if (!ma_guard_have_key) {
        return; /* it could not be freed at thread exit */
    }
    size_t const total = ma_guard_page + ma_guard_alt_size;
    void *const map = mmap(NULL, total, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                           -1, 0);
    if (map == MAP_FAILED) {
        return;
    }
    /* A guard below it too: a handler overflowing the alternate stack
     * faults instead of writing over whatever lies below. */
    if (mprotect(map, ma_guard_page, PROT_NONE) != 0) {
        munmap(map, total);
        return;
    }
    stack_t ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_sp = (char *)map + ma_guard_page;
    ss.ss_size = ma_guard_alt_size;
    if (pthread_setspecific(ma_guard_key, map) != 0) {
        munmap(map, total);
        return;
    }
    if (sigaltstack(&ss, NULL) != 0) {
        (void)pthread_setspecific(ma_guard_key, NULL);
        munmap(map, total);
    }
}
