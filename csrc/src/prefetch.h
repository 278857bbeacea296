/* Internal: prefetches on the way to the next slice: the run loop's pop
 * (run.c) and the hand-off from task to task (handoff.c).
 *
 * With many tasks (a server's thousand connections) each task's struct
 * and the top of its stack have left the cache by the time it runs
 * again. Without help the misses come one after the other: the task's
 * hot lines, then (through the saved stack pointer) its saved registers,
 * then each frame the task returns through. Asking for them together,
 * and for the next ready task's hot lines one slice ahead, overlaps the
 * misses. Prefetches never fault, so a stale address costs nothing but
 * the instruction.
 *
 * always_inline: at -O2 GCC 12 drops the calls to these helpers whole
 * (nothing but prefetches: no effect it must keep), so the Makefile's
 * build had no prefetch at all; -O3 (cargo's release build) happened to
 * inline them first. Inlined, they survive at every level. */
#ifndef MONAD_ASYNC_PREFETCH_H
#define MONAD_ASYNC_PREFETCH_H

#include "executor_impl.h"

/* Attached tasks beyond which a slice's start prefetches: some 10-12 lines
 * a task (four of its struct, the top of its stack) times 32 is a
 * 32 KiB L1. Below it the prefetches would fetch what is there and cost
 * a slice some ten instructions (csrc/bench/callgrind: yield 221 -> 229);
 * the test costs two or three. */
#define MA_PREFETCH_MIN_TASKS 32

/* Lines of a suspended task's stack fetched from its saved stack
 * pointer up: the switch frame and the frames it returns through (for a
 * blocking I/O call, the operation's status lives there too). */
#define MA_PREFETCH_STACK_LINES 4

/* The hot lines of a task (task_impl.h: the first four). */
static inline __attribute__((always_inline)) void
ma_prefetch_task(struct ma_task const *t)
{
    char const *const p = (char const *)t;
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
    __builtin_prefetch(p + 128);
    __builtin_prefetch(p + 192);
}

/* `t` was just taken off its ready queue and `next` (NULL: none) is now
 * first there: ask for t's stack top, which the switch is about to read,
 * and for next's hot lines, read a slice from now. t's own lines were
 * asked for when it became first. */
static inline __attribute__((always_inline)) void
ma_prefetch_slice(struct ma_task const *t, struct ma_link const *next)
{
    char const *const sp = (char const *)t->ctx.task_sp;
    /* NULL before the task's first slice (nothing saved there yet), and
     * arithmetic on a null pointer is undefined even for a prefetch. */
    if (sp != NULL) {
        for (int i = 0; i < MA_PREFETCH_STACK_LINES; i++) {
            __builtin_prefetch(sp + 64 * i);
        }
    }
    if (next != NULL) {
        ma_prefetch_task(ma_container_of(next, struct ma_task, link));
    }
}

/* ma_prefetch_slice where it pays: with more than MA_PREFETCH_MIN_TASKS
 * attached. `t` was just taken off `level`, whose first task now runs
 * next (read only past the gate, so that few tasks pay the test alone).
 * Both ways to the next slice call this, the run loop's pop (run.c) and
 * the hand-off (handoff.c). */
static inline __attribute__((always_inline)) void
ma_prefetch_turn(struct ma_executor const *ex, struct ma_task const *t,
                 struct ma_list const *level)
{
    if (ex->head.tasks_attached > MA_PREFETCH_MIN_TASKS) {
        ma_prefetch_slice(t, level->head);
    }
}

#endif
