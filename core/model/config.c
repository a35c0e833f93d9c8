/* config: environment.yml's node tree to the typed model (SPEC §3). */
#include "model/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/check.h"
#include "model/field.h"
#include "base/suggest.h"
#include "base/units.h"

static const char *const top_keys[] = {"name", "env", "env_file", "services", "ports", "test"};
static const char *const service_keys[] = {
        "command", "shell",     "cwd",     "env",          "env_file", "user",
        "timeout", "stop_timeout", "sig_stop", "sig_kill",  "ok_exit",  "ready",
        "depends_on", "restart", "max_restarts", "limits",  "log",
};
static const char *const test_keys[] = {"command", "shell", "cwd", "env", "env_file", "timeout"};
static const char *const limit_keys[] = {"memory", "pids", "cpu_time"};
static const char *const log_keys[] = {"max_size"};
static const char *const dep_keys[] = {"condition"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define DEFAULT_TIMEOUT_US (UINT64_C(60) * 1000000)
#define DEFAULT_STOP_TIMEOUT_US (UINT64_C(10) * 1000000)
#define DEFAULT_LOG_MAX_SIZE (UINT64_C(64) << 20)
#define MIN_LOG_MAX_SIZE (UINT64_C(4) << 10)

const char *er_cond_name(enum er_cond cond)
{
        switch (cond) {
        case ER_COND_STARTED:
                return "started";
        case ER_COND_READY:
                return "ready";
        case ER_COND_COMPLETED:
                return "completed";
        }
        return "?";
}

const char *er_restart_name(enum er_restart restart)
{
        switch (restart) {
        case ER_RESTART_NO:
                return "no";
        case ER_RESTART_ON_FAILURE:
                return "on-failure";
        case ER_RESTART_ALWAYS:
                return "always";
        }
        return "?";
}

bool er_name_valid(const char *name)
{
        size_t n = strlen(name);
        if (n == 0 || n > ER_NAME_MAX || !isalnum((unsigned char)name[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
                        return false;
        return true;
}

ptrdiff_t er_config_find(const struct er_config *config, const char *name)
{
        for (size_t i = 0; i < config->n_services; i++)
                if (!strcmp(config->services[i].name, name))
                        return (ptrdiff_t)i;
        return -1;
}

/* --- building --------------------------------------------------------- */

struct builder {
        struct er_fctx f;
        struct er_vars vars;
        struct er_var builtins[3 + ER_PORTS_MAX];
        char port_text[ER_PORTS_MAX][8];
        const struct er_config_opts *opts;
        struct er_config *c;
};

static bool is_extension_key(const char *key)
{
        return key[0] == 'x' && key[1] == '-';
}

static int check_top_keys(struct builder *b, const struct er_node *root)
{
        int r = 0;
        for (size_t i = 0; i < root->n; i++) {
                const struct er_node *k = root->pairs[i].key;
                bool known = is_extension_key(k->str);
                for (size_t j = 0; j < N(top_keys) && !known; j++)
                        known = !strcmp(k->str, top_keys[j]);
                if (known)
                        continue;
                /* Reuse the suggestion logic on this one key. */
                struct er_node single = *root;
                single.n = 1;
                single.pairs = &root->pairs[i];
                er_field_check_keys(&b->f, &single, top_keys, N(top_keys), "");
                r = -ER_ECONFIG;
        }
        return r;
}

/* The directory of path, absolute, without resolving the last component.
 * A file that is not a regular one (a pipe: `-f <(generate)` names
 * /dev/fd/63) has the current directory: its own is /proc/PID/fd. */
static char *abs_dir(const char *path)
{
        char *copy = er_strdup(path), *slash, *dir, *res;
        struct stat st;

        if (!copy)
                return NULL;
        slash = strrchr(copy, '/');
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
                dir = ".";
        else if (!slash)
                dir = ".";
        else if (slash == copy)
                dir = "/";
        else {
                *slash = '\0';
                dir = copy;
        }
        res = realpath(dir, NULL);
        free(copy);
        return res;
}

/* The project name from the directory's name: characters outside
 * [A-Za-z0-9_.-] become '-', a leading one that is not alphanumeric is
 * dropped, and an empty result is "envrun". */
static char *project_from_dir(const char *dir)
{
        const char *base = strrchr(dir, '/');
        char out[ER_NAME_MAX + 1];
        size_t n = 0;

        base = base ? base + 1 : dir;
        for (; *base && n < ER_NAME_MAX; base++) {
                char ch = *base;
                if (!isalnum((unsigned char)ch) && !strchr("_.-", ch))
                        ch = '-';
                if (n == 0 && !isalnum((unsigned char)ch))
                        continue;
                out[n++] = ch;
        }
        out[n] = '\0';
        return er_strdup(n ? out : "envrun");
}

static const char *environ_get(char *const *env, const char *name)
{
        size_t len = strlen(name);
        for (; env && *env; env++)
                if (!strncmp(*env, name, len) && (*env)[len] == '=')
                        return *env + len + 1;
        return NULL;
}

static int build_name(struct builder *b, const struct er_node *root)
{
        const struct er_node *n = er_node_get(root, "name");
        const char *env_project = environ_get(b->opts->environ, "ENVRUN_PROJECT");
        int r = 0;

        if (n && er_field_str_nonempty(&b->f, n, "name", &b->c->name, NULL) == 0 &&
            !er_name_valid(b->c->name))
                r = er_field_error(&b->f, n,
                                   "invalid project name '%s': names match "
                                   "[A-Za-z0-9][A-Za-z0-9_.-]* (at most %d characters)",
                                   b->c->name, ER_NAME_MAX);
        else if (n && !b->c->name)
                r = -ER_ECONFIG;

        if (b->opts->project)
                b->c->project = er_strdup(b->opts->project);
        else if (env_project && *env_project)
                b->c->project = er_strdup(env_project);
        else if (b->c->name)
                b->c->project = er_strdup(b->c->name);
        else
                b->c->project = project_from_dir(b->c->dir);
        if (!b->c->project)
                return er_field_error(&b->f, NULL, "out of memory");
        if ((b->opts->project || (env_project && *env_project)) && !er_name_valid(b->c->project))
                r = er_field_error(&b->f, NULL,
                                   "invalid project name '%s' (from %s): names match "
                                   "[A-Za-z0-9][A-Za-z0-9_.-]*",
                                   b->c->project, b->opts->project ? "-p" : "ENVRUN_PROJECT");
        return r;
}

static int build_ports(struct builder *b, const struct er_node *root)
{
        const struct er_node *n = er_node_get(root, "ports");
        int r = 0;

        if (!n)
                return 0;
        if (er_field_want_seq(&b->f, n, "ports") < 0)
                return -ER_ECONFIG;
        if (n->n > ER_PORTS_MAX)
                return er_field_error(&b->f, n, "too many ports: %zu (at most %d)", n->n,
                                      ER_PORTS_MAX);
        b->c->ports = calloc(n->n ? n->n : 1, sizeof(*b->c->ports));
        if (!b->c->ports)
                return er_field_error(&b->f, n, "out of memory");
        for (size_t i = 0; i < n->n; i++) {
                const struct er_node *it = n->items[i];
                char *name;
                if (it->kind != ER_NODE_SCALAR || er_node_is_null(it)) {
                        r = er_field_error(&b->f, it, "a port must be a variable name, not %s",
                                           er_node_kind_name(it));
                        continue;
                }
                /* Port names are names, not values: never interpolated. */
                if (!er_env_name_valid(it->str) || strchr(it->str, '.') || strchr(it->str, '-')) {
                        r = er_field_error(&b->f, it,
                                           "invalid port name '%s': names match "
                                           "[A-Za-z_][A-Za-z0-9_]*",
                                           it->str);
                        continue;
                }
                if (!strncmp(it->str, "ENVRUN_", 7)) {
                        r = er_field_error(&b->f, it,
                                           "port name '%s' uses the prefix 'ENVRUN_', kept for "
                                           "envrun's own variables",
                                           it->str);
                        continue;
                }
                bool dup = false;
                for (size_t j = 0; j < b->c->n_ports && !dup; j++)
                        dup = !strcmp(b->c->ports[j].name, it->str);
                if (dup) {
                        r = er_field_error(&b->f, it, "duplicate port '%s'", it->str);
                        continue;
                }
                if (!(name = er_strdup(it->str)))
                        return er_field_error(&b->f, it, "out of memory");
                b->c->ports[b->c->n_ports].name = name;
                b->c->ports[b->c->n_ports].loc = er_field_loc(it);
                b->c->n_ports++;
        }
        return r;
}

static void setup_vars(struct builder *b)
{
        size_t n = 0;
        if (b->c->project)
                b->builtins[n++] = (struct er_var){"ENVRUN_PROJECT", b->c->project, false};
        b->builtins[n++] = (struct er_var){"ENVRUN_DIR", b->c->dir, false};
        if (b->opts->state_dir)
                b->builtins[n++] = (struct er_var){"ENVRUN_STATE_DIR", b->opts->state_dir, false};
        else
                b->builtins[n++] = (struct er_var){"ENVRUN_STATE_DIR", ER_DEFERRED_TEXT, true};
        for (size_t i = 0; i < b->c->n_ports; i++) {
                if (b->opts->port_values) {
                        snprintf(b->port_text[i], sizeof(b->port_text[i]), "%u",
                                 b->opts->port_values[i]);
                        b->builtins[n++] = (struct er_var){b->c->ports[i].name, b->port_text[i], false};
                } else {
                        b->builtins[n++] = (struct er_var){b->c->ports[i].name, ER_DEFERRED_TEXT, true};
                }
        }
        b->vars.v = b->builtins;
        b->vars.n = n;
}

static int build_cwd(struct builder *b, const struct er_node *map, char **ret)
{
        const struct er_node *n = er_node_get(map, "cwd");
        char *rel;

        if (!n) {
                *ret = er_strdup(b->c->dir);
                return *ret ? 0 : er_field_error(&b->f, map, "out of memory");
        }
        if (er_field_str_nonempty(&b->f, n, "cwd", &rel, NULL) < 0)
                return -ER_ECONFIG;
        *ret = er_path_join(b->c->dir, rel);
        free(rel);
        return *ret ? 0 : er_field_error(&b->f, n, "out of memory");
}

/* command, shell and cwd of a service or of the test. */
static int build_cmd(struct builder *b, const struct er_node *map, const struct er_node *cmdn,
                     struct er_cmd *cmd)
{
        const struct er_node *n = er_node_get(map, "shell");
        bool shell = false;
        int r = 0;
        char *cwd = NULL;

        if (n && er_field_bool(&b->f, n, "shell", &shell) < 0)
                r = -ER_ECONFIG;
        if (build_cwd(b, map, &cwd) < 0)
                r = -ER_ECONFIG;
        if (!cmdn) {
                /* A misspelt 'command' is reported as an unknown key already. */
                static const char *const cmd_key[] = {"command"};
                bool misspelt = false;
                for (size_t i = 0; i < map->n && !misspelt; i++)
                        misspelt = er_suggest(map->pairs[i].key->str, cmd_key, 1) != NULL;
                r = misspelt ? -ER_ECONFIG : er_field_error(&b->f, map, "'command' is required");
        } else if (er_field_cmd(&b->f, cmdn, "command", shell, cmd) < 0) {
                r = -ER_ECONFIG;
        } else {
                cmd->cwd = cwd;
                cwd = NULL;
        }
        free(cwd);
        return r;
}

/* env_file then env of a map, into out. */
static int build_env(struct builder *b, const struct er_node *map, struct er_envlist *out)
{
        const struct er_node *n;
        int r = 0;
        if ((n = er_node_get(map, "env_file")) && er_field_env_file(&b->f, n, out) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(map, "env")) && er_field_env(&b->f, n, out) < 0)
                r = -ER_ECONFIG;
        return r;
}

static int parse_cond(struct builder *b, const struct er_node *v, enum er_cond *ret)
{
        const struct er_node *c;
        char *s;
        int r = 0;

        *ret = ER_COND_READY;
        if (er_node_is_null(v))
                return 0;
        if (er_field_want_map(&b->f, v, "depends_on") < 0)
                return -ER_ECONFIG;
        if (er_field_check_keys(&b->f, v, dep_keys, N(dep_keys), " in a dependency"))
                r = -ER_ECONFIG;
        if (!(c = er_node_get(v, "condition")))
                return r;
        if (er_field_str(&b->f, c, "condition", &s, NULL) < 0)
                return -ER_ECONFIG;
        if (!strcmp(s, "started"))
                *ret = ER_COND_STARTED;
        else if (!strcmp(s, "ready"))
                *ret = ER_COND_READY;
        else if (!strcmp(s, "completed"))
                *ret = ER_COND_COMPLETED;
        else
                r = er_field_error(&b->f, c,
                                   "'condition' must be 'started', 'ready' or 'completed', not '%s'",
                                   s);
        free(s);
        return r;
}

static int add_dep(struct builder *b, struct er_service *s, const struct er_node *name,
                   enum er_cond cond)
{
        struct er_dep *d;

        if (name->kind != ER_NODE_SCALAR || er_node_is_null(name))
                return er_field_error(&b->f, name, "a dependency must be a service name, not %s",
                                      er_node_kind_name(name));
        for (size_t i = 0; i < s->n_deps; i++)
                if (!strcmp(s->deps[i].name, name->str))
                        return er_field_error(&b->f, name, "duplicate dependency '%s'", name->str);
        d = &s->deps[s->n_deps];
        if (!(d->name = er_strdup(name->str)))
                return er_field_error(&b->f, name, "out of memory");
        d->cond = cond;
        d->loc = er_field_loc(name);
        s->n_deps++;
        return 0;
}

static int build_deps(struct builder *b, struct er_service *s, const struct er_node *n)
{
        int r = 0;

        if (n->kind != ER_NODE_SEQ && n->kind != ER_NODE_MAP)
                return er_field_error(&b->f, n,
                                      "'depends_on' must be a list of services or a map of "
                                      "service: {condition: ...}, not %s",
                                      er_node_kind_name(n));
        s->deps = calloc(n->n ? n->n : 1, sizeof(*s->deps));
        if (!s->deps)
                return er_field_error(&b->f, n, "out of memory");
        for (size_t i = 0; i < n->n; i++) {
                enum er_cond cond = ER_COND_READY;
                const struct er_node *name = n->kind == ER_NODE_SEQ ? n->items[i] : n->pairs[i].key;
                if (n->kind == ER_NODE_MAP && parse_cond(b, n->pairs[i].val, &cond) < 0) {
                        r = -ER_ECONFIG;
                        continue;
                }
                if (add_dep(b, s, name, cond) < 0)
                        r = -ER_ECONFIG;
        }
        return r;
}

static int build_restart(struct builder *b, struct er_service *s, const struct er_node *n)
{
        char *t;
        int r = 0;

        s->restart_loc = er_field_loc(n);
        /* `no` is a string here, as in YAML 1.2; `false` is not accepted. */
        if (er_field_str(&b->f, n, "restart", &t, NULL) < 0)
                return -ER_ECONFIG;
        if (!strcmp(t, "no"))
                s->restart = ER_RESTART_NO;
        else if (!strcmp(t, "on-failure"))
                s->restart = ER_RESTART_ON_FAILURE;
        else if (!strcmp(t, "always"))
                s->restart = ER_RESTART_ALWAYS;
        else
                r = er_field_error(&b->f, n, "'restart' must be 'no', 'on-failure' or 'always', not '%s'",
                                   t);
        free(t);
        return r;
}

static int build_limits(struct builder *b, struct er_service *s, const struct er_node *n)
{
        const struct er_node *v;
        int r = 0;

        if (er_field_want_map(&b->f, n, "limits") < 0)
                return -ER_ECONFIG;
        if (er_field_check_keys(&b->f, n, limit_keys, N(limit_keys), " in 'limits'"))
                r = -ER_ECONFIG;
        if ((v = er_node_get(n, "memory"))) {
                if (er_field_size(&b->f, v, "memory", &s->limits.memory) < 0)
                        r = -ER_ECONFIG;
                else if (s->limits.memory < (UINT64_C(1) << 20))
                        r = er_field_error(&b->f, v, "'memory' must be at least 1M");
        }
        if ((v = er_node_get(n, "pids")) &&
            er_field_uint(&b->f, v, "pids", 1, UINT64_C(4194304), &s->limits.pids) < 0)
                r = -ER_ECONFIG;
        if ((v = er_node_get(n, "cpu_time"))) {
                if (er_field_duration(&b->f, v, "cpu_time", &s->limits.cpu_time_us) < 0)
                        r = -ER_ECONFIG;
                else if (s->limits.cpu_time_us == 0)
                        r = er_field_error(&b->f, v, "'cpu_time' must be greater than 0");
        }
        return r;
}

static int build_log(struct builder *b, struct er_service *s, const struct er_node *n)
{
        const struct er_node *v;
        int r = 0;

        if (er_field_want_map(&b->f, n, "log") < 0)
                return -ER_ECONFIG;
        if (er_field_check_keys(&b->f, n, log_keys, N(log_keys), " in 'log'"))
                r = -ER_ECONFIG;
        if ((v = er_node_get(n, "max_size"))) {
                if (er_field_size(&b->f, v, "max_size", &s->log_max_size) < 0)
                        r = -ER_ECONFIG;
                else if (s->log_max_size < MIN_LOG_MAX_SIZE)
                        r = er_field_error(&b->f, v, "'max_size' must be at least 4K");
        }
        return r;
}

static int build_user(struct builder *b, struct er_service *s, const struct er_node *n)
{
        char *u;
        s->user_loc = er_field_loc(n);
        if (er_field_str(&b->f, n, "user", &u, NULL) < 0)
                return -ER_ECONFIG;
        /* An empty user (`user: ${PG_USER-}`) means envrun's own. */
        if (!*u) {
                free(u);
                return 0;
        }
        s->user = u;
        return 0;
}

/* Reads the optional scalar fields of a service in one table-driven pass. */
static int build_service_scalars(struct builder *b, struct er_service *s, const struct er_node *m)
{
        const struct er_node *n;
        uint64_t v;
        int r = 0;

        if ((n = er_node_get(m, "timeout"))) {
                if (er_field_duration(&b->f, n, "timeout", &s->timeout_us) < 0)
                        r = -ER_ECONFIG;
                else if (s->timeout_us == 0)
                        r = er_field_error(&b->f, n, "'timeout' must be greater than 0");
        }
        if ((n = er_node_get(m, "stop_timeout")) &&
            er_field_duration(&b->f, n, "stop_timeout", &s->stop_timeout_us) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "sig_stop")) && er_field_signal(&b->f, n, "sig_stop", &s->sig_stop) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "sig_kill")) && er_field_signal(&b->f, n, "sig_kill", &s->sig_kill) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "ok_exit")) && er_field_codes(&b->f, n, "ok_exit", &s->ok_exit) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "max_restarts"))) {
                if (er_field_uint(&b->f, n, "max_restarts", 0, 1000000, &v) < 0)
                        r = -ER_ECONFIG;
                else
                        s->max_restarts = (unsigned)v;
        }
        if ((n = er_node_get(m, "user")) && build_user(b, s, n) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "restart")) && build_restart(b, s, n) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "limits")) && build_limits(b, s, n) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "log")) && build_log(b, s, n) < 0)
                r = -ER_ECONFIG;
        return r;
}

