/* The engine side of the tcp and unix checks, on a real er_loop against
 * real sockets on the loopback interface (nothing leaves the machine).
 *
 * Each test builds a check by hand, runs it through the generic runner
 * (er_runner_start) as the scheduler does, and waits on the loop with a
 * deadline until the check is done or has failed enough attempts.  The
 * done callback stops the check from inside, as sched.c does, so that a
 * kind touching its state after er_runner_attempt_done shows up under ASan
 * and valgrind. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks/runner.h"
#include "check_parse.h"
#include "proc/loop.h"

/* Everything here must finish well within this; a hang fails by SIGALRM. */
#define TEST_DEADLINE_S 120

/* How long a test waits for what it expects (generous: ASan, valgrind). */
#define WAIT_US (10 * 1000000ull)

/* An attempt in flight is given up after max(interval, 1 s) (check_tcp.c). */
#define ATTEMPT_MIN_US 1000000ull

#define MAX_FAILS 128

/* --- the resolver, interposed -------------------------------------------
 *
 * The test binary defines getaddrinfo, and a definition in the executable
 * wins over libc's for the code linked into it (check_tcp.c): this is how a
 * test gets a name that resolves to both ::1 and 127.0.0.1 on a machine
 * whose /etc/hosts maps localhost to 127.0.0.1 only, and a name that
 * resolves to nothing without asking a DNS server.  Names under .test are
 * answered from fake_hosts, names under .invalid have no address, the rest
 * go to the real getaddrinfo.  A fake answer chains the real answers for
 * each numeric address: glibc's freeaddrinfo frees a list node by node. */

static unsigned lookups; /* name lookups (calls without AI_NUMERICHOST) */

static const struct {
        const char *name;
        const char *addrs[2];
} fake_hosts[] = {
    {"v6-then-v4.test", {"::1", "127.0.0.1"}},
    {"v4-then-v6.test", {"127.0.0.1", "::1"}},
    /* A link-local address without a scope: connect() fails with
     * EINVAL before sending anything. */
    {"linklocal-then-v4.test", {"fe80::1", "127.0.0.1"}},
    {"linklocal.test", {"fe80::1", NULL}},
};

typedef int gai_fn(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static gai_fn *real_getaddrinfo(void)
{
        static gai_fn *real;

        if (!real)
                *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
        assert_non_null(real);
        return real;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && !strcmp(s + n - m, suffix);
}

static int fake_answer(size_t i, const char *service, struct addrinfo **res)
{
        const struct addrinfo hints = {
            .ai_family = AF_UNSPEC,
            .ai_socktype = SOCK_STREAM,
            .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
        };
        struct addrinfo *head = NULL, **tail = &head;

        for (size_t k = 0; k < 2 && fake_hosts[i].addrs[k]; k++) {
                int r = real_getaddrinfo()(fake_hosts[i].addrs[k], service, &hints, tail);
                if (r != 0) {
                        if (head)
                                freeaddrinfo(head);
                        return r;
                }
                while (*tail)
                        tail = &(*tail)->ai_next;
        }
        *res = head;
        return 0;
}

int getaddrinfo(const char *restrict node, const char *restrict service,
                const struct addrinfo *restrict hints, struct addrinfo **restrict res)
{
        if (!node || (hints && (hints->ai_flags & AI_NUMERICHOST)))
                return real_getaddrinfo()(node, service, hints, res);
        lookups++;
        for (size_t i = 0; i < sizeof(fake_hosts) / sizeof(fake_hosts[0]); i++)
                if (!strcmp(node, fake_hosts[i].name))
                        return fake_answer(i, service, res);
        if (ends_with(node, ".invalid") || ends_with(node, ".test"))
                return EAI_NONAME;
        return real_getaddrinfo()(node, service, hints, res);
}

/* --- the fixture --------------------------------------------------------- */

struct fx {
        struct er_loop *loop;
        struct er_check *check;
        struct er_check_env env; /* zeroed: the net kinds need nothing from it */
        struct er_check_run run;
        bool started;

        unsigned n_done;
        int fds_at_done; /* open fds when done() came, before it stopped the check */
        enum er_check_result result;
        char msg[160];
        uint64_t started_at, done_at;

        unsigned n_failed;
        int fds_at_failed; /* open fds at the last failed attempt */
        uint64_t failed_at[MAX_FAILS];
        uint64_t delay_at[MAX_FAILS]; /* the runner's delay before attempt i */
        char first_why[160], last_why[160];

        /* After act_after failed attempts, act() runs from a timer. */
        unsigned act_after;
        void (*act)(struct fx *fx);
        struct er_timer act_timer;
        uint64_t acted_at;

        int fds[8]; /* the test's own sockets */
        size_t nfds;
        char dir[64];   /* a temporary directory, "" if none */
        char path[100]; /* the unix kind's path, inside dir (sun_path is 108) */
        char port[8];   /* the tcp port under test */
};

static int setup(void **state)
{
        struct fx *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        assert_int_equal(er_loop_new(&fx->loop), 0);
        er_timer_init(&fx->act_timer);
        lookups = 0;
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fx *fx = *state;

        if (fx->started)
                er_runner_stop(&fx->run);
        er_timer_stop(fx->loop, &fx->act_timer);
        for (size_t i = 0; i < fx->nfds; i++)
                close(fx->fds[i]);
        if (fx->path[0])
                unlink(fx->path);
        if (fx->dir[0])
                rmdir(fx->dir);
        er_check_free(fx->check);
        er_loop_free(fx->loop);
        free(fx);
        return 0;
}

static int keep_fd(struct fx *fx, int fd)
{
        assert_true(fd >= 0);
        assert_true(fx->nfds < sizeof(fx->fds) / sizeof(fx->fds[0]));
        fx->fds[fx->nfds++] = fd;
        return fd;
}

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
        return n;
}

