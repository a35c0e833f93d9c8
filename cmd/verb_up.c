/* up: bring the environment up and hold it, in the foreground or, with -d,
 * in a supervisor process that serves the control API (SPEC §1, §7, §8).
 *
 * Both modes run the same holder: the engine on one event loop plus the
 * control server on <state>/control.sock, so `status`, `logs`, `restart`
 * work against a foreground `up` as well.  With -d, envrun forks twice
 * (the middle child calls setsid and exits, so the supervisor is no
 * terminal's and nobody's child), and the supervisor tells the waiting
 * command how the bring-up goes through a pipe: progress lines, then a
 * final "\1ready" or "\1failed" line (after the report, once everything is
 * stopped).  The instance's lock is taken before forking; the supervisor
 * inherits it (the same open file description), so there is no moment
 * when the instance is up but its lock free. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "api/ctl.h"
#include "api/routes.h"
#include "proc/log.h"
#include "report/report.h"
#include "run.h"
#include "instance/cleanup.h"
#include "instance/records.h"
#include "instance/state.h"

extern char **environ;

#define READY_MARK "\001ready\n"
#define FAILED_MARK "\001failed\n"
#define FLUSH_BOUND_US (3u * 1000000u) /* the last responses' time to leave */

struct holder {
        struct run r;
        struct er_state st;
        struct er_records rec;
        struct run_engine engine;    /* loop, signals, containment, scheduler */
        struct er_ports *ports;
        struct er_ctl *ctl;
        int log_fd;
        int suplog_fd;           /* up -d's supervisor: supervisor.log, stderr once up */
        bool detached;
        int notify_fd;           /* up -d: the pipe to the waiting command, or -1 */
        char tmpdir[4300];
        uint64_t t0;
        bool *only;
        char digest[32];         /* of the file it was started with, or "" */
        struct er_routes routes; /* the control API's resources */
};

/* --- the holder ------------------------------------------------------------ */

static void on_state(struct run *r, const struct er_sched_event *ev)
{
        struct holder *h = r->ud;

        if (ev->service == SIZE_MAX)
                return;
        run_record_spawn(r, ev);
        er_routes_on_state(&h->routes, ev);
}

static void on_line(struct run *r, const struct er_sched_event *ev)
{
        struct holder *h = r->ud;
        er_routes_on_line(&h->routes, ev);
}

/* The holder's exit status (SPEC §2): 129/130/143 when a signal ended it,
 * else 1 when a service of the environment failed at any time (bring-up,
 * while up, or at stop), else 0. */
static int down_status(struct holder *h)
{
        if (er_sched_interrupted(h->r.sched))
                return er_sched_exec_status(h->r.sched);
        if (er_sched_failed(h->r.sched))
                return EXIT_FAILED;
        for (size_t i = 0; i < h->r.config->n_services; i++) {
                struct er_svc_info in;
                er_sched_info(h->r.sched, i, &in);
                if (in.selected && in.error != ER_OK)
                        return EXIT_FAILED;
        }
        return EXIT_OK;
}

static void notify(struct holder *h, const char *mark)
{
        if (h->notify_fd < 0)
                return;
        fflush(h->r.progress);
        if (write(h->notify_fd, mark, strlen(mark)) < 0) {
                /* The waiting command is gone (Ctrl-C): the environment
                 * stays up regardless. */
        }
}

static bool wait_flush(struct holder *h)
{
        uint64_t end = er_now_us() + FLUSH_BOUND_US;
        while (h->ctl && er_ctl_nconns(h->ctl) && er_now_us() < end)
                if (er_loop_run_once(h->r.loop, 100) < 0)
                        return false;
        return true;
}

static size_t largest_log(const struct er_config *c)
{
        uint64_t m = 0;
        for (size_t i = 0; i < c->n_services; i++)
                if (c->services[i].log_max_size > m)
                        m = c->services[i].log_max_size;
        return (size_t)m + ER_CTL_MAX_OUTPUT;
}

