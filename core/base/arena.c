/* arena: bump allocation in chunks (base/arena.h). */
#include "base/arena.h"

#include <assert.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct er_arena_chunk {
        struct er_arena_chunk *next;
        size_t size, used;
        max_align_t data[]; /* `size` bytes */
};

void er_arena_init(struct er_arena *a)
{
        a->head = NULL;
}

static struct er_arena_chunk *chunk_new(size_t size)
{
        struct er_arena_chunk *c;

        if (size > SIZE_MAX - sizeof(*c))
                return NULL;
        c = malloc(sizeof(*c) + size);
        if (!c)
                return NULL;
        c->next = NULL;
        c->size = size;
        c->used = 0;
        return c;
}

/* A big allocation gets a chunk of its own, behind the current one, so
 * that the current one's free space is not lost. */
static void *alloc_big(struct er_arena *a, size_t size)
{
        struct er_arena_chunk *c = chunk_new(size);

        if (!c)
                return NULL;
        c->used = size;
        if (a->head) {
                c->next = a->head->next;
                a->head->next = c;
        } else {
                a->head = c;
        }
        return c->data;
}

void *er_arena_alloc(struct er_arena *a, size_t size, size_t align)
{
        struct er_arena_chunk *c = a->head;
        size_t off;

        assert(align && !(align & (align - 1)) && align <= alignof(max_align_t));
        if (c) {
                off = (c->used + align - 1) & ~(align - 1);
                if (off <= c->size && size <= c->size - off) {
                        c->used = off + size;
                        return (char *)c->data + off;
                }
        }
        if (size > ER_ARENA_CHUNK / 4)
                return alloc_big(a, size);
        c = chunk_new(ER_ARENA_CHUNK);
        if (!c)
                return NULL;
        c->next = a->head;
        a->head = c;
        c->used = size;
        return c->data;
}

char *er_arena_strndup(struct er_arena *a, const char *s, size_t len)
{
        char *d;

        if (len == SIZE_MAX)
                return NULL;
        d = er_arena_alloc(a, len + 1, 1);
        if (!d)
                return NULL;
        memcpy(d, s, len);
        d[len] = '\0';
        return d;
}

void er_arena_fini(struct er_arena *a)
{
        struct er_arena_chunk *c, *next;

        if (!a)
                return;
        for (c = a->head; c; c = next) {
                next = c->next;
                free(c);
        }
        a->head = NULL;
}
