/* records: records.json in an instance's directory: what a clean-up after
 * a crash needs to find everything the instance started (containment, its
 * cgroups, its marker, the pid and start time of every process spawned). */
#ifndef ER_RECORDS_H
#define ER_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "instance/state.h"
#include "proc/contain.h"

/* --- records, for the clean-up after a crash --------------------------- */

struct er_record_proc {
        char *service;        /* "db", or "test" for the test command */
        pid_t pid;
        uint64_t start_time;  /* /proc/PID/stat field 22 (clock ticks since boot) */
};

struct er_records {
        pid_t supervisor;             /* the process that holds the lock */
        uint64_t supervisor_start;
        char *containment;            /* "cgroup2" | "session" */
        char *cgroup;                 /* the instance's cgroup2 directory, or NULL */
        char *v1[ER_V1_N];            /* its v1 memory/pids directories, or NULL */
        char *marker;                 /* "ENVRUN_MARKER=<instance>/": every process of the
                                       * instance carries it in its environment */
        struct er_record_proc *procs; /* main pids, in spawn order */
        size_t n_procs, cap_procs;
};

void er_records_init(struct er_records *r);
/* Fills r from an instance's containment (kind, cgroup dirs, marker) and
 * the calling process as supervisor.  0 or -ENOMEM. */
int er_records_from_contain(struct er_records *r, const struct er_contain *c);
/* Appends (or, for a service already there, replaces) a process, reading
 * its start time from /proc now.  0 or -errno. */
int er_records_set_proc(struct er_records *r, const char *service, pid_t pid);
void er_records_fini(struct er_records *r);
/* Writes records.json atomically (0600, O_NOFOLLOW, tmp + rename). */
int er_records_write(struct er_state *st, const struct er_records *r);
/* Reads it back; -ENOENT when there is none, -EINVAL when it is not ours. */
int er_records_read(struct er_state *st, struct er_records *r);

#endif
