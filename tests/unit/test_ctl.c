/* test_ctl: the control API server on a real loop and a real socket;
 * clients are non-blocking sockets of this process driven between loop
 * iterations (and a forked child for another uid). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/ctl.h"
#include "proc/loop.h"

/* Everything here must finish well within this; a hang fails by SIGALRM. */
#define TEST_DEADLINE_S 60
/* Bound of one exchange. */
#define PUMP_DEADLINE_US (10u * 1000000u)

struct fx {
        char dir[64];
        char path[128];
        struct er_loop *loop;
        struct er_ctl *ctl;
        int nfds;
        /* the handler's state */
        int calls;
        struct er_ctl_stream *stream;
        int stream_closed;
};

struct client {
        int fd;
        const char *req;
        size_t len, off;
        char *resp;
        size_t rlen, rcap;
        bool done; /* EOF or error */
        int err;   /* errno of the ending read/write, 0 on EOF */
};

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;

        assert_non_null(d);
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the DIR's own */
}

static void on_stream_closed(void *ud, struct er_ctl_stream *s)
{
        struct fx *fx = ud;

        assert_ptr_equal(s, fx->stream);
        fx->stream = NULL;
        fx->stream_closed++;
}

static int handle(void *ud, struct er_ctl_req *req, struct er_ctl_resp *resp)
{
        struct fx *fx = ud;

        fx->calls++;
        if (!strcmp(req->method, "GET") && !strcmp(req->path, "/v1/status"))
                return er_ctl_resp_json(resp, 200, json_pack("{s:s}", "state", "up"));
        if (!strcmp(req->method, "POST") && !strcmp(req->path, "/v1/echo"))
                return er_ctl_resp_json(resp, 200,
                                        json_pack("{s:s,s:s,s:s#}", "method", req->method, "query",
                                                  req->query, "body", req->body,
                                                  (int)req->body_len));
        if (!strcmp(req->path, "/v1/stream")) {
                fx->stream =
                    er_ctl_resp_stream_begin(resp, 200, "text/plain", on_stream_closed, fx);
                if (!fx->stream)
                        return -ENOMEM;
                return er_ctl_stream_write(fx->stream, "one\n", 4);
        }
        if (!strcmp(req->path, "/v1/short")) {
                /* a whole stream inside handle */
                struct er_ctl_stream *st = er_ctl_resp_stream_begin(resp, 201, NULL, NULL, NULL);

                if (!st || er_ctl_stream_write(st, "[1,", 3) < 0 ||
                    er_ctl_stream_write(st, "2]", 2) < 0)
                        return -EIO;
                er_ctl_stream_end(st);
                return 0;
        }
        if (!strcmp(req->path, "/v1/fail"))
                return -EIO;
        return er_ctl_resp_error(resp, 404, "no such path '%s'", req->path);
}

static void fx_start(struct fx *fx, const struct er_ctl_opts *extra)
{
        struct er_ctl_opts o = {0};

        if (extra)
                o = *extra;
        o.path = fx->path;
        o.handle = handle;
        o.ud = fx;
        assert_int_equal(er_ctl_new(fx->loop, &o, &fx->ctl), 0);
}

