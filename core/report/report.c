#include "report/report.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report/report_priv.h"
#include "base/units.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A service may write one enormous line (minified JSON, a progress bar
 * without newlines); twenty of them must not make the report huge. */
#define TAIL_LINE_MAX 2048
#define TAIL_CUT_MARK " [...]"

/* Columns of "how it ended" are aligned up to this width; longer messages
 * just push the rest of their line right. */
#define HOW_COLUMN_MAX 40

/* Failed services listed by name in the summary line. */
#define SUMMARY_NAMES_MAX 5

#define ANSI_GREEN "\033[32m"
#define ANSI_RED "\033[31m"
#define ANSI_RESET "\033[0m"

#if JSON_INTEGER_IS_LONG_LONG
#define JSON_INT_MAX LLONG_MAX
#else
#define JSON_INT_MAX LONG_MAX
#endif

static const char *const class_names[] = {
    [ER_OK] = "ok",
    [ER_PROCESS_EXITED_WITH_ERROR] = "ProcessExitedWithError",
    [ER_PROCESS_FINISHED_WITH_ERROR] = "ProcessFinishedWithError",
    [ER_TIMEOUT_EXPIRED] = "TimeoutExpired",
    [ER_ALREADY_RUNNING] = "AlreadyRunning",
    [ER_START_ERROR] = "StartError",
    [ER_LIMIT_EXCEEDED] = "LimitExceeded",
    [ER_DEPENDENCY_FAILED] = "DependencyFailed",
};

const char *er_error_class_name(enum er_error_class c)
{
        if ((unsigned)c >= ARRAY_SIZE(class_names))
                return "UnknownError";
        return class_names[c];
}

void er_report_fini(struct er_report *r)
{
        if (!r || !r->services)
                return;
        for (size_t i = 0; i < r->n_services; i++) {
                struct er_report_service *s = &r->services[i];
                for (size_t j = 0; j < s->n_tail && j < ER_REPORT_TAIL_LINES; j++) {
                        free(s->tail[j]);
                        s->tail[j] = NULL;
                }
                s->n_tail = 0;
        }
}

/* Copies line[0..len) to a new string: NUL bytes (which would end it early)
 * become U+FFFD, and cut says to append TAIL_CUT_MARK. */
static char *tail_copy(const char *line, size_t len, bool cut)
{
        size_t nul = 0, size, o = 0;
        char *copy;

        for (size_t i = 0; i < len; i++)
                nul += line[i] == '\0';
        size = len + 2 * nul + (cut ? sizeof(TAIL_CUT_MARK) : 1);
        copy = malloc(size);
        if (!copy)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (line[i] == '\0') {
                        memcpy(copy + o, ER_RP_REPLACEMENT, 3);
                        o += 3;
                } else {
                        copy[o++] = line[i];
                }
        }
        if (cut) {
                memcpy(copy + o, TAIL_CUT_MARK, sizeof(TAIL_CUT_MARK));
        } else {
                copy[o] = '\0';
        }
        return copy;
}

int er_report_tail_push(struct er_report_service *s, const char *line, size_t len)
{
        bool cut = false;
        char *copy;

        /* A line as the reader split it may still carry its terminator. */
        if (len > 0 && line[len - 1] == '\n')
                len--;
        if (len > 0 && line[len - 1] == '\r')
                len--;
        if (len > TAIL_LINE_MAX) {
                /* Cut at a character boundary: back over at most three
                 * continuation bytes (more means it is not UTF-8 anyway). */
                len = TAIL_LINE_MAX;
                for (int k = 0; k < 3 && len > 0 && er_rp_utf8_cont((unsigned char)line[len]); k++)
                        len--;
                cut = true;
        }
        copy = tail_copy(line, len, cut);
        if (!copy)
                return -ENOMEM;
        if (s->n_tail >= ER_REPORT_TAIL_LINES) {
                free(s->tail[0]);
                memmove(&s->tail[0], &s->tail[1], (ER_REPORT_TAIL_LINES - 1) * sizeof(s->tail[0]));
                s->n_tail = ER_REPORT_TAIL_LINES - 1;
        }
        s->tail[s->n_tail++] = copy;
        return 0;
}

static void bpad(struct er_buf *b, size_t n)
{
        while (n-- > 0)
                er_rp_put(b, " ", 1);
}

