/* outq: standard output and error that never block the loop; see outq.h. */
#include "outq.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"

struct outq {
        int std;             /* 1 or 2 */
        int fd;              /* a private non-blocking description, or std for a socket */
        bool sock;
        bool broken;         /* the reader is gone (EPIPE) or the file failed */
        struct er_buf q;     /* bytes waiting for the reader, from q.p + off */
        size_t off;
        uint64_t dropped;
        struct er_loop *loop; /* NULL after outq_end: writes are bounded waits */
        struct er_io io;
        FILE *f;
};

/* The two streams live until exit: every later write goes through them.
 * cmd/ state, like the arg_* options. */
static struct outq *queues[3];

static size_t pending(const struct outq *o)
{
        return o->q.len - o->off;
}

/* One non-blocking write: bytes taken, 0 for EAGAIN, -1 when broken. */
static ssize_t put(struct outq *o, const char *buf, size_t n)
{
        ssize_t w;

        do {
                w = o->sock ? send(o->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                            : write(o->fd, buf, n);
        } while (w < 0 && errno == EINTR);
        if (w >= 0)
                return w;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
        o->broken = true;
        return -1;
}

static void forget(struct outq *o)
{
        o->dropped += pending(o);
        er_buf_clear(&o->q);
        o->off = 0;
}

/* Writes from the queue what the reader takes now. */
static void flush_some(struct outq *o)
{
        while (pending(o) && !o->broken) {
                ssize_t w = put(o, o->q.p + o->off, pending(o));
                if (w <= 0)
                        break;
                o->off += (size_t)w;
        }
        if (o->broken)
                forget(o);
        if (!pending(o)) {
                er_buf_clear(&o->q);
                o->off = 0;
        } else if (o->off > OUTQ_MAX / 2) {
                memmove(o->q.p, o->q.p + o->off, pending(o));
                o->q.len -= o->off;
                o->off = 0;
        }
}

static void on_writable(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct outq *o = er_container_of(io, struct outq, io);

        flush_some(o);
        if (!pending(o))
                er_io_stop(loop, io);
}

/* Without the loop: waits for the reader while it makes progress. */
static void drain(struct outq *o)
{
        struct pollfd p = {.fd = o->fd, .events = POLLOUT};

        flush_some(o);
        while (pending(o) && !o->broken) {
                int r = poll(&p, 1, OUTQ_IDLE_MS);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        /* No progress for OUTQ_IDLE_MS: the reader is taken
                         * as gone, and later writes are dropped at once
                         * rather than each waiting as long again. */
                        o->broken = true;
                        break;
                }
                flush_some(o);
        }
        forget(o);
}

static ssize_t cookie_write(void *cookie, const char *buf, size_t n)
{
        struct outq *o = cookie;
        ssize_t total = (ssize_t)n; /* stdio is always told all was taken */

        if (!o->broken && !pending(o)) {
                ssize_t w = put(o, buf, n);
                if (w > 0) {
                        buf += w;
                        n -= (size_t)w;
                }
        }
        if (!n)
                return total;
        /* Whole writes or nothing: a line is never cut in two. */
        if (o->broken || n > OUTQ_MAX - pending(o) || er_buf_put(&o->q, buf, n) < 0)
                o->dropped += n;
        else if (!o->loop)
                drain(o);
        else if (!er_io_active(&o->io) &&
                 er_io_start(o->loop, &o->io, o->fd, EPOLLOUT, on_writable) < 0)
                drain(o); /* cannot watch it: wait, bounded */
        return total;
}

/* A private non-blocking description of fd std, or -1 when writes to it
 * cannot stall (a regular file) or it cannot be had. */
static int private_fd(int std, bool *sock)
{
        char path[32];
        struct stat st;

        *sock = false;
        if (fstat(std, &st) < 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
                return -1;
        if (S_ISSOCK(st.st_mode)) {
                *sock = true;
                return std;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", std);
        return open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

static struct outq *make(int std, struct er_loop *loop)
{
        cookie_io_functions_t io = {.write = cookie_write};
        struct outq *o;
        bool sock;
        int fd = private_fd(std, &sock);

        if (fd < 0)
                return NULL;
        o = calloc(1, sizeof(*o));
        if (!o)
                goto out_close;
        o->std = std;
        o->fd = fd;
        o->sock = sock;
        o->loop = loop;
        er_io_init(&o->io);
        o->f = fopencookie(o, "w", io);
        if (!o->f)
                goto out_free;
        setvbuf(o->f, NULL, _IOLBF, 0);
        return o;

out_free:
        free(o);
out_close:
        if (!sock)
                close(fd);
        return NULL;
}

void outq_begin(struct er_loop *loop, bool with_stdout)
{
        for (int std = with_stdout ? 1 : 2; std <= 2; std++) {
                struct outq *o = queues[std];
                if (o) {
                        o->loop = loop;
                        continue;
                }
                if (!(o = make(std, loop)))
                        continue;
                queues[std] = o;
                /* glibc's stdout and stderr are plain variables. */
                if (std == 1) {
                        fflush(stdout);
                        stdout = o->f;
                } else {
                        fflush(stderr);
                        stderr = o->f;
                }
        }
}

void outq_end(void)
{
        for (int std = 1; std <= 2; std++) {
                struct outq *o = queues[std];
                if (!o || !o->loop)
                        continue;
                fflush(o->f);
                er_io_stop(o->loop, &o->io);
                o->loop = NULL;
                drain(o);
        }
        if (queues[1] && queues[1]->dropped) {
                fprintf(stderr,
                        "envrun: warning: %llu bytes of standard output were dropped: its reader "
                        "did not keep up\n",
                        (unsigned long long)queues[1]->dropped);
                queues[1]->dropped = 0;
        }
}