static int setup(void **state)
{
        struct fx *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        fx->nfds = count_fds();
        strcpy(fx->dir, "/tmp/test_ctl.XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->path, sizeof(fx->path), "%s/control.sock", fx->dir);
        assert_int_equal(er_loop_new(&fx->loop), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fx *fx = *state;

        er_ctl_free(fx->ctl);
        er_loop_free(fx->loop);
        unlink(fx->path);
        assert_int_equal(rmdir(fx->dir), 0);
        assert_int_equal(count_fds(), fx->nfds);
        free(fx);
        return 0;
}

static int connect_to(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        strcpy(sa.sun_path, path);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
        return fd;
}

static void client_open(struct fx *fx, struct client *c, const char *req, size_t len)
{
        memset(c, 0, sizeof(*c));
        c->fd = connect_to(fx->path);
        c->req = req;
        c->len = len;
}

static void client_close(struct client *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        free(c->resp);
        c->resp = NULL;
}

/* Writes and reads what the socket takes without blocking. */
static void client_step(struct client *c)
{
        char buf[65536];
        ssize_t n;

        while (!c->done && c->off < c->len) {
                n = send(c->fd, c->req + c->off, c->len - c->off, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        /* the server answered early and closed: read what it sent */
                        c->off = c->len;
                        break;
                }
                c->off += (size_t)n;
        }
        while (!c->done) {
                n = recv(c->fd, buf, sizeof(buf), 0);
                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        c->err = errno;
                        c->done = true;
                        break;
                }
                if (n == 0) {
                        c->done = true;
                        break;
                }
                c->resp = realloc(c->resp, c->rlen + (size_t)n + 1);
                assert_non_null(c->resp);
                memcpy(c->resp + c->rlen, buf, (size_t)n);
                c->rlen += (size_t)n;
                c->resp[c->rlen] = '\0';
        }
}

/* Runs the loop and the clients until every one is done (or `until`
 * returns true); fails past the deadline. */
static void pump(struct fx *fx, struct client **cs, size_t n, bool (*until)(struct fx *))
{
        uint64_t end = er_now_us() + PUMP_DEADLINE_US;
        size_t i, left;

        for (;;) {
                left = 0;
                for (i = 0; i < n; i++) {
                        client_step(cs[i]);
                        left += !cs[i]->done;
                }
                if (until ? until(fx) : !left)
                        return;
                assert_true(er_now_us() < end);
                assert_true(er_loop_run_once(fx->loop, 10000) >= 0);
        }
}

static void exchange(struct fx *fx, struct client *c, const char *req)
{
        struct client *cs[] = {c};

        client_open(fx, c, req, strlen(req));
        pump(fx, cs, 1, NULL);
}

static const char *body_of(const struct client *c)
{
        const char *b = c->resp ? strstr(c->resp, "\r\n\r\n") : NULL;

        assert_non_null(b);
        return b + 4;
}

static void assert_status(const struct client *c, const char *line)
{
        assert_non_null(c->resp);
        if (strncmp(c->resp, line, strlen(line)))
                fail_msg("expected '%s', got '%.80s'", line, c->resp);
        assert_non_null(strstr(c->resp, "\r\nConnection: close\r\n"));
}

/* ---- tests ---- */

static void test_status(void **state)
{
        struct fx *fx = *state;
        struct client c;

        fx_start(fx, NULL);
        exchange(fx, &c, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(c.err, 0);
        assert_status(&c, "HTTP/1.1 200 OK\r\n");
        assert_non_null(strstr(c.resp, "\r\nContent-Type: application/json\r\n"));
        assert_non_null(strstr(c.resp, "\r\nContent-Length: 15\r\n"));
        assert_string_equal(body_of(&c), "{\"state\":\"up\"}\n");
        assert_int_equal(fx->calls, 1);
        client_close(&c);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);
}

static void test_post_body(void **state)
{
        struct fx *fx = *state;
        struct client c;
        json_t *j;

        fx_start(fx, NULL);
        exchange(fx, &c,
                 "POST /v1/echo?tail=10&follow=1 HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"b c\"}");
        assert_status(&c, "HTTP/1.1 200 OK\r\n");
        j = json_loads(body_of(&c), 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
        assert_string_equal(json_string_value(json_object_get(j, "query")), "tail=10&follow=1");
        assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"a\":\"b c\"}");
        json_decref(j);
        client_close(&c);

        /* a chunked request body is decoded */
        exchange(fx, &c,
                 "POST /v1/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        assert_status(&c, "HTTP/1.1 200 OK\r\n");
        assert_string_equal(body_of(&c),
                            "{\"method\":\"POST\",\"query\":\"\",\"body\":\"abcde\"}\n");
        client_close(&c);
}

static void test_not_found_and_errors(void **state)
{
        struct fx *fx = *state;
        struct client c;

        fx_start(fx, NULL);
        exchange(fx, &c, "GET /v2/nothing?x=1 HTTP/1.1\r\n\r\n");
        assert_status(&c, "HTTP/1.1 404 Not Found\r\n");
        assert_string_equal(body_of(&c), "{\"error\":\"no such path '/v2/nothing'\"}\n");
        client_close(&c);

        /* the handler failing, or answering nothing: 500 */
        exchange(fx, &c, "GET /v1/fail HTTP/1.1\r\n\r\n");
        assert_status(&c, "HTTP/1.1 500 Internal Server Error\r\n");
        assert_string_equal(body_of(&c), "{\"error\":\"internal error\"}\n");
        client_close(&c);
}

static void test_malformed(void **state)
{
        static const char *const bad[] = {
            "GET /v1/status HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET /v1/status HTTP/9.9.9\r\n\r\n",
            "\x01\x02\x03garbage\r\n\r\n",
            "GET http://example.com/v1/status HTTP/1.1\r\n\r\n",
            "POST /v1/echo HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        };
        struct fx *fx = *state;
        struct client c;
        size_t i;

        fx_start(fx, NULL);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                exchange(fx, &c, bad[i]);
                assert_non_null(c.resp);
                if (strncmp(c.resp, "HTTP/1.1 4", 10))
                        fail_msg("request %zu: got '%.60s'", i, c.resp);
                assert_non_null(strstr(body_of(&c), "{\"error\":\""));
                client_close(&c);
        }
        /* unknown and unsupported methods */
        exchange(fx, &c, "FROB /v1/status HTTP/1.1\r\n\r\n");
        assert_status(&c, "HTTP/1.1 405 Method Not Allowed\r\n");
        client_close(&c);
        exchange(fx, &c, "OPTIONS /v1/status HTTP/1.1\r\n\r\n");
        assert_status(&c, "HTTP/1.1 405 Method Not Allowed\r\n");
        client_close(&c);
        assert_int_equal(fx->calls, 0);

        /* a client closing mid-request is just closed */
        client_open(fx, &c, "GET /v1/sta", 11);
        client_step(&c);
        client_close(&c);
        exchange(fx, &c, "GET /v1/status HTTP/1.1\r\n\r\n");
        assert_status(&c, "HTTP/1.1 200 OK\r\n");
        client_close(&c);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);
}

static void check_big_or_closed(const struct client *c)
{
        if (c->resp)
                assert_status(c, "HTTP/1.1 413 Payload Too Large\r\n");
        else
                assert_true(c->err == ECONNRESET || c->err == 0);
}

static void test_too_large(void **state)
{
        struct fx *fx = *state;
        size_t big = 10u * 1024 * 1024, hl;
        struct client a, b, d;
        struct client *cs[] = {&a, &b, &d};
        char *req1, *req2;

        fx_start(fx, NULL);
        /* a declared 10 MB body, and a 10 MB header with no body */
        req1 = malloc(big + 128);
        req2 = malloc(big + 128);
        assert_non_null(req1);
        assert_non_null(req2);
        hl = (size_t)sprintf(req1, "POST /v1/echo HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", big);
        memset(req1 + hl, 'x', big);
        hl = (size_t)sprintf(req2, "GET /v1/status HTTP/1.1\r\nX-Big: ");
        memset(req2 + hl, 'y', big);
        memcpy(req2 + hl + big, "\r\n\r\n", 4);

        client_open(fx, &a, req1,
                    big + strlen("POST /v1/echo HTTP/1.1\r\nContent-Length: 10485760\r\n\r\n"));
        client_open(fx, &b, req2, hl + big + 4);
        client_open(fx, &d, "GET /v1/status HTTP/1.1\r\n\r\n", 27);
        pump(fx, cs, 3, NULL);
        check_big_or_closed(&a);
        check_big_or_closed(&b);
        assert_status(&d, "HTTP/1.1 200 OK\r\n");
        assert_int_equal(fx->calls, 1);
        client_close(&a);
        client_close(&b);
        client_close(&d);
        free(req1);
        free(req2);

        /* the bound is 64 KiB, head and body: a body of 65400 bytes fits,
         * one of 65500 does not */
        req1 = malloc(70000);
        assert_non_null(req1);
        hl = (size_t)sprintf(req1, "POST /v1/echo HTTP/1.1\r\nContent-Length: 65400\r\n\r\n");
        memset(req1 + hl, 'z', 65400);
        client_open(fx, &a, req1, hl + 65400);
        pump(fx, cs, 1, NULL);
        assert_status(&a, "HTTP/1.1 200 OK\r\n");
        client_close(&a);
        hl = (size_t)sprintf(req1, "POST /v1/echo HTTP/1.1\r\nContent-Length: 65500\r\n\r\n");
        memset(req1 + hl, 'z', 65500);
        client_open(fx, &a, req1, hl + 65500);
        pump(fx, cs, 1, NULL);
        check_big_or_closed(&a);
        client_close(&a);
        free(req1);
        assert_int_equal(fx->calls, 2);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);
}

