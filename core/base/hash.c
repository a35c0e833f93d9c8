/* hash: SipHash-1-3 and an open-addressing table (base/hash.h). */
#include "base/hash.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- SipHash-1-3 ---------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
        do {                                                                                       \
                v0 += v1;                                                                          \
                v1 = ROTL(v1, 13);                                                                 \
                v1 ^= v0;                                                                          \
                v0 = ROTL(v0, 32);                                                                 \
                v2 += v3;                                                                          \
                v3 = ROTL(v3, 16);                                                                 \
                v3 ^= v2;                                                                          \
                v0 += v3;                                                                          \
                v3 = ROTL(v3, 21);                                                                 \
                v3 ^= v0;                                                                          \
                v2 += v1;                                                                          \
                v1 = ROTL(v1, 17);                                                                 \
                v1 ^= v2;                                                                          \
                v2 = ROTL(v2, 32);                                                                 \
        } while (0)

uint64_t er_hash_siphash13(const struct er_hash_key *k, const void *s, size_t len)
{
        const unsigned char *p = s, *end = p + (len & ~(size_t)7);
        uint64_t v0 = k->k0 ^ 0x736f6d6570736575ULL, v1 = k->k1 ^ 0x646f72616e646f6dULL;
        uint64_t v2 = k->k0 ^ 0x6c7967656e657261ULL, v3 = k->k1 ^ 0x7465646279746573ULL;
        uint64_t b = (uint64_t)len << 56, m;

        for (; p != end; p += 8) {
                m = 0;
                for (int i = 7; i >= 0; i--)
                        m = m << 8 | p[i];
                v3 ^= m;
                SIPROUND;
                v0 ^= m;
        }
        for (int i = (int)(len & 7) - 1; i >= 0; i--)
                b |= (uint64_t)p[i] << (8 * i);
        v3 ^= b;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

void er_hash_key_init(struct er_hash_key *k)
{
        struct timespec ts;

        if (getrandom(k, sizeof(*k), GRND_NONBLOCK) == (ssize_t)sizeof(*k))
                return;
        /* No entropy yet (early boot) or no getrandom: ASLR and the clock
         * still make collisions hard to plan in advance. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k->k0 = (uint64_t)(uintptr_t)k * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_nsec;
        k->k1 = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ULL ^ (uint64_t)getpid();
}

/* ---- the table ------------------------------------------------------------ */

void er_hash_init(struct er_hash_table *t)
{
        memset(t, 0, sizeof(*t));
}

size_t er_hash_find(const struct er_hash_table *t, uint64_t hash, const char *s, size_t len,
                    er_hash_key_fn *key, const void *ctx, size_t *slot)
{
        size_t i = (size_t)hash & t->mask;

        if (!t->mask)
                return SIZE_MAX;
        /* Ends: the load is at most 1/2, so an empty slot comes. */
        for (;; i = (i + 1) & t->mask) {
                const struct er_hash_slot *e = &t->v[i];
                const char *ks;
                size_t klen;

                if (!e->idx1) {
                        *slot = i;
                        return SIZE_MAX;
                }
                if (e->hash != hash)
                        continue;
                ks = key(ctx, e->idx1 - 1, &klen);
                if (klen == len && memcmp(ks, s, len) == 0) {
                        *slot = i;
                        return e->idx1 - 1;
                }
        }
}

static void put(struct er_hash_slot *v, size_t mask, uint64_t hash, size_t idx1)
{
        size_t i = (size_t)hash & mask;

        while (v[i].idx1)
                i = (i + 1) & mask;
        v[i].hash = hash;
        v[i].idx1 = idx1;
}

void er_hash_set(struct er_hash_table *t, size_t slot, uint64_t hash, size_t idx)
{
        assert(t->mask && slot <= t->mask && !t->v[slot].idx1 && idx < SIZE_MAX);
        t->v[slot] = (struct er_hash_slot){hash, idx + 1};
        t->n++;
}

void er_hash_add(struct er_hash_table *t, uint64_t hash, size_t idx)
{
        assert(t->mask && (t->n + 1) * 2 <= t->mask + 1 && idx < SIZE_MAX);
        put(t->v, t->mask, hash, idx + 1);
        t->n++;
}

int er_hash_reserve(struct er_hash_table *t)
{
        size_t size = t->mask ? t->mask + 1 : 16;
        struct er_hash_slot *v;

        if (t->mask && (t->n + 1) * 2 <= size)
                return 0;
        if (t->mask)
                size *= 2;
        if (!t->mask && t->cap >= size) {
                /* Built again after a reset: reuse the memory. */
                memset(t->v, 0, size * sizeof(*v));
                t->mask = size - 1;
                return 0;
        }
        v = calloc(size, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; t->mask && i <= t->mask; i++)
                if (t->v[i].idx1)
                        put(v, size - 1, t->v[i].hash, t->v[i].idx1);
        free(t->v);
        t->v = v;
        t->cap = size;
        t->mask = size - 1;
        return 0;
}

void er_hash_reset(struct er_hash_table *t)
{
        t->mask = 0;
        t->n = 0;
}

void er_hash_fini(struct er_hash_table *t)
{
        if (!t)
                return;
        free(t->v);
        t->v = NULL;
        t->cap = t->mask = t->n = 0;
}
