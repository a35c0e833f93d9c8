/* exec: ready when a probe command exits 0.
 *
 * Each attempt runs the probe in a process tree of its own: an er_proc with
 * its own group ("<service>@probe.<n>": '@' cannot occur in a service name,
 * so it never meets a service's cgroup), spawned like a service (new
 * session, SIGKILL when envrun dies) with the service's environment and
 * working directory.  The probe carries its own group's marker instead of
 * the service's, so that it is never counted as one of the service's
 * processes (session containment finds members by that marker).
 *
 * Its output goes to the service's log marked 'P', never to the service's
 * output check.  The attempt is judged when the main process ends (0: ok;
 * else "probe exited N" / "probe killed by SIGX"); whatever it left behind
 * is killed then, and the result is reported once the whole tree is gone,
 * so an attempt never overlaps the next one.  Each attempt is bounded by
 * interval x 10 and by the service's own deadline: past that the tree is
 * killed at once and the attempt fails "probe timed out after X".
 *
 * A probe that cannot be started (program not found or not executable, a
 * bad cwd) fails the check for good instead of being retried: that is the
 * configuration, and retrying would only hide the cause behind a
 * TimeoutExpired.  Errors that may pass (out of memory, too many processes
 * or files) fail the attempt only.
 *
 * An attempt that is aborted keeps its state until its tree is gone: the
 * proc is finalised only after its gone callback, never with live
 * children.  Until then it stays registered with the engine's SIGCHLD
 * reaper (env->track), which must know probe pids on the path without
 * pidfds. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/runner.h"
#include "proc/proc.h"
#include "base/units.h"

/* An attempt may take this many intervals. */
#define ATTEMPT_INTERVALS 10

static const char *const options[] = {"shell", NULL};

struct exec_conf {
        struct er_cmd cmd;
};

/* The check's configuration (model/check.h: ops->conf_size bytes). */
static struct exec_conf *conf_of(const struct er_check *c)
{
        return c->conf;
}

static int exec_parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                      const char *dir, struct er_fctx *f)
{
        const struct er_node *s = er_node_get(m, "shell");
        bool shell = false;

        if (s && er_field_bool(f, s, "shell", &shell) < 0)
                return -ER_ECONFIG;
        if (er_field_cmd(f, v, "exec", shell, &conf_of(c)->cmd) < 0)
                return -ER_ECONFIG;
        /* A probe runs in its service's working directory. */
        conf_of(c)->cmd.cwd = er_strdup(dir);
        return conf_of(c)->cmd.cwd ? 0 : er_field_error(f, v, "out of memory");
}

static void exec_dump(const struct er_check *c, json_t *o)
{
        const struct er_cmd *cmd = &conf_of(c)->cmd;
        if (cmd->shell) {
                json_object_set_new(o, "exec", json_string(cmd->argv[2]));
                json_object_set_new(o, "shell", json_true());
                return;
        }
        json_t *a = json_array();
        for (size_t i = 0; i < cmd->argc; i++)
                json_array_append_new(a, json_string(cmd->argv[i]));
        json_object_set_new(o, "exec", a);
}

static int exec_describe(const struct er_check *c, char *buf, size_t len)
{
        const struct er_cmd *cmd = &conf_of(c)->cmd;
        return snprintf(buf, len, "exec %s", cmd->shell ? cmd->argv[2] : cmd->argv[0]);
}

static void exec_fini(struct er_check *c)
{
        er_cmd_fini(&conf_of(c)->cmd);
}

/* --- the engine side ------------------------------------------------------ */

/* One attempt: lives from the spawn until its tree is gone, which may be
 * after the run stopped waiting for it (abort). */
struct probe {
        struct er_check_run *run;     /* NULL once abandoned */
        struct er_log *log;           /* NULL once abandoned */
        struct er_proc proc;
        struct er_timer limit;        /* the attempt's time bound */
        struct er_timer sweep;        /* kills what the probe left behind */
        void (*track)(void *engine, struct er_proc *p, bool on);
        void *engine;
        uint64_t limit_us;            /* the bound, for the message */
        bool tracked, timed_out, ok;
        char why[128];
};

static void probe_free(struct probe *pr)
{
        struct er_loop *loop = pr->proc.loop;

        if (pr->tracked && pr->track)
                pr->track(pr->engine, &pr->proc, false);
        if (loop) {
                er_timer_stop(loop, &pr->limit);
                er_timer_stop(loop, &pr->sweep);
        }
        er_proc_fini(&pr->proc);
        free(pr);
}

