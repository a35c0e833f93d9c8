#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"

/* The invariant every successful append keeps. */
static void assert_terminated(const struct er_buf *b)
{
        assert_non_null(b->p);
        assert_true(b->len < b->cap);
        assert_int_equal(b->p[b->len], '\0');
}

static void test_empty(void **state)
{
        struct er_buf b = {0};
        char *s = (char *)"untouched";
        size_t len = 99;

        (void)state;
        assert_null(b.p);
        assert_string_equal(er_buf_str(&b), "");
        /* an empty buffer still hands over a string, never NULL */
        assert_int_equal(er_buf_finish(&b, &s, &len), 0);
        assert_string_equal(s, "");
        assert_int_equal(len, 0);
        assert_null(b.p);
        assert_int_equal(b.cap, 0);
        free(s);

        /* room alone makes a string of an empty buffer */
        assert_int_equal(er_buf_grow(&b, 10), 0);
        assert_terminated(&b);
        assert_string_equal(b.p, "");
        assert_true(b.cap >= 11);
        er_buf_fini(&b);

        /* appending nothing allocates the NUL, even from NULL */
        assert_int_equal(er_buf_put(&b, NULL, 0), 0);
        assert_terminated(&b);
        assert_int_equal(b.len, 0);
        er_buf_fini(&b);
        er_buf_fini(NULL);
        assert_null(b.p);
}

static void test_put_grows(void **state)
{
        struct er_buf b;
        char want[10000];

        (void)state;
        er_buf_init(&b);
        for (size_t i = 0; i < sizeof(want); i++) {
                want[i] = (char)('a' + i % 26);
                assert_int_equal(er_buf_putc(&b, want[i]), 0);
                assert_terminated(&b);
                assert_int_equal(b.len, i + 1);
        }
        assert_memory_equal(b.p, want, sizeof(want));
        /* doubling: never more than twice what is needed */
        assert_true(b.cap < 2 * (sizeof(want) + 1));

        er_buf_clear(&b);
        assert_int_equal(er_buf_puts(&b, "ab"), 0);
        assert_int_equal(er_buf_put(&b, "c\0d", 3), 0); /* bytes: a NUL is kept */
        assert_int_equal(er_buf_puts(&b, ""), 0);
        assert_int_equal(b.len, 5);
        assert_memory_equal(b.p, "abc\0d", 6);
        er_buf_fini(&b);
        assert_null(b.p);
        assert_int_equal(b.len, 0);
}

static void test_printf(void **state)
{
        struct er_buf b = {0};
        char want[4096];
        char *s;
        size_t len;
        int n;

        (void)state;
        assert_int_equal(er_buf_printf(&b, "%s=%d;", "x", 42), 0);
        assert_string_equal(b.p, "x=42;");
        assert_terminated(&b);

        /* text that does not fit the room left: formatted again after growth */
        while (b.len + 8 < b.cap)
                assert_int_equal(er_buf_putc(&b, '.'), 0);
        n = snprintf(want, sizeof(want), "%s%0*d|", b.p, 2000, 7);
        assert_int_equal(er_buf_printf(&b, "%0*d|", 2000, 7), 0);
        assert_int_equal(b.len, (size_t)n);
        assert_string_equal(b.p, want);
        assert_terminated(&b);

        /* text that fits: formatted once, in place */
        assert_true(b.cap - b.len > 4);
        assert_int_equal(er_buf_printf(&b, "%c%c", 'o', 'k'), 0);
        assert_int_equal(b.len, (size_t)n + 2);
        assert_string_equal(b.p + n, "ok");

        /* an empty result still leaves a string */
        assert_int_equal(er_buf_printf(&b, "%s", ""), 0);
        assert_int_equal(b.len, (size_t)n + 2);

        assert_int_equal(er_buf_finish(&b, &s, &len), 0);
        assert_int_equal(len, (size_t)n + 2);
        assert_int_equal(strlen(s), len);
        assert_null(b.p);
        free(s);
}