/* --- the check under test ------------------------------------------------ */

static void use_tcp(struct fx *fx, const char *host, uint64_t interval_us)
{
        char addr[300];

        /* A port of "${P}" is a deferred one (check_parse.h): it reaches the
         * check as written. */
        snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, fx->port);
        fx->check = check_parse_in("/", "{tcp: %s}", check_quote(addr));
        fx->check->interval_us = interval_us;
}

static void use_unix(struct fx *fx, uint64_t interval_us)
{
        fx->check = check_parse_in("/", "{unix: %s}", check_literal(fx->path));
        fx->check->interval_us = interval_us;
}

static void on_done(struct er_check_run *run, enum er_check_result result, const char *msg)
{
        struct fx *fx = run->owner;

        fx->n_done++;
        fx->done_at = er_now_us();
        fx->fds_at_done = count_fds();
        fx->result = result;
        snprintf(fx->msg, sizeof(fx->msg), "%s", msg ? msg : "");
        /* As sched.c does: the check is stopped from inside done(). */
        er_runner_stop(run);
}

static void on_act(struct er_loop *loop, struct er_timer *t)
{
        struct fx *fx = er_container_of(t, struct fx, act_timer);

        fx->acted_at = er_now_us();
        fx->act(fx);
}

static void on_failed(struct er_check_run *run, const char *why)
{
        struct fx *fx = run->owner;

        if (fx->n_failed < MAX_FAILS) {
                fx->failed_at[fx->n_failed] = er_now_us();
                fx->delay_at[fx->n_failed] = run->delay_us;
        }
        if (!fx->n_failed)
                snprintf(fx->first_why, sizeof(fx->first_why), "%s", why);
        snprintf(fx->last_why, sizeof(fx->last_why), "%s", why);
        fx->fds_at_failed = count_fds();
        fx->n_failed++;
        assert_int_equal(fx->n_failed, run->attempts);
        /* From a timer, as a server would start listening: at once, before
         * the runner's next attempt (its delay is at least 250 us). */
        if (fx->act && fx->n_failed == fx->act_after)
                assert_int_equal(er_timer_start(fx->loop, &fx->act_timer, 0, on_act), 0);
}

static void start(struct fx *fx, bool once)
{
        er_runner_init(&fx->run, fx->check, fx->loop, &fx->env, fx, on_done);
        fx->run.attempt_failed = on_failed;
        fx->started = true;
        fx->started_at = er_now_us();
        assert_int_equal(er_runner_start(&fx->run, once), 0);
}

