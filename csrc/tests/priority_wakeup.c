/* Priority-correct wake-ups: a High task whose timer or I/O has completed
 * runs before the next Low slice starts, however busy the Low tasks keep
 * the executor.
 *
 * Low tasks spin 1 ms, then yield, over and over (1, 10 and 50 of them);
 * beside them:
 *   - a High task sleeps 1 ms, 40 times (ring executor: an io_uring
 *     timeout; compute-only executor: the timer list);
 *   - a High task parks with a 1 ms deadline, 40 times (the timer list on
 *     both kinds);
 *   - a High task receives 40 messages that another thread writes into a
 *     socket pair, each stamped with when it was written (ring only).
 *     The writer writes each message 2-2.6 ms after the High task has
 *     started waiting for it, never ahead: a message written while the
 *     previous one was still unread would wait in the socket behind it,
 *     and its stamp would measure that queue, not the wake-up. (It once
 *     did: after the executor thread had been off its CPU for tens of
 *     ms, messages piled up, and every later sample counted the backlog,
 *     up to 90 ms, on a thread that was on its CPU throughout.)
 *     The stamp is taken just before the write; a sample whose write
 *     took longer than WRITE_WINDOW_NS (the writer was preempted around
 *     it: the message became readable somewhere in that window, so the
 *     stamp says nothing about the wake-up) is measured again, at most
 *     SAMPLES extra times. (Once, under CI load, a writer stalled 3 ms
 *     between its stamp and its write, and the sample counted it.)
 * A sample in which the executor thread, spinning in a Low slice after the
 * event, saw its clock jump by more than STALL_NS between two reads (its
 * vCPU stopped: the hypervisor ran something else, which the guest's CPU
 * clocks count as the thread's own time, so the correction below cannot
 * see it) is measured again too, at most SAMPLES extra times. (Once, in
 * a clang ASan run under CI, a sample came 5 ms late, wall and own alike,
 * on a thread that never blocked; no other run of any build had been
 * later than 1.03 ms.)
 * Oversleep (or write-to-receive latency): p50 <= 1.5 ms, worst <= 3 ms,
 * both on the executor thread's own clock: each sample's lateness less
 * the time the thread was preempted during that lateness: the lateness
 * less the thread's CPU time (its CPU clock) from the event to the wake-up,
 * read at the event by the Low slicer running then or by the writer;
 * counted only for a sample in which the thread never blocked (getrusage's
 * voluntary context switches did not move).
 * The Low slicers keep the executor always runnable, so time off its CPU
 * is time the kernel gave to other processes, several ms at a time on a
 * shared 2-core machine, which says nothing about the executor; a sample
 * in which the executor slept (blocked) is held to the wall clock, so a
 * wrong sleep cannot hide behind the correction. The wall-clock figures
 * are printed too.
 * Before this was fixed, the ring was pumped only every 32 slices while
 * anything was runnable: a 1 ms sleep overslept by about 30 ms. */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define SAMPLES 40
/* An 8-byte write into a socket pair, with the wake-up of a poll waiter,
 * takes a few us; a window this long means the writer was off its CPU. */
#define WRITE_WINDOW_NS (200 * 1000)
#define SLICE_NS (1000 * 1000)
/* A Low slice reads the clock every fraction of a microsecond (a few
 * under sanitizers): a gap this long between two reads is a stopped vCPU
 * or a preempted thread. */
#define STALL_NS (200 * 1000)

enum waiter_kind
{
    WAIT_SLEEP,
    WAIT_PARK,
    WAIT_RECV,
};

static char const *const kind_names[] = {"sleep 1 ms", "park, 1 ms deadline",
                                         "recv"};

static _Atomic int g_stop;
static uint64_t g_late[SAMPLES];
/* Time the executor thread was preempted during each sample's lateness
 * (0 if it blocked in the sample). */
static uint64_t g_stolen[SAMPLES];
/* Whether the thread blocked in each sample (then held to the wall
 * clock), and each recv sample's write window, for the failure message. */
