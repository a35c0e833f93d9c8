/* run: progress, signals, loop drive and report, shared by exec, up and the
 * detached supervisor. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "api/ctl_client.h"
#include "base/buf.h"
#include "base/testhook.h"
#include "base/hash.h"
#include "instance/cleanup.h"
#include "instance/records.h"
#include "instance/state.h"
#include "model/load.h"
#include "report/report.h"
#include "run.h"
#include "outq.h"
#include "report/timeline.h"

extern char **environ;

/* The live display on a terminal: one line per service, redrawn in place. */
struct live_line {
        enum er_svc_state state;
        char detail[160];
        uint64_t since_us;      /* when the state began */
        bool seen;
};

void run_init(struct run *r)
{
        memset(r, 0, sizeof(*r));
        r->sfd = -1;
        r->progress = stderr;
        er_io_init(&r->sig_io);
        er_timer_init(&r->tick);
        er_timer_init(&r->rec_timer);
}

/* --- records for the clean-up after a crash (SPEC §5.7) ------------------- */

static void on_rec_timer(struct er_loop *loop, struct er_timer *t)
{
        struct run *r = er_container_of(t, struct run, rec_timer);
        (void)loop;
        er_records_write(r->rec_state, r->records);
}

void run_record_spawn(struct run *r, const struct er_sched_event *ev)
{
        struct er_svc_info info;

        if (!r->records || ev->service == SIZE_MAX || ev->state != ER_SVC_STARTING)
                return;
        er_sched_info(r->sched, ev->service, &info);
        if (info.pid <= 0 ||
            er_records_set_proc(r->records, r->config->services[ev->service].name, info.pid) < 0)
                return;
        if (!er_timer_active(&r->rec_timer))
                er_timer_start(r->loop, &r->rec_timer, 0, on_rec_timer);
}

void run_record_flush(struct run *r)
{
        if (r->loop && er_timer_active(&r->rec_timer)) {
                er_timer_stop(r->loop, &r->rec_timer);
                er_records_write(r->rec_state, r->records);
        }
}

bool run_getenv_true(const char *name)
{
        const char *v = getenv(name);
        return v && *v && strcmp(v, "0");
}

bool run_force_reaper(void)
{
        return run_getenv_true("ENVRUN_FORCE_REAPER") || run_getenv_true("ENVRUN_FORCE_SESSION");
}

/* --- progress (SPEC §1) ------------------------------------------------- */

void run_stamp(char *buf, size_t len)
{
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        snprintf(buf, len, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000);
}

static const char *state_color(enum er_svc_state st)
{
        switch (st) {
        case ER_SVC_READY:
        case ER_SVC_STOPPED:
                return "\033[32m";
        case ER_SVC_FAILED:
                return "\033[31m";
        case ER_SVC_EXITED:
                return "\033[36m";
        default:
                return "\033[33m";
        }
}

/* The colour of a service's output prefix (foreground up), like compose's. */
static const char *name_color(size_t i)
{
        static const char *const colors[] = {"\033[36m", "\033[33m", "\033[32m",
                                             "\033[35m", "\033[34m", "\033[96m"};
        return colors[i % (sizeof(colors) / sizeof(colors[0]))];
}

int run_prepare_display(struct run *r)
{
        for (size_t i = 0; i < r->config->n_services; i++)
                if (strlen(r->config->services[i].name) > r->name_width)
                        r->name_width = strlen(r->config->services[i].name);
        if (r->name_width < 4)
                r->name_width = 4;
        r->live = r->progress == stderr && isatty(STDERR_FILENO) && arg_verbosity == 0;
        r->lines = calloc(r->config->n_services ? r->config->n_services : 1, sizeof(*r->lines));
        return r->lines ? 0 : -ENOMEM;
}

void run_fini_display(struct run *r)
{
        free(r->lines);
        r->lines = NULL;
}

static void live_draw(struct run *r)
{
        uint64_t now = er_now_us();
        if (r->drawn)
                fprintf(stderr, "\033[%zuA", r->drawn);
        r->drawn = 0;
        for (size_t i = 0; i < r->config->n_services; i++) {
                const struct live_line *l = &r->lines[i];
                const char *color = arg_color ? state_color(l->state) : "";
                if (!l->seen)
                        continue;
                fprintf(stderr, "\033[2K%-*s  %s%-8s%s  %s", (int)r->name_width,
                        r->config->services[i].name, color, er_svc_state_name(l->state),
                        arg_color ? "\033[0m" : "", l->detail);
                if (l->state == ER_SVC_STARTING || l->state == ER_SVC_STOPPING)
                        fprintf(stderr, "  %.1fs", (double)(now - l->since_us) / 1e6);
                fputc('\n', stderr);
                r->drawn++;
        }
        fflush(stderr);
}

