/* envfile: ordered NAME=VALUE lists, and env files that fill them.
 *
 * Env file format (the one docker compose reads, minus interpolation):
 *   - blank lines and lines whose first non-blank character is '#' are skipped;
 *   - an optional leading "export " is ignored;
 *   - NAME=VALUE, NAME matching [A-Za-z_][A-Za-z0-9_.-]* (spaces around NAME
 *     and after '=' are trimmed);
 *   - VALUE unquoted: up to the end of the line or to " #" (a comment), with
 *     trailing blanks removed;
 *   - VALUE in single quotes: literal, may span lines;
 *   - VALUE in double quotes: \n \t \r \\ \" \$ are escapes, may span lines;
 *     anything after the closing quote but blanks or a comment is an error;
 *   - a line without '=' is an error (compose would pass the host's value; we
 *     refuse the ambiguity);
 *   - values are never interpolated.
 * Also: "export" followed by '=' is the name itself ("export=1"); unknown
 * escapes in double quotes are kept as written ("\q"); after a closing quote
 * a '#' starts a comment with or without a blank before it; CRLF line ends
 * and a leading UTF-8 byte order mark are accepted; a NUL byte is an error.
 * Errors are located "file:line:col" (col counts bytes); syntax errors have
 * code -ER_ESYNTAX, limits -ER_ELIMIT, I/O errors -errno.  An unterminated
 * quote ends the parse; after other errors the next line is parsed. */
#ifndef ER_ENVFILE_H
#define ER_ENVFILE_H

#include <stddef.h>

#include "base/err.h"

struct er_envvar {
        char *name;
        char *value;
        unsigned line, col; /* where it was defined; 0 when not from a file */
};

/* Later entries win when the list is applied; er_envlist_set replaces in place. */
struct er_envlist {
        struct er_envvar *v;
        size_t n, cap;
};

void er_envlist_init(struct er_envlist *l);
void er_envlist_fini(struct er_envlist *l);
/* Adds or replaces NAME (keeping its first position). Copies both strings. 0 or -ENOMEM. */
int er_envlist_set(struct er_envlist *l, const char *name, const char *value, unsigned line,
                   unsigned col);
/* NULL when absent. */
const char *er_envlist_get(const struct er_envlist *l, const char *name);
/* Appends every entry of src with er_envlist_set semantics. */
int er_envlist_merge(struct er_envlist *dst, const struct er_envlist *src);

/* Limits: 1 MiB per env file, 64 KiB per value, 10000 variables per file
 * (lookups are linear). */
#define ER_ENVFILE_MAX_BYTES (1024 * 1024)

/* Parses buf into out (entries are added with er_envlist_set).  `file` is
 * borrowed for error messages.  Appends every error found; returns 0 or the
 * first error's code. */
int er_envfile_parse(const char *buf, size_t len, const char *file, struct er_envlist *out,
                     struct er_errs *errs);
/* Reads and parses `path`; messages name it `display` (the path as the
 * user can find it from where they ran envrun). I/O errors go to errs located at (file,line,col)
 * of the reference (the env_file key in environment.yml):
 * "env file 'path': No such file or directory". */
int er_envfile_read(const char *path, const char *display, struct er_envlist *out,
                    struct er_errs *errs, const char *ref_file, unsigned ref_line,
                    unsigned ref_col);

/* Names of environment variables, as POSIX shells accept them:
 * [A-Za-z_][A-Za-z0-9_]*.  1 when valid, 0 when not (or NULL).  Stricter than
 * env file names, which may also hold '.' and '-'. */
int er_env_name_valid(const char *name);

#endif
