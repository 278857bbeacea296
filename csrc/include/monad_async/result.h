/* monad-async: the result type every public function returns. */
#ifndef MONAD_ASYNC_RESULT_H
#define MONAD_ASYNC_RESULT_H

#include "config.h"

MONAD_ASYNC_BEGIN_EXTERN_C

/* The outcome of every public function.
 *
 * `error` is 0 on success, in which case `value` carries the function's
 * return value (a count, a tick total, ...). Otherwise `error` is a
 * positive errno value (EINVAL, EBUSY, ECANCELED, ETIME, ...) and `value`
 * is 0. Plain data: copy it, compare it, pass it across FFI by value. */
typedef struct monad_async_result
{
    intptr_t value;
    int error;
} monad_async_result;

/* A successful result carrying `value`. */
static inline monad_async_result monad_async_make_success(intptr_t value)
{
    monad_async_result r;
    r.value = value;
    r.error = 0;
    return r;
}

/* A failed result carrying the errno value `error` (must be > 0). */
static inline monad_async_result monad_async_make_failure(int error)
{
    monad_async_result r;
    r.value = 0;
    r.error = error;
    return r;
}

/* Non-zero when `r` is a failure. */
static inline int monad_async_is_failure(monad_async_result r)
{
    return r.error != 0;
}

MONAD_ASYNC_END_EXTERN_C

#endif
