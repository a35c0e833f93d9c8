/* interp: ${VAR} interpolation of environment.yml's string values (SPEC §3).
 *
 *   ${VAR}            value of VAR, "" when unset
 *   ${VAR:-default}   default when VAR is unset or empty
 *   ${VAR-default}    default when VAR is unset
 *   ${VAR:?message}   error "message" when VAR is unset or empty
 *                     (without message: "variable 'VAR' is required")
 *   ${VAR?message}    error when VAR is unset
 *   ${VAR:+alt} ${VAR+alt} are not supported: an error saying so
 *   $$                a literal $
 *   $ followed by anything else (including $VAR and end of string) is kept
 *   as it is, so a shell command can still use $VAR at run time.
 * Defaults and messages are themselves interpolated (${A:-${B}}), only when
 * used, but their syntax is always checked.  A "${" ends at its matching '}'
 * ("$$" counts as one character, "${" nests; words.c splits by the same
 * rule); nesting is bounded at 16 levels.  VAR matches [A-Za-z_][A-Za-z0-9_]*;
 * anything else inside ${...} is an error ("invalid variable name '1X' in
 * '${1X}'"), as is an unterminated "${" ("unterminated '${' in 'abc${X'").
 * Values are substituted as they are, never interpolated again.
 *
 * Variables are looked up in order: the fixed list `vars` (built-ins and
 * ports), then `environ` (envrun's own environment), then `file_env` (the
 * top-level env_file).  A variable may be "deferred": its value is not known
 * yet (a port before the instance starts); its `value` is a placeholder that
 * is substituted as is, and the result is flagged deferred so that typed
 * fields skip checks they cannot make yet. */
#ifndef ER_INTERP_H
#define ER_INTERP_H

#include <stdbool.h>
#include <stddef.h>

#include "model/envfile.h"
#include "base/err.h"

struct er_var {
        const char *name;
        const char *value;
        bool deferred;
};

struct er_vars {
        const struct er_var *v;       /* may be NULL when n == 0 */
        size_t n;
        char *const *environ;         /* NULL-terminated "NAME=VALUE", may be NULL */
        const struct er_envlist *file_env; /* may be NULL */
};

/* Looks NAME up as described above (NAME need not be NUL-terminated); NULL
 * when unset.  *ret_deferred (may be NULL) tells whether the value is a
 * placeholder; it is false when NAME is unset. */
const char *er_vars_get(const struct er_vars *vars, const char *name, size_t name_len,
                        bool *ret_deferred);

/* s[i] is the '$' of "${": the offset just past its matching '}' within
 * s[0..n), or 0 when there is none.  "$$" is one character and "${" nests:
 * the rules interpolation and the word splitter (words.c) both read by. */
size_t er_interp_brace_end(const char *s, size_t i, size_t n);

/* Interpolates s.  On success *ret is a malloc'd string and *ret_deferred
 * (may be NULL) is true when a deferred variable was used.  On failure
 * returns -EINVAL (or -ENOMEM) and fills err->code and err->msg (err's
 * file/line/col are not touched: they are the caller's to set).  Results are
 * bounded at 1 MiB (-E2BIG, "interpolated value longer than 1 MiB").  *ret
 * and *ret_deferred are written only on success. */
int er_interp(const char *s, const struct er_vars *vars, char **ret, bool *ret_deferred,
              struct er_err *err);

#endif
