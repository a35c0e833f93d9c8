/* tcp: ready when a TCP connect to HOST:PORT succeeds.
 *
 * An attempt connects, non-blocking, to every address the host resolves to
 * and passes when any of them accepts: "localhost" may mean ::1 and
 * 127.0.0.1, and a server often listens on one of them only.  A connection
 * that succeeds is closed at once; the check only proves the port accepts. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks/runner.h"
#include "base/err.h"

static const char *const options[] = {NULL};

struct tcp_conf {
        char *host;      /* without brackets; "127.0.0.1" by default */
        char *port;      /* decimal text, or a deferred placeholder */
        bool deferred;   /* the port or host is known only at start */
};

/* The check's configuration (model/check.h: ops->conf_size bytes). */
static struct tcp_conf *conf_of(const struct er_check *c)
{
        return c->conf;
}

static int port_valid(const char *s)
{
        unsigned long v = 0;
        if (!*s || strlen(s) > 5)
                return 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                v = v * 10 + (unsigned long)(*p - '0');
        }
        return v >= 1 && v <= 65535;
}

/* Splits "HOST:PORT", "[V6]:PORT" or "PORT". */
static int split(struct er_fctx *f, const struct er_node *v, const char *s, struct tcp_conf *t)
{
        const char *colon;

        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':')
                        return er_field_error(f, v, "'tcp' must be 'HOST:PORT', '[IPV6]:PORT' or a "
                                                    "port, not '%s'", s);
                t->host = er_strndup(s + 1, (size_t)(end - s - 1));
                t->port = er_strdup(end + 2);
        } else if ((colon = strrchr(s, ':'))) {
                if (memchr(s, ':', (size_t)(colon - s)))
                        return er_field_error(f, v, "write an IPv6 address in brackets: '[%.*s]:%s'",
                                              (int)(colon - s), s, colon + 1);
                t->host = er_strndup(s, (size_t)(colon - s));
                t->port = er_strdup(colon + 1);
        } else {
                t->host = er_strdup("127.0.0.1");
                t->port = er_strdup(s);
        }
        if (!t->host || !t->port)
                return er_field_error(f, v, "out of memory");
        if (!t->host[0])
                return er_field_error(f, v, "the host in 'tcp' must not be empty");
        return 0;
}

static int tcp_parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                     const char *dir, struct er_fctx *f)
{
        struct tcp_conf *t = conf_of(c);
        char *s;
        int r;

        if (er_field_str_nonempty(f, v, "tcp", &s, &t->deferred) < 0)
                return -ER_ECONFIG;
        r = split(f, v, s, t);
        if (r == 0 && !t->deferred && !port_valid(t->port))
                r = er_field_error(f, v, "the port in 'tcp' must be a number from 1 to 65535, not '%s'",
                                   t->port);
        free(s);
        return r;
}

static int tcp_describe(const struct er_check *c, char *buf, size_t len)
{
        const struct tcp_conf *t = conf_of(c);
        if (strchr(t->host, ':'))
                return snprintf(buf, len, "tcp [%s]:%s", t->host, t->port);
        return snprintf(buf, len, "tcp %s:%s", t->host, t->port);
}

static void tcp_dump(const struct er_check *c, json_t *o)
{
        char buf[512];
        tcp_describe(c, buf, sizeof(buf));
        json_object_set_new(o, "tcp", json_string(buf + 4));
}

static void tcp_fini(struct er_check *c)
{
        free(conf_of(c)->host);
        free(conf_of(c)->port);
}

/* --- the engine side ---------------------------------------------------- */

/* The addresses kept from one resolution: a limit on what a name may fan
 * out to (every one costs a socket per attempt). */
#define MAX_ADDRS 8

/* An attempt gives up on addresses that have not answered after
 * max(interval, ATTEMPT_MIN_US): a SYN to a blackholed address (or to a
 * listener whose backlog is full: the kernel drops it) must not hang the
 * check.  The bound is at least 1 s so that a remote host a few hundred ms
 * away still gets a fair chance (Linux retransmits a lost SYN after 1 s:
 * the next attempt sends a fresh one), and at least `interval` so that a
 * slow poll never cuts an attempt shorter than the wait between two. */
#define ATTEMPT_MIN_US 1000000

struct tcp_addr {
        int family;
        socklen_t len;
        struct sockaddr_storage sa;
};

struct tcp_conn {
        struct er_io io; /* watching fd for EPOLLOUT while the connect is in flight */
        int fd;          /* -1: none */
        struct tcp_state *st;
};

