#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "model/words.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_WORDS 8

struct ok_case {
        const char *in;
        const char *want[MAX_WORDS]; /* NULL-terminated */
};

static const struct ok_case ok_cases[] = {
        { "a", { "a" } },
        { "a b c", { "a", "b", "c" } },
        { "  a\t b  \t", { "a", "b" } },
        { "postgres -D /tmp/pg -p 5433", { "postgres", "-D", "/tmp/pg", "-p", "5433" } },
        /* single quotes */
        { "'a b' c", { "a b", "c" } },
        { "a'b'c", { "abc" } },
        { "''", { "" } },
        { "a '' b", { "a", "", "b" } },
        { "'a\\b'", { "a\\b" } },
        { "'\"'", { "\"" } },
        { "'a|b;c&d>e<f(g)h`i$(j)'", { "a|b;c&d>e<f(g)h`i$(j)" } },
        { "'a\nb'", { "a\nb" } },
        { "'#'", { "#" } },
        { "redis-server --save \"\"", { "redis-server", "--save", "" } },
        /* double quotes and their escapes */
        { "\"a b\" c", { "a b", "c" } },
        { "\"\"", { "" } },
        { "\"a\\\"b\"", { "a\"b" } },
        { "\"a\\\\b\"", { "a\\b" } },
        { "\"\\$x\"", { "$x" } },
        { "\"\\`\"", { "`" } },
        { "\"a\\nb\"", { "a\\nb" } },
        { "\"a\\'b\"", { "a\\'b" } },
        { "\"a\\\nb\"", { "ab" } },
        { "\"a\nb\"", { "a\nb" } },
        { "\"'\"", { "'" } },
        { "\"a|b;c&d>e<f(g)h\"", { "a|b;c&d>e<f(g)h" } },
        { "\"a$\"", { "a$" } },
        { "\"$HOME/x\"", { "$HOME/x" } },
        { "x\"y\"'z'", { "xyz" } },
        /* backslashes outside quotes */
        { "a\\ b", { "a b" } },
        { "a\\\\b", { "a\\b" } },
        { "a\\|b", { "a|b" } },
        { "\\'", { "'" } },
        { "\\\"", { "\"" } },
        { "\\#a", { "#a" } },
        { "a\\\nb", { "ab" } },
        { "a \\\n b", { "a", "b" } },
        { "a\\", { "a\\" } },
        /* comments */
        { "a # comment", { "a" } },
        { "a #comment | with ; operators & all > over", { "a" } },
        { "a#b", { "a#b" } },
        { "a '#' b", { "a", "#", "b" } },
        { "a # c\n", { "a" } },
        /* ${...} is kept whole, whatever it holds */
        { "echo ${A:-x y}", { "echo", "${A:-x y}" } },
        { "${A:-a|b;c&d>e<f(g)h`i}", { "${A:-a|b;c&d>e<f(g)h`i}" } },
        { "x${A:-${B:-c d}}y z", { "x${A:-${B:-c d}}y", "z" } },
        { "${A:-'x y'}", { "${A:-'x y'}" } },
        { "\"${A:-\"x y\"}\"", { "${A:-\"x y\"}" } },
        { "--port ${API_PORT}", { "--port", "${API_PORT}" } },
        { "${A:-a # b}", { "${A:-a # b}" } },
        { "${A}${B}", { "${A}${B}" } },
        { "${A:-$$}", { "${A:-$$}" } },
        /* other '$' are the interpolation's, or the shell's */
        { "$VAR", { "$VAR" } },
        { "$$", { "$$" } },
        { "$${A}", { "$${A}" } },
        { "a$", { "a$" } },
        { "$", { "$" } },
        { "a $ b", { "a", "$", "b" } },
        /* trailing newlines (YAML block scalars) separate nothing */
        { "a\n", { "a" } },
        { "a b\n\n  \n", { "a", "b" } },
        { "a \t\n", { "a" } },
        /* not operators here */
        { "{a,b} * ? ~ ! [x] %", { "{a,b}", "*", "?", "~", "!", "[x]", "%" } },
        { "a=b", { "a=b" } },
};

static void check_words(const char *in, const struct er_words *w, const char *const *want)
{
        size_t n = 0;

        while (want[n])
                n++;
        if (w->n != n)
                fail_msg("'%s': %zu words, want %zu", in, w->n, n);
        for (size_t i = 0; i < n; i++)
                if (strcmp(w->v[i], want[i]))
                        fail_msg("'%s': word %zu is '%s', want '%s'", in, i, w->v[i], want[i]);
        assert_null(w->v[n]);
}

static void test_split_ok(void **state)
{
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(ok_cases); i++) {
                struct er_words w = { 0 };
                struct er_err err = { 0 };
                int r = er_words_split(ok_cases[i].in, &w, &err);

                if (r != 0)
                        fail_msg("'%s': returned %d (%s)", ok_cases[i].in, r, err.msg);
                check_words(ok_cases[i].in, &w, ok_cases[i].want);
                er_words_fini(&w);
                assert_null(w.v);
                assert_int_equal(w.n, 0);
        }
}

