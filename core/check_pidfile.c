/* pidfile: ready when the file exists and holds the pid of a live process
 * of the service's own tree.  The path is relative to the service's working
 * directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *const options[] = {NULL};

static int parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                 const char *dir, struct er_fctx *f)
{
        int r = er_check_parse_path(c, v, dir, f);
        return r < 0 ? r : 0;
}

const struct er_check_ops er_check_pidfile_ops = {
        .key = "pidfile",
        .options = options,
        .parse = parse,
        .dump = er_check_path_dump,
        .describe = er_check_path_describe,
        .fini = er_check_path_fini,
};
