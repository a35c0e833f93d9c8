/* spawn: the only code that creates processes (STYLE §5).
 *
 * The shape is git's start_command and skalibs' cspawn: everything that can
 * allocate or fail for a reason the user must read is done in the parent;
 * the child runs a straight line of async-signal-safe calls and reports the
 * first failure as {step, errno} over a CLOEXEC pipe, so EOF on that pipe
 * means the exec happened. */
#include "proc/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc/reaper.h"
#include "base/buf.h"

/* Numbers are the same on every architecture (the unified syscall table). */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* 32-bit ABIs kept 16-bit ids on the old numbers. */
#ifdef SYS_setgroups32
#define SYS_SETGROUPS SYS_setgroups32
#define SYS_SETRESGID SYS_setresgid32
#define SYS_SETRESUID SYS_setresuid32
#else
#define SYS_SETGROUPS SYS_setgroups
#define SYS_SETRESGID SYS_setresgid
#define SYS_SETRESUID SYS_setresuid
#endif

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define PWBUF_MAX (1 << 20)
#define GROUPS_MAX 65536

/* struct clone_args up to CLONE_ARGS_SIZE_VER2; our own copy because
 * <linux/sched.h> clashes with glibc's <sched.h>. */
struct clone_args_v2 {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
        uint64_t stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* What the child reports before _exit(127). */
struct child_rec {
        int step; /* enum er_spawn_step */
        int err;  /* errno */
};

/* Everything the child reads: prepared in the parent, never written after
 * the fork. */
struct child_ctx {
        const char *path;
        char *const *argv;
        char *const *envp;
        const char *cwd;
        int fd[3]; /* stdin, stdout, stderr; -1: keep the parent's */
        int err_fd;
        bool new_session;
        bool set_groups;
        const gid_t *groups;
        size_t ngroups;
        long uid, gid; /* -1: unchanged */
        int pdeathsig;
        pid_t parent;
        int max_fd; /* for the close_range fallback */
        /* The cgroup's directory: when the child was not created inside it
         * (fork path), it opens cgroup.procs there and moves itself in
         * before it can fork, so nothing it starts escapes the cgroup. */
        int cgroup_fd;
        bool in_cgroup;
        bool stdin_null; /* fd[0] is /dev/null, which the child opens */
        const int *procs_fds; /* v1 cgroups: always joined */
        size_t n_procs_fds;
        /* The reaper (opts->reaper): its ends of the command and status
         * pipes; -1 without one. */
        int cmd_fd, st_fd;
};

static char *const empty_env[] = {NULL};

/* ---- lookup ---------------------------------------------------------- */

static const char *env_get(char *const *envp, const char *name)
{
        size_t n = strlen(name);
        for (; envp && *envp; envp++)
                if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
                        return *envp + n + 1;
        return NULL;
}

/* 0, or -errno as execve would see it: a directory is EACCES. */
static int check_exec(const char *path)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EACCES;
        if (access(path, X_OK) < 0)
                return -errno;
        return 0;
}

/* dir/name (dir may be empty: name alone), made absolute against cwd when
 * relative and a cwd is given, since the child changes directory before it
 * execs.  A relative cwd is itself relative to ours. */
static char *join_path(const char *cwd, const char *dir, size_t dirlen, const char *name)
{
        char *here = NULL, *p;
        size_t need;
        bool rel = dirlen ? dir[0] != '/' : name[0] != '/';

        if (rel && cwd && cwd[0] != '/') {
                here = getcwd(NULL, 0);
                if (!here)
                        return NULL;
        }
        if (!rel)
                cwd = NULL;
        need = (here ? strlen(here) + 1 : 0) + (cwd ? strlen(cwd) + 1 : 0) + dirlen + 1 +
               strlen(name) + 1;
        if (need > PATH_MAX) {
                free(here);
                errno = ENAMETOOLONG;
                return NULL;
        }
        p = malloc(need);
        if (!p) {
                free(here);
                return NULL;
        }
        p[0] = '\0';
        if (here) {
                strcat(p, here);
                strcat(p, "/");
        }
        if (cwd) {
                strcat(p, cwd);
                strcat(p, "/");
        }
        strncat(p, dir, dirlen);
        if (dirlen)
                strcat(p, "/");
        strcat(p, name);
        free(here);
        return p;
}

