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

void sched_emit_test(struct er_sched *s, enum er_svc_state st, const char *detail)
{
        struct er_sched_event ev = {.service = SIZE_MAX, .state = st, .detail = detail};
        if (s->test_start_us)
                ev.elapsed_ms = sched_since_ms(s->test_start_us);
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

/* --- dependencies -------------------------------------------------------- */

static bool dep_met(const struct er_sched *s, const struct er_dep *d)
{
        const struct svc *t = &s->svcs[d->index];
        /* A service stopped by hand (SPEC §8), or failed since, no longer
         * satisfies started or ready; a job that completed stays completed. */
        bool lost = (t->down || t->phase == PH_FAILED) && !t->completed;
        switch (d->cond) {
        case ER_COND_STARTED:
                return t->spawned && !lost;
        case ER_COND_READY:
                return t->ready && !lost;
        case ER_COND_COMPLETED:
                return t->completed;
        }
        return false;
}

static bool dep_failed(const struct er_sched *s, const struct er_dep *d)
{
        const struct svc *t = &s->svcs[d->index];
        return t->phase == PH_FAILED || t->error == ER_DEPENDENCY_FAILED;
}

/* --- decisions ------------------------------------------------------------ */

/* The bring-up: starts what can start, marks what never will, and notices
 * its end. */
static void start_pass(struct er_sched *s)
{
        bool busy = false;

        for (size_t i = 0; i < s->n; i++) {
                struct svc *v = &s->svcs[i];
                const struct er_dep *failed = NULL;
                bool met = true;
                if (v->phase != PH_PENDING || v->error != ER_OK || !s->selected[i])
                        continue;
                for (size_t k = 0; k < v->cfg->n_deps && !failed; k++) {
                        const struct er_dep *d = &v->cfg->deps[k];
                        if (dep_failed(s, d))
                                failed = d;
                        met = met && dep_met(s, d);
                }
                if (failed)
                        sched_svc_dep_failed(v, failed);
                else if (met && !s->failed && !s->interrupted)
                        sched_svc_event(v, EV_START, false);
        }
        for (size_t i = 0; i < s->n; i++) {
                const struct svc *v = &s->svcs[i];
                if (v->error != ER_OK || !s->selected[i])
                        continue;
                if (sched_public_state(v) == ER_SVC_PENDING ||
                    sched_public_state(v) == ER_SVC_STARTING ||
                    (v->need_completed && !v->completed && v->phase != PH_FAILED))
                        busy = true;
        }
        if (!busy)
                s->up_done = true;
}

/* SPEC §5.5: a service stops only after everything that depends on it,
 * directly or not, has stopped (api -> migrate -> db: db outlives api even
 * when migrate is long finished). */
static bool all_dependents_down(struct er_sched *s, size_t idx)
{
        const uint64_t *row = er_reach_dependents(&s->reach, idx);

        for (size_t w = 0; w < s->reach.words; w++)
                for (uint64_t bits = row[w]; bits; bits &= bits - 1) {
                        const struct svc *d = &s->svcs[w * 64 + (size_t)__builtin_ctzll(bits)];
                        /* A dependent whose exec is pending is a running
                         * one the teardown has not reached yet. */
                        if ((d->spawned || d->spawn_pending) && !d->down)
                                return false;
                }
        return true;
}

/* The teardown: stops every run whose dependents are down, and takes the
 * faster way with those already stopping after a second request. */
static void stop_pass(struct er_sched *s)
{
        for (size_t i = s->n; i-- > 0;) {
                struct svc *v = &s->svcs[i];
                if (!v->spawned || v->down)
                        continue;
                if (v->proc.stopping && (!s->fast || v->killed_fast || v->proc.killed))
                        continue;
                if (all_dependents_down(s, i))
                        sched_svc_event(v, EV_STOP, s->fast);
        }
}

/* Rounds of decisions until one changes nothing more. */
static void decide_rounds(struct er_sched *s)
{
        s->deciding = true;
        while (s->decide_again) {
                s->decide_again = false;
                if (s->down_started)
                        stop_pass(s);
                else if (s->up_started)
                        start_pass(s);
        }
        s->deciding = false;
}

void sched_decide(struct er_sched *s)
{
        s->decide_again = true;
        /* From inside an event's callback: once, at the batch's end
         * (on_batch), after every event of it was seen; from inside a
         * decision: one more round of it.  Else (the driver's calls): now. */
        if (s->deciding || er_loop_dispatching(s->o.loop))
                return;
        decide_rounds(s);
}

/* Ends every pending spawn, waiting for their execs, before a driver's
 * command looks at the services: a stop, start or restart meets services
 * that are started or failed (their children known to the reaping,
 * "running" for the control API).  Rare, and short: an exec. */
static void settle(struct er_sched *s)
{
        for (size_t i = 0; s->n_spawning && i < s->n; i++)
                if (s->svcs[i].spawn_pending)
                        sched_spawn_end(&s->svcs[i]);
}

static void on_batch(struct er_loop *loop, struct er_hook *hook, bool end)
{
        struct er_sched *s = er_container_of(hook, struct er_sched, batch);

        (void)loop;
        /* The decisions the batch's events asked for, once they were all
         * seen. */
        if (end && !s->deciding && s->decide_again)
                decide_rounds(s);
}

/* --- down ----------------------------------------------------------------- */

void er_sched_down(struct er_sched *s, bool fast)
{
        s->down_started = true;
        s->up_done = true;
        if (fast)
                s->fast = true;
        fast = s->fast;
        if (s->test_running && fast)
                er_proc_stop(&s->test, SIGKILL, 0, SIGKILL, true);
        for (size_t i = 0; i < s->n; i++)
                sched_svc_event(&s->svcs[i], EV_DOWN, fast);
        /* Trees that emptied by themselves while the environment was up. */
        for (size_t i = 0; i < s->n; i++) {
                struct svc *v = &s->svcs[s->n - 1 - i];
                if (v->spawned && v->proc.gone && !v->down)
                        sched_finish_down(v);
        }
        sched_decide(s);
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

/* Whether v's run still has a tree: a service that crashed, a job that
 * completed, a failed one whose processes are gone can start again. */
static bool svc_running(const struct svc *v)
{
        return v->spawned && !v->down && !v->proc.gone;
}

int er_sched_stop_service(struct er_sched *s, size_t idx)
{
        struct svc *v = &s->svcs[idx];

        settle(s);
        if (!svc_running(v) || v->proc.stopping)
                return -EALREADY;
        sched_svc_event(v, EV_STOP, false);
        return 0;
}

/* 0 when every dependency of v holds, else -EAGAIN naming the first that
 * does not. */
static int deps_hold(struct er_sched *s, const struct svc *v, char *why, size_t len)
{
        for (size_t k = 0; k < v->cfg->n_deps; k++)
                if (!dep_met(s, &v->cfg->deps[k])) {
                        snprintf(why, len, "its dependency '%s' is not %s",
                                 v->cfg->deps[k].name, er_cond_name(v->cfg->deps[k].cond));
                        return -EAGAIN;
                }
        return 0;
}

/* A run that is over but for its tree: the main process failed or
 * completed, and what it left may still run. */
static bool run_over(const struct svc *v)
{
        return v->phase == PH_FAILED || v->phase == PH_EXITED;
}

int er_sched_start_service(struct er_sched *s, size_t idx, char *why, size_t len)
{
        struct svc *v = &s->svcs[idx];

        settle(s);
        if (s->down_started)
                return -ESHUTDOWN;
        if ((svc_running(v) && !run_over(v)) || v->phase == PH_PROBING)
                return -EBUSY;
        if (deps_hold(s, v, why, len) < 0)
                return -EAGAIN;
        s->selected[idx] = true;
        if (svc_running(v)) {
                /* What the last run left goes first, then the new run. */
                sched_svc_event(v, EV_RESTART, false);
                return 0;
        }
        if (v->spawned || v->error != ER_OK)
                sched_svc_reset(v);
        sched_svc_event(v, EV_START, false);
        sched_decide(s); /* what its start changed */
        return 0;
}

/* A restart counts when it is asked for, once per new run: a restart
 * asked for again before the first one's stop ended is the same one. */
int er_sched_restart_service(struct er_sched *s, size_t idx, char *why, size_t len)
{
        settle(s);
        struct svc *v = &s->svcs[idx];
        enum svc_phase before = v->phase;
        int r;

        if (s->down_started)
                return -ESHUTDOWN;
        /* The new run needs what a start needs: refuse before stopping the
         * old one rather than leave the service down. */
        if (deps_hold(s, v, why, len) < 0)
                return -EAGAIN;
        if (!svc_running(v)) {
                r = er_sched_start_service(s, idx, why, len);
                if (r == 0)
                        v->restarts++;
                return r;
        }
        sched_svc_event(v, EV_RESTART, false);
        if (v->phase == PH_RESTART_STOP && before != PH_RESTART_STOP)
                v->restarts++;
        return 0;
}

enum er_svc_state er_sched_state(const struct er_sched *s, size_t idx)
{
        return sched_public_state(&s->svcs[idx]);
}

static bool svc_is_job(const struct svc *v)
{
        if (v->need_completed)
                return true;
        for (size_t i = 0; i < v->cfg->n_checks; i++)
                if (v->cfg->checks[i]->ops == &er_check_exit_ops)
                        return true;
        return false;
}

void er_sched_info(const struct er_sched *s, size_t idx, struct er_svc_info *ret)
{
        const struct svc *v = &s->svcs[idx];

        *ret = (struct er_svc_info){
                .state = sched_public_state(v),
                .selected = s->selected[idx],
                .pid = v->proc_init ? v->proc.pid : 0,
                /* How long its run took to be ready, not the time since
                 * the instance started (issue 19). */
                .ready_ms = v->ready ? (v->ready_us - v->spawn_us) / 1000 : ER_REPORT_NO_TIME,
                .restarts = v->restarts,
                .job = svc_is_job(v),
                .exit_code = v->proc_init && v->proc.exited && !v->proc.exit_signal
                                     ? v->proc.exit_code : -1,
                .ran_ms = v->down && v->spawned ? (v->stop_us - v->spawn_us) / 1000
                                                : ER_REPORT_NO_TIME,
                .error = v->error,
                .message = v->message,
        };
}

size_t er_sched_spawning_max(const struct er_sched *s)
{
        return s->spawning_max;
}

unsigned er_sched_unexpected(const struct er_sched *s)
{
        return s->unexpected;
}

int er_sched_interrupted(const struct er_sched *s)
{
        return s->interrupted;
}

/* --- signals -------------------------------------------------------------- */

#define REAP_BATCH 256

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

/* The service whose spawn created pid and whose exec is pending. */
static struct svc *pending_by_pid(struct er_sched *s, pid_t pid)
{
        for (size_t i = 0; s->n_spawning && i < s->n; i++)
                if (s->svcs[i].spawn_pending && er_proc_pending_pid(&s->svcs[i].proc) == pid)
                        return &s->svcs[i];
        return NULL;
}

/* More of a SIGCHLD's reaping, after the loop's timers had their turn. */
static void on_reap_more(struct er_loop *loop, struct er_timer *t)
{
        (void)loop;
        er_sched_sigchld(er_container_of(t, struct er_sched, reap_more));
}

void er_sched_sigchld(struct er_sched *s)
{
        unsigned n = 0;

        /* Peek without reaping (WNOWAIT): a tracked pid is reaped by its
         * owner, which wants its status; an orphan that reparented to envrun
         * (the subreaper) is reaped here.  A blind waitpid(-1) would steal
         * the services' statuses.  At most REAP_BATCH at a time: a fork
         * storm's orphans come by the thousand, and each reap contends for
         * the kernel's task list with the storm's forks, which held the
         * loop away from its timers (a stop timeout's kill) for seconds;
         * the rest follow from a timer due at once, after those. */
        for (;; n++) {
                if (n == REAP_BATCH) {
                        er_timer_start(s->o.loop, &s->reap_more, 0, on_reap_more);
                        break;
                }
                siginfo_t si;
                struct er_proc *p;
                struct svc *v;
                memset(&si, 0, sizeof(si));
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
                        break;
                /* A child that ended before its exec's outcome was read
                 * (a command that fails at once, a job that exits at once):
                 * the outcome is there to read now, and comes first. */
                if ((v = pending_by_pid(s, si.si_pid))) {
                        sched_spawn_end(v);
                        continue;
                }
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

/* up SERVICE...: those services and, transitively, their dependencies,
 * into out (only NULL: every service). */
static void closure(const struct er_sched *s, const bool *only, bool *out)
{
        for (size_t i = 0; i < s->n; i++)
                out[i] = !only || only[i];
        for (size_t i = 0; only && i < s->n; i++) {
                const uint64_t *deps = er_reach_deps(&s->reach, i);
                if (!only[i])
                        continue;
                for (size_t k = 0; k < s->n; k++)
                        if (er_reach_has(deps, k))
                                out[k] = true;
        }
}

static bool svc_up(const struct svc *v)
{
        return v->phase == PH_READY || (v->phase == PH_EXITED && v->completed);
}

int er_sched_up_more(struct er_sched *s, const bool *only, size_t *ret_todo)
{
        bool *add = calloc(s->n ? s->n : 1, sizeof(*add));
        size_t todo = 0;

        settle(s);
        if (!add)
                return -ENOMEM;
        if (s->down_started) {
                free(add);
                return -ESHUTDOWN;
        }
        closure(s, only, add);
        for (size_t i = 0; i < s->n; i++) {
                struct svc *v = &s->svcs[i];
                bool was = s->selected[i];
                if (!add[i] || svc_up(v))
                        continue;
                s->selected[i] = true;
                /* What ended (stopped, or failed with nothing left of it)
                 * or never could start (its dependency failed) starts over;
                 * what the environment is bringing up already (a race of
                 * two `up`) is no work of this request's. */
                if (v->phase == PH_STOPPED || (v->phase == PH_FAILED && !svc_running(v)) ||
                    (v->phase == PH_PENDING && v->error != ER_OK))
                        sched_svc_reset(v);
                else if (was && v->phase != PH_PENDING && v->phase != PH_FAILED)
                        continue;
                else if (was && v->phase == PH_PENDING && !s->up_done)
                        continue;
                todo++;
        }
        free(add);
        *ret_todo = todo;
        if (todo) {
                /* A bring-up of its own: its failure is not the last one's. */
                s->failed = false;
                s->up_done = false;
                sched_decide(s);
        }
        return 0;
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
        if (!s->selected || er_graph_reach(c, &s->reach) < 0) {
                free(s->selected);
                free(s->svcs);
                free(s);
                return -ENOMEM;
        }
        closure(s, opts->only, s->selected);
        for (size_t i = 0; i < s->n; i++)
                for (size_t k = 0; k < c->services[i].n_deps; k++)
                        if (c->services[i].deps[k].cond == ER_COND_COMPLETED)
                                s->svcs[c->services[i].deps[k].index].need_completed = true;
        er_timer_init(&s->test_timer);
        er_timer_init(&s->test_kill);
        er_timer_init(&s->reap_more);
        er_hook_start(s->o.loop, &s->batch, on_batch);
        *ret = s;
        return 0;
}

void er_sched_up(struct er_sched *s)
{
        s->up_started = true;
        sched_decide(s);
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
                if (s->svcs[i].phase == PH_FAILED)
                        return &s->svcs[i];
        return NULL;
}

/* The end of a failed service's log, read back for its report. */
#define TAIL_READ (ER_REPORT_TAIL_LINES + 60)
struct tail_read {
        char *line[TAIL_READ];
        size_t len[TAIL_READ], n;
};

static void tail_cb(void *ud, const char *line, size_t len)
{
        struct tail_read *t = ud;
        char *copy;

        if (t->n == TAIL_READ || !(copy = malloc(len + 1)))
                return;
        memcpy(copy, line, len);
        copy[len] = '\0';
        t->line[t->n] = copy;
        t->len[t->n++] = len;
}

/* Whether a log line is the note envrun wrote when v failed:
 * "<timestamp> - <its message>". */
static bool is_failure_note(const struct svc *v, const char *line, size_t len)
{
        const char *sp = memchr(line, ' ', len);
        size_t ml = strlen(v->message);
        return sp && (size_t)(line + len - sp) == ml + 3 && strncmp(sp, " - ", 3) == 0 &&
               memcmp(sp + 3, v->message, ml) == 0;
}

/* rs's tail: the lines up to v's failure (the note written then), what
 * came after (the stop's chatter) only counted; the last lines when the
 * note is not found (rotated away). */
static void failure_tail(struct er_sched *s, const struct svc *v, struct er_report_service *rs)
{
        struct tail_read t = {.n = 0};
        size_t end;

        er_log_flush((struct er_log *)&v->log);
        er_log_tail(s->o.log_dir_fd, v->cfg->name, TAIL_READ, tail_cb, &t);
        for (end = t.n; end > 0 && !is_failure_note(v, t.line[end - 1], t.len[end - 1]); end--)
                ;
        if (end == 0)
                end = t.n;
        rs->after_failure = (unsigned)(t.n - end);
        for (size_t i = end > ER_REPORT_TAIL_LINES ? end - ER_REPORT_TAIL_LINES : 0; i < end; i++)
                er_report_tail_push(rs, t.line[i], t.len[i]);
        for (size_t i = 0; i < t.n; i++)
                free(t.line[i]);
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
                rs->not_started = v->error == ER_OK && !v->spawned;
                rs->job = svc_is_job(v);
                if (v->error == ER_OK && !v->spawned && s->failed) {
                        /* Never started because another service failed the
                         * bring-up: not "ok", and not a failure of its own
                         * (DependencyFailed is for its own dependencies'). */
                        const struct svc *f = first_failed(s);
                        snprintf(rs->message, sizeof(rs->message),
                                 "not started: the bring-up failed at '%.64s'",
                                 f ? f->cfg->name : "?");
                } else if (v->error == ER_OK && !v->spawned && !s->up_started && s->test_spawn_failed) {
                        snprintf(rs->message, sizeof(rs->message),
                                 "not started: the test command cannot run (%.200s)",
                                 s->test_message);
                } else if (v->error == ER_OK && !v->spawned) {
                        snprintf(rs->message, sizeof(rs->message), "not started (interrupted)");
                } else
                        snprintf(rs->message, sizeof(rs->message), "%s", v->message);
                snprintf(rs->limits_not_enforced, sizeof(rs->limits_not_enforced), "%s",
                         v->limits_why);
                snprintf(rs->user_not_applied, sizeof(rs->user_not_applied), "%s", v->user_why);
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
                        failure_tail(s, v, rs);
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
        r->interrupted = s->interrupted;
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
        for (size_t i = 0; i < s->n; i++)
                sched_svc_free(&s->svcs[i]);
        if (s->test_init)
                er_proc_fini(&s->test);
        er_timer_stop(s->o.loop, &s->test_timer);
        er_timer_stop(s->o.loop, &s->test_kill);
        er_timer_stop(s->o.loop, &s->reap_more);
        er_envp_free(s->test_envp);
        free(s->extra);
        free(s->selected);
        er_hook_stop(s->o.loop, &s->batch);
        er_reach_fini(&s->reach);
        free(s->svcs);
        free(s);
}

