/* test_http: the http readiness check on the loop, against a tiny HTTP
 * server forked from the test (exact statuses, requests recorded).
 *
 * The server child listens on 127.0.0.1 with a port from bind(0), answers
 * each request as its plan says, appends every request it reads to a log
 * file, and writes a byte to a pipe for each one, which the test watches on
 * the loop to act mid-request.  Each test kills its child by pid. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks/runner.h"
#include "checks/http.h"
#include "checks/http_plain.h"
#include "check_parse.h"
#include "proc/loop.h"

/* Every test finishes well within this; a hang fails by SIGALRM. */
#define TEST_DEADLINE_S 30
#define MISSING_LIBRARY "libcurl-envrun-missing.so.4"

/* ---- the server child ----------------------------------------------------- */

struct plan {
        int status[8]; /* answers to requests 1, 2, ...; the last one repeats;
                        * 0: close the connection without a word */
        int n;
        bool hang;     /* read requests, never answer */
        int hold;      /* answer nothing until this many requests are in */
};

struct srv {
        pid_t pid;
        int port;
        int note;      /* read end: one byte per request the child read */
        int log;       /* an unlinked file: every request, as read, then "\n--\n" */
};

static void put_all(int fd, const char *buf, size_t len)
{
        while (len) {
                ssize_t n = write(fd, buf, len);
                if (n <= 0) {
                        if (n < 0 && errno == EINTR)
                                continue;
                        return;
                }
                buf += n;
                len -= (size_t)n;
        }
}

/* Reads one request (headers and a Content-Length body) into buf. */
static size_t read_request(int fd, char *buf, size_t cap)
{
        size_t len = 0, want = 0;
        char *end = NULL;

        while (len < cap - 1) {
                ssize_t n = read(fd, buf + len, cap - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t)n;
                buf[len] = '\0';
                if (!end && (end = strstr(buf, "\r\n\r\n"))) {
                        const char *cl = strcasestr(buf, "\r\ncontent-length:");
                        want = (size_t)(end + 4 - buf);
                        if (cl && cl < end)
                                want += strtoul(cl + 17, NULL, 10);
                }
                if (end && len >= want)
                        break;
        }
        buf[len] = '\0';
        return len;
}

/* The server's port, for redirects that name it (set before the fork). */
static int srv_port;

static void answer_with(int fd, const char *req, int status, const char *location)
{
        char resp[512], extra[300] = "";
        bool head = !strncmp(req, "HEAD ", 5);
        const char *body = location ? "moved" : "ok";
        int n;

        if (!status) {
                close(fd);
                return;
        }
        if (location)
                snprintf(extra, sizeof(extra), "Location: %s\r\n", location);
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d Test\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
                     status, strlen(body), extra, head ? "" : body);
        put_all(fd, resp, (size_t)n);
        close(fd);
}

static void answer(int fd, const char *req, int status)
{
        answer_with(fd, req, status, NULL);
}

/* Paths with answers of their own, whatever the plan: redirects of every
 * kind, an interim response, a reply that is not HTTP.  True when req
 * was one of them (answered and closed). */
static bool answer_path(int fd, const char *req)
{
        static const struct {
                const char *path; /* "/x " with the space: the whole path */
                int status;
                const char *location;
        } paths[] = {
                {"/redirect ", 302, "/ok"},   {"/rel/deeper/x ", 302, "../../ok?from=rel#frag"},
                {"/loop ", 302, "/loop"},     {"/see-other ", 303, "/ok"},
                {"/temporary ", 307, "/ok"},  {"/moved ", 301, "ok"},
                {"/no-location ", 302, NULL},
        };
        const char *sp = strchr(req, ' ');
        char where[128];

        if (!sp)
                return false;
        sp++;
        if (!strncmp(sp, "/ok ", 4) || !strncmp(sp, "/ok?", 4)) {
                answer(fd, req, 200);
                return true;
        }
        if (!strncmp(sp, "/away ", 6)) {
                /* 127.1 is 127.0.0.1 to libcurl, a name to the plain client */
                snprintf(where, sizeof(where), "http://127.1:%d/ok", srv_port);
                answer_with(fd, req, 302, where);
                return true;
        }
        if (!strncmp(sp, "/continue ", 10)) {
                put_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                answer(fd, req, 200);
                return true;
        }
        if (!strncmp(sp, "/garbage ", 9)) {
                put_all(fd, "NOT HTTP AT ALL\r\n\r\n", 19);
                close(fd);
                return true;
        }
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                if (strncmp(sp, paths[i].path, strlen(paths[i].path)))
                        continue;
                if (paths[i].location)
                        answer_with(fd, req, paths[i].status, paths[i].location);
                else
                        answer(fd, req, paths[i].status);
                return true;
        }
        return false;
}

