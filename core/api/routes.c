/* routes: the control API's resources over a running instance (routes.h). */
#include "api/routes.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "proc/log.h"
#include "report/report.h"

/* A request waiting for something to happen: a followed log, a service
 * operation that answers once the service settled, the report. */
struct waiter {
        struct waiter *next;
        struct er_routes *rt;
        struct er_ctl_stream *stream;
        size_t service;
        enum { W_FOLLOW, W_STOP, W_START, W_DOWN, W_UP } kind;
        bool seen_start;         /* W_START: the new run began (a restart stops first) */
        bool text, color;        /* W_DOWN: ?text=1 / ?text=color */
};

/* --- waiters -------------------------------------------------------------- */

static void waiter_unlink(struct waiter *w)
{
        for (struct waiter **p = &w->rt->waiters; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
}

static void on_stream_closed(void *ud, struct er_ctl_stream *s)
{
        struct waiter *w = ud;
        (void)s;
        waiter_unlink(w);
        free(w);
}

static struct waiter *waiter_add(struct er_routes *rt, struct er_ctl_resp *resp, int kind,
                                 size_t service, const char *ctype)
{
        struct waiter *w = calloc(1, sizeof(*w));
        if (!w)
                return NULL;
        w->stream = er_ctl_resp_stream_begin(resp, 200, ctype, on_stream_closed, w);
        if (!w->stream) {
                free(w);
                return NULL;
        }
        w->rt = rt;
        w->kind = kind;
        w->service = service;
        w->next = rt->waiters;
        rt->waiters = w;
        return w;
}

/* Writes and ends a waiter's response (the waiter is gone after). */
static void waiter_finish(struct waiter *w, const char *body)
{
        struct er_ctl_stream *s = w->stream;
        waiter_unlink(w);
        free(w);
        if (er_ctl_stream_write(s, body, strlen(body)) == 0)
                er_ctl_stream_end(s);
}

/* --- status --------------------------------------------------------------- */

static json_t *service_json(struct er_routes *rt, size_t i)
{
        struct er_svc_info in;
        bool alive;
        er_sched_info(rt->sched, i, &in);
        /* A pid only while there is a process to point at. */
        alive = in.state == ER_SVC_STARTING || in.state == ER_SVC_READY || in.state == ER_SVC_STOPPING;
        /* A job that completed is "completed" (issue 19), with its exit
         * status and how long it ran. */
        bool completed = in.state == ER_SVC_EXITED && in.job && in.error == ER_OK;
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:i, s:b, s:o, s:s, s:b}",
                         "name", rt->config->services[i].name,
                         "state", completed ? "completed" : er_svc_state_name(in.state),
                         "pid", alive && in.pid > 0 ? json_integer(in.pid) : json_null(),
                         "ready_ms", in.ready_ms != ER_REPORT_NO_TIME ? json_integer((json_int_t)in.ready_ms)
                                                                      : json_null(),
                         "restarts", (int)in.restarts,
                         "job", in.job,
                         "error", in.error != ER_OK ? json_string(er_error_class_name(in.error))
                                                    : json_null(),
                         "message", in.message ? in.message : "",
                         "selected", in.selected);
        if (o && completed) {
                json_object_set_new(o, "exit_code", in.exit_code >= 0 ? json_integer(in.exit_code)
                                                                      : json_null());
                json_object_set_new(o, "ran_ms", in.ran_ms != ER_REPORT_NO_TIME
                                                         ? json_integer((json_int_t)in.ran_ms)
                                                         : json_null());
        }
        return o;
}

/* "up": every service of the environment ready, or a job that completed;
 * "failed": one failed; "partial": one was stopped, is being restarted or
 * exited although it is no job. */
