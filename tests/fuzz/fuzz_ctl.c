/* Fuzz target for the control API's request side: the input is the bytes a
 * client sends.  They go to a real er_ctl server on a real loop through one
 * end of a socketpair (er_ctl_adopt_fd), so ctl.c's whole read -> parse ->
 * dispatch -> respond path runs; the harness writes the input, then
 * shutdown(SHUT_WR), and drains the answer until the server closes.
 *
 * Oracles, each an abort():
 *   - the server closes the connection within a bound (no leaked or stuck
 *     connection: it answers once, or closes on a bad or cut request);
 *   - whatever it wrote is exactly one well-formed HTTP/1.1 response
 *     (checked with http_parser in response mode), or nothing.
 *
 * The server is made once, on a socket file that is removed at once (the
 * adopted connections need no file): a crash leaves nothing behind.  Its
 * request bound is small (4 KiB) so that short inputs reach it.
 * Built with libFuzzer (tests/fuzz/run ctl) or, for the test suite, with
 * replay_main.c. */
#include <errno.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/ctl.h"
#include "proc/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Wall time for one input; far above what one takes (well under 1 ms), and
 * far below the server's own timeout, which would hide a stuck connection. */
#define INPUT_DEADLINE_US (2u * 1000000u)
#define SERVER_TIMEOUT_US (60u * 1000000u)
#define MAX_RESPONSE (256u * 1024u)

static struct er_loop *loop;
static struct er_ctl *ctl;
/* the streamed response in progress, ended on the next loop iteration */
static struct er_ctl_stream *stream;
static struct er_timer stream_timer;

static void die(const char *what)
{
        fprintf(stderr, "fuzz_ctl: %s\n", what);
        abort();
}

static void stream_closed(void *ud, struct er_ctl_stream *s)
{
        if (s != stream)
                die("closed callback for an unknown stream");
        stream = NULL;
        er_timer_stop(loop, &stream_timer);
}

static void stream_step(struct er_loop *l, struct er_timer *t)
{
        if (!stream)
                return;
        if (er_ctl_stream_write(stream, "two\n", 4) < 0) {
                stream = NULL;
                return;
        }
        er_ctl_stream_end(stream);
        stream = NULL;
}

static int handle(void *ud, struct er_ctl_req *req, struct er_ctl_resp *resp)
{
        struct er_ctl_stream *s;
        json_t *j;

        if (strlen(req->method) == 0 || req->path[0] != '/')
                die("bad request passed to handle");
        if (!strcmp(req->path, "/v1/status"))
                return er_ctl_resp_json(resp, 200, json_pack("{s:s}", "state", "up"));
        if (!strcmp(req->path, "/v1/echo")) {
                /* every byte of the request reaches the handler intact */
                j = json_pack("{s:s,s:s,s:s%}", "method", req->method, "query", req->query, "body",
                              req->body, req->body_len);
                if (!j) /* not UTF-8 */
                        return er_ctl_resp_error(resp, 400, "body of %zu bytes", req->body_len);
                return er_ctl_resp_json(resp, 200, j);
        }
        if (!strcmp(req->path, "/v1/json")) {
                j = json_loadb(req->body, req->body_len, 0, NULL);
                return er_ctl_resp_json(resp, j ? 200 : 400, j);
        }
        if (!strcmp(req->path, "/v1/stream")) {
                if (stream)
                        die("a second stream at once");
                stream = er_ctl_resp_stream_begin(resp, 200, "text/plain", stream_closed, NULL);
                if (!stream)
                        return -ENOMEM;
                if (er_ctl_stream_write(stream, "one\n", 4) < 0) {
                        stream = NULL;
                        return -EIO;
                }
                er_timer_start(loop, &stream_timer, 0, stream_step);
                return 0;
        }
        if (!strcmp(req->path, "/v1/short")) {
                s = er_ctl_resp_stream_begin(resp, 201, NULL, NULL, NULL);
                if (!s || er_ctl_stream_write(s, "[1,", 3) < 0 ||
                    er_ctl_stream_write(s, "2]", 2) < 0)
                        return -EIO;
                er_ctl_stream_end(s);
                return 0;
        }
        if (!strcmp(req->path, "/v1/fail"))
                return -EIO;
        if (!strcmp(req->path, "/v1/none"))
                return 0; /* unfilled: 500 */
        if (!strcmp(req->path, "/v1/text"))
                return er_ctl_resp_string(resp, 200, "text/plain", req->query);
        return er_ctl_resp_error(resp, 404, "no such path '%s'", req->path);
}