/* A line that stays: printed above the live lines, which are drawn again
 * below it. */
static void live_note(struct run *r, const char *text)
{
        if (r->drawn)
                fprintf(stderr, "\033[%zuA\033[J", r->drawn);
        r->drawn = 0;
        fprintf(stderr, "%s\n", text);
        if (r->live_on)
                live_draw(r);
        fflush(stderr);
}

static void on_tick(struct er_loop *loop, struct er_timer *t)
{
        struct run *r = er_container_of(t, struct run, tick);
        if (!r->live_on)
                return;
        live_draw(r);
        er_timer_start(loop, t, 100000, on_tick);
}

void run_live_phase(struct run *r, bool on)
{
        if (!r->live)
                return;
        if (on && !r->live_on) {
                r->drawn = 0;
                r->live_on = true;
                er_timer_start(r->loop, &r->tick, 100000, on_tick);
        } else if (!on && r->live_on) {
                live_draw(r);
                r->live_on = false;
                er_timer_stop(r->loop, &r->tick);
        }
}

static void print_line(struct run *r, const char *name, const struct er_sched_event *ev)
{
        /* ER_STREAM_BOTH: a failed readiness attempt, envrun's own note (-v). */
        if (r->lines_to_stdout && ev->stream != ER_STREAM_BOTH) {
                bool color = arg_color && isatty(STDOUT_FILENO);
                if (color)
                        fprintf(stdout, "%s%-*s |\033[0m %.*s\n", name_color(ev->service),
                                (int)r->name_width, name, (int)ev->line_len, ev->line);
                else
                        fprintf(stdout, "%-*s | %.*s\n", (int)r->name_width, name,
                                (int)ev->line_len, ev->line);
                fflush(stdout);
        } else if (arg_verbosity > 0) {
                fprintf(r->progress, "%-*s | %.*s\n", (int)r->name_width, name,
                        (int)ev->line_len, ev->line);
        }
}

void run_on_event(void *ud, const struct er_sched_event *ev)
{
        struct run *r = ud;
        const char *name = ev->service == SIZE_MAX ? "test" : r->config->services[ev->service].name;
        char ts[32];

        if (ev->line) {
                print_line(r, name, ev);
                if (r->on_line)
                        r->on_line(r, ev);
                return;
        }
        if (ev->warning) {
                /* Not a state: a warning that must stay in sight, even on
                 * a terminal whose live lines are redrawn. */
                char text[600];
                if (arg_verbosity < 0)
                        return; /* the report's closing lines say it */
                snprintf(text, sizeof(text), "envrun: warning: %s: %s", name,
                         ev->detail ? ev->detail : "");
                if (r->live)
                        live_note(r, text);
                else {
                        fprintf(r->progress, "%s\n", text);
                        fflush(r->progress);
                }
                return;
        }
        if (r->on_state)
                r->on_state(r, ev);
        if (arg_verbosity < 0)
                return;
        if (r->live && ev->service != SIZE_MAX) {
                struct live_line *l = &r->lines[ev->service];
                l->state = ev->state;
                l->seen = true;
                l->since_us = er_now_us();
                snprintf(l->detail, sizeof(l->detail), "%s", ev->detail ? ev->detail : "");
                if (r->live_on)
                        live_draw(r);
                return;
        }
        if (r->live)
                return; /* the test's own lines: its output says enough */
        run_stamp(ts, sizeof(ts));
        if (arg_color && r->progress == stderr)
                fprintf(r->progress, "%s %-*s %s%s\033[0m", ts, (int)r->name_width, name,
                        state_color(ev->state), er_svc_state_name(ev->state));
        else
                fprintf(r->progress, "%s %-*s %s", ts, (int)r->name_width, name,
                        er_svc_state_name(ev->state));
        if (ev->detail && *ev->detail)
                fprintf(r->progress, " (%s)", ev->detail);
        fputc('\n', r->progress);
        fflush(r->progress);
}

