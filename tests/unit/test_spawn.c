/* test_spawn: er_spawn and er_spawn_lookup against real processes.
 *
 * The child's view comes from tests/helpers/procinfo, whose path is in
 * ENVRUN_PROCINFO (set by CMake).  Mechanisms are proved from the child's
 * side (SigBlk/SigIgn, fds, sid, cwd, pdeathsig from /proc and prctl), with
 * the parent set up to make them fail if spawn did not do its job. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc/spawn.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define ID_P_PIDFD ((idtype_t)3)

#define CHILD_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

static char procinfo[PATH_MAX];
static char tmpdir[] = "/tmp/envrun-spawn-XXXXXX";

/* ---- helpers --------------------------------------------------------- */

/* What the kernel (or valgrind, which emulates neither) offers. */
static bool have_pidfd_open(void)
{
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0U);
        if (fd >= 0) {
                close(fd);
                return true;
        }
        return errno != ENOSYS;
}

static bool have_clone3(void)
{
        /* size 0 is always EINVAL where clone3 exists: nothing is created. */
        return syscall(SYS_clone3, NULL, (size_t)0) < 0 && errno != ENOSYS;
}

static bool have_pidfd(void)
{
        return have_clone3() || have_pidfd_open();
}

static struct er_spawn_opts base_opts(const char *file, char *const *argv, char *const *envp)
{
        struct er_spawn_opts o;
        memset(&o, 0, sizeof(o));
        o.file = file;
        o.argv = argv;
        o.envp = envp;
        o.cwd = NULL;
        o.stdin_fd = -1;
        o.stdout_fd = -1;
        o.stderr_fd = -1;
        o.pgrp = ER_SPAWN_SETSID;
        o.uid = -1;
        o.gid = -1;
        o.cgroup_fd = -1;
        o.pdeathsig = 0;
        o.no_pidfd = false;
        return o;
}

/* snprintf that fails the test rather than truncate. */
static void xsnprintf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void xsnprintf(char *buf, size_t len, const char *fmt, ...)
{
        va_list ap;
        int n;
        va_start(ap, fmt);
        n = vsnprintf(buf, len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0 && (size_t)n < len);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
        xsnprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *content, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(close(fd), 0);
}

