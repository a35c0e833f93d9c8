/* ctl: the control API server; see ctl.h.
 *
 * A connection (struct er_ctl_stream, which is also a streamed response's
 * handle) goes READING -> (handle) -> WRITING or STREAMING -> closed.  While
 * it reads it watches EPOLLIN; afterwards only EPOLLOUT when output is
 * pending (EPOLLHUP/EPOLLERR are always reported: a client gone). */
#include "api/ctl.h"

#include "base/buf.h"
#include "base/err.h"
#include "base/unixaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Connections accepted per wake-up of the listening socket. */
#define ACCEPT_BATCH 16
/* After EMFILE and the like, accepting resumes this much later. */
#define ACCEPT_RETRY_US 100000u
#define READ_CHUNK 4096

enum conn_state { C_READING, C_HANDLING, C_WRITING, C_STREAMING };

struct er_ctl_stream {
        struct er_ctl *ctl;
        struct er_ctl_stream *prev, *next;
        int fd;
        struct er_io io;
        struct er_timer timer;
        enum conn_state state;
        bool dead; /* a stream write failed inside handle: close after it */

        http_parser parser;
        size_t nread;
        bool complete, too_big;
        struct er_buf url, body;

        struct er_buf out;
        size_t out_off; /* out's bytes before this were sent */

        er_ctl_stream_closed_cb *closed;
        void *closed_ud;
};

struct er_ctl_resp {
        struct er_ctl_stream *c;
        bool set, stream;
        int status;
        char *ctype; /* NULL: application/json */
        char *body;
        size_t body_len;
};

struct er_ctl {
        struct er_loop *loop;
        int fd;
        struct er_io io;
        struct er_timer retry;
        char *path;
        dev_t dev;
        ino_t ino;
        struct er_ctl_opts o;
        uid_t uid;
        struct er_ctl_stream *conns;
        size_t nconns;
};

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

/* ---- output ---- */

static int out_append(struct er_ctl_stream *c, const void *data, size_t n)
{
        if (c->out_off == c->out.len) {
                /* all sent: start again at the front */
                c->out_off = 0;
                er_buf_clear(&c->out);
        } else if (c->out_off > c->out.cap / 2) {
                memmove(c->out.p, c->out.p + c->out_off, c->out.len - c->out_off);
                c->out.len -= c->out_off;
                c->out_off = 0;
        }
        return er_buf_put(&c->out, data, n);
}

static int out_printf(struct er_ctl_stream *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int out_printf(struct er_ctl_stream *c, const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(buf))
                return -EINVAL;
        return out_append(c, buf, (size_t)n);
}

/* ---- connections ---- */

static void conn_close(struct er_ctl_stream *c, bool notify)
{
        struct er_ctl *ctl = c->ctl;

        er_io_stop(ctl->loop, &c->io);
        er_timer_stop(ctl->loop, &c->timer);
        er_close(&c->fd);
        if (c->prev)
                c->prev->next = c->next;
        else
                ctl->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        ctl->nconns--;
        if (notify && c->state == C_STREAMING && c->closed)
                c->closed(c->closed_ud, c);
        er_buf_fini(&c->url);
        er_buf_fini(&c->body);
        er_buf_fini(&c->out);
        free(c);
}

/* Writes what the socket takes.  0, or -errno when the client is gone. */
static int flush(struct er_ctl_stream *c)
{
        while (c->out_off < c->out.len) {
                ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        return -errno;
                }
                c->out_off += (size_t)n;
        }
        c->out_off = 0;
        er_buf_clear(&c->out);
        return 0;
}

/* After output was queued or the socket became writable: writes, then
 * closes a finished connection or watches for writability. */
static void settle(struct er_ctl_stream *c)
{
        bool pending;

        if (flush(c) < 0) {
                conn_close(c, true);
                return;
        }
        pending = c->out_off < c->out.len;
        if (!pending && c->state == C_WRITING) {
                conn_close(c, false);
                return;
        }
        if (er_io_modify(c->ctl->loop, &c->io, pending ? EPOLLOUT : 0) < 0)
                conn_close(c, true);
}

static void timer_cb(struct er_loop *loop, struct er_timer *t);

/* ---- responses ---- */

static const char *reason(int status)
{
        return http_status_str((enum http_status)status);
}

