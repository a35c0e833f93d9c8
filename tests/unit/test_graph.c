/* graph: cycles (one error per strongly connected component, located at its
 * first edge), start order, DOT.  Configs are built from YAML text through
 * the public pipeline (load -> config -> validate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/config.h"
#include "model/graph.h"
#include "model/load.h"
#include "model/validate.h"

static char *const env[] = {"PATH=/usr/bin:/bin", NULL};

/* Builds a config; returns validate's result, *ret set when the build worked. */
static int build(const char *yaml, struct er_config **ret, struct er_errs *errs)
{
        struct er_config_opts opts = {.environ = env};
        struct er_doc *doc = NULL;
        int r;

        er_errs_init(errs);
        *ret = NULL;
        assert_int_equal(er_load_buffer(yaml, strlen(yaml), "/tmp/environment.yml", NULL, &doc, errs), 0);
        r = er_config_build(doc, "/tmp/environment.yml", &opts, ret, errs);
        er_doc_free(doc);
        assert_int_equal(r, 0);
        return er_validate(*ret, errs);
}

static void expect_errors(struct er_errs *errs, const char *const *want)
{
        char buf[512];
        size_t n = 0;
        er_errs_sort(errs);
        while (want[n])
                n++;
        for (size_t i = 0; i < errs->n; i++) {
                er_err_format(&errs->v[i], buf, sizeof(buf));
                if (i >= n || strcmp(buf, want[i]))
                        print_error("error %zu: '%s'\n", i, buf);
        }
        assert_int_equal(errs->n, n);
        for (size_t i = 0; i < n; i++) {
                er_err_format(&errs->v[i], buf, sizeof(buf));
                assert_string_equal(buf, want[i]);
        }
}

static void test_cycle_three(void **state)
{
        struct er_config *c;
        struct er_errs errs;
        const char *want[] = {"/tmp/environment.yml:3:32: dependency cycle: a -> b -> c -> a",
                              NULL};
        (void)state;
        assert_int_equal(build("services:\n"
                               "  x: {command: x}\n"
                               "  a: {command: a, depends_on: [b]}\n"
                               "  b: {command: b, depends_on: [c]}\n"
                               "  c: {command: c, depends_on: [a, x]}\n",
                               &c, &errs),
                         -ER_ECONFIG);
        expect_errors(&errs, want);
        er_config_free(c);
        er_errs_fini(&errs);
}

static void test_two_cycles_one_error_each(void **state)
{
        struct er_config *c;
        struct er_errs errs;
        const char *want[] = {"/tmp/environment.yml:2:32: dependency cycle: a -> b -> a",
                              "/tmp/environment.yml:4:32: dependency cycle: c -> d -> c", NULL};
        (void)state;
        build("services:\n"
              "  a: {command: a, depends_on: [b]}\n"
              "  b: {command: b, depends_on: [a]}\n"
              "  c: {command: c, depends_on: [d]}\n"
              "  d: {command: d, depends_on: [c]}\n",
              &c, &errs);
        expect_errors(&errs, want);
        er_config_free(c);
        er_errs_fini(&errs);
}

static void test_shortest_cycle_reported(void **state)
{
        struct er_config *c;
        struct er_errs errs;
        /* a's component holds a -> b -> a and a -> c -> d -> a: the shortest is shown. */
        const char *want[] = {"/tmp/environment.yml:2:35: dependency cycle: a -> b -> a", NULL};
        (void)state;
        build("services:\n"
              "  a: {command: a, depends_on: [c, b]}\n"
              "  b: {command: b, depends_on: [a]}\n"
              "  c: {command: c, depends_on: [d]}\n"
              "  d: {command: d, depends_on: [a]}\n",
              &c, &errs);
        expect_errors(&errs, want);
        er_config_free(c);
        er_errs_fini(&errs);
}

static void test_self_dependency_not_a_cycle_error(void **state)
{
        struct er_config *c;
        struct er_errs errs;
        const char *want[] = {"/tmp/environment.yml:2:32: service 'a' depends on itself", NULL};
        (void)state;
        build("services:\n"
              "  a: {command: a, depends_on: [a]}\n",
              &c, &errs);
        expect_errors(&errs, want);
        er_config_free(c);
        er_errs_fini(&errs);
}

static void test_topo_order(void **state)
{
        struct er_config *c;
        struct er_errs errs;
        size_t order[5];
        (void)state;
        assert_int_equal(build("services:\n"
                               "  web: {command: w, depends_on: [api]}\n"
                               "  api: {command: a, depends_on: {db: {condition: started}, migrate: {condition: completed}}}\n"
                               "  migrate: {command: m, depends_on: [db]}\n"
                               "  db: {command: d}\n"
                               "  cache: {command: c}\n",
                               &c, &errs),
                         0);
        assert_int_equal(er_graph_topo_order(c, order), 0);
        /* Kahn, file order among equals: db, cache first; then migrate; api; web. */
        const char *want[] = {"db", "cache", "migrate", "api", "web"};
        for (size_t i = 0; i < 5; i++)
                assert_string_equal(c->services[order[i]].name, want[i]);
        er_config_free(c);
        er_errs_fini(&errs);
}

static void test_dot(void **state)
{
        struct er_config *c;
        struct er_errs errs;
        char *dot;
        size_t len;
        (void)state;
        assert_int_equal(build("name: shop\n"
                               "services:\n"
                               "  db: {command: d}\n"
                               "  api: {command: a, depends_on: {db: {condition: completed}}}\n",
                               &c, &errs),
                         0);
        assert_int_equal(er_graph_dot(c, &dot, &len), 0);
        assert_int_equal(strlen(dot), len);
        assert_string_equal(dot, "digraph \"shop\" {\n"
                                 "  rankdir=LR;\n"
                                 "  node [shape=box];\n"
                                 "  \"db\";\n"
                                 "  \"api\";\n"
                                 "  \"api\" -> \"db\" [label=\"completed\"];\n"
                                 "}\n");
        free(dot);
        er_config_free(c);
        er_errs_fini(&errs);
}

static void test_wide_graph(void **state)
{
        /* 300 services in a chain: order is the chain, no recursion trouble. */
        size_t cap = 64 * 1024, n = 0;
        char *y = malloc(cap);
        struct er_config *c;
        struct er_errs errs;
        size_t *order;
        (void)state;
        n += (size_t)snprintf(y + n, cap - n, "services:\n  s0: {command: x}\n");
        for (int i = 1; i < 300; i++)
                n += (size_t)snprintf(y + n, cap - n, "  s%d: {command: x, depends_on: [s%d]}\n", i,
                                      i - 1);
        assert_int_equal(build(y, &c, &errs), 0);
        order = malloc(300 * sizeof(size_t));
        assert_int_equal(er_graph_topo_order(c, order), 0);
        for (size_t i = 0; i < 300; i++)
                assert_int_equal(order[i], i);
        free(order);
        free(y);
        er_config_free(c);
        er_errs_fini(&errs);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cycle_three),
                cmocka_unit_test(test_two_cycles_one_error_each),
                cmocka_unit_test(test_shortest_cycle_reported),
                cmocka_unit_test(test_self_dependency_not_a_cycle_error),
                cmocka_unit_test(test_topo_order),
                cmocka_unit_test(test_dot),
                cmocka_unit_test(test_wide_graph),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