static void make_dir(const char *path)
{
        assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

/* Reads fd to EOF into buf (NUL-terminated) and closes it. */
static void read_all(int fd, char *buf, size_t len)
{
        size_t got = 0;
        for (;;) {
                ssize_t n = read(fd, buf + got, len - 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                assert_true(n >= 0);
                if (n == 0)
                        break;
                got += (size_t)n;
                assert_true(got < len - 1);
        }
        buf[got] = '\0';
        close(fd);
}

/* Waits for the child's exit, through its pidfd when it has one; returns
 * the exit status (a death by signal fails). */
static int wait_exit(struct er_child *ch)
{
        siginfo_t si;
        int r;
        memset(&si, 0, sizeof(si));
        do {
                if (ch->pidfd >= 0)
                        r = waitid(ID_P_PIDFD, (id_t)ch->pidfd, &si, WEXITED);
                else
                        r = waitid(P_PID, (id_t)ch->pid, &si, WEXITED);
        } while (r < 0 && errno == EINTR);
        assert_int_equal(r, 0);
        assert_int_equal(si.si_pid, ch->pid);
        if (ch->pidfd >= 0) {
                close(ch->pidfd);
                ch->pidfd = -1;
        }
        assert_int_equal(si.si_code, CLD_EXITED);
        return si.si_status;
}

static void assert_no_children(void)
{
        errno = 0;
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

static int count_fds(void)
{
        int n = 0;
        for (int fd = 0; fd < 1024; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                        n++;
        return n;
}

static bool wait_dead(pid_t pid, int *status, int timeout_ms)
{
        struct timespec start, now, tick = {0, 10 * 1000 * 1000};
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                pid_t r = waitpid(pid, status, WNOHANG);
                if (r == pid)
                        return true;
                assert_true(r == 0 || (r < 0 && errno == EINTR));
                clock_gettime(CLOCK_MONOTONIC, &now);
                if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
                    timeout_ms)
                        return false;
                nanosleep(&tick, NULL); /* a poll interval, not synchronisation */
        }
}

/* ---- procinfo output ------------------------------------------------- */

#define MAX_ARGS 8

struct info {
        long pid, ppid, pgid, sid, uid, gid, pdeathsig, envc;
        char groups[256];
        unsigned long long sigblk, sigign;
        int have_blk, have_ign;
        char fds[256];
        char cwd[PATH_MAX];
        char args[MAX_ARGS][256];
        int nargs;
        char env[256];
        bool has_env;
};

static void copy_val(char *dst, size_t len, const char *v)
{
        assert_true(strlen(v) < len);
        strcpy(dst, v);
}

static void parse_info(char *out, struct info *in)
{
        memset(in, 0, sizeof(*in));
        in->pid = in->ppid = in->pgid = in->sid = in->uid = in->gid = -2;
        in->pdeathsig = in->envc = -2;
        for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *sp = strchr(line, ' ');
                const char *v = sp ? sp + 1 : "";
                if (sp)
                        *sp = '\0';
                if (!strcmp(line, "pid"))
                        in->pid = atol(v);
                else if (!strcmp(line, "ppid"))
                        in->ppid = atol(v);
                else if (!strcmp(line, "pgid"))
                        in->pgid = atol(v);
                else if (!strcmp(line, "sid"))
                        in->sid = atol(v);
                else if (!strcmp(line, "uid"))
                        in->uid = atol(v);
                else if (!strcmp(line, "gid"))
                        in->gid = atol(v);
                else if (!strcmp(line, "groups"))
                        copy_val(in->groups, sizeof(in->groups), v);
                else if (!strcmp(line, "SigBlk"))
                        in->sigblk = strtoull(v, NULL, 16), in->have_blk = 1;
                else if (!strcmp(line, "SigIgn"))
                        in->sigign = strtoull(v, NULL, 16), in->have_ign = 1;
                else if (!strcmp(line, "fds"))
                        copy_val(in->fds, sizeof(in->fds), v);
                else if (!strcmp(line, "cwd"))
                        copy_val(in->cwd, sizeof(in->cwd), v);
                else if (!strcmp(line, "pdeathsig"))
                        in->pdeathsig = atol(v);
                else if (!strcmp(line, "envc"))
                        in->envc = atol(v);
                else if (!strcmp(line, "arg")) {
                        assert_true(in->nargs < MAX_ARGS);
                        copy_val(in->args[in->nargs++], sizeof(in->args[0]), v);
                } else if (!strcmp(line, "env")) {
                        copy_val(in->env, sizeof(in->env), v);
                        in->has_env = true;
                } else {
                        fail_msg("procinfo: unexpected line '%s'", line);
                }
        }
        assert_true(in->have_blk && in->have_ign);
}

/* Spawns with stdout to a pipe and collects everything the child prints.
 * Returns er_spawn's result; the child is left to the caller to wait. */
static int spawn_capture(struct er_spawn_opts *o, struct er_child *ch, struct er_err *err,
                         char *out, size_t len)
{
        int p[2], r;
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        o->stdout_fd = p[1];
        r = er_spawn(o, ch, err);
        close(p[1]);
        o->stdout_fd = -1;
        if (r < 0) {
                close(p[0]);
                out[0] = '\0';
                return r;
        }
        read_all(p[0], out, len);
        return r;
}

/* Runs procinfo with opts and parses its report; asserts a clean exit. */
static void run_procinfo(struct er_spawn_opts *o, struct er_child *ch, struct info *in)
{
        static char out[16384];
        struct er_err err = {0};
        int r = spawn_capture(o, ch, &err, out, sizeof(out));
        if (r < 0)
                fail_msg("er_spawn: %d %s", r, err.msg);
        assert_int_equal(wait_exit(ch), 0);
        parse_info(out, in);
        assert_int_equal(in->pid, ch->pid);
}

/* ---- er_spawn_lookup ------------------------------------------------- */

static void test_lookup(void **state)
{
        char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX], d[PATH_MAX], f[PATH_MAX], env[PATH_MAX + 8];
        char *envp[] = {env, NULL};
        char *p;
        (void)state;

        tmp_path(a, sizeof(a), "lk-a"); /* tool, not executable */
        tmp_path(b, sizeof(b), "lk-b"); /* tool, executable */
        tmp_path(c, sizeof(c), "lk-c"); /* empty */
        tmp_path(d, sizeof(d), "lk-d"); /* tool is a directory */
        make_dir(a), make_dir(b), make_dir(c), make_dir(d);
        xsnprintf(f, sizeof(f), "%s/tool", a), write_file(f, "#!/bin/sh\n", 0644);
        xsnprintf(f, sizeof(f), "%s/tool", b), write_file(f, "#!/bin/sh\n", 0755);
        xsnprintf(f, sizeof(f), "%s/tool", d), make_dir(f);

        xsnprintf(env, sizeof(env), "PATH=%s:%s", c, a);
        errno = 0;
        assert_null(er_spawn_lookup("tool", envp, NULL));
        assert_int_equal(errno, EACCES); /* found, not executable: remembered */

        xsnprintf(env, sizeof(env), "PATH=%s", c);
        errno = 0;
        assert_null(er_spawn_lookup("tool", envp, NULL));
        assert_int_equal(errno, ENOENT);

        xsnprintf(env, sizeof(env), "PATH=%s:%s:/nonexistent:%s", a, d, b);
        p = er_spawn_lookup("tool", envp, NULL);
        xsnprintf(f, sizeof(f), "%s/tool", b);
        assert_non_null(p);
        assert_string_equal(p, f); /* past EACCES and a directory */
        free(p);

        /* Empty elements are the (child's) current directory. */
        xsnprintf(env, sizeof(env), "PATH=/nonexistent::%s", a);
        p = er_spawn_lookup("tool", envp, b);
        assert_non_null(p);
        assert_int_equal(access(p, X_OK), 0);
        assert_int_equal(strncmp(p, b, strlen(b)), 0);
        free(p);
        p = er_spawn_lookup("tool", (char *[]){"PATH=", NULL}, b);
        assert_non_null(p);
        assert_int_equal(strncmp(p, b, strlen(b)), 0);
        free(p);

        /* No PATH in envp: the default, never envrun's own PATH. */
        assert_int_equal(setenv("PATH", b, 1), 0);
        errno = 0;
        assert_null(er_spawn_lookup("tool", (char *[]){"HOME=/", NULL}, NULL));
        assert_int_equal(errno, ENOENT);
        p = er_spawn_lookup("sh", NULL, NULL);
        assert_non_null(p);
        assert_true(!strcmp(p, "/usr/local/bin/sh") || !strcmp(p, "/usr/bin/sh") ||
                    !strcmp(p, "/bin/sh"));
        free(p);

        /* With a '/': relative to cwd, no PATH search. */
        p = er_spawn_lookup("./tool", envp, b);
        assert_non_null(p);
        assert_int_equal(p[0], '/');
        assert_int_equal(access(p, X_OK), 0);
        free(p);
        errno = 0;
        assert_null(er_spawn_lookup("./tool", envp, a));
        assert_int_equal(errno, EACCES);
        errno = 0;
        assert_null(er_spawn_lookup("./nope", envp, b));
        assert_int_equal(errno, ENOENT);
        errno = 0;
        assert_null(er_spawn_lookup("", envp, b));
        assert_int_equal(errno, ENOENT);
        xsnprintf(f, sizeof(f), "%s/tool", b);
        p = er_spawn_lookup(f, (char *[]){NULL}, "/nonexistent");
        assert_non_null(p);
        assert_string_equal(p, f);
        free(p);
}