static void resp_fini(struct er_ctl_resp *resp)
{
        free(resp->ctype);
        free(resp->body);
        resp->ctype = resp->body = NULL;
}

static int resp_take(struct er_ctl_resp *resp, int status, const char *ctype, char *body,
                     size_t len)
{
        char *t = NULL;

        if (ctype) {
                t = strdup(ctype);
                if (!t) {
                        free(body);
                        return -ENOMEM;
                }
        }
        resp_fini(resp);
        resp->set = true;
        resp->status = status;
        resp->ctype = t;
        resp->body = body;
        resp->body_len = len;
        return 0;
}

static int dump_cb(const char *s, size_t n, void *data)
{
        return er_buf_put(data, s, n) < 0 ? -1 : 0;
}

int er_ctl_resp_json(struct er_ctl_resp *resp, int status, json_t *body)
{
        struct er_buf b = {0};
        char *s = NULL;
        size_t len = 0;
        int r;

        if (body) {
                r = json_dump_callback(body, dump_cb, &b, JSON_COMPACT);
                json_decref(body);
                /* a final newline, as curl users expect */
                if (r < 0 || er_buf_putc(&b, '\n') < 0 || er_buf_finish(&b, &s, &len) < 0) {
                        er_buf_fini(&b);
                        return -ENOMEM;
                }
        }
        return resp_take(resp, status, NULL, s, len);
}

int er_ctl_resp_string(struct er_ctl_resp *resp, int status, const char *content_type,
                       const char *body)
{
        char *s = NULL;

        if (body) {
                s = strdup(body);
                if (!s)
                        return -ENOMEM;
        }
        return resp_take(resp, status, content_type, s, s ? strlen(s) : 0);
}

int er_ctl_resp_error(struct er_ctl_resp *resp, int status, const char *fmt, ...)
{
        char msg[256];
        va_list ap;
        json_t *j;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        j = json_pack("{s:s}", "error", msg);
        if (!j)
                return -ENOMEM;
        return er_ctl_resp_json(resp, status, j);
}

/* Queues a plain response and moves to WRITING, the response timeout
 * running.  The caller settles. */
static int queue_resp(struct er_ctl_stream *c, const struct er_ctl_resp *resp)
{
        int r;

        r = out_printf(c,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n",
                       resp->status, reason(resp->status),
                       resp->ctype ? resp->ctype : "application/json", resp->body_len);
        if (r >= 0 && resp->body_len)
                r = out_append(c, resp->body, resp->body_len);
        c->state = C_WRITING;
        /* the client has the timeout again to read the response */
        if (r >= 0)
                r = er_timer_start(c->ctl->loop, &c->timer, c->ctl->o.timeout_us, timer_cb);
        return r;
}

/* Answers with a JSON error and closes once written. */
static void fail(struct er_ctl_stream *c, int status, const char *msg)
{
        struct er_ctl_resp resp = {.c = c};

        if (er_ctl_resp_error(&resp, status, "%s", msg) < 0 || queue_resp(c, &resp) < 0) {
                resp_fini(&resp);
                conn_close(c, false);
                return;
        }
        resp_fini(&resp);
        settle(c);
}

struct er_ctl_stream *er_ctl_resp_stream_begin(struct er_ctl_resp *resp, int status,
                                               const char *content_type,
                                               er_ctl_stream_closed_cb *closed, void *ud)
{
        struct er_ctl_stream *c = resp->c;

        if (resp->stream)
                return NULL;
        c->out_off = 0;
        er_buf_clear(&c->out);
        if (out_printf(c,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n",
                       status, reason(status),
                       content_type ? content_type : "application/json") < 0)
                return NULL;
        resp_fini(resp);
        resp->set = resp->stream = true;
        c->closed = closed;
        c->closed_ud = ud;
        return c;
}

