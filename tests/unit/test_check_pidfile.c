/* check_pidfile: the pidfile readiness check on a real loop, with real
 * processes in a real group, under both containment kinds (cgroup2 needs
 * root, as in test_contain; tests/run runs as root).
 *
 * The member processes are forked children that call setsid and are
 * placed in the group before they do anything (the cgroup kind); for the
 * reaper kind the test process stands in for the reaper (a subreaper whose
 * descendants are the group), which test_contain tests on its own; each obeys one-byte commands on a pipe:
 * write its pid into the file, write it atomically (tmp + rename), make the
 * directories first, or daemonize (a grandchild writes its own pid, the
 * child exits 0).
 *
 * Not polled: after start, the runner's retry timer is idle, a loop
 * iteration of 100 ms runs no callback at all, and a file of another name in
 * the same directory wakes the check without a recheck.
 *
 * Every child is killed by pid (and the group with cgroup.kill or by
 * signal), reaped, and the cgroup and the temporary directory removed by the
 * teardown, even when the test fails. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks/runner.h"
#include "proc/contain.h"
#include "proc/spawn.h"
#include "proc/loop.h"

#define DEADLINE_US (5 * 1000 * 1000)
#define QUIET_US (100 * 1000) /* a polled check would have run in this */
#define MAX_KIDS 16

/* Commands to a member child. */
#define CMD_WRITE 'w'     /* write its pid into the file */
#define CMD_RENAME 'r'    /* write it to a temporary file, then rename it into place */
#define CMD_MKDIRS 'd'    /* make the directories of the file, then write */
#define CMD_DAEMONIZE 'f' /* a grandchild writes its own pid; the child exits 0 */
#define CMD_ZOMBIE 'z'    /* write the pid of a child of its own that exited, unreaped */

struct fixture {
        bool cgroup;
        struct er_loop *loop;
        struct er_contain c;
        bool c_ok;
        struct er_group g;
        bool g_ok;
        char dir[64];   /* the test's temporary directory */
        char path[256]; /* the pid file */
        struct er_check check;
        struct er_check_path conf; /* the check's, pointing at path */
        struct er_check_env env;
        struct er_check_run run;
        bool started;

        pid_t kids[MAX_KIDS]; /* every process made: killed and reaped in teardown */
        int cmd_fd[MAX_KIDS]; /* their command pipes */
        size_t nkids;

        /* what the check reported */
        unsigned ndone;
        enum er_check_result result;
        pid_t daemon;        /* the last run->daemon() */
        pid_t adopt_at_done; /* daemon, when done() came */
        char msg[256];
        bool stop_in_done; /* as the scheduler does */
        unsigned nfailed;
        char why[160];

        /* a write from a timer callback */
        struct er_timer timer;
        int timer_fd;
        char timer_cmd;
        uint64_t cmd_sent_us;
        uint64_t done_us;
};

/* ---- helpers ---- */

static void on_done(struct er_check_run *run, enum er_check_result result, const char *msg)
{
        struct fixture *fx = run->owner;

        fx->ndone++;
        fx->result = result;
        fx->adopt_at_done = fx->daemon;
        fx->done_us = er_now_us();
        snprintf(fx->msg, sizeof(fx->msg), "%s", msg ? msg : "");
        if (fx->stop_in_done)
                er_runner_stop(run);
}

static void on_daemon(struct er_check_run *run, pid_t pid)
{
        struct fixture *fx = run->owner;

        fx->daemon = pid;
}

static void on_failed(struct er_check_run *run, const char *why)
{
        struct fixture *fx = run->owner;

        fx->nfailed++;
        snprintf(fx->why, sizeof(fx->why), "%s", why);
}

static void write_all(int fd, const char *s)
{
        size_t len = strlen(s);
        while (len) {
                ssize_t k = write(fd, s, len);
                if (k <= 0)
                        _exit(3);
                s += k;
                len -= (size_t)k;
        }
}

