#include "base/suggest.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define LEN_MAX 256

static size_t min3(size_t a, size_t b, size_t c)
{
        size_t m = a < b ? a : b;

        return m < c ? m : c;
}

size_t er_edit_distance(const char *a, const char *b)
{
        /* Three rows of the matrix: i-2, i-1 and i. */
        size_t rows[3][LEN_MAX + 1];
        size_t la = strlen(a), lb = strlen(b);

        if (la > LEN_MAX || lb > LEN_MAX)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                rows[0][j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t *pp = rows[(i + 1) % 3], *prev = rows[(i - 1) % 3], *cur = rows[i % 3];

                cur[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] != b[j - 1];

                        cur[j] = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                            pp[j - 2] + 1 < cur[j])
                                cur[j] = pp[j - 2] + 1;
                }
        }
        return rows[la % 3][lb];
}

static void lower(char *dst, const char *src)
{
        for (; *src; src++)
                *dst++ = (char)tolower((unsigned char)*src);
        *dst = '\0';
}

/* One of a, b is a prefix of the other, the shorter at least 3 characters
 * ("depends" for "depends_on", "environment" for "env"). */
static bool prefix_match(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

        return n >= 3 && !strncasecmp(a, b, n);
}

const char *er_suggest(const char *word, const char *const *candidates, size_t n)
{
        char lw[LEN_MAX + 1], lc[LEN_MAX + 1];
        size_t wl = strlen(word), max_dist, best_rank = SIZE_MAX;
        const char *best = NULL;

        if (wl > LEN_MAX)
                return NULL;
        max_dist = wl / 3 < 3 ? wl / 3 : 3;
        if (max_dist < 1)
                max_dist = 1;
        lower(lw, word);
        for (size_t i = 0; i < n; i++) {
                const char *c = candidates[i];
                size_t d, rank;

                if (!c || strlen(c) > LEN_MAX)
                        continue;
                lower(lc, c);
                /* The distance ignores case: "Comand" is as near "command" as "comand". */
                d = er_edit_distance(lw, lc);
                /* Ranks: equal ignoring case, then by distance, then prefixes. */
                if (d == 0)
                        rank = 0;
                else if (d <= max_dist)
                        rank = d;
                else if (prefix_match(word, c))
                        rank = LEN_MAX + d;
                else
                        continue;
                if (rank < best_rank) {
                        best_rank = rank;
                        best = c;
                }
        }
        return best;
}
