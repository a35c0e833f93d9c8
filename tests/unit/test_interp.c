#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/interp.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct er_var fixed[] = {
        { "PORT", "<PORT>", true },
        { "ENVRUN_PROJECT", "shop", false },
        { "SHADOW", "from-vars", false },
        { "VEMPTY", "", false },
};

static char *const test_environ[] = {
        "HOME=/home/u", "EMPTY=", "SHADOW=from-env", "ENVONLY=e", "BOTH=env",
        "NOEQUALS",     "SPACE=a b", NULL,
};

static struct er_envlist file_env;

static struct er_vars vars = {
        .v = fixed,
        .n = ARRAY_SIZE(fixed),
        .environ = test_environ,
        .file_env = &file_env,
};

static int setup(void **state)
{
        (void)state;
        er_envlist_init(&file_env);
        if (er_envlist_set(&file_env, "FILEONLY", "f", 1, 1) < 0 ||
            er_envlist_set(&file_env, "BOTH", "file", 2, 1) < 0 ||
            er_envlist_set(&file_env, "SHADOW", "file", 3, 1) < 0 ||
            er_envlist_set(&file_env, "FEMPTY", "", 4, 1) < 0)
                return -1;
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        er_envlist_fini(&file_env);
        return 0;
}

struct ok_case {
        const char *in;
        const char *want;
        bool deferred;
};

static const struct ok_case ok_cases[] = {
        { "", "", false },
        { "plain text", "plain text", false },
        { "${HOME}", "/home/u", false },
        { "x${HOME}y", "x/home/uy", false },
        { "${HOME}${HOME}", "/home/u/home/u", false },
        { "${SPACE}", "a b", false },
        /* unset and empty */
        { "${UNSET}", "", false },
        { "[${EMPTY}]", "[]", false },
        { "${UNSET:-d}", "d", false },
        { "${EMPTY:-d}", "d", false },
        { "${HOME:-d}", "/home/u", false },
        { "${UNSET-d}", "d", false },
        { "[${EMPTY-d}]", "[]", false },
        { "${HOME-d}", "/home/u", false },
        { "[${EMPTY?msg}]", "[]", false },
        { "${HOME:?msg}", "/home/u", false },
        { "${HOME?msg}", "/home/u", false },
        { "${UNSET:-}", "", false },
        { "${UNSET:-a b c}", "a b c", false },
        { "${UNSET:-a-b:c?d}", "a-b:c?d", false },
        { "${UNSET:-{x}", "{x", false },
        { "${UNSET:-'q'}", "'q'", false },
        { "${X}}", "}", false },
        { "{}", "{}", false },
        /* $$ and the '$' kept for the shell */
        { "$$", "$", false },
        { "$$$$", "$$", false },
        { "$$$", "$$", false },
        { "$${HOME}", "${HOME}", false },
        { "$$HOME", "$HOME", false },
        { "$", "$", false },
        { "a$", "a$", false },
        { "$HOME", "$HOME", false },
        { "$ HOME", "$ HOME", false },
        { "$(date)", "$(date)", false },
        { "$1 $@ $*", "$1 $@ $*", false },
        { "${UNSET:-$$}", "$", false },
        { "${UNSET:-$X}", "$X", false },
        { "${UNSET:-$}", "$", false },
        { "${UNSET:-$${B}", "${B", false }, /* "$$" is a '$', so '{' opens nothing */
        /* nested defaults are interpolated, and only when used */
        { "${UNSET:-${HOME}}", "/home/u", false },
        { "${UNSET:-${ALSO:-deep}}", "deep", false },
        { "${UNSET:-x${HOME}y}", "x/home/uy", false },
        { "${UNSET:-${ALSO:-${HOME}/a}/b}", "/home/u/a/b", false },
        { "${HOME:-${UNSET:?never}}", "/home/u", false },
        { "${HOME:?${UNSET:?never}}", "/home/u", false },
        /* precedence: vars, then environ, then file_env */
        { "${SHADOW}", "from-vars", false },
        { "${BOTH}", "env", false },
        { "${ENVONLY}", "e", false },
        { "${FILEONLY}", "f", false },
        { "${ENVRUN_PROJECT}", "shop", false },
        { "${NOEQUALS}", "", false },
        { "${NOEQUALS-unset}", "unset", false },
        { "${VEMPTY-d}", "", false },
        { "${VEMPTY:-d}", "d", false },
        { "${FEMPTY-d}", "", false },
        { "${FEMPTY:-d}", "d", false },
        { "${HOM}", "", false },
        { "${HOMEX}", "", false },
        { "${_}", "", false },
        { "${a_1}", "", false },
        /* deferred values */
        { "${PORT}", "<PORT>", true },
        { "--port=${PORT}", "--port=<PORT>", true },
        { "${PORT:-1}", "<PORT>", true },
        { "${PORT:?no port}", "<PORT>", true },
        { "${UNSET:-${PORT}}", "<PORT>", true },
        { "${HOME:-${PORT}}", "/home/u", false },
        { "$PORT", "$PORT", false },
        { "$${PORT}", "${PORT}", false },
};

