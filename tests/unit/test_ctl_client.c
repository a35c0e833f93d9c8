/* test_ctl_client: the control API's client against a real er_ctl server
 * run on its own loop in a forked child (er_ctl_client_call blocks), and against
 * fake servers: a socket that listens and never answers, and children that
 * answer fixed bytes.
 *
 * The server child is driven through a pipe: each byte the test writes
 * moves a streamed response one step on, and EOF ends the child, which
 * frees its server (removing the socket) and exits. */
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
#include <sys/epoll.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/ctl.h"
#include "api/ctl_client.h"
#include "proc/loop.h"

/* Everything here must finish well within this; a hang fails by SIGALRM. */
#define TEST_DEADLINE_S 60
/* Bound of one call or wait. */
#define CALL_TIMEOUT_US (10u * 1000000u)

struct fx {
        char dir[64];
        char path[128];
        int nfds;
        pid_t server;  /* the er_ctl child, or a fake one */
        int ctl_fd;    /* write end of the child's control pipe */
        int listen_fd; /* a socket the test itself listens on */
};

/* ---- the server child ---- */

struct srv {
        struct er_loop *loop;
        struct er_ctl *ctl;
        struct er_io io;
        struct er_ctl_stream *stream;
        int step;
        bool quit;
};

static void srv_stream_closed(void *ud, struct er_ctl_stream *s)
{
        struct srv *srv = ud;

        srv->stream = NULL;
}

static int srv_handle(void *ud, struct er_ctl_req *req, struct er_ctl_resp *resp)
{
        struct srv *srv = ud;
        char *big;
        int r;

        if (!strcmp(req->method, "GET") && !strcmp(req->path, "/v1/status"))
                return er_ctl_resp_json(resp, 200, json_pack("{s:s}", "state", "up"));
        if (!strcmp(req->method, "POST") && !strcmp(req->path, "/v1/echo"))
                return er_ctl_resp_json(resp, 200,
                                        json_pack("{s:s,s:s,s:s#}", "method", req->method, "query",
                                                  req->query, "body", req->body,
                                                  (int)req->body_len));
        if (!strcmp(req->path, "/v1/stream")) {
                srv->stream =
                    er_ctl_resp_stream_begin(resp, 200, "text/plain", srv_stream_closed, srv);
                if (!srv->stream)
                        return -ENOMEM;
                srv->step = 0;
                return er_ctl_stream_write(srv->stream, "one\n", 4);
        }
        if (!strcmp(req->path, "/v1/short")) {
                /* a whole chunked response inside handle */
                struct er_ctl_stream *st = er_ctl_resp_stream_begin(resp, 201, NULL, NULL, NULL);

                if (!st || er_ctl_stream_write(st, "[1,", 3) < 0 ||
                    er_ctl_stream_write(st, "2]", 2) < 0)
                        return -EIO;
                er_ctl_stream_end(st);
                return 0;
        }
        if (!strcmp(req->path, "/v1/big")) {
                /* one byte over the client's bound */
                big = malloc(ER_CTL_CLIENT_MAX_BODY + 2);
                if (!big)
                        return -ENOMEM;
                memset(big, 'b', ER_CTL_CLIENT_MAX_BODY + 1);
                big[ER_CTL_CLIENT_MAX_BODY + 1] = '\0';
                r = er_ctl_resp_string(resp, 200, "text/plain", big);
                free(big);
                return r;
        }
        return er_ctl_resp_error(resp, 404, "no such path '%s'", req->path);
}

/* A byte from the test: the stream's next step; EOF: quit. */
static void srv_ctl_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        static const char *const pieces[] = {"two\n", "three\n"};
        struct srv *srv = er_container_of(io, struct srv, io);
        char b;
        ssize_t n = read(io->fd, &b, 1);

        if (n <= 0) {
                if (n < 0 && errno == EINTR)
                        return;
                srv->quit = true;
                return;
        }
        if (!srv->stream)
                return;
        if (srv->step < 2) {
                if (er_ctl_stream_write(srv->stream, pieces[srv->step], strlen(pieces[srv->step])) <
                    0)
                        srv->stream = NULL;
                srv->step++;
                return;
        }
        er_ctl_stream_end(srv->stream);
        srv->stream = NULL;
}

