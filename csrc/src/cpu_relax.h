/* Internal: the pause a busy-wait loop makes between two reads of what
 * it waits for. It tells the core it is spinning (x86 PAUSE, Arm YIELD),
 * which saves power and leaves the sibling hyperthread its share. */
#ifndef MONAD_ASYNC_CPU_RELAX_H
#define MONAD_ASYNC_CPU_RELAX_H

static inline void ma_cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

#endif
