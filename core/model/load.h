/* load: an environment.yml read with libyaml into a tree of nodes, each with
 * its line and column.
 *
 * The loader is the first line of defence against hostile input: it checks
 * the bytes (UTF-8, no NUL) before libyaml sees them, bounds the file size,
 * the nesting depth and the number of nodes after alias expansion (a
 * "billion laughs" file fails at once instead of exploding), refuses tags
 * other than YAML's core ones, duplicate keys, and more than one document.
 * Aliases share the anchored subtree (nothing is copied); merge keys
 * (`<<: *base`, `<<: [*a, *b]`) are resolved here, keys written in the map
 * itself winning over merged ones.
 *
 * Scalars stay text: typing (null, bool, int, duration...) is the config
 * module's job, using `quoted` and `tag` to apply YAML 1.2's core schema. */
#ifndef ER_LOAD_H
#define ER_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

enum er_node_kind {
        ER_NODE_SCALAR,
        ER_NODE_SEQ,
        ER_NODE_MAP,
};

/* An explicit core tag on a node (`!!str 5`), or NONE.  Any other tag is an
 * error at load time. */
enum er_node_tag {
        ER_TAG_NONE,
        ER_TAG_STR,
        ER_TAG_INT,
        ER_TAG_FLOAT,
        ER_TAG_BOOL,
        ER_TAG_NULL,
        ER_TAG_SEQ,
        ER_TAG_MAP,
};

struct er_pair;

struct er_node {
        enum er_node_kind kind;
        enum er_node_tag tag;
        bool quoted;          /* scalar in quotes or block style: always a string */
        unsigned line, col;   /* 1-based, where the node starts */
        /* ER_NODE_SCALAR: NUL-terminated text (may contain no NUL: checked) */
        const char *str;
        size_t len;
        /* ER_NODE_SEQ: n items; ER_NODE_MAP: n pairs in file order, keys unique */
        size_t n;
        struct er_node **items;
        struct er_pair *pairs;
};

struct er_pair {
        struct er_node *key; /* always a scalar */
        struct er_node *val;
};

struct er_load_limits {
        size_t max_bytes;  /* file size */
        unsigned max_depth; /* nesting of sequences and maps */
        size_t max_nodes;  /* nodes after alias expansion */
};

/* The defaults: 4 MiB, depth 64, 200,000 nodes. */
extern const struct er_load_limits er_load_default_limits;

struct er_doc;

/* Parses `len` bytes of `buf`.  `file` names the source in errors; the doc
 * keeps its own copy.  On success *ret_doc owns the tree (root is NULL for an
 * empty document).  On failure returns a negative code and appends every
 * error found to errs (the loader stops at the first YAML syntax error,
 * libyaml cannot recover from one, but reports all duplicate keys and bad
 * tags it meets before). `limits` may be NULL for the defaults. */
int er_load_buffer(const char *buf, size_t len, const char *file,
                   const struct er_load_limits *limits, struct er_doc **ret_doc,
                   struct er_errs *errs);

/* Reads `path` (bounded by limits->max_bytes, without reading past it) and
 * parses it.  I/O errors are reported as "cannot read 'path': <strerror>". */
int er_load_file(const char *path, const struct er_load_limits *limits, struct er_doc **ret_doc,
                 struct er_errs *errs);

const struct er_node *er_doc_root(const struct er_doc *doc);
const char *er_doc_file(const struct er_doc *doc);  /* lives as long as doc */
void er_doc_free(struct er_doc *doc);

/* Helpers for readers of the tree. */
const struct er_node *er_node_get(const struct er_node *map, const char *key);
const char *er_node_kind_name(const struct er_node *node); /* "a string", "a list", "a map", "null" */
/* YAML 1.2 core null: an untagged plain scalar '', '~', 'null', 'Null', 'NULL', or !!null. */
bool er_node_is_null(const struct er_node *node);

#endif
