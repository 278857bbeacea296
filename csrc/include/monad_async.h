/* monad-async: a priority-based task executor with io_uring I/O.
 *
 * The one header a C or C++ user includes. Link csrc/build/libmonad_async.a
 * and liburing (`pkg-config --libs liburing`).
 *
 *   monad_async/result.h    monad_async_result, success and failure
 *   monad_async/priority.h  the three priority levels
 *   monad_async/ticks.h     the CPU tick counter
 *   monad_async/context.h   context switchers (sjlj, asm, none)
 *   monad_async/task.h      tasks: create, attach, yield, sleep, cancel
 *   monad_async/executor.h  executors: create, run, wake, destroy
 *   monad_async/io.h        io_uring I/O from inside tasks
 *   monad_async/dispatcher.h  work dispatchers: a priority thread pool
 *   monad_async/dump.h      task dumps: what every task is doing now
 *   monad_async/trace.h     trace hooks around every slice (opt-in build)
 *
 * Every function returns monad_async_result; bad input gives an errno
 * value, never a crash. */
#ifndef MONAD_ASYNC_H
#define MONAD_ASYNC_H

#include "monad_async/config.h"
#include "monad_async/result.h"
#include "monad_async/priority.h"
#include "monad_async/ticks.h"
#include "monad_async/context.h"
#include "monad_async/task.h"
#include "monad_async/executor.h"
#include "monad_async/io.h"
#include "monad_async/dispatcher.h"
#include "monad_async/dump.h"
#include "monad_async/trace.h"

/* Sizes and offsets of the public structs, for bindings to check their
 * view of the layout (the Rust crate's layout test reads these). */
MONAD_ASYNC_BEGIN_EXTERN_C

/* Which layout figure monad_async_layout returns. */
enum monad_async_layout_item
{
    MONAD_ASYNC_LAYOUT_TASK_SIZE = 0,
    MONAD_ASYNC_LAYOUT_TASK_STATE_OFFSET,
    MONAD_ASYNC_LAYOUT_TASK_STATE_SIZE,
    MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_OFFSET,
    MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_SIZE,
    MONAD_ASYNC_LAYOUT_EXECUTOR_SIZE,
    MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_OFFSET,
    MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_SIZE,
    MONAD_ASYNC_LAYOUT_RESULT_SIZE,
    MONAD_ASYNC_LAYOUT_COUNT
};

/* `value` is the figure `item` names; EINVAL for an unknown item. */
MONAD_ASYNC_NODISCARD monad_async_result
monad_async_layout(enum monad_async_layout_item item);

MONAD_ASYNC_END_EXTERN_C

#endif
