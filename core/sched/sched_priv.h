/* sched_priv: what the scheduler's files share (sched.c: the services'
 * states and the environment; limits.c: limits; test_cmd.c: the test
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

struct svc {
        struct er_sched *s;
        size_t index;
        const struct er_service *cfg;
        enum er_svc_state state;
        struct er_proc proc;
        bool proc_init;
        struct er_log log;
        bool log_open;
        struct er_check_run *runs;    /* one per check, from spawn on */
        struct er_check_env cenv;
        size_t check_i;               /* the check being waited for */
        bool check_active;
        bool probing;                 /* the AlreadyRunning probe before spawn */
        size_t probes_pending;
        bool probe_hit;
        char probe_what[200];
        bool daemonizing;             /* main exited 0 while a pidfile check was pending */
        pid_t named_daemon;           /* the daemon the running check named (pidfile) */
        pid_t adopt_pid;              /* a pidfile check named this daemon while the main
                                       * process had not been seen to exit yet */
        bool spawned, ready, completed, down;
        bool restart_pending;         /* restart: start again once the tree is gone */
        bool policy_restart;          /* ... by its restart: policy, after a backoff */
        unsigned restarts;
        unsigned failed_attempts;     /* readiness attempts that failed, every run */
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
        uint64_t test_start_us, test_end_us;
};

/* --- sched.c --- */
/* The service failed: cls and the message, announced, and the environment
 * goes on (or down) as the failure asks. */
void sched_fail(struct svc *v, enum er_error_class cls, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A warning the driver keeps in sight (ev->warning). */
void sched_emit_warning(struct svc *v, const char *detail);
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
