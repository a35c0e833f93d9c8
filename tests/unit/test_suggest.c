#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/suggest.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void test_edit_distance(void **state)
{
        static const struct {
                const char *a, *b;
                size_t want;
        } cases[] = {
                { "", "", 0 },
                { "a", "", 1 },
                { "", "abc", 3 },
                { "abc", "abc", 0 },
                { "kitten", "sitting", 3 },
                { "flaw", "lawn", 2 },
                { "ab", "ba", 1 },          /* a transposition */
                { "abcd", "acbd", 1 },
                { "ca", "abc", 3 },         /* optimal string alignment, not full Damerau */
                { "comand", "command", 1 },
                { "timout", "timeout", 1 },
                { "depend_on", "depends_on", 1 },
                { "Abc", "abc", 1 },        /* case-sensitive */
                { "COMMAND", "command", 7 },
                { "sig_stpo", "sig_stop", 1 },
                { "a", "b", 1 },
                { "abc", "xyz", 3 },
        };

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                size_t d = er_edit_distance(cases[i].a, cases[i].b);
                size_t back = er_edit_distance(cases[i].b, cases[i].a);

                if (d != cases[i].want || back != d)
                        fail_msg("'%s' '%s': %zu (%zu back), want %zu", cases[i].a, cases[i].b, d,
                                 back, cases[i].want);
        }
}

static void test_edit_distance_bound(void **state)
{
        char a[258], b[258];

        (void)state;
        memset(a, 'a', 256);
        a[256] = '\0';
        memset(b, 'a', 256);
        b[256] = '\0';
        b[0] = 'b';
        assert_int_equal(er_edit_distance(a, b), 1);
        assert_int_equal(er_edit_distance(a, ""), 256);
        a[256] = 'a';
        a[257] = '\0';
        assert_true(er_edit_distance(a, b) == SIZE_MAX);
        assert_true(er_edit_distance(b, a) == SIZE_MAX);
        assert_true(er_edit_distance(a, a) == SIZE_MAX);
}

static const char *const keys[] = {
        "command",  "shell",   "cwd",          "env",   "env_file", "timeout",
        "stop_timeout", "sig_stop", "sig_kill", "ok_exit", "ready", "depends_on",
        "restart",  "max_restarts", "limits",  "log",   "user",
};

static void test_suggest(void **state)
{
        static const struct {
                const char *word;
                const char *want; /* NULL: no suggestion */
        } cases[] = {
                { "comand", "command" },
                { "commnd", "command" },
                { "cmomand", "command" },
                { "timout", "timeout" },
                { "timeuot", "timeout" },
                { "depend_on", "depends_on" },
                { "dependson", "depends_on" },
                { "depends-on", "depends_on" },
                { "stop_timout", "stop_timeout" },
                { "sigstop", "sig_stop" },
                { "restrat", "restart" },
                { "max_restart", "max_restarts" },
                { "envfile", "env_file" },
                { "usr", "user" },
                { "cmd", "cwd" },
                /* equal ignoring case */
                { "COMMAND", "command" },
                { "Command", "command" },
                { "DEPENDS_ON", "depends_on" },
                { "Comand", "command" },
                /* prefixes of at least three characters, either way */
                { "depends", "depends_on" },
                { "environment", "env" },
                { "restart_policy", "restart" },
                { "limit", "limits" },
                /* unrelated */
                { "image", NULL },
                { "volumes", NULL },
                { "xyz", NULL },
                { "healthcheck", NULL },
                { "entrypoint", NULL },
                { "de", NULL },
                { "commandline_arguments", "command" },
        };

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                const char *got = er_suggest(cases[i].word, keys, ARRAY_SIZE(keys));

                if (!cases[i].want && got)
                        fail_msg("'%s': '%s', want nothing", cases[i].word, got);
                if (cases[i].want && (!got || strcmp(got, cases[i].want)))
                        fail_msg("'%s': '%s', want '%s'", cases[i].word, got ? got : "(null)",
                                 cases[i].want);
        }
}

static void test_suggest_ranking(void **state)
{
        static const char *const ties[] = { "ac", "ad", "ab" };
        static const char *const near_first[] = { "env", "env_file" };
        static const char *const case_first[] = { "eno", "env" };
        static const char *const dist_first[] = { "timeouts_all", "timeouts" };
        static const char *const with_null[] = { NULL, "command" };
        const char *const *none = NULL;

        (void)state;
        /* ties go to the first candidate */
        assert_string_equal(er_suggest("aa", ties, 3), "ac");
        /* a near typo beats a prefix */
        assert_string_equal(er_suggest("envfile", near_first, 2), "env_file");
        /* equal ignoring case beats a typo */
        assert_string_equal(er_suggest("ENV", case_first, 2), "env");
        /* the smaller distance wins */
        assert_string_equal(er_suggest("timeout", dist_first, 2), "timeouts");
        /* the threshold grows with the word: 1 up to 5 characters, then len/3, at most 3 */
        {
                static const char *const c1[] = { "abcd" };
                static const char *const c2[] = { "abcdef" };
                static const char *const c3[] = { "abcdefghijkl" };

                assert_null(er_suggest("axcy", c1, 1));           /* 2 > 1 */
                assert_string_equal(er_suggest("axcd", c1, 1), "abcd");
                assert_string_equal(er_suggest("axcdey", c2, 1), "abcdef"); /* 2 <= 2 */
                assert_null(er_suggest("xbcdyz", c2, 1));         /* 3 > 2, no prefix */
                assert_string_equal(er_suggest("xbcdefghiyzl", c3, 1), "abcdefghijkl");
                assert_null(er_suggest("xbcdefwhiyzl", c3, 1));   /* 4 > 3 */
        }
        assert_null(er_suggest("comand", none, 0));
        assert_string_equal(er_suggest("comand", with_null, 2), "command");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_edit_distance),
                cmocka_unit_test(test_edit_distance_bound),
                cmocka_unit_test(test_suggest),
                cmocka_unit_test(test_suggest_ranking),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
