/* Unit tests for core/load: the node tree, marks, limits and errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/load.h"

static const char FILE_NAME[] = "environment.yml";

/* ---- helpers ------------------------------------------------------------- */

static struct er_doc *load_len(const char *yaml, size_t len)
{
        struct er_doc *doc = NULL;
        struct er_errs errs;
        int r;

        er_errs_init(&errs);
        r = er_load_buffer(yaml, len, FILE_NAME, NULL, &doc, &errs);
        if (r < 0 || errs.n) {
                char buf[512];
                for (size_t i = 0; i < errs.n; i++) {
                        er_err_format(&errs.v[i], buf, sizeof(buf));
                        print_error("unexpected error: %s\n", buf);
                }
        }
        assert_int_equal(r, 0);
        assert_int_equal(errs.n, 0);
        assert_non_null(doc);
        er_errs_fini(&errs);
        return doc;
}

static struct er_doc *load(const char *yaml)
{
        return load_len(yaml, strlen(yaml));
}

/* Loads and expects failure with exactly the errors `want` (formatted as
 * "file:line:col: msg"), NULL-terminated.  Returns the code. */
static int expect_errs_lim(const char *yaml, size_t len, const struct er_load_limits *lim,
                           const char *const *want)
{
        struct er_doc *doc = NULL;
        struct er_errs errs;
        size_t n = 0;
        char buf[512];
        int r;

        er_errs_init(&errs);
        r = er_load_buffer(yaml, len, FILE_NAME, lim, &doc, &errs);
        assert_true(r < 0);
        assert_null(doc);
        while (want[n])
                n++;
        for (size_t i = 0; i < errs.n; i++) {
                er_err_format(&errs.v[i], buf, sizeof(buf));
                if (i >= n || strcmp(buf, want[i]) != 0)
                        print_error("error %zu: got '%s', want '%s'\n", i, buf,
                                    i < n ? want[i] : "(none)");
                /* The list holds its own copy of the file name: the doc is freed. */
                assert_string_equal(errs.v[i].file, FILE_NAME);
                assert_true(errs.v[i].code < 0);
        }
        assert_int_equal(errs.n, n);
        for (size_t i = 0; i < n; i++) {
                er_err_format(&errs.v[i], buf, sizeof(buf));
                assert_string_equal(buf, want[i]);
        }
        assert_int_equal(r, errs.v[0].code);
        er_errs_fini(&errs);
        return r;
}

static int expect_err_len(const char *yaml, size_t len, const char *want)
{
        const char *w[] = {want, NULL};
        return expect_errs_lim(yaml, len, NULL, w);
}

static int expect_err(const char *yaml, const char *want)
{
        return expect_err_len(yaml, strlen(yaml), want);
}

static const struct er_node *get(const struct er_node *map, const char *key)
{
        const struct er_node *n = er_node_get(map, key);
        if (!n)
                print_error("no key '%s'\n", key);
        assert_non_null(n);
        return n;
}

static void assert_scalar(const struct er_node *n, const char *str, unsigned line, unsigned col)
{
        assert_non_null(n);
        assert_int_equal(n->kind, ER_NODE_SCALAR);
        assert_string_equal(n->str, str);
        assert_int_equal(n->len, strlen(str));
        assert_int_equal(n->line, line);
        assert_int_equal(n->col, col);
}


/* A growable string for generated documents. */
struct sbuf {
        char *s;
        size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        assert_true(k >= 0);
        if (b->n + (size_t)k + 1 > b->cap) {
                b->cap = (b->n + (size_t)k + 1) * 2;
                b->s = realloc(b->s, b->cap);
                assert_non_null(b->s);
        }
        va_start(ap, fmt);
        vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
        va_end(ap);
        b->n += (size_t)k;
}

/* ---- the tree -------------------------------------------------------------- */

static void test_scalars_and_marks(void **state)
{
        struct er_doc *doc = load("name: demo\n"
                                  "services:\n"
                                  "  web:\n"
                                  "    command: ./run --port 80\n"
                                  "    ports: [80, 443]\n"
                                  "    env: {A: 1}\n");
        const struct er_node *root = er_doc_root(doc), *web, *ports, *env;

        (void)state;
        assert_int_equal(root->kind, ER_NODE_MAP);
        assert_int_equal(root->line, 1);
        assert_int_equal(root->col, 1);
        assert_int_equal(root->n, 2);
        assert_scalar(root->pairs[0].key, "name", 1, 1);
        assert_scalar(root->pairs[0].val, "demo", 1, 7);
        assert_scalar(root->pairs[1].key, "services", 2, 1);
        web = get(get(root, "services"), "web");
        assert_int_equal(web->kind, ER_NODE_MAP);
        assert_int_equal(web->line, 4);
        assert_int_equal(web->col, 5);
        assert_scalar(get(web, "command"), "./run --port 80", 4, 14);
        ports = get(web, "ports");
        assert_int_equal(ports->kind, ER_NODE_SEQ);
        assert_int_equal(ports->line, 5);
        assert_int_equal(ports->col, 12);
        assert_int_equal(ports->n, 2);
        assert_scalar(ports->items[0], "80", 5, 13);
        assert_scalar(ports->items[1], "443", 5, 17);
        env = get(web, "env");
        assert_int_equal(env->kind, ER_NODE_MAP);
        assert_scalar(get(env, "A"), "1", 6, 14);
        assert_null(er_node_get(web, "missing"));
        assert_null(er_node_get(ports, "80"));
        assert_null(er_node_get(NULL, "x"));
        assert_string_equal(er_doc_file(doc), FILE_NAME);
        assert_ptr_not_equal(er_doc_file(doc), FILE_NAME);
        er_doc_free(doc);
}

