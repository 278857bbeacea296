#!/usr/bin/env python3
"""Writes the hand-made seeds of csrc/fuzz/corpus/ (seed-*): one program
per top-level operation and one per task operation of api_fuzz.c, in the
byte format its parser reads (see parse_op and parse_script there):

  input   := final op*              final: bit i set = destroy executor i
                                    as it is at the end, else drain it
  op      := code a b c [script [exit_script]]
                                    a script follows an attach (top-level
                                    O_ATTACH/O_ATTACH_REMOTE, or T_ATTACH
                                    up to script depth 2); an exit script
                                    follows when c & 0x80, below depth 2
  script  := n op{n % 8}

The seeds written by the fuzzer itself sit beside these (named by their
SHA-1): a brief run from the hand-made ones, minimised onto them so that
each adds an edge they do not reach:

  build/fuzz/api_fuzz -runs=1500 -max_len=256 -seed=7 BRIEF fuzz/corpus
  mkdir M && cp fuzz/corpus/seed-* M/
  build/fuzz/api_fuzz -merge=1 -use_counters=0 M BRIEF

Run from anywhere: python3 csrc/fuzz/make_seeds.py
"""
import os

# enum top_code
(O_EX_CREATE, O_EX_DESTROY, O_ATTACH, O_ATTACH_REMOTE, O_CANCEL,
 O_CANCEL_REMOTE, O_RUN, O_RUN2, O_EX_WAKE, O_WAKE, O_TOKEN, O_TASK_DESTROY,
 O_SW_DESTROY, O_BAD, O_FOREIGN, O_PIPE_WRITE, O_PIPE_DRAIN, O_MISC,
 O_DISPATCH) = range(19)
# O_DISPATCH's a % 10 (top_dispatch): what it does
(D_CREATE, D_SUBMIT, D_RUN, D_FOREIGN, D_WAIT, D_QUIT, D_CANCEL_QUEUED,
 D_COUNTERS, D_EX_DESTROY, D_DESTROY) = range(10)
# enum task_code
(T_YIELD, T_SLEEP, T_PARK, T_WAKE, T_TOKEN, T_ATTACH, T_CANCEL, T_RUN,
 T_EX_DESTROY, T_EX_WAKE, T_IO, T_IO2, T_REAP, T_TRY_REAP, T_IO_WAIT,
 T_IO_CANCEL, T_BAD, T_RETURN, T_PRIO, T_PIPE_WRITE) = range(20)

# executor kinds (create_executor): entries[kind % 8], 0x08 no time
# tracking, (kind >> 4) & 3 the in-flight guard (0, 2, 3, 8), 0x40 the
# least CQ
COMPUTE = 0
RING4 = 2
RING16_GUARD2 = 4 | (1 << 4)
RING8_SMALLCQ = 3 | 0x40

# run timeouts at the top level (do_run): 0 {0,0}, 1 20us, 2 50us,
# 3 and 4 bad, 5 200us, 6 1ms, 7 NULL after a wake, 8 NULL and the helper
# wakes it; max_items: maxes[b % 8] = 1, 2, 3, 7, 64, max, max, 0
RUN_ZERO, RUN_1MS, RUN_NULL_WOKEN, RUN_NULL_LATER = 0, 6, 7, 8
MAX_ALL = 5


def top(code, a=0, b=0, c=0, script=None, exit_script=None):
    out = bytes([code, a, b, c])
    if code in (O_ATTACH, O_ATTACH_REMOTE) or (code == O_DISPATCH and
                                                a % 10 == D_SUBMIT):
        out += enc_script(script or [], 1)
        if c & 0x80:
            out += enc_script(exit_script or [], 1)
    return out


def t(code, a=0, b=0, c=0, script=None, exit_script=None):
    return (code, a, b, c, script, exit_script)


def enc_script(ops, depth):
    assert len(ops) <= 7
    out = bytes([len(ops)])
    for code, a, b, c, script, exit_script in ops:
        out += bytes([code, a, b, c])
        if code == T_ATTACH and depth <= 2:
            out += enc_script(script or [], depth + 1)
            if (c & 0x80) and depth < 2:
                out += enc_script(exit_script or [], depth + 1)
    return out


def program(*ops, final=0):
    return bytes([final]) + b"".join(ops)


def runs(ex=0, n=3, timeout=RUN_1MS):
    return b"".join(top(O_RUN, ex, MAX_ALL, timeout) for _ in range(n))


