/* http: ready when a request's response status matches `status`.
 *
 * Each attempt is one request on the loop's shared http client (http.h):
 * envrun's own for URLs that need no resolver, libcurl (loaded the first
 * time one needs it) for the rest.  A run holds a
 * reference on the client from its first attempt until it is stopped, so
 * the client (one curl multi handle) lives while some http check runs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checks/runner.h"
#include "checks/http.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static const char *const options[] = {"status", "method", "headers", "body", "follow_redirects",
                                      NULL};

struct http_conf {
        char *url;
        char *method;                    /* "GET" by default */
        unsigned status;                 /* an exact code, or 0 when status_re is used */
        char *status_re;                 /* source of the status regex */
        struct pcre2_real_code_8 *status_code;
        struct er_envlist headers;
        char *body;                      /* NULL: none */
        bool follow_redirects;
};

/* The check's configuration (model/check.h: ops->conf_size bytes). */
static struct http_conf *conf_of(const struct er_check *c)
{
        return c->conf;
}

static bool token(const char *s)
{
        /* RFC 9110 tchar */
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
                        return false;
        return true;
}

static int parse_status(struct http_conf *h, const struct er_node *s, struct er_fctx *f)
{
        uint64_t code;

        if (s->kind == ER_NODE_SCALAR && !s->quoted && s->tag == ER_TAG_NONE && s->str[0] >= '0' &&
            s->str[0] <= '9') {
                if (er_field_uint(f, s, "status", 100, 599, &code) < 0)
                        return -ER_ECONFIG;
                h->status = (unsigned)code;
                return 0;
        }
        if (er_field_str_nonempty(f, s, "status", &h->status_re, NULL) < 0)
                return -ER_ECONFIG;
        return er_regex_compile(f, s, "status", h->status_re, true, &h->status_code);
}

static int parse_headers(struct http_conf *h, const struct er_node *n, struct er_fctx *f)
{
        int r = 0;
        if (er_field_want_map(f, n, "headers") < 0)
                return -ER_ECONFIG;
        for (size_t i = 0; i < n->n; i++) {
                const struct er_node *k = n->pairs[i].key;
                char *v;
                if (!token(k->str)) {
                        r = er_field_error(f, k, "invalid HTTP header name '%s'", k->str);
                        continue;
                }
                if (er_field_str(f, n->pairs[i].val, k->str, &v, NULL) < 0) {
                        r = -ER_ECONFIG;
                        continue;
                }
                if (strpbrk(v, "\r\n"))
                        r = er_field_error(f, n->pairs[i].val,
                                           "the value of header '%s' must be one line", k->str);
                else if (er_envlist_set(&h->headers, k->str, v, 0, 0) < 0)
                        r = er_field_error(f, n, "out of memory");
                free(v);
        }
        return r;
}

static int http_parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                      const char *dir, struct er_fctx *f)
{
        struct http_conf *h = conf_of(c);
        const struct er_node *n;
        int r = 0;

        er_envlist_init(&h->headers);
        h->status_re = NULL;
        if (er_field_str_nonempty(f, v, "http", &h->url, NULL) < 0)
                r = -ER_ECONFIG;
        else if (strncasecmp(h->url, "http://", 7) && strncasecmp(h->url, "https://", 8))
                r = er_field_error(f, v, "'http' must be an http:// or https:// URL, not '%s'",
                                   h->url);
        if ((n = er_node_get(m, "status"))) {
                if (parse_status(h, n, f) < 0)
                        r = -ER_ECONFIG;
        } else if (!(h->status_re = er_strdup("2\\d\\d")) ||
                   er_regex_compile(f, m, "status", h->status_re, true, &h->status_code) < 0) {
                r = er_field_error(f, m, "out of memory");
        }
        if ((n = er_node_get(m, "method"))) {
                if (er_field_str_nonempty(f, n, "method", &h->method, NULL) < 0)
                        r = -ER_ECONFIG;
                else if (!token(h->method))
                        r = er_field_error(f, n, "invalid HTTP method '%s'", h->method);
        } else if (!(h->method = er_strdup("GET"))) {
                r = er_field_error(f, m, "out of memory");
        }
        if ((n = er_node_get(m, "headers")) && parse_headers(h, n, f) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "body")) && er_field_str(f, n, "body", &h->body, NULL) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "follow_redirects")) &&
            er_field_bool(f, n, "follow_redirects", &h->follow_redirects) < 0)
                r = -ER_ECONFIG;
        return r;
}

static void http_dump(const struct er_check *c, json_t *o)
{
        const struct http_conf *h = conf_of(c);
        json_object_set_new(o, "http", json_string(h->url));
        if (h->status)
                json_object_set_new(o, "status", json_integer(h->status));
        else
                json_object_set_new(o, "status", json_string(h->status_re));
        json_object_set_new(o, "method", json_string(h->method));
        if (h->headers.n) {
                json_t *hd = json_object();
                for (size_t i = 0; i < h->headers.n; i++)
                        json_object_set_new(hd, h->headers.v[i].name,
                                            json_string(h->headers.v[i].value));
                json_object_set_new(o, "headers", hd);
        }
        if (h->body)
                json_object_set_new(o, "body", json_string(h->body));
        json_object_set_new(o, "follow_redirects", json_boolean(h->follow_redirects));
}

