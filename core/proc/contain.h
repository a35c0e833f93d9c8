/* contain: the process tree of a service, whoever forks or calls setsid in
 * it (SPEC §5.6).
 *
 * Two mechanisms, chosen once per instance:
 *   - cgroup2: one cgroup per service under a tree of envrun's own: as root
 *     <mount>/envrun/<instance>/<service> at the root of the hierarchy;
 *     otherwise, when envrun's own cgroup directory is writable (a
 *     delegated subtree, as systemd gives user sessions), the tree is made
 *     below it (no controllers are enabled there, so the "no internal
 *     processes" rule does not apply).  The cgroup2 mount is found in
 *     /proc/self/mountinfo (hybrid hosts mount it at /sys/fs/cgroup/unified).
 *     Children are created inside it (clone3 CLONE_INTO_CGROUP, through the
 *     directory fd); signals go to every pid in cgroup.procs; cgroup.kill
 *     (Linux 5.14+) kills the whole tree at once; "populated 0" in
 *     cgroup.events, watched with epoll (EPOLLPRI, kernfs notifies on
 *     change), says the tree is empty.
 *   - reaper: where no cgroup can be made (a normal user, most hosts), each
 *     group's main process runs under a reaper of its own (reaper.h): a
 *     child subreaper that envrun forks, which forks the main process and
 *     inherits every orphan of its tree, so the tree is found by structure
 *     (the reaper's descendants, er_pids_tree), never by a marker a program
 *     can overwrite.  The reaper reports the exits it reaps, and exits
 *     itself once it has no child left: the tree is empty when envrun has
 *     reaped the reaper.  A reaper that dies otherwise leaves its tree to
 *     envrun (a subreaper too), which kills every child it does not know
 *     (er_contain_sweep).  Both kinds still set ENVRUN_MARKER=<instance>/
 *     <service> in each service's environment, for the last-resort sweep
 *     after a crash (state.c).
 * The mechanism and the reason for it are reported (`-v`, the report).
 *
 * Limits (SPEC §3 limits:): on hybrid hosts, where the memory and pids
 * controllers live only in cgroup v1 hierarchies, root also makes
 * <v1 mount>/envrun/<instance>/<service> in each of them; the child joins
 * them before it execs (er_group_procs_fds, written by spawn).  memory:
 * memory.limit_in_bytes (RAM only, like v2's memory.max: memsw is left
 * alone); an OOM is announced through cgroup.event_control on an eventfd
 * (er_group_oom_fd), and memory.oom_control's oom_kill counts the kills.
 * pids: pids.max; pids.events "max" counts refused forks (v1 sends no
 * notification for it: the owner reads it).  cpu_time: no kernel limit
 * covers a tree; the owner reads cpu.stat (er_group_cpu_usage).  A service
 * without limits never joins a v1 hierarchy (er_group_set_limits makes its
 * v1 cgroups).  On pure cgroup v2 (as root, or in a delegated subtree that
 * holds nothing but envrun), memory and pids are enabled down to the
 * instance's directory and set in the service's own cgroup: memory.max
 * with memory.swap.max 0, pids.max; memory.events (EPOLLPRI) and
 * pids.events tell the crossings, memory.peak the tree's peak.  Where a
 * controller can be had neither way, ctl_why says why; under the reaper
 * mechanism no limit is enforced.  The limits that are not are named, each
 * with its reason. */
#ifndef ER_CONTAIN_H
#define ER_CONTAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "base/err.h"

struct er_limits; /* config.h */
struct er_pidvec; /* pids.h */

enum er_contain_kind {
        ER_CONTAIN_CGROUP2,
        ER_CONTAIN_REAPER,
};

enum er_v1 {
        ER_V1_MEMORY,
        ER_V1_PIDS,
        ER_V1_N,
};

struct er_child;       /* spawn.h */
struct er_reaper_msg;  /* reaper.h */