struct err_case {
        const char *in;
        const char *msg;
        unsigned col;
};

#define OP(c) "unquoted '" c "' is a shell operator: use 'shell: true' to run this command with /bin/sh"
#define SUBST(c) "'" c "' is a command substitution: use 'shell: true' to run this command with /bin/sh"
#define NEWLINE "unquoted newline is a shell operator: use 'shell: true' to run this command with /bin/sh"

static const struct err_case err_cases[] = {
        { "a | b", OP("|"), 3 },
        { "a|b", OP("|"), 2 },
        { "|", OP("|"), 1 },
        { "a & b", OP("&"), 3 },
        { "a && b", OP("&"), 3 },
        { "a&", OP("&"), 2 },
        { "a;b", OP(";"), 2 },
        { "a ; b", OP(";"), 3 },
        { "a < b", OP("<"), 3 },
        { "a > b", OP(">"), 3 },
        { "a >> b", OP(">"), 3 },
        { "a 2>&1", OP(">"), 4 },
        { "(a)", OP("("), 1 },
        { "a )", OP(")"), 3 },
        { "a `b`", OP("`"), 3 },
        { "a $(b)", OP("$("), 3 },
        { "x$(b)", OP("$("), 2 },
        { "a\nb", NEWLINE, 2 },
        { "a # c\nb", NEWLINE, 6 },
        { "a\n\nb", NEWLINE, 2 },
        { "'a' \"b\" c|d", OP("|"), 10 },
        { "a\\\nb|c", OP("|"), 5 },
        /* command substitutions in double quotes are the shell's too */
        { "\"$(date)\"", SUBST("$("), 2 },
        { "a \"x `date`\"", SUBST("`"), 6 },
        /* unterminated: at the opening quote or '${' */
        { "'abc", "unterminated single quote", 1 },
        { "a 'b", "unterminated single quote", 3 },
        { "a 'b\nc", "unterminated single quote", 3 },
        { "a \"b", "unterminated double quote", 3 },
        { "\"a\\\"", "unterminated double quote", 1 },
        { "\"a\\", "unterminated double quote", 1 },
        { "x \"'\" \"", "unterminated double quote", 7 },
        { "a ${B", "unterminated '${'", 3 },
        { "a ${B:-${C}", "unterminated '${'", 3 },
        { "a ${B:-x y", "unterminated '${'", 3 },
        { "\"${A\"", "unterminated '${'", 2 },
        /* nothing to run */
        { "", "empty command", 0 },
        { "   \t ", "empty command", 0 },
        { "# just a comment", "empty command", 0 },
        { "\n", "empty command", 0 },
        { "  # c\n\n", "empty command", 0 },
        { "\\\n", "empty command", 0 },
};

static void test_split_errors(void **state)
{
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(err_cases); i++) {
                const struct err_case *c = &err_cases[i];
                struct er_words w = { (char **)0x1, 42 };
                struct er_err err = { .file = "env.yml", .line = 7 };
                int r = er_words_split(c->in, &w, &err);

                if (r != -EINVAL)
                        fail_msg("'%s': returned %d, want -EINVAL", c->in, r);
                assert_int_equal(err.code, -EINVAL);
                if (strcmp(err.msg, c->msg))
                        fail_msg("'%s': message '%s', want '%s'", c->in, err.msg, c->msg);
                if (err.col != c->col)
                        fail_msg("'%s': col %u, want %u", c->in, err.col, c->col);
                /* file and line are the caller's; ret is untouched */
                assert_string_equal(err.file, "env.yml");
                assert_int_equal(err.line, 7);
                assert_true(w.v == (char **)0x1 && w.n == 42);
        }
}

static void test_split_many_words(void **state)
{
        char buf[4096];
        size_t off = 0;
        struct er_words w;
        struct er_err err;

        (void)state;
        for (int i = 0; i < 500; i++)
                off += (size_t)snprintf(buf + off, sizeof(buf) - off, "w%d ", i);
        assert_int_equal(er_words_split(buf, &w, &err), 0);
        assert_int_equal(w.n, 500);
        assert_string_equal(w.v[0], "w0");
        assert_string_equal(w.v[499], "w499");
        assert_null(w.v[500]);
        er_words_fini(&w);
}

static void test_split_long_word(void **state)
{
        static char buf[100001];
        struct er_words w;
        struct er_err err;

        (void)state;
        memset(buf, 'x', sizeof(buf) - 1);
        buf[0] = '"';
        buf[sizeof(buf) - 2] = '"';
        assert_int_equal(er_words_split(buf, &w, &err), 0);
        assert_int_equal(w.n, 1);
        assert_int_equal(strlen(w.v[0]), sizeof(buf) - 3);
        er_words_fini(&w);
}

static void test_fini_null(void **state)
{
        struct er_words w = { NULL, 0 };

        (void)state;
        er_words_fini(NULL);
        er_words_fini(&w);
        assert_null(w.v);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_split_ok),
                cmocka_unit_test(test_split_errors),
                cmocka_unit_test(test_split_many_words),
                cmocka_unit_test(test_split_long_word),
                cmocka_unit_test(test_fini_null),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
