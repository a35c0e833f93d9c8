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
        {'f', "file", true, OPT_FILE},         {'p', "project", true, OPT_PROJECT},
        {0, "state-dir", true, OPT_STATE_DIR}, {'q', "quiet", false, OPT_QUIET},
        {'v', "verbose", false, OPT_VERBOSE},  {0, "no-color", false, OPT_NO_COLOR},
        {'h', "help", false, OPT_HELP},        {0, "version", false, OPT_VERSION},
        {0, NULL, false, 0},
};

static const struct opt no_opts[] = {{0, NULL, false, 0}};
static const struct opt json_opts[] = {{0, "json", false, OPT_JSON}, {0, NULL, false, 0}};
static const struct opt exec_opts[] = {
        {0, "timeout", true, OPT_TIMEOUT},  {0, "report", true, OPT_REPORT},
        {0, "junit", true, OPT_JUNIT},      {0, "timeline", true, OPT_TIMELINE},
        {0, "abort-on-failure", false, OPT_ABORT}, {0, "allow-partial", false, OPT_ALLOW_PARTIAL},
        {0, NULL, false, 0},
};
static const struct opt up_opts[] = {{'d', "detach", false, OPT_DETACH}, {0, NULL, false, 0}};
static const struct opt down_opts[] = {{0, "keep", false, OPT_KEEP}, {0, NULL, false, 0}};
static const struct opt status_opts[] = {{0, "json", false, OPT_JSON}, {0, NULL, false, 0}};
static const struct opt logs_opts[] = {
        {'f', "follow", false, OPT_FOLLOW}, {'n', "lines", true, OPT_LINES},
        {0, "timestamps", false, OPT_TIMESTAMPS}, {0, NULL, false, 0},
};

static const struct verb verbs[] = {
        {"exec", verb_exec,
         "exec [--timeout DURATION] [--report FILE] [--junit FILE] [--timeline FILE.svg]\n"
         "                [--abort-on-failure] [--allow-partial] [--] [CMD [ARG...]]",
         "Bring the environment up, run CMD (or the file's `test:` command), bring it down\n"
         "and print the exit report.  With an `up -d` instance of the project up, run CMD\n"
         "against it instead; refused (125) when a service of it failed, was stopped or\n"
         "exited, unless --allow-partial.",
         EXIT_EXEC_ENV, exec_opts, true, false},
        {"test", verb_test,
         "test [--timeout DURATION] [--report FILE] [--junit FILE] [--timeline FILE.svg]\n"
         "                [--abort-on-failure] [--allow-partial] [--] [ARG...]",
         "As exec, with the file's `test:` command and the ARGs appended to it (a shell\n"
         "string gets them as \"$@\").  The first argument envrun does not know as an\n"
         "option starts the ARGs (`envrun test -k slow`); `--` makes every later one an\n"
         "ARG (`envrun test -- -v`).",
         EXIT_EXEC_ENV, exec_opts, true, true},
        {"up", verb_up, "up [-d] [SERVICE...]",
         "Bring the environment up and hold it in the foreground until SIGINT/SIGTERM,\n"
         "or with -d leave a supervisor holding it.",
         EXIT_USAGE, up_opts, false, false},
        {"down", verb_down, "down [--keep]",
         "Stop a detached environment and print its report.", EXIT_USAGE, down_opts, false,
         false},
        {"status", verb_status, "status [--json] [-v]",
         "Show the state of each service of a detached environment.", EXIT_USAGE, status_opts,
         false, false},
        {"logs", verb_logs, "logs [-f|--follow] [-n LINES] [--timestamps] [SERVICE...]",
         "Show the captured output of services.", EXIT_USAGE, logs_opts, false, false},
        {"ls", verb_ls, "ls [--json]",
         "List your instances: project, state (up, partial, failed, stale, exec, ...),\n"
         "services ready of those selected, directory and ports.",
         EXIT_USAGE, json_opts, false, false},
        {"env", verb_env, "env [--json]",
         "Print what a command run against the detached environment sees: its ports,\n"
         "ENVRUN_STATE_DIR and ENVRUN_PROJECT, as `export NAME='value'` lines for\n"
         "`eval \"$(envrun env)\"`, or as a JSON object.",
         EXIT_USAGE, json_opts, false, false},
        {"start", verb_start, "start SERVICE...", "Start services of a detached environment.",
         EXIT_USAGE, no_opts, false, false},
        {"stop", verb_stop, "stop SERVICE...", "Stop services of a detached environment.",
         EXIT_USAGE, no_opts, false, false},
        {"restart", verb_restart, "restart SERVICE...",
         "Restart services of a detached environment (their dependents keep running).",
         EXIT_USAGE, no_opts, false, false},
        {"validate", verb_validate, "validate",
         "Check environment.yml and report every error as FILE:LINE:COL: message.\n"
         "Silent on success unless -v; exits 2 on errors.",
         EXIT_USAGE, no_opts, false, false},
        {"config", verb_config, "config [--json]",
         "Print the resolved configuration (after interpolation, with every default)\n"
         "as YAML, or JSON with --json.",
         EXIT_USAGE, json_opts, false, false},
        {"graph", verb_graph, "graph",
         "Print the dependency graph in Graphviz DOT (render with `dot -Tsvg`).", EXIT_USAGE,
         no_opts, false, false},
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

const struct verb *cli_find_verb(const char *name)
{
        for (size_t i = 0; i < N_VERBS; i++)
                if (!strcmp(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

void cli_print_usage(FILE *f)
{
        fprintf(f, "usage: envrun [GLOBAL] VERB [ARGS]\n\nVerbs:\n");
        for (size_t i = 0; i < N_VERBS; i++)
                fprintf(f, "  envrun %s\n", verbs[i].synopsis);
        fprintf(f, "  envrun --version | --help | help VERB\n\n"
                   "Global options (before or after the verb):\n"
                   "  -f, --file FILE      environment file (default ./environment.yml, then "
                   "./environment.yaml)\n"
                   "  -p, --project NAME   project name (default ENVRUN_PROJECT, the file's "
                   "name:, its directory)\n"
                   "      --state-dir DIR  where instances keep their state\n"
                   "  -q, --quiet          only errors and the report\n"
                   "  -v, --verbose        more detail\n"
                   "      --no-color       no colors (NO_COLOR is honoured too)\n");
}

int cli_print_verb_help(FILE *f, const char *name)
{
        const struct verb *v = cli_find_verb(name);
        if (!v)
                return cli_fail(EXIT_USAGE, "unknown verb '%s' (see 'envrun --help')", name);
        fprintf(f, "usage: envrun [GLOBAL] %s\n\n%s\n", v->synopsis, v->help);
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