struct er_contain {
        enum er_contain_kind kind;
        char *instance;      /* unique per instance: "<project>.<pid>.<random>" */
        char *root;          /* cgroup2: the instance's directory; NULL for reaper */
        int root_fd;
        char reason[256];    /* "cgroup2 at /sys/fs/cgroup/unified (root)" or why not */
        int v1_fd[ER_V1_N];  /* the instance's v1 directories, or -1 */
        char *v1_dir[ER_V1_N];
        char limits_why[256]; /* why a limit cannot be enforced; "" when all can */
        /* memory and pids: enabled in cgroup v2 down to the instance's
         * directory (pure v2 hosts, as root), else taken from v1 (hybrid
         * hosts), else ctl_why says why neither can be used. */
        bool v2_ctl[ER_V1_N];
        char ctl_why[ER_V1_N][200];
        struct er_group *live; /* reaper: the groups whose reaper is alive */
};

/* A service's group of processes. */
struct er_group {
        struct er_contain *c;      /* borrowed */
        char *name;                /* service name */
        char marker[300];          /* "ENVRUN_MARKER=<instance>/<service>" (both kinds set it) */
        int dir_fd;                /* cgroup2: the service's cgroup directory; else -1 */
        int events_fd;             /* cgroup2: cgroup.events, for EPOLLPRI; else -1 */
        pid_t main;                /* the main process, once started */
        int v1_fd[ER_V1_N];        /* the service's v1 cgroups, or -1 */
        int oom_fd;                /* v1: an eventfd signalled on an OOM in its memory
                                    * cgroup; v2: its memory.events (EPOLLPRI); or -1 */
        /* reaper: its pid (0 before the spawn), pidfd (-1 on the fallback
         * path), command pipe, status pipe; gone once envrun reaped it. */
        pid_t reaper;
        int reaper_pidfd, reaper_cmd, reaper_st;
        bool reaper_gone;
        struct rusage tree_usage;  /* reaper: all it reaped (its GONE record) */
        bool tree_usage_ok;
        struct er_group *next_live;
};

/* Chooses the mechanism: cgroup2 when a writable cgroup2 hierarchy is found
 * and force_reaper is false, else reaper.  envrun becomes a subreaper either
 * way.  limits: some service has limits, so the memory and pids
 * controllers are made ready (v2 controllers enabled down to the instance,
 * else the instance's v1 directories); without, none of that is touched
 * (on a hybrid host, four cgroup mkdirs and rmdirs less per run).
 * Returns 0 or -errno (only for allocation failures; the fallback is not an
 * error). */
int er_contain_init(struct er_contain *c, const char *project, bool force_reaper, bool limits);
/* Removes the instance's cgroup directory (it must be empty). */
void er_contain_fini(struct er_contain *c);
const char *er_contain_name(const struct er_contain *c); /* "cgroup2" | "reaper" */

/* reaper: kills every child of envrun's that is not a live reaper of c,
 * with its descendants (a reaper that died unexpectedly left its tree to
 * envrun).  Called by er_group_reaper_reap; harmless at any time. */
void er_contain_sweep(struct er_contain *c);

/* Creates the group of a service (its cgroup, for cgroup2). 0 or -errno with err. */
int er_group_init(struct er_group *g, struct er_contain *c, const char *service,
                  struct er_err *err);
/* Removes the cgroup (after the tree is empty) and closes fds. */
void er_group_fini(struct er_group *g);

/* The spawn side: the cgroup directory fd for CLONE_INTO_CGROUP (-1 for
 * reaper).  After spawn, er_group_started records the main pid (and, when
 * the child could not be created inside the cgroup, moves it there); for
 * the reaper kind it takes over the reaper's pid and fds from child. */
int er_group_cgroup_fd(const struct er_group *g);
int er_group_started(struct er_group *g, struct er_child *child);
/* Sends sig to the main process only.  Under a reaper, through it: it
 * signals only a main process it has not reaped yet. */
int er_group_signal_main(struct er_group *g, int sig);