int er_ctl_stream_write(struct er_ctl_stream *c, const void *buf, size_t len)
{
        char head[32];
        int n, r;

        if (c->dead)
                return -EPIPE;
        if (!len)
                return 0;
        n = snprintf(head, sizeof(head), "%zx\r\n", len);
        if (c->out.len - c->out_off + (size_t)n + len + 2 > c->ctl->o.max_output) {
                r = -ENOBUFS;
                goto out_close;
        }
        r = out_append(c, head, (size_t)n);
        if (r >= 0)
                r = out_append(c, buf, len);
        if (r >= 0)
                r = out_append(c, "\r\n", 2);
        if (r < 0)
                goto out_close;
        if (c->state == C_HANDLING)
                return 0; /* dispatch flushes after handle */
        r = flush(c);
        if (r < 0) {
                r = -EPIPE;
                goto out_close;
        }
        if (er_io_modify(c->ctl->loop, &c->io, c->out_off < c->out.len ? EPOLLOUT : 0) < 0) {
                r = -EPIPE;
                goto out_close;
        }
        return 0;

out_close:
        if (c->state == C_HANDLING)
                c->dead = true;
        else
                conn_close(c, false);
        return r;
}

void er_ctl_stream_end(struct er_ctl_stream *c)
{
        c->closed = NULL;
        if (c->dead)
                return;
        if (out_append(c, "0\r\n\r\n", 5) < 0) {
                c->dead = true;
                if (c->state != C_HANDLING)
                        conn_close(c, false);
                return;
        }
        if (c->state == C_HANDLING) {
                c->state = C_WRITING; /* dispatch settles */
                return;
        }
        c->state = C_WRITING;
        /* a stream may last longer than the timeout: the last bytes get one */
        if (er_timer_start(c->ctl->loop, &c->timer, c->ctl->o.timeout_us, timer_cb) < 0) {
                conn_close(c, false);
                return;
        }
        settle(c);
}

/* ---- requests ---- */

static int on_url(http_parser *p, const char *at, size_t len)
{
        struct er_ctl_stream *c = p->data;

        return er_buf_put(&c->url, at, len) < 0;
}

static int on_headers_complete(http_parser *p)
{
        struct er_ctl_stream *c = p->data;

        /* a declared body beyond the bound: answer at once */
        if (p->content_length != (uint64_t)-1 && p->content_length > c->ctl->o.max_request) {
                c->too_big = true;
                http_parser_pause(p, 1);
        }
        return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
        struct er_ctl_stream *c = p->data;

        return er_buf_put(&c->body, at, len) < 0;
}

static int on_message_complete(http_parser *p)
{
        struct er_ctl_stream *c = p->data;

        c->complete = true;
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static char *url_part(const struct er_ctl_stream *c, const struct http_parser_url *u, int f)
{
        if (!(u->field_set & (1u << f)))
                return strdup("");
        return strndup(c->url.p + u->field_data[f].off, u->field_data[f].len);
}

static void dispatch(struct er_ctl_stream *c)
{
        struct er_ctl *ctl = c->ctl;
        struct er_ctl_resp resp = {.c = c};
        struct er_ctl_req req = {0};
        struct http_parser_url u;
        char *path = NULL, *query = NULL;
        size_t i;
        int r;

        req.method = http_method_str((enum http_method)c->parser.method);
        for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
                if (!strcmp(req.method, methods[i]))
                        break;
        if (i == sizeof(methods) / sizeof(methods[0])) {
                fail(c, 405, "method not allowed");
                return;
        }
        http_parser_url_init(&u);
        /* origin-form only: http_parser also takes "*" and "*" + path
         * (OPTIONS *), which would hand the owner a path not starting
         * with '/' (found by tests/fuzz/fuzz_ctl.c) */
        if (!c->url.p || c->url.p[0] != '/' ||
            http_parser_parse_url(c->url.p, c->url.len, 0, &u) != 0 ||
            !(u.field_set & (1u << UF_PATH)) || (u.field_set & (1u << UF_HOST))) {
                fail(c, 400, "bad request target");
                return;
        }
        path = url_part(c, &u, UF_PATH);
        query = url_part(c, &u, UF_QUERY);
        if (!path || !query) {
                fail(c, 500, "out of memory");
                goto out;
        }
        req.path = path;
        req.query = query;
        req.body = er_buf_str(&c->body);
        req.body_len = c->body.len;

        c->state = C_HANDLING;
        r = ctl->o.handle(ctl->o.ud, &req, &resp);
        if (c->dead) {
                resp_fini(&resp);
                conn_close(c, false);
                goto out;
        }
        if (resp.stream) {
                if (c->state == C_HANDLING) {
                        c->state = C_STREAMING;
                        er_timer_stop(ctl->loop, &c->timer);
                } else if (er_timer_start(ctl->loop, &c->timer, ctl->o.timeout_us, timer_cb) < 0) {
                        conn_close(c, false); /* ended inside handle */
                        goto out;
                }
                settle(c);
                goto out;
        }
        if (r < 0 || !resp.set) {
                resp_fini(&resp);
                fail(c, 500, "internal error");
                goto out;
        }
        r = queue_resp(c, &resp);
        resp_fini(&resp);
        if (r < 0) {
                conn_close(c, false);
                goto out;
        }
        settle(c);
out:
        free(path);
        free(query);
}

static void conn_read(struct er_ctl_stream *c)
{
        struct er_ctl *ctl = c->ctl;
        char buf[READ_CHUNK];
        enum http_errno e;
        ssize_t n;

        for (;;) {
                n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                conn_close(c, false);
                        return;
                }
                if (n == 0) {
                        /* EOF before the request was complete */
                        conn_close(c, false);
                        return;
                }
                c->nread += (size_t)n;
                if (c->nread > ctl->o.max_request) {
                        fail(c, 413, "request too large");
                        return;
                }
                http_parser_execute(&c->parser, &settings, buf, (size_t)n);
                if (c->too_big) {
                        fail(c, 413, "request too large");
                        return;
                }
                if (c->complete) {
                        dispatch(c);
                        return;
                }
                e = HTTP_PARSER_ERRNO(&c->parser);
                if (e != HPE_OK) {
                        if (e == HPE_CB_url || e == HPE_CB_body)
                                fail(c, 500, "out of memory");
                        else if (e == HPE_INVALID_METHOD)
                                fail(c, 405, "unknown method");
                        else
                                fail(c, 400, http_errno_description(e));
                        return;
                }
        }
}

