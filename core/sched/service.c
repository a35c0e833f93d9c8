/* service: one service's life, as a table of phases and events (s6-
 * supervise's actions[state][event]; STYLE §3).
 *
 * Each service is in one phase (sched_priv.h).  Everything that happens to
 * it is an event, and each event is one cell of `actions` below: the cell
 * names the action to run, IGNORE (the event means nothing in that phase:
 * a stop request to a service already stopping), or nothing at all, which
 * is a bug in the scheduler: the event is dropped, a warning goes to the
 * driver and er_sched_unexpected counts it (the CLI aborts on it in a
 * debug build, so that every test catches it).  A failure (sched_fail) moves any phase to failed.
 *
 * The actions decide for their own service only.  What the others do about
 * it (start once their dependencies hold, stop once their dependents are
 * down) is sched_decide's (sched.c), which an action asks for and which
 * runs flat, after it: the scheduler never re-enters itself.
 *
 * The facts of a run (spawned, ready, completed, down) are not phases:
 * a dependency asks whether its target was ready in this run whatever it
 * does now, and the report tells when each happened. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/testhook.h"
#include "base/units.h"
#include "checks/runner.h"
#include "proc/envp.h"
#include "proc/listen.h"
#include "sched/sched_priv.h"

/* ---- what an event carries ---------------------------------------------- */

struct svc_arg {
        int code;                        /* EV_EXITED: the status, -1 for a signal */
        const char *how;                 /* EV_EXITED: "exited 1" */
        const struct er_check_run *run;  /* EV_CHECK_*: the check */
        const char *msg;                 /* EV_CHECK_FAILED: why */
        const struct er_dep *dep;        /* EV_DEP_FAILED: the dependency */
        bool fast;                       /* EV_STOP: skip the grace period */
};

typedef void action_fn(struct svc *v, const struct svc_arg *a);

static void dispatch(struct svc *v, enum svc_event e, const struct svc_arg *a);

/* ---- phases as the driver sees them ------------------------------------- */

static const enum er_svc_state public_state[N_PHASE] = {
        [PH_PENDING] = ER_SVC_PENDING,   [PH_PROBING] = ER_SVC_STARTING,
        [PH_STARTING] = ER_SVC_STARTING, [PH_DAEMONIZING] = ER_SVC_STARTING,
        [PH_READY] = ER_SVC_READY,       [PH_EXITED] = ER_SVC_EXITED,
        [PH_RESTARTING] = ER_SVC_STARTING, [PH_BACKOFF] = ER_SVC_STARTING,
        [PH_STOPPING] = ER_SVC_STOPPING, [PH_RESTART_STOP] = ER_SVC_STOPPING,
        [PH_STOPPED] = ER_SVC_STOPPED,   [PH_FAILED] = ER_SVC_FAILED,
};

static const char *const phase_names[N_PHASE] = {
        "pending", "probing", "starting", "daemonizing", "ready", "exited",
        "restarting", "backoff", "stopping", "restart-stop", "stopped", "failed",
};

static const char *const event_names[N_EVENT] = {
        "start", "probed", "check-ok", "check-failed", "timeout", "exited",
        "gone", "stop", "restart", "backoff-due", "dep-failed", "down",
};

enum er_svc_state sched_public_state(const struct svc *v)
{
        return public_state[v->phase];
}

uint64_t sched_since_ms(uint64_t from_us)
{
        uint64_t now = er_now_us();
        return now > from_us ? (now - from_us) / 1000 : 0;
}

static void emit(struct svc *v, const char *detail)
{
        struct er_sched *s = v->s;
        struct er_sched_event ev = {
                .service = v->index,
                .state = public_state[v->phase],
                .detail = detail,
                .elapsed_ms = v->spawned ? sched_since_ms(v->spawn_us) : 0,
        };
        if (s->o.on_event)
                s->o.on_event(s->o.ud, &ev);
}

/* The only writers of v->phase: enter() tells the driver, quietly does not
 * (a phase the driver sees as the same state, or one it was told of). */
static void enter(struct svc *v, enum svc_phase p, const char *detail)
{
        v->phase = p;
        emit(v, detail);
}

static void quietly(struct svc *v, enum svc_phase p)
{
        v->phase = p;
}

/* Something the user must see and keep seeing (not a state change). */
void sched_emit_warning(struct svc *v, const char *detail)
{
        struct er_sched *s = v->s;
        struct er_sched_event ev = {
                .service = v->index,
                .state = public_state[v->phase],
                .detail = detail,
                .warning = true,
        };
        if (s->o.on_event)
                s->o.on_event(s->o.ud, &ev);
}

/* ---- checks ------------------------------------------------------------- */

