/* tcp: ready when a TCP connect to HOST:PORT succeeds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *const options[] = {NULL};

static int port_valid(const char *s)
{
        unsigned long v = 0;
        if (!*s || strlen(s) > 5)
                return 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                v = v * 10 + (unsigned long)(*p - '0');
        }
        return v >= 1 && v <= 65535;
}

/* Splits "HOST:PORT", "[V6]:PORT" or "PORT". */
static int split(struct er_fctx *f, const struct er_node *v, const char *s,
                 struct er_check_tcp *t)
{
        const char *colon;

        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':')
                        return er_field_error(f, v, "'tcp' must be 'HOST:PORT', '[IPV6]:PORT' or a "
                                                    "port, not '%s'", s);
                t->host = er_strndup(s + 1, (size_t)(end - s - 1));
                t->port = er_strdup(end + 2);
        } else if ((colon = strrchr(s, ':'))) {
                if (memchr(s, ':', (size_t)(colon - s)))
                        return er_field_error(f, v, "write an IPv6 address in brackets: '[%.*s]:%s'",
                                              (int)(colon - s), s, colon + 1);
                t->host = er_strndup(s, (size_t)(colon - s));
                t->port = er_strdup(colon + 1);
        } else {
                t->host = er_strdup("127.0.0.1");
                t->port = er_strdup(s);
        }
        if (!t->host || !t->port)
                return er_field_error(f, v, "out of memory");
        if (!t->host[0])
                return er_field_error(f, v, "the host in 'tcp' must not be empty");
        return 0;
}

static int parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                 const char *dir, struct er_fctx *f)
{
        struct er_check_tcp *t = &c->u.tcp;
        char *s;
        int r;

        if (er_field_str_nonempty(f, v, "tcp", &s, &t->deferred) < 0)
                return -ER_ECONFIG;
        r = split(f, v, s, t);
        if (r == 0 && !t->deferred && !port_valid(t->port))
                r = er_field_error(f, v, "the port in 'tcp' must be a number from 1 to 65535, not '%s'",
                                   t->port);
        free(s);
        return r;
}

static int describe(const struct er_check *c, char *buf, size_t len)
{
        const struct er_check_tcp *t = &c->u.tcp;
        if (strchr(t->host, ':'))
                return snprintf(buf, len, "tcp [%s]:%s", t->host, t->port);
        return snprintf(buf, len, "tcp %s:%s", t->host, t->port);
}

static void dump(const struct er_check *c, json_t *o)
{
        char buf[512];
        describe(c, buf, sizeof(buf));
        json_object_set_new(o, "tcp", json_string(buf + 4));
}

static void fini(struct er_check *c)
{
        free(c->u.tcp.host);
        free(c->u.tcp.port);
}

const struct er_check_ops er_check_tcp_ops = {
        .key = "tcp",
        .polled = true,
        .probes_address = true,
        .default_interval_us = 10000,
        .options = options,
        .parse = parse,
        .dump = dump,
        .describe = describe,
        .fini = fini,
};