/* Runs the loop until cond(fx) holds; fails after WAIT_US. */
static void wait_for(struct fx *fx, bool (*cond)(const struct fx *))
{
        uint64_t deadline = er_now_us() + WAIT_US;

        while (!cond(fx)) {
                uint64_t now = er_now_us();
                assert_true(now < deadline);
                assert_true(er_loop_run_once(fx->loop, (int64_t)(deadline - now)) >= 0);
        }
}

static bool is_done(const struct fx *fx)
{
        return fx->n_done > 0;
}

static bool failed_3(const struct fx *fx)
{
        return fx->n_done > 0 || fx->n_failed >= 3;
}

/* The check has left nothing in the loop: er_loop_run returns at once (a
 * forgotten attempt timer would hold it for a second, and fire into freed
 * state under ASan), and no callback came meanwhile. */
static void assert_idle(struct fx *fx)
{
        unsigned done = fx->n_done, failed = fx->n_failed;
        uint64_t t0 = er_now_us();

        assert_int_equal(er_loop_run(fx->loop), 0);
        assert_true(er_now_us() - t0 < ATTEMPT_MIN_US / 2);
        assert_int_equal(fx->n_done, done);
        assert_int_equal(fx->n_failed, failed);
        assert_null(fx->run.priv);
}

/* --- tcp sockets of the test ---------------------------------------------- */

static socklen_t loopback(int family, unsigned port, struct sockaddr_storage *ss)
{
        memset(ss, 0, sizeof(*ss));
        if (family == AF_INET) {
                struct sockaddr_in *a = (struct sockaddr_in *)ss;
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t)port);
                a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                return sizeof(*a);
        }
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        return sizeof(*a);
}

/* A socket bound to the loopback address of family, on port (0: any free
 * one), not listening: connects to it are refused until listen().  -errno
 * when the port is taken. */
static int tcp_bind(int family, unsigned port)
{
        struct sockaddr_storage ss;
        socklen_t len = loopback(family, port, &ss);
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

        assert_true(fd >= 0);
        if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
                e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static unsigned port_of(int fd)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
        if (ss.ss_family == AF_INET)
                return ntohs(((struct sockaddr_in *)&ss)->sin_port);
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* The port under test, reserved on family's loopback address; returns the
 * bound socket (fds[0]). */
static int tcp_reserve(struct fx *fx, int family)
{
        int fd = keep_fd(fx, tcp_bind(family, 0));
        snprintf(fx->port, sizeof(fx->port), "%u", port_of(fd));
        return fd;
}

/* Reserves the same port on both 127.0.0.1 (fds[0]) and ::1 (fds[1]). */
static void tcp_reserve_both(struct fx *fx)
{
        for (int tries = 0; tries < 50; tries++) {
                int v4 = tcp_bind(AF_INET, 0), v6;
                assert_true(v4 >= 0);
                v6 = tcp_bind(AF_INET6, port_of(v4));
                if (v6 >= 0) {
                        keep_fd(fx, v4);
                        keep_fd(fx, v6);
                        snprintf(fx->port, sizeof(fx->port), "%u", port_of(v4));
                        return;
                }
                close(v4);
        }
        fail_msg("no port free on both 127.0.0.1 and ::1");
}

static void act_listen(struct fx *fx)
{
        assert_int_equal(listen(fx->fds[0], 16), 0);
}

/* A listener on fds[0] whose accept queue is full: the kernel drops the
 * SYNs that come next, so a connect to it stays in flight.  One connection
 * fills a queue of backlog 0 (Linux accepts backlog + 1). */
static void tcp_fill_backlog(struct fx *fx)
{
        struct sockaddr_storage ss;
        socklen_t len;
        struct pollfd p = {.fd = fx->fds[0], .events = POLLIN};
        int c;

        assert_int_equal(listen(fx->fds[0], 0), 0);
        len = loopback(AF_INET, port_of(fx->fds[0]), &ss);
        c = keep_fd(fx, socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        assert_true(connect(c, (struct sockaddr *)&ss, len) == 0 || errno == EINPROGRESS);
        /* Wait (with a deadline) for the connection to reach the queue. */
        assert_int_equal(poll(&p, 1, (int)(WAIT_US / 1000)), 1);
}

/* --- tcp ------------------------------------------------------------------ */

static void test_tcp_ready_at_once(void **state)
{
        struct fx *fx = *state;
        int fds;

        assert_int_equal(listen(tcp_reserve(fx, AF_INET), 16), 0);
        use_tcp(fx, "127.0.0.1", 10000);
        fds = count_fds();
        start(fx, false);
        wait_for(fx, is_done);
        assert_int_equal(fx->n_done, 1);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->run.attempts, 0);
        assert_int_equal(fx->n_failed, 0);
        /* A numeric host never reaches a resolver. */
        assert_int_equal(lookups, 0);
        /* The connection was closed at once, before done(). */
        assert_int_equal(fx->fds_at_done, fds);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);
}

