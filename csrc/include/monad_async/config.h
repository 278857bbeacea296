/* monad-async: compiler and language glue shared by every public header.
 *
 * The public headers are plain C11 (GNU extensions allowed) and also compile
 * as C++, so that C, C++ and bindgen all see the same layouts. */
#ifndef MONAD_ASYNC_CONFIG_H
#define MONAD_ASYNC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#include <atomic>
/* std::atomic<T> of a lock-free integer or pointer has the layout of T on
 * every ABI we support; the C side asserts the sizes. */
#define MONAD_ASYNC_ATOMIC(T) std::atomic<T>
#define MONAD_ASYNC_BEGIN_EXTERN_C extern "C" {
#define MONAD_ASYNC_END_EXTERN_C }
#else
#include <stdatomic.h>
#define MONAD_ASYNC_ATOMIC(T) _Atomic(T)
#define MONAD_ASYNC_BEGIN_EXTERN_C
#define MONAD_ASYNC_END_EXTERN_C
/* The spec's examples use nullptr; C only has it from C23 on. */
#if !defined(__STDC_VERSION__) || __STDC_VERSION__ < 202311L
#ifndef nullptr
#define nullptr ((void *)0)
#endif
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MONAD_ASYNC_NODISCARD __attribute__((warn_unused_result))
#else
#define MONAD_ASYNC_NODISCARD
#endif

#endif