static const char *overall(struct er_routes *rt)
{
        bool partial = false;
        if (rt->down_requested || er_sched_interrupted(rt->sched))
                return "stopping";
        if (!er_sched_up_done(rt->sched))
                return "starting";
        for (size_t i = 0; i < rt->config->n_services; i++) {
                struct er_svc_info in;
                er_sched_info(rt->sched, i, &in);
                if (!in.selected)
                        continue;
                if (in.error != ER_OK || in.state == ER_SVC_FAILED)
                        return "failed";
                if (in.state != ER_SVC_READY && !(in.state == ER_SVC_EXITED && in.job))
                        partial = true;
        }
        return partial ? "partial" : "up";
}

static json_t *status_json(struct er_routes *rt)
{
        json_t *ports = json_object(), *svcs = json_array();
        for (size_t i = 0; i < rt->config->n_ports; i++)
                json_object_set_new(ports, rt->config->ports[i].name,
                                    json_integer(rt->ports[i]));
        for (size_t i = 0; i < rt->config->n_services; i++)
                json_array_append_new(svcs, service_json(rt, i));
        return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:o, s:o}",
                         "project", rt->config->project,
                         "config_digest", rt->config_digest ? rt->config_digest : "",
                         "state", overall(rt),
                         "supervisor_pid", (int)getpid(),
                         "containment", er_contain_name(rt->contain),
                         "containment_reason", rt->contain->reason,
                         "instance_dir", rt->instance_dir,
                         "state_dir", rt->state_dir,
                         "ports", ports,
                         "services", svcs);
}

/* --- logs ----------------------------------------------------------------- */

static void format_ts(char *buf, size_t len, uint64_t ms)
{
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&sec, &tm);
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}

/* A new output line goes to the service's followers, formatted as in the
 * log file. */
void er_routes_on_line(struct er_routes *rt, const struct er_sched_event *ev)
{
        char head[48];
        int n;

        /* ER_STREAM_BOTH: a failed readiness attempt, which the log file
         * does not hold either. */
        if (ev->service == SIZE_MAX || ev->stream == ER_STREAM_BOTH)
                return;
        /* Most lines have no follower: no clock, no formatting for them. */
        struct waiter *w0 = rt->waiters;
        while (w0 && (w0->kind != W_FOLLOW || w0->service != ev->service))
                w0 = w0->next;
        if (!w0)
                return;
        format_ts(head, sizeof(head), er_realtime_ms());
        n = (int)strlen(head);
        snprintf(head + n, sizeof(head) - (size_t)n, " %c ", ev->stream == ER_STREAM_STDERR ? 'E' : 'O');
        for (struct waiter *w = rt->waiters, *next; w; w = next) {
                next = w->next;
                if (w->kind != W_FOLLOW || w->service != ev->service)
                        continue;
                struct er_ctl_stream *s = w->stream;
                /* A client that does not read is dropped (the stream is
                 * freed by the failing write): forget it first. */
                waiter_unlink(w);
                if (er_ctl_stream_write(s, head, strlen(head)) < 0 ||
                    er_ctl_stream_write(s, ev->line, ev->line_len) < 0 ||
                    er_ctl_stream_write(s, "\n", 1) < 0) {
                        free(w);
                        continue;
                }
                w->next = rt->waiters;
                rt->waiters = w;
        }
}

struct tail_ctx {
        struct er_ctl_stream *s;
        int err;
};

static void tail_line(void *ud, const char *line, size_t len)
{
        struct tail_ctx *t = ud;
        if (t->err)
                return;
        if ((t->err = er_ctl_stream_write(t->s, line, len)) == 0)
                t->err = er_ctl_stream_write(t->s, "\n", 1);
}

static bool query_get(const char *query, const char *key, char *buf, size_t len)
{
        size_t kl = strlen(key);
        for (const char *p = query; p && *p;) {
                const char *end = strchr(p, '&');
                size_t pl = end ? (size_t)(end - p) : strlen(p);
                if (pl > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
                        snprintf(buf, len, "%.*s", (int)(pl - kl - 1), p + kl + 1);
                        return true;
                }
                if (pl == kl && strncmp(p, key, kl) == 0) {
                        snprintf(buf, len, "1");
                        return true;
                }
                p = end ? end + 1 : NULL;
        }
        return false;
}