/* Refused, refused, ... with the waits between attempts growing with the
 * time waited (a twentieth of it, at least 250 us) up to `interval`; then the
 * server listens and the next attempt passes. */
static void test_tcp_backoff_then_listen(void **state)
{
        const uint64_t interval = 5000;
        const unsigned n = 100; /* 250 us for the first 5 ms, growing to 5 ms at 100 ms */
        struct fx *fx = *state;
        int fds;

        tcp_reserve(fx, AF_INET);
        use_tcp(fx, "127.0.0.1", interval);
        fx->act_after = n;
        fx->act = act_listen;
        fds = count_fds();
        start(fx, false);
        wait_for(fx, is_done);

        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->n_done, 1);
        /* The listen came before the next attempt, and that attempt passed. */
        assert_int_equal(fx->n_failed, n);
        assert_int_equal(fx->run.attempts, n);
        assert_string_equal(fx->first_why, "connection refused");
        assert_string_equal(fx->last_why, "connection refused");
        assert_true(fx->done_at >= fx->acted_at);
        assert_int_equal(fx->fds_at_failed, fds);
        assert_int_equal(fx->fds_at_done, fds);
        /* A gap between two failures is the runner's delay plus an attempt:
         * never shorter than the delay, which grows with the time waited. */
        for (unsigned i = 1; i < n; i++) {
                uint64_t gap = fx->failed_at[i] - fx->failed_at[i - 1];
                uint64_t delay = (fx->failed_at[i - 1] - fx->run.started_us) / 20;
                delay = delay < 250 ? 250 : delay > interval ? interval : delay;
                assert_true(gap >= delay);
        }
        /* It starts fast: the runner waited 250 us before the second attempt
         * (the delay it chose, not the time it took: no timing bound)... */
        assert_int_equal(fx->delay_at[1], 250);
        /* ...and ends at interval. */
        assert_int_equal(fx->delay_at[n - 1], interval);
        assert_true(fx->failed_at[n - 1] - fx->failed_at[n - 2] >= interval);
        assert_idle(fx);
}

/* The AlreadyRunning probe: one attempt, nothing listens. */
static void test_tcp_once_refused(void **state)
{
        struct fx *fx = *state;

        tcp_reserve(fx, AF_INET);
        use_tcp(fx, "127.0.0.1", 10000);
        start(fx, true);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_FAILED);
        assert_string_equal(fx->msg, "connection refused");
        assert_int_equal(fx->run.attempts, 1);
        /* A probe's attempt is not reported as a failed attempt. */
        assert_int_equal(fx->n_failed, 0);
        assert_idle(fx);
}

/* The AlreadyRunning probe: something listens. */
static void test_tcp_once_listening(void **state)
{
        struct fx *fx = *state;

        assert_int_equal(listen(tcp_reserve(fx, AF_INET), 16), 0);
        use_tcp(fx, "127.0.0.1", 10000);
        start(fx, true);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->run.attempts, 0);
        assert_idle(fx);
}

/* "localhost" through the system's resolver (/etc/hosts). */
static void test_tcp_localhost(void **state)
{
        struct fx *fx = *state;

        assert_int_equal(listen(tcp_reserve(fx, AF_INET), 16), 0);
        use_tcp(fx, "localhost", 10000);
        start(fx, false);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(lookups, 1);
        assert_idle(fx);
}

/* The name resolves to ::1 first, where nothing listens, then 127.0.0.1,
 * where the server is: the refusal of the first does not fail the attempt. */
