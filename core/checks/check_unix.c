/* unix: ready when a stream connect to the socket at PATH succeeds.  The
 * path is relative to the service's working directory.  A connection that
 * succeeds is closed at once: the check only proves the socket accepts. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "checks/runner.h"
#include "base/err.h"

static const char *const options[] = {NULL};

/* The check's configuration (model/check.h: ops->conf_size bytes). */
static struct er_check_path *conf_of(const struct er_check *c)
{
        return c->conf;
}

static int unix_parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                      const char *dir, struct er_fctx *f)
{
        struct sockaddr_un sa;
        int r = er_check_parse_path(c, v, dir, f);
        if (r == 0 && strlen(conf_of(c)->path) >= sizeof(sa.sun_path))
                return er_field_error(f, v, "unix socket path '%s' is longer than %zu bytes",
                                      conf_of(c)->path, sizeof(sa.sun_path) - 1);
        return r < 0 ? r : 0;
}

/* --- the engine side ---------------------------------------------------- */

/* Linux completes or refuses a unix stream connect at once (a full backlog
 * is EAGAIN, not EINPROGRESS), but POSIX allows EINPROGRESS: then the
 * attempt waits for EPOLLOUT, bounded as tcp's attempts are, by
 * max(interval, 1 s). */
#define ATTEMPT_MIN_US 1000000

struct unix_state {
        struct er_check_run *run;
        struct er_io io; /* watching fd while a connect is in flight */
        int fd;          /* -1: none */
        struct er_timer timeout;
};

static void close_conn(struct unix_state *st)
{
        er_io_stop(st->run->loop, &st->io);
        er_close(&st->fd);
        er_timer_stop(st->run->loop, &st->timeout);
}

/* Ends the attempt.  Closes first: er_runner_attempt_done may call done(),
 * whose owner may stop the check, which frees st. */
static void finish(struct unix_state *st, bool ok, const char *why)
{
        struct er_check_run *run = st->run;

        close_conn(st);
        er_runner_attempt_done(run, ok, why);
}

/* Why a connect to path failed with e, in buf. */
static const char *why_of(const char *path, int e, char *buf, size_t len)
{
        struct stat sb;

        switch (e) {
        case ENOENT:
                snprintf(buf, len, "no socket at '%s'", path);
                break;
        case ECONNREFUSED:
                /* Linux also refuses a connect to a file that is not a socket
                 * (a pidfile named by mistake, say): say so. */
                if (stat(path, &sb) == 0 && !S_ISSOCK(sb.st_mode))
                        snprintf(buf, len, "'%s' is not a socket", path);
                else
                        snprintf(buf, len, "connection refused");
                break;
        case EAGAIN:
                /* Something listens, but its backlog is full: it does not
                 * accept (yet). */
                snprintf(buf, len, "the socket's backlog is full");
                break;
        default:
                snprintf(buf, len, "%s", strerror(e));
                buf[0] = (char)tolower((unsigned char)buf[0]);
                break;
        }
        return buf;
}

static void on_writable(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct unix_state *st = er_container_of(io, struct unix_state, io);
        socklen_t len = sizeof(int);
        char why[160];
        int e = 0;

        if (getsockopt(st->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                e = errno;
        if (e == 0 && (revents & EPOLLOUT))
                finish(st, true, NULL);
        else
                finish(st, false,
                       why_of(conf_of(st->run->check)->path, e ? e : ECONNRESET, why, sizeof(why)));
}

static void on_timeout(struct er_loop *loop, struct er_timer *t)
{
        struct unix_state *st = er_container_of(t, struct unix_state, timeout);
        finish(st, false, "timed out");
}

static struct unix_state *state_of(struct er_check_run *run)
{
        struct unix_state *st = run->priv;

        if (st)
                return st;
        st = calloc(1, sizeof(*st));
        if (!st)
                return NULL;
        st->run = run;
        st->fd = -1;
        er_io_init(&st->io);
        er_timer_init(&st->timeout);
        run->priv = st;
        return st;
}

static int unix_attempt(struct er_check_run *run)
{
        const char *path = conf_of(run->check)->path;
        struct unix_state *st = state_of(run);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        uint64_t limit = run->check->interval_us;
        char why[160];
        int r;

        if (!st)
                return -ENOMEM;
        /* unix_parse() bounds the length: refuse a longer path rather than cut it. */
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        st->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (st->fd < 0)
                return -errno;
        if (connect(st->fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0) {
                finish(st, true, NULL);
                return 0;
        }
        if (errno != EINPROGRESS && errno != EINTR) {
                finish(st, false, why_of(path, errno, why, sizeof(why)));
                return 0;
        }
        r = er_io_start(run->loop, &st->io, st->fd, EPOLLOUT, on_writable);
        if (r == 0)
                r = er_timer_start(run->loop, &st->timeout,
                                   limit > ATTEMPT_MIN_US ? limit : ATTEMPT_MIN_US, on_timeout);
        if (r < 0)
                close_conn(st);
        return r;
}

static void unix_abort_attempt(struct er_check_run *run)
{
        if (run->priv)
                close_conn(run->priv);
}

const struct er_check_ops er_check_unix_ops = {
        .key = "unix",
        .options = options,
        .conf_size = sizeof(struct er_check_path),
        .parse = unix_parse,
        .dump = er_check_path_dump,
        .describe = er_check_path_describe,
        .fini = er_check_path_fini,
        .polled = true,
        .probes_address = true,
        .default_interval_us = 10000,
        .cancel = er_runner_cancel_priv,
        .attempt = unix_attempt,
        .abandon = unix_abort_attempt,
};