static size_t put_clean_str(struct er_buf *b, const char *s, enum er_rp_clean mode)
{
        return s ? er_rp_put_clean(b, s, strlen(s), mode) : 0;
}

/* Messages are fixed arrays the scheduler fills; never read past one. */
#define MSG_LEN(m) strnlen((m), sizeof(m))

/* ---- shared formatting ---- */

/* "512B", "8.1K", "30.0M", "1.5G" */
static void fmt_bytes(uint64_t bytes, char *out, size_t len)
{
        static const char units[] = "KMGTPE";
        double v = (double)bytes;
        size_t u = 0;

        if (bytes < 1024) {
                snprintf(out, len, "%" PRIu64 "B", bytes);
                return;
        }
        v /= 1024;
        while (v >= 1023.95 && u + 1 < sizeof(units) - 1) {
                v /= 1024;
                u++;
        }
        snprintf(out, len, "%.1f%c", v, units[u]);
}

static void fmt_signal(int sig, char *out, size_t len)
{
        er_signal_format(sig, out, len);
}

/* How a service ended when the scheduler wrote no message. */
static void service_status(const struct er_report_service *s, char *out, size_t len)
{
        char sig[32];

        if (s->pid <= 0 && !er_rp_has_time(s->started_ms)) {
                snprintf(out, len, "not started");
        } else if (s->exit_code >= 0) {
                snprintf(out, len, "exited %d", s->exit_code);
        } else if (s->signal > 0) {
                fmt_signal(s->signal, sig, sizeof(sig));
                snprintf(out, len, "killed by %s", sig);
        } else if (er_rp_has_time(s->stopped_ms)) {
                snprintf(out, len, "stopped");
        } else {
                snprintf(out, len, "running");
        }
}

static void test_status(const struct er_report_test *t, char *out, size_t len)
{
        char sig[32];

        if (t->not_run) {
                snprintf(out, len, "not run");
        } else if (t->exit_code >= 0) {
                snprintf(out, len, "exited %d", t->exit_code);
        } else if (t->signal > 0) {
                fmt_signal(t->signal, sig, sizeof(sig));
                snprintf(out, len, "killed by %s", sig);
        } else {
                snprintf(out, len, "%s", t->timed_out ? "timed out" : "ended");
        }
}
static bool service_has_run(const struct er_report_service *s)
{
        return s->pid > 0 || er_rp_has_time(s->started_ms);
}

/* Milliseconds from spawn to stop (or to the end of the report when it
 * still runs), or ER_REPORT_NO_TIME. */
static uint64_t service_uptime(const struct er_report *r, const struct er_report_service *s)
{
        uint64_t end = er_rp_has_time(s->stopped_ms) ? s->stopped_ms : r->total_ms;

        if (!er_rp_has_time(s->started_ms) || !er_rp_has_time(end) || end < s->started_ms)
                return ER_REPORT_NO_TIME;
        return end - s->started_ms;
}

/* ---- text ---- */

struct layout {
        size_t name_w, res_w, how_w;
        bool color;
};

static const char *color_of(enum er_error_class c, const struct layout *l)
{
        if (!l->color)
                return NULL;
        return c == ER_OK ? ANSI_GREEN : ANSI_RED;
}

static void put_colored(struct er_buf *b, const char *s, const char *color)
{
        if (color)
                er_rp_puts(b, color);
        er_rp_puts(b, s);
        if (color)
                er_rp_puts(b, ANSI_RESET);
}

/* name, result and gaps: "api      ProcessExitedWithError   " */
static void put_head(struct er_buf *b, const struct layout *l, const char *name,
                     const char *result, const char *color)
{
        size_t w = put_clean_str(b, name ? name : "?", ER_RP_CLEAN_TEXT);

        bpad(b, l->name_w - w + 3);
        put_colored(b, result, color);
        bpad(b, l->res_w - strlen(result) + 3);
}

/* How it ended: the scheduler's message, else what the numbers say. */
static size_t service_how(const struct er_report_service *s, struct er_buf *b,
                          enum er_rp_clean mode)
{
        char status[64];

        if (s->message[0])
                return er_rp_put_clean(b, s->message, MSG_LEN(s->message), mode);
        service_status(s, status, sizeof(status));
        return put_clean_str(b, status, mode);
}

