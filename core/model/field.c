#include "model/field.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/suggest.h"
#include "base/units.h"
#include "model/words.h"

int er_field_error(struct er_fctx *f, const struct er_node *node, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        er_errs_addv(f->errs, -ER_ECONFIG, f->file, node ? node->line : 0, node ? node->col : 0,
                     fmt, ap);
        va_end(ap);
        return -ER_ECONFIG;
}

static bool is_plain(const struct er_node *n)
{
        return n->kind == ER_NODE_SCALAR && !n->quoted && n->tag == ER_TAG_NONE;
}

static bool has_interp(const struct er_node *n)
{
        return n->kind == ER_NODE_SCALAR && strstr(n->str, "${") != NULL;
}

static int type_error(struct er_fctx *f, const struct er_node *n, const char *key, const char *what)
{
        return er_field_error(f, n, "'%s' must be %s, not %s", key, what, er_node_kind_name(n));
}

/* Interpolates the text of scalar n; errors are located at n. */
static int interp_node(struct er_fctx *f, const struct er_node *n, const char *text, char **ret,
                       bool *ret_deferred)
{
        struct er_err err = {0};
        int r = er_interp(text, f->vars, ret, ret_deferred, &err);
        if (r < 0)
                return er_field_error(f, n, "%s", r == -ENOMEM ? "out of memory" : err.msg);
        return 0;
}

int er_field_str(struct er_fctx *f, const struct er_node *n, const char *key, char **ret,
                 bool *ret_deferred)
{
        if (n->kind != ER_NODE_SCALAR || er_node_is_null(n))
                return type_error(f, n, key, "a string");
        return interp_node(f, n, n->str, ret, ret_deferred);
}

int er_field_str_nonempty(struct er_fctx *f, const struct er_node *n, const char *key, char **ret,
                          bool *ret_deferred)
{
        char *s;
        int r = er_field_str(f, n, key, &s, ret_deferred);
        if (r < 0)
                return r;
        if (!*s) {
                free(s);
                return er_field_error(f, n, "'%s' must not be empty", key);
        }
        *ret = s;
        return 0;
}

/* The text of a typed scalar (number, boolean): written plain or with a
 * matching core tag, or produced by interpolation.  *ret is malloc'd. */
static int typed_text(struct er_fctx *f, const struct er_node *n, const char *key,
                      enum er_node_tag tag, const char *what, char **ret)
{
        if (n->kind != ER_NODE_SCALAR || er_node_is_null(n))
                return type_error(f, n, key, what);
        if (is_plain(n) || n->tag == tag)
                return interp_node(f, n, n->str, ret, NULL);
        if (has_interp(n))
                return interp_node(f, n, n->str, ret, NULL);
        return er_field_error(f, n, "'%s' must be %s, not a string", key, what);
}

int er_field_bool(struct er_fctx *f, const struct er_node *n, const char *key, bool *ret)
{
        static const char *const yes[] = {"true", "True", "TRUE"};
        static const char *const no[] = {"false", "False", "FALSE"};
        char *s;
        int r = typed_text(f, n, key, ER_TAG_BOOL, "true or false", &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < 3; i++) {
                if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
                        *ret = !strcmp(s, yes[i]);
                        free(s);
                        return 0;
                }
        }
        r = er_field_error(f, n, "'%s' must be true or false, not '%s'", key, s);
        free(s);
        return r;
}

static int parse_u64(const char *s, uint64_t *ret)
{
        uint64_t v = 0;
        if (*s == '+')
                s++;
        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        *ret = v;
        return 0;
}

