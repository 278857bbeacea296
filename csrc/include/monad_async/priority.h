/* monad-async: the three priority levels used for CPU and for I/O. */
#ifndef MONAD_ASYNC_PRIORITY_H
#define MONAD_ASYNC_PRIORITY_H

#include "config.h"

MONAD_ASYNC_BEGIN_EXTERN_C

/* A priority level. Lower numbers run first: among runnable tasks an
 * executor always picks the highest level (high), and within one level
 * the task that became runnable first. */
typedef enum monad_async_priority
{
    monad_async_priority_high = 0,
    monad_async_priority_normal = 1,
    monad_async_priority_low = 2,
    /* The number of levels; not a valid priority. */
    monad_async_priority_max = 3
} monad_async_priority;

MONAD_ASYNC_END_EXTERN_C

#endif
