#include "timeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Geometry, in pixels.  The chart keeps one width whatever the run's
 * length: the axis adapts its step instead. */
#define MARGIN 16
#define TITLE_H 30
#define AXIS_H 18
#define ROW_H 24
#define BAR_H 14
#define CHART_W 720
#define GAP 12
#define DETAIL_W 480
#define LEGEND_H 26
#define CHAR_W 7 /* about one 12px sans-serif character */

/* Text is cut (with an ellipsis) past these many characters. */
#define NAME_CHARS_MAX 32
#define DETAIL_CHARS_MAX 72
#define TOOLTIP_CHARS_MAX 600
#define COMMAND_SHOWN_MAX 200

#define TICKS_MAX 10
/* Times past this (about 35 years) are clamped, which keeps the pixel
 * arithmetic below in 64 bits. */
#define MS_MAX (UINT64_C(1) << 40)

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */
#define ELLIPSIS "\xe2\x80\xa6"    /* U+2026 */
#define SEP " \xc2\xb7 "           /* " · " */

/* Colours: amber while starting, green once up, red shades for a failure
 * (its starting part lighter), blue for the test. */
static const char style[] = "text{font-family:sans-serif;font-size:12px;fill:#222}\n"
                            ".title{font-size:14px;font-weight:bold}\n"
                            ".tick{font-size:10px;fill:#666;text-anchor:middle}\n"
                            ".grid{stroke:#e2e2e2;stroke-width:1}\n"
                            ".axis{stroke:#999;stroke-width:1}\n"
                            ".marker{stroke:#4a78c2;stroke-width:1;stroke-dasharray:4 3}\n"
                            ".stripe{fill:#f5f5f5}\n"
                            ".bar.service.ok,.swatch.up{fill:#5cb85c}\n"
                            ".bar.service.failed,.bar.test.failed,.swatch.failed{fill:#d9534f}\n"
                            ".phase.starting,.swatch.starting{fill:#f0ad4e}\n"
                            ".row.failed .phase.starting{fill:#f2a6a4}\n"
                            ".bar.test.ok,.swatch.test{fill:#4a78c2}\n"
                            ".row.not-started .name{fill:#999}\n"
                            ".detail{fill:#444}\n"
                            ".row.failed .detail{fill:#c9302c}\n"
                            ".legend{fill:#444}\n"
                            ".sep{stroke:#bbb;stroke-width:1}\n";

/* ---- an output buffer that remembers running out of memory ---- */

struct buf {
        char *p;
        size_t len, cap;
        bool oom;
};

static bool buf_reserve(struct buf *b, size_t more)
{
        size_t cap;
        char *p;

        if (b->oom)
                return false;
        if (b->len + more + 1 <= b->cap)
                return true;
        cap = b->cap ? b->cap : 4096;
        while (cap < b->len + more + 1) {
                if (cap > SIZE_MAX / 2)
                        goto oom;
                cap *= 2;
        }
        p = realloc(b->p, cap);
        if (!p)
                goto oom;
        b->p = p;
        b->cap = cap;
        return true;
oom:
        b->oom = true;
        return false;
}