static bool g_blocked[SAMPLES];
static uint64_t g_sample_window[SAMPLES];
/* The executor thread's CPU clock, and its reading at the sample's event
 * (the deadline passing, or the write), taken by the Low slicer that was
 * running then or by the writer; 0 until taken. */
static clockid_t g_exec_clock;
static _Atomic uint64_t g_event_cpu;
/* The current sleep's or park's deadline (test_now_ns), 0 if none. */
static _Atomic uint64_t g_deadline;
static int g_samples;
static int g_sock[2];
/* 1 + the message the High task waits for (the writer writes it only
 * then), and 1 + the last message whose write has returned, with how
 * long that write took from its stamp (g_window). */
static _Atomic int g_waiting;
static _Atomic int g_written;
static _Atomic uint64_t g_window;
/* Messages measured again because their write was preempted. */
static int g_rewritten;
/* The longest gap between two clock reads of a Low slice after the
 * current sample's event (executor thread only), and the samples
 * measured again because of one over STALL_NS. */
static uint64_t g_stall;
static int g_restalled;

static uint64_t exec_cpu_ns(void)
{
    struct timespec ts;
    CHECK_EQ(clock_gettime(g_exec_clock, &ts), 0);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static monad_async_result low_fn(monad_async_task task)
{
    while (!atomic_load(&g_stop)) {
        uint64_t const end = test_now_ns() + SLICE_NS;
        uint64_t now, prev = test_now_ns();
        while ((now = test_now_ns()) < end) {
            uint64_t const d = atomic_load_explicit(&g_deadline,
                                                    memory_order_relaxed);
            if (d != 0 && now >= d &&
                atomic_load_explicit(&g_event_cpu, memory_order_relaxed) == 0) {
                atomic_store(&g_event_cpu, exec_cpu_ns());
            }
            /* After the event (the deadline passed, or the message was
             * written): a stopped vCPU stretches the lateness. */
            if ((d != 0 ? now >= d
                        : atomic_load_explicit(&g_event_cpu,
                                               memory_order_relaxed) != 0) &&
                now - prev > g_stall) {
                g_stall = now - prev;
            }
            prev = now;
        }
        monad_async_result const r = monad_async_task_yield(task);
        if (r.error != 0) {
            return r;
        }
    }
    return monad_async_make_success(0);
}

static long thread_voluntary_switches(void)
{
    struct rusage ru;
    CHECK_EQ(getrusage(RUSAGE_THREAD, &ru), 0);
    return ru.ru_nvcsw;
}

static monad_async_result high_fn(monad_async_task task)
{
    enum waiter_kind const kind = (enum waiter_kind)(intptr_t)task->user_ptr;
    int messages = 0;
    g_rewritten = 0;
    g_restalled = 0;
    for (g_samples = 0; g_samples < SAMPLES; g_samples++) {
        g_stall = 0;
        long const blocked0 = thread_voluntary_switches();
        uint64_t const cpu0 = test_thread_cpu_ns();
        uint64_t const t0 = test_now_ns();
        uint64_t late = 0;
        atomic_store(&g_event_cpu, 0);
        if (kind != WAIT_RECV) {
            atomic_store(&g_deadline, t0 + SLICE_NS);
        }
        if (kind == WAIT_SLEEP) {
            CHECK_RESULT(monad_async_task_suspend_for_duration(task, SLICE_NS));
            late = test_now_ns() - t0 - SLICE_NS;
        }
        else if (kind == WAIT_PARK) {
            CHECK_ERROR(monad_async_task_park(task, SLICE_NS), ETIME);
            late = test_now_ns() - t0 - SLICE_NS;
        }
        else {
            uint64_t sent;
            atomic_store(&g_waiting, ++messages);
            monad_async_result const r = monad_async_io_recv(
                task, NULL, g_sock[0], &sent, sizeof(sent), 0);
            CHECK_RESULT(r);
            CHECK_EQ(r.value, (intptr_t)sizeof(sent));
            test_kernel_wrote(&sent, sizeof(sent));
            late = test_now_ns() - sent;
            /* The writer's write may not have returned yet. */
            while (atomic_load(&g_written) < messages) {
                CHECK_RESULT(monad_async_task_yield(task));
            }
            if (atomic_load(&g_window) > WRITE_WINDOW_NS) {
                CHECK_MSG(++g_rewritten <= SAMPLES,
                          "%d writes preempted between stamp and write",
                          g_rewritten);
                g_samples--;
                continue;
            }
        }
        atomic_store(&g_deadline, 0);
        if (g_stall > STALL_NS) {
            CHECK_MSG(++g_restalled <= SAMPLES,
                      "%d samples with the executor's vCPU stopped",
                      g_restalled);
            g_samples--;
            continue;
        }
        uint64_t const cpu_end = test_thread_cpu_ns();
        g_late[g_samples] = late;
        bool const blocked = thread_voluntary_switches() != blocked0;
        uint64_t const event_cpu = atomic_load(&g_event_cpu);
        uint64_t off = 0;
        if (event_cpu != 0) {
            /* The thread's CPU time from the event to now, against the
             * lateness on the wall clock. */
            uint64_t const cpu_late = cpu_end - event_cpu;
            off = late > cpu_late ? late - cpu_late : 0;
        }
        else {
            /* The event fell outside a Low slice: of the time off the
             * CPU over the whole sample, only what cannot have fallen
             * before the event (wall - late) counts. */
            uint64_t const wall = test_now_ns() - t0;
            uint64_t const cpu = cpu_end - cpu0;
            uint64_t const all = wall > cpu ? wall - cpu : 0;
            uint64_t const before = wall > late ? wall - late : 0;
            off = all > before ? all - before : 0;
        }
        g_stolen[g_samples] = blocked ? 0 : off;
        g_blocked[g_samples] = blocked;
        g_sample_window[g_samples] =
            kind == WAIT_RECV ? atomic_load(&g_window) : 0;
    }
    atomic_store(&g_stop, 1);
    return monad_async_make_success(0);
}

static void *writer_fn(void *arg)
{
    (void)arg;
    for (int i = 0; !atomic_load(&g_stop); i++) {
        while (atomic_load(&g_waiting) <= i && !atomic_load(&g_stop)) {
            test_sleep_ns(50 * 1000);
        }
        if (atomic_load(&g_stop)) {
            break;
        }
        test_sleep_ns(2 * SLICE_NS + (uint64_t)(i % 7) * 100 * 1000);
        atomic_store(&g_event_cpu, exec_cpu_ns());
        uint64_t const now = test_now_ns();
        CHECK_EQ(write(g_sock[1], &now, sizeof(now)), (ssize_t)sizeof(now));
        atomic_store(&g_window, test_now_ns() - now);
        atomic_store(&g_written, i + 1);
    }
    return NULL;
}

static int cmp_u64(void const *a, void const *b)
{
    uint64_t const x = *(uint64_t const *)a;
    uint64_t const y = *(uint64_t const *)b;
    return x < y ? -1 : x > y;
}

static void scenario(monad_async_context_switcher sw, unsigned entries,
                     enum waiter_kind kind, int nlow)
{
    monad_async_executor ex = entries ? test_make_ring_executor(entries, 0)
                                      : test_make_executor(0, 0);
    monad_async_task high = test_make_task(sw, 0);
    monad_async_task low[50];
    atomic_store(&g_stop, 0);
    atomic_store(&g_waiting, 0);
    atomic_store(&g_written, 0);
    atomic_store(&g_deadline, 0);
    CHECK_EQ(pthread_getcpuclockid(pthread_self(), &g_exec_clock), 0);
    for (int i = 0; i < nlow; i++) {
        low[i] = test_make_task(sw, 0);
        low[i]->priority.cpu = monad_async_priority_low;
        low[i]->priority.io = monad_async_priority_low;
        low[i]->user_code = low_fn;
        CHECK_RESULT(monad_async_task_attach(ex, low[i], NULL));
    }
    pthread_t writer;
    if (kind == WAIT_RECV) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_sock), 0);
        CHECK_EQ(pthread_create(&writer, NULL, writer_fn, NULL), 0);
    }
    high->priority.cpu = monad_async_priority_high;
    high->priority.io = monad_async_priority_high;
    high->user_code = high_fn;
    high->user_ptr = (void *)(intptr_t)kind;
    CHECK_RESULT(monad_async_task_attach(ex, high, NULL));
    test_run_until_detached(ex, high, 60000);
    CHECK_RESULT(high->result);
    for (int i = 0; i < nlow; i++) {
        test_run_until_detached(ex, low[i], 60000);
        CHECK_RESULT(low[i]->result);
        CHECK_RESULT(monad_async_task_destroy(low[i]));
    }
    if (kind == WAIT_RECV) {
        CHECK_EQ(pthread_join(writer, NULL), 0);
        close(g_sock[0]);
        close(g_sock[1]);
    }
    CHECK_RESULT(monad_async_task_destroy(high));
    CHECK_RESULT(monad_async_executor_destroy(ex));
    uint64_t wall[SAMPLES], own[SAMPLES];
    int worst_at = 0;
    for (int i = 0; i < SAMPLES; i++) {
        wall[i] = g_late[i];
        own[i] = g_late[i] > g_stolen[i] ? g_late[i] - g_stolen[i] : 0;
        if (own[i] > own[worst_at]) {
            worst_at = i;
        }
    }
    qsort(wall, SAMPLES, sizeof(wall[0]), cmp_u64);
    qsort(own, SAMPLES, sizeof(own[0]), cmp_u64);
    uint64_t const p50 = own[SAMPLES / 2];
    uint64_t const worst = own[SAMPLES - 1];
    test_note("%s, %2d Low slicers, %s: late p50 %.3f ms, worst %.3f ms "
              "(wall clock: p50 %.3f ms, worst %.3f ms; the worst own: "
              "%s, write window %.3f ms; %d preempted writes and %d "
              "stopped-vCPU samples measured again)",
              entries ? "ring   " : "no ring", nlow, kind_names[kind],
              (double)p50 / 1e6, (double)worst / 1e6,
              (double)wall[SAMPLES / 2] / 1e6,
              (double)wall[SAMPLES - 1] / 1e6,
              g_blocked[worst_at] ? "blocked, held to the wall clock"
                                  : "never blocked",
              (double)g_sample_window[worst_at] / 1e6, g_rewritten,
              g_restalled);
    CHECK_MSG(p50 <= 1500 * 1000, "p50 %.3f ms > 1.5 ms", (double)p50 / 1e6);
    /* Sanitized builds too: the lateness is the slice under way (1 ms of
     * wall time however slow the build) plus the executor's own steps. */
    uint64_t const worst_limit = 3000 * 1000ull;
    CHECK_MSG(worst <= worst_limit, "worst %.3f ms > %.1f ms",
              (double)worst / 1e6, (double)worst_limit / 1e6);
}

int main(void)
{
    test_watchdog(240, "priority_wakeup");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    int const lows[] = {1, 10, 50};
    char const *const no_ring = test_no_ring_reason();
    if (no_ring != NULL) {
        test_note("SKIPPED the scenarios on a ring executor: %s", no_ring);
    }
    for (int i = 0; i < 3; i++) {
        if (no_ring == NULL) {
            scenario(sw, 64, WAIT_SLEEP, lows[i]);
            scenario(sw, 64, WAIT_PARK, lows[i]);
            scenario(sw, 64, WAIT_RECV, lows[i]);
        }
        scenario(sw, 0, WAIT_SLEEP, lows[i]);
        scenario(sw, 0, WAIT_PARK, lows[i]);
    }
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    return 0;
}
