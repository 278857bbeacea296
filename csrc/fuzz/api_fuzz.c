/* A libFuzzer target over the whole public C API (issue 9).
 *
 *   make -C csrc fuzz                       build/fuzz/api_fuzz (clang,
 *                                           ASan+UBSan, libFuzzer)
 *   make -C csrc fuzz-run FUZZ_SECONDS=60   a bounded run from the seeds
 *
 * Each input is a program. Its bytes are parsed up front into top-level
 * operations, and every attach carries the script its task will run (so
 * what a task does never depends on when it runs, and an input replays).
 * The program drives up to three executors (compute-only, or small rings
 * of 4-16 entries, some with an in-flight guard of 2-8 so that tasks wait
 * for slots, some with a small CQ), eight tasks over the four switchers
 * (sjlj, asm, asm without FP control, none), and a helper thread that
 * makes the cross-thread calls (attach, cancel, wake, wake_token, and
 * run/destroy for EPERM). The helper only acts on a request and the
 * program waits for its answer (a semaphore handshake), except for one
 * "wake the executor in 200 us" request that ends a run with no timeout.
 *
 * Scripts run inside tasks: yield, sleep, park (deadlines 0, 50 us, 1 ms,
 * none), wake and cancel of any task (locally and through the helper),
 * attaches of other tasks with their own scripts (nested attaches, two
 * levels), runs and destroys of other executors from inside a task (EBUSY
 * for the executor running), I/O on a pipe and an eventfd (NOP, timeout,
 * poll, read, write; blocking and initiate forms, reap, try_reap, wait,
 * cancel), bad arguments, early return with I/O in flight. An exit hook
 * may attach the task again with another script. A work dispatcher, its
 * one executor on the program's thread, takes submitted tasks (with
 * scripts too); the program submits (also from the helper), runs it,
 * waits, quits, cancels what is queued and destroys both, and tasks run
 * it or wait on it from inside (EBUSY, EDEADLK).
 *
 * The model. Every result is checked against what the headers document,
 * computed from a model of each object that the program keeps as it
 * goes (struct htask, struct hex below) and from what the tasks
 * themselves observe:
 *
 *  - a task is attached from a successful attach until its exit hook;
 *    launched when its user_code starts; its work is cancelled NONE,
 *    PENDING (a cross-thread cancel answered EAGAIN and has not been
 *    drained yet) or APPLIED (a local cancel answered EAGAIN, destroy
 *    began, or the CANCELLED state bit was seen). Attach answers EINVAL,
 *    EBUSY, ESHUTDOWN or success; cancel answers ENOENT, success (pending
 *    launch: the exit hook has run by the time cancel returns, result
 *    ECANCELED, user_code never ran) or EAGAIN; a cancelled task that had
 *    not launched never launches;
 *  - suspension points: EINVAL (not the running task), ENOTSUP (none
 *    switcher, I/O without a ring), ECANCELED at once once cancelled;
 *    else what resumed them: yield and a ring-less sleep give ECANCELED
 *    exactly when a cancel landed while suspended; park gives success
 *    when a wake answered 1 (resumed it) before anything else, ETIME
 *    only with a finite deadline, ECANCELED only when cancelled, and
 *    consumes a pending permit (success, no suspension) or gives ETIME
 *    at once for a deadline of 0;
 *  - wake answers 1 exactly when the task sits in park with PARKED not
 *    yet cleared by anything (relaxed to {0, 1} when a deadline or a
 *    pending cross-thread cancel may have cleared it), 0 (a permit)
 *    otherwise, ESRCH for tokens of other work; wake_token ENOENT when
 *    not attached, and the same odd token for the whole of one work;
 *  - wake_deferred (a script's wake with c & 2) answers as wake, or 2
 *    (kept) only from a task of the parked task's own executor, not the
 *    task itself, where wake could answer 1; the park then succeeds, and
 *    another wake of that parking (1: it claimed the task first; 0 or 2:
 *    the kept one was applied, or goes first) leaves exactly one permit;
 *  - I/O results are the operation's real outcome (NOP and timeout 0,
 *    poll POLLIN, read and write 1 byte) or ECANCELED where a cancel
 *    (io_cancel, the task's or destroy's) may have hit it; reap returns
 *    only statuses this task has active, ENOENT (ECANCELED when
 *    cancelled) when none is; a status still active gives EBUSY;
 *  - run: EINVAL, EPERM, EBUSY (the executor is running: its own task,
 *    or a nested run), else success with at most max_items items, at
 *    least one when a task that nobody cancelled is pending launch; 0
 *    items only after a wake or when it ended tasks; ETIME only with a
 *    timeout, and then nothing done and nothing ended;
 *  - the dispatcher: submit all or nothing (EINVAL, EBUSY, ESHUTDOWN
 *    after quit for good), a run leaves nothing queued unless told to
 *    quit and returns negative only once told, wait and quit decided at
 *    once (nothing else runs it: success or ETIME by the model's counts),
 *    cancel_queued ends exactly the queued tasks, and its counters,
 *    submitted, dispatched, executed, cancelled, queued, agree;
 *  - destroy: EPERM off the owner thread, EBUSY from inside its run,
 *    else every task attached to it has exited when it returns, and
 *    attaches to it meanwhile (exit hooks, running tasks, the helper)
 *    answer ESHUTDOWN;
 *  - the library's own view agrees: state bits (ATTACHED, IN_INBOX,
 *    CANCELLED, EXITED), current_executor, current_task,
 *    executor_current(), tasks_attached, counters.attached - exited.
 *
 * After each input every executor is drained (its tasks cancelled and
 * run to exit) or destroyed as it is, chosen by the input; drained ones
 * must show counters.attached == counters.exited (== the model's counts),
 * io.submitted == io.completed, nothing runnable or timed; then every
 * task, switcher, executor, the pipe and the eventfd are destroyed, and
 * the number of open descriptors and of mappings must be what it was
 * before the input.
 *
 * A disagreement prints "api_fuzz: FAILED ..." with the step, and aborts
 * (libFuzzer saves the input). FUZZ_TRACE=1 in the environment prints
 * every step, for replaying one input. */
#define _GNU_SOURCE 1

#include <monad_async.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* ---- sizes and caps (each input runs in well under a second) ---- */

enum
{
    NEX = 3,         /* executors alive at once */
    NTASK = 8,       /* tasks */
    NSW = 4,         /* switchers: sjlj, asm, asm no-fp, none */
    NST = 4,         /* initiate-form statuses per task */
    MAX_TOP = 40,    /* top-level operations per input */
    MAX_SCRIPT = 7,  /* operations per script */
    MAX_OPS = 640,   /* operations in all, scripts included */
    MAX_SCRIPTS = 160,
    MAX_DEPTH = 2,   /* nesting of scripts in scripts */
    MAX_RUN_DEPTH = 3, /* runs inside tasks inside runs */
    PIPE_CAP = 512,  /* bytes written to the pipe per input, at most */
    WARMUP_INPUTS = 24,
};

static char const *const sw_names[NSW] = {"sjlj", "asm", "asm-nofp", "none"};

/* ---- failure and tracing ---- */

static int g_trace;
static char g_where[160]; /* the step being checked */

static void fail(char const *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(char const *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "api_fuzz: FAILED at %s: ", g_where);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

static void trace(char const *fmt, ...) __attribute__((format(printf, 1, 2)));

static void trace(char const *fmt, ...)
{
    if (!g_trace) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define WHERE(...) snprintf(g_where, sizeof(g_where), __VA_ARGS__)

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fail("%s (line %d): " _FIRST(__VA_ARGS__, ""), #cond, __LINE__    \
                 _REST(__VA_ARGS__));                                         \
        }                                                                     \
    } while (0)
/* CHECK(cond) or CHECK(cond, "fmt", args...) */
#define _FIRST(a, ...) a
#define _REST(a, ...) , ##__VA_ARGS__

/* Bit sets of allowed outcomes: bit 0 success, else the errno's bit. */
typedef uint64_t eset;
static int const errnos[] = {0,      EINVAL, EBUSY,     EPERM,  ENOENT,
                             EAGAIN, ECANCELED, ETIME,  ENOTSUP, ESHUTDOWN,
                             ESRCH,  EBADF,  EINTR,     EFAULT, EDEADLK};
enum
{
    NERR = sizeof(errnos) / sizeof(errnos[0])
};

static eset E(int e)
{
    for (int i = 0; i < NERR; i++) {
        if (errnos[i] == e) {
            return 1ull << i;
        }
    }
    return 1ull << 63;
}

static char const *ename(int e)
{
    static char buf[32];
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
    case ESRCH: return "ESRCH";
    case EBADF: return "EBADF";
    case EINTR: return "EINTR";
    case EFAULT: return "EFAULT";
    case EDEADLK: return "EDEADLK";
    default:
        snprintf(buf, sizeof(buf), "errno %d", e);
        return buf;
    }
}

static void describe_set(eset s, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < NERR; i++) {
        if (s & (1ull << i)) {
            n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s",
                                  n ? "|" : "", ename(errnos[i]));
        }
    }
}

/* `r` must be one of `allowed`; failures must carry value 0 (result.h). */
static monad_async_result expect(monad_async_result r, eset allowed, char const *what)
{
    trace("    %s -> %s (value %ld)", what, ename(r.error), (long)r.value);
    if (!(E(r.error) & allowed)) {
        char buf[160];
        describe_set(allowed, buf, sizeof(buf));
        fail("%s returned %s (value %ld); the model allows %s", what,
             ename(r.error), (long)r.value, buf);
    }
    if (r.error != 0 && r.value != 0) {
        fail("%s failed with %s but carries value %ld (result.h: failures "
             "carry 0)",
             what, ename(r.error), (long)r.value);
    }
    return r;
}

/* ---- the program: parsed from the input before anything runs ---- */

enum top_code
{
    O_EX_CREATE,
    O_EX_DESTROY,
    O_ATTACH,
    O_ATTACH_REMOTE,
    O_CANCEL,
    O_CANCEL_REMOTE,
    O_RUN,
    O_RUN2, /* more runs than anything else */
    O_EX_WAKE,
    O_WAKE,
    O_TOKEN,
    O_TASK_DESTROY,
    O_SW_DESTROY,
    O_BAD,
    O_FOREIGN,
    O_PIPE_WRITE,
    O_PIPE_DRAIN,
    O_MISC,
    O_DISPATCH,
    O_COUNT
};

static char const *const top_names[O_COUNT] = {
    "ex_create", "ex_destroy", "attach",   "attach_remote", "cancel",
    "cancel_remote", "run",    "run",      "ex_wake",       "wake",
    "token",     "task_destroy", "sw_destroy", "bad",       "foreign",
    "pipe_write", "pipe_drain", "misc", "dispatch"};

enum task_code
{
    T_YIELD,
    T_SLEEP,
    T_PARK,
    T_WAKE,
    T_TOKEN,
    T_ATTACH,
    T_CANCEL,
    T_RUN,
    T_EX_DESTROY,
    T_EX_WAKE,
    T_IO,
    T_IO2, /* I/O is most of what tasks do */
    T_REAP,
    T_TRY_REAP,
    T_IO_WAIT,
    T_IO_CANCEL,
    T_BAD,
    T_RETURN,
    T_PRIO,
    T_PIPE_WRITE,
    T_COUNT
};

static char const *const task_names[T_COUNT] = {
    "yield",   "sleep",  "park",    "wake",     "token",  "attach",
    "cancel",  "run",    "ex_destroy", "ex_wake", "io",   "io",
    "reap",    "try_reap", "io_wait", "io_cancel", "bad", "return",
    "prio",    "pipe_write"};

struct op
{
    uint8_t code, a, b, c;
    int16_t script;      /* an attach's script, or -1 */
    int16_t exit_script; /* what the exit hook attaches next, or -1 */
};

struct script
{
    int16_t first, n; /* into g_sops */
};

static struct op g_ops[MAX_OPS];
static int g_nops;
static int16_t g_sops[MAX_OPS];
static int g_nsops;
static struct script g_scripts[MAX_SCRIPTS];
static int g_nscripts;
static int16_t g_top[MAX_TOP];
static int g_ntop;
static uint8_t g_final; /* how the input ends */

static uint8_t const *g_in;
static size_t g_in_left;

static uint8_t rd(void)
{
    if (g_in_left == 0) {
        return 0;
    }
    g_in_left--;
    return *g_in++;
}

static int16_t parse_script(int depth);

static int16_t parse_op(bool top, int depth)
{
    if (g_nops >= MAX_OPS) {
        return -1;
    }
    int16_t const i = (int16_t)g_nops++;
    struct op o;
    uint8_t const code = rd();
    o.code = (uint8_t)(code % (top ? O_COUNT : T_COUNT));
    o.a = rd();
    o.b = rd();
    o.c = rd();
    o.script = o.exit_script = -1;
    bool const attach =
        top ? (o.code == O_ATTACH || o.code == O_ATTACH_REMOTE ||
               (o.code == O_DISPATCH && o.a % 10 == 1))
            : o.code == T_ATTACH;
    if (attach && depth <= MAX_DEPTH) {
        o.script = parse_script(depth + 1);
        if ((o.c & 0x80) && depth < MAX_DEPTH) {
            o.exit_script = parse_script(depth + 1);
        }
    }
    g_ops[i] = o;
    return i;
}