/* --- signals ------------------------------------------------------------- */

static void on_signal(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct run *r = er_container_of(io, struct run, sig_io);
        struct signalfd_siginfo si;

        while (read(r->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD) {
                        if (r->sched)
                                er_sched_sigchld(r->sched);
                        continue;
                }
                /* SI_KERNEL: the terminal sent it to the whole foreground
                 * group, so CMD has it already (SPEC §1). */
                if (r->sched)
                        er_sched_signal(r->sched, (int)si.ssi_signo, si.ssi_code == SI_KERNEL);
        }
}

void run_hold_stop_signals(void)
{
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        (void)sigprocmask(SIG_BLOCK, &set, NULL);
}

int run_setup_signals(struct run *r, sigset_t *old)
{
        sigset_t set;
        int e = 0;
        sigfillset(&set);
        if (sigprocmask(SIG_BLOCK, &set, old) < 0)
                return -errno;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGCHLD);
        r->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (r->sfd < 0 || (e = er_io_start(r->loop, &r->sig_io, r->sfd, EPOLLIN, on_signal)) < 0) {
                /* Undone here: a caller that failed holds nothing to undo. */
                e = r->sfd < 0 ? -errno : e;
                er_close(&r->sfd);
                sigprocmask(SIG_SETMASK, old, NULL);
                return e;
        }
        /* Errors on a closed stdout are errors, not a silent death. */
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

void run_fini_signals(struct run *r, const sigset_t *old)
{
        er_io_stop(r->loop, &r->sig_io);
        er_close(&r->sfd);
        sigprocmask(SIG_SETMASK, old, NULL);
}

void run_drive(struct run *r, bool (*done)(const struct er_sched *))
{
        while (!done(r->sched))
                if (er_loop_run_once(r->loop, -1) < 0)
                        break;
}

/* --- the engine of an instance ---------------------------------------------- */

