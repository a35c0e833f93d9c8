/* Fuzz target for the response side of envrun's own HTTP client
 * (checks/http_plain.c): what a service under test answers an http check.
 * The input's first byte sets the request (bit 0: follow redirects; bits
 * 1-2: GET, HEAD, POST with a body, or GET with a body; bits 3-4: the
 * answer is written all at once or in pieces of 1, 16 or 256 bytes, one
 * loop iteration after each); the rest is the answer.  A request goes to
 * http://127.0.0.1:8080/a/b/c?q=1 through er_hplain_request on a real loop;
 * the server is this process, on a real TCP socket on 127.0.0.1, and
 * answers every connection it accepts with the same bytes (so a redirect
 * to itself is followed up to the limit).  The same bytes also go through
 * er_hplain_url_parse, the decoder of a Location that is followed.
 *
 * The harness's connect() stands in for libc's, to keep the target
 * hermetic whatever a Location names: every IPv4 address reaches the
 * harness's server (whatever the port: a redirect to "127.0.0.1:8080" is
 * the same on every run), every other address is refused at once.
 *
 * Oracles, each an abort():
 *   - the callback runs exactly once, from the loop, never from inside
 *     er_hplain_request, within 5 s;
 *   - it says a status (100-999) without error, or status 0 with a
 *     message, or a redirect handed on (a redirect status, an http:// or
 *     https:// URL without fragment, a method, 1-10 hops);
 *   - afterwards every socket of the request is closed (the lowest free
 *     fd is back where it was).
 * Built with libFuzzer (tests/fuzz/run http) or, for the test suite, with
 * replay_main.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/err.h"
#include "checks/http.h"
#include "checks/http_plain.h"
#include "proc/loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_DEADLINE_US (5u * 1000000u)
#define MAX_CONNS 16 /* 1 + 10 redirects, with room */

static struct er_loop *loop;
static int lfd = -1;
static struct sockaddr_in server_addr;

/* ---- the network: connect() ---- */

/* Every IPv4 address is the harness's server; anything else is refused.
 * http_plain.c is the only caller in this program. */
int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
        const struct sockaddr *sa = addr.__sockaddr__;

        if (len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET && lfd >= 0)
                return (int)syscall(SYS_connect, fd, (const struct sockaddr *)&server_addr,
                                    (socklen_t)sizeof(server_addr));
        if (sa->sa_family == AF_UNIX)
                return (int)syscall(SYS_connect, fd, sa, len);
        errno = ECONNREFUSED;
        return -1;
}

/* ---- the server ---- */

struct conn {
        int fd;
        size_t off;
        bool shut;
};

static struct conn conns[MAX_CONNS];
static size_t nconns;

static void die(const char *what)
{
        fprintf(stderr, "fuzz_http: %s\n", what);
        abort();
}

static void cleanup(void)
{
        er_close(&lfd);
        er_loop_free(loop);
}

static void setup(void)
{
        socklen_t len = sizeof(server_addr);
        int one = 1;

        if (er_loop_new(&loop) < 0)
                die("er_loop_new");
        server_addr.sin_family = AF_INET;
        server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0)
                die("socket");
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(lfd, (struct sockaddr *)&server_addr, sizeof(server_addr)) < 0 ||
            listen(lfd, MAX_CONNS) < 0 ||
            getsockname(lfd, (struct sockaddr *)&server_addr, &len) < 0)
                die("cannot listen on 127.0.0.1");
        atexit(cleanup);
}

/* One step of every connection: accept, drain what the client sent (a
 * request left unread would turn the close into a reset), write the next
 * piece, shut down writing after the last, close once the client has.
 * True while a connection has more to write. */
