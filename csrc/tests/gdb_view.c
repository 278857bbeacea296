/* The debugger view (gdb/monad_async.py): gdb, in batch mode, stops this
 * program while its tasks are suspended in a sleep, a park and a recv,
 * lists them with `monad-async tasks`, and prints each one's backtrace
 * with `monad-async bt-all`. The backtraces must name the functions the
 * tasks are suspended in (and the library call they wait in), and the
 * program must go on normally afterwards (the registers were put back).
 *
 * Run with `--target`, this is the program gdb debugs. Skipped (with the
 * reason) where gdb cannot do this: gdb not installed, an emulator, a
 * sanitizer build (they remap memory under a debugger). CI installs gdb. */
#include "test_common.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* ---- the target ---- */

static monad_async_executor g_ex;
static int g_fds[2];
static uint64_t g_park_token;
static monad_async_task g_parker;
static int g_done;

/* gdb stops here, called from inside a task, so the executor's run loop
 * is on this thread (ma_tls_executor names it). */
__attribute__((noinline)) void gdb_view_checkpoint(void)
{
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static monad_async_result sleeper_fn(monad_async_task task)
{
    CHECK_ERROR(monad_async_task_suspend_for_duration(task, 60ull * 1000000000ull),
                ECANCELED);
    g_done++;
    return monad_async_make_success(0);
}

__attribute__((noinline)) static monad_async_result parker_fn(monad_async_task task)
{
    CHECK_RESULT(monad_async_task_wake_token(task, &g_park_token));
    CHECK_RESULT(monad_async_task_park(task, UINT64_MAX));
    g_done++;
    return monad_async_make_success(0);
}

__attribute__((noinline)) static monad_async_result receiver_fn(monad_async_task task)
{
    char buf[4];
    monad_async_result const r =
        monad_async_io_recv(task, NULL, g_fds[0], buf, sizeof(buf), 0);
    CHECK_RESULT(r);
    CHECK_EQ(r.value, 1);
    g_done++;
    return monad_async_make_success(0);
}

static monad_async_task g_sleeper;

static monad_async_result checker_fn(monad_async_task task)
{
    for (int i = 0; i < 4; i++) {
        CHECK_RESULT(monad_async_task_yield(task));
    }
    gdb_view_checkpoint();
    /* Everything goes on: wake, write, cancel. */
    CHECK_EQ(monad_async_task_wake(g_parker, g_park_token).value, 1);
    CHECK_EQ(write(g_fds[1], "x", 1), 1);
    CHECK_ERROR(monad_async_task_cancel(g_ex, g_sleeper), EAGAIN);
    return monad_async_make_success(0);
}

static int run_target(void)
{
    test_watchdog(60, "gdb_view --target");
    monad_async_context_switcher sw = test_make_switcher(TEST_SWITCHER_ASM);
    g_ex = test_make_ring_executor(16, 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, g_fds), 0);
    monad_async_result (*const fns[4])(monad_async_task) = {
        sleeper_fn, parker_fn, receiver_fn, checker_fn};
    monad_async_task tasks[4];
    for (int i = 0; i < 4; i++) {
        tasks[i] = test_make_task(sw, 0);
        tasks[i]->user_code = fns[i];
        CHECK_RESULT(monad_async_task_attach(g_ex, tasks[i], NULL));
    }
    g_sleeper = tasks[0];
    g_parker = tasks[1];
    for (int i = 0; i < 4; i++) {
        (void)test_run_until_detached(g_ex, tasks[i], 20000);
    }
    CHECK_EQ(g_done, 3);
    for (int i = 0; i < 4; i++) {
        CHECK_RESULT(monad_async_task_destroy(tasks[i]));
    }
    CHECK_RESULT(monad_async_executor_destroy(g_ex));
    CHECK_RESULT(monad_async_context_switcher_destroy(sw));
    printf("gdb_view target: done\n");
    return 0;
}

/* ---- the test ---- */

static int file_exists(char const *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Walks up from `start` to the directory holding gdb/monad_async.py. */
static int find_script(char const *start, char *out, size_t n)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", start);
    for (int depth = 0; depth < 10; depth++) {
        snprintf(out, n, "%s/gdb/monad_async.py", dir);
        if (file_exists(out)) {
            return 1;
        }
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir) {
            return 0;
        }
        *slash = 0;
    }
    return 0;
}

/* True if `p` starts a task header line of bt-all: "#<digits> task". */
static int is_task_header(char const *p)
{
    if (*p != '#') {
        return 0;
    }
    p++;
    if (*p < '0' || *p > '9') {
        return 0;
    }
    while (*p >= '0' && *p <= '9') {
        p++;
    }
    return strncmp(p, " task", 5) == 0;
}