static void conn_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct er_ctl_stream *c = er_container_of(io, struct er_ctl_stream, io);

        if (c->state == C_READING) {
                conn_read(c);
                return;
        }
        if (revents & (EPOLLHUP | EPOLLERR)) {
                conn_close(c, true);
                return;
        }
        if (revents & EPOLLOUT)
                settle(c);
}

static void timer_cb(struct er_loop *loop, struct er_timer *t)
{
        struct er_ctl_stream *c = er_container_of(t, struct er_ctl_stream, timer);

        conn_close(c, true);
}

/* ---- listening ---- */

#define BUSY_BODY "{\"error\":\"too many clients\"}\n"

static void refuse_busy(int fd)
{
        char buf[256];
        int n;

        n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sizeof(BUSY_BODY) - 1, BUSY_BODY);
        /* best effort: the socket buffer of a fresh connection takes it */
        if (n > 0 && (size_t)n < sizeof(buf))
                (void)!send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static bool peer_ok(const struct er_ctl *ctl, int fd)
{
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
                return false;
        return cred.uid == ctl->uid;
}

static void listen_cb(struct er_loop *loop, struct er_io *io, uint32_t revents);

static void retry_cb(struct er_loop *loop, struct er_timer *t)
{
        struct er_ctl *ctl = er_container_of(t, struct er_ctl, retry);

        if (er_io_start(loop, &ctl->io, ctl->fd, EPOLLIN, listen_cb) < 0)
                er_timer_start(loop, &ctl->retry, ACCEPT_RETRY_US, retry_cb);
}

/* Takes fd (closed on failure).  0 or -errno. */
static int conn_new(struct er_ctl *ctl, int fd)
{
        struct er_ctl_stream *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->ctl = ctl;
        c->fd = fd;
        er_io_init(&c->io);
        er_timer_init(&c->timer);
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->parser.data = c;
        c->next = ctl->conns;
        if (c->next)
                c->next->prev = c;
        ctl->conns = c;
        ctl->nconns++;
        r = er_io_start(ctl->loop, &c->io, fd, EPOLLIN, conn_cb);
        if (r >= 0)
                r = er_timer_start(ctl->loop, &c->timer, ctl->o.timeout_us, timer_cb);
        if (r < 0)
                conn_close(c, false);
        return r < 0 ? r : 0;
}

int er_ctl_adopt_fd(struct er_ctl *ctl, int fd)
{
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return conn_new(ctl, fd);
}

