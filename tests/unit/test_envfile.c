#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/envfile.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_VARS 4

struct var {
        const char *name, *value;
        unsigned line, col;
};

struct ok_case {
        const char *in;
        struct var want[MAX_VARS]; /* ends at a NULL name */
};

static const struct ok_case ok_cases[] = {
        { "", { { 0 } } },
        { "\n\n", { { 0 } } },
        { "A=1\nB=2\n", { { "A", "1", 1, 1 }, { "B", "2", 2, 1 } } },
        { "A=1", { { "A", "1", 1, 1 } } },
        /* blank lines and comments */
        { "\n  \n# c\n  # c2\n\t\nA=1", { { "A", "1", 6, 1 } } },
        { "#A=1\nB=2", { { "B", "2", 2, 1 } } },
        /* export prefix */
        { "export A=1", { { "A", "1", 1, 8 } } },
        { "  export \t A = 1 ", { { "A", "1", 1, 12 } } },
        { "export=1", { { "export", "1", 1, 1 } } },
        { "export = 1", { { "export", "1", 1, 1 } } },
        { "exportA=1", { { "exportA", "1", 1, 1 } } },
        /* names */
        { "  A  =  x y  ", { { "A", "x y", 1, 3 } } },
        { "_a.b-c9=1", { { "_a.b-c9", "1", 1, 1 } } },
        /* unquoted values */
        { "A=", { { "A", "", 1, 1 } } },
        { "A=x # comment", { { "A", "x", 1, 1 } } },
        { "A=x\t# comment", { { "A", "x", 1, 1 } } },
        { "A=x#y", { { "A", "x#y", 1, 1 } } },
        { "A=#x", { { "A", "#x", 1, 1 } } },
        { "A= #x", { { "A", "", 1, 1 } } },
        { "A=a=b", { { "A", "a=b", 1, 1 } } },
        { "A=it's", { { "A", "it's", 1, 1 } } },
        { "A=say \"hi\"", { { "A", "say \"hi\"", 1, 1 } } },
        { "A=${B} $C", { { "A", "${B} $C", 1, 1 } } },
        { "A=a\\nb", { { "A", "a\\nb", 1, 1 } } },
        { "A=1\r\nB=2\r\n", { { "A", "1", 1, 1 }, { "B", "2", 2, 1 } } },
        /* single quotes: literal, may span lines */
        { "A='x y'", { { "A", "x y", 1, 1 } } },
        { "A=''", { { "A", "", 1, 1 } } },
        { "A='a\\nb $C \"d\" #e'", { { "A", "a\\nb $C \"d\" #e", 1, 1 } } },
        { "A='line1\nline2'\nB=2", { { "A", "line1\nline2", 1, 1 }, { "B", "2", 3, 1 } } },
        { "A='x'   ", { { "A", "x", 1, 1 } } },
        { "A='x' # comment", { { "A", "x", 1, 1 } } },
        { "A='x'#comment", { { "A", "x", 1, 1 } } },
        { "A=  'x'", { { "A", "x", 1, 1 } } },
        /* double quotes: escapes, may span lines */
        { "A=\"x y\"", { { "A", "x y", 1, 1 } } },
        { "A=\"\"", { { "A", "", 1, 1 } } },
        { "A=\"a\\nb\\tc\\\\d\\\"e\\$f\\rg\"", { { "A", "a\nb\tc\\d\"e$f\rg", 1, 1 } } },
        { "A=\"x\\qy\"", { { "A", "x\\qy", 1, 1 } } },
        { "A=\"it's #not a comment\"", { { "A", "it's #not a comment", 1, 1 } } },
        { "A=\"l1\nl2\n\"\nB=\"3\"", { { "A", "l1\nl2\n", 1, 1 }, { "B", "3", 4, 1 } } },
        { "A=\"x\" # comment", { { "A", "x", 1, 1 } } },
        { "A=\"${B}\"", { { "A", "${B}", 1, 1 } } },
        /* the later definition wins, in the first one's place */
        { "A=1\nB=2\nA=3", { { "A", "3", 3, 1 }, { "B", "2", 2, 1 } } },
        /* a UTF-8 byte order mark */
        { "\xef\xbb\xbf"
          "A=1",
          { { "A", "1", 1, 1 } } },
};