static void srv_main(const char *path, int ctl_rd, int ready_wr)
{
        struct er_ctl_opts o = {0};
        struct srv srv = {0};
        int code = 0;

        alarm(TEST_DEADLINE_S);
        signal(SIGPIPE, SIG_IGN);
        er_io_init(&srv.io);
        if (er_loop_new(&srv.loop) < 0)
                _exit(20);
        o.path = path;
        o.handle = srv_handle;
        o.ud = &srv;
        if (er_ctl_new(srv.loop, &o, &srv.ctl) < 0)
                _exit(21);
        if (er_io_start(srv.loop, &srv.io, ctl_rd, EPOLLIN, srv_ctl_cb) < 0)
                _exit(22);
        if (write(ready_wr, "r", 1) != 1)
                _exit(23);
        close(ready_wr);
        while (!srv.quit)
                if (er_loop_run_once(srv.loop, -1) < 0) {
                        code = 24;
                        break;
                }
        er_io_stop(srv.loop, &srv.io);
        close(ctl_rd);
        er_ctl_free(srv.ctl);
        er_loop_free(srv.loop);
        _exit(code);
}

/* ---- fixture ---- */

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

static int setup(void **state)
{
        struct fx *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        fx->nfds = count_fds();
        strcpy(fx->dir, "/tmp/test_ctl_client.XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->path, sizeof(fx->path), "%s/control.sock", fx->dir);
        fx->server = -1;
        fx->ctl_fd = -1;
        fx->listen_fd = -1;
        *state = fx;
        return 0;
}

/* Waits for the child to exit, killing it past the deadline. */
static int reap(pid_t pid)
{
        uint64_t end = er_now_us() + CALL_TIMEOUT_US;
        int status = -1;

        while (waitpid(pid, &status, WNOHANG) != pid) {
                if (er_now_us() > end) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        return -1;
                }
                usleep(1000);
        }
        return status;
}

static int teardown(void **state)
{
        struct fx *fx = *state;
        int status = 0;

        if (fx->ctl_fd >= 0)
                close(fx->ctl_fd); /* EOF: the server child quits */
        if (fx->listen_fd >= 0)
                close(fx->listen_fd);
        if (fx->server > 0)
                status = reap(fx->server);
        unlink(fx->path);
        assert_int_equal(rmdir(fx->dir), 0);
        assert_int_equal(count_fds(), fx->nfds);
        free(fx);
        /* the child ended by itself, cleanly */
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        return 0;
}

/* Forks the er_ctl server and waits until it listens. */
static void server_start(struct fx *fx)
{
        struct pollfd pfd;
        int ctl[2], ready[2];
        char b;

        assert_int_equal(pipe2(ctl, O_CLOEXEC), 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        fx->server = fork();
        assert_true(fx->server >= 0);
        if (fx->server == 0) {
                close(ctl[1]);
                close(ready[0]);
                srv_main(fx->path, ctl[0], ready[1]);
        }
        close(ctl[0]);
        close(ready[1]);
        fx->ctl_fd = ctl[1];
        pfd.fd = ready[0];
        pfd.events = POLLIN;
        assert_int_equal(poll(&pfd, 1, CALL_TIMEOUT_US / 1000), 1);
        assert_int_equal(read(ready[0], &b, 1), 1);
        close(ready[0]);
}

/* A fake server: listens at fx->path, and a child answers the first
 * connection with `resp` once the request's head is in, then closes. */
static void fake_start(struct fx *fx, const char *resp)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int lfd, fd;

        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(lfd >= 0);
        strcpy(sa.sun_path, fx->path);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 4), 0);
        fx->server = fork();
        assert_true(fx->server >= 0);
        if (fx->server == 0) {
                char buf[4096];
                size_t len = 0;
                ssize_t n;

                alarm(TEST_DEADLINE_S);
                fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        _exit(30);
                while (!memmem(buf, len, "\r\n\r\n", 4) && len < sizeof(buf)) {
                        n = read(fd, buf + len, sizeof(buf) - len);
                        if (n <= 0)
                                _exit(31);
                        len += (size_t)n;
                }
                if (send(fd, resp, strlen(resp), MSG_NOSIGNAL) != (ssize_t)strlen(resp))
                        _exit(32);
                close(fd);
                _exit(0);
        }
        fx->listen_fd = lfd;
}

/* ---- tests ---- */

static void test_json_reply(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};
        json_t *j;

        server_start(fx);
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(r.body, "{\"state\":\"up\"}\n");
        assert_int_equal(r.body_len, 15);
        er_ctl_client_reply_fini(&r);
        assert_null(r.body);

        /* a body goes as JSON with its length; the query is kept */
        assert_int_equal(er_ctl_client_call(fx->path, "POST", "/v1/echo?tail=10",
                                            "{\"a\": \"b c\"}", CALL_TIMEOUT_US, &r, &err),
                         0);
        assert_int_equal(r.status, 200);
        j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
        assert_string_equal(json_string_value(json_object_get(j, "query")), "tail=10");
        assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"a\": \"b c\"}");
        json_decref(j);
        er_ctl_client_reply_fini(&r);

        /* a chunked response is decoded; no bound at all (0) works too */
        assert_int_equal(er_ctl_client_call(fx->path, "DELETE", "/v1/short", NULL, 0, &r, &err), 0);
        assert_int_equal(r.status, 201);
        assert_string_equal(r.body, "[1,2]");
        assert_int_equal(r.body_len, 5);
        er_ctl_client_reply_fini(&r);
}