static void test_oom_is_remembered(void **state)
{
        struct er_buf b = {0};
        char *s = (char *)"untouched";
        size_t len = 99;
        char *p;

        (void)state;
        assert_int_equal(er_buf_puts(&b, "kept"), 0);
        p = b.p;
        /* more than size_t holds: fails without touching memory */
        assert_int_equal(er_buf_grow(&b, SIZE_MAX), -ENOMEM);
        assert_true(b.oom);
        assert_ptr_equal(b.p, p);
        assert_string_equal(b.p, "kept");
        assert_int_equal(b.len, 4);

        /* every later append fails at once and leaves a prefix */
        assert_int_equal(er_buf_puts(&b, "x"), -ENOMEM);
        assert_int_equal(er_buf_putc(&b, 'x'), -ENOMEM);
        assert_int_equal(er_buf_put(&b, "x", 1), -ENOMEM);
        assert_int_equal(er_buf_printf(&b, "%d", 1), -ENOMEM);
        assert_int_equal(er_buf_grow(&b, 0), -ENOMEM);
        assert_string_equal(b.p, "kept");
        assert_int_equal(b.len, 4);
        assert_true(b.oom);

        /* finish reports it, frees, and leaves the outputs alone */
        assert_int_equal(er_buf_finish(&b, &s, &len), -ENOMEM);
        assert_string_equal(s, "untouched");
        assert_int_equal(len, 99);
        assert_null(b.p);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, 0);
        assert_false(b.oom);

        /* a size that overflows while adding the NUL */
        assert_int_equal(er_buf_puts(&b, "ab"), 0);
        assert_int_equal(er_buf_grow(&b, SIZE_MAX - 2), -ENOMEM);
        assert_true(b.oom);
        er_buf_fini(&b);
        assert_false(b.oom);
}

static void test_clear_forgets_oom(void **state)
{
        struct er_buf b = {0};
        char *p;

        (void)state;
        assert_int_equal(er_buf_puts(&b, "hello"), 0);
        p = b.p;
        assert_int_equal(er_buf_grow(&b, SIZE_MAX), -ENOMEM);
        er_buf_clear(&b);
        assert_false(b.oom);
        assert_int_equal(b.len, 0);
        assert_ptr_equal(b.p, p); /* the memory is kept */
        assert_string_equal(er_buf_str(&b), "");
        assert_int_equal(er_buf_printf(&b, "%s", "again"), 0);
        assert_string_equal(b.p, "again");

        /* clearing a buffer that never allocated */
        er_buf_fini(&b);
        er_buf_clear(&b);
        assert_null(b.p);
        assert_string_equal(er_buf_str(&b), "");
}

static void test_reserve_growth(void **state)
{
        int *v = NULL, *old;
        size_t cap = 0;

        (void)state;
        assert_int_equal(er_buf_reserve(&v, &cap, 0, sizeof(*v)), 0);
        assert_null(v);
        assert_int_equal(cap, 0);

        /* the first allocation: 64 bytes' worth */
        assert_int_equal(er_buf_reserve(&v, &cap, 1, sizeof(*v)), 0);
        assert_non_null(v);
        assert_int_equal(cap, 64 / sizeof(*v));
        for (size_t i = 0; i < cap; i++)
                v[i] = (int)i;

        /* room enough: nothing moves */
        old = v;
        assert_int_equal(er_buf_reserve(&v, &cap, cap, sizeof(*v)), 0);
        assert_ptr_equal(v, old);
        assert_int_equal(cap, 64 / sizeof(*v));

        /* doubled as often as needed, contents kept */
        assert_int_equal(er_buf_reserve(&v, &cap, 17, sizeof(*v)), 0);
        assert_int_equal(cap, 32);
        assert_int_equal(ER_BUF_RESERVE(v, cap, 100), 0);
        assert_int_equal(cap, 128);
        for (size_t i = 0; i < 16; i++)
                assert_int_equal(v[i], (int)i);
        v[127] = 1; /* all of it is usable */
        free(v);
}

