/* http: HTTP requests on envrun's event loop.  Nothing blocks.
 *
 * A request to an http:// URL whose host needs no resolver (an IP literal
 * or "localhost") is made by envrun itself (http_plain.h): one socket and
 * http_parser.  Every other URL (https, host names) goes to libcurl's
 * multi interface driven by the loop (curl's ephiperfifo.c pattern): curl's
 * sockets become er_io watchers, its timeout one er_timer, and
 * curl_multi_socket_action runs on their events; so does a redirect from a
 * plain request to such a URL.
 *
 * libcurl is not linked: loading it costs 7-15 ms of startup and 8 MB of
 * RSS (its TLS, IDN, HTTP/2... dependencies), and most checks never need
 * it.  The first request that does loads libcurl.so.4 with dlopen and
 * resolves the few functions used; it stays loaded for the life of the
 * process.  <curl/curl.h> is used for types and constants only.
 *
 * One client per loop, shared by every request on that loop (one curl multi
 * handle: one DNS cache, one set of watchers).  It is reference-counted: the
 * first er_http_ref() of a loop creates it, the last er_http_unref() frees
 * it (curl_multi_cleanup) and every watcher and timer it held.  Each
 * request in flight holds a reference of its own.
 *
 * Requests go straight to their host: proxies named by http_proxy and the
 * like are ignored (CURLOPT_NOPROXY "*"), since a test environment talks to
 * its own services on this machine.  Each request uses a connection of its
 * own, closed when it ends (no reuse: a readiness answer must come from a
 * connection the server accepts now, and no idle socket outlives a
 * request).  A request ends as soon as the final response's headers are in:
 * the status is all it reports, and a streaming endpoint would never end. */
#ifndef ER_HTTP_H
#define ER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What both clients send as User-Agent. */
#ifdef ENVRUN_VERSION
#define ER_HTTP_USER_AGENT "envrun/" ENVRUN_VERSION
#else
#define ER_HTTP_USER_AGENT "envrun"
#endif

struct er_loop;
struct er_envlist;
struct er_http;
struct er_http_req;

/* The end of a request: `status` is the final response's code (the last
 * one when redirects are followed) and `error` NULL; or status 0 and `error`
 * says why no response came, lower case: "connection refused", "no
 * response within 1000 ms", "could not resolve host: db".  Called once, from
 * the loop (never from inside er_http_request), after the request was freed:
 * the handle is no longer valid. */
typedef void er_http_cb(void *data, long status, const char *error);

struct er_http_opts {
        const char *url;                  /* http:// or https:// */
        const char *method;               /* NULL: GET; HEAD asks for no body */
        const struct er_envlist *headers; /* NULL: none; sent as "Name: value" */
        const char *body;                 /* NULL: none (copied) */
        bool follow_redirects;            /* at most 10 hops, http and https only */
        uint64_t timeout_ms;              /* the whole request; 0: 1 ms */
};

/* Takes a reference on loop's client, creating it the first time (libcurl
 * is loaded later, by the first request that needs it).  0, or -ENOMEM
 * with a message in err. */
int er_http_ref(struct er_loop *loop, struct er_http **ret, char *err, size_t errlen);
/* Drops a reference; the last one frees the client.  NULL is a no-op. */
void er_http_unref(struct er_http *h);

/* Starts a request; cb(data, ...) reports its end.  *ret (may be NULL) is a
 * handle for er_http_cancel, valid until cb is called.  o->headers must
 * live until then (a redirect may need them again).  0, -ENOMEM, -EINVAL
 * when libcurl refuses the options, or, with a message for the user in
 * err, -ELIBACC when the URL needs libcurl and it cannot be loaded ("http
 * checks need libcurl (libcurl.so.4: cannot open shared object file: No
 * such file or directory)"), -ELIBBAD when it lacks a function. */
int er_http_request(struct er_http *h, const struct er_http_opts *o, er_http_cb *cb, void *data,
                    struct er_http_req **ret, char *err, size_t errlen);
/* Abandons a request in flight: its socket is closed and cb is never
 * called.  NULL is a no-op. */
void er_http_cancel(struct er_http_req *req);

/* Whether a response with this status is a redirect a client follows. */
static inline bool er_http_redirect(long code)
{
        return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* The loop's client, or NULL when none is alive (for tests). */
struct er_http *er_http_of(const struct er_loop *loop);
/* Whether libcurl was loaded into this process (for tests). */
bool er_http_loaded(void);
/* For tests: off sends every URL to libcurl (on by default). */
void er_http_set_plain(bool on);
/* For tests: the library a request loads instead of libcurl.so.4 (NULL:
 * that one again).  -EBUSY once a library was loaded. */
int er_http_set_library(const char *soname);

#endif
