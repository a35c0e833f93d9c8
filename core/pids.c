/* pids: the processes of a cgroup tree, and markers in environments. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pids.h"

int er_pidvec_push(struct er_pidvec *pv, pid_t pid)
{
        if (pv->n == pv->cap) {
                size_t cap = pv->cap ? pv->cap * 2 : 64;
                pid_t *v = realloc(pv->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                pv->v = v;
                pv->cap = cap;
        }
        pv->v[pv->n++] = pid;
        return 0;
}


/* The pids of a cgroup.procs stream (a number may straddle two reads). */
static int read_pids_fd(int fd, struct er_pidvec *out)
{
        char buf[4096];
        long cur = -1;
        ssize_t k;
        int r;

        for (;;) {
                k = read(fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                for (ssize_t i = 0; i < k; i++) {
                        if (buf[i] >= '0' && buf[i] <= '9') {
                                cur = (cur < 0 ? 0 : cur) * 10 + (buf[i] - '0');
                                if (cur > INT_MAX)
                                        return -EINVAL;
                                continue;
                        }
                        if (cur > 0 && (r = er_pidvec_push(out, (pid_t)cur)) < 0)
                                return r;
                        cur = -1;
                }
        }
        return cur > 0 ? er_pidvec_push(out, (pid_t)cur) : 0;
}

/* Every pid in the cgroup at dir_fd and the cgroups below it. */
static int read_tree(int dir_fd, struct er_pidvec *out, unsigned depth)
{
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

pid_t er_proc_entry_pid(const char *name)
{
        long v = 0;
        if (!*name)
                return 0;
        for (; *name; name++) {
                if (*name < '0' || *name > '9')
                        return 0;
                v = v * 10 + (*name - '0');
                if (v > INT_MAX)
                        return 0;
        }
        return (pid_t)v;
}

DIR *er_proc_opendir(void)
{
        int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC), e;
        DIR *d;

        if (fd < 0)
                return NULL;
        d = fdopendir(fd);
        if (!d) {
                e = errno;
                close(fd);
                errno = e;
        }
        return d;
}

int er_proc_environ_each(int proc_fd, const char *pid, const char *prefix,
                         int (*fn)(void *ud, const char *entry, size_t len), void *ud)
{
        char path[64], buf[4096], ent[ER_ENVIRON_ENTRY_MAX];
        size_t plen = strlen(prefix), elen = 0, total = 0;
        bool skip = false; /* the entry does not start with prefix, or is too long */
        int fd, found = 0;
        ssize_t k;

        snprintf(path, sizeof(path), "%s/environ", pid);
        fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1; /* gone, or not ours to read */
        while (total < ER_ENVIRON_MAX && (k = read(fd, buf, sizeof(buf))) > 0) {
                total += (size_t)k;
                for (ssize_t i = 0; i < k; i++) {
                        char c = buf[i];
                        if (c == '\0') {
                                if (!skip && elen >= plen) {
                                        ent[elen] = '\0';
                                        found++;
                                        if (fn(ud, ent, elen))
                                                goto out;
                                }
                                elen = 0;
                                skip = false;
                        } else if (!skip) {
                                if ((elen < plen && c != prefix[elen]) || elen == sizeof(ent) - 1)
                                        skip = true;
                                else
                                        ent[elen++] = c;
                        }
                }
        }
        /* The last entry may lack its NUL when the environment was cut. */
        if (!skip && elen >= plen) {
                ent[elen] = '\0';
                found++;
                fn(ud, ent, elen);
        }
out:
        close(fd);
        return total == 0 ? -1 : found;
}

struct has_ctx {
        const char *entry;
        size_t len;
        bool prefix, yes;
};

static int has_one(void *ud, const char *entry, size_t len)
{
        struct has_ctx *h = ud;
        h->yes = h->prefix || (len == h->len && memcmp(entry, h->entry, len) == 0);
        return h->yes;
}

int er_proc_environ_has(int proc_fd, const char *pid, const char *entry, bool prefix)
{
        struct has_ctx h = {entry, strlen(entry), prefix, false};
        int r;

        if (h.len >= ER_ENVIRON_ENTRY_MAX)
                return -1;
        r = er_proc_environ_each(proc_fd, pid, entry, has_one, &h);
        return r < 0 ? -1 : h.yes;
}