static void test_error_reply(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};

        server_start(fx);
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v2/nothing?x=1", NULL, CALL_TIMEOUT_US, &r, &err),
            0);
        assert_int_equal(r.status, 404);
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(r.body, "{\"error\":\"no such path '/v2/nothing'\"}\n");
        er_ctl_client_reply_fini(&r);

        /* the server's own refusal of a method */
        assert_int_equal(
            er_ctl_client_call(fx->path, "OPTIONS", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err),
            0);
        assert_int_equal(r.status, 405);
        er_ctl_client_reply_fini(&r);

        /* a request line the client will not write */
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/a b", NULL, CALL_TIMEOUT_US, &r, &err),
            -EINVAL);
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/x\r\nX: y", NULL, CALL_TIMEOUT_US, &r, &err),
            -EINVAL);
        assert_null(r.body);
}

static void test_too_big(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};

        server_start(fx);
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/big", NULL, CALL_TIMEOUT_US, &r, &err),
            -EFBIG);
        assert_int_equal(err.code, -EFBIG);
        assert_null(r.body);
        assert_non_null(strstr(err.msg, "larger than 16 MiB"));
}

struct pieces {
        char buf[256];
        size_t len;
        int calls;
};

static void on_piece(void *ud, const char *buf, size_t len)
{
        struct pieces *p = ud;

        assert_true(p->len + len < sizeof(p->buf));
        memcpy(p->buf + p->len, buf, len);
        p->len += len;
        p->buf[p->len] = '\0';
        p->calls++;
}

/* Reads until the body so far is `want` (1 expected from each read) or
 * the response ends (0 expected at the last). */
static void read_until(struct er_ctl_client *c, struct pieces *p, const char *want, int end)
{
        uint64_t deadline = er_now_us() + CALL_TIMEOUT_US;
        struct pollfd pfd = {.fd = er_ctl_client_fd(c), .events = POLLIN};
        struct er_err err = {0};
        int r;

        for (;;) {
                assert_true(er_now_us() < deadline);
                assert_true(poll(&pfd, 1, 100) >= 0);
                r = er_ctl_client_read(c, on_piece, p, &err);
                if (r < 0)
                        fail_msg("read: %d %s", r, err.msg);
                if (end && r == 0)
                        break;
                assert_int_equal(r, 1);
                if (!end && !strcmp(p->buf, want))
                        break;
        }
        assert_string_equal(p->buf, want);
}

static void test_stream(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_client *c = NULL;
        struct pieces p = {.len = 0};
        struct er_err err = {0};

        server_start(fx);
        assert_int_equal(
            er_ctl_client_open(fx->path, "GET", "/v1/stream?follow=1", CALL_TIMEOUT_US, &c, &err),
            0);
        assert_non_null(c);
        assert_true(er_ctl_client_fd(c) >= 0);
        assert_true(fcntl(er_ctl_client_fd(c), F_GETFL) & O_NONBLOCK);
        assert_int_equal(er_ctl_client_status(c), 0);

        read_until(c, &p, "one\n", 0);
        assert_int_equal(er_ctl_client_status(c), 200);
        /* nothing more until the server is told to go on: no wait, no bytes */
        p.calls = 0;
        assert_int_equal(er_ctl_client_read(c, on_piece, &p, &err), 1);
        assert_int_equal(p.calls, 0);

        assert_int_equal(write(fx->ctl_fd, "n", 1), 1);
        read_until(c, &p, "one\ntwo\n", 0);
        assert_true(p.calls >= 1);
        assert_int_equal(write(fx->ctl_fd, "n", 1), 1);
        read_until(c, &p, "one\ntwo\nthree\n", 0);
        /* the last chunk */
        assert_int_equal(write(fx->ctl_fd, "n", 1), 1);
        read_until(c, &p, "one\ntwo\nthree\n", 1);
        /* once ended, it stays ended */
        assert_int_equal(er_ctl_client_read(c, on_piece, &p, &err), 0);
        assert_int_equal(er_ctl_client_status(c), 200);
        er_ctl_client_free(c);
        er_ctl_client_free(NULL);
}

