#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/hash.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- SipHash-1-3 ---------------------------------------------------------- */

/* The reference implementation's (github.com/veorq/SipHash, built with
 * cROUNDS 1, dROUNDS 3) outputs for the messages 00 01 02 ... of each
 * length. */
static void test_siphash13_vectors(void **state)
{
        static const struct {
                size_t len;
                uint64_t want;
        } zero_key[] = {
                { 0, 0xd1fba762150c532cULL },  { 1, 0x68a914128e01e473ULL },
                { 2, 0x010bac45c41e3669ULL },  { 3, 0x4d4c9a4a8ef6e0adULL },
                { 4, 0x7cc43f98813e4dbdULL },  { 5, 0x5abe2169dff36275ULL },
                { 6, 0xe3c25f87624f1cdbULL },  { 7, 0x2f098ab0c751325aULL },
                { 8, 0xead411e67ebe2eeaULL },  { 9, 0x75927f9d95124362ULL },
                { 15, 0xf30eb725bb91c9eaULL }, { 16, 0x8972188433a5c5b7ULL },
                { 17, 0x4883c49a2c009c1dULL }, { 63, 0x385d3e39e5f37359ULL },
        }, seq_key[] = {
                /* key 00 01 .. 0f */
                { 0, 0xabac0158050fc4dcULL },
                { 1, 0xc9f49bf37d57ca93ULL },
        };
        const struct er_hash_key zero = {0, 0};
        const struct er_hash_key seq = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
        unsigned char msg[64];

        (void)state;
        for (size_t i = 0; i < sizeof(msg); i++)
                msg[i] = (unsigned char)i;
        for (size_t i = 0; i < ARRAY_SIZE(zero_key); i++)
                if (er_hash_siphash13(&zero, msg, zero_key[i].len) != zero_key[i].want)
                        fail_msg("length %zu: got %016llx, want %016llx", zero_key[i].len,
                                 (unsigned long long)er_hash_siphash13(&zero, msg,
                                                                      zero_key[i].len),
                                 (unsigned long long)zero_key[i].want);
        for (size_t i = 0; i < ARRAY_SIZE(seq_key); i++)
                assert_true(er_hash_siphash13(&seq, msg, seq_key[i].len) == seq_key[i].want);
}

static void test_siphash13_keyed(void **state)
{
        const struct er_hash_key a = {1, 2}, b = {1, 3};
        const char *s = "services";

        (void)state;
        assert_true(er_hash_siphash13(&a, s, 8) == er_hash_siphash13(&a, s, 8));
        assert_true(er_hash_siphash13(&a, s, 8) != er_hash_siphash13(&b, s, 8));
        /* The length counts: a prefix hashes differently. */
        assert_true(er_hash_siphash13(&a, s, 7) != er_hash_siphash13(&a, s, 8));
}

/* Each key is drawn afresh (two equal draws: a 2^-128 chance). */
static void test_key_init(void **state)
{
        struct er_hash_key a, b;

        (void)state;
        er_hash_key_init(&a);
        er_hash_key_init(&b);
        assert_true(a.k0 != b.k0 || a.k1 != b.k1);
        assert_true(er_hash_siphash13(&a, "x", 1) != er_hash_siphash13(&b, "x", 1));
}

/* ---- the table ------------------------------------------------------------ */

#define MAX_WORDS 5000

/* The user's array: words, and the hash the test chose for each. */
struct words {
        char s[MAX_WORDS][16];
        uint64_t hash[MAX_WORDS];
        size_t n;
};

static const char *word_key(const void *ctx, size_t idx, size_t *len)
{
        const struct words *w = ctx;

        *len = strlen(w->s[idx]);
        return w->s[idx];
}

static size_t find(const struct er_hash_table *t, const struct words *w, const char *s,
                   uint64_t hash)
{
        size_t slot;

        return er_hash_find(t, hash, s, strlen(s), word_key, w, &slot);
}

/* Inserts s with `hash` as a loader does: reserve, find, set. */
static size_t insert(struct er_hash_table *t, struct words *w, const char *s, uint64_t hash)
{
        size_t slot, idx;

        assert_int_equal(er_hash_reserve(t), 0);
        idx = er_hash_find(t, hash, s, strlen(s), word_key, w, &slot);
        if (idx != SIZE_MAX)
                return idx;
        assert_true(w->n < MAX_WORDS);
        snprintf(w->s[w->n], sizeof(w->s[0]), "%s", s);
        w->hash[w->n] = hash;
        er_hash_set(t, slot, hash, w->n);
        return w->n++;
}

static struct words *words_new(void)
{
        struct words *w = test_calloc(1, sizeof(*w));

        assert_non_null(w);
        return w;
}

static void test_unbuilt(void **state)
{
        struct er_hash_table t;
        struct words *w = words_new();
        size_t slot = 12345;

        (void)state;
        er_hash_init(&t);
        assert_int_equal(er_hash_find(&t, 0, "a", 1, word_key, w, &slot), SIZE_MAX);
        assert_int_equal(slot, 12345);
        er_hash_fini(&t);
        er_hash_fini(&t);
        er_hash_fini(NULL);
        test_free(w);
}