static void put_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                _exit(2);
        write_all(fd, text);
        close(fd);
}

/* mkdir -p of the file's directory. */
static void make_dirs(const char *path)
{
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *s = buf + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        mkdir(buf, 0755);
                        *s = '/';
                }
}

/* The child's side.  Never returns. */
static void kid_main(int rfd, const char *path)
{
        char cmd, pid[32], tmp[300];
        pid_t gc;

        setsid();
        while (read(rfd, &cmd, 1) == 1) {
                snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
                switch (cmd) {
                case CMD_MKDIRS:
                        make_dirs(path);
                        /* fall through */
                case CMD_WRITE:
                        put_file(path, pid);
                        break;
                case CMD_RENAME:
                        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
                        put_file(tmp, pid);
                        if (rename(tmp, path) < 0)
                                _exit(4);
                        break;
                case CMD_DAEMONIZE:
                        gc = fork();
                        if (gc < 0)
                                _exit(5);
                        if (gc == 0) {
                                snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
                                put_file(path, pid);
                                for (;;)
                                        pause();
                        }
                        _exit(0);
                case CMD_ZOMBIE:
                        gc = fork();
                        if (gc < 0)
                                _exit(5);
                        if (gc == 0)
                                _exit(0);
                        {
                                siginfo_t si;
                                if (waitid(P_PID, (id_t)gc, &si, WEXITED | WNOWAIT) < 0)
                                        _exit(6);
                        }
                        snprintf(pid, sizeof(pid), "%ld\n", (long)gc);
                        put_file(path, pid);
                        break;
                }
        }
        _exit(0);
}

static void remember(struct fixture *fx, pid_t pid, int fd)
{
        assert_true(fx->nkids < MAX_KIDS);
        fx->kids[fx->nkids] = pid;
        fx->cmd_fd[fx->nkids] = fd;
        fx->nkids++;
}

/* A member of the group, waiting for commands.  It is in the group before
 * it can act: it waits for its first command, sent after
 * er_group_started. */
static pid_t spawn_member(struct fixture *fx, int *ret_fd)
{
        int p[2];
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[1]);
                kid_main(p[0], fx->path);
        }
        close(p[0]);
        remember(fx, pid, p[1]);
        {
                /* The reaper kind: the test stands in for the reaper. */
                struct er_child ch = {.pid = pid, .pidfd = -1, .reaper_pid = -1,
                                      .reaper_pidfd = -1, .reaper_cmd = -1, .reaper_st = -1};
                if (!fx->cgroup)
                        ch.reaper_pid = getpid();
                assert_int_equal(er_group_started(&fx->g, &ch), 0);
        }
        *ret_fd = p[1];
        return pid;
}

static void send_cmd(int fd, char cmd)
{
        assert_int_equal(write(fd, &cmd, 1), 1);
}

static bool in_group(struct fixture *fx, pid_t pid)
{
        pid_t pids[64];
        int n = er_group_pids(&fx->g, pids, 64);
        for (int i = 0; i < n && i < 64; i++)
                if (pids[i] == pid)
                        return true;
        return false;
}

/* Waits until the group lists pid (setsid done, for the session kind). */
static void wait_member(struct fixture *fx, pid_t pid)
{
        uint64_t end = er_now_us() + DEADLINE_US;
        struct timespec ts = {0, 1000 * 1000};

        while (er_now_us() < end) {
                if (in_group(fx, pid))
                        return;
                nanosleep(&ts, NULL); /* the child runs meanwhile; bounded by the deadline */
        }
        fail_msg("pid %ld never joined the group", (long)pid);
}

/* Writes text into the file the way an editor would not: atomically. */
static void put_atomic(struct fixture *fx, const char *text)
{
        char tmp[300];
        snprintf(tmp, sizeof(tmp), "%s/.incoming", fx->dir);
        put_file(tmp, text);
        assert_int_equal(rename(tmp, fx->path), 0);
}

