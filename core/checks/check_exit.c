/* exit: a one-shot job, ready when its process exits with one of the codes. */
#include <stdio.h>

#include "checks/runner.h"

static const char *const options[] = {NULL};

struct exit_conf {
        struct er_codes codes;
};

/* The check's configuration (model/check.h: ops->conf_size bytes). */
static struct exit_conf *conf_of(const struct er_check *c)
{
        return c->conf;
}

static int exit_parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                      const char *dir, struct er_fctx *f)
{
        return er_field_codes(f, v, "exit", &conf_of(c)->codes);
}

static void exit_dump(const struct er_check *c, json_t *o)
{
        json_t *a = json_array();
        for (unsigned i = 0; i < 256; i++)
                if (er_codes_has(&conf_of(c)->codes, i))
                        json_array_append_new(a, json_integer(i));
        json_object_set_new(o, "exit", a);
}

static int exit_describe(const struct er_check *c, char *buf, size_t len)
{
        int n = snprintf(buf, len, "exit");
        const char *sep = " ";
        for (unsigned i = 0; i < 256 && n >= 0 && (size_t)n < len; i++)
                if (er_codes_has(&conf_of(c)->codes, i)) {
                        n += snprintf(buf + n, len - (size_t)n, "%s%u", sep, i);
                        sep = ",";
                }
        return n;
}

static int exit_start(struct er_check_run *run)
{
        return 0;
}

static bool exit_exited(struct er_check_run *run, int code)
{
        if (code >= 0 && er_codes_has(&conf_of(run->check)->codes, (unsigned)code)) {
                run->done(run, ER_CHECK_READY, NULL);
                return true;
        }
        /* A signal or another status: the engine words it (ProcessExitedWithError). */
        return false;
}

static void exit_cancel(struct er_check_run *run)
{
}

const struct er_check_ops er_check_exit_ops = {
        .key = "exit",
        .options = options,
        .conf_size = sizeof(struct exit_conf),
        .parse = exit_parse,
        .dump = exit_dump,
        .describe = exit_describe,
        .start = exit_start,
        .exited = exit_exited,
        .cancel = exit_cancel,
};
