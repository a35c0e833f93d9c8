/* http: ready when a request's response status matches `status`. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"

static const char *const options[] = {"status", "method", "headers", "body", "follow_redirects",
                                      NULL};

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

static int parse_status(struct er_check_http *h, const struct er_node *s, struct er_fctx *f)
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

static int parse_headers(struct er_check_http *h, const struct er_node *n, struct er_fctx *f)
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

static int parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                 const char *dir, struct er_fctx *f)
{
        struct er_check_http *h = &c->u.http;
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

static void dump(const struct er_check *c, json_t *o)
{
        const struct er_check_http *h = &c->u.http;
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

static int describe(const struct er_check *c, char *buf, size_t len)
{
        return snprintf(buf, len, "http %s", c->u.http.url);
}

static void fini(struct er_check *c)
{
        struct er_check_http *h = &c->u.http;
        free(h->url);
        free(h->method);
        free(h->status_re);
        if (h->status_code)
                er_regex_free(h->status_code);
        er_envlist_fini(&h->headers);
        free(h->body);
}

const struct er_check_ops er_check_http_ops = {
        .key = "http",
        .polled = true,
        .probes_address = true,
        .default_interval_us = 10000,
        .options = options,
        .parse = parse,
        .dump = dump,
        .describe = describe,
        .fini = fini,
};