static void start_check(struct fixture *fx)
{
        er_runner_init(&fx->run, &fx->check, fx->loop, &fx->env, fx, on_done);
        fx->run.daemon = on_daemon;
        fx->daemon = 0; /* what this start names */
        fx->run.attempt_failed = on_failed;
        assert_int_equal(er_runner_start(&fx->run, false), 0);
        fx->started = true;
        /* Never polled: the generic runner's retry timer stays idle. */
        assert_false(er_timer_active(&fx->run.retry));
}

/* Runs the loop until cond holds or the deadline passes. */
static bool run_until(struct fixture *fx, bool (*cond)(struct fixture *), const char *what)
{
        uint64_t end = er_now_us() + DEADLINE_US;

        while (!cond(fx)) {
                uint64_t now = er_now_us();
                if (now >= end) {
                        print_message("    timed out waiting for %s\n", what);
                        return false;
                }
                assert_true(er_loop_run_once(fx->loop, (int64_t)(end - now)) >= 0);
        }
        return true;
}

static bool is_done(struct fixture *fx)
{
        return fx->ndone > 0;
}

static unsigned want_failed;
static const char *want_why;

static bool failed_with(struct fixture *fx)
{
        return fx->nfailed >= want_failed && strstr(fx->why, want_why);
}

/* Waits for a recheck after the latest change, saying `why`. */
static void expect_not_ready(struct fixture *fx, unsigned before, const char *why)
{
        want_failed = before + 1;
        want_why = why;
        if (!run_until(fx, failed_with, why))
                fail_msg("expected a recheck saying '%s', last: '%s'", why, fx->why);
        assert_int_equal(fx->ndone, 0);
}

static void expect_ready(struct fixture *fx, pid_t pid)
{
        assert_true(run_until(fx, is_done, "ready"));
        assert_int_equal(fx->ndone, 1);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->adopt_at_done, pid);
        assert_int_equal(fx->daemon, pid);
}

/* Nothing happens on its own: no callback in QUIET_US. */
static void expect_quiet(struct fixture *fx)
{
        unsigned before = fx->nfailed;
        assert_int_equal(er_loop_run_once(fx->loop, QUIET_US), 0);
        assert_int_equal(fx->nfailed, before);
        assert_int_equal(fx->ndone, 0);
}

/* Runs what is pending now: the IN_IGNORED that follows a moved watch. */
static void settle(struct fixture *fx)
{
        while (er_loop_run_once(fx->loop, 0) > 0)
                ;
}

static void on_timer(struct er_loop *loop, struct er_timer *t)
{
        struct fixture *fx = er_container_of(t, struct fixture, timer);
        fx->cmd_sent_us = er_now_us();
        send_cmd(fx->timer_fd, fx->timer_cmd);
}

static int count_fds(void)
{
        int n = 0;
        char path[64];
        for (int fd = 0; fd < 1024; fd++) {
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                if (access(path, F_OK) == 0)
                        n++;
        }
        return n;
}

/* ---- setup ---- */

static bool expect_cgroup2(void)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];
        bool found = false;

        if (!f)
                return false;
        while (fgets(line, sizeof(line), f))
                if (strstr(line, " - cgroup2 ")) {
                        found = true;
                        break;
                }
        fclose(f);
        return found && geteuid() == 0;
}

static int setup(void **state, bool cgroup)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        struct er_err err = {0};

        if (!fx)
                return -1;
        *state = fx;
        fx->cgroup = cgroup;
        if (er_loop_new(&fx->loop) < 0)
                return -1;
        er_timer_init(&fx->timer);
        if (er_contain_init(&fx->c, "tpid", !cgroup, true) < 0)
                return -1;
        fx->c_ok = true;
        if (er_group_init(&fx->g, &fx->c, "svc", &err) < 0)
                return -1;
        fx->g_ok = true;
        snprintf(fx->dir, sizeof(fx->dir), "/tmp/envrun-pidfile.XXXXXX");
        if (!mkdtemp(fx->dir))
                return -1;
        snprintf(fx->path, sizeof(fx->path), "%s/svc.pid", fx->dir);
        fx->check.ops = &er_check_pidfile_ops;
        fx->check.conf = &fx->conf;
        fx->conf.path = fx->path;
        fx->env.service = "svc";
        fx->env.group = &fx->g;
        fx->stop_in_done = true;
        return 0;
}

