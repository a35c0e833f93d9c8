/* ctl_client: the CLI's side of the control API; see ctl_client.h.
 *
 * The socket is connected blocking, bounded by SO_SNDTIMEO (a unix
 * socket's connect waits on a full backlog for that long, and cannot be
 * polled for completion), then made non-blocking: the request is written
 * and the response read with poll() on the time left.  The response goes
 * through http_parser in HTTP_RESPONSE mode, which decodes chunks and tells
 * a body that ends with the connection (no length, not chunked) by the
 * zero-length execute at EOF. */
#include "api/ctl_client.h"

#include "base/buf.h"
#include "base/hfield.h"
#include "base/unixaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 16384
/* Bytes read per er_ctl_client_read call: a fast stream cannot starve the
 * caller's other clients; poll() reports the rest. */
#define READ_BUDGET (4 * READ_CHUNK)
/* Longer Content-Type values are a malformed response. */
#define CTYPE_MAX 256

struct er_ctl_client {
        int fd;
        char *path; /* for messages */
        http_parser parser;
        bool got_bytes, complete;
        int status;
        int cb_err;                  /* -errno a callback failed with */
        char cb_msg[ER_ERR_MSG_MAX]; /* and its message */

        /* the header being parsed: is it Content-Type? */
        struct er_hfield hf;
        bool is_ctype;
        char *ctype;
        size_t ctype_len;

        /* where body bytes go: collected (er_ctl_client_call) or passed on */
        bool collect;
        struct er_buf body;
        void (*cb)(void *ud, const char *buf, size_t len);
        void *ud;
};

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Milliseconds left until deadline (0: none) for poll(): -1 for no bound,
 * rounded up so that a wait never ends before the deadline. */
static int poll_ms(uint64_t deadline)
{
        uint64_t now, left;

        if (!deadline)
                return -1;
        now = now_us();
        if (now >= deadline)
                return 0;
        left = (deadline - now + 999) / 1000;
        return left > INT_MAX ? INT_MAX : (int)left;
}

static int timed_out(const struct er_ctl_client *c, uint64_t timeout_us, struct er_err *err)
{
        return er_err_set(err, -ETIMEDOUT, NULL, 0, 0, "no answer from '%s' within %llu ms",
                          c->path, (unsigned long long)(timeout_us / 1000));
}

/* ---- the response parser ---- */

static int cb_fail(struct er_ctl_client *c, int code, const char *msg)
{
        c->cb_err = code;
        snprintf(c->cb_msg, sizeof(c->cb_msg), "%s", msg);
        return 1;
}

static int on_message_begin(http_parser *p)
{
        struct er_ctl_client *c = p->data;

        c->ctype_len = 0;
        er_hfield_reset(&c->hf);
        c->is_ctype = false;
        return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
        struct er_ctl_client *c = p->data;

        if (c->hf.in_value)
                c->is_ctype = false;
        er_hfield_name(&c->hf, at, len);
        return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
        struct er_ctl_client *c = p->data;

        if (er_hfield_value_begins(&c->hf)) {
                c->is_ctype = er_hfield_is(&c->hf, "content-type");
                if (c->is_ctype)
                        c->ctype_len = 0; /* the last one counts */
        }
        if (!c->is_ctype)
                return 0;
        if (len > CTYPE_MAX - c->ctype_len)
                return cb_fail(c, -EPROTO, "content type too long");
        memcpy(c->ctype + c->ctype_len, at, len);
        c->ctype_len += len;
        return 0;
}

static int on_headers_complete(http_parser *p)
{
        struct er_ctl_client *c = p->data;

        /* an interim response (100 Continue) is not the status */
        if (p->status_code >= 200 || p->status_code == 101)
                c->status = p->status_code;
        return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
        struct er_ctl_client *c = p->data;

        if (!c->collect) {
                if (c->cb)
                        c->cb(c->ud, at, len);
                return 0;
        }
        if (len > ER_CTL_CLIENT_MAX_BODY - c->body.len)
                return cb_fail(c, -EFBIG, "response body larger than 16 MiB");
        if (er_buf_put(&c->body, at, len) < 0)
                return cb_fail(c, -ENOMEM, "out of memory");
        return 0;
}

