/* The C benchmarks' shared helpers: a failing-result check, a monotonic
 * clock in ns, the median of a run set, MONAD_ASYNC_BENCH_SCALE, and the
 * set of context switchers they compare. */
#ifndef MONAD_ASYNC_BENCH_COMMON_H
#define MONAD_ASYNC_BENCH_COMMON_H

#include <monad_async.h>

#include <stdbool.h>
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

/* A switcher and the name its rows print. */
struct bench_switcher
{
    char const *name;
    monad_async_context_switcher sw;
};

enum { BENCH_SWITCHERS_MAX = 4 };

/* Creates the switchers the benches compare into sws (room for
 * BENCH_SWITCHERS_MAX), in the order the rows print: asm, asm without FP
 * control, sjlj, and with `with_none` the none switcher (no stack: it
 * cannot suspend, so the I/O bench leaves it out). Returns how many. */
static inline int make_switchers(struct bench_switcher *sws, bool with_none)
{
    struct monad_async_context_switcher_attr nofp;
    memset(&nofp, 0, sizeof(nofp));
    nofp.flags = MONAD_ASYNC_CONTEXT_SWITCHER_FLAG_NO_FP_CONTROL;
    int n = 0;
    sws[n].name = "asm";
    CHECK(monad_async_context_switcher_asm_create(&sws[n++].sw));
    sws[n].name = "asm-nofp";
    CHECK(monad_async_context_switcher_asm_create_with_attr(&sws[n++].sw, &nofp));
    sws[n].name = "sjlj";
    CHECK(monad_async_context_switcher_sjlj_create(&sws[n++].sw));
    if (with_none) {
        sws[n].name = "none";
        CHECK(monad_async_context_switcher_none_create(&sws[n++].sw));
    }
    return n;
}

static inline void destroy_switchers(struct bench_switcher *sws, int n)
{
    for (int i = 0; i < n; i++) {
        CHECK(monad_async_context_switcher_destroy(sws[i].sw));
    }
}

#endif