static void test_slow_loris(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_opts o = {.timeout_us = 200000};
        struct client slow, ok;
        struct client *cs[] = {&slow};
        uint64_t t0, dt;

        fx_start(fx, &o);
        t0 = er_now_us();
        client_open(fx, &slow, "GET /v1/status HTTP/1.1\r\nHost:", 30);
        /* another client is answered meanwhile */
        exchange(fx, &ok, "GET /v1/status HTTP/1.1\r\n\r\n");
        assert_status(&ok, "HTTP/1.1 200 OK\r\n");
        client_close(&ok);
        assert_false(slow.done);
        pump(fx, cs, 1, NULL);
        dt = er_now_us() - t0;
        assert_null(slow.resp);
        assert_true(dt >= 190000);
        assert_true(dt < 2000000);
        client_close(&slow);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);
}

static bool have_stream(struct fx *fx)
{
        return fx->stream != NULL;
}

/* Decodes a chunked body; returns false when malformed. */
static bool dechunk(const char *p, char *out, size_t cap)
{
        size_t n, len = 0;
        char *end;

        for (;;) {
                n = strtoul(p, &end, 16);
                if (end == p || strncmp(end, "\r\n", 2))
                        return false;
                p = end + 2;
                if (!n)
                        return !strcmp(p, "\r\n") && (out[len] = '\0', true);
                if (len + n >= cap || strlen(p) < n + 2 || strncmp(p + n, "\r\n", 2))
                        return false;
                memcpy(out + len, p, n);
                len += n;
                p += n + 2;
        }
}