static void check_list(const char *in, const struct er_envlist *l, const struct var *want)
{
        size_t n = 0;

        while (n < MAX_VARS && want[n].name)
                n++;
        if (l->n != n)
                fail_msg("'%s': %zu variables, want %zu", in, l->n, n);
        for (size_t i = 0; i < n; i++) {
                const struct er_envvar *v = &l->v[i];

                if (strcmp(v->name, want[i].name) || strcmp(v->value, want[i].value))
                        fail_msg("'%s': #%zu is %s='%s', want %s='%s'", in, i, v->name, v->value,
                                 want[i].name, want[i].value);
                if (v->line != want[i].line || v->col != want[i].col)
                        fail_msg("'%s': %s at %u:%u, want %u:%u", in, v->name, v->line, v->col,
                                 want[i].line, want[i].col);
        }
}

static void test_parse_ok(void **state)
{
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(ok_cases); i++) {
                const struct ok_case *c = &ok_cases[i];
                struct er_envlist l;
                struct er_errs errs;
                int r;

                er_envlist_init(&l);
                er_errs_init(&errs);
                r = er_envfile_parse(c->in, strlen(c->in), "t.env", &l, &errs);
                if (r != 0 || errs.n)
                        fail_msg("'%s': returned %d, %zu errors (%s)", c->in, r, errs.n,
                                 errs.n ? errs.v[0].msg : "");
                check_list(c->in, &l, c->want);
                er_envlist_fini(&l);
                er_errs_fini(&errs);
        }
}

#define MAX_ERRS 3

struct err_case {
        const char *in;
        const char *want_errs[MAX_ERRS]; /* "file:line:col: msg" */
        struct var want[MAX_VARS];       /* what was parsed anyway */
};

static const struct err_case err_cases[] = {
        { "FOO", { "t.env:1:1: missing '=' in 'FOO'" }, { { 0 } } },
        { "A=1\n  FOO  \nB=2",
          { "t.env:2:3: missing '=' in 'FOO'" },
          { { "A", "1", 1, 1 }, { "B", "2", 3, 1 } } },
        { "export FOO", { "t.env:1:8: missing '=' in 'FOO'" }, { { 0 } } },
        { "export", { "t.env:1:1: missing '=' in 'export'" }, { { 0 } } },
        { "FOO BAR baz", { "t.env:1:1: missing '=' in 'FOO BAR baz'" }, { { 0 } } },
        { "1A=x", { "t.env:1:1: invalid variable name '1A'" }, { { 0 } } },
        { "A B=x", { "t.env:1:1: invalid variable name 'A B'" }, { { 0 } } },
        { " x/y = 1", { "t.env:1:2: invalid variable name 'x/y'" }, { { 0 } } },
        { "=x", { "t.env:1:1: missing variable name before '='" }, { { 0 } } },
        { "A=\"abc", { "t.env:1:3: unterminated double quote" }, { { 0 } } },
        { "X=1\nA='abc\nB=2",
          { "t.env:2:3: unterminated single quote" },
          { { "X", "1", 1, 1 } } },
        { "A=\"x\" y", { "t.env:1:7: unexpected text after closing quote" }, { { 0 } } },
        { "A='x'y\nB=1",
          { "t.env:1:6: unexpected text after closing quote" },
          { { "B", "1", 2, 1 } } },
        { "A=\"x\nyz\" w", { "t.env:2:5: unexpected text after closing quote" }, { { 0 } } },
        { "A=\"x\\\"", { "t.env:1:3: unterminated double quote" }, { { 0 } } },
        /* every error is reported, and the rest is parsed */
        { "1A=x\nFOO\nB=1\n=2",
          { "t.env:1:1: invalid variable name '1A'", "t.env:2:1: missing '=' in 'FOO'",
            "t.env:4:1: missing variable name before '='" },
          { { "B", "1", 3, 1 } } },
        /* long user strings are cut in messages */
        { "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
          { "t.env:1:1: missing '=' in "
            "'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...'" },
          { { 0 } } },
};

static void test_parse_errors(void **state)
{
        char buf[512];

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(err_cases); i++) {
                const struct err_case *c = &err_cases[i];
                struct er_envlist l;
                struct er_errs errs;
                size_t n = 0;
                int r;

                while (n < MAX_ERRS && c->want_errs[n])
                        n++;
                er_envlist_init(&l);
                er_errs_init(&errs);
                r = er_envfile_parse(c->in, strlen(c->in), "t.env", &l, &errs);
                if (r != -ER_ESYNTAX)
                        fail_msg("'%s': returned %d, want %d", c->in, r, -ER_ESYNTAX);
                if (errs.n != n)
                        fail_msg("'%s': %zu errors, want %zu (first: %s)", c->in, errs.n, n,
                                 errs.n ? errs.v[0].msg : "");
                for (size_t e = 0; e < n; e++) {
                        assert_int_equal(errs.v[e].code, -ER_ESYNTAX);
                        er_err_format(&errs.v[e], buf, sizeof(buf));
                        if (strcmp(buf, c->want_errs[e]))
                                fail_msg("'%s': error '%s', want '%s'", c->in, buf,
                                         c->want_errs[e]);
                }
                check_list(c->in, &l, c->want);
                er_envlist_fini(&l);
                er_errs_fini(&errs);
        }
}

