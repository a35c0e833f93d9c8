/* unix: ready when a stream connect to the socket at PATH succeeds.  The
 * path is relative to the service's working directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "check.h"

static const char *const options[] = {NULL};

static int parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                 const char *dir, struct er_fctx *f)
{
        struct sockaddr_un sa;
        int r = er_check_parse_path(c, v, dir, f);
        if (r == 0 && strlen(c->u.path.path) >= sizeof(sa.sun_path))
                return er_field_error(f, v, "unix socket path '%s' is longer than %zu bytes",
                                      c->u.path.path, sizeof(sa.sun_path) - 1);
        return r < 0 ? r : 0;
}

const struct er_check_ops er_check_unix_ops = {
        .key = "unix",
        .polled = true,
        .probes_address = true,
        .default_interval_us = 10000,
        .options = options,
        .parse = parse,
        .dump = er_check_path_dump,
        .describe = er_check_path_describe,
        .fini = er_check_path_fini,
};