static void service_defaults(struct er_service *s)
{
        s->uid = s->gid = -1;
        s->timeout_us = DEFAULT_TIMEOUT_US;
        s->stop_timeout_us = DEFAULT_STOP_TIMEOUT_US;
        s->sig_stop = SIGTERM;
        s->sig_kill = SIGKILL;
        er_codes_add(&s->ok_exit, 0);
        s->restart = ER_RESTART_NO;
        s->max_restarts = 5;
        s->log_max_size = DEFAULT_LOG_MAX_SIZE;
        er_envlist_init(&s->env);
}

static int build_service(struct builder *b, struct er_service *s, const struct er_node *key,
                         const struct er_node *m)
{
        char where[ER_NAME_MAX + 32];
        const struct er_node *n;
        int r = 0;

        service_defaults(s);
        s->loc = er_field_loc(key);
        if (!(s->name = er_strdup(key->str)))
                return er_field_error(&b->f, key, "out of memory");
        if (!er_name_valid(key->str))
                r = er_field_error(&b->f, key,
                                   "invalid service name '%s': names match "
                                   "[A-Za-z0-9][A-Za-z0-9_.-]* (at most %d characters)",
                                   key->str, ER_NAME_MAX);
        if (m->kind != ER_NODE_MAP)
                return er_field_error(&b->f, m,
                                      "service '%s' must be a map with at least 'command', not %s",
                                      key->str, er_node_kind_name(m));
        snprintf(where, sizeof(where), " in service '%s'", key->str);
        if (er_field_check_keys(&b->f, m, service_keys, N(service_keys), where))
                r = -ER_ECONFIG;
        if (build_cmd(b, m, er_node_get(m, "command"), &s->cmd) < 0)
                r = -ER_ECONFIG;
        if (build_env(b, m, &s->env) < 0)
                r = -ER_ECONFIG;
        if (build_service_scalars(b, s, m) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "ready")) &&
            er_check_parse_list(&b->f, n, s->cmd.cwd ? s->cmd.cwd : b->c->dir, &s->checks,
                                &s->n_checks) < 0)
                r = -ER_ECONFIG;
        if ((n = er_node_get(m, "depends_on")) && build_deps(b, s, n) < 0)
                r = -ER_ECONFIG;
        return r;
}

