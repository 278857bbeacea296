/* monad-async: executors, which run tasks by priority on one thread.
 *
 * An executor belongs to the thread that created it: only that thread may
 * run or destroy it (EPERM otherwise). Any thread may attach tasks to it,
 * cancel them, or wake it. */
#ifndef MONAD_ASYNC_EXECUTOR_H
#define MONAD_ASYNC_EXECUTOR_H

#include "task.h"

#include <time.h>

MONAD_ASYNC_BEGIN_EXTERN_C

/* Flags for `struct monad_async_executor_attr`. */
enum monad_async_executor_flag
{
    /* Take no tick stamps: task and executor tick figures stay zero.
     * Saves a tick read (about 10 ns) per state change. */
    MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING = 1u << 0,
    /* Never spin before sleeping. By default an executor with nothing to
     * do and no I/O in flight spins up to 20 microseconds before it
     * sleeps, but only while its recent sleeps were ended soon by other
     * threads (a cross-thread ping-pong, a producer feeding it): the
     * wake then costs neither side a system call. An executor woken
     * rarely or only by its timers never spins, with or without this
     * flag. */
    MONAD_ASYNC_EXECUTOR_FLAG_NO_SPIN = 1u << 1
};

/* Options for an executor. Zero-initialise, then set what you need.
 *
 * What each I/O operation in flight costs: a 16-byte slot in a table that
 * is reserved (address space only) when the ring is created and backed by
 * memory page by page as more operations are in flight at once than ever
 * before; the kernel's own request (a few hundred bytes); and whatever
 * buffers the caller gives it. Neither queue of the ring bounds how many
 * operations may be in flight: the submission queue is only the batch
 * handed to the kernel per system call, and the completion queue never
 * loses a completion (IORING_FEAT_NODROP: the kernel keeps what does not
 * fit and the executor collects it). */
struct monad_async_executor_attr
{
    struct
    {
        /* Submission queue entries of the executor's io_uring (at most
         * 32768; rounded up to a power of two). 0 makes a compute-only
         * executor with no ring. This is the batch size, not a cap on
         * operations in flight: a task that finds the queue full hands it
         * to the kernel at once (one system call) and takes an entry. */
        unsigned entries;
        /* Extra IORING_SETUP_* flags. */
        unsigned flags;
    } io_uring_ring;
    uint32_t flags; /* enum monad_async_executor_flag bits */
    /* The in-flight guard: most I/O operations in flight at once (queued
     * or submitted, not yet completed). 0 picks
     * MONAD_ASYNC_IO_INFLIGHT_LIMIT_DEFAULT (262,144); at most
     * MONAD_ASYNC_IO_INFLIGHT_LIMIT_MAX (EINVAL above). It is a memory
     * guard, not a working limit: its table costs 16 bytes per operation
     * only once that many have been in flight at once (4 MiB of address
     * space reserved for the default), and starting an operation never
     * allocates. Operations that wait on the outside world (recv,
     * recvmsg, accept, connect, poll, recv_provided) may hold at most
     * the limit less a reserve of limit / 8 (at least 1 from a limit of
     * 2); the reserve is for operations that finish by themselves (all
     * the others: NOP, timeouts, reads, writes, sends, ...), so that
     * receives waiting for data can never hold the slot a send needs. A
     * task that finds its share used up waits (io.h, Submission): it
     * never spins and never gets an error for it. Ignored without a
     * ring. */
    uint32_t io_inflight_limit;
    /* Completion queue entries: 0 picks
     * MONAD_ASYNC_IO_CQ_ENTRIES_DEFAULT (4,096, 64 KiB of ring memory, or
     * twice the submission queue if that is more); otherwise at least the
     * submission queue's size and at most 65,536 (the kernel's limit;
     * EINVAL outside), rounded up to a power of two. Completions that
     * arrive while it is full wait in the kernel (IORING_FEAT_NODROP) and
     * are collected in the next passes: a bigger queue only saves those
     * passes. Where the kernel cannot lock the default's memory (ENOMEM,
     * RLIMIT_MEMLOCK before Linux 5.12) the executor falls back to the
     * kernel's default of twice the submission queue. Ignored without a
     * ring. */
    uint32_t io_cq_entries;
    uint32_t reserved[5];
};

/* Defaults and bounds of the attr fields above. */
#define MONAD_ASYNC_IO_INFLIGHT_LIMIT_DEFAULT 262144u
#define MONAD_ASYNC_IO_INFLIGHT_LIMIT_MAX 16777216u
#define MONAD_ASYNC_IO_CQ_ENTRIES_DEFAULT 4096u
#define MONAD_ASYNC_IO_CQ_ENTRIES_MAX 65536u

