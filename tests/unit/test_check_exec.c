/* check exec: real probes on a real loop.  A probe that exits 0 is ready at
 * once; one that fails until a file appears is retried; one that hangs is
 * killed at interval x 10 (or at the service's deadline) and its pid is
 * gone; a missing program fails the check for good; an aborted probe's tree
 * dies and is freed after it is gone; what a probe prints lands in the log
 * as 'P' lines; what it leaves behind is killed.  Each test also runs with
 * the fallbacks (session containment, no pidfd: exits come from reaping on
 * every turn, as the engine does on SIGCHLD).  Every process and file a test
 * makes is removed by its teardown, even when the test fails. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks/runner.h"
#include "check_parse.h"
#include "proc/contain.h"
#include "proc/envp.h"
#include "proc/log.h"
#include "proc/loop.h"
#include "proc/proc.h"

extern char **environ;

#define DEADLINE_US (10 * 1000000ULL)
#define MAX_TRACKED 16
#define MAX_PIDS 64

struct fx {
        bool fallback;                   /* session containment and no pidfd */
        struct er_loop *loop;
        struct er_contain contain;
        bool contain_ok;
        char dir[64];
        int dir_fd;
        struct er_log log;
        bool log_open;
        char **envp;
        char svc_marker[320];

        char *argv[8];
        char script[1024];
        bool shell;                      /* argv is sh -c script */
        const char *cwd;                 /* the probe's directory */
        uint64_t interval_us;
        struct er_check *check;          /* parsed from the above at each start */
        struct er_check_env env;
        struct er_check_run run;

        struct er_proc *tracked[MAX_TRACKED];
        size_t n_tracked;
        unsigned track_gen;
        pid_t pids[MAX_PIDS];            /* every probe pid seen */
        size_t n_pids;

        unsigned dones, fails;
        enum er_check_result result;
        char msg[256], why[160];
        uint64_t start_us, done_us, first_fail_us;
        struct er_timer timer;
        char file[128];
};

/* --- the engine's side, as sched.c plays it ------------------------------ */

static void track(void *engine, struct er_proc *p, bool on)
{
        struct fx *f = engine;

        f->track_gen++;
        if (on) {
                assert_true(f->n_tracked < MAX_TRACKED);
                assert_true(p->spawned && p->pid > 0);
                f->tracked[f->n_tracked++] = p;
                if (f->n_pids < MAX_PIDS)
                        f->pids[f->n_pids++] = p->pid;
                return;
        }
        for (size_t i = 0; i < f->n_tracked; i++)
                if (f->tracked[i] == p) {
                        f->tracked[i] = f->tracked[--f->n_tracked];
                        return;
                }
        fail_msg("untracked a proc that was not tracked");
}

static void on_done(struct er_check_run *run, enum er_check_result result, const char *msg)
{
        struct fx *f = er_container_of(run, struct fx, run);
        f->dones++;
        f->result = result;
        f->done_us = er_now_us();
        snprintf(f->msg, sizeof(f->msg), "%s", msg ? msg : "");
}

static void on_attempt_failed(struct er_check_run *run, const char *why)
{
        struct fx *f = er_container_of(run, struct fx, run);
        if (!f->fails++)
                f->first_fail_us = er_now_us();
        snprintf(f->why, sizeof(f->why), "%s", why);
}

static bool tracked_pid(const struct fx *f, pid_t pid)
{
        for (size_t i = 0; i < f->n_tracked; i++)
                if ((f->tracked[i]->pid == pid && !f->tracked[i]->exited) ||
                    er_group_reaper_owns(&f->tracked[i]->group, pid))
                        return true;
        return false;
}

/* What the engine does on SIGCHLD: reap tracked probes (their exit, then
 * their tree's end), and orphans that reparented to us, the subreaper. */