/* The URL for progress and reports, its password (user:PASSWORD@) shown as
 * "***": nothing secret goes into a report (SPEC §6), and a URL's
 * credentials usually come from an env value. */
static int http_describe(const struct er_check *c, char *buf, size_t len)
{
        const char *url = conf_of(c)->url, *auth = strstr(url, "://"), *end, *at, *colon;

        if (!auth)
                return snprintf(buf, len, "http %s", url);
        auth += 3;
        end = auth + strcspn(auth, "/?#");
        at = memrchr(auth, '@', (size_t)(end - auth));
        colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (!colon)
                return snprintf(buf, len, "http %s", url);
        return snprintf(buf, len, "http %.*s***%s", (int)(colon + 1 - url), url, at);
}

static void http_fini(struct er_check *c)
{
        struct http_conf *h = conf_of(c);
        free(h->url);
        free(h->method);
        free(h->status_re);
        if (h->status_code)
                er_regex_free(h->status_code);
        er_envlist_fini(&h->headers);
        free(h->body);
}

/* --- the engine side ------------------------------------------------------ */

/* A run's state (run->priv), from its first attempt until cancel. */
struct http_run {
        struct er_http *client;  /* a reference on the loop's client */
        struct er_http_req *req; /* the attempt in flight, or NULL */
        pcre2_match_data *md;    /* for a status regex */
};

/* An attempt may take interval x 10, at least 1 s (a server busy starting
 * up answers slowly), never past the service's deadline. */
static uint64_t attempt_timeout_ms(const struct er_check_run *run)
{
        uint64_t iv = run->check->interval_us;
        uint64_t t = iv > UINT64_MAX / 10 ? UINT64_MAX : iv * 10;
        uint64_t left = er_runner_time_left(run);

        if (t < 1000000)
                t = 1000000;
        if (t > left)
                t = left;
        t = t / 1000 + (t % 1000 != 0);
        return t ? t : 1;
}

/* Whether status is what the check wants; if not, says so in why. */
static bool status_ok(const struct http_conf *h, pcre2_match_data *md, long status, char *why,
                      size_t len)
{
        char code[24];
        int n = snprintf(code, sizeof(code), "%ld", status);

        if (h->status) {
                if (status == (long)h->status)
                        return true;
                snprintf(why, len, "status %ld, want %u", status, h->status);
                return false;
        }
        /* Anchored at both ends when compiled: the regex is the whole code. */
        if (pcre2_match(h->status_code, (PCRE2_SPTR)code, (size_t)n, 0, 0, md, NULL) >= 0)
                return true;
        snprintf(why, len, "status %ld, want %s", status, h->status_re);
        return false;
}

static void on_response(void *data, long status, const char *error)
{
        struct er_check_run *run = data;
        struct http_run *p = run->priv;
        char why[sizeof(run->last_error)];

        p->req = NULL;
        if (error)
                er_runner_attempt_done(run, false, error);
        else if (status_ok(conf_of(run->check), p->md, status, why, sizeof(why)))
                er_runner_attempt_done(run, true, NULL);
        else
                er_runner_attempt_done(run, false, why);
}

static int http_attempt(struct er_check_run *run)
{
        const struct http_conf *h = conf_of(run->check);
        struct http_run *p = run->priv;
        char err[sizeof(run->last_error)];
        int r;

        if (!p) {
                p = calloc(1, sizeof(*p));
                if (!p)
                        return -ENOMEM;
                run->priv = p;
        }
        if (!p->client) {
                r = er_http_ref(run->loop, &p->client, err, sizeof(err));
                if (r < 0)
                        return r;
        }
        if (h->status_code && !p->md) {
                p->md = pcre2_match_data_create_from_pattern(h->status_code, NULL);
                if (!p->md)
                        return -ENOMEM;
        }
        struct er_http_opts o = {
                .url = h->url,
                .method = h->method,
                .headers = &h->headers,
                .body = h->body,
                .follow_redirects = h->follow_redirects,
                .timeout_ms = attempt_timeout_ms(run),
        };
        r = er_http_request(p->client, &o, on_response, run, &p->req, err, sizeof(err));
        if (r == -ELIBACC || r == -ELIBBAD) {
                /* No libcurl: retrying cannot help. */
                run->attempting = false;
                run->attempts++;
                er_runner_fail(run, err);
                return 0;
        }
        return r;
}

static void http_abort_attempt(struct er_check_run *run)
{
        struct http_run *p = run->priv;

        if (p) {
                er_http_cancel(p->req);
                p->req = NULL;
        }
}

/* After every stop: the last run to let go of the client frees it. */
static void http_cancel(struct er_check_run *run)
{
        struct http_run *p = run->priv;

        if (!p)
                return;
        er_http_cancel(p->req);
        er_http_unref(p->client);
        pcre2_match_data_free(p->md);
        free(p);
        run->priv = NULL;
}

const struct er_check_ops er_check_http_ops = {
        .key = "http",
        .options = options,
        .conf_size = sizeof(struct http_conf),
        .parse = http_parse,
        .dump = http_dump,
        .describe = http_describe,
        .fini = http_fini,
        .polled = true,
        .probes_address = true,
        .default_interval_us = 10000,
        .cancel = http_cancel,
        .attempt = http_attempt,
        .abandon = http_abort_attempt,
};
