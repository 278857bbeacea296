"""GDB commands for monad-async: list an executor's tasks and print the
backtrace of a suspended task.

A suspended task's stack is not any thread's, so `bt` never shows it. These
commands read the executor's own bookkeeping (the list of attached tasks
that the task dump uses) and, for `monad-async bt`, point the registers at
the task's saved switch frame for the duration of one backtrace, then put
them back.

Load it with `source gdb/monad_async.py` (or from ~/.gdbinit). The program
needs debug information for the C core (the crate builds it with `-g` in
debug builds; `make -C csrc` does by default).

  monad-async tasks [EXECUTOR]   every attached task: where it is, what it
                                 waits for, priorities, suspensions
  monad-async bt TASK [EXECUTOR] the backtrace of a suspended task; TASK is
                                 an index from `tasks` or an address
  monad-async bt-all [EXECUTOR]  the backtraces of every suspended task

EXECUTOR is an expression for a `monad_async_executor`; without one, the
executor running on the selected thread (stop the program inside a task,
or inside `monad_async_executor_run`).

Backtraces need the asm switcher (the default): its saved frame is plain
registers, laid out as csrc/src/switch_x86_64.S and switch_aarch64.S say.
The sjlj switcher saves through setjmp, whose pointers glibc mangles.
"""

import gdb

WHERE = {
    0: "nowhere",
    1: "ready",
    2: "sleeping",
    3: "waiting to start I/O",
    4: "io",
    5: "waiting for a buffer",
    6: "parked",
    7: "woken (wake in the inbox)",
}

STATE_BITS = [
    (1 << 0, "ATTACHED"),
    (1 << 1, "PENDING_LAUNCH"),
    (1 << 2, "RUNNING"),
    (1 << 3, "SUSPENDED"),
    (1 << 4, "EXITED"),
    (1 << 5, "CANCELLED"),
    (1 << 6, "IN_INBOX"),
    (1 << 7, "QUEUED"),
]

PRIORITY = {0: "high", 1: "normal", 2: "low"}

OPCODES = [
    "nop", "readv", "writev", "fsync", "read_fixed", "write_fixed",
    "poll_add", "poll_remove", "sync_file_range", "sendmsg", "recvmsg",
    "timeout", "timeout_remove", "accept", "async_cancel", "link_timeout",
    "connect", "fallocate", "openat", "close", "files_update", "statx",
    "read", "write", "fadvise", "madvise", "send", "recv", "openat2",
    "epoll_ctl", "splice", "provide_buffers", "remove_buffers", "tee",
    "shutdown", "renameat", "unlinkat", "mkdirat", "symlinkat", "linkat",
    "msg_ring", "fsetxattr", "setxattr", "fgetxattr", "getxattr", "socket",
    "uring_cmd", "send_zc", "sendmsg_zc",
]

# The top byte of monad_async_io_status.flags (csrc/src/io_impl.h).
OPCODE_SHIFT = 24
IO_WAIT_ANY = 1


def _executor(arg):
    """The struct ma_executor * named by `arg`, or the one running on the
    selected thread."""
    ex_type = gdb.lookup_type("struct ma_executor").pointer()
    if arg:
        return gdb.parse_and_eval(arg).cast(ex_type)
    ex = gdb.parse_and_eval("ma_tls_executor")
    if int(ex) == 0:
        raise gdb.GdbError(
            "no executor runs on this thread: name one, e.g. "
            "`monad-async tasks my_executor`")
    return ex.cast(ex_type)


def _tasks(ex):
    """Every attached task of `ex`, oldest attach first (its all_tasks
    ring, csrc/src/dump.c)."""
    task_type = gdb.lookup_type("struct ma_task")
    offset = None
    for f in task_type.fields():
        if f.name == "all_link":
            offset = f.bitpos // 8
    sentinel = ex["all_tasks"].address
    link = ex["all_tasks"]["next"]
    out = []
    while int(link) != int(sentinel):
        addr = int(link) - offset
        out.append(gdb.Value(addr).cast(task_type.pointer()))
        link = link["next"]
        if len(out) > 10_000_000:
            raise gdb.GdbError("the task list does not end: corrupt?")
    return out


def _state(t):
    s = int(t["head"]["state"])
    names = [n for bit, n in STATE_BITS if s & bit]
    return "|".join(names) or "0"


def _io(t):
    """(opcode name, fd) of the operation a task in I/O waits for."""
    st = t["io_waiting_for"]
    if int(st) in (0, IO_WAIT_ANY):
        st = t["io_inflight_head"]
    if int(st) == 0:
        return None
    op = int(st["flags"]) >> OPCODE_SHIFT
    name = OPCODES[op] if op < len(OPCODES) else "op %d" % op
    return name, int(st["fd"])


def _describe(ex, t):
    where = int(t["where"])
    what = WHERE.get(where, "where=%d" % where)
    current = int(ex["head"]["current_task"])
    if where == 0 and current == int(t):
        what = "running"
    elif where == 1 and int(t["head"]["state"]) & (1 << 1):
        what = "pending launch"
    elif where == 4:
        if bool(t["io_draining"]):
            what = "exiting (I/O draining)"
        else:
            io = _io(t)
            if io is not None:
                what = "io (%s fd %d)" % io if io[1] >= 0 else "io (%s)" % io[0]
                if io[0] == "timeout":
                    what = "sleeping (kernel timeout)"
    return what


