#include "proc/envp.h"

#include <stdlib.h>
#include <string.h>

static int add_base(struct er_envlist *l, char *const *base)
{
        for (; base && *base; base++) {
                const char *eq = strchr(*base, '=');
                char name[256];
                size_t n;
                if (!eq || eq == *base)
                        continue;
                n = (size_t)(eq - *base);
                if (n >= sizeof(name))
                        continue; /* no real program uses such names */
                memcpy(name, *base, n);
                name[n] = '\0';
                if (er_envlist_set(l, name, eq + 1, 0, 0) < 0)
                        return -1;
        }
        return 0;
}

char **er_envp_build(char *const *base, const struct er_envlist *const *layers, size_t n_layers)
{
        struct er_envlist l;
        char **envp = NULL;

        er_envlist_init(&l);
        if (add_base(&l, base) < 0)
                goto out;
        for (size_t i = 0; i < n_layers; i++)
                if (layers[i] && er_envlist_merge(&l, layers[i]) < 0)
                        goto out;
        envp = calloc(l.n + 1, sizeof(char *));
        if (!envp)
                goto out;
        for (size_t i = 0; i < l.n; i++) {
                size_t a = strlen(l.v[i].name), b = strlen(l.v[i].value);
                envp[i] = malloc(a + b + 2);
                if (!envp[i]) {
                        er_envp_free(envp);
                        envp = NULL;
                        goto out;
                }
                memcpy(envp[i], l.v[i].name, a);
                envp[i][a] = '=';
                memcpy(envp[i] + a + 1, l.v[i].value, b + 1);
        }
out:
        er_envlist_fini(&l);
        return envp;
}

void er_envp_free(char **envp)
{
        if (!envp)
                return;
        for (char **p = envp; *p; p++)
                free(*p);
        free(envp);
}

const char *er_envp_get(char *const *envp, const char *name)
{
        size_t n = strlen(name);
        for (; envp && *envp; envp++)
                if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
                        return *envp + n + 1;
        return NULL;
}