static void probe_line(struct er_proc *p, enum er_stream stream, const char *line, size_t len)
{
        struct probe *pr = p->owner;
        if (pr->log)
                er_log_line(pr->log, ER_LOG_PROBE, er_realtime_ms(), line, len);
}

static void on_sweep(struct er_loop *loop, struct er_timer *t)
{
        struct probe *pr = er_container_of(t, struct probe, sweep);
        /* Last: the gone callback may free pr from inside. */
        er_proc_stop(&pr->proc, SIGKILL, 0, SIGKILL, true);
}

static void probe_exit(struct er_proc *p)
{
        struct probe *pr = p->owner;
        char sig[32];

        if (!pr->timed_out) {
                pr->ok = p->exit_signal == 0 && p->exit_code == 0;
                if (p->exit_signal) {
                        er_signal_format(p->exit_signal, sig, sizeof(sig));
                        snprintf(pr->why, sizeof(pr->why), "probe killed by %s", sig);
                } else {
                        snprintf(pr->why, sizeof(pr->why), "probe exited %d", p->exit_code);
                }
        }
        /* What it left behind dies now; not from inside this callback, as
         * proc.c still uses p when it returns.  When nothing is left, gone
         * comes first and stops the timer.  Should the timer not arm, the
         * attempt's bound does the same later. */
        if (er_timer_start(p->loop, &pr->sweep, 0, on_sweep) == 0)
                er_timer_stop(p->loop, &pr->limit);
}

static void probe_gone(struct er_proc *p)
{
        struct probe *pr = p->owner;
        struct er_check_run *run = pr->run;
        bool ok = pr->ok;
        char why[sizeof(pr->why)];

        memcpy(why, pr->why, sizeof(why));
        /* proc.c does not touch p after this callback: freeing it here is
         * the one place where no child can be left. */
        probe_free(pr);
        if (run) {
                run->priv = NULL;
                er_runner_attempt_done(run, ok, ok ? NULL : why);
        }
}

static const struct er_proc_cb probe_cb = {
        .line = probe_line,
        .exited = probe_exit,
        .gone = probe_gone,
};

static void on_limit(struct er_loop *loop, struct er_timer *t)
{
        struct probe *pr = er_container_of(t, struct probe, limit);
        char d[32];

        if (!pr->proc.exited) {
                er_duration_format(pr->limit_us, d, sizeof(d));
                pr->timed_out = true;
                pr->ok = false;
                snprintf(pr->why, sizeof(pr->why), "probe timed out after %s", d);
        }
        /* Last: the gone callback may free pr from inside. */
        er_proc_stop(&pr->proc, SIGKILL, 0, SIGKILL, true);
}

/* The service's environment with the probe's own marker in place of the
 * service's.  The array is new; its strings are borrowed. */
static char **probe_envp(char *const *envp, const char *marker)
{
        const char *eq = strchr(marker, '=');
        size_t key = eq ? (size_t)(eq - marker) + 1 : 0, n = 0, k = 0;
        bool put = false;
        char **v;

        while (envp && envp[n])
                n++;
        v = calloc(n + 2, sizeof(*v));
        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (key && !strncmp(envp[i], marker, key)) {
                        if (put)
                                continue;
                        v[k++] = (char *)marker;
                        put = true;
                } else {
                        v[k++] = envp[i];
                }
        }
        if (!put && key)
                v[k++] = (char *)marker;
        return v;
}

/* Spawn errors that may pass by themselves; any other is the probe's
 * configuration and will not change. */
static bool transient(int err)
{
        return err == -EAGAIN || err == -ENOMEM || err == -EMFILE || err == -ENFILE ||
               err == -EINTR;
}

/* The probe cannot start: fail the check for good, or only this attempt. */
static void spawn_failed(struct er_check_run *run, int r, const char *msg)
{
        const char *src = msg[0] ? msg : strerror(-r);
        char why[sizeof(run->last_error)];
        size_t n = strnlen(src, sizeof(why) - 1);

        /* Cut to what the run keeps (a spawn message is at most 256 bytes). */
        memcpy(why, src, n);
        why[n] = '\0';
        if (transient(r)) {
                er_runner_attempt_done(run, false, why);
                return;
        }
        run->attempts++;
        er_runner_fail(run, why);
}