static void listen_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct er_ctl *ctl = er_container_of(io, struct er_ctl, io);
        int i, fd;

        for (i = 0; i < ACCEPT_BATCH; i++) {
                fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return;
                        /* EMFILE, ENFILE, ENOBUFS, ENOMEM: pause, or spin */
                        er_io_stop(loop, &ctl->io);
                        er_timer_start(loop, &ctl->retry, ACCEPT_RETRY_US, retry_cb);
                        return;
                }
                if (!peer_ok(ctl, fd)) {
                        close(fd);
                        continue;
                }
                if (ctl->nconns >= ctl->o.max_conns) {
                        refuse_busy(fd);
                        close(fd);
                        continue;
                }
                (void)conn_new(ctl, fd); /* a failure closed it */
        }
}

static int make_socket(struct er_ctl *ctl)
{
        struct sockaddr_un sa;
        struct stat st;
        mode_t old;
        int r, dir_fd = -1;

        if (lstat(ctl->path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                /* a stale socket: the owner holds the instance's lock */
                if (unlink(ctl->path) < 0 && errno != ENOENT)
                        return -errno;
        } else if (errno != ENOENT) {
                return -errno;
        }
        ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (ctl->fd < 0)
                return -errno;
        /* A path past sun_path's 108 bytes is bound through its directory. */
        if ((r = er_unix_addr(ctl->path, &sa, &dir_fd)) < 0)
                return r;
        old = umask(0177);
        r = bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
        if (dir_fd >= 0)
                close(dir_fd);
        if (r < 0)
                return r;
        if (chmod(ctl->path, 0600) < 0 || lstat(ctl->path, &st) < 0) {
                r = -errno;
                unlink(ctl->path);
                return r;
        }
        ctl->dev = st.st_dev;
        ctl->ino = st.st_ino;
        if (listen(ctl->fd, SOMAXCONN) < 0) {
                r = -errno;
                unlink(ctl->path);
                return r;
        }
        return 0;
}

int er_ctl_new(struct er_loop *loop, const struct er_ctl_opts *opts, struct er_ctl **ret)
{
        struct er_ctl *ctl;
        int r;

        if (!opts->path || !opts->handle)
                return -EINVAL;
        ctl = calloc(1, sizeof(*ctl));
        if (!ctl)
                return -ENOMEM;
        ctl->loop = loop;
        ctl->fd = -1;
        er_io_init(&ctl->io);
        er_timer_init(&ctl->retry);
        ctl->o = *opts;
        ctl->o.path = NULL;
        if (!ctl->o.timeout_us)
                ctl->o.timeout_us = ER_CTL_TIMEOUT_US;
        if (!ctl->o.max_request)
                ctl->o.max_request = ER_CTL_MAX_REQUEST;
        if (!ctl->o.max_conns)
                ctl->o.max_conns = ER_CTL_MAX_CONNS;
        if (!ctl->o.max_output)
                ctl->o.max_output = ER_CTL_MAX_OUTPUT;
        ctl->uid = opts->owner_uid_set ? opts->owner_uid : geteuid();
        ctl->path = strdup(opts->path);
        if (!ctl->path) {
                r = -ENOMEM;
                goto out_free;
        }
        r = make_socket(ctl);
        if (r < 0)
                goto out_free;
        r = er_io_start(loop, &ctl->io, ctl->fd, EPOLLIN, listen_cb);
        if (r < 0) {
                unlink(ctl->path);
                goto out_free;
        }
        *ret = ctl;
        return 0;

out_free:
        er_close(&ctl->fd);
        free(ctl->path);
        free(ctl);
        return r;
}

void er_ctl_free(struct er_ctl *ctl)
{
        struct stat st;

        if (!ctl)
                return;
        while (ctl->conns)
                conn_close(ctl->conns, true);
        er_io_stop(ctl->loop, &ctl->io);
        er_timer_stop(ctl->loop, &ctl->retry);
        er_close(&ctl->fd);
        /* remove the socket unless another one replaced it */
        if (ctl->path && lstat(ctl->path, &st) == 0 && st.st_dev == ctl->dev &&
            st.st_ino == ctl->ino)
                unlink(ctl->path);
        free(ctl->path);
        free(ctl);
}

size_t er_ctl_nconns(const struct er_ctl *ctl)
{
        return ctl->nconns;
}
