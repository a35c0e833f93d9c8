/* load: libyaml's event stream to a tree of er_node, with limits.
 *
 * We read events (yaml_parser_parse), not libyaml's document API, so that
 * every limit is checked while reading: libyaml 0.2.5 has no nesting limit
 * and its composer copies aliased subtrees, so a deep or "billion laughs"
 * file would cost time and memory before we could refuse it.
 *
 * The tree lives in an arena owned by the er_doc: allocation is a pointer
 * bump and freeing is one free() per chunk.  Each node has a hidden header
 * (struct xnode) with its weight (nodes in its subtree, aliases expanded)
 * and height (levels of collections), which is what lets an alias be
 * charged its full expanded size without expanding anything.
 *
 * Errors: every er_err we append borrows the caller's `file` string, never
 * the doc's copy, because on failure the doc is freed before we return. */
#include "model/load.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/hash.h"

const struct er_load_limits er_load_default_limits = {
    .max_bytes = 4 << 20,
    .max_depth = 64,
    .max_nodes = 200000,
};

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

/* ---- nodes ------------------------------------------------------------ */

struct xnode {
        size_t weight;   /* nodes in the subtree, aliases expanded */
        unsigned height; /* 0 for a scalar, 1 + the highest child otherwise */
        struct er_node node;
};

static struct xnode *xnode_of(const struct er_node *n)
{
        return (struct xnode *)((char *)n - offsetof(struct xnode, node));
}

struct er_doc {
        struct er_arena arena;
        const struct er_node *root;
        const char *file;
};

/* ---- the loader ---------------------------------------------------------- */

enum key_state {
        KEY_NONE,  /* next node is a key */
        KEY_OK,    /* next node is the value of pairs[n - 1] */
        KEY_MERGE, /* next node is what '<<' merges */
        KEY_SKIP,  /* next node is the value of a refused key */
};

/* Maps with more pairs than this index their keys in a hash table. */
#define LINEAR_MAX 8

/* An open sequence or map.  Frames are reused from one collection to the
 * next at the same depth, and so are their buffers. */
struct frame {
        struct xnode *x;
        const char *anchor; /* to register when the collection completes */
        struct er_node **items;
        size_t n_items, cap_items;
        struct er_pair *pairs; /* explicit pairs, then merged ones at the end */
        size_t n_pairs, cap_pairs;
        struct er_hash_table keys;
        enum key_state key_state;
        /* The map's '<<' (a second one is a duplicate key). */
        bool merge;
        size_t merge_pos; /* explicit pairs before it */
        unsigned merge_line, merge_col;
        const struct er_node *merge_src;
};

struct anchor {
        const char *name;
        size_t len;
        struct xnode *x;
};

struct loader {
        const char *file; /* the caller's: errors borrow it */
        const struct er_load_limits *lim;
        struct er_errs *errs;
        int err; /* first error's code */
        struct er_doc *doc;
        struct er_arena scratch; /* anchor names */
        struct er_hash_key hkey; /* drawn per load */
        struct frame *frames;
        size_t depth, n_frames;
        struct anchor *anchors;
        size_t n_anchors, cap_anchors;
        struct er_hash_table anchor_tab;
        size_t total; /* nodes so far, aliases expanded */
        unsigned docs;
        struct er_node *root;
};

#define SHOW_MAX 48
#define SHOW_BUF (SHOW_MAX + 10) /* see show(); +2 for show_tag()'s "!!" */

/* A user string fit for a message: control characters escaped, cut after
 * about SHOW_MAX bytes (at a character boundary) with "...". */
static const char *show(char buf[static SHOW_MAX + 8], const char *s, size_t len)
{
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if ((c & 0xc0) != 0x80 && o >= SHOW_MAX) {
                        memcpy(buf + o, "...", 4);
                        return buf;
                }
                if (c == '\n' || c == '\t' || c == '\r') {
                        buf[o++] = '\\';
                        buf[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
                } else if (c < 0x20 || c == 0x7f) {
                        o += (size_t)snprintf(buf + o, 5, "\\x%02x", c);
                } else {
                        buf[o++] = (char)c;
                }
        }
        buf[o] = '\0';
        return buf;
}

/* A tag as the user wrote it: '!!str' rather than libyaml's expansion. */
static const char *show_tag(char buf[static SHOW_BUF], const char *tag)
{
        size_t plen = strlen(YAML_TAG_PREFIX);

        if (strncmp(tag, YAML_TAG_PREFIX, plen) == 0) {
                buf[0] = buf[1] = '!';
                show(buf + 2, tag + plen, strlen(tag + plen));
                return buf;
        }
        return show(buf, tag, strlen(tag));
}