int er_field_uint(struct er_fctx *f, const struct er_node *n, const char *key, uint64_t min,
                  uint64_t max, uint64_t *ret)
{
        char *s;
        uint64_t v = 0;
        int r = typed_text(f, n, key, ER_TAG_INT, "an integer", &s);
        if (r < 0)
                return r;
        r = parse_u64(s, &v);
        if (r == -EINVAL)
                r = er_field_error(f, n, "'%s' must be an integer, not '%s'", key, s);
        else if (r < 0 || v < min || v > max)
                r = er_field_error(f, n, "'%s' must be between %llu and %llu, not '%s'", key,
                                   (unsigned long long)min, (unsigned long long)max, s);
        else
                *ret = v;
        free(s);
        return r < 0 ? r : 0;
}

/* Durations and sizes may be numbers or strings. */
static int unit_text(struct er_fctx *f, const struct er_node *n, const char *key, const char *what,
                     char **ret)
{
        if (n->kind != ER_NODE_SCALAR || er_node_is_null(n))
                return type_error(f, n, key, what);
        return interp_node(f, n, n->str, ret, NULL);
}

int er_field_duration(struct er_fctx *f, const struct er_node *n, const char *key, uint64_t *ret_us)
{
        char *s;
        int r = unit_text(f, n, key, "a duration", &s);
        if (r < 0)
                return r;
        r = er_duration_parse(s, ret_us);
        if (r == -ERANGE)
                r = er_field_error(f, n, "'%s' is too long: '%s'", key, s);
        else if (r < 0)
                r = er_field_error(f, n,
                                   "'%s' must be a duration such as '30s', '250ms' or '1m30s', "
                                   "not '%s'",
                                   key, s);
        free(s);
        return r;
}

int er_field_size(struct er_fctx *f, const struct er_node *n, const char *key, uint64_t *ret)
{
        char *s;
        int r = unit_text(f, n, key, "a size", &s);
        if (r < 0)
                return r;
        r = er_size_parse(s, ret);
        if (r == -ERANGE)
                r = er_field_error(f, n, "'%s' is too large: '%s'", key, s);
        else if (r < 0)
                r = er_field_error(f, n, "'%s' must be a size such as '512K', '64M' or '1G', not '%s'",
                                   key, s);
        free(s);
        return r;
}

int er_field_signal(struct er_fctx *f, const struct er_node *n, const char *key, int *ret)
{
        char *s;
        int r = unit_text(f, n, key, "a signal", &s);
        if (r < 0)
                return r;
        r = er_signal_parse(s, ret);
        if (r < 0)
                r = er_field_error(f, n,
                                   "'%s' must be a signal such as 'SIGTERM', 'INT' or 15, not '%s'",
                                   key, s);
        free(s);
        return r;
}

int er_field_codes(struct er_fctx *f, const struct er_node *n, const char *key,
                   struct er_codes *ret)
{
        struct er_codes codes = {{0}};
        uint64_t v;
        int r = 0;

        if (n->kind == ER_NODE_SEQ) {
                if (n->n == 0)
                        return er_field_error(f, n, "'%s' must not be an empty list", key);
                for (size_t i = 0; i < n->n; i++) {
                        if (er_field_uint(f, n->items[i], key, 0, 255, &v) < 0)
                                r = -ER_ECONFIG;
                        else
                                er_codes_add(&codes, (unsigned)v);
                }
        } else if (er_field_uint(f, n, key, 0, 255, &v) < 0) {
                r = -ER_ECONFIG;
        } else {
                er_codes_add(&codes, (unsigned)v);
        }
        if (r == 0)
                *ret = codes;
        return r;
}

int er_field_want_map(struct er_fctx *f, const struct er_node *n, const char *key)
{
        return n->kind == ER_NODE_MAP ? 0 : type_error(f, n, key, "a map");
}

int er_field_want_seq(struct er_fctx *f, const struct er_node *n, const char *key)
{
        return n->kind == ER_NODE_SEQ ? 0 : type_error(f, n, key, "a list");
}

