/* spawn: the only code that creates processes (STYLE §5).
 *
 * Everything is prepared in the parent (argv, envp, the program's path
 * looked up in the child's own PATH, cwd, stdio); the child only makes
 * async-signal-safe calls between fork and exec.  Exec errors come back over
 * a CLOEXEC pipe as {step, errno}, so "program not found" is told apart from
 * a program that exits 127.
 *
 * In the child, in order: every signal disposition to SIG_DFL (the mask
 * stays blocked), joining its cgroups (the cgroup2 one on the fork path,
 * then procs_fds), setsid() for ER_SPAWN_SETSID, supplementary groups, gid
 * and uid when a user is given, PR_SET_PDEATHSIG (after the credentials
 * change, which would clear it) and a check that the parent did not die
 * already (getppid against the pid saved before the fork), stdin/stdout/
 * stderr, close_range(3, ~0, CLOSE_RANGE_CLOEXEC), chdir, an empty signal
 * mask, execve.
 *
 * Process creation: clone3(CLONE_PIDFD | CLONE_INTO_CGROUP) when a cgroup fd
 * is given (refused by the kernel: retried without it, in_cgroup = false),
 * else clone3(CLONE_PIDFD); when clone3 returns ENOSYS (old kernels,
 * valgrind), fork() + pidfd_open(); when that returns ENOSYS too, or
 * no_pidfd is set, plain fork() and pidfd = -1: the caller then learns of
 * the exit from SIGCHLD on its signalfd and waitid(P_PID).
 *
 * With a reaper (opts->reaper), the process created that way is the reaper,
 * which makes itself a subreaper, closes every descriptor but its own and
 * the child's, and forks the child with plain fork(); the child's exit
 * status then comes from the reaper's status pipe (reaper.h). */
#ifndef ER_SPAWN_H
#define ER_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "base/err.h"

enum er_spawn_pgrp {
        ER_SPAWN_SETSID,     /* a new session and process group (services) */
        ER_SPAWN_INHERIT,    /* stay in the parent's process group (the test command) */
};

struct er_spawn_opts {
        const char *file;            /* as given: looked up in PATH unless it has a '/' */
        char *const *argv;           /* argv[0] is what the program sees */
        char *const *envp;           /* the child's whole environment */
        const char *cwd;             /* NULL: the parent's */
        int stdin_fd;                /* -1: /dev/null */
        int stdout_fd, stderr_fd;    /* -1: inherit the parent's */
        enum er_spawn_pgrp pgrp;
        long uid, gid;               /* -1: keep envrun's (gid, with a uid: the user's group) */
        int cgroup_fd;               /* -1: none; else a cgroup2 directory fd (CLONE_INTO_CGROUP) */
        /* Open cgroup.procs files of v1 cgroups (hybrid hosts): the child
         * writes "0" to each before anything else, so all it starts is
         * inside them. */
        const int *procs_fds;
        size_t n_procs_fds;
        int pdeathsig;               /* 0: none; else sent to the child when envrun dies */
        bool no_pidfd;               /* force the fork()+SIGCHLD path (tests, valgrind runs) */
        /* Run the child under a reaper of its own (reaper.h): envrun's
         * child is the reaper, which forks the child.  The reaper is in a
         * process group of its own with ER_SPAWN_SETSID, in envrun's with
         * ER_SPAWN_INHERIT. */
        bool reaper;
};

struct er_child {
        pid_t pid;
        int pidfd;                   /* -1 on the fallback path, and under a reaper */
        bool in_cgroup;              /* cgroup_fd was honoured at creation */
        /* With opts->reaper (else -1): envrun's child, its pidfd (-1 on the
         * fallback path), the command pipe's write end (non-blocking) and
         * the status pipe's read end (non-blocking; STARTED already read).
         * The caller owns the fds. */
        pid_t reaper_pid;
        int reaper_pidfd, reaper_cmd, reaper_st;
};

/* The step of the child that failed, for messages. */
enum er_spawn_step {
        ER_SPAWN_STEP_NONE,
        ER_SPAWN_STEP_SETSID,
        ER_SPAWN_STEP_GROUPS,
        ER_SPAWN_STEP_SETGID,
        ER_SPAWN_STEP_SETUID,
        ER_SPAWN_STEP_PDEATHSIG,
        ER_SPAWN_STEP_STDIO,
        ER_SPAWN_STEP_CHDIR,
        ER_SPAWN_STEP_EXEC,
        ER_SPAWN_STEP_CGROUP,        /* writing the pid into a v1 cgroup */
        ER_SPAWN_STEP_REAPER,        /* the reaper's own set-up or its fork */
};

/* Resolves `file` against PATH from envp (not envrun's own), relative to
 * cwd when it contains a '/'.  Returns a malloc'd path, or NULL with errno
 * (ENOENT: "command not found"; EACCES: found but not executable). */
char *er_spawn_lookup(const char *file, char *const *envp, const char *cwd);

/* Starts a child.  On success fills *ret and returns 0 once the child has
 * exec'd.  On failure returns -errno and fills err->msg in words a user can
 * act on: "'ghost': command not found", "cwd './db': No such file or
 * directory", "'./x': Permission denied", "setuid 70: Operation not
 * permitted"; a child that was forked is reaped before returning.
 * Must be called from the main thread with all signals blocked (the caller
 * keeps them blocked; the child resets them). */
int er_spawn(const struct er_spawn_opts *opts, struct er_child *ret, struct er_err *err);

/* er_spawn in two halves, so that envrun never waits for an exec: start
 * creates the child and returns at once; the child's exec, or its failure,
 * makes er_spawn_pending_fd readable (EOF, or a record), and finish then
 * reads it without blocking and is er_spawn's result.  Called before that,
 * finish waits for the exec (a stop that cannot wait for the event).  The
 * strings opts points to must live until finish (cwd names the failure);
 * the fds it names may be closed after start. */
struct er_spawn_pending;
int er_spawn_start(const struct er_spawn_opts *opts, struct er_spawn_pending **ret,
                   struct er_err *err);
int er_spawn_finish(struct er_spawn_pending *pd, struct er_child *ret, struct er_err *err);
/* The descriptor to watch for readability (EPOLLIN) until finish. */
int er_spawn_pending_fd(const struct er_spawn_pending *pd);
/* The pid start created (the reaper's, with opts->reaper): its exit may
 * be seen (SIGCHLD) before its exec's outcome is read; finish first. */
pid_t er_spawn_pending_pid(const struct er_spawn_pending *pd);

#endif