struct big {
        char bytes[100];
};

static void test_reserve_large_elements(void **state)
{
        struct big *v = NULL;
        size_t cap = 0;

        (void)state;
        /* an element larger than 64 bytes: one at first */
        assert_int_equal(ER_BUF_RESERVE(v, cap, 1), 0);
        assert_int_equal(cap, 1);
        assert_int_equal(ER_BUF_RESERVE(v, cap, 2), 0);
        assert_int_equal(cap, 2);
        assert_int_equal(ER_BUF_RESERVE(v, cap, 5), 0);
        assert_int_equal(cap, 8);
        memset(v, 0, cap * sizeof(*v));
        free(v);
}

static void test_reserve_overflow(void **state)
{
        struct big *v = NULL, *old;
        char *c = NULL;
        size_t cap = 0;

        (void)state;
        /* nothing allocated yet: stays so */
        assert_int_equal(er_buf_reserve(&c, &cap, SIZE_MAX, 1), -ENOMEM);
        assert_null(c);
        assert_int_equal(cap, 0);
        /* doubling would pass SIZE_MAX */
        assert_int_equal(er_buf_reserve(&c, &cap, SIZE_MAX / 2 + 2, 1), -ENOMEM);
        assert_null(c);
        assert_int_equal(cap, 0);

        /* the count fits size_t, its bytes do not: the array is unchanged */
        assert_int_equal(ER_BUF_RESERVE(v, cap, 3), 0);
        assert_int_equal(cap, 4);
        strcpy(v[0].bytes, "kept");
        old = v;
        assert_int_equal(ER_BUF_RESERVE(v, cap, SIZE_MAX / sizeof(*v) + 1), -ENOMEM);
        assert_int_equal(ER_BUF_RESERVE(v, cap, SIZE_MAX / 64), -ENOMEM);
        assert_ptr_equal(v, old);
        assert_int_equal(cap, 4);
        assert_string_equal(v[0].bytes, "kept");
        free(v);
}

/* A file of n bytes 'a'..'z' over and over; its fd, at offset 0. */
static int file_of(size_t n)
{
        char tmpl[] = "/tmp/envrun-test-buf.XXXXXX";
        int fd = mkstemp(tmpl);

        assert_true(fd >= 0);
        unlink(tmpl);
        for (size_t i = 0; i < n; i++) {
                char c = (char)('a' + i % 26);
                assert_int_equal(write(fd, &c, 1), 1);
        }
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

/* Reads to the end under the limit; limit + 1 bytes over it, never more;
 * the hint only sizes the first allocation. */
static void test_read_fd(void **state)
{
        static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 100000};
        static const size_t limits[] = {0, 1, 4096, 50000, 1000000};

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                for (size_t j = 0; j < sizeof(limits) / sizeof(limits[0]); j++)
                        for (size_t hint = 0; hint <= sizes[i]; hint += sizes[i] ? sizes[i] : 1) {
                                struct er_buf b = {0};
                                size_t want = sizes[i] <= limits[j] ? sizes[i] : limits[j] + 1;
                                int fd = file_of(sizes[i]);

                                assert_int_equal(er_buf_read_fd(&b, fd, limits[j], hint), 0);
                                assert_int_equal(b.len, want);
                                for (size_t k = 0; k < b.len; k++)
                                        assert_int_equal(b.p[k], 'a' + k % 26);
                                if (b.p)
                                        assert_int_equal(b.p[b.len], '\0');
                                close(fd);
                                er_buf_fini(&b);
                        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_put_grows),
                cmocka_unit_test(test_printf),
                cmocka_unit_test(test_oom_is_remembered),
                cmocka_unit_test(test_clear_forgets_oom),
                cmocka_unit_test(test_reserve_growth),
                cmocka_unit_test(test_reserve_large_elements),
                cmocka_unit_test(test_reserve_overflow),
                cmocka_unit_test(test_read_fd),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
