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
 *   - session: envrun is a child subreaper (PR_SET_CHILD_SUBREAPER), each
 *     service gets its own session, and every process of a service carries
 *     the marker ENVRUN_MARKER=<instance>/<service> in its environment;
 *     members are the processes of that session plus every process whose
 *     /proc/PID/environ holds the marker (a daemon that called setsid and
 *     double-forked keeps its environment).  The tree is empty when no
 *     member is left.
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
 * covers a tree; the owner reads cpu.stat (er_group_cpu_usage).  The v2
 * controllers of a pure cgroup2 host are not used yet: there, and under the
 * session mechanism, limits are reported as not enforced. */
#ifndef ER_CONTAIN_H
#define ER_CONTAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct er_limits; /* config.h */
struct er_pidvec; /* pids.h */

enum er_contain_kind {
        ER_CONTAIN_CGROUP2,
        ER_CONTAIN_SESSION,
};

enum er_v1 {
        ER_V1_MEMORY,
        ER_V1_PIDS,
        ER_V1_N,
};

struct er_scan; /* contain.c: a /proc snapshot shared during a hold */

struct er_contain {
        enum er_contain_kind kind;
        char *instance;      /* unique per instance: "<project>.<pid>.<random>" */
        char *root;          /* cgroup2: the instance's directory; NULL for session */
        int root_fd;
        char reason[256];    /* "cgroup2 at /sys/fs/cgroup/unified (root)" or why not */
        int v1_fd[ER_V1_N];  /* the instance's v1 directories, or -1 */
        char *v1_dir[ER_V1_N];
        char limits_why[256]; /* why a limit cannot be enforced; "" when all can */
        unsigned hold;        /* er_contain_hold depth */
        struct er_scan *scan; /* session: the snapshot of this hold, or NULL */
        struct er_group *deferred; /* session: groups with rescans left for the release */
};

/* A service's group of processes. */
struct er_group {
        struct er_contain *c;      /* borrowed */
        char *name;                /* service name */
        char marker[300];          /* "ENVRUN_MARKER=<instance>/<service>" (both kinds set it) */
        int dir_fd;                /* cgroup2: the service's cgroup directory; else -1 */
        int events_fd;             /* cgroup2: cgroup.events, for EPOLLPRI; else -1 */
        pid_t sid;                 /* session: the session id (the main pid) */
        int v1_fd[ER_V1_N];        /* the service's v1 cgroups, or -1 */
        int oom_fd;                /* eventfd signalled on an OOM in its memory cgroup, or -1 */
        /* A signal whose rescans wait for er_contain_release (session):
         * the pids it reached so far, or NULL when none waits. */
        struct er_pidvec *deferred_seen;
        int deferred_sig;
        bool deferred_cont;
        struct er_group *next_deferred;
};

/* Chooses the mechanism: cgroup2 when a writable cgroup2 hierarchy is found
 * and force_session is false, else session (setting the subreaper flag).
 * Returns 0 or -errno (only for allocation failures; the fallback is not an
 * error). */
int er_contain_init(struct er_contain *c, const char *project, bool force_session);
/* Removes the instance's cgroup directory (it must be empty). */
void er_contain_fini(struct er_contain *c);
const char *er_contain_name(const struct er_contain *c); /* "cgroup2" | "session" */

/* A hold lets the session kind share one scan of /proc among the groups,
 * instead of one scan per group and question.  The owner holds while it
 * handles one batch of events (the loop's batch hooks), all of which
 * happened before the hold began:
 *   - er_group_empty, and the first pass of er_group_signal_batched, are
 *     answered from one snapshot of /proc taken at the first need after the
 *     hold began (and again after a spawn, er_group_started, or a reap,
 *     er_contain_reaped).  A process forked after it has a parent in it;
 *     one that exited after it still counts until envrun reaps something
 *     (every group's last process to exit is envrun's child or orphan:
 *     envrun is the subreaper).
 *   - the rescans of er_group_signal_batched for processes forked while it
 *     signalled run at er_contain_release, for all groups at once, each on
 *     a fresh scan taken after every signal of the batch.
 * Holds nest; without one, every call scans /proc itself.  cgroup2 groups
 * read their cgroups and are not affected. */