/* ---- er_spawn -------------------------------------------------------- */

/* The child starts clean although the parent blocks everything, ignores
 * signals and holds an fd without CLOEXEC. */
static void test_exec_setsid(void **state)
{
        char dir[PATH_MAX], real[PATH_MAX];
        char *argv[] = {"procinfo-argv0", "a b", "", "--x=1", NULL};
        char *envp[] = {"ENVRUN_T=v a=l ue", NULL};
        struct sigaction ign, old_pipe, old_usr1;
        sigset_t all, old_mask;
        struct er_spawn_opts o = base_opts(procinfo, argv, envp);
        struct er_child ch = {-7, -7, true, -7, -7, -7, -7};
        struct info in;
        int leak, fds_before;
        (void)state;

        tmp_path(dir, sizeof(dir), "cwd-setsid");
        make_dir(dir);
        assert_non_null(realpath(dir, real));

        sigfillset(&all);
        assert_int_equal(sigprocmask(SIG_SETMASK, &all, &old_mask), 0);
        memset(&ign, 0, sizeof(ign));
        ign.sa_handler = SIG_IGN;
        assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
        assert_int_equal(sigaction(SIGUSR1, &ign, &old_usr1), 0);
        leak = open("/dev/null", O_RDONLY); /* no CLOEXEC, on purpose */
        assert_true(leak > 2);
        assert_int_equal(fcntl(leak, F_GETFD) & FD_CLOEXEC, 0);
        fds_before = count_fds();

        o.cwd = dir;
        o.pgrp = ER_SPAWN_SETSID;
        o.pdeathsig = SIGKILL;
        run_procinfo(&o, &ch, &in);

        close(leak);
        sigaction(SIGPIPE, &old_pipe, NULL);
        sigaction(SIGUSR1, &old_usr1, NULL);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);

        assert_int_equal(in.sigblk, 0);
        assert_int_equal(in.sigign, 0);
        assert_string_equal(in.fds, "0,1,2");
        assert_int_equal(in.sid, ch.pid);
        assert_int_equal(in.pgid, ch.pid);
        assert_int_equal(in.ppid, getpid());
        assert_string_equal(in.cwd, real);
        assert_int_equal(in.pdeathsig, SIGKILL);
        assert_int_equal(in.nargs, 4);
        for (int i = 0; i < 4; i++)
                assert_string_equal(in.args[i], argv[i]);
        assert_int_equal(in.envc, 1);
        assert_true(in.has_env);
        assert_string_equal(in.env, "v a=l ue");
        assert_false(ch.in_cgroup);
        /* ret was filled; the pidfd (reaped and closed by wait_exit) was
         * the only fd left behind. */
        assert_int_equal(count_fds(), fds_before - 1);
        assert_no_children();
}

