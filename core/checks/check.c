/* check: the table of readiness kinds and the generic parts of their
 * configuration (one kind key per check, `interval`, options that belong to
 * another kind). */
#include "checks/check.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/suggest.h"
#include "base/units.h"

static const struct er_check_ops *const kinds[] = {
        &er_check_output_ops, &er_check_tcp_ops,  &er_check_unix_ops, &er_check_http_ops,
        &er_check_pidfile_ops, &er_check_exit_ops, &er_check_exec_ops, &er_check_notify_ops,
};

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
        bool deferred = false;
        char *s;

        if (er_field_str_nonempty(f, v, c->ops->key, &s, &deferred) < 0)
                return -ER_ECONFIG;
        c->u.path.path = er_path_join(dir, s);
        free(s);
        if (!c->u.path.path)
                return er_field_error(f, v, "out of memory");
        return deferred ? 1 : 0;
}

void er_check_path_dump(const struct er_check *c, json_t *o)
{
        json_object_set_new(o, c->ops->key, json_string(c->u.path.path));
}

int er_check_path_describe(const struct er_check *c, char *buf, size_t len)
{
        return snprintf(buf, len, "%s %s", c->ops->key, c->u.path.path);
}

void er_check_path_fini(struct er_check *c)
{
        free(c->u.path.path);
}

/* --- the engine side: one runner for every kind ------------------------- */

/* Retries come fast at first and slow down as the wait grows: the delay is
 * a twentieth of the time waited so far, between 250 us and `interval`.  A
 * refused loopback connect costs tens of microseconds, so polling a server
 * that comes up after 5 ms every 250 us, or after 50 ms every 2.5 ms, costs
 * little and adds half a delay on average; one that takes a minute is
 * polled every `interval`.  Attempts over a wait of T: 20 in the first
 * 5 ms, then about 20 ln(T / 5 ms), plus T / interval once the cap is
 * reached (the 1 ms floor this replaced cost ~0.5 ms of latency to a
 * server that starts at once: tests/bench/latency.sh). */
#define MIN_DELAY_US 250
#define DELAY_DIVISOR 20

void er_check_run_init(struct er_check_run *run, const struct er_check *c, struct er_loop *loop,
                       const struct er_check_env *env, void *owner,
                       void (*done)(struct er_check_run *, enum er_check_result, const char *))
{
        memset(run, 0, sizeof(*run));
        run->check = c;
        run->loop = loop;
        run->env = env;
        run->owner = owner;
        run->done = done;
        er_timer_init(&run->retry);
}

int er_check_prepare(struct er_check_run *run, struct er_envlist *extra)
{
        int r = 0;
        if (run->check->ops->prepare)
                r = run->check->ops->prepare(run, extra);
        run->prepared = r == 0;
        return r;
}

uint64_t er_check_time_left(const struct er_check_run *run)
{
        uint64_t now = er_now_us();
        if (!run->env || !run->env->deadline_us)
                return UINT64_MAX;
        return run->env->deadline_us > now ? run->env->deadline_us - now : 0;
}

static void attempt_now(struct er_check_run *run)
{
        int r;
        run->attempting = true;
        r = run->check->ops->attempt(run);
        if (r < 0 && run->attempting) {
                char why[96];
                snprintf(why, sizeof(why), "cannot attempt: %s", strerror(-r));
                er_check_attempt_done(run, false, why);
        }
}

static void on_retry(struct er_loop *loop, struct er_timer *t)
{
        struct er_check_run *run = er_container_of(t, struct er_check_run, retry);
        if (run->active)
                attempt_now(run);
}

int er_check_start(struct er_check_run *run, bool once)
{
        const struct er_check_ops *ops = run->check->ops;

        run->once = once;
        run->active = true;
        run->attempts = 0;
        run->last_error[0] = '\0';
        if (ops->attempt) {
                run->started_us = er_now_us();
                attempt_now(run);
                return 0;
        }
        if (once || !ops->start) {
                run->active = false;
                return -EOPNOTSUPP;
        }
        return ops->start(run);
}

void er_check_attempt_done(struct er_check_run *run, bool ok, const char *why)
{
        uint64_t interval = run->check->interval_us;

        if (!run->active || !run->attempting)
                return;
        run->attempting = false;
        if (ok) {
                run->active = false;
                run->done(run, ER_CHECK_READY, NULL);
                return;
        }
        run->attempts++;
        snprintf(run->last_error, sizeof(run->last_error), "%s", why ? why : "not ready");
        if (run->once) {
                run->active = false;
                run->done(run, ER_CHECK_FAILED, run->last_error);
                return;
        }
        if (run->attempt_failed)
                run->attempt_failed(run, run->last_error);
        /* Poll fast at first, then back off to `interval`, the longest wait. */
        uint64_t waited = er_now_us() - run->started_us, delay = waited / DELAY_DIVISOR;
        if (delay < MIN_DELAY_US)
                delay = MIN_DELAY_US;
        if (delay > interval)
                delay = interval;
        run->delay_us = delay;
        er_timer_start(run->loop, &run->retry, delay, on_retry);
}

void er_check_fail(struct er_check_run *run, const char *why)
{
        snprintf(run->last_error, sizeof(run->last_error), "%s", why ? why : "failed");
        run->fatal = true;
        er_check_stop(run);
        run->done(run, ER_CHECK_FAILED, run->last_error);
}

void er_check_line(struct er_check_run *run, enum er_stream stream, const char *line, size_t len)
{
        if (run->active && run->check->ops->line)
                run->check->ops->line(run, stream, line, len);
}

bool er_check_exited(struct er_check_run *run, int code)
{
        return run->active && run->check->ops->exited && run->check->ops->exited(run, code);
}

void er_check_stop(struct er_check_run *run)
{
        const struct er_check_ops *ops;
        if (!run->check)
                return;
        ops = run->check->ops;
        er_timer_stop(run->loop, &run->retry);
        if (run->attempting && ops->abandon)
                ops->abandon(run);
        run->attempting = false;
        if (ops->cancel)
                ops->cancel(run);
        run->active = false;
}

void er_check_release(struct er_check_run *run)
{
        if (!run->check)
                return;
        er_check_stop(run);
        if (run->prepared && run->check->ops->release)
                run->check->ops->release(run);
        run->prepared = false;
}