static void cleanup(void)
{
        er_ctl_free(ctl);
        er_loop_free(loop);
}

static void start_server(void)
{
        char dir[] = "/tmp/fuzz_ctl.XXXXXX", path[64];
        struct er_ctl_opts o = {0};

        if (!mkdtemp(dir))
                die("mkdtemp");
        snprintf(path, sizeof(path), "%s/control.sock", dir);
        if (er_loop_new(&loop) < 0)
                die("er_loop_new");
        er_timer_init(&stream_timer);
        o.path = path;
        o.handle = handle;
        o.max_request = 4096;
        o.timeout_us = SERVER_TIMEOUT_US;
        if (er_ctl_new(loop, &o, &ctl) < 0)
                die("er_ctl_new");
        unlink(path);
        rmdir(dir);
        atexit(cleanup);
}

/* ---- the oracle: one well-formed response ---- */

struct check {
        int messages;
        bool close_hdr;
        char field[16];
        size_t field_len;
};

static int on_field(http_parser *p, const char *at, size_t len)
{
        struct check *k = p->data;

        k->field_len = len < sizeof(k->field) ? len : 0;
        memcpy(k->field, at, k->field_len);
        return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
        struct check *k = p->data;

        if (k->field_len == 10 && !strncmp(k->field, "Connection", 10) && len == 5 &&
            !strncmp(at, "close", 5))
                k->close_hdr = true;
        return 0;
}

static int on_complete(http_parser *p)
{
        struct check *k = p->data;

        k->messages++;
        return 0;
}

static void check_response(const char *out, size_t len)
{
        static const http_parser_settings s = {
            .on_header_field = on_field,
            .on_header_value = on_value,
            .on_message_complete = on_complete,
        };
        struct check k = {0};
        http_parser p;
        size_t n;

        if (!len)
                return; /* closed without an answer: a cut request */
        http_parser_init(&p, HTTP_RESPONSE);
        p.data = &k;
        n = http_parser_execute(&p, &s, out, len);
        if (n == len && HTTP_PARSER_ERRNO(&p) == HPE_OK)
                http_parser_execute(&p, &s, NULL, 0);
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK || n != len || k.messages != 1 || !k.close_hdr ||
            p.status_code < 200 || p.status_code > 599) {
                fprintf(stderr, "fuzz_ctl: bad response (%s, %d messages): '%.*s'\n",
                        http_errno_name(HTTP_PARSER_ERRNO(&p)), k.messages,
                        (int)(len > 400 ? 400 : len), out);
                abort();
        }
}

/* ---- one input ---- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char out[MAX_RESPONSE];
        uint64_t deadline = er_now_us() + INPUT_DEADLINE_US;
        size_t off = 0, olen = 0;
        bool shut = false, closed = false;
        int sv[2];
        ssize_t n;

        if (!ctl)
                start_server();
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                die("socketpair");
        if (er_ctl_adopt_fd(ctl, sv[0]) < 0)
                die("er_ctl_adopt_fd");
        while (!closed) {
                /* feed what the socket takes; the server may stop reading */
                while (off < size) {
                        n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);
                        if (n < 0) {
                                if (errno == EAGAIN)
                                        break;
                                off = size; /* it answered early and closed */
                                break;
                        }
                        off += (size_t)n;
                }
                if (off == size && !shut) {
                        shutdown(sv[1], SHUT_WR);
                        shut = true;
                }
                if (er_loop_run_once(loop, 1000) < 0)
                        die("er_loop_run_once");
                for (;;) {
                        n = recv(sv[1], out + olen, sizeof(out) - olen, 0);
                        if (n > 0) {
                                olen += (size_t)n;
                                if (olen == sizeof(out))
                                        die("response too long");
                                continue;
                        }
                        if (n == 0 || errno != EAGAIN)
                                closed = true; /* EOF, or ECONNRESET: unread input */
                        break;
                }
                if (er_now_us() > deadline)
                        die("the server did not close the connection");
        }
        close(sv[1]);
        /* a final iteration runs the stream's timer if one is left */
        er_loop_run_once(loop, 0);
        if (er_ctl_nconns(ctl) != 0 || stream || er_timer_active(&stream_timer))
                die("a connection outlived its input");
        check_response(out, olen);
        return 0;
}