static void put_stats(struct er_buf *b, const struct er_report *r,
                      const struct er_report_service *s)
{
        char t[32];
        uint64_t up = service_uptime(r, s);

        if (er_rp_has_time(s->ready_ms) && er_rp_has_time(s->started_ms) &&
            s->ready_ms >= s->started_ms) {
                er_rp_fmt_ms(s->ready_ms - s->started_ms, t, sizeof(t));
                er_rp_printf(b, "ready %s", t);
        } else {
                er_rp_puts(b, "ready -");
        }
        if (er_rp_has_time(up)) {
                er_rp_fmt_ms(up, t, sizeof(t));
                er_rp_printf(b, "  %s %s", s->job ? "ran" : "up", t);
        } else {
                er_rp_printf(b, "  %s -", s->job ? "ran" : "up");
        }
        er_rp_fmt_ms(s->cpu_ms, t, sizeof(t));
        er_rp_printf(b, "  cpu %s", t);
        if (s->memory_peak_bytes) {
                fmt_bytes(s->memory_peak_bytes, t, sizeof(t));
                er_rp_printf(b, "  mem %s%s", s->memory_peak_is_tree ? "" : "~", t);
        } else {
                er_rp_puts(b, "  mem -");
        }
        if (s->restarts)
                er_rp_printf(b, "  restarts %u", s->restarts);
        if (s->log_dropped_bytes) {
                fmt_bytes(s->log_dropped_bytes, t, sizeof(t));
                er_rp_printf(b, "  log dropped %s", t);
        }
}

static size_t max_sz(size_t a, size_t b)
{
        return a > b ? a : b;
}

/* The result column: the error class, or "not started". */
static const char *result_name(const struct er_report_service *s)
{
        return s->not_started ? "not started" : er_error_class_name(s->error);
}

static void text_layout(const struct er_report *r, bool color, struct layout *l)
{
        *l = (struct layout){.color = color};
        for (size_t i = 0; i < r->n_services; i++) {
                const struct er_report_service *s = &r->services[i];
                size_t how;

                l->name_w = max_sz(l->name_w,
                                   put_clean_str(NULL, s->name ? s->name : "?", ER_RP_CLEAN_TEXT));
                l->res_w = max_sz(l->res_w, strlen(result_name(s)));
                how = service_how(s, NULL, ER_RP_CLEAN_TEXT);
                if (service_has_run(s) && how <= HOW_COLUMN_MAX)
                        l->how_w = max_sz(l->how_w, how);
        }
        if (r->test.present) {
                l->name_w = max_sz(l->name_w, strlen("test"));
                l->res_w =
                    max_sz(l->res_w, r->test.not_run
                                         ? strlen("not run")
                                         : strlen(er_error_class_name(er_rp_test_class(&r->test))));
        }
}

static void put_service(struct er_buf *b, const struct layout *l, const struct er_report *r,
                        const struct er_report_service *s)
{
        size_t w;

        put_head(b, l, s->name, result_name(s),
                 color_of(s->not_started ? ER_DEPENDENCY_FAILED : s->error, l));
        w = service_how(s, b, ER_RP_CLEAN_TEXT);
        if (service_has_run(s)) {
                bpad(b, w < l->how_w ? l->how_w - w + 2 : 2);
                put_stats(b, r, s);
        }
        er_rp_puts(b, "\n");
}

static void put_tails(struct er_buf *b, const struct er_report *r)
{
        for (size_t i = 0; i < r->n_services; i++) {
                const struct er_report_service *s = &r->services[i];

                if (s->error == ER_OK || s->n_tail == 0)
                        continue;
                er_rp_puts(b, "--- last lines of ");
                put_clean_str(b, s->name ? s->name : "?", ER_RP_CLEAN_TEXT);
                er_rp_puts(b, " ---\n");
                for (size_t j = 0; j < s->n_tail && j < ER_REPORT_TAIL_LINES; j++) {
                        er_rp_puts(b, "  ");
                        put_clean_str(b, s->tail[j], ER_RP_CLEAN_TEXT);
                        er_rp_puts(b, "\n");
                }
                if (s->after_failure)
                        er_rp_printf(b, "  (%u more line%s after the failure, from its stop: "
                                        "in its log)\n",
                                     s->after_failure, s->after_failure == 1 ? "" : "s");
        }
}

/* The command, cleaned for mode; "-" when there is none. */
static void put_clean_command(struct er_buf *b, char *const *argv, enum er_rp_clean mode)
{
        struct er_buf cmd = {0};

        er_rp_put_command(&cmd, argv);
        if (cmd.oom)
                b->oom = true;
        else
                er_rp_put_clean(b, cmd.p, cmd.len, mode);
        free(cmd.p);
}

