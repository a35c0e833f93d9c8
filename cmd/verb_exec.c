/* exec: bring the environment up, run CMD, bring it down, report (SPEC §1). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "contain.h"
#include "loop.h"
#include "ports.h"
#include "report.h"
#include "sched.h"
#include "timeline.h"
#include "units.h"

extern char **environ;

/* The live display on a terminal: one line per service, redrawn in place. */
struct live_line {
        enum er_svc_state state;
        char detail[160];
        uint64_t since_us;      /* when the state began */
        bool seen;
};

struct run {
        struct er_config *config;
        struct er_sched *sched;
        struct er_loop *loop;
        int sfd;
        struct er_io sig_io;
        size_t name_width;
        bool live;               /* stderr is a terminal and not -q/-v */
        bool live_on;            /* lines are on screen and owned by envrun */
        size_t drawn;            /* lines drawn last time */
        struct live_line *lines;
        struct er_timer tick;
};

/* --- progress (SPEC §1) ------------------------------------------------- */

static void stamp(char *buf, size_t len)
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

static void on_tick(struct er_loop *loop, struct er_timer *t)
{
        struct run *r = er_container_of(t, struct run, tick);
        if (!r->live_on)
                return;
        live_draw(r);
        er_timer_start(loop, t, 100000, on_tick);
}

/* Starts or ends a phase of the live display (bring-up, teardown); the
 * test command has the terminal in between. */
static void live_phase(struct run *r, bool on)
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

static void on_event(void *ud, const struct er_sched_event *ev)
{
        struct run *r = ud;
        const char *name = ev->service == SIZE_MAX ? "test" : r->config->services[ev->service].name;
        char ts[32];

        if (ev->line) {
                if (arg_verbosity > 0)
                        fprintf(stderr, "%-*s | %.*s\n", (int)r->name_width, name, (int)ev->line_len,
                                ev->line);
                return;
        }
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
        stamp(ts, sizeof(ts));
        if (arg_color)
                fprintf(stderr, "%s %-*s %s%s\033[0m", ts, (int)r->name_width, name,
                        state_color(ev->state), er_svc_state_name(ev->state));
        else
                fprintf(stderr, "%s %-*s %s", ts, (int)r->name_width, name,
                        er_svc_state_name(ev->state));
        if (ev->detail && *ev->detail)
                fprintf(stderr, " (%s)", ev->detail);
        fputc('\n', stderr);
}

/* --- signals ------------------------------------------------------------- */

static void on_signal(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct run *r = er_container_of(io, struct run, sig_io);
        struct signalfd_siginfo si;

        while (read(r->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD) {
                        er_sched_sigchld(r->sched);
                        continue;
                }
                /* SI_KERNEL: the terminal sent it to the whole foreground
                 * group, so CMD has it already (SPEC §1). */
                er_sched_signal(r->sched, (int)si.ssi_signo, si.ssi_code == SI_KERNEL);
        }
}

static int setup_signals(struct run *r, sigset_t *old)
{
        sigset_t set;
        sigfillset(&set);
        if (sigprocmask(SIG_BLOCK, &set, old) < 0)
                return -errno;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGCHLD);
        r->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (r->sfd < 0)
                return -errno;
        /* Errors on a closed stdout are errors, not a silent death. */
        signal(SIGPIPE, SIG_IGN);
        return er_io_start(r->loop, &r->sig_io, r->sfd, EPOLLIN, on_signal);
}

/* --- the state directory (SPEC §7) --------------------------------------- */

