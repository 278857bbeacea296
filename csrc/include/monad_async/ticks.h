/* monad-async: the CPU tick counter every time stamp uses. */
#ifndef MONAD_ASYNC_TICKS_H
#define MONAD_ASYNC_TICKS_H

#include "result.h"

MONAD_ASYNC_BEGIN_EXTERN_C

/* A count of CPU ticks: the invariant TSC on x86-64 (rdtsc), the virtual
 * counter on aarch64 (cntvct_el0). Monotonic on one machine, cheap to read
 * (tens of cycles, no system call). */
typedef uint64_t monad_async_cpu_ticks_count_t;

/* Reads the tick counter now: `value` is the tick count (never fails). */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_ticks_now(void);

/* The tick counter's frequency: `value` is ticks per second. The first call
 * calibrates against CLOCK_MONOTONIC over a few milliseconds (never a
 * whole second; on aarch64 the frequency register is read instead); later
 * calls return the cached figure. Thread-safe. */
MONAD_ASYNC_NODISCARD monad_async_result monad_async_ticks_per_second(void);

MONAD_ASYNC_END_EXTERN_C

#endif