/* "exited 0 in 5.1s", or the scheduler's message */
static void put_test_how(struct er_buf *b, const struct er_report_test *t, enum er_rp_clean mode)
{
        char status[64], d[32];

        if (t->not_run) {
                put_clean_str(b, "not run (the environment failed)", mode);
        } else if (t->message[0]) {
                er_rp_put_clean(b, t->message, MSG_LEN(t->message), mode);
        } else {
                test_status(t, status, sizeof(status));
                er_rp_fmt_ms(t->duration_ms, d, sizeof(d));
                er_rp_printf(b, "%s in %s", status, d);
        }
}

static void put_test(struct er_buf *b, const struct layout *l, const struct er_report_test *t)
{
        enum er_error_class c = er_rp_test_class(t);

        if (t->not_run)
                put_head(b, l, "test", "not run", NULL);
        else
                put_head(b, l, "test", er_error_class_name(c), color_of(c, l));
        put_clean_command(b, t->argv, ER_RP_CLEAN_TEXT);
        er_rp_puts(b, "  ");
        if (t->not_run)
                er_rp_puts(b, "(the environment failed)");
        else
                put_test_how(b, t, ER_RP_CLEAN_TEXT);
        er_rp_puts(b, "\n");
}

static void put_notes(struct er_buf *b, const struct er_report *r)
{
        bool approx = false;

        for (size_t i = 0; i < r->n_services; i++) {
                const struct er_report_service *s = &r->services[i];
                approx |= service_has_run(s) && s->memory_peak_bytes && !s->memory_peak_is_tree;
        }
        if (approx)
                er_rp_puts(b, "~ mem: peak of the largest single process, not of the whole tree\n");
        if (r->containment) {
                er_rp_puts(b, "containment: ");
                put_clean_str(b, r->containment, ER_RP_CLEAN_TEXT);
                /* Weaker than a cgroup: say why, and what it means. */
                if (strcmp(r->containment, "cgroup2") != 0) {
                        const char *why = r->containment_reason ? r->containment_reason : "";
                        size_t k = strlen(r->containment);
                        if (!strncmp(why, r->containment, k) && !strncmp(why + k, ": ", 2))
                                why += k + 2;
                        if (*why) {
                                er_rp_puts(b, " (");
                                put_clean_str(b, why, ER_RP_CLEAN_TEXT);
                                er_rp_puts(b, ")");
                        }
                        er_rp_puts(b, ": no cgroup, so no limit can be enforced and the "
                                      "peak memory is a single process's");
                }
                er_rp_puts(b, "\n");
        }
        for (size_t i = 0; i < r->n_services; i++) {
                const struct er_report_service *s = &r->services[i];
                if (!s->limits_not_enforced[0])
                        continue;
                er_rp_puts(b, "limits not enforced for ");
                put_clean_str(b, s->name, ER_RP_CLEAN_TEXT);
                er_rp_puts(b, ": ");
                put_clean_str(b, s->limits_not_enforced, ER_RP_CLEAN_TEXT);
                er_rp_puts(b, "\n");
        }
        for (size_t i = 0; i < r->n_services; i++) {
                const struct er_report_service *s = &r->services[i];
                if (!s->user_not_applied[0])
                        continue;
                put_clean_str(b, s->user_not_applied, ER_RP_CLEAN_TEXT);
                er_rp_puts(b, "\n");
        }
}

/* Ended by a signal with every service stopped cleanly and no test run,
 * or one that passed: nothing failed. */
static bool stopped_cleanly(const struct er_report *r)
{
        /* A test that ran and passed, then a signal in the teardown: the
         * environment was stopped by it, nothing failed. */
        if (!r->interrupted ||
            (r->test.present && !r->test.not_run && er_rp_test_class(&r->test) != ER_OK))
                return false;
        for (size_t i = 0; i < r->n_services; i++)
                if (r->services[i].error != ER_OK)
                        return false;
        return true;
}