static int setup_cgroup(void **state)
{
        return setup(state, true);
}

static int setup_session(void **state)
{
        return setup(state, false);
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (type == FTW_DP)
                rmdir(path);
        else
                unlink(path);
        return 0;
}

static void reap_all(void)
{
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        uint64_t end = er_now_us() + DEADLINE_US;
        struct timespec ts = {0, 1000 * 1000};

        if (fx->started)
                er_runner_stop(&fx->run);
        if (fx->loop)
                er_timer_stop(fx->loop, &fx->timer);
        for (size_t i = 0; i < fx->nkids; i++) {
                kill(fx->kids[i], SIGKILL);
                close(fx->cmd_fd[i]);
        }
        /* The daemon a test adopted, by pid; only when it is one of the
         * group (a broken check could name anything, the test itself too). */
        if (fx->adopt_at_done > 0 && fx->g_ok && in_group(fx, fx->adopt_at_done))
                kill(fx->adopt_at_done, SIGKILL);
        for (size_t i = 0; i < fx->nkids; i++)
                waitpid(fx->kids[i], NULL, 0);
        if (fx->g_ok) {
                /* Grandchildren: the group kill reaches them; orphans come
                 * here when the test is a subreaper (the session kind). */
                er_group_kill(&fx->g);
                if (fx->g.reaper == getpid()) {
                        /* The stand-in reaper: its tree is empty when it has
                         * no child left. */
                        while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
                                ;
                        fx->g.reaper_gone = true;
                }
                while (reap_all(), !er_group_empty(&fx->g) && er_now_us() < end)
                        nanosleep(&ts, NULL);
                er_group_fini(&fx->g);
        }
        if (fx->c_ok)
                er_contain_fini(&fx->c);
        if (fx->dir[0] && strcmp(fx->dir, "/tmp/envrun-pidfile.XXXXXX"))
                nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (fx->loop)
                er_loop_free(fx->loop);
        free(fx);
        return 0;
}

static void check_kind(struct fixture *fx)
{
        if (fx->cgroup && !expect_cgroup2())
                fail_msg("needs root and a cgroup2 hierarchy (tests/run runs as root)");
        assert_int_equal(fx->c.kind, fx->cgroup ? ER_CONTAIN_CGROUP2 : ER_CONTAIN_REAPER);
}

/* ---- tests ---- */

/* A file that names a member already: ready inside start. */
static void test_present(void **state)
{
        struct fixture *fx = *state;
        char text[32];
        int fd;
        pid_t pid;

        check_kind(fx);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);
        snprintf(text, sizeof(text), "%ld\n", (long)pid);
        put_atomic(fx, text);
        start_check(fx);
        assert_int_equal(fx->ndone, 1);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->adopt_at_done, pid);
        assert_int_equal(fx->nfailed, 0);
        /* exited() leaves exits to the scheduler; stop is idempotent. */
        assert_false(fx->check.ops->exited(&fx->run, 0));
        er_runner_stop(&fx->run);
        er_runner_stop(&fx->run);
}

/* Written later by the member itself, on a command from a timer callback:
 * ready on the inotify event, with the latency measured. */