static int16_t parse_script(int depth)
{
    if (g_nscripts >= MAX_SCRIPTS) {
        return -1;
    }
    int n = rd() % (MAX_SCRIPT + 1);
    if (g_nsops + n > MAX_OPS) {
        n = 0;
    }
    int16_t const s = (int16_t)g_nscripts++;
    g_scripts[s].first = (int16_t)g_nsops;
    g_scripts[s].n = (int16_t)n;
    int const first = g_nsops;
    g_nsops += n;
    for (int k = 0; k < n; k++) {
        g_sops[first + k] = parse_op(false, depth);
    }
    return s;
}

static void parse(uint8_t const *data, size_t size)
{
    g_in = data;
    g_in_left = size;
    g_nops = g_nsops = g_nscripts = g_ntop = 0;
    g_final = rd();
    while (g_in_left > 0 && g_ntop < MAX_TOP) {
        int16_t const o = parse_op(true, 0);
        if (o < 0) {
            break;
        }
        g_top[g_ntop++] = o;
    }
}

/* ---- the model ---- */

enum cancel_state
{
    C_NONE,
    C_PENDING, /* a cross-thread request not yet drained */
    C_APPLIED
};

enum io_kind
{
    K_NOP,
    K_TIMEOUT,
    K_POLL_PIPE,
    K_POLL_EVENTFD,
    K_READ,
    K_WRITE,
    K_COUNT
};

static char const *const kind_names[K_COUNT] = {"nop",  "timeout", "poll(pipe)",
                                                "poll(eventfd)", "read", "write"};

struct hex
{
    monad_async_executor ex;
    bool alive;
    bool ring;
    bool notime;
    int in_run;       /* runs of it on the stack (0 or 1; EBUSY otherwise) */
    bool closing;     /* inside its destroy */
    bool wake_maybe;  /* a wake may be pending */
    uint64_t attaches; /* successful attaches, both paths */
    uint64_t exits;    /* exit hooks of its tasks */
    unsigned entries;
};

struct htask
{
    monad_async_task t;
    int idx;
    int sw; /* index of its switcher */
    /* the current (or last) piece of work */
    bool attached;
    int exi;
    bool launched, returned;
    int cancel;          /* enum cancel_state */
    uint64_t seq;        /* its work's number: user_code returns it */
    int16_t script, exit_script;
    int exit_exi;
    uint64_t token;      /* this work's token, once read */
    bool have_token;
    uint64_t stale;      /* a token of an earlier work */
    bool have_stale;
    bool permit;         /* a wake left a permit */
    /* the suspension in progress */
    bool in_susp;
    bool susp_cancel;    /* a local cancel (or destroy) landed meanwhile */
    bool susp_pending;   /* a cross-thread cancel was made meanwhile */
    bool in_park;
    bool queued;         /* submitted, still in the dispatcher's queue */
    bool park_woken;     /* a wake answered 1 (or 2) for this parking */
    /* A deferred wake answered 2 for this parking: until the parking
     * ends, another wake of this work either claims the task first (1;
     * the deferred one then leaves a permit) or finds it woken (0, a
     * permit): a permit either way. */
    bool deferred_pending;
    bool park_finite;
    /* initiate-form operations */
    struct monad_async_io_status st[NST];
    int st_kind[NST];
    bool st_active[NST];
    bool st_cancel[NST]; /* io_cancel was asked for it */
    char st_buf[NST][8];
    uint64_t exits; /* exit hooks, all works */
};

static monad_async_context_switcher g_sw[NSW];
/* Slot DEX is the executor of the work dispatcher (the one executor of its
 * pool, on the program's thread): tasks get there only by submission. */
#define DEX NEX
static struct hex g_ex[NEX + 1];

/* The work dispatcher of the input, if any, and its executor (slot DEX). */
struct hwd
{
    monad_async_work_dispatcher wd;
    monad_async_work_dispatcher_executor wex;
    bool alive;     /* the dispatcher */
    bool wex_alive; /* its executor, not yet destroyed */
    bool in_pool;   /* its executor has not left the pool */
    bool told;      /* its executor was told to quit */
    bool quit_all;  /* quit(SIZE_MAX): submissions refused */
    uint64_t submitted, executed, cancelled; /* tasks */
};
static struct hwd g_wdm;
static struct htask g_task[NTASK];
static uint64_t g_seq;
static int g_pipe[2] = {-1, -1};
static int g_efd = -1;
static int g_pipe_written;
static int g_run_depth;
/* The task whose code runs now (innermost), or NULL. */
static struct htask *g_cur;

/* The model's cancel state agrees with the CANCELLED bit; a bit set by a
 * drained cross-thread request makes it APPLIED. */
static void sync_cancel(struct htask *h)
{
    uint32_t const s = atomic_load(&h->t->state);
    if (!h->attached) {
        return;
    }
    if (s & MONAD_ASYNC_TASK_STATE_CANCELLED) {
        CHECK(h->cancel != C_NONE,
              "task %d has CANCELLED set (state 0x%x) but nobody cancelled "
              "its work",
              h->idx, (unsigned)s);
        h->cancel = C_APPLIED;
    }
    else if (h->cancel == C_APPLIED && h->launched) {
        fail("task %d: its cancel was applied but CANCELLED is clear (state "
             "0x%x)",
             h->idx, (unsigned)s);
    }
}

/* The library's view of task `h` agrees with the model (between steps). */
static void check_task_state(struct htask *h)
{
    uint32_t const s = atomic_load(&h->t->state);
    monad_async_executor const cur = atomic_load(&h->t->current_executor);
    if (h->attached && h->queued) {
        if (!(s & MONAD_ASYNC_TASK_STATE_QUEUED)) {
            /* The dispatcher's executor took it, inside its run. It runs
             * before that run returns (nothing runnable is left then),
             * not always next: I/O completing meanwhile may make a task
             * of a higher priority runnable first. */
            CHECK(h->launched || g_ex[DEX].in_run,
                  "task %d left the queue and did not launch in that run",
                  h->idx);
            h->queued = false;
        }
        else {
            CHECK((s & MONAD_ASYNC_TASK_STATE_ATTACHED) &&
                      (s & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH) &&
                      cur == NULL,
                  "queued task %d: state 0x%x, current_executor %p", h->idx,
                  (unsigned)s, (void *)cur);
            return;
        }
    }
    if (h->attached) {
        CHECK(s & MONAD_ASYNC_TASK_STATE_ATTACHED,
              "task %d attached in the model, state 0x%x", h->idx, (unsigned)s);
        CHECK(cur == g_ex[h->exi].ex,
              "task %d: current_executor %p, attached to executor %d (%p)",
              h->idx, (void *)cur, h->exi, (void *)g_ex[h->exi].ex);
        CHECK(!(s & MONAD_ASYNC_TASK_STATE_EXITED), "task %d state 0x%x",
              h->idx, (unsigned)s);
        sync_cancel(h);
    }
    else {
        CHECK(!(s & MONAD_ASYNC_TASK_STATE_ATTACHED),
              "task %d not attached in the model, state 0x%x", h->idx,
              (unsigned)s);
        CHECK(cur == NULL, "task %d unattached with current_executor %p",
              h->idx, (void *)cur);
    }
}

/* The library's counts of executor `i` agree with the model. */
static void check_ex_counts(int i)
{
    struct hex *const x = &g_ex[i];
    if (!x->alive) {
        return;
    }
    monad_async_executor const ex = x->ex;
    uint64_t attached = 0, in_inbox = 0;
    for (int k = 0; k < NTASK; k++) {
        struct htask *const h = &g_task[k];
        if (h->attached && h->exi == i && !h->queued) {
            attached++;
            if (atomic_load(&h->t->state) & MONAD_ASYNC_TASK_STATE_IN_INBOX) {
                in_inbox++;
            }
        }
    }
    CHECK(ex->tasks_attached == attached - in_inbox,
          "executor %d: tasks_attached %lu, the model has %lu attached of "
          "which %lu still in the inbox",
          i, (unsigned long)ex->tasks_attached, (unsigned long)attached,
          (unsigned long)in_inbox);
    CHECK(ex->counters.attached - ex->counters.exited == ex->tasks_attached,
          "executor %d: attached %lu - exited %lu != tasks_attached %lu", i,
          (unsigned long)ex->counters.attached,
          (unsigned long)ex->counters.exited,
          (unsigned long)ex->tasks_attached);
    CHECK(ex->counters.exited == x->exits,
          "executor %d: counters.exited %lu, exit hooks %lu", i,
          (unsigned long)ex->counters.exited, (unsigned long)x->exits);
    CHECK(ex->io.in_flight == ex->io.submitted - ex->io.completed,
          "executor %d: io in_flight %lu, submitted %lu, completed %lu", i,
          (unsigned long)ex->io.in_flight, (unsigned long)ex->io.submitted,
          (unsigned long)ex->io.completed);
    if (!x->ring) {
        CHECK(ex->io.submitted == 0 && ex->ring.sq_entries == 0);
    }
    /* The dump lists exactly the tasks the executor counts, each one the
     * model has attached to it (EPERM off the executor's thread). */
    struct monad_async_task_info infos[NTASK + 1];
    monad_async_result const d = monad_async_executor_dump(ex, infos, NTASK + 1);
    if (d.error == EPERM) {
        return;
    }
    CHECK(d.error == 0 && (uint64_t)d.value == ex->tasks_attached,
          "executor %d: dump says %ld (error %d), tasks_attached %lu", i,
          (long)d.value, d.error, (unsigned long)ex->tasks_attached);
    for (intptr_t n = 0; n < d.value; n++) {
        int found = -1;
        for (int k = 0; k < NTASK; k++) {
            if (g_task[k].t == infos[n].task) {
                found = k;
            }
        }
        CHECK(found >= 0 && g_task[found].attached && g_task[found].exi == i,
              "executor %d: the dump lists task %d, which the model does not "
              "have attached to it", i, found);
        CHECK(infos[n].activity <= MONAD_ASYNC_TASK_ACTIVITY_EXITING,
              "executor %d: task %d has activity %u", i, found,
              (unsigned)infos[n].activity);
    }
}

static void check_all(void)
{
    for (int k = 0; k < NTASK; k++) {
        check_task_state(&g_task[k]);
    }
    for (int i = 0; i <= DEX; i++) {
        check_ex_counts(i);
    }
}

/* ---- the helper thread: every cross-thread call, on request ---- */

enum helper_op
{
    H_ATTACH,
    H_CANCEL,
    H_WAKE,
    H_TOKEN,
    H_EX_WAKE,
    H_EX_WAKE_LATER, /* 200 us from now: answered at once, acts later */
    H_RUN,
    H_RUN0,
    H_RUN_ZERO_ITEMS,
    H_DESTROY,
    H_CURRENT,
    H_WD_RUN,
    H_WD_DESTROY,
    H_WD_SUBMIT,
};

struct helper_req
{
    int op;
    monad_async_executor ex;
    monad_async_task task;
    monad_async_context_switcher sw;
    monad_async_work_dispatcher_executor wex;
    monad_async_work_dispatcher wd;
    monad_async_task const *tasks;
    size_t n;
    uint64_t token;
    monad_async_result r;
    uint64_t token_out;
};

static pthread_t g_helper;
static sem_t g_req_sem, g_ack_sem, g_later_sem;
static struct helper_req g_req;
static bool g_later_outstanding;

static void *helper_main(void *arg)
{
    (void)arg;
    for (;;) {
        while (sem_wait(&g_req_sem) != 0) {
        }
        struct helper_req *const q = &g_req;
        struct timespec const zero = {0, 0};
        switch (q->op) {
        case H_ATTACH:
            q->r = monad_async_task_attach(q->ex, q->task, q->sw);
            break;
        case H_CANCEL:
            q->r = monad_async_task_cancel(q->ex, q->task);
            break;
        case H_WAKE:
            q->r = monad_async_task_wake(q->task, q->token);
            break;
        case H_TOKEN:
            q->r = monad_async_task_wake_token(q->task, &q->token_out);
            break;
        case H_EX_WAKE:
            q->r = monad_async_executor_wake(q->ex);
            break;
        case H_EX_WAKE_LATER: {
            monad_async_executor const ex = q->ex;
            sem_post(&g_ack_sem);
            struct timespec const d = {0, 200 * 1000};
            nanosleep(&d, NULL);
            monad_async_result const r = monad_async_executor_wake(ex);
            if (r.error != 0) {
                fprintf(stderr, "api_fuzz: FAILED: executor_wake from the "
                                "helper: %s\n",
                        ename(r.error));
                abort();
            }
            sem_post(&g_later_sem);
            continue;
        }
        case H_RUN:
            q->r = monad_async_executor_run(q->ex, 1, NULL);
            break;
        case H_RUN0:
            q->r = monad_async_executor_run(q->ex, 1, &zero);
            break;
        case H_RUN_ZERO_ITEMS:
            q->r = monad_async_executor_run(q->ex, 0, &zero);
            break;
        case H_DESTROY:
            q->r = monad_async_executor_destroy(q->ex);
            break;
        case H_CURRENT:
            q->r = monad_async_executor_current();
            break;
        case H_WD_RUN:
            q->r = monad_async_work_dispatcher_executor_run(q->wex);
            break;
        case H_WD_DESTROY:
            q->r = monad_async_work_dispatcher_executor_destroy(q->wex);
            break;
        case H_WD_SUBMIT:
            q->r = monad_async_work_dispatcher_submit(q->wd, q->tasks, q->n);
            break;
        }
        sem_post(&g_ack_sem);
    }
    return NULL;
}