def with_task(script, kind=RING4, task=1, exit_script=None, final=0):
    """An executor, one task running `script`, runs, then the end."""
    c = 0x80 if exit_script is not None else 0
    return program(
        top(O_EX_CREATE, 0, kind),
        top(O_EX_CREATE, 1, COMPUTE),
        top(O_ATTACH, task, 0, c, script, exit_script),
        runs(0, 4),
        final=final)


seeds = {}

# ---- one per top-level operation ----
seeds["top-ex-create-kinds"] = program(
    top(O_EX_CREATE, 0, COMPUTE), top(O_EX_CREATE, 1, RING16_GUARD2),
    top(O_EX_CREATE, 2, RING8_SMALLCQ | 0x08),
    top(O_EX_DESTROY, 2), top(O_EX_CREATE, 2, 0x80),  # bad attr
    top(O_EX_CREATE, 2, 0x80 | 0x10))
seeds["top-ex-destroy-busy"] = program(
    top(O_EX_CREATE, 0, RING4),
    top(O_ATTACH, 0, 0, 0, [t(T_IO, 2, 0)]),  # a blocking poll
    top(O_ATTACH, 1, 0, 0, [t(T_PARK, 0)]),
    top(O_ATTACH, 2, 0, 0, [t(T_SLEEP, 3)]),
    top(O_ATTACH, 4, 0, 0, [t(T_YIELD)]),
    top(O_RUN, 0, 1, RUN_ZERO), top(O_RUN, 0, 2, RUN_ZERO),
    top(O_EX_DESTROY, 0))
seeds["top-attach-switchers"] = program(
    top(O_EX_CREATE, 0, COMPUTE),
    top(O_ATTACH, 0, 0, 0x08 | (1 << 1), [t(T_YIELD)]),
    top(O_ATTACH, 3, 0, 0x08 | (0 << 1), [t(T_YIELD)]),
    top(O_ATTACH, 5, 0, 0x70, []),  # a priority out of range
    top(O_ATTACH, 6, 0, 0x7c, []),  # no user_code
    runs(0, 3))
seeds["top-attach-remote"] = program(
    top(O_EX_CREATE, 0, RING4),
    top(O_ATTACH_REMOTE, 2, 0, 0, [t(T_YIELD), t(T_IO, 0, 0)]),
    top(O_ATTACH_REMOTE, 2, 0, 0, []),  # EBUSY
    runs(0, 3, RUN_NULL_WOKEN))
seeds["top-cancel-local"] = program(
    top(O_EX_CREATE, 0, COMPUTE),
    top(O_ATTACH, 1, 0, 0, [t(T_YIELD), t(T_YIELD)]),
    top(O_ATTACH, 2, 0, 0, [t(T_YIELD)]),
    top(O_CANCEL, 2, 0, 0),  # pending: success
    top(O_RUN, 0, 0, RUN_ZERO),
    top(O_CANCEL, 1, 0, 0),  # started: EAGAIN
    runs(0, 3))
seeds["top-cancel-remote"] = program(
    top(O_EX_CREATE, 0, RING4),
    top(O_ATTACH_REMOTE, 1, 0, 0x80, [t(T_YIELD)], [t(T_YIELD)]),
    top(O_CANCEL_REMOTE, 1, 0, 0),
    top(O_CANCEL, 1, 0, 0),  # drains the inbox, the hook re-attaches
    runs(0, 3))
seeds["top-run-timeouts"] = program(
    top(O_EX_CREATE, 0, RING4), top(O_EX_CREATE, 1, COMPUTE),
    top(O_ATTACH, 1, 1, 0, [t(T_PARK, 3)]),
    *[top(O_RUN, i % 2, i, i) for i in range(9)],
    top(O_RUN, 0, 7, 0), top(O_RUN2, 1, 0, RUN_NULL_LATER))
seeds["top-ex-wake"] = program(
    top(O_EX_CREATE, 0, RING4), top(O_EX_WAKE, 0, 0), top(O_EX_WAKE, 0, 1),
    top(O_RUN, 0, 0, RUN_1MS), top(O_RUN, 0, 0, RUN_1MS))
seeds["top-wake-parked"] = program(
    top(O_EX_CREATE, 0, COMPUTE),
    top(O_ATTACH, 1, 0, 0, [t(T_PARK, 0), t(T_PARK, 0), t(T_PARK, 0)]),
    top(O_RUN, 0, 0, RUN_ZERO),
    top(O_WAKE, 1, 0, 0), top(O_RUN, 0, 0, RUN_ZERO),
    top(O_WAKE, 1, 0, 1), top(O_RUN, 0, 0, RUN_ZERO),
    top(O_WAKE, 1, 0, 0), top(O_CANCEL, 1, 0, 0),  # the wake wins
    top(O_WAKE, 1, 2, 0), top(O_WAKE, 1, 3, 1), top(O_WAKE, 1, 4, 0),
    runs(0, 3))
