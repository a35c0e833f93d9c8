/* envrun's entry point: global options anywhere, one verb (SPEC §1). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

const char *arg_file;
const char *arg_project;
const char *arg_state_dir;
int arg_verbosity;
bool arg_color = true;

const struct verb *cli_verb;
struct parsed cli_args;


static const struct opt global_opts[] = {
        {'f', "file", true, OPT_FILE, "FILE",
         "environment file (default ./environment.yml, then ./environment.yaml)"},
        {'p', "project", true, OPT_PROJECT, "NAME",
         "project name (default ENVRUN_PROJECT, the file's name:, its directory)"},
        {0, "state-dir", true, OPT_STATE_DIR, "DIR", "where instances keep their state"},
        {'q', "quiet", false, OPT_QUIET, NULL, "only errors and the report"},
        {'v', "verbose", false, OPT_VERBOSE, NULL, "more detail"},
        {0, "no-color", false, OPT_NO_COLOR, NULL, "no colors (NO_COLOR is honoured too)"},
        {'h', "help", false, OPT_HELP, NULL, "this help (`envrun help VERB`: one verb's)"},
        {0, "version", false, OPT_VERSION, NULL, "print envrun's version"},
        {0},
};

static const struct opt no_opts[] = {{0}};
static const struct opt json_opts[] = {
        {0, "json", false, OPT_JSON, NULL, "print JSON instead of text"},
        {0},
};
static const struct opt exec_opts[] = {
        {0, "timeout", true, OPT_TIMEOUT, "DURATION",
         "stop the test command after DURATION (30s, 10m): exit 124"},
        {0, "report", true, OPT_REPORT, "FILE",
         "write the exit report as JSON to FILE (each service's result and times)"},
        {0, "junit", true, OPT_JUNIT, "FILE", "write a JUnit XML report to FILE"},
        {0, "timeline", true, OPT_TIMELINE, "FILE.svg",
         "draw each service's phases on a time axis into FILE.svg"},
        {0, "abort-on-failure", false, OPT_ABORT, NULL,
         "stop the test command at once when a service fails while it runs"},
        {0, "allow-partial", false, OPT_ALLOW_PARTIAL, NULL,
         "run against an up -d instance even when a service of it is down"},
        {0},
};
static const struct opt up_opts[] = {
        {'d', "detach", false, OPT_DETACH, NULL,
         "leave a supervisor holding the environment; return once it is up"},
        {0},
};
static const struct opt down_opts[] = {
        {0, "keep", false, OPT_KEEP, NULL, "keep ENVRUN_STATE_DIR (tmp/) for a look afterwards"},
        {0},
};
static const struct opt status_opts[] = {
        {0, "json", false, OPT_JSON, NULL, "print JSON instead of text (-v: with containment)"},
        {0},
};
static const struct opt logs_opts[] = {
        {'f', "follow", false, OPT_FOLLOW, NULL, "keep printing new lines as they come"},
        {'n', "lines", true, OPT_LINES, "LINES", "the last LINES lines of each service"},
        {0, "timestamps", false, OPT_TIMESTAMPS, NULL, "prefix each line with its UTC time"},
        {0},
};

/* Each verb's exit statuses (SPEC §2), as cmd/ returns them. */
#define EXITS_EXEC                                                                                 \
        "0 CMD exited 0 and the environment behaved; CMD's own status otherwise;\n"                \
        "124 CMD ran past its time limit (--timeout, test.timeout);\n"                             \
        "125 envrun or the environment failed (usage, configuration, a service that did\n"         \
        "not start or failed); 129/130/143 interrupted by HUP/INT/TERM"
#define EXITS_UP                                                                                   \
        "0 every service ready (-d), or a foreground up ended by `envrun down` with every\n"       \
        "service fine; 1 the bring-up failed, a service failed, or AlreadyRunning (every\n"        \
        "service named is up already); 2 usage or configuration error, an unknown\n"               \
        "service; 129/130/143 interrupted by HUP/INT/TERM (Ctrl-C ends a foreground up:\n"         \
        "130; with -d it cancels the bring-up)"
#define EXITS_DOWN                                                                                 \
        "0 stopped cleanly, nothing was up (safe in any clean-up step), or a stale\n"              \
        "instance was cleaned up; 1 a service finished with an error, the supervisor did\n"        \
        "not answer, or the clean-up failed; 2 usage or configuration error"