static monad_async_result helper_call(struct helper_req *q)
{
    g_req = *q;
    sem_post(&g_req_sem);
    while (sem_wait(&g_ack_sem) != 0) {
    }
    *q = g_req;
    return q->r;
}

static void helper_wait_later(void)
{
    if (g_later_outstanding) {
        while (sem_wait(&g_later_sem) != 0) {
        }
        g_later_outstanding = false;
    }
}

/* ---- exits and launches, seen from inside the library's calls ---- */

static void do_attach(struct htask *h, int exi, uint8_t flags, int16_t script,
                      int16_t exit_script, uint8_t exit_exi, bool remote);

static void on_exit_hook(monad_async_task task)
{
    struct htask *const h = task->user_ptr;
    char saved[sizeof(g_where)];
    memcpy(saved, g_where, sizeof(saved));
    WHERE("exit hook of task %d (work %lu)", h->idx, (unsigned long)h->seq);
    trace("  exit task %d: %s value %ld launched %d", h->idx,
          ename(task->result.error), (long)task->result.value, h->launched);
    CHECK(h->attached, "exit hook of a task the model has unattached");
    struct hex *const x = &g_ex[h->exi];
    uint32_t const s = atomic_load(&task->state);
    CHECK(s & MONAD_ASYNC_TASK_STATE_EXITED, "state 0x%x", (unsigned)s);
    CHECK(!(s & MONAD_ASYNC_TASK_STATE_ATTACHED), "state 0x%x", (unsigned)s);
    CHECK(atomic_load(&task->current_executor) == NULL);
    if (s & MONAD_ASYNC_TASK_STATE_CANCELLED) {
        CHECK(h->cancel != C_NONE, "exited CANCELLED, never cancelled");
    }
    if (h->launched) {
        CHECK(h->returned, "exit recorded before user_code returned");
        CHECK(task->result.error == 0 && task->result.value == (intptr_t)h->seq,
              "result %s/%ld, user_code returned %lu", ename(task->result.error),
              (long)task->result.value, (unsigned long)h->seq);
    }
    else {
        /* Ended without running: only a cancel (or destroy) does that. */
        CHECK(h->cancel != C_NONE,
              "task %d exited without launching and was never cancelled",
              h->idx);
        CHECK(task->result.error == ECANCELED,
              "cancelled before launch: result %s", ename(task->result.error));
    }
    if (x->notime && !h->queued) {
        /* (A task ended in the dispatcher's queue never reached the
         * executor; its ticks.attached is its submission's stamp.) */
        CHECK(task->ticks.attached == 0 && task->ticks.launched == 0 &&
                  task->ticks.exited == 0 && task->ticks.executing == 0,
              "ticks on an executor without time tracking");
    }
    if (h->queued) {
        /* cancel_queued ended it, on this thread, without an executor. */
        g_wdm.cancelled++;
        h->queued = false;
    }
    else {
        x->exits++;
        if (h->exi == DEX) {
            g_wdm.executed++;
        }
    }
    h->exits++;
    h->attached = false;
    h->in_susp = h->in_park = false;
    if (h->have_token) {
        h->stale = h->token;
        h->have_stale = true;
    }
    h->have_token = false;
    for (int i = 0; i < NST; i++) {
        /* A status nobody reaped is forgotten (run.c); the kernel is done
         * with all of them. */
        CHECK(h->st[i].state != MONAD_ASYNC_IO_STATE_IN_FLIGHT,
              "status %d still in flight after the task's exit", i);
    }
    int16_t const next = h->exit_script;
    int const next_ex = h->exit_exi;
    h->exit_script = -1;
    if (next >= 0) {
        do_attach(h, next_ex, 0, next, -1, 0, false);
    }
    memcpy(g_where, saved, sizeof(saved));
}

static void run_script(struct htask *h, int16_t s);
static void do_wd_run(bool inside);

static monad_async_result task_main(monad_async_task task)
{
    struct htask *const h = task->user_ptr;
    struct htask *const outer = g_cur;
    WHERE("launch of task %d (work %lu)", h->idx, (unsigned long)h->seq);
    trace("  launch task %d on executor %d (%s)", h->idx, h->exi,
          sw_names[h->sw]);
    CHECK(h->attached && !h->launched, "launch of a task not pending");
    CHECK(h->cancel == C_NONE,
          "task %d launched although its work was cancelled before it "
          "launched (%s)",
          h->idx, h->cancel == C_PENDING ? "cross-thread" : "locally");
    uint32_t const s = atomic_load(&task->state);
    CHECK((s & MONAD_ASYNC_TASK_STATE_RUNNING) &&
              !(s & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH),
          "state 0x%x", (unsigned)s);
    monad_async_executor const ex = g_ex[h->exi].ex;
    CHECK(atomic_load(&ex->current_task) == task);
    CHECK(monad_async_executor_current().value == (intptr_t)ex,
          "executor_current says %p inside a task of %p",
          (void *)monad_async_executor_current().value, (void *)ex);
    h->launched = true;
    h->queued = false; /* taken from the dispatcher's queue, if it was there */
    g_cur = h;
    run_script(h, h->script);
    g_cur = outer;
    WHERE("return of task %d", h->idx);
    CHECK(atomic_load(&ex->current_task) == task);
    h->returned = true;
    trace("  return task %d", h->idx);
    return monad_async_make_success((intptr_t)h->seq);
}

/* ---- operations shared by the top level and scripts ---- */

/* `exi` may name a dead executor: then the operation is skipped. */
static bool ex_ok(int exi)
{
    return exi >= 0 && exi <= DEX && g_ex[exi].alive;
}

static void do_attach(struct htask *h, int exi, uint8_t flags, int16_t script,
                      int16_t exit_script, uint8_t exit_exi, bool remote)
{
    if (!ex_ok(exi)) {
        return;
    }
    struct hex *const x = &g_ex[exi];
    monad_async_task const t = h->t;
    monad_async_context_switcher sw = NULL;
    int new_sw = h->sw;
    bool bad = false;
    if (!h->attached) {
        /* Fields are ours to set only while the task is not attached. */
        t->priority.cpu = (monad_async_priority)(flags % 3);
        t->priority.io = (monad_async_priority)((flags / 3) % 3);
        if ((flags & 0x70) == 0x70) {
            bad = true; /* a priority out of range, or no user_code */
            switch ((flags >> 2) & 3) {
            case 0: t->priority.cpu = monad_async_priority_max; break;
            case 1: t->priority.io = (monad_async_priority)-1; break;
            case 2: t->priority.cpu = (monad_async_priority)77; break;
            default: t->user_code = NULL; break;
            }
        }
    }
    if (flags & 0x08) {
        new_sw = (flags >> 1) & 3;
        sw = g_sw[new_sw];
    }
    eset allowed;
    if (bad) {
        allowed = E(EINVAL);
    }
    else {
        allowed = 0;
        if (h->attached) {
            allowed |= E(EBUSY);
        }
        if (x->closing) {
            allowed |= E(ESHUTDOWN);
        }
        if (allowed == 0) {
            allowed = E(0);
        }
    }
    char what[96];
    snprintf(what, sizeof(what), "%sattach(ex %d, task %d%s)",
             remote ? "remote " : "", exi, h->idx, sw ? ", switcher" : "");
    monad_async_result r;
    if (remote) {
        struct helper_req q = {.op = H_ATTACH, .ex = x->ex, .task = t, .sw = sw};
        r = helper_call(&q);
    }
    else {
        r = monad_async_task_attach(x->ex, t, sw);
    }
    expect(r, allowed, what);
    if (bad) {
        t->user_code = task_main;
        t->priority.cpu = monad_async_priority_normal;
        t->priority.io = monad_async_priority_normal;
        CHECK(!(atomic_load(&t->state) & MONAD_ASYNC_TASK_STATE_ATTACHED) ||
              h->attached);
        return;
    }
    if (r.error != 0) {
        return;
    }
    /* Attached: a new piece of work. */
    h->attached = true;
    h->exi = exi;
    h->launched = h->returned = false;
    h->cancel = C_NONE;
    h->seq = ++g_seq;
    h->script = script;
    h->exit_script = exit_script;
    h->exit_exi = exit_exi % NEX;
    h->have_token = false;
    h->permit = false;
    h->deferred_pending = false;
    h->in_susp = h->in_park = false;
    h->sw = new_sw;
    memset(h->st, 0, sizeof(h->st));
    memset(h->st_active, 0, sizeof(h->st_active));
    x->attaches++;
    uint32_t const s = atomic_load(&t->state);
    CHECK((s & MONAD_ASYNC_TASK_STATE_ATTACHED) &&
              (s & MONAD_ASYNC_TASK_STATE_PENDING_LAUNCH) &&
              !(s & MONAD_ASYNC_TASK_STATE_CANCELLED),
          "state after attach 0x%x", (unsigned)s);
    CHECK(!remote || (s & MONAD_ASYNC_TASK_STATE_IN_INBOX),
          "a remote attach is in the inbox, state 0x%x", (unsigned)s);
    CHECK(t->switcher == g_sw[h->sw]);
}

/* A local cancel (or destroy) landed on `h`. */
static void note_cancel_applied(struct htask *h)
{
    h->cancel = C_APPLIED;
    if (h->in_susp) {
        h->susp_cancel = true;
    }
}

static void do_cancel(struct htask *h, int exi, bool remote)
{
    if (!ex_ok(exi)) {
        return;
    }
    struct hex *const x = &g_ex[exi];
    if (h->queued) {
        check_task_state(h); /* taken from the queue meanwhile? */
    }
    bool const mine = h->attached && h->exi == exi && !h->queued;
    eset allowed;
    if (!mine) {
        allowed = E(ENOENT);
    }
    else if (remote) {
        allowed = E(EAGAIN);
    }
    else if (!h->launched) {
        allowed = E(0);
    }
    else {
        allowed = E(EAGAIN);
    }
    char what[64];
    snprintf(what, sizeof(what), "%scancel(ex %d, task %d)",
             remote ? "remote " : "", exi, h->idx);
    uint64_t const exits_before = h->exits;
    monad_async_result r;
    if (remote) {
        struct helper_req q = {.op = H_CANCEL, .ex = x->ex, .task = h->t};
        r = helper_call(&q);
    }
    else {
        r = monad_async_task_cancel(x->ex, h->t);
    }
    /* A pending task's cancel ends its work inside the call: the model
     * must see the exit hook first, so note the cancel before checking. */
    expect(r, allowed, what);
    if (!mine) {
        return;
    }
    if (remote) {
        if (h->cancel == C_NONE && !x->closing) {
            h->cancel = C_PENDING;
        }
        if (h->in_susp) {
            h->susp_pending = true;
        }
        return;
    }
    if (r.error == 0) {
        /* (Its exit hook may have attached it again.) */
        CHECK(h->exits == exits_before + 1,
              "cancel of a pending task returned success but its work did "
              "not end in the call");
        return;
    }
    note_cancel_applied(h);
    uint32_t const s = atomic_load(&h->t->state);
    CHECK(s & MONAD_ASYNC_TASK_STATE_CANCELLED, "state after cancel 0x%x",
          (unsigned)s);
}

/* A local cancel of a pending task ends it inside the call, which runs
 * the exit hook: the hook must see that it was cancelled. */
static void premark_local_cancel(struct htask *h, int exi, bool remote)
{
    if (!remote && ex_ok(exi) && h->attached && h->exi == exi && !h->launched &&
        !h->queued) {
        h->cancel = C_APPLIED;
    }
}

/* Whether a wake of `h` with its current token may resume it (1), and
 * whether it must. */
static void wake_expect(struct htask *h, bool *may1, bool *must1)
{
    *may1 = *must1 = false;
    if (!h->attached || !h->in_park || h->park_woken) {
        return;
    }
    if (h->susp_cancel) {
        return; /* a local cancel cleared PARKED */
    }
    *may1 = true;
    if (!h->park_finite && h->cancel != C_PENDING && !h->susp_pending) {
        *must1 = true;
    }
}

/* A wake of `h` (a token chosen by `kind`), from the helper thread when
 * `remote`, else from here, as monad_async_task_wake_deferred when
 * `deferred`. `caller` is the task running this call (NULL: none): the
 * deferred form defers (value 2) only when that is a task of h's own
 * executor and not h itself, and h is parked with that token. */
