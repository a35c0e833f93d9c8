/* reaper: see reaper.h.  The loop below runs in a forked copy of envrun
 * that may have been multi-threaded: only system calls and our own
 * async-signal-safe helpers, no malloc, no stdio, no locks. */
#include "proc/reaper.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc/pids.h"

/* Pids listed per pass of the kill loop (on the reaper's stack); a bigger
 * tree takes more passes, each killing what it listed. */
#define KILL_BATCH 4096
/* How long the kill loop waits for a SIGCHLD before it lists again: a
 * descendant that dies without being the reaper's child (its orphans
 * reparent here) wakes nothing. */
#define KILL_POLL_MS 10
/* How long the kill loop goes on without reaping anything before it gives
 * up: a process it may not signal (a setuid program), or one stuck in the
 * kernel, must not keep it spinning forever.  What is left is reported by
 * envrun's own give-up timer. */
#define KILL_GIVE_UP_MS 10000

struct reaper {
        const struct er_reaper_args *a;
        bool main_reaped;
        bool broken; /* the status pipe is gone: envrun is */
        bool killing; /* in kill_all: only the main process's exit is sent */
        unsigned reaps; /* how many it reaped */
};

static void send_msg(struct reaper *r, const struct er_reaper_msg *m)
{
        ssize_t n;

        if (r->broken)
                return;
        do
                n = write(r->a->st_fd, m, sizeof(*m));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)sizeof(*m))
                r->broken = true; /* EPIPE: envrun died; the loop notices */
}

static int64_t tv_us(const struct timeval *tv)
{
        return (int64_t)tv->tv_sec * 1000000 + tv->tv_usec;
}

static void fill_usage(struct er_reaper_msg *m, const struct rusage *ru)
{
        m->utime_us = tv_us(&ru->ru_utime);
        m->stime_us = tv_us(&ru->ru_stime);
        m->maxrss_kb = ru->ru_maxrss;
}

/* Reaps every child that has ended, reporting each.  Returns true when the
 * reaper has no child left. */
static bool reap(struct reaper *r)
{
        for (;;) {
                struct er_reaper_msg m;
                struct rusage ru;
                int status = 0;
                pid_t pid = wait4(-1, &status, WNOHANG | __WALL, &ru);
                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid < 0)
                        return errno == ECHILD;
                if (pid == 0)
                        return false;
                if (pid == r->a->main)
                        r->main_reaped = true;
                r->reaps++;
                /* Killing the tree (envrun asked, or is gone): envrun wants
                 * the main process's exit and then GONE, whose rusage sums
                 * everything; a record per orphan of a fork storm filled
                 * the pipe, blocked us on it and left the zombies unreaped
                 * (t_stress, storm). */
                if (r->killing && pid != r->a->main)
                        continue;
                memset(&m, 0, sizeof(m));
                m.type = ER_REAPER_EXITED;
                m.pid = pid;
                m.status = status;
                fill_usage(&m, &ru);
                send_msg(r, &m);
        }
}

static _Noreturn void leave(struct reaper *r)
{
        struct er_reaper_msg m;
        struct rusage ru;

        memset(&m, 0, sizeof(m));
        m.type = ER_REAPER_GONE;
        if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
                fill_usage(&m, &ru);
        send_msg(r, &m);
        _exit(0);
}

static void drain_signals(int fd)
{
        struct signalfd_siginfo si[8];
        while (read(fd, si, sizeof(si)) > 0)
                ;
}

/* SIGKILL to every descendant, again and again, until none is left: a
 * process forked while we listed is a child of a killed one, which
 * reparents here when that one dies and is listed on the next pass. */