static void test_columns_count_characters(void **state)
{
        /* "é" and "日本" are one column per character, not per byte. */
        struct er_doc *doc = load("é: 日本 x\nk: [日本, z]\n");
        const struct er_node *root = er_doc_root(doc), *seq;

        (void)state;
        assert_scalar(root->pairs[0].val, "日本 x", 1, 4);
        seq = get(root, "k");
        assert_scalar(seq->items[1], "z", 2, 9);
        er_doc_free(doc);
}

static void test_quoted(void **state)
{
        struct er_doc *doc = load("plain: x\n"
                                  "single: 'x'\n"
                                  "double: \"x\\ty\"\n"
                                  "literal: |\n  a\n  b\n"
                                  "folded: >\n  a\n  b\n"
                                  "bang: ! 5\n"
                                  "tagged: !!str 5\n");
        const struct er_node *root = er_doc_root(doc);

        (void)state;
        assert_false(get(root, "plain")->quoted);
        assert_true(get(root, "single")->quoted);
        assert_true(get(root, "double")->quoted);
        assert_string_equal(get(root, "double")->str, "x\ty");
        assert_true(get(root, "literal")->quoted);
        assert_string_equal(get(root, "literal")->str, "a\nb\n");
        assert_true(get(root, "folded")->quoted);
        assert_string_equal(get(root, "folded")->str, "a b\n");
        /* "!" is the non-specific tag: a string, whatever it looks like. */
        assert_true(get(root, "bang")->quoted);
        assert_int_equal(get(root, "bang")->tag, ER_TAG_NONE);
        assert_string_equal(get(root, "bang")->str, "5");
        assert_false(get(root, "tagged")->quoted);
        assert_int_equal(get(root, "tagged")->tag, ER_TAG_STR);
        er_doc_free(doc);
}

static void test_core_tags(void **state)
{
        struct er_doc *doc = load("s: !!str 1\n"
                                  "i: !!int 2\n"
                                  "f: !!float 3\n"
                                  "b: !!bool true\n"
                                  "n: !!null ''\n"
                                  "q: !!seq [a]\n"
                                  "m: !!map {a: b}\n"
                                  "v: !<tag:yaml.org,2002:str> 4\n"
                                  "none: x\n");
        const struct er_node *root = er_doc_root(doc);

        (void)state;
        assert_int_equal(get(root, "s")->tag, ER_TAG_STR);
        assert_int_equal(get(root, "i")->tag, ER_TAG_INT);
        assert_int_equal(get(root, "f")->tag, ER_TAG_FLOAT);
        assert_int_equal(get(root, "b")->tag, ER_TAG_BOOL);
        assert_int_equal(get(root, "n")->tag, ER_TAG_NULL);
        assert_int_equal(get(root, "q")->tag, ER_TAG_SEQ);
        assert_int_equal(get(root, "q")->kind, ER_NODE_SEQ);
        assert_int_equal(get(root, "m")->tag, ER_TAG_MAP);
        assert_int_equal(get(root, "m")->kind, ER_NODE_MAP);
        assert_int_equal(get(root, "v")->tag, ER_TAG_STR);
        assert_int_equal(get(root, "none")->tag, ER_TAG_NONE);
        er_doc_free(doc);
}

static void test_bad_tags(void **state)
{
        /* Every bad tag is reported, not just the first. */
        const char *want[] = {
            "environment.yml:1:4: unsupported tag '!foo' (only YAML's core tags such as "
            "'!!str' are allowed)",
            "environment.yml:2:4: unsupported tag '!!python/object' (only YAML's core tags "
            "such as '!!str' are allowed)",
            "environment.yml:3:4: tag '!!str' cannot be used on a list",
            "environment.yml:4:4: tag '!!map' cannot be used on a string",
            "environment.yml:6:5: unsupported tag '!!binary' (only YAML's core tags such "
            "as '!!str' are allowed)",
            NULL,
        };
        const char *yaml = "a: !foo x\n"
                           "b: !!python/object y\n"
                           "c: !!str [a]\n"
                           "d: !!map x\n"
                           "e:\n  - !!binary aGk=\n";
        int r = expect_errs_lim(yaml, strlen(yaml), NULL, want);

        (void)state;
        assert_int_equal(r, -ER_ECONFIG);
}