static void test_appears_later(void **state)
{
        struct fixture *fx = *state;
        pid_t pid;

        check_kind(fx);
        pid = spawn_member(fx, &fx->timer_fd);
        wait_member(fx, pid);
        start_check(fx);
        assert_int_equal(fx->ndone, 0);
        assert_int_equal(fx->nfailed, 1);
        assert_string_equal(fx->why, "does not exist yet");
        expect_quiet(fx);
        fx->timer_cmd = CMD_WRITE;
        assert_int_equal(er_timer_start(fx->loop, &fx->timer, 1000, on_timer), 0);
        expect_ready(fx, pid);
        print_message("    write to ready: %.0f us\n", (double)(fx->done_us - fx->cmd_sent_us));
}

/* Not polled: after start, nothing runs until the file's directory sees an
 * event; another name in the directory wakes the loop but is no recheck. */
static void test_not_polled(void **state)
{
        struct fixture *fx = *state;
        char other[300];
        unsigned before;
        pid_t pid;
        int fd;

        check_kind(fx);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);
        start_check(fx);
        for (int i = 0; i < 3; i++)
                expect_quiet(fx);
        before = fx->nfailed;
        snprintf(other, sizeof(other), "%s/other.pid", fx->dir);
        put_file(other, "1\n");
        assert_true(er_loop_run_once(fx->loop, DEADLINE_US) >= 1);
        settle(fx);
        assert_int_equal(fx->nfailed, before);
        expect_quiet(fx);
        send_cmd(fd, CMD_WRITE);
        expect_ready(fx, pid);
}

/* Stale files: the test's own pid, pid 1, a pid that exited, a zombie of
 * the group; none is ready and none fails; a rewrite by the member is. */
static void test_stale(void **state)
{
        struct fixture *fx = *state;
        char text[32], want[96];
        pid_t pid, gone;
        int fd;

        check_kind(fx);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);

        snprintf(text, sizeof(text), "%ld\n", (long)getpid());
        put_atomic(fx, text);
        start_check(fx);
        assert_int_equal(fx->ndone, 0);
        snprintf(want, sizeof(want), "holds pid %ld, which is not a process of the service",
                 (long)getpid());
        assert_string_equal(fx->why, want);
        expect_quiet(fx);

        put_atomic(fx, "1\n");
        expect_not_ready(fx, fx->nfailed, "holds pid 1, which is not a process of the service");

        gone = fork();
        assert_true(gone >= 0);
        if (gone == 0)
                _exit(0);
        assert_int_equal(waitpid(gone, NULL, 0), gone);
        snprintf(text, sizeof(text), "%ld", (long)gone);
        snprintf(want, sizeof(want), "holds pid %ld, which is not running", (long)gone);
        put_atomic(fx, text);
        expect_not_ready(fx, fx->nfailed, want);

        /* A process of the tree that exited and was not reaped yet: the
         * group lists it, and it is no daemon to adopt. */
        send_cmd(fd, CMD_ZOMBIE);
        expect_not_ready(fx, fx->nfailed, "which is not running");

        send_cmd(fd, CMD_WRITE);
        expect_ready(fx, pid);
}

/* Garbage is not ready, and not a failure either; the member's write is. */
static void test_garbage(void **state)
{
        struct fixture *fx = *state;
        static const struct {
                const char *text, *why;
        } cases[] = {
            {"abc\n", "holds no pid"}, {"x12\n", "holds no pid"},
            {"0\n", "holds no pid"},   {"-5\n", "holds no pid"},
            {"\n12\n", "holds no pid"}, {"99999999999999999999\n", "holds no pid"},
            {"", "is empty"},          {" \n\t", "holds no pid"},
        };
        char link[300], target[300];
        pid_t pid;
        int fd;

        check_kind(fx);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);
        start_check(fx);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                put_atomic(fx, cases[i].text);
                expect_not_ready(fx, fx->nfailed, cases[i].why);
        }
        /* A FIFO would block a plain open: never on the loop. */
        assert_int_equal(unlink(fx->path), 0);
        assert_int_equal(mkfifo(fx->path, 0600), 0);
        expect_not_ready(fx, fx->nfailed, "is not a regular file");

        /* A symlink to a good file is not followed. */
        snprintf(target, sizeof(target), "%s/target", fx->dir);
        snprintf(link, sizeof(link), "%ld\n", (long)pid);
        put_file(target, link);
        snprintf(link, sizeof(link), "%s/.link", fx->dir);
        assert_int_equal(symlink(target, link), 0);
        assert_int_equal(rename(link, fx->path), 0);
        expect_not_ready(fx, fx->nfailed, "is a symbolic link");

        assert_int_equal(unlink(fx->path), 0); /* else the write would follow it */
        send_cmd(fd, CMD_WRITE);
        expect_ready(fx, pid);
}