#define EXITS_STATUS                                                                               \
        "0 up and every service ready; 1 not every service is ready (one failed, was\n"            \
        "stopped or is starting), the instance is stale, or its supervisor did not\n"              \
        "answer; 2 usage or configuration error; 3 nothing is up"
#define EXITS_LOGS                                                                                 \
        "0 success (-f: once the environment went down); 1 nothing is up, or the\n"                \
        "supervisor did not answer; 2 usage or configuration error, an unknown service"
#define EXITS_LS                                                                                   \
        "0 success, also when no instance is up; 1 a state directory cannot be read;\n"            \
        "2 usage error"
#define EXITS_ENV                                                                                  \
        "0 success; 1 nothing is up (a stale instance included), or the supervisor did\n"          \
        "not answer; 2 usage or configuration error"
#define EXITS_START                                                                                \
        "0 each service named is ready (or a job completed); 1 a service failed or was\n"          \
        "refused (a dependency is not up, it runs already), nothing is up, or the\n"               \
        "supervisor did not answer; 2 usage or configuration error, an unknown service"
#define EXITS_STOP                                                                                 \
        "0 each service named is stopped; 1 a service finished with an error or the stop\n"        \
        "was refused, nothing is up, or the supervisor did not answer; 2 usage or\n"               \
        "configuration error, an unknown service"
#define EXITS_RESTART                                                                              \
        "0 each service named is ready again (or a job completed); 1 a service failed or\n"        \
        "was refused (a dependency is not up), nothing is up, or the supervisor did not\n"         \
        "answer; 2 usage or configuration error, an unknown service"
#define EXITS_VALIDATE "0 the file is valid; 2 usage error, or the file has errors or is unreadable"
#define EXITS_CONFIG                                                                               \
        "0 success; 1 out of memory, or the project is up but its supervisor did not\n"            \
        "answer; 2 usage error, or the file has errors"
#define EXITS_GRAPH "0 success; 1 out of memory; 2 usage error, or the file has errors"

