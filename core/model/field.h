/* field: typed, interpolated reading of environment.yml nodes with located
 * errors.  Shared by config and the check kinds' parsers.
 *
 * Every getter appends an error located at the node and returns -ER_ECONFIG
 * when the node has the wrong type or value; the caller keeps going.  String
 * values are interpolated (SPEC §3); numbers and booleans must be written
 * plain (`timeout: 30`, `shell: true`), as YAML's core schema types them, or
 * come from interpolation (`max_restarts: ${N}`). */
#ifndef ER_FIELD_H
#define ER_FIELD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "model/interp.h"
#include "model/load.h"
#include "model/types.h"

struct er_fctx {
        const char *file;           /* environment.yml's path, for errors */
        const char *dir;            /* its absolute directory */
        const struct er_vars *vars; /* for interpolation */
        struct er_errs *errs;
};

/* Appends an error at node (or at the file when node is NULL); returns -ER_ECONFIG. */
int er_field_error(struct er_fctx *f, const struct er_node *node, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static inline struct er_loc er_field_loc(const struct er_node *n)
{
        struct er_loc l = {n->line, n->col};
        return l;
}

/* A scalar (not null), interpolated.  Plain numbers and booleans are taken as
 * their text.  *ret_deferred (may be NULL) says a deferred variable was used. */
int er_field_str(struct er_fctx *f, const struct er_node *n, const char *key, char **ret,
                 bool *ret_deferred);
/* Like er_field_str, but the result must be non-empty. */
int er_field_str_nonempty(struct er_fctx *f, const struct er_node *n, const char *key, char **ret,
                          bool *ret_deferred);
int er_field_bool(struct er_fctx *f, const struct er_node *n, const char *key, bool *ret);
int er_field_uint(struct er_fctx *f, const struct er_node *n, const char *key, uint64_t min,
                  uint64_t max, uint64_t *ret);
int er_field_duration(struct er_fctx *f, const struct er_node *n, const char *key, uint64_t *ret_us);
int er_field_size(struct er_fctx *f, const struct er_node *n, const char *key, uint64_t *ret);
int er_field_signal(struct er_fctx *f, const struct er_node *n, const char *key, int *ret);
/* An exit status 0..255 or a non-empty list of them. */
int er_field_codes(struct er_fctx *f, const struct er_node *n, const char *key,
                   struct er_codes *ret);

/* Type checks: "'env' must be a map, not a list". */
int er_field_want_map(struct er_fctx *f, const struct er_node *n, const char *key);
int er_field_want_seq(struct er_fctx *f, const struct er_node *n, const char *key);

/* Reports every key of map not in known[] as "unknown key 'comand' in service 'db'
 * (did you mean 'command'?)"; `where` is appended after the key ("" for the top
 * level).  Returns the number of unknown keys. */
int er_field_check_keys(struct er_fctx *f, const struct er_node *map, const char *const *known,
                        size_t n_known, const char *where);

/* A command: a list (the argv, exactly) or a string (split into words, each
 * interpolated; with shell, the interpolated string for /bin/sh -c).  cwd is
 * left to the caller. */
int er_field_cmd(struct er_fctx *f, const struct er_node *n, const char *key, bool shell,
                 struct er_cmd *ret);

/* `env:` (map NAME -> string, number or boolean) appended to out, interpolated. */
int er_field_env(struct er_fctx *f, const struct er_node *n, struct er_envlist *out);
/* `env_file:` (path or list of paths, relative to the file's directory), read into out. */
int er_field_env_file(struct er_fctx *f, const struct er_node *n, struct er_envlist *out);

/* A path made absolute against base (which is absolute); "." components are
 * kept as written.  NULL on ENOMEM. */
char *er_path_join(const char *base, const char *path);

#endif
