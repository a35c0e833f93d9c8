/* cli: what every verb shares to read environment.yml: where it is, the
 * load, and its errors on stderr (cli.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "model/config.h"

extern char **environ;

void cli_print_errs(const struct er_errs *errs)
{
        char line[ER_ERR_MSG_MAX + 512];
        for (size_t i = 0; i < errs->n; i++) {
                er_err_format(&errs->v[i], line, sizeof(line));
                if (arg_color)
                        fprintf(stderr, "\033[1m%s\033[0m\n", line);
                else
                        fprintf(stderr, "%s\n", line);
        }
        if (errs->dropped)
                fprintf(stderr, "envrun: %zu more errors not shown\n", errs->dropped);
}

const char *cli_config_path(void)
{
        static const char *const defaults[] = {"environment.yml", "environment.yaml"};
        char cwd[4096];

        if (arg_file)
                return arg_file;
        for (size_t i = 0; i < 2; i++)
                if (access(defaults[i], F_OK) == 0)
                        return defaults[i];
        if (!getcwd(cwd, sizeof(cwd)))
                snprintf(cwd, sizeof(cwd), ".");
        cli_fail(EXIT_USAGE, "no environment.yml or environment.yaml in '%s' (use -f FILE)", cwd);
        return NULL;
}

int cli_load_config(struct er_config **ret)
{
        struct er_config_opts opts = {
                .project = arg_project,
                .environ = environ,
        };
        struct er_errs errs;
        const char *path = cli_config_path();
        int r;

        if (!path)
                return EXIT_USAGE;
        er_errs_init(&errs);
        r = er_config_load(path, &opts, ret, &errs);
        if (r < 0 || errs.n) {
                cli_print_errs(&errs);
                if (r < 0 && !errs.n)
                        cli_fail(EXIT_USAGE, "%s: %s", path, strerror(-r));
        }
        er_errs_fini(&errs);
        return r < 0 ? EXIT_USAGE : EXIT_OK;
}
