/* check: the table of readiness kinds and the generic parts of their
 * configuration (one kind key per check, `interval`, options that belong to
 * another kind). */
#include "model/check.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/suggest.h"
#include "base/units.h"

#define KIND_ENTRY(name) &er_check_##name##_ops,
static const struct er_check_ops *const kinds[] = {ER_CHECK_KINDS(KIND_ENTRY)};
#undef KIND_ENTRY

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const struct er_check_ops *const *er_check_kinds(size_t *ret_n)
{
        *ret_n = N_KINDS;
        return kinds;
}

static const struct er_check_ops *kind_of(const char *key)
{
        for (size_t i = 0; i < N_KINDS; i++)
                if (!strcmp(kinds[i]->key, key))
                        return kinds[i];
        return NULL;
}

/* The kind whose option `key` is, or NULL. */
static const struct er_check_ops *option_owner(const char *key)
{
        for (size_t i = 0; i < N_KINDS; i++)
                for (const char *const *o = kinds[i]->options; o && *o; o++)
                        if (!strcmp(*o, key))
                                return kinds[i];
        return NULL;
}

static bool allowed(const struct er_check_ops *ops, const char *key)
{
        if (!strcmp(key, ops->key) || !strcmp(key, "interval"))
                return true;
        for (const char *const *o = ops->options; o && *o; o++)
                if (!strcmp(*o, key))
                        return true;
        return false;
}

/* Every key a check may have, for suggestions. */
static size_t all_keys(const char **out, size_t max)
{
        size_t n = 0;
        for (size_t i = 0; i < N_KINDS && n < max; i++)
                out[n++] = kinds[i]->key;
        if (n < max)
                out[n++] = "interval";
        for (size_t i = 0; i < N_KINDS; i++)
                for (const char *const *o = kinds[i]->options; o && *o && n < max; o++)
                        out[n++] = *o;
        return n;
}

static void unknown_key(struct er_fctx *f, const struct er_node *k, const struct er_check_ops *ops)
{
        const struct er_check_ops *owner = option_owner(k->str);
        const char *keys[32];
        const char *s;

        if (owner && ops) {
                er_field_error(f, k, "'%s' is an option of the '%s' check, not of '%s'", k->str,
                               owner->key, ops->key);
                return;
        }
        s = er_suggest(k->str, keys, all_keys(keys, 32));
        if (s)
                er_field_error(f, k, "unknown key '%s' in readiness check (did you mean '%s'?)",
                               k->str, s);
        else
                er_field_error(f, k, "unknown key '%s' in readiness check", k->str);
}

static const char *kind_suggestion(const char *key)
{
        const char *keys[N_KINDS];
        for (size_t i = 0; i < N_KINDS; i++)
                keys[i] = kinds[i]->key;
        return kind_of(key) ? NULL : er_suggest(key, keys, N_KINDS);
}

/* Finds the one kind key of map m; reports none or several. */
static const struct er_check_ops *find_kind(struct er_fctx *f, const struct er_node *m,
                                            const struct er_node **ret_value)
{
        const struct er_check_ops *ops = NULL;
        const struct er_node *first = NULL;

        for (size_t i = 0; i < m->n; i++) {
                const struct er_check_ops *k = kind_of(m->pairs[i].key->str);
                if (!k)
                        continue;
                if (ops) {
                        er_field_error(f, m->pairs[i].key,
                                       "a readiness check has one kind, but '%s' and '%s' are "
                                       "both set (use a list of checks to wait for both)",
                                       first->str, k->key);
                        return NULL;
                }
                ops = k;
                first = m->pairs[i].key;
                *ret_value = m->pairs[i].val;
        }
        /* A misspelt kind ('tpc') is reported as an unknown key with a suggestion. */
        for (size_t i = 0; i < m->n && !ops; i++)
                if (kind_suggestion(m->pairs[i].key->str))
                        return NULL;
        if (!ops)
                er_field_error(f, m,
                               "a readiness check needs one of 'output', 'tcp', 'unix', 'http', "
                               "'pidfile', 'exit', 'exec' or 'notify'");
        return ops;
}

static struct er_check *parse_one(struct er_fctx *f, const struct er_node *m, const char *dir)
{
        const struct er_check_ops *ops;
        const struct er_node *value = NULL, *iv;
        struct er_check *c;
        int r = 0;

