/* state: an instance's state directory and the clean-up after a dead
 * instance (SPEC §7, §5.7).  See state.h for the layout.
 *
 * Identity of a process: its pid and its start time (/proc/PID/stat field
 * 22).  A pid whose start time differs is another process that reused the
 * number, and is never signalled.  Where the kernel offers it, the check
 * and the signal go through a pidfd, so the pid cannot be reused between
 * them. */
#include "instance/state.h"
#include "proc/cgroup.h"
#include "proc/pids.h"

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

#define LOCK_NAME "lock"
#define RECORDS_NAME "records.json"
#define RECORDS_TMP "records.json.tmp"
#define SOCK_NAME "control.sock"
#define RECORDS_FORMAT 1
#define RECORDS_MAX (8 * 1024 * 1024) /* bytes of records.json we read */
#define PROCS_MAX 100000              /* processes in one records.json */
#define MARKER_KEY "ENVRUN_MARKER="
#define CG_TOP "envrun"        /* root layout: <mount>/envrun/<instance> */
#define CG_DELEGATED "envrun." /* delegated: <own cgroup>/envrun.<instance> */
#define EXEC_INFIX ".exec."
#define EXEC_SUFFIX_LEN 6        /* mkdtemp's XXXXXX */
#define REMOVE_DEPTH_MAX 256     /* directories deep under the state directory */
#define REAP_WAIT_MS 5000        /* for a killed tree to be gone, per step */
#define KILL_PASSES 16           /* rescans for pids forked while killing */
#define MARKER_PASSES 64
#define WAIT_BATCH 256     /* pidfds polled at once */
#define CREATE_TRIES 16

/* ---- small helpers ------------------------------------------------------ */

static long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A pid we may signal: never init, the kernel's pid 0, or ourselves. */
static bool signallable(pid_t pid)
{
        return pid > 1 && pid != getpid();
}

static int keep_first(int r, int err)
{
        return r < 0 ? r : err;
}

/* The last component of a path ("" for "/"). */
static const char *base_name(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

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
        st->lock_fd = -1;
}

