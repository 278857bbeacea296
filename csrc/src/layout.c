/* Layout figures of the public structs, for bindings to check against. */
#include <monad_async.h>

#include <errno.h>

monad_async_result monad_async_layout(enum monad_async_layout_item item)
{
    size_t v;
    switch (item) {
    case MONAD_ASYNC_LAYOUT_TASK_SIZE:
        v = sizeof(struct monad_async_task_head);
        break;
    case MONAD_ASYNC_LAYOUT_TASK_STATE_OFFSET:
        v = offsetof(struct monad_async_task_head, state);
        break;
    case MONAD_ASYNC_LAYOUT_TASK_STATE_SIZE:
        v = sizeof(((struct monad_async_task_head *)0)->state);
        break;
    case MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_OFFSET:
        v = offsetof(struct monad_async_task_head, current_executor);
        break;
    case MONAD_ASYNC_LAYOUT_TASK_CURRENT_EXECUTOR_SIZE:
        v = sizeof(((struct monad_async_task_head *)0)->current_executor);
        break;
    case MONAD_ASYNC_LAYOUT_EXECUTOR_SIZE:
        v = sizeof(struct monad_async_executor_head);
        break;
    case MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_OFFSET:
        v = offsetof(struct monad_async_executor_head, current_task);
        break;
    case MONAD_ASYNC_LAYOUT_EXECUTOR_CURRENT_TASK_SIZE:
        v = sizeof(((struct monad_async_executor_head *)0)->current_task);
        break;
    case MONAD_ASYNC_LAYOUT_RESULT_SIZE:
        v = sizeof(monad_async_result);
        break;
    default:
        return monad_async_make_failure(EINVAL);
    }
    return monad_async_make_success((intptr_t)v);
}