static int handle_logs(struct er_routes *rt, size_t idx, const char *query, struct er_ctl_resp *resp)
{
        char v[32];
        size_t n = SIZE_MAX;
        bool follow = false;
        struct waiter *w;
        struct tail_ctx t;
        int r;

        if (query_get(query, "tail", v, sizeof(v))) {
                char *end;
                unsigned long long x = strtoull(v, &end, 10);
                if (!*v || *end || v[0] == '-')
                        return er_ctl_resp_error(resp, 400, "tail must be a number of lines, not '%s'", v);
                n = (size_t)x;
        }
        if (query_get(query, "follow", v, sizeof(v)))
                follow = strcmp(v, "0") != 0;
        w = waiter_add(rt, resp, W_FOLLOW, idx, "text/plain; charset=utf-8");
        if (!w)
                return -ENOMEM;
        t.s = w->stream;
        t.err = 0;
        waiter_unlink(w); /* not a follower while the tail is written */
        if (n > 0) {
                r = er_log_tail(rt->log_fd, rt->config->services[idx].name, n, tail_line, &t);
                if (t.err) { /* the stream is gone, freed by the failing write */
                        free(w);
                        return 0;
                }
                (void)r; /* -ENOENT: nothing logged yet */
        }
        if (!follow) {
                free(w);
                er_ctl_stream_end(t.s);
                return 0;
        }
        w->next = rt->waiters;
        rt->waiters = w;
        return 0;
}

/* --- service operations ----------------------------------------------------- */

static bool settled(struct er_routes *rt, struct waiter *w)
{
        enum er_svc_state st = er_sched_state(rt->sched, w->service);
        if (w->kind == W_STOP)
                return st == ER_SVC_STOPPED || st == ER_SVC_FAILED || st == ER_SVC_EXITED ||
                       st == ER_SVC_PENDING;
        return w->seen_start && (st == ER_SVC_READY || st == ER_SVC_FAILED ||
                                 st == ER_SVC_EXITED || st == ER_SVC_STOPPED);
}

void er_routes_on_state(struct er_routes *rt, const struct er_sched_event *ev)
{
        for (struct waiter *w = rt->waiters, *next; w; w = next) {
                next = w->next;
                if (w->kind == W_START && w->service == ev->service && ev->state == ER_SVC_STARTING)
                        w->seen_start = true;
                if ((w->kind == W_STOP || w->kind == W_START) && settled(rt, w)) {
                        json_t *j = service_json(rt, w->service);
                        char *s = json_dumps(j, JSON_COMPACT);
                        json_decref(j);
                        waiter_finish(w, s ? s : "{}");
                        free(s);
                }
        }
}

static int handle_op(struct er_routes *rt, size_t idx, const char *op, const char *query,
                     struct er_ctl_resp *resp)
{
        char why[200] = "", v[8];
        bool wait = !(query_get(query, "wait", v, sizeof(v)) && strcmp(v, "0") == 0);
        int r, kind;

        if (rt->down_requested)
                return er_ctl_resp_error(resp, 409, "the environment is going down");
        if (strcmp(op, "stop") == 0) {
                r = er_sched_stop_service(rt->sched, idx);
                kind = W_STOP;
                if (r == -EALREADY)
                        r = 0; /* stopping what is not running: already where asked */
        } else if (strcmp(op, "start") == 0) {
                r = er_sched_start_service(rt->sched, idx, why, sizeof(why));
                kind = W_START;
                if (r == -EBUSY)
                        return er_ctl_resp_error(resp, 409, "'%s' is already running (use restart)",
                                                 rt->config->services[idx].name);
        } else {
                r = er_sched_restart_service(rt->sched, idx, why, sizeof(why));
                kind = W_START;
        }
        if (r == -EAGAIN)
                return er_ctl_resp_error(resp, 409, "cannot start '%s': %s",
                                         rt->config->services[idx].name, why);
        if (r == -ESHUTDOWN)
                return er_ctl_resp_error(resp, 409, "the environment is going down");
        if (r < 0)
                return er_ctl_resp_error(resp, 500, "%s '%s': %s", op,
                                         rt->config->services[idx].name, strerror(-r));
        struct waiter probe = {.rt = rt, .service = idx, .kind = kind};
        enum er_svc_state st = er_sched_state(rt->sched, idx);
        /* A restart passes through stopped on its way up: answer once the
         * new run settles, not on the way. */
        probe.seen_start = kind == W_START && st != ER_SVC_STOPPING && st != ER_SVC_STOPPED;
        if (!wait || settled(rt, &probe))
                return er_ctl_resp_json(resp, 200, service_json(rt, idx));
        struct waiter *w = waiter_add(rt, resp, kind, idx, NULL);
        if (!w)
                return -ENOMEM;
        w->seen_start = probe.seen_start;
        return 0;
}