static void test_exec_pidfd(void **state)
{
        char *argv[] = {"procinfo", NULL};
        struct er_spawn_opts o = base_opts(procinfo, argv, NULL);
        struct er_child ch;
        struct er_err err = {0};
        char out[8192];
        siginfo_t si;
        int cloexec = -1, r;
        (void)state;

        assert_int_equal(spawn_capture(&o, &ch, &err, out, sizeof(out)), 0);
        /* Reap first, assert after: a failure must not leave a child for
         * the next test's assert_no_children. */
        memset(&si, 0, sizeof(si));
        if (ch.pidfd >= 0) {
                cloexec = fcntl(ch.pidfd, F_GETFD) & FD_CLOEXEC;
                r = waitid(ID_P_PIDFD, (id_t)ch.pidfd, &si, WEXITED);
                close(ch.pidfd);
        } else {
                r = waitid(P_PID, (id_t)ch.pid, &si, WEXITED);
        }
        assert_int_equal(r, 0);
        assert_int_equal(si.si_pid, ch.pid);
        assert_int_equal(si.si_code, CLD_EXITED);
        assert_int_equal(si.si_status, 0);
        if (have_pidfd()) {
                assert_true(ch.pidfd > 2);
                assert_int_equal(cloexec, FD_CLOEXEC);
        } else {
                assert_int_equal(ch.pidfd, -1); /* valgrind, old kernels */
        }
        assert_no_children();
}

