/* Fuzz target for the front half of the pipeline: bytes -> load -> config
 * -> validate -> graph.  Built with libFuzzer (tests/fuzz/run) or, for the
 * test suite, with replay_main.c, which feeds it every file of a corpus. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/config.h"
#include "model/dump.h"
#include "model/graph.h"
#include "model/load.h"
#include "model/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char *const env[] = {"HOME=/root", "PORT=8080", NULL};
        struct er_config_opts opts = {.environ = env};
        struct er_errs errs;
        struct er_doc *doc = NULL;
        struct er_config *c = NULL;

        er_errs_init(&errs);
        /* Env files are resolved against the file's directory: use one that
         * exists everywhere and holds only small, harmless files. */
        static const char path[] = "/proc/self/fdinfo/environment.yml";
        if (er_load_buffer((const char *)data, size, path, NULL, &doc, &errs) == 0) {
                er_config_build_partial(doc, path, &opts, &c, &errs);
        }
        if (c) {
                if (er_validate(c, &errs) == 0) {
                        size_t *order = malloc((c->n_services + 1) * sizeof(size_t));
                        char *dot;
                        size_t len;
                        json_t *j;
                        if (order && er_graph_topo_order(c, order) != 0)
                                abort(); /* validate passed: there must be no cycle */
                        free(order);
                        if (er_graph_dot(c, &dot, &len) == 0)
                                free(dot);
                        if ((j = er_dump_config(c))) {
                                if (er_dump_yaml(j, &dot, &len) == 0)
                                        free(dot);
                                json_decref(j);
                        }
                }
                er_config_free(c);
        }
        er_doc_free(doc);
        er_errs_sort(&errs);
        er_errs_fini(&errs);
        return 0;
}
