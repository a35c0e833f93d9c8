/* output: ready when a line of the service's output matches a PCRE2 regex. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/check.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static const char *const options[] = {"stream", NULL};

static int parse(struct er_check *c, const struct er_node *v, const struct er_node *m,
                 const char *dir, struct er_fctx *f)
{
        struct er_check_output *o = &c->u.output;
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

static void dump(const struct er_check *c, json_t *o)
{
        json_object_set_new(o, "output", json_string(c->u.output.regex));
        json_object_set_new(o, "stream", json_string(stream_name(c->u.output.stream)));
}

static int describe(const struct er_check *c, char *buf, size_t len)
{
        return snprintf(buf, len, "output /%s/", c->u.output.regex);
}

static void fini(struct er_check *c)
{
        free(c->u.output.regex);
        if (c->u.output.code)
                er_regex_free(c->u.output.code);
}

static int start(struct er_check_run *run)
{
        pcre2_code *code = run->check->u.output.code;
        er_regex_jit(code);
        run->priv = pcre2_match_data_create_from_pattern(code, NULL);
        return run->priv ? 0 : -ENOMEM;
}

static void line(struct er_check_run *run, enum er_stream stream, const char *text, size_t len)
{
        const struct er_check_output *o = &run->check->u.output;
        int rc;

        if (!run->priv || (o->stream != ER_STREAM_BOTH && o->stream != stream))
                return;
        rc = pcre2_match(o->code, (PCRE2_SPTR)text, len, 0, 0, run->priv, NULL);
        if (rc >= 0)
                run->done(run, ER_CHECK_READY, NULL);
}

static void cancel(struct er_check_run *run)
{
        pcre2_match_data_free(run->priv);
        run->priv = NULL;
}

const struct er_check_ops er_check_output_ops = {
        .key = "output",
        .options = options,
        .parse = parse,
        .dump = dump,
        .describe = describe,
        .fini = fini,
        .start = start,
        .line = line,
        .cancel = cancel,
};