struct tcp_state {
        struct er_check_run *run;
        bool resolved; /* resolution happens once per start */
        int gai_error; /* it failed: getaddrinfo's code */
        int gai_errno; /* and errno, for EAI_SYSTEM */
        size_t n_addrs;
        struct tcp_addr addrs[MAX_ADDRS];
        struct tcp_conn conns[MAX_ADDRS];
        size_t pending;          /* connects in flight */
        int err;                 /* the most telling error of this attempt so far */
        struct er_timer timeout; /* bounds an attempt with connects in flight */
};

static bool addr_known(const struct tcp_state *st, const struct addrinfo *ai)
{
        for (size_t i = 0; i < st->n_addrs; i++)
                if (st->addrs[i].family == ai->ai_family && st->addrs[i].len == ai->ai_addrlen &&
                    !memcmp(&st->addrs[i].sa, ai->ai_addr, ai->ai_addrlen))
                        return true;
        return false;
}

/* Resolves host and port into st->addrs, once per start.  A numeric host
 * (the default 127.0.0.1, "::1") never reaches a resolver; a name is looked
 * up with getaddrinfo, which blocks the loop while it runs: /etc/hosts
 * answers "localhost" in microseconds, but a name only DNS knows stalls
 * the loop for the lookup, once per start (the AlreadyRunning probe and the
 * wait are two starts).  getaddrinfo_a would need a thread of our own.  A
 * failed lookup is not retried within the start: each retry could block
 * as long as the first. */
static void resolve(struct tcp_state *st, const struct tcp_conf *t)
{
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC,
            .ai_socktype = SOCK_STREAM,
            .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
        };
        struct addrinfo *res = NULL;
        int r;

        st->resolved = true;
        r = getaddrinfo(t->host, t->port, &hints, &res);
        if (r == EAI_NONAME) {
                hints.ai_flags = AI_NUMERICSERV;
                r = getaddrinfo(t->host, t->port, &hints, &res);
        }
        if (r != 0) {
                st->gai_error = r;
                st->gai_errno = errno;
                return;
        }
        for (const struct addrinfo *ai = res; ai && st->n_addrs < MAX_ADDRS; ai = ai->ai_next) {
                struct tcp_addr *a = &st->addrs[st->n_addrs];
                if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
                    ai->ai_addrlen > sizeof(a->sa) || addr_known(st, ai))
                        continue;
                a->family = ai->ai_family;
                a->len = ai->ai_addrlen;
                memcpy(&a->sa, ai->ai_addr, ai->ai_addrlen);
                st->n_addrs++;
        }
        freeaddrinfo(res);
}

/* strerror and gai_strerror begin with a capital; our messages don't. */
static void lower_first(char *s)
{
        s[0] = (char)tolower((unsigned char)s[0]);
}

/* Why a resolution gave nothing to connect to. */
static void resolve_why(const struct tcp_state *st, const struct tcp_conf *t, char *buf, size_t len)
{
        char detail[96];

        if (!t->port[0] || strspn(t->port, "0123456789") != strlen(t->port)) {
                snprintf(buf, len, "invalid port '%s'", t->port);
                return;
        }
        switch (st->gai_error) {
        case 0: /* only addresses of other families */
        case EAI_NONAME:
        case EAI_NODATA:
        case EAI_ADDRFAMILY:
                snprintf(buf, len, "no address for '%s'", t->host);
                return;
        case EAI_SYSTEM:
                snprintf(detail, sizeof(detail), "%s", strerror(st->gai_errno));
                break;
        default:
                snprintf(detail, sizeof(detail), "%s", gai_strerror(st->gai_error));
                break;
        }
        lower_first(detail);
        snprintf(buf, len, "cannot resolve '%s': %s", t->host, detail);
}

/* Keeps the error that says most: a refusal (the host is there, the port
 * is not open yet) over the rest (EADDRNOTAVAIL from a disabled IPv6, say),
 * else the first. */
static void note_error(struct tcp_state *st, int e)
{
        if (st->err == 0 || e == ECONNREFUSED)
                st->err = e;
}

static void conn_close(struct tcp_state *st, struct tcp_conn *c)
{
        if (c->fd < 0)
                return;
        er_io_stop(st->run->loop, &c->io);
        er_close(&c->fd);
}

static void close_all(struct tcp_state *st)
{
        for (size_t i = 0; i < st->n_addrs; i++)
                conn_close(st, &st->conns[i]);
        st->pending = 0;
        er_timer_stop(st->run->loop, &st->timeout);
}

/* Ends the attempt.  Closes everything first: er_runner_attempt_done may
 * call done(), whose owner may stop the check, which frees st. */
static void finish(struct tcp_state *st, bool ok, const char *why)
{
        struct er_check_run *run = st->run;
        char buf[160];

        snprintf(buf, sizeof(buf), "%s", why ? why : "");
        close_all(st);
        er_runner_attempt_done(run, ok, ok ? NULL : buf);
}