static void test_null(void **state)
{
        struct er_doc *doc = load("a:\n"
                                  "b: ~\n"
                                  "c: null\n"
                                  "d: Null\n"
                                  "e: NULL\n"
                                  "f: nULL\n"
                                  "g: 'null'\n"
                                  "h: \"\"\n"
                                  "i: !!null x\n"
                                  "j: !!str null\n"
                                  "k: ! null\n"
                                  "l: [x]\n"
                                  "m: {}\n"
                                  "n: x\n");
        const struct er_node *root = er_doc_root(doc);

        (void)state;
        assert_true(er_node_is_null(get(root, "a")));
        assert_true(er_node_is_null(get(root, "b")));
        assert_true(er_node_is_null(get(root, "c")));
        assert_true(er_node_is_null(get(root, "d")));
        assert_true(er_node_is_null(get(root, "e")));
        assert_false(er_node_is_null(get(root, "f")));
        assert_false(er_node_is_null(get(root, "g")));
        assert_false(er_node_is_null(get(root, "h")));
        assert_true(er_node_is_null(get(root, "i")));
        assert_false(er_node_is_null(get(root, "j")));
        assert_false(er_node_is_null(get(root, "k")));
        assert_false(er_node_is_null(get(root, "l")));
        assert_string_equal(er_node_kind_name(get(root, "a")), "null");
        assert_string_equal(er_node_kind_name(get(root, "g")), "a string");
        assert_string_equal(er_node_kind_name(get(root, "n")), "a string");
        assert_string_equal(er_node_kind_name(get(root, "l")), "a list");
        assert_string_equal(er_node_kind_name(get(root, "m")), "a map");
        assert_int_equal(get(root, "m")->n, 0);
        assert_null(get(root, "m")->pairs);
        er_doc_free(doc);
}

static void test_empty_documents(void **state)
{
        static const char *const empty[] = {"",      "\n",          "# just a comment\n",
                                            "---\n", "--- \n...\n", "\xef\xbb\xbf"};
        struct er_doc *doc;

        (void)state;
        for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
                doc = load(empty[i]);
                assert_null(er_doc_root(doc));
                er_doc_free(doc);
        }
        doc = load_len(NULL, 0);
        assert_null(er_doc_root(doc));
        er_doc_free(doc);
        /* An explicit null or empty string is a document, not an empty one. */
        doc = load("~\n");
        assert_non_null(er_doc_root(doc));
        assert_true(er_node_is_null(er_doc_root(doc)));
        er_doc_free(doc);
        doc = load("''\n");
        assert_non_null(er_doc_root(doc));
        er_doc_free(doc);
}

static void test_multiple_documents(void **state)
{
        int r = expect_err("a: 1\n---\nb: 2\n", "environment.yml:2:1: more than one YAML document");

        (void)state;
        assert_int_equal(r, -ER_ECONFIG);
        expect_err("a: 1\n...\n---\nb: 2\n", "environment.yml:3:1: more than one YAML document");
        expect_err("---\n---\n", "environment.yml:2:1: more than one YAML document");
        /* A document end marker alone is fine. */
        er_doc_free(load("a: 1\n...\n"));
}

/* ---- keys -------------------------------------------------------------- */

static void test_duplicate_keys(void **state)
{
        const char *want[] = {
            "environment.yml:3:3: duplicate key 'db' (first at line 2, column 3)",
            "environment.yml:5:1: duplicate key 'services' (first at line 1, column 1)",
            NULL,
        };
        const char *yaml = "services:\n  db: 1\n  db: 2\nx: {a: 1}\nservices: 3\n";
        int r = expect_errs_lim(yaml, strlen(yaml), NULL, want);

        (void)state;
        assert_int_equal(r, -ER_ESYNTAX);
        /* Quoting does not make a different key. */
        expect_err("a: 1\n'a': 2\n", "environment.yml:2:1: duplicate key 'a' (first at line 1, "
                                     "column 1)");
        expect_err("{x: 1, \"x\": 2}", "environment.yml:1:8: duplicate key 'x' (first at line 1, "
                                       "column 2)");
}

static void test_duplicate_keys_big_map(void **state)
{
        /* Past a few keys the map indexes them in a hash table. */
        struct sbuf b = {0};
        struct er_doc *doc;
        const struct er_node *root;

        (void)state;
        for (int i = 0; i < 1000; i++)
                sb_add(&b, "key%d: %d\n", i, i);
        doc = load(b.s);
        root = er_doc_root(doc);
        assert_int_equal(root->n, 1000);
        assert_scalar(get(root, "key999"), "999", 1000, 9);
        assert_string_equal(root->pairs[500].key->str, "key500");
        er_doc_free(doc);
        sb_add(&b, "key3: again\n");
        expect_err(b.s, "environment.yml:1001:1: duplicate key 'key3' (first at line 4, column 1)");
        free(b.s);
}

