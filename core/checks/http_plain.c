/* http_plain: HTTP/1.1 on the loop without libcurl; see http_plain.h.
 *
 * One request is a small state machine over the loop: CONNECTING (a
 * non-blocking connect to every address at once, like the tcp check),
 * WRITING (the request, as the socket takes it), READING (the response
 * through http_parser in HTTP_RESPONSE mode until the final status line's
 * headers are in).  One timer bounds the whole request, redirects
 * included; another, set to 0, reports a failure found inside
 * er_hplain_request from the loop, as the callback's contract says. */
#include "checks/http_plain.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/hfield.h"
#include "checks/http.h"
#include "model/envfile.h"
#include "proc/loop.h"

/* A Location longer than this is a malformed response. */
#define LOCATION_MAX 8192
#define READ_CHUNK 4096

/* --- URLs ------------------------------------------------------------------ */

void er_hplain_url_fini(struct er_hplain_url *u)
{
        if (!u)
                return;
        free(u->authority);
        free(u->path);
        u->authority = u->path = NULL;
        u->n_addrs = 0;
}

static void add_addr(struct er_hplain_url *u, int family, const void *ip, unsigned port)
{
        struct sockaddr_storage *ss = &u->addrs[u->n_addrs];

        memset(ss, 0, sizeof(*ss));
        if (family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *)ss;
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t)port);
                memcpy(&in->sin_addr, ip, sizeof(in->sin_addr));
                u->lens[u->n_addrs] = sizeof(*in);
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t)port);
                memcpy(&in6->sin6_addr, ip, sizeof(in6->sin6_addr));
                u->lens[u->n_addrs] = sizeof(*in6);
        }
        u->n_addrs++;
}

/* The host's addresses without a resolver; false for a name. */
static bool host_addrs(struct er_hplain_url *u, const char *host, bool bracketed, unsigned port)
{
        unsigned char ip[sizeof(struct in6_addr)];

        if (bracketed) {
                if (inet_pton(AF_INET6, host, ip) != 1)
                        return false; /* a zone ("%eth0"), or not an address */
                add_addr(u, AF_INET6, ip, port);
                return true;
        }
        if (inet_pton(AF_INET, host, ip) == 1) {
                add_addr(u, AF_INET, ip, port);
                return true;
        }
        if (strcasecmp(host, "localhost"))
                return false;
        inet_pton(AF_INET, "127.0.0.1", ip);
        add_addr(u, AF_INET, ip, port);
        inet_pton(AF_INET6, "::1", ip);
        add_addr(u, AF_INET6, ip, port);
        return true;
}

/* "8080" -> 8080; "" (after a colon) -> 80; 0 for anything else. */
static unsigned parse_port(const char *s, size_t n)
{
        unsigned v = 0;

        if (n == 0)
                return 80;
        if (n > 5)
                return 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return 0;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        return v <= 65535 ? v : 0;
}

/* Bytes libcurl would encode or refuse in a path: left to it. */
static bool path_plain(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
                        return false;
        return true;
}

