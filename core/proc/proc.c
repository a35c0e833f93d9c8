/* proc: see proc.h. */
#include "proc/proc.h"
#include "proc/pids.h"
#include "proc/reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Reads per wake-up before yielding to other sources (fairness). */
#define READS_PER_EVENT 16
/* A reaper's records per wake-up: one per process of the tree that ended,
 * thousands in a fork storm, and a reaper whose pipe is full stops reaping
 * until we read (t_stress, storm).  Small reads, the pipe's whole 64 KiB. */
#define REAPER_READS_PER_EVENT 1024
/* Reads when the main process exits: what it wrote is in the pipe; a
 * descendant still writing cannot hold envrun here for long. */
#define DRAIN_READS 1024
/* How long the tree may take to vanish after sig_kill before envrun gives
 * up waiting (a process stuck in the kernel, D state). */
#define KILL_GRACE_US (5 * 1000000ULL)

static void pipe_init(struct er_proc_pipe *pp)
{
        pp->fd = -1;
        er_io_init(&pp->io);
        pp->buf = NULL;
        pp->len = 0;
}

int er_proc_init(struct er_proc *p, struct er_loop *loop, struct er_contain *contain,
                 const char *name, const struct er_proc_cb *cb, void *owner, struct er_log *log,
                 struct er_err *err)
{
        memset(p, 0, sizeof(*p));
        p->loop = loop;
        p->cb = cb;
        p->owner = owner;
        p->log = log;
        p->pidfd = -1;
        p->exit_code = -1;
        er_io_init(&p->pid_io);
        er_io_init(&p->events_io);
        er_io_init(&p->reaper_io);
        er_io_init(&p->reaper_pid_io);
        er_io_init(&p->exec_io);
        er_timer_init(&p->stop_timer);
        pipe_init(&p->out);
        pipe_init(&p->err);
        if (er_group_init(&p->group, contain, name, err) < 0)
                return err->code;
        p->group_ok = true;
        return 0;
}

const char *er_proc_marker(const struct er_proc *p)
{
        return p->group.marker;
}

static void maybe_gone(struct er_proc *p);

/* --- output ------------------------------------------------------------ */

static void emit_line(struct er_proc *p, enum er_stream stream, const char *s, size_t len)
{
        if (p->log)
                er_log_line(p->log, stream == ER_STREAM_STDERR ? ER_LOG_STDERR : ER_LOG_STDOUT,
                            er_realtime_ms(), s, len);
        if (p->cb->line)
                p->cb->line(p, stream, s, len);
}

/* Splits what pp holds into lines; a full buffer without a newline is
 * emitted as a line of its own, so memory stays bounded. */
static void split_lines(struct er_proc *p, struct er_proc_pipe *pp, enum er_stream stream,
                        bool eof)
{
        size_t start = 0;
        char *nl;

        while ((nl = memchr(pp->buf + start, '\n', pp->len - start))) {
                size_t end = (size_t)(nl - pp->buf);
                emit_line(p, stream, pp->buf + start, end - start);
                start = end + 1;
        }
        if (start < pp->len && (eof || (start == 0 && pp->len == ER_PROC_LINE_MAX))) {
                emit_line(p, stream, pp->buf + start, pp->len - start);
                start = pp->len;
        }
        memmove(pp->buf, pp->buf + start, pp->len - start);
        pp->len -= start;
}

static void pipe_close(struct er_proc *p, struct er_proc_pipe *pp)
{
        er_io_stop(p->loop, &pp->io);
        er_close(&pp->fd);
        free(pp->buf);
        pp->buf = NULL;
        pp->len = 0;
}

static bool pipe_read_batch(struct er_proc *p, struct er_proc_pipe *pp, enum er_stream stream,
                            unsigned max_reads);

/* Reads what is there; returns true at EOF (the pipe is then closed).  The
 * log gets what was read in one write. */
static bool pipe_read(struct er_proc *p, struct er_proc_pipe *pp, enum er_stream stream,
                      unsigned max_reads)
{
        bool eof = pipe_read_batch(p, pp, stream, max_reads);
        int e;
        if (p->log) {
                er_log_flush(p->log);
                if ((e = er_log_take_write_error(p->log)) && p->cb->log_failed)
                        p->cb->log_failed(p, e);
        }
        return eof;
}

