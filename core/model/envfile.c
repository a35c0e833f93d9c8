#include "model/envfile.h"

#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VALUE_MAX (64 * 1024)
/* Lookups are linear: bound what one file may define. */
#define VARS_MAX 10000
/* How much of a user string goes into a message. */
#define QUOTE_MAX 64

void er_envlist_init(struct er_envlist *l)
{
        l->v = NULL;
        l->n = l->cap = 0;
}

void er_envlist_fini(struct er_envlist *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->v[i].name);
                free(l->v[i].value);
        }
        free(l->v);
        er_envlist_init(l);
}

static struct er_envvar *envlist_find(const struct er_envlist *l, const char *name)
{
        for (size_t i = 0; i < l->n; i++)
                if (!strcmp(l->v[i].name, name))
                        return &l->v[i];
        return NULL;
}

int er_envlist_set(struct er_envlist *l, const char *name, const char *value, unsigned line,
                   unsigned col)
{
        struct er_envvar *e = envlist_find(l, name);
        char *v = er_strdup(value);

        if (!v)
                return -ENOMEM;
        if (e) {
                free(e->value);
                goto out_fill;
        }
        if (ER_BUF_RESERVE(l->v, l->cap, l->n + 1) < 0)
                goto out_free_value;
        e = &l->v[l->n];
        e->name = er_strdup(name);
        if (!e->name)
                goto out_free_value;
        l->n++;
out_fill:
        e->value = v;
        e->line = line;
        e->col = col;
        return 0;

out_free_value:
        free(v);
        return -ENOMEM;
}

const char *er_envlist_get(const struct er_envlist *l, const char *name)
{
        const struct er_envvar *e = envlist_find(l, name);

        return e ? e->value : NULL;
}

