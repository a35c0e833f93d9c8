/* cleanup: after an instance that died without bringing its environment
 * down (SPEC §5.7): kills what survived, by its cgroups, its marker and
 * its recorded pids, and removes what it left (cleanup.h).
 *
 * Identity of a process: its pid and its start time (/proc/PID/stat field
 * 22).  A pid whose start time differs is another process that reused the
 * number, and is never signalled.  Where the kernel offers it, the check
 * and the signal go through a pidfd, so the pid cannot be reused between
 * them. */
#include "instance/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
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
#include "base/buf.h"
#include "instance/state_priv.h"
#include "proc/cgroup.h"
#include "proc/pids.h"

#define REAP_WAIT_MS 5000 /* for a killed tree to be gone, per step */
#define KILL_PASSES 16    /* rescans for pids forked while killing */
#define MARKER_PASSES 64
#define WAIT_BATCH 256    /* pidfds polled at once */

/* ---- killing, by identity ----------------------------------------------- */

/* A process to kill and wait for: pid + start time, and its pidfd when the
 * kernel has them (-1 otherwise). */
struct target {
        pid_t pid;
        uint64_t start;
        int pidfd;
};

struct targets {
        struct target *v;
        size_t n, cap;
};

static int targets_push(struct targets *t, pid_t pid, uint64_t start, int pidfd)
{
        if (ER_BUF_RESERVE(t->v, t->cap, t->n + 1) < 0)
                return -ENOMEM;
        t->v[t->n++] = (struct target){pid, start, pidfd};
        return 0;
}

static bool targets_has(const struct targets *t, pid_t pid, uint64_t start)
{
        for (size_t i = 0; i < t->n; i++)
                if (t->v[i].pid == pid && t->v[i].start == start)
                        return true;
        return false;
}

static void targets_clear(struct targets *t)
{
        for (size_t i = 0; i < t->n; i++)
                er_close(&t->v[i].pidfd);
        t->n = 0;
}

static void targets_fini(struct targets *t)
{
        targets_clear(t);
        free(t->v);
        t->v = NULL;
        t->cap = 0;
}

/* Whether a process (pid, start) is gone: exited (a zombie counts as gone:
 * its parent, not us, reaps it) or replaced. */
static bool gone(pid_t pid, uint64_t start)
{
        uint64_t now;
        char state = 0;

        return er_pids_stat(pid, &state, &now) < 0 || now != start || state == 'Z' || state == 'X';
}

/* SIGKILL to the process (pid, start) when it is alive under that start
 * time.  Its pidfd is opened first and the start time checked after, so
 * the signal reaches exactly the process checked.  1 killed (added to t,
 * to be waited for), 0 not alive or another process (*mismatch set), or
 * -errno. */
static int kill_exact(pid_t pid, uint64_t start, struct targets *t, bool *mismatch)
{
        uint64_t now;
        char state = 0;
        int fd, r;

        if (mismatch)
                *mismatch = false;
        if (!signallable(pid))
                return 0;
        fd = (int)syscall(SYS_pidfd_open, pid, 0U);
        if (fd < 0 && errno == ESRCH)
                return 0;
        if (fd < 0 && errno != ENOSYS)
                return -errno;
        r = er_pids_stat(pid, &state, &now);
        if (r < 0 || state == 'Z' || state == 'X' || now != start) {
                if (r == 0 && now != start && mismatch)
                        *mismatch = true;
                if (fd >= 0)
                        close(fd);
                return r == -ESRCH ? 0 : r < 0 ? r : 0;
        }
        if (fd >= 0)
                r = (int)syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0U);
        else
                r = kill(pid, SIGKILL);
        if (r < 0) {
                r = errno == ESRCH ? 0 : -errno;
                if (fd >= 0)
                        close(fd);
                return r;
        }
        r = targets_push(t, pid, start, fd);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        return 1;
}

