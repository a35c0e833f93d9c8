/* up on a project that is up (issue 18): the named services (all of them
 * without names) and their dependencies are brought up inside the running
 * instance, which keeps the configuration it was started with.  Running
 * services are left alone; when every one named is up already, SPEC §2's
 * AlreadyRunning applies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "api/ctl_client.h"
#include "base/buf.h"
#include "run.h"

/* One call to the supervisor, its answer as JSON (*http_status set), or
 * NULL after saying why. */
static json_t *call(const char *sock, const char *project, const char *method,
                    const char *target, int *http_status, bool quiet)
{
        struct er_ctl_reply reply = {0};
        struct er_err err = {0};
        json_t *j;

        /* No time bound: the answer comes once the bring-up is over, which
         * the services' own timeouts bound. */
        if (er_ctl_client_call(sock, method, target, NULL, 0, &reply, &err) < 0) {
                if (!quiet)
                        cli_fail(0, "'%s' is up, but its supervisor does not answer: %s", project,
                                 err.msg);
                return NULL;
        }
        j = json_loadb(reply.body, reply.body_len, 0, NULL);
        *http_status = reply.status;
        er_ctl_client_reply_fini(&reply);
        if (!json_is_object(j)) {
                json_decref(j);
                cli_fail(0, "'%s': the supervisor's answer is not JSON", project);
        }
        return json_is_object(j) ? j : NULL;
}

/* Says so when the file changed since the instance was started. */
static void note_changed(const char *path, json_t *status, const char *project)
{
        char now[32];

        if (run_config_digest(path, now, sizeof(now)) == 0 && *run_jstr(status, "config_digest") &&
            strcmp(now, run_jstr(status, "config_digest")) != 0)
                cli_fail(0,
                         "'%s' changed since '%s' was started; the instance keeps the "
                         "configuration it was started with (`envrun down`, then `up`, to use "
                         "the file as it is now)",
                         path, project);
}

/* Prints each service of the environment and its state; EXIT_OK when
 * every one is ready (or a completed job). */
static int report_states(json_t *status, const char *project)
{
        json_t *v;
        size_t i;
        int rc = EXIT_OK;

        json_array_foreach(json_object_get(status, "services"), i, v) {
                const char *st = run_jstr(v, "state");
                if (!json_is_true(json_object_get(v, "selected")))
                        continue;
                fprintf(stderr, "%s: %s\n", run_jstr(v, "name"), st);
                if (!run_service_up(v)) {
                        if (*run_jstr(v, "message"))
                                cli_fail(0, "%s: %s: %s", run_jstr(v, "name"), run_jstr(v, "error"),
                                         run_jstr(v, "message"));
                        rc = EXIT_FAILED;
                }
        }
        if (rc == EXIT_OK && arg_verbosity >= 0)
                cli_fail(0, "'%s' is up (supervisor pid %lld)", project,
                         (long long)json_integer_value(json_object_get(status, "supervisor_pid")));
        return rc;
}

int up_more(const char *path, const char *project, const char *dir, int argc, char **argv)
{
        char sock[4400];
        struct er_buf target = {0};
        json_t *j;
        int hs = 0, rc;

        snprintf(sock, sizeof(sock), "%s/control.sock", dir);
        /* Not answering yet: a supervisor that won a race of `up` and is
         * still starting (the caller says AlreadyRunning, naming it). */
        if (!(j = call(sock, project, "GET", "/v1/status", &hs, true)))
                return UP_MORE_UNREACHABLE;
        note_changed(path, j, project);
        json_decref(j);
        er_buf_puts(&target, "/v1/up?services=");
        for (int i = 0; i < argc; i++)
                er_buf_printf(&target, "%s%s", i ? "," : "", argv[i]);
        char *t = NULL;
        if (er_buf_finish(&target, &t, NULL) < 0)
                return cli_fail(EXIT_FAILED, "out of memory");
        j = call(sock, project, "POST", t, &hs, false);
        free(t);
        if (!j)
                return EXIT_FAILED;
        if (hs != 200) {
                cli_fail(0, "%s", run_jstr(j, "error"));
                json_decref(j);
                return EXIT_FAILED;
        }
        if (json_is_true(json_object_get(j, "already_up")))
                rc = cli_fail(EXIT_FAILED,
                              "AlreadyRunning: '%s' is already up with %s (supervisor pid %lld, %s)",
                              project, argc ? "every service named" : "every service",
                              (long long)json_integer_value(json_object_get(j, "supervisor_pid")),
                              dir);
        else
                rc = report_states(j, project);
        json_decref(j);
        return rc;
}