static void finish_failed(struct tcp_state *st)
{
        char why[128];

        if (st->err == ECONNREFUSED)
                snprintf(why, sizeof(why), "connection refused");
        else
                snprintf(why, sizeof(why), "%s", strerror(st->err ? st->err : EIO));
        lower_first(why);
        finish(st, false, why);
}

static void on_writable(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct tcp_conn *c = er_container_of(io, struct tcp_conn, io);
        struct tcp_state *st = c->st;
        socklen_t len = sizeof(int);
        int e = 0;

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                e = errno;
        if (e == 0 && (revents & EPOLLOUT)) {
                finish(st, true, NULL);
                return;
        }
        note_error(st, e ? e : ECONNRESET);
        conn_close(st, c);
        if (--st->pending == 0)
                finish_failed(st);
}

static void on_timeout(struct er_loop *loop, struct er_timer *t)
{
        struct tcp_state *st = er_container_of(t, struct tcp_state, timeout);
        finish(st, false, "timed out");
}

/* Starts connecting to address i: 1 connected, 0 in flight, or -errno. */
static int connect_one(struct tcp_state *st, size_t i)
{
        const struct tcp_addr *a = &st->addrs[i];
        struct tcp_conn *c = &st->conns[i];
        int r;

        c->fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        if (connect(c->fd, (const struct sockaddr *)&a->sa, a->len) == 0) {
                er_close(&c->fd);
                return 1;
        }
        /* A non-blocking connect interrupted by a signal goes on in the
         * background, like one in progress. */
        if (errno != EINPROGRESS && errno != EINTR) {
                r = -errno;
                er_close(&c->fd);
                return r;
        }
        r = er_io_start(st->run->loop, &c->io, c->fd, EPOLLOUT, on_writable);
        if (r < 0) {
                er_close(&c->fd);
                return r;
        }
        return 0;
}

static struct tcp_state *state_of(struct er_check_run *run)
{
        struct tcp_state *st = run->priv;

        if (st)
                return st;
        st = calloc(1, sizeof(*st));
        if (!st)
                return NULL;
        st->run = run;
        for (size_t i = 0; i < MAX_ADDRS; i++) {
                er_io_init(&st->conns[i].io);
                st->conns[i].fd = -1;
                st->conns[i].st = st;
        }
        er_timer_init(&st->timeout);
        run->priv = st;
        return st;
}

static uint64_t attempt_timeout_us(const struct er_check_run *run)
{
        return run->check->interval_us > ATTEMPT_MIN_US ? run->check->interval_us : ATTEMPT_MIN_US;
}

static int tcp_attempt(struct er_check_run *run)
{
        const struct tcp_conf *t = conf_of(run->check);
        struct tcp_state *st = state_of(run);
        int r;

        if (!st)
                return -ENOMEM;
        if (!st->resolved)
                resolve(st, t);
        if (st->n_addrs == 0) {
                char why[160];
                resolve_why(st, t, why, sizeof(why));
                finish(st, false, why);
                return 0;
        }
        st->err = 0;
        st->pending = 0;
        for (size_t i = 0; i < st->n_addrs; i++) {
                r = connect_one(st, i);
                if (r == 1) {
                        finish(st, true, NULL);
                        return 0;
                }
                if (r == 0)
                        st->pending++;
                else
                        note_error(st, -r);
        }
        /* Every connect failed at once (no route, EINVAL for a link-local
         * address without a scope, a refusal where the kernel reports it
         * from connect() itself): nothing to wait for.  Linux reports a
         * loopback refusal one epoll round later (EINPROGRESS, then
         * EPOLLOUT with SO_ERROR ECONNREFUSED): about 30 us in all. */
        if (st->pending == 0) {
                finish_failed(st);
                return 0;
        }
        r = er_timer_start(run->loop, &st->timeout, attempt_timeout_us(run), on_timeout);
        if (r < 0) {
                close_all(st);
                return r;
        }
        return 0;
}

static void tcp_abort_attempt(struct er_check_run *run)
{
        if (run->priv)
                close_all(run->priv);
}

const struct er_check_ops er_check_tcp_ops = {
        .key = "tcp",
        .options = options,
        .conf_size = sizeof(struct tcp_conf),
        .parse = tcp_parse,
        .dump = tcp_dump,
        .describe = tcp_describe,
        .fini = tcp_fini,
        .polled = true,
        .probes_address = true,
        .default_interval_us = 10000,
        .cancel = er_runner_cancel_priv,
        .attempt = tcp_attempt,
        .abandon = tcp_abort_attempt,
};