/* Waits (until end) for every target to be gone: a pidfd becomes readable
 * when its process exits; without pidfds, /proc is looked at again. */
static int wait_targets(const struct targets *t, long long end)
{
        struct pollfd pfd[WAIT_BATCH];
        size_t i = 0;

        while (i < t->n) {
                long long left = end - now_ms();
                size_t n = 0, j;
                bool blind = false; /* a target without a pidfd */

                for (j = i; j < t->n && n < WAIT_BATCH; j++) {
                        if (gone(t->v[j].pid, t->v[j].start))
                                continue;
                        pfd[n].fd = t->v[j].pidfd;
                        pfd[n].events = POLLIN;
                        blind |= pfd[n].fd < 0;
                        n++;
                }
                if (n == 0) {
                        i = j; /* this batch is gone: the next one */
                        continue;
                }
                if (left <= 0)
                        return -ETIMEDOUT;
                /* No pidfd: pidfd_open is missing (ENOSYS: kernels before
                 * 5.3, valgrind), and nothing else tells of the exit of a
                 * process that is not our child, so /proc is read again
                 * after at most 5 ms; the pidfds there are (poll skips the
                 * -1 entries) still wake it at once. */
                if (blind && left > 5)
                        left = 5;
                if (poll(pfd, n, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR)
                        return -errno;
        }
        return 0;
}

/* ---- the cgroups ---------------------------------------------------------- */

/* SIGKILL, by pid, to every process of the cgroup tree, rescanning for the
 * ones forked meanwhile until a pass finds none not in seen (the pids
 * killed so far, kept by the caller across calls: a dying process is
 * still listed, and is neither killed nor counted twice).  Adds the kills
 * to *killed. */
static int kill_procs_tree(int dir_fd, struct er_pidvec *seen, unsigned *killed)
{
        struct er_pidvec cur = {0};
        int r = 0;

        for (unsigned pass = 0; pass < KILL_PASSES && r == 0; pass++) {
                size_t fresh = 0;
                cur.n = 0;
                r = er_cgroup_read_tree(dir_fd, &cur);
                for (size_t i = 0; r == 0 && i < cur.n; i++) {
                        pid_t pid = cur.v[i];
                        bool old = false;
                        for (size_t j = 0; j < seen->n && !old; j++)
                                old = seen->v[j] == pid;
                        if (old || !signallable(pid))
                                continue;
                        if (kill(pid, SIGKILL) == 0)
                                (*killed)++;
                        fresh++;
                        r = er_pids_push(seen, pid);
                }
                if (!fresh)
                        break;
        }
        free(cur.v);
        return r;
}

/* Waits, until end, for the cgroup of events_fd to be empty.  kernfs
 * notifies a change of the file as POLLPRI; each read re-arms it, and it is
 * read after the kill, so no change is missed.  Without cgroup.kill
 * (refill_fd >= 0), every pass also kills what was forked meanwhile. */
static int wait_unpopulated(int events_fd, int refill_fd, unsigned *killed, long long end)
{
        struct pollfd pfd = {.fd = events_fd, .events = POLLPRI};
        struct er_pidvec seen = {0};
        int r;

        while ((r = er_cgroup_populated(events_fd)) > 0) {
                long long left = end - now_ms();
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (refill_fd >= 0) {
                        r = kill_procs_tree(refill_fd, &seen, killed);
                        if (r < 0)
                                break;
                        if (left > 100)
                                left = 100;
                }
                if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
        }
        free(seen.v);
        return r;
}

/* Removes the instance's cgroup directory and, in the root layout, the
 * <mount>/envrun above it unless another instance uses it. */
static int remove_cgroup(const char *path)
{
        char *parent;
        int r = er_cgroup_rmdir(AT_FDCWD, path);

        if (r < 0 || strncmp(base_name(path), CG_DELEGATED, strlen(CG_DELEGATED)) == 0)
                return r;
        parent = er_strdup(path);
        if (!parent)
                return 0;
        *strrchr(parent, '/') = '\0';
        if (!strcmp(base_name(parent), CG_TOP))
                rmdir(parent); /* EBUSY/ENOTEMPTY: another instance's too */
        free(parent);
        return 0;
}

/* Opens a recorded cgroup directory, checking it is on the file system
 * named by magic: -ENOENT when it is gone already. */
static int open_cgroup(const char *path, long magic)
{
        struct statfs sf;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (fstatfs(fd, &sf) < 0 || sf.f_type != magic) {
                close(fd);
                return -EMEDIUMTYPE;
        }
        return fd;
}

static bool pidvec_holds_self(const struct er_pidvec *pv)
{
        for (size_t i = 0; i < pv->n; i++)
                if (pv->v[i] == getpid())
                        return true;
        return false;
}

/* The cgroup2 tree: cgroup.kill, else SIGKILL pid by pid; then waits for it
 * to be empty. */
static int reap_cgroup2(int fd, unsigned *killed)
{
        struct er_pidvec pv = {0};
        long long end = now_ms() + REAP_WAIT_MS;
        int events, r;

        events = openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        if (events < 0)
                return -errno;
        r = er_cgroup_read_tree(fd, &pv);
        if (r == 0 && pidvec_holds_self(&pv))
                r = -EDEADLK; /* we are inside the tree to kill: not ours to clean */
        /* Read once before the kill: any change from here on notifies. */
        if (r == 0)
                r = er_cgroup_populated(events);
        if (r <= 0)
                goto out;
        if (er_cgroup_kill(fd) == 0) {
                *killed += (unsigned)pv.n;
                r = wait_unpopulated(events, -1, killed, end);
        } else {
                /* wait_unpopulated kills them, and what they fork meanwhile. */
                r = wait_unpopulated(events, fd, killed, end);
        }
out:
        free(pv.v);
        close(events);
        return r;
}

/* A v1 tree: no cgroup.kill and no notification there, so pid by pid:
 * each is killed through a pidfd (after checking it is the process listed)
 * and waited for on it (a task leaves all its cgroups as it exits), then
 * the tree is read again for what they forked meanwhile.  After the
 * cgroup2 step the processes in it are usually gone already. */
static int reap_cgroup1(int fd, unsigned *killed)
{
        long long end = now_ms() + REAP_WAIT_MS;
        struct er_pidvec pv = {0};
        struct targets t = {0};
        unsigned idle = 0;
        int r;

        for (;;) {
                pv.n = 0;
                r = er_cgroup_read_tree(fd, &pv);
                if (r < 0 || pv.n == 0)
                        break;
                if (pidvec_holds_self(&pv)) {
                        r = -EDEADLK;
                        break;
                }
                if (now_ms() >= end) {
                        r = -ETIMEDOUT;
                        break;
                }
                targets_clear(&t);
                for (size_t i = 0; r >= 0 && i < pv.n; i++) {
                        uint64_t start;
                        char state;
                        if (er_pids_stat(pv.v[i], &state, &start) < 0)
                                continue; /* gone meanwhile */
                        r = kill_exact(pv.v[i], start, &t, NULL);
                        if (r > 0)
                                (*killed)++;
                }
                if (r < 0)
                        break;
                /* Listed, yet nothing left to kill twice in a row: the
                 * listing lags behind exits; a third time is not that. */
                if (t.n == 0 && ++idle > 2) {
                        r = -EBUSY;
                        break;
                }
                r = wait_targets(&t, end);
                if (r < 0)
                        break;
        }
        targets_fini(&t);
        free(pv.v);
        return r < 0 ? r : 0;
}

/* The recorded cgroups: killed, waited for, removed.  A directory that is
 * gone already is fine. */
static int reap_cgroups(const struct er_records *rec, unsigned *killed)
{
        const char *paths[1 + ER_V1_N];
        int fds[1 + ER_V1_N], r = 0;

        paths[0] = rec->cgroup;
        for (int k = 0; k < ER_V1_N; k++)
                paths[1 + k] = rec->v1[k];
        for (int k = 0; k < 1 + ER_V1_N; k++) {
                fds[k] = -1;
                if (!paths[k])
                        continue;
                fds[k] = open_cgroup(paths[k], k == 0 ? CGROUP2_SUPER_MAGIC : CGROUP_SUPER_MAGIC);
                if (fds[k] < 0 && fds[k] != -ENOENT)
                        r = keep_first(r, fds[k]);
        }
        if (fds[0] >= 0)
                r = keep_first(r, reap_cgroup2(fds[0], killed));
        for (int k = 1; k < 1 + ER_V1_N; k++)
                if (fds[k] >= 0)
                        r = keep_first(r, reap_cgroup1(fds[k], killed));
        /* Leaves first, the instance's directory last; v1 too.  A cgroup
         * with a process left in it stays (EBUSY). */
        for (int k = 0; k < 1 + ER_V1_N; k++) {
                if (fds[k] < 0)
                        continue;
                r = keep_first(r, remove_cgroup(paths[k]));
                close(fds[k]);
        }
        return r;
}

/* ---- the marker ----------------------------------------------------------- */

struct marker_scan {
        const char *prefix;
        struct targets *out;
};

static int marker_one(void *ud, int proc_fd, const char *name, pid_t pid)
{
        struct marker_scan *m = ud;
        uint64_t start;
        char state = 0;

        if (!signallable(pid))
                return 0;
        /* The start time first: read after the environment, it could be a
         * later process's under the same pid. */
        if (er_pids_stat(pid, &state, &start) < 0 || state == 'Z' || state == 'X')
                return 0;
        if (er_pids_environ_has(proc_fd, name, m->prefix, true) == 1)
                return targets_push(m->out, pid, start, -1);
        return 0;
}

/* Live processes (zombies left out) with an environment entry starting
 * with prefix, as (pid, start time). */
static int scan_marker(const char *prefix, struct targets *out)
{
        struct marker_scan m = {prefix, out};
        return er_pids_each(marker_one, &m);
}

/* SIGKILL to every process carrying the marker, waiting for each batch to
 * exit, until a scan finds none alive. */
static int reap_marker(const char *marker, unsigned *killed)
{
        struct targets found = {0}, dead = {0};
        long long end = now_ms() + REAP_WAIT_MS;
        int r = 0;

        for (unsigned pass = 0; pass < MARKER_PASSES; pass++) {
                found.n = 0;
                r = scan_marker(marker, &found);
                if (r < 0 || found.n == 0)
                        break;
                targets_clear(&dead);
                for (size_t i = 0; r >= 0 && i < found.n; i++)
                        r = kill_exact(found.v[i].pid, found.v[i].start, &dead, NULL);
                *killed += (unsigned)dead.n;
                if (r >= 0)
                        r = wait_targets(&dead, end);
                if (r < 0)
                        break;
        }
        if (r == 0 && found.n)
                r = -ETIMEDOUT; /* some still found after every pass */
        targets_fini(&found);
        targets_fini(&dead);
        return r;
}

/* ---- recorded pids -------------------------------------------------------- */

static int reap_recorded(const struct er_records *rec, struct er_reaped *out)
{
        struct targets dead = {0};
        bool mismatch;
        int r = 0, k;

        for (size_t i = 0; i <= rec->n_procs; i++) {
                pid_t pid = i < rec->n_procs ? rec->procs[i].pid : rec->supervisor;
                uint64_t start =
                    i < rec->n_procs ? rec->procs[i].start_time : rec->supervisor_start;
                if (!signallable(pid) || targets_has(&dead, pid, start))
                        continue;
                k = kill_exact(pid, start, &dead, &mismatch);
                if (k > 0)
                        out->killed++;
                else if (mismatch)
                        out->spared++;
                r = keep_first(r, k < 0 ? k : 0);
        }
        r = keep_first(r, wait_targets(&dead, now_ms() + REAP_WAIT_MS));
        targets_fini(&dead);
        return r;
}

/* ---- the clean-up ------------------------------------------------------- */

int er_cleanup_reap(struct er_state *st, struct er_reaped *out)
{
        struct er_records rec;
        int r, e;

        memset(out, 0, sizeof(*out));
        if (st->dir_fd < 0 || st->lock_fd < 0)
                return -ENOLCK;
        er_records_init(&rec);
        r = er_records_read(st, &rec);
        if (r == -ENOENT) {
                r = 0;
        } else if (r == 0) {
                out->had_records = true;
                r = reap_cgroups(&rec, &out->killed);
                if (rec.marker) {
                        e = reap_marker(rec.marker, &out->killed);
                        r = keep_first(r, e);
                }
                e = reap_recorded(&rec, out);
                r = keep_first(r, e);
        }
        er_records_fini(&rec);
        /* A clean-up that could not finish keeps its records, for the next
         * one to try again. */
        if (r == 0 && unlinkat(st->dir_fd, RECORDS_NAME, 0) < 0 && errno != ENOENT)
                r = -errno;
        unlinkat(st->dir_fd, RECORDS_TMP, 0);
        unlinkat(st->dir_fd, SOCK_NAME, 0);
        return r;
}

/* "<project>.exec.XXXXXX", exactly. */
static bool exec_name(const char *name, const char *project)
{
        size_t pl = strlen(project), il = strlen(EXEC_INFIX);
        const char *s = name + pl + il;

        if (strncmp(name, project, pl) != 0 || strncmp(name + pl, EXEC_INFIX, il) != 0)
                return false;
        if (strlen(s) != EXEC_SUFFIX_LEN)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= 'A' && *s <= 'Z')))
                        return false;
        return true;
}