static void test_tcp_first_address_refused(void **state)
{
        struct fx *fx = *state;
        int fds;

        tcp_reserve_both(fx);
        assert_int_equal(listen(fx->fds[0], 16), 0); /* 127.0.0.1 only */
        use_tcp(fx, "v6-then-v4.test", 10000);
        fds = count_fds();
        start(fx, false);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->run.attempts, 0);
        /* Both sockets closed before done(). */
        assert_int_equal(fx->fds_at_done, fds);
        assert_idle(fx);
}

/* And the other way round: the server on ::1, 127.0.0.1 refused. */
static void test_tcp_second_address_v6(void **state)
{
        struct fx *fx = *state;

        tcp_reserve_both(fx);
        assert_int_equal(listen(fx->fds[1], 16), 0); /* ::1 only */
        use_tcp(fx, "v4-then-v6.test", 10000);
        start(fx, true);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->run.attempts, 0);
        assert_idle(fx);
}

/* Both addresses refuse: the attempt fails, and the name is looked up once
 * per start however many attempts follow. */
static void test_tcp_all_addresses_refused(void **state)
{
        struct fx *fx = *state;
        int fds;

        tcp_reserve_both(fx);
        use_tcp(fx, "v6-then-v4.test", 1000);
        fds = count_fds();
        start(fx, false);
        wait_for(fx, failed_3);
        assert_int_equal(fx->n_done, 0);
        assert_string_equal(fx->last_why, "connection refused");
        assert_int_equal(fx->fds_at_failed, fds);
        assert_int_equal(lookups, 1);
        er_runner_stop(&fx->run);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);

        /* A new start (the scheduler's probe, then the wait) looks it up again. */
        start(fx, true);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_FAILED);
        assert_string_equal(fx->msg, "connection refused");
        assert_int_equal(lookups, 2);
        assert_idle(fx);
}

/* One address refuses, another fails otherwise: the refusal is what the
 * attempt reports (the host is there; the port is not open yet). */
static void test_tcp_refusal_is_reported(void **state)
{
        struct fx *fx = *state;

        tcp_reserve(fx, AF_INET);
        use_tcp(fx, "linklocal-then-v4.test", 10000);
        start(fx, true);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_FAILED);
        assert_string_equal(fx->msg, "connection refused");
        assert_idle(fx);
}

/* Another error is reported as strerror words, lower case. */
static void test_tcp_other_error(void **state)
{
        struct fx *fx = *state;

        snprintf(fx->port, sizeof(fx->port), "5432");
        use_tcp(fx, "linklocal.test", 10000);
        start(fx, true);
        assert_int_equal(fx->n_done, 1);
        assert_int_equal(fx->result, ER_CHECK_FAILED);
        assert_string_equal(fx->msg, "invalid argument");
        assert_idle(fx);
}

/* A port still holding a placeholder (a deferred variable) is named. */
static void test_tcp_invalid_port(void **state)
{
        struct fx *fx = *state;

        snprintf(fx->port, sizeof(fx->port), "${P}");
        use_tcp(fx, "127.0.0.1", 10000);
        start(fx, true);
        assert_int_equal(fx->n_done, 1);
        assert_int_equal(fx->result, ER_CHECK_FAILED);
        assert_string_equal(fx->msg, "invalid port '${P}'");
        assert_idle(fx);
}

static void test_tcp_ipv6(void **state)
{
        struct fx *fx = *state;

        assert_int_equal(listen(tcp_reserve(fx, AF_INET6), 16), 0);
        use_tcp(fx, "::1", 10000);
        start(fx, false);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->run.attempts, 0);
        assert_int_equal(lookups, 0);
        assert_idle(fx);
}

/* IPv6 refused, then listening. */
static void test_tcp_ipv6_later(void **state)
{
        struct fx *fx = *state;

        tcp_reserve(fx, AF_INET6);
        use_tcp(fx, "::1", 5000);
        fx->act_after = 3;
        fx->act = act_listen;
        start(fx, false);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->run.attempts, 3);
        assert_string_equal(fx->last_why, "connection refused");
        assert_idle(fx);
}

