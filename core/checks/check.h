/* check: readiness checks (SPEC §4) as a table of kinds.
 *
 * A service has an ordered list of checks.  Each kind is one file,
 * check_<kind>.c, that fills an er_check_ops; check.c looks kinds up by key
 * in a static table, so a new kind is one file plus one line.  This header
 * holds the configuration side of a check (what environment.yml says); the
 * runtime side plugs into the same ops table.
 *
 * In environment.yml a check is a map with exactly one kind key, its options,
 * and `interval`:  {tcp: 5432}, {http: URL, status: 204, interval: 50ms}. */
#ifndef ER_CHECK_H
#define ER_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "model/config.h"
#include "model/field.h"
#include "model/load.h"
#include "proc/loop.h"

struct pcre2_real_code_8;

enum er_stream {
        ER_STREAM_BOTH,
        ER_STREAM_STDOUT,
        ER_STREAM_STDERR,
};

struct er_check_output {
        char *regex;
        struct pcre2_real_code_8 *code;
        enum er_stream stream;
};

struct er_check_tcp {
        char *host;      /* without brackets; "127.0.0.1" by default */
        char *port;      /* decimal text, or a deferred placeholder */
        bool deferred;   /* the port or host is known only at start */
};

struct er_check_path {   /* unix, pidfile */
        char *path;      /* absolute (relative ones are taken from the service's cwd) */
};

struct er_check_http {
        char *url;
        char *method;                    /* "GET" by default */
        unsigned status;                 /* an exact code, or 0 when status_re is used */
        char *status_re;                 /* source of the status regex */
        struct pcre2_real_code_8 *status_code;
        struct er_envlist headers;
        char *body;                      /* NULL: none */
        bool follow_redirects;
};

struct er_check_exit {
        struct er_codes codes;
};

struct er_check_exec {
        struct er_cmd cmd;
};

struct er_check_ops;
struct er_check_run;
struct er_loop;

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
        char *const *envp;             /* the service's environment (probes run with it) */
        const char *cwd;               /* the service's working directory */
        struct er_log *log;            /* the service's log: probe output goes here ('P') */
        struct er_contain *contain;    /* for a probe's own process group */
        struct er_group *group;        /* the service's processes (notify, pidfile membership) */
        const char *state_dir;         /* the instance's private directory (sockets) */
        bool no_pidfd;
        long uid, gid;                 /* the service's user: probes run as it; -1: envrun's */
        uint64_t deadline_us;          /* the service's timeout (er_now_us clock); 0: none */
        /* Probe processes must be known to the engine's SIGCHLD reaper. */
        void (*track)(void *engine, struct er_proc *p, bool on);
        void *engine;
};

struct er_check_run {
        const struct er_check *check;
        struct er_loop *loop;
        const struct er_check_env *env;
        void *owner;                   /* the service, for done() */
        void (*done)(struct er_check_run *run, enum er_check_result result, const char *msg);
        /* Optional: each failed attempt or re-check (for -v). */
        void (*attempt_failed)(struct er_check_run *run, const char *why);
        /* Optional: run->status changed (notify's STATUS=, shown in progress). */
        void (*status_changed)(struct er_check_run *run);

        bool once;                     /* one attempt, then done (the AlreadyRunning probe) */
        bool fatal;                    /* it failed for good: it can never pass (StartError) */
        unsigned attempts;             /* failed attempts so far */
        char last_error[160];          /* why the last attempt failed: "connection refused" */
        pid_t adopt_pid;               /* pidfile: the daemon to adopt, set before done(READY) */
        char status[160];              /* notify: the last STATUS= */
        void *priv;                    /* the kind's own state */

        /* the generic runner's state (check.c) */
        bool active, attempting, prepared;
        uint64_t delay_us;             /* the last wait between attempts (backoff up to interval) */
        uint64_t started_us;           /* when the wait began: the backoff grows with it */
        struct er_timer retry;
};

struct er_check {
        const struct er_check_ops *ops;
        struct er_loc loc;       /* of the check's map */
        uint64_t interval_us;    /* the longest wait between two attempts */
        union {
                struct er_check_output output;
                struct er_check_tcp tcp;
                struct er_check_path path;
                struct er_check_http http;
                struct er_check_exit exit;
                struct er_check_exec exec;
        } u;
};

struct er_check_ops {
        const char *key;                  /* "tcp" */
        bool polled;                      /* attempted every interval, not signalled by the kernel */
        bool probes_address;              /* tried once before spawn (AlreadyRunning, SPEC §4) */
        uint64_t default_interval_us;     /* for polled kinds */
        const char *const *options;       /* keys allowed beside the kind key, NULL-terminated */
        /* Reads the kind's value and options; `dir` is the directory relative
         * paths are resolved against (the service's cwd).  Returns 0 or
         * -ER_ECONFIG after appending errors. */
        int (*parse)(struct er_check *c, const struct er_node *value, const struct er_node *map,
                     const char *dir, struct er_fctx *f);
        /* Adds the kind's key and options to obj (for `envrun config`). */
        void (*dump)(const struct er_check *c, json_t *obj);
        /* One line for progress displays: "tcp 127.0.0.1:5433". */
        int (*describe)(const struct er_check *c, char *buf, size_t len);
        void (*fini)(struct er_check *c);