int er_field_check_keys(struct er_fctx *f, const struct er_node *map, const char *const *known,
                        size_t n_known, const char *where)
{
        int unknown = 0;
        for (size_t i = 0; i < map->n; i++) {
                const struct er_node *k = map->pairs[i].key;
                bool found = false;
                for (size_t j = 0; j < n_known && !found; j++)
                        found = !strcmp(k->str, known[j]);
                if (found)
                        continue;
                const char *s = er_suggest(k->str, known, n_known);
                if (s)
                        er_field_error(f, k, "unknown key '%s'%s (did you mean '%s'?)", k->str,
                                       where, s);
                else
                        er_field_error(f, k, "unknown key '%s'%s", k->str, where);
                unknown++;
        }
        return unknown;
}

/* Column in the file of byte `off` (1-based) of scalar n, when the scalar
 * is written on one line without escapes; else the scalar's own column. */
static unsigned scalar_col(const struct er_node *n, unsigned off)
{
        if (strchr(n->str, '\n') || strchr(n->str, '\\') || strchr(n->str, '\''))
                return n->col;
        return n->col + off - 1 + (n->quoted ? 1 : 0);
}

static int cmd_from_list(struct er_fctx *f, const struct er_node *n, const char *key,
                         struct er_cmd *cmd)
{
        int r = 0;
        if (n->n == 0)
                return er_field_error(f, n, "'%s' must not be an empty list", key);
        cmd->argv = calloc(n->n + 1, sizeof(char *));
        if (!cmd->argv)
                return er_field_error(f, n, "out of memory");
        for (size_t i = 0; i < n->n; i++) {
                const struct er_node *it = n->items[i];
                if (er_field_str(f, it, key, &cmd->argv[cmd->argc], NULL) < 0) {
                        r = -ER_ECONFIG;
                        continue;
                }
                cmd->argc++;
        }
        if (r == 0 && !cmd->argv[0][0])
                r = er_field_error(f, n->items[0], "the program in '%s' must not be empty", key);
        return r;
}

static int cmd_from_string(struct er_fctx *f, const struct er_node *n, const char *key,
                           struct er_cmd *cmd)
{
        struct er_words words = {0};
        struct er_err err = {0};
        int r;

        r = er_words_split(n->str, &words, &err);
        if (r < 0) {
                er_errs_add(f->errs, -ER_ECONFIG, f->file, n->line, scalar_col(n, err.col), "%s",
                            err.msg);
                return -ER_ECONFIG;
        }
        cmd->argv = calloc(words.n + 1, sizeof(char *));
        if (!cmd->argv) {
                er_words_fini(&words);
                return er_field_error(f, n, "out of memory");
        }
        for (size_t i = 0; i < words.n; i++) {
                if (interp_node(f, n, words.v[i], &cmd->argv[cmd->argc], NULL) < 0) {
                        r = -ER_ECONFIG;
                        break;
                }
                cmd->argc++;
        }
        er_words_fini(&words);
        if (r == 0 && !cmd->argv[0][0])
                r = er_field_error(f, n, "the program in '%s' is empty after interpolation", key);
        return r;
}

static int cmd_shell(struct er_fctx *f, const struct er_node *n, const char *key,
                     struct er_cmd *cmd)
{
        char *s;
        if (n->kind == ER_NODE_SEQ)
                return er_field_error(f, n, "'shell: true' needs '%s' as a string, not a list", key);
        if (er_field_str_nonempty(f, n, key, &s, NULL) < 0)
                return -ER_ECONFIG;
        cmd->argv = calloc(4, sizeof(char *));
        if (!cmd->argv || !(cmd->argv[0] = er_strdup("/bin/sh")) ||
            !(cmd->argv[1] = er_strdup("-c"))) {
                free(s);
                return er_field_error(f, n, "out of memory");
        }
        cmd->argv[2] = s;
        cmd->argc = 3;
        return 0;
}

int er_field_cmd(struct er_fctx *f, const struct er_node *n, const char *key, bool shell,
                 struct er_cmd *ret)
{
        struct er_cmd cmd = {0};
        int r;

