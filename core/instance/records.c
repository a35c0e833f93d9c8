/* records: records.json, what a clean-up after a crash needs (records.h).
 *
 * Identity of a process: its pid and its start time (/proc/PID/stat field
 * 22).  A pid whose start time differs is another process that reused the
 * number, and is never signalled. */
#include "instance/records.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/buf.h"
#include "proc/pids.h"
#include "instance/state_priv.h"

#define RECORDS_FORMAT 1
#define RECORDS_MAX (8 * 1024 * 1024) /* bytes of records.json we read */
#define PROCS_MAX 100000              /* processes in one records.json */

void er_records_init(struct er_records *r)
{
        memset(r, 0, sizeof(*r));
}

void er_records_fini(struct er_records *r)
{
        if (!r)
                return;
        free(r->containment);
        free(r->cgroup);
        for (int k = 0; k < ER_V1_N; k++)
                free(r->v1[k]);
        free(r->marker);
        for (size_t i = 0; i < r->n_procs; i++)
                free(r->procs[i].service);
        free(r->procs);
        er_records_init(r);
}

static int set_str(char **dst, const char *src)
{
        char *s = NULL;

        if (src && !(s = er_strdup(src)))
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

int er_records_from_contain(struct er_records *r, const struct er_contain *c)
{
        char *marker = NULL;
        int e;

        if (!c->instance)
                return -EINVAL;
        if (asprintf(&marker, MARKER_KEY "%s/", c->instance) < 0)
                return -ENOMEM;
        free(r->marker);
        r->marker = marker;
        e = set_str(&r->containment, er_contain_name(c));
        if (e == 0)
                e = set_str(&r->cgroup, c->kind == ER_CONTAIN_CGROUP2 ? c->root : NULL);
        for (int k = 0; e == 0 && k < ER_V1_N; k++)
                e = set_str(&r->v1[k], c->v1_dir[k]);
        if (e < 0)
                return e;
        r->supervisor = getpid();
        /* An unknown start time (0) never matches: the supervisor is then
         * never killed by a clean-up, which is the safe side. */
        if (er_pids_start_time(r->supervisor, &r->supervisor_start) < 0)
                r->supervisor_start = 0;
        return 0;
}

int er_records_set_proc(struct er_records *r, const char *service, pid_t pid)
{
        uint64_t start = 0;
        char *name;
        int e;

        if (!service || !*service || pid <= 0)
                return -EINVAL;
        e = er_pids_start_time(pid, &start);
        if (e < 0)
                return e;
        for (size_t i = 0; i < r->n_procs; i++) {
                if (strcmp(r->procs[i].service, service) == 0) {
                        r->procs[i].pid = pid;
                        r->procs[i].start_time = start;
                        return 0;
                }
        }
        if (r->n_procs >= PROCS_MAX)
                return -E2BIG;
        name = er_strdup(service);
        if (!name)
                return -ENOMEM;
        if (ER_BUF_RESERVE(r->procs, r->cap_procs, r->n_procs + 1) < 0) {
                free(name);
                return -ENOMEM;
        }
        r->procs[r->n_procs++] = (struct er_record_proc){name, pid, start};
        return 0;
}

static const char *const v1_names[ER_V1_N] = {"memory", "pids"};

static json_t *str_or_null(const char *s)
{
        return s ? json_string(s) : json_null();
}

/* Every json_*_set_new/append_new takes its value, even on failure (a NULL
 * from a failed allocation included): errors are collected, nothing leaks. */
static json_t *records_json(const struct er_records *r)
{
        json_t *root = json_object(), *sup = json_object(), *v1 = json_object(),
               *procs = json_array();
        int e = 0;

        if (!root) {
                json_decref(sup);
                json_decref(v1);
                json_decref(procs);
                return NULL;
        }
        e |= json_object_set_new(root, "envrun_records", json_integer(RECORDS_FORMAT));
        e |= json_object_set_new(root, "supervisor", sup);
        e |= json_object_set_new(root, "containment", str_or_null(r->containment));
        e |= json_object_set_new(root, "cgroup", str_or_null(r->cgroup));
        e |= json_object_set_new(root, "v1", v1);
        e |= json_object_set_new(root, "marker", str_or_null(r->marker));
        e |= json_object_set_new(root, "procs", procs);
        if (e) {
                json_decref(root);
                return NULL;
        }
        /* sup, v1 and procs are root's now (borrowed here). */
        e |= json_object_set_new(sup, "pid", json_integer(r->supervisor));
        e |= json_object_set_new(sup, "start_time", json_integer((json_int_t)r->supervisor_start));
        for (int k = 0; k < ER_V1_N; k++)
                e |= json_object_set_new(v1, v1_names[k], str_or_null(r->v1[k]));
        for (size_t i = 0; !e && i < r->n_procs; i++)
                e |= json_array_append_new(
                    procs, json_pack("{s:s, s:I, s:I}", "service", r->procs[i].service, "pid",
                                     (json_int_t)r->procs[i].pid, "start_time",
                                     (json_int_t)r->procs[i].start_time));
        if (e) {
                json_decref(root);
                return NULL;
        }
        return root;
}

static int write_all(int fd, const char *s, size_t len)
{
        while (len) {
                ssize_t w = write(fd, s, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                s += w;
                len -= (size_t)w;
        }
        return 0;
}

int er_records_write(struct er_state *st, const struct er_records *r)
{
        struct stat sb;
        json_t *root;
        char *text;
        int fd, e;

        if (st->dir_fd < 0)
                return -EBADF;
        root = records_json(r);
        if (!root)
                return -ENOMEM;
        text = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!text)
                return -ENOMEM;
        /* O_NONBLOCK and fstat: a FIFO planted here is refused (ENXIO, or
         * not a regular file), never waited on. */
        fd = openat(st->dir_fd, RECORDS_TMP,
                    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))) {
                close(fd);
                fd = -1;
                errno = EPERM;
        }
        if (fd < 0) {
                e = -errno;
                free(text);
                return e;
        }
        e = write_all(fd, text, strlen(text));
        if (e == 0)
                e = write_all(fd, "\n", 1);
        free(text);
        if (close(fd) < 0 && e == 0)
                e = -errno;
        if (e == 0 && renameat(st->dir_fd, RECORDS_TMP, st->dir_fd, RECORDS_NAME) < 0)
                e = -errno;
        if (e < 0)
                unlinkat(st->dir_fd, RECORDS_TMP, 0);
        return e;
}