        /* --- the engine side --- *
         * Event kinds (output, exit, pidfile, notify) implement start/line/
         * exited/cancel and are never polled.  Polled kinds (tcp, unix,
         * http, exec) implement attempt/abandon: the generic runner in check.c
         * calls attempt at once, then again after a backoff that grows with
         * the time waited (250 us at first, at most `interval`); each attempt ends with
         * er_check_attempt_done(). */
        /* Before the service is spawned, for every check of the service:
         * add variables to its environment (notify: NOTIFY_SOCKET).  Optional. */
        int (*prepare)(struct er_check_run *run, struct er_envlist *extra);
        /* Undoes prepare, once the service no longer waits (optional). */
        void (*release)(struct er_check_run *run);
        /* Begins waiting; may call run->done at once.  0 or -errno. */
        int (*start)(struct er_check_run *run);
        /* A line of the service's output (output kind). */
        void (*line)(struct er_check_run *run, enum er_stream stream, const char *line,
                     size_t len);
        /* The main process exited (code >= 0) or was killed (code < 0), before
         * ready.  Returns true when the kind handled it (exit: ready or
         * failed); false lets the engine treat it as ProcessExitedWithError. */
        bool (*exited)(struct er_check_run *run, int code);
        /* Stops waiting, releasing what start took.  Called once per start
         * that did not end with done(), and after done() too (must be idempotent). */
        void (*cancel)(struct er_check_run *run);
        /* Polled kinds: starts one attempt (non-blocking; the result comes
         * through er_check_attempt_done, possibly from inside attempt). 0 or -errno. */
        int (*attempt)(struct er_check_run *run);
        /* Polled kinds: abandons an attempt in flight (after a stop). */
        void (*abandon)(struct er_check_run *run);
};

/* --- the engine's calls (check.c) --- */
void er_check_run_init(struct er_check_run *run, const struct er_check *c, struct er_loop *loop,
                       const struct er_check_env *env, void *owner,
                       void (*done)(struct er_check_run *, enum er_check_result, const char *));
int er_check_prepare(struct er_check_run *run, struct er_envlist *extra);
/* Starts waiting; once: a single attempt (polled kinds only) reported as
 * READY (it passed: something answers) or FAILED. */
int er_check_start(struct er_check_run *run, bool once);
void er_check_line(struct er_check_run *run, enum er_stream stream, const char *line, size_t len);
bool er_check_exited(struct er_check_run *run, int code);
/* Stops waiting (no done() follows); idempotent. */
void er_check_stop(struct er_check_run *run);
/* Stops and undoes prepare. */
void er_check_release(struct er_check_run *run);
/* For polled kinds: the attempt in flight ended.  `why` says why it failed
 * ("connection refused"), NULL when ok. */
void er_check_attempt_done(struct er_check_run *run, bool ok, const char *why);
/* The check can never pass (a probe program that does not exist, no
 * libcurl): stops it and reports FAILED with run->fatal set, which the
 * engine reports as a StartError rather than waiting for the timeout. */
void er_check_fail(struct er_check_run *run, const char *why);
/* Microseconds left until the service's deadline (UINT64_MAX: none). */
uint64_t er_check_time_left(const struct er_check_run *run);

/* Parses `ready:` (a check or a list of checks) into *ret_checks and *ret_n.
 * `dir` resolves relative paths.  Keeps going after errors. */
int er_check_parse_list(struct er_fctx *f, const struct er_node *ready, const char *dir,
                        struct er_check ***ret_checks, size_t *ret_n);
void er_check_free(struct er_check *c);

json_t *er_check_dump(const struct er_check *c);
int er_check_describe(const struct er_check *c, char *buf, size_t len);

/* Every kind, for help texts and the schema test. */
const struct er_check_ops *const *er_check_kinds(size_t *ret_n);

/* The kinds (check_<kind>.c). */
extern const struct er_check_ops er_check_output_ops;
extern const struct er_check_ops er_check_tcp_ops;
extern const struct er_check_ops er_check_unix_ops;
extern const struct er_check_ops er_check_http_ops;
extern const struct er_check_ops er_check_pidfile_ops;
extern const struct er_check_ops er_check_exit_ops;
extern const struct er_check_ops er_check_exec_ops;
extern const struct er_check_ops er_check_notify_ops;

/* Shared by the kinds whose value is a path (unix, pidfile): the path made
 * absolute against dir; returns 1 when it used a deferred variable. */
int er_check_parse_path(struct er_check *c, const struct er_node *v, const char *dir,
                        struct er_fctx *f);
void er_check_path_dump(const struct er_check *c, json_t *o);
int er_check_path_describe(const struct er_check *c, char *buf, size_t len);
void er_check_path_fini(struct er_check *c);

/* pcre2 helpers shared by kinds: compile with a located error "invalid regex
 * 'x(': missing closing parenthesis at offset 2". `whole`: the regex must
 * match the whole subject. */
int er_regex_compile(struct er_fctx *f, const struct er_node *n, const char *key,
                     const char *pattern, bool whole, struct pcre2_real_code_8 **ret);
/* JIT-compiles a regex about to be matched many times (output lines). */
void er_regex_jit(struct pcre2_real_code_8 *code);
void er_regex_free(struct pcre2_real_code_8 *code);

#endif
