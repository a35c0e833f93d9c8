/* contain: one service's process tree, by cgroup2 or by a reaper of its
 * own (SPEC §5.6).  See contain.h for the two mechanisms. */
#include "proc/contain.h"
#include "proc/cgroup.h"
#include "proc/pids.h"
#include "model/config.h"
#include "proc/reaper.h"
#include "proc/spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define MARKER_KEY "ENVRUN_MARKER="
#define TOP_DIR "envrun"           /* as root: <mount>/envrun/<instance> */
#define DELEGATED_PREFIX "envrun." /* delegated: <own cgroup>/envrun.<instance> */
#define SIGNAL_PASSES 8            /* rescans for pids forked while signalling */
#define KILL_PASSES 16
#define MKDIR_TRIES 4 /* another instance may rmdir <mount>/envrun */
#define ANCESTRY_TRIES 8   /* walks up from a pid whose ancestor exited midway */
#define ANCESTRY_DEPTH 4096

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
        snprintf(c->reason, sizeof(c->reason), "reaper: no writable cgroup2 hierarchy (%s: %s)",
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

static const char *const ctl_names[ER_V1_N] = {"memory", "pids"};

/* Pure cgroup v2 (as root): memory and pids enabled in cgroup.subtree_control
 * from the hierarchy's root down to the instance's directory, so that each
 * service's cgroup has memory.max, pids.max and their events.  The
 * directories in between hold no process (the "no internal processes"
 * rule); envrun's own process stays where its caller put it.  A
 * controller that is bound to a v1 hierarchy (hybrid hosts) is not
 * available here; enabling one fails with EBUSY where a cgroup on the way
 * holds processes (a container's namespace root) and EROFS where the
 * hierarchy is read-only: ctl_why says so, and v1 is tried next. */
static void enable_v2(struct er_contain *c, const char *mnt)
{
        char top[PATH_MAX];

        snprintf(top, sizeof(top), "%s/" TOP_DIR, mnt);
        for (int k = 0; k < ER_V1_N; k++) {
                const char *dirs[] = {mnt, top, c->root};
                bool mine[3] = {false, false, false};
                const char *at = mnt;
                int r = 0;

                if (!er_cgroup_has_controller(mnt, ctl_names[k])) {
                        snprintf(c->ctl_why[k], sizeof(c->ctl_why[k]),
                                 "no %s controller in cgroup v2 at %.100s", ctl_names[k], mnt);
                        continue;
                }
                for (size_t i = 0; i < 3 && r == 0; i++) {
                        at = dirs[i];
                        if (er_cgroup_listed(at, "cgroup.subtree_control", ctl_names[k]))
                                continue;
                        r = er_cgroup_enable(at, ctl_names[k]);
                        mine[i] = r == 0;
                }
                if (r < 0) {
                        /* Undo it where it was ours: enabled half way down,
                         * a controller leaves the cgroups below a parent
                         * that holds processes unable to take any (a
                         * threaded one such as pids may be enabled there,
                         * then nothing can join below). */
                        char minus[32], path[PATH_MAX + 32];
                        snprintf(minus, sizeof(minus), "-%s", ctl_names[k]);
                        for (size_t i = 3; i-- > 0;) {
                                if (!mine[i])
                                        continue;
                                snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dirs[i]);
                                (void)er_cgroup_write(AT_FDCWD, path, minus);
                        }
                        snprintf(c->ctl_why[k], sizeof(c->ctl_why[k]),
                                 "cannot enable the %s controller in %.100s: %s", ctl_names[k], at,
                                 strerror(-r));
                        continue;
                }
                c->v2_ctl[k] = true;
                c->ctl_why[k][0] = '\0';
        }
}

/* Hybrid hosts (as root): the instance's directories in the v1 memory and
 * pids hierarchies, for the controllers v2 does not give.  Sets ctl_why
 * and limits_why when a limit cannot be enforced. */