static void test_parse_nul(void **state)
{
        static const char in[] = "A=1\nB=x\0y\nC=2";
        struct er_envlist l;
        struct er_errs errs;
        char buf[256];

        (void)state;
        er_envlist_init(&l);
        er_errs_init(&errs);
        assert_int_equal(er_envfile_parse(in, sizeof(in) - 1, "t.env", &l, &errs), -ER_ESYNTAX);
        assert_int_equal(errs.n, 1);
        er_err_format(&errs.v[0], buf, sizeof(buf));
        assert_string_equal(buf, "t.env:2:4: unexpected NUL byte");
        assert_int_equal(l.n, 0);
        er_errs_fini(&errs);

        /* len is honoured: no NUL terminator needed */
        er_errs_init(&errs);
        assert_int_equal(er_envfile_parse("A=1B=2", 3, "t.env", &l, &errs), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(er_envlist_get(&l, "A"), "1");
        er_envlist_fini(&l);
        er_errs_fini(&errs);
}

static void test_parse_limits(void **state)
{
        const size_t vmax = 64 * 1024;
        char *buf = malloc(vmax + 16);
        struct er_envlist l;
        struct er_errs errs;
        char msg[256];

        (void)state;
        assert_non_null(buf);
        /* a value of exactly 64 KiB is fine */
        memcpy(buf, "A=", 2);
        memset(buf + 2, 'v', vmax);
        er_envlist_init(&l);
        er_errs_init(&errs);
        assert_int_equal(er_envfile_parse(buf, vmax + 2, "t.env", &l, &errs), 0);
        assert_int_equal(strlen(er_envlist_get(&l, "A")), vmax);
        /* one byte more is not */
        memcpy(buf, "B=\"", 3);
        memset(buf + 3, 'v', vmax + 1);
        buf[vmax + 4] = '"';
        assert_int_equal(er_envfile_parse(buf, vmax + 5, "t.env", &l, &errs), -ER_ELIMIT);
        assert_int_equal(errs.n, 1);
        er_err_format(&errs.v[0], msg, sizeof(msg));
        assert_string_equal(msg, "t.env:1:1: value of 'B' is longer than 64 KiB");
        assert_null(er_envlist_get(&l, "B"));
        er_envlist_fini(&l);
        er_errs_fini(&errs);
        free(buf);
}

static void test_parse_too_many(void **state)
{
        const size_t n = 10001;
        char *buf = malloc(n * 10), *p = buf;
        struct er_envlist l;
        struct er_errs errs;
        char msg[256];

        (void)state;
        assert_non_null(buf);
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "V%zu=\n", i);
        er_envlist_init(&l);
        er_errs_init(&errs);
        assert_int_equal(er_envfile_parse(buf, (size_t)(p - buf), "t.env", &l, &errs),
                         -ER_ELIMIT);
        assert_int_equal(l.n, 10000);
        assert_int_equal(errs.n, 1);
        er_err_format(&errs.v[0], msg, sizeof(msg));
        assert_string_equal(msg, "t.env:10001:1: more than 10000 variables in one env file");
        er_envlist_fini(&l);
        er_errs_fini(&errs);
        free(buf);
}