static void test_tcp_no_address(void **state)
{
        struct fx *fx = *state;

        snprintf(fx->port, sizeof(fx->port), "5432");
        use_tcp(fx, "nowhere.invalid", 1000);
        start(fx, false);
        wait_for(fx, failed_3);
        assert_int_equal(fx->n_done, 0);
        assert_string_equal(fx->first_why, "no address for 'nowhere.invalid'");
        assert_string_equal(fx->last_why, "no address for 'nowhere.invalid'");
        /* A failed lookup is not repeated within the start. */
        assert_int_equal(lookups, 1);
        er_runner_stop(&fx->run);
        assert_idle(fx);
}

/* A SYN that nobody answers (a full accept queue drops it): the attempt
 * gives up after max(interval, 1 s). */
static void test_tcp_attempt_times_out(void **state)
{
        struct fx *fx = *state;
        int fds;

        tcp_reserve(fx, AF_INET);
        tcp_fill_backlog(fx);
        use_tcp(fx, "127.0.0.1", 10000);
        fds = count_fds();
        start(fx, true);
        assert_true(fx->run.attempting);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_FAILED);
        assert_string_equal(fx->msg, "timed out");
        assert_true(fx->done_at - fx->started_at >= ATTEMPT_MIN_US);
        assert_int_equal(fx->fds_at_done, fds);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);
}

/* Stopped while a connect is in flight: its socket is closed and nothing
 * comes afterwards. */
static void test_tcp_stop_in_flight(void **state)
{
        struct fx *fx = *state;
        int fds;

        tcp_reserve(fx, AF_INET);
        tcp_fill_backlog(fx);
        use_tcp(fx, "127.0.0.1", 10000);
        fds = count_fds();
        start(fx, false);
        assert_true(fx->run.attempting);
        assert_int_equal(count_fds(), fds + 1);
        er_runner_stop(&fx->run);
        assert_false(fx->run.attempting);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);
        assert_int_equal(fx->n_done, 0);
        assert_int_equal(fx->n_failed, 0);
}

/* Stopped right after start against a listener (the connect is in flight:
 * a non-blocking connect returns before the handshake), two addresses. */
static void test_tcp_stop_right_after_start(void **state)
{
        struct fx *fx = *state;
        int fds;

        tcp_reserve_both(fx);
        assert_int_equal(listen(fx->fds[0], 16), 0);
        use_tcp(fx, "v6-then-v4.test", 10000);
        fds = count_fds();
        start(fx, false);
        er_runner_stop(&fx->run);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);
        assert_int_equal(fx->n_done, 0);
}

/* Stopped while waiting between attempts. */
static void test_tcp_stop_between_attempts(void **state)
{
        struct fx *fx = *state;
        int fds;

        tcp_reserve(fx, AF_INET);
        use_tcp(fx, "127.0.0.1", 10000);
        fds = count_fds();
        start(fx, false);
        wait_for(fx, failed_3);
        assert_false(fx->run.attempting);
        /* Between attempts no socket is open. */
        assert_int_equal(fx->fds_at_failed, fds);
        er_runner_stop(&fx->run);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);
}

/* --- unix ----------------------------------------------------------------- */

static void make_dir(struct fx *fx)
{
        snprintf(fx->dir, sizeof(fx->dir), "/tmp/envrun-test-net.XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->path, sizeof(fx->path), "%s/s.sock", fx->dir);
}

/* A unix socket bound at fx->path; listening unless backlog < 0. */
static int unix_bind(struct fx *fx, int backlog)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = keep_fd(fx, socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->path);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        if (backlog >= 0)
                assert_int_equal(listen(fd, backlog), 0);
        return fd;
}

static void act_unix_listen(struct fx *fx)
{
        unix_bind(fx, 16);
}

static void test_unix_ready_at_once(void **state)
{
        struct fx *fx = *state;
        int fds;

        make_dir(fx);
        unix_bind(fx, 16);
        use_unix(fx, 10000);
        fds = count_fds();
        start(fx, false);
        /* A unix connect completes inside connect(): done already. */
        assert_int_equal(fx->n_done, 1);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->run.attempts, 0);
        assert_int_equal(fx->fds_at_done, fds);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);
}