int er_hplain_url_parse(const char *url, struct er_hplain_url *u)
{
        const char *a, *host_end, *p;
        size_t alen, plen;
        char host[64];
        unsigned port = 80;
        bool bracketed = false;
        int r;

        memset(u, 0, sizeof(*u));
        if (strncasecmp(url, "http://", 7))
                return -ENOTSUP;
        a = url + 7;
        alen = strcspn(a, "/?#");
        if (!alen || memchr(a, '@', alen))
                return -ENOTSUP;
        if (a[0] == '[') {
                host_end = memchr(a, ']', alen);
                if (!host_end)
                        return -ENOTSUP;
                bracketed = true;
                p = host_end + 1;
                a++;
        } else {
                host_end = memchr(a, ':', alen);
                if (!host_end)
                        host_end = url + 7 + alen;
                p = host_end;
        }
        if ((size_t)(host_end - a) >= sizeof(host) || host_end == a)
                return -ENOTSUP;
        memcpy(host, a, (size_t)(host_end - a));
        host[host_end - a] = '\0';
        a = url + 7;
        if (p < a + alen) {
                if (*p != ':' || !(port = parse_port(p + 1, (size_t)(a + alen - p - 1))))
                        return -ENOTSUP;
        }
        if (!host_addrs(u, host, bracketed, port))
                return -ENOTSUP;
        p = a + alen;
        plen = strcspn(p, "#");
        if (!path_plain(p, plen))
                return -ENOTSUP;
        if (bracketed && port != 80)
                r = asprintf(&u->authority, "[%s]:%u", host, port);
        else if (bracketed)
                r = asprintf(&u->authority, "[%s]", host);
        else if (port != 80)
                r = asprintf(&u->authority, "%s:%u", host, port);
        else
                r = asprintf(&u->authority, "%s", host);
        if (r < 0)
                u->authority = NULL;
        if (asprintf(&u->path, "%s%.*s", p[0] == '/' ? "" : "/", (int)plen, p) < 0)
                u->path = NULL;
        if (!u->authority || !u->path) {
                er_hplain_url_fini(u);
                return -ENOMEM;
        }
        return 0;
}

/* --- resolving a Location ---------------------------------------------------- */

/* RFC 3986 5.2.4 on path (which begins with '/') up to its '?', in
 * place: "/a/./b/../c" -> "/a/c".  The output never runs ahead of the
 * input, so one pass writes behind the reader. */
static void remove_dots(char *path)
{
        size_t end = strcspn(path, "?"), i = 0, o = 0;

        while (i < end) { /* path[i] is a '/' */
                size_t s = i + 1, n = strcspn(path + s, "/?");
                bool last = s + n >= end;

                if (n == 1 && path[s] == '.') {
                        /* dropped */
                } else if (n == 2 && path[s] == '.' && path[s + 1] == '.') {
                        while (o > 0 && path[--o] != '/')
                                ; /* drops the last segment written */
                } else {
                        memmove(path + o, path + i, n + 1);
                        o += n + 1;
                        i = s + n;
                        continue;
                }
                if (last)
                        path[o++] = '/';
                i = s + n;
        }
        memmove(path + o, path + end, strlen(path + end) + 1);
}

static bool has_scheme(const char *s)
{
        if (!isalpha((unsigned char)s[0]))
                return false;
        for (s++; *s && *s != ':'; s++)
                if (!isalnum((unsigned char)*s) && !strchr("+-.", *s))
                        return false;
        return *s == ':';
}

/* The absolute URL loc (a Location value) names from base, without
 * fragment; NULL on ENOMEM. */
static char *resolve_location(const struct er_hplain_url *base, const char *loc, size_t len)
{
        size_t dir = strcspn(base->path, "?");
        char *r = NULL, *path = NULL, *l;
        int n;

        while (len && (*loc == ' ' || *loc == '\t'))
                loc++, len--;
        while (len && (loc[len - 1] == ' ' || loc[len - 1] == '\t'))
                len--;
        l = er_strndup(loc, len);
        if (!l)
                return NULL;
        l[strcspn(l, "#")] = '\0';
        if (has_scheme(l))
                return l;
        if (l[0] == '/' && l[1] == '/')
                n = asprintf(&r, "http:%s", l);
        else {
                if (l[0] == '/')
                        n = asprintf(&path, "%s", l);
                else if (!l[0]) /* the same resource, query included */
                        n = asprintf(&path, "%s", base->path);
                else if (l[0] == '?')
                        n = asprintf(&path, "%.*s%s", (int)dir, base->path, l);
                else {
                        while (dir && base->path[dir - 1] != '/')
                                dir--;
                        n = asprintf(&path, "%.*s%s", (int)dir, base->path, l);
                }
                if (n >= 0) {
                        remove_dots(path);
                        n = asprintf(&r, "http://%s%s", base->authority, path);
                        free(path);
                }
        }
        free(l);
        return n < 0 ? NULL : r;
}

/* --- requests --------------------------------------------------------------- */

