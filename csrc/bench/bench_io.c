/* The C I/O benchmark (issue 3): the spec's four single-execution figures
 * for a task that suspends on an io_uring NOP, measured with the tick
 * counter, for each stackful switcher; and the suspend-resume loop through
 * a NOP against a plain liburing NOP loop at the same batch size (the
 * floor), and against that loop plus what any stackful executor with time
 * tracking adds per NOP at the least: one bare register-switch round trip
 * into a coroutine that reads the tick counter (the slice's end stamp).
 *
 * The four figures, per execution (attach, run, one NOP, exit):
 *   launch->start     task->ticks.launched - task->ticks.attached
 *   start->suspended  task->ticks.suspended - task->ticks.launched: the
 *                     task queues the NOP's SQE and switches back
 *   complete->resume  a stamp the task takes as its NOP call returns,
 *                     less the stamp taken as the executor's io_uring_enter
 *                     returns with the NOP's CQE posted (the NOP completes
 *                     inside that system call). That stamp comes from
 *                     wrapping liburing's io_uring_submit_and_get_events
 *                     at link time (-Wl,--wrap), so the library is
 *                     measured unchanged.
 *   resume->exit      task->ticks.exited - the task's resume stamp
 * plus, for information, suspended->complete: the kernel round trip.
 *
 * Every figure is the median of several runs. Absolute numbers move with
 * the machine's load; compare rows of one run, and read the ratios. */
#include <monad_async.h>

#include "bench_common.h"

#include "switch.h"
#include "ticks_impl.h"

#include <liburing.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { RUNS = 5, RING_ENTRIES = 128, BATCH = 32 };

static inline uint64_t ticks(void)
{
    return (uint64_t)monad_async_ticks_now().value;
}

/* ---- the completion stamp: the executor's pump, wrapped ---- */

int __real_io_uring_submit_and_get_events(struct io_uring *ring);
static uint64_t completion_stamp;

int __wrap_io_uring_submit_and_get_events(struct io_uring *ring)
{
    int const r = __real_io_uring_submit_and_get_events(ring);
    completion_stamp = ticks();
    return r;
}

/* ---- single execution ---- */

static uint64_t resumed_in_task;

static monad_async_result work_nop_once(monad_async_task task)
{
    monad_async_result const r = monad_async_io_nop(task, NULL);
    resumed_in_task = ticks();
    return r;
}

struct single
{
    double launch_to_start, start_to_suspended, suspended_to_complete,
        complete_to_resume, resume_to_exit, total;
};

static void run_until_idle(monad_async_executor ex)
{
    while (ex->tasks_attached != 0) {
        CHECK(monad_async_executor_run(ex, SIZE_MAX, NULL));
    }
}

static monad_async_executor make_executor_flags(unsigned flags)
{
    monad_async_executor ex;
    struct monad_async_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.flags = flags;
    attr.io_uring_ring.entries = RING_ENTRIES;
    CHECK(monad_async_executor_create(&ex, &attr));
    return ex;
}

static monad_async_executor make_executor(void)
{
    return make_executor_flags(0);
}

