#include "model/interp.h"

#include "base/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESULT_MAX (1024 * 1024)
#define DEPTH_MAX 16
/* How much of a user string goes into a message. */
#define QUOTE_MAX 64

struct interp {
        const struct er_vars *vars;
        const char *whole; /* the string being interpolated, for messages */
        struct er_buf out;
        bool deferred;
        struct er_err *err;
};

static bool name_char(char c, bool first)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
               (!first && c >= '0' && c <= '9');
}

static bool name_valid(const char *s, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!name_char(s[i], i == 0))
                        return false;
        return true;
}

const char *er_vars_get(const struct er_vars *vars, const char *name, size_t name_len,
                        bool *ret_deferred)
{
        if (ret_deferred)
                *ret_deferred = false;
        for (size_t i = 0; i < vars->n; i++) {
                const struct er_var *v = &vars->v[i];

                if (!strncmp(v->name, name, name_len) && v->name[name_len] == '\0') {
                        if (ret_deferred)
                                *ret_deferred = v->deferred;
                        return v->value;
                }
        }
        for (char *const *e = vars->environ; e && *e; e++)
                if (!strncmp(*e, name, name_len) && (*e)[name_len] == '=')
                        return *e + name_len + 1;
        /* Later entries win, should a list hold a name twice. */
        for (size_t i = vars->file_env ? vars->file_env->n : 0; i > 0; i--) {
                const struct er_envvar *v = &vars->file_env->v[i - 1];

                if (!strncmp(v->name, name, name_len) && v->name[name_len] == '\0')
                        return v->value;
        }
        return NULL;
}

