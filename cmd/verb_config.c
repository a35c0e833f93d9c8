/* validate, config, graph: the verbs that only read environment.yml. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "model/dump.h"
#include "model/graph.h"
#include "run.h"
#include "instance/state.h"


static int no_args(int argc, char **argv)
{
        if (argc > 0)
                return cli_fail(EXIT_USAGE, "'%s' takes no arguments, got '%s'", cli_verb->name,
                                argv[0]);
        return EXIT_OK;
}

int verb_validate(int argc, char **argv)
{
        struct er_config *c;
        int r = no_args(argc, argv);

        if (r)
                return r;
        if ((r = cli_load_config(&c)))
                return r;
        if (arg_verbosity > 0)
                printf("%s: ok (%zu service%s, project '%s')\n", c->file, c->n_services,
                       c->n_services == 1 ? "" : "s", c->project);
        er_config_free(c);
        return EXIT_OK;
}

/* The configuration as the running instance of the project sees it (its
 * ports and state directory), when one is up; else as the file says. */
static int load_running(struct er_config **ret)
{
        const char *path = cli_config_path();
        struct er_config *probe, *c;
        struct er_doc *doc = NULL;
        char base[4096], inst[4400], state_dir[4400];
        unsigned *ports;
        long pid;
        int r;

        if (!path)
                return EXIT_USAGE;
        if (!(probe = run_load_probe(path, &doc)))
                return EXIT_USAGE;
        if (er_state_base(arg_state_dir, run_for_others(probe), base, sizeof(base)) < 0 ||
            (snprintf(inst, sizeof(inst), "%s/%s", base, probe->project),
             er_state_probe(inst) != 1)) {
                er_doc_free(doc);
                *ret = probe;
                return EXIT_OK;
        }
        ports = calloc(probe->n_ports + 1, sizeof(*ports));
        if (!ports) {
                er_doc_free(doc);
                er_config_free(probe);
                return cli_fail(EXIT_FAILED, "out of memory");
        }
        r = run_attach_values(EXIT_FAILED, inst, probe, ports, state_dir, sizeof(state_dir), &pid,
                              NULL, 0);
        er_config_free(probe);
        if (r) {
                er_doc_free(doc);
                free(ports);
                return r;
        }
        c = run_load_final(&doc, path, state_dir, ports);
        free(ports);
        if (!c)
                return EXIT_USAGE;
        *ret = c;
        return EXIT_OK;
}

int verb_config(int argc, char **argv)
{
        struct er_config *c;
        json_t *j;
        char *buf = NULL;
        size_t len = 0;
        int r = no_args(argc, argv);

        if (r)
                return r;
        if ((r = load_running(&c)))
                return r;
        j = er_dump_config(c);
        er_config_free(c);
        if (!j)
                return cli_fail(EXIT_FAILED, "out of memory");
        if (cli_has(OPT_JSON)) {
                buf = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                r = buf ? 0 : -ENOMEM;
                if (buf)
                        len = strlen(buf);
        } else {
                r = er_dump_yaml(j, &buf, &len);
        }
        json_decref(j);
        if (r < 0)
                return cli_fail(EXIT_FAILED, "out of memory");
        fwrite(buf, 1, len, stdout);
        if (len && buf[len - 1] != '\n')
                putchar('\n');
        free(buf);
        return EXIT_OK;
}

int verb_graph(int argc, char **argv)
{
        struct er_config *c;
        char *buf;
        size_t len;
        int r = no_args(argc, argv);

        if (r)
                return r;
        if ((r = cli_load_config(&c)))
                return r;
        r = er_graph_dot(c, &buf, &len);
        er_config_free(c);
        if (r < 0)
                return cli_fail(EXIT_FAILED, "out of memory");
        fwrite(buf, 1, len, stdout);
        free(buf);
        return EXIT_OK;
}