static void put_summary(struct er_buf *b, const struct layout *l, const struct er_report *r)
{
        const struct er_report_test *t = &r->test;
        size_t listed = 0, more = 0, not_started = 0;
        char status[64];

        er_rp_puts(b, "envrun: ");
        if (r->ok) {
                put_colored(b, "ok", color_of(ER_OK, l));
                er_rp_printf(b, " (%zu service%s", r->n_services, r->n_services == 1 ? "" : "s");
                if (t->present && er_rp_test_class(t) == ER_OK) {
                        er_rp_puts(b, ", test passed");
                } else if (t->present) {
                        test_status(t, status, sizeof(status));
                        er_rp_printf(b, ", test %s", status);
                }
                er_rp_puts(b, ")\n");
                return;
        }
        if (stopped_cleanly(r)) {
                /* Ctrl-C on a foreground `up`: its normal end (issue 18). */
                char sig[32];
                er_signal_format(r->interrupted, sig, sizeof(sig));
                er_rp_printf(b, "stopped by %s (%zu service%s%s) (exit status %d)\n", sig,
                             r->n_services, r->n_services == 1 ? "" : "s",
                             !t->present ? "" : t->not_run ? ", test not run" : ", test passed",
                             r->exit_status);
                return;
        }
        put_colored(b, "failed", color_of(ER_PROCESS_EXITED_WITH_ERROR, l));
        for (size_t i = 0; i < r->n_services; i++) {
                const struct er_report_service *s = &r->services[i];

                if (s->not_started) {
                        not_started++;
                        continue;
                }
                if (s->error == ER_OK)
                        continue;
                if (s->error == ER_DEPENDENCY_FAILED) {
                        not_started++;
                } else if (listed < SUMMARY_NAMES_MAX) {
                        er_rp_puts(b, listed++ ? ", " : ": ");
                        put_clean_str(b, s->name ? s->name : "?", ER_RP_CLEAN_TEXT);
                        er_rp_printf(b, " %s", er_error_class_name(s->error));
                } else {
                        more++;
                }
        }
        if (more)
                er_rp_printf(b, ", %zu more failed", more);
        if (not_started)
                er_rp_printf(b, "%s%zu not started", listed ? ", " : ": ", not_started);
        if (t->present && er_rp_test_class(t) != ER_OK) {
                if (t->not_run)
                        snprintf(status, sizeof(status), "not run");
                else if (t->timed_out)
                        snprintf(status, sizeof(status), "timed out");
                else
                        test_status(t, status, sizeof(status));
                er_rp_printf(b, "%stest %s", listed || not_started ? ", " : ": ", status);
        }
        er_rp_printf(b, " (exit status %d)\n", r->exit_status);
}

int er_report_text(const struct er_report *r, bool color, char **ret, size_t *ret_len)
{
        struct er_buf b = {0};
        struct layout l;

        text_layout(r, color, &l);
        for (size_t i = 0; i < r->n_services; i++)
                put_service(&b, &l, r, &r->services[i]);
        put_tails(&b, r);
        if (r->test.present)
                put_test(&b, &l, &r->test);
        put_notes(&b, r);
        put_summary(&b, &l, r);
        return er_rp_finish(&b, ret, ret_len);
}

/* ---- JSON ---- */

/* A JSON string of s[0..n) (jansson refuses invalid UTF-8), or null for NULL. */
static json_t *jstrn(const char *s, size_t n)
{
        struct er_buf b = {0};
        json_t *v;

        if (!s)
                return json_null();
        er_rp_put_clean(&b, s, n, ER_RP_CLEAN_JSON);
        if (b.oom) {
                free(b.p);
                return NULL;
        }
        v = json_stringn(b.p ? b.p : "", b.len);
        free(b.p);
        return v;
}

static json_t *jstr(const char *s)
{
        return jstrn(s, s ? strlen(s) : 0);
}

static json_t *juint(uint64_t v)
{
        return json_integer(v > (uint64_t)JSON_INT_MAX ? JSON_INT_MAX : (json_int_t)v);
}

static json_t *jtime(uint64_t ms)
{
        return er_rp_has_time(ms) ? juint(ms) : json_null();
}

static json_t *jexit(int code)
{
        return code >= 0 ? json_integer(code) : json_null();
}

static json_t *jsignal(int sig)
{
        char name[32];

        if (sig <= 0)
                return json_null();
        fmt_signal(sig, name, sizeof(name));
        return json_string(name);
}

static json_t *jclass(enum er_error_class c)
{
        return json_string(er_error_class_name(c));
}

