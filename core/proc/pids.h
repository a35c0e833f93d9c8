/* pids: finding processes, for containment (contain.c) and for the
 * clean-up after a dead instance (state.c): the processes of a cgroup tree
 * (cgroup.procs of a cgroup and of every cgroup below it,
 * ER_CGROUP_DEPTH_MAX deep, read through directory fds without following
 * symlinks: a cgroup removed during the walk holds no process, a threaded
 * cgroup's processes are listed by the domain cgroup above it), and the
 * marker in a process's environment. */
#ifndef ER_PIDS_H
#define ER_PIDS_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ER_CGROUP_DEPTH_MAX 32 /* sub-cgroups a service made itself */

/* A growable set of pids; free(v) when done. */
struct er_pidvec {
        pid_t *v;
        size_t n, cap;
};

/* Appends pid.  0 or -ENOMEM. */
int er_pids_push(struct er_pidvec *pv, pid_t pid);
/* Makes room for `room` more pids.  0 or -ENOMEM. */
int er_pids_reserve(struct er_pidvec *pv, size_t room);

/* The parent of pid (/proc/PID/stat), or -errno (-ESRCH: gone). */
pid_t er_pids_parent(pid_t pid);
/* The pid a /proc entry's name stands for, or 0 ("self", "sys", ...). */
pid_t er_pids_entry_pid(const char *name);
/* Calls fn(ud, proc_fd, name, pid) for every process listed in /proc
 * (proc_fd: /proc opened, name: the entry, as er_pids_environ_* take
 * them), until fn returns nonzero, which is returned.  0, or -errno when
 * /proc cannot be read. */
int er_pids_each(int (*fn)(void *ud, int proc_fd, const char *name, pid_t pid), void *ud);

#define ER_ENVIRON_MAX (256u * 1024u) /* how much of /proc/PID/environ is searched */
#define ER_ENVIRON_ENTRY_MAX 512u        /* the longest entry handed out (markers are shorter) */

/* Calls fn(ud, entry, len) for every entry of /proc/<pid>/environ (pid: the
 * /proc entry's name, opened at proc_fd) that starts with prefix and is
 * shorter than ER_ENVIRON_ENTRY_MAX, in order; fn returns nonzero to stop.
 * Returns how many entries were handed to fn, or -1 when the environment
 * is unreadable (gone, not ours, empty: a process in the middle of execve
 * has no environment for a moment). */
int er_pids_environ_each(int proc_fd, const char *pid, const char *prefix,
                         int (*fn)(void *ud, const char *entry, size_t len), void *ud);

/* Whether /proc/<pid>/environ (pid: the /proc entry's name, opened at
 * proc_fd) has an entry equal to `entry`, or, with `prefix`, one that
 * starts with it (entry shorter than ER_ENVIRON_ENTRY_MAX).  1 yes, 0 no,
 * -1 unreadable (gone, not ours, empty) or entry too long. */
int er_pids_environ_has(int proc_fd, const char *pid, const char *entry, bool prefix);

/* The descendants of root, breadth first, from the children files of each
 * thread (/proc/PID/task/TID/children): up to cap pids into buf.  Returns
 * how many were found, which is more than cap when some did not fit (the
 * lost ones are not listed, nor are their descendants).  The kernel builds
 * each children file from a live list: a tree that forks or exits meanwhile
 * may be listed partly, so callers that must reach everyone list again
 * until nothing new appears (the reaper: until it has no child left).
 * Async-signal-safe (no malloc, no stdio): the reaper calls it. */
size_t er_pids_tree(pid_t root, pid_t *buf, size_t cap);
/* The same from every /proc/PID/stat's parent, in passes until one adds
 * nobody: what er_pids_tree falls back to on kernels without children
 * files (CONFIG_PROC_CHILDREN, which some hardened and sandboxed kernels
 * lack).  Slower: one read per process on the host per pass. */
size_t er_pids_tree_scan(pid_t root, pid_t *buf, size_t cap);
/* Every descendant of root appended to out (er_pids_tree into a buffer
 * grown until the whole listing fits).  0 or -ENOMEM. */
int er_pids_tree_append(pid_t root, struct er_pidvec *out);
/* The children of pid (every thread's) into out, replacing what it held.
 * 0 or -ENOMEM. */
int er_pids_children(pid_t pid, struct er_pidvec *out);

/* State (field 3 of /proc/PID/stat: 'R', 'S', 'Z'...) and start time
 * (field 22, clock ticks since boot) of pid; either pointer may be NULL.
 * 0 or -errno (-ESRCH: gone). */
int er_pids_stat(pid_t pid, char *ret_state, uint64_t *ret_start);
/* The start time alone, to tell a pid from a later process that reused
 * it.  0 or -errno (-ESRCH: gone). */
int er_pids_start_time(pid_t pid, uint64_t *ret);

#endif