static bool pipe_read_batch(struct er_proc *p, struct er_proc_pipe *pp, enum er_stream stream,
                            unsigned max_reads)
{
        for (unsigned i = 0; i < max_reads; i++) {
                ssize_t n = read(pp->fd, pp->buf + pp->len, ER_PROC_LINE_MAX - pp->len);
                if (n > 0) {
                        pp->len += (size_t)n;
                        split_lines(p, pp, stream, false);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return false;
                /* EOF, or an error that ends this pipe all the same */
                split_lines(p, pp, stream, true);
                pipe_close(p, pp);
                return true;
        }
        return false;
}

/* Output while the exec's outcome is still unread: the exec happened (only
 * the exec'd program writes to the pipes), so the outcome comes first, and
 * an output check started by it sees this line.  false: the spawn failed
 * and the pipe is closed. */
static void exec_known(struct er_proc *p)
{
        er_io_stop(p->loop, &p->exec_io);
        p->cb->exec_known(p);
}

static bool exec_first(struct er_proc *p, const struct er_proc_pipe *pp)
{
        if (p->pending && er_io_active(&p->exec_io))
                exec_known(p);
        return pp->fd >= 0;
}

static void on_out(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        struct er_proc *p = er_container_of(io, struct er_proc, out.io);
        if (exec_first(p, &p->out) && pipe_read(p, &p->out, ER_STREAM_STDOUT, READS_PER_EVENT))
                maybe_gone(p);
}

static void on_err(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        struct er_proc *p = er_container_of(io, struct er_proc, err.io);
        if (exec_first(p, &p->err) && pipe_read(p, &p->err, ER_STREAM_STDERR, READS_PER_EVENT))
                maybe_gone(p);
}

static int pipe_open(struct er_proc *p, struct er_proc_pipe *pp, int *child_fd, er_io_cb *cb)
{
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 || !(pp->buf = malloc(ER_PROC_LINE_MAX))) {
                int r = errno ? -errno : -ENOMEM;
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        pp->fd = fds[0];
        *child_fd = fds[1];
        return er_io_start(p->loop, &pp->io, pp->fd, EPOLLIN, cb);
}

/* --- the main process ---------------------------------------------------- */

/* The main process ended: exited with `value`, or was killed by signal
 * `value`. */
static void record_exit_as(struct er_proc *p, bool exited, int value)
{
        /* What it wrote before it exited comes first: a job that prints its
         * ready line and exits must be seen ready, not exited before ready. */
        if (p->out.fd >= 0)
                pipe_read(p, &p->out, ER_STREAM_STDOUT, DRAIN_READS);
        if (p->err.fd >= 0)
                pipe_read(p, &p->err, ER_STREAM_STDERR, DRAIN_READS);
        p->exited = true;
        if (exited) {
                p->exit_code = value;
                p->exit_signal = 0;
        } else {
                p->exit_code = -1;
                p->exit_signal = value;
        }
        er_io_stop(p->loop, &p->pid_io);
        er_close(&p->pidfd);
        if (p->cb->exited)
                p->cb->exited(p);
        maybe_gone(p);
}

static void record_exit(struct er_proc *p, const siginfo_t *si)
{
        record_exit_as(p, si->si_code == CLD_EXITED, si->si_status);
}

/* ---- under a reaper (contain.h, reaper.h) ---- */

/* One record of the reaper: the main process's exit is recorded (and true
 * returned: the callbacks may have freed p).  False when no record is
 * waiting. */
static bool reaper_record(struct er_proc *p, bool *ret_acted)
{
        struct er_reaper_msg m;
        int r = er_group_reaper_read(&p->group, &m);

        *ret_acted = false;
        if (r <= 0) {
                if (er_group_reaper_fd(&p->group) < 0)
                        er_io_stop(p->loop, &p->reaper_io);
                return false;
        }
        if (m.type == ER_REAPER_EXITED && m.pid == p->pid && !p->exited) {
                er_reaper_rusage(&m, &p->rusage);
                *ret_acted = true;
                record_exit_as(p, WIFEXITED(m.status),
                               WIFEXITED(m.status) ? WEXITSTATUS(m.status) : WTERMSIG(m.status));
        }
        return true;
}

/* Reads the reaper's records, then reaps it if it exited.  True when it
 * acted (recorded an exit, or reaped the reaper): p may be gone then. */
static bool reaper_reap(struct er_proc *p)
{
        bool acted;
        int r;

        while (reaper_record(p, &acted))
                if (acted)
                        return true;
        r = er_group_reaper_reap(&p->group);
        if (r <= 0)
                return false;
        er_io_stop(p->loop, &p->reaper_io);
        er_io_stop(p->loop, &p->reaper_pid_io);
        if (!p->exited) {
                /* Its exit never came: the reaper was killed (and swept its
                 * tree, SIGKILL), or it was an adopted daemon whose status
                 * went to its own parent. */
                record_exit_as(p, false, r == 2 ? SIGKILL : 0);
                return true;
        }
        maybe_gone(p);
        return true;
}

static void on_reaper_msg(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        struct er_proc *p = er_container_of(io, struct er_proc, reaper_io);
        bool acted;

        for (unsigned i = 0; i < REAPER_READS_PER_EVENT; i++)
                if (!reaper_record(p, &acted) || acted)
                        return;
}

static void on_reaper_pid(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        reaper_reap(er_container_of(io, struct er_proc, reaper_pid_io));
}

bool er_proc_reap(struct er_proc *p)
{
        siginfo_t si;
        long r;

        if (!p->spawned)
                return false;
        if (p->group.reaper > 0 && !p->group.reaper_gone)
                return reaper_reap(p);
        if (p->exited)
                return false;
        memset(&si, 0, sizeof(si));
        /* The raw syscall: glibc's waitid has no rusage argument. */
        if (p->pidfd >= 0)
                r = syscall(SYS_waitid, P_PIDFD, p->pidfd, &si, WEXITED | WNOHANG, &p->rusage);
        else
                r = syscall(SYS_waitid, P_PID, p->pid, &si, WEXITED | WNOHANG, &p->rusage);
        if (r < 0 || si.si_pid == 0)
                return false;
        record_exit(p, &si);
        return true;
}

static void on_pidfd(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        struct er_proc *p = er_container_of(io, struct er_proc, pid_io);
        siginfo_t si;

        if (er_proc_reap(p))
                return;
        if (p->exited) {
                er_io_stop(loop, io); /* reaped on the SIGCHLD path */
                return;
        }
        if (p->group.reaper > 0 && !p->group.reaper_gone) {
                /* An adopted daemon that is not the reaper's child ended
                 * (readable: once, so stop watching).  If it has become the
                 * reaper's zombie meanwhile (its parent died), the record
                 * comes; else its status went to its own parent. */
                er_io_stop(loop, io);
                if (er_pids_parent(p->pid) == p->group.reaper)
                        return;
                record_exit_as(p, false, 0);
                return;
        }
        /* Readable means it ended.  Not ours to reap (ECHILD): an adopted
         * daemon whose parent is not envrun; its status is not ours to know. */
        memset(&si, 0, sizeof(si));
        if (syscall(SYS_waitid, P_PIDFD, p->pidfd, &si, WEXITED | WNOHANG, NULL) < 0 &&
            errno == ECHILD) {
                si.si_code = CLD_KILLED;
                si.si_status = 0;
                record_exit(p, &si);
        }
}

static void on_events(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        struct er_proc *p = er_container_of(io, struct er_proc, events_io);
        /* kernfs keeps reporting EPOLLPRI until the file is read again:
         * read it on every event, or the loop spins while the tree lives. */
        if (!p->exited) {
                (void)er_group_empty(&p->group);
                return;
        }
        maybe_gone(p);
}

int er_proc_spawn_begin(struct er_proc *p, struct er_spawn_opts *opts, bool capture,
                        struct er_err *err)
{
        int out_w = -1, err_w = -1, procs[ER_V1_N], r;
        size_t n_procs = 0;

        if (capture) {
                if ((r = pipe_open(p, &p->out, &out_w, on_out)) < 0 ||
                    (r = pipe_open(p, &p->err, &err_w, on_err)) < 0) {
                        er_err_set(err, r, NULL, 0, 0, "cannot create output pipes: %s",
                                   strerror(-r));
                        goto out;
                }
                opts->stdout_fd = out_w;
                opts->stderr_fd = err_w;
        }
        opts->cgroup_fd = er_group_cgroup_fd(&p->group);
        opts->reaper = p->group.c->kind == ER_CONTAIN_REAPER;
        r = er_group_procs_fds(&p->group, procs, ER_V1_N);
        if (r < 0) {
                er_err_set(err, r, NULL, 0, 0, "cannot open the cgroups of '%s': %s",
                           p->group.name, strerror(-r));
                goto out;
        }
        n_procs = (size_t)r;
        opts->procs_fds = procs;
        opts->n_procs_fds = n_procs;
        r = er_spawn_start(opts, &p->pending, err);
        opts->procs_fds = NULL;
        opts->n_procs_fds = 0;
out:
        /* The child has its own copies now. */
        for (size_t i = 0; i < n_procs; i++)
                er_close(&procs[i]);
        er_close(&out_w);
        er_close(&err_w);
        if (r < 0) {
                pipe_close(p, &p->out);
                pipe_close(p, &p->err);
        }
        return r;
}

static void on_exec(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        (void)loop;
        (void)ev;
        exec_known(er_container_of(io, struct er_proc, exec_io));
}

int er_proc_spawn_watch(struct er_proc *p)
{
        return er_io_start(p->loop, &p->exec_io, er_spawn_pending_fd(p->pending), EPOLLIN,
                           on_exec);
}

pid_t er_proc_pending_pid(const struct er_proc *p)
{
        return p->pending ? er_spawn_pending_pid(p->pending) : 0;
}

int er_proc_spawn_end(struct er_proc *p, struct er_err *err)
{
        struct er_child child;
        struct er_spawn_pending *pd = p->pending;
        int r;

        er_io_stop(p->loop, &p->exec_io);
        p->pending = NULL;
        if ((r = er_spawn_finish(pd, &child, err)) < 0) {
                pipe_close(p, &p->out);
                pipe_close(p, &p->err);
                return r;
        }
        p->pid = child.pid;
        p->pidfd = child.pidfd;
        p->spawned = true;
        er_group_started(&p->group, &child);
        if (p->pidfd >= 0)
                er_io_start(p->loop, &p->pid_io, p->pidfd, EPOLLIN, on_pidfd);
        if (er_group_reaper_fd(&p->group) >= 0)
                er_io_start(p->loop, &p->reaper_io, er_group_reaper_fd(&p->group), EPOLLIN,
                            on_reaper_msg);
        if (er_group_reaper_pidfd(&p->group) >= 0)
                er_io_start(p->loop, &p->reaper_pid_io, er_group_reaper_pidfd(&p->group), EPOLLIN,
                            on_reaper_pid);
        if (p->group.events_fd >= 0)
                er_io_start(p->loop, &p->events_io, p->group.events_fd, EPOLLPRI, on_events);
        return 0;
}

int er_proc_spawn(struct er_proc *p, struct er_spawn_opts *opts, bool capture, struct er_err *err)
{
        int r = er_proc_spawn_begin(p, opts, capture, err);
        return r < 0 ? r : er_proc_spawn_end(p, err);
}

int er_proc_adopt(struct er_proc *p, pid_t pid, bool no_pidfd)
{
        int fd = -1;

        if (!p->exited || p->gone)
                return -EINVAL;
        /* A daemon whose parent is the reaper: its exit comes as a record.
         * Any other (its parent lives on in the tree) is watched by pidfd,
         * and its status is not ours to know. */
        if (p->group.reaper > 0 && er_pids_parent(pid) == p->group.reaper)
                no_pidfd = true;
        if (!no_pidfd) {
                fd = (int)syscall(SYS_pidfd_open, pid, 0U);
                if (fd < 0 && errno != ENOSYS)
                        return -errno;
        }
        p->pid = pid;
        p->pidfd = fd;
        p->exited = false;
        p->exit_code = -1;
        p->exit_signal = 0;
        memset(&p->rusage, 0, sizeof(p->rusage));
        if (fd >= 0)
                er_io_start(p->loop, &p->pid_io, fd, EPOLLIN, on_pidfd);
        return 0;
}

int er_proc_signal_main(struct er_proc *p, int sig)
{
        if (!p->spawned || p->exited)
                return -ESRCH;
        if (p->pid != p->group.main)
                return kill(p->pid, sig) < 0 ? -errno : 0; /* adopted */
        return er_group_signal_main(&p->group, sig);
}

/* --- the end of the tree ------------------------------------------------- */

static void maybe_gone(struct er_proc *p)
{
        if (p->gone || !p->spawned || !p->exited)
                return;
        if (!er_group_empty(&p->group))
                return;
        /* Every writer is dead: what is left in the pipes ends with EOF. */
        if (p->out.fd >= 0)
                pipe_read(p, &p->out, ER_STREAM_STDOUT, UINT32_MAX);
        if (p->err.fd >= 0)
                pipe_read(p, &p->err, ER_STREAM_STDERR, UINT32_MAX);
        p->gone = true;
        er_timer_stop(p->loop, &p->stop_timer);
        er_io_stop(p->loop, &p->events_io);
        if (p->cb->gone)
                p->cb->gone(p);
}

void er_proc_check_empty(struct er_proc *p)
{
        if (p->group.reaper > 0 && !p->group.reaper_gone) {
                reaper_reap(p); /* its exit is the tree's end */
                return;
        }
        maybe_gone(p);
}

static void on_gave_up(struct er_loop *loop, struct er_timer *t)
{
        struct er_proc *p = er_container_of(t, struct er_proc, stop_timer);
        /* Processes that outlive SIGKILL are stuck in the kernel; waiting
         * longer would hang envrun.  Report what is known and move on. */
        if (!p->exited) {
                p->exited = true;
                p->exit_code = -1;
                p->exit_signal = SIGKILL;
                if (p->cb->exited)
                        p->cb->exited(p);
        }
        if (!p->gone) {
                pipe_close(p, &p->out);
                pipe_close(p, &p->err);
                p->gone = true;
                er_io_stop(loop, &p->events_io);
                if (p->cb->gone)
                        p->cb->gone(p);
        }
}

static void kill_tree(struct er_proc *p)
{
        /* cgroup.kill only sends SIGKILL; another sig_kill goes pid by pid. */
        int n = p->sig_kill == SIGKILL || p->sig_kill == 0 ? er_group_kill(&p->group)
                                                           : er_group_signal(&p->group, p->sig_kill, true);
        p->killed = true;
        if (!p->exited)
                p->killed_before_exit = true;
        if (n > 0)
                p->killed_count += (unsigned)n;
        er_timer_start(p->loop, &p->stop_timer, KILL_GRACE_US, on_gave_up);
}

static void on_stop_timeout(struct er_loop *loop, struct er_timer *t)
{
        struct er_proc *p = er_container_of(t, struct er_proc, stop_timer);
        if (p->exited && er_group_empty(&p->group)) {
                maybe_gone(p);
                return;
        }
        kill_tree(p);
        maybe_gone(p);
}

void er_proc_stop(struct er_proc *p, int sig_stop, uint64_t timeout_us, int sig_kill, bool fast)
{
        if (!p->spawned || p->gone)
                return;
        if (p->stopping && !fast)
                return;
        p->stopping = true;
        p->sig_stop = sig_stop;
        p->sig_kill = sig_kill;
        p->stop_timeout_us = timeout_us;
        if (fast || timeout_us == 0) {
                kill_tree(p);
        } else {
                er_group_signal(&p->group, sig_stop, true);
                er_timer_start(p->loop, &p->stop_timer, timeout_us, on_stop_timeout);
        }
        maybe_gone(p);
}

void er_proc_fini(struct er_proc *p)
{
        struct er_err err = {0};

        if (!p->loop)
                return;
        /* An owner that lets go while the exec is pending: what started is
         * not left behind. */
        if (p->pending && er_proc_spawn_end(p, &err) == 0)
                er_group_signal(&p->group, SIGKILL, true);
        er_io_stop(p->loop, &p->pid_io);
        er_io_stop(p->loop, &p->events_io);
        er_io_stop(p->loop, &p->reaper_io);
        er_io_stop(p->loop, &p->reaper_pid_io);
        er_timer_stop(p->loop, &p->stop_timer);
        pipe_close(p, &p->out);
        pipe_close(p, &p->err);
        er_close(&p->pidfd);
        if (p->group_ok)
                er_group_fini(&p->group);
        p->group_ok = false;
        p->loop = NULL;
}