static int build_services(struct builder *b, const struct er_node *root)
{
        const struct er_node *n = er_node_get(root, "services");
        int r = 0;

        if (!n)
                return er_field_error(&b->f, root, "'services' is required");
        if (n->kind != ER_NODE_MAP)
                return er_field_error(&b->f, n, "'services' must be a map of services, not %s",
                                      er_node_kind_name(n));
        if (n->n == 0)
                return er_field_error(&b->f, n, "'services' must define at least one service");
        if (n->n > ER_SERVICES_MAX)
                return er_field_error(&b->f, n, "too many services: %zu (at most %d)", n->n,
                                      ER_SERVICES_MAX);
        b->c->services = calloc(n->n, sizeof(*b->c->services));
        if (!b->c->services)
                return er_field_error(&b->f, n, "out of memory");
        for (size_t i = 0; i < n->n; i++) {
                b->c->n_services++;
                if (build_service(b, &b->c->services[i], n->pairs[i].key, n->pairs[i].val) < 0)
                        r = -ER_ECONFIG;
        }
        return r;
}

static int build_test(struct builder *b, const struct er_node *root)
{
        const struct er_node *n = er_node_get(root, "test"), *t;
        struct er_test *test = &b->c->test;
        int r = 0;

        er_envlist_init(&test->env);
        if (!n)
                return 0;
        test->present = true;
        if (n->kind != ER_NODE_MAP) {
                /* `test: pytest -q` is the command alone. */
                struct er_node empty = {.kind = ER_NODE_MAP, .line = n->line, .col = n->col};
                return build_cmd(b, &empty, n, &test->cmd);
        }
        if (er_field_check_keys(&b->f, n, test_keys, N(test_keys), " in 'test'"))
                r = -ER_ECONFIG;
        if (build_cmd(b, n, er_node_get(n, "command"), &test->cmd) < 0)
                r = -ER_ECONFIG;
        if (build_env(b, n, &test->env) < 0)
                r = -ER_ECONFIG;
        if ((t = er_node_get(n, "timeout"))) {
                if (er_field_duration(&b->f, t, "timeout", &test->timeout_us) < 0)
                        r = -ER_ECONFIG;
                else if (test->timeout_us == 0)
                        r = er_field_error(&b->f, t, "'timeout' must be greater than 0");
        }
        return r;
}

