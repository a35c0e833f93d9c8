/* err: located errors and error lists.
 *
 * Fallible functions return int: >= 0 on success, -errno or -ER_E* on
 * failure.  What a user will read is an er_err: a code, an optional file
 * (borrowed in a single er_err; an er_errs list copies it), a
 * 1-based line and column (0 = unknown) and a message in git's style
 * (lower case, no trailing period, user strings in single quotes). */
#ifndef ER_ERR_H
#define ER_ERR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* envrun's own error codes, above every errno value. */
enum {
        ER_EBASE = 4096,
        ER_ESYNTAX,  /* malformed YAML, env file, command string */
        ER_ECONFIG,  /* a well-formed file that breaks a rule of the format */
        ER_ELIMIT,   /* an input crossed one of envrun's limits */
        ER_EUSAGE,   /* bad command line */
};

#define ER_ERR_MSG_MAX 256

struct er_err {
        int code;
        const char *file;
        unsigned line, col;
        char msg[ER_ERR_MSG_MAX];
};

/* An error list: validation appends and keeps going, so that every error of
 * a file is reported in one run.  Bounded: past ER_ERRS_MAX entries further
 * errors are counted in `dropped` but not stored. */
#define ER_ERRS_MAX 1000

struct er_errs {
        struct er_err *v;
        size_t n, cap;
        size_t dropped;
        /* The list keeps its own copy of each file name its errors name, so
         * an error outlives the model or document it was found in. */
        char **files;
        size_t n_files, files_cap;
};

void er_errs_init(struct er_errs *errs);
void er_errs_fini(struct er_errs *errs);

/* Appends an error; returns `code` so that callers can `return er_errs_add(...)`.
 * Allocation failure is recorded as a dropped error, never lost silently. */
int er_errs_add(struct er_errs *errs, int code, const char *file, unsigned line, unsigned col,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int er_errs_addv(struct er_errs *errs, int code, const char *file, unsigned line, unsigned col,
                 const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
/* Appends a copy of a single error. */
int er_errs_push(struct er_errs *errs, const struct er_err *err);

/* Stable sort by file, line, column: errors found by different passes come
 * out in the order a reader meets them in the file. */
void er_errs_sort(struct er_errs *errs);

/* Fills a single error; returns code.  err may be NULL for a caller that
 * wants no message: then only code is returned. */
int er_err_set(struct er_err *err, int code, const char *file, unsigned line, unsigned col,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* "file:line:col: msg", "file: msg" or "msg" depending on what is known.
 * Returns the length it wanted to write, like snprintf. */
int er_err_format(const struct er_err *err, char *buf, size_t len);

/* Strict string helpers used everywhere in core/. */
char *er_strdup(const char *s);                 /* NULL on ENOMEM */
char *er_strndup(const char *s, size_t n);      /* NULL on ENOMEM */
void er_close(int *fd);                          /* closes *fd if >= 0, sets -1 */
/* read(2), again after EINTR: bytes read, 0 at end of file, or -errno. */
ssize_t er_read(int fd, void *buf, size_t n);

#endif