static void do_wake(struct htask *h, uint8_t kind, bool remote, bool deferred,
                    struct htask const *caller)
{
    uint64_t token;
    bool current = false;
    switch (kind % 5) {
    case 0:
    case 1: {
        /* The current work's token. */
        monad_async_result const r = monad_async_task_wake_token(h->t, &token);
        expect(r, h->attached ? E(0) : E(ENOENT), "wake_token");
        if (r.error == 0) {
            current = true;
            if (h->have_token) {
                CHECK(token == h->token, "token changed within one work");
            }
            h->token = token;
            h->have_token = true;
        }
        else {
            token = h->have_stale ? h->stale : 0;
        }
        break;
    }
    case 2:
        /* The last work's, or one far beyond any work's. */
        token = h->have_stale ? h->stale : (1ull << 60) | 1;
        break;
    case 3:
        token = 2 * (uint64_t)kind; /* even: names no work */
        break;
    default:
        token = (1ull << 61) | 1; /* a work far in the future */
        break;
    }
    eset allowed = E(ESRCH);
    bool may1 = false, must1 = false;
    if (current) {
        allowed = E(0);
        wake_expect(h, &may1, &must1);
    }
    char what[80];
    snprintf(what, sizeof(what), "%s%swake(task %d, %s token)",
             remote ? "remote " : "", deferred && !remote ? "deferred " : "",
             h->idx, current ? "current" : "stale");
    monad_async_result r;
    if (remote) {
        struct helper_req q = {.op = H_WAKE, .task = h->t, .token = token};
        r = helper_call(&q);
    }
    else if (deferred) {
        r = monad_async_task_wake_deferred(h->t, token);
    }
    else {
        r = monad_async_task_wake(h->t, token);
    }
    expect(r, allowed, what);
    if (r.error != 0) {
        return;
    }
    bool const pending = current && h->deferred_pending;
    bool const may2 = deferred && !remote && (may1 || pending) &&
                      caller != NULL && caller != h && caller->exi == h->exi;
    CHECK(r.value == 0 || r.value == 1 || (r.value == 2 && may2),
          "%s: value %ld", what, (long)r.value);
    if (pending) {
        /* Woken once by the kept wake (value 1 here: this one claimed
         * it first; 0 or 2: that one was applied, or is applied first):
         * one resumption and one permit. */
        h->deferred_pending = false;
        h->permit = true;
        return;
    }
    if (r.value == 2) {
        h->park_woken = true;
        h->deferred_pending = true;
        return;
    }
    if (r.value == 1) {
        CHECK(may1, "wake resumed task %d, which the model has not parked "
                    "(in_park %d woken %d cancel %d)",
              h->idx, h->in_park, h->park_woken, h->cancel);
        h->park_woken = true;
    }
    else {
        CHECK(!must1, "wake left a permit for task %d, parked with no "
                      "deadline and not cancelled: it must resume it",
              h->idx);
        h->permit = true;
    }
}

static void do_token(struct htask *h, bool remote)
{
    uint64_t token = 0;
    monad_async_result r;
    if (remote) {
        struct helper_req q = {.op = H_TOKEN, .task = h->t};
        r = helper_call(&q);
        token = q.token_out;
    }
    else {
        r = monad_async_task_wake_token(h->t, &token);
    }
    expect(r, h->attached ? E(0) : E(ENOENT), "wake_token");
    if (r.error == 0) {
        CHECK(token & 1, "a live work's token is odd: %lu",
              (unsigned long)token);
        if (h->have_token) {
            CHECK(token == h->token, "token changed within one work");
        }
        if (h->have_stale) {
            CHECK(token > h->stale, "token %lu not after the last work's %lu",
                  (unsigned long)token, (unsigned long)h->stale);
        }
        h->token = token;
        h->have_token = true;
    }
}

static void do_ex_wake(int exi, bool remote)
{
    if (!ex_ok(exi)) {
        return;
    }
    monad_async_result r;
    if (remote) {
        struct helper_req q = {.op = H_EX_WAKE, .ex = g_ex[exi].ex};
        r = helper_call(&q);
    }
    else {
        r = monad_async_executor_wake(g_ex[exi].ex);
    }
    expect(r, E(0), "executor_wake");
    g_ex[exi].wake_maybe = true;
}

/* Whether executor `exi` has a task that must run: pending launch and
 * cancelled by nobody. */
static bool must_progress(int exi)
{
    for (int k = 0; k < NTASK; k++) {
        struct htask *const h = &g_task[k];
        if (h->attached && h->exi == exi && !h->launched && h->cancel == C_NONE) {
            return true;
        }
    }
    return false;
}

static void check_run_result(struct hex *x, monad_async_result r, size_t max_items,
                             uint64_t exits_before, bool progress);

static void do_run(int exi, uint8_t maxk, uint8_t tk, bool inside)
{
    if (!ex_ok(exi)) {
        return;
    }
    struct hex *const x = &g_ex[exi];
    /* Its tasks run inside its run, and during its destroy inside the
     * run that destroy makes: EBUSY there. */
    bool const busy = x->in_run || x->closing;
    static size_t const maxes[] = {1, 2, 3, 7, 64, SIZE_MAX, SIZE_MAX, 0};
    size_t const max_items = maxes[maxk % 8];
    struct timespec ts = {0, 0};
    struct timespec const *timeout = &ts;
    bool bad = false;
    bool later = false;
    switch (tk % (inside ? 4 : 9)) {
    case 0: break;
    case 1: ts.tv_nsec = 20 * 1000; break;
    case 2: ts.tv_nsec = 50 * 1000; break;
    case 3: ts.tv_nsec = -1; bad = true; break;
    case 4: ts.tv_nsec = 1000000000L; bad = true; break;
    case 5: ts.tv_nsec = 200 * 1000; break;
    case 6: ts.tv_nsec = 1000 * 1000; break;
    case 7:
        /* No timeout: a wake made first guarantees it returns. */
        timeout = NULL;
        do_ex_wake(exi, tk & 0x10);
        break;
    default:
        /* No timeout, and the helper wakes it in 200 us. */
        timeout = NULL;
        later = true;
        break;
    }
    if (max_items == 0) {
        bad = true;
    }
    eset allowed;
    if (bad) {
        allowed = E(EINVAL);
        if (busy) {
            allowed |= E(EBUSY); /* both apply: either order is the contract */
        }
    }
    else if (busy) {
        allowed = E(EBUSY);
    }
    else {
        allowed = E(0) | (timeout != NULL ? E(ETIME) : 0);
    }
    bool const progress = !bad && !busy && must_progress(exi);
    if (later && !bad && !busy) {
        helper_wait_later();
        struct helper_req q = {.op = H_EX_WAKE_LATER, .ex = x->ex};
        (void)helper_call(&q);
        g_later_outstanding = true;
    }
    else if (later) {
        timeout = &ts; /* would not run anyway: keep it bounded */
        allowed |= E(ETIME);
    }
    char what[96];
    snprintf(what, sizeof(what), "run(ex %d, max %zd, %s%ld ns)", exi,
             (ssize_t)max_items, timeout ? "" : "NULL ", timeout ? ts.tv_nsec : 0);
    uint64_t const exits_before = x->exits;
    bool const running = !bad && !busy;
    if (running) {
        x->in_run++;
        g_run_depth++;
    }
    monad_async_executor const outer =
        (monad_async_executor)monad_async_executor_current().value;
    monad_async_result const r = monad_async_executor_run(x->ex, max_items, timeout);
    if (running) {
        x->in_run--;
        g_run_depth--;
    }
    WHERE("%s", what);
    expect(r, allowed, what);
    if (later && running) {
        /* The helper's wake may land after this run returned: it is
         * pending for the next one. */
        helper_wait_later();
        x->wake_maybe = true; /* it may be what ended this run */
        check_run_result(x, r, max_items, exits_before, progress);
        x->wake_maybe = true;
        return;
    }
    CHECK(monad_async_executor_current().value == (intptr_t)outer,
          "executor_current changed across a run");
    if (!running || bad) {
        return;
    }
    check_run_result(x, r, max_items, exits_before, progress);
}

static void check_run_result(struct hex *x, monad_async_result r, size_t max_items,
                             uint64_t exits_before, bool progress)
{
    bool const ended = x->exits != exits_before;
    if (r.error == ETIME) {
        CHECK(!ended, "ETIME, but the run ended %lu tasks",
              (unsigned long)(x->exits - exits_before));
        CHECK(!progress, "ETIME with a task pending launch");
        x->wake_maybe = false;
        return;
    }
    CHECK((size_t)r.value <= max_items, "run did %ld items, max %zu",
          (long)r.value, max_items);
    if (progress) {
        CHECK(r.value >= 1, "run did nothing with a task pending launch");
    }
    if (r.value == 0) {
        CHECK(ended || x->wake_maybe,
              "run returned 0 items without a wake and without ending a task");
        if (!ended) {
            x->wake_maybe = false;
        }
    }
    if (x->alive) {
        CHECK(atomic_load(&x->ex->current_task) == NULL);
    }
}

static void destroy_executor(int exi, bool inside);

static void do_ex_destroy(int exi, bool inside)
{
    if (!ex_ok(exi)) {
        return;
    }
    struct hex *const x = &g_ex[exi];
    if (x->in_run || x->closing) {
        WHERE("destroy of executor %d inside its run", exi);
        expect(monad_async_executor_destroy(x->ex), E(EBUSY),
               "executor_destroy (running)");
        return;
    }
    destroy_executor(exi, inside);
}

/* ---- inside tasks ---- */

/* The checks before every suspension point; see the file comment. */
static void susp_begin(struct htask *h)
{
    sync_cancel(h);
    h->in_susp = true;
    h->susp_cancel = false;
    h->susp_pending = h->cancel == C_PENDING;
}

/* `r` is the suspension point's own answer (not an operation's outcome,
 * as reap and io_wait return): its ECANCELED means the task was
 * cancelled. */
static void susp_end_op(struct htask *h)
{
    h->in_susp = false;
    sync_cancel(h);
}

static void susp_end(struct htask *h, monad_async_result r)
{
    h->in_susp = false;
    if (r.error == ECANCELED) {
        CHECK(h->cancel != C_NONE, "ECANCELED, and nobody cancelled task %d",
              h->idx);
    }
    sync_cancel(h);
}

/* What the running task `h` gets from a suspension point that checks
 * cancellation first: ENOTSUP and ECANCELED at once. Returns 0 when the
 * call goes on to suspend, else the errno set it must answer. */
static eset early_result(struct htask *h, bool needs_ring)
{
    if (g_sw[h->sw] == g_sw[3]) {
        return E(ENOTSUP);
    }
    if (needs_ring && !g_ex[h->exi].ring) {
        return E(ENOTSUP);
    }
    if (h->cancel == C_APPLIED) {
        return E(ECANCELED);
    }
    return 0;
}

static void t_yield(struct htask *h)
{
    susp_begin(h);
    eset early = early_result(h, false);
    monad_async_result const r = monad_async_task_yield(h->t);
    if (early) {
        expect(r, early, "yield");
    }
    else if (h->susp_cancel) {
        expect(r, E(ECANCELED), "yield (cancelled while suspended)");
    }
    else {
        expect(r, E(0) | (h->susp_pending || h->cancel == C_PENDING ? E(ECANCELED) : 0),
               "yield");
    }
    susp_end(h, r);
}

static void t_sleep(struct htask *h, uint8_t a)
{
    static uint64_t const ns[] = {0, 1000, 30 * 1000, 300 * 1000};
    susp_begin(h);
    eset early = early_result(h, false);
    monad_async_result const r =
        monad_async_task_suspend_for_duration(h->t, ns[a % 4]);
    if (early) {
        expect(r, early, "sleep");
    }
    else if (h->susp_cancel && !g_ex[h->exi].ring) {
        expect(r, E(ECANCELED), "sleep (cancelled while suspended)");
    }
    else {
        bool const c = h->susp_cancel || h->susp_pending || h->cancel != C_NONE;
        expect(r, E(0) | (c ? E(ECANCELED) : 0), "sleep");
    }
    susp_end(h, r);
}

static void t_park(struct htask *h, uint8_t a)
{
    static uint64_t const ns[] = {UINT64_MAX, 0, 50 * 1000, 1000 * 1000};
    uint64_t const timeout = ns[a % 4];
    susp_begin(h);
    eset early = early_result(h, false);
    uint64_t const susp_before = h->t->suspensions;
    bool const permit = h->permit;
    h->in_park = !early && !permit && timeout != 0;
    h->park_woken = false;
    h->park_finite = timeout != UINT64_MAX;
    monad_async_result const r = monad_async_task_park(h->t, timeout);
    h->in_park = false;
    h->deferred_pending = false; /* applied by now: it resumed us */
    if (early) {
        expect(r, early, "park");
    }
    else if (permit) {
        expect(r, E(0), "park (a permit was pending)");
        CHECK(h->t->suspensions == susp_before, "park suspended with a permit");
        h->permit = false;
    }
    else if (timeout == 0) {
        expect(r, E(ETIME), "park(0) without a permit");
        CHECK(h->t->suspensions == susp_before, "park(0) suspended");
    }
    else {
        eset allowed = 0;
        if (h->park_woken) {
            /* task.h: a wake that arrived first wins and the park
             * succeeds; the next suspension point says ECANCELED. */
            allowed = E(0);
        }
        else {
            if (h->susp_cancel || h->susp_pending || h->cancel != C_NONE) {
                allowed |= E(ECANCELED);
            }
            if (h->park_finite) {
                allowed |= E(ETIME);
            }
        }
        char what[64];
        snprintf(what, sizeof(what), "park(%s)%s",
                 timeout == UINT64_MAX ? "no deadline" : "deadline",
                 h->park_woken ? " after a wake that resumed it" : "");
        expect(r, allowed, what);
    }
    h->park_woken = false;
    susp_end(h, r);
}

/* The real outcome of an operation of `kind`. */
static void check_io_outcome(struct htask *h, int kind, monad_async_result r,
                             bool cancellable, char const *what)
{
    eset allowed = E(0) | (cancellable ? E(ECANCELED) : 0);
    expect(r, allowed, what);
    if (r.error != 0) {
        return;
    }
    switch (kind) {
    case K_NOP:
    case K_TIMEOUT:
        CHECK(r.value == 0, "%s: value %ld", what, (long)r.value);
        break;
    case K_POLL_PIPE:
    case K_POLL_EVENTFD:
        CHECK(r.value & POLLIN, "%s: events 0x%lx", what, (long)r.value);
        break;
    default:
        CHECK(r.value == 1, "%s: value %ld", what, (long)r.value);
        break;
    }
    (void)h;
}