static unsigned clamp_uint(size_t v)
{
        return v > UINT_MAX ? UINT_MAX : (unsigned)v;
}

static void mark_pos(const yaml_mark_t *m, unsigned *line, unsigned *col)
{
        *line = clamp_uint(m->line + 1);
        *col = clamp_uint(m->column + 1);
}

/* Records an error; returns code.  The loader goes on after some (a bad
 * tag, a duplicate key) to report them all; it stops when the caller
 * passes the code up.  Running out of memory is not recorded here but once,
 * by er_load_buffer(): functions just return -ENOMEM. */
static int record(struct loader *l, int code, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int record(struct loader *l, int code, unsigned line, unsigned col, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        er_errs_addv(l->errs, code, l->file, line, col, fmt, ap);
        va_end(ap);
        if (!l->err)
                l->err = code;
        return code;
}

/* Charges `n` expanded nodes; fails once the total crosses the limit. */
static int charge(struct loader *l, size_t n, unsigned line, unsigned col)
{
        if (n > l->lim->max_nodes - l->total)
                return record(l, -ER_ELIMIT, line, col,
                              "document too large: more than %zu nodes after expanding aliases",
                              l->lim->max_nodes);
        l->total += n;
        return 0;
}

static struct xnode *xnode_new(struct loader *l, enum er_node_kind kind, enum er_node_tag tag,
                               unsigned line, unsigned col)
{
        struct xnode *x = er_arena_alloc(&l->doc->arena, sizeof(*x), alignof(struct xnode));

        if (!x)
                return NULL;
        memset(x, 0, sizeof(*x));
        x->weight = 1;
        x->node.kind = kind;
        x->node.tag = tag;
        x->node.line = line;
        x->node.col = col;
        return x;
}

static const char *kind_name(enum er_node_kind kind)
{
        return kind == ER_NODE_SCALAR ? "a string" : kind == ER_NODE_SEQ ? "a list" : "a map";
}

/* Maps libyaml's tag to ours.  `*bang` is set for the non-specific "!",
 * which makes a scalar a string.  A tag we refuse is recorded and
 * dropped: the load fails but goes on, to report the other errors. */
static enum er_node_tag parse_tag(struct loader *l, const yaml_char_t *ytag, enum er_node_kind kind,
                                  unsigned line, unsigned col, bool *bang)
{
        static const struct {
                const char *name;
                enum er_node_tag tag;
                enum er_node_kind kind;
        } core[] = {
            {"str", ER_TAG_STR, ER_NODE_SCALAR},     {"int", ER_TAG_INT, ER_NODE_SCALAR},
            {"float", ER_TAG_FLOAT, ER_NODE_SCALAR}, {"bool", ER_TAG_BOOL, ER_NODE_SCALAR},
            {"null", ER_TAG_NULL, ER_NODE_SCALAR},   {"seq", ER_TAG_SEQ, ER_NODE_SEQ},
            {"map", ER_TAG_MAP, ER_NODE_MAP},
        };
        const char *tag = (const char *)ytag;
        size_t plen = strlen(YAML_TAG_PREFIX);
        char buf[SHOW_BUF];

        *bang = false;
        if (!tag)
                return ER_TAG_NONE;
        if (strcmp(tag, "!") == 0) {
                *bang = true;
                return ER_TAG_NONE;
        }
        if (strncmp(tag, YAML_TAG_PREFIX, plen) == 0) {
                for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++) {
                        if (strcmp(tag + plen, core[i].name) != 0)
                                continue;
                        if (core[i].kind == kind)
                                return core[i].tag;
                        record(l, -ER_ECONFIG, line, col, "tag '%s' cannot be used on %s",
                               show_tag(buf, tag), kind_name(kind));
                        return ER_TAG_NONE;
                }
        }
        record(l, -ER_ECONFIG, line, col,
               "unsupported tag '%s' (only YAML's core tags such as '!!str' are allowed)",
               show_tag(buf, tag));
        return ER_TAG_NONE;
}

/* ---- anchors -------------------------------------------------------------- */

static const char *anchor_key(const void *ctx, size_t idx, size_t *len)
{
        const struct anchor *a = &((const struct anchor *)ctx)[idx];

        *len = a->len;
        return a->name;
}

/* Registers (or redefines: the latest definition wins) an anchor.  `name`
 * must live as long as the loader: a copy in l->scratch, since libyaml's
 * goes with its event. */