/* SPEC §4: the pid is the leading number of the first line; the rest is
 * ignored (PostgreSQL's postmaster.pid; a file longer than what is read). */
static void test_first_line(void **state)
{
        struct fixture *fx = *state;
        char text[400];
        pid_t pid;
        int fd;

        check_kind(fx);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);
        start_check(fx);
        snprintf(text, sizeof(text),
                 "%ld\n/var/lib/postgresql/15/main\n1700000000\n5432\n/var/run/postgresql\n"
                 "localhost\n  5432001  32768\nready   \n%0200d\n",
                 (long)pid, 0);
        put_atomic(fx, text);
        expect_ready(fx, pid);
}

/* Written to a temporary file and renamed into place (IN_MOVED_TO). */
static void test_rename(void **state)
{
        struct fixture *fx = *state;
        pid_t pid;
        int fd;

        check_kind(fx);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);
        start_check(fx);
        send_cmd(fd, CMD_RENAME);
        expect_ready(fx, pid);
}

/* Two directory levels that do not exist yet, made at once with the file
 * (mkdir -p, then write: the watch moves down two levels in one go). */
static void test_dirs_at_once(void **state)
{
        struct fixture *fx = *state;
        pid_t pid;
        int fd;

        check_kind(fx);
        snprintf(fx->path, sizeof(fx->path), "%s/run/app/svc.pid", fx->dir);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);
        start_check(fx);
        assert_int_equal(fx->nfailed, 1);
        assert_string_equal(fx->why, "its directory does not exist yet");
        expect_quiet(fx);
        send_cmd(fd, CMD_MKDIRS);
        expect_ready(fx, pid);
}

/* Levels made one at a time, a file where a directory should be, and the
 * file's directory removed and made again. */
static void test_dirs_stepwise(void **state)
{
        struct fixture *fx = *state;
        char a[300], b[300];
        pid_t pid;
        int fd;

        check_kind(fx);
        snprintf(a, sizeof(a), "%s/run", fx->dir);
        snprintf(b, sizeof(b), "%s/run/app", fx->dir);
        snprintf(fx->path, sizeof(fx->path), "%s/run/app/svc.pid", fx->dir);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);

        put_file(a, "not a directory");
        start_check(fx);
        assert_string_equal(fx->why, "its directory does not exist yet");
        assert_int_equal(unlink(a), 0);
        assert_int_equal(mkdir(a, 0755), 0);
        assert_true(er_loop_run_once(fx->loop, DEADLINE_US) >= 1);
        settle(fx);
        assert_int_equal(fx->nfailed, 1); /* not the file's directory yet: no recheck */
        expect_quiet(fx);
        assert_int_equal(mkdir(b, 0755), 0);
        /* Now in the file's directory: the move rechecks at once. */
        expect_not_ready(fx, 1, "does not exist yet");
        settle(fx);
        expect_quiet(fx);

        /* The directory goes away and comes back: the watch follows. */
        assert_int_equal(rmdir(b), 0);
        assert_true(er_loop_run_once(fx->loop, DEADLINE_US) >= 1);
        settle(fx);
        assert_int_equal(mkdir(b, 0755), 0);
        expect_not_ready(fx, fx->nfailed, "does not exist yet");
        send_cmd(fd, CMD_WRITE);
        expect_ready(fx, pid);
}

