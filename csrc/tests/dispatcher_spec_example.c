/* The spec's third example (/work/shared/spec/proposed-executor.md, "Work
 * dispatching to a thread pool"), compiled as written, run with 1,024
 * tasks on 2 and on 4 executor threads: every task runs exactly once.
 * What was added, and nothing else:
 *   - the includes, CHECK_RESULT (from test_common.h), main();
 *   - a body for the tasks (counting each run, per task) and their
 *     creation, which the example leaves out (its array is uninitialised);
 *   - create_executors_on_threads(), the thread launcher, which returns
 *     once every thread has created its executor, and the joins and task
 *     destruction after the example's cleanup;
 *   - in worker_thread: the `r` and `ex` declarations the example leaves
 *     out, and a pthread adapter around it;
 *   - SIZE_MAX for the example's MAX_SIZE_T.
 * Header contract: dispatcher.h (submit, wait, quit, destroy; the
 * executor's run returning a negative value once told to quit). */
#include "test_common.h"

#include <pthread.h>

#define NTASKS 1024
#define MAX_THREADS 4

static _Atomic uint32_t runs[NTASKS];
static _Atomic uint32_t wrong_thread;
static pthread_t threads[MAX_THREADS];
static size_t nthreads;
static _Atomic size_t executors_created;

static monad_async_result count_run(monad_async_task task)
{
  size_t const i = (size_t)(uintptr_t)task->user_ptr;
  atomic_fetch_add(&runs[i], 1);
  /* Work runs on the pool's threads, never on the submitting one. */
  if (monad_async_executor_current().value == 0) {
    atomic_fetch_add(&wrong_thread, 1);
  }
  return monad_async_make_success((intptr_t)i);
}

static void worker_thread(monad_async_work_dispatcher wd)
{
  monad_async_result r;  /* added */
  monad_async_work_dispatcher_executor ex;  /* added */
  struct monad_async_work_dispatcher_executor_attr ex_attr;
  memset(&ex_attr, 0, sizeof(ex_attr));
  // Don't create an io_uring for this executor
  // This makes it into a pure-compute executor incapable of doing i/o
  ex_attr.executor.io_uring_ring.entries = 0;
  r = monad_async_work_dispatcher_executor_create(&ex, wd, &ex_attr);
  CHECK_RESULT(r);
  atomic_fetch_add(&executors_created, 1);  /* added */

  // Loop executing work until told to quit
  for(;;)
  {
    r = monad_async_work_dispatcher_executor_run(ex);
    CHECK_RESULT(r);
    if(r.value < 0)
    {
      break;
    }
  }

  // Cleanup
  r = monad_async_work_dispatcher_executor_destroy(ex);
  CHECK_RESULT(r);
}

/* added: the thread launcher */
static void *worker_main(void *arg)
{
  worker_thread((monad_async_work_dispatcher)arg);
  return NULL;
}

static void create_executors_on_threads(monad_async_work_dispatcher wd)
{
  atomic_store(&executors_created, 0);
  for (size_t i = 0; i < nthreads; i++) {
    CHECK_EQ(pthread_create(&threads[i], NULL, worker_main, wd), 0);
  }
  while (atomic_load(&executors_created) < nthreads) {
    test_sleep_ns(100000);
  }
}

static void spec_example(size_t threads_wanted)
{
  nthreads = threads_wanted;
  /* added: the tasks, three switchers and three priorities mixed */
  monad_async_context_switcher sw[3] = {
      test_make_switcher(TEST_SWITCHER_ASM),
      test_make_switcher(TEST_SWITCHER_SJLJ),
      test_make_switcher(TEST_SWITCHER_NONE)};
  static monad_async_task made[NTASKS];
  for (size_t i = 0; i < NTASKS; i++) {
    made[i] = test_make_task(sw[i % 3], 16384);
    made[i]->priority.cpu = (monad_async_priority)((i / 3) % 3);
    made[i]->user_code = count_run;
    made[i]->user_ptr = (void *)(uintptr_t)i;
    atomic_store(&runs[i], 0);
  }
  atomic_store(&wrong_thread, 0);

{
monad_async_result r;
monad_async_task tasks[1024];  // tasks
memcpy(tasks, made, sizeof(tasks));  /* added */

// Create a work dispatcher
monad_async_work_dispatcher wd;
struct monad_async_work_dispatcher_attr wd_attr;
memset(&wd_attr, 0, sizeof(wd_attr));
r = monad_async_work_dispatcher_create(&wd, &wd_attr);  // expensive
CHECK_RESULT(r);

// Create executors on thread to execute work
// (see below)
create_executors_on_threads(wd);

// Submit tasks to be executed. Each task's CPU priority will
// determine which get executed first.
r = monad_async_work_dispatcher_submit(wd, tasks, 1024);
CHECK_RESULT(r);

// Wait until all tasks have been dispatched and executed
r = monad_async_work_dispatcher_wait(wd, 0, 0, nullptr);
CHECK_RESULT(r);

/* added: every task ran once and is reusable, per the counters too */
for (size_t i = 0; i < NTASKS; i++) {
  CHECK_MSG(atomic_load(&runs[i]) == 1, "task %zu ran %u times on %zu threads",
            i, (unsigned)atomic_load(&runs[i]), nthreads);
  CHECK_EQ(test_task_state(tasks[i]), MONAD_ASYNC_TASK_STATE_EXITED);
  CHECK_EQ(tasks[i]->result.value, (intptr_t)i);
}
CHECK_EQ(atomic_load(&wrong_thread), 0);
struct monad_async_work_dispatcher_counters c;
CHECK_RESULT(monad_async_work_dispatcher_read_counters(wd, &c));
CHECK_EQ(c.submitted, NTASKS);
CHECK_EQ(c.dispatched, NTASKS);
CHECK_EQ(c.executed, NTASKS);
CHECK_EQ(c.queued, 0);
CHECK_EQ(c.executors, nthreads);

// Tell all executors to quit
r = monad_async_work_dispatcher_quit(wd, SIZE_MAX, nullptr);  /* SIZE_MAX for MAX_SIZE_T */
CHECK_RESULT(r);

// Cleanup
r = monad_async_work_dispatcher_destroy(wd);
CHECK_RESULT(r);
}

  /* added: join the threads, free the tasks */
  for (size_t i = 0; i < nthreads; i++) {
    CHECK_EQ(pthread_join(threads[i], NULL), 0);
  }
  for (size_t i = 0; i < NTASKS; i++) {
    CHECK_RESULT(monad_async_task_destroy(made[i]));
  }
  for (int i = 0; i < 3; i++) {
    CHECK_RESULT(monad_async_context_switcher_destroy(sw[i]));
  }
  printf("spec example: %d tasks on %zu threads, each run once\n", NTASKS,
         nthreads);
}

int main(void)
{
  test_watchdog(120, "dispatcher_spec_example");
  spec_example(2);
  spec_example(4);
  printf("dispatcher_spec_example: ok\n");
  return 0;
}
