/* status, logs, start, stop, restart, down: the verbs that talk to a
 * project's supervisor through its control API (SPEC §2, §8), and clean
 * up after one that died (§5.7). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "api/ctl_client.h"
#include "base/buf.h"
#include "proc/log.h"
#include "run.h"
#include "instance/records.h"
#include "instance/state.h"

#define EXIT_NOT_UP 3          /* status: nothing is up (LSB) */
#define CALL_TIMEOUT_US 10000000u
#define DOWN_WAIT_S 60         /* the supervisor exits once its report is sent */

/* Where the project's instance lives. */
struct target {
        char project[256];
        char base[4096];
        char dir[4400];
        char sock[4500];
        int live;              /* er_state_probe: 1 live, 0 free, -ENOENT none */
};

/* Finds the project (-p, or the file's name) and its instance directory.
 * 0, or an exit status after printing why. */
static int locate(struct target *t, int fail_status)
{
        struct er_config *c = NULL;
        bool for_others = false;
        int rc;

        if (arg_project && !arg_file && access("environment.yml", F_OK) < 0 &&
            access("environment.yaml", F_OK) < 0) {
                /* -p alone names the project, no file needed */
        } else {
                const char *path = cli_config_path();
                if (!path || !(c = run_load_probe(path, NULL)))
                        return EXIT_USAGE;
                for_others = run_for_others(c);
        }
        snprintf(t->project, sizeof(t->project), "%s", c ? c->project : arg_project);
        er_config_free(c);
        rc = er_state_base(arg_state_dir, for_others, t->base, sizeof(t->base));
        if (rc == -ENOENT) {
                /* No place where an instance could live ($XDG_RUNTIME_DIR
                 * or --state-dir's parent missing): nothing is up there. */
                t->dir[0] = t->sock[0] = '\0';
                t->live = -ENOENT;
                return 0;
        }
        if (rc < 0)
                return run_state_base_fail(fail_status, t->base, rc);
        snprintf(t->dir, sizeof(t->dir), "%s/%s", t->base, t->project);
        snprintf(t->sock, sizeof(t->sock), "%s/control.sock", t->dir);
        t->live = er_state_probe(t->dir);
        if (t->live == -EPERM)
                return cli_fail(fail_status,
                                "'%s/lock' is not a lock file of yours (a symlink, a FIFO or "
                                "another user's file): refusing to use '%s'",
                                t->dir, t->dir);
        return 0;
}

/* A dead instance that left records: its supervisor died (§5.7). */
static bool stale(const struct target *t, long *ret_pid)
{
        struct er_state st;
        struct er_records rec;
        bool yes = false;

        if (t->live != 0)
                return false;
        er_state_init(&st);
        er_records_init(&rec);
        if (er_state_open(&st, t->dir, false) == 0 && er_records_read(&st, &rec) == 0) {
                yes = true;
                *ret_pid = rec.supervisor;
        }
        er_records_fini(&rec);
        er_state_fini(&st);
        return yes;
}

static int nothing_up(const struct target *t, int status)
{
        if (arg_verbosity >= 0 || status)
                cli_fail(0, "nothing is up for '%s'", t->project);
        return status;
}

/* One call whose answer must be JSON; prints errors.  NULL on failure
 * (*status set). */
static json_t *call_json(const struct target *t, const char *method, const char *target,
                         uint64_t timeout_us, int *http_status, int *status)
{
        struct er_ctl_reply reply = {0};
        struct er_err err = {0};
        json_t *j;

        if (er_ctl_client_call(t->sock, method, target, NULL, timeout_us, &reply, &err) < 0) {
                *status = cli_fail(EXIT_FAILED, "'%s': %s", t->project, err.msg);
                return NULL;
        }
        j = json_loadb(reply.body, reply.body_len, 0, NULL);
        *http_status = reply.status;
        er_ctl_client_reply_fini(&reply);
        if (!j) {
                *status = cli_fail(EXIT_FAILED, "'%s': the supervisor's answer is not JSON", t->project);
                return NULL;
        }
        if (*http_status >= 500) {
                /* 503: more clients at once than it serves; no answer to use. */
                *status = cli_fail(EXIT_FAILED, "'%s': the supervisor answered %d: %s",
                                   t->project, *http_status,
                                   json_is_string(json_object_get(j, "error"))
                                           ? json_string_value(json_object_get(j, "error"))
                                           : "no answer");
                json_decref(j);
                return NULL;
        }
        return j;
}