static const struct verb verbs[] = {
        {"exec", verb_exec,
         "exec [--timeout DURATION] [--report FILE] [--junit FILE] [--timeline FILE.svg]\n"
         "                [--abort-on-failure] [--allow-partial] [--] [CMD [ARG...]]",
         "Bring the environment up, run CMD (or the file's `test:` command), bring it down\n"
         "and print the exit report.  With an `up -d` instance of the project up, run CMD\n"
         "against it instead; refused (125) when a service of it failed, was stopped or\n"
         "exited, unless --allow-partial.",
         EXIT_EXEC_ENV, exec_opts, true, false,
         .summary = "bring the environment up, run CMD or the test: command, bring it down, report",
         .exits = EXITS_EXEC,
         .example = "envrun exec --report report.json -- pytest -q"},
        {"test", verb_test,
         "test [--timeout DURATION] [--report FILE] [--junit FILE] [--timeline FILE.svg]\n"
         "                [--abort-on-failure] [--allow-partial] [--] [ARG...]",
         "As exec, with the file's `test:` command and the ARGs appended to it (a shell\n"
         "string gets them as \"$@\").  The first argument envrun does not know as an\n"
         "option starts the ARGs (`envrun test -k slow`); `--` makes every later one an\n"
         "ARG (`envrun test -- -v`).",
         EXIT_EXEC_ENV, exec_opts, true, true,
         .summary = "exec with the file's test: command, ARGs appended",
         .exits = EXITS_EXEC,
         .example = "envrun test -k slow"},
        {"up", verb_up, "up [-d] [SERVICE...]",
         "Bring the environment up and hold it in the foreground until SIGINT/SIGTERM,\n"
         "or with -d leave a supervisor holding it.",
         EXIT_USAGE, up_opts, false, false,
         .summary = "bring the environment up and hold it (-d: in the background)",
         .exits = EXITS_UP,
         .example = "envrun up -d && envrun status"},
        {"down", verb_down, "down [--keep]",
         "Stop a detached environment and print its report.", EXIT_USAGE, down_opts, false,
         false,
         .summary = "stop a detached environment and print its report",
         .exits = EXITS_DOWN,
         .example = "envrun down --keep"},
        {"status", verb_status, "status [--json] [-v]",
         "Show the state of each service of a detached environment.", EXIT_USAGE, status_opts,
         false, false,
         .summary = "show each service of a detached environment",
         .exits = EXITS_STATUS,
         .example = "envrun status --json"},
        {"logs", verb_logs, "logs [-f|--follow] [-n LINES] [--timestamps] [SERVICE...]",
         "Show the captured output of services.", EXIT_USAGE, logs_opts, false, false,
         .summary = "show the captured output of services",
         .exits = EXITS_LOGS,
         .example = "envrun logs -f -n 20 db"},
        {"ls", verb_ls, "ls [--json]",
         "List your instances: project, state (up, partial, failed, stale, exec, ...),\n"
         "services ready of those selected, directory and ports.",
         EXIT_USAGE, json_opts, false, false,
         .summary = "list your instances, their state and ports",
         .exits = EXITS_LS,
         .example = "envrun ls"},
        {"env", verb_env, "env [--json]",
         "Print what a command run against the detached environment sees: its ports,\n"
         "ENVRUN_STATE_DIR and ENVRUN_PROJECT, as `export NAME='value'` lines for\n"
         "`eval \"$(envrun env)\"`, or as a JSON object.",
         EXIT_USAGE, json_opts, false, false,
         .summary = "print the ports and ENVRUN_STATE_DIR of a detached environment",
         .exits = EXITS_ENV,
         .example = "eval \"$(envrun env)\" && psql -p \"$PG_PORT\""},
        {"start", verb_start, "start SERVICE...", "Start services of a detached environment.",
         EXIT_USAGE, no_opts, false, false,
         .summary = "start services of a detached environment",
         .exits = EXITS_START,
         .example = "envrun start db"},
        {"stop", verb_stop, "stop SERVICE...", "Stop services of a detached environment.",
         EXIT_USAGE, no_opts, false, false,
         .summary = "stop services of a detached environment",
         .exits = EXITS_STOP,
         .example = "envrun stop db"},
        {"restart", verb_restart, "restart SERVICE...",
         "Restart services of a detached environment (their dependents keep running).",
         EXIT_USAGE, no_opts, false, false,
         .summary = "restart services of a detached environment",
         .exits = EXITS_RESTART,
         .example = "envrun restart api"},
        {"validate", verb_validate, "validate",
         "Check environment.yml and report every error as FILE:LINE:COL: message.\n"
         "Silent on success unless -v; exits 2 on errors.",
         EXIT_USAGE, no_opts, false, false,
         .summary = "check environment.yml, every error as FILE:LINE:COL",
         .exits = EXITS_VALIDATE,
         .example = "envrun validate -f ci/environment.yml"},
        {"config", verb_config, "config [--json]",
         "Print the resolved configuration (after interpolation, with every default)\n"
         "as YAML, or JSON with --json.",
         EXIT_USAGE, json_opts, false, false,
         .summary = "print the resolved configuration, every default written out",
         .exits = EXITS_CONFIG,
         .example = "envrun config --json"},
        {"graph", verb_graph, "graph",
         "Print the dependency graph in Graphviz DOT (render with `dot -Tsvg`).", EXIT_USAGE,
         no_opts, false, false,
         .summary = "print the dependency graph as Graphviz DOT",
         .exits = EXITS_GRAPH,
         .example = "envrun graph | dot -Tsvg > graph.svg"},
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

const struct verb *cli_find_verb(const char *name)
{
        for (size_t i = 0; i < N_VERBS; i++)
                if (!strcmp(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

/* "  -n, --lines LINES    the last LINES lines of each service" */
static void print_opts(FILE *f, const struct opt *opts)
{
        for (const struct opt *o = opts; o->id; o++) {
                char left[64], shortname[8] = "    ";
                if (o->short_name)
                        snprintf(shortname, sizeof(shortname), "-%c, ", o->short_name);
                snprintf(left, sizeof(left), "%s--%s%s%s", shortname, o->long_name,
                         o->arg_name ? " " : "", o->arg_name ? o->arg_name : "");
                fprintf(f, "  %-26s %s\n", left, o->help ? o->help : "");
        }
}

void cli_print_usage(FILE *f)
{
        fprintf(f, "usage: envrun [GLOBAL] VERB [ARGS]\n\nVerbs:\n");
        for (size_t i = 0; i < N_VERBS; i++)
                fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].summary);
        fprintf(f, "\n`envrun help VERB` gives a verb's options, exit statuses and an example;\n"
                   "`man envrun` says the rest, `man 5 environment.yml` describes the file,\n"
                   "and the README is a guide.\n\n"
                   "Global options (before or after the verb):\n");
        print_opts(f, global_opts);
}

int cli_print_verb_help(FILE *f, const char *name)
{
        const struct verb *v = cli_find_verb(name);
        if (!v)
                return cli_fail(EXIT_USAGE, "unknown verb '%s' (see 'envrun --help')", name);
        fprintf(f, "usage: envrun [GLOBAL] %s\n\n%s\n", v->synopsis, v->help);
        if (v->opts[0].id) {
                fprintf(f, "\nOptions:\n");
                print_opts(f, v->opts);
        }
        fprintf(f, "\nExit status:\n  ");
        for (const char *c = v->exits; *c; c++) {
                fputc(*c, f);
                if (*c == '\n')
                        fputs("  ", f);
        }
        fprintf(f, "\n\nExample:\n  %s\n\nGlobal options: see `envrun --help`.\n", v->example);
        return EXIT_OK;
}

int cli_fail(int status, const char *fmt, ...)
{
        va_list ap;
        fputs("envrun: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return status;
}

bool cli_has(int id)
{
        for (int i = 0; i < cli_args.n; i++)
                if (cli_args.v[i].id == id)
                        return true;
        return false;
}

const char *cli_value(int id)
{
        const char *v = NULL;
        for (int i = 0; i < cli_args.n; i++)
                if (cli_args.v[i].id == id)
                        v = cli_args.v[i].value; /* the last one wins */
        return v;
}

/* Finds arg among opts: "-x", "-xVALUE", "--long", "--long=VALUE".
 * Returns the option, with *ret_inline set to an attached value or NULL. */
static const struct opt *match(const struct opt *opts, const char *arg, const char **ret_inline)
{
        *ret_inline = NULL;
        if (arg[1] == '-') {
                const char *name = arg + 2, *eq = strchr(name, '=');
                size_t len = eq ? (size_t)(eq - name) : strlen(name);
                for (const struct opt *o = opts; o->id; o++)
                        if (o->long_name && strlen(o->long_name) == len &&
                            !strncmp(o->long_name, name, len)) {
                                *ret_inline = eq ? eq + 1 : NULL;
                                return o;
                        }
                return NULL;
        }
        for (const struct opt *o = opts; o->id; o++)
                if (o->short_name && o->short_name == arg[1]) {
                        *ret_inline = arg[2] ? arg + 2 : NULL;
                        return o;
                }
        return NULL;
}

static bool known_opt(const struct verb *v, const char *arg)
{
        const char *value;
        return match(v->opts, arg, &value) || match(global_opts, arg, &value);
}

static void set_global(int id, const char *value)
{
        switch (id) {
        case OPT_FILE:
                arg_file = value;
                break;
        case OPT_PROJECT:
                arg_project = value;
                break;
        case OPT_STATE_DIR:
                arg_state_dir = value;
                break;
        case OPT_QUIET:
                arg_verbosity = -1;
                break;
        case OPT_VERBOSE:
                arg_verbosity = 1;
                break;
        case OPT_NO_COLOR:
                arg_color = false;
                break;
        }
}

/* Parses one option at argv[*i]; verb options shadow global ones (`logs -f`).
 * Returns 0, 1 for --help, 2 for --version, or -1 after printing a usage error. */
static int parse_opt(const struct verb *v, int argc, char **argv, int *i, int usage_status)
{
        const char *arg = argv[*i], *value;
        const struct opt *o = NULL;
        bool global = false;

        if (v)
                o = match(v->opts, arg, &value);
        if (!o) {
                o = match(global_opts, arg, &value);
                global = true;
        }
        if (!o) {
                if (v)
                        cli_fail(usage_status, "unknown option '%s' for '%s' (see 'envrun help %s')",
                                 arg, v->name, v->name);
                else
                        cli_fail(usage_status, "unknown option '%s' (see 'envrun --help')", arg);
                return -1;
        }
        if (o->has_arg && !value) {
                if (*i + 1 >= argc) {
                        cli_fail(usage_status, "option '%s' needs a value", arg);
                        return -1;
                }
                value = argv[++*i];
        } else if (!o->has_arg && value && arg[1] == '-') {
                cli_fail(usage_status, "option '--%s' takes no value", o->long_name);
                return -1;
        } else if (!o->has_arg && value) {
                cli_fail(usage_status, "unknown option '%s'", arg);
                return -1;
        }
        if (global && o->id == OPT_HELP)
                return 1;
        if (global && o->id == OPT_VERSION)
                return 2;
        if (global) {
                set_global(o->id, value);
        } else if (cli_args.n < CLI_MAX_OPTS) {
                cli_args.v[cli_args.n].id = o->id;
                cli_args.v[cli_args.n].value = value;
                cli_args.n++;
        } else {
                cli_fail(usage_status, "too many options");
                return -1;
        }
        return 0;
}

static int print_version(void)
{
        printf("envrun %s\n", ENVRUN_VERSION);
        return EXIT_OK;
}

/* Descriptors 0-2 that the caller closed (`envrun exec -- CMD <&-`) get
 * /dev/null, as systemd and daemons do: else envrun's first open() would
 * take the number, and a service or CMD would read or write one of
 * envrun's own files as its stdio. */
static void stdio_to_devnull(void)
{
        for (int fd = 0; fd < 3; fd++) {
                int n;
                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                n = open("/dev/null", O_RDWR); /* the lowest free number: fd */
                if (n >= 0 && n != fd) {
                        dup2(n, fd);
                        close(n);
                }
        }
}

int main(int argc, char **argv)
{
        const struct verb *v = NULL;
        char **pos;
        int npos = 0, i, r;
        bool help = false, opts_done = false;

        stdio_to_devnull();

        const char *nc = getenv("NO_COLOR");
        if ((nc && *nc) || !isatty(STDERR_FILENO))
                arg_color = false;
        pos = calloc((size_t)argc + 1, sizeof(char *));
        if (!pos)
                return cli_fail(EXIT_USAGE, "out of memory");
        for (i = 1; i < argc; i++) {
                const char *a = argv[i];
                int status = v ? v->usage_status : EXIT_USAGE;
                if (!opts_done && !strcmp(a, "--")) {
                        opts_done = true;
                        if (v && v->cmd_after_args) {
                                i++;
                                break;
                        }
                        continue;
                }
                if (!opts_done && a[0] == '-' && a[1] && v && v->unknown_opts_are_args &&
                    !known_opt(v, a))
                        break; /* `envrun test -k slow`: the test's own option */
                if (!opts_done && a[0] == '-' && a[1]) {
                        r = parse_opt(v, argc, argv, &i, status);
                        if (r < 0) {
                                free(pos);
                                return status;
                        }
                        if (r == 1)
                                help = true;
                        if (r == 2) {
                                free(pos);
                                return print_version();
                        }
                        continue;
                }
                if (!v) {
                        if (!strcmp(a, "help")) {
                                int s = i + 1 < argc ? cli_print_verb_help(stdout, argv[i + 1])
                                                     : (cli_print_usage(stdout), EXIT_OK);
                                free(pos);
                                return s;
                        }
                        v = cli_find_verb(a);
                        if (!v) {
                                free(pos);
                                return cli_fail(EXIT_USAGE, "unknown verb '%s' (see 'envrun --help')",
                                                a);
                        }
                        continue;
                }
                if (v->cmd_after_args)
                        break; /* CMD starts here; everything after belongs to it */
                pos[npos++] = argv[i];
        }
        if (v && v->cmd_after_args)
                for (; i < argc; i++)
                        pos[npos++] = argv[i];
        if (help || !v) {
                if (v)
                        cli_print_verb_help(stdout, v->name);
                else if (help)
                        cli_print_usage(stdout);
                else
                        cli_print_usage(stderr);
                free(pos);
                return help ? EXIT_OK : EXIT_USAGE;
        }
        cli_verb = v;
        cli_args.argc = npos;
        cli_args.argv = pos;
        r = v->run(npos, pos);
        free(pos);
        return r;
}
