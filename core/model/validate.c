/* validate: rules across services; see validate.h. */
#include "model/validate.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/graph.h"
#include "base/suggest.h"

static int resolve_deps(struct er_config *c, struct er_errs *errs)
{
        const char **names = malloc(c->n_services * sizeof(char *));
        int r = 0;

        if (!names)
                return er_errs_add(errs, -ENOMEM, c->file, 0, 0, "out of memory");
        for (size_t i = 0; i < c->n_services; i++)
                names[i] = c->services[i].name;
        for (size_t i = 0; i < c->n_services; i++) {
                struct er_service *s = &c->services[i];
                for (size_t k = 0; k < s->n_deps; k++) {
                        struct er_dep *d = &s->deps[k];
                        ptrdiff_t j = er_config_find(c, d->name);
                        if (j < 0) {
                                const char *sug = er_suggest(d->name, names, c->n_services);
                                r = er_errs_add(errs, -ER_ECONFIG, c->file, d->loc.line, d->loc.col,
                                                "service '%s' depends on '%s', which is not defined%s%s%s",
                                                s->name, d->name, sug ? " (did you mean '" : "",
                                                sug ? sug : "", sug ? "'?)" : "");
                                continue;
                        }
                        d->index = (size_t)j;
                        if ((size_t)j == i) {
                                r = er_errs_add(errs, -ER_ECONFIG, c->file, d->loc.line, d->loc.col,
                                                "service '%s' depends on itself", s->name);
                                continue;
                        }
                        const struct er_service *t = &c->services[j];
                        if (d->cond == ER_COND_COMPLETED && t->restart == ER_RESTART_ALWAYS)
                                r = er_errs_add(errs, -ER_ECONFIG, c->file, d->loc.line, d->loc.col,
                                                "service '%s' waits for '%s' to complete, but '%s' "
                                                "has 'restart: always' and never completes",
                                                s->name, t->name, t->name);
                }
        }
        free(names);
        return r;
}

static int parse_id(const char *s, long *ret)
{
        char *end;
        long v;
        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < 0 || v > 0x7ffffffe)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "name", "uid", "uid:gid" or "name:group" to ids. */
static int lookup_user(const char *spec, long *uid, long *gid, char *why, size_t len)
{
        char buf[4096], user[256], *colon;
        struct passwd pw, *pwp = NULL;
        struct group gr, *grp = NULL;

        snprintf(user, sizeof(user), "%s", spec);
        colon = strchr(user, ':');
        if (colon)
                *colon++ = '\0';
        if (parse_id(user, uid) < 0) {
                if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) || !pwp) {
                        snprintf(why, len, "unknown user '%s'", user);
                        return -ENOENT;
                }
                *uid = pw.pw_uid;
                *gid = pw.pw_gid;
        } else if (getpwuid_r((uid_t)*uid, &pw, buf, sizeof(buf), &pwp) == 0 && pwp) {
                *gid = pw.pw_gid;
        } else {
                *gid = *uid;
        }
        if (colon && parse_id(colon, gid) < 0) {
                if (getgrnam_r(colon, &gr, buf, sizeof(buf), &grp) || !grp) {
                        snprintf(why, len, "unknown group '%s'", colon);
                        return -ENOENT;
                }
                *gid = gr.gr_gid;
        }
        return 0;
}

static int check_users(struct er_config *c, struct er_errs *errs)
{
        uid_t me = geteuid();
        int r = 0;

        for (size_t i = 0; i < c->n_services; i++) {
                struct er_service *s = &c->services[i];
                char why[300];
                if (!s->user)
                        continue;
                if (lookup_user(s->user, &s->uid, &s->gid, why, sizeof(why)) < 0) {
                        r = er_errs_add(errs, -ER_ECONFIG, c->file, s->user_loc.line,
                                        s->user_loc.col, "%s", why);
                        continue;
                }
                /* Not root: one file serves root (PostgreSQL refuses to run
                 * as root: user: postgres) and normal users, who run every
                 * service as themselves; the start says so. */
                s->user_not_applied = me != 0 && (uid_t)s->uid != me;
        }
        return r;
}

int er_validate(struct er_config *c, struct er_errs *errs)
{
        int r = 0;
        if (resolve_deps(c, errs) < 0)
                r = -ER_ECONFIG;
        if (check_users(c, errs) < 0)
                r = -ER_ECONFIG;
        /* Cycles only make sense once every edge points at a service. */
        if (r == 0 && er_graph_check_cycles(c, errs) < 0)
                r = -ER_ECONFIG;
        return r;
}