        if (m->kind != ER_NODE_MAP) {
                er_field_error(f, m, "a readiness check must be a map such as '{tcp: 5432}', not %s",
                               er_node_kind_name(m));
                return NULL;
        }
        ops = find_kind(f, m, &value);
        for (size_t i = 0; i < m->n; i++)
                if (!ops ? !kind_of(m->pairs[i].key->str) && strcmp(m->pairs[i].key->str, "interval") &&
                                   !option_owner(m->pairs[i].key->str)
                         : !allowed(ops, m->pairs[i].key->str)) {
                        unknown_key(f, m->pairs[i].key, ops);
                        r = -ER_ECONFIG;
                }
        if (!ops)
                return NULL;
        c = calloc(1, sizeof(*c));
        if (!c) {
                er_field_error(f, m, "out of memory");
                return NULL;
        }
        c->ops = ops;
        c->loc = er_field_loc(m);
        if (ops->conf_size && !(c->conf = calloc(1, ops->conf_size))) {
                free(c);
                er_field_error(f, m, "out of memory");
                return NULL;
        }
        c->interval_us = ops->default_interval_us;
        iv = er_node_get(m, "interval");
        if (iv) {
                if (er_field_duration(f, iv, "interval", &c->interval_us) < 0)
                        r = -ER_ECONFIG;
                else if (c->interval_us == 0)
                        r = er_field_error(f, iv, "'interval' must be greater than 0");
        }
        if (ops->parse(c, value, m, dir, f) < 0)
                r = -ER_ECONFIG;
        if (r < 0) {
                er_check_free(c);
                return NULL;
        }
        return c;
}

int er_check_parse_list(struct er_fctx *f, const struct er_node *ready, const char *dir,
                        struct er_check ***ret_checks, size_t *ret_n)
{
        const struct er_node *const *items = &ready;
        size_t n = 1;
        struct er_check **v;
        int r = 0;

        if (ready->kind == ER_NODE_SEQ) {
                if (ready->n == 0)
                        return er_field_error(f, ready, "'ready' must not be an empty list");
                items = (const struct er_node *const *)ready->items;
                n = ready->n;
        } else if (ready->kind != ER_NODE_MAP) {
                return er_field_error(f, ready,
                                      "'ready' must be a check such as '{tcp: 5432}' or a list of "
                                      "checks, not %s",
                                      er_node_kind_name(ready));
        }
        v = calloc(n, sizeof(*v));
        if (!v)
                return er_field_error(f, ready, "out of memory");
        for (size_t i = 0; i < n; i++)
                if (!(v[i] = parse_one(f, items[i], dir)))
                        r = -ER_ECONFIG;
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        er_check_free(v[i]);
                free(v);
                return r;
        }
        *ret_checks = v;
        *ret_n = n;
        return 0;
}

void er_check_free(struct er_check *c)
{
        if (!c)
                return;
        if (c->ops && c->ops->fini)
                c->ops->fini(c);
        free(c->conf);
        free(c);
}

json_t *er_check_dump(const struct er_check *c)
{
        char buf[64];
        json_t *o = json_object();
        if (!o)
                return NULL;
        c->ops->dump(c, o);
        if (c->ops->polled) {
                er_duration_format(c->interval_us, buf, sizeof(buf));
                json_object_set_new(o, "interval", json_string(buf));
        }
        return o;
}

int er_check_describe(const struct er_check *c, char *buf, size_t len)
{
        return c->ops->describe(c, buf, len);
}

int er_regex_compile(struct er_fctx *f, const struct er_node *n, const char *key,
                     const char *pattern, bool whole, struct pcre2_real_code_8 **ret)
{
        uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
        PCRE2_SIZE off;
        int code;
        pcre2_code *re;

        if (whole)
                opts |= PCRE2_ANCHORED | PCRE2_ENDANCHORED;
        re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);
        if (!re) {
                PCRE2_UCHAR msg[128];
                pcre2_get_error_message(code, msg, sizeof(msg));
                return er_field_error(f, n, "invalid regex '%s' in '%s': %s at offset %zu", pattern,
                                      key, (const char *)msg, (size_t)off);
        }
        /* No JIT here: validating must stay cheap (JIT compiling costs
         * about 20 times the compile itself); the engine JITs the regexes it
         * is about to match, er_regex_jit(). */
        *ret = re;
        return 0;
}

void er_regex_jit(struct pcre2_real_code_8 *code)
{
        /* Where JIT is not available the interpreter gives the same results. */
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
}

void er_regex_free(struct pcre2_real_code_8 *code)
{
        pcre2_code_free(code);
}

/* --- helpers for the kinds whose value is a path (unix, pidfile) -------- */

int er_check_parse_path(struct er_check *c, const struct er_node *v, const char *dir,
                        struct er_fctx *f)
{
        struct er_check_path *p = c->conf;
        bool deferred = false;
        char *s;

        if (er_field_str_nonempty(f, v, c->ops->key, &s, &deferred) < 0)
                return -ER_ECONFIG;

        p->path = er_path_join(dir, s);
        free(s);
        if (!p->path)
                return er_field_error(f, v, "out of memory");
        return deferred ? 1 : 0;
}

void er_check_path_dump(const struct er_check *c, json_t *o)
{
        json_object_set_new(o, c->ops->key, json_string(((const struct er_check_path *)c->conf)->path));
}

int er_check_path_describe(const struct er_check *c, char *buf, size_t len)
{
        const struct er_check_path *p = c->conf;
        return snprintf(buf, len, "%s %s", c->ops->key, p->path);
}

void er_check_path_fini(struct er_check *c)
{
        struct er_check_path *p = c->conf;
        free(p->path);
}