int run_open_instance(struct er_state *st, const char *base, bool for_others, int *ret_log_fd,
                      int fail)
{
        int rc;

        *ret_log_fd = openat(er_state_data_fd(st), "logs",
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (*ret_log_fd < 0)
                return cli_fail(fail, "cannot open '%s/logs': %s", er_state_data_dir(st),
                                strerror(errno));
        /* A service running as another user must reach ENVRUN_STATE_DIR. */
        if (for_others && (rc = er_state_share_tmp(st, base)) < 0)
                return cli_fail(fail, "cannot open '%s/tmp' to service users: %s",
                                er_state_data_dir(st), strerror(-rc));
        return 0;
}

/* Whether some service has a memory or pids limit: cgroup controllers to
 * make ready (cpu time is an rlimit). */
static bool cgroup_limits(const struct er_config *c)
{
        for (size_t i = 0; i < c->n_services; i++)
                if (c->services[i].limits.memory || c->services[i].limits.pids)
                        return true;
        return false;
}

int run_engine_start(struct run *r, struct run_engine *e, const struct run_start *o)
{
        int rc;

        e->contain_ok = e->signals_on = false;
        if ((rc = er_loop_new(&r->loop)) < 0)
                return cli_fail(o->fail, "cannot create the event loop: %s", strerror(-rc));
        /* From here on a stalled reader of our output cannot stop the loop
         * (exec, a foreground up; the detached supervisor's stderr is a
         * pipe to `up -d`, then its log, and its stdout its log). */
        if (r->progress == stderr) {
                outq_begin(r->loop, r->lines_to_stdout);
                r->progress = stderr;
        }
        if ((rc = run_setup_signals(r, &e->old_mask)) < 0)
                return cli_fail(o->fail, "cannot set up signals: %s", strerror(-rc));
        e->signals_on = true;
        if ((rc = er_contain_init(&e->contain, r->config->project, run_force_reaper(),
                                  cgroup_limits(r->config))) < 0)
                return cli_fail(o->fail, "cannot set up containment: %s", strerror(-rc));
        e->contain_ok = true;
        if (arg_verbosity > 0)
                fprintf(r->progress, "envrun: containment: %s\n", e->contain.reason);
        if (er_records_from_contain(o->rec, &e->contain) < 0 || er_records_write(o->st, o->rec) < 0)
                return cli_fail(o->fail, "cannot write '%s/records.json'", o->st->dir);
        r->rec_state = o->st;
        r->records = o->rec;
        struct er_sched_opts so = {
                .config = r->config,
                .loop = r->loop,
                .contain = &e->contain,
                .log_dir_fd = o->log_dir_fd,
                .environ = environ,
                .state_dir = o->state_dir,
                .ports = o->ports,
                .t0_us = o->t0_us,
                .no_pidfd = run_getenv_true("ENVRUN_NO_PIDFD"),
                .want_lines = o->want_lines,
                .only = o->only,
                .on_event = run_on_event,
                .ud = r,
        };
        if (er_sched_new(&so, &r->sched) < 0)
                return cli_fail(o->fail, "out of memory");
        return 0;
}

void run_engine_up(struct run *r, bool (*keep_waiting)(struct run *r))
{
        run_live_phase(r, true);
        /* A signal that came before the loop (run_hold_stop_signals): the
         * environment is interrupted before anything starts. */
        on_signal(r->loop, &r->sig_io, EPOLLIN);
        if (!er_sched_interrupted(r->sched))
                er_sched_up(r->sched);
        if (!keep_waiting)
                run_drive(r, er_sched_up_done);
        else
                while (keep_waiting(r))
                        if (er_loop_run_once(r->loop, -1) < 0)
                                break;
        run_live_phase(r, false);
}

void run_engine_down(struct run *r)
{
        run_live_phase(r, true);
        er_sched_down(r->sched, false);
        run_drive(r, er_sched_down_done);
        run_live_phase(r, false);
        run_record_flush(r);
}

void run_engine_fini(struct run *r, struct run_engine *e)
{
        if (r->sched && er_sched_unexpected(r->sched)) {
                cli_fail(0, "internal error: %u scheduler event(s) with no transition (a bug in "
                            "envrun; the warnings above name them)",
                         er_sched_unexpected(r->sched));
#ifndef NDEBUG
                abort(); /* a debug build: every test catches it */
#endif
        }
        er_sched_free(r->sched);
        r->sched = NULL;
        if (e->contain_ok)
                er_contain_fini(&e->contain);
        e->contain_ok = false;
        if (e->signals_on)
                run_fini_signals(r, &e->old_mask);
        e->signals_on = false;
        outq_end();
        er_loop_free(r->loop);
        r->loop = NULL;
}

/* --- configuration --------------------------------------------------------- */

static struct er_config *build(const struct er_doc *doc, const char *path, const char *state_dir,
                               const unsigned *ports)
{
        struct er_config_opts copts = {.project = arg_project, .environ = environ,
                                       .state_dir = state_dir, .port_values = ports};
        struct er_config *c = NULL;
        struct er_errs errs;

        er_errs_init(&errs);
        if (er_config_from_doc(doc, path, &copts, &c, &errs) < 0) {
                cli_print_errs(&errs);
                c = NULL;
        }
        er_errs_fini(&errs);
        return c;
}

struct er_config *run_load_probe(const char *path, struct er_doc **ret_doc)
{
        struct er_doc *doc = NULL;
        struct er_config *c = NULL;
        struct er_errs errs;

        er_errs_init(&errs);
        if (er_load_file(path, NULL, &doc, &errs) < 0)
                er_errs_sort(&errs);
        else
                c = build(doc, path, NULL, NULL);
        cli_print_errs(&errs);
        er_errs_fini(&errs);
        if (c && ret_doc)
                *ret_doc = doc;
        else
                er_doc_free(doc);
        return c;
}

bool run_for_others(const struct er_config *c)
{
        for (size_t i = 0; i < c->n_services; i++)
                if (c->services[i].user && !c->services[i].user_not_applied &&
                    c->services[i].uid != (long)geteuid())
                        return true;
        return false;
}

struct er_config *run_load_final(struct er_doc **doc, const char *path, const char *state_dir,
                                 const unsigned *ports)
{
        struct er_config *c = build(*doc, path, state_dir, ports);

        er_doc_free(*doc);
        *doc = NULL;
        if (c)
                er_test_hold("loaded");
        return c;
}

int run_state_base_fail(int status, const char *base, int rc)
{
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        const char *what = rc == -EPERM ? "not a directory of yours" : strerror(-rc);
        const char *hint;

        if (arg_state_dir)
                hint = "choose another --state-dir";
        else if (xdg && xdg[0] == '/' && !strncmp(base, xdg, strlen(xdg)))
                hint = "point XDG_RUNTIME_DIR at a directory of yours (or unset it), or use "
                       "--state-dir DIR";
        else
                hint = "use --state-dir DIR";
        return cli_fail(status, "cannot use the state directory '%s': %s; %s", base, what, hint);
}

/* --- the report ----------------------------------------------------------- */

static int write_file(const char *path, const char *data, size_t len)
{
        FILE *f = fopen(path, "we");
        if (!f)
                return cli_fail(EXIT_EXEC_ENV, "cannot write '%s': %s", path, strerror(errno));
        fwrite(data, 1, len, f);
        if (fclose(f) != 0)
                return cli_fail(EXIT_EXEC_ENV, "cannot write '%s': %s", path, strerror(errno));
        return 0;
}

int run_print_report(struct er_sched *sched, FILE *f, bool with_files, int exit_status)
{
        struct er_report rep;
        char *buf;
        size_t len;
        int r = 0;

        if (er_sched_report(sched, &rep) < 0)
                return cli_fail(EXIT_EXEC_ENV, "out of memory");
        if (exit_status >= 0) {
                rep.exit_status = exit_status;
                rep.ok = exit_status == 0;
        }
        if (er_report_text(&rep, arg_color && f == stderr, &buf, &len) == 0) {
                fwrite(buf, 1, len, f);
                fflush(f);
                free(buf);
        }
        if (with_files && cli_value(OPT_REPORT) && er_report_json(&rep, &buf, &len) == 0) {
                r |= write_file(cli_value(OPT_REPORT), buf, len);
                free(buf);
        }
        if (with_files && cli_value(OPT_JUNIT) && er_report_junit(&rep, &buf, &len) == 0) {
                r |= write_file(cli_value(OPT_JUNIT), buf, len);
                free(buf);
        }
        if (with_files && cli_value(OPT_TIMELINE) && er_timeline_svg(&rep, &buf, &len) == 0) {
                r |= write_file(cli_value(OPT_TIMELINE), buf, len);
                free(buf);
        }
        free(rep.ports);
        er_report_fini(&rep);
        free(rep.services);
        return r;
}

/* --- an environment that is up (SPEC §1) ------------------------------------ */

const char *run_jstr(json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));
        return s ? s : "";
}