static void serve(int lfd, int logfd, int note, const struct plan *p)
{
        static char req[16384];
        int held[64], nheld = 0, k = 0;

        signal(SIGPIPE, SIG_IGN);
        for (;;) {
                int fd = accept(lfd, NULL, NULL);
                int status;
                size_t len;

                if (fd < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                len = read_request(fd, req, sizeof(req));
                put_all(logfd, req, len);
                put_all(logfd, "\n--\n", 4);
                put_all(note, "x", 1);
                if (answer_path(fd, req))
                        continue;
                if (p->n)
                        status = p->status[k < p->n ? k : p->n - 1], k++;
                else
                        status = 500;
                if (p->hang || p->hold) {
                        if (nheld < 64)
                                held[nheld++] = fd;
                        if (p->hang || nheld < p->hold)
                                continue;
                        for (int i = 0; i < nheld; i++)
                                answer(held[i], "", status);
                        nheld = 0;
                        continue;
                }
                answer(fd, req, status);
        }
}

static void srv_start(struct srv *s, const struct plan *p)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t salen = sizeof(sa);
        char path[] = "/tmp/envrun-http-XXXXXX";
        int lfd, note[2];

        /* Unlinked at once: nothing is left behind, even by a failed test. */
        s->log = mkostemp(path, O_CLOEXEC | O_APPEND);
        assert_true(s->log >= 0);
        assert_int_equal(unlink(path), 0);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(lfd >= 0);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 64), 0);
        assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
        s->port = ntohs(sa.sin_port);
        srv_port = s->port;
        assert_int_equal(pipe2(note, O_CLOEXEC), 0);
        s->pid = fork();
        assert_true(s->pid >= 0);
        if (s->pid == 0) {
                /* Dies with the test, even when a failed assert skips srv_stop. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(note[0]);
                serve(lfd, s->log, note[1], p);
                _exit(0);
        }
        close(lfd);
        close(note[1]);
        s->note = note[0];
        assert_int_equal(fcntl(s->note, F_SETFL, O_NONBLOCK), 0);
}

static void srv_stop(struct srv *s)
{
        kill(s->pid, SIGKILL);
        assert_int_equal(waitpid(s->pid, NULL, 0), s->pid);
        close(s->note);
        close(s->log);
}

/* What the server read so far (a static buffer). */
static const char *srv_log(const struct srv *s)
{
        static char buf[65536];
        ssize_t n = pread(s->log, buf, sizeof(buf) - 1, 0);

        assert_true(n >= 0);
        buf[n] = '\0';
        return buf;
}

/* A port on which nothing listens: bound (so nobody else takes it while
 * *ret_fd stays open), never listening, so connects are refused. */
static int dead_port(int *ret_fd)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t salen = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
        *ret_fd = fd;
        return ntohs(sa.sin_port);
}

/* ---- checks on a loop ----------------------------------------------------- */

struct probe {
        struct er_loop *loop;
        struct er_check *check;
        struct er_check_env env;
        struct er_check_run run;
        bool done;
        enum er_check_result result;
        char msg[256];
        unsigned failed;          /* attempt_failed calls */
        unsigned stop_after;      /* stop after this many failed attempts (0: never) */
        char last_why[256];
};

/* A check parsed from environment.yml text, say "{http: URL, status: 404}". */
#define check_parse(...) check_parse_in("/", __VA_ARGS__)