enum phase { CONNECTING, WRITING, READING };

struct conn {
        struct er_io io;
        int fd; /* -1: none */
        struct er_hplain *q;
};

struct er_hplain {
        struct er_loop *loop;
        er_hplain_cb *cb;
        void *data;
        struct er_hplain_url url; /* the current hop's */
        char *method;
        char *body;               /* NULL: none */
        char *headers;            /* the check's header lines, each ending "\r\n" */
        bool has_ua, has_accept, has_ctype, has_length, has_host, has_conn;
        bool follow;
        unsigned hops;
        uint64_t timeout_ms;
        struct er_timer timer;    /* the whole request */
        struct er_timer soon;     /* reports `why` from the loop */

        enum phase phase;
        struct conn conns[ER_HPLAIN_MAX_ADDRS];
        struct conn *live;        /* the connection that won */
        size_t pending;           /* connects in flight */
        int err;                  /* the most telling connect error */
        struct er_buf req;
        size_t written;

        http_parser parser;
        bool got_bytes, final;
        long status;
        struct er_hfield hf;      /* the header being read */
        bool is_location;
        struct er_buf location;
        char why[256];
};

static void close_conns(struct er_hplain *q)
{
        for (size_t i = 0; i < ER_HPLAIN_MAX_ADDRS; i++) {
                if (q->conns[i].fd < 0)
                        continue;
                er_io_stop(q->loop, &q->conns[i].io);
                er_close(&q->conns[i].fd);
        }
        q->live = NULL;
        q->pending = 0;
}

static void req_free(struct er_hplain *q)
{
        close_conns(q);
        er_timer_stop(q->loop, &q->timer);
        er_timer_stop(q->loop, &q->soon);
        er_hplain_url_fini(&q->url);
        free(q->method);
        free(q->body);
        free(q->headers);
        er_buf_fini(&q->req);
        er_buf_fini(&q->location);
        free(q);
}

void er_hplain_cancel(struct er_hplain *q)
{
        if (q)
                req_free(q);
}

/* Ends the request: frees it, then tells the caller. */
static void finish(struct er_hplain *q, long status, const char *error,
                   const struct er_hplain_next *next)
{
        er_hplain_cb *cb = q->cb;
        void *data = q->data;
        char why[sizeof(q->why)];

        snprintf(why, sizeof(why), "%s", error ? error : "");
        req_free(q);
        cb(data, status, error ? why : NULL, next);
}

static void fail(struct er_hplain *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct er_hplain *q, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(q->why, sizeof(q->why), fmt, ap);
        va_end(ap);
        finish(q, 0, q->why, NULL);
}

static void on_soon(struct er_loop *loop, struct er_timer *t)
{
        struct er_hplain *q = er_container_of(t, struct er_hplain, soon);

        finish(q, 0, q->why, NULL);
}

static void on_timeout(struct er_loop *loop, struct er_timer *t)
{
        struct er_hplain *q = er_container_of(t, struct er_hplain, timer);

        fail(q, "no response within %llu ms", (unsigned long long)q->timeout_ms);
}

/* "Connection refused" -> "connection refused" */
static void lower_strerror(char *buf, size_t len, int e)
{
        snprintf(buf, len, "%s", strerror(e));
        buf[0] = (char)tolower((unsigned char)buf[0]);
}

/* --- the response ------------------------------------------------------------ */

static int on_message_begin(http_parser *p)
{
        struct er_hplain *q = p->data;

        er_hfield_reset(&q->hf);
        q->is_location = false;
        er_buf_clear(&q->location);
        return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
        struct er_hplain *q = p->data;

        if (q->hf.in_value)
                q->is_location = false;
        er_hfield_name(&q->hf, at, len);
        return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
        struct er_hplain *q = p->data;

        if (er_hfield_value_begins(&q->hf)) {
                q->is_location = q->follow && er_hfield_is(&q->hf, "location");
                if (q->is_location)
                        er_buf_clear(&q->location); /* the last one counts */
        }
        if (!q->is_location)
                return 0;
        if (len > LOCATION_MAX - q->location.len || er_buf_put(&q->location, at, len) < 0)
                return 1; /* HPE_CB_header_value: reported as malformed */
        return 0;
}

