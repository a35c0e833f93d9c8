/* ls: the current user's instances (issue 18).  Every directory of the
 * user's state base (and of the base for services run as other users, when
 * it is another directory) that holds an instance: an `up` instance is
 * asked for its status over its control socket; a dead one that left
 * records is stale; a running `exec` shows as exec. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "api/ctl_client.h"
#include "instance/records.h"
#include "instance/state.h"
#include "run.h"

#define LS_CALL_TIMEOUT_US 2000000u
#define EXEC_INFIX ".exec."

/* The records' supervisor of a dead instance, or 0 when it left none. */
static long stale_supervisor(const char *dir)
{
        struct er_state st;
        struct er_records rec;
        long pid = 0;

        er_state_init(&st);
        er_records_init(&rec);
        if (er_state_open(&st, dir, false) == 0 && er_records_read(&st, &rec) == 0)
                pid = rec.supervisor ? rec.supervisor : -1;
        er_records_fini(&rec);
        er_state_fini(&st);
        return pid;
}

/* The status of a live `up` instance, or NULL when it does not answer. */
static json_t *live_status(const char *dir)
{
        struct er_ctl_reply reply = {0};
        struct er_err err = {0};
        char sock[4400];
        json_t *j;

        if (snprintf(sock, sizeof(sock), "%s/control.sock", dir) >= (int)sizeof(sock))
                return NULL;
        if (er_ctl_client_call(sock, "GET", "/v1/status", NULL, LS_CALL_TIMEOUT_US, &reply, &err) < 0)
                return NULL;
        j = json_loadb(reply.body, reply.body_len, 0, NULL);
        er_ctl_client_reply_fini(&reply);
        return json_is_object(j) ? j : (json_decref(j), NULL);
}

/* One instance's entry: project, state, directory, services ready/total,
 * ports, supervisor; NULL when dir holds none. */
static json_t *entry(const char *base, const char *name)
{
        char dir[4200], project[256];
        const char *infix = strstr(name, EXEC_INFIX);
        json_t *e, *st, *v;
        size_t i, ready = 0, total = 0;
        long pid;
        int live;

        if (snprintf(dir, sizeof(dir), "%s/%s", base, name) >= (int)sizeof(dir))
                return NULL; /* no instance directory: too long for one */
        snprintf(project, sizeof(project), "%.*s", infix ? (int)(infix - name) : 255, name);
        live = er_state_probe(dir);
        if (live == 0 && (pid = stale_supervisor(dir)) != 0)
                return json_pack("{s:s, s:s, s:s, s:I}", "project", project, "state", "stale",
                                 "directory", dir, "supervisor_pid", (json_int_t)(pid > 0 ? pid : 0));
        if (live != 1)
                return NULL; /* a directory `down --keep` left, or none */
        if (infix)
                return json_pack("{s:s, s:s, s:s}", "project", project, "state", "exec", "directory",
                                 dir);
        if (!(st = live_status(dir)))
                return json_pack("{s:s, s:s, s:s}", "project", project, "state", "unreachable",
                                 "directory", dir);
        json_array_foreach(json_object_get(st, "services"), i, v) {
                if (!json_is_true(json_object_get(v, "selected")))
                        continue;
                total++;
                ready += run_service_up(v);
        }
        e = json_pack("{s:s, s:O, s:s, s:O, s:I, s:I, s:O}", "project", project, "state",
                      json_object_get(st, "state"), "directory", dir, "supervisor_pid",
                      json_object_get(st, "supervisor_pid"), "services_ready", (json_int_t)ready,
                      "services_total", (json_int_t)total, "ports", json_object_get(st, "ports"));
        json_decref(st);
        return e;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name);
}

/* Appends base's instances to list.  0, or -errno when base cannot be read
 * (a base that does not exist holds none). */
static int scan(const char *base_in, json_t *list)
{
        struct dirent **names;
        char base[PATH_MAX];
        int n;

        if (!realpath(base_in, base))
                return errno == ENOENT ? 0 : -errno;
        n = scandir(base, &names, NULL, by_name);

        if (n < 0)
                return errno == ENOENT ? 0 : -errno;
        for (int i = 0; i < n; i++) {
                json_t *e = names[i]->d_name[0] == '.' ? NULL : entry(base, names[i]->d_name);
                if (e)
                        json_array_append_new(list, e);
                free(names[i]);
        }
        free(names);
        return 0;
}

static void print_table(json_t *list)
{
        size_t i, w = 7;
        json_t *e, *v;
        const char *k;

        json_array_foreach(list, i, e)
                if (strlen(json_string_value(json_object_get(e, "project"))) > w)
                        w = strlen(json_string_value(json_object_get(e, "project")));
        printf("%-*s  %-11s  %-8s  %s\n", (int)w, "PROJECT", "STATE", "SERVICES", "DIRECTORY  PORTS");
        json_array_foreach(list, i, e) {
                char svcs[32] = "-";
                if (json_is_integer(json_object_get(e, "services_total")))
                        snprintf(svcs, sizeof(svcs), "%lld/%lld",
                                 (long long)json_integer_value(json_object_get(e, "services_ready")),
                                 (long long)json_integer_value(json_object_get(e, "services_total")));
                printf("%-*s  %-11s  %-8s  %s", (int)w,
                       json_string_value(json_object_get(e, "project")),
                       json_string_value(json_object_get(e, "state")), svcs,
                       json_string_value(json_object_get(e, "directory")));
                json_object_foreach(json_object_get(e, "ports"), k, v)
                        printf("  %s=%lld", k, (long long)json_integer_value(v));
                putchar('\n');
        }
}

int verb_ls(int argc, char **argv)
{
        char base[4096], other[4096];
        json_t *list = json_array();
        int r;

        if (argc > 0)
                return cli_fail(EXIT_USAGE, "'ls' takes no arguments, got '%s'", argv[0]);
        if ((r = er_state_base(arg_state_dir, false, base, sizeof(base))) < 0 ||
            (r = scan(base, list)) < 0) {
                json_decref(list);
                return run_state_base_fail(EXIT_FAILED, base, r);
        }
        /* Instances whose services run as other users live apart (SPEC §7). */
        if (!arg_state_dir && er_state_base(NULL, true, other, sizeof(other)) == 0 &&
            strcmp(other, base) != 0 && (r = scan(other, list)) < 0) {
                json_decref(list);
                return run_state_base_fail(EXIT_FAILED, other, r);
        }
        if (cli_has(OPT_JSON)) {
                json_dumpf(list, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                putchar('\n');
        } else if (json_array_size(list)) {
                print_table(list);
        } else if (arg_verbosity >= 0) {
                cli_fail(0, "no instance is up");
        }
        json_decref(list);
        return EXIT_OK;
}