static void on_done(struct er_check_run *run, enum er_check_result result, const char *msg)
{
        struct probe *p = run->owner;

        assert_false(p->done); /* at most once per start */
        p->done = true;
        p->result = result;
        snprintf(p->msg, sizeof(p->msg), "%s", msg ? msg : "");
        er_runner_stop(run); /* as sched does */
        er_loop_stop(p->loop);
}

static void on_attempt_failed(struct er_check_run *run, const char *why)
{
        struct probe *p = run->owner;

        p->failed++;
        snprintf(p->last_why, sizeof(p->last_why), "%s", why);
        if (p->stop_after && p->failed >= p->stop_after) {
                er_runner_stop(run);
                er_loop_stop(p->loop);
        }
}

static void probe_init(struct probe *p, struct er_loop *loop, struct er_check *c)
{
        memset(p, 0, sizeof(*p));
        p->loop = loop;
        p->check = c;
        p->env.service = "web";
        er_runner_init(&p->run, c, loop, &p->env, p, on_done);
        p->run.attempt_failed = on_attempt_failed;
}

static void probe_fini(struct probe *p)
{
        er_runner_release(&p->run);
        er_check_free(p->check);
}

static void on_guard(struct er_loop *loop, struct er_timer *t)
{
        fail_msg("the loop did not finish in time");
}

/* Runs the loop until something stops it, with a deadline. */
static void run_loop(struct er_loop *loop)
{
        struct er_timer guard;

        er_timer_init(&guard);
        assert_int_equal(er_timer_start(loop, &guard, 10u * 1000000u, on_guard), 0);
        assert_int_equal(er_loop_run(loop), 0);
        er_timer_stop(loop, &guard);
}

/* Starts the check and runs the loop until it is done. */
static void probe_run(struct probe *p, bool once)
{
        assert_int_equal(er_runner_start(&p->run, once), 0);
        /* It may be done already (er_loop_run would not see that stop). */
        if (!p->done)
                run_loop(p->loop);
}

/* One check, start to end: the result and its message. */
static enum er_check_result check_once(struct er_loop *loop, bool once, char *msg, size_t len,
                                       unsigned *ret_attempts, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));