static int on_headers_complete(http_parser *p)
{
        struct er_hplain *q = p->data;

        /* an interim response (100 Continue): the final one follows */
        if (p->status_code < 200 && p->status_code != 101)
                return 0;
        q->final = true;
        q->status = p->status_code;
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
};

static int start_hop(struct er_hplain *q);

/* The method and body of the request a redirect asks for. */
static int redirect_method(struct er_hplain *q, long code)
{
        bool to_get = (code == 303 && strcmp(q->method, "HEAD")) ||
                      (code <= 302 && (!strcmp(q->method, "POST") || q->body));
        char *m;

        if (!to_get)
                return 0;
        m = er_strdup("GET");
        if (!m)
                return -ENOMEM;
        free(q->method);
        q->method = m;
        free(q->body);
        q->body = NULL;
        return 0;
}

/* The final response asks for a redirect (code, Location): follow it here,
 * or hand it back. */
static void follow(struct er_hplain *q, long code)
{
        struct er_hplain_url next;
        char *url;
        int r;

        if (q->hops >= ER_HPLAIN_MAX_REDIRS) {
                fail(q, "maximum (%d) redirects followed", ER_HPLAIN_MAX_REDIRS);
                return;
        }
        close_conns(q);
        url = resolve_location(&q->url, er_buf_str(&q->location), q->location.len);
        if (!url || redirect_method(q, code) < 0) {
                free(url);
                fail(q, "out of memory");
                return;
        }
        q->hops++;
        r = er_hplain_url_parse(url, &next);
        if (r == -ENOTSUP) {
                /* finish() frees q: n's strings are taken from it first. */
                char *method = q->method, *body = q->body;
                struct er_hplain_next n = {url, method, body, q->hops};
                q->method = q->body = NULL;
                if (strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8))
                        fail(q, "redirect to a URL that is not http or https: '%.200s'", url);
                else
                        finish(q, code, NULL, &n);
                free(url);
                free(method);
                free(body);
                return;
        }
        free(url);
        if (r < 0) {
                fail(q, "out of memory");
                return;
        }
        er_hplain_url_fini(&q->url);
        q->url = next;
        r = start_hop(q);
        if (r < 0)
                fail(q, "cannot start a request: %s", strerror(-r));
}

/* The final response's headers are in. */
static void got_final(struct er_hplain *q)
{
        if (q->follow && er_http_redirect(q->status) && q->location.len) {
                follow(q, q->status);
                return;
        }
        finish(q, q->status, NULL, NULL);
}

/* Feeds n bytes (0: EOF) to the parser; true when the request ended. */
static bool feed(struct er_hplain *q, const char *buf, size_t n)
{
        enum http_errno e;

        if (n)
                q->got_bytes = true;
        http_parser_execute(&q->parser, &settings, buf, n);
        if (q->final) {
                got_final(q);
                return true;
        }
        e = HTTP_PARSER_ERRNO(&q->parser);
        if (n && e == HPE_OK)
                return false;
        if (!q->got_bytes)
                fail(q, "empty reply from server");
        else if (e == HPE_OK || e == HPE_INVALID_EOF_STATE)
                fail(q, "the server closed the connection before the response ended");
        else
                fail(q, "malformed response: %s", http_errno_description(e));
        return true;
}

static void on_readable(struct er_hplain *q)
{
        char buf[READ_CHUNK];
        char e[128];
        ssize_t n;

        for (;;) {
                n = recv(q->live->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return;
                        lower_strerror(e, sizeof(e), errno);
                        fail(q, "recv failure: %s", e);
                        return;
                }
                if (feed(q, buf, (size_t)n) || n == 0)
                        return;
        }
}

