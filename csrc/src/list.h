/* Internal: intrusive doubly linked FIFO lists, for the executor's ready
 * queues and timer list. Owner thread only; every operation is O(1). */
#ifndef MONAD_ASYNC_LIST_H
#define MONAD_ASYNC_LIST_H

#include <stddef.h>

struct ma_link
{
    struct ma_link *next;
    struct ma_link *prev;
};

struct ma_list
{
    struct ma_link *head;
    struct ma_link *tail;
};

#define ma_container_of(ptr, type, member)                                     \
    ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void ma_list_push_back(struct ma_list *l, struct ma_link *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL) {
        l->tail->next = n;
    }
    else {
        l->head = n;
    }
    l->tail = n;
}

static inline void ma_list_push_front(struct ma_list *l, struct ma_link *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head != NULL) {
        l->head->prev = n;
    }
    else {
        l->tail = n;
    }
    l->head = n;
}

/* Inserts n before `before` (which is in l). */
static inline void
ma_list_insert_before(struct ma_list *l, struct ma_link *before, struct ma_link *n)
{
    n->next = before;
    n->prev = before->prev;
    if (before->prev != NULL) {
        before->prev->next = n;
    }
    else {
        l->head = n;
    }
    before->prev = n;
}

/* Inserts n after `after` (which is in l). */
static inline void
ma_list_insert_after(struct ma_list *l, struct ma_link *after, struct ma_link *n)
{
    n->prev = after;
    n->next = after->next;
    if (after->next != NULL) {
        after->next->prev = n;
    }
    else {
        l->tail = n;
    }
    after->next = n;
}

static inline void ma_list_remove(struct ma_list *l, struct ma_link *n)
{
    if (n->prev != NULL) {
        n->prev->next = n->next;
    }
    else {
        l->head = n->next;
    }
    if (n->next != NULL) {
        n->next->prev = n->prev;
    }
    else {
        l->tail = n->prev;
    }
    n->next = n->prev = NULL;
}

static inline struct ma_link *ma_list_pop_front(struct ma_list *l)
{
    struct ma_link *const n = l->head;
    if (n != NULL) {
        l->head = n->next;
        if (l->head != NULL) {
            l->head->prev = NULL;
        }
        else {
            l->tail = NULL;
        }
        n->next = NULL;
    }
    return n;
}

/* A circular list through a sentinel: no end to test, so inserting and
 * removing are four and two stores, branch-free. For the list of every
 * attached task, which attach and exit both touch. */
static inline void ma_cycle_init(struct ma_link *sentinel)
{
    sentinel->next = sentinel->prev = sentinel;
}

static inline void ma_cycle_push_back(struct ma_link *sentinel, struct ma_link *n)
{
    struct ma_link *const last = sentinel->prev;
    n->next = sentinel;
    n->prev = last;
    last->next = n;
    sentinel->prev = n;
}

static inline void ma_cycle_remove(struct ma_link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

#endif