static void test_refused(void **state)
{
        struct fx *fx = *state;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct er_ctl_reply r = {0};
        struct er_err err = {0};
        struct er_ctl_client *c = NULL;
        char want[256];
        int fd;

        /* no file */
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err),
            -ENOENT);
        assert_int_equal(err.code, -ENOENT);
        snprintf(want, sizeof(want), "cannot connect to '%s': No such file or directory", fx->path);
        assert_string_equal(err.msg, want);

        /* a socket file nobody listens on (its server is gone) */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        strcpy(sa.sun_path, fx->path);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err),
            -ECONNREFUSED);
        snprintf(want, sizeof(want), "cannot connect to '%s': Connection refused", fx->path);
        assert_string_equal(err.msg, want);
        assert_int_equal(er_ctl_client_open(fx->path, "GET", "/v1/logs", CALL_TIMEOUT_US, &c, &err),
                         -ECONNREFUSED);
        assert_null(c);
        assert_null(r.body);

        /* a path too long for a socket address */
        memset(want, 'x', 200);
        memcpy(want, "/tmp/", 5);
        want[200] = '\0';
        assert_int_equal(
            er_ctl_client_call(want, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err),
            -ENAMETOOLONG);
        assert_non_null(strstr(err.msg, "too long"));
}

static void listen_only(struct fx *fx)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        fx->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fx->listen_fd >= 0);
        strcpy(sa.sun_path, fx->path);
        assert_int_equal(bind(fx->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(fx->listen_fd, 4), 0);
}

static void test_timeout(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};
        struct er_ctl_client *c = NULL;
        struct pieces p = {.len = 0};
        uint64_t t0, dt;

        /* connected (the backlog takes it), written, never answered */
        listen_only(fx);
        t0 = er_now_us();
        assert_int_equal(er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, 200000, &r, &err),
                         -ETIMEDOUT);
        dt = er_now_us() - t0;
        assert_true(dt >= 190000);
        assert_true(dt < 2000000);
        assert_int_equal(err.code, -ETIMEDOUT);
        assert_non_null(strstr(err.msg, fx->path));
        assert_null(r.body);

        /* a stream's reads never wait */
        assert_int_equal(er_ctl_client_open(fx->path, "GET", "/v1/logs", 200000, &c, &err), 0);
        t0 = er_now_us();
        assert_int_equal(er_ctl_client_read(c, on_piece, &p, &err), 1);
        assert_true(er_now_us() - t0 < 2000000);
        assert_int_equal(p.calls, 0);
        assert_int_equal(er_ctl_client_status(c), 0);
        er_ctl_client_free(c);
}

static void test_malformed(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};

        fake_start(fx, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err),
            -EPROTO);
        assert_int_equal(err.code, -EPROTO);
        assert_non_null(strstr(err.msg, "malformed response from '"));
        assert_null(r.body);
}

static void test_bad_chunks(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};

        fake_start(fx, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\nzz\r\nxx\r\n0\r\n\r\n");
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err),
            -EPROTO);
}

static void test_truncated(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};

        /* the server goes away mid-body */
        fake_start(fx, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err),
            -ECONNRESET);
        assert_non_null(strstr(err.msg, "before the response ended"));
}

static void test_silent_close(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};

        fake_start(fx, "");
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err),
            -ECONNRESET);
        assert_non_null(strstr(err.msg, "without answering"));
}

static void test_body_until_eof(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};

        /* an interim 100, then a body ended by the close, no length */
        fake_start(fx, "HTTP/1.1 100 Continue\r\n\r\n"
                       "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nX-Long-Header-Name: 1\r\n"
                       "\r\nhello\nworld\n");
        assert_int_equal(
            er_ctl_client_call(fx->path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &r, &err), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "text/plain");
        assert_string_equal(r.body, "hello\nworld\n");
        er_ctl_client_reply_fini(&r);
        er_ctl_client_reply_fini(NULL);
}

static void test_no_content_type(void **state)
{
        struct fx *fx = *state;
        struct er_ctl_reply r = {0};
        struct er_err err = {0};

        fake_start(fx, "HTTP/1.1 204 No Content\r\n\r\n");
        assert_int_equal(
            er_ctl_client_call(fx->path, "DELETE", "/v1/x", "{}", CALL_TIMEOUT_US, &r, &err), 0);
        assert_int_equal(r.status, 204);
        assert_string_equal(r.content_type, "");
        assert_string_equal(r.body, "");
        assert_int_equal(r.body_len, 0);
        er_ctl_client_reply_fini(&r);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_json_reply, setup, teardown),
    cmocka_unit_test_setup_teardown(test_error_reply, setup, teardown),
    cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_chunks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
    cmocka_unit_test_setup_teardown(test_silent_close, setup, teardown),
    cmocka_unit_test_setup_teardown(test_body_until_eof, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_content_type, setup, teardown),
};

int main(void)
{
        alarm(TEST_DEADLINE_S);
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