static void test_duplicate_key_shown_safely(void **state)
{
        (void)state;
        /* Control characters are escaped and long keys cut. */
        expect_err("\"a\\nb\": 1\n\"a\\nb\": 2\n",
                   "environment.yml:2:1: duplicate key 'a\\nb' (first at line 1, column 1)");
        expect_err("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: 1\n"
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: 2\n",
                   "environment.yml:2:1: duplicate key "
                   "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' (first at line 1, "
                   "column 1)");
}

static void test_non_scalar_keys(void **state)
{
        const char *want[] = {
            "environment.yml:1:3: map keys must be strings",
            "environment.yml:3:1: map keys must be strings",
            NULL,
        };
        const char *yaml = "? [a]\n: b\n{x: 1}: c\n";
        int r = expect_errs_lim(yaml, strlen(yaml), NULL, want);

        (void)state;
        assert_int_equal(r, -ER_ECONFIG);
}

/* ---- anchors, aliases, merges ---------------------------------------------- */

static void test_aliases_share(void **state)
{
        struct er_doc *doc = load("x-env: &env\n"
                                  "  A: 1\n"
                                  "  B: 2\n"
                                  "web: {env: *env}\n"
                                  "db: {env: *env}\n"
                                  "s: &s word\n"
                                  "t: *s\n"
                                  "redefined: &s other\n"
                                  "u: *s\n");
        const struct er_node *root = er_doc_root(doc), *env = get(root, "x-env");

        (void)state;
        assert_ptr_equal(get(get(root, "web"), "env"), env);
        assert_ptr_equal(get(get(root, "db"), "env"), env);
        /* A node starts at its properties (anchor, tag). */
        assert_int_equal(env->line, 1);
        assert_int_equal(env->col, 8);
        assert_ptr_equal(get(root, "t"), get(root, "s"));
        assert_string_equal(get(root, "u")->str, "other");
        er_doc_free(doc);
}

static void test_recursive_alias(void **state)
{
        int r = expect_err("&a [*a]\n", "environment.yml:1:5: undefined alias '*a'");

        (void)state;
        assert_int_equal(r, -ER_ESYNTAX);
        expect_err("a: &m\n  self: *m\n", "environment.yml:2:9: undefined alias '*m'");
        expect_err("a: *nope\n", "environment.yml:1:4: undefined alias '*nope'");
}

static void test_merge_single(void **state)
{
        struct er_doc *doc = load("base: &base\n"
                                  "  x: 1\n"
                                  "  y: 2\n"
                                  "svc:\n"
                                  "  y: 3\n"
                                  "  <<: *base\n"
                                  "  z: 4\n");
        const struct er_node *root = er_doc_root(doc), *base = get(root, "base"),
                             *svc = get(root, "svc");

        (void)state;
        /* Explicit keys win even when written before '<<'; merged pairs take
         * its place and keep their nodes. */
        assert_int_equal(svc->n, 3);
        assert_string_equal(svc->pairs[0].key->str, "y");
        assert_string_equal(svc->pairs[1].key->str, "x");
        assert_string_equal(svc->pairs[2].key->str, "z");
        assert_scalar(get(svc, "y"), "3", 5, 6);
        assert_ptr_equal(get(svc, "x"), get(base, "x"));
        assert_scalar(get(svc, "x"), "1", 2, 6);
        assert_null(er_node_get(svc, "<<"));
        er_doc_free(doc);
}

static void test_merge_list(void **state)
{
        struct er_doc *doc = load("a: &a {k: 1, m: 1}\n"
                                  "b: &b {k: 2, n: 2}\n"
                                  "c:\n"
                                  "  <<: [*a, *b, {n: 3, o: 3}]\n"
                                  "  m: 0\n");
        const struct er_node *c = get(er_doc_root(doc), "c");

        (void)state;
        /* Earlier maps in the list win over later ones. */
        assert_int_equal(c->n, 4);
        assert_scalar(get(c, "k"), "1", 1, 11);
        assert_scalar(get(c, "m"), "0", 5, 6);
        assert_scalar(get(c, "n"), "2", 2, 17);
        assert_scalar(get(c, "o"), "3", 4, 26);
        er_doc_free(doc);
}

static void test_merge_nested(void **state)
{
        /* A merged map that itself merged: its pairs are already final. */
        struct er_doc *doc = load("a: &a {x: 1}\n"
                                  "b: &b {<<: *a, y: 2}\n"
                                  "c: {<<: *b, z: 3}\n");
        const struct er_node *c = get(er_doc_root(doc), "c");

        (void)state;
        assert_int_equal(c->n, 3);
        assert_string_equal(get(c, "x")->str, "1");
        assert_string_equal(get(c, "y")->str, "2");
        assert_string_equal(get(c, "z")->str, "3");
        er_doc_free(doc);
}

