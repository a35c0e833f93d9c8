/* sched_priv: what the scheduler's files share (service.c: one service's
 * phases and events, the table; sched.c: the environment and what it
 * decides for its services; limits.c: limits; test_cmd.c: the test
 * command).  Private to core/sched/. */
#ifndef ER_SCHED_PRIV_H
#define ER_SCHED_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "checks/runner.h"
#include "model/graph.h"
#include "proc/log.h"
#include "proc/proc.h"
#include "sched/sched.h"

#define TEST_KILL_AFTER_US (10 * 1000000ULL)

/* A service's phase: one at a time (service.c's table says what each event
 * does in each).  The driver sees them as er_svc_state (sched.h). */
enum svc_phase {
        PH_PENDING,      /* no run: waiting for its dependencies, or never started */
        PH_PROBING,      /* the AlreadyRunning probe runs; nothing spawned yet */
        PH_STARTING,     /* spawned; check check_i is waited for */
        PH_DAEMONIZING,  /* its main process exited 0 with a pidfile check pending */
        PH_READY,        /* every check passed; its main process runs */
        PH_EXITED,       /* it completed: exited 0 after ready, or an exit check passed */
        PH_RESTARTING,   /* exited, its restart policy applies: the tree goes first */
        PH_BACKOFF,      /* the wait before the policy's next run */
        PH_STOPPING,     /* a stop request: the tree is going */
        PH_RESTART_STOP, /* `envrun restart`: the tree is going, then a new run */
        PH_STOPPED,      /* its tree is gone, after a stop */
        PH_FAILED,       /* failed; its tree may run until it is stopped */
        N_PHASE
};

enum svc_event {
        EV_START,        /* its dependencies hold (or `envrun start`); backoff over */
        EV_PROBED,       /* the AlreadyRunning probe is over */
        EV_CHECK_OK,     /* the check waited for passed */
        EV_CHECK_FAILED, /* it can no longer pass */
        EV_TIMEOUT,      /* not ready, or not completed, within timeout */
        EV_EXITED,       /* its main process exited */
        EV_GONE,         /* its whole tree is gone */
        EV_STOP,         /* stop it (down, once its dependents are down; `envrun stop`) */
        EV_RESTART,      /* `envrun restart` while it runs */
        EV_BACKOFF_DUE,  /* the restart policy's backoff is over */
        EV_DEP_FAILED,   /* a dependency failed: it will never start */
        EV_DOWN,         /* the environment goes down: nothing waits for readiness */
        N_EVENT
};

struct svc {
        struct er_sched *s;
        size_t index;
        const struct er_service *cfg;
        enum svc_phase phase;
        struct er_proc proc;
        bool proc_init;
        struct er_log log;
        bool log_open;
        struct er_check_run *runs;    /* one per check, from spawn on */
        struct er_check_env cenv;
        size_t check_i;               /* the check being waited for */
        bool check_active;
        size_t probes_pending;
        bool probe_hit;
        char probe_what[200];
        pid_t named_daemon;           /* the daemon the running check named (pidfile) */
        pid_t adopt_pid;              /* a pidfile check named this daemon while the main
                                       * process had not been seen to exit yet */
        /* The facts of this run: a process was spawned, it was ready, it
         * completed, its tree is gone and accounted (sched_finish_down). */
        bool spawned, ready, completed, down;
        bool spawn_pending;           /* created, its exec's outcome not yet read */
        unsigned restarts;
        unsigned failed_attempts;     /* readiness attempts that failed, every run */
        struct {                      /* -v: a row of identical failed attempts */
                const struct er_check_run *run;
                unsigned n, first, last;
                uint64_t first_us, last_us;
                char why[160];
        } att;
        uint64_t cpu_us;              /* the tree's CPU time, runs before this one included */
        bool cpu_is_tree;
        uint64_t mem_peak;            /* peak memory over its runs: the tree's (its cgroup's),
                                       * or the largest process's (reaper) */
        bool mem_peak_tree;           /* mem_peak is the tree's */
        struct er_io oom_io;          /* its memory cgroup's OOM eventfd */
        struct er_timer limit_timer;  /* reads cpu_time and pids every 100 ms */
        bool oom_seen;                /* its memory cgroup announced an OOM */
        bool killed_fast;             /* its sig_kill came from a second stop request */
        struct er_timer backoff;
        uint64_t first_spawn_us;      /* restarts before ready share the timeout from here */
        bool need_completed;          /* a dependent waits for it to complete */
        struct er_timer timeout;
        uint64_t spawn_us, ready_us, stop_us;
        enum er_error_class error;
        char message[512];
        char limits_why[320];         /* its limits not enforced, with reasons, or "" */
        char user_why[240];           /* its user: not applied (not root), or "" */
        char **envp;
};

