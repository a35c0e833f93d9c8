/* buf: see buf.h. */
#include "base/buf.h"
#include "base/err.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_FIRST 4096 /* bytes of a first read without a size hint */

/* A first allocation's size in bytes, for arrays and text alike. */
#define FIRST_BYTES 64

int er_buf_reserve(void *arrayp, size_t *cap, size_t need, size_t elem_size)
{
        void **v = arrayp;
        size_t n;
        void *p;

        assert(elem_size > 0);
        if (need <= *cap)
                return 0;
        n = *cap ? *cap : (FIRST_BYTES / elem_size ? FIRST_BYTES / elem_size : 1);
        while (n < need) {
                if (n > SIZE_MAX / 2)
                        return -ENOMEM;
                n *= 2;
        }
        if (n > SIZE_MAX / elem_size)
                return -ENOMEM;
        p = realloc(*v, n * elem_size);
        if (!p)
                return -ENOMEM;
        *v = p;
        *cap = n;
        return 0;
}

void er_buf_init(struct er_buf *b)
{
        b->p = NULL;
        b->len = b->cap = 0;
        b->oom = false;
}

void er_buf_fini(struct er_buf *b)
{
        if (!b)
                return;
        free(b->p);
        er_buf_init(b);
}

void er_buf_clear(struct er_buf *b)
{
        b->len = 0;
        if (b->p)
                b->p[0] = '\0';
        b->oom = false;
}

int er_buf_grow(struct er_buf *b, size_t more)
{
        if (b->oom)
                return -ENOMEM;
        if (more > SIZE_MAX - 1 - b->len ||
            er_buf_reserve(&b->p, &b->cap, b->len + more + 1, 1) < 0) {
                b->oom = true;
                return -ENOMEM;
        }
        b->p[b->len] = '\0'; /* a first allocation holds no NUL yet */
        return 0;
}

int er_buf_put(struct er_buf *b, const void *s, size_t n)
{
        if (er_buf_grow(b, n) < 0)
                return -ENOMEM;
        /* n == 0 may come with s == NULL: memcpy must not see it */
        if (n)
                memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

int er_buf_putc(struct er_buf *b, char c)
{
        return er_buf_put(b, &c, 1);
}

int er_buf_puts(struct er_buf *b, const char *s)
{
        return er_buf_put(b, s, strlen(s));
}

int er_buf_vprintf(struct er_buf *b, const char *fmt, va_list ap)
{
        size_t room = b->p ? b->cap - b->len : 0;
        va_list aq;
        int n;

        if (b->oom)
                return -ENOMEM;
        /* Most text fits the room already there: format once. */
        va_copy(aq, ap);
        n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, aq);
        va_end(aq);
        if (n >= 0 && (size_t)n >= room) {
                if (er_buf_grow(b, (size_t)n) < 0)
                        goto out_restore_nul;
                n = vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        }
        if (n < 0) {
                b->oom = true;
                goto out_restore_nul;
        }
        b->len += (size_t)n;
        return 0;

out_restore_nul:
        /* a cut first try wrote past len */
        if (b->p)
                b->p[b->len] = '\0';
        return -ENOMEM;
}

int er_buf_printf(struct er_buf *b, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = er_buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

const char *er_buf_str(const struct er_buf *b)
{
        return b->p ? b->p : "";
}

int er_buf_finish(struct er_buf *b, char **ret, size_t *ret_len)
{
        if (er_buf_grow(b, 0) < 0) {
                er_buf_fini(b);
                return -ENOMEM;
        }
        b->p[b->len] = '\0';
        *ret = b->p;
        if (ret_len)
                *ret_len = b->len;
        er_buf_init(b);
        return 0;
}

int er_buf_read_fd(struct er_buf *b, int fd, size_t limit, size_t hint)
{
        size_t max = limit < SIZE_MAX - 1 ? limit + 1 : limit;
        /* hint + 1: a file that has not grown fills no more than that, and
         * read() returning 0 there is EOF, with no second allocation. */
        size_t first = hint < max ? hint + 1 : max, room;
        ssize_t k;

        if (first < READ_FIRST)
                first = max < READ_FIRST ? max : READ_FIRST;
        while (b->len < max) {
                if (b->len + 1 >= b->cap) {
                        size_t more = b->len ? b->len : first; /* doubling */
                        if (more > max - b->len)
                                more = max - b->len;
                        if (er_buf_grow(b, more) < 0)
                                return -ENOMEM;
                }
                room = b->cap - b->len - 1; /* the NUL's byte stays free */
                if (room > max - b->len)
                        room = max - b->len;
                k = er_read(fd, b->p + b->len, room);
                if (k <= 0)
                        return (int)k; /* the end, or -errno */
                b->len += (size_t)k;
                b->p[b->len] = '\0';
        }
        return 0;
}