static void test_merge_quoted_is_a_key(void **state)
{
        struct er_doc *doc = load("a: &a {x: 1}\nb:\n  \"<<\": *a\n");
        const struct er_node *b = get(er_doc_root(doc), "b");

        (void)state;
        assert_int_equal(b->n, 1);
        assert_int_equal(get(b, "<<")->kind, ER_NODE_MAP);
        assert_null(er_node_get(b, "x"));
        er_doc_free(doc);
}

static void test_merge_errors(void **state)
{
        int r = expect_err("a:\n  <<: 5\n",
                           "environment.yml:2:7: '<<' must merge a map or a list of maps");

        (void)state;
        assert_int_equal(r, -ER_ESYNTAX);
        expect_err("a: &a [1]\nb:\n  <<: *a\n",
                   "environment.yml:3:7: '<<' must merge a map or a list of maps");
        expect_err("a: &a {x: 1}\nb:\n  <<: [*a, x]\n",
                   "environment.yml:3:7: '<<' must merge a map or a list of maps");
        expect_err("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n",
                   "environment.yml:4:3: duplicate key '<<' (first at line 3, column 3)");
}

/* ---- bytes ------------------------------------------------------------------ */

static void test_nul_byte(void **state)
{
        static const char yaml[] = "a: 1\nb: x\0y\n";
        int r = expect_err_len(yaml, sizeof(yaml) - 1, "environment.yml:2:5: NUL byte in file");

        (void)state;
        assert_int_equal(r, -ER_ESYNTAX);
        /* A NUL made by an escape is refused too: strings are C strings. */
        expect_err("a: \"x\\0y\"\n", "environment.yml:1:4: NUL character in string");
}

static void test_bad_utf8(void **state)
{
        int r = expect_err("a: 1\nb: é\xff\n", "environment.yml:2:5: invalid UTF-8 byte 0xff");

        (void)state;
        assert_int_equal(r, -ER_ESYNTAX);
        expect_err("\xfe\xff", "environment.yml:1:1: invalid UTF-8 byte 0xfe");
        /* Latin-1 'é' before ASCII: the lead byte is reported. */
        expect_err("k: caf\xe9 au lait\n", "environment.yml:1:7: invalid UTF-8 byte 0xe9");
        /* Stray continuation byte, overlong forms, surrogates, > U+10FFFF. */
        expect_err("k: \x80\n", "environment.yml:1:4: invalid UTF-8 byte 0x80");
        expect_err("k: \xc0\xaf\n", "environment.yml:1:4: invalid UTF-8 byte 0xc0");
        expect_err("k: \xe0\x80\xaf\n", "environment.yml:1:4: invalid UTF-8 byte 0xe0");
        expect_err("k: \xed\xa0\x80\n", "environment.yml:1:4: invalid UTF-8 byte 0xed");
        expect_err("k: \xf4\x90\x80\x80\n", "environment.yml:1:4: invalid UTF-8 byte 0xf4");
        expect_err("k: \xf0\x9f\x98\n", "environment.yml:1:4: invalid UTF-8 byte 0xf0");
        /* Truncated at the end of the file. */
        expect_err("k: \xe2\x82", "environment.yml:1:4: invalid UTF-8 byte 0xe2");
        /* Valid 2, 3 and 4 byte sequences, and the extremes. */
        er_doc_free(load("k: \xc2\xa0 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xf0\x90\x80\x80 "
                         "\xf4\x8f\xbf\xbd 😀\n"));
}

static void test_error_lines_follow_libyaml(void **state)
{
        (void)state;
        /* CRLF is one break, a lone CR is one, and so are NEL, LS and PS
         * (libyaml reads YAML 1.1); columns count characters. */
        expect_err("a: 1\r\nb: 2\r\nc: é\xff", "environment.yml:3:5: invalid UTF-8 byte 0xff");
        expect_err("a: 1\rb: \xff", "environment.yml:2:4: invalid UTF-8 byte 0xff");
        expect_err("a: 1 \xc2\x85 b\n\xff", "environment.yml:3:1: invalid UTF-8 byte 0xff");
        expect_err("# \xe2\x80\xa8x \xff", "environment.yml:2:3: invalid UTF-8 byte 0xff");
        /* Control characters, which libyaml refuses, located the same way. */
        expect_err("a: 1\r\nb: é\x1b\n", "environment.yml:2:5: control character 0x1b in file");
        expect_err("a: \xc2\x9f\n", "environment.yml:1:4: control character U+009F in file");
}

static void test_bom(void **state)
{
        struct er_doc *doc = load("\xef\xbb\xbf"
                                  "a: 1\n");

        (void)state;
        /* The BOM is not a column. */
        assert_scalar(er_doc_root(doc)->pairs[0].key, "a", 1, 1);
        assert_scalar(er_doc_root(doc)->pairs[0].val, "1", 1, 4);
        er_doc_free(doc);
        expect_err("\xef\xbb\xbf"
                   "a: \xff",
                   "environment.yml:1:4: invalid UTF-8 byte 0xff");
}