static void bput(struct buf *b, const char *s, size_t n)
{
        if (!buf_reserve(b, n))
                return;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void bputs(struct buf *b, const char *s)
{
        bput(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void bprintf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !buf_reserve(b, (size_t)n))
                return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

/* ---- XML text ---- */

static bool utf8_cont(unsigned char c)
{
        return (c & 0xC0) == 0x80;
}

/* Decodes one UTF-8 sequence of s[0..n), n > 0: its length, and the code
 * point in *cp or -1 for a byte that starts no valid sequence. */
static size_t utf8_next(const unsigned char *s, size_t n, int32_t *cp)
{
        unsigned char c = s[0];
        size_t len;
        int32_t v, min;

        if (c < 0x80) {
                *cp = c;
                return 1;
        }
        if (c >= 0xC2 && c <= 0xDF) {
                len = 2, v = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
                len = 3, v = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4, v = c & 0x07, min = 0x10000;
        } else {
                goto bad;
        }
        if (n < len)
                goto bad;
        for (size_t i = 1; i < len; i++) {
                if (!utf8_cont(s[i]))
                        goto bad;
                v = v << 6 | (s[i] & 0x3F);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                goto bad;
        *cp = v;
        return len;
bad:
        *cp = -1;
        return 1;
}

static size_t count_chars(const char *str, size_t n)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0, chars = 0;
        int32_t cp;

        while (i < n) {
                i += utf8_next(s + i, n - i, &cp);
                chars++;
        }
        return chars;
}

static const char *entity(int32_t cp)
{
        switch (cp) {
        case '&':
                return "&amp;";
        case '<':
                return "&lt;";
        case '>':
                return "&gt;";
        case '"':
                return "&quot;";
        case '\'':
                return "&apos;";
        }
        return NULL;
}

/* Appends str[0..n) as XML character data that is also safe in an
 * attribute value, cut to max_chars (> 0) characters with an ellipsis.
 * Invalid UTF-8 and control characters (which XML forbids or a label
 * cannot show) become U+FFFD; a newline stays one only when multiline
 * (tooltips), tab, CR and LF are spaces otherwise. */
static void put_xml(struct buf *b, const char *str, size_t n, size_t max_chars, bool multiline)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t total = count_chars(str, n), shown = 0, i = 0;
        size_t limit = total > max_chars ? max_chars - 1 : total;

        while (i < n && shown < limit) {
                const char *ent;
                int32_t cp;
                size_t len = utf8_next(s + i, n - i, &cp);

                if (cp == '\n' && multiline)
                        bputs(b, "&#10;");
                else if (cp == '\t' || cp == '\n' || cp == '\r')
                        bputs(b, " ");
                else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xFFFE || cp == 0xFFFF)
                        bputs(b, REPLACEMENT);
                else if ((ent = entity(cp)))
                        bputs(b, ent);
                else
                        bput(b, str + i, len);
                i += len;
                shown++;
        }
        if (total > max_chars)
                bputs(b, ELLIPSIS);
}

static void put_xml_str(struct buf *b, const char *s, size_t max_chars)
{
        put_xml(b, s ? s : "?", s ? strlen(s) : 1, max_chars, false);
}

/* A raw text built in a scratch buffer, then escaped into b. */
static void put_xml_buf(struct buf *b, struct buf *raw, size_t max_chars, bool multiline)
{
        if (raw->oom)
                b->oom = true;
        else if (raw->len)
                put_xml(b, raw->p, raw->len, max_chars, multiline);
        free(raw->p);
        *raw = (struct buf){0};
}

/* ---- what the report says ---- */

static bool has_time(uint64_t ms)
{
        return ms != ER_REPORT_NO_TIME;
}