static bool serve(const uint8_t *data, size_t size, size_t piece)
{
        char buf[4096];
        bool more = false;
        ssize_t k;
        int fd;

        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                if (nconns == MAX_CONNS)
                        die("too many connections");
                conns[nconns++] = (struct conn){.fd = fd};
        }
        for (size_t i = 0; i < nconns; i++) {
                struct conn *c = &conns[i];
                bool eof = false;
                size_t n;

                if (c->fd < 0)
                        continue;
                while ((k = recv(c->fd, buf, sizeof(buf), 0)) > 0)
                        ;
                if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
                        eof = true;
                n = piece && piece < size - c->off ? piece : size - c->off;
                if (!eof && n) {
                        k = send(c->fd, data + c->off, n, MSG_NOSIGNAL);
                        if (k > 0)
                                c->off += (size_t)k;
                        else if (k < 0 && errno != EAGAIN && errno != EINTR)
                                c->off = size; /* the client is done */
                }
                if (!eof && c->off == size && !c->shut) {
                        shutdown(c->fd, SHUT_WR);
                        c->shut = true;
                }
                if (eof)
                        er_close(&c->fd);
                else if (!c->shut)
                        more = true;
        }
        return more;
}

static bool server_idle(void)
{
        for (size_t i = 0; i < nconns; i++)
                if (conns[i].fd >= 0)
                        return false;
        return true;
}

/* ---- the client ---- */

struct result {
        unsigned calls;
        bool in_request;
};

static void on_done(void *data, long status, const char *error, const struct er_hplain_next *next)
{
        struct result *res = data;

        if (res->in_request)
                die("callback from inside er_hplain_request");
        if (++res->calls != 1)
                die("callback called twice");
        if (next) {
                const char *u = next->url;
                if (error || !er_http_redirect(status) || !u || !next->method || next->hops < 1 ||
                    next->hops > ER_HPLAIN_MAX_REDIRS)
                        die("a bad redirect handed on");
                if ((strncasecmp(u, "http://", 7) && strncasecmp(u, "https://", 8)) ||
                    strchr(u, '#'))
                        die("a redirect handed on to a bad URL");
                return;
        }
        if (error) {
                if (status != 0 || !error[0])
                        die("an error with a status, or without a message");
                return;
        }
        if (status < 100 || status > 999)
                die("a status out of range");
}

static int lowest_free_fd(void)
{
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                die("open /dev/null");
        close(fd);
        return fd;
}

static void url_parse(const uint8_t *data, size_t size)
{
        struct er_hplain_url u;
        char *s = malloc(size + 1);

        if (!s)
                return;
        memcpy(s, data, size);
        s[size] = '\0';
        if (er_hplain_url_parse(s, &u) == 0) {
                if (!u.authority || !u.path || u.path[0] != '/' || strchr(u.path, '#') ||
                    u.n_addrs < 1 || u.n_addrs > ER_HPLAIN_MAX_ADDRS)
                        die("a bad parsed URL");
                er_hplain_url_fini(&u);
        }
        free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const methods[] = {"GET", "HEAD", "POST", "GET"};
        static const size_t pieces[] = {0, 1, 16, 256};
        struct er_http_opts o = {0};
        struct result res = {0};
        struct er_hplain_url u;
        uint64_t deadline;
        size_t piece;
        int free_fd, r;

        if (!loop)
                setup();
        if (size < 1)
                return 0;
        o.follow_redirects = data[0] & 1;
        o.method = methods[(data[0] >> 1) & 3];
        o.body = (data[0] >> 1) & 2 ? "a=1&b=2" : NULL;
        o.timeout_ms = 60000; /* never reached: the oracle's deadline is far shorter */
        piece = pieces[(data[0] >> 3) & 3];
        data++, size--;
        url_parse(data, size);

        free_fd = lowest_free_fd();
        nconns = 0;
        if (er_hplain_url_parse("http://127.0.0.1:8080/a/b/c?q=1", &u) < 0)
                die("er_hplain_url_parse");
        res.in_request = true;
        r = er_hplain_request(loop, &u, &o, on_done, &res, NULL);
        res.in_request = false;
        if (r < 0)
                die("er_hplain_request");
        deadline = er_now_us() + INPUT_DEADLINE_US;
        while (!res.calls || !server_idle()) {
                /* loopback delivers at once: no wait while there is more to write */
                bool more = serve(data, size, piece);
                if (er_loop_run_once(loop, more ? 0 : 1000) < 0)
                        die("er_loop_run_once");
                if (er_now_us() > deadline)
                        die(res.calls ? "the client did not close" : "no answer within 5 s");
        }
        if (lowest_free_fd() != free_fd)
                die("a socket was left open");
        return 0;
}
