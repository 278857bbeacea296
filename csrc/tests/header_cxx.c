/* The public headers compile as C++ (std=c++17, with g++/c++ and clang++
 * when present) and as strict C11 (-std=c11 -Wall -Wextra -Werror
 * -pedantic, with cc, $CC and clang when present); and C++ sees the same
 * layout as C: every public struct's size, alignment and field offsets,
 * as computed by this C program, are static_asserted in the C++ compile.
 * Header contract: config.h ("The public headers are plain C11 ... and
 * also compile as C++, so that C, C++ and bindgen all see the same
 * layouts"). */
#include "test_common.h"

#include <limits.h>
#include <stddef.h>
#include <stdalign.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char include_dir[PATH_MAX + 16];

static int file_exists(char const *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Walks up from `start` looking for include/monad_async.h. */
static int find_include_from(char const *start)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", start);
    for (int depth = 0; depth < 8; depth++) {
        char cand[PATH_MAX + 32];
        snprintf(cand, sizeof(cand), "%s/include/monad_async.h", dir);
        if (file_exists(cand)) {
            snprintf(include_dir, sizeof(include_dir), "%s/include", dir);
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

static void locate_include_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        if (find_include_from(exe)) {
            return;
        }
    }
    /* Compiled from csrc/ as tests/header_cxx.c; the runner runs from
     * csrc/ too. */
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) != NULL && find_include_from(cwd)) {
        return;
    }
    TEST_FAIL("cannot find include/monad_async.h above %s or the current "
              "directory", n > 0 ? exe : "(unknown executable)");
}

static int have_program(char const *name)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "command -v '%s' >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* Feeds `source` to `compiler flags -I<include> -x <lang> -`; returns 1 if
 * it compiled. */
static int compile(char const *compiler, char const *lang, char const *flags,
                   char const *source, char const *what)
{
    char cmd[PATH_MAX + 1100];
    snprintf(cmd, sizeof(cmd), "%s %s -fsyntax-only -I'%s' -x %s - 2>&1",
             compiler, flags, include_dir, lang);
    fflush(stdout);
    FILE *p = popen(cmd, "w");
    CHECK_MSG(p != NULL, "popen(%s) failed", cmd);
    fputs(source, p);
    int status = pclose(p);
    int ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("%s  %s: %s\n", ok ? "ok  " : "FAIL", what, cmd);
    if (!ok) {
        fprintf(stderr, "FAILED: %s: `%s` failed (status 0x%x) on:\n%s\n",
                what, cmd, status, source);
    }
    return ok;
}

/* ---- the C++ layout check, generated from this C compilation ---- */

static char cxx_source[65536];
static size_t cxx_len;

static void emit(char const *fmt, ...) __attribute__((format(printf, 1, 2)));

static void emit(char const *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cxx_source + cxx_len, sizeof(cxx_source) - cxx_len, fmt,
                      ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof(cxx_source) - cxx_len);
    cxx_len += (size_t)n;
}

#define EMIT_SIZE(T)                                                         \
    emit("static_assert(sizeof(" #T ") == %zu, \"sizeof(" #T                 \
         ") differs between C and C++\");\n"                                 \
         "static_assert(alignof(" #T ") == %zu, \"alignof(" #T               \
         ") differs between C and C++\");\n",                                \
         sizeof(T), alignof(T))
#define EMIT_OFF(T, F)                                                       \
    emit("static_assert(offsetof(" #T ", " #F ") == %zu, \"offsetof(" #T     \
         ", " #F ") differs between C and C++\");\n",                        \
         offsetof(T, F))