        cmd.shell = shell;
        cmd.loc = er_field_loc(n);
        if (shell)
                r = cmd_shell(f, n, key, &cmd);
        else if (n->kind == ER_NODE_SEQ)
                r = cmd_from_list(f, n, key, &cmd);
        else if (n->kind == ER_NODE_SCALAR && !er_node_is_null(n))
                r = cmd_from_string(f, n, key, &cmd);
        else
                r = type_error(f, n, key, "a string or a list");
        if (r < 0) {
                er_cmd_fini(&cmd);
                return r;
        }
        *ret = cmd;
        return 0;
}

int er_field_env(struct er_fctx *f, const struct er_node *n, struct er_envlist *out)
{
        int r = 0;
        if (er_field_want_map(f, n, "env") < 0)
                return -ER_ECONFIG;
        for (size_t i = 0; i < n->n; i++) {
                const struct er_node *k = n->pairs[i].key, *v = n->pairs[i].val;
                char *val;
                if (!er_env_name_valid(k->str)) {
                        r = er_field_error(f, k, "invalid environment variable name '%s'", k->str);
                        continue;
                }
                if (v->kind != ER_NODE_SCALAR || er_node_is_null(v)) {
                        r = er_field_error(f, v,
                                           "the value of '%s' must be a string, a number or a "
                                           "boolean, not %s",
                                           k->str, er_node_kind_name(v));
                        continue;
                }
                if (er_field_str(f, v, k->str, &val, NULL) < 0) {
                        r = -ER_ECONFIG;
                        continue;
                }
                if (er_envlist_set(out, k->str, val, v->line, v->col) < 0)
                        r = er_field_error(f, v, "out of memory");
                free(val);
        }
        return r;
}

/* The path of `rel` as the user reaches it from where envrun runs: next to
 * environment.yml as the user named it ("sub/db.env" for -f sub/environment.yml). */
static char *display_path(const char *file, const char *rel)
{
        const char *slash = strrchr(file, '/');
        char *d;
        if (rel[0] == '/' || !slash)
                return er_strdup(rel);
        d = malloc((size_t)(slash - file) + strlen(rel) + 2);
        if (d)
                sprintf(d, "%.*s/%s", (int)(slash - file), file, rel);
        return d;
}

static int env_file_one(struct er_fctx *f, const struct er_node *n, struct er_envlist *out)
{
        char *rel = NULL, *path, *shown;
        int r;

        if (er_field_str_nonempty(f, n, "env_file", &rel, NULL) < 0)
                return -ER_ECONFIG;
        path = er_path_join(f->dir, rel);
        shown = display_path(f->file, rel);
        free(rel);
        if (!path || !shown) {
                free(path);
                free(shown);
                return er_field_error(f, n, "out of memory");
        }
        r = er_envfile_read(path, shown, out, f->errs, f->file, n->line, n->col);
        free(path);
        free(shown);
        return r < 0 ? -ER_ECONFIG : 0;
}

int er_field_env_file(struct er_fctx *f, const struct er_node *n, struct er_envlist *out)
{
        int r = 0;
        if (n->kind != ER_NODE_SEQ)
                return env_file_one(f, n, out);
        if (n->n == 0)
                return er_field_error(f, n, "'env_file' must not be an empty list");
        for (size_t i = 0; i < n->n; i++)
                if (env_file_one(f, n->items[i], out) < 0)
                        r = -ER_ECONFIG;
        return r;
}

char *er_path_join(const char *base, const char *path)
{
        size_t bl, pl;
        char *s;

        if (path[0] == '/')
                return er_strdup(path);
        if (!strcmp(path, "."))
                return er_strdup(base);
        if (path[0] == '.' && path[1] == '/')
                path += 2;
        bl = strlen(base);
        pl = strlen(path);
        s = malloc(bl + pl + 2);
        if (!s)
                return NULL;
        memcpy(s, base, bl);
        if (bl == 0 || base[bl - 1] != '/')
                s[bl++] = '/';
        memcpy(s + bl, path, pl + 1);
        return s;
}