static void test_exec_inherit(void **state)
{
        char cwd[PATH_MAX];
        char *argv[] = {"procinfo", NULL};
        char *envp[] = {"A=1", "B=2", NULL};
        struct er_spawn_opts o = base_opts(procinfo, argv, envp);
        struct er_child ch;
        struct info in;
        sigset_t mask, old_mask, after;
        (void)state;

        assert_non_null(getcwd(cwd, sizeof(cwd)));
        o.pgrp = ER_SPAWN_INHERIT;
        /* Whatever mask the caller had, it has it again afterwards. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR2);
        assert_int_equal(sigprocmask(SIG_SETMASK, &mask, &old_mask), 0);
        run_procinfo(&o, &ch, &in);
        assert_int_equal(sigprocmask(SIG_SETMASK, &old_mask, &after), 0);
        assert_true(sigismember(&after, SIGUSR2));
        assert_false(sigismember(&after, SIGUSR1));
        assert_false(sigismember(&after, SIGTERM));
        assert_int_equal(in.pgid, getpgrp());
        assert_int_equal(in.sid, getsid(0));
        assert_int_equal(in.pdeathsig, 0);
        assert_string_equal(in.cwd, cwd);
        assert_int_equal(in.envc, 2);
        assert_false(in.has_env);
        assert_int_equal(in.nargs, 1);
        assert_string_equal(in.args[0], "procinfo");
        assert_int_equal(in.uid, getuid());
}

/* The exec-error pipe tells "not found" from a program that exits 127. */
static void test_not_found_vs_exit127(void **state)
{
        char *ghost_argv[] = {"envrun-ghost-cmd", NULL};
        char *sh_argv[] = {"sh", "-c", "exit 127", NULL};
        char *envp[] = {CHILD_PATH, NULL};
        struct er_spawn_opts o = base_opts("envrun-ghost-cmd", ghost_argv, envp);
        struct er_child ch = {-7, -7, true, -7, -7, -7, -7};
        struct er_err err = {0};
        (void)state;

        assert_int_equal(er_spawn(&o, &ch, &err), -ENOENT);
        assert_string_equal(err.msg, "'envrun-ghost-cmd': command not found");
        assert_int_equal(err.code, -ENOENT);
        assert_int_equal(ch.pid, -7); /* ret untouched on failure */
        assert_int_equal(ch.pidfd, -7);
        assert_no_children();

        o = base_opts("./envrun-ghost-cmd", ghost_argv, envp);
        o.cwd = tmpdir;
        assert_int_equal(er_spawn(&o, &ch, &err), -ENOENT);
        assert_string_equal(err.msg, "'./envrun-ghost-cmd': No such file or directory");

        o = base_opts("sh", sh_argv, envp);
        memset(&err, 0, sizeof(err));
        assert_int_equal(er_spawn(&o, &ch, &err), 0);
        assert_int_equal(wait_exit(&ch), 127);
        assert_no_children();
}

static void test_bad_cwd(void **state)
{
        char *argv[] = {"procinfo", NULL};
        struct er_spawn_opts o = base_opts(procinfo, argv, NULL);
        struct er_child ch = {-7, -7, true, -7, -7, -7, -7};
        struct er_err err = {0};
        int fds_before = count_fds();
        (void)state;

        o.cwd = "/nonexistent-envrun/db";
        assert_int_equal(er_spawn(&o, &ch, &err), -ENOENT);
        assert_string_equal(err.msg, "cwd '/nonexistent-envrun/db': No such file or directory");
        assert_int_equal(ch.pid, -7);
        assert_no_children(); /* the child that failed was reaped */
        assert_int_equal(count_fds(), fds_before);
}

static void test_not_executable(void **state)
{
        char f[PATH_MAX], dir[PATH_MAX], env[PATH_MAX + 8];
        char *argv[] = {"x", NULL};
        char *envp[] = {env, NULL};
        struct er_spawn_opts o;
        struct er_child ch;
        struct er_err err = {0};
        (void)state;

        tmp_path(dir, sizeof(dir), "noexec");
        make_dir(dir);
        xsnprintf(f, sizeof(f), "%s/x", dir);
        write_file(f, "#!/bin/sh\nexit 0\n", 0644);
        xsnprintf(env, sizeof(env), "PATH=%s", dir);

        o = base_opts("./x", argv, envp);
        o.cwd = dir;
        assert_int_equal(er_spawn(&o, &ch, &err), -EACCES);
        assert_string_equal(err.msg, "'./x': Permission denied");

        o = base_opts("x", argv, envp);
        assert_int_equal(er_spawn(&o, &ch, &err), -EACCES);
        assert_string_equal(err.msg, "'x': Permission denied");
        assert_no_children();
}

/* A relative cwd is relative to ours, and "./x" to the child's cwd: the
 * looked-up path must survive the chdir before exec. */
static void test_relative_cwd(void **state)
{
        char dir[PATH_MAX], f[PATH_MAX], here[PATH_MAX];
        char *argv[] = {"x", NULL};
        struct er_spawn_opts o;
        struct er_child ch;
        struct er_err err = {0};
        int r, status = -1;
        (void)state;

        tmp_path(dir, sizeof(dir), "rel");
        make_dir(dir);
        xsnprintf(f, sizeof(f), "%s/x", dir);
        write_file(f, "#!/bin/sh\nexit 5\n", 0755);
        assert_non_null(getcwd(here, sizeof(here)));
        assert_int_equal(chdir(tmpdir), 0);
        o = base_opts("./x", argv, NULL);
        o.cwd = "rel";
        r = er_spawn(&o, &ch, &err);
        if (r == 0)
                status = wait_exit(&ch);
        assert_int_equal(chdir(here), 0);
        if (r < 0)
                fail_msg("er_spawn: %s", err.msg);
        assert_int_equal(status, 5);
        assert_no_children();
}

/* Executable bits but no format the kernel knows: the exec step fails in
 * the child and the pipe says so. */
static void test_exec_format_error(void **state)
{
        char f[PATH_MAX], want[PATH_MAX + 64];
        char *argv[] = {"junk", NULL};
        struct er_spawn_opts o;
        struct er_child ch;
        struct er_err err = {0};
        (void)state;

        tmp_path(f, sizeof(f), "junk");
        write_file(f, "\x01\x02 not a program\n", 0755);
        o = base_opts(f, argv, NULL);
        assert_int_equal(er_spawn(&o, &ch, &err), -ENOEXEC);
        xsnprintf(want, sizeof(want), "exec '%s': Exec format error", f);
        assert_string_equal(err.msg, want);
        assert_no_children();
}

static void test_path_from_envp(void **state)
{
        char dir[PATH_MAX], f[PATH_MAX], env[PATH_MAX + 8];
        char *argv[] = {"envrun-only-here", NULL};
        char *envp[] = {env, NULL};
        struct er_spawn_opts o;
        struct er_child ch;
        struct er_err err = {0};
        const char *saved = getenv("PATH");
        char *saved_copy = saved ? strdup(saved) : NULL;
        (void)state;

        tmp_path(dir, sizeof(dir), "bin-child");
        make_dir(dir);
        xsnprintf(f, sizeof(f), "%s/envrun-only-here", dir);
        write_file(f, "#!/bin/sh\nexit 3\n", 0755);

        /* Only the child's PATH has it. */
        xsnprintf(env, sizeof(env), "PATH=/usr/bin:/bin:%s", dir);
        o = base_opts("envrun-only-here", argv, envp);
        assert_int_equal(er_spawn(&o, &ch, &err), 0);
        assert_int_equal(wait_exit(&ch), 3);

        /* Only envrun's PATH has it: not found. */
        assert_int_equal(setenv("PATH", dir, 1), 0);
        xsnprintf(env, sizeof(env), "PATH=/usr/bin:/bin");
        o = base_opts("envrun-only-here", argv, envp);
        int r = er_spawn(&o, &ch, &err);
        if (saved_copy)
                setenv("PATH", saved_copy, 1);
        free(saved_copy);
        assert_int_equal(r, -ENOENT);
        assert_string_equal(err.msg, "'envrun-only-here': command not found");
        assert_no_children();
}

static void test_uid_switch(void **state)
{
        char *argv[] = {"procinfo", NULL};
        struct er_spawn_opts o = base_opts(procinfo, argv, NULL);
        struct er_child ch = {-7, -7, true, -7, -7, -7, -7};
        struct er_err err = {0};
        struct info in;
        (void)state;

        o.uid = 65534;
        o.cwd = "/";
        o.pdeathsig = SIGTERM; /* set after the switch, which would clear it */
        if (geteuid() != 0) {
                /* Unprivileged: switching to another user must fail, in
                 * words, and leave no child. */
                char want[64];
                int r;
                o.uid = geteuid() == 65534 ? 65533 : 65534;
                xsnprintf(want, sizeof(want), "%ld: Operation not permitted", o.uid);
                r = er_spawn(&o, &ch, &err);
                assert_int_equal(r, -EPERM);
                assert_int_equal(ch.pid, -7);
                assert_non_null(strstr(err.msg, want));
                assert_int_equal(strncmp(err.msg, "set", 3), 0);
                assert_no_children();
                return;
        }

        struct passwd *pw = getpwuid(65534);
        long want_gid = pw ? (long)pw->pw_gid : -1;
        run_procinfo(&o, &ch, &in);
        assert_int_equal(in.uid, 65534);
        if (want_gid >= 0)
                assert_int_equal(in.gid, want_gid); /* the user's primary group */
        assert_int_equal(in.pdeathsig, SIGTERM);
        char groups[sizeof(in.groups) + 2];
        xsnprintf(groups, sizeof(groups), ",%s,", in.groups);
        assert_null(strstr(groups, ",0,")); /* root's group is gone */

        /* A uid with no passwd entry: exactly the given gid, no other group. */
        long uid = 4242;
        while (getpwuid((uid_t)uid))
                uid++;
        o.uid = uid;
        o.gid = uid + 1;
        run_procinfo(&o, &ch, &in);
        assert_int_equal(in.uid, uid);
        assert_int_equal(in.gid, uid + 1);
        char want[32];
        xsnprintf(want, sizeof(want), "%ld", uid + 1);
        assert_string_equal(in.groups, want);
}

static void test_no_pidfd(void **state)
{
        char *argv[] = {"procinfo", NULL};
        struct er_spawn_opts o = base_opts(procinfo, argv, NULL);
        struct er_child ch = {-7, -7, true, -7, -7, -7, -7};
        struct info in;
        int st = 0, fds_before = count_fds();
        static char out[16384];
        struct er_err err = {0};
        (void)state;

        o.no_pidfd = true;
        assert_int_equal(spawn_capture(&o, &ch, &err, out, sizeof(out)), 0);
        assert_int_equal(ch.pidfd, -1);
        assert_false(ch.in_cgroup);
        assert_int_equal(count_fds(), fds_before);
        assert_int_equal(waitpid(ch.pid, &st, 0), ch.pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        parse_info(out, &in);
        assert_int_equal(in.pid, ch.pid);
        assert_int_equal(in.sigblk, 0);
        assert_string_equal(in.fds, "0,1,2");
        assert_no_children();
}

/* A middle process spawns `sleep 30` and exits; we are the subreaper that
 * inherits the sleep.  Returns its pid. */
static pid_t orphan_sleep(int pdeathsig)
{
        int p[2], st = 0;
        pid_t middle, sleeper = 0;
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        middle = fork();
        assert_true(middle >= 0);
        if (middle == 0) {
                char *argv[] = {"sleep", "30", NULL};
                char *envp[] = {CHILD_PATH, NULL};
                struct er_spawn_opts o = base_opts("sleep", argv, envp);
                struct er_child ch;
                struct er_err err;
                pid_t v;
                o.pdeathsig = pdeathsig;
                v = er_spawn(&o, &ch, &err) == 0 ? ch.pid : -1;
                if (write(p[1], &v, sizeof(v)) != (ssize_t)sizeof(v))
                        _exit(3);
                _exit(v > 0 ? 0 : 2);
        }
        close(p[1]);
        assert_int_equal(read(p[0], &sleeper, sizeof(sleeper)), (ssize_t)sizeof(sleeper));
        close(p[0]);
        assert_int_equal(waitpid(middle, &st, 0), middle);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        assert_true(sleeper > 0);
        return sleeper;
}

static long ppid_of(pid_t pid)
{
        char path[64], buf[512], *rp;
        long ppid = -1;
        FILE *f;
        xsnprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')))
                sscanf(rp + 2, "%*c %ld", &ppid);
        fclose(f);
        return ppid;
}

static void test_pdeathsig_grandchild(void **state)
{
        pid_t sleeper;
        int st = 0;
        bool dead;
        (void)state;

        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL), 0);

        /* Negative control: without pdeathsig the orphan lives on, with us. */
        sleeper = orphan_sleep(0);
        assert_int_equal(ppid_of(sleeper), getpid());
        assert_int_equal(waitpid(sleeper, &st, WNOHANG), 0);
        kill(sleeper, SIGKILL);
        assert_int_equal(waitpid(sleeper, &st, 0), sleeper);

        sleeper = orphan_sleep(SIGKILL);
        dead = wait_dead(sleeper, &st, 5000);
        if (!dead) {
                kill(sleeper, SIGKILL);
                waitpid(sleeper, NULL, 0);
        }
        prctl(PR_SET_CHILD_SUBREAPER, 0UL, 0UL, 0UL, 0UL);
        assert_true(dead);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
        assert_no_children();
}