static void test_envlist(void **state)
{
        struct er_envlist a, b;

        (void)state;
        er_envlist_init(&a);
        assert_null(er_envlist_get(&a, "X"));
        assert_int_equal(er_envlist_set(&a, "X", "1", 0, 0), 0);
        assert_int_equal(er_envlist_set(&a, "Y", "2", 3, 4), 0);
        assert_int_equal(er_envlist_set(&a, "X", "3", 5, 6), 0);
        assert_int_equal(a.n, 2);
        assert_string_equal(a.v[0].name, "X");
        assert_string_equal(a.v[0].value, "3");
        assert_int_equal(a.v[0].line, 5);
        assert_int_equal(a.v[0].col, 6);
        assert_string_equal(a.v[1].name, "Y");
        assert_string_equal(er_envlist_get(&a, "Y"), "2");
        assert_null(er_envlist_get(&a, "x"));
        assert_null(er_envlist_get(&a, ""));

        /* strings are copied */
        {
                char name[] = "Z", value[] = "v";

                assert_int_equal(er_envlist_set(&a, name, value, 0, 0), 0);
                name[0] = 'W';
                value[0] = 'w';
                assert_string_equal(er_envlist_get(&a, "Z"), "v");
        }

        /* many entries, order kept */
        for (int i = 0; i < 100; i++) {
                char name[16];

                snprintf(name, sizeof(name), "N%d", i);
                assert_int_equal(er_envlist_set(&a, name, name, 0, 0), 0);
        }
        assert_int_equal(a.n, 103);
        assert_string_equal(a.v[102].name, "N99");

        er_envlist_init(&b);
        assert_int_equal(er_envlist_set(&b, "Y", "b", 0, 0), 0);
        assert_int_equal(er_envlist_set(&b, "NEW", "n", 0, 0), 0);
        assert_int_equal(er_envlist_merge(&a, &b), 0);
        assert_int_equal(a.n, 104);
        assert_string_equal(a.v[1].value, "b");
        assert_string_equal(a.v[103].name, "NEW");
        assert_int_equal(er_envlist_merge(&a, &a), 0);
        assert_int_equal(a.n, 104);

        er_envlist_fini(&a);
        assert_int_equal(a.n, 0);
        assert_null(a.v);
        er_envlist_fini(&a);
        er_envlist_fini(&b);
        er_envlist_fini(NULL);
}

static void test_env_name_valid(void **state)
{
        static const char *const good[] = { "A", "_", "a1", "A_B", "_9", "PATH", "abcXYZ_019" };
        static const char *const bad[] = { "",   "1A",  "A-B", "A.B", "A B", "A=",
                                           "\xc3\xa9", "$A", "A\n" };

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                if (er_env_name_valid(good[i]) != 1)
                        fail_msg("'%s' should be valid", good[i]);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (er_env_name_valid(bad[i]) != 0)
                        fail_msg("'%s' should be invalid", bad[i]);
        assert_int_equal(er_env_name_valid(NULL), 0);
}

/* Files for er_envfile_read, in a private directory. */
static char tmpdir[] = "/tmp/test_envfile.XXXXXX";

