/* state: an instance's private state directory (SPEC §7) and the clean-up
 * of an instance that died without bringing its environment down (§5.7).
 *
 * Layout.  The user's base is --state-dir, else $XDG_RUNTIME_DIR/envrun
 * (absolute only, and not when a service runs as another user), else, as
 * root, /run/envrun when /run is a tmpfs, else /dev/shm/envrun-UID when
 * /dev/shm is a tmpfs, else /tmp/envrun-UID: the runtime files are small
 * and many, and a tmpfs keeps them off the disk's journal.  The base holds
 * ports/ and the instances: a detached (`up -d`) instance lives in
 * <base>/<project>/, an `exec` instance in <base>/<project>.exec.XXXXXX/.
 * Each holds:
 *   lock           an exclusive lock (fcntl F_OFD_SETLK: an open file
 *                  description lock, inherited across fork like flock, and
 *                  queried without being taken, F_OFD_GETLK) held for the
 *                  instance's whole life: a held
 *                  lock is a live instance, which is never touched; a free
 *                  one is dead, and whoever takes it may clean up after it
 *   records.json   what a clean-up needs: containment, the instance's
 *                  cgroups, its marker, the pid and start time of every
 *                  process it spawned (rewritten atomically: tmp + rename)
 *   control.sock   the supervisor's control socket (§8; detached only)
 *   supervisor.log the supervisor's own stdout/stderr (detached only)
 *   logs/          one log per service
 *   tmp/           ENVRUN_STATE_DIR, removed at down unless --keep
 * except that logs/ and tmp/ stay on a disk file system (databases live in
 * tmp/, logs can be large): with a default base (not --state-dir) on a
 * tmpfs they live in the data directory
 * /var/tmp/envrun-UID/<hash of the base's path>-<instance name>/, removed
 * with the instance (down --keep keeps its tmp/); otherwise in the
 * instance directory.  When a service runs as another user, the
 * directories on the way to tmp/ become 0711 and tmp/ 1777; logs/ and the
 * runtime files stay private.
 * Directories are created 0700 and their owner checked (lstat: a symlink or
 * another user's directory is refused; the data directory is opened with
 * O_NOFOLLOW and checked by fstat); files are created 0600 with O_NOFOLLOW
 * through the directory fd. */
#ifndef ER_STATE_H
#define ER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc/contain.h"

/* The user's base directory into buf: override (--state-dir) if given,
 * else $XDG_RUNTIME_DIR/envrun unless for_others (a service runs as
 * another user, who cannot enter /run/user/UID), else /tmp/envrun-UID.
 * Created 0700 when missing and checked.  0 or -errno (-EPERM: it exists
 * but is not a directory of ours; -ENAMETOOLONG). */
int er_state_base(const char *override, bool for_others, char *buf, size_t len);

/* mkdir(path, mode) unless it exists, then lstat: 0 when it is a directory
 * owned by geteuid(), -EPERM when it is anything else, or -errno. */
int er_state_mkdir(const char *path, mode_t mode);

struct er_state {
        char *dir;    /* absolute path of the instance directory */
        int dir_fd;   /* O_DIRECTORY|O_NOFOLLOW, or -1 */
        int lock_fd;  /* the lock file, locked once er_state_lock returned 0; or -1 */
        /* Where logs/ and tmp/ live when the instance directory is on a
         * tmpfs (er_state_data_path), once made or found; else NULL and
         * -1: they are in dir. */
        char *data;
        int data_fd;
};

void er_state_init(struct er_state *st);
/* Opens dir (creating it 0700 when `create`), checking its owner.
 * 0 or -errno (-ENOENT when it does not exist and !create). */
int er_state_open(struct er_state *st, const char *dir, bool create);
/* Creates a new unique <base>/<project>.exec.XXXXXX, opens and locks it.
 * (It is made as .<project>.exec.XXXXXX and renamed once locked: a
 * directory under the exec name is never seen unlocked while it starts.) */
int er_state_create_unique(struct er_state *st, const char *base, const char *project);
/* Takes the instance's lock without waiting.  0, or -EWOULDBLOCK when a
 * live instance holds it, or -errno.  (er_state_probe only asks, so it
 * never makes this fail.) */
int er_state_lock(struct er_state *st);
/* Whether an instance directory's lock is held by a live instance, without
 * keeping anything open: 1 held, 0 free (a dead instance, or a directory
 * never locked), -ENOENT no such directory, or -errno. */
int er_state_probe(const char *dir);
/* Makes logs/ and tmp/ (0700) if missing: in the instance directory, or,
 * with data_on_disk (a default base, not --state-dir) when that is on a
 * tmpfs, in its data directory on disk (made 0700 and owner-checked,
 * opened without following a symlink). */
int er_state_make_dirs(struct er_state *st, bool data_on_disk);
/* Where an instance directory's logs/ and tmp/ would live apart from it.
 * Runtime files (the lock, records, the control socket) are small and
 * many: a default base on a tmpfs keeps them off the disk's journal.  Logs
 * and ENVRUN_STATE_DIR stay on a disk file system (databases live there; a
 * cache restore clones into it): for an instance directory on a tmpfs,
 * /var/tmp/envrun-UID/<base's hash>-<name> (the hash keeps two bases'
 * instances of one name apart); else dir itself.  An instance has its data
 * there when that directory exists (er_state_make_dirs made it), which a
 * later clean-up finds from the instance directory's path alone.
 * 0 or -errno (-ENAMETOOLONG). */
int er_state_data_path(const char *dir, char *buf, size_t len);
/* Removes the data directories of base's instances whose instance
 * directory is gone: a tmpfs base wiped by a reboot or a logout leaves
 * them on disk.  (A data directory never outlives its instance otherwise:
 * it is made after it and removed before it, and a kept tmp/ keeps the
 * instance directory.)  0 or the first -errno. */
int er_state_sweep_data(const char *base);
/* Whether the instance has a logs/ directory (a fresh one has not). */
bool er_state_has_logs(struct er_state *st);
/* The directory holding logs/ and tmp/, and its descriptor. */
const char *er_state_data_dir(const struct er_state *st);
int er_state_data_fd(const struct er_state *st);
/* Lets a service running as another user into tmp/: the directories on
 * the way traversable (not listable), tmp/ sticky and world-writable like
 * /tmp; logs/ and the records stay private.  0 or -errno. */
int er_state_share_tmp(struct er_state *st, const char *base);
/* Removes the directory's contents and the directory itself; keep_tmp
 * leaves tmp/ (and the directory holding it).  Call with the lock held;
 * the lock file goes last.  0 or -errno (what could not be removed stays). */
int er_state_remove(struct er_state *st, bool keep_tmp);
/* Closes the fds (releasing the lock) and frees. */
void er_state_fini(struct er_state *st);
/* Leaves the lock to the process's exit: the descriptor stays open and
 * st forgets it, so the kernel releases the lock only when the process's
 * descriptors close in its exit (after its memory is gone), never before.
 * A waiter for the lock (down) then returns only once the holder is gone,
 * including any work a process runs in its exit (a sanitizer's or
 * valgrind's leak check).  Call before er_state_fini. */
void er_state_hold_lock_to_exit(struct er_state *st);

#endif