/* The reaper's side (reaper kind; the owner watches both fds on its loop):
 *   er_group_reaper_fd: the status pipe (EPOLLIN), -1 when none;
 *   er_group_reaper_read: the next EXITED record into *m: 1, or 0 when
 *     none is waiting (or at EOF), -errno on error; the GONE record is
 *     taken in (er_group_cpu_usage, er_group_memory_peak) and skipped;
 *   er_group_reaper_pidfd: the reaper's pidfd (EPOLLIN), -1 on the path
 *     without pidfds (SIGCHLD, er_group_reaper_owns tells its pid);
 *   er_group_reaper_reap: reaps the reaper if it exited: 0 not yet, 1
 *     reaped (the tree is empty), 2 reaped after it died unexpectedly (its
 *     orphans were swept), -errno.  Read its records first. */
int er_group_reaper_fd(const struct er_group *g);
int er_group_reaper_read(struct er_group *g, struct er_reaper_msg *m);
int er_group_reaper_pidfd(const struct er_group *g);
int er_group_reaper_reap(struct er_group *g);
bool er_group_reaper_owns(const struct er_group *g, pid_t pid);

/* Sends sig to every process of the group (and SIGCONT after it when
 * `cont`, so stopped processes can act on it).  Returns the number of
 * processes signalled, or -errno. */
int er_group_signal(struct er_group *g, int sig, bool cont);
/* Kills the whole group with SIGKILL (cgroup.kill where available); returns
 * the number of processes that were alive, or -errno. */
int er_group_kill(struct er_group *g);
/* Lists up to n member pids into pids; returns how many there are (may be > n). */
int er_group_pids(struct er_group *g, pid_t *pids, size_t n);
/* Whether pid is a member of the group: 1, 0, or -errno.  Exact while
 * the tree changes (a daemon's parent exiting as it is asked about). */
int er_group_has(struct er_group *g, pid_t pid);
/* CPU time (user+system) of every process the group ever held, in
 * microseconds (cgroup2's cpu.stat; the reaper's GONE record: what it and
 * the processes it reaped had waited for).  -EOPNOTSUPP when unknown. */
int er_group_cpu_usage(struct er_group *g, uint64_t *ret_us);
/* Opens the cgroup.procs of each of the group's v1 cgroups into fds (at
 * most n); returns how many (the caller closes them), or -errno. */
int er_group_procs_fds(struct er_group *g, int *fds, size_t n);
/* Applies limits (0 = unset) before the spawn.  Returns 1 when every limit
 * asked for is enforced, 0 when one is not (why names each limit that is
 * not, with its own reason: "memory: R1; pids: R2"), or -errno when writing
 * one failed (why says so too). */
int er_group_set_limits(struct er_group *g, const struct er_limits *l, char *why, size_t len);
/* An fd that wakes on an OOM in the group's memory cgroup (owned by the
 * group), or -errno (-EOPNOTSUPP: no memory cgroup).  *ret_events says how
 * to watch it: EPOLLIN for v1's eventfd (read 8 bytes), EPOLLPRI for v2's
 * memory.events (kernfs: read it again on each event to rearm). */
int er_group_oom_fd(struct er_group *g, uint32_t *ret_events);
/* Counters of limit crossings: OOM kills, forks refused at pids.max. */
int er_group_oom_kills(struct er_group *g, uint64_t *ret);
int er_group_pids_refused(struct er_group *g, uint64_t *ret);
/* Peak memory: of the whole tree (v2 memory.peak, kernel 5.19+; v1
 * memory.max_usage_in_bytes), *ret_is_tree true; or for the reaper kind
 * the largest process's (ru_maxrss of all it reaped), *ret_is_tree false;
 * or -errno. */
int er_group_memory_peak(struct er_group *g, uint64_t *ret, bool *ret_is_tree);
/* True when no process is left in the group. */
bool er_group_empty(struct er_group *g);

/* The last-resort sweep: a scan of /proc for pids carrying `marker` in
 * their environment. */
int er_contain_scan_marker(const char *marker, pid_t *pids, size_t n);

#endif