/* dup2 order: stdout == stderr, and stdout/stderr given as each other's fd. */
static void test_stdio_aliasing(void **state)
{
        char *argv[] = {"sh", "-c", "echo out; echo err >&2", NULL};
        char *in_argv[] = {"sh", "-c", "if read x; then echo \"got $x\"; else echo eof; fi", NULL};
        char *envp[] = {CHILD_PATH, NULL};
        struct er_spawn_opts o = base_opts("sh", argv, envp);
        struct er_child ch;
        struct er_err err = {0};
        char out[256], out2[256];
        int a[2], b[2], s1, s2, r;
        (void)state;

        /* Same pipe for both. */
        assert_int_equal(pipe2(a, O_CLOEXEC), 0);
        o.stdout_fd = o.stderr_fd = a[1];
        assert_int_equal(er_spawn(&o, &ch, &err), 0);
        close(a[1]);
        read_all(a[0], out, sizeof(out));
        assert_int_equal(wait_exit(&ch), 0);
        assert_string_equal(out, "out\nerr\n");

        /* Our fd 1 is pipe a, fd 2 pipe b; the child gets them swapped. */
        assert_int_equal(pipe2(a, O_CLOEXEC), 0);
        assert_int_equal(pipe2(b, O_CLOEXEC), 0);
        fflush(stdout);
        fflush(stderr);
        s1 = fcntl(1, F_DUPFD_CLOEXEC, 3);
        s2 = fcntl(2, F_DUPFD_CLOEXEC, 3);
        assert_true(s1 >= 0 && s2 >= 0);
        dup2(a[1], 1);
        dup2(b[1], 2);
        o = base_opts("sh", argv, envp);
        o.stdout_fd = 2;
        o.stderr_fd = 1;
        r = er_spawn(&o, &ch, &err);
        dup2(s1, 1);
        dup2(s2, 2);
        close(s1), close(s2), close(a[1]), close(b[1]);
        assert_int_equal(r, 0);
        read_all(a[0], out, sizeof(out));
        read_all(b[0], out2, sizeof(out2));
        assert_int_equal(wait_exit(&ch), 0);
        assert_string_equal(out, "err\n");  /* stderr went to our fd 1 */
        assert_string_equal(out2, "out\n"); /* stdout to our fd 2 */

        /* A source that already is its target, with CLOEXEC: it must lose
         * the flag, since dup2 onto itself does not clear it. */
        assert_int_equal(pipe2(a, O_CLOEXEC), 0);
        fflush(stdout);
        s1 = fcntl(1, F_DUPFD_CLOEXEC, 3);
        assert_true(s1 >= 0);
        assert_int_equal(dup3(a[1], 1, O_CLOEXEC), 1);
        o = base_opts("sh", argv, envp);
        o.stdout_fd = 1;
        o.stderr_fd = a[1];
        r = er_spawn(&o, &ch, &err);
        dup2(s1, 1);
        close(s1), close(a[1]);
        assert_int_equal(r, 0);
        read_all(a[0], out, sizeof(out));
        assert_int_equal(wait_exit(&ch), 0);
        assert_string_equal(out, "out\nerr\n");

        /* stdin: /dev/null by default, else the given fd. */
        o = base_opts("sh", in_argv, envp);
        assert_int_equal(spawn_capture(&o, &ch, &err, out, sizeof(out)), 0);
        assert_int_equal(wait_exit(&ch), 0);
        assert_string_equal(out, "eof\n");
        assert_int_equal(pipe2(b, O_CLOEXEC), 0);
        assert_int_equal(write(b[1], "hello\n", 6), 6);
        close(b[1]);
        o.stdin_fd = b[0];
        assert_int_equal(spawn_capture(&o, &ch, &err, out, sizeof(out)), 0);
        close(b[0]);
        assert_int_equal(wait_exit(&ch), 0);
        assert_string_equal(out, "got hello\n");
        assert_no_children();
}