static void try_cgroup1(struct er_contain *c)
{
        static const char *const names[ER_V1_N] = {"memory", "pids"};

        for (int k = 0; k < ER_V1_N; k++) {
                char *mnt, *dir = NULL;
                const char *bad;
                int r;

                if (c->v2_ctl[k])
                        continue;
                mnt = er_cgroup_find_v1(names[k]);
                if (!mnt) {
                        if (c->ctl_why[k][0])
                                continue; /* v2's reason says more */
                        snprintf(c->ctl_why[k], sizeof(c->ctl_why[k]),
                                 "no %s controller (cgroup v1) mounted", names[k]);
                        if (!c->limits_why[0])
                                snprintf(c->limits_why, sizeof(c->limits_why), "%s", c->ctl_why[k]);
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
                if (r < 0)
                        snprintf(c->ctl_why[k], sizeof(c->ctl_why[k]), "%.100s/" TOP_DIR ": %s", mnt,
                                 strerror(-r));
                if (r < 0 && !c->limits_why[0])
                        snprintf(c->limits_why, sizeof(c->limits_why), "%s", c->ctl_why[k]);
                free(mnt);
        }
}

/* Whether every process of the cgroup at dir (not below it) is envrun. */
static bool holds_only_self(const char *dir)
{
        pid_t self = getpid();
        bool only = true;
        char path[PATH_MAX];
        FILE *f;
        long pid;

        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        f = fopen(path, "re");
        if (!f)
                return false;
        while (fscanf(f, "%ld", &pid) == 1)
                if (pid != self)
                        only = false;
        fclose(f);
        return only;
}

/* A subtree delegated to us (systemd's Delegate=yes: the cgroup and its
 * cgroup.procs and cgroup.subtree_control are ours) that holds nothing
 * but envrun: envrun moves itself into the leaf <own>/envrun-self, so that
 * <own> may enable controllers for its children (the "no internal
 * processes" rule), then enables memory and pids, where <own> has them,
 * down to the instance's directory.  Otherwise (other processes there: a
 * terminal's shell in an app scope; a cgroup writable without being
 * delegated) it contains without limits, and ctl_why says why. */
static void enable_delegated(struct er_contain *c, const char *own, const char *inst)
{
        char path[PATH_MAX], pid[32];
        struct stat st;
        const char *why = NULL;
        int e = 0;

        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", own);
        if (stat(own, &st) < 0 || st.st_uid != geteuid() || stat(path, &st) < 0 ||
            st.st_uid != geteuid())
                why = "is writable but not delegated to this user";
        else if (!holds_only_self(own))
                why = "holds other processes besides envrun";
        if (!why) {
                snprintf(path, sizeof(path), "%s/envrun-self", own);
                snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
                if ((mkdir(path, 0755) < 0 && errno != EEXIST) ||
                    (e = er_cgroup_write(AT_FDCWD, strcat(path, "/cgroup.procs"), pid)) < 0) {
                        e = e ? e : -errno;
                        why = "could not take envrun out of it";
                }
        }
        for (int k = 0; k < ER_V1_N; k++) {
                int r = 0;
                if (why) {
                        snprintf(c->ctl_why[k], sizeof(c->ctl_why[k]), "the delegated cgroup %.100s %s%s%s",
                                 own, why, e ? ": " : "", e ? strerror(-e) : "");
                        continue;
                }
                if (!er_cgroup_has_controller(own, ctl_names[k])) {
                        snprintf(c->ctl_why[k], sizeof(c->ctl_why[k]),
                                 "no %s controller delegated in %.100s", ctl_names[k], own);
                        continue;
                }
                if ((r = er_cgroup_enable(own, ctl_names[k])) < 0 ||
                    (r = er_cgroup_enable(inst, ctl_names[k])) < 0) {
                        snprintf(c->ctl_why[k], sizeof(c->ctl_why[k]),
                                 "cannot enable the %s controller in %.100s: %s", ctl_names[k], own,
                                 strerror(-r));
                        continue;
                }
                c->v2_ctl[k] = true;
        }
}

/* Not root: <own cgroup>/envrun.<instance>, when our own cgroup is delegated
 * to us.  Moving a process between two cgroups needs write access to the
 * cgroup.procs of their common ancestor, which is our own cgroup. */
static int mkdir_delegated(struct er_contain *c, const char *mnt, const char *mnt_root, bool limits,
                           char **ret)
{
        char *own = NULL, *procs = NULL, *dir = NULL;
        int r = er_cgroup_own_dir(mnt, mnt_root, &own);

        if (r == -ENOENT)
                snprintf(c->reason, sizeof(c->reason),
                         "reaper: own cgroup not found under the cgroup2 mount %s", mnt);
        else if (r < 0 && r != -ENOMEM)
                snprintf(c->reason, sizeof(c->reason), "reaper: cannot read /proc/self/cgroup: %s",
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
        if (limits)
                enable_delegated(c, own, dir);
        *ret = dir;
        dir = NULL;
        r = 0;
out:
        free(own);
        free(procs);
        free(dir);
        return r;
}

/* Sets up the cgroup2 tree, with its controllers when limits; on failure
 * other than ENOMEM, c->reason says why. */
static int try_cgroup2(struct er_contain *c, bool limits)
{
        char *mnt = NULL, *mnt_root = NULL, *dir = NULL;
        bool root = geteuid() == 0;
        int r = er_cgroup_find_v2(&mnt, &mnt_root);

        if (r == -ENOENT)
                snprintf(c->reason, sizeof(c->reason), "reaper: no cgroup2 hierarchy mounted");
        else if (r < 0 && r != -ENOMEM)
                snprintf(c->reason, sizeof(c->reason),
                         "reaper: cannot read /proc/self/mountinfo: %s", strerror(-r));
        if (r < 0)
                return r;
        if (root) {
                r = mkdir_as_root(c, mnt, &dir);
                if (r < 0 && r != -ENOMEM) {
                        /* Root of a user namespace: the top is not ours,
                         * but our own cgroup may be delegated to us. */
                        char why[sizeof(c->reason)];
                        memcpy(why, c->reason, sizeof(why));
                        r = mkdir_delegated(c, mnt, mnt_root, limits, &dir);
                        if (r < 0)
                                memcpy(c->reason, why, sizeof(why));
                        else
                                root = false;
                }
        } else {
                r = mkdir_delegated(c, mnt, mnt_root, limits, &dir);
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
        if (root && limits)
                enable_v2(c, mnt);
out:
        free(mnt);
        free(mnt_root);
        free(dir);
        return r;
}

int er_contain_init(struct er_contain *c, const char *project, bool force_session, bool limits)
{
        int r;

        c->kind = ER_CONTAIN_REAPER;
        c->instance = NULL;
        c->root = NULL;
        c->root_fd = -1;
        c->reason[0] = '\0';
        c->limits_why[0] = '\0';
        for (int k = 0; k < ER_V1_N; k++) {
                c->ctl_why[k][0] = '\0';
                c->v2_ctl[k] = false;
        }
        c->live = NULL;
        for (int k = 0; k < ER_V1_N; k++) {
                c->v1_fd[k] = -1;
                c->v1_dir[k] = NULL;
        }
        r = make_instance_id(project, &c->instance);
        if (r < 0)
                return r;
        if (force_session) {
                snprintf(c->reason, sizeof(c->reason), "reaper: forced");
        } else {
                r = try_cgroup2(c, limits);
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
        else if (limits)
                try_cgroup1(c);
        /* With cgroup2 it makes envrun, not init, the one to reap a service's
         * orphans; with reapers, the one to inherit a dead reaper's tree
         * (er_contain_sweep).  It cannot fail for a valid argument. */
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        return 0;
}

void er_contain_fini(struct er_contain *c)
{
        if (!c)
                return;
        er_close(&c->root_fd);
        for (int k = 0; k < ER_V1_N; k++) {
                er_close(&c->v1_fd[k]);
                if (c->v1_dir[k]) {
                        char *slash;
                        er_cgroup_rmdir(AT_FDCWD, c->v1_dir[k]);
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
                er_cgroup_rmdir(AT_FDCWD, c->root);
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
        return c->kind == ER_CONTAIN_CGROUP2 ? "cgroup2" : "reaper";
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
        g->main = 0;
        g->oom_fd = -1;
        g->reaper = 0;
        g->reaper_pidfd = g->reaper_cmd = g->reaper_st = -1;
        g->reaper_gone = false;
        g->tree_usage_ok = false;
        g->next_live = NULL;
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
        /* The v1 cgroups are made only for a service that sets a limit
         * (er_group_set_limits): the first join of a v1 hierarchy after an
         * idle moment waits for an RCU grace period (8-16 ms here). */
        r = group_mkdir(g, service, err);
        if (r < 0)
                er_group_fini(g);
        return r;
}

/* The service's cgroup in the v1 hierarchy k, made now. */
static int group_v1(struct er_group *g, int k, char *why, size_t len)
{
        const struct er_contain *c = g->c;
        int r = 0;

        if (g->v1_fd[k] >= 0)
                return 0;
        if (mkdirat(c->v1_fd[k], g->name, 0755) < 0 && errno != EEXIST)
                r = -errno;
        else if ((g->v1_fd[k] = openat(c->v1_fd[k], g->name,
                                       O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
                r = -errno;
        if (r < 0)
                snprintf(why, len, "cannot create cgroup '%s/%s': %s", c->v1_dir[k], g->name,
                         strerror(-r));
        return r;
}

static void live_drop(struct er_group *g);

void er_group_fini(struct er_group *g)
{
        if (!g)
                return;
        live_drop(g);
        if (g->reaper > 0 && !g->reaper_gone) {
                /* Not normally reached: the owner waits for the tree to be
                 * gone.  Closing the command pipe makes the reaper kill its
                 * tree; it is then reaped as an orphan. */
                er_reaper_send(g->reaper_cmd, ER_REAPER_KILL, 0);
        }
        er_close(&g->reaper_cmd);
        er_close(&g->reaper_st);
        er_close(&g->reaper_pidfd);
        er_close(&g->events_fd);
        er_close(&g->dir_fd);
        er_close(&g->oom_fd);
        if (g->name && g->c && g->c->kind == ER_CONTAIN_CGROUP2 && g->c->root_fd >= 0)
                er_cgroup_rmdir(g->c->root_fd, g->name);
        for (int k = 0; k < ER_V1_N; k++) {
                if (g->v1_fd[k] < 0)
                        continue;
                er_close(&g->v1_fd[k]);
                if (g->name && g->c->v1_fd[k] >= 0)
                        er_cgroup_rmdir(g->c->v1_fd[k], g->name);
        }
        free(g->name);
        g->name = NULL;
}

int er_group_cgroup_fd(const struct er_group *g)
{
        return g->dir_fd;
}

int er_group_started(struct er_group *g, struct er_child *child)
{
        char buf[32];
        pid_t pid = child->pid;

        if (pid <= 0)
                return -EINVAL;
        g->main = pid;
        if (child->reaper_pid > 0) {
                g->reaper = child->reaper_pid;
                g->reaper_pidfd = child->reaper_pidfd;
                g->reaper_cmd = child->reaper_cmd;
                g->reaper_st = child->reaper_st;
                child->reaper_pidfd = child->reaper_cmd = child->reaper_st = -1;
                g->reaper_gone = false;
                g->next_live = g->c->live;
                g->c->live = g;
                return 0;
        }
        if (g->c->kind != ER_CONTAIN_CGROUP2 || child->in_cgroup)
                return 0;
        if (g->dir_fd < 0)
                return -EBADF;
        snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
        return er_cgroup_write(g->dir_fd, "cgroup.procs", buf);
}

/* ---- members: the marker (the last-resort sweep) ------------------------- */

struct marker_scan {
        const char *marker;
        pid_t self;
        struct er_pidvec *out;
};

static int marker_one(void *ud, int proc_fd, const char *name, pid_t pid)
{
        struct marker_scan *m = ud;

        if (pid == m->self || er_pids_environ_has(proc_fd, name, m->marker, false) <= 0)
                return 0;
        return er_pids_push(m->out, pid);
}

/* Processes whose environment holds `marker`.  Races with processes
 * exiting are ignored. */
static int proc_scan(const char *marker, struct er_pidvec *out)
{
        struct marker_scan m = {marker, getpid(), out};
        return er_pids_each(marker_one, &m);
}

int er_contain_scan_marker(const char *marker, pid_t *pids, size_t n)
{
        struct er_pidvec pv = {0};
        int r;

        if (!marker || !*marker)
                return -EINVAL;
        r = proc_scan(marker, &pv);
        if (r == 0) {
                pidvec_sort_uniq(&pv);
                r = pidvec_export(&pv, pids, n);
        }
        free(pv.v);
        return r;
}

/* ---- members: a reaper's descendants (er_pids_tree_append) --------------------- */

static void live_drop(struct er_group *g)
{
        struct er_group **pp;

        if (!g->c)
                return;
        for (pp = &g->c->live; *pp; pp = &(*pp)->next_live)
                if (*pp == g) {
                        *pp = g->next_live;
                        break;
                }
        g->next_live = NULL;
}

static bool is_live_reaper(const struct er_contain *c, pid_t pid)
{
        for (const struct er_group *g = c->live; g; g = g->next_live)
                if (g->reaper == pid)
                        return true;
        return false;
}

void er_contain_sweep(struct er_contain *c)
{
        struct er_pidvec kids = {0}, seen = {0}, tree = {0};

        for (unsigned pass = 0; pass < KILL_PASSES; pass++) {
                size_t fresh = 0;
                kids.n = 0;
                if (er_pids_children(getpid(), &kids) < 0)
                        break;
                pidvec_sort_uniq(&seen);
                for (size_t i = 0; i < kids.n; i++) {
                        pid_t pid = kids.v[i];
                        if (is_live_reaper(c, pid) || pidvec_has(&seen, pid))
                                continue;
                        /* Its descendants first: once it dies they would
                         * reparent here and need another pass. */
                        tree.n = 0;
                        (void)er_pids_tree_append(pid, &tree);
                        kill(pid, SIGKILL);
                        for (size_t k = 0; k < tree.n; k++)
                                kill(tree.v[k], SIGKILL);
                        if (er_pids_push(&seen, pid) < 0)
                                break;
                        fresh++;
                }
                if (!fresh)
                        break;
        }
        free(kids.v);
        free(seen.v);
        free(tree.v);
}

/* ---- members: either kind ------------------------------------------------- */

/* The group's members, sorted, without duplicates. */
static int collect(struct er_group *g, struct er_pidvec *out)
{
        int r = 0;

        out->n = 0;
        if (g->c->kind == ER_CONTAIN_CGROUP2)
                r = g->dir_fd < 0 ? -EBADF : er_cgroup_read_tree(g->dir_fd, out);
        else if (g->reaper > 0 && !g->reaper_gone)
                r = er_pids_tree_append(g->reaper, out);
        if (r == 0)
                pidvec_sort_uniq(out);
        return r;
}

/* One pass: signals the members of cur not in seen (sorted), adds them to
 * seen.  Returns how many were new (0: the signalling is over), or -errno. */
static int signal_pass(int sig, bool cont, struct er_pidvec *cur, struct er_pidvec *seen,
                       int *count, int *err)
{
        size_t fresh = 0;
        int r = 0;

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
                r = er_pids_push(seen, cur->v[i]);
        pidvec_sort_uniq(seen);
        return r < 0 ? r : (int)(fresh > INT_MAX ? INT_MAX : fresh);
}

/* Signals every member once, listing again until a pass finds no new one
 * (a member forked while we were signalling gets the same signal), at most
 * `passes` times.  (A shortcut that skipped the second listing when
 * ns_last_pid had not moved was unsound: a fork in flight has its pid
 * before it shows in cgroup.procs, and a process reparented to a reaper
 * during the walk takes no new pid at all.) */
static int signal_loop(struct er_group *g, int sig, bool cont, unsigned passes)
{
        struct er_pidvec seen = {0}, cur = {0};
        int count = 0, err = 0, r = 0;

        for (unsigned pass = 0; pass < passes; pass++) {
                r = collect(g, &cur);
                if (r < 0)
                        break;
                r = signal_pass(sig, cont, &cur, &seen, &count, &err);
                if (r <= 0)
                        break;
        }
        free(seen.v);
        free(cur.v);
        if (r < 0 && !count)
                return r;
        return count || !err ? count : err;
}

int er_group_signal(struct er_group *g, int sig, bool cont)
{
        return signal_loop(g, sig, cont, SIGNAL_PASSES);
}

int er_group_kill(struct er_group *g)
{
        struct er_pidvec pv = {0};
        int r;

        if (g->c->kind != ER_CONTAIN_CGROUP2) {
                /* The reaper kills and reaps until it has no child left,
                 * then exits, from inside the tree; our passes are for a
                 * reaper that cannot act (stopped).  Not the sixteen
                 * passes of the other kinds: walking a
                 * fork storm's tree again and again kept envrun from
                 * reading the reaper's status pipe, the reaper blocked on
                 * it and stopped reaping, and the zombies filled the pid
                 * space (t_stress, storm). */
                if (g->reaper <= 0 || g->reaper_gone)
                        return signal_loop(g, SIGKILL, false, KILL_PASSES);
                /* One pass, which also counts what needed SIGKILL for the
                 * report, then the reaper, then one pass for a fork that
                 * raced the first. */
                r = signal_loop(g, SIGKILL, false, 1);
                er_reaper_send(g->reaper_cmd, ER_REAPER_KILL, 0);
                (void)signal_loop(g, SIGKILL, false, 1);
                return r;
        }
        r = collect(g, &pv);
        free(pv.v);
        if (r < 0)
                return r;
        /* cgroup.kill (5.14+) kills the subtree at once, and forks racing
         * with it too; without it (ENOENT), kill pid by pid. */
        if (er_cgroup_kill(g->dir_fd) < 0) {
                r = signal_loop(g, SIGKILL, false, KILL_PASSES);
                if (r < 0)
                        return r;
        }
        return (int)pv.n;
}

int er_group_pids(struct er_group *g, pid_t *pids, size_t n)
{
        struct er_pidvec pv = {0};
        int r = collect(g, &pv);

        if (r == 0)
                r = pidvec_export(&pv, pids, n);
        free(pv.v);
        return r;
}

/* Whether pid descends from root, by the chain of parents: 1, 0, or
 * -errno.  Each parent is read at one instant, so a process that is being
 * reparented (its parent exiting: it moves to the subreaper root) is found
 * either way, where a walk down the children lists can miss it.  A link
 * that exits midway makes the walk start again from pid. */
static int descends_from(pid_t pid, pid_t root)
{
        for (unsigned t = 0; t < ANCESTRY_TRIES; t++) {
                pid_t p = pid;
                unsigned depth = 0;
                for (; depth < ANCESTRY_DEPTH; depth++) {
                        p = er_pids_parent(p);
                        if (p == root)
                                return 1;
                        if (p <= 1)
                                break;
                }
                if (p == 0 || p == 1 || depth == ANCESTRY_DEPTH)
                        return 0; /* reached the top: not below root */
                if (p == -ESRCH) {
                        if (er_pids_parent(pid) < 0)
                                return 0; /* pid itself is gone */
                        continue;         /* a link exited: again */
                }
                return p;
        }
        return 0;
}

int er_group_has(struct er_group *g, pid_t pid)
{
        struct er_pidvec pv = {0};
        int r;

        if (pid <= 0)
                return 0;
        /* The reaper's tree: the pid's chain of parents reaches the reaper.
         * Children lists would miss a process in the middle of reparenting,
         * and cost a walk of the whole tree. */
        if (g->c->kind != ER_CONTAIN_CGROUP2)
                return g->reaper > 0 && !g->reaper_gone ? descends_from(pid, g->reaper) : 0;
        r = collect(g, &pv);
        if (r == 0)
                r = pidvec_has(&pv, pid);
        free(pv.v);
        return r;
}

int er_group_signal_main(struct er_group *g, int sig)
{
        if (g->main <= 0)
                return -ESRCH;
        /* The reaper signals it only while it has not reaped it: a pid it
         * reaped may be someone else's by now. */
        if (g->reaper > 0)
                return g->reaper_gone ? -ESRCH : er_reaper_send(g->reaper_cmd,
                                                                 ER_REAPER_SIGNAL_MAIN, sig);
        return kill(g->main, sig) < 0 ? -errno : 0;
}

/* ---- the reaper's events -------------------------------------------------- */

int er_group_reaper_read(struct er_group *g, struct er_reaper_msg *m)
{
        for (;;) {
                int r = g->reaper_st < 0 ? 0 : er_reaper_read(g->reaper_st, m);
                if (r == -EAGAIN)
                        return 0;
                if (r <= 0) {
                        er_close(&g->reaper_st); /* EOF: it exited; an error: no more */
                        return r;
                }
                if (m->type != ER_REAPER_GONE)
                        return 1;
                er_reaper_rusage(m, &g->tree_usage);
                g->tree_usage_ok = true;
        }
}

int er_group_reaper_fd(const struct er_group *g)
{
        return g->reaper_st;
}

int er_group_reaper_pidfd(const struct er_group *g)
{
        return g->reaper_pidfd;
}

int er_group_reaper_reap(struct er_group *g)
{
        siginfo_t si;
        int r;

        if (g->reaper <= 0 || g->reaper_gone)
                return 0;
        memset(&si, 0, sizeof(si));
        if (g->reaper_pidfd >= 0)
                r = (int)syscall(SYS_waitid, P_PIDFD, g->reaper_pidfd, &si, WEXITED | WNOHANG,
                                 NULL);
        else
                r = waitid(P_PID, (id_t)g->reaper, &si, WEXITED | WNOHANG);
        if (r < 0 && errno != ECHILD)
                return -errno;
        if (r == 0 && si.si_pid == 0)
                return 0;
        /* ECHILD: reaped by someone else (a caller's blind waitpid); how
         * it ended is unknown, and taken as a clean exit. */
        if (r < 0) {
                si.si_code = CLD_EXITED;
                si.si_status = 0;
        }
        g->reaper_gone = true;
        live_drop(g);
        er_close(&g->reaper_pidfd);
        er_close(&g->reaper_cmd);
        /* A reaper exits 0 when its tree is empty.  Killed (by the OOM
         * killer, by a user's kill -9), it leaves its tree to envrun, the
         * subreaper above it: kill what envrun does not know. */
        if (si.si_code != CLD_EXITED || si.si_status != 0) {
                er_contain_sweep(g->c);
                return 2;
        }
        return 1;
}

bool er_group_reaper_owns(const struct er_group *g, pid_t pid)
{
        return g->reaper > 0 && !g->reaper_gone && g->reaper == pid;
}

int er_group_cpu_usage(struct er_group *g, uint64_t *ret_us)
{
        char buf[512];
        const char *p;
        ssize_t n;
        int fd;

        if (g->c->kind == ER_CONTAIN_REAPER && g->tree_usage_ok) {
                const struct rusage *ru = &g->tree_usage;
                *ret_us = (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000 +
                          (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec);
                return 0;
        }
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
        return er_cgroup_write(at, name, buf);
}

/* Appends "what: reason" to why, "; " between two. */
static void why_add(char *why, size_t len, const char *what, const char *reason)
{
        size_t n = strlen(why);
        if (n < len)
                snprintf(why + n, len - n, "%s%s: %s", n ? "; " : "", what, reason);
}

int er_group_set_limits(struct er_group *g, const struct er_limits *l, char *why, size_t len)
{
        const uint64_t want[ER_V1_N] = {l->memory, l->pids};
        static const char *const file_v1[ER_V1_N] = {"memory.limit_in_bytes", "pids.max"};
        static const char *const file_v2[ER_V1_N] = {"memory.max", "pids.max"};
        const struct er_contain *c = g->c;
        bool all = true;
        uint64_t us;
        int r;

        if (len)
                why[0] = '\0';
        for (int k = 0; k < ER_V1_N; k++) {
                const char *file = file_v1[k];
                int at;
                if (!want[k])
                        continue;
                if (c->kind == ER_CONTAIN_CGROUP2 && c->v2_ctl[k] && g->dir_fd >= 0) {
                        at = g->dir_fd;
                        file = file_v2[k];
                } else if (c->kind == ER_CONTAIN_CGROUP2 && c->v1_fd[k] >= 0) {
                        if ((r = group_v1(g, k, why, len)) < 0)
                                return r;
                        at = g->v1_fd[k];
                } else {
                        why_add(why, len, ctl_names[k],
                                c->kind != ER_CONTAIN_CGROUP2 ? "no cgroup to hold it (reaper containment)"
                                : c->ctl_why[k][0]            ? c->ctl_why[k]
                                : c->limits_why[0]            ? c->limits_why
                                                              : "no cgroup for it");
                        all = false;
                        continue;
                }
                r = write_u64_at(at, file, want[k]);
                /* v2: swap would turn the limit into slowness, not a limit
                 * (memory.swap.max exists only with swap accounting).  v1
                 * limits RAM only: memsw is left alone (doc/containment.md). */
                if (r == 0 && at == g->dir_fd && k == ER_V1_MEMORY) {
                        int s = er_cgroup_write(at, "memory.swap.max", "0");
                        if (s < 0 && s != -ENOENT)
                                r = s, file = "memory.swap.max";
                }
                if (r < 0) {
                        snprintf(why, len, "cannot write %s of '%s': %s", file, g->name,
                                 strerror(-r));
                        return r;
                }
        }
        /* The reaper's tree CPU is known only at its end: no limit on it. */
        if (l->cpu_time_us && (c->kind != ER_CONTAIN_CGROUP2 || er_group_cpu_usage(g, &us) < 0)) {
                why_add(why, len, "cpu_time",
                        c->kind != ER_CONTAIN_CGROUP2
                            ? "no cgroup to read the tree's CPU time from (reaper containment)"
                            : "no cpu.stat to read");
                all = false;
        }
        return all ? 1 : 0;
}

static bool mem_v2(const struct er_group *g)
{
        return g->c->kind == ER_CONTAIN_CGROUP2 && g->c->v2_ctl[ER_V1_MEMORY] && g->dir_fd >= 0;
}

static bool pids_v2(const struct er_group *g)
{
        return g->c->kind == ER_CONTAIN_CGROUP2 && g->c->v2_ctl[ER_V1_PIDS] && g->dir_fd >= 0;
}

int er_group_oom_fd(struct er_group *g, uint32_t *ret_events)
{
        char buf[64];
        int ctl = -1, r;

        *ret_events = mem_v2(g) ? EPOLLPRI : EPOLLIN;
        if (g->oom_fd >= 0)
                return g->oom_fd;
        if (mem_v2(g)) {
                /* kernfs notifies every change of memory.events. */
                g->oom_fd = openat(g->dir_fd, "memory.events", O_RDONLY | O_CLOEXEC);
                return g->oom_fd >= 0 ? g->oom_fd : -errno;
        }
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
        r = er_cgroup_write(g->v1_fd[ER_V1_MEMORY], "cgroup.event_control", buf);
        close(ctl);
        if (r < 0)
                goto fail;
        return g->oom_fd;
fail:
        er_close(&g->oom_fd);
        return r;
}

int er_group_oom_kills(struct er_group *g, uint64_t *ret)
{
        if (mem_v2(g))
                return er_cgroup_read_key(g->dir_fd, "memory.events", "oom_kill", ret);
        if (g->v1_fd[ER_V1_MEMORY] < 0)
                return -EOPNOTSUPP;
        return er_cgroup_read_key(g->v1_fd[ER_V1_MEMORY], "memory.oom_control", "oom_kill", ret);
}

int er_group_pids_refused(struct er_group *g, uint64_t *ret)
{
        if (pids_v2(g))
                return er_cgroup_read_key(g->dir_fd, "pids.events", "max", ret);
        if (g->v1_fd[ER_V1_PIDS] < 0)
                return -EOPNOTSUPP;
        return er_cgroup_read_key(g->v1_fd[ER_V1_PIDS], "pids.events", "max", ret);
}

int er_group_memory_peak(struct er_group *g, uint64_t *ret, bool *ret_is_tree)
{
        int r;

        *ret_is_tree = false;
        if (g->c->kind == ER_CONTAIN_REAPER && g->tree_usage_ok) {
                *ret = (uint64_t)g->tree_usage.ru_maxrss * 1024;
                return 0;
        }
        /* memory.peak: kernel 5.19+; older ones fall back to the largest
         * process's (the report says so). */
        if (mem_v2(g))
                r = er_cgroup_read_key(g->dir_fd, "memory.peak", NULL, ret);
        else if (g->v1_fd[ER_V1_MEMORY] >= 0)
                r = er_cgroup_read_key(g->v1_fd[ER_V1_MEMORY], "memory.max_usage_in_bytes", NULL, ret);
        else
                r = -EOPNOTSUPP;
        *ret_is_tree = r == 0;
        return r;
}

bool er_group_empty(struct er_group *g)
{
        struct er_pidvec pv = {0};
        int r;

        if (g->c->kind == ER_CONTAIN_REAPER)
                return g->reaper <= 0 || g->reaper_gone;
        if (g->events_fd >= 0) {
                r = er_cgroup_populated(g->events_fd);
                if (r >= 0)
                        return r == 0;
        }
        r = collect(g, &pv);
        free(pv.v);
        return r == 0 && pv.n == 0;
}
