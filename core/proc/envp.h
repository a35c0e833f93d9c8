/* envp: a child's environment, built explicitly (never `environ` itself):
 * envrun's environment, then each layer in order (later wins), as SPEC §3
 * orders them. */
#ifndef ER_ENVP_H
#define ER_ENVP_H

#include <stddef.h>

#include "model/envfile.h"

/* A NULL-terminated array of "NAME=VALUE" strings, or NULL on ENOMEM.
 * layers may contain NULL entries (skipped). */
char **er_envp_build(char *const *base, const struct er_envlist *const *layers, size_t n_layers);
void er_envp_free(char **envp);
/* The value of NAME in envp, or NULL. */
const char *er_envp_get(char *const *envp, const char *name);

#endif