/* Steals v (NULL meaning it could not be made); 0 or -ENOMEM. */
static int add(json_t *o, const char *key, json_t *v)
{
        return v && json_object_set_new(o, key, v) == 0 ? 0 : -ENOMEM;
}

static int append(json_t *a, json_t *v)
{
        return v && json_array_append_new(a, v) == 0 ? 0 : -ENOMEM;
}

static json_t *service_json(const struct er_report_service *s)
{
        json_t *o = json_object(), *tail;

        if (!o)
                return NULL;
        /* pid 0 would mean "my process group" to whoever kills it: null. */
        if (add(o, "name", jstr(s->name)) ||
            add(o, "result", s->not_started ? json_string("not_started") : jclass(s->error)) ||
            add(o, "error", s->error == ER_OK ? json_null() : jclass(s->error)) ||
            add(o, "pid", s->pid > 0 ? json_integer(s->pid) : json_null()) ||
            add(o, "exit_code", jexit(s->exit_code)) || add(o, "signal", jsignal(s->signal)) ||
            add(o, "killed", json_boolean(s->killed)) ||
            add(o, "started_ms", jtime(s->started_ms)) || add(o, "ready_ms", jtime(s->ready_ms)) ||
            add(o, "stopped_ms", jtime(s->stopped_ms)) ||
            add(o, "restarts", json_integer(s->restarts)) || add(o, "cpu_ms", juint(s->cpu_ms)) ||
            add(o, "memory_peak_bytes",
                s->memory_peak_bytes ? juint(s->memory_peak_bytes) : json_null()) ||
            add(o, "memory_peak_scope",
                !s->memory_peak_bytes    ? json_null()
                : s->memory_peak_is_tree ? json_string("tree")
                                         : json_string("largest_process")) ||
            add(o, "log_dropped_bytes", juint(s->log_dropped_bytes)) ||
            add(o, "limits_not_enforced",
                s->limits_not_enforced[0]
                    ? jstrn(s->limits_not_enforced, MSG_LEN(s->limits_not_enforced))
                    : json_null()) ||
            add(o, "user_not_applied",
                s->user_not_applied[0] ? jstrn(s->user_not_applied, MSG_LEN(s->user_not_applied))
                                       : json_null()) ||
            add(o, "message", jstrn(s->message, MSG_LEN(s->message))))
                goto fail;
        if (s->error != ER_OK) {
                if (add(o, "output_after_failure", json_integer(s->after_failure)))
                        goto fail;
                tail = json_array();
                if (add(o, "output_tail", tail))
                        goto fail;
                for (size_t j = 0; j < s->n_tail && j < ER_REPORT_TAIL_LINES; j++)
                        if (append(tail, jstr(s->tail[j])))
                                goto fail;
        }
        return o;
fail:
        json_decref(o);
        return NULL;
}

static json_t *test_json(const struct er_report_test *t)
{
        json_t *o, *argv;

        if (!t->present)
                return json_null();
        o = json_object();
        if (!o)
                return NULL;
        argv = json_array();
        if (add(o, "argv", argv))
                goto fail;
        for (size_t i = 0; t->argv && t->argv[i]; i++)
                if (append(argv, jstr(t->argv[i])))
                        goto fail;
        if (add(o, "exit_code", t->not_run ? json_null() : jexit(t->exit_code)) ||
            add(o, "signal", t->not_run ? json_null() : jsignal(t->signal)) ||
            add(o, "duration_ms", t->not_run ? json_null() : juint(t->duration_ms)) ||
            add(o, "result", jclass(er_rp_test_class(t))) ||
            add(o, "timed_out", json_boolean(t->timed_out)))
                goto fail;
        return o;
fail:
        json_decref(o);
        return NULL;
}

static json_t *ports_json(const struct er_report *r)
{
        json_t *o = json_object();

        if (!o)
                return NULL;
        for (size_t i = 0; i < r->n_ports; i++) {
                struct er_buf key = {0};
                int err;

                if (!r->ports[i].name)
                        continue;
                put_clean_str(&key, r->ports[i].name, ER_RP_CLEAN_JSON);
                err =
                    key.oom ? -ENOMEM : add(o, key.p ? key.p : "", json_integer(r->ports[i].port));
                free(key.p);
                if (err)
                        goto fail;
        }
        return o;
fail:
        json_decref(o);
        return NULL;
}