seeds["top-token"] = program(
    top(O_EX_CREATE, 0, COMPUTE), top(O_TOKEN, 1, 0),
    top(O_ATTACH, 1, 0, 0, [t(T_YIELD)]), top(O_TOKEN, 1, 0),
    top(O_TOKEN, 1, 1), runs(0, 2), top(O_TOKEN, 1, 1))
seeds["top-task-destroy"] = program(
    top(O_EX_CREATE, 0, COMPUTE), top(O_ATTACH, 1, 0, 0, [t(T_YIELD)]),
    top(O_TASK_DESTROY, 1, 3), runs(0, 2), top(O_TASK_DESTROY, 1, 3 | 0x10),
    top(O_ATTACH, 1, 0, 0, []), runs(0, 1))
seeds["top-sw-destroy"] = program(
    top(O_EX_CREATE, 0, COMPUTE), top(O_SW_DESTROY, 0),
    top(O_TASK_DESTROY, 3, 0), top(O_TASK_DESTROY, 7, 0), top(O_SW_DESTROY, 3))
seeds["top-bad"] = program(
    top(O_EX_CREATE, 0, RING4), *[top(O_BAD, i | (i << 3), 0) for i in range(8)])
seeds["top-foreign"] = program(
    top(O_EX_CREATE, 0, RING4), top(O_EX_CREATE, 1, COMPUTE),
    *[top(O_FOREIGN, (i % 2) | (i << 2)) for i in range(4)], top(O_FOREIGN, 2))
seeds["top-pipe"] = program(
    top(O_EX_CREATE, 0, RING4),
    top(O_ATTACH, 1, 0, 0, [t(T_IO, 2, 0), t(T_IO, 4, 0), t(T_IO, 3, 0)]),
    top(O_RUN, 0, 0, RUN_ZERO), top(O_PIPE_WRITE, 0, 0), top(O_PIPE_WRITE, 0, 0),
    top(O_PIPE_WRITE, 0, 1), runs(0, 3), top(O_PIPE_DRAIN))
seeds["top-misc"] = program(top(O_MISC), top(O_MISC, 1), top(O_MISC))

# ---- one per task operation ----
seeds["task-yield"] = with_task([t(T_YIELD)] * 3)
seeds["task-sleep"] = with_task([t(T_SLEEP, i) for i in range(4)], kind=COMPUTE)
seeds["task-sleep-ring"] = with_task([t(T_SLEEP, i) for i in range(4)])
seeds["task-park"] = with_task([t(T_PARK, i) for i in range(1, 4)])
seeds["task-wake"] = program(
    top(O_EX_CREATE, 0, COMPUTE),
    top(O_ATTACH, 1, 0, 0, [t(T_PARK, 0), t(T_PARK, 2)]),
    top(O_ATTACH, 2, 0, 1, [t(T_WAKE, 1, 0, 0), t(T_YIELD), t(T_WAKE, 1, 0, 1),
                            t(T_WAKE, 1, 2, 0)]),
    runs(0, 4))
# T_WAKE's c: 1 through the helper, 2 monad_async_task_wake_deferred
seeds["task-wake-deferred"] = program(
    top(O_EX_CREATE, 0, COMPUTE),
    top(O_ATTACH, 1, 0, 0, [t(T_PARK, 0), t(T_PARK, 0), t(T_PARK, 0),
                            t(T_PARK, 2), t(T_PARK, 0)]),
    top(O_ATTACH, 2, 0, 0, [t(T_WAKE, 1, 0, 2), t(T_WAKE, 1, 0, 2),  # kept, again
                            t(T_YIELD), t(T_WAKE, 1, 0, 2),
                            t(T_WAKE, 1, 0, 3),  # the helper claims it first
                            t(T_YIELD), t(T_WAKE, 1, 0, 2)]),
    runs(0, 5))
seeds["task-wake-deferred-cancel"] = program(
    top(O_EX_CREATE, 0, RING4), top(O_EX_CREATE, 1, COMPUTE),
    top(O_ATTACH, 1, 0, 0, [t(T_PARK, 0), t(T_PARK, 3)]),
    top(O_ATTACH, 5, 1, 0, [t(T_PARK, 0)]),  # on the other executor
    top(O_RUN, 1, 0, RUN_ZERO),
    top(O_ATTACH, 2, 0, 0, [t(T_WAKE, 1, 0, 2), t(T_CANCEL, 1, 0, 0),
                            t(T_WAKE, 5, 0, 2),  # another executor's: at once
                            t(T_WAKE, 2, 0, 2),  # itself: a permit
                            t(T_PARK, 0), t(T_WAKE, 1, 2, 2)]),  # stale
    runs(0, 4), runs(1, 2))