/* How long this attempt may take: interval x 10, and no longer than the
 * service has left. */
static uint64_t attempt_limit(const struct er_check_run *run)
{
        uint64_t lim = run->check->interval_us, left = er_runner_time_left(run);

        lim = lim > UINT64_MAX / ATTEMPT_INTERVALS ? UINT64_MAX : lim * ATTEMPT_INTERVALS;
        if (left < lim)
                lim = left - left % 1000; /* whole ms: "probe timed out after 4s120ms" */
        return lim;
}

static int exec_attempt(struct er_check_run *run)
{
        const struct er_check_env *env = run->env;
        const struct er_cmd *cmd = &conf_of(run->check)->cmd;
        struct er_err err = {0};
        struct probe *pr;
        char name[128];
        char **envp;
        int r;

        if (!env || !env->contain)
                return -EINVAL;
        pr = calloc(1, sizeof(*pr));
        if (!pr)
                return -ENOMEM;
        er_timer_init(&pr->limit);
        er_timer_init(&pr->sweep);
        /* Unique per attempt: an abandoned probe may still be dying when the
         * next one starts. */
        snprintf(name, sizeof(name), "%.80s@probe.%" PRIu64, env->service ? env->service : "check",
                 er_now_us());
        r = er_proc_init(&pr->proc, run->loop, env->contain, name, &probe_cb, pr, NULL, &err);
        if (r < 0) {
                probe_free(pr);
                er_runner_attempt_done(run, false, err.msg[0] ? err.msg : strerror(-r));
                return 0;
        }
        envp = probe_envp(env->envp, er_proc_marker(&pr->proc));
        if (!envp) {
                probe_free(pr);
                return -ENOMEM;
        }
        struct er_spawn_opts opts = {
                .file = cmd->argv[0],
                .argv = cmd->argv,
                .envp = envp,
                .cwd = cmd->cwd ? cmd->cwd : env->cwd,
                .stdin_fd = -1,
                .stdout_fd = -1,
                .stderr_fd = -1,
                .pgrp = ER_SPAWN_SETSID,
                /* As the service's own user (0 is envrun's root: no switch). */
                .uid = env->uid > 0 ? env->uid : -1,
                .gid = env->uid > 0 ? env->gid : -1,
                .cgroup_fd = -1,
                .pdeathsig = SIGKILL,
                .no_pidfd = env->no_pidfd,
        };
        r = er_proc_spawn(&pr->proc, &opts, true, &err);
        free(envp);
        if (r < 0) {
                probe_free(pr);
                spawn_failed(run, r, err.msg);
                return 0;
        }
        pr->run = run;
        pr->log = env->log;
        pr->track = env->track;
        pr->engine = env->engine;
        run->priv = pr;
        if (pr->track) {
                pr->track(pr->engine, &pr->proc, true);
                pr->tracked = true;
        }
        pr->limit_us = attempt_limit(run);
        if (er_timer_start(run->loop, &pr->limit, pr->limit_us, on_limit) < 0) {
                /* Unbounded it could outlive the service's timeout: give up
                 * this attempt (gone reports it). */
                pr->timed_out = true;
                snprintf(pr->why, sizeof(pr->why), "cannot bound the probe: %s", strerror(ENOMEM));
                er_proc_stop(&pr->proc, SIGKILL, 0, SIGKILL, true);
        }
        return 0;
}

static void exec_abort_attempt(struct er_check_run *run)
{
        struct probe *pr = run->priv;

        if (!pr)
                return;
        run->priv = NULL;
        pr->run = NULL;
        pr->log = NULL; /* the service's log may be closed before the tree is gone */
        er_timer_stop(run->loop, &pr->limit);
        /* Last: the gone callback frees pr, possibly from inside. */
        er_proc_stop(&pr->proc, SIGKILL, 0, SIGKILL, true);
}

const struct er_check_ops er_check_exec_ops = {
        .key = "exec",
        .options = options,
        .conf_size = sizeof(struct exec_conf),
        .parse = exec_parse,
        .dump = exec_dump,
        .describe = exec_describe,
        .fini = exec_fini,
        .polled = true,
        .default_interval_us = 100000,
        .attempt = exec_attempt,
        .abandon = exec_abort_attempt,
};