/* Counters, maintained by the executor's thread. Read them on that
 * thread (they are plain integers, not synchronised). */
struct monad_async_executor_counters
{
    uint64_t attached;   /* tasks attached (both paths) */
    uint64_t launched;   /* first slices run */
    uint64_t resumed;    /* later slices run */
    uint64_t suspended;  /* suspensions */
    uint64_t exited;     /* tasks whose work ended, cancelled ones too */
    uint64_t cancelled;  /* tasks cancelled (pending or started) */
    uint64_t inbox_drained; /* attaches and cancels from other threads */
    uint64_t sleeps;     /* times run waited for work */
};

/* Tick totals, maintained like the counters. */
struct monad_async_executor_ticks
{
    monad_async_cpu_ticks_count_t in_run;     /* inside run, overall */
    monad_async_cpu_ticks_count_t launching;  /* running first slices */
    monad_async_cpu_ticks_count_t resuming;   /* running later slices */
    monad_async_cpu_ticks_count_t sleeping;   /* waiting for work */
};

/* I/O counters of an executor with a ring, maintained by its thread.
 * Every operation a task starts is `submitted` once and `completed` once
 * (when its CQE is reaped); after destroy has drained the ring the two
 * are equal (checked in debug builds). */
struct monad_async_executor_io_counters
{
    uint64_t submitted;    /* operations queued for the kernel */
    uint64_t completed;    /* their completions reaped */
    uint64_t in_flight;    /* submitted - completed */
    uint64_t enters;       /* io_uring_enter system calls */
    /* Times a task waited to start an operation: its share of the
     * in-flight guard was used up, or the kernel refused a submission for
     * the moment (EBUSY, EAGAIN). Never for a full submission queue. */
    uint64_t sqe_waits;
    uint64_t cancels;      /* IORING_OP_ASYNC_CANCEL requests made */
    uint64_t stale;        /* completions whose operation was unknown (0) */
    /* Passes that found completions waiting in the kernel because the CQ
     * was full (none is lost: they are collected). */
    uint64_t cq_overflows;
};

/* What the executor's ring is, when it has one. */
struct monad_async_executor_ring_info
{
    unsigned sq_entries;     /* submission queue size (0: no ring) */
    unsigned cq_entries;     /* completion queue size */
    unsigned setup_flags;    /* IORING_SETUP_* the ring was created with */
    unsigned features;       /* IORING_FEAT_* the kernel reported */
    uint32_t inflight_limit; /* the in-flight guard in force */
    /* 1 if high I/O priority maps to the real-time class, 0 if the
     * process may not use it and best effort level 0 is used instead. */
    uint32_t io_priority_rt;
};

/* Buckets of a latency histogram: bucket b (0 <= b < 31) counts
 * latencies of [2^b, 2^(b+1)) ticks (bucket 0 also those of 0 ticks),
 * bucket 31 those of 2^31 ticks and more (about a second and more at
 * 2 GHz). Convert the bounds with monad_async_ticks_per_second(). */
#define MONAD_ASYNC_LATENCY_BUCKETS 32

/* How long tasks waited to run, per CPU priority: fixed buckets, counted
 * on the executor's thread as tasks start a slice, without allocation.
 * Counted only with time tracking on (executors are made with it on
 * unless MONAD_ASYNC_EXECUTOR_FLAG_NO_TIME_TRACKING).
 *  - launch: from attach to the first slice (ticks.launched - attached);
 *  - resume: from the wake that ended a suspension (a park's wake, an I/O
 *    completion, a timer, a cancel, a grant of what it waited for) to the
 *    slice that resumes it. The wake's time is the executor's last stamp
 *    before it: the end of the previous slice, or the ring pump or wait
 *    that reaped the completion (a wake by another task counts from the
 *    start of the waker's slice; an I/O completion from its reaping, not
 *    from when the kernel finished it). A yield is not a wake:
 *    resumptions after a yield are not counted. */
struct monad_async_executor_latency
{
    uint64_t launch[monad_async_priority_max][MONAD_ASYNC_LATENCY_BUCKETS];
    uint64_t resume[monad_async_priority_max][MONAD_ASYNC_LATENCY_BUCKETS];
};

/* The public part of an executor: read-only. */
struct monad_async_executor_head
{
    /* The task running on the executor right now, or NULL. */
    MONAD_ASYNC_ATOMIC(monad_async_task) current_task;
    /* Tasks attached and not yet exited (owner thread's view). */
    uint64_t tasks_attached;
    /* Tasks ready to run, per CPU priority (owner thread's view). */
    uint64_t tasks_runnable[monad_async_priority_max];
    /* Tasks sleeping in suspend_for_duration. */
    uint64_t tasks_timed;
    struct monad_async_executor_counters counters;
    struct monad_async_executor_ticks ticks;
    struct monad_async_executor_io_counters io;
    struct monad_async_executor_ring_info ring;
    struct monad_async_executor_latency latency;
};

