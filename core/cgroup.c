/* cgroup: see cgroup.h. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pids.h"

int er_cgroup_write(int at, const char *name, const char *data)
{
        size_t len = strlen(data);
        ssize_t w;
        int fd = openat(at, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return -errno;
        do
                w = write(fd, data, len);
        while (w < 0 && errno == EINTR);
        if (w < 0)
                w = -errno;
        close(fd);
        if (w < 0)
                return (int)w;
        return (size_t)w == len ? 0 : -EIO;
}

static uint64_t parse_value(const char *s)
{
        return strncmp(s, "max", 3) == 0 ? UINT64_MAX : strtoull(s, NULL, 10);
}

int er_cgroup_read_key(int at, const char *name, const char *key, uint64_t *ret)
{
        char buf[1024];
        size_t kl = key ? strlen(key) : 0;
        ssize_t n;
        int fd = openat(at, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                n = -errno;
        close(fd);
        if (n < 0)
                return (int)n;
        buf[n] = '\0';
        if (!key) {
                if (n == 0)
                        return -ENODATA;
                *ret = parse_value(buf);
                return 0;
        }
        for (const char *p = buf; *p; p = *p ? p + 1 : p) {
                if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
                        *ret = parse_value(p + kl + 1);
                        return 0;
                }
                p = strchrnul(p, '\n');
        }
        return -ENODATA;
}

int er_cgroup_populated(int events_fd)
{
        char buf[256];
        ssize_t k = pread(events_fd, buf, sizeof(buf) - 1, 0);

        if (k < 0)
                return -errno;
        buf[k] = '\0';
        for (const char *p = buf; *p; p = strchrnul(p, '\n'), p += *p == '\n')
                if (strncmp(p, "populated ", 10) == 0)
                        return p[10] != '0';
        return -EINVAL;
}

int er_cgroup_kill(int dir_fd)
{
        return er_cgroup_write(dir_fd, "cgroup.kill", "1");
}

static int rmdir_at(int at, const char *name, unsigned depth)
{
        struct dirent *de;
        DIR *d;
        int fd = -1;

        if (depth < ER_CGROUP_DEPTH_MAX)
                fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                d = fdopendir(fd);
                if (!d) {
                        close(fd);
                } else {
                        while ((de = readdir(d)))
                                if (de->d_type == DT_DIR && strcmp(de->d_name, ".") != 0 &&
                                    strcmp(de->d_name, "..") != 0)
                                        rmdir_at(dirfd(d), de->d_name, depth + 1);
                        closedir(d);
                }
        }
        if (unlinkat(at, name, AT_REMOVEDIR) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 0;
}

int er_cgroup_rmdir(int at, const char *name)
{
        return rmdir_at(at, name, 0);
}