static enum er_check_result check_once(struct er_loop *loop, bool once, char *msg, size_t len,
                                       unsigned *ret_attempts, const char *fmt, ...)
{
        struct probe p;
        char spec[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(spec, sizeof(spec), fmt, ap);
        va_end(ap);
        probe_init(&p, loop, check_parse("%s", spec));
        probe_run(&p, once);
        assert_true(p.done);
        if (msg)
                snprintf(msg, len, "%s", p.msg);
        if (ret_attempts)
                *ret_attempts = p.run.attempts;
        probe_fini(&p);
        return p.result;
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static bool mapped(const char *name)
{
        FILE *f = fopen("/proc/self/maps", "re");
        char line[1024];
        bool found = false;

        assert_non_null(f);
        while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, name) != NULL;
        fclose(f);
        return found;
}

static int setup(void **state)
{
        struct er_loop *loop = NULL;

        alarm(TEST_DEADLINE_S);
        assert_int_equal(er_loop_new(&loop), 0);
        *state = loop;
        return 0;
}

static int teardown(void **state)
{
        struct er_loop *loop = *state;

        /* Every client was freed with its last check. */
        assert_null(er_http_of(loop));
        er_loop_free(loop);
        alarm(0);
        return 0;
}

/* ---- tests ------------------------------------------------------------- */

/* libcurl is loaded by the first request that needs it, not before: a
 * plain URL never loads it, a URL with a host name does; without it that
 * check fails at once, saying why.  Runs after every plain test. */
static void test_loaded_on_first_use(void **state)
{
        struct er_loop *loop = *state;
        struct plan plan = {.status = {200}, .n = 1};
        struct srv s;
        char msg[256];
        unsigned attempts;

        assert_false(er_http_loaded());
        assert_false(mapped("libcurl"));

        assert_int_equal(er_http_set_library(MISSING_LIBRARY), 0);
        srv_start(&s, &plan);
        /* 127.0.0.1 and localhost need no libcurl */
        assert_int_equal(check_once(loop, false, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/'}", s.port),
                         ER_CHECK_READY);
        assert_int_equal(check_once(loop, false, NULL, 0, NULL,
                                    "{http: 'http://LocalHost:%d/'}", s.port),
                         ER_CHECK_READY);
        assert_false(er_http_loaded());
        /* 127.1 is a name to envrun (libcurl reads it as 127.0.0.1) */
        assert_int_equal(check_once(loop, false, msg, sizeof(msg), &attempts,
                                    "{http: 'http://127.1:%d/'}", s.port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "http checks need libcurl (" MISSING_LIBRARY
                                 ": cannot open shared object file: No such file or directory)");
        assert_int_equal(attempts, 1);
        assert_false(er_http_loaded());
        assert_int_equal(er_http_set_library(NULL), 0);

        assert_int_equal(check_once(loop, false, NULL, 0, NULL,
                                    "{http: 'http://127.1:%d/'}", s.port),
                         ER_CHECK_READY);
        assert_true(er_http_loaded());
        assert_true(mapped("libcurl.so.4"));
        assert_int_equal(er_http_set_library(MISSING_LIBRARY), -EBUSY);
        assert_non_null(strstr(srv_log(&s), "GET / HTTP/1.1\r\n"));
        srv_stop(&s);
}

/* A plain request redirected to a URL it cannot serve hands it to
 * libcurl, which follows it with the time and hops left. */
static void test_handoff_to_libcurl(void **state)
{
        struct plan plan = {.status = {500}, .n = 1};
        struct srv s;

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/away', follow_redirects: true}",
                                    s.port),
                         ER_CHECK_READY);
        assert_non_null(strstr(srv_log(&s), "GET /away HTTP/1.1\r\n"));
        assert_non_null(strstr(srv_log(&s), "GET /ok HTTP/1.1\r\n"));
        assert_true(er_http_loaded());
        srv_stop(&s);
}

static void test_200_ready(void **state)
{
        struct plan plan = {.status = {200}, .n = 1};
        struct srv s;
        unsigned attempts = 99;

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, false, NULL, 0, &attempts,
                                    "{http: 'http://127.0.0.1:%d/health'}", s.port),
                         ER_CHECK_READY);
        assert_int_equal(attempts, 0);
        assert_non_null(strstr(srv_log(&s), "GET /health HTTP/1.1\r\n"));
        /* Once (the AlreadyRunning probe) passes too. */
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://localhost:%d/health'}", s.port),
                         ER_CHECK_READY);
        srv_stop(&s);
}

static void test_status_regex(void **state)
{
        struct plan plan = {.status = {404}, .n = 1};
        struct srv s;
        char msg[256];

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/', status: '^(200|404)$'}",
                                    s.port),
                         ER_CHECK_READY);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/', status: '4\\d\\d'}", s.port),
                         ER_CHECK_READY);
        /* Anchored: '40' must match the whole code. */
        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/', status: '40'}", s.port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "status 404, want 40");
        srv_stop(&s);
}

static void test_status_mismatch(void **state)
{
        struct plan p204 = {.status = {204}, .n = 1}, p503 = {.status = {503}, .n = 1};
        struct srv s;
        char msg[256];

        srv_start(&s, &p204);
        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/', status: 200}", s.port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "status 204, want 200");
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/', status: 204}", s.port),
                         ER_CHECK_READY);
        srv_stop(&s);

        srv_start(&s, &p503);
        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/'}", s.port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "status 503, want 2\\d\\d");
        srv_stop(&s);
}

/* A server that hangs up without answering: curl's words, lower case. */
static void test_empty_reply(void **state)
{
        struct plan plan = {.status = {0}, .n = 1};
        struct srv s;
        char msg[256];

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/'}", s.port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "empty reply from server");
        srv_stop(&s);
}

/* Not ready while the server says 503; ready at its first 200. */
static void test_503_then_200(void **state)
{
        struct plan plan = {.status = {503, 503, 503, 503, 200}, .n = 5};
        struct srv s;
        struct probe p;

        srv_start(&s, &plan);
        probe_init(&p, *state, check_parse("{http: 'http://127.0.0.1:%d/'}", s.port));
        probe_run(&p, false);
        assert_true(p.done);
        assert_int_equal(p.result, ER_CHECK_READY);
        assert_int_equal(p.run.attempts, 4);
        assert_int_equal(p.failed, 4);
        assert_string_equal(p.last_why, "status 503, want 2\\d\\d");
        probe_fini(&p);
        srv_stop(&s);
}