static int setup_dir(void **state)
{
        (void)state;
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
        char cmd[256];

        (void)state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *data, size_t len)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static void test_read(void **state)
{
        char path[256], msg[512], want[512];
        struct er_envlist l;
        struct er_errs errs;
        int fds = count_fds();

        (void)state;
        snprintf(path, sizeof(path), "%s/ok.env", tmpdir);
        write_file(path, "# db\nexport PGUSER=app\nPGPASS='s3cr#t'\n", 39);
        er_envlist_init(&l);
        er_errs_init(&errs);
        assert_int_equal(er_envfile_read(path, path, &l, &errs, "env.yml", 3, 11), 0);
        assert_int_equal(errs.n, 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(er_envlist_get(&l, "PGUSER"), "app");
        assert_string_equal(er_envlist_get(&l, "PGPASS"), "s3cr#t");
        assert_int_equal(l.v[1].line, 3);

        /* parse errors are located in the env file itself */
        snprintf(path, sizeof(path), "%s/bad.env", tmpdir);
        write_file(path, "A=1\nOOPS\n", 9);
        assert_int_equal(er_envfile_read(path, path, &l, &errs, "env.yml", 3, 11), -ER_ESYNTAX);
        assert_int_equal(errs.n, 1);
        er_err_format(&errs.v[0], msg, sizeof(msg));
        snprintf(want, sizeof(want), "%s:2:1: missing '=' in 'OOPS'", path);
        assert_string_equal(msg, want);
        assert_string_equal(er_envlist_get(&l, "A"), "1");
        er_errs_fini(&errs);

        /* NUL bytes */
        snprintf(path, sizeof(path), "%s/nul.env", tmpdir);
        write_file(path, "A=1\0\n", 5);
        assert_int_equal(er_envfile_read(path, path, &l, &errs, "env.yml", 3, 11), -ER_ESYNTAX);
        er_err_format(&errs.v[0], msg, sizeof(msg));
        snprintf(want, sizeof(want), "%s:1:4: unexpected NUL byte", path);
        assert_string_equal(msg, want);
        er_errs_fini(&errs);

        /* an empty file */
        snprintf(path, sizeof(path), "%s/empty.env", tmpdir);
        write_file(path, "", 0);
        assert_int_equal(er_envfile_read(path, path, &l, &errs, "env.yml", 3, 11), 0);
        assert_int_equal(errs.n, 0);

        er_envlist_fini(&l);
        er_errs_fini(&errs);
        assert_int_equal(count_fds(), fds);
}

static void test_read_io_errors(void **state)
{
        char path[256], msg[512], want[512];
        struct er_envlist l;
        struct er_errs errs;
        int fds = count_fds();

        (void)state;
        er_envlist_init(&l);
        er_errs_init(&errs);

        snprintf(path, sizeof(path), "%s/missing.env", tmpdir);
        assert_int_equal(er_envfile_read(path, path, &l, &errs, "env.yml", 3, 11), -ENOENT);
        assert_int_equal(errs.n, 1);
        assert_int_equal(errs.v[0].code, -ENOENT);
        er_err_format(&errs.v[0], msg, sizeof(msg));
        snprintf(want, sizeof(want), "env.yml:3:11: env file '%s': No such file or directory",
                 path);
        assert_string_equal(msg, want);
        er_errs_fini(&errs);

        assert_int_equal(er_envfile_read(tmpdir, tmpdir, &l, &errs, "env.yml", 4, 5), -EISDIR);
        er_err_format(&errs.v[0], msg, sizeof(msg));
        snprintf(want, sizeof(want), "env.yml:4:5: env file '%s': Is a directory", tmpdir);
        assert_string_equal(msg, want);
        er_errs_fini(&errs);

        assert_int_equal(l.n, 0);
        er_envlist_fini(&l);
        assert_int_equal(count_fds(), fds);
}

static void test_read_size_limit(void **state)
{
        const size_t max = ER_ENVFILE_MAX_BYTES;
        char path[256], msg[512], want[512];
        char *buf = malloc(max + 1);
        struct er_envlist l;
        struct er_errs errs;
        int fds = count_fds();

        (void)state;
        assert_non_null(buf);
        /* exactly 1 MiB: comment lines, then one variable */
        memset(buf, '#', max);
        for (size_t i = 99; i < max; i += 100)
                buf[i] = '\n';
        memcpy(buf + max - 4, "\nA=1", 4);
        snprintf(path, sizeof(path), "%s/max.env", tmpdir);
        write_file(path, buf, max);
        er_envlist_init(&l);
        er_errs_init(&errs);
        assert_int_equal(er_envfile_read(path, path, &l, &errs, "env.yml", 2, 3), 0);
        assert_int_equal(errs.n, 0);
        assert_string_equal(er_envlist_get(&l, "A"), "1");

        /* one byte more */
        buf[max] = '\n';
        snprintf(path, sizeof(path), "%s/big.env", tmpdir);
        write_file(path, buf, max + 1);
        assert_int_equal(er_envfile_read(path, path, &l, &errs, "env.yml", 2, 3), -ER_ELIMIT);
        assert_int_equal(errs.n, 1);
        er_err_format(&errs.v[0], msg, sizeof(msg));
        snprintf(want, sizeof(want), "env.yml:2:3: env file '%s' is larger than 1 MiB", path);
        assert_string_equal(msg, want);
        er_errs_fini(&errs);

        /* the same through a pipe, where the size is not known beforehand */
        {
                int p[2];
                pid_t pid;

                assert_int_equal(pipe(p), 0);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        size_t off = 0;

                        close(p[0]);
                        while (off < max + 1) {
                                ssize_t n = write(p[1], buf + off, max + 1 - off);
                                if (n <= 0)
                                        _exit(0);
                                off += (size_t)n;
                        }
                        _exit(0);
                }
                close(p[1]);
                snprintf(path, sizeof(path), "/proc/self/fd/%d", p[0]);
                assert_int_equal(er_envfile_read(path, path, &l, &errs, "env.yml", 2, 3), -ER_ELIMIT);
                assert_int_equal(errs.n, 1);
                close(p[0]);
                waitpid(pid, NULL, 0);
        }

        er_envlist_fini(&l);
        er_errs_fini(&errs);
        free(buf);
        assert_int_equal(count_fds(), fds);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_ok),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_parse_nul),
                cmocka_unit_test(test_parse_limits),
                cmocka_unit_test(test_parse_too_many),
                cmocka_unit_test(test_envlist),
                cmocka_unit_test(test_env_name_valid),
                cmocka_unit_test(test_read),
                cmocka_unit_test(test_read_io_errors),
                cmocka_unit_test(test_read_size_limit),
        };

        return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