/* Runs the environment until it is brought down.  Returns the exit status. */
/* While up waits for the bring-up: not done, not interrupted, no down. */
static bool bringing_up(struct run *r)
{
        struct holder *h = r->ud;
        return !er_sched_up_done(r->sched) && !h->routes.down_requested && !er_sched_interrupted(r->sched);
}

/* Holds the environment once it is up: until a signal or a down request. */
static void hold_up(struct holder *h)
{
        if (arg_verbosity >= 0)
                fprintf(h->r.progress, "envrun: '%s' is up (supervisor pid %d)\n",
                        h->r.config->project, (int)getpid());
        notify(h, READY_MARK);
        er_close(&h->notify_fd);
        if (h->detached) {
                /* From now on progress and errors go to the supervisor's log:
                 * the waiting command is gone. */
                fflush(stderr);
                if (h->suplog_fd >= 0)
                        dup2(h->suplog_fd, STDERR_FILENO);
                fclose(h->r.progress);
                h->r.progress = stderr;
        }
        while (!er_sched_interrupted(h->r.sched) && !h->routes.down_requested) {
                if (er_loop_run_once(h->r.loop, -1) < 0)
                        break;
                er_routes_after_batch(&h->routes);
        }
}

static int hold(struct holder *h)
{
        int rc, status = EXIT_FAILED;
        char sock[4400];

        h->r.on_state = on_state;
        h->r.on_line = on_line;
        struct run_start start = {
                .st = &h->st,
                .rec = &h->rec,
                .log_dir_fd = h->log_fd,
                .state_dir = h->tmpdir,
                .ports = h->ports->ports,
                .t0_us = h->t0,
                .only = h->only,
                .want_lines = true,
                .fail = EXIT_FAILED,
        };
        if (run_engine_start(&h->r, &h->engine, &start) != 0)
                goto out_engine;
        snprintf(sock, sizeof(sock), "%s/control.sock", h->st.dir);
        h->routes = (struct er_routes){
                .sched = h->r.sched,
                .config = h->r.config,
                .contain = &h->engine.contain,
                .ports = h->ports->ports,
                .log_fd = h->log_fd,
                .instance_dir = h->st.dir,
                .state_dir = h->tmpdir,
                .config_digest = h->digest,
        };
        struct er_ctl_opts co = {.path = sock, .handle = er_routes_handle, .ud = &h->routes,
                                 .max_output = largest_log(h->r.config)};
        if ((rc = er_ctl_new(h->r.loop, &co, &h->ctl)) < 0) {
                cli_fail(EXIT_FAILED, "cannot listen on '%s': %s", sock, strerror(-rc));
                goto out_engine;
        }
        run_engine_up(&h->r, bringing_up);
        if (!er_sched_failed(h->r.sched) && !er_sched_interrupted(h->r.sched) && !h->routes.down_requested)
                hold_up(h);
        run_engine_down(&h->r);
        status = down_status(h);
        run_print_report(h->r.sched, h->r.progress, false, status);
        er_routes_answer_down(&h->routes, status);
        /* The pipe stays open until the supervisor exits, after it removed
         * the instance: the waiting command reads to its end, so that when
         * `up -d` returns 1 nothing of the instance is left. */
        if (h->notify_fd >= 0)
                notify(h, FAILED_MARK);
        wait_flush(h);
        er_ctl_free(h->ctl);
        h->ctl = NULL;
        er_routes_fini(&h->routes); /* er_ctl_free closed their streams */
out_engine:
        run_engine_fini(&h->r, &h->engine);
        return status;
}

/* --- the waiting command of up -d ---------------------------------------- */

/* Copies the supervisor's progress to stderr until it says how the
 * bring-up went.  SIGINT/SIGTERM/SIGHUP here cancel the bring-up: the
 * supervisor gets SIGTERM, stops everything and reports. */
