/* graph: cycles (one error per strongly connected component, located at its
 * first edge), start order, DOT.  Configs are built from YAML text through
 * the public pipeline (load -> config -> validate). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* web -> api -> {db, migrate -> db}, and cache alone. */
static const char five[] = "services:\n"
                           "  web: {command: w, depends_on: [api]}\n"
                           "  api: {command: a, depends_on: {db: {condition: started}, migrate: {condition: completed}}}\n"
                           "  migrate: {command: m, depends_on: [db]}\n"
                           "  db: {command: d}\n"
                           "  cache: {command: c}\n";

static void test_topo_order(void **state)
{
        struct er_config *c;
        struct er_errs errs;
        size_t order[5];
        (void)state;
        assert_int_equal(build(five, &c, &errs),
                         0);
        assert_int_equal(er_graph_topo_order(c, order), 0);
        /* Kahn, file order among equals: db, cache first; then migrate; api; web. */
        const char *want[] = {"db", "cache", "migrate", "api", "web"};
        for (size_t i = 0; i < 5; i++)
                assert_string_equal(c->services[order[i]].name, want[i]);
        er_config_free(c);
        er_errs_fini(&errs);
}

/* Reachability: the same graph; every pair against a walk of the edges. */
static bool walk(const struct er_config *c, size_t from, size_t to)
{
        for (size_t k = 0; k < c->services[from].n_deps; k++)
                if (c->services[from].deps[k].index == to || walk(c, c->services[from].deps[k].index, to))
                        return true;
        return false;
}

static void test_reach(void **state)
{
        struct er_config *c;
        struct er_errs errs;
        struct er_reach r;
        (void)state;
        assert_int_equal(build(five, &c, &errs),
                         0);
        assert_int_equal(er_graph_reach(c, &r), 0);
        assert_int_equal(r.n, 5);
        for (size_t i = 0; i < 5; i++)
                for (size_t j = 0; j < 5; j++) {
                        assert_int_equal(er_reach_has(er_reach_deps(&r, i), j), walk(c, i, j));
                        assert_int_equal(er_reach_has(er_reach_dependents(&r, j), i), walk(c, i, j));
                }
        /* web depends on db through api, and through api -> migrate. */
        assert_true(er_reach_has(er_reach_deps(&r, 0), 3));
        assert_false(er_reach_has(er_reach_deps(&r, 3), 0));
        assert_false(er_reach_has(er_reach_deps(&r, 4), 3));
        er_reach_fini(&r);
        er_config_free(c);
        er_errs_fini(&errs);
}

/* 100 layers of two, each service on both below: 2^99 paths from the top
 * to the bottom, which a walk of every path never finishes; rows across
 * word boundaries (200 services: four words). */
static void test_reach_layers(void **state)
{
        enum { LAYERS = 100 };
        struct er_config *c;
        struct er_errs errs;
        struct er_reach r;
        char *yaml = malloc(LAYERS * 2 * 64 + 32), *p = yaml;
        (void)state;
        assert_non_null(yaml);
        p += sprintf(p, "services:\n");
        for (int l = 0; l < LAYERS; l++)
                for (int k = 0; k < 2; k++)
                        p += l ? sprintf(p, "  s%d_%d: {command: x, depends_on: [s%d_0, s%d_1]}\n", l, k,
                                         l - 1, l - 1)
                               : sprintf(p, "  s%d_%d: {command: x}\n", l, k);
        assert_int_equal(build(yaml, &c, &errs), 0);
        free(yaml);
        assert_int_equal(er_graph_reach(c, &r), 0);
        assert_int_equal(r.words, 4);
        /* Service 2l+k is in layer l: it depends on exactly the layers below. */
        for (size_t i = 0; i < 2 * LAYERS; i++)
                for (size_t j = 0; j < 2 * LAYERS; j++) {
                        assert_int_equal(er_reach_has(er_reach_deps(&r, i), j), j / 2 < i / 2);
                        assert_int_equal(er_reach_has(er_reach_dependents(&r, i), j), j / 2 > i / 2);
                }
        er_reach_fini(&r);
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
                cmocka_unit_test(test_reach),
                cmocka_unit_test(test_reach_layers),
                cmocka_unit_test(test_dot),
                cmocka_unit_test(test_wide_graph),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
