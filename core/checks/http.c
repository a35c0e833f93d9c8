/* http: the loop's http client: plain requests (http_plain.c) for the
 * URLs that need no resolver, libcurl's multi interface for the rest,
 * libcurl bound at run time on the first request that needs it.
 *
 * The pattern is curl's ephiperfifo.c: CURLMOPT_SOCKETFUNCTION turns each
 * socket curl wants watched into an er_io, CURLMOPT_TIMERFUNCTION arms one
 * er_timer, their events call curl_multi_socket_action, and finished
 * transfers are collected with curl_multi_info_read right after.  User
 * callbacks run only from that collection, never from inside curl. */
#include "checks/http.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "checks/http_plain.h"
#include "model/envfile.h"
#include "proc/loop.h"

#define DEFAULT_LIBRARY "libcurl.so.4"
#define MAX_REDIRS 10L

/* libcurl's functions, resolved by load().  Mutable global state, against
 * STYLE §2, because the library it points into belongs to the process, not
 * to a loop: it is written once and never unloaded (libcurl's global init
 * is not meant to run twice). */
static struct {
        void *lib;
        __typeof__(&curl_global_init) global_init;
        __typeof__(&curl_easy_init) easy_init;
        __typeof__(&curl_easy_setopt) easy_setopt;
        __typeof__(&curl_easy_getinfo) easy_getinfo;
        __typeof__(&curl_easy_cleanup) easy_cleanup;
        __typeof__(&curl_easy_strerror) easy_strerror;
        __typeof__(&curl_slist_append) slist_append;
        __typeof__(&curl_slist_free_all) slist_free_all;
        __typeof__(&curl_multi_init) multi_init;
        __typeof__(&curl_multi_setopt) multi_setopt;
        __typeof__(&curl_multi_add_handle) multi_add_handle;
        __typeof__(&curl_multi_remove_handle) multi_remove_handle;
        __typeof__(&curl_multi_socket_action) multi_socket_action;
        __typeof__(&curl_multi_info_read) multi_info_read;
        __typeof__(&curl_multi_assign) multi_assign;
        __typeof__(&curl_multi_cleanup) multi_cleanup;
} curl;

/* dlsym returns void *; storing it through a void ** is the POSIX idiom for
 * function pointers (dlsym(3)). */
static const struct {
        const char *name;
        void **slot;
} symbols[] = {
        {"curl_global_init", (void **)&curl.global_init},
        {"curl_easy_init", (void **)&curl.easy_init},
        {"curl_easy_setopt", (void **)&curl.easy_setopt},
        {"curl_easy_getinfo", (void **)&curl.easy_getinfo},
        {"curl_easy_cleanup", (void **)&curl.easy_cleanup},
        {"curl_easy_strerror", (void **)&curl.easy_strerror},
        {"curl_slist_append", (void **)&curl.slist_append},
        {"curl_slist_free_all", (void **)&curl.slist_free_all},
        {"curl_multi_init", (void **)&curl.multi_init},
        {"curl_multi_setopt", (void **)&curl.multi_setopt},
        {"curl_multi_add_handle", (void **)&curl.multi_add_handle},
        {"curl_multi_remove_handle", (void **)&curl.multi_remove_handle},
        {"curl_multi_socket_action", (void **)&curl.multi_socket_action},
        {"curl_multi_info_read", (void **)&curl.multi_info_read},
        {"curl_multi_assign", (void **)&curl.multi_assign},
        {"curl_multi_cleanup", (void **)&curl.multi_cleanup},
};

static const char *library = DEFAULT_LIBRARY;
/* Whether URLs that need no resolver get plain requests (tests turn it off
 * to run libcurl's side on the same URLs). */
static bool plain = true;

struct er_http {
        struct er_loop *loop;
        CURLM *multi;            /* NULL until a request needs libcurl */
        struct er_timer timer;   /* curl's timeout */
        unsigned refs;
        bool closing;            /* in curl_multi_cleanup */
        struct er_http *next;    /* in `clients` */
};

