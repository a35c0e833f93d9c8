/*
 * testsvc — a small configurable fake service for envrun's integration tests.
 *
 * Usage: testsvc ACTION... (executed left to right; each may repeat)
 *
 *   --stdout TEXT / --stderr TEXT  write TEXT + "\n" in one write(2)
 *   --partial TEXT                 write TEXT to stdout, no newline
 *   --sleep SECONDS                sleep (fractional); resumes on EINTR and keeps
 *                                  servicing --tcp listeners meanwhile
 *   --exit CODE                    exit with CODE now
 *   --kill-self SIGNAL             reset SIGNAL to SIG_DFL, unblock it, raise it
 *   --ignore SIGNAL                SIG_IGN for SIGNAL
 *   --on-term-exit CODE            on SIGTERM: _exit(CODE)
 *   --on-signal-exit SIGNAL CODE   on SIGNAL: _exit(CODE)
 *   --record FILE                  FILE := "<CLOCK_MONOTONIC ns>\n"
 *   --append FILE TEXT             append "TEXT <CLOCK_MONOTONIC ns>\n" to FILE
 *                                  (O_APPEND, one write)
 *   --pidfile FILE                 FILE := "<pid>\n" (via FILE.tmp + rename)
 *   --daemon                       double fork: the parent exits 0, the child
 *                                  calls setsid() and forks again, the middle
 *                                  process exits 0, the grandchild carries on
 *   --fork-child ACTIONS... --end  fork a child running ACTIONS (nesting is
 *                                  allowed), then exiting 0; the parent goes on
 *                                  at once (and reaps its children)
 *   --setsid                       setsid()
 *   --spam BYTES                   write exactly BYTES bytes of 100-byte lines
 *                                  "spam 0000000001 xxx...x\n" to stdout (a
 *                                  trailing partial line also ends in "\n")
 *   --spam-noline BYTES            write BYTES bytes of 'x', no newline
 *   --tcp PORT                     listen on 127.0.0.1:PORT (SO_REUSEADDR);
 *                                  connections are accepted and closed while
 *                                  in --sleep / --hold / --wait-file
 *   --unix PATH                    listen on a unix stream socket at PATH
 *                                  ('@name': abstract namespace); connections
 *                                  are accepted and closed like --tcp's
 *   --http PORT STATUS             a minimal HTTP/1.1 server on 127.0.0.1:PORT
 *                                  answering every request (read up to the end
 *                                  of its headers and Content-Length body) with
 *                                  "HTTP/1.1 STATUS ..." and "Connection: close",
 *                                  then closing; served like --tcp's listeners
 *   --http-log FILE                append each HTTP request's first line (+"\n")
 *                                  to FILE, from now on, for every --http server
 *   --notify TEXT                  send TEXT as one datagram to $NOTIFY_SOCKET
 *                                  ('@' prefix: abstract namespace); exits 1
 *                                  when NOTIFY_SOCKET is unset or sending fails
 *   --notify-at FILE TEXT          the same, to the address read from FILE's
 *                                  first line (as --write-env NOTIFY_SOCKET
 *                                  FILE writes it): a sender that is not of
 *                                  the service the socket belongs to
 *   --wait-file FILE               wait until FILE exists (checked every 5 ms),
 *                                  servicing the listeners meanwhile
 *   --write-env NAME FILE          FILE := value of $NAME (or "<unset>") + "\n"
 *   --write-uid FILE               FILE := "<uid> <gid>\n"
 *   --burn SECONDS                 spin until SECONDS of process CPU time used
 *   --alloc BYTES                  malloc + memset BYTES, kept until exit
 *   --stop-self                    raise(SIGSTOP)
 *   --zombies N                    a zombie factory, never returns: forks a
 *                                  child that exits at once every 1 ms and
 *                                  waits for none of them (SIGCHLD SIG_DFL)
 *                                  until N are zombies; from then on it reaps
 *                                  only the oldest when it forks a new one, so
 *                                  N zombies are always there, always renewed
 *   --fork-storm-on-term N SECONDS on SIGTERM (the first one; later ones are
 *                                  ignored): start N chains of processes that
 *                                  fork as fast as they can, each link forking
 *                                  the next and exiting at once (a pid that
 *                                  changes all the time, orphans reparenting
 *                                  all the time); a chain ends by itself
 *                                  SECONDS after that SIGTERM; a link
 *                                  orphaned to pid 1 (no subreaper above it:
 *                                  its killer is gone), or that finds the
 *                                  system with 8000 tasks more than when the
 *                                  storm began (its killer lets the zombies
 *                                  pile up), stops forking and waits: bounds
 *                                  for a test whose killer fails, so that the
 *                                  machine keeps pids for everyone else.  The
 *                                  process itself goes on with the next action
 *   --hold                         wait forever (until a signal ends us)
 *
 * SIGNAL is a number or a name, with or without "SIG", any case (TERM, sigusr1).
 * BYTES takes an optional K/M/G suffix (powers of 1024; "KiB"/"KB" also ok).
 * Files written with --record/--write-env/--write-uid/--pidfile are replaced
 * atomically (temporary file + rename), so a poller never sees them half
 * written.
 *
 * The whole argument list is validated before anything runs: an unknown
 * action prints "testsvc: unknown action 'X'" and exits 2, as do a missing
 * argument, a bad value or an unmatched --fork-child/--end.  When the actions
 * run out the process exits 0.  Failing system calls that a test relies on
 * (bind, writing a file, malloc) print a message and exit 1.
 *
 * Servers take effect where they appear in the action list: "--sleep 0.3
 * --tcp 5555 --record F --hold" listens only after 0.3 s, and F marks the
 * moment it really is ready.  Servers are never closed before exit.
 *
 * Leftover detection: tests export TESTSVC_MARKER=<unique value> before
 * starting services; every testsvc process (daemonised and forked ones too)
 * inherits it, so a test finds survivors by scanning /proc/PID/environ for it.
 * testsvc itself needs to do nothing special for this.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

enum kind {
    A_STDOUT, A_STDERR, A_PARTIAL, A_SLEEP, A_EXIT, A_KILL_SELF, A_IGNORE,
    A_ON_TERM_EXIT, A_ON_SIGNAL_EXIT, A_RECORD, A_APPEND, A_PIDFILE,
    A_DAEMON, A_FORK_CHILD, A_SETSID, A_SPAM, A_SPAM_NOLINE, A_TCP,
    A_WRITE_ENV, A_WRITE_UID, A_BURN, A_ALLOC, A_STOP_SELF, A_HOLD,
    A_UNIX, A_HTTP, A_HTTP_LOG, A_NOTIFY, A_NOTIFY_AT, A_WAIT_FILE,
    A_ZOMBIES, A_FORK_STORM_ON_TERM
};

struct action {
    const char *name;
    int nargs;
    enum kind kind;
};

static const struct action actions[] = {
    { "--stdout", 1, A_STDOUT },
    { "--stderr", 1, A_STDERR },
    { "--partial", 1, A_PARTIAL },
    { "--sleep", 1, A_SLEEP },
    { "--exit", 1, A_EXIT },
    { "--kill-self", 1, A_KILL_SELF },
    { "--ignore", 1, A_IGNORE },
    { "--on-term-exit", 1, A_ON_TERM_EXIT },
    { "--on-signal-exit", 2, A_ON_SIGNAL_EXIT },
    { "--record", 1, A_RECORD },
    { "--append", 2, A_APPEND },
    { "--pidfile", 1, A_PIDFILE },
    { "--daemon", 0, A_DAEMON },
    { "--fork-child", 0, A_FORK_CHILD },
    { "--setsid", 0, A_SETSID },
    { "--spam", 1, A_SPAM },
    { "--spam-noline", 1, A_SPAM_NOLINE },
    { "--tcp", 1, A_TCP },
    { "--write-env", 2, A_WRITE_ENV },
    { "--write-uid", 1, A_WRITE_UID },
    { "--burn", 1, A_BURN },
    { "--alloc", 1, A_ALLOC },
    { "--stop-self", 0, A_STOP_SELF },
    { "--hold", 0, A_HOLD },
    { "--unix", 1, A_UNIX },
    { "--http", 2, A_HTTP },
    { "--http-log", 1, A_HTTP_LOG },
    { "--notify", 1, A_NOTIFY },
    { "--notify-at", 2, A_NOTIFY_AT },
    { "--wait-file", 1, A_WAIT_FILE },
    { "--zombies", 1, A_ZOMBIES },
    { "--fork-storm-on-term", 2, A_FORK_STORM_ON_TERM },
};

#define MAX_LISTENERS 256
#define HTTP_REQ_MAX 16384

/* What a polled descriptor is: a listener whose connections are closed at
 * once (--tcp, --unix), an HTTP listener, or an HTTP connection being read. */
