#include "base/err.h"

#include "base/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void er_errs_init(struct er_errs *errs)
{
        errs->v = NULL;
        errs->n = errs->cap = 0;
        errs->dropped = 0;
        errs->files = NULL;
        errs->n_files = errs->files_cap = 0;
}

void er_errs_fini(struct er_errs *errs)
{
        if (!errs)
                return;
        free(errs->v);
        for (size_t i = 0; i < errs->n_files; i++)
                free(errs->files[i]);
        free(errs->files);
        er_errs_init(errs);
}

/* The list's own copy of file (NULL stays NULL; on ENOMEM, NULL too: the
 * error then prints without its file rather than pointing at freed memory). */
static const char *intern(struct er_errs *errs, const char *file)
{
        char *copy;

        if (!file)
                return NULL;
        for (size_t i = 0; i < errs->n_files; i++)
                if (errs->files[i] == file || !strcmp(errs->files[i], file))
                        return errs->files[i];
        if (ER_BUF_RESERVE(errs->files, errs->files_cap, errs->n_files + 1) < 0)
                return NULL;
        copy = er_strdup(file);
        if (!copy)
                return NULL;
        errs->files[errs->n_files++] = copy;
        return copy;
}

static struct er_err *errs_slot(struct er_errs *errs)
{
        if (errs->n >= ER_ERRS_MAX) {
                errs->dropped++;
                return NULL;
        }
        if (ER_BUF_RESERVE(errs->v, errs->cap, errs->n + 1) < 0) {
                errs->dropped++;
                return NULL;
        }
        return &errs->v[errs->n++];
}

static void err_fillv(struct er_err *e, int code, const char *file, unsigned line, unsigned col,
                      const char *fmt, va_list ap)
{
        e->code = code;
        e->file = file;
        e->line = line;
        e->col = col;
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int er_errs_addv(struct er_errs *errs, int code, const char *file, unsigned line, unsigned col,
                 const char *fmt, va_list ap)
{
        struct er_err *e = errs_slot(errs);
        if (e)
                err_fillv(e, code, intern(errs, file), line, col, fmt, ap);
        return code;
}

int er_errs_add(struct er_errs *errs, int code, const char *file, unsigned line, unsigned col,
                const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        er_errs_addv(errs, code, file, line, col, fmt, ap);
        va_end(ap);
        return code;
}

int er_errs_push(struct er_errs *errs, const struct er_err *err)
{
        struct er_err *e = errs_slot(errs);
        if (e) {
                *e = *err;
                e->file = intern(errs, err->file);
        }
        return err->code;
}

int er_err_set(struct er_err *err, int code, const char *file, unsigned line, unsigned col,
               const char *fmt, ...)
{
        va_list ap;

        if (!err)
                return code;
        va_start(ap, fmt);
        err_fillv(err, code, file, line, col, fmt, ap);
        va_end(ap);
        return code;
}

static int err_cmp(const struct er_err *a, const struct er_err *b)
{
        int c = strcmp(a->file ? a->file : "", b->file ? b->file : "");
        if (c)
                return c;
        if (a->line != b->line)
                return a->line < b->line ? -1 : 1;
        if (a->col != b->col)
                return a->col < b->col ? -1 : 1;
        return 0;
}

void er_errs_sort(struct er_errs *errs)
{
        /* Insertion sort: stable, and error lists are short. */
        for (size_t i = 1; i < errs->n; i++) {
                struct er_err tmp = errs->v[i];
                size_t j = i;
                while (j > 0 && err_cmp(&errs->v[j - 1], &tmp) > 0) {
                        errs->v[j] = errs->v[j - 1];
                        j--;
                }
                errs->v[j] = tmp;
        }
}

int er_err_format(const struct er_err *err, char *buf, size_t len)
{
        if (err->file && err->line)
                return snprintf(buf, len, "%s:%u:%u: %s", err->file, err->line,
                                err->col ? err->col : 1, err->msg);
        if (err->file)
                return snprintf(buf, len, "%s: %s", err->file, err->msg);
        return snprintf(buf, len, "%s", err->msg);
}

char *er_strdup(const char *s)
{
        return er_strndup(s, strlen(s));
}

char *er_strndup(const char *s, size_t n)
{
        char *d = malloc(n + 1);
        if (!d)
                return NULL;
        memcpy(d, s, n);
        d[n] = '\0';
        return d;
}

ssize_t er_read(int fd, void *buf, size_t n)
{
        ssize_t k;

        while ((k = read(fd, buf, n)) < 0 && errno == EINTR)
                ;
        return k < 0 ? -errno : k;
}

void er_close(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
                *fd = -1;
        }
}