/* The live clients, one per loop (usually one in all).  Global for the same
 * reason as `curl`: a loop has no slot for its modules' state, and a client
 * must be found from the loop alone so that every check shares it. */
static struct er_http *clients;

/* A socket curl asked us to watch (its curl_multi_assign pointer). */
struct sock {
        struct er_io io;
        struct er_http *h;
};

struct er_http_req {
        struct er_http *h;
        struct er_hplain *plain; /* the plain request in flight, or NULL */
        const struct er_envlist *headers; /* borrowed, for a redirect handed to libcurl */
        uint64_t deadline_us;    /* when timeout_ms runs out */
        unsigned hops;           /* redirects the plain request followed */
        CURL *easy;
        bool added;              /* in h->multi */
        bool follow;
        bool got_final;          /* stopped after the final response's headers */
        struct curl_slist *slist;
        uint64_t timeout_ms;     /* the whole request's, for messages */
        er_http_cb *cb;
        void *data;
        char errbuf[CURL_ERROR_SIZE];
};

/* --- loading libcurl ------------------------------------------------------ */

static int load(char *err, size_t errlen)
{
        void *lib;

        if (curl.lib)
                return 0;
        lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                snprintf(err, errlen, "http checks need libcurl (%s)", dlerror());
                return -ELIBACC;
        }
        for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
                *symbols[i].slot = dlsym(lib, symbols[i].name);
                if (!*symbols[i].slot) {
                        snprintf(err, errlen,
                                 "http checks need libcurl 7.16.1 or later ('%s' has no %s)",
                                 library, symbols[i].name);
                        goto out_close;
                }
        }
        if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(err, errlen, "http checks need libcurl ('%s' failed to initialise)",
                         library);
                goto out_close;
        }
        curl.lib = lib;
        return 0;

out_close:
        memset(&curl, 0, sizeof(curl));
        dlclose(lib);
        return -ELIBBAD;
}

bool er_http_loaded(void)
{
        return curl.lib != NULL;
}

int er_http_set_library(const char *soname)
{
        if (curl.lib)
                return -EBUSY;
        library = soname ? soname : DEFAULT_LIBRARY;
        return 0;
}

/* --- curl on the loop ------------------------------------------------------ */

static void collect(struct er_http *h);

/* One socket_action, then the transfers it finished. */
static void drive(struct er_http *h, curl_socket_t s, int mask)
{
        int running;

        /* A finished request's callback may drop every other reference. */
        h->refs++;
        curl.multi_socket_action(h->multi, s, mask, &running);
        collect(h);
        er_http_unref(h);
}

static void on_sock_event(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        int mask = 0;

        /* An error or hangup is reported as readiness for what curl waits
         * for: its read or write then meets the error itself. */
        if (revents & (EPOLLERR | EPOLLHUP))
                revents |= io->events & (EPOLLIN | EPOLLOUT);
        if (revents & EPOLLIN)
                mask |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                mask |= CURL_CSELECT_ERR;
        drive(er_container_of(io, struct sock, io)->h, io->fd, mask);
}

static void on_timer(struct er_loop *loop, struct er_timer *t)
{
        drive(er_container_of(t, struct er_http, timer), CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
        struct er_http *h = userp;
        struct sock *so = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (so) {
                        er_io_stop(h->loop, &so->io);
                        free(so);
                }
                return 0;
        }
        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;
        if (so)
                return er_io_modify(h->loop, &so->io, events) < 0 ? -1 : 0;
        so = calloc(1, sizeof(*so));
        if (!so)
                return -1;
        so->h = h;
        er_io_init(&so->io);
        if (er_io_start(h->loop, &so->io, s, events, on_sock_event) < 0) {
                free(so);
                return -1;
        }
        curl.multi_assign(h->multi, s, so);
        return 0;
}

/* timeout_ms 0: act on the next iteration (socket_action may not be called
 * from here); -1: nothing to wait for. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
        struct er_http *h = userp;

        if (timeout_ms < 0 || h->closing) {
                er_timer_stop(h->loop, &h->timer);
                return 0;
        }
        if (er_timer_start(h->loop, &h->timer, (uint64_t)timeout_ms * 1000u, on_timer) < 0)
                return -1;
        return 0;
}

/* --- clients --------------------------------------------------------------- */