enum lkind { L_CLOSE, L_HTTP, L_CONN };

struct lslot {
    enum lkind kind;
    int status;      /* L_HTTP, L_CONN: the status to answer */
    char *buf;       /* L_CONN: the request read so far */
    size_t len;
};

static struct pollfd listeners[MAX_LISTENERS];
static struct lslot lslots[MAX_LISTENERS];
static nfds_t nlisteners;
static const char *http_log;

static void **allocs;
static size_t nallocs;

static volatile sig_atomic_t exit_codes[NSIG];

/* ---- output ------------------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                (void)poll(&pfd, 1, -1);
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

__attribute__((format(printf, 1, 2)))
static void msg(const char *fmt, ...)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "testsvc: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    (void)write_all(2, buf, len);
}

__attribute__((format(printf, 2, 3), noreturn))
static void die(int code, const char *fmt, ...)
{
    char buf[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    msg("%s", buf);
    _exit(code);
}

static void write_line(int fd, const char *text, int newline)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    if (!buf)
        die(1, "out of memory");
    memcpy(buf, text, len);
    if (newline)
        buf[len++] = '\n';
    (void)write_all(fd, buf, len);
    free(buf);
}

/* ---- parsing ----------------------------------------------------------- */

static const struct action *lookup(const char *name)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(actions[i].name, name) == 0)
            return &actions[i];
    return NULL;
}