/* Cleans one dead exec directory: 1 cleaned, 0 alive (or gone) meanwhile, or -errno. */
static int reap_one(const char *path, struct er_reaped *out)
{
        struct er_reaped one;
        struct er_state st;
        int r;

        r = er_state_probe(path);
        if (r != 0)
                return r == 1 || r == -ENOENT ? 0 : r;
        er_state_init(&st);
        r = er_state_open(&st, path, false);
        if (r == 0)
                r = er_state_lock(&st);
        if (r == -EWOULDBLOCK || r == -ENOENT) {
                er_state_fini(&st);
                return 0; /* taken (or cleaned) by someone else meanwhile */
        }
        if (r == 0) {
                r = er_cleanup_reap(&st, &one);
                out->killed += one.killed;
                out->spared += one.spared;
                out->had_records |= one.had_records;
                /* Records that are not ours hold nothing to act on: the
                 * directory of a dead instance goes all the same. */
                if (r == -EINVAL)
                        r = 0;
        }
        if (r == 0)
                r = er_state_remove(&st, false);
        er_state_fini(&st);
        return r < 0 ? r : 1;
}

int er_cleanup_stale_execs(const char *base, const char *project, struct er_reaped *out)
{
        struct dirent *de;
        DIR *d;
        int fd, r = 0, count = 0;

        if (!*project || strchr(project, '/'))
                return -EINVAL;
        fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((de = readdir(d))) {
                char *path;
                int k;
                if (!exec_name(de->d_name, project))
                        continue;
                if (asprintf(&path, "%s/%s", base, de->d_name) < 0) {
                        r = keep_first(r, -ENOMEM);
                        break;
                }
                k = reap_one(path, out);
                free(path);
                if (k > 0)
                        count++;
                r = keep_first(r, k < 0 ? k : 0);
        }
        closedir(d);
        return r < 0 ? r : count;
}