static struct er_http *find(const struct er_loop *loop)
{
        for (struct er_http *h = clients; h; h = h->next)
                if (h->loop == loop)
                        return h;
        return NULL;
}

struct er_http *er_http_of(const struct er_loop *loop)
{
        return find(loop);
}

int er_http_ref(struct er_loop *loop, struct er_http **ret, char *err, size_t errlen)
{
        struct er_http *h = find(loop);

        if (h) {
                h->refs++;
                *ret = h;
                return 0;
        }
        h = calloc(1, sizeof(*h));
        if (!h) {
                snprintf(err, errlen, "cannot set up the http client: out of memory");
                return -ENOMEM;
        }
        h->loop = loop;
        er_timer_init(&h->timer);
        h->refs = 1;
        h->next = clients;
        clients = h;
        *ret = h;
        return 0;
}

/* The client's curl multi handle, made (and libcurl loaded) on first use. */
static int need_curl(struct er_http *h, char *err, size_t errlen)
{
        int r;

        if (h->multi)
                return 0;
        r = load(err, errlen);
        if (r < 0)
                return r;
        h->multi = curl.multi_init();
        if (!h->multi)
                goto out_nomem;
        if (curl.multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl.multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
            curl.multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl.multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
                curl.multi_cleanup(h->multi);
                h->multi = NULL;
                goto out_nomem;
        }
        return 0;

out_nomem:
        snprintf(err, errlen, "cannot set up libcurl: out of memory");
        return -ENOMEM;
}

void er_http_unref(struct er_http *h)
{
        struct er_http **p;

        if (!h || --h->refs)
                return;
        for (p = &clients; *p != h; p = &(*p)->next)
                ;
        *p = h->next;
        /* No transfer is left (each holds a reference); curl may still
         * report sockets to remove, which on_curl_socket handles. */
        h->closing = true;
        if (h->multi)
                curl.multi_cleanup(h->multi);
        er_timer_stop(h->loop, &h->timer);
        free(h);
}

/* --- requests -------------------------------------------------------------- */

static void req_free(struct er_http_req *q)
{
        struct er_http *h = q->h;

        er_hplain_cancel(q->plain);
        if (q->added)
                curl.multi_remove_handle(h->multi, q->easy);
        if (q->easy)
                curl.easy_cleanup(q->easy);
        if (q->slist)
                curl.slist_free_all(q->slist);
        free(q);
        er_http_unref(h);
}

void er_http_cancel(struct er_http_req *req)
{
        if (req)
                req_free(req);
}

/* Ends the transfer at the blank line closing the final response's
 * headers: the status is known, and a body may never end. */
static size_t on_header(char *buf, size_t size, size_t n, void *userdata)
{
        struct er_http_req *q = userdata;
        size_t len = size * n;
        long code = 0;

        if (len > 2 || (len && buf[0] != '\r' && buf[0] != '\n'))
                return len;
        curl.easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code < 200 || (q->follow && er_http_redirect(code)))
                return len; /* 1xx, or a redirect curl is about to follow */
        q->got_final = true;
        return 0; /* CURLE_WRITE_ERROR, taken as success in finish() */
}

/* Bodies (of a redirect being followed, say) are discarded. */
static size_t on_body(char *buf, size_t size, size_t n, void *userdata)
{
        return size * n;
}

static void lower_first(char *s)
{
        /* "Empty reply" -> "empty reply", but "SSL ..." stays. */
        if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
                s[0] = (char)(s[0] - 'A' + 'a');
}

/* "cannot connect: network is unreachable" */
static void connect_error(char *buf, size_t len, int err)
{
        char e[128];

        snprintf(e, sizeof(e), "%s", strerror(err));
        lower_first(e);
        snprintf(buf, len, "cannot connect: %s", e);
}