static void test_nothing_listening(void **state)
{
        struct probe p;
        char msg[256];
        int fd, port = dead_port(&fd);

        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/'}", port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "connection refused");

        /* Not once: it keeps trying. */
        probe_init(&p, *state, check_parse("{http: 'http://127.0.0.1:%d/'}", port));
        p.stop_after = 3;
        probe_run(&p, false);
        assert_false(p.done);
        assert_int_equal(p.failed, 3);
        assert_string_equal(p.last_why, "connection refused");
        probe_fini(&p);
        close(fd);
}

static void test_method_header_body(void **state)
{
        struct plan plan = {.status = {200}, .n = 1};
        struct srv s;
        const char *log;

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/p', method: POST, "
                                    "headers: {X-Probe: yes, Content-Type: text/plain}, "
                                    "body: 'ping'}",
                                    s.port),
                         ER_CHECK_READY);
        log = srv_log(&s);
        assert_non_null(strstr(log, "POST /p HTTP/1.1\r\n"));
        assert_non_null(strstr(log, "\r\nX-Probe: yes\r\n"));
        assert_non_null(strstr(log, "\r\nContent-Type: text/plain\r\n"));
        assert_non_null(strstr(log, "\r\nContent-Length: 4\r\n"));
        assert_non_null(strstr(log, "\r\n\r\nping\n--\n"));
        assert_null(strcasestr(log, "\r\nExpect:"));

        /* HEAD: the server sends no body, the check must not wait for one. */
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/h', method: HEAD, "
                                    "headers: {Authorization: 'Bearer t0k'}}",
                                    s.port),
                         ER_CHECK_READY);
        log = srv_log(&s);
        assert_non_null(strstr(log, "HEAD /h HTTP/1.1\r\n"));
        assert_non_null(strstr(log, "\r\nAuthorization: Bearer t0k\r\n"));

        /* A method of its own with a body, and an empty header. */
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/q', method: PURGE, "
                                    "headers: {X-Empty: ''}, body: '{\"a\": 1}'}",
                                    s.port),
                         ER_CHECK_READY);
        log = srv_log(&s);
        assert_non_null(strstr(log, "PURGE /q HTTP/1.1\r\n"));
        assert_non_null(strstr(log, "\r\nX-Empty:\r\n"));
        assert_non_null(strstr(log, "\r\n\r\n{\"a\": 1}\n--\n"));
        srv_stop(&s);
}

static void test_redirects(void **state)
{
        struct plan plan = {.status = {500}, .n = 1};
        struct srv s;
        char msg[256];

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/redirect'}", s.port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "status 302, want 2\\d\\d");
        assert_null(strstr(srv_log(&s), "GET /ok "));
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/redirect', status: 302}", s.port),
                         ER_CHECK_READY);

        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/redirect', "
                                    "follow_redirects: true}",
                                    s.port),
                         ER_CHECK_READY);
        assert_non_null(strstr(srv_log(&s), "GET /ok HTTP/1.1\r\n"));
        srv_stop(&s);
}

/* Occurrences of needle in the server's log. */
static int log_count(const struct srv *s, const char *needle)
{
        const char *p = srv_log(s);
        int n = 0;

        while ((p = strstr(p, needle)))
                n++, p++;
        return n;
}