static int wait_supervisor(int fd, pid_t sup)
{
        sigset_t set, old;
        int sfd, sig = 0;
        char buf[4096];
        size_t have = 0;
        bool failed = false;

        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGHUP);
        sigprocmask(SIG_BLOCK, &set, &old);
        sfd = signalfd(-1, &set, SFD_CLOEXEC);
        for (;;) {
                struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
                if (poll(pfd, sfd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (sfd >= 0 && (pfd[1].revents & POLLIN)) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && !sig) {
                                sig = (int)si.ssi_signo;
                                kill(sup, sig); /* its report then names the signal */
                        }
                }
                if (!(pfd[0].revents & (POLLIN | POLLHUP)))
                        continue;
                ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                have += (size_t)n;
                buf[have] = '\0';
                /* Print whole lines; a mark line ends the wait. */
                char *p = buf, *nl;
                while ((nl = memchr(p, '\n', have - (size_t)(p - buf)))) {
                        size_t len = (size_t)(nl - p) + 1;
                        if (len == strlen(READY_MARK) && memcmp(p, READY_MARK, len) == 0) {
                                close(sfd);
                                sigprocmask(SIG_SETMASK, &old, NULL);
                                return sig ? 128 + sig : EXIT_OK;
                        }
                        if (len == strlen(FAILED_MARK) && memcmp(p, FAILED_MARK, len) == 0)
                                failed = true; /* read on: EOF is the supervisor's exit */
                        else
                                fwrite(p, 1, len, stderr);
                        p = nl + 1;
                }
                have -= (size_t)(p - buf);
                memmove(buf, p, have);
                if (have == sizeof(buf) - 1) { /* a line longer than the buffer */
                        fwrite(buf, 1, have, stderr);
                        have = 0;
                }
        }
        if (have)
                fwrite(buf, 1, have, stderr);
        if (!failed)
                cli_fail(0, "the supervisor died during the bring-up (pid %d)", (int)sup);
        close(sfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return sig ? 128 + sig : EXIT_FAILED;
}

/* The supervisor's stdio: /dev/null in, its log out. */
/* The supervisor's stdio: stdin /dev/null, stdout supervisor.log, and
 * stderr the pipe to the waiting command until the environment is up (what
 * goes wrong in the bring-up, "cannot listen on ...", reaches the user),
 * then supervisor.log too (hold_up). */
static int redirect_stdio(struct holder *h, int pipe_fd)
{
        struct stat sb;
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        /* O_NONBLOCK and fstat: a FIFO planted as the log is refused. */
        int out = openat(h->st.dir_fd, "supervisor.log",
                         O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (out >= 0 && (fstat(out, &sb) < 0 || !S_ISREG(sb.st_mode))) {
                close(out);
                errno = EPERM;
                out = -1;
        }
        if (in < 0 || out < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
            dup2(pipe_fd, STDERR_FILENO) < 0)
                return -errno;
        close(in);
        h->suplog_fd = out;
        setvbuf(stdout, NULL, _IOLBF, 0);
        setvbuf(stderr, NULL, _IOLBF, 0);
        return 0;
}

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *)a, y = *(const int *)b;
        return (x > y) - (x < y);
}

/* The supervisor keeps no descriptor of its caller's beyond stdio: a pipe
 * the caller reads to its end (a shell's $(...), a CI runner's log) would
 * otherwise stay open for the environment's whole life. */
