/* Internal: inline tick reads and conversions. */
#ifndef MONAD_ASYNC_TICKS_IMPL_H
#define MONAD_ASYNC_TICKS_IMPL_H

#include <monad_async/ticks.h>

#include <stdatomic.h>

static inline uint64_t ma_ticks_read(void)
{
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

/* A read that waits for every earlier instruction, loads included: use
 * it where a stamp is compared with one taken on another thread after
 * seeing that thread's store (remote attach, draining the inbox). */
static inline uint64_t ma_ticks_read_ordered(void)
{
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(v)::"memory");
    return v;
#else
    return ma_ticks_read();
#endif
}

/* Cached after the first call. */
uint64_t ma_ticks_per_second(void);
/* Saturating conversions. */
uint64_t ma_ns_to_ticks(uint64_t ns, uint64_t tps);
uint64_t ma_ticks_to_ns(uint64_t ticks, uint64_t tps);

#endif
