/* cgroup: see cgroup.h. */
#include "proc/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "proc/pids.h"

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

/* Removes the cgroup at/name and any below it.  rmdir first: a service's
 * cgroup rarely has children (EBUSY when it does), and listing a kernfs
 * directory costs six system calls to learn that. */
static int rmdir_at(int at, const char *name, unsigned depth)
{
        struct dirent *de;
        DIR *d;
        int fd = -1;

        if (unlinkat(at, name, AT_REMOVEDIR) == 0)
                return 0;
        if (errno == ENOENT)
                return 0;
        if (errno != EBUSY && errno != ENOTEMPTY)
                return -errno;
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

/* ---- where the hierarchies are ---------------------------------------- */

/* Undoes mountinfo's octal escapes ("\040" for a space) in place. */
static void unescape_octal(char *s)
{
        char *d = s;
        while (*s) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
                    s[3] >= '0' && s[3] <= '7') {
                        *d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 4;
                } else {
                        *d++ = *s++;
                }
        }
        *d = '\0';
}

/* The first cgroup2 mount in /proc/self/mountinfo: its mount point and the
 * cgroup it shows ("/" unless a subtree was bind-mounted).  0, -ENOENT when
 * there is none, or -errno. */
int er_cgroup_find_v2(char **ret_mnt, char **ret_root)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char *line = NULL, *mnt = NULL, *root = NULL;
        size_t cap = 0;
        int r = -ENOENT;

        if (!f)
                return -errno;
        while (getline(&line, &cap, f) > 0) {
                char *sep = strstr(line, " - "), *save = NULL, *fields[5];
                int i;
                if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
                        continue;
                *sep = '\0';
                for (i = 0; i < 5; i++)
                        if (!(fields[i] = strtok_r(i ? NULL : line, " ", &save)))
                                break;
                if (i < 5)
                        continue;
                unescape_octal(fields[3]);
                unescape_octal(fields[4]);
                mnt = er_strdup(fields[4]);
                root = er_strdup(fields[3]);
                r = mnt && root ? 0 : -ENOMEM;
                break;
        }
        free(line);
        fclose(f);
        if (r < 0) {
                free(mnt);
                free(root);
                return r;
        }
        *ret_mnt = mnt;
        *ret_root = root;
        return 0;
}

/* The mount point of the cgroup v1 hierarchy that holds `controller` (a
 * word of its super options), or NULL (none, or ENOMEM). */
char *er_cgroup_find_v1(const char *controller)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char *line = NULL, *mnt = NULL;
        size_t cap = 0, cl = strlen(controller);

        if (!f)
                return NULL;
        while (!mnt && getline(&line, &cap, f) > 0) {
                char *sep = strstr(line, " - "), *save = NULL, *fields[5], *opts, *o;
                int i;
                if (!sep || strncmp(sep + 3, "cgroup ", 7) != 0)
                        continue;
                /* " - cgroup <source> <super options>" */
                opts = strrchr(sep + 3, ' ');
                if (!opts)
                        continue;
                for (o = opts + 1; *o; o += strcspn(o, ",\n"), o += *o == ',') {
                        if (strncmp(o, controller, cl) == 0 && (!o[cl] || strchr(",\n", o[cl])))
                                break;
                        if (*o == '\n')
                                break;
                }
                if (strncmp(o, controller, cl) != 0)
                        continue;
                *sep = '\0';
                for (i = 0; i < 5; i++)
                        if (!(fields[i] = strtok_r(i ? NULL : line, " ", &save)))
                                break;
                /* Only the whole hierarchy: a bind-mounted subtree is not ours. */
                if (i < 5 || strcmp(fields[3], "/") != 0)
                        continue;
                unescape_octal(fields[4]);
                mnt = er_strdup(fields[4]);
                break;
        }
        free(line);
        fclose(f);
        return mnt;
}

/* envrun's own cgroup2 directory, from the "0::/path" line of
 * /proc/self/cgroup, seen through the mount (whose root is mnt_root).
 * 0, -ENOENT (no cgroup2 line, or the cgroup is outside the mount) or -errno. */
