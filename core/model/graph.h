/* graph: the dependency graph of a validated config.
 *
 * Edges go from a dependent to what it depends on, as environment.yml writes
 * them ("api -> db": api depends on db); cycles are printed that way,
 * "a -> b -> c -> a". */
#ifndef ER_GRAPH_H
#define ER_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "base/err.h"

/* Reports one error per dependency cycle (one per strongly connected
 * component), located at the first edge of the cycle as written in the
 * file: "dependency cycle: a -> b -> c -> a".  Needs er_dep.index resolved.
 * Returns 0 or -ER_ECONFIG. */
int er_graph_check_cycles(const struct er_config *config, struct er_errs *errs);

/* Start order: every service after all its dependencies, ties in file order
 * (stable Kahn).  order must hold config->n_services entries.  Returns 0, or
 * -ELOOP on a cycle. */
int er_graph_topo_order(const struct er_config *config, size_t *order);

/* Who depends on whom, directly or not, computed once: rows of bits, one
 * row of `words` 64-bit words per service.  deps row i has bit j when i
 * depends on j through any path; dependents is its transpose (bit j of
 * row i: j depends on i).  Built in topological order, each row the union
 * of its direct dependencies' rows: O(n * (n / 64) + edges * n / 64).
 * Teardown asks "has every dependent stopped?" and "what does this one
 * depend on?" per service: a row each, never a walk of every path. */
struct er_reach {
        size_t n, words;
        uint64_t *deps;
        uint64_t *dependents;
};

int er_graph_reach(const struct er_config *config, struct er_reach *ret);
void er_reach_fini(struct er_reach *r);

static inline const uint64_t *er_reach_deps(const struct er_reach *r, size_t i)
{
        return r->deps + i * r->words;
}

static inline const uint64_t *er_reach_dependents(const struct er_reach *r, size_t i)
{
        return r->dependents + i * r->words;
}

static inline bool er_reach_has(const uint64_t *row, size_t j)
{
        return (row[j / 64] >> (j % 64)) & 1;
}

/* The graph in Graphviz DOT, into a malloc'd NUL-terminated buffer. */
int er_graph_dot(const struct er_config *config, char **ret_buf, size_t *ret_len);

#endif
