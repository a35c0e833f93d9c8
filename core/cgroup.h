/* cgroup: the primitives on cgroup directories that containment (contain.c)
 * and the clean-up after a crash (state.c) share, on v1 and v2 alike: every
 * call works on a directory fd, never follows a symlink, and reports
 * -errno.  The mechanisms built on them (where envrun's tree goes, which
 * controllers are enabled, limits) stay in contain.c. */
#ifndef ER_CGROUP_H
#define ER_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
