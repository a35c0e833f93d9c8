/* buf: a growable text/byte buffer, and growth for typed arrays.
 *
 * struct er_buf holds bytes (NULs allowed) and keeps them NUL-terminated
 * once anything was allocated, so p is a C string whenever the bytes hold
 * no NUL.  It remembers running out of memory: a failed append sets oom,
 * leaves the bytes as they were, and every later append fails at once, so
 * a writer may append freely and check once, at the end (er_buf_finish
 * reports -ENOMEM).  The bytes are then always a prefix of what was asked
 * for, never text with a hole in it.
 *
 * er_buf_reserve grows a caller's array of any element type, doubling its
 * capacity; the caller keeps the array, its length and its capacity. */
#ifndef ER_BUF_H
#define ER_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Embedded in its owner.  All zero (er_buf_init(), a zeroed owner or
 * `= {0}`) is an empty buffer that has allocated nothing: p is NULL. */
struct er_buf {
        char *p;    /* owned; NUL-terminated at len when not NULL */
        size_t len; /* bytes held, the NUL not counted */
        size_t cap; /* bytes allocated at p */
        bool oom;   /* an append failed: the bytes lack it and what followed */
};

void er_buf_init(struct er_buf *b);
/* Frees the bytes and leaves an empty buffer, oom cleared.  Accepts NULL. */
void er_buf_fini(struct er_buf *b);

/* Empties the buffer but keeps its memory, and forgets an earlier failure
 * (an empty buffer lacks nothing). */
void er_buf_clear(struct er_buf *b);

/* Room for `more` bytes after len, and the NUL: 0 with p allocated and
 * NUL-terminated at len (a grow by 0 makes an empty buffer ""), or -ENOMEM
 * (oom set, the bytes unchanged) when memory or size_t runs out or oom was
 * set.  A caller may then write up to cap - len - 1 bytes at p + len
 * itself (read(2) into it), add them to len and put the NUL back. */
int er_buf_grow(struct er_buf *b, size_t more);

/* Appends; 0, or -ENOMEM as er_buf_grow (nothing appended). */
int er_buf_put(struct er_buf *b, const void *s, size_t n);
int er_buf_putc(struct er_buf *b, char c);
int er_buf_puts(struct er_buf *b, const char *s);
/* Appends the formatted text; a format vsnprintf cannot write (a result
 * past INT_MAX) counts as running out: -ENOMEM, oom set. */
int er_buf_printf(struct er_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int er_buf_vprintf(struct er_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* The bytes as a C string: p, or "" when nothing was allocated.  Borrowed,
 * valid until the next append, clear or fini. */
const char *er_buf_str(const struct er_buf *b);

/* Hands the bytes over: *ret (NUL-terminated, never NULL, the caller frees
 * it) and, when ret_len is not NULL, their length.  When oom was set, or
 * an empty buffer cannot allocate its NUL, frees them instead and returns
 * -ENOMEM, *ret and *ret_len untouched.  Either way the buffer is left
 * empty, as after er_buf_fini. */
int er_buf_finish(struct er_buf *b, char **ret, size_t *ret_len);

/* Makes room for at least `need` elements of elem_size bytes in the array
 * *arrayp (a pointer to the caller's `T *`, NULL when nothing is
 * allocated) of *cap elements: 0 when it has room, else reallocates to the
 * capacity doubled as often as needed (the first time, 64 bytes' worth of
 * elements or one) and updates *arrayp and *cap.  -ENOMEM when memory
 * runs out or the size would overflow size_t; the array and *cap are then
 * unchanged.  New elements are uninitialised. */
int er_buf_reserve(void *arrayp, size_t *cap, size_t need, size_t elem_size);

/* er_buf_reserve for an array lvalue `v` of capacity lvalue `cap`. */
#define ER_BUF_RESERVE(v, cap, need) er_buf_reserve(&(v), &(cap), (need), sizeof(*(v)))

/* Appends what fd holds, up to its end, but never more than limit + 1
 * bytes in all (b->len included): enough to tell input over the limit
 * without reading a huge one (the caller compares b->len with limit).
 * hint: the size fstat gave, 0 if unknown: the first allocation holds
 * hint + 1 bytes (at least 4 KiB; rounded up to a power of two, as every
 * growth is), so a file that did not grow is read in one go.
 * Retries EINTR.  0, -ENOMEM (b->oom set) or -errno of read (b keeps what
 * was read). */
int er_buf_read_fd(struct er_buf *b, int fd, size_t limit, size_t hint);

#endif
