/* graph: cycles (Tarjan's strongly connected components), start order
 * (Kahn), and DOT output. */
#include "model/graph.h"

#include "base/buf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tarjan {
        const struct er_config *c;
        size_t *index, *low, *stack, *comp;
        bool *on_stack;
        size_t next, sp, n_comp;
};

#define UNSEEN ((size_t)-1)

static void strongconnect(struct tarjan *t, size_t v)
{
        const struct er_service *s = &t->c->services[v];

        t->index[v] = t->low[v] = t->next++;
        t->stack[t->sp++] = v;
        t->on_stack[v] = true;
        for (size_t i = 0; i < s->n_deps; i++) {
                size_t w = s->deps[i].index;
                if (t->index[w] == UNSEEN) {
                        strongconnect(t, w);
                        if (t->low[w] < t->low[v])
                                t->low[v] = t->low[w];
                } else if (t->on_stack[w] && t->index[w] < t->low[v]) {
                        t->low[v] = t->index[w];
                }
        }
        if (t->low[v] == t->index[v]) {
                size_t w;
                do {
                        w = t->stack[--t->sp];
                        t->on_stack[w] = false;
                        t->comp[w] = t->n_comp;
                } while (w != v);
                t->n_comp++;
        }
}

/* Shortest path from start back to start inside its component (BFS), written
 * as "a -> b -> a" into buf; returns the index of start's first edge. */
static size_t describe_cycle(const struct tarjan *t, size_t start, size_t *prev, size_t *queue,
                             char *buf, size_t len)
{
        const struct er_config *c = t->c;
        size_t head = 0, tail = 0, last = UNSEEN, path[ER_SERVICES_MAX + 1], n = 0, edge = 0;
        int off;

        for (size_t i = 0; i < c->n_services; i++)
                prev[i] = UNSEEN;
        queue[tail++] = start;
        while (head < tail && last == UNSEEN) {
                size_t v = queue[head++];
                const struct er_service *s = &c->services[v];
                for (size_t i = 0; i < s->n_deps && last == UNSEEN; i++) {
                        size_t w = s->deps[i].index;
                        if (t->comp[w] != t->comp[start])
                                continue;
                        if (w == start)
                                last = v;
                        else if (prev[w] == UNSEEN) {
                                prev[w] = v;
                                queue[tail++] = w;
                        }
                }
        }
        for (size_t v = last; v != start; v = prev[v])
                path[n++] = v;
        path[n++] = start;
        off = snprintf(buf, len, "%s", c->services[start].name);
        for (size_t i = n; i-- > 0 && off >= 0 && (size_t)off < len;)
                off += snprintf(buf + off, len - (size_t)off, " -> %s",
                                c->services[i == 0 ? start : path[i - 1]].name);
        /* The first edge leaves start towards path[n - 2] (or start itself). */
        size_t first = n >= 2 ? path[n - 2] : start;
        for (size_t i = 0; i < c->services[start].n_deps; i++)
                if (c->services[start].deps[i].index == first) {
                        edge = i;
                        break;
                }
        return edge;
}

