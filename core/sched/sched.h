/* sched: the engine.  It brings an environment up in dependency order,
 * holds it while a test command runs, and brings it down in reverse order,
 * on one event loop; it emits state changes as they happen and fills the
 * report (SPEC §5).  It knows nothing of verbs: `exec` and the detached
 * supervisor drive the same calls.
 *
 * A service moves through a table of states (s6-supervise style):
 *   pending -> starting -> ready -> (exited) -> stopping -> stopped
 *   and failed from any of them; never-started services stay pending and
 *   are reported DependencyFailed (a dependency failed) or not started. */
#ifndef ER_SCHED_H
#define ER_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "checks/runner.h"
#include "model/config.h"
#include "proc/contain.h"
#include "proc/loop.h"
#include "report/report.h"

enum er_svc_state {
        ER_SVC_PENDING,
        ER_SVC_STARTING,
        ER_SVC_READY,
        ER_SVC_EXITED,
        ER_SVC_STOPPING,
        ER_SVC_STOPPED,
        ER_SVC_FAILED,
};

const char *er_svc_state_name(enum er_svc_state s);

/* What the scheduler tells its driver. */
struct er_sched_event {
        size_t service;              /* index in config->services; SIZE_MAX: the test */
        enum er_svc_state state;
        const char *detail;          /* "tcp 127.0.0.1:5433", "exited 1 before ready", ... */
        uint64_t elapsed_ms;         /* since the service spawned (or 0) */
        const char *line;            /* a line of output (state unchanged), or NULL */
        size_t line_len;
        enum er_stream stream;
        bool warning;                /* detail is a warning to keep in sight (state unchanged) */
};

struct er_sched_opts {
        const struct er_config *config;
        struct er_loop *loop;
        struct er_contain *contain;
        int log_dir_fd;              /* logs/: one log per service */
        char *const *environ;        /* envrun's environment */
        const char *state_dir;       /* ENVRUN_STATE_DIR */
        const unsigned *ports;       /* one per config->ports */
        uint64_t t0_us;              /* the start of the command, for *_ms */
        bool no_pidfd;               /* force the SIGCHLD path */
        bool want_lines;             /* send output lines to on_event (-v, up) */
        const bool *only;            /* up SERVICE...: the services to bring up (with
                                      * their dependencies), or NULL for all; the others
                                      * stay pending until started one by one, and the
                                      * report leaves them out.  Copied. */
        void (*on_event)(void *ud, const struct er_sched_event *ev);
        void *ud;
};

struct er_sched;

int er_sched_new(const struct er_sched_opts *opts, struct er_sched **ret);
void er_sched_free(struct er_sched *s);

/* Starts bringing every service up. */
void er_sched_up(struct er_sched *s);
/* True once bring-up finished (every service ready or completed, or it failed). */
bool er_sched_up_done(const struct er_sched *s);
bool er_sched_failed(const struct er_sched *s);

/* Runs the test command (argv; cwd NULL: envrun's own; env layers from the
 * file's test: section when `from_file`).  timeout_us 0: none. */
int er_sched_run_test(struct er_sched *s, char *const *argv, const char *cwd, bool from_file,
                      uint64_t timeout_us);
bool er_sched_test_done(const struct er_sched *s);
/* Names the test command before the bring-up, so that a report of a failed
 * bring-up still shows it, as not run.  A program looked up in PATH (no
 * '/') is looked up now, with the test's environment: when it is missing
 * (or not executable) the test has failed (127, 126) and nothing should
 * start; -errno then. */
int er_sched_plan_test(struct er_sched *s, char *const *argv, const char *cwd, bool from_file);

/* Tears everything down in reverse dependency order; `fast` skips grace
 * periods (a second SIGINT). */
void er_sched_down(struct er_sched *s, bool fast);
bool er_sched_down_done(const struct er_sched *s);

/* `up SERVICE...` on a running environment: adds those services (only
 * NULL: all) and their dependencies to it and brings up what is not up;
 * ready services and completed jobs are left alone, stopped ones and
 * failed ones with nothing left of them start over, and what the running
 * bring-up already starts is left to it.  *ret_todo: how many this request
 * starts (0: nothing to do, AlreadyRunning).  The bring-up then runs as er_sched_up's
 * (er_sched_up_done, er_sched_failed).  0, -ESHUTDOWN going down, -ENOMEM. */
int er_sched_up_more(struct er_sched *s, const bool *only, size_t *ret_todo);

/* One service at a time (SPEC §8): stop it (its dependents are left
 * running), start it (its dependencies' conditions must hold: -EAGAIN with
 * `why` naming the one that does not), restart it (the same condition; stop,
 * then start once its tree is gone).  -EALREADY: not running; -EBUSY: running; -ESHUTDOWN: the
 * environment is going down. */
int er_sched_stop_service(struct er_sched *s, size_t idx);
int er_sched_start_service(struct er_sched *s, size_t idx, char *why, size_t len);
int er_sched_restart_service(struct er_sched *s, size_t idx, char *why, size_t len);
enum er_svc_state er_sched_state(const struct er_sched *s, size_t idx);

/* What `status` shows of a service (SPEC §8). */
struct er_svc_info {
        enum er_svc_state state;
        bool selected;               /* part of this environment (see opts.only) */
        pid_t pid;                   /* the main pid of its current or last run, or 0 */
        uint64_t ready_ms;           /* from its run's spawn to ready, or ER_REPORT_NO_TIME */
        unsigned restarts;
        bool job;                    /* a one-shot job: an exit check, or a dependent
                                      * waits for its completion; its exit 0 is its end */
        int exit_code;               /* of its last run's main process, or -1 */
        uint64_t ran_ms;             /* its last run, spawn to end, or ER_REPORT_NO_TIME */
        enum er_error_class error;
        const char *message;         /* valid until the next loop iteration */
};
void er_sched_info(const struct er_sched *s, size_t idx, struct er_svc_info *ret);
/* The first of SIGINT/SIGTERM/SIGHUP received, or 0. */
int er_sched_interrupted(const struct er_sched *s);

/* Signals to envrun (SPEC §5.7). from_terminal: SI_KERNEL (the terminal sent it
 * to the whole foreground group, CMD has it already). */
void er_sched_signal(struct er_sched *s, int sig, bool from_terminal);
/* SIGCHLD: reap what ended (fallback path and orphans). */
void er_sched_sigchld(struct er_sched *s);
/* --abort-on-failure: SIGTERM to the test when a service fails while it runs. */
void er_sched_set_abort_on_failure(struct er_sched *s, bool on);

/* Events the phase table has no cell for, dropped and warned about: a bug
 * in envrun, 0 in every test. */
unsigned er_sched_unexpected(const struct er_sched *s);
/* The most services whose execs were pending at once (envrun does not wait
 * for an exec): for tests and benchmarks. */
size_t er_sched_spawning_max(const struct er_sched *s);

/* Fills r (borrowing names from the config).  After down. */
int er_sched_report(struct er_sched *s, struct er_report *r);
/* The exit status of `exec` per SPEC §2 (interrupted, bring-up, timeout, ...). */
int er_sched_exec_status(const struct er_sched *s);

#endif