static int anchor_set(struct loader *l, const char *name, struct xnode *x)
{
        size_t len = strlen(name), slot, idx;
        uint64_t hash = er_hash_siphash13(&l->hkey, name, len);

        if (er_hash_reserve(&l->anchor_tab) < 0)
                return -ENOMEM;
        idx = er_hash_find(&l->anchor_tab, hash, name, len, anchor_key, l->anchors, &slot);
        if (idx != SIZE_MAX) {
                l->anchors[idx].x = x;
                return 0;
        }
        if (ER_BUF_RESERVE(l->anchors, l->cap_anchors, l->n_anchors + 1) < 0)
                return -ENOMEM;
        l->anchors[l->n_anchors] = (struct anchor){name, len, x};
        er_hash_set(&l->anchor_tab, slot, hash, l->n_anchors++);
        return 0;
}

static struct xnode *anchor_get(struct loader *l, const char *name)
{
        size_t len = strlen(name), slot, idx;

        idx = er_hash_find(&l->anchor_tab, er_hash_siphash13(&l->hkey, name, len), name, len,
                           anchor_key, l->anchors, &slot);
        return idx == SIZE_MAX ? NULL : l->anchors[idx].x;
}

/* ---- maps ----------------------------------------------------------------- */

static const char *pair_key(const void *ctx, size_t idx, size_t *len)
{
        const struct er_node *k = ((const struct er_pair *)ctx)[idx].key;

        *len = k->len;
        return k->str;
}

/* Index of the pair whose key is `key`'s text, or SIZE_MAX. */
static size_t map_find(struct loader *l, const struct frame *f, const struct er_node *key)
{
        size_t slot;

        if (!f->keys.n) {
                /* Not indexed yet: LINEAR_MAX pairs at most. */
                for (size_t i = 0; i < f->n_pairs; i++) {
                        const struct er_node *k = f->pairs[i].key;
                        if (k->len == key->len && memcmp(k->str, key->str, k->len) == 0)
                                return i;
                }
                return SIZE_MAX;
        }
        return er_hash_find(&f->keys, er_hash_siphash13(&l->hkey, key->str, key->len), key->str,
                            key->len, pair_key, f->pairs, &slot);
}

/* Appends a pair whose key map_find() did not find. */
static int map_add(struct loader *l, struct frame *f, struct er_node *key, struct er_node *val)
{
        if (ER_BUF_RESERVE(f->pairs, f->cap_pairs, f->n_pairs + 1) < 0)
                return -ENOMEM;
        f->pairs[f->n_pairs++] = (struct er_pair){key, val};
        if (f->n_pairs <= LINEAR_MAX)
                return 0;
        if (!f->keys.n) {
                /* Crossing LINEAR_MAX: index every key so far. */
                for (size_t i = 0; i < f->n_pairs; i++) {
                        const struct er_node *k = f->pairs[i].key;
                        if (er_hash_reserve(&f->keys) < 0)
                                return -ENOMEM;
                        er_hash_add(&f->keys, er_hash_siphash13(&l->hkey, k->str, k->len), i);
                }
                return 0;
        }
        if (er_hash_reserve(&f->keys) < 0)
                return -ENOMEM;
        er_hash_add(&f->keys, er_hash_siphash13(&l->hkey, key->str, key->len), f->n_pairs - 1);
        return 0;
}

static bool is_merge_key(const struct er_node *k)
{
        return !k->quoted && k->tag == ER_TAG_NONE && k->len == 2 && memcmp(k->str, "<<", 2) == 0;
}

static bool mergeable(const struct er_node *v)
{
        if (v->kind == ER_NODE_MAP)
                return true;
        if (v->kind != ER_NODE_SEQ)
                return false;
        for (size_t i = 0; i < v->n; i++)
                if (v->items[i]->kind != ER_NODE_MAP)
                        return false;
        return true;
}

/* A completed node `k` arrives in map frame `f` where a key is expected.
 * line:col is where it was found: for an alias, the alias, not its anchor. */
static int map_key(struct loader *l, struct frame *f, struct er_node *k, unsigned line,
                   unsigned col)
{
        char buf[SHOW_BUF];
        size_t i;

        if (k->kind != ER_NODE_SCALAR) {
                record(l, -ER_ECONFIG, line, col, "map keys must be strings");
                f->key_state = KEY_SKIP;
                return 0;
        }
        if (is_merge_key(k)) {
                if (f->merge) {
                        record(l, -ER_ESYNTAX, line, col,
                               "duplicate key '<<' (first at line %u, column %u)", f->merge_line,
                               f->merge_col);
                        f->key_state = KEY_SKIP;
                        return 0;
                }
                f->merge = true;
                f->merge_pos = f->n_pairs;
                f->merge_line = line;
                f->merge_col = col;
                f->merge_src = NULL;
                f->key_state = KEY_MERGE;
                return 0;
        }
        i = map_find(l, f, k);
        if (i != SIZE_MAX) {
                const struct er_node *first = f->pairs[i].key;
                record(l, -ER_ESYNTAX, line, col,
                       "duplicate key '%s' (first at line %u, column %u)",
                       show(buf, k->str, k->len), first->line, first->col);
                f->key_state = KEY_SKIP;
                return 0;
        }
        f->key_state = KEY_OK;
        return map_add(l, f, k, NULL);
}