/* A cgroup fd the kernel refuses (here: not a cgroup at all) is dropped and
 * the child is still created, outside it. */
/* A directory that is no cgroup (no cgroup.procs): clone3 refuses it, and
 * the forked child, which cannot move itself in either, fails the spawn
 * rather than run outside the cgroup it was asked for. */
static void test_cgroup_refused(void **state)
{
        char *argv[] = {"procinfo", NULL};
        struct er_spawn_opts o = base_opts(procinfo, argv, NULL);
        struct er_child ch = {-7, -7, true, -7, -7, -7, -7};
        struct er_err err = {0};
        char out[256];
        int r;
        (void)state;

        o.cgroup_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(o.cgroup_fd >= 0);
        r = spawn_capture(&o, &ch, &err, out, sizeof(out));
        close(o.cgroup_fd);
        assert_int_equal(r, -ENOENT);
        assert_non_null(strstr(err.msg, "joining its cgroup"));
        assert_no_children();
}

static char *cgroup2_mount(void)
{
        char line[4096], *found = NULL;
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return NULL;
        while (!found && fgets(line, sizeof(line), f)) {
                char mnt[PATH_MAX];
                char *sep = strstr(line, " - ");
                if (sep && !strncmp(sep, " - cgroup2 ", 11) &&
                    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1)
                        found = strdup(mnt);
        }
        fclose(f);
        return found;
}