bool run_service_up(json_t *svc)
{
        const char *st = run_jstr(svc, "state");
        return strcmp(st, "ready") == 0 || strcmp(st, "completed") == 0;
}

/* What of the instance in status j is not up: "" when it all is, else
 * "'db' failed (killed by SIGKILL after it was ready), 'cache' stopped". */
static void describe_partial(json_t *j, char *buf, size_t len)
{
        json_t *svcs = json_object_get(j, "services"), *x;
        const char *overall = json_string_value(json_object_get(j, "state"));
        size_t i, n = 0;

        buf[0] = '\0';
        if (overall && strcmp(overall, "up") == 0)
                return;
        json_array_foreach(svcs, i, x) {
                const char *name = json_string_value(json_object_get(x, "name"));
                const char *st = json_string_value(json_object_get(x, "state"));
                const char *msg = json_string_value(json_object_get(x, "message"));
                if (!name || !st || !json_is_true(json_object_get(x, "selected")) ||
                    run_service_up(x))
                        continue;
                if (n < len)
                        n += (size_t)snprintf(buf + n, len - n, "%s'%s' %s%s%s%s", n ? ", " : "",
                                              name, st, msg && *msg ? " (" : "", msg ? msg : "",
                                              msg && *msg ? ")" : "");
        }
        if (!n)
                snprintf(buf, len, "it is %s", overall ? overall : "in an unknown state");
}

/* The ports and ENVRUN_STATE_DIR of the project's `up -d` instance, from
 * its supervisor.  0, or an exit status after printing why. */