int er_config_build_partial(const struct er_doc *doc, const char *path,
                            const struct er_config_opts *opts, struct er_config **ret_config,
                            struct er_errs *errs)
{
        const struct er_node *root = er_doc_root(doc), *n;
        struct builder *b;
        struct er_config *c;
        size_t n_errs = errs->n + errs->dropped;
        int r = 0;

        b = calloc(1, sizeof(*b));
        c = calloc(1, sizeof(*c));
        if (!b || !c) {
                free(b);
                free(c);
                return er_errs_add(errs, -ENOMEM, path, 0, 0, "out of memory");
        }
        er_envlist_init(&c->env_file);
        er_envlist_init(&c->env);
        er_envlist_init(&c->test.env);
        b->c = c;
        b->opts = opts;
        b->vars.environ = opts->environ;
        b->f = (struct er_fctx){.file = path, .vars = &b->vars, .errs = errs};
        c->file = er_strdup(path);
        c->dir = abs_dir(path);
        if (!c->file || !c->dir) {
                r = er_errs_add(errs, -errno, path, 0, 0, "cannot find the file's directory: %s",
                                strerror(errno));
                goto out;
        }
        b->f.dir = c->dir;
        if (!root) {
                r = er_errs_add(errs, -ER_ECONFIG, path, 0, 0, "the file is empty: 'services' is required");
                goto out;
        }
        if (root->kind != ER_NODE_MAP) {
                r = er_field_error(&b->f, root, "the file must be a map with 'services', not %s",
                                   er_node_kind_name(root));
                goto out;
        }
        check_top_keys(b, root);
        /* Phase 1: what interpolation itself needs. The top-level env_file's
         * path can use the environment and ENVRUN_DIR only. */
        setup_vars(b);
        if ((n = er_node_get(root, "env_file")))
                er_field_env_file(&b->f, n, &c->env_file);
        b->vars.file_env = &c->env_file;
        build_name(b, root);
        build_ports(b, root);
        /* Phase 2: every other value, with every variable known. */
        setup_vars(b);
        if ((n = er_node_get(root, "env")))
                er_field_env(&b->f, n, &c->env);
        build_services(b, root);
        build_test(b, root);
out:
        free(b);
        if (r < 0 && (r == -ENOMEM || !c->file || !c->dir)) {
                er_config_free(c);
                return r;
        }
        if (errs->n + errs->dropped > n_errs && r == 0)
                r = -ER_ECONFIG;
        *ret_config = c;
        return r;
}

