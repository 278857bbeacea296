/* An executor whose ring cannot be created says why, and nothing else
 * breaks: in a child process a seccomp filter answers io_uring_setup with
 * EPERM (what container runtimes' default profiles do), then with ENOSYS
 * (a kernel without io_uring, or a filter that says so). Each time:
 *  - creating an executor with a ring fails with exactly that errno and
 *    leaks nothing (the ASan build checks);
 *  - monad_async_executor_describe_error names the cause (seccomp, the
 *    sysctl) and this machine's kernel.io_uring_disabled;
 *  - a compute-only executor (no ring) still creates, runs a task and
 *    is destroyed.
 * Too many entries gives EINVAL without any filter. */
#include "test_common.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#endif

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

/* Every other system call is allowed: only the ring is refused. */
static void refuse_io_uring_setup(int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {
        (unsigned short)(sizeof(filter) / sizeof(filter[0])), filter};
    CHECK_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    CHECK_MSG(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0,
              "seccomp: %s", strerror(errno));
}

static monad_async_result work(monad_async_task task)
{
    (void)task;
    return monad_async_make_success(42);
}

/* The child's checks, under a filter answering `err`. */
static void refused_child(int err)
{
    refuse_io_uring_setup(err);

    struct monad_async_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.io_uring_ring.entries = 64;
    monad_async_executor ex = NULL;
    CHECK_ERROR(monad_async_executor_create(&ex, &attr), err);
    CHECK(ex == NULL);

    char buf[512];
    monad_async_result const d =
        monad_async_executor_describe_error(err, buf, sizeof(buf));
    CHECK_RESULT(d);
    CHECK_LT((size_t)d.value, sizeof(buf));
    CHECK_MSG(strstr(buf, "seccomp") != NULL, "no cause named: %s", buf);
    CHECK_MSG(strstr(buf, "io_uring_disabled") != NULL || err == ENOSYS,
              "the sysctl is not named: %s", buf);
    test_note("%s: %s", err == EPERM ? "EPERM" : "ENOSYS", buf);

    /* Without a ring, everything works. */
    attr.io_uring_ring.entries = 0;
    CHECK_RESULT(monad_async_executor_create(&ex, &attr));
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    monad_async_task t;
    struct monad_async_task_attr t_attr;
    memset(&t_attr, 0, sizeof(t_attr));
    CHECK_RESULT(monad_async_task_create(&t, sw, &t_attr));
    t->user_code = work;
    CHECK_RESULT(monad_async_task_attach(ex, t, NULL));
    monad_async_result const r = monad_async_executor_run(ex, 1, NULL);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    CHECK_EQ(t->result.value, 42);
    CHECK_RESULT(monad_async_task_destroy(t));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    CHECK_RESULT(monad_async_executor_destroy(ex));
}

static void run_in_child(int err)
{
    fflush(stdout);
    fflush(stderr);
    pid_t const pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        refused_child(err);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child for errno %d: status 0x%x", err, status);
}

int main(void)
{
    test_watchdog(60, "ring_refused");
    test_need_ring(64);

    /* The unfiltered control: the same attributes do make a ring here, so
     * the refusals below are the filter's doing. */
    struct monad_async_executor_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.io_uring_ring.entries = 64;
    monad_async_executor ex = NULL;
    CHECK_RESULT(monad_async_executor_create(&ex, &attr));
    CHECK_RESULT(monad_async_executor_destroy(ex));

    run_in_child(EPERM);
    run_in_child(ENOSYS);

    /* Too many entries: the kernel's EINVAL, explained. */
    attr.io_uring_ring.entries = 1u << 20;
    CHECK_ERROR(monad_async_executor_create(&ex, &attr), EINVAL);
    char buf[512];
    CHECK_RESULT(monad_async_executor_describe_error(EINVAL, buf, sizeof(buf)));
    CHECK_MSG(strstr(buf, "entries") != NULL, "%s", buf);
    return 0;
}