static void describe_error(struct er_http_req *q, CURLcode rc, char *buf, size_t len)
{
        long os = 0;

        switch (rc) {
        case CURLE_COULDNT_CONNECT:
                curl.easy_getinfo(q->easy, CURLINFO_OS_ERRNO, &os);
                if (os == ECONNREFUSED)
                        snprintf(buf, len, "connection refused");
                else if (os > 0 && os < INT_MAX)
                        connect_error(buf, len, (int)os);
                else
                        snprintf(buf, len, "cannot connect");
                return;
        case CURLE_OPERATION_TIMEDOUT:
                snprintf(buf, len, "no response within %llu ms",
                         (unsigned long long)q->timeout_ms);
                return;
        case CURLE_OK:
        case CURLE_WRITE_ERROR:
                snprintf(buf, len, "no status in the response");
                return;
        default:
                /* curl's own words: "empty reply from server" */
                snprintf(buf, len, "%s", q->errbuf[0] ? q->errbuf : curl.easy_strerror(rc));
                lower_first(buf);
                return;
        }
}

/* Reports the request's end and frees it. */
static void finish(struct er_http_req *q, CURLcode rc)
{
        er_http_cb *cb = q->cb;
        void *data = q->data;
        char why[CURL_ERROR_SIZE + 32];
        const char *error = NULL;
        long status = 0;

        if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && q->got_final))
                curl.easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status <= 0) {
                status = 0;
                describe_error(q, rc, why, sizeof(why));
                error = why;
        }
        req_free(q);
        cb(data, status, error);
}

static void collect(struct er_http *h)
{
        CURLMsg *m;
        int left;

        while ((m = curl.multi_info_read(h->multi, &left))) {
                void *q = NULL;
                if (m->msg != CURLMSG_DONE)
                        continue;
                curl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &q);
                /* m is invalid once its handle is removed: finish copies. */
                finish(q, m->data.result);
        }
}

static bool has_header(const struct er_envlist *l, const char *name)
{
        for (size_t i = 0; l && i < l->n; i++)
                if (!strcasecmp(l->v[i].name, name))
                        return true;
        return false;
}

static int add_header(struct er_http_req *q, const char *name, const char *value)
{
        struct curl_slist *l;
        char *line;
        size_t n = strlen(name) + strlen(value) + 3;

        line = malloc(n);
        if (!line)
                return -ENOMEM;
        /* "Name;" sends an empty header; "Name:" would remove it. */
        if (value[0])
                snprintf(line, n, "%s: %s", name, value);
        else
                snprintf(line, n, "%s;", name);
        l = curl.slist_append(q->slist, line);
        free(line);
        if (!l)
                return -ENOMEM;
        q->slist = l;
        return 0;
}

static int build_headers(struct er_http_req *q, const struct er_http_opts *o)
{
        const struct er_envlist *hd = o->headers;
        struct curl_slist *l;

        /* No "Expect: 100-continue" wait before a large body. */
        if (o->body && !has_header(hd, "Expect")) {
                l = curl.slist_append(q->slist, "Expect:");
                if (!l)
                        return -ENOMEM;
                q->slist = l;
        }
        for (size_t i = 0; hd && i < hd->n; i++)
                if (add_header(q, hd->v[i].name, hd->v[i].value) < 0)
                        return -ENOMEM;
        return 0;
}

/* o->timeout_ms is what is left of the request's time; hops, the
 * redirects followed before libcurl took over. */