/* The part of `out` from the line that starts with `from` to the next
 * task header (the next task's backtrace), or to the end. */
static char const *section(char const *out, char const *from, char *buf, size_t n)
{
    char const *s = strstr(out, from);
    CHECK_MSG(s != NULL, "no `%s` in gdb's output:\n%s", from, out);
    char const *e = s + 1;
    while ((e = strchr(e, '\n')) != NULL && !is_task_header(e + 1)) {
        e++;
    }
    size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
    if (len >= n) {
        len = n - 1;
    }
    memcpy(buf, s, len);
    buf[len] = 0;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--target") == 0) {
        return run_target();
    }
    test_watchdog(240, "gdb_view");
    if (test_emulator() != NULL) {
        test_skip("gdb cannot debug a program under %s", test_emulator());
    }
    if (TEST_UNDER_ANY_SANITIZER) {
        test_skip("sanitizer builds remap memory under a debugger");
    }
    if (system("gdb --version >/dev/null 2>&1") != 0) {
        test_skip("gdb is not installed (apt-get install gdb)");
    }
    char exe[PATH_MAX];
    ssize_t const len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    CHECK(len > 0);
    exe[len] = 0;
    char script[PATH_MAX + 32];
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK_MSG(find_script(exe, script, sizeof(script)) ||
                  find_script(cwd, script, sizeof(script)),
              "gdb/monad_async.py not found above %s or %s", exe, cwd);

    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd),
             "gdb -nx -batch -ex 'set pagination off' -ex 'set confirm off' "
             "-ex 'break gdb_view_checkpoint' -ex run -ex 'source %s' "
             "-ex 'monad-async tasks' -ex 'monad-async bt-all' "
             "-ex 'monad-async bt 1 g_ex' -ex 'bt 3' -ex continue "
             "--args '%s' --target 2>&1",
             script, exe);
    FILE *const p = popen(cmd, "r");
    CHECK(p != NULL);
    static char out[1 << 20];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    int const status = pclose(p);
    CHECK_MSG(status == 0, "gdb exited with status %d:\n%s", status, out);

    /* The listing: four tasks, each where it is. */
    CHECK_MSG(strstr(out, "4 tasks attached") != NULL, "listing:\n%s", out);
    CHECK_MSG(strstr(out, "sleeping (kernel timeout)") != NULL, "%s", out);
    CHECK_MSG(strstr(out, "parked") != NULL, "%s", out);
    CHECK_MSG(strstr(out, "io (recv fd") != NULL, "%s", out);
    CHECK_MSG(strstr(out, "running") != NULL, "%s", out);

    /* Each suspended task's backtrace names its function and the call it
     * is suspended in. */
    char buf[16384];
    section(out, "#0 task", buf, sizeof(buf));
    CHECK_MSG(strstr(buf, "sleeper_fn") != NULL &&
                  strstr(buf, "monad_async_task_suspend_for_duration") != NULL,
              "the sleeper's backtrace:\n%s\nall of gdb's output:\n%s", buf, out);
    section(out, "#1 task", buf, sizeof(buf));
    CHECK_MSG(strstr(buf, "parker_fn") != NULL &&
                  strstr(buf, "monad_async_task_park") != NULL,
              "the parker's backtrace:\n%s\nall of gdb's output:\n%s", buf, out);
    section(out, "#2 task", buf, sizeof(buf));
    CHECK_MSG(strstr(buf, "receiver_fn") != NULL &&
                  strstr(buf, "monad_async_io_recv") != NULL,
              "the receiver's backtrace:\n%s\nall of gdb's output:\n%s", buf, out);
    /* `bt 1 g_ex`: the parker again, by index and executor expression
     * (a line of its own, not a bt-all header). */
    CHECK_MSG(strstr(out, "\ntask 0x") != NULL, "%s", out);
    section(strstr(out, "\ntask 0x") + 1, "task 0x", buf, sizeof(buf));
    CHECK_MSG(strstr(buf, "parker_fn") != NULL, "`bt 1 g_ex`:\n%s", buf);
    /* The registers were restored: the thread's own backtrace is the
     * checkpoint's, and the program ran to its end. */
    CHECK_MSG(strstr(out, "gdb_view_checkpoint") != NULL, "%s", out);
    CHECK_MSG(strstr(out, "gdb_view target: done") != NULL,
              "the target did not finish after the backtraces:\n%s", out);
    test_note("gdb listed 4 tasks and printed the backtraces of 3");
    return 0;
}
