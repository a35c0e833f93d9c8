/* words: a command string split into argv like a POSIX shell splits words,
 * but with no expansion, globbing or operators (SPEC §3).
 *
 * Blanks (space, tab) separate words.  'single quotes' keep everything
 * literally; "double quotes" keep everything but \" \\ \$ \` and
 * backslash-newline, which are escapes; outside quotes a backslash makes the
 * next character literal (backslash-newline joins lines; a backslash ending
 * the string stays, as in sh).  A '#' starting a word begins a comment to the
 * end of its line.  "${...}" is kept whole inside a word, quoted or not,
 * whatever it contains (so "${A:-x y}" is one word and its content is not
 * read as an operator): interpolation happens after splitting, word by word,
 * so an escaped "\$" is still interpolated: "$$" is the way to a literal '$'.
 * "$$" is kept as two characters, and matching braces follow interp's rules
 * ("$$" is one character, "${" nests).  Unquoted shell operators
 * | & ; < > ( ) ` "$(" and a newline with a word after it are an error
 * suggesting `shell: true` (trailing newlines, as YAML block scalars end
 * with, separate nothing); so are "`" and "$(" inside double quotes (a
 * command substitution to a shell), an unterminated quote or "${", and a
 * string with no word at all ("empty command", err->col 0). */
#ifndef ER_WORDS_H
#define ER_WORDS_H

#include <stddef.h>

#include "base/err.h"

struct er_words {
        char **v;   /* NULL-terminated */
        size_t n;
};

/* On success fills *ret (owned by the caller, er_words_fini) and returns 0.
 * On failure returns -EINVAL and fills err->msg and err->col with the
 * 1-based offset (in bytes) in s of the offending character; err->file and
 * err->line are left to the caller. */
int er_words_split(const char *s, struct er_words *ret, struct er_err *err);
void er_words_fini(struct er_words *w);

#endif