static json_t *report_json(const struct er_report *r)
{
        json_t *o = json_object(), *services;

        if (!o)
                return NULL;
        if (add(o, "project", jstr(r->project)) ||
            add(o, "result", json_string(r->ok ? "ok" : "failed")) ||
            add(o, "exit_status", json_integer(r->exit_status)) ||
            add(o, "containment", jstr(r->containment)) ||
            add(o, "containment_reason",
                r->containment_reason ? jstr(r->containment_reason) : json_null()) ||
            add(o, "limits_enforced", json_boolean(r->limits_enforced)) ||
            add(o, "ports", ports_json(r)) || add(o, "test", test_json(&r->test)))
                goto fail;
        services = json_array();
        if (add(o, "services", services))
                goto fail;
        for (size_t i = 0; i < r->n_services; i++)
                if (append(services, service_json(&r->services[i])))
                        goto fail;
        if (add(o, "total_ms", jtime(r->total_ms)))
                goto fail;
        return o;
fail:
        json_decref(o);
        return NULL;
}

static int dump_cb(const char *s, size_t n, void *data)
{
        struct er_buf *b = data;

        er_rp_put(b, s, n);
        return b->oom ? -1 : 0;
}

int er_report_json(const struct er_report *r, char **ret, size_t *ret_len)
{
        struct er_buf b = {0};
        json_t *root = report_json(r);
        int err;

        if (!root)
                return -ENOMEM;
        err = json_dump_callback(root, dump_cb, &b, JSON_PRESERVE_ORDER | JSON_INDENT(2));
        json_decref(root);
        if (err)
                b.oom = true;
        er_rp_puts(&b, "\n");
        return er_rp_finish(&b, ret, ret_len);
}

/* ---- JUnit XML ---- */

static void put_xml_seconds(struct er_buf *b, uint64_t ms)
{
        if (!er_rp_has_time(ms))
                ms = 0;
        er_rp_printf(b, "%" PRIu64 ".%03" PRIu64, ms / 1000, ms % 1000);
}

static void put_property(struct er_buf *b, const char *name, const char *value)
{
        er_rp_printf(b, "      <property name=\"%s\" value=\"", name);
        put_clean_str(b, value, ER_RP_CLEAN_XML_ATTR);
        er_rp_puts(b, "\"/>\n");
}

static void put_suite_properties(struct er_buf *b, const struct er_report *r)
{
        char v[32];

        er_rp_puts(b, "    <properties>\n");
        put_property(b, "result", r->ok ? "ok" : "failed");
        snprintf(v, sizeof(v), "%d", r->exit_status);
        put_property(b, "exit_status", v);
        if (r->containment)
                put_property(b, "containment", r->containment);
        put_property(b, "limits_enforced", r->limits_enforced ? "true" : "false");
        er_rp_puts(b, "    </properties>\n");
}

/* Machine-readable usage as name: value lines; JUnit has no standard
 * per-testcase properties, but every CI shows system-out. */
static void put_service_out(struct er_buf *b, const struct er_report_service *s)
{
        er_rp_puts(b, "      <system-out>message: ");
        service_how(s, b, ER_RP_CLEAN_XML);
        er_rp_puts(b, "\n");
        if (s->pid > 0)
                er_rp_printf(b, "pid: %d\n", s->pid);
        if (er_rp_has_time(s->started_ms))
                er_rp_printf(b, "started_ms: %" PRIu64 "\n", s->started_ms);
        if (er_rp_has_time(s->ready_ms))
                er_rp_printf(b, "ready_ms: %" PRIu64 "\n", s->ready_ms);
        if (er_rp_has_time(s->stopped_ms))
                er_rp_printf(b, "stopped_ms: %" PRIu64 "\n", s->stopped_ms);
        if (service_has_run(s)) {
                er_rp_printf(b, "restarts: %u\ncpu_ms: %" PRIu64 "\n", s->restarts, s->cpu_ms);
                if (s->memory_peak_bytes)
                        er_rp_printf(
                            b, "memory_peak_bytes: %" PRIu64 " (%s)\n", s->memory_peak_bytes,
                            s->memory_peak_is_tree ? "whole tree" : "largest single process");
        }
        if (s->log_dropped_bytes)
                er_rp_printf(b, "log_dropped_bytes: %" PRIu64 "\n", s->log_dropped_bytes);
        er_rp_puts(b, "</system-out>\n");
}

