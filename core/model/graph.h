/* graph: the dependency graph of a validated config.
 *
 * Edges go from a dependent to what it depends on, as environment.yml writes
 * them ("api -> db": api depends on db); cycles are printed that way,
 * "a -> b -> c -> a". */
#ifndef ER_GRAPH_H
#define ER_GRAPH_H

#include <stddef.h>

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

/* The graph in Graphviz DOT, into a malloc'd NUL-terminated buffer. */
int er_graph_dot(const struct er_config *config, char **ret_buf, size_t *ret_len);

#endif