static struct single bench_single(monad_async_context_switcher sw)
{
    monad_async_executor const ex = make_executor();
    monad_async_task t;
    struct monad_async_task_attr t_attr;
    memset(&t_attr, 0, sizeof(t_attr));
    CHECK(monad_async_task_create(&t, sw, &t_attr));
    t->user_code = work_nop_once;
    double const ns_per_tick = 1e9 / (double)monad_async_ticks_per_second().value;
    for (int i = 0; i < 1000; i++) { /* warm up */
        CHECK(monad_async_task_attach(ex, t, NULL));
        run_until_idle(ex);
    }
    unsigned long const n = scale(100000);
    double f[6][RUNS];
    for (int r = 0; r < RUNS; r++) {
        double s[6] = {0};
        double const t0 = now_ns();
        for (unsigned long i = 0; i < n; i++) {
            CHECK(monad_async_task_attach(ex, t, NULL));
            run_until_idle(ex);
            CHECK(t->result);
            s[0] += (double)(t->ticks.launched - t->ticks.attached);
            s[1] += (double)(t->ticks.suspended - t->ticks.launched);
            s[2] += (double)(completion_stamp - t->ticks.suspended);
            s[3] += (double)(resumed_in_task - completion_stamp);
            s[4] += (double)(t->ticks.exited - resumed_in_task);
        }
        double const elapsed = now_ns() - t0;
        for (int k = 0; k < 5; k++) {
            f[k][r] = s[k] / (double)n * ns_per_tick;
        }
        f[5][r] = elapsed / (double)n;
    }
    struct single out = {
        median(f[0], RUNS), median(f[1], RUNS), median(f[2], RUNS),
        median(f[3], RUNS), median(f[4], RUNS), median(f[5], RUNS)};
    CHECK(monad_async_task_destroy(t));
    CHECK(monad_async_executor_destroy(ex));
    return out;
}

/* ---- the NOP loop ---- */

static unsigned long nops_per_task;

static monad_async_result work_nop_loop(monad_async_task task)
{
    for (unsigned long i = 0; i < nops_per_task; i++) {
        monad_async_result const r = monad_async_io_nop(task, NULL);
        if (r.error) {
            return r;
        }
    }
    return monad_async_make_success(0);
}

/* `tasks` tasks each suspending on `per_task` NOPs: ns per NOP. With 32
 * tasks the executor submits and reaps 32 NOPs per io_uring_enter (its
 * pump interval, MA_IO_PUMP_INTERVAL), the floor's batch below. */
static double bench_loop(monad_async_context_switcher sw, unsigned ex_flags,
                         int ntasks, unsigned long per_task, uint64_t *enters)
{
    monad_async_executor const ex = make_executor_flags(ex_flags);
    monad_async_task tasks[BATCH];
    struct monad_async_task_attr t_attr;
    memset(&t_attr, 0, sizeof(t_attr));
    for (int i = 0; i < ntasks; i++) {
        CHECK(monad_async_task_create(&tasks[i], sw, &t_attr));
        tasks[i]->user_code = work_nop_loop;
    }
    double runs[RUNS];
    for (int r = -1; r < RUNS; r++) { /* r = -1 warms up */
        nops_per_task = r < 0 ? 1000 : per_task;
        uint64_t const e0 = ex->io.enters;
        for (int i = 0; i < ntasks; i++) {
            CHECK(monad_async_task_attach(ex, tasks[i], NULL));
        }
        double const t0 = now_ns();
        run_until_idle(ex);
        double const el = now_ns() - t0;
        for (int i = 0; i < ntasks; i++) {
            CHECK(tasks[i]->result);
        }
        if (r >= 0) {
            runs[r] = el / (double)(per_task * (unsigned long)ntasks);
            *enters = ex->io.enters - e0;
        }
    }
    for (int i = 0; i < ntasks; i++) {
        CHECK(monad_async_task_destroy(tasks[i]));
    }
    CHECK(monad_async_executor_destroy(ex));
    return median(runs, RUNS);
}

/* A ring made like the executor's (its setup flags and CQ size;
 * IORING_SETUP_CQSIZE needs the size), for the floors. */
static void floor_ring_init(struct io_uring *ring, unsigned setup_flags,
                            unsigned cq_entries)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = setup_flags;
    p.cq_entries = cq_entries;
    int const ret = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    if (ret < 0) {
        fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-ret));
        exit(1);
    }
}

static void floor_submit_and_wait(struct io_uring *ring, unsigned n)
{
    int const ret = io_uring_submit_and_wait(ring, n);
    if (ret < 0) {
        fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-ret));
        exit(1);
    }
}

