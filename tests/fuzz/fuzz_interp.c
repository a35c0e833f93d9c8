/* Fuzz target for ${VAR} interpolation (model/interp.c): the input is one
 * string value of environment.yml, interpolated against a fixed set of
 * variables from all three sources (the fixed list with a deferred one,
 * environ, an env file), one of them 128 KiB long so that the 1 MiB bound is
 * in reach.
 *
 * Oracles, each an abort():
 *   - success gives a string of at most 1 MiB; failure is -EINVAL or
 *     -E2BIG with err.code equal to it and a message;
 *   - a string without '$' comes back unchanged, never deferred;
 *   - er_interp_brace_end names a '}' inside the string, or 0.
 * Built with libFuzzer (tests/fuzz/run interp) or, for the test suite, with
 * replay_main.c. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/interp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BIG_LEN (128u * 1024u)
#define RESULT_MAX (1024u * 1024u)

static char *const env[] = {"HOME=/home/u", "EMPTY=",    "SHADOW=from-env",
                            "NOEQUALS",     "SPACE=a b", NULL};
static struct er_var fixed[] = {
    {"PORT", "<PORT>", true},       {"ENVRUN_PROJECT", "shop", false},
    {"SHADOW", "from-vars", false}, {"VEMPTY", "", false},
    {"BIG", NULL, false}, /* BIG_LEN bytes, made once */
};
static struct er_envlist file_env;
static struct er_vars vars = {
    .v = fixed,
    .n = sizeof(fixed) / sizeof(fixed[0]),
    .environ = env,
    .file_env = &file_env,
};
static char *big;

static void die(const char *what, const char *in)
{
        fprintf(stderr, "fuzz_interp: %s (input '%.200s')\n", what, in);
        abort();
}

static void cleanup(void)
{
        er_envlist_fini(&file_env);
        free(big);
}

static void setup(void)
{
        big = malloc(BIG_LEN + 1);
        if (!big)
                abort();
        memset(big, 'b', BIG_LEN);
        big[BIG_LEN] = '\0';
        fixed[4].value = big;
        er_envlist_init(&file_env);
        if (er_envlist_set(&file_env, "FILEONLY", "f", 1, 1) < 0 ||
            er_envlist_set(&file_env, "SHADOW", "file", 2, 1) < 0 ||
            er_envlist_set(&file_env, "FEMPTY", "", 3, 1) < 0)
                abort();
        atexit(cleanup);
}

static void check_braces(const char *s, size_t n)
{
        for (size_t i = 0; i + 1 < n; i++) {
                size_t end;
                if (s[i] != '$' || s[i + 1] != '{')
                        continue;
                end = er_interp_brace_end(s, i, n);
                if (end && (end < i + 3 || end > n || s[end - 1] != '}'))
                        die("er_interp_brace_end out of range", s);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct er_err err = {0};
        bool deferred = false;
        char *s, *out = NULL;
        size_t n;
        int r;

        if (!big)
                setup();
        /* A C string, as every value of the model is: a NUL ends it. */
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        n = strlen(s);
        check_braces(s, n);
        r = er_interp(s, &vars, &out, &deferred, &err);
        if (r == 0) {
                if (!out)
                        die("success without a result", s);
                if (strlen(out) > RESULT_MAX)
                        die("result longer than 1 MiB", s);
                if (!memchr(s, '$', n) && (strcmp(out, s) || deferred))
                        die("a string without '$' changed", s);
                free(out);
        } else {
                if (out)
                        die("failure wrote the result", s);
                if (r != -EINVAL && r != -E2BIG && r != -ENOMEM)
                        die("unexpected error code", s);
                if (err.code != r)
                        die("failure without its error code", s);
                if (!err.msg[0])
                        die("failure without a message", s);
        }
        free(s);
        return 0;
}
