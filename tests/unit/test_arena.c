#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"

static void test_empty(void **state)
{
        struct er_arena a;

        (void)state;
        er_arena_init(&a);
        er_arena_fini(&a);
        er_arena_fini(&a); /* fini leaves an empty arena */
        er_arena_fini(NULL);
}

/* Every power of two up to max_align_t's, after odd sizes that leave the
 * bump pointer misaligned. */
static void test_alignment(void **state)
{
        struct er_arena a = {0};

        (void)state;
        for (int round = 0; round < 2000; round++) {
                for (size_t align = 1; align <= alignof(max_align_t); align *= 2) {
                        size_t size = (size_t)round % 13 + 1;
                        unsigned char *p = er_arena_alloc(&a, size, align);

                        assert_non_null(p);
                        assert_int_equal((uintptr_t)p % align, 0);
                        memset(p, 0xa5, size);
                }
        }
        er_arena_fini(&a);
}

/* Enough small blocks to fill several chunks: none overlaps another. */
static void test_many_small(void **state)
{
        enum { N = 20000, SIZE = 24 };
        static unsigned char *blocks[N];
        struct er_arena a = {0};

        (void)state;
        for (size_t i = 0; i < N; i++) {
                blocks[i] = er_arena_alloc(&a, SIZE, 8);
                assert_non_null(blocks[i]);
                memset(blocks[i], (int)(i & 0xff), SIZE);
        }
        for (size_t i = 0; i < N; i++)
                for (size_t j = 0; j < SIZE; j++)
                        assert_int_equal(blocks[i][j], i & 0xff);
        er_arena_fini(&a);
}

/* One allocation of a quarter chunk still comes from the chunk. */
static void test_quarter_chunk_is_small(void **state)
{
        struct er_arena a = {0};
        char *p, *q;

        (void)state;
        p = er_arena_alloc(&a, 16, 1);
        q = er_arena_alloc(&a, ER_ARENA_CHUNK / 4, 1);
        assert_non_null(p);
        assert_ptr_equal(q, p + 16);
        er_arena_fini(&a);
}

/* A big allocation that does not fit in the current chunk gets a chunk of
 * its own, and the current chunk goes on serving small ones where it left
 * off. */
static void test_large(void **state)
{
        struct er_arena a = {0};
        size_t sizes[] = {ER_ARENA_CHUNK / 4 + 1, ER_ARENA_CHUNK, 3 * ER_ARENA_CHUNK + 7,
                          16 << 20};
        char *first, *next, *big;

        (void)state;
        first = er_arena_alloc(&a, 16, 1);
        assert_non_null(first);
        /* Leave less than a quarter chunk free. */
        assert_ptr_equal(er_arena_alloc(&a, ER_ARENA_CHUNK - 1024, 1), first + 16);
        next = first + 16 + ER_ARENA_CHUNK - 1024;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                big = er_arena_alloc(&a, sizes[i], alignof(max_align_t));
                assert_non_null(big);
                assert_int_equal((uintptr_t)big % alignof(max_align_t), 0);
                memset(big, 0x5a, sizes[i]);
                assert_ptr_equal(er_arena_alloc(&a, 16, 1), next);
                next += 16;
        }
        er_arena_fini(&a);
}

/* A big allocation that fits in the current chunk's free space takes it. */
static void test_large_fits(void **state)
{
        struct er_arena a = {0};
        char *p;

        (void)state;
        p = er_arena_alloc(&a, 16, 1);
        assert_non_null(p);
        assert_ptr_equal(er_arena_alloc(&a, ER_ARENA_CHUNK / 2, 1), p + 16);
        er_arena_fini(&a);
}

/* A big allocation in an empty arena, then small ones. */
static void test_large_first(void **state)
{
        struct er_arena a = {0};
        char *big, *p;

        (void)state;
        big = er_arena_alloc(&a, ER_ARENA_CHUNK, 1);
        assert_non_null(big);
        memset(big, 1, ER_ARENA_CHUNK);
        p = er_arena_alloc(&a, 100, 1);
        assert_non_null(p);
        memset(p, 2, 100);
        assert_int_equal(big[ER_ARENA_CHUNK - 1], 1);
        er_arena_fini(&a);
}

static void test_impossible_size(void **state)
{
        struct er_arena a = {0};

        (void)state;
        assert_null(er_arena_alloc(&a, SIZE_MAX, 1));
        assert_null(er_arena_alloc(&a, SIZE_MAX - 8, 8));
        assert_null(er_arena_strndup(&a, "x", SIZE_MAX));
        /* The arena is still usable. */
        assert_non_null(er_arena_alloc(&a, 8, 8));
        er_arena_fini(&a);
}

static void test_zero_size(void **state)
{
        struct er_arena a = {0};
        char *p, *q;

        (void)state;
        p = er_arena_alloc(&a, 0, 1);
        q = er_arena_alloc(&a, 4, 1);
        assert_non_null(p);
        assert_non_null(q);
        er_arena_fini(&a);
}

static void test_strndup(void **state)
{
        struct er_arena a = {0};
        char big[ER_ARENA_CHUNK];
        char *s;

        (void)state;
        s = er_arena_strndup(&a, "hello, world", 5);
        assert_string_equal(s, "hello");
        s = er_arena_strndup(&a, "", 0);
        assert_string_equal(s, "");
        /* NULs inside are copied, and one more ends the copy. */
        s = er_arena_strndup(&a, "a\0b", 3);
        assert_non_null(s);
        assert_memory_equal(s, "a\0b\0", 4);
        /* Larger than a quarter chunk: a chunk of its own. */
        memset(big, 'x', sizeof(big));
        s = er_arena_strndup(&a, big, sizeof(big));
        assert_non_null(s);
        assert_memory_equal(s, big, sizeof(big));
        assert_int_equal(s[sizeof(big)], '\0');
        er_arena_fini(&a);
}

/* After fini the arena serves again. */
static void test_reuse(void **state)
{
        struct er_arena a = {0};

        (void)state;
        for (int i = 0; i < 3; i++) {
                assert_string_equal(er_arena_strndup(&a, "again", 5), "again");
                assert_non_null(er_arena_alloc(&a, ER_ARENA_CHUNK, 1));
                er_arena_fini(&a);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_alignment),
                cmocka_unit_test(test_many_small),
                cmocka_unit_test(test_quarter_chunk_is_small),
                cmocka_unit_test(test_large),
                cmocka_unit_test(test_large_fits),
                cmocka_unit_test(test_large_first),
                cmocka_unit_test(test_impossible_size),
                cmocka_unit_test(test_zero_size),
                cmocka_unit_test(test_strndup),
                cmocka_unit_test(test_reuse),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