/* The coroutine of the floor plus a switch: each resumption reads the
 * tick counter (if floor_tick) with the read a slice's end stamp uses
 * (ma_ticks_read: a bare rdtsc, about 9.5 ns here), not the public
 * ordered read (lfence + rdtsc, about 19 ns), which would make the floor
 * slower than what the executor pays, and switches back. */
static void *floor_main_sp, *floor_co_sp;
static uint64_t volatile floor_stamp;
static bool floor_tick;

#if MA_HAVE_ASM_SWITCH
static void floor_co(void *arg)
{
    (void)arg;
    for (;;) {
        if (floor_tick) {
            floor_stamp = ma_ticks_read();
        }
        monad_async_switch_fp(&floor_co_sp, floor_main_sp);
    }
}
#endif

/* The floor: plain liburing, a ring made like the executor's, `batch`
 * NOPs prepared, submitted and waited for in one io_uring_enter, reaped.
 * With `with_switch`, each reaped NOP also costs one switch round trip
 * into floor_co, with a tick read if `with_tick`: the least a stackful
 * executor adds, without and with time tracking. Returns 0 if there is no
 * asm switch to do that with. */
static double bench_floor(unsigned setup_flags, unsigned cq_entries, int batch,
                          unsigned long total, bool with_switch, bool with_tick)
{
    floor_tick = with_tick;
#if MA_HAVE_ASM_SWITCH
    size_t const stack_size = 64 * 1024;
    char *const stack = with_switch ? malloc(stack_size) : NULL;
    if (with_switch) {
        if (stack == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        floor_co_sp = monad_async_switch_make_frame(stack + stack_size,
                                                    floor_co, NULL, 1);
    }
#else
    if (with_switch) {
        return 0;
    }
#endif
    struct io_uring ring;
    floor_ring_init(&ring, setup_flags, cq_entries);
    unsigned long const rounds = total / (unsigned long)batch;
    double runs[RUNS];
    for (int r = -1; r < RUNS; r++) {
        unsigned long const nr = r < 0 ? 1000 / (unsigned long)batch + 1 : rounds;
        double const t0 = now_ns();
        for (unsigned long k = 0; k < nr; k++) {
            for (int i = 0; i < batch; i++) {
                struct io_uring_sqe *const sqe = io_uring_get_sqe(&ring);
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data64(sqe, (uint64_t)i + 1);
            }
            floor_submit_and_wait(&ring, (unsigned)batch);
            struct io_uring_cqe *cqe;
            unsigned head, seen = 0;
            io_uring_for_each_cqe(&ring, head, cqe)
            {
                seen++;
#if MA_HAVE_ASM_SWITCH
                if (with_switch) {
                    monad_async_switch_fp(&floor_main_sp, floor_co_sp);
                }
#endif
            }
            io_uring_cq_advance(&ring, seen);
        }
        if (r >= 0) {
            runs[r] = (now_ns() - t0) / (double)(rounds * (unsigned long)batch);
        }
    }
    io_uring_queue_exit(&ring);
#if MA_HAVE_ASM_SWITCH
    free(stack);
#endif
    return median(runs, RUNS);
}

/* The floor with one stack per NOP in flight: `BATCH` coroutines, each
 * preparing its own NOP (user_data: its index) and switching back, and a
 * loop that submits the batch, waits for it and resumes the coroutine each
 * completion names, which prepares its next NOP. The least any stackful
 * executor running 32 tasks pays: one switch round trip per NOP, each NOP
 * prepared on its task's own stack, 32 stacks instead of one (no
 * scheduling, no bookkeeping, no checks). With `with_tick`, each
 * resumption reads the tick counter as floor_co does. Returns 0 without
 * an asm switch. */
#if MA_HAVE_ASM_SWITCH
static void *floor_task_sp[BATCH];
static struct io_uring *floor_task_ring;

static void floor_task_co(void *arg)
{
    uintptr_t const i = (uintptr_t)arg;
    for (;;) {
        if (floor_tick) {
            floor_stamp = ma_ticks_read();
        }
        struct io_uring_sqe *const sqe = io_uring_get_sqe(floor_task_ring);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, (uint64_t)i);
        monad_async_switch_fp(&floor_task_sp[i], floor_main_sp);
    }
}
#endif