static monad_async_result start_io(struct htask *h, int kind,
                                   struct monad_async_io_status *st, char *buf)
{
    static char const one = 'x';
    switch (kind) {
    case K_NOP:
        return monad_async_io_nop(h->t, st);
    case K_TIMEOUT:
        return monad_async_io_timeout(h->t, st, (uint64_t)(h->seq % 3) * 20000);
    case K_POLL_PIPE:
        return monad_async_io_poll(h->t, st, g_pipe[0], POLLIN);
    case K_POLL_EVENTFD:
        return monad_async_io_poll(h->t, st, g_efd, POLLIN);
    case K_READ:
        return monad_async_io_read(h->t, st, g_pipe[0], buf, 1, -1);
    default:
        if (g_pipe_written >= PIPE_CAP) {
            return monad_async_io_nop(h->t, st);
        }
        g_pipe_written++;
        return monad_async_io_write(h->t, st, g_pipe[1], &one, 1, -1);
    }
}

static void t_io(struct htask *h, uint8_t a, uint8_t b)
{
    int kind = a % K_COUNT;
    if (kind == K_WRITE && g_pipe_written >= PIPE_CAP) {
        kind = K_NOP;
    }
    bool const blocking = (b & 7) < 3;
    int const i = b % NST;
    char what[64];
    snprintf(what, sizeof(what), "io %s (%s)", kind_names[kind],
             blocking ? "blocking" : "initiate");
    susp_begin(h);
    eset early = early_result(h, true);
    if (!early && !blocking && h->st_active[i]) {
        early = E(EBUSY);
    }
    char local_buf[8];
    monad_async_result const r =
        start_io(h, kind, blocking ? NULL : &h->st[i], blocking ? local_buf : h->st_buf[i]);
    bool const c = h->susp_cancel || h->susp_pending || h->cancel != C_NONE;
    if (early) {
        expect(r, early, what);
    }
    else if (blocking) {
        check_io_outcome(h, kind, r, c, what);
    }
    else {
        /* It suspends only to wait for a slot, where a cancel ends it. */
        expect(r, E(0) | (c ? E(ECANCELED) : 0), what);
        if (r.error == 0) {
            CHECK(r.value == 0);
            CHECK(h->st[i].state != MONAD_ASYNC_IO_STATE_IDLE &&
                      h->st[i].task == h->t,
                  "status after initiate: state %u", h->st[i].state);
            h->st_active[i] = true;
            h->st_kind[i] = kind;
            h->st_cancel[i] = false;
        }
    }
    susp_end(h, r);
}

static int status_index(struct htask *h, struct monad_async_io_status *st)
{
    for (int i = 0; i < NST; i++) {
        if (st == &h->st[i]) {
            return i;
        }
    }
    return -1;
}

static bool any_active(struct htask *h)
{
    for (int i = 0; i < NST; i++) {
        if (h->st_active[i]) {
            return true;
        }
    }
    return false;
}

/* A status handed back by reap or wait: IDLE again, one of ours. */
static void reaped(struct htask *h, int i, monad_async_result res, char const *what)
{
    CHECK(i >= 0 && h->st_active[i], "%s handed back a status that is not "
                                     "an active one of this task",
          what);
    CHECK(h->st[i].state == MONAD_ASYNC_IO_STATE_IDLE, "%s: state %u", what,
          h->st[i].state);
    bool const c = h->st_cancel[i] || h->cancel != C_NONE;
    char buf[96];
    snprintf(buf, sizeof(buf), "%s: %s's outcome", what, kind_names[h->st_kind[i]]);
    check_io_outcome(h, h->st_kind[i], res, c, buf);
    h->st_active[i] = false;
}

static void t_reap(struct htask *h, bool wait)
{
    char const *const what = wait ? "reap" : "try_reap";
    sync_cancel(h);
    eset early = 0;
    if (g_sw[h->sw] == g_sw[3] || !g_ex[h->exi].ring) {
        early = E(ENOTSUP);
    }
    bool const active = any_active(h);
    struct monad_async_io_status *got = NULL;
    if (wait) {
        susp_begin(h);
    }
    monad_async_result const r =
        wait ? monad_async_io_reap(h->t, &got) : monad_async_io_try_reap(h->t, &got);
    if (early) {
        expect(r, early, what);
    }
    else if (active) {
        expect(r, E(0) | (wait ? 0 : E(EAGAIN)), what);
        if (r.error == 0) {
            CHECK(r.value == 0);
            reaped(h, status_index(h, got), got->result, what);
        }
    }
    else {
        sync_cancel(h);
        eset allowed = h->cancel == C_APPLIED ? E(ECANCELED) : E(ENOENT);
        if (h->cancel == C_PENDING) {
            allowed |= E(ECANCELED);
        }
        expect(r, allowed, what);
    }
    if (wait) {
        susp_end_op(h);
    }
    else {
        sync_cancel(h);
    }
}

static void t_io_wait(struct htask *h, uint8_t a, uint8_t b)
{
    int const i = a % NST;
    struct htask *const o = &g_task[b % NTASK];
    bool const own = o == h || (b & 0x80) == 0;
    struct htask *const w = own ? h : o;
    eset early = 0;
    if (g_sw[h->sw] == g_sw[3] || !g_ex[h->exi].ring) {
        early = E(ENOTSUP);
    }
    else if (w->st[i].state == MONAD_ASYNC_IO_STATE_IDLE) {
        early = E(ENOENT);
    }
    else if (w != h) {
        early = E(EINVAL);
    }
    if (w == h) {
        CHECK((w->st[i].state != MONAD_ASYNC_IO_STATE_IDLE) == w->st_active[i],
              "status %d: state %u, model active %d", i, w->st[i].state,
              w->st_active[i]);
    }
    susp_begin(h);
    monad_async_result const r = monad_async_io_wait(h->t, &w->st[i]);
    if (early) {
        expect(r, early, w == h ? "io_wait" : "io_wait (another task's status)");
    }
    else {
        reaped(h, i, r, "io_wait");
    }
    susp_end_op(h);
}

static void t_io_cancel(struct htask *h, uint8_t a, uint8_t b)
{
    int const i = a % NST;
    struct htask *const o = &g_task[b % NTASK];
    struct htask *const w = (b & 0x80) ? o : h;
    eset allowed;
    if (g_sw[h->sw] == g_sw[3] || !g_ex[h->exi].ring) {
        allowed = E(ENOTSUP);
    }
    else if (w->st[i].state == MONAD_ASYNC_IO_STATE_IDLE) {
        allowed = E(ENOENT);
    }
    else if (w != h) {
        /* ENOENT: it completed (not in flight); EINVAL: another task's. */
        allowed = E(ENOENT) | E(EINVAL);
    }
    else {
        allowed = E(0) | E(ENOENT);
    }
    monad_async_result const r = monad_async_io_cancel(h->t, &w->st[i]);
    expect(r, allowed, w == h ? "io_cancel" : "io_cancel (another task's status)");
    if (w == h && h->st_active[i]) {
        h->st_cancel[i] = true;
    }
}

static void t_bad(struct htask *h, uint8_t a)
{
    monad_async_executor const ex = g_ex[h->exi].ex;
    struct htask *const other =
        &g_task[(h->idx + 1 + (a / 16) % (NTASK - 1)) % NTASK];
    switch (a % 10) {
    case 0:
        expect(monad_async_task_yield(other->t), E(EINVAL), "yield of another task");
        expect(monad_async_task_set_deadline(other->t, 1), E(EPERM),
               "set_deadline of another task");
        break;
    case 1:
        expect(monad_async_task_park(other->t, 0), E(EINVAL), "park of another task");
        break;
    case 2:
        expect(monad_async_task_suspend_for_duration(NULL, 1), E(EINVAL), "sleep(NULL)");
        break;
    case 3:
        expect(monad_async_task_attach(ex, h->t, NULL),
               E(EBUSY) | (g_ex[h->exi].closing ? E(ESHUTDOWN) : 0),
               "attach of itself");
        break;
    case 4:
        expect(monad_async_task_destroy(h->t), E(EBUSY), "destroy of itself");
        break;
    case 5:
        expect(monad_async_context_switcher_destroy(h->t->switcher), E(EBUSY),
               "destroy of its switcher");
        break;
    case 6:
        expect(monad_async_io_nop(other->t, NULL), E(EINVAL), "nop for another task");
        break;
    case 7: {
        eset const early = g_sw[h->sw] == g_sw[3] || !g_ex[h->exi].ring
                               ? E(ENOTSUP) | E(EINVAL)
                               : E(EINVAL);
        expect(monad_async_io_reap(h->t, NULL), early, "reap(NULL)");
        expect(monad_async_io_wait(h->t, NULL), E(EINVAL), "io_wait(NULL)");
        expect(monad_async_io_cancel(h->t, NULL), E(EINVAL), "io_cancel(NULL)");
        break;
    }
    case 8: {
        CHECK(monad_async_executor_current().value == (intptr_t)ex);
        CHECK(atomic_load(&ex->current_task) == h->t);
        uint64_t token;
        expect(monad_async_task_wake_token(h->t, NULL), E(EINVAL), "wake_token(NULL)");
        expect(monad_async_task_wake_token(h->t, &token), E(0), "wake_token of itself");
        /* The model never sets a deadline: each work starts without one,
         * and setting none again changes nothing. */
        uint64_t deadline = 1;
        expect(monad_async_task_get_deadline(h->t, &deadline), E(0), "get_deadline of itself");
        CHECK(deadline == 0);
        expect(monad_async_task_set_deadline(h->t, 0), E(0), "set_deadline(0) of itself");
        expect(monad_async_task_set_deadline(NULL, 1), E(EINVAL), "set_deadline(NULL)");
        expect(monad_async_task_get_deadline(h->t, NULL), E(EINVAL), "get_deadline(task, NULL)");
        break;
    }
    default:
        expect(monad_async_io_poll(h->t, NULL, -1, POLLIN), E(EBADF), "poll(-1)");
        if (g_wdm.alive && g_ex[DEX].in_run) {
            /* Waiting with no deadline on a thread the dispatcher's
             * executor runs on would wait for itself. */
            expect(monad_async_work_dispatcher_wait(g_wdm.wd, 0, 0, NULL),
                   E(EDEADLK), "dispatcher wait(NULL) inside its run");
            expect(monad_async_work_dispatcher_quit(g_wdm.wd, 0, NULL),
                   E(EDEADLK), "dispatcher quit(NULL) inside its run");
            expect(monad_async_work_dispatcher_executor_destroy(g_wdm.wex),
                   E(EBUSY), "dispatcher executor_destroy inside its run");
        }
        break;
    }
}

static void run_script(struct htask *h, int16_t s)
{
    if (s < 0) {
        return;
    }
    struct script const sc = g_scripts[s];
    for (int k = 0; k < sc.n; k++) {
        struct op const *const o = &g_ops[g_sops[sc.first + k]];
        WHERE("task %d (work %lu) step %d: %s a=%u b=%u c=%u", h->idx,
              (unsigned long)h->seq, k, task_names[o->code], o->a, o->b, o->c);
        trace("  %s", g_where);
        struct htask *const other = &g_task[o->a % NTASK];
        switch (o->code) {
        case T_YIELD:
            t_yield(h);
            break;
        case T_SLEEP:
            t_sleep(h, o->a);
            break;
        case T_PARK:
            t_park(h, o->a);
            break;
        case T_WAKE:
            do_wake(other, o->b, o->c & 1, o->c & 2, h);
            break;
        case T_TOKEN:
            do_token(o->c & 2 ? other : h, o->c & 1);
            break;
        case T_ATTACH:
            do_attach(other, o->b % NEX, o->c, o->script, o->exit_script, o->b / 16,
                      o->c & 0x40);
            break;
        case T_CANCEL: {
            struct htask *const v = (o->c & 2) ? h : other;
            int const exi = (o->c & 4) ? (o->b % NEX) : h->exi;
            premark_local_cancel(v, exi, o->c & 1);
            do_cancel(v, exi, o->c & 1);
            break;
        }
        case T_RUN:
            if ((o->c & 0x80) && g_run_depth < MAX_RUN_DEPTH) {
                do_wd_run(true);
            }
            else if (g_run_depth < MAX_RUN_DEPTH) {
                do_run((o->a & 1) ? h->exi : o->a % NEX, o->b, o->c, true);
            }
            break;
        case T_EX_DESTROY:
            do_ex_destroy((o->a & 1) ? h->exi : o->a % NEX, true);
            break;
        case T_EX_WAKE:
            do_ex_wake(o->a % NEX, o->c & 1);
            break;
        case T_IO:
        case T_IO2:
            t_io(h, o->a, o->b);
            break;
        case T_REAP:
            t_reap(h, true);
            break;
        case T_TRY_REAP:
            t_reap(h, false);
            break;
        case T_IO_WAIT:
            t_io_wait(h, o->a, o->b);
            break;
        case T_IO_CANCEL:
            t_io_cancel(h, o->a, o->b);
            break;
        case T_BAD:
            t_bad(h, o->a);
            break;
        case T_RETURN:
            return;
        case T_PRIO:
            /* A running task may change its own I/O priority (task.h). */
            h->t->priority.io = (monad_async_priority)(o->a % 3);
            break;
        default:
            if (g_pipe_written < PIPE_CAP) {
                g_pipe_written++;
                CHECK(write(g_pipe[1], "y", 1) == 1);
            }
            break;
        }
        WHERE("task %d after step %d", h->idx, k);
        /* The model's view of this task, checked where it runs. */
        CHECK(h->attached);
    }
}