static void test_interp_ok(void **state)
{
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(ok_cases); i++) {
                const struct ok_case *c = &ok_cases[i];
                struct er_err err = { 0 };
                char *out = NULL;
                bool deferred = !c->deferred;
                int r = er_interp(c->in, &vars, &out, &deferred, &err);

                if (r != 0)
                        fail_msg("'%s': returned %d (%s)", c->in, r, err.msg);
                if (strcmp(out, c->want))
                        fail_msg("'%s': '%s', want '%s'", c->in, out, c->want);
                if (deferred != c->deferred)
                        fail_msg("'%s': deferred %d, want %d", c->in, deferred, c->deferred);
                free(out);
        }
}

struct err_case {
        const char *in;
        int r;
        const char *msg;
};

static const struct err_case err_cases[] = {
        { "${UNSET:?}", -EINVAL, "variable 'UNSET' is required" },
        { "${UNSET?}", -EINVAL, "variable 'UNSET' is required" },
        { "${EMPTY:?}", -EINVAL, "variable 'EMPTY' is required" },
        { "${UNSET:?set UNSET to the database url}", -EINVAL, "set UNSET to the database url" },
        { "${EMPTY:?empty!}", -EINVAL, "empty!" },
        { "${UNSET?gone}", -EINVAL, "gone" },
        { "${UNSET:?need ${HOME} set}", -EINVAL, "need /home/u set" },
        { "${UNSET:?cost $$5}", -EINVAL, "cost $5" },
        /* a message that expands to nothing (fuzz_interp's finding) */
        { "${UNSET?${ALSO}}", -EINVAL, "variable 'UNSET' is required" },
        { "${UNSET:-${ALSO:?inner}}", -EINVAL, "inner" },
        { "ok ${HOME} then ${UNSET:?}", -EINVAL, "variable 'UNSET' is required" },
        { "${1X}", -EINVAL, "invalid variable name '1X' in '${1X}'" },
        { "a${A B}b", -EINVAL, "invalid variable name 'A B' in '${A B}'" },
        { "${A.B}", -EINVAL, "invalid variable name 'A.B' in '${A.B}'" },
        { "${#A}", -EINVAL, "invalid variable name '#A' in '${#A}'" },
        { "${ A}", -EINVAL, "invalid variable name ' A' in '${ A}'" },
        { "${A${B}}", -EINVAL, "invalid variable name 'A${B}' in '${A${B}}'" },
        { "${}", -EINVAL, "missing variable name in '${}'" },
        { "${:-x}", -EINVAL, "missing variable name in '${:-x}'" },
        { "abc${X", -EINVAL, "unterminated '${' in 'abc${X'" },
        { "${", -EINVAL, "unterminated '${' in '${'" },
        { "${A:-${B}", -EINVAL, "unterminated '${' in '${A:-${B}'" },
        { "${A:-$${B", -EINVAL, "unterminated '${' in '${A:-$${B'" },
        { "${X:+alt}", -EINVAL, "'${X:+...}' is not supported" },
        { "${X+alt}", -EINVAL, "'${X+...}' is not supported" },
        { "${X:=v}", -EINVAL, "'${X:=...}' is not supported" },
        { "${X=v}", -EINVAL, "'${X=...}' is not supported" },
        { "${X:1}", -EINVAL, "'${X:1}' is not supported" },
        { "${X:}", -EINVAL, "'${X:}' is not supported" },
        /* syntax is checked in defaults that are not used, too */
        { "${HOME:-${1X}}", -EINVAL, "invalid variable name '1X' in '${1X}'" },
        { "${HOME?${X:+y}}", -EINVAL, "'${X:+...}' is not supported" },
        { "${UNSET:?${1X}}", -EINVAL, "invalid variable name '1X' in '${1X}'" },
};

static void test_interp_errors(void **state)
{
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(err_cases); i++) {
                const struct err_case *c = &err_cases[i];
                struct er_err err = { .file = "env.yml", .line = 3, .col = 9 };
                char *out = (char *)0x1;
                bool deferred = true;
                int r = er_interp(c->in, &vars, &out, &deferred, &err);

                if (r != c->r)
                        fail_msg("'%s': returned %d, want %d", c->in, r, c->r);
                assert_int_equal(err.code, c->r);
                if (strcmp(err.msg, c->msg))
                        fail_msg("'%s': message '%s', want '%s'", c->in, err.msg, c->msg);
                /* location is the caller's; outputs untouched */
                assert_string_equal(err.file, "env.yml");
                assert_int_equal(err.line, 3);
                assert_int_equal(err.col, 9);
                assert_true(out == (char *)0x1);
                assert_true(deferred);
        }
}

