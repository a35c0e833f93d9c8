/* config: the typed model of environment.yml (SPEC §3).
 *
 * er_config_build() turns a loaded node tree into an er_config, interpolating
 * every string value, typing every field and reporting every error it finds
 * (located, appended to an er_errs list; it keeps going after an error).
 * Cross-references (dependencies, cycles) are the validate and graph
 * modules' job.  After those, the model is read-only: the engine takes a
 * `const struct er_config *`.
 *
 * The model owns all its strings. */
#ifndef ER_CONFIG_H
#define ER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/envfile.h"
#include "base/err.h"
#include "model/interp.h"
#include "model/load.h"
#include "model/types.h"

struct er_check;

struct er_service {
        char *name;
        struct er_loc loc;           /* of the name key */
        struct er_cmd cmd;
        struct er_envlist env;       /* service env_file then env (file layers only) */
        char *user;                  /* NULL: run as envrun's user */
        struct er_loc user_loc;
        long uid, gid;               /* resolved by er_validate; -1 when user is NULL */
        /* user names another user and envrun is not root: not applied, the
         * service runs as envrun's user (said once when it starts) */
        bool user_not_applied;
        uint64_t timeout_us;         /* spawn until ready; default 60s */
        uint64_t stop_timeout_us;    /* default 10s */
        int sig_stop, sig_kill;      /* defaults SIGTERM, SIGKILL */
        struct er_codes ok_exit;     /* default {0} */
        struct er_check **checks;    /* all must pass, in order */
        size_t n_checks;
        struct er_dep *deps;
        size_t n_deps;
        enum er_restart restart;     /* default no */
        struct er_loc restart_loc;
        unsigned max_restarts;       /* default 5 */
        struct er_limits limits;
        uint64_t log_max_size;       /* default 64M */
};

struct er_test {
        bool present;
        struct er_cmd cmd;
        struct er_envlist env;       /* test's own env_file then env */
        uint64_t timeout_us;         /* 0: no limit */
};

struct er_port {
        char *name;
        struct er_loc loc;
};

struct er_config {
        char *file;                  /* the path as given; errors borrow it */
        char *dir;                   /* absolute directory of the file */
        char *name;                  /* `name:`, NULL when absent */
        char *project;               /* the resolved project name (SPEC §1 -p) */
        struct er_envlist env_file;  /* top-level env_file, merged in order */
        struct er_envlist env;       /* top-level env */
        struct er_service *services; /* in file order */
        size_t n_services;
        struct er_port *ports;
        size_t n_ports;
        struct er_test test;
};

/* What er_config_build needs from its caller. */
struct er_config_opts {
        const char *project;         /* -p; NULL: ENVRUN_PROJECT, `name:`, the directory's name */
        char *const *environ;        /* envrun's environment (NULL-terminated) */
        /* Value of ENVRUN_STATE_DIR; NULL: not known yet (deferred, shown as a placeholder) */
        const char *state_dir;
        /* Port values, one per `ports:` name in order; NULL: deferred */
        const unsigned *port_values;
};

/* Shown for values that exist only once an instance starts. */
#define ER_DEFERRED_TEXT "<allocated at start>"

#define ER_NAME_MAX 64               /* service and project names */
#define ER_SERVICES_MAX 1024
#define ER_PORTS_MAX 256

/* Builds the model from doc.  `path` is the file's path as the user gave it
 * (errors carry it).  Returns 0 with *ret_config set, or a negative code with
 * every error appended to errs (nothing is returned then).  Reads the
 * env files the config names, and looks users up (getpwnam_r). */
int er_config_build(const struct er_doc *doc, const char *path, const struct er_config_opts *opts,
                    struct er_config **ret_config, struct er_errs *errs);

/* Like er_config_build, but on errors in the file (not on ENOMEM) the
 * best-effort model is returned too, so that later passes (validate) can
 * report their errors in the same run.  The caller frees it. */
int er_config_build_partial(const struct er_doc *doc, const char *path,
                            const struct er_config_opts *opts, struct er_config **ret_config,
                            struct er_errs *errs);

/* er_config_build + er_validate on a document already read: for a caller
 * that builds twice from one read (exec and up: once to learn the project
 * and the ports, once with their values).  Errors come sorted. */
int er_config_from_doc(const struct er_doc *doc, const char *path,
                       const struct er_config_opts *opts, struct er_config **ret_config,
                       struct er_errs *errs);

/* Convenience: er_load_file + er_config_from_doc. */
int er_config_load(const char *path, const struct er_config_opts *opts,
                   struct er_config **ret_config, struct er_errs *errs);

void er_config_free(struct er_config *config);

/* Index of the service called name, or -1. */
ptrdiff_t er_config_find(const struct er_config *config, const char *name);

/* Names for display. */
const char *er_cond_name(enum er_cond cond);
const char *er_restart_name(enum er_restart restart);

/* Valid service/project name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most ER_NAME_MAX bytes. */
bool er_name_valid(const char *name);

#endif
