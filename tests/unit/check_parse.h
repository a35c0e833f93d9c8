/* check_parse: a readiness check for the check kinds' unit tests, parsed
 * from environment.yml text the way the loader makes one (a kind's
 * configuration is a struct of its own file, model/check.h).  Included by
 * the tests that need it; everything here is static. */
#ifndef ER_TEST_CHECK_PARSE_H
#define ER_TEST_CHECK_PARSE_H

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/check.h"
#include "model/field.h"
#include "model/load.h"

/* The check in `fmt`, say "{http: URL, status: 404}"; relative paths are
 * resolved against dir (the service's working directory). */
static struct er_check *check_parse_in(const char *dir, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), unused));

static struct er_check *check_parse_in(const char *dir, const char *fmt, ...)
{
        /* P: a port not known yet (deferred), as before an instance starts. */
        static const struct er_var deferred_p = {"P", "${P}", true};
        struct er_vars vars = {.v = &deferred_p, .n = 1};
        struct er_errs errs;
        struct er_fctx f = {.file = "environment.yml", .dir = dir, .vars = &vars, .errs = &errs};
        struct er_doc *doc = NULL;
        struct er_check **v = NULL, *c;
        char yaml[4096];
        size_t n = 0;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(yaml, sizeof(yaml), fmt, ap);
        va_end(ap);
        er_errs_init(&errs);
        assert_int_equal(er_load_buffer(yaml, strlen(yaml), "environment.yml", NULL, &doc, &errs),
                         0);
        assert_int_equal(er_check_parse_list(&f, er_doc_root(doc), dir, &v, &n), 0);
        assert_int_equal(errs.n, 0);
        assert_int_equal(n, 1);
        c = v[0];
        free(v);
        er_doc_free(doc);
        er_errs_fini(&errs);
        return c;
}

/* s as a quoted YAML (JSON) string, in a static buffer of each slot in
 * turn: two may be used in one call.  Variables in s are interpolated,
 * unless `literal`: then each '$' is written "$$". */
static const char *check_quote_as(const char *s, bool literal)
{
        static char bufs[4][2048];
        static unsigned next;
        char *b = bufs[next++ % 4], esc[2048], *e = esc;
        json_t *j;

        for (; *s && e < esc + sizeof(esc) - 2; s++) {
                if (literal && *s == '$')
                        *e++ = '$';
                *e++ = *s;
        }
        *e = '\0';
        j = json_string(esc);
        char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

        assert_non_null(q);
        snprintf(b, sizeof(bufs[0]), "%s", q ? q : "");
        free(q);
        json_decref(j);
        return b;
}

static const char *check_quote(const char *s) __attribute__((unused));
static const char *check_quote(const char *s)
{
        return check_quote_as(s, false);
}

static const char *check_literal(const char *s) __attribute__((unused));
static const char *check_literal(const char *s)
{
        return check_quote_as(s, true);
}

#endif
