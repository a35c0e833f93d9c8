/* limits: a service's limits (SPEC §3 limits:), set on its cgroups before
 * it starts and watched while it runs (sched_priv.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "sched/sched.h"
#include "sched/sched_priv.h"
#include "base/units.h"

/* --- limits (SPEC §3 limits:) ---------------------------------------------
 *
 * memory: the kernel enforces it in the service's memory cgroup; an OOM
 * there is announced on an eventfd (cgroup.event_control, v1), watched on
 * the loop, and the exit of the main process looks at the OOM kill counter
 * too (the OOM killer's SIGKILL may be seen first).  pids: the kernel
 * refuses forks past pids.max; v1's pids.events sends no notification, so
 * its "max" counter is read with cpu_time every 100 ms, and at exit.
 * cpu_time: no kernel limit covers a tree: cpu.stat is read every 100 ms.
 * A crossing kills the tree and fails the service with LimitExceeded. */

#define LIMIT_TICK_US 100000

void sched_limits_unwatch(struct svc *v)
{
        er_io_stop(v->s->o.loop, &v->oom_io);
        er_timer_stop(v->s->o.loop, &v->limit_timer);
}

static void limit_exceeded(struct svc *v, const char *msg)
{
        sched_limits_unwatch(v);
        sched_fail(v, ER_LIMIT_EXCEEDED, "%s", msg);
        er_proc_stop(&v->proc, v->cfg->sig_stop, 0, v->cfg->sig_kill, true);
}

/* Reads the counters; true (and the service failed) when a limit was crossed. */
bool sched_limits_crossed(struct svc *v)
{
        const struct er_limits *l = &v->cfg->limits;
        struct er_group *g = &v->proc.group;
        char msg[160], a[32], b[32];
        uint64_t n;

        if (!v->proc_init || v->phase == PH_FAILED)
                return false;
        if (l->memory && (v->oom_seen || (er_group_oom_kills(g, &n) == 0 && n > 0))) {
                er_size_format(l->memory, a, sizeof(a));
                snprintf(msg, sizeof(msg), "memory limit %s exceeded (oom kill)", a);
                limit_exceeded(v, msg);
                return true;
        }
        if (l->pids && er_group_pids_refused(g, &n) == 0 && n > 0) {
                snprintf(msg, sizeof(msg), "pids limit %llu reached (fork failed %llu time%s)",
                         (unsigned long long)l->pids, (unsigned long long)n, n == 1 ? "" : "s");
                limit_exceeded(v, msg);
                return true;
        }
        if (l->cpu_time_us && er_group_cpu_usage(g, &n) == 0 && v->cpu_us + n > l->cpu_time_us) {
                n += v->cpu_us;
                er_duration_format(l->cpu_time_us, a, sizeof(a));
                snprintf(b, sizeof(b), "%llu.%02llus", (unsigned long long)(n / 1000000),
                         (unsigned long long)(n % 1000000 / 10000));
                snprintf(msg, sizeof(msg), "cpu_time limit %s exceeded (%s used)", a, b);
                limit_exceeded(v, msg);
                return true;
        }
        return false;
}

static void on_oom(struct er_loop *loop, struct er_io *io, uint32_t ev)
{
        struct svc *v = er_container_of(io, struct svc, oom_io);
        uint64_t count;

        if (ev & (EPOLLPRI | EPOLLERR)) {
                /* v2's memory.events changed (kernfs: read it to rearm);
                 * limits_crossed reads its oom_kill counter. */
                char buf[512];
                (void)!pread(io->fd, buf, sizeof(buf), 0);
                sched_limits_crossed(v);
                return;
        }
        /* v1: the notification comes before the OOM killer acts, so its
         * kill counter may still read 0: the announcement itself is the
         * crossing. */
        if (read(io->fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
                v->oom_seen = true;
        else if (errno != EAGAIN && errno != EINTR)
                er_io_stop(loop, io);
        sched_limits_crossed(v);
}

static void on_limit_tick(struct er_loop *loop, struct er_timer *t)
{
        struct svc *v = er_container_of(t, struct svc, limit_timer);

        if (sched_limits_crossed(v) || v->proc.gone)
                return;
        er_timer_start(loop, t, LIMIT_TICK_US, on_limit_tick);
}

/* Before the spawn: writes the limits into the service's cgroups.  A limit
 * that cannot be enforced is a warning, once per run; failing to write one
 * is a start error.  Returns 0 or -errno (the service failed). */
int sched_limits_apply(struct svc *v)
{
        const struct er_limits *l = &v->cfg->limits;
        struct er_sched *s = v->s;
        char why[300], detail[340];
        int r;

        if (!l->memory && !l->pids && !l->cpu_time_us)
                return 0;
        r = er_group_set_limits(&v->proc.group, l, why, sizeof(why));
        if (r < 0) {
                sched_fail(v, ER_START_ERROR, "%s", why);
                return r;
        }
        if (r == 0 && !v->limits_why[0]) {
                /* Said once per service, as a warning the driver keeps in
                 * sight, and again in the report's closing lines. */
                s->limits_unenforced = true;
                snprintf(v->limits_why, sizeof(v->limits_why), "%s", why);
                snprintf(detail, sizeof(detail), "limits not enforced: %s", why);
                if (v->log_open)
                        er_log_line(&v->log, ER_LOG_NOTE, er_realtime_ms(), detail,
                                    strlen(detail));
                sched_emit_warning(v, detail);
        }
        return 0;
}

/* After the spawn: watches for crossings. */
void sched_limits_watch(struct svc *v)
{
        const struct er_limits *l = &v->cfg->limits;
        int fd;

        uint32_t events = EPOLLIN;

        v->oom_seen = false;
        if (l->memory && (fd = er_group_oom_fd(&v->proc.group, &events)) >= 0)
                er_io_start(v->s->o.loop, &v->oom_io, fd, events, on_oom);
        if (l->cpu_time_us || l->pids)
                er_timer_start(v->s->o.loop, &v->limit_timer, LIMIT_TICK_US, on_limit_tick);
}
