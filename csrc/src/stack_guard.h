/* Internal: a task that overflows its stack says so.
 *
 * A task's stack has a guard page below it (stack.c). Without help, a
 * task running into it dies as a bare "Segmentation fault". The first
 * executor created in the process installs a SIGSEGV and SIGBUS handler
 * (once), and every thread that creates an executor gets an alternate
 * signal stack for it to run on (the overflowed stack has no room left):
 * a fault inside the guard page of the task running on the faulting
 * thread prints which task overflowed, how big its stack is and how to
 * raise it, then aborts. Any other fault goes on to whichever handler was
 * installed before (Rust's stack-overflow handler, a sanitizer's, a
 * crash reporter's, or the default action), as if ours were not there.
 *
 * Why at executor creation: tasks run only inside monad_async_executor_run,
 * and only on the thread that created that executor, so these are exactly
 * the threads that need an alternate stack; and it keeps both system calls
 * out of the hot path (attach, run and switch make none, see
 * tests/hot_path.c). */
#ifndef MONAD_ASYNC_STACK_GUARD_H
#define MONAD_ASYNC_STACK_GUARD_H

struct ma_context;

/* Returns the context running on this thread right now (that of the
 * running task of the innermost executor running here), NULL outside
 * tasks. Called from the signal handler: must be async-signal-safe. The
 * executor layer provides it (this layer knows contexts, not executors),
 * so that no switch pays for keeping a thread-local up to date. */
typedef struct ma_context const *(*ma_stack_guard_running_fn)(void);

/* On the thread creating an executor: installs the process-wide handler
 * (the first time in the process, with `running` to find the running
 * context) and gives this thread an alternate signal stack if it has
 * none (it keeps one it already has: the user's, Rust's or a
 * sanitizer's). Ours is unmapped when the thread exits. Failures are not
 * reported: without the handler an overflow is a plain SIGSEGV, as it
 * always was. */
void ma_stack_guard_thread_init(ma_stack_guard_running_fn running);

#endif