/* --- up SERVICE... on the running environment ------------------------------ */

/* services=a,b (none: every service) into only; 0, 1 when it answered an
 * error, or -ENOMEM. */
static int up_selection(struct er_routes *rt, const char *query, bool *only,
                        struct er_ctl_resp *resp)
{
        char names[4096];
        size_t n = rt->config->n_services;

        if (!query_get(query, "services", names, sizeof(names)) || !*names) {
                for (size_t i = 0; i < n; i++)
                        only[i] = true;
                return 0;
        }
        for (char *name = names, *end; name; name = end) {
                size_t i;
                if ((end = strchr(name, ',')))
                        *end++ = '\0';
                for (i = 0; i < n && strcmp(rt->config->services[i].name, name); i++)
                        ;
                if (i == n) {
                        int r = er_ctl_resp_error(resp, 409,
                                                  "no service '%s' in the configuration '%s' was "
                                                  "started with: run `envrun down` first to use "
                                                  "the file as it is now",
                                                  name, rt->config->project);
                        return r < 0 ? r : 1;
                }
                only[i] = true;
        }
        return 0;
}

static void up_answer(struct waiter *w, bool already)
{
        json_t *j = status_json(w->rt);
        char *body;
        json_object_set_new(j, "already_up", json_boolean(already));
        body = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        waiter_finish(w, body ? body : "{}");
        free(body);
}

static int handle_up(struct er_routes *rt, const char *query, struct er_ctl_resp *resp)
{
        bool *only = calloc(rt->config->n_services + 1, sizeof(*only));
        size_t todo = 0;
        int r;

        if (!only)
                return -ENOMEM;
        if (rt->down_requested) {
                free(only);
                return er_ctl_resp_error(resp, 409, "the environment is going down");
        }
        if ((r = up_selection(rt, query, only, resp)) != 0) {
                free(only);
                return r < 0 ? 0 : r;
        }
        r = er_sched_up_more(rt->sched, only, &todo);
        free(only);
        if (r == -ESHUTDOWN)
                return er_ctl_resp_error(resp, 409, "the environment is going down");
        if (r < 0)
                return r;
        struct waiter *w = waiter_add(rt, resp, W_UP, SIZE_MAX, NULL);
        if (!w)
                return -ENOMEM;
        if (!todo)
                up_answer(w, true);
        return 0;
}

void er_routes_after_batch(struct er_routes *rt)
{
        if (!er_sched_up_done(rt->sched))
                return;
        for (struct waiter *w = rt->waiters, *next; w; w = next) {
                next = w->next;
                if (w->kind == W_UP)
                        up_answer(w, false);
        }
}

/* --- the request router ------------------------------------------------------ */

static bool find_service(struct er_routes *rt, const char *name, size_t len, size_t *ret)
{
        for (size_t i = 0; i < rt->config->n_services; i++)
                if (strlen(rt->config->services[i].name) == len &&
                    memcmp(rt->config->services[i].name, name, len) == 0) {
                        *ret = i;
                        return true;
                }
        return false;
}

