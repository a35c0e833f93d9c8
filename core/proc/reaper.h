/* reaper: the per-service subreaper of the reaper containment (SPEC §5.6).
 *
 * Where envrun has no cgroup to put a service in (a normal user on most
 * hosts), every service, probe and test command runs under a small process
 * of envrun's own: spawn forks it from envrun, it sets
 * PR_SET_CHILD_SUBREAPER, forks the service, and from then on every orphan
 * of the service's tree reparents to it, whatever the orphan does to its
 * session, title, arguments or environment.  Its descendants are the tree.
 *
 * It is a straight-line, async-signal-safe loop (no malloc, no stdio: envrun
 * may have threads when it forks) in a child of envrun that closed every
 * inherited descriptor but its own at once, so envrun's epoll, signalfd and
 * the instance lock's open file description do not live on in it.  It is
 * never envrun re-executed: that would pay the dynamic loading per service.
 *
 * It talks to envrun over a pipe and a socket:
 *   - status (reaper -> envrun): STARTED {the main pid} once, right after
 *     the fork; EXITED {pid, wait status, rusage} for every process it
 *     reaps (the main process, an adopted daemon, any orphan); GONE {the
 *     rusage of everything it reaped} just before it exits.
 *   - commands (envrun -> reaper): SIGNAL_MAIN {sig} (sent only while the
 *     main process is unreaped, so a reused pid is never hit), KILL (SIGKILL
 *     the tree until it is empty, then exit).
 * It exits by itself once the main process was reaped and it has no child
 * left (waitpid's ECHILD: the kernel's own answer, no scan), so envrun
 * learns that the tree is empty from the reaper's exit.
 *
 * On its parent-death signal (any catchable signal, acted on only when
 * getppid() shows envrun gone), on EOF or an error of the command pipe, it
 * SIGKILLs its whole tree, reaps until ECHILD and exits: a kill -9 of envrun
 * leaves nothing behind.  A service's reaper is in a process group of its
 * own (neither the service's nor envrun's), so neither a killpg of the
 * service nor a CI runner's kill -9 -PGID of envrun's group reaches it; the
 * test command's reaper stays in envrun's group (the test must get the
 * terminal's Ctrl-C) and ignores SIGINT, SIGQUIT and SIGTSTP. */
#ifndef ER_REAPER_H
#define ER_REAPER_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

enum er_reaper_msg_type {
        ER_REAPER_STARTED = 1,
        ER_REAPER_EXITED,
        ER_REAPER_GONE,
};

/* One record on the status pipe (smaller than PIPE_BUF: written whole). */
struct er_reaper_msg {
        int32_t type;
        int32_t pid;    /* STARTED, EXITED */
        int32_t status; /* EXITED: the wait status */
        int32_t pad;
        int64_t utime_us, stime_us; /* EXITED: that process (and what it
                                     * waited for); GONE: all it reaped */
        int64_t maxrss_kb;
};

enum er_reaper_cmd_type {
        ER_REAPER_SIGNAL_MAIN = 1,
        ER_REAPER_KILL,
};

struct er_reaper_cmd {
        int32_t type;
        int32_t sig;
};

/* What the reaper runs with (spawn prepares it; every fd is its own). */
struct er_reaper_args {
        pid_t parent; /* envrun's pid, for getppid() */
        pid_t main;   /* the service's main process, just forked */
        int cmd_fd;   /* commands from envrun */
        int st_fd;    /* status to envrun */
        int sig_fd;   /* signalfd: SIGCHLD and the parent-death signal */
        int err_fd;   /* spawn's exec-error pipe: closed once STARTED is sent,
                       * so at its EOF envrun finds the main pid waiting */
};

/* The reaper's signal that its parent died (caught on sig_fd, checked with
 * getppid before it is acted on). */
#define ER_REAPER_PDEATHSIG SIGTERM

/* The reaper's life after the fork of the main process: sends STARTED,
 * then reaps, reports and obeys until its tree is empty.  Async-signal-safe. */
_Noreturn void er_reaper_loop(const struct er_reaper_args *a);

/* envrun's side.  Sends one command; 0 or -errno (-EPIPE: the reaper is
 * gone; never SIGPIPE.  Non-blocking: -EAGAIN means the reaper is stuck,
 * never that it is slow, as commands are rare and tiny). */
int er_reaper_send(int cmd_fd, int type, int sig);
/* Reads one record: 1 with *m filled, 0 at EOF, -EAGAIN when none is
 * there yet, -errno else (a torn record is -EIO). */
int er_reaper_read(int st_fd, struct er_reaper_msg *m);
/* The rusage of a record, as wait4 gives it. */
void er_reaper_rusage(const struct er_reaper_msg *m, struct rusage *ru);

#endif