/* Redirects of every kind, followed the same way by both clients. */
static void test_redirect_kinds(void **state)
{
        struct plan plan = {.status = {500}, .n = 1};
        struct srv s;
        char msg[256];

        srv_start(&s, &plan);
        /* "../../ok?from=rel#frag" from /rel/deeper/x */
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/rel/deeper/x', "
                                    "follow_redirects: true}",
                                    s.port),
                         ER_CHECK_READY);
        assert_non_null(strstr(srv_log(&s), "GET /ok?from=rel HTTP/1.1\r\n"));
        /* 301 to a relative "ok" */
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://localhost:%d/moved', follow_redirects: true}",
                                    s.port),
                         ER_CHECK_READY);
        /* a redirect without Location is the final answer */
        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/no-location', "
                                    "follow_redirects: true}",
                                    s.port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "status 302, want 2\\d\\d");
        /* a loop ends after 10 redirects: 11 requests */
        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/loop', follow_redirects: true}",
                                    s.port),
                         ER_CHECK_FAILED);
        assert_string_equal(msg, "maximum (10) redirects followed");
        assert_int_equal(log_count(&s, "GET /loop HTTP/1.1"), 11);
        srv_stop(&s);
}

/* The check's own headers replace the client's, once each. */
static void test_header_override(void **state)
{
        struct plan plan = {.status = {200}, .n = 1};
        struct srv s;
        const char *log;

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/', headers: "
                                    "{User-Agent: probe/1, Host: example.test, Accept: text/plain}}",
                                    s.port),
                         ER_CHECK_READY);
        log = srv_log(&s);
        assert_non_null(strstr(log, "\r\nUser-Agent: probe/1\r\n"));
        assert_non_null(strstr(log, "\r\nHost: example.test\r\n"));
        assert_non_null(strstr(log, "\r\nAccept: text/plain\r\n"));
        assert_int_equal(log_count(&s, "User-Agent:"), 1);
        assert_int_equal(log_count(&s, "Host:"), 1);
        assert_int_equal(log_count(&s, "Accept:"), 1);
        srv_stop(&s);
}

/* A 100 Continue before the answer is not the answer. */
static void test_interim_response(void **state)
{
        struct plan plan = {.status = {500}, .n = 1};
        struct srv s;

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/continue'}", s.port),
                         ER_CHECK_READY);
        srv_stop(&s);
}

/* The plain client's own: what a redirect does to the method and body,
 * and a reply that is not HTTP. */
static void test_plain_redirect_methods(void **state)
{
        struct plan plan = {.status = {500}, .n = 1};
        struct srv s;
        char msg[256];
        const char *log;

        srv_start(&s, &plan);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/see-other', method: POST, "
                                    "body: b0dy, follow_redirects: true}",
                                    s.port),
                         ER_CHECK_READY);
        log = srv_log(&s);
        assert_non_null(strstr(log, "POST /see-other HTTP/1.1\r\n"));
        assert_non_null(strstr(log, "GET /ok HTTP/1.1\r\n"));
        assert_int_equal(log_count(&s, "b0dy"), 1);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/temporary', method: PUT, "
                                    "body: k33p, follow_redirects: true}",
                                    s.port),
                         ER_CHECK_READY);
        assert_non_null(strstr(srv_log(&s), "PUT /ok HTTP/1.1\r\n"));
        assert_int_equal(log_count(&s, "k33p"), 2);
        assert_int_equal(check_once(*state, true, NULL, 0, NULL,
                                    "{http: 'http://127.0.0.1:%d/see-other', method: HEAD, "
                                    "follow_redirects: true}",
                                    s.port),
                         ER_CHECK_READY);
        assert_non_null(strstr(srv_log(&s), "HEAD /ok HTTP/1.1\r\n"));

        assert_int_equal(check_once(*state, true, msg, sizeof(msg), NULL,
                                    "{http: 'http://127.0.0.1:%d/garbage'}", s.port),
                         ER_CHECK_FAILED);
        assert_non_null(strstr(msg, "malformed response: "));
        srv_stop(&s);
}

/* A server that never answers: the attempt ends at the service's deadline
 * when that comes before interval x 10 (at least 1 s). */
