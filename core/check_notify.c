/* notify: ready when the service sends READY=1 on $NOTIFY_SOCKET (sd_notify). */
#include <stdio.h>

#include "check.h"

static const char *const options[] = {NULL};

static int parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                 const char *dir, struct er_fctx *f)
{
        bool on;
        if (er_field_bool(f, v, "notify", &on) < 0)
                return -ER_ECONFIG;
        if (!on)
                return er_field_error(f, v,
                                      "'notify' can only be true (remove the check to not wait)");
        return 0;
}

static void dump(const struct er_check *c, json_t *o)
{
        json_object_set_new(o, "notify", json_true());
}

static int describe(const struct er_check *c, char *buf, size_t len)
{
        return snprintf(buf, len, "notify");
}

const struct er_check_ops er_check_notify_ops = {
        .key = "notify",
        .options = options,
        .parse = parse,
        .dump = dump,
        .describe = describe,
};