/* ---- the work dispatcher ---- */

static int queued_count(void)
{
    int n = 0;
    for (int k = 0; k < NTASK; k++) {
        check_task_state(&g_task[k]);
        n += g_task[k].attached && g_task[k].queued;
    }
    return n;
}

/* Its counters agree with the model (on the program's thread, outside
 * the dispatcher's run: nothing else moves them then). */
static void check_wd_counters(void)
{
    struct monad_async_work_dispatcher_counters c;
    expect(monad_async_work_dispatcher_read_counters(g_wdm.wd, &c), E(0),
           "dispatcher read_counters");
    uint64_t const queued = (uint64_t)queued_count();
    CHECK(c.submitted == g_wdm.submitted && c.cancelled == g_wdm.cancelled &&
              c.executed == g_wdm.executed + g_wdm.cancelled &&
              c.queued == queued,
          "dispatcher counters: submitted %lu executed %lu cancelled %lu "
          "queued %lu; the model: %lu, %lu + %lu, %lu",
          (unsigned long)c.submitted, (unsigned long)c.executed,
          (unsigned long)c.cancelled, (unsigned long)c.queued,
          (unsigned long)g_wdm.submitted, (unsigned long)g_wdm.executed,
          (unsigned long)g_wdm.cancelled, (unsigned long)queued);
    CHECK(c.dispatched == c.submitted - c.queued,
          "dispatched %lu, submitted %lu, queued %lu",
          (unsigned long)c.dispatched, (unsigned long)c.submitted,
          (unsigned long)c.queued);
    CHECK(c.executors == (g_wdm.in_pool ? 1u : 0u), "executors %lu",
          (unsigned long)c.executors);
    uint64_t q = 0;
    for (int p = 0; p < monad_async_priority_max; p++) {
        q += c.queued_by_priority[p];
    }
    CHECK(q == c.queued);
    if (g_wdm.wex_alive) {
        struct monad_async_work_dispatcher_executor_counters e;
        expect(monad_async_work_dispatcher_executor_read_counters(g_wdm.wex, &e),
               E(0), "dispatcher executor read_counters");
        CHECK(e.dispatched == c.dispatched - c.cancelled,
              "executor dispatched %lu, dispatcher %lu (%lu cancelled)",
              (unsigned long)e.dispatched, (unsigned long)c.dispatched,
              (unsigned long)c.cancelled);
    }
}

static void wd_create(uint8_t b, uint8_t c)
{
    struct monad_async_work_dispatcher_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.idle_ns = 100 * 1000 * (1 + b % 4);
    attr.spin_ns = (b & 0x10) ? 1000 : 0;
    if (b & 0x20) {
        attr.flags = MONAD_ASYNC_WORK_DISPATCHER_FLAG_NO_SPIN;
    }
    if ((b & 0xc0) == 0xc0) {
        attr.flags = 1u << 4;
        expect(monad_async_work_dispatcher_create(&g_wdm.wd, &attr), E(EINVAL),
               "dispatcher_create (unknown flag)");
        return;
    }
    expect(monad_async_work_dispatcher_create(NULL, &attr), E(EINVAL),
           "dispatcher_create(NULL)");
    expect(monad_async_work_dispatcher_create(&g_wdm.wd, &attr), E(0),
           "dispatcher_create");
    struct monad_async_work_dispatcher_executor_attr xa;
    memset(&xa, 0, sizeof(xa));
    static unsigned const entries[] = {0, 4, 8, 16};
    xa.executor.io_uring_ring.entries = entries[c % 4];
    if (c & 0x04) {
        xa.executor.flags = MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING;
    }
    if (c & 0x08) {
        xa.executor.io_inflight_limit = 2;
    }
    expect(monad_async_work_dispatcher_executor_create(NULL, g_wdm.wd, &xa),
           E(EINVAL), "dispatcher executor_create(NULL)");
    expect(monad_async_work_dispatcher_executor_create(&g_wdm.wex, g_wdm.wd, &xa),
           E(0), "dispatcher executor_create");
    g_wdm.alive = g_wdm.wex_alive = g_wdm.in_pool = true;
    g_wdm.told = g_wdm.quit_all = false;
    g_wdm.submitted = g_wdm.executed = g_wdm.cancelled = 0;
    struct hex *const x = &g_ex[DEX];
    memset(x, 0, sizeof(*x));
    x->ex = g_wdm.wex->executor;
    x->alive = true;
    x->ring = xa.executor.io_uring_ring.entries != 0;
    x->notime = xa.executor.flags & MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING;
    CHECK(g_wdm.wex->dispatcher == g_wdm.wd);
}

/* Submits up to three tasks with `script`. */
static void wd_submit(uint8_t b, uint8_t c, int16_t script, bool remote)
{
    size_t const n = 1 + b % 3;
    monad_async_task tasks[3];
    struct htask *hs[3];
    bool busy = false, bad = false;
    for (size_t i = 0; i < n; i++) {
        hs[i] = &g_task[(c + 3 * i) % NTASK];
        tasks[i] = hs[i]->t;
        busy |= hs[i]->attached;
        for (size_t j = 0; j < i; j++) {
            busy |= hs[j] == hs[i]; /* the same task twice */
        }
    }
    if ((b & 0x18) == 0x18) {
        tasks[n - 1] = NULL;
        bad = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (!hs[i]->attached) {
            hs[i]->t->priority.cpu = (monad_async_priority)((b >> 5) % 3);
        }
    }
    eset allowed;
    if (bad) {
        allowed = E(EINVAL);
    }
    else if (g_wdm.quit_all) {
        allowed = E(ESHUTDOWN) | (busy ? E(EBUSY) : 0);
    }
    else {
        allowed = busy ? E(EBUSY) : E(0);
    }
    monad_async_result r;
    if (remote) {
        struct helper_req q = {.op = H_WD_SUBMIT, .wd = g_wdm.wd, .tasks = tasks,
                               .n = n};
        r = helper_call(&q);
    }
    else {
        r = monad_async_work_dispatcher_submit(g_wdm.wd, tasks, n);
    }
    expect(r, allowed, "dispatcher submit");
    if (r.error != 0) {
        for (size_t i = 0; i < n; i++) {
            if (!hs[i]->attached) {
                CHECK(!(atomic_load(&hs[i]->t->state) &
                        MONAD_ASYNC_TASK_STATE_ATTACHED),
                      "a refused submission left task %d claimed", hs[i]->idx);
            }
        }
        return;
    }
    CHECK(r.value == (intptr_t)n);
    for (size_t i = 0; i < n; i++) {
        struct htask *const h = hs[i];
        h->attached = h->queued = true;
        h->exi = DEX;
        h->launched = h->returned = false;
        h->cancel = C_NONE;
        h->seq = ++g_seq;
        h->script = script;
        h->exit_script = -1;
        h->have_token = false;
        h->permit = false;
        h->deferred_pending = false;
        h->in_susp = h->in_park = false;
        memset(h->st, 0, sizeof(h->st));
        memset(h->st_active, 0, sizeof(h->st_active));
        uint32_t const st = atomic_load(&h->t->state);
        CHECK((st & MONAD_ASYNC_TASK_STATE_QUEUED) &&
                  atomic_load(&h->t->current_executor) == NULL,
              "submitted task %d: state 0x%x", h->idx, (unsigned)st);
    }
    g_wdm.submitted += n;
}

static void do_wd_run(bool inside)
{
    if (!g_wdm.wex_alive) {
        return;
    }
    struct hex *const x = &g_ex[DEX];
    bool const busy = x->in_run || x->closing;
    int const queued_before = queued_count();
    bool const told = g_wdm.told;
    if (busy) {
        expect(monad_async_work_dispatcher_executor_run(g_wdm.wex), E(EBUSY),
               "dispatcher executor_run inside its run");
        return;
    }
    x->in_run++;
    g_run_depth++;
    monad_async_result const r = monad_async_work_dispatcher_executor_run(g_wdm.wex);
    x->in_run--;
    g_run_depth--;
    WHERE("dispatcher executor_run%s", inside ? " inside a task" : "");
    expect(r, E(0), "dispatcher executor_run");
    if (!g_wdm.in_pool) {
        CHECK(r.value < 0, "an executor that quit ran %ld items", (long)r.value);
        return;
    }
    if (r.value < 0) {
        CHECK(told, "executor_run returned %ld, never told to quit",
              (long)r.value);
        g_wdm.in_pool = false;
        for (int k = 0; k < NTASK; k++) {
            CHECK(!(g_task[k].attached && g_task[k].exi == DEX && !g_task[k].queued),
                  "the executor left the pool with task %d attached", k);
        }
        return;
    }
    if (!told && !inside) {
        CHECK(queued_count() == 0,
              "executor_run returned %ld with tasks still queued",
              (long)r.value);
        if (queued_before > 0) {
            CHECK(r.value >= 1, "executor_run ran nothing of %d queued",
                  queued_before);
        }
    }
}

static eset wd_timeout(uint8_t k, struct timespec *ts)
{
    ts->tv_sec = 0;
    ts->tv_nsec = 0;
    switch (k % 4) {
    case 0: return 0;
    case 1: ts->tv_nsec = 100 * 1000; return 0;
    case 2: ts->tv_nsec = -1; return E(EINVAL);
    default: ts->tv_nsec = 1000000000L; return E(EINVAL);
    }
}

/* cancel_queued on the model's dispatcher: every queued task is ended
 * (its cancel applied), and the call says how many it took. */
static void model_cancel_queued(char const *what)
{
    int const q = queued_count();
    for (int k = 0; k < NTASK; k++) {
        if (g_task[k].attached && g_task[k].queued) {
            g_task[k].cancel = C_APPLIED;
        }
    }
    monad_async_result const r = monad_async_work_dispatcher_cancel_queued(g_wdm.wd);
    expect(r, E(0), what);
    CHECK(r.value == q, "cancel_queued took %ld of %d", (long)r.value, q);
}

static void wd_teardown(void)
{
    if (!g_wdm.alive && !g_wdm.wex_alive) {
        return;
    }
    WHERE("dispatcher teardown");
    if (g_wdm.alive) {
        model_cancel_queued("dispatcher cancel_queued (teardown)");
        check_wd_counters();
    }
    if (g_wdm.wex_alive) {
        for (int k = 0; k < NTASK; k++) {
            struct htask *const h = &g_task[k];
            if (h->attached && h->exi == DEX) {
                note_cancel_applied(h);
            }
        }
        g_ex[DEX].closing = true;
        expect(monad_async_work_dispatcher_executor_destroy(g_wdm.wex), E(0),
               "dispatcher executor_destroy");
        g_ex[DEX].closing = false;
        g_ex[DEX].alive = false;
        g_wdm.wex_alive = g_wdm.in_pool = false;
        for (int k = 0; k < NTASK; k++) {
            CHECK(!(g_task[k].attached && g_task[k].exi == DEX),
                  "task %d attached after its executor's destroy", k);
        }
    }
    if (g_wdm.alive) {
        check_wd_counters();
        CHECK(g_wdm.submitted == g_wdm.executed + g_wdm.cancelled);
        expect(monad_async_work_dispatcher_destroy(g_wdm.wd), E(0),
               "dispatcher_destroy");
        g_wdm.alive = false;
    }
}

