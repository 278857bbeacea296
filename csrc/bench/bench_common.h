/* The C benchmarks' shared helpers: a failing-result check, a monotonic
 * clock in ns, the median of a run set, and MONAD_ASYNC_BENCH_SCALE. */
#ifndef MONAD_ASYNC_BENCH_COMMON_H
#define MONAD_ASYNC_BENCH_COMMON_H

#include <monad_async.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(expr)                                                            \
    do {                                                                       \
        monad_async_result const r_ = (expr);                                  \
        if (r_.error != 0) {                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,      \
                    strerror(r_.error));                                       \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int cmp_double(void const *a, void const *b)
{
    double const x = *(double const *)a, y = *(double const *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place. */
static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return v[n / 2];
}

/* n scaled by MONAD_ASYNC_BENCH_SCALE (CI runs the benches at 0.01),
 * never below 1. */
static inline unsigned long scale(unsigned long n)
{
    char const *s = getenv("MONAD_ASYNC_BENCH_SCALE");
    double const f = s ? atof(s) : 1.0;
    unsigned long const m = (unsigned long)((double)n * (f > 0 ? f : 1.0));
    return m ? m : 1;
}

#endif
