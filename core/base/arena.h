/* arena: bump allocation in chunks, freed all at once.
 *
 * For many small objects that die together (a loaded document's nodes and
 * strings): an allocation is a pointer bump in the current chunk, and
 * er_arena_fini() is one free() per chunk.  Nothing is freed one by one. */
#ifndef ER_ARENA_H
#define ER_ARENA_H

#include <stddef.h>

/* Chunks are this size; an allocation larger than a quarter of it gets a
 * chunk of its own, so that a big string does not waste the free space of
 * the current chunk (it keeps serving the small ones). */
#define ER_ARENA_CHUNK (64 * 1024)

struct er_arena_chunk;

/* Embedded in its owner.  All zero (er_arena_init(), or a zeroed owner) is
 * an empty arena. */
struct er_arena {
        struct er_arena_chunk *head; /* the chunk we bump in; big ones sit behind it */
};

void er_arena_init(struct er_arena *a);

/* `size` bytes aligned to `align`, a power of two no larger than
 * alignof(max_align_t); uninitialised, valid until er_arena_fini().
 * NULL when out of memory (the arena is left as it was). */
void *er_arena_alloc(struct er_arena *a, size_t size, size_t align);

/* A NUL-terminated copy of s[0..len) in the arena (s may hold NULs: they
 * are copied).  NULL when out of memory. */
char *er_arena_strndup(struct er_arena *a, const char *s, size_t len);

/* Frees every allocation at once and leaves an empty arena, usable again.
 * Accepts NULL and an arena that never allocated. */
void er_arena_fini(struct er_arena *a);

#endif
