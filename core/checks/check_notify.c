/* notify: ready when the service sends READY=1 on $NOTIFY_SOCKET (sd_notify).
 *
 * notify_prepare() makes a datagram socket bound to an abstract address,
 * "@envrun/<pid>/<service>/<random>" (abstract names have no path to fit
 * in sun_path and vanish with the socket; sd_notify clients accept "@"),
 * with SO_PASSCRED so that every datagram carries its sender's pid.
 * Datagrams sent before notify_start() wait in the socket and are read then.
 *
 * A datagram counts only when its sender is a process of the service's own
 * tree (er_group_has): anyone on the host can reach an abstract socket.
 * A sender that already exited cannot be told apart from a stranger, so its
 * datagram is ignored too (with a note in the log); systemd-notify waits
 * for its BARRIER=1 to be answered before it exits, and the answer is
 * closing the file descriptor it passes, which happens here for every
 * datagram.  Of the assignments, READY=1 and STATUS= are used; the others
 * (MAINPID=, RELOADING=1, ...) are ignored.  A datagram longer than 4 KiB
 * is ignored whole.
 *
 * After done() or notify_cancel() the socket is still read, and what comes is
 * dropped unjudged (its fds closed), until notify_release(): a service that keeps
 * notifying must not fill its queue and block. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "checks/runner.h"
#include "proc/contain.h"
#include "model/envfile.h"
#include "proc/log.h"

#define DGRAM_MAX 4096
#define FDS_MAX 253            /* SCM_MAX_FD: the most one message can pass */
#define READS_PER_EVENT 16     /* then other sources get their turn */
#define BIND_TRIES 4
#define STATUS_MAX 160         /* bytes of a STATUS= shown, with the NUL */

static const char *const options[] = {NULL};

static int notify_parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                        const char *dir, struct er_fctx *f)
{
        bool on;
        if (er_field_bool(f, v, "notify", &on) < 0)
                return -ER_ECONFIG;
        if (!on)
                return er_field_error(f, v,
                                      "'notify' can only be true (remove the check to not wait)");
        return 0;
}

static void notify_dump(const struct er_check *c, json_t *o)
{
        json_object_set_new(o, "notify", json_true());
}

static int notify_describe(const struct er_check *c, char *buf, size_t len)
{
        return snprintf(buf, len, "notify");
}

/* --- the engine side ------------------------------------------------------ */

struct notify {
        struct er_check_run *run;
        int fd;
        struct er_io io;
        bool waiting;        /* between start and done/cancel */
        char name[108];      /* "@envrun/<pid>/<service>/<random>", as in NOTIFY_SOCKET */
};

static void note(struct er_check_run *run, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void note(struct er_check_run *run, const char *fmt, ...)
{
        char buf[256];
        va_list ap;
        int n;

        if (!run->env || !run->env->log)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        er_log_line(run->env->log, ER_LOG_NOTE, er_realtime_ms(), buf,
                    (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static uint64_t random64(void)
{
        uint64_t v;
        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
                return v;
        /* No entropy yet (early boot): unique enough, and bind checks it. */
        return er_now_us() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
}

/* Binds fd to a fresh abstract name, written to n->name with its '@'. */
static int bind_abstract(struct notify *n, const char *service)
{
        struct sockaddr_un sa;
        size_t len;
        int r = -EADDRINUSE;

        for (unsigned i = 0; i < BIND_TRIES && r == -EADDRINUSE; i++) {
                snprintf(n->name, sizeof(n->name), "@envrun/%ld/%.48s/%016llx", (long)getpid(),
                         service, (unsigned long long)random64());
                len = strlen(n->name);
                memset(&sa, 0, sizeof(sa));
                sa.sun_family = AF_UNIX;
                /* sun_path[0] = '\0': abstract; the name is the bytes that
                 * follow, without a terminating NUL (as sd_notify connects). */
                memcpy(sa.sun_path + 1, n->name + 1, len - 1);
                r = bind(n->fd, (struct sockaddr *)&sa,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0
                            ? -errno
                            : 0;
        }
        return r;
}

static void notify_free(struct notify *n, struct er_loop *loop)
{
        if (!n)
                return;
        er_io_stop(loop, &n->io);
        er_close(&n->fd);
        free(n);
}

static int notify_prepare(struct er_check_run *run, struct er_envlist *extra)
{
        const char *service = run->env && run->env->service ? run->env->service : "service";
        struct notify *n = calloc(1, sizeof(*n));
        int one = 1, r;

        if (!n)
                return -ENOMEM;
        n->run = run;
        er_io_init(&n->io);
        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (n->fd < 0) {
                r = -errno;
                goto out_free;
        }
        if (setsockopt(n->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                r = -errno;
                goto out_free;
        }
        r = bind_abstract(n, service);
        if (r < 0)
                goto out_free;
        r = er_envlist_set(extra, "NOTIFY_SOCKET", n->name, 0, 0);
        if (r < 0)
                goto out_free;
        run->priv = n;
        return 0;

out_free:
        notify_free(n, run->loop);
        return r;
}

static void notify_release(struct er_check_run *run)
{
        notify_free(run->priv, run->loop);
        run->priv = NULL;
}

/* Hands a STATUS= value to the engine: control characters become spaces,
 * and a cut does not split a UTF-8 sequence. */
static void set_status(struct er_check_run *run, const char *s, size_t len)
{
        char status[STATUS_MAX];
        size_t max = sizeof(status) - 1;

        if (len > max) {
                len = max;
                while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
                        len--;
        }
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                status[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        }
        status[len] = '\0';
        note(run, "status: %s", status);
        if (run->status_changed)
                run->status_changed(run, status);
}

/* Reads the assignments of one datagram; returns true for READY=1. */
static bool apply(struct er_check_run *run, const char *buf, size_t len)
{
        bool ready = false;
        const char *p = buf, *end = buf + len;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = (size_t)((nl ? nl : end) - p);
                if (n == 7 && !memcmp(p, "READY=1", 7))
                        ready = true;
                else if (n >= 7 && !memcmp(p, "STATUS=", 7))
                        set_status(run, p + 7, n - 7);
                p += n + 1;
        }
        return ready;
}

static void close_fds(struct msghdr *mh)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int *fds = (int *)(void *)CMSG_DATA(c);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, fds + i, sizeof(fd));
                        close(fd);
                }
        }
}

static bool sender_of(struct msghdr *mh, pid_t *ret)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                    c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
                        struct ucred uc;
                        memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                        *ret = uc.pid;
                        return true;
                }
        return false;
}