static void put_testcase_open(struct er_buf *b, const struct er_report *r, const char *kind,
                              const char *name, char *const *argv, uint64_t ms)
{
        er_rp_puts(b, "    <testcase classname=\"envrun.");
        put_clean_str(b, r->project ? r->project : "", ER_RP_CLEAN_XML_ATTR);
        er_rp_printf(b, "\" name=\"%s ", kind);
        if (argv)
                put_clean_command(b, argv, ER_RP_CLEAN_XML_ATTR);
        else
                put_clean_str(b, name ? name : "?", ER_RP_CLEAN_XML_ATTR);
        er_rp_puts(b, "\" time=\"");
        put_xml_seconds(b, ms);
        er_rp_puts(b, "\">\n");
}

static void put_service_case(struct er_buf *b, const struct er_report *r,
                             const struct er_report_service *s)
{
        put_testcase_open(b, r, "service", s->name, NULL, service_uptime(r, s));
        if (s->not_started) {
                er_rp_puts(b, "      <skipped message=\"");
                put_clean_str(b, s->message, ER_RP_CLEAN_XML_ATTR);
                er_rp_puts(b, "\"/>\n");
        } else if (s->error != ER_OK) {
                er_rp_printf(b, "      <failure type=\"%s\" message=\"",
                             er_error_class_name(s->error));
                service_how(s, b, ER_RP_CLEAN_XML_ATTR);
                er_rp_puts(b, "\">");
                if (s->n_tail == 0)
                        service_how(s, b, ER_RP_CLEAN_XML);
                for (size_t j = 0; j < s->n_tail && j < ER_REPORT_TAIL_LINES; j++) {
                        put_clean_str(b, s->tail[j], ER_RP_CLEAN_XML);
                        er_rp_puts(b, "\n");
                }
                er_rp_puts(b, "</failure>\n");
        }
        put_service_out(b, s);
        er_rp_puts(b, "    </testcase>\n");
}

static void put_test_case(struct er_buf *b, const struct er_report *r)
{
        const struct er_report_test *t = &r->test;
        enum er_error_class c = er_rp_test_class(t);
        static char *const no_argv[] = {NULL};

        put_testcase_open(b, r, "test", NULL, t->argv ? t->argv : no_argv,
                          t->not_run ? 0 : t->duration_ms);
        if (t->not_run) {
                er_rp_puts(b, "      <skipped message=\"not run (the environment failed)\"/>\n");
        } else if (c != ER_OK) {
                char status[64];

                er_rp_printf(b, "      <failure type=\"%s\" message=\"", er_error_class_name(c));
                put_test_how(b, t, ER_RP_CLEAN_XML_ATTR);
                er_rp_puts(b, "\">");
                test_status(t, status, sizeof(status));
                er_rp_printf(b, "%s after %" PRIu64 " ms; envrun exit status %d", status,
                             t->duration_ms, r->exit_status);
                er_rp_puts(b, "</failure>\n");
        }
        er_rp_puts(b, "    </testcase>\n");
}

int er_report_junit(const struct er_report *r, char **ret, size_t *ret_len)
{
        struct er_buf b = {0};
        size_t tests = r->n_services, failures = 0, skipped = 0;

        for (size_t i = 0; i < r->n_services; i++) {
                failures += r->services[i].error != ER_OK;
                skipped += r->services[i].not_started;
        }
        if (r->test.present) {
                tests++;
                if (r->test.not_run)
                        skipped++;
                else
                        failures += er_rp_test_class(&r->test) != ER_OK;
        }
        er_rp_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        er_rp_printf(&b,
                     "<testsuites name=\"envrun\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
                     "skipped=\"%zu\" time=\"",
                     tests, failures, skipped);
        put_xml_seconds(&b, r->total_ms);
        er_rp_puts(&b, "\">\n  <testsuite name=\"envrun: ");
        put_clean_str(&b, r->project ? r->project : "", ER_RP_CLEAN_XML_ATTR);
        er_rp_printf(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"",
                     tests, failures, skipped);
        put_xml_seconds(&b, r->total_ms);
        er_rp_puts(&b, "\">\n");
        put_suite_properties(&b, r);
        for (size_t i = 0; i < r->n_services; i++)
                put_service_case(&b, r, &r->services[i]);
        if (r->test.present)
                put_test_case(&b, r);
        er_rp_puts(&b, "  </testsuite>\n</testsuites>\n");
        return er_rp_finish(&b, ret, ret_len);
}