static void attempts_flush(struct svc *v);

static void cancel_check(struct svc *v)
{
        attempts_flush(v);
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

/* ---- failure ------------------------------------------------------------ */

void sched_fail(struct svc *v, enum er_error_class cls, const char *fmt, ...)
{
        struct er_sched *s = v->s;
        va_list ap;

        if (v->phase == PH_FAILED)
                return;
        va_start(ap, fmt);
        vsnprintf(v->message, sizeof(v->message), fmt, ap);
        va_end(ap);
        v->error = cls;
        release_checks(v);
        er_timer_stop(s->o.loop, &v->timeout);
        er_timer_stop(s->o.loop, &v->backoff);
        if (v->log_open)
                er_log_line(&v->log, ER_LOG_NOTE, er_realtime_ms(), v->message, strlen(v->message));
        enter(v, PH_FAILED, v->message);
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
        sched_decide(s);
}

static void a_dep_failed(struct svc *v, const struct svc_arg *a)
{
        const struct svc *t = &v->s->svcs[a->dep->index];
        v->error = ER_DEPENDENCY_FAILED;
        if (t->error == ER_DEPENDENCY_FAILED)
                snprintf(v->message, sizeof(v->message), "%.64s <- %.400s", v->cfg->name,
                         t->message);
        else
                snprintf(v->message, sizeof(v->message), "%.64s <- %.64s: %.370s", v->cfg->name,
                         t->cfg->name, t->message);
        emit(v, v->message);
        sched_decide(v->s); /* its own dependents never start either */
}

/* ---- readiness ---------------------------------------------------------- */

static void mark_ready(struct svc *v)
{
        struct er_sched *s = v->s;
        char detail[300] = "";

        v->ready = true;
        v->ready_us = er_now_us();
        /* Ready after the main process exited: an exit check accepted it. */
        if (v->proc.exited)
                v->completed = true;
        if (!v->need_completed || v->completed)
                er_timer_stop(s->o.loop, &v->timeout);
        release_checks(v);
        if (v->cfg->n_checks) {
                er_check_describe(v->cfg->checks[v->cfg->n_checks - 1], detail, sizeof(detail));
                size_t n = strlen(detail);
                snprintf(detail + n, sizeof(detail) - n, ", %llu ms",
                         (unsigned long long)((v->ready_us - v->spawn_us) / 1000));
        }
        enter(v, v->completed ? PH_EXITED : PH_READY, detail);
        sched_decide(s);
}

/* Starts the check being waited for, or marks v ready after the last. */
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

static void a_check_ok(struct svc *v, const struct svc_arg *a)
{
        pid_t daemon = v->named_daemon;

        (void)a;
        cancel_check(v);
        v->named_daemon = 0;
        /* A pidfile check names the daemon a forking service left. */
        if (daemon > 0 && v->proc.exited && !v->proc.gone) {
                er_proc_adopt(&v->proc, daemon, v->s->o.no_pidfd);
                quietly(v, PH_STARTING);
        } else if (daemon > 0 && daemon != v->proc.pid) {
                /* The daemon wrote its pid file before its parent's exit
                 * reached us: adopt it when that exit comes. */
                v->adopt_pid = daemon;
        }
        v->check_i++;
        check_next(v);
}

/* When an address check (tcp, unix, http) gave up: where the service's
 * tree does listen, "; db listens on 127.0.0.1:51843", or "" (issue 19:
 * the port the check waited on is often the mistake). */
static void where_it_listens(struct svc *v, const struct er_check *c, char *buf, size_t len)
{
        pid_t pids[64];
        char addrs[200];
        int n;

        buf[0] = '\0';
        if (!c || !c->ops->probes_address || !v->proc_init || !v->spawned)
                return;
        n = er_group_pids(&v->proc.group, pids, 64);
        if (n <= 0)
                return;
        er_listening(pids, n < 64 ? (size_t)n : 64, addrs, sizeof(addrs));
        if (*addrs)
                snprintf(buf, len, "; %.64s listens on %s", v->cfg->name, addrs);
}

static void a_check_failed(struct svc *v, const struct svc_arg *a)
{
        char what[256], where[300];

        cancel_check(v);
        er_check_describe(a->run->check, what, sizeof(what));
        where_it_listens(v, a->run->check, where, sizeof(where));
        sched_fail(v, a->run->fatal ? ER_START_ERROR : ER_PROCESS_EXITED_WITH_ERROR, "%s: %s%s",
                   what, a->msg ? a->msg : "failed", where);
}

static void a_timeout(struct svc *v, const struct svc_arg *a)
{
        char limit[32], what[256] = "", where[300] = "";

        (void)a;
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
                where_it_listens(v, run->check, where, sizeof(where));
        }
        sched_fail(v, ER_TIMEOUT_EXPIRED, "not ready within %s%s%s%s%s", limit,
                   *what ? " (waiting for " : "", what, *what ? ")" : "", where);
}