/* --- status ----------------------------------------------------------------- */

static void print_status(json_t *j)
{
        json_t *svcs = json_object_get(j, "services"), *v;
        size_t i, width = 4;

        printf("%s  %s  supervisor %lld\n", run_jstr(j, "project"), run_jstr(j, "state"),
               (long long)json_integer_value(json_object_get(j, "supervisor_pid")));
        if (arg_verbosity > 0) {
                const char *k;
                printf("containment: %s\ninstance:    %s\nstate dir:   %s\n",
                       run_jstr(j, "containment_reason"), run_jstr(j, "instance_dir"),
                       run_jstr(j, "state_dir"));
                json_object_foreach(json_object_get(j, "ports"), k, v)
                        printf("port:        %s=%lld\n", k, (long long)json_integer_value(v));
        }
        json_array_foreach(svcs, i, v)
                if (strlen(run_jstr(v, "name")) > width)
                        width = strlen(run_jstr(v, "name"));
        json_array_foreach(svcs, i, v) {
                json_t *pid = json_object_get(v, "pid"), *ready = json_object_get(v, "ready_ms");
                if (!json_is_true(json_object_get(v, "selected")))
                        continue;
                printf("%-*s  %-9s", (int)width, run_jstr(v, "name"), run_jstr(v, "state"));
                if (json_is_integer(pid))
                        printf("  pid %lld", (long long)json_integer_value(pid));
                if (json_is_integer(ready))
                        printf("  ready %lldms", (long long)json_integer_value(ready));
                if (json_is_integer(json_object_get(v, "ran_ms")))
                        printf("  ran %lldms  exit %lld",
                               (long long)json_integer_value(json_object_get(v, "ran_ms")),
                               (long long)json_integer_value(json_object_get(v, "exit_code")));
                printf("  restarts %lld", (long long)json_integer_value(json_object_get(v, "restarts")));
                if (json_is_string(json_object_get(v, "error")))
                        printf("  %s: %s", run_jstr(v, "error"), run_jstr(v, "message"));
                putchar('\n');
        }
}

int verb_status(int argc, char **argv)
{
        struct target t;
        json_t *j;
        long pid = 0;
        int status, hs;

        if (argc > 0)
                return cli_fail(EXIT_USAGE, "'status' takes no arguments, got '%s'", argv[0]);
        if ((status = locate(&t, EXIT_FAILED)))
                return status;
        if (t.live != 1) {
                bool is_stale = stale(&t, &pid);
                if (cli_has(OPT_JSON)) {
                        j = is_stale ? json_pack("{s:s, s:s, s:I}", "project", t.project, "state",
                                                 "stale", "supervisor_pid", (json_int_t)pid)
                                     : json_pack("{s:s, s:s}", "project", t.project, "state", "down");
                        json_dumpf(j, stdout, JSON_INDENT(2));
                        putchar('\n');
                        json_decref(j);
                } else if (is_stale) {
                        printf("%s  stale  supervisor %ld (gone)\n", t.project, pid);
                        cli_fail(0, "the supervisor of '%s' died: run 'envrun down' to clean up what is left",
                                 t.project);
                } else {
                        printf("%s  down\n", t.project);
                }
                return is_stale ? EXIT_FAILED : EXIT_NOT_UP;
        }
        if (!(j = call_json(&t, "GET", "/v1/status", CALL_TIMEOUT_US, &hs, &status)))
                return status;
        if (hs != 200) {
                /* A 503 (the control socket is flooded) or any other refusal:
                 * say so, never print a status that is not one. */
                status = cli_fail(EXIT_FAILED, "'%s': the supervisor answered %d: %s", t.project,
                                  hs, *run_jstr(j, "error") ? run_jstr(j, "error") : "no status");
                json_decref(j);
                return status;
        }
        if (cli_has(OPT_JSON)) {
                json_dumpf(j, stdout, JSON_INDENT(2));
                putchar('\n');
        } else {
                print_status(j);
        }
        status = strcmp(run_jstr(j, "state"), "up") == 0 ? EXIT_OK : EXIT_FAILED;
        json_decref(j);
        return status;
}

