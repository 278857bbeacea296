/* Internal: what the sanitizers and valgrind must be told about our
 * stacks and stack switches. Everything here compiles to nothing in a
 * plain build. */
#ifndef MONAD_ASYNC_SANITIZER_H
#define MONAD_ASYNC_SANITIZER_H

#include <stddef.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#ifndef __has_include
#define __has_include(x) 0
#endif

#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define MA_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
#define MA_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define MA_TSAN 1
#include <sanitizer/tsan_interface.h>
#else
#define MA_TSAN 0
#endif

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define MA_VALGRIND 1
#else
#define MA_VALGRIND 0
#endif

#endif