/* ---- the runner's callbacks: which event they are ----------------------- */

/* The AlreadyRunning probe (SPEC §4): every tcp/unix/http check tried once
 * before the spawn; one that passes means something else holds the address. */
static void probe_result(struct svc *v, struct er_check_run *run, enum er_check_result result)
{
        er_runner_stop(run);
        if (result == ER_CHECK_READY && !v->probe_hit) {
                v->probe_hit = true;
                er_check_describe(run->check, v->probe_what, sizeof(v->probe_what));
        }
        if (--v->probes_pending == 0)
                dispatch(v, EV_PROBED, NULL);
}

static void on_check_done(struct er_check_run *run, enum er_check_result result, const char *msg)
{
        struct svc *v = run->owner;
        struct svc_arg a = {.run = run, .msg = msg};

        if (v->phase == PH_PROBING) {
                probe_result(v, run, result);
                return;
        }
        if (!v->check_active || run != &v->runs[v->check_i])
                return; /* a check no longer waited for */
        dispatch(v, result == ER_CHECK_READY ? EV_CHECK_OK : EV_CHECK_FAILED, &a);
}

/* -v: failed readiness attempts, a line each, except that identical ones
 * in a row (the same check, the same reason) are one line with their count
 * and time span, said when the row ends: another reason, or the check no
 * longer waited for (attempts_flush).  50 refused connections are one
 * line, not 50. */
static void attempt_line(struct svc *v, const char *line)
{
        struct er_sched *s = v->s;
        struct er_sched_event ev = {.service = v->index,
                                    .state = public_state[v->phase],
                                    .line = line,
                                    .line_len = strlen(line),
                                    .stream = ER_STREAM_BOTH};
        s->o.on_event(s->o.ud, &ev);
}

static void attempts_flush(struct svc *v)
{
        char line[400], what[160];

        if (!v->att.n)
                return;
        er_check_describe(v->att.run->check, what, sizeof(what));
        if (v->att.n == 1)
                snprintf(line, sizeof(line), "%s: attempt %u failed: %s", what, v->att.first,
                         v->att.why);
        else
                snprintf(line, sizeof(line), "%s: attempts %u-%u failed: %s (%u in %llu ms)", what,
                         v->att.first, v->att.last, v->att.why, v->att.n,
                         (unsigned long long)((v->att.last_us - v->att.first_us) / 1000));
        v->att.n = 0;
        attempt_line(v, line);
}

static void on_attempt_failed(struct er_check_run *run, const char *why)
{
        struct svc *v = run->owner;
        struct er_sched *s = v->s;

        v->failed_attempts++;
        if (!s->o.want_lines || !s->o.on_event)
                return;
        if (v->att.n && v->att.run == run && strcmp(v->att.why, why) == 0) {
                v->att.n++;
                v->att.last = run->attempts;
                v->att.last_us = er_now_us();
                return;
        }
        attempts_flush(v);
        v->att.run = run;
        v->att.n = 1;
        v->att.first = v->att.last = run->attempts;
        v->att.first_us = v->att.last_us = er_now_us();
        snprintf(v->att.why, sizeof(v->att.why), "%s", why);
}

static void on_status(struct er_check_run *run, const char *status)
{
        struct svc *v = run->owner;
        char detail[200];

        if (v->phase != PH_STARTING && v->phase != PH_DAEMONIZING)
                return;
        snprintf(detail, sizeof(detail), "notify: %s", status);
        emit(v, detail);
}

static void on_daemon(struct er_check_run *run, pid_t pid)
{
        struct svc *v = run->owner;

        if (v->phase != PH_PROBING && v->check_active && run == &v->runs[v->check_i])
                v->named_daemon = pid;
}

static void on_timeout(struct er_loop *loop, struct er_timer *t)
{
        (void)loop;
        dispatch(er_container_of(t, struct svc, timeout), EV_TIMEOUT, NULL);
}

static void on_backoff(struct er_loop *loop, struct er_timer *t)
{
        (void)loop;
        dispatch(er_container_of(t, struct svc, backoff), EV_BACKOFF_DUE, NULL);
}

/* ---- the process's callbacks -------------------------------------------- */

