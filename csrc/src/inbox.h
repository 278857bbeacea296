/* Internal: the executor's multi-producer, single-consumer inbox.
 *
 * Dmitry Vyukov's intrusive MPSC queue: a push is one atomic exchange and
 * one store, wait-free for producers; only the owning executor pops. A
 * producer preempted between its two steps leaves the queue briefly
 * unpoppable past its node (pop returns NULL though the queue is not
 * empty); ma_inbox_is_empty still reports it non-empty, so the consumer
 * never sleeps on it and the node is taken on a later pass.
 *
 * Push and is_empty are sequentially consistent: together with the
 * sleeping flag (see wait.c) that is what guarantees no lost wake-up. */
#ifndef MONAD_ASYNC_INBOX_H
#define MONAD_ASYNC_INBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ma_inbox_node
{
    _Atomic(struct ma_inbox_node *) next;
    /* What the message is, for a consumer that takes several kinds
     * through one inbox (set once, when the node is made). */
    uint32_t kind;
};

struct ma_inbox
{
    /* Producers' end, written by other threads: its own cache line. */
    _Alignas(64) _Atomic(struct ma_inbox_node *) head;
    _Alignas(64) struct ma_inbox_node *tail; /* consumer's end */
    struct ma_inbox_node stub;
};

static inline void ma_inbox_init(struct ma_inbox *q)
{
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->head, &q->stub);
    q->tail = &q->stub;
}

/* Pushes the chain first..last, already linked through `next` (last's
 * `next` NULL), with one exchange: its nodes stay together and in order. */
static inline void ma_inbox_push_chain(struct ma_inbox *q,
                                       struct ma_inbox_node *first,
                                       struct ma_inbox_node *last)
{
    struct ma_inbox_node *const prev = atomic_exchange(&q->head, last);
    atomic_store_explicit(&prev->next, first, memory_order_release);
}

static inline void ma_inbox_push(struct ma_inbox *q, struct ma_inbox_node *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    ma_inbox_push_chain(q, n, n);
}

/* Consumer only. Cheap enough for every pass of the run loop. */
static inline bool ma_inbox_is_empty(struct ma_inbox *q)
{
    return q->tail == &q->stub && atomic_load(&q->head) == &q->stub;
}

/* Consumer only. NULL when empty or when a push is half done. */
static inline struct ma_inbox_node *ma_inbox_pop(struct ma_inbox *q)
{
    struct ma_inbox_node *tail = q->tail;
    struct ma_inbox_node *next =
        atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (next == NULL) {
            return NULL;
        }
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&q->head, memory_order_acquire)) {
        return NULL; /* a producer is between its two steps */
    }
    ma_inbox_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

#endif