int er_envlist_merge(struct er_envlist *dst, const struct er_envlist *src)
{
        int r;

        if (dst == src)
                return 0;
        for (size_t i = 0; i < src->n; i++) {
                r = er_envlist_set(dst, src->v[i].name, src->v[i].value, src->v[i].line,
                                   src->v[i].col);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool is_alpha_(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_alnum_(char c)
{
        return is_alpha_(c) || (c >= '0' && c <= '9');
}

int er_env_name_valid(const char *name)
{
        if (!name || !is_alpha_(*name))
                return 0;
        for (name++; *name; name++)
                if (!is_alnum_(*name))
                        return 0;
        return 1;
}

/* Env files also accept '.' and '-' after the first character, as compose does. */
static bool file_name_valid(const char *p, size_t n)
{
        if (n == 0 || !is_alpha_(p[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_alnum_(p[i]) && p[i] != '.' && p[i] != '-')
                        return false;
        return true;
}

struct parser {
        const char *buf;
        size_t len, pos;
        unsigned line;
        size_t line_start; /* offset of the current line */
        const char *file;
        struct er_envlist *out;
        struct er_errs *errs;
        int first_err;
        unsigned nvars;
        struct er_buf val; /* the value being built */
};

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

static unsigned col_of(const struct parser *p, size_t off)
{
        return (unsigned)(off - p->line_start + 1);
}

static int perr(struct parser *p, int code, unsigned line, unsigned col, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static int perr(struct parser *p, int code, unsigned line, unsigned col, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        er_errs_addv(p->errs, code, p->file, line, col, fmt, ap);
        va_end(ap);
        if (!p->first_err)
                p->first_err = code;
        return code;
}

/* The current line ends at off: a newline, a CRLF or the end of the buffer. */
static bool at_eol(const struct parser *p, size_t off)
{
        if (off >= p->len || p->buf[off] == '\n')
                return true;
        return p->buf[off] == '\r' && (off + 1 >= p->len || p->buf[off + 1] == '\n');
}

static size_t skip_blanks(const struct parser *p, size_t off)
{
        while (off < p->len && is_blank(p->buf[off]))
                off++;
        return off;
}

static size_t line_end(const struct parser *p, size_t off)
{
        while (!at_eol(p, off))
                off++;
        return off;
}

/* Moves to the start of the line after the one holding off. */
static void next_line(struct parser *p, size_t off)
{
        while (off < p->len && p->buf[off] != '\n')
                off++;
        p->pos = off < p->len ? off + 1 : p->len;
        p->line++;
        p->line_start = p->pos;
}

/* Passes over buf[off], counting lines. */
static size_t step_over(struct parser *p, size_t off)
{
        if (p->buf[off] == '\n') {
                p->line++;
                p->line_start = off + 1;
        }
        return off + 1;
}

/* Single-quoted value at buf[off] == '\''; returns the offset past the
 * closing quote, or 0 when there is none (error already added). */
static size_t single_quoted(struct parser *p, size_t off)
{
        unsigned line = p->line, col = col_of(p, off);
        size_t start = ++off;

        while (off < p->len && p->buf[off] != '\'')
                off = step_over(p, off);
        if (off >= p->len) {
                perr(p, -ER_ESYNTAX, line, col, "unterminated single quote");
                return 0;
        }
        if (er_buf_put(&p->val, p->buf + start, off - start) < 0) {
                perr(p, -ENOMEM, line, col, "out of memory");
                return 0;
        }
        return off + 1;
}

static size_t double_quoted(struct parser *p, size_t off)
{
        unsigned line = p->line, col = col_of(p, off);
        int r = 0;

        for (off++; off < p->len && p->buf[off] != '"' && r >= 0;) {
                const char *esc = NULL;

                if (p->buf[off] == '\\' && off + 1 < p->len) {
                        switch (p->buf[off + 1]) {
                        case 'n': esc = "\n"; break;
                        case 't': esc = "\t"; break;
                        case 'r': esc = "\r"; break;
                        case '\\': esc = "\\"; break;
                        case '"': esc = "\""; break;
                        case '$': esc = "$"; break;
                        default: break;
                        }
                }
                if (esc) {
                        r = er_buf_put(&p->val, esc, 1);
                        off += 2;
                } else {
                        r = er_buf_put(&p->val, p->buf + off, 1);
                        off = step_over(p, off);
                }
        }
        if (r < 0) {
                perr(p, -ENOMEM, line, col, "out of memory");
                return 0;
        }
        if (off >= p->len) {
                perr(p, -ER_ESYNTAX, line, col, "unterminated double quote");
                return 0;
        }
        return off + 1;
}

/* After a closing quote: blanks, then the end of the line or a comment. */
static int after_quote(struct parser *p, size_t off)
{
        off = skip_blanks(p, off);
        if (!at_eol(p, off) && p->buf[off] != '#')
                return perr(p, -ER_ESYNTAX, p->line, col_of(p, off),
                            "unexpected text after closing quote");
        return 0;
}

/* Unquoted value from off (just past '=') to the end of the line or a " #". */
static int unquoted(struct parser *p, size_t off)
{
        size_t start = skip_blanks(p, off), end = start;

        for (; !at_eol(p, end); end++)
                if (p->buf[end] == '#' && end > off && is_blank(p->buf[end - 1]))
                        break;
        while (end > start && is_blank(p->buf[end - 1]))
                end--;
        return er_buf_put(&p->val, p->buf + start, end - start);
}

/* Parses the value at off (just past '=') into p->val and moves to the next
 * line.  Returns false when parsing must stop (an unterminated quote). */
static bool value(struct parser *p, size_t off, const char *name, unsigned line, unsigned col)
{
        size_t v = skip_blanks(p, off);
        int r = 0;

        /* an empty value is "", never NULL */
        er_buf_clear(&p->val);
        if (er_buf_grow(&p->val, 0) < 0) {
                perr(p, -ENOMEM, line, col, "out of memory");
                return false;
        }
        if (v < p->len && (p->buf[v] == '\'' || p->buf[v] == '"')) {
                v = p->buf[v] == '\'' ? single_quoted(p, v) : double_quoted(p, v);
                if (!v)
                        return false;
                r = after_quote(p, v);
        } else if (unquoted(p, off) < 0) {
                perr(p, -ENOMEM, line, col, "out of memory");
                return false;
        }
        if (r == 0 && p->val.len > VALUE_MAX)
                r = perr(p, -ER_ELIMIT, line, col, "value of '%s' is longer than 64 KiB", name);
        if (r == 0 && ++p->nvars > VARS_MAX) {
                perr(p, -ER_ELIMIT, line, col, "more than %d variables in one env file",
                     VARS_MAX);
                return false;
        }
        if (r == 0 && er_envlist_set(p->out, name, p->val.p, line, col) < 0) {
                perr(p, -ENOMEM, line, col, "out of memory");
                return false;
        }
        next_line(p, v);
        return true;
}

/* Skips a leading "export " unless "export" is the name itself ("export=1"). */
static size_t skip_export(const struct parser *p, size_t off)
{
        size_t next;

        if (p->len - off < 7 || memcmp(p->buf + off, "export", 6) || !is_blank(p->buf[off + 6]))
                return off;
        next = skip_blanks(p, off + 6);
        if (at_eol(p, next) || p->buf[next] == '=')
                return off;
        return next;
}

/* One logical line at p->pos.  Returns false when parsing must stop. */
static bool parse_line(struct parser *p)
{
        size_t off = skip_blanks(p, p->pos), eq, end, name_end;
        unsigned line = p->line, col;
        char *full_name;
        bool go_on;

        if (at_eol(p, off) || p->buf[off] == '#') {
                next_line(p, off);
                return true;
        }
        off = skip_export(p, off);
        col = col_of(p, off);
        end = line_end(p, off);
        for (eq = off; eq < end && p->buf[eq] != '='; eq++)
                ;
        if (eq == end) {
                while (end > off && is_blank(p->buf[end - 1]))
                        end--;
                perr(p, -ER_ESYNTAX, line, col, "missing '=' in '%.*s%s'",
                     (int)(end - off > QUOTE_MAX ? QUOTE_MAX : end - off), p->buf + off,
                     end - off > QUOTE_MAX ? "..." : "");
                next_line(p, off);
                return true;
        }
        for (name_end = eq; name_end > off && is_blank(p->buf[name_end - 1]); name_end--)
                ;
        if (!file_name_valid(p->buf + off, name_end - off)) {
                size_t n = name_end - off;

                if (n == 0)
                        perr(p, -ER_ESYNTAX, line, col, "missing variable name before '='");
                else
                        perr(p, -ER_ESYNTAX, line, col, "invalid variable name '%.*s%s'",
                             (int)(n > QUOTE_MAX ? QUOTE_MAX : n), p->buf + off,
                             n > QUOTE_MAX ? "..." : "");
                next_line(p, off);
                return true;
        }
        full_name = er_strndup(p->buf + off, name_end - off);
        if (!full_name) {
                perr(p, -ENOMEM, line, col, "out of memory");
                return false;
        }
        go_on = value(p, eq + 1, full_name, line, col);
        free(full_name);
        return go_on;
}

int er_envfile_parse(const char *buf, size_t len, const char *file, struct er_envlist *out,
                     struct er_errs *errs)
{
        struct parser p = {
                .buf = buf,
                .len = len,
                .line = 1,
                .file = file,
                .out = out,
                .errs = errs,
        };
        const char *nul;

        if (len == 0)
                return 0;
        if (len > ER_ENVFILE_MAX_BYTES)
                return er_errs_add(errs, -ER_ELIMIT, file, 0, 0,
                                   "env file '%s' is larger than 1 MiB", file);
        nul = memchr(buf, '\0', len);
        if (nul) {
                size_t off = (size_t)(nul - buf), ls = 0;
                unsigned line = 1;

                for (size_t i = 0; i < off; i++)
                        if (buf[i] == '\n') {
                                line++;
                                ls = i + 1;
                        }
                return er_errs_add(errs, -ER_ESYNTAX, file, line, (unsigned)(off - ls + 1),
                                   "unexpected NUL byte");
        }
        /* A UTF-8 byte order mark, as some editors write, is not part of a name. */
        if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
                p.pos = p.line_start = 3;
        while (p.pos < p.len)
                if (!parse_line(&p))
                        break;
        er_buf_fini(&p.val);
        return p.first_err;
}

/* Reads fd into *ret (malloc'd): its length, which is more than
 * ER_ENVFILE_MAX_BYTES when the file is over the limit, or -errno. */
static ssize_t read_bounded(int fd, char **ret)
{
        struct er_buf b = {0};
        size_t len;
        int r = er_buf_read_fd(&b, fd, ER_ENVFILE_MAX_BYTES, 0);

        if (r < 0) {
                er_buf_fini(&b);
                return r;
        }
        if (er_buf_finish(&b, ret, &len) < 0)
                return -ENOMEM;
        return (ssize_t)len;
}

int er_envfile_read(const char *path, const char *display, struct er_envlist *out,
                    struct er_errs *errs, const char *ref_file, unsigned ref_line,
                    unsigned ref_col)
{
        struct stat st;
        char *buf = NULL;
        ssize_t n;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                goto out_io;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out_close;
        }
        if (S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                goto out_close;
        }
        if (S_ISREG(st.st_mode) && st.st_size > ER_ENVFILE_MAX_BYTES) {
                n = ER_ENVFILE_MAX_BYTES + 1;
        } else {
                n = read_bounded(fd, &buf);
                if (n < 0) {
                        r = (int)n;
                        goto out_close;
                }
        }
        er_close(&fd);
        if (n > ER_ENVFILE_MAX_BYTES) {
                r = er_errs_add(errs, -ER_ELIMIT, ref_file, ref_line, ref_col,
                                "env file '%s' is larger than 1 MiB", display);
                goto out_free;
        }
        r = er_envfile_parse(buf, (size_t)n, display, out, errs);
out_free:
        free(buf);
        return r;

out_close:
        er_close(&fd);
out_io:
        return er_errs_add(errs, r, ref_file, ref_line, ref_col, "env file '%s': %s", display,
                           strerror(-r));
}
