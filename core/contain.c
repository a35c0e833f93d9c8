/* contain: one service's process tree, by cgroup2 or by session + marker
 * (SPEC §5.6).  See contain.h for the two mechanisms. */
#include "contain.h"
#include "pids.h"
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define MARKER_KEY "ENVRUN_MARKER="
#define TOP_DIR "envrun"           /* as root: <mount>/envrun/<instance> */
#define DELEGATED_PREFIX "envrun." /* delegated: <own cgroup>/envrun.<instance> */
#define SIGNAL_PASSES 8            /* rescans for pids forked while signalling */
#define KILL_PASSES 16
#define MKDIR_TRIES 4 /* another instance may rmdir <mount>/envrun */

/* A snapshot of /proc shared during a hold (contain.h). */
struct scan_proc {
        pid_t pid, session, ppid;
        char state;
        int env;    /* -1: environment unreadable; else how many instance markers */
        size_t off; /* its markers in the pool, NUL-terminated one after another */
};

struct er_scan {
        struct scan_proc *v;
        size_t n, cap;
        char *pool;
        size_t pool_n, pool_cap;
        bool valid;
};

/* ---- pid sets ---------------------------------------------------------- */

static int cmp_pid(const void *a, const void *b)
{
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

static void pidvec_sort_uniq(struct er_pidvec *pv)
{
        size_t j = 0;
        if (pv->n < 2)
                return;
        qsort(pv->v, pv->n, sizeof(*pv->v), cmp_pid);
        for (size_t i = 1; i < pv->n; i++)
                if (pv->v[i] != pv->v[j])
                        pv->v[++j] = pv->v[i];
        pv->n = j + 1;
}

static bool pidvec_has(const struct er_pidvec *sorted, pid_t pid)
{
        return sorted->n && bsearch(&pid, sorted->v, sorted->n, sizeof(pid), cmp_pid);
}

/* Copies a set out to a caller's array; returns its full size. */
static int pidvec_export(const struct er_pidvec *pv, pid_t *pids, size_t n)
{
        for (size_t i = 0; i < pv->n && i < n; i++)
                pids[i] = pv->v[i];
        return pv->n > INT_MAX ? INT_MAX : (int)pv->n;
}

/* ---- finding the hierarchy --------------------------------------------- */

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
static int find_cgroup2(char **ret_mnt, char **ret_root)
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
static char *find_cgroup1(const char *controller)
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
static int own_cgroup_dir(const char *mnt, const char *mnt_root, char **ret)
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

/* ---- the instance ------------------------------------------------------- */

static int make_instance_id(const char *project, char **ret)
{
        uint32_t rnd;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
                /* Entropy not ready yet (early boot) or no getrandom: the pid
                 * already makes the id unique on this host; this only has to
                 * differ from a crashed instance that had the same pid. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                rnd = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec * 2654435761u;
        }
        if (asprintf(ret, "%s.%ld.%08x", project, (long)getpid(), (unsigned)rnd) < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

static void set_reason_errno(struct er_contain *c, const char *path, int err)
{
        snprintf(c->reason, sizeof(c->reason), "session: no writable cgroup2 hierarchy (%s: %s)",
                 path, strerror(err));
}

/* <mnt>/envrun/<instance>, into *ret (malloc'd).  A concurrent instance's
 * fini may remove <mnt>/envrun between our two mkdirs (ENOENT), hence the
 * retries.  0 or -errno; *bad names the directory that failed. */
static int make_top(const char *mnt, const char *instance, char **ret, const char **bad)
{
        char *top = NULL, *dir = NULL;
        int r = -ENOMEM;

        *bad = mnt;
        if (asprintf(&top, "%s/" TOP_DIR, mnt) < 0) {
                top = NULL;
                goto out;
        }
        if (asprintf(&dir, "%s/%s", top, instance) < 0) {
                dir = NULL;
                goto out;
        }
        for (int i = 0; i < MKDIR_TRIES; i++) {
                if (mkdir(top, 0755) < 0 && errno != EEXIST) {
                        r = -errno;
                        goto out;
                }
                if (mkdir(dir, 0755) == 0) {
                        r = 0;
                        *ret = dir;
                        dir = NULL;
                        goto out;
                }
                r = -errno;
                if (errno != ENOENT)
                        break;
        }
        *bad = NULL; /* the instance's directory */
        rmdir(top); /* only if empty: it may be another instance's too */
out:
        free(top);
        free(dir);
        return r;
}

/* As root: <mnt>/envrun/<instance>. */
static int mkdir_as_root(struct er_contain *c, const char *mnt, char **ret)
{
        const char *bad;
        int r = make_top(mnt, c->instance, ret, &bad);

        if (r < 0 && r != -ENOMEM) {
                char path[200]; /* cut to what the reason can hold */
                snprintf(path, sizeof(path), "%s/" TOP_DIR "/%s", mnt, c->instance);
                set_reason_errno(c, bad ? bad : path, -r);
        }
        return r;
}

/* Hybrid hosts (as root): the instance's directories in the v1 memory and
 * pids hierarchies.  Sets limits_why when a limit cannot be enforced. */
static void try_cgroup1(struct er_contain *c)
{
        static const char *const names[ER_V1_N] = {"memory", "pids"};

        for (int k = 0; k < ER_V1_N; k++) {
                char *mnt = find_cgroup1(names[k]), *dir = NULL;
                const char *bad;
                int r;

                if (!mnt) {
                        if (!c->limits_why[0])
                                snprintf(c->limits_why, sizeof(c->limits_why),
                                         "no %s controller (cgroup v1) mounted", names[k]);
                        continue;
                }
                r = make_top(mnt, c->instance, &dir, &bad);
                if (r == 0) {
                        c->v1_fd[k] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (c->v1_fd[k] < 0) {
                                r = -errno;
                                rmdir(dir);
                        }
                }
                if (r == 0)
                        c->v1_dir[k] = dir;
                else
                        free(dir);
                if (r < 0 && !c->limits_why[0])
                        snprintf(c->limits_why, sizeof(c->limits_why), "%s/" TOP_DIR ": %s", mnt,
                                 strerror(-r));
                free(mnt);
        }
}

/* Not root: <own cgroup>/envrun.<instance>, when our own cgroup is delegated
 * to us.  Moving a process between two cgroups needs write access to the
 * cgroup.procs of their common ancestor, which is our own cgroup. */
static int mkdir_delegated(struct er_contain *c, const char *mnt, const char *mnt_root, char **ret)
{
        char *own = NULL, *procs = NULL, *dir = NULL;
        int r = own_cgroup_dir(mnt, mnt_root, &own);

        if (r == -ENOENT)
                snprintf(c->reason, sizeof(c->reason),
                         "session: own cgroup not found under the cgroup2 mount %s", mnt);
        else if (r < 0 && r != -ENOMEM)
                snprintf(c->reason, sizeof(c->reason), "session: cannot read /proc/self/cgroup: %s",
                         strerror(-r));
        if (r < 0)
                return r;
        r = -ENOMEM;
        if (asprintf(&procs, "%s/cgroup.procs", own) < 0) {
                procs = NULL; /* asprintf leaves it undefined */
                goto out;
        }
        if (asprintf(&dir, "%s/" DELEGATED_PREFIX "%s", own, c->instance) < 0) {
                dir = NULL;
                goto out;
        }
        if (access(own, W_OK) < 0 || access(procs, W_OK) < 0) {
                const char *what = errno == EROFS || access(own, W_OK) < 0 ? own : procs;
                r = -errno;
                set_reason_errno(c, what, -r);
                goto out;
        }
        if (mkdir(dir, 0755) < 0) {
                r = -errno;
                set_reason_errno(c, dir, errno);
                goto out;
        }
        *ret = dir;
        dir = NULL;
        r = 0;
out:
        free(own);
        free(procs);
        free(dir);
        return r;
}

/* Sets up the cgroup2 tree; on failure other than ENOMEM, c->reason says why. */
static int try_cgroup2(struct er_contain *c)
{
        char *mnt = NULL, *mnt_root = NULL, *dir = NULL;
        bool root = geteuid() == 0;
        int r = find_cgroup2(&mnt, &mnt_root);

        if (r == -ENOENT)
                snprintf(c->reason, sizeof(c->reason), "session: no cgroup2 hierarchy mounted");
        else if (r < 0 && r != -ENOMEM)
                snprintf(c->reason, sizeof(c->reason),
                         "session: cannot read /proc/self/mountinfo: %s", strerror(-r));
        if (r < 0)
                return r;
        if (root) {
                r = mkdir_as_root(c, mnt, &dir);
                if (r < 0 && r != -ENOMEM) {
                        /* Root of a user namespace: the top is not ours,
                         * but our own cgroup may be delegated to us. */
                        char why[sizeof(c->reason)];
                        memcpy(why, c->reason, sizeof(why));
                        r = mkdir_delegated(c, mnt, mnt_root, &dir);
                        if (r < 0)
                                memcpy(c->reason, why, sizeof(why));
                        else
                                root = false;
                }
        } else {
                r = mkdir_delegated(c, mnt, mnt_root, &dir);
        }
        if (r < 0)
                goto out;
        c->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->root_fd < 0) {
                r = -errno;
                set_reason_errno(c, dir, errno);
                rmdir(dir);
                goto out;
        }
        c->root = dir;
        dir = NULL;
        snprintf(c->reason, sizeof(c->reason), "cgroup2 at %s (%s)", c->root,
                 root ? "root" : "delegated");
out:
        free(mnt);
        free(mnt_root);
        free(dir);
        return r;
}

int er_contain_init(struct er_contain *c, const char *project, bool force_session)
{
        int r;

        c->kind = ER_CONTAIN_SESSION;
        c->instance = NULL;
        c->root = NULL;
        c->root_fd = -1;
        c->reason[0] = '\0';
        c->limits_why[0] = '\0';
        c->hold = 0;
        c->scan = NULL;
        c->deferred = NULL;
        for (int k = 0; k < ER_V1_N; k++) {
                c->v1_fd[k] = -1;
                c->v1_dir[k] = NULL;
        }
        r = make_instance_id(project, &c->instance);
        if (r < 0)
                return r;
        if (force_session) {
                snprintf(c->reason, sizeof(c->reason), "session: forced");
        } else {
                r = try_cgroup2(c);
                if (r == -ENOMEM) {
                        er_contain_fini(c);
                        return r;
                }
                if (r == 0)
                        c->kind = ER_CONTAIN_CGROUP2;
        }
        if (c->kind != ER_CONTAIN_CGROUP2)
                snprintf(c->limits_why, sizeof(c->limits_why), "%s", c->reason);
        else if (geteuid() != 0)
                snprintf(c->limits_why, sizeof(c->limits_why),
                         "not root: no memory or pids controller to use");
        else
                try_cgroup1(c);
        /* Needed by the session kind; with cgroup2 it makes envrun, not init,
         * the one to reap a service's orphans.  It cannot fail for a valid
         * argument. */
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        return 0;
}

/* Removes an empty cgroup, and first the empty cgroups below it (a service
 * may make its own); one that still has processes stays (EBUSY). */
static int rmdir_cgroup(int at, const char *name, unsigned depth)
{
        int fd = -1;
        DIR *d;
        struct dirent *de;

        if (depth < ER_CGROUP_DEPTH_MAX)
                fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
                d = fdopendir(fd);
                if (!d) {
                        close(fd);
                } else {
                        while ((de = readdir(d)))
                                if (de->d_type == DT_DIR && strcmp(de->d_name, ".") != 0 &&
                                    strcmp(de->d_name, "..") != 0)
                                        rmdir_cgroup(dirfd(d), de->d_name, depth + 1);
                        closedir(d);
                }
        }
        return unlinkat(at, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static void scan_free(struct er_scan *sc);
static void deferred_drop(struct er_group *g);

void er_contain_fini(struct er_contain *c)
{
        if (!c)
                return;
        while (c->deferred)
                deferred_drop(c->deferred);
        scan_free(c->scan);
        c->scan = NULL;
        c->hold = 0;
        er_close(&c->root_fd);
        for (int k = 0; k < ER_V1_N; k++) {
                er_close(&c->v1_fd[k]);
                if (c->v1_dir[k]) {
                        char *slash;
                        rmdir_cgroup(AT_FDCWD, c->v1_dir[k], 0);
                        slash = strrchr(c->v1_dir[k], '/');
                        if (slash) {
                                *slash = '\0';
                                rmdir(c->v1_dir[k]); /* <mount>/envrun, unless in use */
                        }
                }
                free(c->v1_dir[k]);
                c->v1_dir[k] = NULL;
        }
        if (c->root && c->instance) {
                size_t len = strlen(c->root), il = strlen(c->instance);
                rmdir_cgroup(AT_FDCWD, c->root, 0);
                /* As root the directory is <mount>/envrun/<instance>: remove
                 * <mount>/envrun too unless other instances use it. */
                if (len > il + 1 && c->root[len - il - 1] == '/' &&
                    strcmp(c->root + len - il, c->instance) == 0) {
                        c->root[len - il - 1] = '\0';
                        rmdir(c->root);
                }
        }
        free(c->root);
        free(c->instance);
        c->root = NULL;
        c->instance = NULL;
}

const char *er_contain_name(const struct er_contain *c)
{
        return c->kind == ER_CONTAIN_CGROUP2 ? "cgroup2" : "session";
}

/* ---- groups ------------------------------------------------------------- */

static bool valid_cgroup_name(const char *s)
{
        return *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strpbrk(s, "/\n");
}

static int group_mkdir(struct er_group *g, const char *service, struct er_err *err)
{
        int r;

        if (!valid_cgroup_name(service)) {
                if (err)
                        er_err_set(err, -EINVAL, NULL, 0, 0, "invalid cgroup name '%s'", service);
                return -EINVAL;
        }
        /* EEXIST is fine: the instance's tree is ours alone, so this is the
         * service's own cgroup from before a restart. */
        if (mkdirat(g->c->root_fd, service, 0755) < 0 && errno != EEXIST)
                goto fail;
        g->dir_fd = openat(g->c->root_fd, service, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (g->dir_fd < 0)
                goto fail;
        g->events_fd = openat(g->dir_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        if (g->events_fd < 0)
                goto fail;
        return 0;
fail:
        r = -errno;
        if (err)
                er_err_set(err, r, NULL, 0, 0, "cannot create cgroup '%s/%s': %s", g->c->root,
                           service, strerror(-r));
        return r;
}

int er_group_init(struct er_group *g, struct er_contain *c, const char *service, struct er_err *err)
{
        int r;

        g->c = c;
        g->name = NULL;
        g->dir_fd = g->events_fd = -1;
        g->sid = 0;
        g->oom_fd = -1;
        g->next_deferred = NULL;
        g->deferred_seen = NULL;
        for (int k = 0; k < ER_V1_N; k++)
                g->v1_fd[k] = -1;
        r = snprintf(g->marker, sizeof(g->marker), MARKER_KEY "%s/%s", c->instance, service);
        if (r < 0 || (size_t)r >= sizeof(g->marker)) {
                g->marker[0] = '\0';
                if (err)
                        er_err_set(err, -ENAMETOOLONG, NULL, 0, 0,
                                   "service name '%s' too long for a marker", service);
                return -ENAMETOOLONG;
        }
        g->name = er_strdup(service);
        if (!g->name) {
                if (err)
                        er_err_set(err, -ENOMEM, NULL, 0, 0, "service '%s': %s", service,
                                   strerror(ENOMEM));
                return -ENOMEM;
        }
        if (c->kind != ER_CONTAIN_CGROUP2)
                return 0;
        r = group_mkdir(g, service, err);
        for (int k = 0; r == 0 && k < ER_V1_N; k++) {
                if (c->v1_fd[k] < 0)
                        continue;
                if (mkdirat(c->v1_fd[k], service, 0755) < 0 && errno != EEXIST)
                        r = -errno;
                else if ((g->v1_fd[k] = openat(c->v1_fd[k], service,
                                               O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
                        r = -errno;
                if (r < 0 && err)
                        er_err_set(err, r, NULL, 0, 0, "cannot create cgroup '%s/%s': %s",
                                   c->v1_dir[k], service, strerror(-r));
        }
        if (r < 0)
                er_group_fini(g);
        return r;
}

void er_group_fini(struct er_group *g)
{
        if (!g)
                return;
        if (g->deferred_seen)
                deferred_drop(g);
        er_close(&g->events_fd);
        er_close(&g->dir_fd);
        er_close(&g->oom_fd);
        if (g->name && g->c && g->c->kind == ER_CONTAIN_CGROUP2 && g->c->root_fd >= 0)
                rmdir_cgroup(g->c->root_fd, g->name, 0);
        for (int k = 0; k < ER_V1_N; k++) {
                if (g->v1_fd[k] < 0)
                        continue;
                er_close(&g->v1_fd[k]);
                if (g->name && g->c->v1_fd[k] >= 0)
                        rmdir_cgroup(g->c->v1_fd[k], g->name, 0);
        }
        free(g->name);
        g->name = NULL;
}

int er_group_cgroup_fd(const struct er_group *g)
{
        return g->dir_fd;
}

static int write_file_at(int at, const char *name, const char *data)
{
        size_t len = strlen(data);
        ssize_t w;
        int fd = openat(at, name, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        do
                w = write(fd, data, len);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
                w = -errno;
                close(fd);
                return (int)w;
        }
        close(fd);
        return (size_t)w == len ? 0 : -EIO;
}

int er_group_started(struct er_group *g, pid_t pid, bool in_cgroup)
{
        char buf[32];

        if (pid <= 0)
                return -EINVAL;
        g->sid = pid;
        if (g->c->scan)
                g->c->scan->valid = false; /* a process it does not know */
        if (g->c->kind != ER_CONTAIN_CGROUP2 || in_cgroup)
                return 0;
        if (g->dir_fd < 0)
                return -EBADF;
        snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
        return write_file_at(g->dir_fd, "cgroup.procs", buf);
}

/* ---- members: cgroup2 ---------------------------------------------------- */


/* ---- members: session and marker ------------------------------------------ */

/* State (field 3) and session (field 6) of /proc/PID/stat. */
static int read_stat(int proc_fd, const char *pid, char *state, pid_t *session, pid_t *ppid)
{
        char path[64], buf[1024], *p;
        int fd, sess, pp;
        ssize_t k;

        snprintf(path, sizeof(path), "%s/stat", pid);
        fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (k <= 0)
                return k < 0 ? -errno : -ESRCH;
        buf[k] = '\0';
        p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
        if (!p || sscanf(p + 1, " %c %d %*d %d", state, &pp, &sess) != 3)
                return -EINVAL;
        *session = sess;
        *ppid = pp;
        return 0;
}

/* Processes whose session is `sid` (when > 0) or whose environment holds
 * `marker` (when non-NULL); zombies left out when live_only.  Races with
 * processes exiting are ignored. */
static int proc_scan(const char *marker, pid_t sid, bool live_only, struct er_pidvec *out)
{
        pid_t self = getpid();
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = er_proc_opendir();
        if (!d)
                return -errno;
        while (r == 0 && (de = readdir(d))) {
                pid_t pid = er_proc_entry_pid(de->d_name), session = 0, ppid = 0;
                char state = 0;
                int has;
                if (pid <= 0 || pid == self)
                        continue;
                if (sid > 0 || live_only) {
                        if (read_stat(dirfd(d), de->d_name, &state, &session, &ppid) < 0)
                                continue;
                        if (live_only && (state == 'Z' || state == 'X'))
                                continue;
                        if (sid > 0 && session == sid) {
                                r = er_pidvec_push(out, pid);
                                continue;
                        }
                }
                if (!marker)
                        continue;
                has = er_proc_environ_has(dirfd(d), de->d_name, marker, false);
                /* An orphan of envrun's that is exiting has no environment to
                 * read any more, but may have just forked a child this scan
                 * did not list: while it is not yet a zombie, it counts, so
                 * "empty" is never answered too early (the next SIGCHLD looks
                 * again).  Orphans of any service reparent to envrun. */
                if (has > 0 || (has < 0 && live_only && ppid == self))
                        r = er_pidvec_push(out, pid);
        }
        closedir(d);
        return r;
}

int er_contain_scan_marker(const char *marker, pid_t *pids, size_t n)
{
        struct er_pidvec pv = {0};
        int r;

        if (!marker || !*marker)
                return -EINVAL;
        r = proc_scan(marker, 0, false, &pv);
        if (r == 0) {
                pidvec_sort_uniq(&pv);
                r = pidvec_export(&pv, pids, n);
        }
        free(pv.v);
        return r;
}

/* ---- the shared snapshot of a hold (session) ------------------------------ */

static void scan_free(struct er_scan *sc)
{
        if (!sc)
                return;
        free(sc->v);
        free(sc->pool);
        free(sc);
}

struct pool_ctx {
        struct er_scan *sc;
        int err;
};

static int pool_add(void *ud, const char *entry, size_t len)
{
        struct pool_ctx *pc = ud;
        struct er_scan *sc = pc->sc;

        if (sc->pool_cap - sc->pool_n < len + 1) {
                size_t cap = sc->pool_cap ? sc->pool_cap : 4096;
                char *p;
                while (cap - sc->pool_n < len + 1)
                        cap *= 2;
                p = realloc(sc->pool, cap);
                if (!p) {
                        pc->err = -ENOMEM;
                        return 1;
                }
                sc->pool = p;
                sc->pool_cap = cap;
        }
        memcpy(sc->pool + sc->pool_n, entry, len + 1);
        sc->pool_n += len + 1;
        return 0;
}

/* Every process of /proc but envrun: its state, session, parent and the
 * markers of this instance in its environment.  0 or -errno. */
static int scan_build(struct er_contain *c, struct er_scan *sc)
{
        char prefix[300];
        pid_t self = getpid();
        struct dirent *de;
        DIR *d;
        int r = 0;

        snprintf(prefix, sizeof(prefix), MARKER_KEY "%s/", c->instance);
        sc->n = sc->pool_n = 0;
        sc->valid = false;
        d = er_proc_opendir();
        if (!d)
                return -errno;
        while (r == 0 && (de = readdir(d))) {
                pid_t pid = er_proc_entry_pid(de->d_name);
                struct pool_ctx pc = {sc, 0};
                struct scan_proc *e;
                if (pid <= 0 || pid == self)
                        continue;
                if (sc->n == sc->cap) {
                        size_t cap = sc->cap ? sc->cap * 2 : 256;
                        struct scan_proc *v = realloc(sc->v, cap * sizeof(*v));
                        if (!v) {
                                r = -ENOMEM;
                                break;
                        }
                        sc->v = v;
                        sc->cap = cap;
                }
                e = &sc->v[sc->n];
                e->pid = pid;
                if (read_stat(dirfd(d), de->d_name, &e->state, &e->session, &e->ppid) < 0)
                        continue; /* gone */
                e->off = sc->pool_n;
                e->env = er_proc_environ_each(dirfd(d), de->d_name, prefix, pool_add, &pc);
                r = pc.err;
                sc->n++;
        }
        closedir(d);
        sc->valid = r == 0;
        return r;
}

/* The hold's snapshot, taken now when there is none yet; NULL without a
 * hold, for the cgroup2 kind, or when it cannot be made (the caller scans
 * itself). */
static struct er_scan *scan_get(struct er_contain *c)
{
        if (!c->hold || c->kind != ER_CONTAIN_SESSION)
                return NULL;
        if (!c->scan && !(c->scan = calloc(1, sizeof(*c->scan))))
                return NULL;
        if (!c->scan->valid && scan_build(c, c->scan) < 0)
                return NULL;
        return c->scan;
}

static bool scan_has_marker(const struct er_scan *sc, const struct scan_proc *e, const char *marker)
{
        const char *m = sc->pool + e->off;
        for (int k = 0; k < e->env; k++, m += strlen(m) + 1)
                if (strcmp(m, marker) == 0)
                        return true;
        return false;
}

/* proc_scan's rules, on the snapshot: the live processes of the session or
 * with the marker, and envrun's children whose environment is unreadable. */
static int scan_members(const struct er_scan *sc, const struct er_group *g, pid_t sid,
                        struct er_pidvec *out)
{
        pid_t self = getpid();
        int r = 0;

        for (size_t i = 0; i < sc->n && r == 0; i++) {
                const struct scan_proc *e = &sc->v[i];
                if (e->state == 'Z' || e->state == 'X')
                        continue;
                if ((sid > 0 && e->session == sid) ||
                    (e->env > 0 && scan_has_marker(sc, e, g->marker)) ||
                    (e->env < 0 && e->ppid == self))
                        r = er_pidvec_push(out, e->pid);
        }
        return r;
}

/* ---- members: either kind ------------------------------------------------- */

/* The session to scan: never envrun's own (a group whose main process did
 * not call setsid, like the test command, has no session of its own). */
static pid_t group_session(const struct er_group *g)
{
        return g->sid > 0 && g->sid != getsid(0) ? g->sid : 0;
}

/* The group's members, sorted, without duplicates.  `shared`: a live-only
 * list may come from the hold's snapshot. */
static int collect(struct er_group *g, struct er_pidvec *out, bool live_only, bool shared)
{
        struct er_scan *sc = shared && live_only ? scan_get(g->c) : NULL;
        int r;

        out->n = 0;
        if (g->c->kind == ER_CONTAIN_CGROUP2)
                r = g->dir_fd < 0 ? -EBADF : er_cgroup_read_tree(g->dir_fd, out);
        else if (sc)
                r = scan_members(sc, g, group_session(g), out);
        else
                r = proc_scan(g->marker, group_session(g), live_only, out);
        if (r == 0)
                pidvec_sort_uniq(out);
        return r;
}

/* The killpg target of a SIGKILL for the session kind, or 0. */
static pid_t kill_pgrp(const struct er_group *g, int sig)
{
        pid_t pg = g->c->kind == ER_CONTAIN_SESSION && sig == SIGKILL ? group_session(g) : 0;
        return pg > 0 && pg == getpgrp() ? 0 : pg;
}

/* One pass: signals the members of cur not in seen (sorted), adds them to
 * seen.  Returns how many were new (0: the signalling is over), or -errno. */
static int signal_pass(struct er_group *g, int sig, bool cont, struct er_pidvec *cur,
                       struct er_pidvec *seen, int *count, int *err)
{
        pid_t pg = kill_pgrp(g, sig);
        size_t fresh = 0;
        int r = 0;

        /* Members are listed before killpg, so that the ones it kills are
         * counted too (the count says how many had to be killed). */
        if (pg > 0)
                killpg(pg, SIGKILL);
        for (size_t i = 0; i < cur->n; i++) {
                pid_t pid = cur->v[i];
                if (pid <= 0 || pidvec_has(seen, pid))
                        continue;
                if (kill(pid, sig) == 0)
                        (*count)++;
                else if (errno != ESRCH && !*err)
                        *err = -errno;
                cur->v[fresh++] = pid;
        }
        for (size_t i = 0; cont && i < fresh; i++)
                kill(cur->v[i], SIGCONT);
        for (size_t i = 0; i < fresh && r == 0; i++)
                r = er_pidvec_push(seen, cur->v[i]);
        pidvec_sort_uniq(seen);
        return r < 0 ? r : (int)(fresh > INT_MAX ? INT_MAX : fresh);
}

static void deferred_drop(struct er_group *g)
{
        struct er_group **pp = &g->c->deferred;

        while (*pp && *pp != g)
                pp = &(*pp)->next_deferred;
        if (*pp)
                *pp = g->next_deferred;
        g->next_deferred = NULL;
        free(g->deferred_seen->v);
        free(g->deferred_seen);
        g->deferred_seen = NULL;
}

/* Signals every member once, rescanning until a pass finds no new one (a
 * member forked while we were signalling), at most `passes` times.  For the
 * session kind with SIGKILL, killpg first on each pass: it reaches the whole
 * process group at once.  It is not used for other signals, which would
 * then reach most members twice (killpg, then the scan), and a second
 * SIGTERM or SIGINT means "hurry" to many programs.  The first pass may use
 * the hold's snapshot; with `defer` (and a hold), the rescans are left to
 * er_contain_release. */
static int signal_loop(struct er_group *g, int sig, bool cont, unsigned passes, bool defer)
{
        struct er_pidvec seen = {0}, cur = {0};
        int count = 0, err = 0, r = 0;

        /* The rescans of an earlier signal go first: signals keep their order. */
        if (g->deferred_seen) {
                int ocount = 0, oerr = 0;
                for (unsigned pass = 1; pass < SIGNAL_PASSES; pass++)
                        if (collect(g, &cur, true, false) < 0 ||
                            signal_pass(g, g->deferred_sig, g->deferred_cont, &cur,
                                        g->deferred_seen, &ocount, &oerr) <= 0)
                                break;
                deferred_drop(g);
        }
        for (unsigned pass = 0; pass < passes; pass++) {
                r = collect(g, &cur, true, pass == 0);
                if (r < 0)
                        break;
                r = signal_pass(g, sig, cont, &cur, &seen, &count, &err);
                if (r <= 0)
                        break;
                if (pass == 0 && defer && g->c->hold && g->c->kind == ER_CONTAIN_SESSION &&
                    passes > 1) {
                        struct er_pidvec *keep = malloc(sizeof(*keep));
                        if (!keep)
                                continue; /* rescan now instead */
                        *keep = seen;
                        seen = (struct er_pidvec){0};
                        g->deferred_sig = sig;
                        g->deferred_cont = cont;
                        g->deferred_seen = keep;
                        g->next_deferred = g->c->deferred;
                        g->c->deferred = g;
                        r = 0;
                        break;
                }
        }
        free(seen.v);
        free(cur.v);
        if (r < 0 && !count)
                return r;
        return count || !err ? count : err;
}

void er_contain_hold(struct er_contain *c)
{
        c->hold++;
}

void er_contain_reaped(struct er_contain *c)
{
        if (c && c->scan)
                c->scan->valid = false;
}

/* The deferred rescans: one fresh snapshot per pass for every group. */
static void run_deferred(struct er_contain *c)
{
        struct er_pidvec cur = {0};

        for (unsigned pass = 1; pass < SIGNAL_PASSES && c->deferred; pass++) {
                struct er_scan *sc;
                if (c->scan)
                        c->scan->valid = false;
                sc = scan_get(c);
                if (!sc)
                        break;
                for (struct er_group *g = c->deferred, *next; g; g = next) {
                        int count = 0, err = 0, r;
                        next = g->next_deferred;
                        cur.n = 0;
                        r = scan_members(sc, g, group_session(g), &cur);
                        if (r == 0) {
                                pidvec_sort_uniq(&cur);
                                r = signal_pass(g, g->deferred_sig, g->deferred_cont, &cur,
                                                g->deferred_seen, &count, &err);
                        }
                        if (r <= 0)
                                deferred_drop(g); /* no new member: done */
                }
        }
        /* Passes used up, or no snapshot: what is left is dropped, as a
         * synchronous signal_loop stops after its passes. */
        while (c->deferred)
                deferred_drop(c->deferred);
        free(cur.v);
}

void er_contain_release(struct er_contain *c)
{
        if (!c->hold || --c->hold)
                return;
        c->hold++; /* the rescans share their snapshots too */
        run_deferred(c);
        c->hold--;
        scan_free(c->scan);
        c->scan = NULL;
}

int er_group_signal(struct er_group *g, int sig, bool cont)
{
        return signal_loop(g, sig, cont, SIGNAL_PASSES, false);
}

int er_group_signal_batched(struct er_group *g, int sig, bool cont)
{
        return signal_loop(g, sig, cont, SIGNAL_PASSES, true);
}

int er_group_kill(struct er_group *g)
{
        struct er_pidvec pv = {0};
        int r;

        if (g->c->kind != ER_CONTAIN_CGROUP2)
                return signal_loop(g, SIGKILL, false, KILL_PASSES, false);
        r = collect(g, &pv, true, false);
        free(pv.v);
        if (r < 0)
                return r;
        /* cgroup.kill (5.14+) kills the subtree at once, and forks racing
         * with it too; without it (ENOENT), kill pid by pid. */
        if (write_file_at(g->dir_fd, "cgroup.kill", "1") < 0) {
                r = signal_loop(g, SIGKILL, false, KILL_PASSES, false);
                if (r < 0)
                        return r;
        }
        return (int)pv.n;
}

int er_group_pids(struct er_group *g, pid_t *pids, size_t n)
{
        struct er_pidvec pv = {0};
        int r = collect(g, &pv, false, false);

        if (r == 0)
                r = pidvec_export(&pv, pids, n);
        free(pv.v);
        return r;
}

/* "populated 0" in cgroup.events: no process in the subtree.  Tasks leave
 * their cgroup when they exit, so unreaped zombies do not count. */
static int cgroup_populated(int events_fd)
{
        char buf[256];
        ssize_t k = pread(events_fd, buf, sizeof(buf) - 1, 0);
        const char *p;

        if (k < 0)
                return -errno;
        buf[k] = '\0';
        for (p = buf; *p; p++) {
                if (strncmp(p, "populated ", 10) == 0)
                        return p[10] != '0';
                p = strchrnul(p, '\n');
                if (!*p)
                        break;
        }
        return -EINVAL;
}

int er_group_cpu_usage(struct er_group *g, uint64_t *ret_us)
{
        char buf[512];
        const char *p;
        ssize_t n;
        int fd;

        if (g->c->kind != ER_CONTAIN_CGROUP2 || g->dir_fd < 0)
                return -EOPNOTSUPP;
        fd = openat(g->dir_fd, "cpu.stat", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        /* Every cgroup2 cgroup has cpu.stat's usage_usec, with or without the
         * cpu controller: the whole tree's CPU time, exited processes included. */
        p = strstr(buf, "usage_usec ");
        if (!p)
                return -ENODATA;
        *ret_us = strtoull(p + 11, NULL, 10);
        return 0;
}

/* ---- limits (cgroup v1 memory and pids) --------------------------------- */

int er_group_procs_fds(struct er_group *g, int *fds, size_t n)
{
        size_t count = 0;

        for (int k = 0; k < ER_V1_N && count < n; k++) {
                if (g->v1_fd[k] < 0)
                        continue;
                fds[count] = openat(g->v1_fd[k], "cgroup.procs", O_WRONLY | O_CLOEXEC);
                if (fds[count] < 0) {
                        int r = -errno;
                        while (count > 0)
                                er_close(&fds[--count]);
                        return r;
                }
                count++;
        }
        return (int)count;
}

static int write_u64_at(int at, const char *name, uint64_t v)
{
        char buf[32];
        snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)v);
        return write_file_at(at, name, buf);
}

int er_group_set_limits(struct er_group *g, const struct er_limits *l, char *why, size_t len)
{
        static const char *const what[ER_V1_N] = {"memory", "pids"};
        const uint64_t want[ER_V1_N] = {l->memory, l->pids};
        static const char *const file[ER_V1_N] = {"memory.limit_in_bytes", "pids.max"};
        uint64_t us;
        int r;

        for (int k = 0; k < ER_V1_N; k++) {
                if (!want[k])
                        continue;
                if (g->v1_fd[k] < 0) {
                        snprintf(why, len, "%s: %s", what[k],
                                 g->c->limits_why[0] ? g->c->limits_why : "no cgroup for it");
                        return 0;
                }
                r = write_u64_at(g->v1_fd[k], file[k], want[k]);
                if (r < 0) {
                        snprintf(why, len, "cannot write %s of '%s': %s", file[k], g->name,
                                 strerror(-r));
                        return r;
                }
        }
        if (l->cpu_time_us && er_group_cpu_usage(g, &us) < 0) {
                snprintf(why, len, "cpu_time: %s", g->c->limits_why[0] ? g->c->limits_why
                                                                         : "no cpu.stat to read");
                return 0;
        }
        return 1;
}

int er_group_oom_fd(struct er_group *g)
{
        char buf[64];
        int ctl = -1, r;

        if (g->oom_fd >= 0)
                return g->oom_fd;
        if (g->v1_fd[ER_V1_MEMORY] < 0)
                return -EOPNOTSUPP;
        g->oom_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (g->oom_fd < 0)
                return -errno;
        ctl = openat(g->v1_fd[ER_V1_MEMORY], "memory.oom_control", O_RDONLY | O_CLOEXEC);
        if (ctl < 0) {
                r = -errno;
                goto fail;
        }
        /* The kernel keeps its own reference to both files. */
        snprintf(buf, sizeof(buf), "%d %d", g->oom_fd, ctl);
        r = write_file_at(g->v1_fd[ER_V1_MEMORY], "cgroup.event_control", buf);
        close(ctl);
        if (r < 0)
                goto fail;
        return g->oom_fd;
fail:
        er_close(&g->oom_fd);
        return r;
}

/* The value of `key` in a "key value" file of a cgroup (key NULL: a file
 * holding one number). */
static int read_key_at(int at, const char *name, const char *key, uint64_t *ret)
{
        char buf[1024];
        size_t kl = key ? strlen(key) : 0;
        ssize_t n;
        int fd = openat(at, name, O_RDONLY | O_CLOEXEC);

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
                *ret = strtoull(buf, NULL, 10);
                return n > 0 ? 0 : -ENODATA;
        }
        for (const char *p = buf; *p; p = *p ? p + 1 : p) {
                if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
                        *ret = strtoull(p + kl, NULL, 10);
                        return 0;
                }
                p = strchrnul(p, '\n');
        }
        return -ENODATA;
}

int er_group_oom_kills(struct er_group *g, uint64_t *ret)
{
        if (g->v1_fd[ER_V1_MEMORY] < 0)
                return -EOPNOTSUPP;
        return read_key_at(g->v1_fd[ER_V1_MEMORY], "memory.oom_control", "oom_kill", ret);
}

int er_group_pids_refused(struct er_group *g, uint64_t *ret)
{
        if (g->v1_fd[ER_V1_PIDS] < 0)
                return -EOPNOTSUPP;
        return read_key_at(g->v1_fd[ER_V1_PIDS], "pids.events", "max", ret);
}

int er_group_memory_peak(struct er_group *g, uint64_t *ret)
{
        if (g->v1_fd[ER_V1_MEMORY] < 0)
                return -EOPNOTSUPP;
        return read_key_at(g->v1_fd[ER_V1_MEMORY], "memory.max_usage_in_bytes", NULL, ret);
}

static bool zombie_pending(void)
{
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0;
}

bool er_group_empty(struct er_group *g)
{
        struct er_pidvec pv = {0};
        int r;

        if (g->c->kind == ER_CONTAIN_CGROUP2 && g->events_fd >= 0) {
                r = cgroup_populated(g->events_fd);
                if (r >= 0)
                        return r == 0;
        }
        /* The /proc scan can miss a process forked after it listed /proc
         * whose parent then died before the scan read it.  As subreaper
         * envrun inherits such a parent as an unreaped zombie: while one
         * is pending the answer is "not yet", and reaping it (SIGCHLD)
         * brings another look, which finds the orphan reparented here. */
        if (zombie_pending())
                return false;
        r = collect(g, &pv, true, true);
        free(pv.v);
        return r == 0 && pv.n == 0 && !zombie_pending();
}