static bool stream_gone(struct fx *fx)
{
        return fx->stream_closed > 0;
}

static void test_stream(void **state)
{
        struct fx *fx = *state;
        struct client c;
        struct client *cs[] = {&c};
        char body[64];

        fx_start(fx, NULL);
        client_open(fx, &c, "GET /v1/stream?follow=1 HTTP/1.1\r\n\r\n", 36);
        pump(fx, cs, 1, have_stream);
        assert_int_equal(er_ctl_stream_write(fx->stream, "two\n", 4), 0);
        assert_true(er_loop_run_once(fx->loop, 0) >= 0);
        assert_int_equal(er_ctl_stream_write(fx->stream, "", 0), 0);
        assert_int_equal(er_ctl_stream_write(fx->stream, "three\n", 6), 0);
        er_ctl_stream_end(fx->stream);
        fx->stream = NULL;
        pump(fx, cs, 1, NULL);
        assert_int_equal(c.err, 0);
        assert_status(&c, "HTTP/1.1 200 OK\r\n");
        assert_non_null(strstr(c.resp, "\r\nTransfer-Encoding: chunked\r\n"));
        assert_non_null(strstr(c.resp, "\r\nContent-Type: text/plain\r\n"));
        assert_null(strstr(c.resp, "Content-Length"));
        assert_true(dechunk(body_of(&c), body, sizeof(body)));
        assert_string_equal(body, "one\ntwo\nthree\n");
        assert_int_equal(fx->stream_closed, 0);
        client_close(&c);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);

        /* begun, written and ended inside handle */
        exchange(fx, &c, "GET /v1/short HTTP/1.1\r\n\r\n");
        assert_int_equal(c.err, 0);
        assert_status(&c, "HTTP/1.1 201 Created\r\n");
        assert_non_null(strstr(c.resp, "\r\nContent-Type: application/json\r\n"));
        assert_true(dechunk(body_of(&c), body, sizeof(body)));
        assert_string_equal(body, "[1,2]");
        client_close(&c);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);
}