static int mkdir_owned(const char *path, mode_t mode)
{
        struct stat st;
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return -errno;
        if (lstat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
                return -EPERM;
        return 0;
}

/* for_others: a service runs as another user and must reach the state
 * directory; $XDG_RUNTIME_DIR (/run/user/UID) is 0700 and not ours to open,
 * so the base is then /tmp/envrun-UID, whose modes envrun sets itself. */
static int state_base(char *buf, size_t len, bool for_others)
{
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        int r;
        if (arg_state_dir)
                snprintf(buf, len, "%s", arg_state_dir);
        else if (xdg && *xdg && !for_others)
                snprintf(buf, len, "%s/envrun", xdg);
        else
                snprintf(buf, len, "/tmp/envrun-%u", (unsigned)geteuid());
        r = mkdir_owned(buf, 0700);
        if (r < 0)
                return r;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_tree(const char *path)
{
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* --- the verb ------------------------------------------------------------ */

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

static int print_report(struct er_sched *sched)
{
        struct er_report rep;
        char *buf;
        size_t len;
        int r = 0;

        if (er_sched_report(sched, &rep) < 0)
                return cli_fail(EXIT_EXEC_ENV, "out of memory");
        if (er_report_text(&rep, arg_color, &buf, &len) == 0) {
                fwrite(buf, 1, len, stderr);
                free(buf);
        }
        if (cli_value(OPT_REPORT) && er_report_json(&rep, &buf, &len) == 0) {
                r |= write_file(cli_value(OPT_REPORT), buf, len);
                free(buf);
        }
        if (cli_value(OPT_JUNIT) && er_report_junit(&rep, &buf, &len) == 0) {
                r |= write_file(cli_value(OPT_JUNIT), buf, len);
                free(buf);
        }
        if (cli_value(OPT_TIMELINE) && er_timeline_svg(&rep, &buf, &len) == 0) {
                r |= write_file(cli_value(OPT_TIMELINE), buf, len);
                free(buf);
        }
        free(rep.ports);
        er_report_fini(&rep);
        free(rep.services);
        return r;
}

static bool getenv_true(const char *name)
{
        const char *v = getenv(name);
        return v && *v && strcmp(v, "0");
}

static void drive(struct run *r, bool (*done)(const struct er_sched *))
{
        while (!done(r->sched))
                if (er_loop_run_once(r->loop, -1) < 0)
                        break;
}

int verb_exec(int argc, char **argv)
{
        struct run r = {.sfd = -1};
        struct er_contain contain;
        struct er_ports ports;
        struct er_config_opts copts = {.project = arg_project, .environ = environ};
        struct er_errs errs;
        char base[4096], inst[4200], tmpdir[4300], logdir[4300];
        uint64_t t0 = er_now_us(), timeout_us = 0;
        sigset_t old;
        int status = EXIT_EXEC_ENV, log_fd = -1, rc;
        const char *path;
        bool contain_ok = false;

        er_io_init(&r.sig_io);
        er_timer_init(&r.tick);
        er_ports_init(&ports);
        if (cli_value(OPT_TIMEOUT) && (er_duration_parse(cli_value(OPT_TIMEOUT), &timeout_us) < 0 ||
                                       timeout_us == 0))
                return cli_fail(EXIT_EXEC_ENV, "--timeout must be a duration such as '30s' or '10m', not '%s'",
                                cli_value(OPT_TIMEOUT));
        if (!(path = cli_config_path()))
                return EXIT_EXEC_ENV;

        /* A first pass learns the project name and the ports. */
        struct er_config *probe;
        er_errs_init(&errs);
        rc = er_config_load(path, &copts, &probe, &errs);
        if (rc < 0) {
                cli_print_errs(&errs);
                er_errs_fini(&errs);
                return EXIT_EXEC_ENV;
        }
        er_errs_fini(&errs);
        if (argc == 0 && !probe->test.present) {
                er_config_free(probe);
                return cli_fail(EXIT_EXEC_ENV,
                                "nothing to run: give a command (envrun exec -- CMD) or a 'test:' in '%s'",
                                path);
        }
        bool for_others = false;
        for (size_t i = 0; i < probe->n_services; i++)
                if (probe->services[i].user && probe->services[i].uid != (long)geteuid())
                        for_others = true;
        if ((rc = state_base(base, sizeof(base), for_others)) < 0) {
                er_config_free(probe);
                return cli_fail(EXIT_EXEC_ENV, "state directory '%s': %s", base, strerror(-rc));
        }
        snprintf(inst, sizeof(inst), "%s/%s.exec.XXXXXX", base, probe->project);
        if (!mkdtemp(inst)) {
                er_config_free(probe);
                return cli_fail(EXIT_EXEC_ENV, "cannot create '%s': %s", inst, strerror(errno));
        }
        snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", inst);
        snprintf(logdir, sizeof(logdir), "%s/logs", inst);
        if (mkdir(tmpdir, 0700) < 0 || mkdir(logdir, 0700) < 0 ||
            (log_fd = open(logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot create '%s': %s", inst, strerror(errno));
                er_config_free(probe);
                goto out_rm;
        }
        /* SPEC §3 user: a service running as another user must reach
         * ENVRUN_STATE_DIR: the directories on the way become traversable
         * (not listable) and tmp/ sticky and world-writable like /tmp;
         * logs/ and the records stay private. */
        if (for_others && (chmod(base, 0711) < 0 || chmod(inst, 0711) < 0 || chmod(tmpdir, 01777) < 0)) {
                cli_fail(EXIT_EXEC_ENV, "cannot open '%s' to service users: %s", inst, strerror(errno));
                er_config_free(probe);
                goto out_rm;
        }
        rc = er_ports_allocate(&ports, base, probe->n_ports);
        er_config_free(probe);
        if (rc < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot allocate ports: %s", strerror(-rc));
                goto out_rm;
        }

        /* The real pass: every value known. */
        copts.state_dir = tmpdir;
        copts.port_values = ports.ports;
        er_errs_init(&errs);
        rc = er_config_load(path, &copts, &r.config, &errs);
        if (rc < 0) {
                cli_print_errs(&errs);
                er_errs_fini(&errs);
                goto out_ports;
        }
        er_errs_fini(&errs);
        for (size_t i = 0; i < r.config->n_services; i++)
                if (strlen(r.config->services[i].name) > r.name_width)
                        r.name_width = strlen(r.config->services[i].name);
        if (r.name_width < 4)
                r.name_width = 4;
        r.live = isatty(STDERR_FILENO) && arg_verbosity == 0;
        r.lines = calloc(r.config->n_services, sizeof(*r.lines));
        if (!r.lines) {
                cli_fail(EXIT_EXEC_ENV, "out of memory");
                goto out_config;
        }

        if ((rc = er_loop_new(&r.loop)) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot create the event loop: %s", strerror(-rc));
                goto out_config;
        }
        if ((rc = setup_signals(&r, &old)) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot set up signals: %s", strerror(-rc));
                goto out_loop;
        }
        if ((rc = er_contain_init(&contain, r.config->project,
                                  getenv_true("ENVRUN_FORCE_SESSION"))) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot set up containment: %s", strerror(-rc));
                goto out_signals;
        }
        contain_ok = true;
        if (arg_verbosity > 0)
                fprintf(stderr, "envrun: containment: %s\n", contain.reason);

        struct er_sched_opts so = {
                .config = r.config,
                .loop = r.loop,
                .contain = &contain,
                .log_dir_fd = log_fd,
                .environ = environ,
                .state_dir = tmpdir,
                .ports = ports.ports,
                .t0_us = t0,
                .no_pidfd = getenv_true("ENVRUN_NO_PIDFD"),
                .want_lines = arg_verbosity > 0,
                .on_event = on_event,
                .ud = &r,
        };
        if ((rc = er_sched_new(&so, &r.sched)) < 0) {
                cli_fail(EXIT_EXEC_ENV, "out of memory");
                goto out_contain;
        }
        er_sched_set_abort_on_failure(r.sched, cli_has(OPT_ABORT));
        er_sched_plan_test(r.sched, argc > 0 ? argv : r.config->test.cmd.argv);
        live_phase(&r, true);
        er_sched_up(r.sched);
        drive(&r, er_sched_up_done);
        live_phase(&r, false);
        if (!er_sched_failed(r.sched) && !er_sched_exec_status(r.sched)) {
                if (argc > 0)
                        er_sched_run_test(r.sched, argv, NULL, false, timeout_us);
                else
                        er_sched_run_test(r.sched, r.config->test.cmd.argv, r.config->test.cmd.cwd,
                                          true, timeout_us ? timeout_us : r.config->test.timeout_us);
                drive(&r, er_sched_test_done);
        }
        live_phase(&r, true);
        er_sched_down(r.sched, false);
        drive(&r, er_sched_down_done);
        live_phase(&r, false);
        status = er_sched_exec_status(r.sched);
        if (print_report(r.sched))
                status = status ? status : EXIT_EXEC_ENV;
        er_sched_free(r.sched);
out_contain:
        er_contain_fini(&contain);
        (void)contain_ok;
out_signals:
        er_io_stop(r.loop, &r.sig_io);
        er_close(&r.sfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
out_loop:
        er_loop_free(r.loop);
out_config:
        free(r.lines);
        er_config_free(r.config);
out_ports:
        er_ports_release(&ports);
out_rm:
        er_close(&log_fd);
        rm_tree(inst);
        return status;
}