/* A string member, or NULL for null/missing; -EINVAL for another type. */
static int get_str(json_t *o, const char *key, char **ret)
{
        json_t *v = json_object_get(o, key);

        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return -EINVAL;
        *ret = er_strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_int(json_t *o, const char *key, json_int_t min, json_int_t max, json_int_t *ret)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return -EINVAL;
        *ret = json_integer_value(v);
        return 0;
}

/* "ENVRUN_MARKER=<instance>/" -> <instance> (borrowed, length in *len). */
static const char *marker_instance(const char *marker, size_t *len)
{
        size_t kl = strlen(MARKER_KEY), ml;

        if (!marker || strncmp(marker, MARKER_KEY, kl) != 0)
                return NULL;
        ml = strlen(marker);
        if (ml < kl + 2 || marker[ml - 1] != '/')
                return NULL;
        *len = ml - kl - 1;
        return marker + kl;
}

static bool valid_instance(const char *s, size_t len)
{
        return len && !memchr(s, '/', len) && !memchr(s, '\n', len) && !(len == 1 && s[0] == '.') &&
               !(len == 2 && !strncmp(s, "..", 2));
}

/* A cgroup directory of the instance: "<...>/envrun/<instance>" (root), or
 * for the v2 one also "<...>/envrun.<instance>" (delegated).  A
 * records.json naming any other directory is refused: a clean-up writes to
 * cgroup.kill there. */
static bool instance_cgroup(const char *path, const char *inst, size_t il, bool v2)
{
        const char *b = base_name(path);
        size_t bl = strlen(b), pl = strlen(path), tl = strlen(CG_TOP), dl = strlen(CG_DELEGATED);

        if (path[0] != '/' || strstr(path, "/../") || strstr(path, "/./"))
                return false;
        if (bl == il && !strncmp(b, inst, il))
                return pl >= bl + tl + 2 && !strncmp(b - tl - 1, CG_TOP, tl) && b[-tl - 2] == '/';
        return v2 && bl == dl + il && !strncmp(b, CG_DELEGATED, dl) && !strncmp(b + dl, inst, il);
}