static void build_cxx_source(void)
{
    emit("#include <monad_async.h>\n#include <cstddef>\n#include <atomic>\n");
    EMIT_SIZE(monad_async_result);
    EMIT_OFF(monad_async_result, value);
    EMIT_OFF(monad_async_result, error);
    EMIT_SIZE(monad_async_priority);
    EMIT_SIZE(monad_async_cpu_ticks_count_t);

    EMIT_SIZE(struct monad_async_context_switcher_attr);
    EMIT_OFF(struct monad_async_context_switcher_attr, flags);
    EMIT_OFF(struct monad_async_context_switcher_attr, reserved);

    EMIT_SIZE(struct monad_async_task_ticks);
    EMIT_OFF(struct monad_async_task_ticks, attached);
    EMIT_OFF(struct monad_async_task_ticks, launched);
    EMIT_OFF(struct monad_async_task_ticks, suspended);
    EMIT_OFF(struct monad_async_task_ticks, resumed);
    EMIT_OFF(struct monad_async_task_ticks, exited);
    EMIT_OFF(struct monad_async_task_ticks, executing);

    EMIT_SIZE(struct monad_async_task_head);
    EMIT_OFF(struct monad_async_task_head, priority);
    EMIT_OFF(struct monad_async_task_head, priority.cpu);
    EMIT_OFF(struct monad_async_task_head, priority.io);
    EMIT_OFF(struct monad_async_task_head, user_code);
    EMIT_OFF(struct monad_async_task_head, user_ptr);
    EMIT_OFF(struct monad_async_task_head, user_on_exit);
    EMIT_OFF(struct monad_async_task_head, state);
    EMIT_OFF(struct monad_async_task_head, current_executor);
    EMIT_OFF(struct monad_async_task_head, switcher);
    EMIT_OFF(struct monad_async_task_head, result);
    EMIT_OFF(struct monad_async_task_head, suspensions);
    EMIT_OFF(struct monad_async_task_head, ticks);

    EMIT_SIZE(struct monad_async_task_attr);
    EMIT_OFF(struct monad_async_task_attr, stack_size);
    EMIT_OFF(struct monad_async_task_attr, reserved);

    EMIT_SIZE(struct monad_async_executor_attr);
    EMIT_OFF(struct monad_async_executor_attr, io_uring_ring);
    EMIT_OFF(struct monad_async_executor_attr, io_uring_ring.entries);
    EMIT_OFF(struct monad_async_executor_attr, io_uring_ring.flags);
    EMIT_OFF(struct monad_async_executor_attr, flags);
    EMIT_OFF(struct monad_async_executor_attr, io_inflight_limit);
    EMIT_OFF(struct monad_async_executor_attr, io_cq_entries);
    EMIT_OFF(struct monad_async_executor_attr, reserved);

    EMIT_SIZE(struct monad_async_executor_counters);
    EMIT_OFF(struct monad_async_executor_counters, attached);
    EMIT_OFF(struct monad_async_executor_counters, launched);
    EMIT_OFF(struct monad_async_executor_counters, resumed);
    EMIT_OFF(struct monad_async_executor_counters, suspended);
    EMIT_OFF(struct monad_async_executor_counters, exited);
    EMIT_OFF(struct monad_async_executor_counters, cancelled);
    EMIT_OFF(struct monad_async_executor_counters, inbox_drained);
    EMIT_OFF(struct monad_async_executor_counters, sleeps);

    EMIT_SIZE(struct monad_async_executor_ticks);
    EMIT_OFF(struct monad_async_executor_ticks, in_run);
    EMIT_OFF(struct monad_async_executor_ticks, launching);
    EMIT_OFF(struct monad_async_executor_ticks, resuming);
    EMIT_OFF(struct monad_async_executor_ticks, sleeping);

    EMIT_SIZE(struct monad_async_executor_head);
    EMIT_OFF(struct monad_async_executor_head, current_task);
    EMIT_OFF(struct monad_async_executor_head, tasks_attached);
    EMIT_OFF(struct monad_async_executor_head, tasks_runnable);
    EMIT_OFF(struct monad_async_executor_head, tasks_timed);
    EMIT_OFF(struct monad_async_executor_head, counters);
    EMIT_OFF(struct monad_async_executor_head, ticks);

    /* And use the API the way C++ code would. */
    emit("%s",
         "static monad_async_result cxx_task(monad_async_task task)\n"
         "{\n"
         "    monad_async_result r = monad_async_task_yield(task);\n"
         "    if (monad_async_is_failure(r)) return r;\n"
         "    return monad_async_make_success(0);\n"
         "}\n"
         "int cxx_use(monad_async_executor ex, monad_async_task task);\n"
         "int cxx_use(monad_async_executor ex, monad_async_task task)\n"
         "{\n"
         "    task->priority.cpu = monad_async_priority_high;\n"
         "    task->user_code = cxx_task;\n"
         "    monad_async_result r = monad_async_task_attach(ex, task, "
         "nullptr);\n"
         "    uint32_t st = task->state.load(std::memory_order_acquire);\n"
         "    monad_async_task cur = ex->current_task.load();\n"
         "    monad_async_executor e2 = task->current_executor.load();\n"
         "    return r.error + int(st) + (cur == nullptr) + (e2 == ex);\n"
         "}\n");
}