static void close_inherited(struct holder *h, int notify_fd)
{
        int keep[8 + ER_PORTS_MAX], n = 0; /* every port's lock: §3.1 */
        DIR *d;
        struct dirent *e;

        keep[n++] = h->st.lock_fd;
        keep[n++] = h->st.dir_fd;
        if (h->st.data_fd >= 0)
                keep[n++] = h->st.data_fd;
        keep[n++] = h->log_fd;
        keep[n++] = notify_fd;
        for (size_t i = 0; i < h->ports->n && n < (int)(sizeof(keep) / sizeof(keep[0])); i++)
                keep[n++] = h->ports->lock_fds[i];
        qsort(keep, (size_t)n, sizeof(keep[0]), cmp_int);
        d = opendir("/proc/self/fd");
        if (!d)
                return;
        while ((e = readdir(d))) {
                char *end;
                long fd = strtol(e->d_name, &end, 10);
                if (*end || fd <= STDERR_FILENO || fd == dirfd(d) ||
                    bsearch(&(int){(int)fd}, keep, (size_t)n, sizeof(keep[0]), cmp_int))
                        continue;
                close((int)fd);
        }
        closedir(d);
}

static int detach(struct holder *h)
{
        int p[2];
        pid_t mid, sup = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return cli_fail(EXIT_FAILED, "cannot create a pipe: %s", strerror(errno));
        fflush(NULL);
        mid = fork();
        if (mid < 0)
                return cli_fail(EXIT_FAILED, "cannot fork: %s", strerror(errno));
        if (mid == 0) {
                close(p[0]);
                setsid();
                sup = fork();
                if (sup < 0)
                        _exit(1);
                if (sup > 0)
                        _exit(0);
                /* The supervisor.  Its first line tells its pid. */
                char line[64];
                int n = snprintf(line, sizeof(line), "\002%d\n", (int)getpid());
                if (write(p[1], line, (size_t)n) < 0)
                        _exit(1);
                h->detached = true;
                h->r.live = false;
                close_inherited(h, p[1]);
                h->notify_fd = p[1];
                if (redirect_stdio(h, p[1]) < 0) {
                        /* Said to the waiting command, which prints it. */
                        dprintf(p[1], "envrun: cannot open '%s/supervisor.log': %s\n", h->st.dir,
                                strerror(errno));
                        _exit(1);
                }
                h->r.progress = fdopen(dup(p[1]), "w");
                if (!h->r.progress)
                        _exit(1);
                setvbuf(h->r.progress, NULL, _IOLBF, 0);
                int status = hold(h);
                if (h->r.progress != stderr)
                        fflush(h->r.progress); /* closed at exit, see hold() */
                return -1 - status; /* the caller cleans up and exits with it */
        }
        close(p[1]);
        waitpid(mid, NULL, 0);
        /* The first line is the supervisor's pid. */
        char c, num[32];
        size_t n = 0;
        while (n < sizeof(num) - 1 && read(p[0], &c, 1) == 1 && c != '\n')
                num[n++] = c;
        num[n] = '\0';
        if (n < 2 || num[0] != '\002') {
                close(p[0]);
                return cli_fail(EXIT_FAILED, "the supervisor failed to start (see '%s/supervisor.log')",
                                h->st.dir);
        }
        sup = (pid_t)atoi(num + 1);
        int status = wait_supervisor(p[0], sup);
        close(p[0]);
        return status;
}

/* --- the verb --------------------------------------------------------------- */

static long records_supervisor(struct er_state *st)
{
        struct er_records rec;
        long pid = 0;

        er_records_init(&rec);
        if (er_records_read(st, &rec) == 0)
                pid = rec.supervisor;
        er_records_fini(&rec);
        return pid;
}

/* The winner of a race holds the lock before it writes its records: wait
 * for them (inotify on the directory, 2 s at most) to name its real pid. */