static int setup(struct er_http_req *q, const struct er_http_opts *o)
{
        CURL *e = q->easy;
        const char *method = o->method ? o->method : "GET";
        uint64_t t = o->timeout_ms ? o->timeout_ms : 1;
        long timeout = t > LONG_MAX ? LONG_MAX : (long)t;

        if (curl.easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_PRIVATE, q) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_NOPROXY, "*") != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_USERAGENT, ER_HTTP_USER_AGENT) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_HEADERDATA, q) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_FOLLOWLOCATION, o->follow_redirects ? 1L : 0L) !=
                    CURLE_OK ||
            curl.easy_setopt(e, CURLOPT_MAXREDIRS, MAX_REDIRS - (long)q->hops) != CURLE_OK)
                return -EINVAL;
        /* Older libcurls lack these: then the URL check in the parser and
         * curl's own defaults (no file:// on redirects) have to do. */
        (void)curl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        (void)curl.easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        if (q->slist && curl.easy_setopt(e, CURLOPT_HTTPHEADER, q->slist) != CURLE_OK)
                return -EINVAL;
        /* HEAD must say there is no body, or curl waits for one. */
        if (!strcmp(method, "HEAD") && curl.easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK)
                return -EINVAL;
        if (o->body && (curl.easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(o->body)) !=
                                CURLE_OK ||
                        curl.easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body) != CURLE_OK))
                return -EINVAL;
        /* A body makes curl say POST: the method given wins. */
        if ((strcmp(method, "GET") || o->body) &&
            curl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK)
                return -EINVAL;
        return 0;
}

/* The curl side of a request: o's URL on the client's multi handle. */
static int curl_start(struct er_http_req *q, const struct er_http_opts *o, char *err,
                      size_t errlen)
{
        int r = need_curl(q->h, err, errlen);

        if (r < 0)
                return r;
        q->easy = curl.easy_init();
        if (!q->easy)
                return -ENOMEM;
        r = build_headers(q, o);
        if (r < 0)
                return r;
        r = setup(q, o);
        if (r < 0)
                return r;
        /* Arms the timer for 0 ms: the transfer starts on the next iteration. */
        if (curl.multi_add_handle(q->h->multi, q->easy) != CURLM_OK)
                return -ENOMEM;
        q->added = true;
        return 0;
}

/* The plain request ended, or left a redirect for libcurl to follow. */
static void on_plain(void *data, long status, const char *error, const struct er_hplain_next *next)
{
        struct er_http_req *q = data;
        er_http_cb *cb = q->cb;
        void *cb_data = q->data;
        char why[CURL_ERROR_SIZE + 64];
        uint64_t now = er_now_us();
        int r;

        q->plain = NULL;
        if (next) {
                struct er_http_opts o = {
                        .url = next->url,
                        .method = next->method,
                        .headers = q->headers,
                        .body = next->body,
                        .follow_redirects = true,
                        .timeout_ms = now < q->deadline_us ? (q->deadline_us - now + 999) / 1000 : 1,
                };
                q->hops = next->hops;
                why[0] = '\0';
                r = curl_start(q, &o, why, sizeof(why));
                if (r == 0)
                        return;
                if (!why[0])
                        snprintf(why, sizeof(why), "cannot follow the redirect to '%.200s': %s",
                                 next->url, strerror(-r));
                error = why;
                status = 0;
        } else if (error) {
                snprintf(why, sizeof(why), "%s", error);
                error = why;
        }
        req_free(q);
        cb(cb_data, status, error);
}

int er_http_request(struct er_http *h, const struct er_http_opts *o, er_http_cb *cb, void *data,
                    struct er_http_req **ret, char *err, size_t errlen)
{
        struct er_hplain_url u;
        struct er_http_req *q;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        h->refs++; /* dropped by req_free */
        q->h = h;
        q->cb = cb;
        q->data = data;
        q->follow = o->follow_redirects;
        q->headers = o->headers;
        q->timeout_ms = o->timeout_ms ? o->timeout_ms : 1;
        q->deadline_us = er_now_us() + q->timeout_ms * 1000u;
        err[0] = '\0';
        r = plain ? er_hplain_url_parse(o->url, &u) : -ENOTSUP;
        if (r == 0) {
                r = er_hplain_request(h->loop, &u, o, on_plain, q, &q->plain);
                if (r < 0)
                        er_hplain_url_fini(&u);
        } else if (r == -ENOTSUP) {
                r = curl_start(q, o, err, errlen);
        }
        if (r < 0)
                goto out_free;
        if (ret)
                *ret = q;
        return 0;

out_free:
        req_free(q);
        return r;
}

void er_http_set_plain(bool on)
{
        plain = on;
}