static void on_writable(struct er_hplain *q)
{
        char e[128];
        ssize_t n;

        while (q->written < q->req.len) {
                n = send(q->live->fd, q->req.p + q->written, q->req.len - q->written,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return;
                        lower_strerror(e, sizeof(e), errno);
                        fail(q, "send failure: %s", e);
                        return;
                }
                q->written += (size_t)n;
        }
        q->phase = READING;
        if (er_io_modify(q->loop, &q->live->io, EPOLLIN) < 0)
                fail(q, "cannot watch a socket: %s", strerror(errno));
}

/* Keeps the error that says most: a refusal over the rest, else the first. */
static void note_error(struct er_hplain *q, int e)
{
        if (q->err == 0 || e == ECONNREFUSED)
                q->err = e;
}

/* Why no connection came, into q->why: "connection refused", "cannot
 * connect: network is unreachable". */
static void connect_why(struct er_hplain *q)
{
        char e[128];

        if (q->err == ECONNREFUSED) {
                snprintf(q->why, sizeof(q->why), "connection refused");
                return;
        }
        lower_strerror(e, sizeof(e), q->err ? q->err : EIO);
        snprintf(q->why, sizeof(q->why), "cannot connect: %s", e);
}

static void on_connected(struct conn *c, uint32_t revents)
{
        struct er_hplain *q = c->q;
        socklen_t len = sizeof(int);
        int e = 0;

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                e = errno;
        if (e || !(revents & EPOLLOUT)) {
                note_error(q, e ? e : ECONNRESET);
                er_io_stop(q->loop, &c->io);
                er_close(&c->fd);
                if (--q->pending == 0) {
                        connect_why(q);
                        finish(q, 0, q->why, NULL);
                }
                return;
        }
        /* The first to accept wins; the others are dropped. */
        for (size_t i = 0; i < ER_HPLAIN_MAX_ADDRS; i++) {
                if (&q->conns[i] == c || q->conns[i].fd < 0)
                        continue;
                er_io_stop(q->loop, &q->conns[i].io);
                er_close(&q->conns[i].fd);
        }
        q->pending = 0;
        q->live = c;
        q->phase = WRITING;
        on_writable(q);
}

static void on_event(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct conn *c = er_container_of(io, struct conn, io);
        struct er_hplain *q = c->q;

        switch (q->phase) {
        case CONNECTING:
                on_connected(c, revents);
                return;
        case WRITING:
                on_writable(q);
                return;
        case READING:
                on_readable(q);
                return;
        }
}