static void test_stream_client_gone(void **state)
{
        struct fx *fx = *state;
        struct client c;
        struct client *cs[] = {&c};

        fx_start(fx, NULL);
        client_open(fx, &c, "GET /v1/stream HTTP/1.1\r\n\r\n", 27);
        pump(fx, cs, 1, have_stream);
        close(c.fd);
        c.fd = -1;
        pump(fx, cs, 0, stream_gone);
        assert_int_equal(fx->stream_closed, 1);
        assert_null(fx->stream);
        client_close(&c);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);

        /* a stream still open when the server is freed is closed too */
        client_open(fx, &c, "GET /v1/stream HTTP/1.1\r\n\r\n", 27);
        pump(fx, cs, 1, have_stream);
        er_ctl_free(fx->ctl);
        fx->ctl = NULL;
        assert_int_equal(fx->stream_closed, 2);
        client_step(&c);
        assert_true(c.done);
        client_close(&c);
}

static void test_stream_not_read(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_opts o = {.max_output = 64 * 1024};
        struct client c;
        struct client *cs[] = {&c};
        char chunk[1024];
        int i, r = 0;

        memset(chunk, 'l', sizeof(chunk));
        fx_start(fx, &o);
        client_open(fx, &c, "GET /v1/stream HTTP/1.1\r\n\r\n", 27);
        pump(fx, cs, 1, have_stream);
        /* the client reads no more: the socket fills, then the bound */
        for (i = 0; i < 100000; i++) {
                r = er_ctl_stream_write(fx->stream, chunk, sizeof(chunk));
                if (r < 0)
                        break;
                assert_true(er_loop_run_once(fx->loop, 0) >= 0);
        }
        assert_int_equal(r, -ENOBUFS);
        fx->stream = NULL;
        assert_int_equal(fx->stream_closed, 0);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);
        client_close(&c);
}

