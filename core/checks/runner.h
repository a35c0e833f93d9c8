/* runner: the engine's side of readiness checks: a check's run, what a
 * service offers it, and the generic runner (checks/runner.c) that drives
 * every kind through its er_check_ops.  The configuration side, and the
 * ops table itself, is model/check.h. */
#ifndef ER_RUNNER_H
#define ER_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "model/check.h"
#include "proc/loop.h"

/* A running check: what the engine gives a kind while it waits.  Results
 * arrive through done(run, ER_CHECK_READY or ER_CHECK_FAILED, message),
 * at most once per start, possibly from inside start. */
enum er_check_result {
        ER_CHECK_READY,
        ER_CHECK_FAILED,
};

struct er_proc;
struct er_group;
struct er_log;
struct er_contain;
struct er_envlist;

/* What a service offers its checks; owned by the engine, alive while the
 * service's checks run. */
struct er_check_env {
        const char *service;
        char *const *envp;          /* the service's environment (probes run with it) */
        const char *cwd;            /* the service's working directory */
        struct er_log *log;         /* the service's log: probe output goes here ('P') */
        struct er_contain *contain; /* for a probe's own process group */
        struct er_group *group;     /* the service's processes (notify, pidfile membership) */
        const char *state_dir;      /* the instance's private directory (sockets) */
        bool no_pidfd;
        long uid, gid;        /* the service's user: probes run as it; -1: envrun's */
        uint64_t deadline_us; /* the service's timeout (er_now_us clock); 0: none */
        /* Probe processes must be known to the engine's SIGCHLD reaper. */
        void (*track)(void *engine, struct er_proc *p, bool on);
        void *engine;
};

struct er_check_run {
        const struct er_check *check;
        struct er_loop *loop;
        const struct er_check_env *env;
        void *owner; /* the service, for done() */
        void (*done)(struct er_check_run *run, enum er_check_result result, const char *msg);
        /* Optional: each failed attempt or re-check (for -v). */
        void (*attempt_failed)(struct er_check_run *run, const char *why);
        /* Optional: what a kind reports besides ready or failed, each
         * through a callback of its own, so that the run holds no kind's
         * state.  notify: a STATUS= (shown in progress). */
        void (*status_changed)(struct er_check_run *run, const char *status);
        /* pidfile: the daemon the file names, just before done(READY). */
        void (*daemon)(struct er_check_run *run, pid_t pid);

        bool once;            /* one attempt, then done (the AlreadyRunning probe) */
        bool fatal;           /* it failed for good: it can never pass (StartError) */
        unsigned attempts;    /* failed attempts so far */
        char last_error[160]; /* why the last attempt failed: "connection refused" */
        void *priv;           /* the kind's own state */

        /* the generic runner's state (runner.c) */
        bool active, attempting, prepared;
        uint64_t delay_us;   /* the last wait between attempts (backoff up to interval) */
        uint64_t started_us; /* when the wait began: the backoff grows with it */
        struct er_timer retry;
};

/* --- the engine's calls (runner.c) --- */
void er_runner_init(struct er_check_run *run, const struct er_check *c, struct er_loop *loop,
                    const struct er_check_env *env, void *owner,
                    void (*done)(struct er_check_run *, enum er_check_result, const char *));
int er_runner_prepare(struct er_check_run *run, struct er_envlist *extra);
/* Starts waiting; once: a single attempt (polled kinds only) reported as
 * READY (it passed: something answers) or FAILED. */
int er_runner_start(struct er_check_run *run, bool once);
void er_runner_line(struct er_check_run *run, enum er_stream stream, const char *line, size_t len);
bool er_runner_exited(struct er_check_run *run, int code);
/* Stops waiting (no done() follows); idempotent. */
void er_runner_stop(struct er_check_run *run);
/* Stops and undoes prepare. */
void er_runner_release(struct er_check_run *run);
/* For polled kinds: the attempt in flight ended.  `why` says why it failed
 * ("connection refused"), NULL when ok. */
void er_runner_attempt_done(struct er_check_run *run, bool ok, const char *why);
/* The check can never pass (a probe program that does not exist, no
 * libcurl): stops it and reports FAILED with run->fatal set, which the
 * engine reports as a StartError rather than waiting for the timeout. */
void er_runner_fail(struct er_check_run *run, const char *why);
/* Microseconds left until the service's deadline (UINT64_MAX: none). */
uint64_t er_runner_time_left(const struct er_check_run *run);

/* --- for the kinds --- */
/* An ops->cancel for a polled kind whose state is one malloc'd block in
 * run->priv (tcp, unix): abandons the attempt in flight through
 * ops->abandon, then frees run->priv and sets it to NULL. */
void er_runner_cancel_priv(struct er_check_run *run);

#endif