static void test_find_put(void **state)
{
        const struct er_hash_key k = {42, 43};
        struct er_hash_table t = {0};
        struct words *w = words_new();
        char s[16];

        (void)state;
        for (size_t i = 0; i < 100; i++) {
                snprintf(s, sizeof(s), "key%zu", i);
                assert_int_equal(insert(&t, w, s, er_hash_siphash13(&k, s, strlen(s))), i);
        }
        assert_int_equal(t.n, 100);
        /* Inserting again finds the first. */
        assert_int_equal(insert(&t, w, "key7", er_hash_siphash13(&k, "key7", 4)), 7);
        assert_int_equal(t.n, 100);
        for (size_t i = 0; i < 100; i++) {
                snprintf(s, sizeof(s), "key%zu", i);
                assert_int_equal(find(&t, w, s, er_hash_siphash13(&k, s, strlen(s))), i);
        }
        assert_int_equal(find(&t, w, "key100", er_hash_siphash13(&k, "key100", 6)), SIZE_MAX);
        assert_int_equal(find(&t, w, "key", er_hash_siphash13(&k, "key", 3)), SIZE_MAX);
        er_hash_fini(&t);
        test_free(w);
}

/* The table starts at 16 slots and doubles, the load never over 1/2, and
 * every entry survives each growth. */
static void test_grow(void **state)
{
        const struct er_hash_key k = {7, 8};
        struct er_hash_table t = {0};
        struct words *w = words_new();
        char s[16];

        (void)state;
        assert_int_equal(er_hash_reserve(&t), 0);
        assert_int_equal(t.mask + 1, 16);
        for (size_t i = 0; i < MAX_WORDS; i++) {
                snprintf(s, sizeof(s), "w%zu", i);
                insert(&t, w, s, er_hash_siphash13(&k, s, strlen(s)));
                assert_true(t.n * 2 <= t.mask + 1);
                assert_int_equal(t.mask & (t.mask + 1), 0); /* a power of two, less one */
                if (i == 8)
                        assert_int_equal(t.mask + 1, 32);
        }
        assert_int_equal(t.mask + 1, 16384);
        for (size_t i = 0; i < MAX_WORDS; i++)
                assert_int_equal(find(&t, w, w->s[i], w->hash[i]), i);
        er_hash_fini(&t);
        test_free(w);
}

/* Entries with one hash, as an attacker who knew it would write them: the
 * table compares the keys and finds each. */
static void test_collisions(void **state)
{
        struct er_hash_table t = {0};
        struct words *w = words_new();
        char s[16];

        (void)state;
        for (size_t i = 0; i < 200; i++) {
                snprintf(s, sizeof(s), "c%zu", i);
                assert_int_equal(insert(&t, w, s, 0x1234), i);
        }
        for (size_t i = 0; i < 200; i++)
                assert_int_equal(find(&t, w, w->s[i], 0x1234), i);
        /* Same hash: a key of the same length or a prefix is not a match. */
        assert_int_equal(find(&t, w, "c999", 0x1234), SIZE_MAX);
        assert_int_equal(find(&t, w, "c", 0x1234), SIZE_MAX);
        /* Same key, other hash: not found (the hash is the key's). */
        assert_int_equal(find(&t, w, "c5", 0x4321), SIZE_MAX);
        /* Hashes equal in the low bits only: they share a probe chain. */
        assert_int_equal(insert(&t, w, "d", 0x1234 + ((uint64_t)1 << 40)), 200);
        assert_int_equal(find(&t, w, "d", 0x1234 + ((uint64_t)1 << 40)), 200);
        assert_int_equal(find(&t, w, "c0", 0x1234), 0);
        er_hash_fini(&t);
        test_free(w);
}

/* er_hash_add: indexing an array whose keys are known to be distinct. */
static void test_add(void **state)
{
        const struct er_hash_key k = {1, 1};
        struct er_hash_table t = {0};
        struct words *w = words_new();

        (void)state;
        for (size_t i = 0; i < 50; i++) {
                snprintf(w->s[i], sizeof(w->s[0]), "a%zu", i);
                w->hash[i] = er_hash_siphash13(&k, w->s[i], strlen(w->s[i]));
                w->n++;
        }
        for (size_t i = 0; i < w->n; i++) {
                assert_int_equal(er_hash_reserve(&t), 0);
                er_hash_add(&t, w->hash[i], i);
        }
        assert_int_equal(t.n, 50);
        for (size_t i = 0; i < w->n; i++)
                assert_int_equal(find(&t, w, w->s[i], w->hash[i]), i);
        er_hash_fini(&t);
        test_free(w);
}

/* A reset table is empty and not built; built again, it reuses its
 * memory. */
static void test_reset(void **state)
{
        struct er_hash_table t = {0};
        struct words *w = words_new();
        struct er_hash_slot *v;

        (void)state;
        insert(&t, w, "one", 1);
        insert(&t, w, "two", 2);
        v = t.v;
        er_hash_reset(&t);
        assert_int_equal(t.n, 0);
        assert_int_equal(find(&t, w, "one", 1), SIZE_MAX);
        w->n = 0;
        assert_int_equal(insert(&t, w, "two", 2), 0);
        assert_ptr_equal(t.v, v);
        assert_int_equal(find(&t, w, "one", 1), SIZE_MAX);
        assert_int_equal(find(&t, w, "two", 2), 0);
        er_hash_fini(&t);
        assert_null(t.v);
        assert_int_equal(t.cap, 0);
        test_free(w);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_siphash13_vectors),
                cmocka_unit_test(test_siphash13_keyed),
                cmocka_unit_test(test_key_init),
                cmocka_unit_test(test_unbuilt),
                cmocka_unit_test(test_find_put),
                cmocka_unit_test(test_grow),
                cmocka_unit_test(test_collisions),
                cmocka_unit_test(test_add),
                cmocka_unit_test(test_reset),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