static double bench_floor_tasks(unsigned setup_flags, unsigned cq_entries,
                                unsigned long total, bool with_tick)
{
#if MA_HAVE_ASM_SWITCH
    floor_tick = with_tick;
    size_t const stack_size = 64 * 1024;
    char *const stacks = malloc(stack_size * BATCH);
    if (stacks == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    struct io_uring ring;
    floor_ring_init(&ring, setup_flags, cq_entries);
    floor_task_ring = &ring;
    for (uintptr_t i = 0; i < BATCH; i++) {
        floor_task_sp[i] = monad_async_switch_make_frame(
            stacks + stack_size * (i + 1), floor_task_co, (void *)i, 1);
        /* Its first NOP. */
        monad_async_switch_fp(&floor_main_sp, floor_task_sp[i]);
    }
    unsigned long const rounds = total / BATCH;
    double runs[RUNS];
    for (int r = -1; r < RUNS; r++) {
        unsigned long const nr = r < 0 ? 1000 / BATCH + 1 : rounds;
        double const t0 = now_ns();
        for (unsigned long k = 0; k < nr; k++) {
            floor_submit_and_wait(&ring, BATCH);
            struct io_uring_cqe *cqe;
            unsigned head, seen = 0;
            io_uring_for_each_cqe(&ring, head, cqe)
            {
                seen++;
                monad_async_switch_fp(&floor_main_sp,
                                      floor_task_sp[cqe->user_data]);
            }
            io_uring_cq_advance(&ring, seen);
        }
        if (r >= 0) {
            runs[r] = (now_ns() - t0) / (double)(rounds * BATCH);
        }
    }
    /* The last batch's NOPs are still queued: the ring goes with them. */
    io_uring_queue_exit(&ring);
    free(stacks);
    return median(runs, RUNS);
#else
    (void)setup_flags;
    (void)cq_entries;
    (void)total;
    (void)with_tick;
    return 0;
#endif
}

int main(void)
{
    printf("monad-async C I/O benchmark (median of %d runs, ns; tick counter "
           "at %.3f GHz)\n\n",
           RUNS, (double)monad_async_ticks_per_second().value / 1e9);

    struct bench_switcher sws[BENCH_SWITCHERS_MAX];
    int const nsw = make_switchers(sws, false);

    monad_async_executor const probe = make_executor();
    unsigned const setup_flags = probe->ring.setup_flags;
    unsigned const cq_entries = probe->ring.cq_entries;
    CHECK(monad_async_executor_destroy(probe));

    printf("Single execution: attach, launch, one io_uring NOP, exit "
           "(tick stamps)\n");
    printf("%-9s %13s %17s %18s %17s %13s %10s\n", "switcher", "launch->start",
           "start->suspended", "(kernel: susp->cqe)", "complete->resume",
           "resume->exit", "wall/op");
    for (int i = 0; i < nsw; i++) {
        struct single const s = bench_single(sws[i].sw);
        printf("%-9s %13.1f %17.1f %18.1f %17.1f %13.1f %10.1f\n", sws[i].name,
               s.launch_to_start, s.start_to_suspended, s.suspended_to_complete,
               s.complete_to_resume, s.resume_to_exit, s.total);
    }
    printf("(spec: launch->start 130 ns, start->suspended 120 ns, "
           "complete->resume 50 ns, resume->exit 120 ns)\n\n");

    unsigned long const total = scale(320000);
    printf("Suspend-resume loop through an io_uring NOP, ns per NOP "
           "(ring setup flags 0x%x)\n",
           setup_flags);
    double const floor1 =
        bench_floor(setup_flags, cq_entries, 1, total / 2, false, false);
    double const floor32 =
        bench_floor(setup_flags, cq_entries, BATCH, total, false, false);
    double const fs1 =
        bench_floor(setup_flags, cq_entries, 1, total / 2, true, false);
    double const fs32 =
        bench_floor(setup_flags, cq_entries, BATCH, total, true, false);
    double const fsw1 =
        bench_floor(setup_flags, cq_entries, 1, total / 2, true, true);
    double const fsw32 =
        bench_floor(setup_flags, cq_entries, BATCH, total, true, true);
    double const ft32 = bench_floor_tasks(setup_flags, cq_entries, total, false);
    double const ftw32 = bench_floor_tasks(setup_flags, cq_entries, total, true);
    printf("%-36s %10s %8s %10s %14s\n", "", "ns/op", "x floor",
           "x floor+sw", "enters/NOP");
    printf("%-36s %10.1f %8s %10s %14.3f\n", "floor: liburing, batch 1", floor1,
           "1.00", "", 1.0);
    printf("%-36s %10.1f %8s %10s %14.3f\n", "floor: liburing, batch 32", floor32,
           "1.00", "", 1.0 / BATCH);
    if (fsw1 > 0) {
        printf("%-36s %10.1f %8.2f %10s %14.3f\n", "floor + switch, batch 1",
               fs1, fs1 / floor1, "", 1.0);
        printf("%-36s %10.1f %8.2f %10s %14.3f\n", "floor + switch, batch 32",
               fs32, fs32 / floor32, "", 1.0 / BATCH);
        printf("%-36s %10.1f %8.2f %10s %14.3f\n",
               "floor + switch + tick, batch 1", fsw1, fsw1 / floor1, "1.00",
               1.0);
        printf("%-36s %10.1f %8.2f %10s %14.3f\n",
               "floor + switch + tick, batch 32", fsw32, fsw32 / floor32,
               "1.00", 1.0 / BATCH);
        printf("%-36s %10.1f %8.2f %10.2f %14.3f\n", "floor, 32 stacks, batch 32",
               ft32, ft32 / floor32, ft32 / fsw32, 1.0 / BATCH);
        printf("%-36s %10.1f %8.2f %10.2f %14.3f\n",
               "floor, 32 stacks + tick, batch 32", ftw32, ftw32 / floor32,
               ftw32 / fsw32, 1.0 / BATCH);
    }
    for (int i = 0; i < nsw; i++) {
        for (int nt = 0; nt < 2; nt++) {
            /* Time tracking on (the default), then off: the target with
             * it off is the floor, with it on the floor + switch + tick. */
            unsigned const fl =
                nt ? MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING : 0;
            uint64_t e1 = 0, e32 = 0;
            double const one = bench_loop(sws[i].sw, fl, 1, total / 2, &e1);
            double const many =
                bench_loop(sws[i].sw, fl, BATCH, total / BATCH, &e32);
            char label[64];
            char r1[16] = "", r32[16] = "";
            if (fsw1 > 0) {
                snprintf(r1, sizeof(r1), "%.2f", one / fsw1);
                snprintf(r32, sizeof(r32), "%.2f", many / fsw32);
            }
            snprintf(label, sizeof(label), "%s%s: 1 task", sws[i].name,
                     nt ? ", no ticks" : "");
            printf("%-36s %10.1f %8.2f %10s %14.3f\n", label, one,
                   one / floor1, r1, (double)e1 / (double)(total / 2));
            snprintf(label, sizeof(label), "%s%s: 32 tasks", sws[i].name,
                     nt ? ", no ticks" : "");
            printf("%-36s %10.1f %8.2f %10s %14.3f\n", label, many,
                   many / floor32, r32,
                   (double)e32 / (double)(total / BATCH * BATCH));
        }
    }
    printf("(targets: no ticks within 1.3x of the floor, ticks within 1.3x "
           "of floor + switch + tick; spec: 85.8 ns/op)\n");

    destroy_switchers(sws, nsw);
    return 0;
}
