/* check: the configuration side of readiness checks (SPEC §4), part of
 * the model: what environment.yml says about a check, parsed, dumped and
 * described.  The engine's side, which runs them, is checks/runner.h.
 *
 * A service has an ordered list of checks.  Each kind is one file,
 * checks/check_<kind>.c, that fills an er_check_ops with both sides; the
 * table of kinds (model/check.c) names each ops once, so a new kind is one
 * file plus one line in ER_CHECK_KINDS.  The run side of the ops takes
 * pointers to the engine's types, declared here only as incomplete types:
 * this header includes no runtime header.
 *
 * In environment.yml a check is a map with exactly one kind key, its options,
 * and `interval`:  {tcp: 5432}, {http: URL, status: 204, interval: 50ms}. */
#ifndef ER_MODEL_CHECK_H
#define ER_MODEL_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "model/envfile.h"
#include "model/field.h"
#include "model/load.h"
#include "model/types.h"

struct pcre2_real_code_8;

/* The configuration of the kinds whose value is a path (unix, pidfile),
 * what er_check_parse_path fills: their conf_size is its size. */
struct er_check_path {
        char *path;      /* absolute (relative ones are taken from the service's cwd) */
};

struct er_check_ops;
struct er_check_run;
struct er_envlist;

struct er_check {
        const struct er_check_ops *ops;
        struct er_loc loc;       /* of the check's map */
        uint64_t interval_us;    /* the longest wait between two attempts */
        void *conf;              /* the kind's own configuration: ops->conf_size
                                  * zeroed bytes before parse, freed after fini */
};

struct er_check_ops {
        /* --- the configuration side --- */
        const char *key;                  /* "tcp" */
        const char *const *options;       /* keys allowed beside the kind key, NULL-terminated */
        size_t conf_size;                 /* of the kind's configuration (a struct of its file) */
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

        /* --- the engine side --- */
        bool polled;                      /* attempted every interval, not signalled by the kernel */
        bool probes_address;              /* tried once before spawn (AlreadyRunning, SPEC §4) */
        uint64_t default_interval_us;     /* for polled kinds */
        /*
         * Event kinds (output, exit, pidfile, notify) implement start/line/
         * exited/cancel and are never polled.  Polled kinds (tcp, unix,
         * http, exec) implement attempt/abandon: the generic runner in checks/runner.c
         * calls attempt at once, then again after a backoff that grows with
         * the time waited (250 us at first, at most `interval`); each attempt ends with
         * er_runner_attempt_done(). */
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
         * through er_runner_attempt_done, possibly from inside attempt). 0 or -errno. */
        int (*attempt)(struct er_check_run *run);
        /* Polled kinds: abandons an attempt in flight (after a stop). */
        void (*abandon)(struct er_check_run *run);
};

/* Parses `ready:` (a check or a list of checks) into *ret_checks and *ret_n.
 * `dir` resolves relative paths.  Keeps going after errors. */
int er_check_parse_list(struct er_fctx *f, const struct er_node *ready, const char *dir,
                        struct er_check ***ret_checks, size_t *ret_n);
void er_check_free(struct er_check *c);

json_t *er_check_dump(const struct er_check *c);
int er_check_describe(const struct er_check *c, char *buf, size_t len);

/* Every kind, for help texts and the schema test. */
const struct er_check_ops *const *er_check_kinds(size_t *ret_n);

/* The kinds, in the order help texts list them: X(name) for each
 * er_check_<name>_ops, defined in checks/check_<name>.c. */
#define ER_CHECK_KINDS(X) X(output) X(tcp) X(unix) X(http) X(pidfile) X(exit) X(exec) X(notify)

#define ER_CHECK_KIND_EXTERN(name) extern const struct er_check_ops er_check_##name##_ops;
ER_CHECK_KINDS(ER_CHECK_KIND_EXTERN)
#undef ER_CHECK_KIND_EXTERN

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