/* Starts connecting to address i: 1 connected, 0 in flight, or -errno. */
static int connect_one(struct er_hplain *q, size_t i)
{
        struct conn *c = &q->conns[i];
        int r;

        c->fd = socket(q->url.addrs[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        r = connect(c->fd, (const struct sockaddr *)&q->url.addrs[i], q->url.lens[i]) == 0;
        if (!r && errno != EINPROGRESS && errno != EINTR) {
                r = -errno;
                er_close(&c->fd);
                return r;
        }
        /* Connected or not, EPOLLOUT says when it is (at once for the former). */
        if (er_io_start(q->loop, &c->io, c->fd, EPOLLOUT, on_event) < 0) {
                r = -errno;
                er_close(&c->fd);
                return r ? r : -ENOMEM;
        }
        return 0;
}

static int build_request(struct er_hplain *q)
{
        struct er_buf *b = &q->req;
        char line[64];

        er_buf_clear(b);
        q->written = 0;
        if (er_buf_printf(b, "%s %s HTTP/1.1\r\n", q->method, q->url.path) < 0 ||
            (!q->has_host && er_buf_printf(b, "Host: %s\r\n", q->url.authority) < 0) ||
            (!q->has_ua && er_buf_puts(b, "User-Agent: " ER_HTTP_USER_AGENT "\r\n") < 0) ||
            (!q->has_accept && er_buf_puts(b, "Accept: */*\r\n") < 0) ||
            (!q->has_conn && er_buf_puts(b, "Connection: close\r\n") < 0))
                return -ENOMEM;
        if (q->body) {
                snprintf(line, sizeof(line), "Content-Length: %zu\r\n", strlen(q->body));
                if ((!q->has_length && er_buf_puts(b, line) < 0) ||
                    (!q->has_ctype &&
                     er_buf_puts(b, "Content-Type: application/x-www-form-urlencoded\r\n") < 0))
                        return -ENOMEM;
        }
        if (er_buf_puts(b, q->headers ? q->headers : "") < 0 || er_buf_puts(b, "\r\n") < 0 ||
            (q->body && er_buf_puts(b, q->body) < 0))
                return -ENOMEM;
        return 0;
}

/* One request of the chain: connect, write, read.  Failures to connect are
 * reported from the loop; -errno only when nothing could start. */
static int start_hop(struct er_hplain *q)
{
        int r;

        r = build_request(q);
        if (r < 0)
                return r;
        http_parser_init(&q->parser, HTTP_RESPONSE);
        q->parser.data = q;
        q->got_bytes = q->final = false;
        q->phase = CONNECTING;
        q->err = 0;
        q->pending = 0;
        for (size_t i = 0; i < q->url.n_addrs; i++) {
                r = connect_one(q, i);
                if (r == 0)
                        q->pending++;
                else
                        note_error(q, -r);
        }
        if (q->pending)
                return 0;
        /* Every connect failed at once: say why from the loop. */
        connect_why(q);
        return er_timer_start(q->loop, &q->soon, 0, on_soon);
}

static bool named(const char *a, const char *b)
{
        return !strcasecmp(a, b);
}

/* The check's headers as lines ("Name:" for an empty value), and which of
 * ours they replace. */
static int take_headers(struct er_hplain *q, const struct er_envlist *hd)
{
        struct er_buf b;

        er_buf_init(&b);
        for (size_t i = 0; hd && i < hd->n; i++) {
                const char *n = hd->v[i].name, *v = hd->v[i].value;
                q->has_host |= named(n, "Host");
                q->has_ua |= named(n, "User-Agent");
                q->has_accept |= named(n, "Accept");
                q->has_ctype |= named(n, "Content-Type");
                q->has_length |= named(n, "Content-Length");
                q->has_conn |= named(n, "Connection");
                if (er_buf_printf(&b, v[0] ? "%s: %s\r\n" : "%s:%s\r\n", n, v) < 0) {
                        er_buf_fini(&b);
                        return -ENOMEM;
                }
        }
        if (b.len)
                return er_buf_finish(&b, &q->headers, NULL);
        er_buf_fini(&b);
        return 0;
}

int er_hplain_request(struct er_loop *loop, struct er_hplain_url *u, const struct er_http_opts *o,
                      er_hplain_cb *cb, void *data, struct er_hplain **ret)
{
        struct er_hplain *q = calloc(1, sizeof(*q));
        int r = -ENOMEM;

        if (!q)
                return -ENOMEM;
        q->loop = loop;
        q->cb = cb;
        q->data = data;
        q->follow = o->follow_redirects;
        q->timeout_ms = o->timeout_ms ? o->timeout_ms : 1;
        er_timer_init(&q->timer);
        er_timer_init(&q->soon);
        er_buf_init(&q->req);
        er_buf_init(&q->location);
        for (size_t i = 0; i < ER_HPLAIN_MAX_ADDRS; i++) {
                er_io_init(&q->conns[i].io);
                q->conns[i].fd = -1;
                q->conns[i].q = q;
        }
        q->method = er_strdup(o->method ? o->method : "GET");
        if (!q->method || (o->body && !(q->body = er_strdup(o->body))) ||
            take_headers(q, o->headers) < 0)
                goto out_free;
        r = er_timer_start(loop, &q->timer, q->timeout_ms * 1000u, on_timeout);
        if (r < 0)
                goto out_free;
        q->url = *u;
        r = start_hop(q);
        if (r < 0) {
                memset(&q->url, 0, sizeof(q->url)); /* still the caller's */
                goto out_free;
        }
        memset(u, 0, sizeof(*u));
        if (ret)
                *ret = q;
        return 0;

out_free:
        req_free(q);
        return r;
}
