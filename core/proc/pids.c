/* pids: the descendants of a process, /proc/PID/stat, and markers in
 * environments. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proc/pids.h"
#include "base/buf.h"

int er_pids_push(struct er_pidvec *pv, pid_t pid)
{
        int r = er_pids_reserve(pv, 1);

        if (r < 0)
                return r;
        pv->v[pv->n++] = pid;
        return 0;
}


pid_t er_pids_entry_pid(const char *name)
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

/* /proc opened for listing processes (readdir; dirfd for openat).  NULL
 * with errno set. */
static DIR *proc_opendir(void)
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

int er_pids_each(int (*fn)(void *ud, int proc_fd, const char *name, pid_t pid), void *ud)
{
        struct dirent *de;
        DIR *d = proc_opendir();
        int r = 0;

        if (!d)
                return -errno;
        while (r == 0 && (de = readdir(d))) {
                pid_t pid = er_pids_entry_pid(de->d_name);
                if (pid > 0)
                        r = fn(ud, dirfd(d), de->d_name, pid);
        }
        closedir(d);
        return r;
}

int er_pids_environ_each(int proc_fd, const char *pid, const char *prefix,
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

int er_pids_environ_has(int proc_fd, const char *pid, const char *entry, bool prefix)
{
        struct has_ctx h = {entry, strlen(entry), prefix, false};
        int r;

        if (h.len >= ER_ENVIRON_ENTRY_MAX)
                return -1;
        r = er_pids_environ_each(proc_fd, pid, entry, has_one, &h);
        return r < 0 ? -1 : h.yes;
}

/* ---- the descendants of a process (the reaper's tree) ---------------------
 * Async-signal-safe: the reaper calls it between fork and exit.  No stdio,
 * no malloc, no opendir: raw getdents64 on a stack buffer. */

struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

/* "/proc/<a>/task/<b>/children" or "/proc/<a>/task" into buf (at least
 * 64 bytes). */
static char *put_num(char *p, unsigned long v)
{
        char tmp[24];
        int n = 0;
        do
                tmp[n++] = (char)('0' + v % 10);
        while ((v /= 10));
        while (n)
                *p++ = tmp[--n];
        return p;
}

static void task_path(char *buf, pid_t pid, const char *tid)
{
        char *p = buf;
        memcpy(p, "/proc/", 6);
        p = put_num(p + 6, (unsigned long)pid);
        memcpy(p, "/task", 6); /* with its NUL */
        if (!tid)
                return;
        p += 5;
        *p++ = '/';
        while (*tid)
                *p++ = *tid++;
        memcpy(p, "/children", 10);
}

/* A caller's buffer being filled: what did not fit is counted in lost. */
struct plist {
        pid_t *buf;
        size_t cap, n, lost;
};

static void plist_add(struct plist *l, long pid)
{
        if (l->n < l->cap)
                l->buf[l->n++] = (pid_t)pid;
        else
                l->lost++;
}

/* Calls fn for every entry of the directory fd whose name is a number
 * (pids, tids): raw getdents64 on a stack buffer, no opendir. */
static void each_numeric(int fd, void (*fn)(void *ud, const char *name), void *ud)
{
        char dents[4096];

        for (;;) {
                long k = syscall(SYS_getdents64, fd, dents, sizeof(dents));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                for (long off = 0; off < k;) {
                        struct linux_dirent64 *de = (struct linux_dirent64 *)(dents + off);
                        off += de->d_reclen;
                        if (de->d_name[0] >= '0' && de->d_name[0] <= '9' &&
                            strlen(de->d_name) <= 12)
                                fn(ud, de->d_name);
                }
        }
}

/* Adds the pids of one children file to l.  False when the kernel has no
 * children files (CONFIG_PROC_CHILDREN off). */
static bool read_children(const char *path, struct plist *l)
{
        char rd[1024];
        long cur = -1;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return errno != ENOENT;
        for (;;) {
                ssize_t k = read(fd, rd, sizeof(rd));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                /* A number may go on in the next read: cur carries it. */
                for (ssize_t i = 0; i < k; i++) {
                        if (rd[i] >= '0' && rd[i] <= '9') {
                                cur = (cur < 0 ? 0 : cur) * 10 + (rd[i] - '0');
                                if (cur > INT_MAX)
                                        cur = -1;
                                continue;
                        }
                        if (cur > 0)
                                plist_add(l, cur);
                        cur = -1;
                }
        }
        if (cur > 0)
                plist_add(l, cur);
        close(fd);
        return true;
}

struct children_walk {
        pid_t pid;
        struct plist *l;
        bool have;
};

static void on_task(void *ud, const char *tid)
{
        struct children_walk *w = ud;
        char path[96];

        task_path(path, w->pid, tid);
        w->have &= read_children(path, w->l);
}

/* The children of every thread of pid (a thread's children are the
 * processes it forked).  False when the kernel has no children files. */
static bool list_children(pid_t pid, struct plist *l)
{
        struct children_walk w = {pid, l, true};
        char path[96];
        int fd;

        task_path(path, pid, NULL);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return true; /* gone */
        each_numeric(fd, on_task, &w);
        close(fd);
        return w.have;
}

int er_pids_reserve(struct er_pidvec *pv, size_t room)
{
        if (room > SIZE_MAX - pv->n)
                return -ENOMEM;
        return ER_BUF_RESERVE(pv->v, pv->cap, pv->n + room);
}

int er_pids_children(pid_t pid, struct er_pidvec *out)
{
        for (;;) {
                struct plist l = {out->v, out->cap, 0, 0};
                int r;
                list_children(pid, &l);
                if (!l.lost) {
                        out->n = l.n;
                        return 0;
                }
                out->n = 0;
                if ((r = er_pids_reserve(out, (l.n + l.lost) * 2)) < 0)
                        return r;
        }
}

int er_pids_tree_append(pid_t root, struct er_pidvec *out)
{
        size_t want = 64;

        for (;;) {
                size_t n;
                int r = er_pids_reserve(out, want);
                if (r < 0)
                        return r;
                n = er_pids_tree(root, out->v + out->n, out->cap - out->n);
                if (n <= out->cap - out->n) {
                        out->n += n;
                        return 0;
                }
                want = n + n / 2; /* a count past cap is a lower bound */
        }
}

/* The parent of a /proc entry, from its stat (async-signal-safe), or -1. */
static pid_t entry_parent(const char *name)
{
        char path[64], st[512];
        const char *p = NULL;
        ssize_t k;
        long v = 0;
        int fd;

        if (strlen(name) > 20)
                return -1;
        memcpy(path, "/proc/", 6);
        memcpy(path + 6, name, strlen(name));
        memcpy(path + 6 + strlen(name), "/stat", 6);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        k = read(fd, st, sizeof(st) - 1);
        close(fd);
        if (k <= 0)
                return -1;
        for (ssize_t i = 0; i < k; i++) /* comm may hold ')': the last one */
                if (st[i] == ')')
                        p = st + i;
        if (!p || p + 4 >= st + k)
                return -1;
        for (p += 4; p < st + k && *p == ' '; p++)
                ;
        for (; p < st + k && *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
        return v > 0 && v <= INT_MAX ? (pid_t)v : -1;
}

struct scan_pass {
        pid_t root;
        struct plist *l;
        bool grew;
};

static bool listed(pid_t pid, pid_t root, const struct plist *l)
{
        if (pid == root)
                return true;
        for (size_t i = 0; i < l->n; i++)
                if (l->buf[i] == pid)
                        return true;
        return false;
}

static void on_proc(void *ud, const char *name)
{
        struct scan_pass *sp = ud;
        pid_t pid = 0, pp;

        for (const char *c = name; *c >= '0' && *c <= '9'; c++)
                pid = pid * 10 + (*c - '0');
        if (pid <= 0 || listed(pid, sp->root, sp->l))
                return;
        pp = entry_parent(name);
        if (pp <= 0 || !listed(pp, sp->root, sp->l))
                return;
        sp->grew |= sp->l->n < sp->l->cap;
        plist_add(sp->l, pid);
}

size_t er_pids_tree_scan(pid_t root, pid_t *buf, size_t cap)
{
        struct plist l = {buf, cap, 0, 0};
        struct scan_pass sp = {root, &l, true};

        /* Passes over /proc until one adds nobody: a child is listed after
         * its parent, whatever order /proc gives. */
        for (unsigned pass = 0; sp.grew && pass < 64; pass++) {
                int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                sp.grew = false;
                l.lost = 0;
                if (fd < 0)
                        break;
                each_numeric(fd, on_proc, &sp);
                close(fd);
        }
        return l.n + l.lost;
}

size_t er_pids_tree(pid_t root, pid_t *buf, size_t cap)
{
        struct plist l = {buf, cap, 0, 0};

        if (!list_children(root, &l))
                return er_pids_tree_scan(root, buf, cap);
        for (size_t i = 0; i < l.n; i++)
                list_children(buf[i], &l);
        return l.n + l.lost;
}


/* Fields of /proc/PID/stat: state (3), parent (4), start time (22); each
 * pointer may be NULL, and is written only on success.  comm (field 2)
 * may hold spaces and ')': the fields are counted from the last ')'.  0 or
 * -errno (-ESRCH: gone). */
static int read_stat(pid_t pid, char *ret_state, pid_t *ret_ppid, uint64_t *ret_start)
{
        unsigned long long start;
        char path[64], buf[1024], *p, *end, state;
        long ppid;
        ssize_t k;
        int fd, field, e;

        if (pid <= 0)
                return -EINVAL;
        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        k = read(fd, buf, sizeof(buf) - 1);
        e = k < 0 ? errno : 0;
        close(fd);
        if (k <= 0) /* read after the process was reaped: 0 or ESRCH */
                return k == 0 || e == ESRCH ? -ESRCH : -e;
        buf[k] = '\0';
        p = strrchr(buf, ')');
        if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
                return -EINVAL;
        p += 2;
        state = *p;
        errno = 0;
        ppid = strtol(p + 2, &end, 10);
        if (errno || end == p + 2 || *end != ' ' || ppid < 0 || ppid > INT_MAX)
                return -EINVAL;
        for (field = 3; ret_start && field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EINVAL;
                p++;
        }
        if (ret_start) {
                errno = 0;
                start = strtoull(p, &end, 10);
                if (errno || end == p || (*end != ' ' && *end != '\n' && *end))
                        return -EINVAL;
                *ret_start = start;
        }
        if (ret_state)
                *ret_state = state;
        if (ret_ppid)
                *ret_ppid = (pid_t)ppid;
        return 0;
}

int er_pids_stat(pid_t pid, char *ret_state, uint64_t *ret_start)
{
        return read_stat(pid, ret_state, NULL, ret_start);
}

int er_pids_start_time(pid_t pid, uint64_t *ret)
{
        return read_stat(pid, NULL, NULL, ret);
}

pid_t er_pids_parent(pid_t pid)
{
        pid_t ppid = 0;
        int r = read_stat(pid, NULL, &ppid, NULL);

        return r < 0 ? r : ppid;
}