static const struct {
    const char *name;
    int sig;
} signames[] = {
    { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
    { "ILL", SIGILL }, { "TRAP", SIGTRAP }, { "ABRT", SIGABRT },
    { "IOT", SIGABRT }, { "BUS", SIGBUS }, { "FPE", SIGFPE },
    { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },
    { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
    { "TERM", SIGTERM },
#ifdef SIGSTKFLT
    { "STKFLT", SIGSTKFLT },
#endif
    { "CHLD", SIGCHLD }, { "CLD", SIGCHLD }, { "CONT", SIGCONT },
    { "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
    { "TTOU", SIGTTOU }, { "URG", SIGURG }, { "XCPU", SIGXCPU },
    { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
    { "WINCH", SIGWINCH }, { "IO", SIGIO }, { "POLL", SIGIO },
#ifdef SIGPWR
    { "PWR", SIGPWR },
#endif
    { "SYS", SIGSYS },
};

static int parse_signal(const char *s)
{
    if (isdigit((unsigned char)s[0])) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || *end || v < 1 || v >= NSIG)
            return -1;
        return (int)v;
    }
    const char *name = s;
    if (strncasecmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
        if (strcasecmp(signames[i].name, name) == 0)
            return signames[i].sig;
    return -1;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

static int parse_bytes(const char *s, unsigned long long *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned long long mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1ULL << 10; end++; break;
    case 'm': case 'M': mult = 1ULL << 20; end++; break;
    case 'g': case 'G': mult = 1ULL << 30; end++; break;
    default: break;
    }
    if (mult > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    if (*end)
        return -1;
    if (v > ULLONG_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

/* ---- time -------------------------------------------------------------- */

static unsigned long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int add_slot(int fd, enum lkind kind, int status)
{
    if (nlisteners >= MAX_LISTENERS)
        return -1;
    listeners[nlisteners].fd = fd;
    listeners[nlisteners].events = POLLIN;
    listeners[nlisteners].revents = 0;
    lslots[nlisteners].kind = kind;
    lslots[nlisteners].status = status;
    lslots[nlisteners].buf = NULL;
    lslots[nlisteners].len = 0;
    nlisteners++;
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* Length of the whole request in buf (headers and Content-Length body), or
 * 0 while incomplete. */
static size_t http_request_len(const char *buf, size_t len)
{
    const char *end = NULL;
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i + 4;
            break;
        }
    if (!end)
        return 0;
    size_t body = 0;
    for (const char *l = buf; l < end;) {
        const char *nl = memchr(l, '\n', (size_t)(end - l));
        if (!nl)
            break;
        if ((size_t)(nl - l) > 15 && strncasecmp(l, "Content-Length:", 15) == 0)
            body = strtoul(l + 15, NULL, 10);
        l = nl + 1;
    }
    size_t hdr = (size_t)(end - buf);
    return hdr + body > len ? 0 : hdr + body;
}

static void http_answer(struct lslot *c, int fd)
{
    if (http_log) {
        size_t n = 0;
        while (n < c->len && c->buf[n] != '\r' && c->buf[n] != '\n')
            n++;
        int lfd = open(http_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (lfd >= 0) {
            char *line = malloc(n + 1);
            if (line) {
                memcpy(line, c->buf, n);
                line[n] = '\n';
                (void)write_all(lfd, line, n + 1);
                free(line);
            }
            close(lfd);
        }
    }
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
                     "Connection: close\r\n\r\n%03d\n",
                     c->status, reason(c->status), c->status % 1000);
    (void)write_all(fd, resp, (size_t)n);
    (void)shutdown(fd, SHUT_WR);
}

/* Reads what an HTTP connection has; returns 1 when it is done with. */
static int service_conn(struct lslot *c, int fd)
{
    for (;;) {
        if (!c->buf) {
            c->buf = malloc(HTTP_REQ_MAX);
            if (!c->buf)
                die(1, "out of memory");
        }
        if (c->len == HTTP_REQ_MAX) {
            http_answer(c, fd);
            return 1;
        }
        ssize_t n = read(fd, c->buf + c->len, HTTP_REQ_MAX - c->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return 1;    /* the client went away before a whole request */
        c->len += (size_t)n;
        if (http_request_len(c->buf, c->len)) {
            http_answer(c, fd);
            return 1;
        }
    }
}

static void service_listeners(void)
{
    nfds_t n = nlisteners;   /* connections accepted now are polled next time */
    for (nfds_t i = 0; i < n; i++) {
        if (!listeners[i].revents)
            continue;
        listeners[i].revents = 0;
        if (lslots[i].kind == L_CONN) {
            if (service_conn(&lslots[i], listeners[i].fd)) {
                close(listeners[i].fd);
                listeners[i].fd = -1;
            }
            continue;
        }
        for (;;) {
            int c = accept4(listeners[i].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c >= 0) {
                if (lslots[i].kind != L_HTTP || add_slot(c, L_CONN, lslots[i].status) < 0)
                    close(c);
                continue;
            }
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
    }
    /* drop finished connections (listeners are never closed) */
    nfds_t k = 0;
    for (nfds_t i = 0; i < nlisteners; i++) {
        if (listeners[i].fd < 0) {
            free(lslots[i].buf);
            continue;
        }
        listeners[k] = listeners[i];
        lslots[k] = lslots[i];
        k++;
    }
    nlisteners = k;
}

/* Wait until the CLOCK_MONOTONIC deadline (NULL: forever), serving the
 * --tcp, --unix and --http listeners meanwhile. */
static void wait_until(const struct timespec *deadline)
{
    for (;;) {
        if (nlisteners == 0) {
            if (!deadline) {
                pause();
                continue;
            }
            int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL);
            if (r == EINTR)
                continue;
            return;
        }
        struct timespec rel, *tp = NULL;
        if (deadline) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (!ts_before(&now, deadline))
                return;
            rel.tv_sec = deadline->tv_sec - now.tv_sec;
            rel.tv_nsec = deadline->tv_nsec - now.tv_nsec;
            if (rel.tv_nsec < 0) {
                rel.tv_nsec += 1000000000L;
                rel.tv_sec--;
            }
            tp = &rel;
        }
        int r = ppoll(listeners, nlisteners, tp, NULL);
        if (r > 0)
            service_listeners();
    }
}

static void do_sleep(double secs)
{
    struct timespec d;
    clock_gettime(CLOCK_MONOTONIC, &d);
    time_t whole = (time_t)secs;    /* secs >= 0: truncation is floor */
    d.tv_sec += whole;
    d.tv_nsec += (long)((secs - (double)whole) * 1e9);
    if (d.tv_nsec >= 1000000000L) {
        d.tv_nsec -= 1000000000L;
        d.tv_sec++;
    }
    wait_until(&d);
}

/* ---- files ------------------------------------------------------------- */

static void write_file_atomic(const char *path, const char *tmp, const char *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die(1, "%s: %s", tmp, strerror(errno));
    if (write_all(fd, data, len) < 0)
        die(1, "%s: %s", tmp, strerror(errno));
    if (close(fd) < 0)
        die(1, "%s: %s", tmp, strerror(errno));
    if (rename(tmp, path) < 0)
        die(1, "rename %s -> %s: %s", tmp, path, strerror(errno));
}

static void write_file(const char *path, const char *data, size_t len)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        die(1, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    write_file_atomic(path, tmp, data, len);
    free(tmp);
}

/* ---- actions ----------------------------------------------------------- */

#define SPAM_LINE 100
#define SPAM_CHUNK_LINES 10000

static void spam(unsigned long long total)
{
    size_t cap = (size_t)SPAM_LINE * SPAM_CHUNK_LINES;
    char *buf = malloc(cap);
    if (!buf)
        die(1, "out of memory");
    for (size_t l = 0; l < SPAM_CHUNK_LINES; l++) {
        char *line = buf + l * SPAM_LINE;
        memcpy(line, "spam 0000000000 ", 16);
        memset(line + 16, 'x', SPAM_LINE - 17);
        line[SPAM_LINE - 1] = '\n';
    }
    unsigned long long lineno = 1;
    while (total > 0) {
        size_t n = total < cap ? (size_t)total : cap;
        size_t lines = (n + SPAM_LINE - 1) / SPAM_LINE;
        for (size_t l = 0; l < lines; l++) {
            unsigned long long v = lineno + l;
            char *d = buf + l * SPAM_LINE + 5;
            for (int k = 9; k >= 0; k--) {
                d[k] = (char)('0' + v % 10);
                v /= 10;
            }
        }
        buf[n - 1] = '\n';   /* a trailing partial line still ends a line */
        if (write_all(1, buf, n) < 0)
            break;
        lineno += lines;
        total -= n;
    }
    free(buf);
}

static void spam_noline(unsigned long long total)
{
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    if (!buf)
        die(1, "out of memory");
    memset(buf, 'x', cap);
    while (total > 0) {
        size_t n = total < cap ? (size_t)total : cap;
        if (write_all(1, buf, n) < 0)
            break;
        total -= n;
    }
    free(buf);
}

static void tcp_listen(long port, enum lkind kind, int status)
{
    if (nlisteners >= MAX_LISTENERS)
        die(1, "too many listeners");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(1, "socket: %s", strerror(errno));
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die(1, "bind 127.0.0.1:%ld: %s", port, strerror(errno));
    if (listen(fd, 128) < 0)
        die(1, "listen 127.0.0.1:%ld: %s", port, strerror(errno));
    (void)add_slot(fd, kind, status);
}

/* A unix socket address for PATH; '@name' is abstract (sun_path[0] = 0). */
static socklen_t unix_addr(const char *path, struct sockaddr_un *sa)
{
    size_t n = strlen(path);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (n == 0 || n >= sizeof sa->sun_path)
        die(1, "unix socket address '%s': empty or too long", path);
    if (path[0] == '@') {
        memcpy(sa->sun_path + 1, path + 1, n - 1);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    }
    memcpy(sa->sun_path, path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

static void unix_listen(const char *path)
{
    if (nlisteners >= MAX_LISTENERS)
        die(1, "too many listeners");
    struct sockaddr_un sa;
    socklen_t len = unix_addr(path, &sa);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(1, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, len) < 0)
        die(1, "bind %s: %s", path, strerror(errno));
    if (listen(fd, 128) < 0)
        die(1, "listen %s: %s", path, strerror(errno));
    (void)add_slot(fd, L_CLOSE, 0);
}

static void notify_send(const char *addr, const char *text)
{
    struct sockaddr_un sa;
    socklen_t len = unix_addr(addr, &sa);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(1, "socket: %s", strerror(errno));
    ssize_t n;
    do
        n = sendto(fd, text, strlen(text), 0, (struct sockaddr *)&sa, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        die(1, "send to %s: %s", addr, strerror(errno));
    close(fd);
}

/* The first line of FILE (without its newline), malloc'd. */
static char *read_first_line(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(1, "%s: %s", path, strerror(errno));
    char *buf = malloc(4096);
    if (!buf)
        die(1, "out of memory");
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, 4095 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die(1, "%s: %s", path, strerror(errno));
        if (n == 0 || (len += (size_t)n) == 4095)
            break;
    }
    close(fd);
    buf[len] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return buf;
}

static void burn(double secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    double end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + secs;
    volatile unsigned long sink = 0;
    for (;;) {
        for (int i = 0; i < 100000; i++)
            sink = sink + (unsigned long)i;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        if ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 >= end)
            break;
    }
}

static void alloc_keep(unsigned long long bytes)
{
    if (bytes > SIZE_MAX)
        die(1, "--alloc %llu: too large", bytes);
    void *p = malloc(bytes ? (size_t)bytes : 1);
    if (!p)
        die(1, "--alloc %llu: out of memory", bytes);
    memset(p, 0x5a, (size_t)bytes);
    void **n = realloc(allocs, (nallocs + 1) * sizeof *allocs);
    if (!n)
        die(1, "out of memory");
    allocs = n;
    allocs[nallocs++] = p;
}

static void on_signal_exit(int sig)
{
    _exit(exit_codes[sig]);
}

static void reap_children(int sig)
{
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

static void set_handler(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) < 0)
        die(1, "sigaction %d: %s", sig, strerror(errno));
}

static void catch_exit(int sig, int code)
{
    exit_codes[sig] = code;
    set_handler(sig, on_signal_exit);
}

/* Reap forked children so they don't linger as zombies, unless the user
 * already chose a SIGCHLD disposition. */
static void install_reaper(void)
{
    struct sigaction old;
    if (sigaction(SIGCHLD, NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
        !(old.sa_flags & SA_SIGINFO))
        set_handler(SIGCHLD, reap_children);
}

/* --zombies N: see the usage comment.  A ring of the children not yet
 * reaped, oldest first. */
__attribute__((noreturn))
static void zombie_factory(long n)
{
    pid_t *ring = calloc((size_t)n, sizeof *ring);
    long head = 0, count = 0;

    if (!ring)
        die(1, "out of memory");
    set_handler(SIGCHLD, SIG_DFL);
    for (;;) {
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        if (p > 0) {
            if (count == n) {
                waitpid(ring[head], NULL, 0);
                head = (head + 1) % n;
                count--;
            }
            ring[(head + count) % n] = p;
            count++;
        }
        struct timespec ts = { 0, p > 0 ? 1000000 : 10000000 };
        nanosleep(&ts, NULL);
    }
}

/* --fork-storm-on-term N SECONDS: see the usage comment.  The handler only
 * forks and reads the clock (both async-signal-safe). */
static long storm_chains;
static unsigned long long storm_ns;

/* The number of tasks on the system (/proc/loadavg's "R/TOTAL"), or -1.
 * Async-signal-safe. */
static long system_tasks(void)
{
    char buf[128];
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *slash = strchr(buf, '/');
    if (!slash)
        return -1;
    long v = 0;
    for (char *c = slash + 1; *c >= '0' && *c <= '9'; c++)
        v = v * 10 + (*c - '0');
    return v;
}

#define STORM_MAX_TASKS 8000

__attribute__((noreturn))
static void storm_chain(unsigned long long until, long max_tasks)
{
    for (unsigned long k = 0;; k++) {
        if (mono_ns() >= until)
            _exit(0);
        /* Orphaned to init: out of every subreaper, so its killer is gone;
         * or the system holds STORM_MAX_TASKS tasks more than when the
         * storm began: its killer lets it take every pid.  Either way, a
         * leftover a test finds, not a storm that starves the machine. */
        if (getppid() == 1 || (k % 16 == 0 && max_tasks > 0 && system_tasks() > max_tasks))
            for (;;)
                pause();
        pid_t p = fork();
        if (p > 0)
            _exit(0); /* the child is the chain now */
        if (p < 0) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
}

static void on_term_storm(int sig)
{
    static volatile sig_atomic_t started;
    (void)sig;
    if (started)
        return;
    started = 1;
    int saved = errno;
    unsigned long long until = mono_ns() + storm_ns;
    long tasks = system_tasks();
    long max_tasks = tasks < 0 ? -1 : tasks + STORM_MAX_TASKS;
    for (long i = 0; i < storm_chains; i++)
        if (fork() == 0)
            storm_chain(until, max_tasks);
    errno = saved;
}

static void kill_self(int sig)
{
    if (sig != SIGKILL && sig != SIGSTOP)
        signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

/* ---- interpreter ------------------------------------------------------- */

__attribute__((noreturn))
static void bad_value(const char *action, const char *value)
{
    die(2, "bad value '%s' for %s", value, action);
}

static void check_arity(int ac, int i, const struct action *a)
{
    if (i + a->nargs >= ac)
        die(2, "action '%s' needs %d argument%s", a->name, a->nargs,
            a->nargs == 1 ? "" : "s");
}

/* Index of the --end matching a --fork-child whose actions start at i. */
static int find_end(char **av, int ac, int i)
{
    while (i < ac) {
        if (strcmp(av[i], "--end") == 0)
            return i;
        const struct action *a = lookup(av[i]);
        if (!a)
            die(2, "unknown action '%s'", av[i]);
        check_arity(ac, i, a);
        if (a->kind == A_FORK_CHILD) {
            int e = find_end(av, ac, i + 1);
            if (e < 0)
                return -1;
            i = e + 1;
        } else {
            i += 1 + a->nargs;
        }
    }
    return -1;
}

static int parse_sig_arg(const char *action, const char *s, int catchable)
{
    int sig = parse_signal(s);
    if (sig < 0 || (catchable && (sig == SIGKILL || sig == SIGSTOP)))
        bad_value(action, s);
    return sig;
}

/* Run av[0..ac); with dry set, only validate. */
static void run(char **av, int ac, int dry)
{
    int i = 0;
    while (i < ac) {
        const struct action *a = lookup(av[i]);
        if (!a) {
            if (strcmp(av[i], "--end") == 0)
                die(2, "'--end' without '--fork-child'");
            die(2, "unknown action '%s'", av[i]);
        }
        check_arity(ac, i, a);
        const char *x = a->nargs > 0 ? av[i + 1] : NULL;
        const char *y = a->nargs > 1 ? av[i + 2] : NULL;
        int next = i + 1 + a->nargs;
        long lv = 0;
        double dv = 0;
        unsigned long long bv = 0;
        int sig = 0;

        switch (a->kind) {
        case A_STDOUT:
            if (!dry)
                write_line(1, x, 1);
            break;
        case A_STDERR:
            if (!dry)
                write_line(2, x, 1);
            break;
        case A_PARTIAL:
            if (!dry)
                write_line(1, x, 0);
            break;
        case A_SLEEP:
            if (parse_seconds(x, &dv) < 0)
                bad_value(a->name, x);
            if (!dry)
                do_sleep(dv);
            break;
        case A_EXIT:
            if (parse_int(x, INT_MIN, INT_MAX, &lv) < 0)
                bad_value(a->name, x);
            if (!dry)
                _exit((int)lv);
            break;
        case A_KILL_SELF:
            sig = parse_sig_arg(a->name, x, 0);
            if (!dry)
                kill_self(sig);
            break;
        case A_IGNORE:
            sig = parse_sig_arg(a->name, x, 1);
            if (!dry)
                set_handler(sig, SIG_IGN);
            break;
        case A_ON_TERM_EXIT:
            if (parse_int(x, INT_MIN, INT_MAX, &lv) < 0)
                bad_value(a->name, x);
            if (!dry)
                catch_exit(SIGTERM, (int)lv);
            break;
        case A_ON_SIGNAL_EXIT:
            sig = parse_sig_arg(a->name, x, 1);
            if (parse_int(y, INT_MIN, INT_MAX, &lv) < 0)
                bad_value(a->name, y);
            if (!dry)
                catch_exit(sig, (int)lv);
            break;
        case A_RECORD:
            if (!dry) {
                char buf[32];
                int n = snprintf(buf, sizeof buf, "%llu\n", mono_ns());
                write_file(x, buf, (size_t)n);
            }
            break;
        case A_APPEND:
            if (!dry) {
                size_t cap = strlen(y) + 32;
                char *buf = malloc(cap);
                if (!buf)
                    die(1, "out of memory");
                int n = snprintf(buf, cap, "%s %llu\n", y, mono_ns());
                int fd = open(x, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd < 0)
                    die(1, "%s: %s", x, strerror(errno));
                if (write_all(fd, buf, (size_t)n) < 0)
                    die(1, "%s: %s", x, strerror(errno));
                close(fd);
                free(buf);
            }
            break;
        case A_PIDFILE:
            if (!dry) {
                char buf[32];
                int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
                size_t tn = strlen(x) + 5;
                char *tmp = malloc(tn);
                if (!tmp)
                    die(1, "out of memory");
                snprintf(tmp, tn, "%s.tmp", x);
                write_file_atomic(x, tmp, buf, (size_t)n);
                free(tmp);
            }
            break;
        case A_DAEMON:
            if (!dry) {
                pid_t p = fork();
                if (p < 0)
                    die(1, "fork: %s", strerror(errno));
                if (p > 0)
                    _exit(0);
                if (setsid() < 0)
                    msg("setsid: %s", strerror(errno));
                p = fork();
                if (p < 0)
                    die(1, "fork: %s", strerror(errno));
                if (p > 0)
                    _exit(0);
            }
            break;
        case A_FORK_CHILD: {
            int e = find_end(av, ac, i + 1);
            if (e < 0)
                die(2, "'--fork-child' without matching '--end'");
            if (dry) {
                run(av + i + 1, e - i - 1, 1);
            } else {
                install_reaper();
                pid_t p = fork();
                if (p < 0)
                    die(1, "fork: %s", strerror(errno));
                if (p == 0) {
                    run(av + i + 1, e - i - 1, 0);
                    _exit(0);
                }
            }
            next = e + 1;
            break;
        }
        case A_SETSID:
            if (!dry && setsid() < 0)
                msg("setsid: %s", strerror(errno));
            break;
        case A_SPAM:
            if (parse_bytes(x, &bv) < 0)
                bad_value(a->name, x);
            if (!dry)
                spam(bv);
            break;
        case A_SPAM_NOLINE:
            if (parse_bytes(x, &bv) < 0)
                bad_value(a->name, x);
            if (!dry)
                spam_noline(bv);
            break;
        case A_TCP:
            if (parse_int(x, 0, 65535, &lv) < 0)
                bad_value(a->name, x);
            if (!dry)
                tcp_listen(lv, L_CLOSE, 0);
            break;
        case A_UNIX:
            if (!dry)
                unix_listen(x);
            break;
        case A_HTTP: {
            long st = 0;
            if (parse_int(x, 0, 65535, &lv) < 0)
                bad_value(a->name, x);
            if (parse_int(y, 100, 999, &st) < 0)
                bad_value(a->name, y);
            if (!dry)
                tcp_listen(lv, L_HTTP, (int)st);
            break;
        }
        case A_HTTP_LOG:
            if (!dry)
                http_log = x;
            break;
        case A_NOTIFY:
            if (!dry) {
                const char *addr = getenv("NOTIFY_SOCKET");
                if (!addr || !*addr)
                    die(1, "--notify: NOTIFY_SOCKET is not set");
                notify_send(addr, x);
            }
            break;
        case A_NOTIFY_AT:
            if (!dry) {
                char *addr = read_first_line(x);
                notify_send(addr, y);
                free(addr);
            }
            break;
        case A_WAIT_FILE:
            if (!dry) {
                struct stat st;
                while (stat(x, &st) < 0)
                    do_sleep(0.005);
            }
            break;
        case A_WRITE_ENV:
            if (!dry) {
                const char *v = getenv(x);
                if (!v)
                    v = "<unset>";
                size_t n = strlen(v);
                char *buf = malloc(n + 1);
                if (!buf)
                    die(1, "out of memory");
                memcpy(buf, v, n);
                buf[n] = '\n';
                write_file(y, buf, n + 1);
                free(buf);
            }
            break;
        case A_WRITE_UID:
            if (!dry) {
                char buf[64];
                int n = snprintf(buf, sizeof buf, "%ld %ld\n", (long)getuid(), (long)getgid());
                write_file(x, buf, (size_t)n);
            }
            break;
        case A_BURN:
            if (parse_seconds(x, &dv) < 0)
                bad_value(a->name, x);
            if (!dry)
                burn(dv);
            break;
        case A_ALLOC:
            if (parse_bytes(x, &bv) < 0)
                bad_value(a->name, x);
            if (!dry)
                alloc_keep(bv);
            break;
        case A_STOP_SELF:
            if (!dry)
                raise(SIGSTOP);
            break;
        case A_HOLD:
            if (!dry)
                wait_until(NULL);
            break;
        case A_ZOMBIES:
            if (parse_int(x, 1, 100000, &lv) < 0)
                bad_value(a->name, x);
            if (!dry)
                zombie_factory(lv);
            break;
        case A_FORK_STORM_ON_TERM:
            if (parse_int(x, 1, 1000, &lv) < 0)
                bad_value(a->name, x);
            if (parse_seconds(y, &dv) < 0)
                bad_value(a->name, y);
            if (!dry) {
                storm_chains = lv;
                storm_ns = (unsigned long long)(dv * 1e9);
                install_reaper();
                set_handler(SIGTERM, on_term_storm);
            }
            break;
        }
        i = next;
    }
}

int main(int argc, char **argv)
{
    run(argv + 1, argc - 1, 1);
    run(argv + 1, argc - 1, 0);
    return 0;
}