static int fail(struct interp *in, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Fills the error's code and message: where it is belongs to the caller. */
static int fail(struct interp *in, int code, const char *fmt, ...)
{
        va_list ap;

        in->err->code = code;
        va_start(ap, fmt);
        vsnprintf(in->err->msg, sizeof(in->err->msg), fmt, ap);
        va_end(ap);
        return code;
}

/* printf arguments for a user string cut at QUOTE_MAX bytes: "%.*s%s". */
#define QUOTE(s, n) (int)((n) > QUOTE_MAX ? QUOTE_MAX : (n)), (s), ((n) > QUOTE_MAX ? "..." : "")

static int emit(struct interp *in, const char *s, size_t n)
{
        if (n > RESULT_MAX - in->out.len)
                return fail(in, -E2BIG, "interpolated value longer than 1 MiB");
        if (er_buf_put(&in->out, s, n) < 0)
                return fail(in, -ENOMEM, "out of memory");
        return 0;
}

size_t er_interp_brace_end(const char *s, size_t i, size_t n)
{
        unsigned depth = 1;

        for (i += 2; i < n; i++) {
                if (s[i] == '$' && i + 1 < n && (s[i + 1] == '$' || s[i + 1] == '{')) {
                        if (s[i + 1] == '{')
                                depth++;
                        i++;
                } else if (s[i] == '}' && --depth == 0) {
                        return i + 1;
                }
        }
        return 0;
}

static int text(struct interp *in, const char *s, size_t n, bool eval, unsigned depth);

/* The message of a failed ${VAR:?message}. */
static int required(struct interp *in, const char *name, size_t name_len, const char *msg,
                    size_t msg_len, unsigned depth)
{
        struct interp sub = { .vars = in->vars, .whole = in->whole, .err = in->err };
        int r;

        if (msg_len == 0)
                return fail(in, -EINVAL, "variable '%.*s' is required", (int)name_len, name);
        r = text(&sub, msg, msg_len, true, depth);
        /* A message that expands to nothing (${X?${UNSET}}) is no message:
         * the error still says which variable (found by fuzz_interp). */
        if (r == 0 && !*er_buf_str(&sub.out))
                r = fail(in, -EINVAL, "variable '%.*s' is required", (int)name_len, name);
        else if (r == 0)
                r = fail(in, -EINVAL, "%s", er_buf_str(&sub.out));
        er_buf_fini(&sub.out);
        return r;
}

/* e[0..n) is "${...}".  With eval false, only checks the syntax: the parts
 * of an expression that are not used are still checked. */
static int expr(struct interp *in, const char *e, size_t n, bool eval, unsigned depth)
{
        const char *body = e + 2, *name = body, *word;
        size_t body_len = n - 3, name_len, word_len;
        const char *val = NULL;
        bool colon, deferred = false, use_word;
        char op;
        int r;

        if (depth > DEPTH_MAX)
                return fail(in, -EINVAL, "'${' nested more than %d levels deep in '%.*s%s'",
                            DEPTH_MAX, QUOTE(in->whole, strlen(in->whole)));
        for (name_len = 0; name_len < body_len; name_len++)
                if (strchr(":-?+=", name[name_len]))
                        break;
        if (name_len == 0)
                return fail(in, -EINVAL, "missing variable name in '%.*s%s'", QUOTE(e, n));
        if (!name_valid(name, name_len))
                return fail(in, -EINVAL, "invalid variable name '%.*s%s' in '%.*s%s'",
                            QUOTE(name, name_len), QUOTE(e, n));
        colon = name_len < body_len && body[name_len] == ':';
        op = name_len + colon < body_len ? body[name_len + colon] : '\0';
        if (name_len < body_len && op != '-' && op != '?') {
                if (op == '+' || op == '=')
                        return fail(in, -EINVAL, "'${%.*s%s%c...}' is not supported",
                                    (int)name_len, name, colon ? ":" : "", op);
                return fail(in, -EINVAL, "'%.*s%s' is not supported", QUOTE(e, n));
        }
        word = body + name_len + colon + 1;
        word_len = name_len < body_len ? body_len - name_len - colon - 1 : 0;
        if (eval) {
                val = er_vars_get(in->vars, name, name_len, &deferred);
                if (deferred)
                        in->deferred = true;
        }
        use_word = eval && (!val || (colon && !*val));
        if (op == '?' && use_word)
                return required(in, name, name_len, word, word_len, depth);
        if (eval && !(op == '-' && use_word) && val) {
                r = emit(in, val, strlen(val));
                if (r < 0)
                        return r;
        }
        if (op == '\0')
                return 0;
        return text(in, word, word_len, op == '-' && use_word, depth);
}

/* Interpolates s[0..n) (or only checks it, with eval false). */
static int text(struct interp *in, const char *s, size_t n, bool eval, unsigned depth)
{
        size_t i = 0, run, end;
        int r;

        while (i < n) {
                const char *d = memchr(s + i, '$', n - i);

                run = d ? (size_t)(d - (s + i)) : n - i;
                if (eval && run) {
                        r = emit(in, s + i, run);
                        if (r < 0)
                                return r;
                }
                i += run;
                if (i >= n)
                        break;
                /* s[i] is '$'. */
                if (i + 1 < n && s[i + 1] == '$') {
                        r = eval ? emit(in, "$", 1) : 0;
                        i += 2;
                } else if (i + 1 < n && s[i + 1] == '{') {
                        end = er_interp_brace_end(s, i, n);
                        if (!end)
                                return fail(in, -EINVAL, "unterminated '${' in '%.*s%s'",
                                            QUOTE(in->whole, strlen(in->whole)));
                        r = expr(in, s + i, end - i, eval, depth + 1);
                        i = end;
                } else {
                        /* $VAR, a lone '$': for the shell, at run time. */
                        r = eval ? emit(in, "$", 1) : 0;
                        i++;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int er_interp(const char *s, const struct er_vars *vars, char **ret, bool *ret_deferred,
              struct er_err *err)
{
        struct interp in = { .vars = vars, .whole = s, .err = err };
        int r;

        r = text(&in, s, strlen(s), true, 0);
        if (r == 0 && er_buf_finish(&in.out, ret, NULL) < 0)
                r = fail(&in, -ENOMEM, "out of memory");
        if (r < 0) {
                er_buf_fini(&in.out);
                return r;
        }
        if (ret_deferred)
                *ret_deferred = in.deferred;
        return 0;
}
