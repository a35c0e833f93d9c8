/* unix and pidfile: the two kinds whose value is a path, relative to the
 * service's working directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "check.h"

static const char *const options[] = {NULL};

static int parse_path(struct er_check *c, const struct er_node *v, const char *dir,
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

static int parse_unix(struct er_check *c, const struct er_node *v, const struct er_node *m,
                      const char *dir, struct er_fctx *f)
{
        struct sockaddr_un sa;
        int r = parse_path(c, v, dir, f);
        if (r == 0 && strlen(c->u.path.path) >= sizeof(sa.sun_path))
                return er_field_error(f, v, "unix socket path '%s' is longer than %zu bytes",
                                      c->u.path.path, sizeof(sa.sun_path) - 1);
        return r < 0 ? r : 0;
}

static int parse_pidfile(struct er_check *c, const struct er_node *v, const struct er_node *m,
                         const char *dir, struct er_fctx *f)
{
        int r = parse_path(c, v, dir, f);
        return r < 0 ? r : 0;
}

static void dump(const struct er_check *c, json_t *o)
{
        json_object_set_new(o, c->ops->key, json_string(c->u.path.path));
}

static int describe(const struct er_check *c, char *buf, size_t len)
{
        return snprintf(buf, len, "%s %s", c->ops->key, c->u.path.path);
}

static void fini(struct er_check *c)
{
        free(c->u.path.path);
}

const struct er_check_ops er_check_unix_ops = {
        .key = "unix",
        .polled = true,
        .probes_address = true,
        .default_interval_us = 10000,
        .options = options,
        .parse = parse_unix,
        .dump = dump,
        .describe = describe,
        .fini = fini,
};

const struct er_check_ops er_check_pidfile_ops = {
        .key = "pidfile",
        .options = options,
        .parse = parse_pidfile,
        .dump = dump,
        .describe = describe,
        .fini = fini,
};