/* Judges one datagram; returns true when it said READY=1 for this service. */
static bool judge(struct notify *n, struct msghdr *mh, const char *buf, size_t len)
{
        struct er_check_run *run = n->run;
        pid_t pid = 0;
        int r;

        if (!sender_of(mh, &pid) || pid <= 0) {
                note(run, "ignored a notification without its sender's credentials");
                return false;
        }
        if (mh->msg_flags & MSG_TRUNC) {
                note(run, "ignored a notification from pid %ld: longer than %d bytes", (long)pid,
                     DGRAM_MAX);
                return false;
        }
        r = run->env && run->env->group ? er_group_has(run->env->group, pid) : 0;
        if (r < 0) {
                note(run, "ignored a notification from pid %ld: cannot list the service's "
                          "processes: %s", (long)pid, strerror(-r));
                return false;
        }
        if (r == 0) {
                if (kill(pid, 0) < 0 && errno == ESRCH)
                        note(run, "ignored a notification from pid %ld, which exited before it "
                                  "could be checked", (long)pid);
                else
                        note(run, "ignored a notification from pid %ld, not of this service",
                             (long)pid);
                return false;
        }
        return apply(run, buf, len);
}

static void on_readable(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        struct notify *n = er_container_of(io, struct notify, io);
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * FDS_MAX)];
        } ctl;
        char buf[DGRAM_MAX];

        for (unsigned i = 0; i < READS_PER_EVENT; i++) {
                struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf),
                };
                ssize_t k = recvmsg(n->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                bool ready;

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return; /* EAGAIN: drained; another error: nothing to read */
                }
                /* Once done, what comes is dropped unread: judging costs a
                 * scan of the service's processes. */
                ready = n->waiting &&
                        judge(n, &mh, buf, (size_t)k < sizeof(buf) ? (size_t)k : sizeof(buf));
                /* Closing what it passed answers a BARRIER=1 (the sender
                 * waits for that), and nothing leaks into envrun. */
                close_fds(&mh);
                if (ready && n->waiting) {
                        n->waiting = false;
                        /* Last: done may release the check and free n. */
                        n->run->done(n->run, ER_CHECK_READY, NULL);
                        return;
                }
        }
}

static int notify_start(struct er_check_run *run)
{
        struct notify *n = run->priv;
        int r;

        if (!n)
                return -EBADF; /* not prepared */
        if (!er_io_active(&n->io)) {
                r = er_io_start(run->loop, &n->io, n->fd, EPOLLIN, on_readable);
                if (r < 0)
                        return r;
        }
        n->waiting = true;
        return 0;
}

static void notify_cancel(struct er_check_run *run)
{
        struct notify *n = run->priv;
        /* The watcher stays: later datagrams are read and dropped until release. */
        if (n)
                n->waiting = false;
}

const struct er_check_ops er_check_notify_ops = {
        .key = "notify",
        .options = options,
        .parse = notify_parse,
        .dump = notify_dump,
        .describe = notify_describe,
        .prepare = notify_prepare,
        .release = notify_release,
        .start = notify_start,
        .cancel = notify_cancel,
};