static void reap(struct fx *f)
{
        unsigned gen;
again:
        gen = f->track_gen;
        for (size_t i = 0; i < f->n_tracked; i++) {
                struct er_proc *p = f->tracked[i];
                if (!p->exited)
                        er_proc_reap(p);
                else if (!p->gone)
                        er_proc_check_empty(p);
                if (gen != f->track_gen)
                        goto again; /* p was freed, the list changed */
        }
        for (unsigned guard = 0; guard < 64; guard++) {
                siginfo_t si;
                memset(&si, 0, sizeof(si));
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
                        break;
                if (tracked_pid(f, si.si_pid))
                        break;
                waitid(P_PID, (id_t)si.si_pid, &si, WEXITED | WNOHANG);
        }
}

/* Runs the loop until cond holds, or the deadline. */
static bool drive(struct fx *f, bool (*cond)(const struct fx *), uint64_t within_us)
{
        uint64_t end = er_now_us() + within_us;
        while (!cond(f)) {
                if (er_now_us() > end)
                        return false;
                er_loop_run_once(f->loop, 20000);
                reap(f);
        }
        return true;
}

static bool is_done(const struct fx *f) { return f->dones > 0; }
static bool has_failed(const struct fx *f) { return f->fails > 0; }
static bool decided(const struct fx *f) { return f->fails > 0 || f->dones > 0; }
static bool none_tracked(const struct fx *f) { return f->n_tracked == 0; }
static bool one_tracked(const struct fx *f) { return f->n_tracked == 1; }

static pid_t g_pid;
static bool pid_gone(const struct fx *f)
{
        (void)f;
        return kill(g_pid, 0) < 0 && errno == ESRCH;
}

/* --- fixture ------------------------------------------------------------- */

static int setup_with(void **state, bool fallback)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct er_envlist l;

        assert_non_null(f);
        f->fallback = fallback;
        f->dir_fd = -1;
        er_timer_init(&f->timer);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test_check_exec.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dir_fd >= 0);
        assert_int_equal(er_loop_new(&f->loop), 0);
        assert_int_equal(er_contain_init(&f->contain, "tcheckexec", fallback, true), 0);
        f->contain_ok = true;
        assert_int_equal(er_log_open(&f->log, f->dir_fd, "svc", 1 << 20), 0);
        f->log_open = true;

        /* The service's environment, with the service's own marker. */
        snprintf(f->svc_marker, sizeof(f->svc_marker), "%s/svc", f->contain.instance);
        er_envlist_init(&l);
        assert_int_equal(er_envlist_set(&l, "FOO", "bar", 0, 0), 0);
        assert_int_equal(er_envlist_set(&l, "ENVRUN_MARKER", f->svc_marker, 0, 0), 0);
        const struct er_envlist *layers[] = {&l};
        f->envp = er_envp_build(environ, layers, 1);
        er_envlist_fini(&l);
        assert_non_null(f->envp);

        f->env = (struct er_check_env){
                .service = "svc",
                .envp = f->envp,
                .cwd = f->dir,
                .log = &f->log,
                .contain = &f->contain,
                .state_dir = f->dir,
                .no_pidfd = fallback,
                .track = track,
                .engine = f,
        };
        f->interval_us = er_check_exec_ops.default_interval_us;
        f->cwd = f->dir;
        *state = f;
        return 0;
}

static int setup(void **state) { return setup_with(state, false); }
static int setup_fallback(void **state) { return setup_with(state, true); }

/* Kills pid only when it is still what the test made (a reused pid is left alone). */
static void kill_if(pid_t pid, const char *comm)
{
        char path[64], buf[64] = "";
        FILE *fp;

        snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
        fp = fopen(path, "re");
        if (!fp)
                return;
        if (fgets(buf, sizeof(buf), fp) && !strncmp(buf, comm, strlen(comm)))
                kill(pid, SIGKILL);
        fclose(fp);
}