/* --- env ------------------------------------------------------------------------ */

/* value in single quotes, each ' as '\'' (POSIX sh). */
static void put_quoted(const char *value)
{
        putchar('\'');
        for (const char *c = value; *c; c++)
                if (*c == '\'')
                        fputs("'\\''", stdout);
                else
                        putchar(*c);
        putchar('\'');
}

/* What a command run against the instance sees: ENVRUN_PROJECT,
 * ENVRUN_STATE_DIR and the ports, as in its environment. */
static json_t *env_of(json_t *status)
{
        json_t *env = json_object(), *v;
        const char *k;
        char port[24];

        json_object_set_new(env, "ENVRUN_PROJECT", json_string(run_jstr(status, "project")));
        json_object_set_new(env, "ENVRUN_STATE_DIR", json_string(run_jstr(status, "state_dir")));
        json_object_foreach(json_object_get(status, "ports"), k, v) {
                snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(v));
                json_object_set_new(env, k, json_string(port));
        }
        return env;
}

int verb_env(int argc, char **argv)
{
        struct target t;
        json_t *j, *env, *v;
        const char *k;
        int status, hs;

        if (argc > 0)
                return cli_fail(EXIT_USAGE, "'env' takes no arguments, got '%s'", argv[0]);
        if ((status = locate(&t, EXIT_FAILED)))
                return status;
        if (t.live != 1)
                return nothing_up(&t, EXIT_FAILED);
        if (!(j = call_json(&t, "GET", "/v1/status", CALL_TIMEOUT_US, &hs, &status)))
                return status;
        if (hs != 200) {
                status = cli_fail(EXIT_FAILED, "'%s': the supervisor answered %d: %s", t.project,
                                  hs, run_jstr(j, "error"));
                json_decref(j);
                return status;
        }
        env = env_of(j);
        json_decref(j);
        if (cli_has(OPT_JSON)) {
                json_dumpf(env, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                putchar('\n');
        } else {
                json_object_foreach(env, k, v) {
                        printf("export %s=", k);
                        put_quoted(json_string_value(v));
                        putchar('\n');
                }
        }
        json_decref(env);
        return EXIT_OK;
}

/* --- start, stop, restart ------------------------------------------------------ */

static int service_op(const char *op, int argc, char **argv)
{
        struct target t;
        char target[512];
        int status, worst = EXIT_OK;

        if (argc == 0)
                return cli_fail(EXIT_USAGE, "'%s' needs a SERVICE (envrun %s SERVICE...)", op, op);
        if ((status = locate(&t, EXIT_FAILED)))
                return status;
        if (t.live != 1)
                return nothing_up(&t, EXIT_FAILED);
        for (int i = 0; i < argc; i++) {
                int hs = 0;
                json_t *j;
                if (strpbrk(argv[i], "/?&% ") || !*argv[i])
                        return cli_fail(EXIT_USAGE, "no service '%s'", argv[i]);
                snprintf(target, sizeof(target), "/v1/services/%s/%s", argv[i], op);
                /* No time bound: the answer comes once the service settled,
                 * which its own timeout bounds. */
                if (!(j = call_json(&t, "POST", target, 0, &hs, &status)))
                        return status;
                if (hs == 404) {
                        json_decref(j);
                        return cli_fail(EXIT_USAGE, "no service '%s' in '%s'", argv[i], t.project);
                }
                if (hs != 200) {
                        cli_fail(0, "%s", run_jstr(j, "error"));
                        worst = EXIT_FAILED;
                } else {
                        printf("%s: %s\n", argv[i], run_jstr(j, "state"));
                        if (json_is_string(json_object_get(j, "error"))) {
                                cli_fail(0, "%s: %s: %s", argv[i], run_jstr(j, "error"), run_jstr(j, "message"));
                                worst = EXIT_FAILED;
                        }
                }
                json_decref(j);
        }
        return worst;
}

int verb_start(int argc, char **argv)
{
        return service_op("start", argc, argv);
}

int verb_stop(int argc, char **argv)
{
        return service_op("stop", argc, argv);
}

int verb_restart(int argc, char **argv)
{
        return service_op("restart", argc, argv);
}

/* --- down ---------------------------------------------------------------------- */

static void on_alarm(int sig)
{
        (void)sig; /* interrupts the wait for the lock */
}

/* Waits until the supervisor is gone, so that nothing of the instance is
 * left once down returns: it removes its directory, then leaves the lock
 * to its exit (er_state_hold_lock_to_exit), so a read lock (F_OFD_SETLKW)
 * is granted only when the kernel closes its descriptors as it exits. */
static void wait_gone(int lock_fd)
{
        struct sigaction sa = {.sa_handler = on_alarm}, old;
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
        if (lock_fd < 0)
                return;
        sigaction(SIGALRM, &sa, &old);
        alarm(DOWN_WAIT_S);
        if (fcntl(lock_fd, F_OFD_SETLKW, &fl) == 0) {
                fl.l_type = F_UNLCK;
                fcntl(lock_fd, F_OFD_SETLK, &fl);
        }
        alarm(0);
        sigaction(SIGALRM, &old, NULL);
}

int verb_down(int argc, char **argv)
{
        struct target t;
        char target[128], lock[4500];
        json_t *j;
        long pid;
        int status, hs = 0, lock_fd;

        if (argc > 0)
                return cli_fail(EXIT_USAGE, "'down' takes no arguments, got '%s'", argv[0]);
        if ((status = locate(&t, EXIT_FAILED)))
                return status;
        run_reap_stale_execs(t.base, t.project);
        if (t.live != 1) {
                if (stale(&t, &pid))
                        return run_reap_stale_up(t.dir, t.project, cli_has(OPT_KEEP)) < 0 ? EXIT_FAILED
                                                                                            : EXIT_OK;
                return nothing_up(&t, EXIT_OK);
        }
        snprintf(lock, sizeof(lock), "%s/lock", t.dir);
        /* O_NONBLOCK: a FIFO planted there must not hang the open */
        lock_fd = open(lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        snprintf(target, sizeof(target), "/v1/environment?text=%s%s",
                 arg_color ? "color" : "1", cli_has(OPT_KEEP) ? "&keep=1" : "");
        j = call_json(&t, "DELETE", target, 0, &hs, &status);
        if (!j) {
                if (lock_fd >= 0)
                        close(lock_fd);
                return status;
        }
        if (hs != 200) {
                status = cli_fail(EXIT_FAILED, "'%s': %s", t.project, run_jstr(j, "error"));
        } else {
                fputs(run_jstr(j, "text"), stderr);
                status = strcmp(run_jstr(json_object_get(j, "report"), "result"), "ok") == 0 ? EXIT_OK
                                                                                        : EXIT_FAILED;
        }
        json_decref(j);
        wait_gone(lock_fd);
        if (lock_fd >= 0)
                close(lock_fd);
        return status;
}

/* --- logs ------------------------------------------------------------------------ */

struct stream {
        const char *name;
        struct er_ctl_client *c;
        struct er_buf partial; /* a line's start, its end still to come */
        bool done;
};

static bool opt_timestamps, opt_prefix;
static size_t name_width;

/* A log line is "<timestamp> <stream> <text>". */
static void print_log_line(const char *name, const char *line, size_t len)
{
        const char *sp1 = memchr(line, ' ', len), *text = line;
        size_t tlen = len;

        if (sp1 && (size_t)(sp1 - line) + 3 <= len && sp1[2] == ' ') {
                text = sp1 + 3;
                tlen = len - (size_t)(text - line);
        }
        if (opt_prefix)
                printf("%-*s | ", (int)name_width, name);
        if (opt_timestamps && text != line)
                printf("%.*s ", (int)(sp1 - line), line);
        fwrite(text, 1, tlen, stdout);
        putchar('\n');
}

static void on_data(void *ud, const char *buf, size_t len)
{
        struct stream *s = ud;
        const char *nl;

        while (len && (nl = memchr(buf, '\n', len))) {
                size_t n = (size_t)(nl - buf);
                if (s->partial.len) {
                        if (er_buf_put(&s->partial, buf, n) == 0)
                                print_log_line(s->name, s->partial.p, s->partial.len);
                        er_buf_clear(&s->partial); /* out of memory: the line is lost */
                } else {
                        print_log_line(s->name, buf, n);
                }
                buf = nl + 1;
                len -= n + 1;
        }
        if (len && er_buf_put(&s->partial, buf, len) < 0)
                er_buf_clear(&s->partial); /* out of memory: the line is lost */
}

struct log_tail_ctx {
        const char *name;
};

static void tail_cb(void *ud, const char *line, size_t len)
{
        print_log_line(((struct log_tail_ctx *)ud)->name, line, len);
}

/* A stale instance's logs are still on disk: read them directly. */
static int logs_from_disk(const struct target *t, char **names, size_t n, size_t lines)
{
        struct er_state st;
        int fd = -1;
        er_state_init(&st);
        if (er_state_open(&st, t->dir, false) == 0 && er_state_has_logs(&st))
                fd = openat(er_state_data_fd(&st), "logs",
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        er_state_fini(&st);
        if (fd < 0)
                return nothing_up(t, EXIT_FAILED);
        for (size_t i = 0; i < n; i++) {
                struct log_tail_ctx ctx = {names[i]};
                er_log_tail(fd, names[i], lines, tail_cb, &ctx);
        }
        close(fd);
        return EXIT_OK;
}

/* -n N into *lines (SIZE_MAX without -n).  0 or EXIT_USAGE, said. */
static int lines_option(size_t *lines)
{
        const char *v = cli_value(OPT_LINES);
        char *end;
        unsigned long long x;

        *lines = SIZE_MAX;
        if (!v)
                return 0;
        x = strtoull(v, &end, 10);
        if (!*v || *end || *v == '-')
                return cli_fail(EXIT_USAGE, "-n takes a number of lines, not '%s'", v);
        *lines = (size_t)x;
        return 0;
}

/* Which services' logs: those named (each checked against the running
 * instance's status j, when there is one), else all of the running
 * instance's selected services.  0 or an exit status, said; *ret_names is
 * argv or a malloc'd array of names held by j. */
static int log_services(const struct target *t, json_t *j, int argc, char **argv,
                        char ***ret_names, size_t *ret_n)
{
        json_t *svcs = json_object_get(j, "services"), *v;
        size_t k, n = 0;
        char **names;

        if (argc > 0) {
                for (int i = 0; j && i < argc; i++) {
                        bool found = false;
                        json_array_foreach(svcs, k, v)
                                found = found || strcmp(run_jstr(v, "name"), argv[i]) == 0;
                        if (!found)
                                return cli_fail(EXIT_USAGE, "no service '%s' in '%s'", argv[i],
                                                t->project);
                }
                *ret_names = argv;
                *ret_n = (size_t)argc;
                return 0;
        }
        if (!j)
                return cli_fail(EXIT_USAGE, "'%s' is stale: name the services whose logs to show",
                                t->project);
        names = calloc(json_array_size(svcs) + 1, sizeof(*names));
        if (!names)
                return cli_fail(EXIT_FAILED, "out of memory");
        json_array_foreach(svcs, k, v)
                if (json_is_true(json_object_get(v, "selected")))
                        names[n++] = (char *)run_jstr(v, "name");
        *ret_names = names;
        *ret_n = n;
        return 0;
}

/* Opens s's log stream from the supervisor (the last `lines`, and what
 * comes after with follow).  0 or an exit status, said. */
static int open_log(const struct target *t, struct stream *s, size_t lines, bool follow)
{
        char target[512];
        struct er_err err = {0};

        if (strpbrk(s->name, "/?&% "))
                return cli_fail(EXIT_USAGE, "no service '%s'", s->name);
        if (lines == SIZE_MAX)
                snprintf(target, sizeof(target), "/v1/services/%s/logs%s", s->name,
                         follow ? "?follow=1" : "");
        else
                snprintf(target, sizeof(target), "/v1/services/%s/logs?tail=%zu%s", s->name, lines,
                         follow ? "&follow=1" : "");
        if (er_ctl_client_open(t->sock, "GET", target, CALL_TIMEOUT_US, &s->c, &err) < 0)
                return cli_fail(EXIT_FAILED, "%s", err.msg);
        return 0;
}

/* Copies s's stream to stdout to its end.  0 or an exit status, said. */
static int copy_log(struct stream *s)
{
        struct er_err err = {0};
        int rc;

        while ((rc = er_ctl_client_read(s->c, on_data, s, &err)) > 0) {
                struct pollfd p = {.fd = er_ctl_client_fd(s->c), .events = POLLIN};
                if (poll(&p, 1, CALL_TIMEOUT_US / 1000) <= 0) {
                        rc = -ETIMEDOUT;
                        snprintf(err.msg, sizeof(err.msg), "the supervisor stopped answering");
                        break;
                }
        }
        if (rc < 0)
                return cli_fail(EXIT_FAILED, "%s", err.msg);
        s->done = true;
        fflush(stdout);
        return 0;
}

/* -f: copies every stream as lines come, until the supervisor ends them. */
static int follow_logs(struct stream *streams, size_t n)
{
        struct pollfd *p = calloc(n ? n : 1, sizeof(*p));
        size_t open_n = n;

        if (!p)
                return cli_fail(EXIT_FAILED, "out of memory");
        while (open_n) {
                for (size_t i = 0; i < n; i++) {
                        p[i].fd = streams[i].done ? -1 : er_ctl_client_fd(streams[i].c);
                        p[i].events = POLLIN;
                        p[i].revents = 0;
                }
                if (poll(p, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (size_t i = 0; i < n; i++) {
                        struct er_err err = {0};
                        if (streams[i].done || !p[i].revents)
                                continue;
                        if (er_ctl_client_read(streams[i].c, on_data, &streams[i], &err) <= 0) {
                                streams[i].done = true;
                                open_n--;
                        }
                }
                fflush(stdout);
        }
        free(p);
        return EXIT_OK;
}

/* The running instance's logs through its supervisor: each in turn, or
 * with follow all at once. */
static int live_logs(const struct target *t, char **names, size_t n, size_t lines, bool follow)
{
        struct stream *streams = calloc(n ? n : 1, sizeof(*streams));
        int status = EXIT_OK;

        if (!streams)
                return cli_fail(EXIT_FAILED, "out of memory");
        for (size_t i = 0; i < n && status == EXIT_OK; i++) {
                streams[i].name = names[i];
                status = open_log(t, &streams[i], lines, follow);
                if (status == EXIT_OK && !follow)
                        status = copy_log(&streams[i]);
        }
        if (status == EXIT_OK && follow)
                status = follow_logs(streams, n);
        for (size_t i = 0; i < n; i++) {
                er_ctl_client_free(streams[i].c);
                er_buf_fini(&streams[i].partial);
        }
        free(streams);
        return status;
}

int verb_logs(int argc, char **argv)
{
        struct target t;
        char **names = NULL;
        size_t n = 0, lines;
        json_t *j = NULL;
        int status, hs;
        long pid;

        opt_timestamps = cli_has(OPT_TIMESTAMPS);
        if ((status = lines_option(&lines)))
                return status;
        if ((status = locate(&t, EXIT_FAILED)))
                return status;
        if (t.live != 1 && !stale(&t, &pid))
                return nothing_up(&t, EXIT_FAILED);
        if (t.live == 1 && !(j = call_json(&t, "GET", "/v1/status", CALL_TIMEOUT_US, &hs, &status)))
                return status;
        if ((status = log_services(&t, j, argc, argv, &names, &n))) {
                json_decref(j);
                return status;
        }
        opt_prefix = !(argc == 1);
        for (size_t i = 0; i < n; i++)
                if (strlen(names[i]) > name_width)
                        name_width = strlen(names[i]);
        if (t.live != 1)
                status = logs_from_disk(&t, names, n, lines);
        else
                status = live_logs(&t, names, n, lines, cli_has(OPT_FOLLOW));
        if (names != argv)
                free(names);
        json_decref(j);
        return status;
}