int er_config_build(const struct er_doc *doc, const char *path, const struct er_config_opts *opts,
                    struct er_config **ret_config, struct er_errs *errs)
{
        struct er_config *c = NULL;
        int r = er_config_build_partial(doc, path, opts, &c, errs);
        if (r < 0) {
                er_config_free(c);
                return r;
        }
        *ret_config = c;
        return 0;
}

static void service_fini(struct er_service *s)
{
        free(s->name);
        er_cmd_fini(&s->cmd);
        er_envlist_fini(&s->env);
        free(s->user);
        for (size_t i = 0; i < s->n_checks; i++)
                er_check_free(s->checks[i]);
        free(s->checks);
        for (size_t i = 0; i < s->n_deps; i++)
                free(s->deps[i].name);
        free(s->deps);
}

void er_config_free(struct er_config *c)
{
        if (!c)
                return;
        free(c->file);
        free(c->dir);
        free(c->name);
        free(c->project);
        er_envlist_fini(&c->env_file);
        er_envlist_fini(&c->env);
        for (size_t i = 0; i < c->n_services; i++)
                service_fini(&c->services[i]);
        free(c->services);
        for (size_t i = 0; i < c->n_ports; i++)
                free(c->ports[i].name);
        free(c->ports);
        er_cmd_fini(&c->test.cmd);
        er_envlist_fini(&c->test.env);
        free(c);
}