static int teardown(void **state)
{
        struct fx *f = *state;
        DIR *d;
        struct dirent *de;

        er_runner_stop(&f->run);
        er_timer_stop(f->loop, &f->timer);
        for (size_t i = 0; i < f->n_tracked; i++)
                kill(f->tracked[i]->pid, SIGKILL);
        drive(f, none_tracked, DEADLINE_US);
        for (size_t i = 0; i < f->n_pids; i++)
                kill_if(f->pids[i], "sleep");
        reap(f);
        if (f->log_open)
                er_log_close(&f->log);
        if (f->contain_ok)
                er_contain_fini(&f->contain);
        er_loop_free(f->loop);
        er_envp_free(f->envp);
        d = fdopendir(f->dir_fd);
        while (d && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        unlinkat(dirfd(d), de->d_name, 0);
        if (d)
                closedir(d);
        rmdir(f->dir);
        er_check_free(f->check);
        free(f);
        return 0;
}

static void set_argv(struct fx *f, const char *a0, const char *a1)
{
        f->argv[0] = (char *)a0;
        f->argv[1] = (char *)a1;
        f->argv[2] = NULL;
        f->shell = false;
}

static void set_shell(struct fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_shell(struct fx *f, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->script, sizeof(f->script), fmt, ap);
        va_end(ap);
        f->argv[0] = "/bin/sh";
        f->argv[1] = "-c";
        f->argv[2] = f->script;
        f->argv[3] = NULL;
        f->shell = true;
}

/* The check, as environment.yml would say it: {exec: [ARGV...]} or
 * {exec: SCRIPT, shell: true}, in f->cwd. */
static void build(struct fx *f)
{
        er_check_free(f->check);
        if (f->shell)
                f->check = check_parse_in(f->cwd, "{exec: %s, shell: true}", check_literal(f->script));
        else if (f->argv[1])
                f->check = check_parse_in(f->cwd, "{exec: [%s, %s]}", check_literal(f->argv[0]),
                                          check_literal(f->argv[1]));
        else
                f->check = check_parse_in(f->cwd, "{exec: [%s]}", check_literal(f->argv[0]));
        f->check->interval_us = f->interval_us;
}

static void start(struct fx *f)
{
        build(f);
        er_runner_init(&f->run, f->check, f->loop, &f->env, f, on_done);
        f->run.attempt_failed = on_attempt_failed;
        f->start_us = er_now_us();
        assert_int_equal(er_runner_start(&f->run, false), 0);
}

/* The whole log, NUL-terminated, in buf. */
static void read_log(struct fx *f, char *buf, size_t len)
{
        int fd = openat(f->dir_fd, "svc.log", O_RDONLY | O_CLOEXEC);
        ssize_t k;

        assert_true(fd >= 0);
        k = read(fd, buf, len - 1);
        close(fd);
        assert_true(k >= 0);
        buf[k] = '\0';
}

/* --- tests --------------------------------------------------------------- */

static void test_true_ready_at_once(void **state)
{
        struct fx *f = *state;

        set_argv(f, "true", NULL);
        start(f);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_READY);
        assert_int_equal(f->dones, 1);
        assert_int_equal(f->fails, 0);
        assert_int_equal(f->run.attempts, 0);
        assert_int_equal(f->n_pids, 1);
        /* The probe's tree is gone and freed before the result is reported. */
        assert_int_equal(f->n_tracked, 0);
        assert_null(f->run.priv);
        print_message("exec true ready in %.2f ms\n", (double)(f->done_us - f->start_us) / 1000);
}

static void make_file(struct er_loop *loop, struct er_timer *t)
{
        struct fx *f = er_container_of(t, struct fx, timer);
        int fd = open(f->file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
}

static void test_retried_until_file_appears(void **state)
{
        struct fx *f = *state;

        snprintf(f->file, sizeof(f->file), "%s/ready-flag", f->dir);
        set_shell(f, "test -f '%s'", f->file);
        f->interval_us = 20000;
        start(f);
        er_timer_start(f->loop, &f->timer, 150000, make_file);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_READY);
        assert_true(f->fails >= 1);
        assert_true(f->run.attempts >= 1);
        assert_string_equal(f->why, "probe exited 1");
        assert_string_equal(f->run.last_error, "probe exited 1");
        assert_true(f->done_us - f->start_us >= 150000);
        assert_int_equal(f->n_tracked, 0);
        print_message("file check: %u failed attempts, ready %.1f ms after the file was made\n",
                      f->fails, (double)(f->done_us - f->start_us - 150000) / 1000);
}