static void test_prescan_is_fast(void **state)
{
        /* 4 MiB of ASCII with a bad byte at the very end: the bytes are
         * checked, and the error located, before libyaml parses anything. */
        size_t len = 4u << 20;
        char *buf = malloc(len);

        (void)state;
        assert_non_null(buf);
        for (size_t i = 0; i < len; i++)
                buf[i] = i % 40 == 39 ? '\n' : 'a' + (char)(i % 26);
        buf[len - 1] = '\xff';
        expect_err_len(buf, len, "environment.yml:104858:24: invalid UTF-8 byte 0xff");
        free(buf);
}

/* ---- limits ---------------------------------------------------------------- */

static char *nested(unsigned depth)
{
        char *s = malloc(2 * depth + 1);

        assert_non_null(s);
        memset(s, '[', depth);
        memset(s + depth, ']', depth);
        s[2 * depth] = '\0';
        return s;
}

static void test_depth_limit(void **state)
{
        char *ok = nested(64), *deep = nested(65), *huge = nested(200000);
        const struct er_node *n;
        struct er_doc *doc;
        unsigned depth = 0;
        int r;

        (void)state;
        doc = load(ok);
        for (n = er_doc_root(doc); n && n->kind == ER_NODE_SEQ; n = n->n ? n->items[0] : NULL)
                depth++;
        assert_int_equal(depth, 64);
        er_doc_free(doc);
        r = expect_err(deep, "environment.yml:1:65: nesting deeper than 64 levels");
        assert_int_equal(r, -ER_ELIMIT);
        expect_err(huge, "environment.yml:1:65: nesting deeper than 64 levels");
        free(ok);
        free(deep);
        free(huge);
}

static void test_depth_limit_custom(void **state)
{
        static const struct er_load_limits lim = {1 << 20, 3, 1000};
        const char *want[] = {"environment.yml:3:8: nesting deeper than 3 levels", NULL};
        const char *yaml = "a:\n  b:\n    c: [[{d: 1}]]\n";

        (void)state;
        expect_errs_lim(yaml, strlen(yaml), &lim, want);
}

static void test_depth_through_aliases(void **state)
{
        /* An alias is as deep as what it names.  At the alias 61 levels are
         * open (the root list, then 60); the alias would bring 10 more. */
        static const struct er_load_limits lim = {1 << 20, 64, 200000};
        const char *want[] = {"environment.yml:2:63: nesting deeper than 64 levels", NULL};
        struct sbuf b = {0};
        char *ten = nested(10);

        (void)state;
        sb_add(&b, "- &t %s\n- ", ten);
        for (int i = 0; i < 60; i++)
                sb_add(&b, "[");
        sb_add(&b, "*t");
        for (int i = 0; i < 60; i++)
                sb_add(&b, "]");
        sb_add(&b, "\n");
        expect_errs_lim(b.s, b.n, &lim, want);
        free(ten);
        free(b.s);
}

static const char billion_laughs[] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                                     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                                     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                                     "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";

static void test_node_limit_billion_laughs(void **state)
{
        /* Through e: 1+9 + ... the total crosses 200,000 at the 2nd *e. */
        int r = expect_err(billion_laughs, "environment.yml:6:12: document too large: more than "
                                           "200000 nodes after expanding aliases");

        (void)state;
        assert_int_equal(r, -ER_ELIMIT);
}

static void test_node_limit_custom(void **state)
{
        static const struct er_load_limits lim = {1 << 20, 64, 10};
        const char *want[] = {"environment.yml:1:29: document too large: more than 10 nodes "
                              "after expanding aliases",
                              NULL};
        const char *yaml = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]";
        struct er_doc *doc = NULL;
        struct er_errs errs;
        /* Exactly 10 nodes (the list and 9 items) is fine. */
        static const char fits[] = "[1, 2, 3, 4, 5, 6, 7, 8, 9]";

        (void)state;
        expect_errs_lim(yaml, strlen(yaml), &lim, want);
        er_errs_init(&errs);
        assert_int_equal(er_load_buffer(fits, strlen(fits), FILE_NAME, &lim, &doc, &errs), 0);
        assert_int_equal(er_doc_root(doc)->n, 9);
        er_doc_free(doc);
        er_errs_fini(&errs);
}

