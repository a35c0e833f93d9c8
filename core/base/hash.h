/* hash: SipHash-1-3 under a random key, and an open-addressing table of
 * indexes for keys that an attacker may choose.
 *
 * Keys read from a file (a map's keys, anchor names) are picked by whoever
 * wrote it: with a fixed hash they could all collide and turn lookups
 * quadratic.  SipHash-1-3 (as in CPython and Rust's HashMap) under a key
 * drawn afresh for each use (each load) makes collisions unplannable. */
#ifndef ER_HASH_H
#define ER_HASH_H

#include <stddef.h>
#include <stdint.h>

struct er_hash_key {
        uint64_t k0, k1;
};

/* A fresh random key from getrandom(); when it has no entropy yet (early
 * boot) or is missing, from the clock, the pid and ASLR, which still make
 * collisions hard to plan in advance.  Cannot fail. */
void er_hash_key_init(struct er_hash_key *k);

/* SipHash-1-3 of s[0..len) under k: the reference algorithm, with k0 and
 * k1 the key's two little-endian halves. */
uint64_t er_hash_siphash13(const struct er_hash_key *k, const void *s, size_t len);

/* One slot of a table: an index and its key's hash. */
struct er_hash_slot {
        uint64_t hash;
        size_t idx1; /* index + 1; 0 = empty */
};

/* An open-addressing table (linear probing, load at most 1/2) over the
 * indexes of an array its user owns: the table keeps indexes and their
 * hashes, the user computes the hashes and says what the key of an index
 * is (er_hash_key_fn).  Entries are never removed one by one.
 *
 * Embedded in its owner; all zero (er_hash_init(), or a zeroed owner) is
 * an empty table, not yet built.  To insert: er_hash_reserve(), then
 * er_hash_find(), whose miss names the empty slot that er_hash_set()
 * fills; or, for an index whose key is known to be absent, er_hash_add().
 * Fields are read-only outside hash.c. */
struct er_hash_table {
        struct er_hash_slot *v;
        size_t cap;  /* slots allocated */
        size_t mask; /* slots in use - 1; 0 = not built */
        size_t n;    /* entries */
};

/* The key of index `idx` in the user's array `ctx`: its bytes, and their
 * number in *len. */
typedef const char *er_hash_key_fn(const void *ctx, size_t idx, size_t *len);

void er_hash_init(struct er_hash_table *t);

/* Makes room for one more entry (building the table, 16 slots, on first
 * use, and doubling it to keep the load at most 1/2).  Returns 0 or
 * -ENOMEM, leaving the table as it was. */
int er_hash_reserve(struct er_hash_table *t);

/* The index whose key is s[0..len) (with `hash` its hash), or SIZE_MAX.
 * On a built table, *slot is set to the slot of the index found or, on a
 * miss, to the empty slot where the key belongs (valid until the next
 * change to the table).  On a table not built, SIZE_MAX and *slot is left
 * alone. */
size_t er_hash_find(const struct er_hash_table *t, uint64_t hash, const char *s, size_t len,
                    er_hash_key_fn *key, const void *ctx, size_t *slot);

/* Puts `idx` with its hash in `slot`, the empty slot that er_hash_find()
 * just named after an er_hash_reserve(). */
void er_hash_set(struct er_hash_table *t, size_t slot, uint64_t hash, size_t idx);

/* Inserts `idx`, whose key is not in the table, after an
 * er_hash_reserve(). */
void er_hash_add(struct er_hash_table *t, uint64_t hash, size_t idx);

/* Forgets every entry, keeping the memory for reuse. */
void er_hash_reset(struct er_hash_table *t);

/* Frees the table and leaves it empty; accepts NULL. */
void er_hash_fini(struct er_hash_table *t);

#endif
