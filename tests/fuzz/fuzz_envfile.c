/* Fuzz target for the env-file reader (model/envfile.c): the input is the
 * whole file, handed to er_envfile_parse in a buffer of exactly its size
 * (no terminating NUL: a read past the end is an ASan report), parsed into
 * a list that already holds a variable, as a second env_file would.
 *
 * Oracles, each an abort():
 *   - the result is 0 exactly when no error was recorded, else the first
 *     error's code, one of -ER_ESYNTAX, -ER_ELIMIT (or -ENOMEM);
 *   - errors are located within the file (line 1..lines+1);
 *   - every variable has a valid name ([A-Za-z_][A-Za-z0-9_.-]*), names are
 *     unique, values hold no NUL and are at most 64 KiB; a variable's line
 *     is within the file.
 * Built with libFuzzer (tests/fuzz/run envfile) or, for the test suite, with
 * replay_main.c. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "model/envfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VALUE_MAX (64u * 1024u)

static void die(const char *what)
{
        fprintf(stderr, "fuzz_envfile: %s\n", what);
        abort();
}

static int name_ok(const char *s)
{
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return 0;
        for (s++; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
                        return 0;
        return 1;
}

static void check_list(const struct er_envlist *l, unsigned lines)
{
        for (size_t i = 0; i < l->n; i++) {
                const struct er_envvar *v = &l->v[i];
                if (!v->name || !v->value || !name_ok(v->name))
                        die("invalid variable name");
                if (strlen(v->value) > VALUE_MAX)
                        die("value longer than 64 KiB");
                if (i > 0 && (v->line < 1 || v->line > lines))
                        die("variable located outside the file");
                for (size_t j = 0; j < i; j++)
                        if (!strcmp(l->v[j].name, v->name))
                                die("a name twice in the list");
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct er_envlist l;
        struct er_errs errs;
        unsigned lines = 1;
        char *buf;
        int r;

        buf = malloc(size ? size : 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        for (size_t i = 0; i < size; i++)
                lines += buf[i] == '\n';
        er_envlist_init(&l);
        er_errs_init(&errs);
        if (er_envlist_set(&l, "FIRST", "from another file", 0, 0) < 0)
                abort();
        r = er_envfile_parse(buf, size, "fuzz.env", &l, &errs);
        if ((r == 0) != (errs.n == 0 && errs.dropped == 0))
                die("result and error list disagree");
        if (errs.n && r != errs.v[0].code)
                die("result is not the first error's code");
        for (size_t i = 0; i < errs.n; i++) {
                const struct er_err *e = &errs.v[i];
                if (e->code != -ER_ESYNTAX && e->code != -ER_ELIMIT && e->code != -ENOMEM)
                        die("unexpected error code");
                if (!e->msg[0] || e->line > lines || (e->line == 0 && e->code == -ER_ESYNTAX))
                        die("error without a message or outside the file");
        }
        check_list(&l, lines);
        er_envlist_fini(&l);
        er_errs_fini(&errs);
        free(buf);
        return 0;
}