/* "412ms", "5.7s", "2m05s", "1h02m" (as the text report writes them) */
static void fmt_ms(uint64_t ms, char *out, size_t len)
{
        if (ms < 1000) {
                snprintf(out, len, "%" PRIu64 "ms", ms);
        } else if (ms < 59950) {
                uint64_t tenths = (ms + 50) / 100;
                snprintf(out, len, "%" PRIu64 ".%" PRIu64 "s", tenths / 10, tenths % 10);
        } else if (ms < 3600 * 1000 - 500) {
                uint64_t s = (ms + 500) / 1000;
                snprintf(out, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        } else {
                uint64_t m = (ms + 30000) / 60000;
                snprintf(out, len, "%" PRIu64 "h%02" PRIu64 "m", m / 60, m % 60);
        }
}

/* An axis label, exact for the steps of pick_step: "0", "500ms", "1.5s",
 * "2m", "2m30s", "1h", "1h30m". */
static void fmt_tick(uint64_t ms, char *out, size_t len)
{
        if (ms == 0)
                snprintf(out, len, "0");
        else if (ms < 1000)
                snprintf(out, len, "%" PRIu64 "ms", ms);
        else if (ms < 60000 && ms % 1000 == 0)
                snprintf(out, len, "%" PRIu64 "s", ms / 1000);
        else if (ms < 60000 && ms % 100 == 0)
                snprintf(out, len, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, ms % 1000 / 100);
        else if (ms < 60000)
                snprintf(out, len, "%" PRIu64 ".%03" PRIu64 "s", ms / 1000, ms % 1000);
        else if (ms < 3600000 && ms % 60000 == 0)
                snprintf(out, len, "%" PRIu64 "m", ms / 60000);
        else if (ms < 3600000)
                snprintf(out, len, "%" PRIu64 "m%02" PRIu64 "s", ms / 60000, ms % 60000 / 1000);
        else if (ms % 3600000 == 0)
                snprintf(out, len, "%" PRIu64 "h", ms / 3600000);
        else
                snprintf(out, len, "%" PRIu64 "h%02" PRIu64 "m", ms / 3600000,
                         ms % 3600000 / 60000);
}

static bool test_failed(const struct er_report_test *t)
{
        return t->timed_out || t->exit_code != 0 || t->signal != 0;
}

/* As the text report derives it: the test has no class of its own. */
static enum er_error_class test_class(const struct er_report_test *t)
{
        if (t->timed_out)
                return ER_TIMEOUT_EXPIRED;
        return test_failed(t) ? ER_PROCESS_EXITED_WITH_ERROR : ER_OK;
}

static bool shell_safe(const char *a)
{
        if (!*a)
                return false;
        for (; *a; a++)
                if (!strchr(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-",
                        *a))
                        return false;
        return true;
}

/* argv as a shell would read it back, cut after whole arguments past
 * COMMAND_SHOWN_MAX bytes; raw, escaped later. */
static void put_command(struct buf *b, char *const *argv)
{
        size_t start = b->len;

        for (size_t i = 0; argv && argv[i]; i++) {
                if (i > 0) {
                        if (b->len - start + strlen(argv[i]) > COMMAND_SHOWN_MAX) {
                                bputs(b, " ...");
                                return;
                        }
                        bputs(b, " ");
                }
                if (shell_safe(argv[i])) {
                        bputs(b, argv[i]);
                        continue;
                }
                bputs(b, "'");
                for (const char *p = argv[i]; *p; p++) {
                        if (*p == '\'')
                                bputs(b, "'\\''");
                        else
                                bput(b, p, 1);
                }
                bputs(b, "'");
        }
        if (b->len == start)
                bputs(b, "-");
}

/* How the test ended, raw: the scheduler's message, else "exited 2". */
static void put_test_how(struct buf *b, const struct er_report_test *t)
{
        char sig[32];

        if (t->message[0])
                bput(b, t->message, strnlen(t->message, sizeof(t->message)));
        else if (t->timed_out)
                bputs(b, "timed out");
        else if (t->exit_code >= 0)
                bprintf(b, "exited %d", t->exit_code);
        else if (t->signal > 0) {
                er_signal_format(t->signal, sig, sizeof(sig));
                bprintf(b, "killed by %s", sig);
        } else
                bputs(b, "ended");
}

/* ---- the chart ---- */

struct chart {
        const struct er_report *r;
        uint64_t axis_ms; /* the time at the right edge, a whole number of steps */
        uint64_t step_ms;
        unsigned name_w; /* the names column */
        unsigned x0;     /* where time 0 is */
        unsigned top;    /* the first row */
        size_t rows;
        unsigned width, height;
};

static bool has_test_row(const struct er_report *r)
{
        return r->test.present || r->test.not_run;
}

static bool test_ran(const struct er_report *r)
{
        return r->test.present && !r->test.not_run;
}

static uint64_t clamp_ms(uint64_t ms)
{
        return ms > MS_MAX ? MS_MAX : ms;
}

static uint64_t service_end(const struct er_report *r, const struct er_report_service *s)
{
        /* Still running when the report was made: up to its end. */
        return clamp_ms(has_time(s->stopped_ms) ? s->stopped_ms : r->total_ms);
}

static uint64_t test_end(const struct er_report *r)
{
        return clamp_ms(clamp_ms(r->test.started_ms) + clamp_ms(r->test.duration_ms));
}

/* The smallest step that needs at most TICKS_MAX ticks over span_ms. */
static uint64_t pick_step(uint64_t span_ms)
{
        static const uint64_t steps[] = {
            1,      2,      5,       10,      20,      50,       100,      200,      500,
            1000,   2000,   5000,    10000,   15000,   30000,    60000,    120000,   300000,
            600000, 900000, 1800000, 3600000, 7200000, 10800000, 21600000, 43200000, 86400000,
        };
        uint64_t step;

        for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
                if (span_ms <= steps[i] * TICKS_MAX)
                        return steps[i];
        step = steps[ARRAY_SIZE(steps) - 1];
        while (span_ms > step * TICKS_MAX)
                step *= 2;
        return step;
}

static void layout(struct chart *c, const struct er_report *r)
{
        uint64_t span = clamp_ms(r->total_ms);
        size_t name_chars = 4; /* "test" */

        *c = (struct chart){.r = r};
        for (size_t i = 0; i < r->n_services; i++) {
                const struct er_report_service *s = &r->services[i];
                const char *n = s->name ? s->name : "?";
                size_t chars = count_chars(n, strlen(n));

                if (chars > name_chars)
                        name_chars = chars > NAME_CHARS_MAX ? NAME_CHARS_MAX : chars;
                if (has_time(s->started_ms) && service_end(r, s) > span)
                        span = service_end(r, s);
        }
        if (test_ran(r) && test_end(r) > span)
                span = test_end(r);
        if (span == 0)
                span = 1;
        c->step_ms = pick_step(span);
        c->axis_ms = (span + c->step_ms - 1) / c->step_ms * c->step_ms;
        c->name_w = (unsigned)name_chars * CHAR_W + 16;
        c->x0 = MARGIN + c->name_w;
        c->top = MARGIN + TITLE_H + AXIS_H;
        c->rows = r->n_services + (has_test_row(r) ? 1 : 0);
        c->width = c->x0 + CHART_W + GAP + DETAIL_W + MARGIN;
        c->height = c->top + (unsigned)c->rows * ROW_H + AXIS_H + LEGEND_H + MARGIN;
}

/* x of a time, in hundredths of a pixel: integers, so no locale can
 * change the decimal point. */
static uint64_t x100(const struct chart *c, uint64_t ms)
{
        ms = clamp_ms(ms);
        if (ms > c->axis_ms)
                ms = c->axis_ms;
        return (uint64_t)c->x0 * 100 + ms * (CHART_W * 100) / c->axis_ms;
}

static void put_px(struct buf *b, uint64_t v100)
{
        if (v100 % 100)
                bprintf(b, "%" PRIu64 ".%02" PRIu64, v100 / 100, v100 % 100);
        else
                bprintf(b, "%" PRIu64, v100 / 100);
}

static unsigned row_top(const struct chart *c, size_t i)
{
        return c->top + (unsigned)i * ROW_H;
}

static unsigned rows_bottom(const struct chart *c)
{
        return row_top(c, c->rows);
}

/* <rect class="CLASS" x=.. y=.. width=.. height=..> over [from, to) of
 * row i, at least one pixel wide so that an instant still shows. */
static void put_span(struct buf *b, const struct chart *c, size_t i, const char *class,
                     const char *name, uint64_t from, uint64_t to)
{
        uint64_t x = x100(c, from), w = to > from ? x100(c, to) - x : 0;

        if (w < 100)
                w = 100;
        bprintf(b, "<rect class=\"%s\"", class);
        if (name) {
                bputs(b, " data-name=\"");
                put_xml_str(b, name, TOOLTIP_CHARS_MAX);
                bputs(b, "\"");
        }
        bputs(b, " x=\"");
        put_px(b, x);
        bprintf(b, "\" y=\"%u\" width=\"", row_top(c, i) + (ROW_H - BAR_H) / 2);
        put_px(b, w);
        bprintf(b, "\" height=\"%u\"/>\n", BAR_H);
}

static void put_name(struct buf *b, const struct chart *c, size_t i, const char *name)
{
        bprintf(b, "<text class=\"name\" x=\"%u\" y=\"%u\">", MARGIN + 4, row_top(c, i) + 16);
        put_xml_str(b, name, NAME_CHARS_MAX);
        bputs(b, "</text>\n");
}

static void put_detail(struct buf *b, const struct chart *c, size_t i, struct buf *raw)
{
        bprintf(b, "<text class=\"detail\" x=\"%u\" y=\"%u\">", c->x0 + CHART_W + GAP,
                row_top(c, i) + 16);
        put_xml_buf(b, raw, DETAIL_CHARS_MAX, false);
        bputs(b, "</text>\n");
}

static void put_row_open(struct buf *b, const char *class, struct buf *tooltip)
{
        bprintf(b, "<g class=\"row %s\">\n<title>", class);
        put_xml_buf(b, tooltip, TOOLTIP_CHARS_MAX, true);
        bputs(b, "</title>\n");
}

/* " · " between parts, none before the first. */
static void sep(struct buf *b)
{
        if (b->len)
                bputs(b, SEP);
}

static void put_plural(struct buf *b, unsigned n, const char *what)
{
        bprintf(b, "%u %s%s", n, what, n == 1 ? "" : "s");
}

static void put_message(struct buf *b, const struct er_report_service *s)
{
        bput(b, s->message, strnlen(s->message, sizeof(s->message)));
}

/* The tooltip: everything the row knows, one fact a line. */
static void service_tooltip(struct buf *t, const struct er_report_service *s)
{
        char a[32], d[32];

        bprintf(t, "%s: %s", s->name ? s->name : "?", er_error_class_name(s->error));
        if (has_time(s->started_ms)) {
                fmt_ms(s->started_ms, a, sizeof(a));
                bprintf(t, "\nspawned at %s", a);
        }
        if (has_time(s->started_ms) && has_time(s->ready_ms) && s->ready_ms >= s->started_ms) {
                fmt_ms(s->ready_ms, a, sizeof(a));
                fmt_ms(s->ready_ms - s->started_ms, d, sizeof(d));
                bprintf(t, "\nready at %s (after %s)", a, d);
        }
        if (has_time(s->stopped_ms)) {
                fmt_ms(s->stopped_ms, a, sizeof(a));
                bprintf(t, "\nstopped at %s", a);
        }
        if (s->failed_attempts) {
                bputs(t, "\n");
                put_plural(t, s->failed_attempts, "failed readiness attempt");
        }
        if (s->restarts) {
                bputs(t, "\n");
                put_plural(t, s->restarts, "restart");
        }
        if (s->message[0]) {
                bputs(t, "\n");
                put_message(t, s);
        }
}

/* The note right of the chart: for a failure its class first. */
static void service_detail(struct buf *d, const struct chart *c, const struct er_report_service *s,
                           bool started)
{
        uint64_t start = clamp_ms(s->started_ms), end = service_end(c->r, s);
        char t[32];

        if (s->error != ER_OK)
                bputs(d, er_error_class_name(s->error));
        if (started && s->error == ER_OK) {
                if (has_time(s->ready_ms) && s->ready_ms >= s->started_ms) {
                        fmt_ms(s->ready_ms - s->started_ms, t, sizeof(t));
                        bprintf(d, "ready in %s", t);
                } else {
                        bputs(d, "not ready");
                }
                fmt_ms(end > start ? end - start : 0, t, sizeof(t));
                sep(d);
                bprintf(d, "up %s", t);
        }
        if (s->failed_attempts) {
                sep(d);
                put_plural(d, s->failed_attempts, "failed attempt");
        }
        if (s->restarts) {
                sep(d);
                put_plural(d, s->restarts, "restart");
        }
        if ((s->error != ER_OK || !started) && s->message[0]) {
                sep(d);
                put_message(d, s);
        }
}

static void put_service_row(struct buf *b, const struct chart *c, size_t i)
{
        const struct er_report_service *s = &c->r->services[i];
        bool started = has_time(s->started_ms);
        bool failed = s->error != ER_OK;
        struct buf raw = {0};
        char class[64];

        snprintf(class, sizeof(class), "service %s%s", failed ? "failed" : "ok",
                 started ? "" : " not-started");
        service_tooltip(&raw, s);
        put_row_open(b, class, &raw);
        put_name(b, c, i, s->name);
        if (started) {
                uint64_t from = clamp_ms(s->started_ms), end = service_end(c->r, s);
                uint64_t ready = end;

                if (end < from)
                        end = from;
                if (has_time(s->ready_ms) && s->ready_ms >= from && s->ready_ms <= end)
                        ready = s->ready_ms;
                put_span(b, c, i, failed ? "bar service failed" : "bar service ok", s->name, from,
                         end);
                if (ready > from)
                        put_span(b, c, i, "phase starting", NULL, from, ready);
        }
        service_detail(&raw, c, s, started);
        put_detail(b, c, i, &raw);
        bputs(b, "</g>\n");
}

static void put_test_row(struct buf *b, const struct chart *c)
{
        const struct er_report_test *t = &c->r->test;
        size_t i = c->r->n_services;
        bool ran = test_ran(c->r), failed = ran && test_failed(t);
        struct buf raw = {0};
        char a[32], d[32];

        bputs(&raw, "test: ");
        put_command(&raw, t->argv);
        if (ran) {
                fmt_ms(t->started_ms, a, sizeof(a));
                fmt_ms(t->duration_ms, d, sizeof(d));
                bprintf(&raw, "\nstarted at %s, ran %s\n", a, d);
                put_test_how(&raw, t);
        } else {
                bputs(&raw, "\nnot run (the environment failed)");
        }
        put_row_open(b, !ran ? "test not-started" : failed ? "test failed" : "test ok", &raw);
        /* The test is no service: a rule sets it apart. */
        bprintf(b, "<line class=\"sep\" x1=\"%u\" x2=\"%u\" y1=\"%u\" y2=\"%u\"/>\n", MARGIN,
                c->width - MARGIN, row_top(c, i), row_top(c, i));
        put_name(b, c, i, "test");
        if (ran)
                put_span(b, c, i, failed ? "bar test failed" : "bar test ok", "test",
                         clamp_ms(t->started_ms), test_end(c->r));
        if (!ran) {
                bputs(&raw, "not run (the environment failed)");
        } else {
                if (failed)
                        bprintf(&raw, "%s" SEP, er_error_class_name(test_class(t)));
                put_test_how(&raw, t);
                fmt_ms(t->duration_ms, d, sizeof(d));
                bprintf(&raw, SEP "%s" SEP "$ ", d);
                put_command(&raw, t->argv);
        }
        put_detail(b, c, i, &raw);
        bputs(b, "</g>\n");
}

static void put_axis(struct buf *b, const struct chart *c)
{
        unsigned bottom = rows_bottom(c);
        char label[32];

        for (uint64_t ms = 0; ms <= c->axis_ms; ms += c->step_ms) {
                uint64_t x = x100(c, ms);

                bputs(b, "<line class=\"grid\" x1=\"");
                put_px(b, x);
                bputs(b, "\" x2=\"");
                put_px(b, x);
                bprintf(b, "\" y1=\"%u\" y2=\"%u\"/>\n", c->top - 3, bottom + 3);
                fmt_tick(ms, label, sizeof(label));
                for (int k = 0; k < 2; k++) {
                        bputs(b, "<text class=\"tick\" x=\"");
                        put_px(b, x);
                        bprintf(b, "\" y=\"%u\">%s</text>\n", k ? bottom + 14 : c->top - 6, label);
                }
        }
        bprintf(b, "<line class=\"axis\" x1=\"%u\" x2=\"%u\" y1=\"%u\" y2=\"%u\"/>\n", c->x0,
                c->x0 + CHART_W, c->top - 1, c->top - 1);
        bprintf(b, "<line class=\"axis\" x1=\"%u\" x2=\"%u\" y1=\"%u\" y2=\"%u\"/>\n", c->x0,
                c->x0 + CHART_W, bottom + 1, bottom + 1);
}

/* Dashed lines where the test started and ended, across every row. */
static void put_markers(struct buf *b, const struct chart *c)
{
        uint64_t at[2];

        if (!test_ran(c->r))
                return;
        at[0] = clamp_ms(c->r->test.started_ms);
        at[1] = test_end(c->r);
        for (int k = 0; k < 2; k++) {
                uint64_t x = x100(c, at[k]);

                bputs(b, "<line class=\"marker\" x1=\"");
                put_px(b, x);
                bputs(b, "\" x2=\"");
                put_px(b, x);
                bprintf(b, "\" y1=\"%u\" y2=\"%u\"/>\n", c->top, rows_bottom(c));
        }
}

static void put_legend(struct buf *b, const struct chart *c)
{
        static const char *const items[][2] = {
            {"starting", "starting (spawned, not ready yet)"},
            {"up", "up (ready)"},
            {"failed", "failed (lighter: before ready)"},
            {"test", "test command"},
        };
        unsigned x = c->x0, y = rows_bottom(c) + AXIS_H + 8;

        for (size_t k = 0; k < ARRAY_SIZE(items); k++) {
                bprintf(b,
                        "<rect class=\"swatch %s\" x=\"%u\" y=\"%u\" width=\"12\" height=\"12\"/>"
                        "<text class=\"legend\" x=\"%u\" y=\"%u\">%s</text>\n",
                        items[k][0], x, y, x + 17, y + 10, items[k][1]);
                x += 17 + (unsigned)strlen(items[k][1]) * 6 + 24;
        }
        bprintf(b,
                "<text class=\"legend\" x=\"%u\" y=\"%u\">dashed lines: the test starts and "
                "ends</text>\n",
                x, y + 10);
}

static void put_title(struct buf *b, const struct chart *c)
{
        const struct er_report *r = c->r;
        char total[32];

        fmt_ms(r->total_ms, total, sizeof(total));
        bprintf(b, "<text class=\"title\" x=\"%u\" y=\"%u\">envrun", MARGIN, MARGIN + 14);
        if (r->project) {
                bputs(b, ": ");
                put_xml_str(b, r->project, NAME_CHARS_MAX * 2);
        }
        bprintf(b, SEP "%s" SEP "exit status %d" SEP "total %s</text>\n", r->ok ? "ok" : "failed",
                r->exit_status, total);
}

int er_timeline_svg(const struct er_report *r, char **ret, size_t *ret_len)
{
        struct buf b = {0};
        struct chart c;

        layout(&c, r);
        bputs(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        bprintf(&b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%u\" "
                "height=\"%u\" viewBox=\"0 0 %u %u\" role=\"img\">\n",
                c.width, c.height, c.width, c.height);
        bputs(&b, "<title>envrun timeline");
        if (r->project) {
                bputs(&b, ": ");
                put_xml_str(&b, r->project, TOOLTIP_CHARS_MAX);
        }
        bprintf(&b, "</title>\n<style>\n%s</style>\n", style);
        bprintf(&b, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"#fff\"/>\n", c.width,
                c.height);
        put_title(&b, &c);
        /* Stripes first, then the grid over them, then the bars. */
        for (size_t i = 1; i < c.rows; i += 2)
                bprintf(&b,
                        "<rect class=\"stripe\" x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\"/>\n",
                        MARGIN, row_top(&c, i), c.width - 2 * MARGIN, ROW_H);
        put_axis(&b, &c);
        for (size_t i = 0; i < r->n_services; i++)
                put_service_row(&b, &c, i);
        if (has_test_row(r))
                put_test_row(&b, &c);
        put_markers(&b, &c);
        put_legend(&b, &c);
        bputs(&b, "</svg>\n");
        if (!buf_reserve(&b, 0)) {
                free(b.p);
                return -ENOMEM;
        }
        *ret = b.p;
        if (ret_len)
                *ret_len = b.len;
        return 0;
}