seeds["task-token"] = with_task([t(T_TOKEN, 0, 0, 0), t(T_TOKEN, 2, 0, 3),
                                 t(T_TOKEN, 0, 0, 1)])
seeds["task-attach-nested"] = with_task([
    t(T_ATTACH, 2, 0, 0, [t(T_ATTACH, 3, 1, 0, [t(T_YIELD)]), t(T_YIELD)]),
    t(T_ATTACH, 4, 1, 0x40, [t(T_YIELD)]),  # through the helper
    t(T_ATTACH, 5, 0, 0x80, [t(T_YIELD)], [t(T_YIELD)]),
    t(T_YIELD)])
seeds["task-cancel"] = program(
    top(O_EX_CREATE, 0, RING4),
    top(O_ATTACH, 1, 0, 0, [t(T_IO, 2, 0)]),
    top(O_ATTACH, 2, 0, 0, [t(T_PARK, 0)]),
    top(O_ATTACH, 3, 0, 2, [t(T_YIELD), t(T_CANCEL, 1, 0, 0), t(T_CANCEL, 2, 0, 1),
                            t(T_CANCEL, 0, 0, 2), t(T_YIELD)]),
    runs(0, 4))
seeds["task-run-nested"] = program(
    top(O_EX_CREATE, 0, COMPUTE), top(O_EX_CREATE, 1, RING4),
    top(O_ATTACH, 2, 1, 0, [t(T_YIELD), t(T_IO, 0, 0)]),
    top(O_ATTACH, 1, 0, 0, [t(T_RUN, 0, 5, 0), t(T_RUN, 1, 5, 1), t(T_RUN, 2, 0, 0)]),
    runs(0, 3))
seeds["task-ex-destroy"] = program(
    top(O_EX_CREATE, 0, COMPUTE), top(O_EX_CREATE, 1, RING4),
    top(O_ATTACH, 2, 1, 0, [t(T_PARK, 0)]), top(O_RUN, 1, 0, RUN_ZERO),
    top(O_ATTACH, 1, 0, 0, [t(T_EX_DESTROY, 1), t(T_EX_DESTROY, 0)]),
    runs(0, 2))
seeds["task-ex-wake"] = with_task([t(T_EX_WAKE, 0, 0, 0), t(T_EX_WAKE, 1, 0, 1)])
seeds["task-io-blocking"] = with_task(
    [t(T_IO, 0, 0), t(T_IO, 1, 0), t(T_IO, 5, 0), t(T_IO, 4, 0), t(T_IO, 5, 1),
     t(T_IO, 2, 2), t(T_IO2, 3, 0)])
seeds["task-io-initiate"] = with_task(
    [t(T_IO, 0, 3), t(T_IO, 1, 4), t(T_IO, 2, 5), t(T_IO2, 5, 6),
     t(T_REAP), t(T_TRY_REAP), t(T_REAP)])
seeds["task-io-wait-cancel"] = with_task(
    [t(T_IO, 2, 3), t(T_IO, 1, 4), t(T_IO_CANCEL, 3, 0), t(T_IO_WAIT, 3, 0),
     t(T_IO_WAIT, 0, 0), t(T_IO_WAIT, 1, 0x81), t(T_IO_CANCEL, 1, 0x82)])
seeds["task-io-guard"] = with_task(
    [t(T_IO, 2, 3), t(T_IO, 3, 4), t(T_IO, 1, 5), t(T_IO, 0, 6), t(T_IO, 0, 0),
     t(T_RETURN)], kind=RING16_GUARD2)
seeds["task-io-no-ring"] = with_task([t(T_IO, 0, 0), t(T_REAP), t(T_TRY_REAP)],
                                     kind=COMPUTE)
seeds["task-io-none-switcher"] = with_task(
    [t(T_IO, 0, 0), t(T_YIELD), t(T_PARK, 1), t(T_SLEEP, 0), t(T_REAP)], task=3)
seeds["task-bad"] = with_task([t(T_BAD, i) for i in range(7)]) + \
    top(O_ATTACH, 2, 0, 0, [t(T_BAD, i) for i in range(7, 10)]) + runs(0, 3)