struct er_sched {
        struct er_sched_opts o;
        const struct er_config *c;
        struct svc *svcs;
        size_t n;
        bool *selected;               /* part of this environment (opts.only's closure) */
        struct er_reach reach;        /* who depends on whom, directly or not */
        bool up_started, up_done, failed;
        bool deciding, decide_again;  /* sched_decide runs; it must run (once more) */
        unsigned unexpected;          /* events with no cell in the table (bugs) */
        struct er_hook batch;         /* decisions asked for in callbacks: at the batch's end */
        size_t n_spawning;            /* services whose exec is pending */
        size_t spawning_max;          /* er_sched_spawning_max */
        bool down_started, down_done, fast;
        bool abort_on_failure, failed_during_test;
        int interrupted;              /* the first of SIGINT/SIGTERM/SIGHUP, or 0 */
        bool limits_unenforced;       /* a limit asked for could not be enforced */
        unsigned n_sigint, n_sigterm;

        /* the test command */
        struct er_proc test;
        bool test_init, test_started, test_running, test_done, test_timed_out, test_spawn_failed;
        char *const *test_argv;
        char **test_envp;
        char test_message[256];
        /* probe processes of exec checks, for the SIGCHLD reaper */
        struct er_proc **extra;
        size_t n_extra, cap_extra;
        int test_status;              /* exit status when it could not start (126/127) */
        struct er_timer test_timer;   /* time limit */
        struct er_timer test_kill;    /* SIGKILL 10 s after a forwarded signal */
        struct er_timer reap_more;    /* er_sched_sigchld's next batch of orphans */
        uint64_t test_start_us, test_end_us;
};

/* --- service.c --- */
/* Sends an event (fast: EV_STOP skips the grace period). */
void sched_svc_event(struct svc *v, enum svc_event e, bool fast);
/* EV_DEP_FAILED: d failed, v never starts. */
void sched_svc_dep_failed(struct svc *v, const struct er_dep *d);
/* The service failed: cls and the message, announced, and the environment
 * goes on (or down) as the failure asks.  From any phase. */
void sched_fail(struct svc *v, enum er_error_class cls, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Its tree is gone: judged, accounted, reported. */
void sched_finish_down(struct svc *v);
/* Forgets a finished run, back to pending. */
void sched_svc_reset(struct svc *v);
void sched_svc_free(struct svc *v);
/* The second half of v's spawn (v->spawn_pending): its exec's outcome read
 * (waited for when it is not known yet), then started or StartError. */
void sched_spawn_end(struct svc *v);
enum er_svc_state sched_public_state(const struct svc *v);
const char *sched_phase_name(enum svc_phase p);
/* Milliseconds since from_us (er_now_us clock), 0 when it is ahead. */
uint64_t sched_since_ms(uint64_t from_us);
/* A warning the driver keeps in sight (ev->warning). */
void sched_emit_warning(struct svc *v, const char *detail);

/* --- sched.c --- */
/* Starts what can start and marks what never will (bring-up), stops what
 * can stop (down).  Asked for after every action that may change it; runs
 * at the end of the loop's batch when asked from inside a callback (every
 * event of the batch seen first), at once when asked by the driver, and
 * never re-enters itself: a call from inside it asks for one more round. */
void sched_decide(struct er_sched *s);
/* An event of the test command. */
void sched_emit_test(struct er_sched *s, enum er_svc_state st, const char *detail);
/* "exited 3", "killed by SIGKILL" */
void sched_describe_status(char *buf, size_t len, int code, int sig);
/* The environment of a service or the test (SPEC §3). */
char **sched_build_envp(struct er_sched *s, const struct er_envlist *own,
                        const struct er_envlist *checks, const char *service, const char *marker);

/* --- test_cmd.c --- */
/* SIGKILL to the test's tree, 10 s after a signal was forwarded to it. */
void sched_on_test_kill(struct er_loop *loop, struct er_timer *t);

/* --- limits.c --- */
/* Sets v's limits on its groups before it starts; a limit that cannot be
 * enforced is said once.  0, or -errno when v failed (StartError). */
int sched_limits_apply(struct svc *v);
/* After the spawn: watches for crossings (OOM events, a 100 ms tick). */
void sched_limits_watch(struct svc *v);
void sched_limits_unwatch(struct svc *v);
/* Whether v crossed a limit (then it failed with LimitExceeded). */
bool sched_limits_crossed(struct svc *v);

#endif
