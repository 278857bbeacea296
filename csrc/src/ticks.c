/* The CPU tick counter and its calibration.
 *
 * Stamps are taken on every task state change, so a read must be a single
 * instruction: rdtsc on x86-64 (the invariant TSC), cntvct_el0 on aarch64.
 * Neither serialises the pipeline; a stamp may drift by a few cycles
 * against neighbouring instructions, which is noise at our resolution. */
#include "ticks_impl.h"

#include <time.h>

static _Atomic uint64_t ma_ticks_per_second_cache;

static uint64_t ma_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One (ticks, ns) pair: the tick read bracketed by two clock reads,
 * retried until the bracket is tight, so that a preemption between the
 * reads cannot skew the pair. */
static void ma_sample(uint64_t *ticks, uint64_t *ns)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 16; i++) {
        uint64_t const a = ma_monotonic_ns();
        uint64_t const t = ma_ticks_read_ordered();
        uint64_t const b = ma_monotonic_ns();
        if (b - a < best) {
            best = b - a;
            *ticks = t;
            *ns = a + (b - a) / 2;
        }
        if (best < 200) {
            break;
        }
    }
}

/* Measures the counter against CLOCK_MONOTONIC over ~20 ms of spinning:
 * with tight brackets at both ends that is accurate to a few parts per
 * million, and short enough that nobody waits on it. Racing first callers
 * each calibrate; the results agree. */
static uint64_t ma_calibrate(void)
{
#if defined(__aarch64__)
    uint64_t freq;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(freq));
    if (freq != 0) {
        return freq;
    }
#endif
    uint64_t t0 = 0, ns0 = 0, t1 = 0, ns1 = 0;
    ma_sample(&t0, &ns0);
    do {
        ma_sample(&t1, &ns1);
    }
    while (ns1 - ns0 < 20000000ull);
    unsigned __int128 const tps =
        (unsigned __int128)(t1 - t0) * 1000000000ull / (ns1 - ns0);
    return tps ? (uint64_t)tps : 1;
}

uint64_t ma_ticks_per_second(void)
{
    uint64_t tps =
        atomic_load_explicit(&ma_ticks_per_second_cache, memory_order_relaxed);
    if (__builtin_expect(tps == 0, 0)) {
        tps = ma_calibrate();
        atomic_store_explicit(
            &ma_ticks_per_second_cache, tps, memory_order_relaxed);
    }
    return tps;
}

uint64_t ma_ns_to_ticks(uint64_t ns, uint64_t tps)
{
    unsigned __int128 const t = (unsigned __int128)ns * tps / 1000000000ull;
    return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

uint64_t ma_ticks_to_ns(uint64_t ticks, uint64_t tps)
{
    unsigned __int128 const ns =
        (unsigned __int128)ticks * 1000000000ull / tps;
    return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

monad_async_result monad_async_ticks_now(void)
{
    /* Ordered: callers compare readings across threads. */
    return monad_async_make_success((intptr_t)ma_ticks_read_ordered());
}

monad_async_result monad_async_ticks_per_second(void)
{
    return monad_async_make_success((intptr_t)ma_ticks_per_second());
}