static int on_message_complete(http_parser *p)
{
        struct er_ctl_client *c = p->data;

        /* an interim response (100 Continue): the real one follows */
        if (p->status_code < 200 && p->status_code != 101)
                return 0;
        c->complete = true;
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Feeds n bytes (0: EOF).  1 while the response goes on, 0 when complete,
 * or -errno. */
static int feed(struct er_ctl_client *c, const char *buf, size_t n, struct er_err *err)
{
        enum http_errno e;

        if (n)
                c->got_bytes = true;
        http_parser_execute(&c->parser, &settings, buf, n);
        if (c->cb_err)
                return er_err_set(err, c->cb_err, NULL, 0, 0, "bad response from '%s': %s", c->path,
                                  c->cb_msg);
        if (c->complete)
                return 0;
        e = HTTP_PARSER_ERRNO(&c->parser);
        if (!n && !c->got_bytes)
                return er_err_set(err, -ECONNRESET, NULL, 0, 0,
                                  "'%s' closed the connection without answering", c->path);
        if (!n && (e == HPE_OK || e == HPE_INVALID_EOF_STATE))
                return er_err_set(err, -ECONNRESET, NULL, 0, 0,
                                  "'%s' closed the connection before the response ended", c->path);
        if (e != HPE_OK || c->parser.upgrade)
                return er_err_set(
                    err, -EPROTO, NULL, 0, 0, "malformed response from '%s': %s", c->path,
                    c->parser.upgrade ? "unexpected upgrade" : http_errno_description(e));
        return 1;
}

/* Reads what the socket has, up to READ_BUDGET bytes.  1 while the
 * response goes on, 0 when it is complete, or -errno. */
static int read_some(struct er_ctl_client *c, struct er_err *err)
{
        char buf[READ_CHUNK];
        size_t total = 0;
        ssize_t n;
        int r;

        if (c->complete)
                return 0;
        while (total < READ_BUDGET) {
                n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 1;
                        r = -errno;
                        if (r == -ECONNRESET)
                                return er_err_set(err, r, NULL, 0, 0,
                                                  "'%s' closed the connection before "
                                                  "the response ended",
                                                  c->path);
                        return er_err_set(err, r, NULL, 0, 0, "cannot read from '%s': %s", c->path,
                                          strerror(-r));
                }
                r = feed(c, buf, (size_t)n, err);
                if (r <= 0)
                        return r;
                if (n == 0)
                        return 1; /* not reached: EOF ends or fails */
                total += (size_t)n;
        }
        return 1;
}

/* ---- the request ---- */

static bool token_ok(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= ' ' || *s == 0x7f)
                        return false;
        return true;
}

static char *build_request(const char *method, const char *target, const char *body,
                           size_t *ret_len)
{
        size_t blen = body ? strlen(body) : 0;
        char head[96];
        char *buf;
        int n;

        if (body)
                snprintf(head, sizeof(head),
                         "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
        else
                head[0] = '\0';
        n = asprintf(&buf, "%s %s HTTP/1.1\r\nHost: envrun\r\nConnection: close\r\n%s\r\n%s",
                     method, target, head, body ? body : "");
        if (n < 0)
                return NULL;
        *ret_len = (size_t)n;
        return buf;
}

/* connect() to sa, within the deadline; 0 or -errno with err. */
static int connect_sa(struct er_ctl_client *c, const struct sockaddr_un *sa, const char *sock_path,
                      uint64_t deadline, uint64_t timeout_us, struct er_err *err)
{
        struct timeval tv = {0};
        int r;

        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
                r = -errno;
                return er_err_set(err, r, NULL, 0, 0, "cannot create a socket: %s", strerror(-r));
        }
        if (deadline) {
                /* a connect to a full backlog waits this long, then EAGAIN */
                tv.tv_sec = (time_t)(timeout_us / 1000000u);
                tv.tv_usec = (suseconds_t)(timeout_us % 1000000u);
                if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
                        r = -errno;
                        return er_err_set(err, r, NULL, 0, 0, "cannot set a socket timeout: %s",
                                          strerror(-r));
                }
        }
        while (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
                r = -errno;
                if (r == -EINTR && (!deadline || now_us() < deadline))
                        continue;
                if (r == -EAGAIN || r == -EINPROGRESS || r == -EINTR)
                        return timed_out(c, timeout_us, err);
                return er_err_set(err, r, NULL, 0, 0, "cannot connect to '%s': %s", sock_path,
                                  strerror(-r));
        }
        if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                return er_err_set(err, r, NULL, 0, 0, "cannot set '%s' non-blocking: %s", sock_path,
                                  strerror(-r));
        }
        return 0;
}

static int connect_to(struct er_ctl_client *c, const char *sock_path, uint64_t deadline,
                      uint64_t timeout_us, struct er_err *err)
{
        struct sockaddr_un sa;
        int r, dir_fd = -1;

        /* A path past sun_path's 108 bytes is reached through its directory. */
        if ((r = er_unix_addr(sock_path, &sa, &dir_fd)) < 0)
                return er_err_set(err, r, NULL, 0, 0, "socket '%s': %s", sock_path, strerror(-r));
        r = connect_sa(c, &sa, sock_path, deadline, timeout_us, err);
        if (dir_fd >= 0)
                close(dir_fd);
        return r;
}

/* Writes the whole request.  A server that closes early (it answered an
 * error at once) is not an error here: its answer is read next. */