static long winner_pid(struct er_state *st)
{
        uint64_t deadline = er_now_us() + 2000000;
        long pid = records_supervisor(st);
        int fd;

        if (pid > 0 || (fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0)
                return pid;
        if (inotify_add_watch(fd, st->dir, IN_MOVED_TO | IN_CLOSE_WRITE) >= 0) {
                while (!(pid = records_supervisor(st)) && er_now_us() < deadline) {
                        struct pollfd pfd = {.fd = fd, .events = POLLIN};
                        char buf[4096];
                        if (poll(&pfd, 1, (int)((deadline - er_now_us()) / 1000) + 1) > 0)
                                while (read(fd, buf, sizeof(buf)) > 0)
                                        ;
                }
        }
        close(fd);
        return pid;
}

static int already_running(struct er_state *st, const char *project)
{
        long pid = winner_pid(st);

        if (pid <= 0)
                return cli_fail(EXIT_FAILED,
                                "AlreadyRunning: '%s' is already up (its supervisor is still "
                                "starting, %s)",
                                project, st->dir);
        return cli_fail(EXIT_FAILED, "AlreadyRunning: '%s' is already up (supervisor pid %ld, %s)",
                        project, pid, st->dir);
}

/* Opens and locks <base>/<project>, cleaning up after a dead instance
 * there.  0, or an exit status after printing why. */
static int take_instance(struct er_state *st, const char *base, const char *project)
{
        char dir[4200];
        struct er_reaped reaped = {0};
        int rc;

        snprintf(dir, sizeof(dir), "%s/%s", base, project);
        for (int tries = 0; tries < 2; tries++) {
                if ((rc = er_state_open(st, dir, true)) < 0)
                        return cli_fail(EXIT_FAILED, "state directory '%s': %s", dir, strerror(-rc));
                rc = er_state_lock(st);
                if (rc == -EWOULDBLOCK)
                        return already_running(st, project);
                if (rc < 0)
                        return cli_fail(EXIT_FAILED, "cannot lock '%s/lock': %s", dir, strerror(-rc));
                if (er_cleanup_reap(st, &reaped) == 0 && reaped.killed && arg_verbosity >= 0)
                        cli_fail(0, "cleaned up a crashed instance of '%s' (%u %s killed)", project,
                                 reaped.killed, run_plural(reaped.killed, "process", "processes"));
                if (!reaped.had_records && !er_state_has_logs(st))
                        return 0; /* a fresh directory */
                /* Start from an empty directory; the lock file goes too, so
                 * take it again (someone may have been quicker). */
                er_state_remove(st, false);
                er_state_fini(st);
                er_state_init(st);
                reaped = (struct er_reaped){0};
        }
        return 0;
}

static int select_services(const struct er_config *c, int argc, char **argv, bool **ret)
{
        bool *only;
        if (argc == 0) {
                *ret = NULL;
                return 0;
        }
        only = calloc(c->n_services ? c->n_services : 1, sizeof(*only));
        if (!only)
                return cli_fail(EXIT_FAILED, "out of memory");
        for (int a = 0; a < argc; a++) {
                size_t i;
                for (i = 0; i < c->n_services; i++)
                        if (strcmp(c->services[i].name, argv[a]) == 0)
                                break;
                if (i == c->n_services) {
                        free(only);
                        return cli_fail(EXIT_USAGE, "no service '%s' in '%s'", argv[a], c->file);
                }
                only[i] = true;
        }
        *ret = only;
        return 0;
}

/* up on a project that is up (h->tmpdir holds its directory): grow it
 * (issue 18); a supervisor that does not answer yet won a race and is
 * still starting: AlreadyRunning, naming it. */
static int grow(struct holder *h, const char *path, const char *project, int argc, char **argv)
{
        int status = up_more(path, project, h->tmpdir, argc, argv);

        if (status != UP_MORE_UNREACHABLE)
                return status;
        if (er_state_open(&h->st, h->tmpdir, false) == 0)
                return already_running(&h->st, project);
        return cli_fail(EXIT_FAILED, "AlreadyRunning: '%s' is already up", project);
}

/* The waiting command of up -d lets go of everything: the supervisor owns
 * it all now. */
static void waiter_done(struct holder *h, struct er_config *probe)
{
        run_fini_display(&h->r);
        er_config_free(h->r.config);
        er_config_free(probe);
        free(h->only);
        er_close(&h->log_fd);
        er_state_fini(&h->st);
        er_records_fini(&h->rec);
        for (size_t i = 0; i < h->ports->n; i++)
                er_close(&h->ports->lock_fds[i]);
        free(h->ports->ports);
        free(h->ports->lock_fds);
}

int verb_up(int argc, char **argv)
{
        struct holder h;
        struct er_ports ports;
        struct er_config *probe;
        struct er_doc *doc = NULL; /* the file, read once for both passes */
        char base[4096];
        const char *path;
        int status, rc;
        bool for_others;

        memset(&h, 0, sizeof(h));
        run_init(&h.r);
        h.r.ud = &h;
        h.r.lines_to_stdout = !cli_has(OPT_DETACH);
        h.notify_fd = -1;
        h.log_fd = -1;
        h.suplog_fd = -1;
        h.ports = &ports;
        h.t0 = er_now_us();
        er_state_init(&h.st);
        er_records_init(&h.rec);
        er_ports_init(&ports);

        if (!(path = cli_config_path()))
                return EXIT_USAGE;
        if (!(probe = run_load_probe(path, &doc)))
                return EXIT_USAGE;
        if ((status = select_services(probe, argc, argv, &h.only))) {
                er_config_free(probe);
                er_doc_free(doc);
                return status;
        }
        for_others = run_for_others(probe);
        if ((rc = er_state_base(arg_state_dir, for_others, base, sizeof(base))) < 0) {
                status = run_state_base_fail(EXIT_FAILED, base, rc);
                goto out_probe;
        }
        snprintf(h.tmpdir, sizeof(h.tmpdir), "%s/%s", base, probe->project);
        if (er_state_probe(h.tmpdir) == 1) {
                status = grow(&h, path, probe->project, argc, argv);
                goto out_probe;
        }
        run_config_digest(path, h.digest, sizeof(h.digest));
        if ((status = take_instance(&h.st, base, probe->project)))
                goto out_probe;
        run_reap_stale_execs(base, probe->project);
        status = EXIT_FAILED;
        if ((rc = er_state_make_dirs(&h.st, !arg_state_dir)) < 0) {
                cli_fail(EXIT_FAILED, "cannot create '%s': %s", h.st.dir, strerror(-rc));
                goto out_rm;
        }
        snprintf(h.tmpdir, sizeof(h.tmpdir), "%s/tmp", er_state_data_dir(&h.st));
        if (run_open_instance(&h.st, base, for_others, &h.log_fd, EXIT_FAILED))
                goto out_rm;
        if ((rc = er_ports_allocate(&ports, base, probe->n_ports)) < 0) {
                cli_fail(EXIT_FAILED, "cannot allocate ports: %s", strerror(-rc));
                goto out_rm;
        }
        if (!(h.r.config = run_load_final(&doc, path, h.tmpdir, ports.ports))) {
                status = EXIT_USAGE;
                goto out_ports;
        }
        if (run_prepare_display(&h.r) < 0) {
                cli_fail(EXIT_FAILED, "out of memory");
                goto out_config;
        }
        /* The services' output shares the terminal: plain progress lines,
         * no redrawn block for it to tear. */
        h.r.live = false;
        if (cli_has(OPT_DETACH)) {
                status = detach(&h);
                if (status >= 0) {
                        waiter_done(&h, probe);
                        return status;
                }
                status = -1 - status; /* the supervisor, done */
        } else {
                status = hold(&h);
        }
        run_fini_display(&h.r);
out_config:
        er_config_free(h.r.config);
out_ports:
        er_ports_release(&ports);
out_rm:
        er_close(&h.log_fd);
        er_state_remove(&h.st, h.routes.keep);
        /* `down` waits for the lock: it returns when this process is gone. */
        er_state_hold_lock_to_exit(&h.st);
        er_state_fini(&h.st);
out_probe:
        er_doc_free(doc);
        er_state_fini(&h.st);
        er_records_fini(&h.rec);
        er_config_free(probe);
        free(h.only);
        return status;
}