/* Creates an executor owned by the calling thread. Expensive.
 * `attr` may be NULL (compute-only, time tracking on). ENOMEM, or the
 * error of io_uring set-up when a ring is asked for:
 *   EPERM, ENOSYS  io_uring is forbidden (seccomp, a container profile) or
 *                  disabled (sysctl kernel.io_uring_disabled), or the
 *                  kernel lacks it;
 *   ENOMEM         the ring's memory could not be locked (RLIMIT_MEMLOCK
 *                  on kernels before 5.12) or allocated, or the address
 *                  space of the operation slot table (16 bytes for each
 *                  slot of io_inflight_limit) could not be reserved;
 *   EINVAL         too many entries (more than 32768), a CQ size out of
 *                  range, an in-flight limit above the maximum, or
 *                  unknown flags;
 *   ENOTSUP        a kernel without IORING_FEAT_NODROP (before 5.5): its
 *                  CQ could lose completions;
 *   EMFILE, ENFILE no file descriptor for the ring or its wake eventfd.
 * monad_async_executor_describe_error explains them with this machine's
 * figures.
 * Side effects, for the task stack overflow message (task.h): the first
 * executor of the process installs a SIGSEGV and SIGBUS handler (once;
 * faults other than a running task's overflow go on to the action that
 * was installed before it), and the calling thread gets an alternate
 * signal stack (sigaltstack) unless it has one, which is then kept; ours
 * is freed when the thread exits. A handler installed later that does not
 * hand such faults on to the one before it turns the message off. Both
 * are best effort: if the handler or the alternate stack cannot be set up
 * (no memory for the stack, no thread-specific key left), the executor is
 * still created and an overflow on that thread is a plain SIGSEGV. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_create(
    monad_async_executor *ex, struct monad_async_executor_attr const *attr);

/* Destroys an executor, on its own thread (EPERM otherwise; EBUSY from
 * inside one of its tasks). Tasks still attached are cancelled first:
 * pending ones never run, started ones resume with ECANCELED and are run
 * to their exit (parked ones too). Destroy returns only once every task
 * has returned from its user_code: every suspension point of a cancelled
 * task returns ECANCELED at once, so a C task that ignores it and keeps
 * suspending keeps destroy running it, forever; return once told (the
 * Rust layer unwinds such a task's stack instead). Attaches from other threads that begin before destroy
 * returns get ESHUTDOWN or are cancelled, none is lost; the caller must
 * make sure none begins after destroy returns (the executor is gone). */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_executor_destroy(monad_async_executor ex);

/* Runs tasks on the calling (owning) thread.
 *
 * An item is one slice of a task: its launch, or one resumption, running
 * until it suspends or exits. run returns once it has done `max_items`
 * items, or once it has done at least one and nothing more is runnable
 * right now. When nothing is runnable at the start it waits up to
 * `timeout` for work (NULL: until work arrives or monad_async_executor_wake;
 * {0, 0}: not at all).
 *
 * Ending a task without running a slice also makes run return: a
 * pending task cancelled from another thread, or the exit of a task that
 * returned with operations in flight, recorded once the kernel finished
 * them. So `while (ex->tasks_attached) run(ex, SIZE_MAX, NULL);` ends.
 *
 * Success: `value` is the number of items done (0 when woken by
 * monad_async_executor_wake with nothing to do, or when it only ended
 * tasks). ETIME: the timeout passed
 * with nothing done. EPERM: not the owning thread. EBUSY: called from
 * inside one of this executor's tasks. EINVAL: NULL ex, max_items is 0,
 * or `timeout->tv_nsec` below 0 or above 999999999. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_run(
    monad_async_executor ex, size_t max_items, struct timespec const *timeout);

/* Makes a waiting run return (or the next wait, if none is waiting).
 * Thread-safe; costs a system call only when the executor sleeps. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_executor_wake(monad_async_executor ex);

/* Writes into `buf` (`len` bytes, NUL-terminated, truncated if short) an
 * explanation of `error` as returned by monad_async_executor_create with
 * a ring asked for, with the current figures that matter (the sysctl
 * kernel.io_uring_disabled, RLIMIT_MEMLOCK). `value` is the length the
 * full text needs, excluding the NUL (as snprintf). EINVAL: NULL buf with
 * a non-zero len. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_describe_error(
    int error, char *buf, size_t len);

/* The executor whose task, or whose run, is executing on this thread
 * right now: `value` is the monad_async_executor, or 0 for none. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_executor_current(void);

MONAD_ASYNC_END_EXTERN_C

#endif