static void test_attempt_timeout(void **state)
{
        struct plan plan = {.hang = true};
        struct srv s;
        struct probe p;
        uint64_t t0;
        unsigned ms = 0;
        int n = 0;

        srv_start(&s, &plan);
        probe_init(&p, *state, check_parse("{http: 'http://127.0.0.1:%d/'}", s.port));
        p.env.deadline_us = er_now_us() + 200000;
        t0 = er_now_us();
        probe_run(&p, true);
        assert_true(p.done);
        assert_int_equal(p.result, ER_CHECK_FAILED);
        /* The time left when the attempt began: 200 ms less a little. */
        assert_int_equal(sscanf(p.msg, "no response within %u ms%n", &ms, &n), 1);
        assert_int_equal((size_t)n, strlen(p.msg));
        assert_in_range(ms, 100, 200);
        assert_true(er_now_us() - t0 >= 190000);
        assert_true(er_now_us() - t0 < 900000);
        probe_fini(&p);
        srv_stop(&s);
}

/* Stopping a check while its request is in flight. */
struct mid {
        struct probe *probes;
        size_t n;
        unsigned want, seen;    /* requests the server read */
        struct er_http *client; /* the loop's client when they were in */
};

struct note_io {
        struct er_io io;
        struct mid *m;
};

static void on_note(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct mid *m = er_container_of(io, struct note_io, io)->m;
        char buf[64];
        ssize_t n;

        while ((n = read(io->fd, buf, sizeof(buf))) > 0)
                m->seen += (unsigned)n;
        if (m->seen < m->want)
                return;
        m->client = er_http_of(loop);
        for (size_t i = 0; i < m->n; i++)
                er_runner_stop(&m->probes[i].run);
        er_io_stop(loop, io);
        er_loop_stop(loop);
}

static void test_stop_mid_request(void **state)
{
        struct er_loop *loop = *state;
        struct plan ok = {.status = {200}, .n = 1}, hang = {.hang = true};
        struct srv s, h;
        struct probe p;
        struct mid m = {.probes = &p, .n = 1, .want = 1};
        struct note_io nio = {.m = &m};
        int before;

        /* Load libcurl first: what it keeps for the process is no leak. */
        srv_start(&s, &ok);
        assert_int_equal(check_once(loop, false, NULL, 0, NULL, "{http: 'http://127.0.0.1:%d/'}",
                                    s.port),
                         ER_CHECK_READY);
        srv_stop(&s);

        srv_start(&h, &hang);
        before = count_fds();
        probe_init(&p, loop, check_parse("{http: 'http://127.0.0.1:%d/'}", h.port));
        er_io_init(&nio.io);
        assert_int_equal(er_io_start(loop, &nio.io, h.note, EPOLLIN, on_note), 0);
        probe_run(&p, false);
        assert_int_equal(m.seen, 1);
        assert_non_null(m.client); /* the request was in flight */
        assert_false(p.done);
        /* The socket, watchers, timer and multi handle are gone. */
        assert_null(er_http_of(loop));
        assert_int_equal(count_fds(), before);
        /* Nothing is left on the loop: er_loop_run returns at once (a
         * watcher or timer left behind would hang until SIGALRM). */
        assert_int_equal(er_loop_run(loop), 0);
        probe_fini(&p);
        srv_stop(&h);
}

/* Two checks at once share the loop's client; the server holds its answer
 * until both requests are in, so both are in flight together. */
static void test_two_checks_share(void **state)
{
        struct er_loop *loop = *state;
        struct plan plan = {.status = {200}, .n = 1, .hold = 2};
        struct srv s;
        struct probe p[2];
        struct er_http *a, *b;
        char err[256];
        int before;

        /* One client per loop, counted. */
        assert_int_equal(er_http_ref(loop, &a, err, sizeof(err)), 0);
        assert_int_equal(er_http_ref(loop, &b, err, sizeof(err)), 0);
        assert_ptr_equal(a, b);
        assert_ptr_equal(er_http_of(loop), a);
        er_http_unref(a);
        assert_ptr_equal(er_http_of(loop), a);
        er_http_unref(b);
        assert_null(er_http_of(loop));

        srv_start(&s, &plan);
        before = count_fds();
        for (int i = 0; i < 2; i++) {
                probe_init(&p[i], loop,
                           check_parse("{http: 'http://127.0.0.1:%d/%d'}", s.port, i));
                assert_int_equal(er_runner_start(&p[i].run, false), 0);
        }
        /* on_done stops the loop at the first READY: run until both are. */
        while (!p[0].done || !p[1].done)
                run_loop(loop);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(p[i].result, ER_CHECK_READY);
                assert_int_equal(p[i].run.attempts, 0);
        }
        assert_non_null(strstr(srv_log(&s), "GET /0 "));
        assert_non_null(strstr(srv_log(&s), "GET /1 "));
        assert_null(er_http_of(loop));
        assert_int_equal(count_fds(), before);
        for (int i = 0; i < 2; i++)
                probe_fini(&p[i]);
        srv_stop(&s);
}