int run_attach_values(int fail, const char *inst, const struct er_config *probe, unsigned *ports,
                      char *state_dir, size_t len, long *ret_pid, char *partial, size_t plen)
{
        char sock[4400];
        struct er_ctl_reply reply = {0};
        struct er_err err = {0};
        json_error_t jerr;
        json_t *j, *jp;
        int r;

        snprintf(sock, sizeof(sock), "%s/control.sock", inst);
        r = er_ctl_client_call(sock, "GET", "/v1/status", NULL, 5000000, &reply, &err);
        if (r < 0)
                return cli_fail(fail, "'%s' is up, but its supervisor does not answer: %s",
                                probe->project, err.msg);
        j = json_loadb(reply.body, reply.body_len, 0, &jerr);
        r = reply.status;
        er_ctl_client_reply_fini(&reply);
        if (r != 200 && j && json_is_string(json_object_get(j, "error"))) {
                r = cli_fail(fail, "'%s': the supervisor answered %d: %s", probe->project, r,
                             json_string_value(json_object_get(j, "error")));
                json_decref(j);
                return r;
        }
        if (!j || !json_is_object(j) || r != 200)
                goto bad;
        jp = json_object_get(j, "ports");
        for (size_t i = 0; i < probe->n_ports; i++) {
                json_t *v = json_object_get(jp, probe->ports[i].name);
                if (!json_is_integer(v)) {
                        json_decref(j);
                        return cli_fail(fail,
                                        "'%s' is up without the port '%s': was environment.yml changed since `up`?",
                                        probe->project, probe->ports[i].name);
                }
                ports[i] = (unsigned)json_integer_value(v);
        }
        if (!json_is_string(json_object_get(j, "state_dir")))
                goto bad;
        snprintf(state_dir, len, "%s", json_string_value(json_object_get(j, "state_dir")));
        *ret_pid = (long)json_integer_value(json_object_get(j, "supervisor_pid"));
        if (partial)
                describe_partial(j, partial, plen);
        json_decref(j);
        return 0;
bad:
        json_decref(j);
        return cli_fail(fail, "the supervisor of '%s' sent a status envrun cannot read",
                        probe->project);
}


/* --- what dead instances left (SPEC §5.7) ----------------------------------- */

const char *run_plural(unsigned n, const char *one, const char *many)
{
        return n == 1 ? one : many;
}

int run_reap_stale_up(const char *dir, const char *project, bool keep)
{
        struct er_state st;
        struct er_records rec;
        struct er_reaped reaped = {0};
        int rc;

        er_state_init(&st);
        er_records_init(&rec);
        if (er_state_probe(dir) != 0 || er_state_open(&st, dir, false) < 0 ||
            er_records_read(&st, &rec) < 0) {
                rc = 0; /* live, or nothing there */
                goto out;
        }
        if ((rc = er_state_lock(&st)) < 0) {
                rc = rc == -EWOULDBLOCK ? 0 : rc; /* it came up meanwhile */
                goto out;
        }
        rc = er_cleanup_reap(&st, &reaped);
        er_state_remove(&st, keep);
        if (rc < 0) {
                cli_fail(0, "cleaning up the crashed instance of '%s' in '%s': %s", project, dir,
                         strerror(-rc));
                goto out;
        }
        cli_fail(0, "cleaned up stale instance of '%s' (%u %s killed)", project, reaped.killed,
                 run_plural(reaped.killed, "process", "processes"));
        rc = 1;
out:
        er_records_fini(&rec);
        er_state_fini(&st);
        return rc;
}

void run_reap_stale_execs(const char *base, const char *project)
{
        struct er_reaped reaped = {0};
        if (er_cleanup_stale_execs(base, project, &reaped) > 0 && reaped.killed)
                cli_fail(0, "cleaned up %u %s left by a crashed run of '%s'", reaped.killed,
                         run_plural(reaped.killed, "process", "processes"), project);
        /* Logs and tmp/ on disk whose instance a wiped tmpfs took along. */
        (void)er_state_sweep_data(base);
}

/* --- the file an instance was started with ---------------------------------- */

int run_config_digest(const char *path, char *out, size_t len)
{
        static const struct er_hash_key key = {0x656e7672756e2d63ULL, 0x6f6e6669672d3031ULL};
        struct er_buf b = {0};
        int fd = open(path, O_RDONLY | O_CLOEXEC), r;

        if (fd < 0)
                return -errno;
        r = er_buf_read_fd(&b, fd, 64u << 20, 0);
        close(fd);
        if (r == 0)
                snprintf(out, len, "%016llx",
                         (unsigned long long)er_hash_siphash13(&key, b.p ? b.p : "", b.len));
        er_buf_fini(&b);
        return r;
}