static int send_all(struct er_ctl_client *c, const char *buf, size_t len, uint64_t deadline,
                    uint64_t timeout_us, struct er_err *err)
{
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        size_t off = 0;
        ssize_t n;
        int r;

        while (off < len) {
                n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0) {
                        off += (size_t)n;
                        continue;
                }
                if (errno == EPIPE || errno == ECONNRESET)
                        return 0;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        r = -errno;
                        return er_err_set(err, r, NULL, 0, 0, "cannot write to '%s': %s", c->path,
                                          strerror(-r));
                }
                r = poll(&pfd, 1, poll_ms(deadline));
                if (r < 0 && errno != EINTR) {
                        r = -errno;
                        return er_err_set(err, r, NULL, 0, 0, "poll: %s", strerror(-r));
                }
                if (r == 0 && deadline && now_us() >= deadline)
                        return timed_out(c, timeout_us, err);
        }
        return 0;
}

static int client_open(const char *sock_path, const char *method, const char *target,
                       const char *body, uint64_t timeout_us, uint64_t deadline,
                       struct er_ctl_client **ret, struct er_err *err)
{
        struct er_ctl_client *c;
        size_t len = 0;
        char *req;
        int r;

        if (!token_ok(method) || !token_ok(target) || target[0] != '/')
                return er_err_set(err, -EINVAL, NULL, 0, 0, "invalid request '%s %s'", method,
                                  target);
        c = calloc(1, sizeof(*c));
        if (!c)
                return er_err_set(err, -ENOMEM, NULL, 0, 0, "out of memory");
        c->fd = -1;
        c->path = strdup(sock_path);
        c->ctype = malloc(CTYPE_MAX + 1);
        if (!c->path || !c->ctype) {
                r = er_err_set(err, -ENOMEM, NULL, 0, 0, "out of memory");
                goto out_free;
        }
        http_parser_init(&c->parser, HTTP_RESPONSE);
        c->parser.data = c;
        r = connect_to(c, sock_path, deadline, timeout_us, err);
        if (r < 0)
                goto out_free;
        req = build_request(method, target, body, &len);
        if (!req) {
                r = er_err_set(err, -ENOMEM, NULL, 0, 0, "out of memory");
                goto out_free;
        }
        r = send_all(c, req, len, deadline, timeout_us, err);
        free(req);
        if (r < 0)
                goto out_free;
        *ret = c;
        return 0;

out_free:
        er_ctl_client_free(c);
        return r;
}

/* ---- the API ---- */

void er_ctl_client_reply_fini(struct er_ctl_reply *r)
{
        if (!r)
                return;
        free(r->content_type);
        free(r->body);
        r->content_type = r->body = NULL;
        r->body_len = 0;
        r->status = 0;
}

int er_ctl_client_call(const char *sock_path, const char *method, const char *target,
                       const char *body, uint64_t timeout_us, struct er_ctl_reply *ret,
                       struct er_err *err)
{
        uint64_t deadline = timeout_us ? now_us() + timeout_us : 0;
        struct er_ctl_client *c = NULL;
        struct pollfd pfd;
        char *ctype;
        int r;

        r = client_open(sock_path, method, target, body, timeout_us, deadline, &c, err);
        if (r < 0)
                return r;
        c->collect = true;
        pfd.fd = c->fd;
        pfd.events = POLLIN;
        for (;;) {
                r = read_some(c, err);
                if (r <= 0)
                        break;
                r = poll(&pfd, 1, poll_ms(deadline));
                if (r < 0 && errno != EINTR) {
                        r = -errno;
                        er_err_set(err, r, NULL, 0, 0, "poll: %s", strerror(-r));
                        break;
                }
                if (r == 0 && deadline && now_us() >= deadline) {
                        r = timed_out(c, timeout_us, err);
                        break;
                }
        }
        if (r < 0)
                goto out_free;
        ctype = strndup(c->ctype, c->ctype_len);
        if (!ctype || er_buf_finish(&c->body, &ret->body, &ret->body_len) < 0) {
                free(ctype);
                r = er_err_set(err, -ENOMEM, NULL, 0, 0, "out of memory");
                goto out_free;
        }
        ret->status = c->status;
        ret->content_type = ctype;
out_free:
        er_ctl_client_free(c);
        return r;
}

int er_ctl_client_open(const char *sock_path, const char *method, const char *target,
                       uint64_t timeout_us, struct er_ctl_client **ret, struct er_err *err)
{
        uint64_t deadline = timeout_us ? now_us() + timeout_us : 0;

        return client_open(sock_path, method, target, NULL, timeout_us, deadline, ret, err);
}

int er_ctl_client_fd(const struct er_ctl_client *c)
{
        return c->fd;
}

int er_ctl_client_read(struct er_ctl_client *c, void (*cb)(void *ud, const char *buf, size_t len),
                       void *ud, struct er_err *err)
{
        int r;

        c->cb = cb;
        c->ud = ud;
        r = read_some(c, err);
        c->cb = NULL;
        c->ud = NULL;
        return r;
}

int er_ctl_client_status(const struct er_ctl_client *c)
{
        return c->status;
}

void er_ctl_client_free(struct er_ctl_client *c)
{
        if (!c)
                return;
        er_close(&c->fd);
        free(c->path);
        free(c->ctype);
        er_buf_fini(&c->body);
        free(c);
}
