#include "model/words.h"

#include "base/buf.h"
#include "model/interp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHELL_HINT "use 'shell: true' to run this command with /bin/sh"

struct split {
        char **v;
        size_t n, cap;
        struct er_buf word; /* the word being built */
        bool in_word; /* a word has started, even an empty one ('') */
        size_t len;   /* of the string being split */
};

static void split_fini(struct split *sp)
{
        for (size_t i = 0; i < sp->n; i++)
                free(sp->v[i]);
        free(sp->v);
        er_buf_fini(&sp->word);
}

static int word_add(struct split *sp, const char *p, size_t n)
{
        sp->in_word = true;
        return er_buf_put(&sp->word, p, n);
}

static int word_end(struct split *sp)
{
        char *w;

        if (!sp->in_word)
                return 0;
        /* One slot more for the NULL terminator. */
        if (ER_BUF_RESERVE(sp->v, sp->cap, sp->n + 2) < 0)
                return -ENOMEM;
        w = er_strndup(er_buf_str(&sp->word), sp->word.len);
        if (!w)
                return -ENOMEM;
        sp->v[sp->n++] = w;
        sp->v[sp->n] = NULL;
        er_buf_clear(&sp->word);
        sp->in_word = false;
        return 0;
}

/* Fills err but its file and line, which are the caller's. */
static int fail(struct er_err *err, int code, size_t off, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int fail(struct er_err *err, int code, size_t off, const char *fmt, ...)
{
        va_list ap;

        err->code = code;
        err->col = (unsigned)(off + 1);
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        return code;
}

/* Only blanks and newlines from s on: a trailing newline (YAML block scalars
 * end with one) separates nothing. */
static bool only_space(const char *s)
{
        return s[strspn(s, " \t\n")] == '\0';
}

/* s[*i] is '$'.  Appends "${...}" whole, "$$" as is, or a lone '$'. */
static int dollar(struct split *sp, const char *s, size_t *i, bool quoted, struct er_err *err)
{
        size_t end;

        if (s[*i + 1] == '{') {
                end = er_interp_brace_end(s, *i, sp->len);
                if (!end)
                        return fail(err, -EINVAL, *i, "unterminated '%s'", "${");
                if (word_add(sp, s + *i, end - *i) < 0)
                        return -ENOMEM;
                *i = end;
                return 0;
        }
        if (s[*i + 1] == '(') {
                if (quoted)
                        return fail(err, -EINVAL, *i,
                                    "'%s' is a command substitution: " SHELL_HINT, "$(");
                return fail(err, -EINVAL, *i, "unquoted '%s' is a shell operator: " SHELL_HINT,
                            "$(");
        }
        end = s[*i + 1] == '$' ? 2 : 1;
        if (word_add(sp, s + *i, end) < 0)
                return -ENOMEM;
        *i += end;
        return 0;
}

/* s[*i] is the opening double quote. */
static int double_quoted(struct split *sp, const char *s, size_t *i, struct er_err *err)
{
        size_t open = *i, j = *i + 1;
        int r;

        if (word_add(sp, "", 0) < 0)
                return -ENOMEM;
        for (;;) {
                char c = s[j];

                if (!c)
                        return fail(err, -EINVAL, open, "unterminated %s quote", "double");
                if (c == '"')
                        break;
                if (c == '\\' && s[j + 1] && strchr("\"\\$`", s[j + 1])) {
                        r = word_add(sp, s + j + 1, 1);
                        j += 2;
                } else if (c == '\\' && s[j + 1] == '\n') {
                        j += 2;
                        continue;
                } else if (c == '`') {
                        return fail(err, -EINVAL, j, "'%s' is a command substitution: " SHELL_HINT,
                                    "`");
                } else if (c == '$') {
                        r = dollar(sp, s, &j, true, err);
                        if (r < 0)
                                return r;
                        continue;
                } else {
                        r = word_add(sp, s + j, 1);
                        j++;
                }
                if (r < 0)
                        return r;
        }
        *i = j + 1;
        return 0;
}

/* One step of the scan at s[*i], outside quotes. */
static int step(struct split *sp, const char *s, size_t *i, struct er_err *err)
{
        char c = s[*i];
        const char *q;
        char op[2] = { c, '\0' };

        switch (c) {
        case ' ':
        case '\t':
                (*i)++;
                return word_end(sp);
        case '\n':
                if (only_space(s + *i)) {
                        *i += strlen(s + *i);
                        return word_end(sp);
                }
                return fail(err, -EINVAL, *i, "unquoted newline is a shell operator: %s",
                            SHELL_HINT);
        case '#':
                if (sp->in_word)
                        break;
                /* A comment ends with its line; a newline after it still
                 * separates commands. */
                *i += strcspn(s + *i, "\n");
                return 0;
        case '\\':
                if (s[*i + 1] == '\n') {
                        *i += 2;
                        return 0;
                }
                if (s[*i + 1]) /* as sh does, a backslash at the end stays */
                        (*i)++;
                break;
        case '\'':
                q = strchr(s + *i + 1, '\'');
                if (!q)
                        return fail(err, -EINVAL, *i, "unterminated %s quote", "single");
                if (word_add(sp, s + *i + 1, (size_t)(q - (s + *i + 1))) < 0)
                        return -ENOMEM;
                *i = (size_t)(q - s) + 1;
                return 0;
        case '"':
                return double_quoted(sp, s, i, err);
        case '$':
                return dollar(sp, s, i, false, err);
        case '|':
        case '&':
        case ';':
        case '<':
        case '>':
        case '(':
        case ')':
        case '`':
                return fail(err, -EINVAL, *i, "unquoted '%s' is a shell operator: " SHELL_HINT,
                            op);
        default:
                break;
        }
        if (word_add(sp, s + *i, 1) < 0)
                return -ENOMEM;
        (*i)++;
        return 0;
}

int er_words_split(const char *s, struct er_words *ret, struct er_err *err)
{
        struct split sp = { 0 };
        size_t i = 0;
        int r;

        sp.len = strlen(s);
        while (s[i]) {
                r = step(&sp, s, &i, err);
                if (r < 0)
                        goto out_split_fini;
        }
        r = word_end(&sp);
        if (r < 0)
                goto out_split_fini;
        if (sp.n == 0) {
                r = fail(err, -EINVAL, 0, "empty command");
                err->col = 0;
                goto out_split_fini;
        }
        er_buf_fini(&sp.word);
        ret->v = sp.v;
        ret->n = sp.n;
        return 0;

out_split_fini:
        if (r == -ENOMEM) {
                fail(err, r, 0, "out of memory");
                err->col = 0;
        }
        split_fini(&sp);
        return r;
}

void er_words_fini(struct er_words *w)
{
        if (!w)
                return;
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i]);
        free(w->v);
        w->v = NULL;
        w->n = 0;
}