static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Noreturn void kill_all(struct reaper *r)
{
        pid_t pids[KILL_BATCH];
        int64_t last = now_ms();

        r->killing = true;
        for (;;) {
                size_t n = er_pids_tree(getpid(), pids, KILL_BATCH);
                struct pollfd pfd = {.fd = r->a->sig_fd, .events = POLLIN};
                unsigned reaped;
                if (n > KILL_BATCH)
                        n = KILL_BATCH;
                /* The main process by its pid too: it is our child until we
                 * reap it, whatever the listing saw. */
                if (!r->main_reaped)
                        kill(r->a->main, SIGKILL);
                for (size_t i = 0; i < n; i++)
                        kill(pids[i], SIGKILL);
                reaped = r->reaps;
                if (reap(r))
                        leave(r);
                if (r->reaps != reaped)
                        last = now_ms();
                else if (now_ms() - last > KILL_GIVE_UP_MS)
                        leave(r);
                if (poll(&pfd, 1, KILL_POLL_MS) > 0)
                        drain_signals(r->a->sig_fd);
        }
}

static bool parent_gone(const struct reaper *r)
{
        return getppid() != r->a->parent;
}

/* Commands until the pipe is empty; false when envrun is gone (EOF). */
static bool read_cmds(struct reaper *r)
{
        for (;;) {
                struct er_reaper_cmd c;
                ssize_t n = read(r->a->cmd_fd, &c, sizeof(c));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n != (ssize_t)sizeof(c))
                        return false; /* EOF, an error or a torn record */
                if (c.type == ER_REAPER_KILL)
                        kill_all(r);
                if (c.type == ER_REAPER_SIGNAL_MAIN && !r->main_reaped && c.sig > 0 && c.sig < NSIG)
                        kill(r->a->main, c.sig);
        }
}

_Noreturn void er_reaper_loop(const struct er_reaper_args *a)
{
        struct reaper r = {.a = a};
        struct er_reaper_msg m;

        memset(&m, 0, sizeof(m));
        m.type = ER_REAPER_STARTED;
        m.pid = a->main;
        send_msg(&r, &m);
        (void)close(a->err_fd);
        for (;;) {
                struct pollfd pfd[2] = {
                    {.fd = a->sig_fd, .events = POLLIN},
                    {.fd = a->cmd_fd, .events = POLLIN},
                };
                /* Empty once the main process is gone too: before that, a
                 * main process that is not our child yet cannot be. */
                if (reap(&r) && r.main_reaped)
                        leave(&r);
                if (r.broken || parent_gone(&r))
                        kill_all(&r);
                if (poll(pfd, 2, -1) < 0 && errno != EINTR)
                        kill_all(&r);
                if (pfd[0].revents)
                        drain_signals(a->sig_fd);
                if (pfd[1].revents && !read_cmds(&r))
                        kill_all(&r);
        }
}

/* ---- envrun's side -------------------------------------------------------- */

int er_reaper_send(int cmd_fd, int type, int sig)
{
        struct er_reaper_cmd c = {.type = type, .sig = sig};
        ssize_t n;

        if (cmd_fd < 0)
                return -EBADF;
        do
                n = send(cmd_fd, &c, sizeof(c), MSG_NOSIGNAL | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n == (ssize_t)sizeof(c) ? 0 : -EIO;
}

int er_reaper_read(int st_fd, struct er_reaper_msg *m)
{
        ssize_t n;

        do
                n = read(st_fd, m, sizeof(*m));
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 0;
        /* Records are written whole (< PIPE_BUF), so they are read whole. */
        return n == (ssize_t)sizeof(*m) ? 1 : -EIO;
}

void er_reaper_rusage(const struct er_reaper_msg *m, struct rusage *ru)
{
        memset(ru, 0, sizeof(*ru));
        ru->ru_utime.tv_sec = m->utime_us / 1000000;
        ru->ru_utime.tv_usec = m->utime_us % 1000000;
        ru->ru_stime.tv_sec = m->stime_us / 1000000;
        ru->ru_stime.tv_usec = m->stime_us % 1000000;
        ru->ru_maxrss = m->maxrss_kb;
}
