/* output: ready when a line of the service's output matches a PCRE2 regex. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/runner.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static const char *const options[] = {"stream", NULL};

struct output_conf {
        char *regex;
        struct pcre2_real_code_8 *code;
        enum er_stream stream;
};

/* The check's configuration (model/check.h: ops->conf_size bytes). */
static struct output_conf *conf_of(const struct er_check *c)
{
        return c->conf;
}

static int output_parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                        const char *dir, struct er_fctx *f)
{
        struct output_conf *o = conf_of(c);
        const struct er_node *s = er_node_get(m, "stream");
        int r = 0;

        o->stream = ER_STREAM_BOTH;
        if (s) {
                char *t;
                if (er_field_str(f, s, "stream", &t, NULL) < 0)
                        return -ER_ECONFIG;
                if (!strcmp(t, "stdout"))
                        o->stream = ER_STREAM_STDOUT;
                else if (!strcmp(t, "stderr"))
                        o->stream = ER_STREAM_STDERR;
                else if (strcmp(t, "both"))
                        r = er_field_error(f, s,
                                           "'stream' must be 'stdout', 'stderr' or 'both', not '%s'",
                                           t);
                free(t);
        }
        if (er_field_str_nonempty(f, v, "output", &o->regex, NULL) < 0)
                return -ER_ECONFIG;
        if (er_regex_compile(f, v, "output", o->regex, false, &o->code) < 0)
                return -ER_ECONFIG;
        return r;
}

static const char *stream_name(enum er_stream s)
{
        return s == ER_STREAM_STDOUT ? "stdout" : s == ER_STREAM_STDERR ? "stderr" : "both";
}

static void output_dump(const struct er_check *c, json_t *o)
{
        json_object_set_new(o, "output", json_string(conf_of(c)->regex));
        json_object_set_new(o, "stream", json_string(stream_name(conf_of(c)->stream)));
}

static int output_describe(const struct er_check *c, char *buf, size_t len)
{
        return snprintf(buf, len, "output /%s/", conf_of(c)->regex);
}

static void output_fini(struct er_check *c)
{
        free(conf_of(c)->regex);
        if (conf_of(c)->code)
                er_regex_free(conf_of(c)->code);
}

/* A match may cost at most this much backtracking (pcre2's match limit,
 * which the JIT honours too) and this deep a recursion: a pattern such as
 * (a+)+$ against a long line would otherwise hold the loop for seconds.
 * Real patterns on real lines stay far below. */
#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 10000u

struct output_run {
        pcre2_match_data *md;
        pcre2_match_context *mc;
};

static void output_cancel(struct er_check_run *run);

static int output_start(struct er_check_run *run)
{
        pcre2_code *code = conf_of(run->check)->code;
        struct output_run *r = calloc(1, sizeof(*r));

        er_regex_jit(code);
        run->priv = r;
        if (!r || !(r->md = pcre2_match_data_create_from_pattern(code, NULL)) ||
            !(r->mc = pcre2_match_context_create(NULL))) {
                output_cancel(run);
                return -ENOMEM;
        }
        pcre2_set_match_limit(r->mc, MATCH_LIMIT);
        pcre2_set_depth_limit(r->mc, DEPTH_LIMIT);
        return 0;
}

static void output_line(struct er_check_run *run, enum er_stream stream, const char *text, size_t len)
{
        const struct output_conf *o = conf_of(run->check);
        struct output_run *r = run->priv;
        char why[300];
        int rc;

        if (!r || (o->stream != ER_STREAM_BOTH && o->stream != stream))
                return;
        rc = pcre2_match(o->code, (PCRE2_SPTR)text, len, 0, 0, r->md, r->mc);
        if (rc >= 0) {
                run->done(run, ER_CHECK_READY, NULL);
                return;
        }
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) {
                snprintf(why, sizeof(why),
                         "the pattern gave up on a line of %zu bytes (it backtracks past "
                         "pcre2's match limit): make it simpler, e.g. without nested repeats",
                         len);
                er_runner_fail(run, why);
        }
}

static void output_cancel(struct er_check_run *run)
{
        struct output_run *r = run->priv;

        if (r) {
                pcre2_match_data_free(r->md);
                pcre2_match_context_free(r->mc);
                free(r);
        }
        run->priv = NULL;
}

const struct er_check_ops er_check_output_ops = {
        .key = "output",
        .options = options,
        .conf_size = sizeof(struct output_conf),
        .parse = output_parse,
        .dump = output_dump,
        .describe = output_describe,
        .fini = output_fini,
        .start = output_start,
        .line = output_line,
        .cancel = output_cancel,
};
