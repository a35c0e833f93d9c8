/* cgroupfs: the processes of a cgroup tree (cgroup.procs of a cgroup and
 * of every cgroup below it, ER_CGROUP_DEPTH_MAX deep), read through
 * directory fds without following symlinks.  A cgroup removed during the
 * walk holds no process; a threaded cgroup's processes are listed by the
 * domain cgroup above it. */
#ifndef ER_CGROUPFS_H
#define ER_CGROUPFS_H

#include <stddef.h>
#include <sys/types.h>

#define ER_CGROUP_DEPTH_MAX 32 /* sub-cgroups a service made itself */

/* A growable set of pids; free(v) when done. */
struct er_pidvec {
        pid_t *v;
        size_t n, cap;
};

/* Appends pid.  0 or -ENOMEM. */
int er_pidvec_push(struct er_pidvec *pv, pid_t pid);
/* Appends every pid of the cgroup at dir_fd and the cgroups below it (a
 * pid may appear twice: a process that moved during the walk).  0 or
 * -errno. */
int er_cgroup_read_tree(int dir_fd, struct er_pidvec *out);

#endif
