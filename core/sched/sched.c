/* sched: the services' states and the environment (sched.h); limits.c and
 * test_cmd.c hold the limits and the test command (sched_priv.h). */
#include "sched/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks/runner.h"
#include "proc/envp.h"
#include "proc/log.h"
#include "proc/proc.h"
#include "base/buf.h"
#include "base/units.h"
#include "model/graph.h"
#include "sched/sched_priv.h"

const char *er_svc_state_name(enum er_svc_state st)
{
        static const char *const names[] = {"pending", "starting", "ready",  "exited",
                                            "stopping", "stopped", "failed"};
        return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

static uint64_t since_ms(uint64_t from_us)
{
        uint64_t now = er_now_us();
        return now > from_us ? (now - from_us) / 1000 : 0;
}

static void emit(struct svc *v, const char *detail)
{
        struct er_sched *s = v->s;
        struct er_sched_event ev = {
                .service = v->index,
                .state = v->state,
                .detail = detail,
                .elapsed_ms = v->spawned ? since_ms(v->spawn_us) : 0,
        };
        if (s->o.on_event)
                s->o.on_event(s->o.ud, &ev);
}

/* Something the user must see and keep seeing (not a state change). */
void sched_emit_warning(struct svc *v, const char *detail)
{
        struct er_sched *s = v->s;
        struct er_sched_event ev = {
                .service = v->index,
                .state = v->state,
                .detail = detail,
                .warning = true,
        };
        if (s->o.on_event)
                s->o.on_event(s->o.ud, &ev);
}

void sched_emit_test(struct er_sched *s, enum er_svc_state st, const char *detail)
{
        struct er_sched_event ev = {.service = SIZE_MAX, .state = st, .detail = detail};
        if (s->test_start_us)
                ev.elapsed_ms = since_ms(s->test_start_us);
        if (s->o.on_event)
                s->o.on_event(s->o.ud, &ev);
}

void sched_describe_status(char *buf, size_t len, int code, int sig)
{
        char name[32];
        if (sig) {
                er_signal_format(sig, name, sizeof(name));
                snprintf(buf, len, "killed by %s", name);
        } else if (code < 0) {
                /* An adopted daemon whose status went to its own parent. */
                snprintf(buf, len, "ended (exit status unknown)");
        } else {
                snprintf(buf, len, "exited %d", code);
        }
}

static void schedule(struct er_sched *s);
static void stop_if_possible(struct svc *v);
static void start_svc(struct svc *v);
static void svc_reset(struct svc *v);

/* --- failure ------------------------------------------------------------- */

static void cancel_check(struct svc *v)
{
        if (v->check_active)
                er_runner_stop(&v->runs[v->check_i]);
        v->check_active = false;
}

/* The service waits for nothing any more: undo every check's prepare. */
static void release_checks(struct svc *v)
{
        cancel_check(v);
        for (size_t i = 0; v->runs && i < v->cfg->n_checks; i++)
                er_runner_release(&v->runs[i]);
}

void sched_fail(struct svc *v, enum er_error_class cls, const char *fmt, ...)
{
        struct er_sched *s = v->s;
        va_list ap;

        if (v->state == ER_SVC_FAILED)
                return;
        va_start(ap, fmt);
        vsnprintf(v->message, sizeof(v->message), fmt, ap);
        va_end(ap);
        v->error = cls;
        v->state = ER_SVC_FAILED;
        release_checks(v);
        er_timer_stop(s->o.loop, &v->timeout);
        if (v->log_open)
                er_log_line(&v->log, ER_LOG_NOTE, er_realtime_ms(), v->message, strlen(v->message));
        emit(v, v->message);
        if (!s->up_done) {
                /* SPEC §5.3: the bring-up fails; nothing more starts. */
                s->failed = true;
                s->up_done = true;
        } else if (s->test_running) {
                s->failed_during_test = true;
                if (s->abort_on_failure)
                        er_proc_signal_main(&s->test, SIGTERM);
        } else if (!s->down_started) {
                s->failed_during_test = true;
        }
        schedule(s);
}

/* --- dependencies -------------------------------------------------------- */

static bool dep_met(const struct er_sched *s, const struct er_dep *d)
{
        const struct svc *t = &s->svcs[d->index];
        /* A service stopped by hand (SPEC §8) no longer satisfies started
         * or ready; a job that completed stays completed. */
        switch (d->cond) {
        case ER_COND_STARTED:
                return t->spawned && !(t->down && !t->completed);
        case ER_COND_READY:
                return t->ready && !(t->down && !t->completed);
        case ER_COND_COMPLETED:
                return t->completed;
        }
        return false;
}

static bool dep_failed(const struct er_sched *s, const struct er_dep *d)
{
        const struct svc *t = &s->svcs[d->index];
        return t->state == ER_SVC_FAILED || t->error == ER_DEPENDENCY_FAILED;
}

static void dependency_failed(struct svc *v, const struct er_dep *d)
{
        const struct svc *t = &v->s->svcs[d->index];
        v->error = ER_DEPENDENCY_FAILED;
        if (t->error == ER_DEPENDENCY_FAILED)
                snprintf(v->message, sizeof(v->message), "%.64s <- %.400s", v->cfg->name,
                         t->message);
        else
                snprintf(v->message, sizeof(v->message), "%.64s <- %.64s: %.370s", v->cfg->name,
                         t->cfg->name, t->message);
        emit(v, v->message);
}

/* --- readiness ----------------------------------------------------------- */

static void check_next(struct svc *v);

static void mark_ready(struct svc *v)
{
        struct er_sched *s = v->s;
        char detail[300] = "";

        v->ready = true;
        v->ready_us = er_now_us();
        /* Ready after the main process exited: an exit check accepted it. */
        if (v->proc.exited)
                v->completed = true;
        if (v->state == ER_SVC_STARTING)
                v->state = v->completed ? ER_SVC_EXITED : ER_SVC_READY;
        if (!v->need_completed || v->completed)
                er_timer_stop(s->o.loop, &v->timeout);
        release_checks(v);
        if (v->cfg->n_checks) {
                er_check_describe(v->cfg->checks[v->cfg->n_checks - 1], detail, sizeof(detail));
                size_t n = strlen(detail);
                snprintf(detail + n, sizeof(detail) - n, ", %llu ms",
                         (unsigned long long)((v->ready_us - v->spawn_us) / 1000));
        }
        emit(v, detail);
        schedule(s);
}

static void spawn_now(struct svc *v);

/* The AlreadyRunning probe (SPEC §4): every tcp/unix/http check tried once
 * before the spawn; one that passes means something else holds the address. */
static void probe_done(struct svc *v, struct er_check_run *run, enum er_check_result result)
{
        er_runner_stop(run);
        if (result == ER_CHECK_READY && !v->probe_hit) {
                v->probe_hit = true;
                er_check_describe(run->check, v->probe_what, sizeof(v->probe_what));
        }
        if (--v->probes_pending)
                return;
        v->probing = false;
        if (v->s->down_started)
                return;
        if (v->probe_hit)
                sched_fail(v, ER_ALREADY_RUNNING,
                     "%s already answers before the service started: something else holds it",
                     v->probe_what);
        else
                spawn_now(v);
}

static void on_check_done(struct er_check_run *run, enum er_check_result result, const char *msg)
{
        struct svc *v = run->owner;
        char what[256];
        pid_t daemon;

        if (v->probing) {
                probe_done(v, run, result);
                return;
        }
        if (!v->check_active || run != &v->runs[v->check_i])
                return;
        cancel_check(v);
        daemon = v->named_daemon;
        v->named_daemon = 0;
        if (result == ER_CHECK_READY) {
                /* A pidfile check names the daemon a forking service left. */
                if (daemon > 0 && v->proc.exited && !v->proc.gone) {
                        er_proc_adopt(&v->proc, daemon, v->s->o.no_pidfd);
                        v->daemonizing = false;
                } else if (daemon > 0 && daemon != v->proc.pid) {
                        /* The daemon wrote its pid file before its parent's
                         * exit reached us: adopt it when that exit comes. */
                        v->adopt_pid = daemon;
                }
                v->check_i++;
                check_next(v);
                return;
        }
        er_check_describe(run->check, what, sizeof(what));
        sched_fail(v, run->fatal ? ER_START_ERROR : ER_PROCESS_EXITED_WITH_ERROR, "%s: %s", what,
             msg ? msg : "failed");
}

static void on_attempt_failed(struct er_check_run *run, const char *why)
{
        struct svc *v = run->owner;
        struct er_sched *s = v->s;
        char line[256], what[160];

        v->failed_attempts++;
        if (!s->o.want_lines || !s->o.on_event)
                return;
        er_check_describe(run->check, what, sizeof(what));
        snprintf(line, sizeof(line), "%s: attempt %u failed: %s", what, run->attempts, why);
        struct er_sched_event ev = {.service = v->index,
                                    .state = v->state,
                                    .line = line,
                                    .line_len = strlen(line),
                                    .stream = ER_STREAM_BOTH};
        s->o.on_event(s->o.ud, &ev);
}

static void on_status(struct er_check_run *run, const char *status)
{
        struct svc *v = run->owner;
        char detail[200];

        if (v->probing || v->state != ER_SVC_STARTING)
                return;
        snprintf(detail, sizeof(detail), "notify: %s", status);
        emit(v, detail);
}

static void on_daemon(struct er_check_run *run, pid_t pid)
{
        struct svc *v = run->owner;

        if (!v->probing && v->check_active && run == &v->runs[v->check_i])
                v->named_daemon = pid;
}

static void check_next(struct svc *v)
{
        struct er_check_run *run;
        int r;

        if (v->check_i >= v->cfg->n_checks) {
                mark_ready(v);
                return;
        }
        run = &v->runs[v->check_i];
        v->check_active = true;
        r = er_runner_start(run, false);
        if (r == -EOPNOTSUPP && v->check_active)
                sched_fail(v, ER_START_ERROR, "the '%s' readiness check is not supported yet",
                     run->check->ops->key);
        else if (r < 0 && v->check_active)
                sched_fail(v, ER_START_ERROR, "cannot start the '%s' check: %s", run->check->ops->key,
                     strerror(-r));
}

static void on_timeout(struct er_loop *loop, struct er_timer *t)
{
        struct svc *v = er_container_of(t, struct svc, timeout);
        char limit[32], what[256] = "";

        er_duration_format(v->cfg->timeout_us, limit, sizeof(limit));
        if (v->ready) {
                sched_fail(v, ER_TIMEOUT_EXPIRED, "did not complete within %s", limit);
                return;
        }
        if (v->check_active) {
                const struct er_check_run *run = &v->runs[v->check_i];
                size_t n;
                er_check_describe(run->check, what, sizeof(what));
                n = strlen(what);
                /* Say why the last attempt failed: "connection refused". */
                if (run->last_error[0] && n + 3 < sizeof(what))
                        snprintf(what + n, sizeof(what) - n, ": %s", run->last_error);
        }
        sched_fail(v, ER_TIMEOUT_EXPIRED, "not ready within %s%s%s%s", limit, *what ? " (waiting for " : "",
             what, *what ? ")" : "");
}

/* --- the process --------------------------------------------------------- */

static void svc_line(struct er_proc *p, enum er_stream stream, const char *line, size_t len)
{
        struct svc *v = p->owner;
        struct er_sched *s = v->s;

        if (v->check_active)
                er_runner_line(&v->runs[v->check_i], stream, line, len);
        if (s->o.want_lines && s->o.on_event) {
                struct er_sched_event ev = {.service = v->index,
                                            .state = v->state,
                                            .line = line,
                                            .line_len = len,
                                            .stream = stream};
                s->o.on_event(s->o.ud, &ev);
        }
}

static bool pidfile_pending(const struct svc *v)
{
        for (size_t i = v->check_i; i < v->cfg->n_checks; i++)
                if (v->cfg->checks[i]->ops == &er_check_pidfile_ops)
                        return true;
        return false;
}

/* SPEC §3 restart: on-failure restarts after a non-zero status or a
 * signal, always after any exit, each up to max_restarts times. */
static bool may_restart(const struct svc *v, int code)
{
        const struct er_service *c = v->cfg;
        if (v->s->down_started || c->restart == ER_RESTART_NO || v->restarts >= c->max_restarts)
                return false;
        return c->restart == ER_RESTART_ALWAYS || code != 0;
}

static const char *after_restarts(const struct svc *v)
{
        static char buf[64];
        if (!v->restarts)
                return "";
        snprintf(buf, sizeof(buf), " (after %u restart%s)", v->restarts,
                 v->restarts == 1 ? "" : "s");
        return buf;
}

/* Backoff before restart n (0-based): 100 ms doubling, at most 10 s. */
static uint64_t backoff_us(unsigned n)
{
        uint64_t us = 100000;
        for (unsigned i = 0; i < n && us < 10000000; i++)
                us *= 2;
        return us < 10000000 ? us : 10000000;
}

static void restart_after_exit(struct svc *v, const char *how)
{
        char detail[160], wait[32];

        er_duration_format(backoff_us(v->restarts), wait, sizeof(wait));
        snprintf(detail, sizeof(detail), "%s: restart %u of %u in %s", how, v->restarts + 1,
                 v->cfg->max_restarts, wait);
        if (v->log_open)
                er_log_line(&v->log, ER_LOG_NOTE, er_realtime_ms(), detail, strlen(detail));
        release_checks(v);
        v->restart_pending = true;
        v->policy_restart = true;
        v->state = ER_SVC_STARTING;
        emit(v, detail);
        /* What the main process left behind goes before the next run. */
        er_proc_stop(&v->proc, v->cfg->sig_stop, 0, v->cfg->sig_kill, true);
}

static void on_backoff(struct er_loop *loop, struct er_timer *t)
{
        struct svc *v = er_container_of(t, struct svc, backoff);
        if (v->s->down_started)
                return;
        start_svc(v);
}

static void svc_exit(struct er_proc *p)
{
        struct svc *v = p->owner;
        char how[64];
        int code = p->exit_signal ? -1 : p->exit_code;

        sched_describe_status(how, sizeof(how), p->exit_code, p->exit_signal);
        if (p->stopping || v->state == ER_SVC_FAILED)
                return; /* judged when the tree is gone */
        if (sched_limits_crossed(v))
                return;
        if (code == 0 && v->adopt_pid > 0 && !p->gone) {
                pid_t pid = v->adopt_pid;
                v->adopt_pid = 0;
                /* SPEC §4: the forking parent exited 0 after its daemon was
                 * named by the pid file (a later check may still be
                 * pending): the daemon is the service now. */
                if (er_proc_adopt(&v->proc, pid, v->s->o.no_pidfd) == 0)
                        return;
        }
        if (v->state == ER_SVC_STARTING) {
                /* An exit check decides (ready and completed at once, in
                 * mark_ready); anything else is an exit before ready. */
                if (v->check_active && er_runner_exited(&v->runs[v->check_i], code))
                        return;
                /* SPEC §4: exiting 0 while a pidfile check is pending is
                 * daemonizing: keep waiting, then adopt the daemon. */
                if (code == 0 && pidfile_pending(v)) {
                        v->daemonizing = true;
                        emit(v, "daemonizing: the main process exited 0, waiting for its pid file");
                        return;
                }
                if (may_restart(v, code)) {
                        restart_after_exit(v, how);
                        return;
                }
                sched_fail(v, ER_PROCESS_EXITED_WITH_ERROR, "%s before ready%s", how, after_restarts(v));
                return;
        }
        if (may_restart(v, code)) {
                restart_after_exit(v, how);
                return;
        }
        if (code == 0) {
                v->completed = true;
                v->state = ER_SVC_EXITED;
                er_timer_stop(v->s->o.loop, &v->timeout);
                emit(v, how);
                schedule(v->s);
                return;
        }
        sched_fail(v, ER_PROCESS_EXITED_WITH_ERROR, "%s %s%s", how,
             v->s->test_running ? "while the test ran" : "after it was ready", after_restarts(v));
}

static void judge_stop(struct svc *v)
{
        const struct er_proc *p = &v->proc;
        char how[64], limit[32], sig[32], when[64];

        if (v->state == ER_SVC_FAILED || v->error != ER_OK)
                return;
        er_duration_format(v->cfg->stop_timeout_us, limit, sizeof(limit));
        er_signal_format(v->cfg->sig_kill, sig, sizeof(sig));
        /* SPEC §5.7: a second stop request skips the grace period. */
        if (v->killed_fast)
                snprintf(when, sizeof(when), "at once (a second stop request)");
        else
                snprintf(when, sizeof(when), "after %s stop timeout", limit);
        if (p->killed_before_exit) {
                v->error = ER_PROCESS_FINISHED_WITH_ERROR;
                snprintf(v->message, sizeof(v->message), "killed by %s %s", sig, when);
                return;
        }
        sched_describe_status(how, sizeof(how), p->exit_code, p->exit_signal);
        if (p->killed && p->killed_count) {
                v->error = ER_PROCESS_FINISHED_WITH_ERROR;
                snprintf(v->message, sizeof(v->message),
                         "%u process%s of its tree killed by %s %s (main process %s)",
                         p->killed_count, p->killed_count == 1 ? "" : "es", sig, when, how);
                return;
        }
        if (v->completed) {
                snprintf(v->message, sizeof(v->message), "%s", how);
                return;
        }
        /* An unknown status (an adopted daemon that was not envrun's to
         * reap) counts as clean: it ended after sig_stop, without sig_kill. */
        bool clean = p->exit_signal    ? p->exit_signal == v->cfg->sig_stop
                     : p->exit_code < 0 ? true
                                        : er_codes_has(&v->cfg->ok_exit, (unsigned)p->exit_code);
        er_signal_format(v->cfg->sig_stop, sig, sizeof(sig));
        if (clean) {
                if (p->exit_signal)
                        snprintf(v->message, sizeof(v->message), "stopped by %s", sig);
                else
                        snprintf(v->message, sizeof(v->message), "%s after %s", how, sig);
                return;
        }
        v->error = ER_PROCESS_FINISHED_WITH_ERROR;
        snprintf(v->message, sizeof(v->message), "%s after %s (not in ok_exit)", how, sig);
}

/* The tree's CPU time, read from its cgroup before the cgroup goes; the
 * main process's rusage (with what it waited for) where there is none. */
static void account(struct svc *v)
{
        uint64_t us;
        const struct rusage *ru = &v->proc.rusage;

        if (!v->proc_init || !v->spawned)
                return;
        bool tree;
        if (er_group_memory_peak(&v->proc.group, &us, &tree) == 0 && us > v->mem_peak) {
                v->mem_peak = us;
                v->mem_peak_tree = tree;
        }
        if (er_group_cpu_usage(&v->proc.group, &us) == 0) {
                v->cpu_us += us;
                v->cpu_is_tree = true;
                return;
        }
        v->cpu_us += (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000 +
                     (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec);
}

static void finish_down(struct svc *v)
{
        struct er_sched *s = v->s;

        account(v);
        sched_limits_unwatch(v);
        v->down = true;
        v->stop_us = er_now_us();
        judge_stop(v);
        /* A failed service was announced when it failed. */
        if (v->state != ER_SVC_FAILED) {
                v->state = ER_SVC_STOPPED;
                emit(v, v->message);
        }
        /* What v depended on may stop now, if nothing else holds it. */
        const uint64_t *deps = er_reach_deps(&s->reach, v->index);
        for (size_t i = 0; i < s->n; i++)
                if (er_reach_has(deps, i))
                        stop_if_possible(&s->svcs[i]);
}

static void svc_reset(struct svc *v);
static void start_svc(struct svc *v);

static void svc_gone(struct er_proc *p)
{
        struct svc *v = p->owner;
        if (v->restart_pending && p->stopping) {
                bool policy = v->policy_restart, was_ready = v->ready;
                uint64_t first = v->first_spawn_us;
                if (!policy)
                        finish_down(v); /* a restart asked for: its stop is reported */
                v->restart_pending = v->policy_restart = false;
                svc_reset(v);
                if (policy && !was_ready)
                        v->first_spawn_us = first; /* the same timeout goes on */
                if (policy && v->s->down_started)
                        return;
                if (policy) {
                        v->state = ER_SVC_STARTING;
                        er_timer_start(v->s->o.loop, &v->backoff, backoff_us(v->restarts),
                                       on_backoff);
                        v->restarts++;
                        return;
                }
                v->restarts++;
                start_svc(v);
                return;
        }
        if (v->daemonizing && !v->ready && v->state == ER_SVC_STARTING) {
                v->daemonizing = false;
                sched_fail(v, ER_PROCESS_EXITED_WITH_ERROR,
                     "exited 0 before ready and left no process behind (no daemon to adopt)");
        }
        /* A tree that emptied by itself (a one-shot job) is finished when
         * the environment goes down. */
        if (!p->stopping && !v->s->down_started)
                return;
        finish_down(v);
}

static const struct er_proc_cb svc_cb = {
        .line = svc_line,
        .exited = svc_exit,
        .gone = svc_gone,
};

/* The environment of a service or the test (SPEC §3). */
char **sched_build_envp(struct er_sched *s, const struct er_envlist *own,
                         const struct er_envlist *checks, const char *service, const char *marker)
{
        struct er_envlist extra;
        char port[16], **envp = NULL;
        const char *eq = strchr(marker, '=');

        er_envlist_init(&extra);
        if (er_envlist_set(&extra, "ENVRUN_PROJECT", s->c->project, 0, 0) < 0 ||
            er_envlist_set(&extra, "ENVRUN_STATE_DIR", s->o.state_dir, 0, 0) < 0 ||
            (service && er_envlist_set(&extra, "ENVRUN_SERVICE", service, 0, 0) < 0))
                goto out;
        for (size_t i = 0; i < s->c->n_ports; i++) {
                snprintf(port, sizeof(port), "%u", s->o.ports[i]);
                if (er_envlist_set(&extra, s->c->ports[i].name, port, 0, 0) < 0)
                        goto out;
        }
        {
                char name[32];
                size_t n = (size_t)(eq - marker);
                memcpy(name, marker, n);
                name[n] = '\0';
                if (er_envlist_set(&extra, name, eq + 1, 0, 0) < 0)
                        goto out;
        }
        const struct er_envlist *layers[] = {&s->c->env_file, &s->c->env, own, checks, &extra};
        envp = er_envp_build(s->o.environ, layers, 5);
out:
        er_envlist_fini(&extra);
        return envp;
}

static void track_proc(void *engine, struct er_proc *p, bool on)
{
        struct er_sched *s = engine;
        if (on) {
                if (ER_BUF_RESERVE(s->extra, s->cap_extra, s->n_extra + 1) < 0)
                        return; /* reaped as an orphan: its status is lost, not its exit */
                s->extra[s->n_extra++] = p;
                return;
        }
        for (size_t i = 0; i < s->n_extra; i++)
                if (s->extra[i] == p) {
                        s->extra[i] = s->extra[--s->n_extra];
                        return;
                }
}

static void spawn_now(struct svc *v)
{
        struct er_sched *s = v->s;
        const struct er_service *cfg = v->cfg;
        struct er_err err = {0};
        char detail[300] = "";

        struct er_spawn_opts opts = {
                .file = cfg->cmd.argv[0],
                .argv = cfg->cmd.argv,
                .envp = v->envp,
                .cwd = cfg->cmd.cwd,
                .stdin_fd = -1,
                .stdout_fd = -1,
                .stderr_fd = -1,
                .pgrp = ER_SPAWN_SETSID,
                .uid = cfg->user ? cfg->uid : -1,
                .gid = cfg->user ? cfg->gid : -1,
                .cgroup_fd = -1,
                .pdeathsig = SIGKILL,
                .no_pidfd = s->o.no_pidfd,
        };
        v->spawn_us = er_now_us();
        if (!v->first_spawn_us)
                v->first_spawn_us = v->spawn_us;
        v->cenv.deadline_us = v->first_spawn_us + cfg->timeout_us;
        v->state = ER_SVC_STARTING;
        if (sched_limits_apply(v) < 0)
                return;
        if (er_proc_spawn(&v->proc, &opts, true, &err) < 0) {
                sched_fail(v, ER_START_ERROR, "%s", err.msg);
                return;
        }
        v->spawned = true;
        sched_limits_watch(v);
        if (cfg->n_checks)
                er_check_describe(cfg->checks[0], detail, sizeof(detail));
        emit(v, detail);
        if (cfg->n_checks || v->need_completed)
                er_timer_start_at(s->o.loop, &v->timeout, v->cenv.deadline_us, on_timeout);
        check_next(v);
}

static void start_svc(struct svc *v)
{
        struct er_sched *s = v->s;
        const struct er_service *cfg = v->cfg;
        struct er_envlist extra;
        struct er_err err = {0};
        int r;

        v->spawn_us = er_now_us();
        if (!v->log_open) {
                r = er_log_open(&v->log, s->o.log_dir_fd, cfg->name, cfg->log_max_size);
                if (r < 0) {
                        sched_fail(v, ER_START_ERROR, "cannot open its log: %s", strerror(-r));
                        return;
                }
                v->log_open = true;
                /* One write per batch of output, not one per line. */
                er_log_set_buffered(&v->log);
        }
        if (er_proc_init(&v->proc, s->o.loop, s->o.contain, cfg->name, &svc_cb, v, &v->log,
                         &err) < 0) {
                sched_fail(v, ER_START_ERROR, "%s", err.msg);
                return;
        }
        v->proc_init = true;
        v->cenv = (struct er_check_env){
                .service = cfg->name,
                .cwd = cfg->cmd.cwd,
                .log = &v->log,
                .contain = s->o.contain,
                .group = &v->proc.group,
                .state_dir = s->o.state_dir,
                .no_pidfd = s->o.no_pidfd,
                .uid = cfg->user ? cfg->uid : -1,
                .gid = cfg->user ? cfg->gid : -1,
                .track = track_proc,
                .engine = s,
        };
        v->runs = calloc(cfg->n_checks ? cfg->n_checks : 1, sizeof(*v->runs));
        if (!v->runs) {
                sched_fail(v, ER_START_ERROR, "out of memory");
                return;
        }
        er_envlist_init(&extra);
        for (size_t i = 0; i < cfg->n_checks; i++) {
                er_runner_init(&v->runs[i], cfg->checks[i], s->o.loop, &v->cenv, v, on_check_done);
                v->runs[i].attempt_failed = on_attempt_failed;
                v->runs[i].status_changed = on_status;
                v->runs[i].daemon = on_daemon;
                r = er_runner_prepare(&v->runs[i], &extra);
                if (r < 0) {
                        er_envlist_fini(&extra);
                        sched_fail(v, ER_START_ERROR, "cannot prepare the '%s' check: %s",
                             cfg->checks[i]->ops->key, strerror(-r));
                        return;
                }
        }
        v->envp = sched_build_envp(s, &cfg->env, &extra, cfg->name, er_proc_marker(&v->proc));
        er_envlist_fini(&extra);
        if (!v->envp) {
                sched_fail(v, ER_START_ERROR, "out of memory");
                return;
        }
        v->cenv.envp = v->envp;
        /* Count first: a probe may finish inside er_runner_start. */
        for (size_t i = 0; i < cfg->n_checks; i++)
                if (cfg->checks[i]->ops->probes_address && cfg->checks[i]->ops->attempt)
                        v->probes_pending++;
        if (!v->probes_pending) {
                spawn_now(v);
                return;
        }
        v->probing = true;
        v->state = ER_SVC_STARTING;
        emit(v, "checking that nothing else holds its address");
        for (size_t i = 0; i < cfg->n_checks && v->probing; i++)
                if (cfg->checks[i]->ops->probes_address && cfg->checks[i]->ops->attempt)
                        er_runner_start(&v->runs[i], true);
}

/* Starts what can start, marks what never will, and notices the end of the
 * bring-up. */
static void schedule(struct er_sched *s)
{
        bool progress = true, busy = false;

        if (!s->up_started || s->down_started)
                return;
        while (progress) {
                progress = false;
                for (size_t i = 0; i < s->n; i++) {
                        struct svc *v = &s->svcs[i];
                        bool met = true;
                        if (v->state != ER_SVC_PENDING || v->error != ER_OK || !s->selected[i])
                                continue;
                        for (size_t k = 0; k < v->cfg->n_deps; k++) {
                                const struct er_dep *d = &v->cfg->deps[k];
                                if (dep_failed(s, d)) {
                                        dependency_failed(v, d);
                                        progress = true;
                                        met = false;
                                        break;
                                }
                                met = met && dep_met(s, d);
                        }
                        if (met && v->error == ER_OK && !s->failed) {
                                start_svc(v);
                                progress = true;
                        }
                }
        }
        for (size_t i = 0; i < s->n; i++) {
                const struct svc *v = &s->svcs[i];
                if (v->error != ER_OK || !s->selected[i])
                        continue;
                if (v->state == ER_SVC_PENDING || (v->state == ER_SVC_STARTING) ||
                    (v->need_completed && !v->completed && v->state != ER_SVC_FAILED))
                        busy = true;
        }
        if (!busy)
                s->up_done = true;
}

/* --- down ----------------------------------------------------------------- */

/* SPEC §5.5: a service stops only after everything that depends on it,
 * directly or not, has stopped (api -> migrate -> db: db outlives api even
 * when migrate is long finished). */
static bool all_dependents_down(struct er_sched *s, size_t idx)
{
        const uint64_t *row = er_reach_dependents(&s->reach, idx);

        for (size_t w = 0; w < s->reach.words; w++)
                for (uint64_t bits = row[w]; bits; bits &= bits - 1) {
                        const struct svc *d = &s->svcs[w * 64 + (size_t)__builtin_ctzll(bits)];
                        if (d->spawned && !d->down)
                                return false;
                }
        return true;
}

static void stop_if_possible(struct svc *v)
{
        struct er_sched *s = v->s;

        if (!s->down_started || !v->spawned || v->down)
                return;
        if (!all_dependents_down(s, v->index))
                return;
        if (v->proc.stopping && !s->fast)
                return;
        cancel_check(v);
        er_timer_stop(s->o.loop, &v->timeout);
        if (v->state != ER_SVC_FAILED && !v->proc.stopping) {
                v->state = ER_SVC_STOPPING;
                emit(v, NULL);
        }
        /* Its sig_kill comes at once: from this request, unless its own
         * stop timeout already sent it. */
        if (s->fast && !v->proc.killed)
                v->killed_fast = true;
        er_proc_stop(&v->proc, v->cfg->sig_stop, v->cfg->stop_timeout_us, v->cfg->sig_kill,
                     s->fast);
}

void er_sched_down(struct er_sched *s, bool fast)
{
        s->down_started = true;
        s->up_done = true;
        if (fast)
                s->fast = true;
        fast = s->fast;
        if (s->test_running && fast)
                er_proc_stop(&s->test, SIGKILL, 0, SIGKILL, true);
        for (size_t i = 0; i < s->n; i++) {
                struct svc *v = &s->svcs[i];
                release_checks(v);
                v->probing = false;
                er_timer_stop(s->o.loop, &v->timeout);
                er_timer_stop(s->o.loop, &v->backoff);
        }
        /* Trees that emptied by themselves while the environment was up. */
        for (size_t i = 0; i < s->n; i++) {
                struct svc *v = &s->svcs[s->n - 1 - i];
                if (v->spawned && v->proc.gone && !v->down)
                        finish_down(v);
        }
        for (size_t i = 0; i < s->n; i++)
                stop_if_possible(&s->svcs[s->n - 1 - i]);
}

bool er_sched_down_done(const struct er_sched *s)
{
        if (!er_sched_test_done(s))
                return false;
        /* Probes stopped with their service may still be dying. */
        if (s->n_extra)
                return false;
        for (size_t i = 0; i < s->n; i++)
                if (s->svcs[i].spawned && !s->svcs[i].down)
                        return false;
        return true;
}

/* --- one service at a time (the detached supervisor's commands) ---------- */

/* Forgets a finished run of v so that it can start again. */
static void svc_reset(struct svc *v)
{
        struct er_sched *s = v->s;

        if (!v->down)
                account(v); /* finish_down did it otherwise */

        release_checks(v);
        free(v->runs);
        v->runs = NULL;
        er_timer_stop(s->o.loop, &v->timeout);
        sched_limits_unwatch(v);
        if (v->proc_init)
                er_proc_fini(&v->proc);
        v->proc_init = false;
        er_envp_free(v->envp);
        v->envp = NULL;
        v->check_i = 0;
        v->check_active = v->probing = v->probe_hit = v->daemonizing = false;
        v->adopt_pid = v->named_daemon = 0;
        v->killed_fast = false;
        v->probes_pending = 0;
        v->spawned = v->ready = v->completed = v->down = false;
        v->first_spawn_us = 0;
        er_timer_stop(s->o.loop, &v->backoff);
        v->error = ER_OK;
        v->message[0] = '\0';
        v->state = ER_SVC_PENDING;
}

static bool svc_running(const struct svc *v)
{
        return v->spawned && !v->down;
}

int er_sched_stop_service(struct er_sched *s, size_t idx)
{
        struct svc *v = &s->svcs[idx];

        if (!svc_running(v) || v->proc.stopping)
                return -EALREADY;
        release_checks(v);
        er_timer_stop(s->o.loop, &v->timeout);
        if (v->state != ER_SVC_FAILED) {
                v->state = ER_SVC_STOPPING;
                emit(v, NULL);
        }
        er_proc_stop(&v->proc, v->cfg->sig_stop, v->cfg->stop_timeout_us, v->cfg->sig_kill, false);
        return 0;
}

int er_sched_start_service(struct er_sched *s, size_t idx, char *why, size_t len)
{
        struct svc *v = &s->svcs[idx];

        if (s->down_started)
                return -ESHUTDOWN;
        if (svc_running(v) || v->probing)
                return -EBUSY;
        for (size_t k = 0; k < v->cfg->n_deps; k++)
                if (!dep_met(s, &v->cfg->deps[k])) {
                        snprintf(why, len, "its dependency '%s' is not %s",
                                 v->cfg->deps[k].name, er_cond_name(v->cfg->deps[k].cond));
                        return -EAGAIN;
                }
        if (v->spawned || v->error != ER_OK)
                svc_reset(v);
        s->selected[idx] = true;
        start_svc(v);
        return 0;
}

int er_sched_restart_service(struct er_sched *s, size_t idx, char *why, size_t len)
{
        struct svc *v = &s->svcs[idx];
        int r;

        if (s->down_started)
                return -ESHUTDOWN;
        /* The new run needs what a start needs: refuse before stopping the
         * old one rather than leave the service down. */
        for (size_t k = 0; k < v->cfg->n_deps; k++)
                if (!dep_met(s, &v->cfg->deps[k])) {
                        snprintf(why, len, "its dependency '%s' is not %s",
                                 v->cfg->deps[k].name, er_cond_name(v->cfg->deps[k].cond));
                        return -EAGAIN;
                }
        if (!svc_running(v)) {
                r = er_sched_start_service(s, idx, why, len);
                if (r == 0)
                        v->restarts++;
                return r;
        }
        v->restart_pending = true;
        r = er_sched_stop_service(s, idx);
        return r == -EALREADY ? 0 : r; /* already stopping: it starts once gone */
}

enum er_svc_state er_sched_state(const struct er_sched *s, size_t idx)
{
        return s->svcs[idx].state;
}

void er_sched_info(const struct er_sched *s, size_t idx, struct er_svc_info *ret)
{
        const struct svc *v = &s->svcs[idx];

        *ret = (struct er_svc_info){
                .state = v->state,
                .selected = s->selected[idx],
                .pid = v->proc_init ? v->proc.pid : 0,
                .ready_ms = v->ready ? (v->ready_us - s->o.t0_us) / 1000 : ER_REPORT_NO_TIME,
                .restarts = v->restarts,
                .error = v->error,
                .message = v->message,
        };
}

int er_sched_interrupted(const struct er_sched *s)
{
        return s->interrupted;
}

/* --- signals -------------------------------------------------------------- */

void er_sched_signal(struct er_sched *s, int sig, bool from_terminal)
{
        if (sig == SIGINT)
                s->n_sigint++;
        if (sig == SIGTERM)
                s->n_sigterm++;
        if (!s->interrupted)
                s->interrupted = sig;
        if (s->test_running) {
                if (!from_terminal)
                        er_proc_signal_main(&s->test, sig);
                if (!er_timer_active(&s->test_kill))
                        er_timer_start(s->o.loop, &s->test_kill, TEST_KILL_AFTER_US, sched_on_test_kill);
                if (s->n_sigterm > 1 || s->n_sigint > 1)
                        er_proc_stop(&s->test, SIGKILL, 0, SIGKILL, true);
        }
        /* A second SIGINT skips the grace periods (SPEC §5.7), now or when
         * the teardown starts. */
        if (s->n_sigint > 1) {
                s->fast = true;
                if (s->down_started)
                        er_sched_down(s, true);
        }
        s->up_done = true;
}

void er_sched_set_abort_on_failure(struct er_sched *s, bool on)
{
        s->abort_on_failure = on;
}

/* Whether pid is p's child: its main process, or its reaper. */
static bool proc_has_child(const struct er_proc *p, pid_t pid)
{
        return p->spawned && ((!p->exited && p->pid == pid) || er_group_reaper_owns(&p->group, pid));
}

static struct er_proc *proc_by_pid(struct er_sched *s, pid_t pid)
{
        for (size_t i = 0; i < s->n; i++)
                if (s->svcs[i].proc_init && proc_has_child(&s->svcs[i].proc, pid))
                        return &s->svcs[i].proc;
        if (s->test_init && proc_has_child(&s->test, pid))
                return &s->test;
        for (size_t i = 0; i < s->n_extra; i++)
                if (proc_has_child(s->extra[i], pid))
                        return s->extra[i];
        return NULL;
}

void er_sched_sigchld(struct er_sched *s)
{
        /* Peek without reaping (WNOWAIT): a tracked pid is reaped by its
         * owner, which wants its status; an orphan that reparented to envrun
         * (the subreaper) is reaped here.  A blind waitpid(-1) would steal
         * the services' statuses. */
        for (unsigned guard = 0; guard < 4096; guard++) {
                siginfo_t si;
                struct er_proc *p;
                memset(&si, 0, sizeof(si));
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
                        break;
                p = proc_by_pid(s, si.si_pid);
                if (p) {
                        if (!er_proc_reap(p))
                                break;
                } else {
                        siginfo_t tmp;
                        (void)waitid(P_PID, (id_t)si.si_pid, &tmp, WEXITED | WNOHANG);
                }
        }
        for (size_t i = 0; i < s->n; i++)
                if (s->svcs[i].spawned && s->svcs[i].proc.exited && !s->svcs[i].proc.gone)
                        er_proc_check_empty(&s->svcs[i].proc);
        if (s->test_init && s->test.exited && !s->test.gone)
                er_proc_check_empty(&s->test);
        /* Backwards: a probe's gone callback removes it from the list. */
        for (size_t i = s->n_extra; i-- > 0;)
                if (i < s->n_extra && s->extra[i]->exited && !s->extra[i]->gone)
                        er_proc_check_empty(s->extra[i]);
}

/* --- lifecycle ------------------------------------------------------------ */

/* up SERVICE...: those services and, transitively, their dependencies. */
static void select_closure(struct er_sched *s, const bool *only)
{
        bool grew = true;

        for (size_t i = 0; i < s->n; i++)
                s->selected[i] = !only || only[i];
        while (grew) {
                grew = false;
                for (size_t i = 0; i < s->n; i++) {
                        const struct er_service *sv = &s->c->services[i];
                        if (!s->selected[i])
                                continue;
                        for (size_t k = 0; k < sv->n_deps; k++)
                                if (!s->selected[sv->deps[k].index]) {
                                        s->selected[sv->deps[k].index] = true;
                                        grew = true;
                                }
                }
        }
}

int er_sched_new(const struct er_sched_opts *opts, struct er_sched **ret)
{
        struct er_sched *s = calloc(1, sizeof(*s));
        const struct er_config *c = opts->config;

        if (!s)
                return -ENOMEM;
        s->o = *opts;
        s->o.only = NULL; /* borrowed: s->selected holds it */
        s->c = c;
        s->n = c->n_services;
        s->svcs = calloc(s->n ? s->n : 1, sizeof(*s->svcs));
        if (!s->svcs) {
                free(s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n; i++) {
                struct svc *v = &s->svcs[i];
                v->s = s;
                v->index = i;
                v->cfg = &c->services[i];
                er_timer_init(&v->timeout);
                er_timer_init(&v->backoff);
                er_timer_init(&v->limit_timer);
                er_io_init(&v->oom_io);
                v->log.fd = -1;
        }
        s->selected = calloc(s->n ? s->n : 1, sizeof(*s->selected));
        if (!s->selected) {
                free(s->svcs);
                free(s);
                return -ENOMEM;
        }
        select_closure(s, opts->only);
        if (er_graph_reach(c, &s->reach) < 0) {
                free(s->selected);
                free(s->svcs);
                free(s);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n; i++)
                for (size_t k = 0; k < c->services[i].n_deps; k++)
                        if (c->services[i].deps[k].cond == ER_COND_COMPLETED)
                                s->svcs[c->services[i].deps[k].index].need_completed = true;
        er_timer_init(&s->test_timer);
        er_timer_init(&s->test_kill);
        *ret = s;
        return 0;
}

void er_sched_up(struct er_sched *s)
{
        s->up_started = true;
        schedule(s);
}

bool er_sched_up_done(const struct er_sched *s)
{
        return s->up_done;
}

bool er_sched_failed(const struct er_sched *s)
{
        return s->failed;
}

static const struct svc *first_failed(const struct er_sched *s)
{
        for (size_t i = 0; i < s->n; i++)
                if (s->svcs[i].state == ER_SVC_FAILED)
                        return &s->svcs[i];
        return NULL;
}

static void tail_cb(void *ud, const char *line, size_t len)
{
        er_report_tail_push(ud, line, len);
}

int er_sched_report(struct er_sched *s, struct er_report *r)
{
        uint64_t t0 = s->o.t0_us;
        bool finished_error = false;

        memset(r, 0, sizeof(*r));
        r->project = s->c->project;
        r->containment = er_contain_name(s->o.contain);
        r->containment_reason = s->o.contain->reason;
        r->limits_enforced = !s->limits_unenforced;
        r->services = calloc(s->n ? s->n : 1, sizeof(*r->services));
        r->ports = calloc(s->c->n_ports ? s->c->n_ports : 1, sizeof(*r->ports));
        if (!r->services || !r->ports)
                return -ENOMEM;
        r->n_ports = s->c->n_ports;
        for (size_t i = 0; i < s->c->n_ports; i++) {
                r->ports[i].name = s->c->ports[i].name;
                r->ports[i].port = s->o.ports[i];
        }
        r->n_services = 0;
        for (size_t i = 0; i < s->n; i++) {
                struct svc *v = &s->svcs[i];
                struct er_report_service *rs;
                if (!s->selected[i])
                        continue; /* up SERVICE...: not part of this environment */
                rs = &r->services[r->n_services++];
                rs->name = v->cfg->name;
                rs->error = v->error;
                if (v->error == ER_OK && !v->spawned && s->failed) {
                        /* Never started because another service failed the
                         * bring-up: not "ok" — name the failure. */
                        const struct svc *f = first_failed(s);
                        rs->error = ER_DEPENDENCY_FAILED;
                        snprintf(rs->message, sizeof(rs->message),
                                 "not started: the bring-up failed at '%.64s'",
                                 f ? f->cfg->name : "?");
                } else if (v->error == ER_OK && !v->spawned) {
                        snprintf(rs->message, sizeof(rs->message), "not started (interrupted)");
                } else
                        snprintf(rs->message, sizeof(rs->message), "%s", v->message);
                snprintf(rs->limits_not_enforced, sizeof(rs->limits_not_enforced), "%s",
                         v->limits_why);
                rs->pid = v->spawned ? v->proc.pid : 0;
                rs->exit_code = v->spawned && v->proc.exited && !v->proc.exit_signal ? v->proc.exit_code : -1;
                rs->signal = v->spawned && v->proc.exited ? v->proc.exit_signal : 0;
                rs->killed = v->proc_init && v->proc.killed;
                rs->killed_descendants = v->proc_init ? v->proc.killed_count : 0;
                rs->started_ms = v->spawned ? (v->spawn_us - t0) / 1000 : ER_REPORT_NO_TIME;
                rs->ready_ms = v->ready ? (v->ready_us - t0) / 1000 : ER_REPORT_NO_TIME;
                rs->stopped_ms = v->down ? (v->stop_us - t0) / 1000 : ER_REPORT_NO_TIME;
                rs->cpu_ms = v->cpu_us / 1000;
                if (v->mem_peak) {
                        rs->memory_peak_bytes = v->mem_peak;
                        rs->memory_peak_is_tree = v->mem_peak_tree;
                } else if (v->proc_init) {
                        rs->memory_peak_bytes = (uint64_t)v->proc.rusage.ru_maxrss * 1024;
                        rs->memory_peak_is_tree = false;
                }
                rs->log_dropped_bytes = v->log.dropped;
                rs->restarts = v->restarts;
                rs->failed_attempts = v->failed_attempts;
                if (v->log_open)
                        er_log_flush(&v->log);
                if (v->error != ER_OK && v->error != ER_DEPENDENCY_FAILED && v->log_open)
                        er_log_tail(s->o.log_dir_fd, v->cfg->name, ER_REPORT_TAIL_LINES, tail_cb, rs);
                if (v->error == ER_PROCESS_FINISHED_WITH_ERROR)
                        finished_error = true;
        }
        r->test.present = s->test_started || s->test_argv;
        r->test.argv = (char **)s->test_argv;
        if (s->test_started) {
                struct er_report_test *t = &r->test;
                t->argv = (char **)s->test_argv;
                t->timed_out = s->test_timed_out;
                t->exit_code = s->test_spawn_failed ? s->test_status
                               : s->test.exit_signal ? -1 : s->test.exit_code;
                t->signal = s->test_spawn_failed ? 0 : s->test.exit_signal;
                snprintf(t->message, sizeof(t->message), "%s", s->test_message);
                t->started_ms = (s->test_start_us - t0) / 1000;
                t->duration_ms = (s->test_end_us - s->test_start_us) / 1000;
        } else {
                r->test.not_run = true;
                r->test.exit_code = -1;
        }
        r->exit_status = er_sched_exec_status(s);
        r->ok = r->exit_status == 0 && !finished_error;
        r->total_ms = (er_now_us() - t0) / 1000;
        return 0;
}

int er_sched_exec_status(const struct er_sched *s)
{
        bool finished_error = false;

        if (s->interrupted == SIGHUP)
                return 129;
        if (s->interrupted == SIGINT)
                return 130;
        if (s->interrupted == SIGTERM)
                return 143;
        if (s->failed || s->failed_during_test)
                return 125;
        if (s->test_timed_out)
                return 124;
        if (s->test_started) {
                if (s->test_spawn_failed)
                        return s->test_status;
                if (s->test.exit_signal)
                        return 128 + s->test.exit_signal;
                if (s->test.exit_code != 0)
                        return s->test.exit_code;
        }
        for (size_t i = 0; i < s->n; i++)
                if (s->svcs[i].error == ER_PROCESS_FINISHED_WITH_ERROR)
                        finished_error = true;
        return finished_error ? 125 : 0;
}

void er_sched_free(struct er_sched *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++) {
                struct svc *v = &s->svcs[i];
                release_checks(v);
                free(v->runs);
                er_timer_stop(s->o.loop, &v->timeout);
                er_timer_stop(s->o.loop, &v->backoff);
                sched_limits_unwatch(v);
                if (v->proc_init)
                        er_proc_fini(&v->proc);
                if (v->log_open)
                        er_log_close(&v->log);
                er_envp_free(v->envp);
        }
        if (s->test_init)
                er_proc_fini(&s->test);
        er_timer_stop(s->o.loop, &s->test_timer);
        er_timer_stop(s->o.loop, &s->test_kill);
        er_envp_free(s->test_envp);
        free(s->extra);
        free(s->selected);
        er_reach_fini(&s->reach);
        free(s->svcs);
        free(s);
}
