/* suggest: "did you mean ...?" for unknown keys and names. */
#ifndef ER_SUGGEST_H
#define ER_SUGGEST_H

#include <stddef.h>

/* Optimal string alignment distance (Damerau-Levenshtein with adjacent
 * transpositions), case-sensitive, bounded: strings longer than 256 bytes get
 * SIZE_MAX. */
size_t er_edit_distance(const char *a, const char *b);

/* The candidate nearest to word, when near enough to be a plausible typo:
 * distance <= max(1, min(3, strlen(word) / 3)), or equal ignoring case, or
 * a prefix of at least 3 characters; ties go to the first candidate.
 * The distance here ignores case; one of word and candidate is a prefix of
 * the other ("depends" -> "depends_on", "environment" -> "env").  Ranking:
 * equal ignoring case, then the smallest distance, then prefixes.  NULL
 * candidates are skipped.  NULL when none is near enough. */
const char *er_suggest(const char *word, const char *const *candidates, size_t n);

#endif