static char const c_source[] =
    "#include <monad_async.h>\n"
    "#include <string.h>\n"
    "static monad_async_result c_task(monad_async_task task)\n"
    "{\n"
    "    monad_async_result r = monad_async_task_suspend_for_duration(task, "
    "1000);\n"
    "    if (monad_async_is_failure(r)) return r;\n"
    "    return monad_async_make_success(0);\n"
    "}\n"
    "int c_use(monad_async_executor ex, monad_async_task task);\n"
    "int c_use(monad_async_executor ex, monad_async_task task)\n"
    "{\n"
    "    struct monad_async_executor_attr a;\n"
    "    memset(&a, 0, sizeof(a));\n"
    "    task->priority.cpu = monad_async_priority_high;\n"
    "    task->user_code = c_task;\n"
    "    monad_async_result r = monad_async_task_attach(ex, task, nullptr);\n"
    "    uint32_t st = atomic_load(&task->state);\n"
    "    r = monad_async_executor_run(ex, 1, nullptr);\n"
    "    return r.error + (int)st + (int)a.flags;\n"
    "}\n";

int main(void)
{
    if (test_emulator() != NULL) {
        test_skip("under %s the compilers this runs are the host's: it would "
                  "compare their C++ layouts with this program's C ones",
                  test_emulator());
    }
    test_watchdog(240, "header_cxx (a compiler that never returned?)");
    locate_include_dir();
    printf("include dir: %s\n", include_dir);
    build_cxx_source();
    int failures = 0;

    /* C++ */
    char const *cxx_compilers[2] = {"c++", "clang++"};
    int cxx_tested = 0;
    for (int i = 0; i < 2; i++) {
        if (!have_program(cxx_compilers[i])) {
            if (i == 0) {
                TEST_FAIL("no `c++` compiler on PATH: cannot check the "
                          "headers compile as C++");
            }
            test_note("%s not found; C++ checked with c++ only",
                      cxx_compilers[i]);
            continue;
        }
        cxx_tested++;
        char what[128];
        snprintf(what, sizeof(what), "%s: #include <monad_async.h> as C++17",
                 cxx_compilers[i]);
        failures += !compile(cxx_compilers[i], "c++", "-std=c++17",
                             "#include <monad_async.h>\n", what);
        snprintf(what, sizeof(what),
                 "%s: C++17 -Wall -Wextra -Werror -pedantic, C layout "
                 "static_asserts and API use",
                 cxx_compilers[i]);
        failures += !compile(cxx_compilers[i], "c++",
                             "-std=c++17 -Wall -Wextra -Werror -pedantic",
                             cxx_source, what);
    }
    CHECK(cxx_tested >= 1);

    /* Strict C11 */
    char const *cc_env = getenv("CC");
    char const *c_compilers[3] = {"cc", "clang", cc_env};
    int c_tested = 0;
    for (int i = 0; i < 3; i++) {
        char const *c = c_compilers[i];
        if (c == NULL || *c == 0 || (i == 2 && (strcmp(c, "cc") == 0 ||
                                               strcmp(c, "clang") == 0))) {
            continue;
        }
        if (!have_program(c)) {
            if (i == 0) {
                TEST_FAIL("no `cc` compiler on PATH");
            }
            test_note("%s not found; strict C11 not checked with it", c);
            continue;
        }
        c_tested++;
        char what[128];
        snprintf(what, sizeof(what), "%s: #include <monad_async.h> as strict "
                 "C11", c);
        failures += !compile(c, "c",
                             "-std=c11 -Wall -Wextra -Werror -pedantic",
                             "#include <monad_async.h>\n", what);
        snprintf(what, sizeof(what), "%s: strict C11 API use with nullptr",
                 c);
        failures += !compile(c, "c",
                             "-std=c11 -Wall -Wextra -Werror -pedantic",
                             c_source, what);
    }
    CHECK(c_tested >= 1);
    CHECK_MSG(failures == 0, "%d header compile check(s) failed", failures);
    printf("header_cxx: ok\n");
    return 0;
}
