/* report: the result of a run (SPEC §6) and its three serialisations: the
 * text report for stderr, JSON (--report) and JUnit XML (--junit).  The
 * scheduler fills an er_report; report.c never looks at the scheduler.
 * Nothing secret goes into a report: it holds no env values. */
#ifndef ER_REPORT_H
#define ER_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum er_error_class {
        ER_OK = 0,
        ER_PROCESS_EXITED_WITH_ERROR,
        ER_PROCESS_FINISHED_WITH_ERROR,
        ER_TIMEOUT_EXPIRED,
        ER_ALREADY_RUNNING,
        ER_START_ERROR,
        ER_LIMIT_EXCEEDED,
        ER_DEPENDENCY_FAILED,
};

/* "ProcessExitedWithError", ... ; "ok" for ER_OK. */
const char *er_error_class_name(enum er_error_class c);

#define ER_REPORT_TAIL_LINES 20
#define ER_REPORT_NO_TIME UINT64_MAX

struct er_report_service {
        const char *name;              /* borrowed from the config */
        enum er_error_class error;
        /* Never started, though nothing of its own failed: the bring-up was
         * aborted elsewhere, interrupted, or the test cannot run (error is
         * ER_OK; message says why).  JSON "result": "not_started". */
        bool not_started;
        bool job;                      /* a one-shot job: its run is its work ("ran" in text) */
        char message[512];             /* "stopped by SIGTERM", "exited 1 before ready", "api <- migrate <- db: exited 1" */
        int pid;                       /* 0: never spawned */
        int exit_code;                 /* -1 when it did not exit normally (signal or never ran) */
        int signal;                    /* 0 when it exited or never ran */
        bool killed;                   /* sig_kill was needed after stop_timeout */
        unsigned killed_descendants;   /* processes of its tree killed by sig_kill */
        /* Milliseconds from the start of the command; ER_REPORT_NO_TIME when it did not happen. */
        uint64_t started_ms, ready_ms, stopped_ms;
        unsigned restarts;
        unsigned failed_attempts;      /* readiness attempts that failed (for --timeline) */
        uint64_t cpu_ms;               /* user+system of its tree */
        uint64_t memory_peak_bytes;    /* 0: unknown */
        bool memory_peak_is_tree;      /* false: largest single process (wait4 rusage) */
        uint64_t log_dropped_bytes;
        /* Each of its limits that is not enforced, with its reason
         * ("memory: ...; pids: ..."), or "" (none, or all enforced). */
        char limits_not_enforced[320];
        /* Its user: not applied, and why ("user 'postgres' not applied:
         * envrun is not root, so db runs as uid 1000 (envrun's user)"), or "". */
        char user_not_applied[240];
        /* The last lines of its output, oldest first (for failed services). */
        char *tail[ER_REPORT_TAIL_LINES];
        size_t n_tail;
        /* Lines its log holds after the failure (its stop's), left out of
         * the tail, which ends at the failure. */
        unsigned after_failure;
};

struct er_report_test {
        bool present;
        char **argv;                   /* borrowed */
        int exit_code;                 /* -1 when killed by a signal or not run */
        int signal;
        bool timed_out;                /* TimeoutExpired: exit status 124 */
        bool not_run;                  /* the environment failed before it started */
        char message[256];             /* e.g. "'ghost': command not found" */
        uint64_t started_ms, duration_ms;
};

struct er_report_port {
        const char *name;              /* borrowed */
        unsigned port;
};

struct er_report {
        const char *project;           /* borrowed */
        bool ok;                       /* "result": "ok" or "failed" */
        int exit_status;
        int interrupted;               /* the signal that ended it (SIGINT, SIGTERM,
                                        * SIGHUP), or 0 */
        const char *containment;       /* "cgroup2" or "reaper" */
        const char *containment_reason; /* borrowed: how it was chosen, or why not cgroup2 */
        bool limits_enforced;
        struct er_report_port *ports;
        size_t n_ports;
        struct er_report_test test;
        struct er_report_service *services;  /* in start order */
        size_t n_services;
        uint64_t total_ms;
};

/* Frees what the report owns (the tails); borrowed strings are left alone. */
void er_report_fini(struct er_report *r);

/* Adds a line to a service's tail (copied; the oldest is dropped past 20). */
int er_report_tail_push(struct er_report_service *s, const char *line, size_t len);

/* Serialisations into a malloc'd NUL-terminated buffer; 0 or -ENOMEM.
 * text: one line per service (name, result, how it ended, time to ready,
 * uptime, cpu, peak memory), then for each failed service its tail, then the
 * test line.  color: ANSI colors for a terminal. */
int er_report_text(const struct er_report *r, bool color, char **ret, size_t *ret_len);
int er_report_json(const struct er_report *r, char **ret, size_t *ret_len);
int er_report_junit(const struct er_report *r, char **ret, size_t *ret_len);

#endif