static void test_file_too_large(void **state)
{
        static const struct er_load_limits lim = {10, 64, 1000};
        const char *want[] = {"environment.yml: file too large: 11 bytes (limit 10 bytes)", NULL};
        const char *want_k[] = {"environment.yml: file too large: 2049 bytes (limit 2 KiB)", NULL};
        static const struct er_load_limits lim_k = {2048, 64, 1000};
        size_t big = (4u << 20) + 1;
        char *buf = malloc(big);
        struct er_doc *doc = NULL;
        struct er_errs errs;
        int r;

        (void)state;
        r = expect_errs_lim("a: 12345678", 11, &lim, want);
        assert_int_equal(r, -ER_ELIMIT);
        er_errs_init(&errs);
        assert_int_equal(er_load_buffer("a: 1234567", 10, FILE_NAME, &lim, &doc, &errs), 0);
        er_doc_free(doc);
        er_errs_fini(&errs);
        assert_non_null(buf);
        memset(buf, 'a', big);
        expect_errs_lim(buf, 2049, &lim_k, want_k);
        expect_err_len(buf, big, "environment.yml: file too large: 4194305 bytes (limit 4 MiB)");
        free(buf);
}

/* ---- syntax errors ------------------------------------------------------------ */

static void test_syntax_errors(void **state)
{
        int r = expect_err("services:\n  web:\n    a: b: c\n",
                           "environment.yml:3:9: mapping values are not allowed in this context");

        (void)state;
        assert_int_equal(r, -ER_ESYNTAX);
        expect_err("a:\n  b: 1\n c: 2\n",
                   "environment.yml:3:2: did not find expected key (while parsing a block "
                   "mapping started at line 1, column 1)");
        expect_err("k: \"unterminated\n",
                   "environment.yml:2:1: found unexpected end of stream (while scanning a "
                   "quoted scalar started at line 1, column 4)");
        expect_err("a: [1, 2\n",
                   "environment.yml:2:1: did not find expected ',' or ']' (while parsing a flow "
                   "sequence started at line 1, column 4)");
        expect_err("a:\n\tb: 1\n", "environment.yml:2:1: found character that cannot start any "
                                   "token (while scanning for the next token started at line 2, "
                                   "column 1)");
}

static void test_errors_before_syntax_error_kept(void **state)
{
        /* Errors met before libyaml gives up are all reported. */
        const char *want[] = {
            "environment.yml:1:4: unsupported tag '!x' (only YAML's core tags such as "
            "'!!str' are allowed)",
            "environment.yml:3:1: duplicate key 'a' (first at line 1, column 1)",
            "environment.yml:4:5: mapping values are not allowed in this context",
            NULL,
        };
        const char *yaml = "a: !x 1\nb: 2\na: 3\nc: d: e\n";

        (void)state;
        expect_errs_lim(yaml, strlen(yaml), NULL, want);
}

/* ---- files ---------------------------------------------------------------- */

static void test_load_file(void **state)
{
        char path[] = "/tmp/test_load_XXXXXX";
        int fd = mkstemp(path);
        static const char yaml[] = "a: 1\n";
        struct er_doc *doc = NULL;
        struct er_errs errs;

        (void)state;
        assert_true(fd >= 0);
        assert_int_equal(write(fd, yaml, sizeof(yaml) - 1), sizeof(yaml) - 1);
        close(fd);
        er_errs_init(&errs);
        assert_int_equal(er_load_file(path, NULL, &doc, &errs), 0);
        assert_int_equal(errs.n, 0);
        assert_scalar(get(er_doc_root(doc), "a"), "1", 1, 4);
        assert_string_equal(er_doc_file(doc), path);
        er_doc_free(doc);
        er_errs_fini(&errs);
        unlink(path);
}

static void test_load_file_too_large(void **state)
{
        static const struct er_load_limits lim = {4, 64, 1000};
        char path[] = "/tmp/test_load_XXXXXX", want[128];
        int fd = mkstemp(path);
        struct er_doc *doc = NULL;
        struct er_errs errs;

        (void)state;
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "a: 12", 5), 5);
        close(fd);
        er_errs_init(&errs);
        assert_int_equal(er_load_file(path, &lim, &doc, &errs), -ER_ELIMIT);
        assert_null(doc);
        assert_int_equal(errs.n, 1);
        assert_string_equal(errs.v[0].file, path);
        assert_int_equal(errs.v[0].line, 0);
        snprintf(want, sizeof(want), "%s: file too large: 5 bytes (limit 4 bytes)", path);
        {
                char buf[256];
                er_err_format(&errs.v[0], buf, sizeof(buf));
                assert_string_equal(buf, want);
        }
        er_errs_fini(&errs);
        unlink(path);
}

static void test_load_file_pipe_too_large(void **state)
{
        /* No size from fstat(): the read itself stops at the limit + 1. */
        static const struct er_load_limits lim = {4, 64, 1000};
        struct er_doc *doc = NULL;
        struct er_errs errs;
        char path[64];
        int p[2];

        (void)state;
        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], "a: 1234567890", 13), 13);
        close(p[1]);
        snprintf(path, sizeof(path), "/dev/fd/%d", p[0]);
        er_errs_init(&errs);
        assert_int_equal(er_load_file(path, &lim, &doc, &errs), -ER_ELIMIT);
        assert_int_equal(errs.n, 1);
        assert_string_equal(errs.v[0].msg, "file too large: more than 4 bytes (limit 4 bytes)");
        er_errs_fini(&errs);
        close(p[0]);
}

