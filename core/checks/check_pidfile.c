/* pidfile: ready when the file exists and holds the pid of a live process
 * of the service's own tree.  The path is relative to the service's working
 * directory.
 *
 * Never polled (SPEC §4): one inotify watch on the file's directory says
 * when the file is created, renamed into place or written, and the file is
 * read again only then.  When the directory does not exist yet (a daemon
 * that makes its own run directory), the watch sits on the nearest existing
 * ancestor, waiting for the next component, and moves down as directories
 * appear.  A file that names a process outside the tree is not ready, and
 * not a failure either: a later rewrite may fix it, and the service's
 * timeout bounds the wait.
 *
 * Just before it is ready, run->daemon() names the daemon: the scheduler
 * adopts it when the main process exited 0 (a daemonizing service). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checks/runner.h"
#include "proc/contain.h"
#include "base/err.h"
#include "proc/pids.h"

#define DIR_MASK                                                                                   \
        (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF)
/* An ancestor waits for the next component only (as a directory). */
#define ANCESTOR_MASK (IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define FILE_MAX 64        /* what is read: the number starts the file */
#define READS_PER_WAKEUP 8 /* then back to the loop (it is level-triggered) */

static const char *const options[] = {NULL};

/* The check's configuration (model/check.h: ops->conf_size bytes). */
static struct er_check_path *conf_of(const struct er_check *c)
{
        return c->conf;
}

static int pidfile_parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                         const char *dir, struct er_fctx *f)
{
        int r = er_check_parse_path(c, v, dir, f);
        return r < 0 ? r : 0;
}

/* --- the engine side ------------------------------------------------------ */

struct pidfile {
        struct er_check_run *run;
        struct er_io io;
        int fd;           /* inotify */
        int wd;           /* the one watch, -1 none */
        size_t level;     /* which directory it watches: levels[level] */
        char *path;       /* a copy, cut at levels[] in turn with a NUL */
        const char *base; /* the file's name, inside path */
        size_t n;         /* levels: "/", "/run", ..., the file's directory */
        size_t *ends;     /* length of each level's path */
};

/* Splits the directory of p->path into levels: "/a//b/f" gives "/", "/a"
 * and "/a//b", and the name "f".  0 or -errno. */
static int split_levels(struct pidfile *p)
{
        const char *s = p->path;
        size_t len = strlen(s), last = 0, n = 1;

        if (s[0] != '/' || s[len - 1] == '/')
                return -EINVAL;
        for (size_t i = 1; i < len; i++)
                if (s[i] == '/' && s[i - 1] != '/')
                        n++;
        p->ends = calloc(n, sizeof(*p->ends));
        if (!p->ends)
                return -ENOMEM;
        p->ends[0] = 1;
        p->n = 1;
        for (size_t i = 1; i < len; i++) {
                if (s[i] != '/')
                        continue;
                if (s[i - 1] != '/')
                        p->ends[p->n++] = i; /* the prefix before this slash */
                last = i;
        }
        p->base = s + last + 1;
        return 0;
}

/* The name of the component that ends level k (k >= 1). */
static const char *component(const struct pidfile *p, size_t k, size_t *ret_len)
{
        size_t end = p->ends[k], start = end;
        while (start > 0 && p->path[start - 1] != '/')
                start--;
        *ret_len = end - start;
        return p->path + start;
}

static int add_watch(struct pidfile *p, size_t k)
{
        char save = p->path[p->ends[k]];
        uint32_t mask = k == p->n - 1 ? DIR_MASK : ANCESTOR_MASK;
        int wd;

        p->path[p->ends[k]] = '\0';
        wd = inotify_add_watch(p->fd, p->path, mask);
        if (wd < 0)
                wd = -errno;
        p->path[p->ends[k]] = save;
        return wd;
}

/* A directory that is missing, or a file where a directory will be. */
static bool absent(int r)
{
        return r == -ENOENT || r == -ENOTDIR;
}

/* Puts the one watch on the deepest existing level.  The deepest first (it
 * usually exists), up until one exists; then down again, because a level
 * may have appeared between a failed try and the watch above it (the watch
 * above is in place before each try below, so none is missed). */