static void test_socket_file(void **state)
{
        struct fx *fx = *state;
        struct er_ctl *other = NULL;
        struct er_ctl_opts o = {0};
        struct stat st;
        int fd;

        /* an existing file that is not a socket is refused, and kept */
        fd = open(fx->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        o.path = fx->path;
        o.handle = handle;
        assert_int_equal(er_ctl_new(fx->loop, &o, &other), -EEXIST);
        assert_null(other);
        assert_int_equal(lstat(fx->path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        unlink(fx->path);

        fx_start(fx, NULL);
        assert_int_equal(lstat(fx->path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, geteuid());

        /* a stale socket is replaced; freeing the first leaves the second's */
        assert_int_equal(er_ctl_new(fx->loop, &o, &other), 0);
        er_ctl_free(fx->ctl);
        fx->ctl = other;
        assert_int_equal(lstat(fx->path, &st), 0);
        er_ctl_free(fx->ctl);
        fx->ctl = NULL;
        assert_int_equal(lstat(fx->path, &st), -1);
        assert_int_equal(errno, ENOENT);

        /* Past sun_path's 108 bytes a path is bound through its directory
         * (issue 20; hostile.t_fast runs one end to end): a directory that
         * does not exist is ENOENT, as for any path. */
        o.path = "/tmp/this/path/is/far/too/long/for/a/unix/socket/address/xxxxxxxxxxxxxxxx"
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        assert_int_equal(er_ctl_new(fx->loop, &o, &other), -ENOENT);
}

/* A child as uid 65534 connects: with the socket 0600 it may not; opened
 * up, SO_PEERCRED refuses it: it reads EOF at once.  Exit 0 when refused. */
static void other_uid_child(const char *path, bool expect_eacces)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct pollfd pfd;
        char buf[64];
        int fd;

        if (setgid(65534) < 0 || setuid(65534) < 0)
                _exit(10);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        strcpy(sa.sun_path, path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                _exit(expect_eacces && errno == EACCES ? 0 : 11);
        if (expect_eacces)
                _exit(12);
        if (write(fd, "GET /v1/status HTTP/1.1\r\n\r\n", 27) < 0 && errno != EPIPE &&
            errno != ECONNRESET)
                _exit(13);
        pfd.fd = fd;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 5000) != 1)
                _exit(14);
        if (read(fd, buf, sizeof(buf)) > 0)
                _exit(15); /* it was answered */
        _exit(0);
}

static void run_child(struct fx *fx, bool expect_eacces)
{
        uint64_t end = er_now_us() + PUMP_DEADLINE_US;
        pid_t pid, w;
        int status = -1;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                signal(SIGPIPE, SIG_IGN);
                other_uid_child(fx->path, expect_eacces);
        }
        for (;;) {
                w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        break;
                if (er_now_us() > end) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        fail_msg("child hung");
                }
                assert_true(er_loop_run_once(fx->loop, 10000) >= 0);
        }
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_other_uid(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_opts o = {0};
        struct client c;

        if (geteuid() != 0) {
                /* cannot become another user: make the owner another uid */
                o.owner_uid_set = true;
                o.owner_uid = geteuid() + 1;
                fx_start(fx, &o);
                exchange(fx, &c, "GET /v1/status HTTP/1.1\r\n\r\n");
                assert_null(c.resp);
                client_close(&c);
                assert_int_equal(fx->calls, 0);
                return;
        }
        fx_start(fx, NULL);
        assert_int_equal(chmod(fx->dir, 0711), 0);
        run_child(fx, true);
        assert_int_equal(chmod(fx->path, 0666), 0);
        run_child(fx, false);
        assert_int_equal(fx->calls, 0);
        assert_int_equal(er_ctl_nconns(fx->ctl), 0);
        /* the owner still gets answers */
        exchange(fx, &c, "GET /v1/status HTTP/1.1\r\n\r\n");
        assert_status(&c, "HTTP/1.1 200 OK\r\n");
        client_close(&c);
}

static bool four_conns(struct fx *fx)
{
        return er_ctl_nconns(fx->ctl) == 4;
}

static bool no_conns(struct fx *fx)
{
        return er_ctl_nconns(fx->ctl) == 0;
}

static void test_max_conns(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_opts o = {.max_conns = 4};
        struct client c[5];
        struct client *cs[] = {&c[0], &c[1], &c[2], &c[3], &c[4]};
        int i;

        fx_start(fx, &o);
        for (i = 0; i < 4; i++)
                client_open(fx, &c[i], "GET /v1/status HTTP/1.1\r\n", 25);
        pump(fx, cs, 4, four_conns);
        exchange(fx, &c[4], "GET /v1/status HTTP/1.1\r\n\r\n");
        assert_status(&c[4], "HTTP/1.1 503 Service Unavailable\r\n");
        assert_string_equal(body_of(&c[4]), "{\"error\":\"too many clients\"}\n");
        /* once the four are gone, new clients are answered */
        for (i = 0; i < 4; i++)
                client_close(&c[i]);
        pump(fx, cs, 0, no_conns);
        for (i = 0; i < 4; i++)
                client_open(fx, &c[i], "GET /v1/status HTTP/1.1\r\n\r\n", 27);
        pump(fx, cs, 4, NULL);
        for (i = 0; i < 4; i++) {
                assert_status(&c[i], "HTTP/1.1 200 OK\r\n");
                client_close(&c[i]);
        }
        client_close(&c[4]);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_status, setup, teardown),
    cmocka_unit_test_setup_teardown(test_post_body, setup, teardown),
    cmocka_unit_test_setup_teardown(test_not_found_and_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
    cmocka_unit_test_setup_teardown(test_slow_loris, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stream_client_gone, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stream_not_read, setup, teardown),
    cmocka_unit_test_setup_teardown(test_socket_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_other_uid, setup, teardown),
    cmocka_unit_test_setup_teardown(test_max_conns, setup, teardown),
};

int main(void)
{
        alarm(TEST_DEADLINE_S);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