def _switcher_kind(t):
    """'fp', 'nofp' (asm), 'sjlj' or 'none', from the switcher's ops."""
    ops = t["ctx"]["sw"]["ops"]
    suspend = str(ops["suspend"])
    if "asm_suspend_nofp" in suspend:
        return "nofp"
    if "asm_suspend_fp" in suspend:
        return "fp"
    if "sjlj" in suspend:
        return "sjlj"
    return "none"


def _saved_registers(t):
    """The registers a suspended task resumes with, from its saved switch
    frame: {register: value}."""
    kind = _switcher_kind(t)
    if kind not in ("fp", "nofp"):
        raise gdb.GdbError(
            "task 0x%x uses the %s switcher: only the asm switcher's saved "
            "frame can be read" % (int(t), kind))
    sp = int(t["ctx"]["task_sp"])
    u64 = gdb.lookup_type("unsigned long long").pointer()

    def at(addr):
        return int(gdb.Value(addr).cast(u64).dereference())

    arch = gdb.selected_frame().architecture().name()
    if "x86-64" in arch:
        # [fp: mxcsr, x87 cw, pad: 8 bytes] r15 r14 r13 r12 rbx rbp ret
        base = sp + (8 if kind == "fp" else 0)
        regs = ["r15", "r14", "r13", "r12", "rbx", "rbp"]
        out = {r: at(base + 8 * i) for i, r in enumerate(regs)}
        out["pc"] = at(base + 48)
        out["sp"] = base + 56
        return out
    if "aarch64" in arch:
        # x19..x28, x29, x30, d8..d15, fpcr, pad: 176 bytes
        out = {"x%d" % (19 + i): at(sp + 8 * i) for i in range(10)}
        out["x29"] = at(sp + 80)
        out["x30"] = at(sp + 88)
        out["pc"] = out["x30"]
        out["sp"] = sp + 176
        return out
    raise gdb.GdbError("no saved-frame layout for architecture %s" % arch)


def _backtrace(t):
    state = int(t["head"]["state"])
    if not (state & (1 << 3)):
        raise gdb.GdbError(
            "task 0x%x is not suspended (%s): its stack is in use or empty"
            % (int(t), _state(t)))
    regs = _saved_registers(t)
    gdb.execute("frame 0", to_string=True)
    saved = {r: int(gdb.parse_and_eval("$" + r)) for r in regs}
    try:
        for r, v in regs.items():
            gdb.execute("set $%s = %d" % (r, v), to_string=True)
        return gdb.execute("bt", to_string=True)
    finally:
        # pc and sp last would do as well: restore everything we set.
        for r, v in saved.items():
            gdb.execute("set $%s = %d" % (r, v), to_string=True)
        gdb.execute("frame 0", to_string=True)


class MonadAsync(gdb.Command):
    """monad-async: inspect monad-async executors and their tasks.
Subcommands: tasks [EXECUTOR], bt TASK [EXECUTOR], bt-all [EXECUTOR]."""

    def __init__(self):
        super().__init__("monad-async", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class MonadAsyncTasks(gdb.Command):
    """List the tasks attached to an executor: monad-async tasks [EXECUTOR]."""

    def __init__(self):
        super().__init__("monad-async tasks", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        ex = _executor(arg.strip())
        tasks = _tasks(ex)
        gdb.write("executor 0x%x: %d tasks attached\n" % (int(ex), len(tasks)))
        for i, t in enumerate(tasks):
            gdb.write(
                "  #%-4d task 0x%x  %-28s cpu %-6s io %-6s suspensions %d  %s\n"
                % (i, int(t), _describe(ex, t),
                   PRIORITY.get(int(t["queue"]), "?"),
                   PRIORITY.get(int(t["head"]["priority"]["io"]), "?"),
                   int(t["head"]["suspensions"]), _state(t)))


def _task_arg(ex, arg):
    tasks = _tasks(ex)
    value = int(gdb.parse_and_eval(arg))
    if value < len(tasks):
        return tasks[value]
    for t in tasks:
        if int(t) == value:
            return t
    raise gdb.GdbError("no task %s attached to executor 0x%x" % (arg, int(ex)))


class MonadAsyncBt(gdb.Command):
    """Backtrace of a suspended task: monad-async bt TASK [EXECUTOR].
TASK: an index from `monad-async tasks`, or the task's address."""

    def __init__(self):
        super().__init__("monad-async bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if not args:
            raise gdb.GdbError("usage: monad-async bt TASK [EXECUTOR]")
        ex = _executor(" ".join(args[1:]))
        t = _task_arg(ex, args[0])
        gdb.write("task 0x%x (%s):\n" % (int(t), _describe(ex, t)))
        gdb.write(_backtrace(t))


class MonadAsyncBtAll(gdb.Command):
    """Backtraces of every suspended task: monad-async bt-all [EXECUTOR]."""

    def __init__(self):
        super().__init__("monad-async bt-all", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        ex = _executor(arg.strip())
        for i, t in enumerate(_tasks(ex)):
            if not int(t["head"]["state"]) & (1 << 3):
                continue
            gdb.write("#%d task 0x%x (%s):\n" % (i, int(t), _describe(ex, t)))
            try:
                gdb.write(_backtrace(t))
            except gdb.GdbError as e:
                gdb.write("  (%s)\n" % e)


MonadAsync()
MonadAsyncTasks()
MonadAsyncBt()
MonadAsyncBtAll()