static void test_load_file_missing(void **state)
{
        struct er_doc *doc = NULL;
        struct er_errs errs;
        char buf[256];

        (void)state;
        er_errs_init(&errs);
        assert_int_equal(er_load_file("/nonexistent/environment.yml", NULL, &doc, &errs), -ENOENT);
        assert_null(doc);
        assert_int_equal(errs.n, 1);
        assert_null(errs.v[0].file);
        assert_int_equal(errs.v[0].code, -ENOENT);
        er_err_format(&errs.v[0], buf, sizeof(buf));
        assert_string_equal(buf, "cannot read '/nonexistent/environment.yml': No such file or "
                                 "directory");
        er_errs_fini(&errs);
}

static void test_load_file_directory(void **state)
{
        char dir[] = "/tmp/test_load_XXXXXX", want[128], buf[256];
        struct er_doc *doc = NULL;
        struct er_errs errs;

        (void)state;
        assert_non_null(mkdtemp(dir));
        er_errs_init(&errs);
        assert_int_equal(er_load_file(dir, NULL, &doc, &errs), -EISDIR);
        assert_null(doc);
        assert_int_equal(errs.n, 1);
        er_err_format(&errs.v[0], buf, sizeof(buf));
        snprintf(want, sizeof(want), "cannot read '%s': Is a directory", dir);
        assert_string_equal(buf, want);
        er_errs_fini(&errs);
        rmdir(dir);
}

/* ---- size ------------------------------------------------------------------- */

static void test_200_services(void **state)
{
        struct sbuf b = {0};
        struct er_doc *doc;

        (void)state;
        sb_add(&b, "name: bench\nx-common: &common\n  stop_timeout: 5s\n  restart: on-failure\n"
                   "services:\n");
        for (int i = 0; i < 200; i++)
                sb_add(&b,
                       "  svc%d:\n"
                       "    <<: *common\n"
                       "    command: \"./bin/server --port %d --name svc%d\"\n"
                       "    cwd: ./services/svc%d\n"
                       "    env:\n"
                       "      PORT: \"%d\"\n"
                       "      LOG_LEVEL: info\n"
                       "      DATABASE_URL: postgres://localhost:5432/app%d\n"
                       "    depends_on: [svc%d]\n"
                       "    ready:\n"
                       "      tcp: %d\n"
                       "      timeout: 30s\n",
                       i, 8000 + i, i, i, 8000 + i, i, i > 0 ? i - 1 : 0, 8000 + i);
        assert_true(b.n > 50000);
        for (int i = 0; i < 3; i++) {
                doc = load_len(b.s, b.n);
                assert_int_equal(get(er_doc_root(doc), "services")->n, 200);
                assert_string_equal(
                    get(get(get(er_doc_root(doc), "services"), "svc7"), "stop_timeout")->str, "5s");
                er_doc_free(doc);
        }
        free(b.s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_scalars_and_marks),
            cmocka_unit_test(test_columns_count_characters),
            cmocka_unit_test(test_quoted),
            cmocka_unit_test(test_core_tags),
            cmocka_unit_test(test_bad_tags),
            cmocka_unit_test(test_null),
            cmocka_unit_test(test_empty_documents),
            cmocka_unit_test(test_multiple_documents),
            cmocka_unit_test(test_duplicate_keys),
            cmocka_unit_test(test_duplicate_keys_big_map),
            cmocka_unit_test(test_duplicate_key_shown_safely),
            cmocka_unit_test(test_non_scalar_keys),
            cmocka_unit_test(test_aliases_share),
            cmocka_unit_test(test_recursive_alias),
            cmocka_unit_test(test_merge_single),
            cmocka_unit_test(test_merge_list),
            cmocka_unit_test(test_merge_nested),
            cmocka_unit_test(test_merge_quoted_is_a_key),
            cmocka_unit_test(test_merge_errors),
            cmocka_unit_test(test_nul_byte),
            cmocka_unit_test(test_bad_utf8),
            cmocka_unit_test(test_error_lines_follow_libyaml),
            cmocka_unit_test(test_bom),
            cmocka_unit_test(test_prescan_is_fast),
            cmocka_unit_test(test_depth_limit),
            cmocka_unit_test(test_depth_limit_custom),
            cmocka_unit_test(test_depth_through_aliases),
            cmocka_unit_test(test_node_limit_billion_laughs),
            cmocka_unit_test(test_node_limit_custom),
            cmocka_unit_test(test_file_too_large),
            cmocka_unit_test(test_syntax_errors),
            cmocka_unit_test(test_errors_before_syntax_error_kept),
            cmocka_unit_test(test_load_file),
            cmocka_unit_test(test_load_file_too_large),
            cmocka_unit_test(test_load_file_pipe_too_large),
            cmocka_unit_test(test_load_file_missing),
            cmocka_unit_test(test_load_file_directory),
            cmocka_unit_test(test_200_services),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