int er_cgroup_own_dir(const char *mnt, const char *mnt_root, char **ret)
{
        FILE *f = fopen("/proc/self/cgroup", "re");
        char *line = NULL, *path = NULL;
        size_t cap = 0;
        ssize_t len;
        int r = -ENOENT;

        if (!f)
                return -errno;
        while ((len = getline(&line, &cap, f)) > 0) {
                size_t rl = strlen(mnt_root);
                char *p = line + 3;
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                if (line[len - 1] == '\n')
                        line[len - 1] = '\0';
                if (strcmp(mnt_root, "/") != 0) {
                        if (strncmp(p, mnt_root, rl) != 0 || (p[rl] && p[rl] != '/'))
                                break;
                        p += rl;
                }
                r = asprintf(&path, "%s%s", mnt, strcmp(p, "/") ? p : "") < 0 ? -ENOMEM : 0;
                break;
        }
        free(line);
        fclose(f);
        if (r == 0)
                *ret = path;
        return r;
}


/* ---- controllers -------------------------------------------------------- */

/* Writes "+name" into dir's cgroup.subtree_control; 0 or -errno. */
int er_cgroup_enable(const char *dir, const char *name)
{
        char path[PATH_MAX], val[32];
        int fd, r = 0;

        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
        snprintf(val, sizeof(val), "+%s", name);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, val, strlen(val)) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* Whether `name` is a word of the cgroup file dir/file. */
bool er_cgroup_listed(const char *dir, const char *file, const char *name)
{
        char path[PATH_MAX], buf[512];
        size_t nl = strlen(name);
        ssize_t k;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (k <= 0)
                return false;
        buf[k] = '\0';
        for (char *p = buf; (p = strstr(p, name)); p += nl)
                if ((p == buf || p[-1] == ' ') && (p[nl] == ' ' || p[nl] == '\n' || !p[nl]))
                        return true;
        return false;
}

/* Whether `name` is a word of dir's cgroup.controllers (available here). */
bool er_cgroup_has_controller(const char *dir, const char *name)
{
        return er_cgroup_listed(dir, "cgroup.controllers", name);
}

/* The pids of a cgroup.procs stream (a number may straddle two reads). */
static int read_pids_fd(int fd, struct er_pidvec *out)
{
        char buf[4096];
        long cur = -1;
        ssize_t k;
        int r;

        for (;;) {
                k = er_read(fd, buf, sizeof(buf));
                if (k < 0)
                        return (int)k;
                if (k == 0)
                        break;
                for (ssize_t i = 0; i < k; i++) {
                        if (buf[i] >= '0' && buf[i] <= '9') {
                                cur = (cur < 0 ? 0 : cur) * 10 + (buf[i] - '0');
                                if (cur > INT_MAX)
                                        return -EINVAL;
                                continue;
                        }
                        if (cur > 0 && (r = er_pids_push(out, (pid_t)cur)) < 0)
                                return r;
                        cur = -1;
                }
        }
        return cur > 0 ? er_pids_push(out, (pid_t)cur) : 0;
}

/* Every pid in the cgroup at dir_fd and the cgroups below it. */
static int read_tree(int dir_fd, struct er_pidvec *out, unsigned depth)
{
        struct stat st;
        struct dirent *de;
        DIR *d;
        int fd, r;

        fd = openat(dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno; /* removed meanwhile */
        r = read_pids_fd(fd, out);
        close(fd);
        /* A threaded cgroup's cgroup.procs cannot be read (EOPNOTSUPP): its
         * processes are listed by the domain cgroup above it. */
        if (r == -EOPNOTSUPP || r == -ENODEV)
                r = 0;
        if (r < 0 || depth >= ER_CGROUP_DEPTH_MAX)
                return r;
        /* kernfs counts a directory's subdirectories in its link count
         * (2 + subdirs): one fstat says whether there is a cgroup below,
         * where listing the directory takes six calls. */
        if (fstat(dir_fd, &st) == 0 && st.st_nlink == 2)
                return 0;
        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while (r == 0 && (de = readdir(d))) {
                int sub;
                if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue; /* removed meanwhile */
                r = read_tree(sub, out, depth + 1);
                close(sub);
        }
        closedir(d);
        return r;
}

int er_cgroup_read_tree(int dir_fd, struct er_pidvec *out)
{
        return read_tree(dir_fd, out, 0);
}
