/* cli: envrun's command line (SPEC §1): global options, verbs, and what each
 * verb prints.  Only cmd/ prints and picks exit statuses (SPEC §2). */
#ifndef ER_CLI_H
#define ER_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "model/config.h"
#include "base/err.h"

/* Exit statuses shared by the verbs. */
enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_EXEC_ENV = 125,
};

/* Option ids: global ones, then the verbs' own. */
enum {
        OPT_FILE = 1,
        OPT_PROJECT,
        OPT_STATE_DIR,
        OPT_QUIET,
        OPT_VERBOSE,
        OPT_NO_COLOR,
        OPT_HELP,
        OPT_VERSION,
        /* verbs' own */
        OPT_JSON = 100,
        OPT_DETACH,
        OPT_KEEP,
        OPT_FOLLOW,
        OPT_LINES,
        OPT_TIMESTAMPS,
        OPT_TIMEOUT,
        OPT_REPORT,
        OPT_JUNIT,
        OPT_TIMELINE,
        OPT_ABORT,
        OPT_ALLOW_PARTIAL,
};

/* Global options (SPEC §1), set by main's parser. */
extern const char *arg_file;
extern const char *arg_project;
extern const char *arg_state_dir;
extern int arg_verbosity;        /* -1 quiet, 0 normal, 1 verbose */
extern bool arg_color;

struct verb {
        const char *name;
        int (*run)(int argc, char **argv); /* argv: the verb's own arguments */
        const char *synopsis;
        const char *help;
        int usage_status;                  /* 2, or 125 for exec */
        const struct opt *opts;            /* the verb's own options, {0}-terminated */
        bool cmd_after_args;               /* exec: the first non-option starts CMD */
        bool unknown_opts_are_args;        /* test: so does an option envrun does not know */
        const char *summary;               /* one line for --help */
        const char *exits;                 /* its exit statuses (SPEC §2), for help VERB */
        const char *example;               /* one example, for help VERB */
};

struct opt {
        char short_name;
        const char *long_name;
        bool has_arg;
        int id;
        const char *arg_name; /* its value's name in help ("DURATION") */
        const char *help;     /* what it does, one line */
};

/* Parsed arguments of a verb: options by id, then positional arguments. */
#define CLI_MAX_OPTS 16
struct parsed {
        int n;
        struct {
                int id;
                const char *value;
        } v[CLI_MAX_OPTS];
        int argc;
        char **argv;
};

const struct verb *cli_find_verb(const char *name);
void cli_print_usage(FILE *f);
int cli_print_verb_help(FILE *f, const char *verb);

/* Prints "envrun: <msg>" to stderr.  Returns status. */
int cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints every error, "file:line:col: message", to stderr. */
void cli_print_errs(const struct er_errs *errs);

/* The environment.yml to use: -f, else ./environment.yml, else
 * ./environment.yaml.  NULL (after printing why) when there is none. */
const char *cli_config_path(void);
/* Loads and validates it; prints errors.  Returns 0 or EXIT_USAGE. */
int cli_load_config(struct er_config **ret);

/* Verbs. */
int verb_validate(int argc, char **argv);
int verb_config(int argc, char **argv);
int verb_graph(int argc, char **argv);
int verb_exec(int argc, char **argv);
int verb_test(int argc, char **argv);
int verb_env(int argc, char **argv);
int verb_ls(int argc, char **argv);
/* up on a project that is up (up_more.c): the running instance in dir
 * grows by SERVICE... (all without), path being the file given. */
int up_more(const char *path, const char *project, const char *dir, int argc, char **argv);
#define UP_MORE_UNREACHABLE (-2) /* its supervisor does not answer (yet); nothing said */
int verb_up(int argc, char **argv);
int verb_down(int argc, char **argv);
int verb_status(int argc, char **argv);
int verb_logs(int argc, char **argv);
int verb_start(int argc, char **argv);
int verb_stop(int argc, char **argv);
int verb_restart(int argc, char **argv);

/* The verb being run, for messages. */
extern const struct verb *cli_verb;
/* Options parsed for the current verb. */
extern struct parsed cli_args;
bool cli_has(int id);
const char *cli_value(int id);

#endif