static int place(struct pidfile *p)
{
        size_t k = p->n - 1;
        int wd, r;

        while ((wd = add_watch(p, k)) < 0) {
                if (!absent(wd) || k == 0)
                        return wd;
                k--;
        }
        while (k < p->n - 1) {
                r = add_watch(p, k + 1);
                if (absent(r))
                        break;
                if (r < 0) {
                        if (wd != p->wd)
                                inotify_rm_watch(p->fd, wd);
                        return r;
                }
                /* The same inode twice (a symlink up the tree) shares one
                 * wd; the old watch goes last, below. */
                if (r != wd && wd != p->wd)
                        inotify_rm_watch(p->fd, wd);
                wd = r;
                k++;
        }
        if (p->wd >= 0 && p->wd != wd)
                inotify_rm_watch(p->fd, p->wd); /* EINVAL when the kernel dropped it: fine */
        p->wd = wd;
        p->level = k;
        return 0;
}

/* A decimal pid, optionally surrounded by white space. */
/* The pid is the leading decimal number of the first line, after blanks;
 * the rest is ignored (SPEC §4): PostgreSQL's postmaster.pid holds the
 * data directory, the port and more on the lines after it. */
static pid_t parse_pid(const char *s)
{
        long v = 0;

        while (*s == ' ' || *s == '\t')
                s++;
        if (*s < '0' || *s > '9')
                return -1;
        for (; *s >= '0' && *s <= '9'; s++) {
                v = v * 10 + (*s - '0');
                if (v > INT_MAX)
                        return -1;
        }
        return v == 0 ? -1 : (pid_t)v;
}

/* Reads the file: the pid, or -1 with why.  Never blocks: O_NONBLOCK in
 * case a FIFO sits there, O_NOFOLLOW for a symlink. */
static pid_t read_pidfile(const char *path, char *why, size_t len)
{
        char buf[FILE_MAX + 1];
        struct stat st;
        size_t got = 0;
        ssize_t k = 0;
        pid_t pid;
        int fd;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        snprintf(why, len, "does not exist yet");
                else if (errno == ELOOP)
                        snprintf(why, len, "is a symbolic link");
                else
                        snprintf(why, len, "cannot open it: %s", strerror(errno));
                return -1;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                snprintf(why, len, "is not a regular file");
                return -1;
        }
        while (got < FILE_MAX && (k = read(fd, buf + got, FILE_MAX - got)) > 0)
                got += (size_t)k;
        close(fd);
        if (k < 0) {
                snprintf(why, len, "cannot read it: %s", strerror(errno));
                return -1;
        }
        buf[got] = '\0';
        pid = memchr(buf, '\0', got) ? -1 : parse_pid(buf);
        if (pid < 0) {
                if (got == 0)
                        snprintf(why, len, "is empty");
                else
                        snprintf(why, len, "holds no pid");
        }
        return pid;
}

/* Whether pid runs (a zombie does not). */
static bool running(pid_t pid)
{
        char state;

        return er_pids_stat(pid, &state, NULL) == 0 && state != 'Z' && state != 'X';
}

static void finish(struct pidfile *p, enum er_check_result result, const char *msg)
{
        struct er_check_run *run = p->run;

        /* At most one done() per start; done() may cancel, freeing p. */
        er_io_stop(run->loop, &p->io);
        run->done(run, result, msg);
}

static void not_ready(struct er_check_run *run, const char *why)
{
        run->attempts++;
        snprintf(run->last_error, sizeof(run->last_error), "%s", why);
        if (run->attempt_failed)
                run->attempt_failed(run, run->last_error);
}

/* Reads the file once; true when done() was called (p may be gone). */
static bool check_file(struct pidfile *p)
{
        struct er_check_run *run = p->run;
        char why[128];
        pid_t pid;
        int r;

        pid = read_pidfile(conf_of(run->check)->path, why, sizeof(why));
        if (pid > 0 && !running(pid)) {
                snprintf(why, sizeof(why), "holds pid %ld, which is not running", (long)pid);
                pid = -1;
        }
        if (pid > 0) {
                r = er_group_has(run->env->group, pid);
                if (r < 0)
                        snprintf(why, sizeof(why), "cannot list the service's processes: %s",
                                 strerror(-r));
                else if (r == 0)
                        snprintf(why, sizeof(why),
                                 "holds pid %ld, which is not a process of the service", (long)pid);
                if (r <= 0)
                        pid = -1;
        }
        if (pid < 0) {
                not_ready(run, why);
                return false;
        }
        if (run->daemon)
                run->daemon(run, pid);
        finish(p, ER_CHECK_READY, NULL);
        return true;
}