static void test_hung_probe_timed_out_and_killed(void **state)
{
        struct fx *f = *state;
        double ms;

        set_argv(f, "sleep", "30");
        f->interval_us = 50000;
        start(f);
        assert_true(drive(f, has_failed, DEADLINE_US));
        ms = (double)(f->first_fail_us - f->start_us) / 1000;
        assert_string_equal(f->why, "probe timed out after 500ms");
        assert_true(ms >= 500 && ms < 1500);
        assert_int_equal(f->dones, 0);
        /* The first probe is dead and reaped: its pid no longer exists. */
        assert_true(f->n_pids >= 1);
        g_pid = f->pids[0];
        assert_true(drive(f, pid_gone, DEADLINE_US));
        /* The runner retries; stopping it kills the probe in flight. */
        er_runner_stop(&f->run);
        assert_true(drive(f, none_tracked, DEADLINE_US));
        assert_int_equal(f->dones, 0);
        print_message("timed out after %.1f ms (bound 500 ms)\n", ms);
}

static void test_deadline_bounds_attempt(void **state)
{
        struct fx *f = *state;
        char *end;
        long left;
        double ms;

        set_argv(f, "sleep", "30");
        f->interval_us = 10 * 1000000ULL; /* x 10: far beyond the deadline */
        f->env.deadline_us = er_now_us() + 300000;
        start(f);
        assert_true(drive(f, has_failed, DEADLINE_US));
        ms = (double)(f->first_fail_us - f->start_us) / 1000;
        assert_true(ms >= 290 && ms < 1300);
        /* The bound is what the service had left when the probe started. */
        assert_memory_equal(f->why, "probe timed out after ", 22);
        left = strtol(f->why + 22, &end, 10);
        assert_string_equal(end, "ms");
        assert_true(left > 0 && left <= 300);
        er_runner_stop(&f->run);
        assert_true(drive(f, none_tracked, DEADLINE_US));
}

static void test_output_goes_to_log(void **state)
{
        struct fx *f = *state;
        char buf[8192];

        set_shell(f, "echo hello-probe; echo oops-probe >&2");
        start(f);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_READY);
        read_log(f, buf, sizeof(buf));
        assert_non_null(strstr(buf, " P hello-probe\n"));
        assert_non_null(strstr(buf, " P oops-probe\n"));
        assert_null(strstr(buf, " O "));
        assert_null(strstr(buf, " E "));
}

static void test_missing_program_fails_for_good(void **state)
{
        struct fx *f = *state;

        set_argv(f, "envrun-no-such-probe", NULL);
        start(f);
        /* Reported from inside the attempt: no retry. */
        assert_int_equal(f->dones, 1);
        assert_int_equal(f->result, ER_CHECK_FAILED);
        assert_string_equal(f->msg, "'envrun-no-such-probe': command not found");
        assert_string_equal(f->run.last_error, f->msg);
        assert_int_equal(f->run.attempts, 1);
        assert_int_equal(f->fails, 0);
        assert_false(f->run.active);
        assert_false(f->run.attempting);
        assert_false(er_timer_active(&f->run.retry));
        assert_int_equal(f->n_tracked, 0);
        /* Nothing comes after. */
        er_loop_run_once(f->loop, 50000);
        assert_int_equal(f->dones, 1);
}

static void test_bad_cwd_fails_for_good(void **state)
{
        struct fx *f = *state;
        char cwd[128];

        snprintf(cwd, sizeof(cwd), "%s/no-such-dir", f->dir);
        f->cwd = cwd;
        set_argv(f, "true", NULL);
        start(f);
        assert_int_equal(f->dones, 1);
        assert_int_equal(f->result, ER_CHECK_FAILED);
        assert_non_null(strstr(f->msg, "No such file or directory"));
        f->cwd = f->dir;
}

