/* proc: one supervised process tree (SPEC §5.5, §5.6): its main process,
 * its group (contain), its output read line by line into the log and to
 * the owner, and the stop sequence: sig_stop with SIGCONT to the whole
 * tree, sig_kill after the grace period, then the tree verified empty.
 *
 * Events come from the loop: the pidfd (or, on the fallback path, the
 * owner calling er_proc_reap on SIGCHLD), the pipes, cgroup.events, or for
 * the reaper mechanism the reaper's records (the main process's exit) and
 * its own exit (the tree is empty), timers. */
#ifndef ER_PROC_H
#define ER_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "model/types.h"
#include "proc/contain.h"
#include "proc/log.h"
#include "proc/loop.h"
#include "proc/spawn.h"

struct er_proc;

struct er_proc_cb {
        /* A line of output (without its newline; cut at 64 KiB). */
        void (*line)(struct er_proc *p, enum er_stream stream, const char *line, size_t len);
        /* The main process ended: exit_code/exit_signal are set. */
        void (*exited)(struct er_proc *p);
        /* The whole tree is gone and its output drained. */
        void (*gone)(struct er_proc *p);
        /* Its log could not be written (-errno, once): output is dropped
         * and counted from now on while it lasts.  Optional. */
        void (*log_failed)(struct er_proc *p, int err);
        /* After er_proc_spawn_watch: the exec's outcome is known; the owner
         * calls er_proc_spawn_end, which does not block now. */
        void (*exec_known)(struct er_proc *p);
};

#define ER_PROC_LINE_MAX 65536

struct er_proc_pipe {
        int fd;
        struct er_io io;
        char *buf;           /* ER_PROC_LINE_MAX bytes while open */
        size_t len;
};

struct er_proc {
        struct er_loop *loop;
        const struct er_proc_cb *cb;
        void *owner;
        struct er_log *log;          /* borrowed; NULL: output is not logged */
        struct er_group group;
        bool group_ok;
        struct er_io events_io;      /* cgroup.events (EPOLLPRI) */
        struct er_io reaper_io;      /* reaper: its status pipe */
        struct er_io reaper_pid_io;  /* reaper: its pidfd */

        pid_t pid;
        int pidfd;
        struct er_io pid_io;
        struct er_spawn_pending *pending; /* between er_proc_spawn_begin and _end */
        struct er_io exec_io;        /* er_proc_spawn_watch: the pending exec */
        bool spawned, exited, gone;
        int exit_code;               /* -1 when killed by a signal */
        int exit_signal;             /* 0 when it exited */
        struct rusage rusage;        /* of the main process (and what it waited for) */
        struct er_proc_pipe out, err;

        bool stopping, killed;
        unsigned killed_count;       /* processes alive when sig_kill was sent */
        bool killed_before_exit;     /* the main process itself needed sig_kill */
        int sig_stop, sig_kill;
        uint64_t stop_timeout_us;
        struct er_timer stop_timer;
};

/* Prepares p and its group (a cgroup for the cgroup2 mechanism). */
int er_proc_init(struct er_proc *p, struct er_loop *loop, struct er_contain *contain,
                 const char *name, const struct er_proc_cb *cb, void *owner, struct er_log *log,
                 struct er_err *err);
/* Spawns the main process into the group.  capture: stdout/stderr go to
 * pipes read by p (else opts' own fds are used).  The group's marker is
 * added to opts->envp by the caller (er_proc_marker). */
int er_proc_spawn(struct er_proc *p, struct er_spawn_opts *opts, bool capture, struct er_err *err);
/* er_proc_spawn in two halves (er_spawn_start, er_spawn_finish), so that
 * envrun need not wait for the exec: after begin returned 0, p is not
 * spawned until end; er_proc_spawn_watch has cb->exec_known called when
 * end would not block.  end called before that waits for the exec.  opts's
 * strings must live until end. */
int er_proc_spawn_begin(struct er_proc *p, struct er_spawn_opts *opts, bool capture,
                        struct er_err *err);
int er_proc_spawn_watch(struct er_proc *p); /* 0 or -errno: then end at once */
int er_proc_spawn_end(struct er_proc *p, struct er_err *err);
/* The pid begin created while its exec is pending, else 0: a SIGCHLD for
 * it is the owner's cue to end the spawn first. */
pid_t er_proc_pending_pid(const struct er_proc *p);
const char *er_proc_marker(const struct er_proc *p); /* "ENVRUN_MARKER=..." */

/* Starts the stop sequence (no-op when already stopping); the gone callback
 * follows once the tree is empty.  timeout 0 or `fast`: sig_kill at once. */
void er_proc_stop(struct er_proc *p, int sig_stop, uint64_t timeout_us, int sig_kill, bool fast);
/* Makes pid (a daemon of the tree, found by a pidfile check) the main
 * process after the original one exited 0 (SPEC §4). 0 or -errno. */
int er_proc_adopt(struct er_proc *p, pid_t pid, bool no_pidfd);
/* Sends sig to the main process only (forwarding a signal to the test);
 * under a reaper, through it. */
int er_proc_signal_main(struct er_proc *p, int sig);

/* SIGCHLD: reaps the main process (or its reaper) if it ended (needed on
 * the fallback path without pidfd; harmless otherwise).  Returns true when
 * it acted: the callbacks may have freed p then. */
bool er_proc_reap(struct er_proc *p);
/* SIGCHLD: checks whether the tree became empty. */
void er_proc_check_empty(struct er_proc *p);

/* Releases everything (stops watchers, closes fds, removes the cgroup). */
void er_proc_fini(struct er_proc *p);

#endif
