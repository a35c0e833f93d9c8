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
 * NULL when none is. */
const char *er_suggest(const char *word, const char *const *candidates, size_t n);

#endif