/* Which URLs the plain client takes, and what it makes of them. */
static void test_plain_urls(void **state)
{
        static const struct {
                const char *url, *authority, *path;
                size_t n_addrs;
        } ok[] = {
                {"http://127.0.0.1:8080/health?x=1", "127.0.0.1:8080", "/health?x=1", 1},
                {"HTTP://127.0.0.1", "127.0.0.1", "/", 1},
                {"http://127.0.0.1:80/a#frag", "127.0.0.1", "/a", 1},
                {"http://127.0.0.1:/", "127.0.0.1", "/", 1},
                {"http://127.0.0.1?q", "127.0.0.1", "/?q", 1},
                {"http://[::1]:81", "[::1]:81", "/", 1},
                {"http://localhost:5432/x/", "localhost:5432", "/x/", 2},
        };
        static const char *const curl_only[] = {
                "https://127.0.0.1/", "http://db:5432/", "http://127.1/",
                "http://u:p@127.0.0.1/", "http://127.0.0.1:0/", "http://127.0.0.1:99999/",
                "http://127.0.0.1:8o/", "http://127.0.0.1/a b", "http://[fe80::1%25eth0]/",
                "http:///x", "http://[::1/", "http://127.0.0.1/\xc3\xa9",
        };
        struct er_hplain_url u;

        (void)state;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                assert_int_equal(er_hplain_url_parse(ok[i].url, &u), 0);
                assert_string_equal(u.authority, ok[i].authority);
                assert_string_equal(u.path, ok[i].path);
                assert_int_equal(u.n_addrs, ok[i].n_addrs);
                er_hplain_url_fini(&u);
        }
        for (size_t i = 0; i < sizeof(curl_only) / sizeof(curl_only[0]); i++) {
                if (er_hplain_url_parse(curl_only[i], &u) != -ENOTSUP)
                        fail_msg("'%s' should go to libcurl", curl_only[i]);
        }
}

static int setup_plain(void **state)
{
        er_http_set_plain(true);
        return setup(state);
}

/* A plain test never loads libcurl. */
static int teardown_plain(void **state)
{
        assert_false(er_http_loaded());
        return teardown(state);
}

static int setup_curl(void **state)
{
        er_http_set_plain(false);
        return setup(state);
}

#define PLAIN(t) cmocka_unit_test_setup_teardown(t, setup_plain, teardown_plain)
#define CURL(t) cmocka_unit_test_setup_teardown(t, setup_curl, teardown)
/* What both clients must do alike. */
#define BOTH(X)                                                                                   \
        X(test_200_ready), X(test_status_regex), X(test_status_mismatch), X(test_empty_reply),   \
            X(test_503_then_200), X(test_nothing_listening), X(test_method_header_body),          \
            X(test_redirects), X(test_redirect_kinds), X(test_header_override),                   \
            X(test_interim_response), X(test_attempt_timeout), X(test_stop_mid_request),          \
            X(test_two_checks_share)

int main(void)
{
        const struct CMUnitTest plain[] = {
                BOTH(PLAIN),
                PLAIN(test_plain_redirect_methods),
                PLAIN(test_plain_urls),
        };
        const struct CMUnitTest curl[] = {
                /* First: it sees the process before libcurl is loaded. */
                cmocka_unit_test_setup_teardown(test_loaded_on_first_use, setup_plain, teardown),
                cmocka_unit_test_setup_teardown(test_handoff_to_libcurl, setup_plain, teardown),
                BOTH(CURL),
        };
        int failed = cmocka_run_group_tests_name("plain", plain, NULL, NULL);

        return failed + cmocka_run_group_tests_name("libcurl", curl, NULL, NULL);
}
