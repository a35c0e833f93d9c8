/* http_plain: the HTTP/1.1 requests envrun makes itself, on the loop, for
 * the http:// URLs that need no resolver: the host is an IPv4 literal, an
 * IPv6 literal in brackets, or "localhost" (127.0.0.1 and ::1, both tried
 * at once, the first to accept wins, as libcurl does).  Everything else
 * (https, a host name, user info in the URL, a path with spaces) goes to
 * libcurl, which http.c loads only then: a plain request costs one socket,
 * one request written, the response's status line and headers read with
 * http_parser, and no library load (libcurl costs 7-13 ms and 8 MB).
 *
 * The request says what libcurl would: "METHOD PATH HTTP/1.1", Host,
 * User-Agent envrun/VERSION, Accept, Content-Length and
 * application/x-www-form-urlencoded for a body (unless the check's headers
 * set them), Connection: close, then the check's headers in their order.
 * It ends when the final response's headers are in (interim 1xx responses
 * are skipped): the status is all a check reads, and a body may never end.
 *
 * Redirects (when followed, at most 10): 301, 302 and 303 turn a POST or a
 * body into a GET without body, 303 turns any method but HEAD into GET;
 * 307 and 308 keep both.  A redirect to a URL of the same kind is followed
 * here; one to https or to a host name is handed back (er_hplain_next) for
 * libcurl to follow. */
#ifndef ER_HTTP_PLAIN_H
#define ER_HTTP_PLAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct er_loop;
struct er_http_opts;
struct er_hplain;

#define ER_HPLAIN_MAX_ADDRS 2
#define ER_HPLAIN_MAX_REDIRS 10

/* A URL the plain client can serve, resolved without a resolver. */
struct er_hplain_url {
        char *authority; /* "127.0.0.1:8080", "[::1]:81", "localhost" (port 80 left out) */
        char *path;      /* "/health?x=1": never empty, no fragment */
        size_t n_addrs;
        struct sockaddr_storage addrs[ER_HPLAIN_MAX_ADDRS];
        socklen_t lens[ER_HPLAIN_MAX_ADDRS];
};

/* 0 when the plain client can serve url (u filled, er_hplain_url_fini
 * frees it), -ENOTSUP when only libcurl can, -ENOMEM. */
int er_hplain_url_parse(const char *url, struct er_hplain_url *u);
void er_hplain_url_fini(struct er_hplain_url *u);

/* A redirect the plain client leaves to libcurl: the absolute URL, the
 * method and body the next request takes, and the hops made so far. */
struct er_hplain_next {
        const char *url;
        const char *method;
        const char *body; /* NULL: none */
        unsigned hops;
};

/* The end of a request, as er_http_cb says (status, or 0 and a lower-case
 * error), or a redirect to follow elsewhere: next non-NULL and status its
 * code.  Called once, from the loop, never from inside er_hplain_request;
 * the request is freed by then, and next's strings live until the callback
 * returns. */
typedef void er_hplain_cb(void *data, long status, const char *error,
                          const struct er_hplain_next *next);

/* Starts a request to u (taken over: u is left empty) with o's method,
 * headers, body (copied), follow_redirects and timeout_ms.  0 or -ENOMEM
 * (u is then still the caller's). */
int er_hplain_request(struct er_loop *loop, struct er_hplain_url *u, const struct er_http_opts *o,
                      er_hplain_cb *cb, void *data, struct er_hplain **ret);
/* Abandons a request in flight: its sockets are closed, cb is never
 * called.  NULL is a no-op. */
void er_hplain_cancel(struct er_hplain *q);

#endif