/* Moves the watch; true when done() was called (a failure). */
static bool move_watch(struct pidfile *p)
{
        char msg[160];
        int r = place(p);

        if (r == 0)
                return false;
        snprintf(msg, sizeof(msg), "cannot watch the directory of '%s': %s",
                 conf_of(p->run->check)->path, strerror(-r));
        finish(p, ER_CHECK_FAILED, msg);
        return true;
}

/* What one event means: the file may have changed (recheck), or the
 * directories on the way did (move). */
static void classify(const struct pidfile *p, const struct inotify_event *ev, bool *recheck,
                     bool *move)
{
        size_t len;
        const char *name;

        if (ev->mask & IN_Q_OVERFLOW) {
                *move = true; /* events were lost: look again at everything */
                return;
        }
        if (ev->wd != p->wd)
                return; /* queued for a watch since removed */
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) {
                *move = true;
                return;
        }
        if (!ev->len)
                return;
        if (p->level == p->n - 1) {
                if (!strcmp(ev->name, p->base))
                        *recheck = true;
                return;
        }
        name = component(p, p->level + 1, &len);
        if (strlen(ev->name) == len && !memcmp(ev->name, name, len))
                *move = true;
}

static void on_inotify(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct pidfile *p = er_container_of(io, struct pidfile, io);
        _Alignas(struct inotify_event) char buf[4096];
        bool recheck = false, move = false;
        char msg[160];
        ssize_t k;

        for (unsigned i = 0; i < READS_PER_WAKEUP; i++) {
                k = read(p->fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == EAGAIN)
                        break;
                if (k <= 0) {
                        snprintf(msg, sizeof(msg), "cannot read inotify events: %s",
                                 k < 0 ? strerror(errno) : "end of file");
                        finish(p, ER_CHECK_FAILED, msg);
                        return;
                }
                for (char *c = buf; c < buf + k;) {
                        const struct inotify_event *ev = (const struct inotify_event *)c;
                        classify(p, ev, &recheck, &move);
                        c += sizeof(*ev) + ev->len;
                }
        }
        if (move) {
                if (move_watch(p))
                        return;
                /* The file may already be in a directory that just appeared. */
                recheck = p->level == p->n - 1;
        }
        if (recheck)
                check_file(p);
}

static void pidfile_cancel(struct er_check_run *run)
{
        struct pidfile *p = run->priv;

        if (!p)
                return;
        er_io_stop(run->loop, &p->io);
        er_close(&p->fd); /* drops the watch with it */
        free(p->ends);
        free(p->path);
        free(p);
        run->priv = NULL;
}

static int pidfile_start(struct er_check_run *run)
{
        const char *path = conf_of(run->check)->path;
        struct pidfile *p;
        int r;

        pidfile_cancel(run); /* a second start begins afresh */
        if (!run->env || !run->env->group || !path || !*path)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->run = run;
        p->wd = -1;
        er_io_init(&p->io);
        p->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (p->fd < 0) {
                r = -errno;
                goto out_free;
        }
        p->path = strdup(path);
        if (!p->path) {
                r = -ENOMEM;
                goto out_close;
        }
        r = split_levels(p);
        if (r < 0)
                goto out_close;
        r = er_io_start(run->loop, &p->io, p->fd, EPOLLIN, on_inotify);
        if (r < 0)
                goto out_close;
        run->priv = p;
        /* The watch first, then the look: a file written in between is
         * seen by one or the other. */
        if (move_watch(p))
                return 0;
        if (p->level == p->n - 1)
                check_file(p);
        else
                not_ready(run, "its directory does not exist yet");
        return 0;

out_close:
        er_close(&p->fd);
out_free:
        free(p->ends);
        free(p->path);
        free(p);
        return r;
}

static bool pidfile_exited(struct er_check_run *run, int code)
{
        /* The engine judges exits: 0 while this check waits is daemonizing. */
        return false;
}

const struct er_check_ops er_check_pidfile_ops = {
        .key = "pidfile",
        .options = options,
        .conf_size = sizeof(struct er_check_path),
        .parse = pidfile_parse,
        .dump = er_check_path_dump,
        .describe = er_check_path_describe,
        .fini = er_check_path_fini,
        .start = pidfile_start,
        .exited = pidfile_exited,
        .cancel = pidfile_cancel,
};