char *er_spawn_lookup(const char *file, char *const *envp, const char *cwd)
{
        const char *path, *elem;
        bool eacces = false;

        if (!file || !*file) {
                errno = ENOENT;
                return NULL;
        }
        if (strchr(file, '/')) {
                char *p = join_path(cwd, "", 0, file);
                int r;
                if (!p)
                        return NULL;
                r = check_exec(p);
                if (r < 0) {
                        free(p);
                        errno = -r;
                        return NULL;
                }
                return p;
        }
        if (strlen(file) > NAME_MAX) {
                errno = ENAMETOOLONG;
                return NULL;
        }

        path = env_get(envp, "PATH");
        if (!path)
                path = DEFAULT_PATH;
        for (elem = path;; elem++) {
                const char *end = strchrnul(elem, ':');
                /* POSIX: an empty element is the current directory. */
                char *p = end == elem ? join_path(cwd, ".", 1, file)
                                      : join_path(cwd, elem, (size_t)(end - elem), file);
                int r;
                if (!p) {
                        if (errno != ENAMETOOLONG)
                                return NULL;
                        r = -ENAMETOOLONG;
                } else {
                        r = check_exec(p);
                        if (!r)
                                return p;
                        free(p);
                }
                /* Like execvp: remember EACCES, skip ENOENT, ENOTDIR, ELOOP... */
                if (r == -EACCES)
                        eacces = true;
                elem = end;
                if (!*end)
                        break;
        }
        errno = eacces ? EACCES : ENOENT;
        return NULL;
}

/* ---- the child ------------------------------------------------------- */

static _Noreturn void child_fail(const struct child_ctx *c, enum er_spawn_step step, int e)
{
        struct child_rec rec = {.step = step, .err = e};
        ssize_t n;
        do
                n = write(c->err_fd, &rec, sizeof(rec));
        while (n < 0 && errno == EINTR);
        _exit(127);
}