static void svc_line(struct er_proc *p, enum er_stream stream, const char *line, size_t len)
{
        struct svc *v = p->owner;
        struct er_sched *s = v->s;

        if (v->check_active)
                er_runner_line(&v->runs[v->check_i], stream, line, len);
        if (s->o.want_lines && s->o.on_event) {
                struct er_sched_event ev = {.service = v->index,
                                            .state = public_state[v->phase],
                                            .line = line,
                                            .line_len = len,
                                            .stream = stream};
                s->o.on_event(s->o.ud, &ev);
        }
}

static void svc_exit(struct er_proc *p)
{
        char how[64];
        struct svc_arg a = {.code = p->exit_signal ? -1 : p->exit_code, .how = how};

        sched_describe_status(how, sizeof(how), p->exit_code, p->exit_signal);
        dispatch(p->owner, EV_EXITED, &a);
}

static void svc_gone(struct er_proc *p)
{
        dispatch(p->owner, EV_GONE, NULL);
}

static void svc_log_failed(struct er_proc *p, int err)
{
        struct svc *v = p->owner;
        char msg[200];

        snprintf(msg, sizeof(msg),
                 "its log cannot be written (%s): its output is dropped and counted "
                 "(log_dropped_bytes); the service goes on",
                 strerror(-err));
        sched_emit_warning(v, msg);
}

static void svc_exec_known(struct er_proc *p);

static const struct er_proc_cb svc_cb = {
        .line = svc_line,
        .exited = svc_exit,
        .gone = svc_gone,
        .log_failed = svc_log_failed,
        .exec_known = svc_exec_known,
};

/* ---- exits and restarts ------------------------------------------------- */

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

/* The restart policy takes over: what the main process left behind goes
 * first (restarting), then a backoff, then the next run. */
static void restart_after_exit(struct svc *v, const char *how)
{
        char detail[160], wait[32];

        er_duration_format(backoff_us(v->restarts), wait, sizeof(wait));
        snprintf(detail, sizeof(detail), "%s: restart %u of %u in %s", how, v->restarts + 1,
                 v->cfg->max_restarts, wait);
        if (v->log_open)
                er_log_line(&v->log, ER_LOG_NOTE, er_realtime_ms(), detail, strlen(detail));
        release_checks(v);
        enter(v, PH_RESTARTING, detail);
        er_proc_stop(&v->proc, v->cfg->sig_stop, 0, v->cfg->sig_kill, true);
}

/* What every end of the main process looks at first: a crossed limit
 * (then v failed), or the daemon a pid file named before it (SPEC §4: the
 * forking parent ended with status 0; a later check may still be
 * pending): it is the service now. */
static bool exit_taken(struct svc *v, const struct svc_arg *a)
{
        if (sched_limits_crossed(v))
                return true;
        if (a->code == 0 && v->adopt_pid > 0 && !v->proc.gone) {
                pid_t pid = v->adopt_pid;
                v->adopt_pid = 0;
                if (er_proc_adopt(&v->proc, pid, v->s->o.no_pidfd) == 0)
                        return true;
        }
        return false;
}

static void a_exited_starting(struct svc *v, const struct svc_arg *a)
{
        if (exit_taken(v, a))
                return;
        /* An exit check decides (ready and completed at once, in
         * mark_ready); anything else is an exit before ready. */
        if (v->check_active && er_runner_exited(&v->runs[v->check_i], a->code))
                return;
        /* SPEC §4: exiting 0 while a pidfile check is pending is
         * daemonizing: keep waiting, then adopt the daemon. */
        if (a->code == 0 && pidfile_pending(v)) {
                enter(v, PH_DAEMONIZING,
                      "daemonizing: the main process exited 0, waiting for its pid file");
                return;
        }
        if (may_restart(v, a->code)) {
                restart_after_exit(v, a->how);
                return;
        }
        sched_fail(v, ER_PROCESS_EXITED_WITH_ERROR, "%s before ready%s", a->how, after_restarts(v));
}

static void a_exited_ready(struct svc *v, const struct svc_arg *a)
{
        if (exit_taken(v, a))
                return;
        if (may_restart(v, a->code)) {
                restart_after_exit(v, a->how);
                return;
        }
        if (a->code == 0) {
                v->completed = true;
                er_timer_stop(v->s->o.loop, &v->timeout);
                enter(v, PH_EXITED, a->how);
                sched_decide(v->s);
                return;
        }
        sched_fail(v, ER_PROCESS_EXITED_WITH_ERROR, "%s %s%s", a->how,
                   v->s->test_running ? "while the test ran" : "after it was ready",
                   after_restarts(v));
}

/* ---- the end of a run --------------------------------------------------- */