static int parse_procs(json_t *a, struct er_records *r)
{
        size_t n = json_array_size(a);

        if (!json_is_array(a) || n > PROCS_MAX)
                return -EINVAL;
        r->procs = calloc(n ? n : 1, sizeof(*r->procs));
        r->cap_procs = r->procs ? (n ? n : 1) : 0;
        if (!r->procs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *p = json_array_get(a, i);
                struct er_record_proc *rp = &r->procs[i];
                json_int_t pid, start;
                int e;

                if (!json_is_object(p))
                        return -EINVAL;
                e = get_str(p, "service", &rp->service);
                r->n_procs = i + 1; /* what fini must free */
                if (e == 0 && (!rp->service || !*rp->service))
                        e = -EINVAL;
                if (e == 0)
                        e = get_int(p, "pid", 1, INT_MAX, &pid);
                if (e == 0)
                        e = get_int(p, "start_time", 0, INT64_MAX, &start);
                if (e < 0)
                        return e;
                rp->pid = (pid_t)pid;
                rp->start_time = (uint64_t)start;
        }
        return 0;
}

static int parse_records(json_t *root, struct er_records *r)
{
        json_t *sup = json_object_get(root, "supervisor"), *v1 = json_object_get(root, "v1");
        json_int_t fmt, pid, start;
        const char *inst = NULL;
        size_t il = 0;
        int e;

        if (!json_is_object(root) || get_int(root, "envrun_records", 1, INT_MAX, &fmt) < 0 ||
            fmt != RECORDS_FORMAT || !json_is_object(sup) || (v1 && !json_is_object(v1)))
                return -EINVAL;
        if (get_int(sup, "pid", 0, INT_MAX, &pid) < 0 ||
            get_int(sup, "start_time", 0, INT64_MAX, &start) < 0)
                return -EINVAL;
        r->supervisor = (pid_t)pid;
        r->supervisor_start = (uint64_t)start;
        if ((e = get_str(root, "containment", &r->containment)) < 0 ||
            (e = get_str(root, "cgroup", &r->cgroup)) < 0 ||
            (e = get_str(root, "marker", &r->marker)) < 0)
                return e;
        for (int k = 0; v1 && k < ER_V1_N; k++)
                if ((e = get_str(v1, v1_names[k], &r->v1[k])) < 0)
                        return e;
        if (r->containment && strcmp(r->containment, "cgroup2") &&
            strcmp(r->containment, "reaper") && strcmp(r->containment, "session"))
                return -EINVAL;
        if (r->marker && (!(inst = marker_instance(r->marker, &il)) || !valid_instance(inst, il)))
                return -EINVAL;
        if (r->cgroup && (!inst || !instance_cgroup(r->cgroup, inst, il, true)))
                return -EINVAL;
        for (int k = 0; k < ER_V1_N; k++)
                if (r->v1[k] && (!inst || !instance_cgroup(r->v1[k], inst, il, false)))
                        return -EINVAL;
        return parse_procs(json_object_get(root, "procs"), r);
}

int er_records_read(struct er_state *st, struct er_records *r)
{
        struct stat sb;
        json_error_t jerr;
        json_t *root;
        char *buf;
        ssize_t k;
        size_t len = 0;
        int fd, e;

        if (st->dir_fd < 0)
                return -EBADF;
        /* O_NONBLOCK: a FIFO planted as the records must not hang the open
         * (fstat refuses it below). */
        fd = openat(st->dir_fd, RECORDS_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return errno == ELOOP ? -EINVAL : -errno;
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > RECORDS_MAX) {
                close(fd);
                return -EINVAL;
        }
        buf = malloc((size_t)sb.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (len <= (size_t)sb.st_size &&
               (k = read(fd, buf + len, (size_t)sb.st_size + 1 - len)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        e = -errno;
                        free(buf);
                        close(fd);
                        return e;
                }
                len += (size_t)k;
        }
        close(fd);
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        free(buf);
        if (!root)
                return -EINVAL;
        er_records_init(r);
        e = parse_records(root, r);
        json_decref(root);
        if (e < 0)
                er_records_fini(r);
        return e;
}

