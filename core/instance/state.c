/* state: an instance's state directory: where it lives, its lock, its
 * creation and removal (SPEC §7).  See state.h for the layout. */
#include "instance/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "instance/rmtree.h"
#include "instance/state_priv.h"

#define CREATE_TRIES 16

/* ---- directories and the base ------------------------------------------- */

int er_state_mkdir(const char *path, mode_t mode)
{
        struct stat st;

        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return -errno;
        if (lstat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
                return -EPERM;
        return 0;
}

static bool on_tmpfs(const char *path)
{
        struct statfs sf;
        return statfs(path, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

int er_state_base(const char *override, bool for_others, char *buf, size_t len)
{
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        int n;

        if (override && !*override)
                return -EINVAL;
        if (override)
                n = snprintf(buf, len, "%s", override);
        /* XDG_RUNTIME_DIR must be absolute (the XDG spec): anything else is ignored. */
        else if (xdg && xdg[0] == '/' && !for_others)
                n = snprintf(buf, len, "%s/envrun", xdg);
        /* A tmpfs where there is one: runtime files off the disk's journal
         * (logs and tmp/ go to disk anyway: er_state_data_path). */
        else if (geteuid() == 0 && on_tmpfs("/run"))
                n = snprintf(buf, len, "/run/envrun");
        else if (on_tmpfs("/dev/shm"))
                n = snprintf(buf, len, "/dev/shm/envrun-%u", (unsigned)geteuid());
        else
                n = snprintf(buf, len, "/tmp/envrun-%u", (unsigned)geteuid());
        if (n < 0 || (size_t)n >= len)
                return -ENAMETOOLONG;
        return er_state_mkdir(buf, 0700);
}

/* ---- opening and locking ------------------------------------------------ */

void er_state_init(struct er_state *st)
{
        st->dir = NULL;
        st->dir_fd = -1;
        st->data = NULL;
        st->data_fd = -1;
        st->lock_fd = -1;
}

void er_state_fini(struct er_state *st)
{
        if (!st)
                return;
        er_close(&st->lock_fd);
        er_close(&st->dir_fd);
        er_close(&st->data_fd);
        free(st->dir);
        free(st->data);
        st->dir = NULL;
        st->data = NULL;
}

void er_state_hold_lock_to_exit(struct er_state *st)
{
        st->lock_fd = -1; /* not closed: the exit closes it */
}

/* dir as an absolute path (malloc'd), or NULL. */
static char *absolute(const char *dir)
{
        char cwd[PATH_MAX], *s;

        if (dir[0] == '/')
                return er_strdup(dir);
        if (!getcwd(cwd, sizeof(cwd)))
                return NULL;
        if (asprintf(&s, "%s/%s", cwd, dir) < 0)
                return NULL;
        return s;
}

int er_state_open(struct er_state *st, const char *dir, bool create)
{
        struct stat sb;
        int r;

        if (create) {
                r = er_state_mkdir(dir, 0700);
                if (r < 0)
                        return r;
        }
        st->dir = absolute(dir);
        if (!st->dir)
                return errno == ENOMEM || !errno ? -ENOMEM : -errno;
        st->dir_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (st->dir_fd < 0) {
                /* O_NOFOLLOW on a symlink: ELOOP, or ENOTDIR with O_DIRECTORY. */
                r = errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
                goto fail;
        }
        /* Checked on the open directory itself: no window to swap it. */
        if (fstat(st->dir_fd, &sb) < 0) {
                r = -errno;
                goto fail;
        }
        if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid()) {
                r = -EPERM;
                goto fail;
        }
        return 0;
fail:
        er_close(&st->dir_fd);
        free(st->dir);
        st->dir = NULL;
        return r;
}

/* Whether fd is still the file `name` in dir_fd: the previous holder of the
 * lock may have removed the directory's lock file (er_state_remove) between
 * our open and our lock, and a lock on an unlinked file guards nothing. */
static int still_linked(int dir_fd, int fd, const char *name)
{
        struct stat a, b;

        if (fstat(fd, &a) < 0)
                return -errno;
        if (fstatat(dir_fd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_nlink > 0;
}

/* The instance lock is an open file description lock on the whole file
 * (fcntl F_OFD_SETLK): like flock it belongs to the open file description,
 * so it is inherited across fork (the `up -d` supervisor keeps the lock its
 * parent took) and released when the last descriptor closes, with the
 * process that held it.  Unlike flock it can be asked about without taking
 * it (F_OFD_GETLK), so a probe never stands in a starting instance's way
 * and there is nothing to wait out. */
static int lock_exclusive(int fd)
{
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

        while (fcntl(fd, F_OFD_SETLK, &fl) < 0)
                if (errno != EINTR)
                        return errno == EAGAIN || errno == EACCES ? -EWOULDBLOCK : -errno;
        return 0;
}

int er_state_lock(struct er_state *st)
{
        struct stat sb;
        int fd, r;

        if (st->dir_fd < 0)
                return -EBADF;
        if (st->lock_fd >= 0)
                return 0;
        for (int i = 0; i < CREATE_TRIES; i++) {
                fd = openat(st->dir_fd, LOCK_NAME,
                            O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                if (fstat(fd, &sb) < 0) {
                        r = -errno;
                        close(fd);
                        return r;
                }
                if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid()) {
                        close(fd);
                        return -EPERM;
                }
                r = lock_exclusive(fd);
                if (r == 0)
                        r = still_linked(st->dir_fd, fd, LOCK_NAME);
                if (r > 0) {
                        st->lock_fd = fd;
                        return 0;
                }
                close(fd);
                if (r < 0)
                        return r;
                /* Unlinked under us: try the directory's lock file again
                 * (gone with the directory: ENOENT above). */
        }
        return -EWOULDBLOCK;
}

int er_state_probe(const char *dir)
{
        int dfd, fd, r;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        /* O_NONBLOCK: a FIFO planted as the lock must not hang the open. */
        fd = openat(dfd, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        r = fd < 0 ? -errno : 0;
        close(dfd);
        if (r == -ENOENT)
                return 0; /* never locked */
        if (r == -ELOOP)
                return -EPERM; /* a symlink */
        if (r < 0)
                return r;
        struct stat sb;
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid()) {
                close(fd);
                return -EPERM; /* not a lock file of ours: refused, never waited on */
        }
        /* Asked, not taken: only an instance's exclusive lock counts (a
         * `down` waiting for an instance to end holds a read lock). */
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
                r = -errno;
        else
                r = fl.l_type == F_WRLCK;
        close(fd);
        return r;
}

/* Renames a directory to a name that must not exist yet. */
static int rename_new(const char *from, const char *to)
{
        struct stat sb;

        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        /* A file system without RENAME_NOREPLACE: look first (the name is
         * random, a collision in between is not a practical concern). */
        if (lstat(to, &sb) == 0)
                return -EEXIST;
        return rename(from, to) < 0 ? -errno : 0;
}

/* <base>/.<project>.exec.XXXXXX is made and locked first, then renamed to
 * <base>/<project>.exec.XXXXXX: a directory of that name is locked from the
 * moment it exists, so er_cleanup_stale_execs never takes a starting
 * instance for a dead one. */
int er_state_create_unique(struct er_state *st, const char *base, const char *project)
{
        char *tmp = NULL, *final = NULL;
        int r = -EEXIST;

        if (!*project || strchr(project, '/'))
                return -EINVAL;
        for (int i = 0; i < CREATE_TRIES && r == -EEXIST; i++) {
                free(tmp);
                free(final);
                final = NULL;
                if (asprintf(&tmp, "%s/.%s" EXEC_INFIX "XXXXXX", base, project) < 0) {
                        tmp = NULL;
                        return -ENOMEM;
                }
                if (!mkdtemp(tmp)) {
                        r = -errno;
                        break;
                }
                /* The same name without the dot. */
                if (asprintf(&final, "%s/%s", base, tmp + strlen(base) + 2) < 0) {
                        final = NULL;
                        r = -ENOMEM;
                } else {
                        r = er_state_open(st, tmp, false);
                }
                if (r == 0)
                        r = er_state_lock(st);
                if (r == 0)
                        r = rename_new(tmp, final);
                if (r == 0) {
                        char *abs = absolute(final); /* base may be relative */
                        if (abs) {
                                free(st->dir);
                                st->dir = abs;
                                break;
                        }
                        /* Renamed, but no memory to say where: undo it all. */
                        r = -ENOMEM;
                        unlinkat(st->dir_fd, LOCK_NAME, 0);
                        rmdir(final);
                        er_state_fini(st);
                        break;
                }
                if (st->dir_fd >= 0)
                        unlinkat(st->dir_fd, LOCK_NAME, 0);
                rmdir(tmp);
                er_state_fini(st);
        }
        free(tmp);
        free(final);
        return r;
}

/* ---- the data directory ------------------------------------------------ */

#define DATA_TOP "/var/tmp"

/* path's directory into buf ("" when it has none). */
static void parent_of(const char *path, char *buf, size_t len)
{
        const char *slash = strrchr(path, '/');
        snprintf(buf, len, "%.*s", slash ? (int)(slash - path) : 0, path);
}

/* The name prefix of base's data directories,
 * DATA_TOP/envrun-UID/<hash>-: 0, or 1 when base is not on a tmpfs (no
 * data directory apart), or -ENAMETOOLONG. */
static int data_prefix(const char *base, char *buf, size_t len)
{
        char real[PATH_MAX];
        uint32_t h = 2166136261u; /* FNV-1a */
        const char *b;
        int n;

        if (!*base || !on_tmpfs(base))
                return 1;
        /* One name however the base is spelt ("//", a trailing slash, a
         * symlink on the way). */
        b = realpath(base, real) ? real : base;
        for (const char *p = b; *p; p++)
                h = (h ^ (unsigned char)*p) * 16777619u;
        n = snprintf(buf, len, DATA_TOP "/envrun-%u/%08x-", (unsigned)geteuid(), h);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int er_state_data_path(const char *dir, char *buf, size_t len)
{
        char base[PATH_MAX], pre[PATH_MAX];
        int n, r;

        parent_of(dir, base, sizeof(base));
        if ((r = data_prefix(base, pre, sizeof(pre))) < 0)
                return r;
        if (r)
                n = snprintf(buf, len, "%s", dir);
        else
                n = snprintf(buf, len, "%s%s", pre, strrchr(dir, '/') + 1);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

const char *er_state_data_dir(const struct er_state *st)
{
        return st->data ? st->data : st->dir;
}

int er_state_data_fd(const struct er_state *st)
{
        return st->data_fd >= 0 ? st->data_fd : st->dir_fd;
}

/* DATA_TOP/envrun-UID, opened without following a symlink and checked to
 * be a directory of ours and no one else's to write (it sits in a
 * world-writable /var/tmp, where anyone may have made it first); made 0700
 * with create.  An fd, or -errno (-EPERM: it is not ours). */
static int data_parent(const char *parent, bool create)
{
        struct stat sb;
        int fd;

        if (create && mkdir(parent, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
        if (fstat(fd, &sb) < 0 || sb.st_uid != geteuid() || (sb.st_mode & 022)) {
                close(fd);
                return -EPERM;
        }
        return fd;
}

/* Opens the data directory at path, checked like the instance's own: a
 * directory of ours, reached through a checked parent, without a symlink.
 * create: made (0700) when missing.  0, 1 when the parent is not ours, or
 * -errno. */
static int data_open(struct er_state *st, const char *path, bool create)
{
        const char *slash = strrchr(path, '/');
        char parent[PATH_MAX];
        struct stat sb;
        int pfd, fd;

        parent_of(path, parent, sizeof(parent));
        /* A parent that is not ours (made first by someone else): the data
         * stay in the instance directory, now and when looked for later. */
        if ((pfd = data_parent(parent, create)) < 0)
                return pfd == -EPERM ? 1 : pfd;
        if (create && mkdirat(pfd, slash + 1, 0700) < 0 && errno != EEXIST) {
                fd = -errno;
                close(pfd);
                return fd;
        }
        fd = openat(pfd, slash + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(pfd);
        if (fd < 0)
                return errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
        if (fstat(fd, &sb) < 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid()) {
                close(fd);
                return -EPERM;
        }
        if (!(st->data = er_strdup(path))) {
                close(fd);
                return -ENOMEM;
        }
        st->data_fd = fd;
        return 0;
}

/* The data directory of st, when it has one of its own: opened (and made
 * with create).  0 also when the data live in the instance directory, or
 * (without create) when the data directory does not exist. */
static int data_find(struct er_state *st, bool create)
{
        char path[PATH_MAX];
        int r;

        if (st->data_fd >= 0)
                return 0;
        if ((r = er_state_data_path(st->dir, path, sizeof(path))) < 0)
                return r;
        if (!strcmp(path, st->dir))
                return 0;
        r = data_open(st, path, create);
        return (r == -ENOENT && !create) || r == 1 ? 0 : r;
}

int er_state_sweep_data(const char *base)
{
        char pre[PATH_MAX], parent[PATH_MAX];
        const char *name;
        struct dirent *de;
        struct stat sb;
        size_t plen;
        DIR *d;
        int pfd, r = 0;

        /* base's instances' data: "<hash>-<instance>" (no split: none) */
        if (data_prefix(base, pre, sizeof(pre)) != 0)
                return 0;
        parent_of(pre, parent, sizeof(parent));
        name = strrchr(pre, '/') + 1;
        plen = strlen(name);
        if ((pfd = data_parent(parent, false)) < 0)
                return pfd == -ENOENT || pfd == -EPERM ? 0 : pfd;
        if (!(d = fdopendir(pfd))) {
                close(pfd);
                return -errno;
        }
        while ((de = readdir(d))) {
                char inst[PATH_MAX];
                int fd;
                if (strncmp(de->d_name, name, plen) != 0)
                        continue;
                snprintf(inst, sizeof(inst), "%s/%s", base, de->d_name + plen);
                if (lstat(inst, &sb) == 0 || errno != ENOENT)
                        continue; /* its instance is there (or cannot be told) */
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        continue;
                r = keep_first(r, er_rmtree_fd(fd, NULL, NULL));
                if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                        r = keep_first(r, -errno);
        }
        closedir(d);
        return r;
}

bool er_state_has_logs(struct er_state *st)
{
        return data_find(st, false) == 0 &&
               faccessat(er_state_data_fd(st), "logs", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int er_state_share_tmp(struct er_state *st, const char *base)
{
        char tmp[PATH_MAX], up[PATH_MAX];
        const char *data = er_state_data_dir(st);

        snprintf(tmp, sizeof(tmp), "%s/tmp", data);
        if (st->data) {
                parent_of(st->data, up, sizeof(up));
                base = up;
        }
        if (chmod(base, 0711) < 0 || chmod(data, 0711) < 0 || chmod(tmp, 01777) < 0)
                return -errno;
        return 0;
}

static int mkdir_at(int dir_fd, const char *name)
{
        struct stat sb;

        if (mkdirat(dir_fd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid())
                return -EPERM;
        return 0;
}

int er_state_make_dirs(struct er_state *st, bool data_on_disk)
{
        int r;

        if (st->dir_fd < 0)
                return -EBADF;
        if ((r = data_find(st, data_on_disk)) < 0)
                return r;
        r = mkdir_at(er_state_data_fd(st), "logs");
        return r < 0 ? r : mkdir_at(er_state_data_fd(st), "tmp");
}


int er_state_remove(struct er_state *st, bool keep_tmp)
{
        struct stat sb;
        bool kept = false;
        int fd, r = 0;

        if (st->dir_fd < 0 || !st->dir)
                return -EBADF;
        /* The data directory first (logs/, tmp/ unless kept).  What cannot
         * be removed there (a read-only tree a service left) is said, and
         * the instance goes anyway: a lock left behind would make it look
         * stale forever.  A kept tmp/ keeps the instance directory too (as
         * when they live together), so that no sweep takes it for an
         * orphan (er_state_sweep_data). */
        if (data_find(st, false) == 0 && st->data) {
                fd = openat(st->data_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                r = fd < 0 ? -errno : er_rmtree_fd(fd, NULL, keep_tmp ? "tmp" : NULL);
                kept = keep_tmp && fstatat(st->data_fd, "tmp", &sb, AT_SYMLINK_NOFOLLOW) == 0;
                if (r == 0 && !kept && rmdir(st->data) < 0 && errno != ENOENT)
                        r = -errno;
        }
        /* readdir on a fresh fd: dir_fd's own offset stays untouched.  When
         * it cannot be opened nothing is removed, the lock file least. */
        fd = openat(st->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return keep_first(r, -errno);
        r = keep_first(r, er_rmtree_fd(fd, LOCK_NAME, keep_tmp ? "tmp" : NULL));
        /* The lock file last: while it is there, the directory is ours. */
        if (unlinkat(st->dir_fd, LOCK_NAME, 0) < 0 && errno != ENOENT)
                r = keep_first(r, -errno);
        if (kept || (keep_tmp && fstatat(st->dir_fd, "tmp", &sb, AT_SYMLINK_NOFOLLOW) == 0))
                return r;
        if (rmdir(st->dir) < 0 && errno != ENOENT)
                r = keep_first(r, -errno);
        return r;
}