static char *nested(unsigned depth)
{
        size_t len = depth * 6 + 2;
        char *s = malloc(len + 1), *p = s;

        assert_non_null(s);
        for (unsigned i = 0; i < depth; i++)
                p += sprintf(p, "${U:-");
        *p++ = 'v';
        for (unsigned i = 0; i < depth; i++)
                *p++ = '}';
        *p = '\0';
        return s;
}

static void test_interp_depth(void **state)
{
        struct er_err err;
        char *s, *out;

        (void)state;
        s = nested(16);
        assert_int_equal(er_interp(s, &vars, &out, NULL, &err), 0);
        assert_string_equal(out, "v");
        free(out);
        free(s);

        s = nested(17);
        assert_int_equal(er_interp(s, &vars, &out, NULL, &err), -EINVAL);
        assert_int_equal(strncmp(err.msg, "'${' nested more than 16 levels deep in '${U:-${U:-",
                                 51),
                         0);
        free(s);

        /* Even when the deep part is not used. */
        s = nested(16);
        assert_non_null(out = malloc(strlen(s) + 10));
        sprintf(out, "${HOME:-%s}", s);
        free(s);
        assert_int_equal(er_interp(out, &vars, &s, NULL, &err), -EINVAL);
        assert_int_equal(strncmp(err.msg, "'${' nested more than 16 levels deep", 36), 0);
        free(out);
}

static void test_interp_size(void **state)
{
        const size_t half = 512 * 1024;
        char *big = malloc(half + 5);
        struct er_var v[] = { { "BIG", NULL, false } };
        struct er_vars bv = { .v = v, .n = 1 };
        struct er_err err;
        char *out;

        (void)state;
        assert_non_null(big);
        memset(big, 'x', half);
        big[half] = '\0';
        v[0].value = big;
        /* exactly 1 MiB is fine */
        assert_int_equal(er_interp("${BIG}${BIG}", &bv, &out, NULL, &err), 0);
        assert_int_equal(strlen(out), 2 * half);
        free(out);
        /* one byte more is not */
        assert_int_equal(er_interp("${BIG}${BIG}x", &bv, &out, NULL, &err), -E2BIG);
        assert_int_equal(err.code, -E2BIG);
        assert_string_equal(err.msg, "interpolated value longer than 1 MiB");
        assert_int_equal(er_interp("${BIG}${BIG}$$", &bv, &out, NULL, &err), -E2BIG);
        assert_int_equal(er_interp("${BIG}${BIG}${BIG}", &bv, &out, NULL, &err), -E2BIG);
        free(big);
}

static void test_interp_no_vars(void **state)
{
        struct er_vars none = { 0 };
        struct er_err err;
        char *out;
        bool deferred = true;

        (void)state;
        assert_int_equal(er_interp("${A:-d}${B}", &none, &out, &deferred, &err), 0);
        assert_string_equal(out, "d");
        assert_false(deferred);
        free(out);
        /* ret_deferred may be NULL */
        assert_int_equal(er_interp("${PORT}", &vars, &out, NULL, &err), 0);
        assert_string_equal(out, "<PORT>");
        free(out);
}

static void test_vars_get(void **state)
{
        bool d = false;

        (void)state;
        assert_string_equal(er_vars_get(&vars, "PORT", 4, &d), "<PORT>");
        assert_true(d);
        assert_string_equal(er_vars_get(&vars, "HOME", 4, &d), "/home/u");
        assert_false(d);
        /* name_len bounds the name: no NUL needed, and no prefix match */
        assert_string_equal(er_vars_get(&vars, "HOMEX", 4, &d), "/home/u");
        assert_string_equal(er_vars_get(&vars, "PORTS", 4, NULL), "<PORT>");
        assert_string_equal(er_vars_get(&vars, "FILEONLY}", 8, NULL), "f");
        assert_null(er_vars_get(&vars, "HOM", 3, &d));
        assert_false(d);
        assert_null(er_vars_get(&vars, "PORT", 3, NULL));
        assert_null(er_vars_get(&vars, "FILEONL", 7, NULL));
        assert_string_equal(er_vars_get(&vars, "EMPTY", 5, NULL), "");
        assert_string_equal(er_vars_get(&vars, "SHADOW", 6, NULL), "from-vars");
        assert_string_equal(er_vars_get(&vars, "BOTH", 4, NULL), "env");
        assert_null(er_vars_get(&vars, "NOEQUALS", 8, NULL));
        assert_null(er_vars_get(&vars, "UNSET", 5, NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_interp_ok),
                cmocka_unit_test(test_interp_errors),
                cmocka_unit_test(test_interp_depth),
                cmocka_unit_test(test_interp_size),
                cmocka_unit_test(test_interp_no_vars),
                cmocka_unit_test(test_vars_get),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