int er_graph_check_cycles(const struct er_config *c, struct er_errs *errs)
{
        size_t n = c->n_services;
        struct tarjan t = {.c = c};
        size_t *prev = NULL, *queue = NULL;
        bool *reported = NULL;
        int r = 0;

        t.index = malloc(n * sizeof(size_t));
        t.low = malloc(n * sizeof(size_t));
        t.stack = malloc(n * sizeof(size_t));
        t.comp = malloc(n * sizeof(size_t));
        t.on_stack = calloc(n, sizeof(bool));
        prev = malloc(n * sizeof(size_t));
        queue = malloc(n * sizeof(size_t));
        reported = calloc(n, sizeof(bool));
        if (!t.index || !t.low || !t.stack || !t.comp || !t.on_stack || !prev || !queue || !reported) {
                r = er_errs_add(errs, -ENOMEM, c->file, 0, 0, "out of memory");
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                t.index[i] = UNSEEN;
        for (size_t i = 0; i < n; i++)
                if (t.index[i] == UNSEEN)
                        strongconnect(&t, i);
        for (size_t v = 0; v < n; v++) {
                size_t size = 0;
                char path[ER_ERR_MSG_MAX - 32];
                if (reported[t.comp[v]])
                        continue;
                for (size_t w = 0; w < n; w++)
                        size += t.comp[w] == t.comp[v];
                if (size < 2) /* self-dependencies are validate's to report */
                        continue;
                reported[t.comp[v]] = true;
                size_t e = describe_cycle(&t, v, prev, queue, path, sizeof(path));
                const struct er_dep *d = &c->services[v].deps[e];
                r = er_errs_add(errs, -ER_ECONFIG, c->file, d->loc.line, d->loc.col,
                                "dependency cycle: %s", path);
        }
out:
        free(t.index);
        free(t.low);
        free(t.stack);
        free(t.comp);
        free(t.on_stack);
        free(prev);
        free(queue);
        free(reported);
        return r;
}

int er_graph_topo_order(const struct er_config *c, size_t *order)
{
        size_t n = c->n_services, done = 0;
        size_t *pending = calloc(n ? n : 1, sizeof(size_t));
        bool *placed = calloc(n ? n : 1, sizeof(bool));
        int r = 0;

        if (!pending || !placed) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                pending[i] = c->services[i].n_deps;
        /* O(n^2) in the worst case, with n <= ER_SERVICES_MAX: simple and
         * stable (file order among services ready at the same step). */
        while (done < n) {
                bool progress = false;
                for (size_t i = 0; i < n; i++) {
                        if (placed[i] || pending[i])
                                continue;
                        placed[i] = true;
                        order[done++] = i;
                        progress = true;
                        for (size_t j = 0; j < n; j++)
                                for (size_t k = 0; k < c->services[j].n_deps; k++)
                                        if (c->services[j].deps[k].index == i)
                                                pending[j]--;
                }
                if (!progress) {
                        r = -ELOOP;
                        goto out;
                }
        }
out:
        free(pending);
        free(placed);
        return r;
}

int er_graph_reach(const struct er_config *c, struct er_reach *ret)
{
        size_t n = c->n_services, words = (n + 63) / 64, cells;
        size_t *order = calloc(n ? n : 1, sizeof(*order));
        int r;

        memset(ret, 0, sizeof(*ret));
        if (!order)
                return -ENOMEM;
        r = er_graph_topo_order(c, order);
        if (r < 0)
                goto out;
        cells = n * words;
        if (words && cells / words != n) {
                r = -ENOMEM;
                goto out;
        }
        ret->deps = calloc(cells ? cells : 1, sizeof(uint64_t));
        ret->dependents = calloc(cells ? cells : 1, sizeof(uint64_t));
        if (!ret->deps || !ret->dependents) {
                er_reach_fini(ret);
                r = -ENOMEM;
                goto out;
        }
        ret->n = n;
        ret->words = words;
        /* Every dependency comes earlier in `order`: its row is complete. */
        for (size_t t = 0; t < n; t++) {
                size_t i = order[t];
                uint64_t *row = ret->deps + i * words;
                for (size_t k = 0; k < c->services[i].n_deps; k++) {
                        size_t d = c->services[i].deps[k].index;
                        const uint64_t *drow = ret->deps + d * words;
                        row[d / 64] |= UINT64_C(1) << (d % 64);
                        for (size_t w = 0; w < words; w++)
                                row[w] |= drow[w];
                }
        }
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                        if (er_reach_has(ret->deps + i * words, j))
                                ret->dependents[j * words + i / 64] |= UINT64_C(1) << (i % 64);
out:
        free(order);
        return r;
}

void er_reach_fini(struct er_reach *r)
{
        free(r->deps);
        free(r->dependents);
        memset(r, 0, sizeof(*r));
}

int er_graph_dot(const struct er_config *c, char **ret_buf, size_t *ret_len)
{
        struct er_buf b = {0};

        er_buf_printf(&b, "digraph \"%s\" {\n", c->project);
        er_buf_puts(&b, "  rankdir=LR;\n  node [shape=box];\n");
        for (size_t i = 0; i < c->n_services; i++)
                er_buf_printf(&b, "  \"%s\";\n", c->services[i].name);
        for (size_t i = 0; i < c->n_services; i++) {
                const struct er_service *s = &c->services[i];
                for (size_t k = 0; k < s->n_deps; k++)
                        er_buf_printf(&b, "  \"%s\" -> \"%s\" [label=\"%s\"];\n", s->name,
                                      s->deps[k].name, er_cond_name(s->deps[k].cond));
        }
        er_buf_puts(&b, "}\n");
        return er_buf_finish(&b, ret_buf, ret_len);
}