void er_contain_hold(struct er_contain *c);
void er_contain_release(struct er_contain *c);
/* Every reap by the owner is announced, and drops the snapshot: the next
 * question looks again.  The snapshot may show a process that died since,
 * or, listing /proc while a member forked and exited, miss the child and
 * show the parent as a zombie: the reap of that zombie must bring a fresh
 * look, as it does without a hold.  Between the reaps of one burst the
 * questions cost nothing (er_group_empty answers "not yet" while a zombie
 * is pending), so a burst still costs one scan. */
void er_contain_reaped(struct er_contain *c);

/* Creates the group of a service (its cgroup, for cgroup2). 0 or -errno with err. */
int er_group_init(struct er_group *g, struct er_contain *c, const char *service,
                  struct er_err *err);
/* Removes the cgroup (after the tree is empty) and closes fds. */
void er_group_fini(struct er_group *g);

/* The spawn side: the cgroup directory fd for CLONE_INTO_CGROUP (-1 for
 * session).  After spawn, er_group_started records the main pid (and, when
 * the child could not be created inside the cgroup, moves it there). */
int er_group_cgroup_fd(const struct er_group *g);
int er_group_started(struct er_group *g, pid_t pid, bool in_cgroup);

/* Sends sig to every process of the group (and SIGCONT after it when
 * `cont`, so stopped processes can act on it).  Returns the number of
 * processes signalled, or -errno. */
int er_group_signal(struct er_group *g, int sig, bool cont);
/* The same, for a caller that needs no count of the rescans: during a hold
 * the rescans wait for er_contain_release (see above), and the number
 * returned is that of the first pass only. */
int er_group_signal_batched(struct er_group *g, int sig, bool cont);
/* Kills the whole group with SIGKILL (cgroup.kill where available); returns
 * the number of processes that were alive, or -errno. */
int er_group_kill(struct er_group *g);
/* Lists up to n member pids into pids; returns how many there are (may be > n). */
int er_group_pids(struct er_group *g, pid_t *pids, size_t n);
/* CPU time (user+system) of every process the group ever held, in
 * microseconds (cgroup2's cpu.stat).  -EOPNOTSUPP for the session kind. */
int er_group_cpu_usage(struct er_group *g, uint64_t *ret_us);
/* Opens the cgroup.procs of each of the group's v1 cgroups into fds (at
 * most n); returns how many (the caller closes them), or -errno. */
int er_group_procs_fds(struct er_group *g, int *fds, size_t n);
/* Applies limits (0 = unset) before the spawn.  Returns 1 when every limit
 * asked for is enforced, 0 when one is not (why says which and why), or
 * -errno when writing one failed (why says so too). */
int er_group_set_limits(struct er_group *g, const struct er_limits *l, char *why, size_t len);
/* An eventfd that becomes readable on an OOM in the group's memory cgroup
 * (owned by the group), or -errno (-EOPNOTSUPP: no memory cgroup). */
int er_group_oom_fd(struct er_group *g);
/* Counters of limit crossings: OOM kills, forks refused at pids.max. */
int er_group_oom_kills(struct er_group *g, uint64_t *ret);
int er_group_pids_refused(struct er_group *g, uint64_t *ret);
/* Peak memory of the whole tree (v1 memory.max_usage_in_bytes), or -errno. */
int er_group_memory_peak(struct er_group *g, uint64_t *ret);
/* True when no process is left in the group. */
bool er_group_empty(struct er_group *g);

/* Session fallback: a marker scan of /proc for pids carrying `marker` in
 * their environment (used by er_group_pids for that kind). */
int er_contain_scan_marker(const char *marker, pid_t *pids, size_t n);

#endif