static void judge_stop(struct svc *v)
{
        const struct er_proc *p = &v->proc;
        char how[64], limit[32], sig[32], when[64];

        if (v->error != ER_OK)
                return;
        er_duration_format(v->cfg->stop_timeout_us, limit, sizeof(limit));
        er_signal_format(v->cfg->sig_kill, sig, sizeof(sig));
        /* SPEC §5.7: a second stop request skips the grace period. */
        if (v->killed_fast)
                snprintf(when, sizeof(when), "at once (a second stop request)");
        else
                snprintf(when, sizeof(when), "after %s stop timeout", limit);
        if (p->killed_before_exit) {
                /* SPEC §5.5: which processes, and how many. */
                v->error = ER_PROCESS_FINISHED_WITH_ERROR;
                if (p->killed_count > 1)
                        snprintf(v->message, sizeof(v->message),
                                 "killed by %s %s (%u processes of its tree, its main process %d "
                                 "among them)",
                                 sig, when, p->killed_count, (int)p->pid);
                else
                        snprintf(v->message, sizeof(v->message),
                                 "killed by %s %s (its main process %d)", sig, when, (int)p->pid);
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

/* The run's tree is gone: judged, accounted, reported stopped (a failed
 * service was announced when it failed), and what it depended on may
 * stop now. */
static void end_run(struct svc *v)
{
        account(v);
        sched_limits_unwatch(v);
        v->down = true;
        v->stop_us = er_now_us();
        judge_stop(v);
}

void sched_finish_down(struct svc *v)
{
        bool announced = v->error != ER_OK;

        end_run(v);
        if (announced)
                quietly(v, PH_FAILED);
        else
                enter(v, PH_STOPPED, v->message);
        sched_decide(v->s);
}

/* Forgets a finished run of v so that it can start again. */
void sched_svc_reset(struct svc *v)
{
        struct er_sched *s = v->s;

        if (!v->down)
                account(v); /* sched_finish_down did it otherwise */
        release_checks(v);
        free(v->runs);
        v->runs = NULL;
        er_timer_stop(s->o.loop, &v->timeout);
        er_timer_stop(s->o.loop, &v->backoff);
        sched_limits_unwatch(v);
        if (v->proc_init)
                er_proc_fini(&v->proc);
        v->proc_init = false;
        er_envp_free(v->envp);
        v->envp = NULL;
        v->check_i = 0;
        v->check_active = v->probe_hit = false;
        v->adopt_pid = v->named_daemon = 0;
        v->killed_fast = false;
        v->probes_pending = 0;
        v->spawned = v->ready = v->completed = v->down = false;
        v->first_spawn_us = 0;
        v->error = ER_OK;
        v->message[0] = '\0';
        quietly(v, PH_PENDING);
}

/* A tree that emptied by itself (a one-shot job, a failed service left
 * alone) is finished when the environment goes down; a stopped one now. */
static void a_gone(struct svc *v, const struct svc_arg *a)
{
        (void)a;
        if (v->proc.stopping || v->s->down_started)
                sched_finish_down(v);
}

/* A run that completed (a job's exit 0, an exit check passed) is over
 * once its tree is gone, not at the teardown: it ends now, judged and
 * accounted, and stays exited; the teardown has nothing to stop. */
static void a_gone_exited(struct svc *v, const struct svc_arg *a)
{
        if (v->proc.stopping) {
                a_gone(v, a);
                return;
        }
        end_run(v);
        sched_decide(v->s);
}

static void a_gone_daemonizing(struct svc *v, const struct svc_arg *a)
{
        sched_fail(v, ER_PROCESS_EXITED_WITH_ERROR,
                   "exited 0 before ready and left no process behind (no daemon to adopt)");
        a_gone(v, a);
}

/* The restart policy's run is over: the next one after a backoff, with the
 * same timeout when it never was ready. */
static void a_gone_restarting(struct svc *v, const struct svc_arg *a)
{
        bool was_ready = v->ready;
        uint64_t first = v->first_spawn_us;

        (void)a;
        sched_svc_reset(v);
        if (!was_ready)
                v->first_spawn_us = first;
        if (v->s->down_started)
                return;
        quietly(v, PH_BACKOFF);
        er_timer_start(v->s->o.loop, &v->backoff, backoff_us(v->restarts), on_backoff);
        v->restarts++;
}

static void start_run(struct svc *v);

/* `envrun restart` (or a start over what a failed run left): its stop is
 * reported, then the new run starts (er_sched_restart_service counted it). */
static void a_gone_restart_stop(struct svc *v, const struct svc_arg *a)
{
        (void)a;
        sched_finish_down(v);
        sched_svc_reset(v);
        start_run(v);
}

/* ---- stop requests ------------------------------------------------------ */

static void stop_tree(struct svc *v, bool fast)
{
        /* Its sig_kill comes at once: from this request, unless its own
         * stop timeout already sent it. */
        if (fast && !v->proc.killed)
                v->killed_fast = true;
        er_proc_stop(&v->proc, v->cfg->sig_stop, v->cfg->stop_timeout_us, v->cfg->sig_kill, fast);
        er_test_hold("stopping");
}

static void a_stop(struct svc *v, const struct svc_arg *a)
{
        release_checks(v);
        er_timer_stop(v->s->o.loop, &v->timeout);
        enter(v, PH_STOPPING, NULL);
        stop_tree(v, a->fast);
}

/* A failed service keeps its state; a stopping one takes the faster way. */
static void a_stop_tree(struct svc *v, const struct svc_arg *a)
{
        stop_tree(v, a->fast);
}

static void a_restart(struct svc *v, const struct svc_arg *a)
{
        (void)a;
        release_checks(v);
        er_timer_stop(v->s->o.loop, &v->timeout);
        enter(v, PH_RESTART_STOP, NULL);
        stop_tree(v, false);
}

static void a_restart_failed(struct svc *v, const struct svc_arg *a)
{
        (void)a;
        quietly(v, PH_RESTART_STOP);
        if (!v->proc.stopping)
                stop_tree(v, false);
}

static void a_restart_later(struct svc *v, const struct svc_arg *a)
{
        (void)a;
        quietly(v, PH_RESTART_STOP);
}

/* The environment goes down: nothing waits for readiness any more. */
static void a_down(struct svc *v, const struct svc_arg *a)
{
        (void)a;
        release_checks(v);
        er_timer_stop(v->s->o.loop, &v->timeout);
}

static void a_down_unstarted(struct svc *v, const struct svc_arg *a)
{
        a_down(v, a);
        er_timer_stop(v->s->o.loop, &v->backoff);
        quietly(v, PH_PENDING);
}

/* The restart asked for never happens: it does not count. */
static void a_down_no_restart(struct svc *v, const struct svc_arg *a)
{
        a_down(v, a);
        if (v->restarts)
                v->restarts--;
        quietly(v, PH_STOPPING);
}

/* ---- starting ----------------------------------------------------------- */

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

/* The spawn's first half (er_proc_spawn_begin): the process is created.
 * 0, or -1 when v failed. */
/* Said once per service, as a warning the driver keeps in sight, and
 * again in the report's closing lines. */
static void user_not_applied(struct svc *v)
{
        snprintf(v->user_why, sizeof(v->user_why),
                 "user '%.64s' not applied: envrun is not root, so %.64s runs as uid %u (envrun's "
                 "user)",
                 v->cfg->user, v->cfg->name, (unsigned)geteuid());
        if (v->log_open)
                er_log_line(&v->log, ER_LOG_NOTE, er_realtime_ms(), v->user_why,
                            strlen(v->user_why));
        sched_emit_warning(v, v->user_why);
}

static int spawn_begin(struct svc *v)
{
        struct er_sched *s = v->s;
        const struct er_service *cfg = v->cfg;
        struct er_err err = {0};

        struct er_spawn_opts opts = {
                .file = cfg->cmd.argv[0],
                .argv = cfg->cmd.argv,
                .envp = v->envp,
                .cwd = cfg->cmd.cwd,
                .stdin_fd = -1,
                .stdout_fd = -1,
                .stderr_fd = -1,
                .pgrp = ER_SPAWN_SETSID,
                .uid = cfg->user && !cfg->user_not_applied ? cfg->uid : -1,
                .gid = cfg->user && !cfg->user_not_applied ? cfg->gid : -1,
                .cgroup_fd = -1,
                .pdeathsig = SIGKILL,
                .no_pidfd = s->o.no_pidfd,
        };
        v->spawn_us = er_now_us();
        if (!v->first_spawn_us)
                v->first_spawn_us = v->spawn_us;
        v->cenv.deadline_us = v->first_spawn_us + cfg->timeout_us;
        quietly(v, PH_STARTING);
        if (cfg->user_not_applied && !v->user_why[0])
                user_not_applied(v);
        if (sched_limits_apply(v) < 0)
                return -1;
        if (er_proc_spawn_begin(&v->proc, &opts, true, &err) < 0) {
                sched_fail(v, ER_START_ERROR, "%s", err.msg);
                return -1;
        }
        return 0;
}

/* Its second half: the exec done (or failed: StartError), the checks and
 * the timeout begin. */
void sched_spawn_end(struct svc *v)
{
        struct er_sched *s = v->s;
        const struct er_service *cfg = v->cfg;
        struct er_err err = {0};
        char detail[300] = "";

        v->spawn_pending = false;
        s->n_spawning--;
        if (er_proc_spawn_end(&v->proc, &err) < 0) {
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
        if (!v->ready)
                er_test_hold("waiting");
        /* Last: a dependent waiting for it to be started may start, and
         * outside the loop the decision runs now, where a teardown under
         * way stops v itself (its checks must be running by then, to be
         * released). */
        sched_decide(s);
}

static void svc_exec_known(struct er_proc *p)
{
        sched_spawn_end(p->owner);
}

/* A spawn that does not wait for the exec: the child is created, and its
 * exec's outcome comes as a loop event (svc_exec_known), so envrun goes on
 * with the next spawn, probe or check meanwhile and the execs overlap. */
static void spawn_now(struct svc *v)
{
        struct er_sched *s = v->s;

        if (spawn_begin(v) < 0)
                return;
        er_test_hold("starting");
        v->spawn_pending = true;
        if (++s->n_spawning > s->spawning_max)
                s->spawning_max = s->n_spawning;
        if (er_proc_spawn_watch(&v->proc) < 0)
                sched_spawn_end(v); /* no event to wait for: wait for the exec */
}

static void a_probed(struct svc *v, const struct svc_arg *a)
{
        (void)a;
        if (v->probe_hit)
                sched_fail(v, ER_ALREADY_RUNNING,
                           "%s already answers before the service started: something else holds it",
                           v->probe_what);
        else
                spawn_now(v);
}

/* Its log, its process, its checks prepared (their environment included). */
static int prepare_run(struct svc *v)
{
        struct er_sched *s = v->s;
        const struct er_service *cfg = v->cfg;
        struct er_envlist extra;
        struct er_err err = {0};
        int r;

        if (!v->log_open) {
                r = er_log_open(&v->log, s->o.log_dir_fd, cfg->name, cfg->log_max_size);
                if (r < 0) {
                        sched_fail(v, ER_START_ERROR, "cannot open its log: %s", strerror(-r));
                        return r;
                }
                v->log_open = true;
                /* One write per batch of output, not one per line. */
                er_log_set_buffered(&v->log);
        }
        if (er_proc_init(&v->proc, s->o.loop, s->o.contain, cfg->name, &svc_cb, v, &v->log,
                         &err) < 0) {
                sched_fail(v, ER_START_ERROR, "%s", err.msg);
                return -1;
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
                .uid = cfg->user && !cfg->user_not_applied ? cfg->uid : -1,
                .gid = cfg->user && !cfg->user_not_applied ? cfg->gid : -1,
                .track = track_proc,
                .engine = s,
        };
        v->runs = calloc(cfg->n_checks ? cfg->n_checks : 1, sizeof(*v->runs));
        if (!v->runs) {
                sched_fail(v, ER_START_ERROR, "out of memory");
                return -ENOMEM;
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
                        return r;
                }
        }
        v->envp = sched_build_envp(s, &cfg->env, &extra, cfg->name, er_proc_marker(&v->proc));
        er_envlist_fini(&extra);
        if (!v->envp) {
                sched_fail(v, ER_START_ERROR, "out of memory");
                return -ENOMEM;
        }
        v->cenv.envp = v->envp;
        return 0;
}

static bool probes_address(const struct er_check *c)
{
        return c->ops->probes_address && c->ops->attempt;
}

/* A run begins: the AlreadyRunning probe when a check can tell, else the
 * spawn. */
static void start_run(struct svc *v)
{
        const struct er_service *cfg = v->cfg;

        er_timer_stop(v->s->o.loop, &v->backoff);
        v->spawn_us = er_now_us();
        if (prepare_run(v) < 0)
                return;
        /* Count first: a probe may finish inside er_runner_start. */
        for (size_t i = 0; i < cfg->n_checks; i++)
                v->probes_pending += probes_address(cfg->checks[i]);
        if (!v->probes_pending) {
                spawn_now(v);
                return;
        }
        enter(v, PH_PROBING, "checking that nothing else holds its address");
        for (size_t i = 0; i < cfg->n_checks && v->phase == PH_PROBING; i++)
                if (probes_address(cfg->checks[i]))
                        er_runner_start(&v->runs[i], true);
}

static void a_start(struct svc *v, const struct svc_arg *a)
{
        (void)a;
        start_run(v);
}

/* ---- the table ---------------------------------------------------------- */

/* An event that means nothing in a phase, on purpose. */
static void IGNORE(struct svc *v, const struct svc_arg *a)
{
        (void)v;
        (void)a;
}

/* Rows: phases; columns: events.  A column missing from a row is a bug.
 * Who sends what: EV_START only to pending and backoff (sched_decide,
 * er_sched_start_service); EV_STOP and EV_RESTART only to a run whose
 * tree is not down; EV_DOWN to every service at each down request.  An
 * exit during a stop, or after a failure, is judged when the tree is gone
 * (EV_GONE). */
static action_fn *const actions[N_PHASE][N_EVENT] = {
        [PH_PENDING] = {
                [EV_START] = a_start, [EV_DEP_FAILED] = a_dep_failed, [EV_DOWN] = IGNORE,
        },
        [PH_PROBING] = {
                [EV_PROBED] = a_probed, [EV_DOWN] = a_down_unstarted,
        },
        [PH_STARTING] = {
                [EV_CHECK_OK] = a_check_ok, [EV_CHECK_FAILED] = a_check_failed,
                [EV_TIMEOUT] = a_timeout, [EV_EXITED] = a_exited_starting, [EV_GONE] = a_gone,
                [EV_STOP] = a_stop, [EV_RESTART] = a_restart, [EV_DOWN] = a_down,
        },
        [PH_DAEMONIZING] = {
                [EV_CHECK_OK] = a_check_ok, [EV_CHECK_FAILED] = a_check_failed,
                [EV_TIMEOUT] = a_timeout, [EV_GONE] = a_gone_daemonizing,
                [EV_STOP] = a_stop, [EV_RESTART] = a_restart, [EV_DOWN] = a_down,
        },
        [PH_READY] = {
                [EV_TIMEOUT] = a_timeout, [EV_EXITED] = a_exited_ready, [EV_GONE] = a_gone,
                [EV_STOP] = a_stop, [EV_RESTART] = a_restart, [EV_DOWN] = a_down,
        },
        [PH_EXITED] = {
                [EV_GONE] = a_gone_exited, [EV_STOP] = a_stop, [EV_RESTART] = a_restart,
                [EV_DOWN] = a_down,
        },
        [PH_RESTARTING] = {
                [EV_TIMEOUT] = a_timeout, [EV_GONE] = a_gone_restarting,
                [EV_STOP] = a_stop_tree, [EV_RESTART] = IGNORE, [EV_DOWN] = a_down,
        },
        [PH_BACKOFF] = {
                [EV_BACKOFF_DUE] = a_start, [EV_START] = a_start, [EV_DOWN] = a_down_unstarted,
        },
        [PH_STOPPING] = {
                [EV_GONE] = a_gone, [EV_STOP] = a_stop_tree, [EV_RESTART] = a_restart_later,
                [EV_EXITED] = IGNORE, [EV_DOWN] = IGNORE,
        },
        [PH_RESTART_STOP] = {
                [EV_GONE] = a_gone_restart_stop, [EV_STOP] = a_stop_tree,
                [EV_RESTART] = IGNORE, [EV_EXITED] = IGNORE, [EV_DOWN] = a_down_no_restart,
        },
        [PH_STOPPED] = {
                [EV_DOWN] = IGNORE,
        },
        [PH_FAILED] = {
                [EV_GONE] = a_gone, [EV_STOP] = a_stop_tree, [EV_RESTART] = a_restart_failed,
                [EV_EXITED] = IGNORE, [EV_DOWN] = a_down,
        },
};

static void dispatch(struct svc *v, enum svc_event e, const struct svc_arg *a)
{
        static const struct svc_arg none;
        action_fn *act;

        /* An event for a service whose exec is pending (a stop, down): the
         * spawn ends first, waiting for the exec if it must, so that the
         * event meets a service that is started or failed, never half of
         * one. */
        if (v->spawn_pending)
                sched_spawn_end(v);
        act = actions[v->phase][e];

        if (!act) {
                /* A bug of the scheduler's: told to the driver as a warning
                 * and counted (er_sched_unexpected), the event dropped. */
                char msg[128];
                snprintf(msg, sizeof(msg), "internal: event '%s' in phase '%s' (ignored)",
                         event_names[e], phase_names[v->phase]);
                v->s->unexpected++;
                sched_emit_warning(v, msg);
                return;
        }
        act(v, a ? a : &none);
}

void sched_svc_event(struct svc *v, enum svc_event e, bool fast)
{
        struct svc_arg a = {.fast = fast};
        dispatch(v, e, &a);
}

void sched_svc_dep_failed(struct svc *v, const struct er_dep *d)
{
        struct svc_arg a = {.dep = d};
        dispatch(v, EV_DEP_FAILED, &a);
}

const char *sched_phase_name(enum svc_phase p)
{
        return phase_names[p];
}

/* Everything a service holds, at the end of the scheduler. */
void sched_svc_free(struct svc *v)
{
        struct er_sched *s = v->s;

        v->att.n = 0; /* no line to a driver that is going away */
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