void er_state_fini(struct er_state *st)
{
        if (!st)
                return;
        er_close(&st->lock_fd);
        er_close(&st->dir_fd);
        free(st->dir);
        st->dir = NULL;
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
                fd = openat(st->dir_fd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
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
        fd = openat(dfd, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        r = fd < 0 ? -errno : 0;
        close(dfd);
        if (r == -ENOENT)
                return 0; /* never locked */
        if (r < 0)
                return r;
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
 * moment it exists, so er_state_reap_stale_execs never takes a starting
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

int er_state_make_dirs(struct er_state *st)
{
        int r;

        if (st->dir_fd < 0)
                return -EBADF;
        r = mkdir_at(st->dir_fd, "logs");
        return r < 0 ? r : mkdir_at(st->dir_fd, "tmp");
}

/* ---- removal -------------------------------------------------------------- */

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

int er_state_remove(struct er_state *st, bool keep_tmp)
{
        struct stat sb;
        int fd, r;

        if (st->dir_fd < 0 || !st->dir)
                return -EBADF;
        if (fstat(st->dir_fd, &sb) < 0)
                return -errno;
        /* readdir on a fresh fd: dir_fd's own offset stays untouched. */
        fd = openat(st->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = empty_dir(fd, sb.st_dev, 0, LOCK_NAME, keep_tmp ? "tmp" : NULL);
        /* The lock file last: while it is there, the directory is ours. */
        if (unlinkat(st->dir_fd, LOCK_NAME, 0) < 0 && errno != ENOENT)
                r = keep_first(r, -errno);
        if (keep_tmp && fstatat(st->dir_fd, "tmp", &sb, AT_SYMLINK_NOFOLLOW) == 0)
                return r;
        if (r == 0 && rmdir(st->dir) < 0 && errno != ENOENT)
                r = -errno;
        return r;
}

/* ---- records -------------------------------------------------------------- */

void er_records_init(struct er_records *r)
{
        memset(r, 0, sizeof(*r));
}

void er_records_fini(struct er_records *r)
{
        if (!r)
                return;
        free(r->containment);
        free(r->cgroup);
        for (int k = 0; k < ER_V1_N; k++)
                free(r->v1[k]);
        free(r->marker);
        for (size_t i = 0; i < r->n_procs; i++)
                free(r->procs[i].service);
        free(r->procs);
        er_records_init(r);
}

/* Reads state (field 3) and start time (field 22) of /proc/PID/stat.  comm
 * (field 2) may hold spaces and ')': the fields are counted from the last ')'. */
static int read_stat(pid_t pid, char *ret_state, uint64_t *ret_start)
{
        char path[64], buf[1024], *p, *end;
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
        if (!p || p[1] != ' ' || !p[2])
                return -EINVAL;
        p += 2;
        if (ret_state)
                *ret_state = *p;
        for (field = 3; field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EINVAL;
                p++;
        }
        errno = 0;
        *ret_start = strtoull(p, &end, 10);
        if (errno || end == p || (*end != ' ' && *end != '\n' && *end))
                return -EINVAL;
        return 0;
}

int er_proc_start_time(pid_t pid, uint64_t *ret)
{
        uint64_t t;
        int r = read_stat(pid, NULL, &t);

        if (r == 0)
                *ret = t;
        return r;
}

static int set_str(char **dst, const char *src)
{
        char *s = NULL;

        if (src && !(s = er_strdup(src)))
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

int er_records_from_contain(struct er_records *r, const struct er_contain *c)
{
        char *marker = NULL;
        int e;

        if (!c->instance)
                return -EINVAL;
        if (asprintf(&marker, MARKER_KEY "%s/", c->instance) < 0)
                return -ENOMEM;
        free(r->marker);
        r->marker = marker;
        e = set_str(&r->containment, er_contain_name(c));
        if (e == 0)
                e = set_str(&r->cgroup, c->kind == ER_CONTAIN_CGROUP2 ? c->root : NULL);
        for (int k = 0; e == 0 && k < ER_V1_N; k++)
                e = set_str(&r->v1[k], c->v1_dir[k]);
        if (e < 0)
                return e;
        r->supervisor = getpid();
        /* An unknown start time (0) never matches: the supervisor is then
         * never killed by a clean-up, which is the safe side. */
        if (er_proc_start_time(r->supervisor, &r->supervisor_start) < 0)
                r->supervisor_start = 0;
        return 0;
}

int er_records_set_proc(struct er_records *r, const char *service, pid_t pid)
{
        struct er_record_proc *v;
        uint64_t start = 0;
        char *name;
        int e;

        if (!service || !*service || pid <= 0)
                return -EINVAL;
        e = er_proc_start_time(pid, &start);
        if (e < 0)
                return e;
        for (size_t i = 0; i < r->n_procs; i++) {
                if (strcmp(r->procs[i].service, service) == 0) {
                        r->procs[i].pid = pid;
                        r->procs[i].start_time = start;
                        return 0;
                }
        }
        if (r->n_procs >= PROCS_MAX)
                return -E2BIG;
        name = er_strdup(service);
        if (!name)
                return -ENOMEM;
        v = realloc(r->procs, (r->n_procs + 1) * sizeof(*v));
        if (!v) {
                free(name);
                return -ENOMEM;
        }
        r->procs = v;
        v[r->n_procs++] = (struct er_record_proc){name, pid, start};
        return 0;
}

static const char *const v1_names[ER_V1_N] = {"memory", "pids"};

static json_t *str_or_null(const char *s)
{
        return s ? json_string(s) : json_null();
}

/* Every json_*_set_new/append_new takes its value, even on failure (a NULL
 * from a failed allocation included): errors are collected, nothing leaks. */
static json_t *records_json(const struct er_records *r)
{
        json_t *root = json_object(), *sup = json_object(), *v1 = json_object(),
               *procs = json_array();
        int e = 0;

        if (!root) {
                json_decref(sup);
                json_decref(v1);
                json_decref(procs);
                return NULL;
        }
        e |= json_object_set_new(root, "envrun_records", json_integer(RECORDS_FORMAT));
        e |= json_object_set_new(root, "supervisor", sup);
        e |= json_object_set_new(root, "containment", str_or_null(r->containment));
        e |= json_object_set_new(root, "cgroup", str_or_null(r->cgroup));
        e |= json_object_set_new(root, "v1", v1);
        e |= json_object_set_new(root, "marker", str_or_null(r->marker));
        e |= json_object_set_new(root, "procs", procs);
        if (e) {
                json_decref(root);
                return NULL;
        }
        /* sup, v1 and procs are root's now (borrowed here). */
        e |= json_object_set_new(sup, "pid", json_integer(r->supervisor));
        e |= json_object_set_new(sup, "start_time", json_integer((json_int_t)r->supervisor_start));
        for (int k = 0; k < ER_V1_N; k++)
                e |= json_object_set_new(v1, v1_names[k], str_or_null(r->v1[k]));
        for (size_t i = 0; !e && i < r->n_procs; i++)
                e |= json_array_append_new(
                    procs, json_pack("{s:s, s:I, s:I}", "service", r->procs[i].service, "pid",
                                     (json_int_t)r->procs[i].pid, "start_time",
                                     (json_int_t)r->procs[i].start_time));
        if (e) {
                json_decref(root);
                return NULL;
        }
        return root;
}

static int write_all(int fd, const char *s, size_t len)
{
        while (len) {
                ssize_t w = write(fd, s, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                s += w;
                len -= (size_t)w;
        }
        return 0;
}

int er_state_write_records(struct er_state *st, const struct er_records *r)
{
        json_t *root;
        char *text;
        int fd, e;

        if (st->dir_fd < 0)
                return -EBADF;
        root = records_json(r);
        if (!root)
                return -ENOMEM;
        text = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!text)
                return -ENOMEM;
        fd = openat(st->dir_fd, RECORDS_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                    0600);
        if (fd < 0) {
                e = -errno;
                free(text);
                return e;
        }
        e = write_all(fd, text, strlen(text));
        if (e == 0)
                e = write_all(fd, "\n", 1);
        free(text);
        if (close(fd) < 0 && e == 0)
                e = -errno;
        if (e == 0 && renameat(st->dir_fd, RECORDS_TMP, st->dir_fd, RECORDS_NAME) < 0)
                e = -errno;
        if (e < 0)
                unlinkat(st->dir_fd, RECORDS_TMP, 0);
        return e;
}

/* A string member, or NULL for null/missing; -EINVAL for another type. */
static int get_str(json_t *o, const char *key, char **ret)
{
        json_t *v = json_object_get(o, key);

        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return -EINVAL;
        *ret = er_strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_int(json_t *o, const char *key, json_int_t min, json_int_t max, json_int_t *ret)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return -EINVAL;
        *ret = json_integer_value(v);
        return 0;
}

/* "ENVRUN_MARKER=<instance>/" -> <instance> (borrowed, length in *len). */
static const char *marker_instance(const char *marker, size_t *len)
{
        size_t kl = strlen(MARKER_KEY), ml;

        if (!marker || strncmp(marker, MARKER_KEY, kl) != 0)
                return NULL;
        ml = strlen(marker);
        if (ml < kl + 2 || marker[ml - 1] != '/')
                return NULL;
        *len = ml - kl - 1;
        return marker + kl;
}

static bool valid_instance(const char *s, size_t len)
{
        return len && !memchr(s, '/', len) && !memchr(s, '\n', len) && !(len == 1 && s[0] == '.') &&
               !(len == 2 && !strncmp(s, "..", 2));
}

/* A cgroup directory of the instance: "<...>/envrun/<instance>" (root), or
 * for the v2 one also "<...>/envrun.<instance>" (delegated).  A
 * records.json naming any other directory is refused: a clean-up writes to
 * cgroup.kill there. */
static bool instance_cgroup(const char *path, const char *inst, size_t il, bool v2)
{
        const char *b = base_name(path);
        size_t bl = strlen(b), pl = strlen(path), tl = strlen(CG_TOP), dl = strlen(CG_DELEGATED);

        if (path[0] != '/' || strstr(path, "/../") || strstr(path, "/./"))
                return false;
        if (bl == il && !strncmp(b, inst, il))
                return pl >= bl + tl + 2 && !strncmp(b - tl - 1, CG_TOP, tl) && b[-tl - 2] == '/';
        return v2 && bl == dl + il && !strncmp(b, CG_DELEGATED, dl) && !strncmp(b + dl, inst, il);
}

static int parse_procs(json_t *a, struct er_records *r)
{
        size_t n = json_array_size(a);

        if (!json_is_array(a) || n > PROCS_MAX)
                return -EINVAL;
        r->procs = calloc(n ? n : 1, sizeof(*r->procs));
        if (!r->procs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *p = json_array_get(a, i);
                struct er_record_proc *rp = &r->procs[i];
                json_int_t pid, start;
                int e;

                if (!json_is_object(p))
                        return -EINVAL;
                e = get_str(p, "service", &rp->service);
                r->n_procs = i + 1; /* what fini must free */
                if (e == 0 && (!rp->service || !*rp->service))
                        e = -EINVAL;
                if (e == 0)
                        e = get_int(p, "pid", 1, INT_MAX, &pid);
                if (e == 0)
                        e = get_int(p, "start_time", 0, INT64_MAX, &start);
                if (e < 0)
                        return e;
                rp->pid = (pid_t)pid;
                rp->start_time = (uint64_t)start;
        }
        return 0;
}

static int parse_records(json_t *root, struct er_records *r)
{
        json_t *sup = json_object_get(root, "supervisor"), *v1 = json_object_get(root, "v1");
        json_int_t fmt, pid, start;
        const char *inst = NULL;
        size_t il = 0;
        int e;

        if (!json_is_object(root) || get_int(root, "envrun_records", 1, INT_MAX, &fmt) < 0 ||
            fmt != RECORDS_FORMAT || !json_is_object(sup) || (v1 && !json_is_object(v1)))
                return -EINVAL;
        if (get_int(sup, "pid", 0, INT_MAX, &pid) < 0 ||
            get_int(sup, "start_time", 0, INT64_MAX, &start) < 0)
                return -EINVAL;
        r->supervisor = (pid_t)pid;
        r->supervisor_start = (uint64_t)start;
        if ((e = get_str(root, "containment", &r->containment)) < 0 ||
            (e = get_str(root, "cgroup", &r->cgroup)) < 0 ||
            (e = get_str(root, "marker", &r->marker)) < 0)
                return e;
        for (int k = 0; v1 && k < ER_V1_N; k++)
                if ((e = get_str(v1, v1_names[k], &r->v1[k])) < 0)
                        return e;
        if (r->containment && strcmp(r->containment, "cgroup2") &&
            strcmp(r->containment, "reaper") && strcmp(r->containment, "session"))
                return -EINVAL;
        if (r->marker && (!(inst = marker_instance(r->marker, &il)) || !valid_instance(inst, il)))
                return -EINVAL;
        if (r->cgroup && (!inst || !instance_cgroup(r->cgroup, inst, il, true)))
                return -EINVAL;
        for (int k = 0; k < ER_V1_N; k++)
                if (r->v1[k] && (!inst || !instance_cgroup(r->v1[k], inst, il, false)))
                        return -EINVAL;
        return parse_procs(json_object_get(root, "procs"), r);
}

int er_state_read_records(struct er_state *st, struct er_records *r)
{
        struct stat sb;
        json_error_t jerr;
        json_t *root;
        char *buf;
        ssize_t k;
        size_t len = 0;
        int fd, e;

        if (st->dir_fd < 0)
                return -EBADF;
        fd = openat(st->dir_fd, RECORDS_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ELOOP ? -EINVAL : -errno;
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > RECORDS_MAX) {
                close(fd);
                return -EINVAL;
        }
        buf = malloc((size_t)sb.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (len <= (size_t)sb.st_size &&
               (k = read(fd, buf + len, (size_t)sb.st_size + 1 - len)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        e = -errno;
                        free(buf);
                        close(fd);
                        return e;
                }
                len += (size_t)k;
        }
        close(fd);
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        free(buf);
        if (!root)
                return -EINVAL;
        er_records_init(r);
        e = parse_records(root, r);
        json_decref(root);
        if (e < 0)
                er_records_fini(r);
        return e;
}

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
        if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 64;
                struct target *v = realloc(t->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                t->v = v;
                t->cap = cap;
        }
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

        return read_stat(pid, &state, &now) < 0 || now != start || state == 'Z' || state == 'X';
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
        r = read_stat(pid, &state, &now);
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
                        r = er_pidvec_push(seen, pid);
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
                        if (read_stat(pv.v[i], &state, &start) < 0)
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

/* Live processes (zombies left out) with an environment entry starting
 * with prefix, as (pid, start time). */
static int scan_marker(const char *prefix, struct targets *out)
{
        struct dirent *de;
        DIR *d;
        int r = 0;

        d = er_proc_opendir();
        if (!d)
                return -errno;
        while (r == 0 && (de = readdir(d))) {
                pid_t pid = er_proc_entry_pid(de->d_name);
                uint64_t start;
                char state = 0;
                if (!signallable(pid))
                        continue;
                /* The start time first: read after the environment, it
                 * could be a later process's under the same pid. */
                if (read_stat(pid, &state, &start) < 0 || state == 'Z' || state == 'X')
                        continue;
                if (er_proc_environ_has(dirfd(d), de->d_name, prefix, true) == 1)
                        r = targets_push(out, pid, start, -1);
        }
        closedir(d);
        return r;
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

int er_state_reap(struct er_state *st, struct er_reaped *out)
{
        struct er_records rec;
        int r, e;

        memset(out, 0, sizeof(*out));
        if (st->dir_fd < 0 || st->lock_fd < 0)
                return -ENOLCK;
        er_records_init(&rec);
        r = er_state_read_records(st, &rec);
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
                r = er_state_reap(&st, &one);
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

int er_state_reap_stale_execs(const char *base, const char *project, struct er_reaped *out)
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