static void test_unix_appears_later(void **state)
{
        struct fx *fx = *state;
        char want[200];

        make_dir(fx);
        use_unix(fx, 10000);
        fx->act_after = 4;
        fx->act = act_unix_listen;
        start(fx, false);
        wait_for(fx, is_done);
        assert_int_equal(fx->result, ER_CHECK_READY);
        assert_int_equal(fx->run.attempts, 4);
        snprintf(want, sizeof(want), "no socket at '%s'", fx->path);
        assert_string_equal(fx->first_why, want);
        assert_string_equal(fx->last_why, want);
        assert_idle(fx);
}

static void test_unix_once_missing(void **state)
{
        struct fx *fx = *state;
        char want[200];

        make_dir(fx);
        use_unix(fx, 10000);
        start(fx, true);
        assert_int_equal(fx->n_done, 1);
        assert_int_equal(fx->result, ER_CHECK_FAILED);
        snprintf(want, sizeof(want), "no socket at '%s'", fx->path);
        assert_string_equal(fx->msg, want);
        assert_idle(fx);
}

/* A regular file where the socket should be: not ready, and said so. */
static void test_unix_regular_file(void **state)
{
        struct fx *fx = *state;
        char want[200];
        int fd, fds;

        make_dir(fx);
        fd = open(fx->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        use_unix(fx, 1000);
        fds = count_fds();
        start(fx, false);
        wait_for(fx, failed_3);
        assert_int_equal(fx->n_done, 0);
        snprintf(want, sizeof(want), "'%s' is not a socket", fx->path);
        assert_string_equal(fx->last_why, want);
        assert_int_equal(fx->fds_at_failed, fds);
        er_runner_stop(&fx->run);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);
}

/* A socket file nobody listens on (a server that died, say). */
static void test_unix_refused(void **state)
{
        struct fx *fx = *state;

        make_dir(fx);
        unix_bind(fx, -1);
        use_unix(fx, 10000);
        start(fx, true);
        assert_int_equal(fx->n_done, 1);
        assert_int_equal(fx->result, ER_CHECK_FAILED);
        assert_string_equal(fx->msg, "connection refused");
        assert_idle(fx);
}

/* A listener whose backlog is full does not accept: not ready (EAGAIN). */
static void test_unix_backlog_full(void **state)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct fx *fx = *state;
        int c;

        make_dir(fx);
        unix_bind(fx, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->path);
        /* Linux queues backlog + 1 connections. */
        c = keep_fd(fx, socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
        use_unix(fx, 1000);
        start(fx, false);
        wait_for(fx, failed_3);
        assert_int_equal(fx->n_done, 0);
        assert_string_equal(fx->last_why, "the socket's backlog is full");
        er_runner_stop(&fx->run);
        assert_idle(fx);
}

static void test_unix_stop_between_attempts(void **state)
{
        struct fx *fx = *state;
        int fds;

        make_dir(fx);
        use_unix(fx, 10000);
        fds = count_fds();
        start(fx, false);
        wait_for(fx, failed_3);
        assert_int_equal(fx->fds_at_failed, fds);
        er_runner_stop(&fx->run);
        assert_int_equal(count_fds(), fds);
        assert_idle(fx);
}

static int setup_deadline(void **state)
{
        alarm(TEST_DEADLINE_S);
        return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
            T(test_tcp_ready_at_once),
            T(test_tcp_backoff_then_listen),
            T(test_tcp_once_refused),
            T(test_tcp_once_listening),
            T(test_tcp_localhost),
            T(test_tcp_first_address_refused),
            T(test_tcp_second_address_v6),
            T(test_tcp_all_addresses_refused),
            T(test_tcp_refusal_is_reported),
            T(test_tcp_other_error),
            T(test_tcp_invalid_port),
            T(test_tcp_ipv6),
            T(test_tcp_ipv6_later),
            T(test_tcp_no_address),
            T(test_tcp_attempt_times_out),
            T(test_tcp_stop_in_flight),
            T(test_tcp_stop_right_after_start),
            T(test_tcp_stop_between_attempts),
            T(test_unix_ready_at_once),
            T(test_unix_appears_later),
            T(test_unix_once_missing),
            T(test_unix_regular_file),
            T(test_unix_refused),
            T(test_unix_backlog_full),
            T(test_unix_stop_between_attempts),
        };

        return cmocka_run_group_tests(tests, setup_deadline, NULL);
}