static void test_abort_kills_the_tree(void **state)
{
        struct fx *f = *state;
        pid_t pid;

        set_argv(f, "sleep", "30");
        f->interval_us = 10 * 1000000ULL;
        start(f);
        assert_true(drive(f, one_tracked, DEADLINE_US));
        pid = f->tracked[0]->pid;
        assert_int_equal(kill(pid, 0), 0);
        er_runner_stop(&f->run);
        assert_null(f->run.priv);
        assert_false(f->run.active);
        /* The proc stays until its tree is gone, then frees itself. */
        assert_true(drive(f, none_tracked, DEADLINE_US));
        g_pid = pid;
        assert_true(drive(f, pid_gone, DEADLINE_US));
        assert_int_equal(f->dones, 0);
        assert_int_equal(f->fails, 0);
}

static void test_leftovers_killed(void **state)
{
        struct fx *f = *state;
        char buf[8192], *p;
        long bg;

        /* Exits 0 at once, leaving a sleep behind in its tree. */
        set_shell(f, "sleep 30 & echo bg=$!");
        start(f);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_READY);
        read_log(f, buf, sizeof(buf));
        p = strstr(buf, " P bg=");
        assert_non_null(p);
        bg = strtol(p + 6, NULL, 10);
        assert_true(bg > 0);
        if (f->n_pids < MAX_PIDS)
                f->pids[f->n_pids++] = (pid_t)bg;
        /* Reported only once the tree was gone: the sleep is dead already
         * (at most a zombie waiting for its reaper). */
        g_pid = (pid_t)bg;
        assert_true(drive(f, pid_gone, DEADLINE_US));
}

static void test_environment_cwd_and_marker(void **state)
{
        struct fx *f = *state;

        /* The service's variables and cwd; its own marker, not the service's. */
        set_shell(f,
                  "test \"$FOO\" = bar && test \"$(pwd)\" = '%s' && "
                  "test \"$ENVRUN_MARKER\" != '%s' && "
                  "case \"$ENVRUN_MARKER\" in '%s/svc@probe.'*) exit 0;; esac; exit 1",
                  f->dir, f->svc_marker, f->contain.instance);
        f->interval_us = 10 * 1000000ULL;
        start(f);
        assert_true(drive(f, decided, DEADLINE_US));
        assert_int_equal(f->fails, 0);
        assert_int_equal(f->dones, 1);
        assert_int_equal(f->result, ER_CHECK_READY);
}

static void test_killed_by_signal(void **state)
{
        struct fx *f = *state;

        set_shell(f, "kill -TERM $$");
        start(f);
        assert_true(drive(f, has_failed, DEADLINE_US));
        assert_string_equal(f->why, "probe killed by SIGTERM");
        er_runner_stop(&f->run);
        assert_true(drive(f, none_tracked, DEADLINE_US));
}

static void test_once(void **state)
{
        struct fx *f = *state;

        /* A single attempt, reported either way (the runner's once mode). */
        set_argv(f, "false", NULL);
        build(f);
        er_runner_init(&f->run, f->check, f->loop, &f->env, f, on_done);
        assert_int_equal(er_runner_start(&f->run, true), 0);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_FAILED);
        assert_string_equal(f->msg, "probe exited 1");
        assert_int_equal(f->n_tracked, 0);
}

int main(void)
{
#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup, teardown), \
                cmocka_unit_test_setup_teardown(t, setup_fallback, teardown)
        const struct CMUnitTest tests[] = {
                BOTH(test_true_ready_at_once),
                BOTH(test_retried_until_file_appears),
                BOTH(test_hung_probe_timed_out_and_killed),
                BOTH(test_deadline_bounds_attempt),
                BOTH(test_output_goes_to_log),
                BOTH(test_missing_program_fails_for_good),
                BOTH(test_bad_cwd_fails_for_good),
                BOTH(test_abort_kills_the_tree),
                BOTH(test_leftovers_killed),
                BOTH(test_environment_cwd_and_marker),
                BOTH(test_killed_by_signal),
                BOTH(test_once),
        };
        /* Orphans of the probes come to us, to be reaped (as envrun is). */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
