/* exec: ready when a probe command exits 0. */
#include <stdio.h>
#include <string.h>

#include "check.h"

static const char *const options[] = {"shell", NULL};

static int parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                 const char *dir, struct er_fctx *f)
{
        const struct er_node *s = er_node_get(m, "shell");
        bool shell = false;

        if (s && er_field_bool(f, s, "shell", &shell) < 0)
                return -ER_ECONFIG;
        if (er_field_cmd(f, v, "exec", shell, &c->u.exec.cmd) < 0)
                return -ER_ECONFIG;
        /* A probe runs in its service's working directory. */
        c->u.exec.cmd.cwd = er_strdup(dir);
        return c->u.exec.cmd.cwd ? 0 : er_field_error(f, v, "out of memory");
}

static void dump(const struct er_check *c, json_t *o)
{
        const struct er_cmd *cmd = &c->u.exec.cmd;
        if (cmd->shell) {
                json_object_set_new(o, "exec", json_string(cmd->argv[2]));
                json_object_set_new(o, "shell", json_true());
                return;
        }
        json_t *a = json_array();
        for (size_t i = 0; i < cmd->argc; i++)
                json_array_append_new(a, json_string(cmd->argv[i]));
        json_object_set_new(o, "exec", a);
}

static int describe(const struct er_check *c, char *buf, size_t len)
{
        const struct er_cmd *cmd = &c->u.exec.cmd;
        return snprintf(buf, len, "exec %s", cmd->shell ? cmd->argv[2] : cmd->argv[0]);
}

static void fini(struct er_check *c)
{
        er_cmd_fini(&c->u.exec.cmd);
}

const struct er_check_ops er_check_exec_ops = {
        .key = "exec",
        .polled = true,
        .default_interval_us = 100000,
        .options = options,
        .parse = parse,
        .dump = dump,
        .describe = describe,
        .fini = fini,
};
