/* cleanup: the clean-up after an instance that died without bringing its
 * environment down (SPEC §5.7), from what records.json says. */
#ifndef ER_CLEANUP_H
#define ER_CLEANUP_H

#include <stdbool.h>

#include "instance/records.h"
#include "instance/state.h"

/* What a clean-up did. */
struct er_reaped {
        unsigned killed;      /* processes that were alive and got SIGKILL */
        unsigned spared;      /* recorded pids now held by another process */
        bool had_records;     /* there was a dead instance to clean */
};

/* Cleans up after the dead instance whose lock the caller holds: SIGKILL to
 * the recorded cgroup tree (cgroup.kill, else every pid of its
 * cgroup.procs), waiting (event-driven: poll on cgroup.events, up to 5 s)
 * for it to empty and removing its directories (v1 ones too); SIGKILL to
 * every process carrying the marker; SIGKILL to every recorded pid whose
 * start time still matches (a mismatch is another process: spared).  The
 * recorded supervisor is killed too if it still runs under its start time
 * (it cannot: it would hold the lock).  Removes records.json and
 * control.sock.  0 or -errno; out is filled either way.  A clean-up that
 * could not finish (a tree still populated after 5 s, a cgroup that could
 * not be removed) keeps records.json, so that a later one tries again;
 * -EINVAL: records.json is not ours (nothing was killed), -ENOLCK: the
 * lock is not held.  Never signals pid 1 or the caller. */
int er_cleanup_reap(struct er_state *st, struct er_reaped *out);

/* Every <base>/<project>.exec.* directory whose lock is free: reaped and
 * removed (the exec instances of crashed `envrun exec` runs).  Adds to
 * out; returns how many directories were cleaned, or -errno (the first
 * error, when a directory could not be cleaned; the others still were). */
int er_cleanup_stale_execs(const char *base, const char *project, struct er_reaped *out);

#endif
