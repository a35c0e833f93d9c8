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
 * The mechanism and the reason for it are reported (`-v`, the report). */
#ifndef ER_CONTAIN_H
#define ER_CONTAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

enum er_contain_kind {
        ER_CONTAIN_CGROUP2,
        ER_CONTAIN_SESSION,
};

struct er_contain {
        enum er_contain_kind kind;
        char *instance;      /* unique per instance: "<project>.<pid>.<random>" */
        char *root;          /* cgroup2: the instance's directory; NULL for session */
        int root_fd;
        char reason[256];    /* "cgroup2 at /sys/fs/cgroup/unified (root)" or why not */
};

/* A service's group of processes. */
struct er_group {
        struct er_contain *c;      /* borrowed */
        char *name;                /* service name */
        char marker[300];          /* "ENVRUN_MARKER=<instance>/<service>" (both kinds set it) */
        int dir_fd;                /* cgroup2: the service's cgroup directory; else -1 */
        int events_fd;             /* cgroup2: cgroup.events, for EPOLLPRI; else -1 */
        pid_t sid;                 /* session: the session id (the main pid) */
};

/* Chooses the mechanism: cgroup2 when a writable cgroup2 hierarchy is found
 * and force_session is false, else session (setting the subreaper flag).
 * Returns 0 or -errno (only for allocation failures; the fallback is not an
 * error). */
int er_contain_init(struct er_contain *c, const char *project, bool force_session);
/* Removes the instance's cgroup directory (it must be empty). */
void er_contain_fini(struct er_contain *c);
const char *er_contain_name(const struct er_contain *c); /* "cgroup2" | "session" */

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
/* Kills the whole group with SIGKILL (cgroup.kill where available); returns
 * the number of processes that were alive, or -errno. */
int er_group_kill(struct er_group *g);
/* Lists up to n member pids into pids; returns how many there are (may be > n). */
int er_group_pids(struct er_group *g, pid_t *pids, size_t n);
/* CPU time (user+system) of every process the group ever held, in
 * microseconds (cgroup2's cpu.stat).  -EOPNOTSUPP for the session kind. */
int er_group_cpu_usage(struct er_group *g, uint64_t *ret_us);
/* True when no process is left in the group. */
bool er_group_empty(struct er_group *g);

/* Session fallback: a marker scan of /proc for pids carrying `marker` in
 * their environment (used by er_group_pids for that kind). */
int er_contain_scan_marker(const char *marker, pid_t *pids, size_t n);

#endif