static void top_dispatch(struct op const *o)
{
    uint8_t const a = o->a % 10;
    if (a != 0 && !g_wdm.alive && !g_wdm.wex_alive) {
        return;
    }
    struct timespec ts;
    switch (a) {
    case 0:
        if (!g_wdm.alive && !g_wdm.wex_alive) {
            wd_create(o->b, o->c);
        }
        break;
    case 1:
        if (g_wdm.alive) {
            wd_submit(o->b, o->c, o->script, o->b & 0x80);
        }
        break;
    case 2:
        do_wd_run(false);
        break;
    case 3:
        if (g_wdm.wex_alive) {
            /* Run and destroy belong to the executor's own thread. */
            struct helper_req q = {.op = (o->b & 1) ? H_WD_DESTROY : H_WD_RUN};
            q.wex = g_wdm.wex;
            expect(helper_call(&q), E(EPERM), "dispatcher executor run/destroy "
                                              "from another thread");
        }
        break;
    case 4:
        if (g_wdm.alive) {
            size_t const mu = o->b % 3, mx = o->c % 3;
            eset const bad = wd_timeout(o->b >> 4, &ts);
            uint64_t const queued = (uint64_t)queued_count();
            uint64_t const unfinished =
                g_wdm.submitted - g_wdm.executed - g_wdm.cancelled;
            monad_async_result const r =
                monad_async_work_dispatcher_wait(g_wdm.wd, mu, mx, &ts);
            /* Nothing can move while this thread waits: decided now. */
            expect(r, bad ? bad : (queued <= mu && unfinished <= mx) ? E(0) : E(ETIME),
                   "dispatcher wait");
            if (r.error == 0) {
                CHECK(r.value == (intptr_t)unfinished, "wait: %ld unfinished, "
                                                       "the model %lu",
                      (long)r.value, (unsigned long)unfinished);
            }
        }
        break;
    case 5:
        if (g_wdm.alive) {
            size_t const max = (o->b & 1) ? SIZE_MAX : 1;
            eset const bad = wd_timeout(o->b >> 4, &ts);
            bool const tells = g_wdm.in_pool && !g_wdm.told;
            monad_async_result const r = monad_async_work_dispatcher_quit(g_wdm.wd, max, &ts);
            if (bad) {
                expect(r, bad, "dispatcher quit");
                break;
            }
            /* Told executors acknowledge from their run: not from here. */
            bool const pending = g_wdm.in_pool && (g_wdm.told || tells);
            expect(r, pending ? E(ETIME) : E(0), "dispatcher quit");
            if (r.error == 0) {
                CHECK(r.value == (tells ? 1 : 0));
            }
            if (tells) {
                g_wdm.told = true;
            }
            if (max == SIZE_MAX) {
                g_wdm.quit_all = true;
            }
        }
        break;
    case 6:
        if (g_wdm.alive) {
            model_cancel_queued("dispatcher cancel_queued");
        }
        break;
    case 7:
        if (g_wdm.alive) {
            check_wd_counters();
        }
        expect(monad_async_work_dispatcher_read_counters(NULL, NULL), E(EINVAL),
               "dispatcher read_counters(NULL)");
        expect(monad_async_work_dispatcher_executor_run(NULL), E(EINVAL),
               "dispatcher executor_run(NULL)");
        expect(monad_async_work_dispatcher_submit(NULL, NULL, 0), E(EINVAL),
               "dispatcher submit(NULL)");
        if (g_wdm.alive) {
            expect(monad_async_work_dispatcher_submit(g_wdm.wd, NULL, 1), E(EINVAL),
                   "dispatcher submit(NULL tasks)");
        }
        break;
    case 8:
        if (g_wdm.wex_alive) {
            for (int k = 0; k < NTASK; k++) {
                struct htask *const h = &g_task[k];
                if (h->attached && h->exi == DEX && !h->queued) {
                    note_cancel_applied(h);
                }
            }
            g_ex[DEX].closing = true;
            expect(monad_async_work_dispatcher_executor_destroy(g_wdm.wex), E(0),
                   "dispatcher executor_destroy");
            g_ex[DEX].closing = false;
            g_ex[DEX].alive = false;
            g_wdm.wex_alive = g_wdm.in_pool = false;
            for (int k = 0; k < NTASK; k++) {
                CHECK(!(g_task[k].attached && g_task[k].exi == DEX &&
                        !g_task[k].queued),
                      "task %d attached after its executor's destroy", k);
            }
        }
        break;
    default:
        if (g_wdm.alive) {
            bool const busy = g_wdm.in_pool || queued_count() != 0;
            monad_async_result const r = monad_async_work_dispatcher_destroy(g_wdm.wd);
            expect(r, busy ? E(EBUSY) : E(0), "dispatcher_destroy");
            if (r.error == 0) {
                g_wdm.alive = false;
            }
        }
        break;
    }
}

/* ---- executors: create and destroy ---- */

static void create_executor(int exi, uint8_t kind)
{
    struct monad_async_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    static unsigned const entries[] = {0, 0, 4, 8, 16, 4, 16, 8};
    attr.io_uring_ring.entries = entries[kind % 8];
    if (kind & 0x08) {
        attr.flags = MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING;
    }
    if (attr.io_uring_ring.entries != 0) {
        static uint32_t const limits[] = {0, 2, 3, 8};
        attr.io_inflight_limit = limits[(kind >> 4) & 3];
        if (kind & 0x40) {
            attr.io_cq_entries = attr.io_uring_ring.entries; /* the least */
        }
    }
    eset allowed = E(0);
    if ((kind & 0x87) == 0x80) {
        /* Bad attributes: EINVAL and no executor. */
        switch ((kind >> 4) & 3) {
        case 0: attr.flags = 1u << 5; break;
        case 1: attr.io_uring_ring.entries = 1u << 20; break;
        case 2:
            attr.io_uring_ring.entries = 16;
            attr.io_cq_entries = 8;
            break;
        default:
            attr.io_uring_ring.entries = 4;
            attr.io_inflight_limit = MONAD_ASYNC_IO_INFLIGHT_LIMIT_MAX + 1;
            break;
        }
        allowed = E(EINVAL);
    }
    monad_async_executor ex = NULL;
    monad_async_result const r = monad_async_executor_create(&ex, &attr);
    expect(r, allowed, "executor_create");
    if (r.error != 0) {
        CHECK(ex == NULL, "a failed create wrote an executor");
        return;
    }
    struct hex *const x = &g_ex[exi];
    memset(x, 0, sizeof(*x));
    x->ex = ex;
    x->alive = true;
    x->ring = attr.io_uring_ring.entries != 0;
    x->notime = attr.flags & MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING;
    x->entries = attr.io_uring_ring.entries;
    CHECK(ex->tasks_attached == 0 && ex->counters.attached == 0);
    if (x->ring) {
        CHECK(ex->ring.sq_entries >= x->entries);
        CHECK(ex->ring.inflight_limit ==
              (attr.io_inflight_limit ? attr.io_inflight_limit
                                      : MONAD_ASYNC_IO_INFLIGHT_LIMIT_DEFAULT));
    }
    else {
        CHECK(ex->ring.sq_entries == 0);
    }
}

/* The end-of-life checks of an executor with nothing attached. */
static void check_drained(int exi)
{
    struct hex *const x = &g_ex[exi];
    monad_async_executor const ex = x->ex;
    CHECK(ex->tasks_attached == 0);
    CHECK(ex->counters.attached == ex->counters.exited,
          "executor %d: attached %lu, exited %lu", exi,
          (unsigned long)ex->counters.attached,
          (unsigned long)ex->counters.exited);
    CHECK(ex->counters.attached == x->attaches,
          "executor %d: counters.attached %lu, successful attaches %lu", exi,
          (unsigned long)ex->counters.attached, (unsigned long)x->attaches);
    CHECK(ex->counters.exited == x->exits);
    CHECK(ex->io.submitted == ex->io.completed,
          "executor %d: io submitted %lu, completed %lu", exi,
          (unsigned long)ex->io.submitted, (unsigned long)ex->io.completed);
    CHECK(ex->io.in_flight == 0 && ex->io.stale == 0);
    for (int p = 0; p < monad_async_priority_max; p++) {
        CHECK(ex->tasks_runnable[p] == 0);
    }
    CHECK(ex->tasks_timed == 0);
    CHECK(atomic_load(&ex->current_task) == NULL);
    if (x->notime) {
        CHECK(ex->ticks.in_run == 0 && ex->ticks.launching == 0 &&
              ex->ticks.resuming == 0 && ex->ticks.sleeping == 0);
    }
}

static void destroy_executor(int exi, bool inside)
{
    struct hex *const x = &g_ex[exi];
    WHERE("destroy of executor %d%s", exi, inside ? " from inside a task" : "");
    trace("  %s", g_where);
    /* Destroy cancels every task attached to it first. */
    for (int k = 0; k < NTASK; k++) {
        struct htask *const h = &g_task[k];
        if (h->attached && h->exi == exi) {
            note_cancel_applied(h);
        }
    }
    x->closing = true;
    monad_async_result const r = monad_async_executor_destroy(x->ex);
    WHERE("destroy of executor %d", exi);
    expect(r, E(0), "executor_destroy");
    x->closing = false;
    x->alive = false;
    for (int k = 0; k < NTASK; k++) {
        struct htask *const h = &g_task[k];
        CHECK(!(h->attached && h->exi == exi),
              "task %d still attached to executor %d after its destroy", k, exi);
    }
    CHECK(x->exits == x->attaches,
          "executor %d: %lu attaches, %lu exits by its destroy", exi,
          (unsigned long)x->attaches, (unsigned long)x->exits);
    x->ex = NULL;
}

/* Cancels and runs executor `exi` until nothing is attached to it. */
static void drain_executor(int exi)
{
    struct hex *const x = &g_ex[exi];
    struct timespec const ms = {0, 1000 * 1000};
    for (int round = 0;; round++) {
        bool any = false;
        for (int k = 0; k < NTASK; k++) {
            struct htask *const h = &g_task[k];
            if (h->attached && h->exi == exi) {
                any = true;
                WHERE("drain of executor %d: cancel of task %d", exi, k);
                premark_local_cancel(h, exi, false);
                do_cancel(h, exi, false);
            }
        }
        if (!any && x->ex->tasks_attached == 0) {
            break;
        }
        CHECK(round < 3000, "executor %d does not drain: %lu tasks attached",
              exi, (unsigned long)x->ex->tasks_attached);
        WHERE("drain of executor %d: run", exi);
        x->in_run++;
        monad_async_result const r = monad_async_executor_run(x->ex, SIZE_MAX, &ms);
        x->in_run--;
        expect(r, E(0) | E(ETIME), "run (drain)");
    }
    WHERE("drain of executor %d: checks", exi);
    check_drained(exi);
}

/* ---- the top level ---- */

static void top_bad(uint8_t a)
{
    monad_async_executor ex = NULL;
    monad_async_context_switcher sw = NULL;
    monad_async_task t = NULL;
    uint64_t token;
    switch (a % 8) {
    case 0:
        expect(monad_async_executor_create(NULL, NULL), E(EINVAL), "executor_create(NULL)");
        expect(monad_async_executor_destroy(NULL), E(EINVAL), "executor_destroy(NULL)");
        expect(monad_async_executor_run(NULL, 1, NULL), E(EINVAL), "run(NULL)");
        expect(monad_async_executor_wake(NULL), E(EINVAL), "executor_wake(NULL)");
        break;
    case 1:
        expect(monad_async_context_switcher_sjlj_create(NULL), E(EINVAL), "sjlj_create(NULL)");
        expect(monad_async_context_switcher_asm_create(NULL), E(EINVAL), "asm_create(NULL)");
        expect(monad_async_context_switcher_none_create(NULL), E(EINVAL), "none_create(NULL)");
        expect(monad_async_context_switcher_destroy(NULL), E(EINVAL), "switcher_destroy(NULL)");
        {
            struct monad_async_context_switcher_attr sa;
            memset(&sa, 0, sizeof(sa));
            sa.flags = 1u << (1 + a / 8 % 31);
            expect(monad_async_context_switcher_asm_create_with_attr(&sw, &sa), E(EINVAL),
                   "asm_create_with_attr(unknown flag)");
        }
        break;
    case 2:
        expect(monad_async_task_create(NULL, g_sw[0], NULL), E(EINVAL), "task_create(NULL)");
        expect(monad_async_task_create(&t, NULL, NULL), E(EINVAL), "task_create(NULL switcher)");
        expect(monad_async_task_destroy(NULL), E(EINVAL), "task_destroy(NULL)");
        break;
    case 3:
        expect(monad_async_task_yield(NULL), E(EINVAL), "yield(NULL)");
        expect(monad_async_task_park(NULL, 0), E(EINVAL), "park(NULL)");
        expect(monad_async_task_wake(NULL, 1), E(EINVAL), "wake(NULL)");
        expect(monad_async_task_wake_token(NULL, &token), E(EINVAL), "wake_token(NULL)");
        expect(monad_async_task_wake_token(g_task[a / 8 % NTASK].t, NULL), E(EINVAL),
               "wake_token(task, NULL)");
        break;
    case 4: {
        /* Outside any task: suspension points say EINVAL. */
        struct htask *const h = &g_task[a / 8 % NTASK];
        expect(monad_async_task_yield(h->t), E(EINVAL), "yield outside a task");
        expect(monad_async_task_set_deadline(h->t, 1), E(EPERM),
               "set_deadline outside a task");
        expect(monad_async_task_park(h->t, 1), E(EINVAL), "park outside a task");
        expect(monad_async_task_suspend_for_duration(h->t, 1), E(EINVAL),
               "sleep outside a task");
        expect(monad_async_io_nop(h->t, NULL), E(EINVAL), "nop outside a task");
        struct monad_async_io_status *got;
        expect(monad_async_io_reap(h->t, &got), E(EINVAL), "reap outside a task");
        break;
    }
    case 5: {
        int const exi = a / 8 % NEX;
        struct htask *const h = &g_task[a / 32 % NTASK];
        if (ex_ok(exi)) {
            ex = g_ex[exi].ex;
            expect(monad_async_task_attach(NULL, h->t, NULL), E(EINVAL), "attach(NULL ex)");
            expect(monad_async_task_attach(ex, NULL, NULL), E(EINVAL), "attach(NULL task)");
            expect(monad_async_task_cancel(NULL, h->t), E(EINVAL), "cancel(NULL ex)");
            expect(monad_async_task_cancel(ex, NULL), E(EINVAL), "cancel(NULL task)");
        }
        break;
    }
    case 6: {
        char buf[64];
        size_t const len = a / 8 % 4 == 0 ? 0 : (size_t)(a / 8 % 64);
        static int const errs[] = {0, EPERM, ENOSYS, ENOMEM, EINVAL, ENOTSUP, EMFILE, 12345};
        int const e = errs[a / 4 % 8];
        monad_async_result r = monad_async_executor_describe_error(e, len ? buf : NULL, len);
        expect(r, E(0), "describe_error");
        CHECK(r.value > 0);
        if (len) {
            CHECK(strlen(buf) == ((size_t)r.value < len ? (size_t)r.value : len - 1),
                  "describe_error: %zu chars for a %ld-char text in %zu bytes",
                  strlen(buf), (long)r.value, len);
        }
        expect(monad_async_executor_describe_error(e, NULL, 3), E(EINVAL),
               "describe_error(NULL, 3)");
        break;
    }
    default:
        for (int i = 0; i < MONAD_ASYNC_LAYOUT_COUNT; i++) {
            expect(monad_async_layout((enum monad_async_layout_item)i), E(0), "layout");
        }
        expect(monad_async_layout(MONAD_ASYNC_LAYOUT_COUNT), E(EINVAL), "layout(COUNT)");
        break;
    }
}