static bool file_has_pid(const char *path, pid_t pid)
{
        char line[64];
        bool has = false;
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        while (!has && fgets(line, sizeof(line), f))
                has = atol(line) == (long)pid;
        fclose(f);
        return has;
}

static void test_cgroup_into(void **state)
{
        char *argv[] = {"sleep", "30", NULL};
        char *envp[] = {CHILD_PATH, NULL};
        struct er_spawn_opts o = base_opts("sleep", argv, envp);
        struct er_child ch;
        struct er_err err = {0};
        char dir[PATH_MAX], procs[PATH_MAX + 16];
        char *mnt = cgroup2_mount();
        int st = 0, r;
        bool in_procs;
        (void)state;

        /* The suite runs as root (tests/run): a missing cgroup2 is a failure
         * to see, not a check to skip silently. */
        if (!mnt)
                fail_msg("no cgroup2 mount: this test needs one (run as root, as tests/run does)");
        xsnprintf(dir, sizeof(dir), "%s/envrun-test-%d", mnt, (int)getpid());
        free(mnt);
        if (mkdir(dir, 0755) < 0)
                fail_msg("cannot create '%s': %s (this test needs root)", dir, strerror(errno));
        o.cgroup_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(o.cgroup_fd >= 0);
        o.pdeathsig = SIGKILL;
        r = er_spawn(&o, &ch, &err);
        close(o.cgroup_fd);
        if (r < 0) {
                rmdir(dir);
                fail_msg("er_spawn: %s", err.msg);
        }
        xsnprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        in_procs = file_has_pid(procs, ch.pid);
        kill(ch.pid, SIGKILL);
        assert_int_equal(waitpid(ch.pid, &st, 0), ch.pid);
        if (ch.pidfd >= 0)
                close(ch.pidfd);
        rmdir(dir);
        /* Without clone3 (valgrind) the caller has to move the child. */
        assert_int_equal(ch.in_cgroup, have_clone3());
        assert_int_equal(in_procs, ch.in_cgroup);
        assert_no_children();
}

/* ---- main ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static int group_setup(void **state)
{
        (void)state;
        if (!mkdtemp(tmpdir))
                return -1;
        return chmod(tmpdir, 0755);
}

static int group_teardown(void **state)
{
        (void)state;
        return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
        const char *p = getenv("ENVRUN_PROCINFO");
        if (!p || !*p) {
                fprintf(stderr, "test_spawn: ENVRUN_PROCINFO is not set: it must name the "
                                "tests/helpers/procinfo binary (ctest sets it)\n");
                return 1;
        }
        if (!realpath(p, procinfo) || access(procinfo, X_OK) < 0) {
                fprintf(stderr, "test_spawn: ENVRUN_PROCINFO='%s': %s\n", p, strerror(errno));
                return 1;
        }

        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_lookup),
            cmocka_unit_test(test_exec_setsid),
            cmocka_unit_test(test_exec_pidfd),
            cmocka_unit_test(test_exec_inherit),
            cmocka_unit_test(test_not_found_vs_exit127),
            cmocka_unit_test(test_bad_cwd),
            cmocka_unit_test(test_not_executable),
            cmocka_unit_test(test_relative_cwd),
            cmocka_unit_test(test_exec_format_error),
            cmocka_unit_test(test_path_from_envp),
            cmocka_unit_test(test_uid_switch),
            cmocka_unit_test(test_no_pidfd),
            cmocka_unit_test(test_pdeathsig_grandchild),
            cmocka_unit_test(test_stdio_aliasing),
            cmocka_unit_test(test_cgroup_refused),
            cmocka_unit_test(test_cgroup_into),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