static int map_value(struct loader *l, struct frame *f, struct er_node *v, unsigned line,
                     unsigned col)
{
        enum key_state st = f->key_state;

        f->key_state = KEY_NONE;
        if (st == KEY_OK) {
                f->pairs[f->n_pairs - 1].val = v;
        } else if (st == KEY_MERGE) {
                if (mergeable(v))
                        f->merge_src = v;
                else
                        record(l, -ER_ESYNTAX, line, col,
                               "'<<' must merge a map or a list of maps");
        }
        return 0;
}

/* Appends the pairs of `src` whose keys the map does not have yet: keys
 * written in the map, then earlier merged maps, win. */
static int merge_map(struct loader *l, struct frame *f, const struct er_node *src)
{
        for (size_t i = 0; i < src->n; i++) {
                const struct er_pair *p = &src->pairs[i];
                if (map_find(l, f, p->key) != SIZE_MAX)
                        continue;
                if (map_add(l, f, p->key, p->val) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The map's final pairs, in the arena: merged pairs go where '<<' was. */
static int map_finish(struct loader *l, struct frame *f)
{
        struct er_node *m = &f->x->node;
        size_t n_explicit = f->n_pairs, pos, o = 0;
        struct er_pair *v;

        if (f->merge_src) {
                const struct er_node *src = f->merge_src;
                if (src->kind == ER_NODE_MAP) {
                        if (merge_map(l, f, src) < 0)
                                return -ENOMEM;
                } else {
                        for (size_t i = 0; i < src->n; i++)
                                if (merge_map(l, f, src->items[i]) < 0)
                                        return -ENOMEM;
                }
        }
        if (!f->n_pairs)
                return 0;
        v = er_arena_alloc(&l->doc->arena, f->n_pairs * sizeof(*v), alignof(struct er_pair));
        if (!v)
                return -ENOMEM;
        pos = f->merge_src ? f->merge_pos : n_explicit;
        memcpy(v, f->pairs, pos * sizeof(*v));
        o = pos;
        memcpy(v + o, f->pairs + n_explicit, (f->n_pairs - n_explicit) * sizeof(*v));
        o += f->n_pairs - n_explicit;
        memcpy(v + o, f->pairs + pos, (n_explicit - pos) * sizeof(*v));
        m->pairs = v;
        m->n = f->n_pairs;
        for (size_t i = 0; i < m->n; i++) {
                const struct xnode *k = xnode_of(v[i].key), *val = xnode_of(v[i].val);
                f->x->weight += k->weight + val->weight;
                if (k->height + 1 > f->x->height)
                        f->x->height = k->height + 1;
                if (val->height + 1 > f->x->height)
                        f->x->height = val->height + 1;
        }
        return 0;
}

static int seq_finish(struct loader *l, struct frame *f)
{
        struct er_node *s = &f->x->node;

        if (!f->n_items)
                return 0;
        s->items = er_arena_alloc(&l->doc->arena, f->n_items * sizeof(*s->items),
                                  alignof(struct er_node *));
        if (!s->items)
                return -ENOMEM;
        memcpy(s->items, f->items, f->n_items * sizeof(*s->items));
        s->n = f->n_items;
        for (size_t i = 0; i < s->n; i++) {
                const struct xnode *c = xnode_of(s->items[i]);
                f->x->weight += c->weight;
                if (c->height + 1 > f->x->height)
                        f->x->height = c->height + 1;
        }
        return 0;
}

/* ---- events --------------------------------------------------------------- */

static bool empty_document(const struct er_node *n)
{
        return n->kind == ER_NODE_SCALAR && !n->quoted && n->tag == ER_TAG_NONE && n->len == 0;
}

/* A node is complete: hand it to its parent.  line:col as for map_key(). */
static int node_done(struct loader *l, struct xnode *x, unsigned line, unsigned col)
{
        struct frame *f;

        if (!l->depth) {
                /* libyaml reports `---` alone as an empty plain scalar. */
                l->root = empty_document(&x->node) ? NULL : &x->node;
                return 0;
        }
        f = &l->frames[l->depth - 1];
        if (f->x->node.kind == ER_NODE_SEQ) {
                if (ER_BUF_RESERVE(f->items, f->cap_items, f->n_items + 1) < 0)
                        return -ENOMEM;
                f->items[f->n_items++] = &x->node;
                return 0;
        }
        if (f->key_state == KEY_NONE)
                return map_key(l, f, &x->node, line, col);
        return map_value(l, f, &x->node, line, col);
}

/* Copies a node's anchor out of its event, which is about to be freed. */
static int copy_anchor(struct loader *l, const yaml_char_t *anchor, const char **ret)
{
        const char *name = (const char *)anchor;

        *ret = NULL;
        if (name && !(*ret = er_arena_strndup(&l->scratch, name, strlen(name))))
                return -ENOMEM;
        return 0;
}

static int on_scalar(struct loader *l, const yaml_event_t *ev)
{
        const char *s = (const char *)ev->data.scalar.value, *anchor;
        size_t len = ev->data.scalar.length;
        unsigned line, col;
        enum er_node_tag tag;
        struct xnode *x;
        bool bang;
        char *str;
        int r;

        mark_pos(&ev->start_mark, &line, &col);
        r = charge(l, 1, line, col);
        if (r < 0)
                return r;
        tag = parse_tag(l, ev->data.scalar.tag, ER_NODE_SCALAR, line, col, &bang);
        x = xnode_new(l, ER_NODE_SCALAR, tag, line, col);
        str = x ? er_arena_strndup(&l->doc->arena, s, len) : NULL;
        if (!str)
                return -ENOMEM;
        x->node.str = str;
        x->node.len = len;
        x->node.quoted = bang || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        /* The file has no NUL (checked), but "\0" in double quotes makes one. */
        if (memchr(str, '\0', len))
                record(l, -ER_ECONFIG, line, col, "NUL character in string");
        if (copy_anchor(l, ev->data.scalar.anchor, &anchor) < 0)
                return -ENOMEM;
        if (anchor && anchor_set(l, anchor, x) < 0)
                return -ENOMEM;
        return node_done(l, x, line, col);
}

static int on_alias(struct loader *l, const yaml_event_t *ev)
{
        const char *name = (const char *)ev->data.alias.anchor;
        struct xnode *x = anchor_get(l, name);
        char buf[SHOW_BUF];
        unsigned line, col;
        int r;

        mark_pos(&ev->start_mark, &line, &col);
        if (!x) {
                /* Also the case of `&a [*a]`: an anchor is defined once its
                 * node is complete, so a node cannot contain itself. */
                record(l, -ER_ESYNTAX, line, col, "undefined alias '*%s'",
                       show(buf, name, strlen(name)));
                r = charge(l, 1, line, col);
                if (r < 0)
                        return r;
                /* A stand-in, so that the parent keeps its shape. */
                x = xnode_new(l, ER_NODE_SCALAR, ER_TAG_NONE, line, col);
                if (!x)
                        return -ENOMEM;
                x->node.str = "";
                return node_done(l, x, line, col);
        }
        if (l->depth + x->height > l->lim->max_depth)
                return record(l, -ER_ELIMIT, line, col, "nesting deeper than %u levels",
                              l->lim->max_depth);
        r = charge(l, x->weight, line, col);
        if (r < 0)
                return r;
        return node_done(l, x, line, col);
}

static int on_start(struct loader *l, const yaml_event_t *ev, enum er_node_kind kind)
{
        const yaml_char_t *anchor, *ytag;
        unsigned line, col;
        enum er_node_tag tag;
        struct frame *f;
        bool bang;
        int r;

        mark_pos(&ev->start_mark, &line, &col);
        if (l->depth >= l->lim->max_depth)
                return record(l, -ER_ELIMIT, line, col, "nesting deeper than %u levels",
                              l->lim->max_depth);
        r = charge(l, 1, line, col);
        if (r < 0)
                return r;
        if (kind == ER_NODE_SEQ) {
                anchor = ev->data.sequence_start.anchor;
                ytag = ev->data.sequence_start.tag;
        } else {
                anchor = ev->data.mapping_start.anchor;
                ytag = ev->data.mapping_start.tag;
        }
        tag = parse_tag(l, ytag, kind, line, col, &bang);
        if (l->depth == l->n_frames) {
                size_t cap = l->n_frames;
                if (ER_BUF_RESERVE(l->frames, cap, l->depth + 1) < 0)
                        return -ENOMEM;
                memset(l->frames + l->n_frames, 0, (cap - l->n_frames) * sizeof(*l->frames));
                l->n_frames = cap;
        }
        f = &l->frames[l->depth];
        f->x = xnode_new(l, kind, tag, line, col);
        if (!f->x)
                return -ENOMEM;
        if (copy_anchor(l, anchor, &f->anchor) < 0)
                return -ENOMEM;
        f->n_items = f->n_pairs = 0;
        er_hash_reset(&f->keys);
        f->key_state = KEY_NONE;
        f->merge = false;
        f->merge_src = NULL;
        l->depth++;
        return 0;
}

static int on_end(struct loader *l)
{
        struct frame *f = &l->frames[--l->depth];
        struct xnode *x = f->x;
        int r;

        if (x->node.kind == ER_NODE_SEQ)
                r = seq_finish(l, f);
        else
                r = map_finish(l, f);
        if (r < 0)
                return r;
        if (f->anchor && anchor_set(l, f->anchor, x) < 0)
                return -ENOMEM;
        return node_done(l, x, x->node.line, x->node.col);
}

static int on_event(struct loader *l, const yaml_event_t *ev)
{
        unsigned line, col;

        switch (ev->type) {
        case YAML_DOCUMENT_START_EVENT:
                if (++l->docs > 1) {
                        mark_pos(&ev->start_mark, &line, &col);
                        return record(l, -ER_ECONFIG, line, col, "more than one YAML document");
                }
                return 0;
        case YAML_SCALAR_EVENT:
                return on_scalar(l, ev);
        case YAML_ALIAS_EVENT:
                return on_alias(l, ev);
        case YAML_SEQUENCE_START_EVENT:
                return on_start(l, ev, ER_NODE_SEQ);
        case YAML_MAPPING_START_EVENT:
                return on_start(l, ev, ER_NODE_MAP);
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                return on_end(l);
        default:
                return 0;
        }
}

/* ---- libyaml's errors ------------------------------------------------------ */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The high bit of each zero byte of w, and no other bit. */
static uint64_t zero_bytes(uint64_t w)
{
        return ~(((w & ~HIGHS) + ~HIGHS) | w) & HIGHS;
}

/* Length of the line break at s[0..n), or 0.  libyaml's breaks: LF, CR,
 * CRLF, and (YAML 1.1) NEL, LS and PS. */
static size_t break_len(const unsigned char *s, size_t n)
{
        if (s[0] == '\n')
                return 1;
        if (s[0] == '\r')
                return n > 1 && s[1] == '\n' ? 2 : 1;
        if (s[0] == 0xc2 && n > 1 && s[1] == 0x85)
                return 2;
        if (s[0] == 0xe2 && n > 2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9))
                return 3;
        return 0;
}

/* Line and column (1-based, columns in characters like libyaml's marks) of
 * byte `off` of `buf`, valid UTF-8 before `off`.  A leading BOM is not a
 * column: libyaml's reader drops it.  Runs on error paths only, but may
 * have to cross 4 MiB: ASCII without CR goes eight bytes at a time. */
static void locate(const char *buf, size_t off, unsigned *line, unsigned *col)
{
        const unsigned char *s = (const unsigned char *)buf;
        size_t l = 1, c = 1, i = 0, start, n;
        uint64_t w, m;

        if (off >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
                i = 3;
        start = i;
        while (i < off) {
                if (off - i >= 8) {
                        memcpy(&w, s + i, 8);
                        if (!(w & HIGHS) && !zero_bytes(w ^ (ONES * '\r'))) {
                                m = zero_bytes(w ^ (ONES * '\n'));
                                if (m) {
                                        l += (size_t)__builtin_popcountll(m);
                                        /* After the last LF: little-endian,
                                         * so the highest marked byte. */
                                        start = i + (size_t)(63 - __builtin_clzll(m)) / 8 + 1;
                                }
                                i += 8;
                                continue;
                        }
                }
                n = break_len(s + i, off - i);
                if (n) {
                        l++;
                        i += n;
                        start = i;
                } else {
                        i++;
                }
        }
        /* Characters are the bytes that are not UTF-8 continuations. */
        for (i = start; off - i >= 8; i += 8) {
                memcpy(&w, s + i, 8);
                c += 8 - (size_t)__builtin_popcountll(w & ~(w << 1) & HIGHS);
        }
        for (; i < off; i++)
                if ((s[i] & 0xc0) != 0x80)
                        c++;
        *line = clamp_uint(l);
        *col = clamp_uint(c);
}

static int yaml_error(struct loader *l, const yaml_parser_t *p, const char *buf)
{
        const char *problem = p->problem ? p->problem : "unknown error";
        unsigned line, col, cline, ccol;

        switch (p->error) {
        case YAML_MEMORY_ERROR:
                return -ENOMEM;
        case YAML_READER_ERROR:
                locate(buf, p->problem_offset, &line, &col);
                if (strcmp(problem, "control characters are not allowed") == 0)
                        return record(l, -ER_ESYNTAX, line, col,
                                      p->problem_value < 0x80 ? "control character 0x%02x in file"
                                                              : "control character U+%04X in file",
                                      (unsigned)p->problem_value);
                return record(l, -ER_ESYNTAX, line, col, "%s", problem);
        case YAML_SCANNER_ERROR:
        case YAML_PARSER_ERROR:
                mark_pos(&p->problem_mark, &line, &col);
                if (!p->context)
                        return record(l, -ER_ESYNTAX, line, col, "%s", problem);
                mark_pos(&p->context_mark, &cline, &ccol);
                return record(l, -ER_ESYNTAX, line, col, "%s (%s started at line %u, column %u)",
                              problem, p->context, cline, ccol);
        default:
                return record(l, -ER_ESYNTAX, 0, 0, "%s", problem);
        }
}

/* ---- bytes ----------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), n >= 1, or 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
        unsigned char c = s[0], lo = 0x80, hi = 0xbf;
        size_t len;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2;
        else if (c >= 0xe0 && c <= 0xef)
                len = 3;
        else if (c >= 0xf0 && c <= 0xf4)
                len = 4;
        else
                return 0;
        if (c == 0xe0)
                lo = 0xa0;
        else if (c == 0xed)
                hi = 0x9f;
        else if (c == 0xf0)
                lo = 0x90;
        else if (c == 0xf4)
                hi = 0x8f;
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        return len;
}

/* Offset of the first NUL or invalid UTF-8 byte, or len.  ASCII text, most
 * of any config file, goes eight bytes at a time. */
static size_t scan_bytes(const char *buf, size_t len)
{
        const unsigned char *s = (const unsigned char *)buf;
        size_t i = 0, n;

        while (i < len) {
                uint64_t w;

                if (len - i >= 8) {
                        memcpy(&w, s + i, 8);
                        if (!(w & HIGHS) && !zero_bytes(w)) {
                                i += 8;
                                continue;
                        }
                }
                if (!s[i])
                        return i;
                n = utf8_len(s + i, len - i);
                if (!n)
                        return i;
                i += n;
        }
        return len;
}

static void format_size(char *buf, size_t size, size_t n)
{
        if (n && n % (1024 * 1024) == 0)
                snprintf(buf, size, "%zu MiB", n / (1024 * 1024));
        else if (n && n % 1024 == 0)
                snprintf(buf, size, "%zu KiB", n / 1024);
        else
                snprintf(buf, size, "%zu bytes", n);
}

static int check_bytes(struct loader *l, const char *buf, size_t len)
{
        unsigned line, col;
        char limit[32];
        size_t off;

        if (len > l->lim->max_bytes) {
                format_size(limit, sizeof(limit), l->lim->max_bytes);
                return record(l, -ER_ELIMIT, 0, 0, "file too large: %zu bytes (limit %s)", len,
                              limit);
        }
        off = scan_bytes(buf, len);
        if (off == len)
                return 0;
        locate(buf, off, &line, &col);
        if (!buf[off])
                return record(l, -ER_ESYNTAX, line, col, "NUL byte in file");
        return record(l, -ER_ESYNTAX, line, col, "invalid UTF-8 byte 0x%02x",
                      (unsigned char)buf[off]);
}

/* ---- entry points ---------------------------------------------------------- */

static int parse(struct loader *l, const char *buf, size_t len)
{
        yaml_parser_t parser;
        yaml_event_t ev;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
        for (;;) {
                bool end;

                if (!yaml_parser_parse(&parser, &ev)) {
                        r = yaml_error(l, &parser, buf);
                        break;
                }
                end = ev.type == YAML_STREAM_END_EVENT;
                r = on_event(l, &ev);
                yaml_event_delete(&ev);
                if (r < 0 || end)
                        break;
        }
        yaml_parser_delete(&parser);
        return r;
}

static void loader_fini(struct loader *l)
{
        for (size_t i = 0; i < l->n_frames; i++) {
                free(l->frames[i].items);
                free(l->frames[i].pairs);
                er_hash_fini(&l->frames[i].keys);
        }
        free(l->frames);
        free(l->anchors);
        er_hash_fini(&l->anchor_tab);
        er_arena_fini(&l->scratch);
}

int er_load_buffer(const char *buf, size_t len, const char *file,
                   const struct er_load_limits *limits, struct er_doc **ret_doc,
                   struct er_errs *errs)
{
        struct loader l = {
            .file = file,
            .lim = limits ? limits : &er_load_default_limits,
            .errs = errs,
        };
        int r;

        if (!buf)
                buf = "";
        r = check_bytes(&l, buf, len);
        if (r < 0)
                return r;
        l.doc = calloc(1, sizeof(*l.doc));
        if (!l.doc) {
                r = -ENOMEM;
                goto out_nomem;
        }
        if (file && !(l.doc->file = er_arena_strndup(&l.doc->arena, file, strlen(file)))) {
                r = -ENOMEM;
                goto out_free_doc;
        }
        er_hash_key_init(&l.hkey);
        r = parse(&l, buf, len);
        loader_fini(&l);
        if (r == -ENOMEM)
                goto out_free_doc;
        if (l.err) {
                r = l.err;
                goto out_free_doc;
        }
        l.doc->root = l.root;
        *ret_doc = l.doc;
        return 0;

out_free_doc:
        er_doc_free(l.doc);
out_nomem:
        if (r == -ENOMEM)
                record(&l, -ENOMEM, 0, 0, "out of memory");
        return r;
}

/* Reads fd to its end, but never more than limit + 1 bytes: enough to tell
 * a file over the limit without reading a huge one.  `hint` is the size
 * fstat() gave, 0 if unknown. */
static int read_bounded(int fd, size_t hint, size_t limit, char **ret_buf, size_t *ret_len)
{
        struct er_buf b = {0};
        int r = er_buf_read_fd(&b, fd, limit, hint);

        if (r < 0) {
                er_buf_fini(&b);
                return r;
        }
        return er_buf_finish(&b, ret_buf, ret_len);
}

int er_load_file(const char *path, const struct er_load_limits *limits, struct er_doc **ret_doc,
                 struct er_errs *errs)
{
        const struct er_load_limits *lim = limits ? limits : &er_load_default_limits;
        char limit[32], *buf = NULL;
        struct stat st;
        size_t len = 0;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return er_errs_add(errs, -errno, NULL, 0, 0, "cannot read '%s': %s", path,
                                   strerror(errno));
        if (fstat(fd, &st) < 0) {
                r = er_errs_add(errs, -errno, NULL, 0, 0, "cannot read '%s': %s", path,
                                strerror(errno));
                goto out_close;
        }
        if (S_ISDIR(st.st_mode)) {
                r = er_errs_add(errs, -EISDIR, NULL, 0, 0, "cannot read '%s': %s", path,
                                strerror(EISDIR));
                goto out_close;
        }
        format_size(limit, sizeof(limit), lim->max_bytes);
        if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > lim->max_bytes) {
                r = er_errs_add(errs, -ER_ELIMIT, path, 0, 0,
                                "file too large: %jd bytes (limit %s)", (intmax_t)st.st_size,
                                limit);
                goto out_close;
        }
        r = read_bounded(fd, S_ISREG(st.st_mode) ? (size_t)st.st_size : 0, lim->max_bytes, &buf,
                         &len);
        if (r < 0) {
                r = er_errs_add(errs, r, NULL, 0, 0, "cannot read '%s': %s", path, strerror(-r));
                goto out_close;
        }
        if (len > lim->max_bytes) {
                /* A pipe, or a file that grew since fstat(). */
                r = er_errs_add(errs, -ER_ELIMIT, path, 0, 0,
                                "file too large: more than %zu bytes (limit %s)", lim->max_bytes,
                                limit);
                goto out_free_buf;
        }
        r = er_load_buffer(buf, len, path, lim, ret_doc, errs);

out_free_buf:
        free(buf);
out_close:
        er_close(&fd);
        return r;
}

const struct er_node *er_doc_root(const struct er_doc *doc)
{
        return doc->root;
}

const char *er_doc_file(const struct er_doc *doc)
{
        return doc->file;
}

void er_doc_free(struct er_doc *doc)
{
        if (!doc)
                return;
        er_arena_fini(&doc->arena);
        free(doc);
}

const struct er_node *er_node_get(const struct er_node *map, const char *key)
{
        size_t len;

        if (!map || map->kind != ER_NODE_MAP)
                return NULL;
        len = strlen(key);
        for (size_t i = 0; i < map->n; i++) {
                const struct er_node *k = map->pairs[i].key;
                if (k->len == len && memcmp(k->str, key, len) == 0)
                        return map->pairs[i].val;
        }
        return NULL;
}

bool er_node_is_null(const struct er_node *node)
{
        static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

        if (!node || node->kind != ER_NODE_SCALAR)
                return false;
        if (node->tag == ER_TAG_NULL)
                return true;
        if (node->tag != ER_TAG_NONE || node->quoted)
                return false;
        for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
                if (strcmp(node->str, nulls[i]) == 0)
                        return true;
        return false;
}

const char *er_node_kind_name(const struct er_node *node)
{
        if (!node || er_node_is_null(node))
                return "null";
        return kind_name(node->kind);
}