int er_routes_handle(void *ud, struct er_ctl_req *req, struct er_ctl_resp *resp)
{
        struct er_routes *rt = ud;
        const char *p = req->path;
        bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;

        if (strcmp(p, "/v1/status") == 0) {
                if (!get)
                        return er_ctl_resp_error(resp, 405, "use GET for %s", p);
                return er_ctl_resp_json(resp, 200, status_json(rt));
        }
        if (strcmp(p, "/v1/environment") == 0) {
                char v[16];
                struct waiter *w;
                if (strcmp(req->method, "DELETE") != 0)
                        return er_ctl_resp_error(resp, 405, "use DELETE for %s", p);
                w = waiter_add(rt, resp, W_DOWN, SIZE_MAX, NULL);
                if (!w)
                        return -ENOMEM;
                if (query_get(req->query, "text", v, sizeof(v))) {
                        w->text = strcmp(v, "0") != 0;
                        w->color = strcmp(v, "color") == 0;
                }
                if (query_get(req->query, "keep", v, sizeof(v)) && strcmp(v, "0") != 0)
                        rt->keep = true;
                rt->down_requested = true;
                return 0;
        }
        if (strcmp(p, "/v1/up") == 0) {
                if (!post)
                        return er_ctl_resp_error(resp, 405, "use POST for %s", p);
                return handle_up(rt, req->query, resp);
        }
        if (strncmp(p, "/v1/services/", 13) == 0) {
                const char *name = p + 13, *slash = strchr(name, '/');
                size_t idx;
                if (!slash)
                        return er_ctl_resp_error(resp, 404, "no such resource: %s", p);
                if (!find_service(rt, name, (size_t)(slash - name), &idx))
                        return er_ctl_resp_error(resp, 404, "no service '%.*s'", (int)(slash - name),
                                                 name);
                if (strcmp(slash, "/logs") == 0) {
                        if (!get)
                                return er_ctl_resp_error(resp, 405, "use GET for %s", p);
                        return handle_logs(rt, idx, req->query, resp);
                }
                if (strcmp(slash, "/stop") == 0 || strcmp(slash, "/start") == 0 ||
                    strcmp(slash, "/restart") == 0) {
                        if (!post)
                                return er_ctl_resp_error(resp, 405, "use POST for %s", p);
                        return handle_op(rt, idx, slash + 1, req->query, resp);
                }
        }
        return er_ctl_resp_error(resp, 404, "no such resource: %s", p);
}

/* The report as the DELETE answer: JSON, or {"report": ..., "text": ...}. */
void er_routes_answer_down(struct er_routes *rt, int exit_status)
{
        struct er_report rep;
        char *json = NULL, *text = NULL;
        size_t len;

        if (er_sched_report(rt->sched, &rep) < 0)
                return;
        rep.exit_status = exit_status;
        rep.ok = exit_status == 0;
        er_report_json(&rep, &json, &len);
        for (struct waiter *w = rt->waiters, *next; w; w = next) {
                next = w->next;
                if (w->kind != W_DOWN)
                        continue;
                if (!w->text) {
                        waiter_finish(w, json ? json : "{}");
                        continue;
                }
                free(text);
                text = NULL;
                er_report_text(&rep, w->color, &text, &len);
                json_t *j = json_pack("{s:o, s:s}", "report",
                                      json ? json_loads(json, 0, NULL) : json_object(), "text",
                                      text ? text : "");
                char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
                json_decref(j);
                waiter_finish(w, body ? body : "{}");
                free(body);
        }
        free(text);
        free(json);
        free(rep.ports);
        er_report_fini(&rep);
        free(rep.services);
        /* Followers: their logs end with the environment. */
        while (rt->waiters) {
                struct waiter *w = rt->waiters;
                struct er_ctl_stream *s = w->stream;
                waiter_unlink(w);
                free(w);
                er_ctl_stream_end(s);
        }
}

void er_routes_fini(struct er_routes *rt)
{
        while (rt->waiters) {
                struct waiter *w = rt->waiters;
                rt->waiters = w->next;
                free(w);
        }
}