static void top_foreign(uint8_t a)
{
    int const exi = a % NEX;
    if (!ex_ok(exi)) {
        struct helper_req q = {.op = H_CURRENT};
        expect(helper_call(&q), E(0), "executor_current on the helper");
        CHECK(q.r.value == 0);
        return;
    }
    static int const ops[] = {H_RUN, H_RUN0, H_DESTROY, H_RUN_ZERO_ITEMS};
    struct helper_req q = {.op = ops[(a / 4) % 4], .ex = g_ex[exi].ex};
    monad_async_result const r = helper_call(&q);
    /* run with max_items 0: the argument check, or the thread's. */
    expect(r, q.op == H_RUN_ZERO_ITEMS ? E(EINVAL) | E(EPERM) : E(EPERM),
           "run/destroy from another thread");
}

static uint64_t g_last_ticks;

static void top_misc(uint8_t a)
{
    monad_async_result r = monad_async_ticks_now();
    expect(r, E(0), "ticks_now");
    (void)a;
    CHECK((uint64_t)r.value >= g_last_ticks, "ticks went back");
    g_last_ticks = (uint64_t)r.value;
    r = monad_async_ticks_per_second();
    expect(r, E(0), "ticks_per_second");
    CHECK(r.value > 0);
    CHECK(monad_async_executor_current().value == 0,
          "executor_current outside any run");
}

static void top_pipe_drain(void)
{
    int avail = 0;
    if (ioctl(g_pipe[0], FIONREAD, &avail) == 0 && avail > 0) {
        char buf[PIPE_CAP];
        if (avail > (int)sizeof(buf)) {
            avail = (int)sizeof(buf);
        }
        CHECK(read(g_pipe[0], buf, (size_t)avail) == avail);
    }
    uint64_t v;
    int const fl = fcntl(g_efd, F_GETFL);
    fcntl(g_efd, F_SETFL, fl | O_NONBLOCK);
    (void)!read(g_efd, &v, sizeof(v));
    fcntl(g_efd, F_SETFL, fl);
}

static void top_task_destroy(struct htask *h, uint8_t b)
{
    monad_async_result const r = monad_async_task_destroy(h->t);
    expect(r, h->attached ? E(EBUSY) : E(0), "task_destroy");
    if (r.error != 0) {
        return;
    }
    h->t = NULL;
    h->sw = b % NSW;
    struct monad_async_task_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.stack_size = (b & 0x10) ? 64 * 1024 : 0;
    expect(monad_async_task_create(&h->t, g_sw[h->sw], &attr), E(0), "task_create");
    h->t->user_code = task_main;
    h->t->user_ptr = h;
    h->t->user_on_exit = on_exit_hook;
    h->have_stale = false;
    h->have_token = false;
    uint64_t token;
    expect(monad_async_task_wake_token(h->t, &token), E(ENOENT),
           "wake_token of a new task");
}

static void top_sw_destroy(uint8_t a)
{
    int const k = a % NSW;
    int users = 0;
    for (int i = 0; i < NTASK; i++) {
        users += g_task[i].sw == k;
    }
    monad_async_result const r = monad_async_context_switcher_destroy(g_sw[k]);
    expect(r, users ? E(EBUSY) : E(0), "switcher_destroy");
    if (r.error == 0) {
        monad_async_result c;
        switch (k) {
        case 0: c = monad_async_context_switcher_sjlj_create(&g_sw[k]); break;
        case 1: c = monad_async_context_switcher_asm_create(&g_sw[k]); break;
        case 2: {
            struct monad_async_context_switcher_attr sa;
            memset(&sa, 0, sizeof(sa));
            sa.flags = MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL;
            c = monad_async_context_switcher_asm_create_with_attr(&g_sw[k], &sa);
            break;
        }
        default: c = monad_async_context_switcher_none_create(&g_sw[k]); break;
        }
        expect(c, E(0), "switcher_create");
    }
}

static void run_top(int n, struct op const *o)
{
    WHERE("top %d: %s a=%u b=%u c=%u", n, top_names[o->code], o->a, o->b, o->c);
    trace("%s", g_where);
    struct htask *const h = &g_task[o->a % NTASK];
    switch (o->code) {
    case O_EX_CREATE: {
        int const exi = o->a % NEX;
        if (!g_ex[exi].alive) {
            create_executor(exi, o->b);
        }
        break;
    }
    case O_EX_DESTROY:
        do_ex_destroy(o->a % NEX, false);
        break;
    case O_ATTACH:
    case O_ATTACH_REMOTE:
        do_attach(h, o->b % NEX, o->c, o->script, o->exit_script, o->b / 16,
                  o->code == O_ATTACH_REMOTE);
        break;
    case O_CANCEL:
    case O_CANCEL_REMOTE: {
        bool const remote = o->code == O_CANCEL_REMOTE;
        int const exi = (o->c & 4) ? o->b % NEX : (h->attached ? h->exi : o->b % NEX);
        premark_local_cancel(h, exi, remote);
        do_cancel(h, exi, remote);
        break;
    }
    case O_RUN:
    case O_RUN2:
        do_run(o->a % NEX, o->b, o->c, false);
        break;
    case O_EX_WAKE:
        do_ex_wake(o->a % NEX, o->b & 1);
        break;
    case O_WAKE:
        do_wake(h, o->b, o->c & 1, o->c & 2, NULL);
        break;
    case O_TOKEN:
        do_token(h, o->b & 1);
        break;
    case O_TASK_DESTROY:
        top_task_destroy(h, o->b);
        break;
    case O_SW_DESTROY:
        top_sw_destroy(o->a);
        break;
    case O_BAD:
        top_bad(o->a);
        break;
    case O_FOREIGN:
        top_foreign(o->a);
        break;
    case O_PIPE_WRITE:
        if (g_pipe_written < PIPE_CAP) {
            g_pipe_written++;
            if (o->b & 1) {
                uint64_t const one = 1;
                CHECK(write(g_efd, &one, sizeof(one)) == sizeof(one));
            }
            else {
                CHECK(write(g_pipe[1], "z", 1) == 1);
            }
        }
        break;
    case O_PIPE_DRAIN:
        top_pipe_drain();
        break;
    case O_DISPATCH:
        top_dispatch(o);
        break;
    default:
        top_misc(o->a);
        break;
    }
    WHERE("after top %d: %s", n, top_names[o->code]);
    check_all();
}

/* ---- descriptors and mappings ---- */

static int count_fds(void)
{
    DIR *const d = opendir("/proc/self/fd");
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

/* Lines of /proc/self/maps; into `buf` if not NULL. */
static int read_maps(char *buf, size_t len)
{
    int const fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int lines = 0;
    size_t off = 0;
    char tmp[8192];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            lines += tmp[i] == '\n';
        }
        if (buf != NULL && off + (size_t)n < len) {
            memcpy(buf + off, tmp, (size_t)n);
            off += (size_t)n;
        }
    }
    if (buf != NULL) {
        buf[off < len ? off : len - 1] = 0;
    }
    close(fd);
    return lines;
}

/* Whether a line of the maps is one of the library's kinds of mapping:
 * a ring (anon_inode:[io_uring]), or a one-page guard (a task stack's). */
static bool ours(char const *line, size_t page)
{
    if (strstr(line, "io_uring") != NULL) {
        return true;
    }
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && hi - lo == page &&
        strcmp(perms, "---p") == 0) {
        char const *const path = strchr(line, '/');
        return path == NULL && strchr(line, '[') == NULL;
    }
    return false;
}

static char g_maps_before[1 << 20];
static char g_maps_after[1 << 20];

/* A mapping leak: compare the line counts; when they differ, name the
 * new lines, and fail if any is one of the library's kinds. A growth of
 * the sanitizer's own allocator regions (which libFuzzer's corpus makes
 * the process do now and then) is not a leak of ours: it is reported
 * once and ignored. */
static void check_maps(int before_lines)
{
    int const after_lines = read_maps(g_maps_after, sizeof(g_maps_after));
    if (after_lines == before_lines) {
        return;
    }
    size_t const page = (size_t)sysconf(_SC_PAGESIZE);
    char *save = NULL;
    int ours_new = 0;
    for (char *line = strtok_r(g_maps_after, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strstr(g_maps_before, line) == NULL && ours(line, page)) {
            fprintf(stderr, "api_fuzz: new mapping: %s\n", line);
            ours_new++;
        }
    }
    if (ours_new != 0 || after_lines > before_lines + 64) {
        fail("mappings: %d lines before the input, %d after (%d new of the "
             "library's kinds)",
             before_lines, after_lines, ours_new);
    }
}

/* ---- one input ---- */

static uint64_t g_inputs;

static void setup_input(void)
{
    memset(g_ex, 0, sizeof(g_ex));
    memset(&g_wdm, 0, sizeof(g_wdm));
    g_seq = 0;
    g_pipe_written = 0;
    g_run_depth = 0;
    g_cur = NULL;
    WHERE("set-up");
    CHECK(pipe2(g_pipe, O_CLOEXEC) == 0);
    g_efd = eventfd(0, EFD_CLOEXEC);
    CHECK(g_efd >= 0);
    expect(monad_async_context_switcher_sjlj_create(&g_sw[0]), E(0), "sjlj_create");
    expect(monad_async_context_switcher_asm_create(&g_sw[1]), E(0), "asm_create");
    struct monad_async_context_switcher_attr sa;
    memset(&sa, 0, sizeof(sa));
    sa.flags = MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL;
    expect(monad_async_context_switcher_asm_create_with_attr(&g_sw[2], &sa), E(0),
           "asm_create_with_attr");
    expect(monad_async_context_switcher_none_create(&g_sw[3]), E(0), "none_create");
    for (int k = 0; k < NTASK; k++) {
        struct htask *const h = &g_task[k];
        memset(h, 0, sizeof(*h));
        h->idx = k;
        h->sw = k % NSW;
        h->exit_script = -1;
        expect(monad_async_task_create(&h->t, g_sw[h->sw], NULL), E(0), "task_create");
        h->t->user_code = task_main;
        h->t->user_ptr = h;
        h->t->user_on_exit = on_exit_hook;
    }
}

static void teardown_input(void)
{
    helper_wait_later();
    wd_teardown();
    for (int i = 0; i < NEX; i++) {
        if (!g_ex[i].alive) {
            continue;
        }
        if (!(g_final & (1u << i))) {
            drain_executor(i);
        }
        if (g_ex[i].alive) {
            destroy_executor(i, false);
        }
    }
    WHERE("teardown");
    for (int k = 0; k < NTASK; k++) {
        struct htask *const h = &g_task[k];
        check_task_state(h);
        CHECK(!h->attached);
        expect(monad_async_task_destroy(h->t), E(0), "task_destroy (teardown)");
        h->t = NULL;
    }
    for (int k = 0; k < NSW; k++) {
        expect(monad_async_context_switcher_destroy(g_sw[k]), E(0),
               "switcher_destroy (teardown)");
        g_sw[k] = NULL;
    }
    close(g_pipe[0]);
    close(g_pipe[1]);
    close(g_efd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char const *const tr = getenv("FUZZ_TRACE");
    g_trace = tr != NULL && *tr != 0 && *tr != '0';
    sem_init(&g_req_sem, 0, 0);
    sem_init(&g_ack_sem, 0, 0);
    sem_init(&g_later_sem, 0, 0);
    if (pthread_create(&g_helper, NULL, helper_main, NULL) != 0) {
        fprintf(stderr, "api_fuzz: cannot start the helper thread\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(uint8_t const *data, size_t size);

int LLVMFuzzerTestOneInput(uint8_t const *data, size_t size)
{
    /* The first inputs warm what the library and the sanitizers create
     * once and keep: the SIGSEGV handler and this thread's alternate
     * signal stack (the first executor, stack_guard.c), the tick rate's
     * calibration, liburing's probe, the allocator's regions, the
     * helper's first requests. Only after them must every input leave the
     * descriptors and mappings as it found them. */
    bool const compare = g_inputs++ >= WARMUP_INPUTS;
    int const fds_before = count_fds();
    int const maps_before = read_maps(g_maps_before, sizeof(g_maps_before));
    parse(data, size);
    setup_input();
    for (int n = 0; n < g_ntop; n++) {
        run_top(n, &g_ops[g_top[n]]);
    }
    teardown_input();
    if (compare) {
        WHERE("leak check");
        int const fds_after = count_fds();
        CHECK(fds_after == fds_before, "%d descriptors open before the input, "
                                       "%d after",
              fds_before, fds_after);
        check_maps(maps_before);
    }
    return 0;
}