seeds["task-return-inflight"] = with_task(
    [t(T_IO, 2, 3), t(T_IO, 4, 4), t(T_IO, 1, 5), t(T_RETURN), t(T_YIELD)])
seeds["task-prio"] = with_task([t(T_PRIO, 0), t(T_IO, 0, 0), t(T_PRIO, 2),
                                t(T_IO, 5, 0)])
seeds["task-pipe-write"] = program(
    top(O_EX_CREATE, 0, RING4),
    top(O_ATTACH, 1, 0, 0, [t(T_IO, 2, 0), t(T_IO, 4, 0)]),
    top(O_ATTACH, 2, 0, 0, [t(T_YIELD), t(T_PIPE_WRITE), t(T_PIPE_WRITE)]),
    runs(0, 4))
seeds["end-destroy-all"] = program(
    top(O_EX_CREATE, 0, RING4), top(O_EX_CREATE, 1, COMPUTE),
    top(O_EX_CREATE, 2, RING16_GUARD2),
    top(O_ATTACH, 1, 0, 0, [t(T_IO, 2, 3), t(T_REAP)]),
    top(O_ATTACH, 2, 1, 0, [t(T_PARK, 0)]),
    top(O_ATTACH, 4, 2, 0, [t(T_SLEEP, 3)]),
    top(O_ATTACH_REMOTE, 5, 0, 0, [t(T_YIELD)]),
    top(O_RUN, 0, 0, RUN_ZERO), top(O_RUN, 1, 0, RUN_ZERO),
    top(O_RUN, 2, 0, RUN_ZERO), final=7)

# ---- the work dispatcher ----
seeds["wd-life"] = program(
    top(O_DISPATCH, D_CREATE, 1, 1),  # idle 200 us, a ring of 4
    top(O_DISPATCH, D_SUBMIT, 2, 0, [t(T_YIELD), t(T_IO, 0, 0)]),
    top(O_DISPATCH, D_COUNTERS), top(O_DISPATCH, D_WAIT, 0, 0),
    top(O_DISPATCH, D_RUN), top(O_DISPATCH, D_RUN),
    top(O_DISPATCH, D_WAIT, 0, 0), top(O_DISPATCH, D_COUNTERS),
    top(O_DISPATCH, D_QUIT, 1), top(O_DISPATCH, D_SUBMIT, 0, 5, []),  # ESHUTDOWN
    top(O_DISPATCH, D_RUN), top(O_DISPATCH, D_QUIT, 0),
    top(O_DISPATCH, D_DESTROY), top(O_DISPATCH, D_EX_DESTROY))
seeds["wd-queued"] = program(
    top(O_DISPATCH, D_CREATE, 0x20, 0),  # no spin, compute-only
    top(O_DISPATCH, D_SUBMIT, 1, 1, [t(T_PARK, 0)]),
    top(O_DISPATCH, D_SUBMIT, 0x18, 2, []),  # a NULL task: EINVAL
    top(O_DISPATCH, D_SUBMIT, 0x80, 1, []),  # from the helper: EBUSY
    top(O_CANCEL, 1, 3, 0), top(O_WAKE, 1, 0, 0), top(O_TOKEN, 1, 0),
    top(O_DISPATCH, D_DESTROY),  # EBUSY
    top(O_DISPATCH, D_CANCEL_QUEUED), top(O_DISPATCH, D_COUNTERS),
    top(O_DISPATCH, D_FOREIGN, 0, 0), top(O_DISPATCH, D_FOREIGN, 0, 1),
    top(O_DISPATCH, D_WAIT, 0x20, 0), top(O_DISPATCH, D_QUIT, 0x30))
seeds["wd-inside"] = program(
    top(O_EX_CREATE, 0, COMPUTE),
    top(O_DISPATCH, D_CREATE, 0x10, 2),
    top(O_DISPATCH, D_SUBMIT, 0x80 | 1, 0,
        [t(T_BAD, 9), t(T_RUN, 1, 0, 0x80), t(T_RUN, 0, 5, 0), t(T_PARK, 0)]),
    top(O_ATTACH, 5, 0, 0, [t(T_RUN, 0, 0, 0x80), t(T_YIELD)]),
    top(O_DISPATCH, D_RUN), runs(0, 2), top(O_DISPATCH, D_EX_DESTROY),
    top(O_DISPATCH, D_DESTROY))

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus")
os.makedirs(out, exist_ok=True)
for name, data in sorted(seeds.items()):
    with open(os.path.join(out, "seed-" + name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