/* The daemonizing case: the main process forks, the grandchild writes its
 * own pid and the main process exits 0; adopt_pid names the grandchild. */
static void test_daemonize(void **state)
{
        struct fixture *fx = *state;
        int fd, status = 0;
        pid_t pid;

        check_kind(fx);
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);
        start_check(fx);
        send_cmd(fd, CMD_DAEMONIZE);
        assert_true(run_until(fx, is_done, "ready"));
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_true(fx->adopt_at_done > 0);
        assert_true(fx->adopt_at_done != pid);
        assert_int_equal(kill(fx->adopt_at_done, 0), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Without the scheduler's stop in done(): still one done() per start, the
 * later events never reach it; stop then releases everything. */
static void test_once_and_cancel(void **state)
{
        struct fixture *fx = *state;
        char text[32];
        int fd, fds;
        pid_t pid;

        check_kind(fx);
        fx->stop_in_done = false;
        pid = spawn_member(fx, &fd);
        wait_member(fx, pid);
        fds = count_fds();
        start_check(fx);
        assert_int_equal(count_fds(), fds + 1); /* the inotify fd */
        send_cmd(fd, CMD_WRITE);
        expect_ready(fx, pid);
        snprintf(text, sizeof(text), "%ld\n", (long)pid);
        put_atomic(fx, text);
        put_atomic(fx, "garbage");
        assert_int_equal(er_loop_run_once(fx->loop, QUIET_US), 0);
        assert_int_equal(fx->ndone, 1);
        er_runner_stop(&fx->run);
        assert_int_equal(count_fds(), fds);

        /* Cancelled while waiting: nothing comes after. */
        assert_int_equal(unlink(fx->path), 0);
        fx->ndone = 0;
        fx->adopt_at_done = 0;
        start_check(fx);
        assert_int_equal(fx->daemon, 0);
        assert_int_equal(count_fds(), fds + 1);
        er_runner_stop(&fx->run);
        assert_int_equal(count_fds(), fds);
        send_cmd(fd, CMD_WRITE);
        assert_int_equal(er_loop_run_once(fx->loop, QUIET_US), 0);
        assert_int_equal(fx->ndone, 0);
}

/* A relative path cannot be watched: start says so. */
static void test_bad_path(void **state)
{
        struct fixture *fx = *state;

        check_kind(fx);
        fx->conf.path = "relative/svc.pid";
        er_runner_init(&fx->run, &fx->check, fx->loop, &fx->env, fx, on_done);
        assert_int_equal(er_runner_start(&fx->run, false), -EINVAL);
        er_runner_stop(&fx->run);
        fx->conf.path = fx->path;
        snprintf(fx->path, sizeof(fx->path), "%s/", fx->dir);
        er_runner_init(&fx->run, &fx->check, fx->loop, &fx->env, fx, on_done);
        assert_int_equal(er_runner_start(&fx->run, false), -EINVAL);
        er_runner_stop(&fx->run);
        assert_int_equal(fx->ndone, 0);
}

/* clang-format breaks a braced initializer in a macro */
/* clang-format off */
#define KIND(f, kind, setup) {#f " (" kind ")", f, setup, teardown, NULL}
/* clang-format on */
#define BOTH(f) KIND(f, "cgroup2", setup_cgroup), KIND(f, "reaper", setup_session)

int main(void)
{
        const struct CMUnitTest tests[] = {
            BOTH(test_present),         BOTH(test_appears_later), BOTH(test_not_polled),
            BOTH(test_stale),           BOTH(test_garbage),       BOTH(test_first_line),       BOTH(test_rename),
            BOTH(test_dirs_at_once),    BOTH(test_dirs_stepwise), BOTH(test_daemonize),
            BOTH(test_once_and_cancel), BOTH(test_bad_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
