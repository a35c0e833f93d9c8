/* Fuzz target for command splitting (model/words.c): the input is one
 * `command:` string, split into argv.
 *
 * Oracles, each an abort():
 *   - success gives n >= 1 words, v[n] == NULL, and at most as many bytes
 *     in all words as the string has (splitting only removes: quotes,
 *     escapes, blanks, comments);
 *   - failure is -EINVAL with a message and a column within the string
 *     (0 only for "empty command"), and leaves *ret alone.
 * Built with libFuzzer (tests/fuzz/run words) or, for the test suite, with
 * replay_main.c. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/words.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *in)
{
        fprintf(stderr, "fuzz_words: %s (input '%.200s')\n", what, in);
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct er_words w = {NULL, 0};
        struct er_err err = {0};
        size_t n, total = 0;
        char *s;
        int r;

        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        n = strlen(s);
        r = er_words_split(s, &w, &err);
        if (r == 0) {
                if (!w.v || w.n == 0 || w.v[w.n])
                        die("bad word vector", s);
                for (size_t i = 0; i < w.n; i++) {
                        if (!w.v[i])
                                die("NULL word", s);
                        total += strlen(w.v[i]);
                }
                if (total > n)
                        die("the words hold more bytes than the string", s);
                er_words_fini(&w);
        } else {
                if (w.v || w.n)
                        die("failure wrote the result", s);
                if (r != -EINVAL && r != -ENOMEM)
                        die("unexpected error code", s);
                if (!err.msg[0] || err.col > n + 1)
                        die("failure without a located error", s);
        }
        free(s);
        return 0;
}
