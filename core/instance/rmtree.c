/* rmtree: removes a directory tree without following symlinks or leaving
 * its file system, at a bounded depth (rmtree.h). */
#include "instance/rmtree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REMOVE_DEPTH_MAX 256 /* directories deep */

static int keep_first(int r, int err)
{
        return r < 0 ? r : err;
}

static int remove_entry(int dir_fd, dev_t dev, const char *name, unsigned depth);

/* Empties the directory fd (closed here); stays on device dev. */
static int empty_dir(int fd, dev_t dev, unsigned depth, const char *skip1, const char *skip2)
{
        struct dirent *de;
        DIR *d = fdopendir(fd);
        int r = 0;

        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                if ((skip1 && !strcmp(n, skip1)) || (skip2 && !strcmp(n, skip2)))
                        continue;
                r = keep_first(r, remove_entry(dirfd(d), dev, n, depth));
        }
        if (errno)
                r = keep_first(r, -errno);
        closedir(d);
        return r;
}

/* Removes dir_fd/name, a directory with its contents: never following a
 * symlink (an entry that is one is unlinked, not entered), never entering
 * another file system (a mount point stays: rmdir says EBUSY). */
static int remove_entry(int dir_fd, dev_t dev, const char *name, unsigned depth)
{
        struct stat sb;
        int fd, r;

        if (unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        /* A directory (unlink says EISDIR, or EPERM as POSIX allows). */
        if (depth >= REMOVE_DEPTH_MAX)
                return -ELOOP;
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &sb) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        r = 0;
        if (sb.st_dev == dev)
                r = empty_dir(fd, dev, depth + 1, NULL, NULL);
        else
                close(fd);
        if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                r = keep_first(r, -errno);
        return r;
}

int er_rmtree_fd(int fd, const char *skip1, const char *skip2)
{
        struct stat sb;
        int r;

        if (fstat(fd, &sb) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return empty_dir(fd, sb.st_dev, 0, skip1, skip2);
}
