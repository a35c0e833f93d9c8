/* Fuzz target for the control client's response decoder (api/ctl_client.c):
 * the input's first byte picks the way in, the rest is the bytes a server
 * answers.  The server is this process, on a real unix socket in a
 * directory of its own (removed at exit; the client connects by path, so a
 * crash leaves /tmp/fuzz_ctl_client.* behind); for each request it reads the
 * request's head, writes the answer, shuts down its writing side and waits
 * for the client to close.
 *   - byte & 1 == 0: er_ctl_client_call (the whole response in memory).  It
 *     blocks, so the server side runs in a thread for that one call.
 *   - byte & 1 == 1: er_ctl_client_open + er_ctl_client_read (a followed
 *     log), single-threaded: the answer is written in pieces of
 *     1 + (byte >> 1) bytes (1..128), each followed by one read, so the
 *     decoder meets every split of the stream, deterministically.
 *
 * Oracles, each an abort():
 *   - the call or read ends (no -ETIMEDOUT: the server always closes), with
 *     0, or with -EPROTO / -ECONNRESET / -EFBIG and a message;
 *   - on success a status was read; the body is NUL-terminated at
 *     body_len; the content type is at most 256 bytes; no more body bytes
 *     come out than went in.
 * Built with libFuzzer (tests/fuzz/run ctl_client) or, for the test suite,
 * with replay_main.c. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/ctl_client.h"
#include "base/err.h"
#include "proc/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CALL_TIMEOUT_US (10u * 1000000u)
#define WAIT_MS 10000 /* the server's waits; far above what one input takes */
#define CTYPE_MAX 256

static char dir[] = "/tmp/fuzz_ctl_client.XXXXXX";
static char path[64];
static int lfd = -1;

struct server {
        const uint8_t *data;
        size_t size;
        size_t piece; /* bytes per write; 0: all at once (blocking) */
        int fd;
        size_t off;
        bool shut;
};

static void die(const char *what)
{
        fprintf(stderr, "fuzz_ctl_client: %s\n", what);
        abort();
}

static void cleanup(void)
{
        er_close(&lfd);
        unlink(path);
        rmdir(dir);
}

static void setup(void)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (!mkdtemp(dir))
                die("mkdtemp");
        snprintf(path, sizeof(path), "%s/control.sock", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0)
                die("cannot listen");
        atexit(cleanup);
}

static bool wait_for(int fd, short ev)
{
        struct pollfd p = {.fd = fd, .events = ev};

        return poll(&p, 1, WAIT_MS) == 1;
}

/* Accepts the client and reads its request's head (it has no body): a
 * request left unread would turn the close into a reset. */
static void server_accept(struct server *s)
{
        char buf[512];
        size_t got = 0;
        ssize_t n;

        if (!wait_for(lfd, POLLIN))
                die("no client");
        s->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (s->fd < 0)
                die("accept");
        while (got < 4 || memcmp(buf + got - 4, "\r\n\r\n", 4)) {
                if (got == sizeof(buf) || !wait_for(s->fd, POLLIN))
                        die("no request head");
                n = recv(s->fd, buf + got, sizeof(buf) - got, 0);
                if (n <= 0)
                        die("the client went away before its request ended");
                got += (size_t)n;
        }
}

/* Writes the next piece (all of it when piece is 0); shuts down writing
 * after the last.  A client that answered early and closed ends it too. */
static void server_write(struct server *s)
{
        size_t n = s->piece && s->piece < s->size - s->off ? s->piece : s->size - s->off;
        ssize_t k;

        while (n) {
                k = send(s->fd, s->data + s->off, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        s->off = s->size; /* EPIPE, ECONNRESET: the client is done */
                        break;
                }
                s->off += (size_t)k;
                n -= (size_t)k;
        }
        if (s->off == s->size && !s->shut) {
                shutdown(s->fd, SHUT_WR);
                s->shut = true;
        }
}

/* Waits for the client to close, then closes. */
static void server_end(struct server *s)
{
        char buf[256];
        ssize_t n;

        for (;;) {
                if (!wait_for(s->fd, POLLIN))
                        die("the client did not close");
                n = recv(s->fd, buf, sizeof(buf), 0);
                if (n <= 0 && !(n < 0 && errno == EINTR))
                        break;
        }
        er_close(&s->fd);
}

static void *server_thread(void *arg)
{
        struct server *s = arg;

        server_accept(s);
        server_write(s);
        server_end(s);
        return NULL;
}

static void check_error(int r, const struct er_err *err)
{
        if (r != -EPROTO && r != -ECONNRESET && r != -EFBIG)
                die(r == -ETIMEDOUT ? "timed out" : "unexpected error code");
        if (err->code != r || !err->msg[0])
                die("an error without its message");
}

static void run_call(const uint8_t *data, size_t size)
{
        struct server s = {.data = data, .size = size, .fd = -1};
        struct er_ctl_reply reply = {0};
        struct er_err err = {0};
        pthread_t t;
        int r;

        if (pthread_create(&t, NULL, server_thread, &s))
                die("pthread_create");
        r = er_ctl_client_call(path, "GET", "/v1/status", NULL, CALL_TIMEOUT_US, &reply, &err);
        pthread_join(t, NULL);
        if (r < 0) {
                check_error(r, &err);
                if (reply.body || reply.content_type)
                        die("a failed call filled the reply");
                return;
        }
        if (reply.status < 100 || !reply.body || !reply.content_type)
                die("a reply without status, body or type");
        if (reply.body[reply.body_len] || reply.body_len > size ||
            strlen(reply.content_type) > CTYPE_MAX)
                die("a malformed reply");
        er_ctl_client_reply_fini(&reply);
}

static void on_body(void *ud, const char *buf, size_t len)
{
        size_t *total = ud;

        if (!buf && len)
                die("body bytes without a buffer");
        *total += len;
}

static void run_stream(const uint8_t *data, size_t size, size_t piece)
{
        struct server s = {.data = data, .size = size, .piece = piece, .fd = -1};
        struct er_ctl_client *c = NULL;
        struct er_err err = {0};
        size_t total = 0;
        unsigned rounds = 0;
        int r;

        r = er_ctl_client_open(path, "GET", "/v1/logs?follow=1", CALL_TIMEOUT_US, &c, &err);
        if (r < 0)
                die("er_ctl_client_open");
        server_accept(&s);
        do {
                if (!s.shut)
                        server_write(&s);
                else if (!wait_for(er_ctl_client_fd(c), POLLIN))
                        die("nothing to read after the server shut down");
                r = er_ctl_client_read(c, on_body, &total, &err);
                if (++rounds > size + 16)
                        die("the response never ends");
        } while (r == 1);
        if (r < 0)
                check_error(r, &err);
        else if (er_ctl_client_status(c) < 100)
                die("a complete response without status");
        if (total > size)
                die("more body bytes than the response had");
        er_ctl_client_free(c);
        server_end(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (lfd < 0)
                setup();
        if (size < 1)
                return 0;
        if (data[0] & 1)
                run_stream(data + 1, size - 1, 1 + (data[0] >> 1));
        else
                run_call(data + 1, size - 1);
        return 0;
}