static int clear_cloexec(int fd)
{
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0)
                return -1;
        if ((fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
                return -1;
        return 0;
}

/* Fds 0-2.  A source below its target would be overwritten by an earlier
 * dup2 (stdout_fd == 2 with stderr_fd == 1 swaps them): move those above 2
 * first, as libuv does.  A source equal to its target only loses CLOEXEC.
 * The error pipe is kept >= 3 by the parent. */
static void child_stdio(const struct child_ctx *c)
{
        int fd[3];

        for (int i = 0; i < 3; i++) {
                fd[i] = c->fd[i];
                /* Opened here, not in envrun: two system calls less in the
                 * parent per spawn, made while the parent goes on. */
                if (i == 0 && c->stdin_null && (fd[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
                        child_fail(c, ER_SPAWN_STEP_STDIO, errno);
                if (fd[i] >= 0 && fd[i] < i) {
                        fd[i] = fcntl(fd[i], F_DUPFD_CLOEXEC, 3);
                        if (fd[i] < 0)
                                child_fail(c, ER_SPAWN_STEP_STDIO, errno);
                }
        }
        for (int i = 0; i < 3; i++) {
                if (fd[i] < 0) {
                        /* Inherited: make sure it survives exec; a closed
                         * fd stays closed. */
                        (void)clear_cloexec(i);
                } else if (fd[i] == i) {
                        if (clear_cloexec(i) < 0)
                                child_fail(c, ER_SPAWN_STEP_STDIO, errno);
                } else if (dup2(fd[i], i) < 0) {
                        child_fail(c, ER_SPAWN_STEP_STDIO, errno);
                }
        }
}

/* Nothing but 0-2 crosses exec.  CLOEXEC rather than close keeps the error
 * pipe open until the exec itself. */
static void child_cloexec_rest(const struct child_ctx *c)
{
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
                return;
        /* ENOSYS before 5.9, EINVAL for the flag before 5.11. */
        for (int fd = 3; fd < c->max_fd; fd++) {
                int fl = fcntl(fd, F_GETFD);
                if (fl >= 0 && !(fl & FD_CLOEXEC))
                        (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
}

/* After fork or clone3: async-signal-safe calls only, no malloc, no stdio.
 * Credentials use raw syscalls: glibc's wrappers broadcast to the other
 * threads it believes exist (and the raw clone3 child inherits that belief
 * and glibc's locks), while the child has exactly one thread. */
static _Noreturn void child_run(const struct child_ctx *c)
{
        struct sigaction sa;
        sigset_t none;

        /* The mask stays full until exec, so no handler runs before this. */
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        for (int sig = 1; sig < NSIG; sig++)
                (void)sigaction(sig, &sa, NULL); /* EINVAL: KILL, STOP, glibc's own */

        if (!c->in_cgroup && c->cgroup_fd >= 0) {
                int procs = openat(c->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
                if (procs < 0 || write(procs, "0", 1) != 1)
                        child_fail(c, ER_SPAWN_STEP_CGROUP, errno);
                (void)close(procs);
        }
        for (size_t i = 0; i < c->n_procs_fds; i++)
                if (write(c->procs_fds[i], "0", 1) != 1)
                        child_fail(c, ER_SPAWN_STEP_CGROUP, errno);

        if (c->new_session && setsid() < 0)
                child_fail(c, ER_SPAWN_STEP_SETSID, errno);

        if (c->set_groups && syscall(SYS_SETGROUPS, c->ngroups, c->groups) < 0)
                child_fail(c, ER_SPAWN_STEP_GROUPS, errno);
        if (c->gid >= 0 && syscall(SYS_SETRESGID, (gid_t)c->gid, (gid_t)c->gid, (gid_t)c->gid) < 0)
                child_fail(c, ER_SPAWN_STEP_SETGID, errno);
        if (c->uid >= 0 && syscall(SYS_SETRESUID, (uid_t)c->uid, (uid_t)c->uid, (uid_t)c->uid) < 0)
                child_fail(c, ER_SPAWN_STEP_SETUID, errno);

        /* After the credentials change, which clears it.  If the parent died
         * before this, the signal will never come: leave now (systemd). */
        if (c->pdeathsig) {
                if (prctl(PR_SET_PDEATHSIG, (unsigned long)c->pdeathsig, 0UL, 0UL, 0UL) < 0)
                        child_fail(c, ER_SPAWN_STEP_PDEATHSIG, errno);
                if (getppid() != c->parent)
                        _exit(1);
        }

        child_stdio(c);
        child_cloexec_rest(c);

        if (c->cwd && chdir(c->cwd) < 0)
                child_fail(c, ER_SPAWN_STEP_CHDIR, errno);

        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        execve(c->path, c->argv, c->envp);
        child_fail(c, ER_SPAWN_STEP_EXEC, errno);
}

/* ---- the reaper ------------------------------------------------------ */

/* Closes every fd from 3 up but the n in keep: close_range over the gaps
 * (a descriptor of envrun's that lived on in the reaper would keep it
 * alive in envrun's eyes: the instance lock's open file description, a
 * pipe another reaper waits on for EOF). */
static void close_span(int lo, unsigned hi, int max)
{
        if (syscall(SYS_close_range, (unsigned)lo, hi, 0U) == 0)
                return;
        /* ENOSYS before 5.9 */
        for (int fd = lo; fd <= max && (unsigned)fd <= hi; fd++)
                (void)close(fd);
}

static void close_all_but(int *keep, size_t n, int max)
{
        int lo = 3;

        for (size_t i = 1; i < n; i++) /* a handful: insertion sort */
                for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
                        int t = keep[j];
                        keep[j] = keep[j - 1];
                        keep[j - 1] = t;
                }
        for (size_t i = 0; i < n; i++) {
                if (keep[i] < lo)
                        continue; /* 0-2, or a duplicate */
                if (keep[i] > lo)
                        close_span(lo, (unsigned)keep[i] - 1, max);
                lo = keep[i] + 1;
        }
        close_span(lo, ~0U, max);
}

/* The reaper, between the fork from envrun and its own loop (reaper.h):
 * async-signal-safe, like child_run, whose failures it reports the same
 * way; then it forks the main process, which runs child_run. */
static _Noreturn void reaper_run(const struct child_ctx *pc)
{
        struct child_ctx c = *pc;
        struct er_reaper_args a;
        struct sigaction sa;
        int keep[8 + 3], n_keep = 0;
        sigset_t set;
        pid_t pid;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        for (int sig = 1; sig < NSIG; sig++)
                (void)sigaction(sig, &sa, NULL);
        if (c.new_session) {
                /* A group of its own: no killpg of envrun's group or the
                 * service's reaches it. */
                if (setpgid(0, 0) < 0)
                        child_fail(&c, ER_SPAWN_STEP_REAPER, errno);
        } else {
                /* The test's reaper shares envrun's (foreground) group, so
                 * the test can have the terminal; Ctrl-C and Ctrl-Z are the
                 * test's business, not the reaper's. */
                sa.sa_handler = SIG_IGN;
                (void)sigaction(SIGINT, &sa, NULL);
                (void)sigaction(SIGQUIT, &sa, NULL);
                (void)sigaction(SIGTSTP, &sa, NULL);
        }
        if (prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL) < 0 ||
            prctl(PR_SET_PDEATHSIG, (unsigned long)ER_REAPER_PDEATHSIG, 0UL, 0UL, 0UL) < 0)
                child_fail(&c, ER_SPAWN_STEP_REAPER, errno);
        if (getppid() != c.parent)
                _exit(1); /* envrun is gone already: nothing started */
        (void)prctl(PR_SET_NAME, (unsigned long)"envrun-reaper", 0UL, 0UL, 0UL);

        for (int i = 0; i < 3; i++)
                if (c.fd[i] > 2)
                        keep[n_keep++] = c.fd[i];
        keep[n_keep++] = c.err_fd;
        keep[n_keep++] = c.cmd_fd;
        keep[n_keep++] = c.st_fd;
        if (c.cgroup_fd >= 0)
                keep[n_keep++] = c.cgroup_fd;
        if (c.n_procs_fds > 4)
                child_fail(&c, ER_SPAWN_STEP_REAPER, EMFILE);
        for (size_t i = 0; i < c.n_procs_fds; i++)
                keep[n_keep++] = c.procs_fds[i];
        close_all_but(keep, (size_t)n_keep, c.max_fd);

        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigaddset(&set, ER_REAPER_PDEATHSIG);
        a.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (a.sig_fd < 0)
                child_fail(&c, ER_SPAWN_STEP_REAPER, errno);

        c.parent = getpid(); /* the main process's parent-death check */
        /* The raw system call, not glibc's fork(): this process came from a
         * raw clone3 of a possibly multi-threaded envrun, so glibc's own
         * locks (stdio's list, malloc's arenas, the atfork list) may be
         * held by a thread that does not exist here; fork() takes them. */
        pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, 0UL, 0UL, 0UL);
        if (pid == 0)
                child_run(&c);
        if (pid < 0)
                child_fail(&c, ER_SPAWN_STEP_REAPER, errno);
        /* Only the main process holds these now: EOF on the error pipe
         * is its exec, EOF on its output pipes the end of its tree. */
        for (int i = 0; i < 3; i++)
                if (c.fd[i] > 2)
                        (void)close(c.fd[i]);
        a.parent = pc->parent; /* saved before envrun's clone: checked above */
        a.main = pid;
        a.cmd_fd = c.cmd_fd;
        a.st_fd = c.st_fd;
        a.err_fd = c.err_fd;
        er_reaper_loop(&a);
}

/* ---- the parent ------------------------------------------------------ */

/* Keeps an internal fd out of 0-2, where the child's dup2s would hit it
 * (envrun started with a closed stdio fd). */
static int move_above_stdio(int *fd)
{
        int n;
        if (*fd > 2)
                return 0;
        n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
        if (n < 0)
                return -errno;
        close(*fd);
        *fd = n;
        return 0;
}

/* Supplementary groups as initgroups() would set them, and the gid: the
 * given one, else the user's primary group (running a service as a user
 * but with envrun's group 0 is never what was meant), else unchanged. */
static int prepare_creds(const struct er_spawn_opts *o, struct child_ctx *c, gid_t **groups,
                         struct er_err *err)
{
        struct passwd pw, *res = NULL;
        char *buf = NULL;
        size_t buflen = 0, groups_cap = 0;
        int r;

        c->uid = o->uid;
        c->gid = o->gid;
        if (o->uid < -1 || o->uid >= (long)(uid_t)-1)
                return er_err_set(err, -EINVAL, NULL, 0, 0, "invalid uid %ld", o->uid);
        if (o->gid < -1 || o->gid >= (long)(gid_t)-1)
                return er_err_set(err, -EINVAL, NULL, 0, 0, "invalid gid %ld", o->gid);
        if (o->uid < 0)
                return 0;

        for (size_t need = 1024;; need = buflen * 2) {
                if (er_buf_reserve(&buf, &buflen, need, 1) < 0) {
                        free(buf);
                        return er_err_set(err, -ENOMEM, NULL, 0, 0, "uid %ld: out of memory",
                                          o->uid);
                }
                r = getpwuid_r((uid_t)o->uid, &pw, buf, buflen, &res);
                if (r != ERANGE || buflen >= PWBUF_MAX)
                        break;
        }
        if (r != 0 && r != ENOENT && r != ESRCH) {
                free(buf);
                return er_err_set(err, -r, NULL, 0, 0, "uid %ld: %s", o->uid, strerror(r));
        }

        c->set_groups = true;
        if (!res) {
                /* No passwd entry: no supplementary groups but the gid. */
                free(buf);
                if (c->gid < 0)
                        return 0;
                *groups = malloc(sizeof(gid_t));
                if (!*groups)
                        return er_err_set(err, -ENOMEM, NULL, 0, 0, "uid %ld: out of memory",
                                          o->uid);
                (*groups)[0] = (gid_t)c->gid;
                c->ngroups = 1;
                return 0;
        }
        if (c->gid < 0)
                c->gid = (long)res->pw_gid;

        for (int n = 32;;) {
                int want = n;
                /* *groups may end up larger than n: getgrouplist is told n */
                if (er_buf_reserve(groups, &groups_cap, (size_t)n, sizeof(gid_t)) < 0) {
                        free(buf);
                        return er_err_set(err, -ENOMEM, NULL, 0, 0, "uid %ld: out of memory",
                                          o->uid);
                }
                if (getgrouplist(res->pw_name, (gid_t)c->gid, *groups, &want) >= 0) {
                        c->ngroups = (size_t)want;
                        break;
                }
                if (n >= GROUPS_MAX) {
                        r = er_err_set(err, -ER_ELIMIT, NULL, 0, 0,
                                       "user '%s': more than %d groups", res->pw_name, GROUPS_MAX);
                        free(buf);
                        return r;
                }
                /* glibc reports the size it needs in want. */
                n = want > n ? want : n * 2;
                if (n > GROUPS_MAX)
                        n = GROUPS_MAX;
        }
        free(buf);
        return 0;
}

static int max_fd(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
            rl.rlim_cur > (1 << 20))
                return 1 << 20;
        return rl.rlim_cur < 1024 ? 1024 : (int)rl.rlim_cur;
}

static pid_t wait_reap(pid_t pid)
{
        pid_t r;
        do
                r = waitpid(pid, NULL, 0);
        while (r < 0 && errno == EINTR);
        return r;
}

/* Creates the child: clone3 when it can give a pidfd (and a cgroup), else
 * fork + pidfd_open, else plain fork.  Returns the pid (0 in the child) or
 * -errno; *pidfd is -1 when there is none. */
static pid_t create(const struct er_spawn_opts *o, int *pidfd, bool *in_cgroup)
{
        pid_t pid;

        *pidfd = -1;
        *in_cgroup = false;
        if (!o->no_pidfd) {
                struct clone_args_v2 args;
                bool cg = o->cgroup_fd >= 0;

                for (;;) {
                        int fd = -1;
                        long r;
                        memset(&args, 0, sizeof(args));
                        args.flags = CLONE_PIDFD | (cg ? CLONE_INTO_CGROUP : 0);
                        args.pidfd = (uint64_t)(uintptr_t)&fd;
                        args.exit_signal = SIGCHLD;
                        args.cgroup = cg ? (uint64_t)o->cgroup_fd : 0;
                        /* No CLONE_VM and no stack: the child returns here on
                         * a copy of our stack, as from fork().  On failure
                         * fd may hold a number the kernel reserved and freed
                         * again (6.18 writes it before the cgroup check):
                         * it is not ours to close. */
                        r = syscall(SYS_clone3, &args, sizeof(args));
                        if (r >= 0) {
                                if (r > 0)
                                        *pidfd = fd;
                                *in_cgroup = cg;
                                return (pid_t)r;
                        }
                        if (errno == ENOSYS || errno == E2BIG)
                                break;
                        /* Any error with the cgroup (EBUSY, EOPNOTSUPP, EACCES,
                         * ENOENT, EBADF, EINVAL before 5.7): try without it;
                         * the caller moves the child.  The same error again
                         * was not about the cgroup. */
                        if (!cg)
                                return -errno;
                        cg = false;
                }
        }

        pid = fork();
        if (pid <= 0)
                return pid < 0 ? -errno : 0;
        if (!o->no_pidfd) {
                int fd = (int)syscall(SYS_pidfd_open, pid, 0U);
                if (fd >= 0) {
                        *pidfd = fd;
                } else if (errno != ENOSYS) {
                        /* Not a kernel without pidfds: a resource error.
                         * The child must not outlive a failed spawn. */
                        int e = errno;
                        kill(pid, SIGKILL);
                        wait_reap(pid);
                        return -e;
                }
        }
        return pid;
}

/* Reads the child's record: 0 on EOF (exec'd), 1 with *rec filled. */
static int read_rec(int fd, struct child_rec *rec)
{
        size_t got = 0;
        while (got < sizeof(*rec)) {
                ssize_t n = read(fd, (char *)rec + got, sizeof(*rec) - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        if (got == 0)
                return 0;
        if (got < sizeof(*rec))
                return -EIO;
        return 1;
}

static int step_err(const struct er_spawn_opts *o, const struct child_ctx *c,
                    const struct child_rec *rec, struct er_err *err)
{
        int code = rec->err > 0 ? -rec->err : -EIO;
        const char *why = strerror(-code);

        switch ((enum er_spawn_step)rec->step) {
        case ER_SPAWN_STEP_SETSID:
                return er_err_set(err, code, NULL, 0, 0, "setsid: %s", why);
        case ER_SPAWN_STEP_GROUPS:
                return er_err_set(err, code, NULL, 0, 0, "setgroups for uid %ld: %s", c->uid, why);
        case ER_SPAWN_STEP_SETGID:
                return er_err_set(err, code, NULL, 0, 0, "setgid %ld: %s", c->gid, why);
        case ER_SPAWN_STEP_SETUID:
                return er_err_set(err, code, NULL, 0, 0, "setuid %ld: %s", c->uid, why);
        case ER_SPAWN_STEP_PDEATHSIG:
                return er_err_set(err, code, NULL, 0, 0, "pdeathsig %d: %s", c->pdeathsig, why);
        case ER_SPAWN_STEP_STDIO:
                return er_err_set(err, code, NULL, 0, 0, "stdio: %s", why);
        case ER_SPAWN_STEP_CHDIR:
                return er_err_set(err, code, NULL, 0, 0, "cwd '%s': %s", o->cwd, why);
        case ER_SPAWN_STEP_EXEC:
                return er_err_set(err, code, NULL, 0, 0, "exec '%s': %s", c->path, why);
        case ER_SPAWN_STEP_CGROUP:
                return er_err_set(err, code, NULL, 0, 0, "joining its cgroup: %s", why);
        case ER_SPAWN_STEP_REAPER:
                return er_err_set(err, code, NULL, 0, 0, "starting its reaper: %s", why);
        default:
                return er_err_set(err, code, NULL, 0, 0, "child setup: %s", why);
        }
}

static int lookup_err(const char *file, int e, struct er_err *err)
{
        if (e == ENOENT && !strchr(file, '/'))
                return er_err_set(err, -ENOENT, NULL, 0, 0, "'%s': command not found", file);
        return er_err_set(err, -e, NULL, 0, 0, "'%s': %s", file, strerror(e));
}

/* The reaper's channels: commands (non-blocking both ways: envrun never
 * waits on a reaper, the reaper polls) and status (the reaper's end blocks:
 * no record is ever dropped; envrun's end is made non-blocking once STARTED
 * was read).  Kept out of 0-2 like the error pipe. */
static int reaper_pipes(int cmd[2], int st[2], struct er_err *err)
{
        int r = 0;

        /* Commands travel on a socket: envrun sends with MSG_NOSIGNAL, so a
         * reaper that is gone is EPIPE, never a SIGPIPE to a library's
         * caller. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, cmd) < 0 ||
            pipe2(st, O_CLOEXEC) < 0)
                r = -errno;
        for (int i = 0; r == 0 && i < 2; i++)
                if ((r = move_above_stdio(&cmd[i])) == 0)
                        r = move_above_stdio(&st[i]);
        return r < 0 ? er_err_set(err, r, NULL, 0, 0, "reaper pipes: %s", strerror(-r)) : 0;
}

/* The main pid, from the reaper's first record; 0 or -errno. */
static int reaper_started(int fd, pid_t *ret)
{
        struct er_reaper_msg m;
        int r = er_reaper_read(fd, &m);

        if (r == 0)
                return -EPIPE;
        if (r < 0)
                return r;
        if (m.type != ER_REAPER_STARTED || m.pid <= 0)
                return -EPROTO;
        if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        *ret = m.pid;
        return 0;
}

/* The descriptors a spawn opens for itself, each -1 until opened. */
struct spawn_fds {
        int err_pipe[2]; /* the exec-error pipe: EOF means exec succeeded */
        int cmd[2];      /* reaper: its command socketpair */
        int st[2];       /* reaper: its status pipe */
};

static void fds_close(struct spawn_fds *f)
{
        for (int i = 0; i < 2; i++) {
                er_close(&f->err_pipe[i]);
                er_close(&f->cmd[i]);
                er_close(&f->st[i]);
        }
}

/* Opens what the child needs besides the caller's fds, and points c at
 * it: stdin, the exec-error pipe (above stdio, so that the child's dup2s
 * cannot hit it), a reaper's pipes, cgroup.procs.  0 or -errno with err. */
static int open_fds(const struct er_spawn_opts *opts, struct child_ctx *c, struct spawn_fds *f,
                    struct er_err *err)
{
        int r;

        c->stdin_null = opts->stdin_fd < 0;
        c->fd[0] = opts->stdin_fd;
        c->fd[1] = opts->stdout_fd;
        c->fd[2] = opts->stderr_fd;
        if (pipe2(f->err_pipe, O_CLOEXEC) < 0)
                return er_err_set(err, -errno, NULL, 0, 0, "pipe: %s", strerror(errno));
        if ((r = move_above_stdio(&f->err_pipe[0])) < 0 ||
            (r = move_above_stdio(&f->err_pipe[1])) < 0)
                return er_err_set(err, r, NULL, 0, 0, "pipe: %s", strerror(-r));
        c->err_fd = f->err_pipe[1];
        if (opts->reaper && (r = reaper_pipes(f->cmd, f->st, err)) < 0)
                return r;
        c->cmd_fd = f->cmd[0];
        c->st_fd = f->st[1];
        c->cgroup_fd = opts->cgroup_fd;
        c->procs_fds = opts->procs_fds;
        c->n_procs_fds = opts->procs_fds ? opts->n_procs_fds : 0;
        return 0;
}

/* After the fork: waits for the child's exec (or its failure, a typed
 * step record) and, for a reaper, for the service it started; fills ret.
 * 0, or -errno / the step's error with err (the child is then reaped). */
static int await_exec(const struct er_spawn_opts *opts, const struct child_ctx *c,
                      struct spawn_fds *f, pid_t pid, int pidfd, bool in_cgroup,
                      struct er_child *ret, struct er_err *err)
{
        struct child_rec rec;
        int r;

        /* er_spawn_start closed our copies of the child's ends already. */
        r = read_rec(f->err_pipe[0], &rec);
        if (r == 0 && opts->reaper)
                r = reaper_started(f->st[0], &ret->pid);
        if (r != 0) {
                /* A reaper is not killed: its main process may have exec'd
                 * already.  The end of its command socket (below) makes it
                 * kill its tree and exit. */
                if (r < 0 && !opts->reaper)
                        kill(pid, SIGKILL);
                if (r < 0)
                        er_err_set(err, r, NULL, 0, 0, "reading the child's status: %s",
                                   strerror(-r));
                /* A reaper whose child failed exits on its own once it
                 * reaped it; our end of its command pipe closes first. */
                er_close(&f->cmd[1]);
                wait_reap(pid);
                er_close(&pidfd);
                return r > 0 ? step_err(opts, c, &rec, err) : r;
        }
        ret->pidfd = pidfd;
        ret->reaper_pid = -1;
        ret->reaper_pidfd = ret->reaper_cmd = ret->reaper_st = -1;
        if (opts->reaper) {
                ret->pidfd = -1;
                ret->reaper_pid = pid;
                ret->reaper_pidfd = pidfd;
                ret->reaper_cmd = f->cmd[1];
                ret->reaper_st = f->st[0];
                f->cmd[1] = f->st[0] = -1;
        } else {
                ret->pid = pid;
        }
        /* created inside, or it moved itself in (the spawn fails if not) */
        ret->in_cgroup = in_cgroup || opts->cgroup_fd >= 0;
        return 0;
}

/* A child created, its exec not yet known (er_spawn_start): what
 * er_spawn_finish needs, the caller's strings borrowed until then. */
struct er_spawn_pending {
        struct er_spawn_opts opts;
        struct child_ctx c;
        struct spawn_fds f;
        gid_t *groups;
        char *path;
        pid_t pid;
        int pidfd;
        bool in_cgroup;
};

static void pending_free(struct er_spawn_pending *pd)
{
        fds_close(&pd->f);
        free(pd->groups);
        free(pd->path);
        free(pd);
}

int er_spawn_start(const struct er_spawn_opts *opts, struct er_spawn_pending **ret,
                   struct er_err *err)
{
        struct er_spawn_pending *pd;
        struct child_ctx *c;
        sigset_t all, old;
        int r;

        if (!opts || !opts->file || !opts->argv || !opts->argv[0])
                return er_err_set(err, -EINVAL, NULL, 0, 0, "nothing to run");
        if (opts->pdeathsig < 0 || opts->pdeathsig >= NSIG)
                return er_err_set(err, -EINVAL, NULL, 0, 0, "invalid pdeathsig %d",
                                  opts->pdeathsig);
        if (!(pd = calloc(1, sizeof(*pd))))
                return er_err_set(err, -ENOMEM, NULL, 0, 0, "out of memory");
        pd->opts = *opts;
        pd->f = (struct spawn_fds){{-1, -1}, {-1, -1}, {-1, -1}};
        pd->pidfd = -1;
        c = &pd->c;
        pd->path = er_spawn_lookup(opts->file, opts->envp, opts->cwd);
        if (!pd->path) {
                r = lookup_err(opts->file, errno, err);
                pending_free(pd);
                return r;
        }
        c->path = pd->path;
        c->argv = opts->argv;
        c->envp = opts->envp ? opts->envp : empty_env;
        c->cwd = opts->cwd;
        c->new_session = opts->pgrp == ER_SPAWN_SETSID;
        c->pdeathsig = opts->pdeathsig;
        c->max_fd = max_fd();
        c->err_fd = c->cmd_fd = c->st_fd = -1;
        if ((r = prepare_creds(opts, c, &pd->groups, err)) < 0 ||
            (c->groups = pd->groups, r = open_fds(opts, c, &pd->f, err)) < 0) {
                pending_free(pd);
                return r;
        }

        /* No handler of ours may run in the child before it resets them;
         * the caller normally has everything blocked already. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        c->parent = getpid();
        pd->pid = create(opts, &pd->pidfd, &pd->in_cgroup);
        if (pd->pid == 0) {
                c->in_cgroup = pd->in_cgroup;
                if (opts->reaper)
                        reaper_run(c);
                child_run(c);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pd->pid < 0) {
                r = er_err_set(err, (int)pd->pid, NULL, 0, 0, "fork: %s", strerror((int)-pd->pid));
                pending_free(pd);
                return r;
        }
        /* The child has what it needs: ours of its ends go, so that EOF on
         * the error pipe can mean its exec. */
        er_close(&pd->f.err_pipe[1]);
        er_close(&pd->f.cmd[0]);
        er_close(&pd->f.st[1]);
        *ret = pd;
        return 0;
}

int er_spawn_finish(struct er_spawn_pending *pd, struct er_child *ret, struct er_err *err)
{
        int r = await_exec(&pd->opts, &pd->c, &pd->f, pd->pid, pd->pidfd, pd->in_cgroup, ret, err);
        pending_free(pd);
        return r;
}

int er_spawn_pending_fd(const struct er_spawn_pending *pd)
{
        return pd->f.err_pipe[0];
}

pid_t er_spawn_pending_pid(const struct er_spawn_pending *pd)
{
        return pd->pid;
}

int er_spawn(const struct er_spawn_opts *opts, struct er_child *ret, struct er_err *err)
{
        struct er_spawn_pending *pd;
        int r = er_spawn_start(opts, &pd, err);

        return r < 0 ? r : er_spawn_finish(pd, ret, err);
}
