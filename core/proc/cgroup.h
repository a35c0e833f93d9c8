/* cgroup: the primitives on cgroup directories that containment (contain.c)
 * and the clean-up after a crash (state.c) share, on v1 and v2 alike: every
 * call works on a directory fd, never follows a symlink, and reports
 * -errno.  The mechanisms built on them (where envrun's tree goes, which
 * controllers are enabled, limits) stay in contain.c. */
#ifndef ER_CGROUP_H
#define ER_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "proc/pids.h"

/* Writes data to the file `name` of the cgroup at `at` in one write (a
 * cgroup file takes one value per write).  0 or -errno (-EIO: cut short). */
int er_cgroup_write(int at, const char *name, const char *data);
/* The value of `key` in a "key value" file of the cgroup at `at` (key NULL:
 * a file holding one number, "max" reads as UINT64_MAX).  0, -ENODATA when
 * the key is not there, or -errno. */
int er_cgroup_read_key(int at, const char *name, const char *key, uint64_t *ret);
/* v2's cgroup.events, read at offset 0 (each read re-arms its EPOLLPRI):
 * 1 while a live process is in the subtree, 0 once none is (zombies have
 * left it), or -errno. */
int er_cgroup_populated(int events_fd);
/* v2's cgroup.kill (Linux 5.14+): SIGKILL to the whole subtree at once,
 * forks racing with it included.  0, or -errno (-ENOENT: an older kernel;
 * the caller kills pid by pid). */
int er_cgroup_kill(int dir_fd);
/* Removes the cgroup `name` at `at`, the empty cgroups below it first (a
 * service may make its own), at most ER_CGROUP_DEPTH_MAX deep.  0 (gone
 * already counts), or -errno (EBUSY: a process is still in it). */
int er_cgroup_rmdir(int at, const char *name);

/* Where the hierarchies are (/proc/self/mountinfo): the first cgroup2
 * mount, its mount point and the cgroup it shows (*ret_root "/" unless a
 * subtree was bind-mounted; both malloc'd): 0, -ENOENT, or -errno.  The
 * mount point of the whole v1 hierarchy holding `controller`, malloc'd, or
 * NULL.  envrun's own cgroup2 directory through that mount, malloc'd: 0,
 * -ENOENT (no 0:: line, or outside the mount), or -errno. */
int er_cgroup_find_v2(char **ret_mnt, char **ret_root);
char *er_cgroup_find_v1(const char *controller);
int er_cgroup_own_dir(const char *mnt, const char *mnt_root, char **ret);

/* Controllers of the cgroup at the path dir: whether `name` is a word of
 * its file `file` ("cgroup.controllers": available; "cgroup.subtree_control":
 * enabled for its children); er_cgroup_enable writes "+name" into its
 * cgroup.subtree_control (0 or -errno: EBUSY where the cgroup holds
 * processes, EROFS, ENOENT where the controller is bound to v1). */
bool er_cgroup_listed(const char *dir, const char *file, const char *name);
bool er_cgroup_has_controller(const char *dir, const char *name);
int er_cgroup_enable(const char *dir, const char *name);

/* Appends every pid of the cgroup at dir_fd and the cgroups below it (a
 * pid may appear twice: a process that moved during the walk).  0 or
 * -errno. */
int er_cgroup_read_tree(int dir_fd, struct er_pidvec *out);

#endif
