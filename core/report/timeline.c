#include "report/timeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_priv.h"
#include "base/units.h"

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

#define TICKS_MAX 10
/* Times past this (about 35 years) are clamped, which keeps the pixel
 * arithmetic below in 64 bits. */
#define MS_MAX (UINT64_C(1) << 40)

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */
#define SEP " \xc2\xb7 "        /* " · " */

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

/* ---- XML text ---- */

static size_t count_chars(const char *str, size_t n)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0, chars = 0;
        int32_t cp;

        while (i < n) {
                i += er_rp_utf8_next(s + i, n - i, &cp);
                chars++;
        }
        return chars;
}

/* Appends str[0..n) as XML character data that is also safe in an
 * attribute value, cut to max_chars (> 0) characters with an ellipsis.
 * Invalid UTF-8 and control characters (which XML forbids or a label
 * cannot show) become U+FFFD; a newline stays one only when multiline
 * (tooltips), tab, CR and LF are spaces otherwise. */
static void put_xml(struct er_buf *b, const char *str, size_t n, size_t max_chars,
                    bool multiline)
{
        enum er_rp_clean mode = multiline ? ER_RP_CLEAN_SVG_LINES : ER_RP_CLEAN_SVG;
        const unsigned char *s = (const unsigned char *)str;
        size_t cut = 0;
        int32_t cp;

        if (count_chars(str, n) <= max_chars) {
                er_rp_put_clean(b, str, n, mode);
                return;
        }
        for (size_t shown = 0; shown + 1 < max_chars; shown++)
                cut += er_rp_utf8_next(s + cut, n - cut, &cp);
        er_rp_put_clean(b, str, cut, mode);
        er_rp_puts(b, ELLIPSIS);
}

static void put_xml_str(struct er_buf *b, const char *s, size_t max_chars)
{
        put_xml(b, s ? s : "?", s ? strlen(s) : 1, max_chars, false);
}

/* A raw text built in a scratch buffer, then escaped into b. */
static void put_xml_buf(struct er_buf *b, struct er_buf *raw, size_t max_chars,
                        bool multiline)
{
        if (raw->oom)
                b->oom = true;
        else if (raw->len)
                put_xml(b, raw->p, raw->len, max_chars, multiline);
        free(raw->p);
        *raw = (struct er_buf){0};
}

/* ---- what the report says ---- */

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

/* How the test ended, raw: the scheduler's message, else "exited 2". */
static void put_test_how(struct er_buf *b, const struct er_report_test *t)
{
        char sig[32];

        if (t->message[0])
                er_rp_put(b, t->message, strnlen(t->message, sizeof(t->message)));
        else if (t->timed_out)
                er_rp_puts(b, "timed out");
        else if (t->exit_code >= 0)
                er_rp_printf(b, "exited %d", t->exit_code);
        else if (t->signal > 0) {
                er_signal_format(t->signal, sig, sizeof(sig));
                er_rp_printf(b, "killed by %s", sig);
        } else
                er_rp_puts(b, "ended");
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
        return clamp_ms(er_rp_has_time(s->stopped_ms) ? s->stopped_ms : r->total_ms);
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
                if (er_rp_has_time(s->started_ms) && service_end(r, s) > span)
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

static void put_px(struct er_buf *b, uint64_t v100)
{
        if (v100 % 100)
                er_rp_printf(b, "%" PRIu64 ".%02" PRIu64, v100 / 100, v100 % 100);
        else
                er_rp_printf(b, "%" PRIu64, v100 / 100);
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
static void put_span(struct er_buf *b, const struct chart *c, size_t i, const char *class,
                     const char *name, uint64_t from, uint64_t to)
{
        uint64_t x = x100(c, from), w = to > from ? x100(c, to) - x : 0;

        if (w < 100)
                w = 100;
        er_rp_printf(b, "<rect class=\"%s\"", class);
        if (name) {
                er_rp_puts(b, " data-name=\"");
                put_xml_str(b, name, TOOLTIP_CHARS_MAX);
                er_rp_puts(b, "\"");
        }
        er_rp_puts(b, " x=\"");
        put_px(b, x);
        er_rp_printf(b, "\" y=\"%u\" width=\"", row_top(c, i) + (ROW_H - BAR_H) / 2);
        put_px(b, w);
        er_rp_printf(b, "\" height=\"%u\"/>\n", BAR_H);
}

static void put_name(struct er_buf *b, const struct chart *c, size_t i, const char *name)
{
        er_rp_printf(b, "<text class=\"name\" x=\"%u\" y=\"%u\">", MARGIN + 4, row_top(c, i) + 16);
        put_xml_str(b, name, NAME_CHARS_MAX);
        er_rp_puts(b, "</text>\n");
}

static void put_detail(struct er_buf *b, const struct chart *c, size_t i, struct er_buf *raw)
{
        er_rp_printf(b, "<text class=\"detail\" x=\"%u\" y=\"%u\">", c->x0 + CHART_W + GAP,
                     row_top(c, i) + 16);
        put_xml_buf(b, raw, DETAIL_CHARS_MAX, false);
        er_rp_puts(b, "</text>\n");
}

static void put_row_open(struct er_buf *b, const char *class, struct er_buf *tooltip)
{
        er_rp_printf(b, "<g class=\"row %s\">\n<title>", class);
        put_xml_buf(b, tooltip, TOOLTIP_CHARS_MAX, true);
        er_rp_puts(b, "</title>\n");
}

/* " · " between parts, none before the first. */
static void sep(struct er_buf *b)
{
        if (b->len)
                er_rp_puts(b, SEP);
}

static void put_plural(struct er_buf *b, unsigned n, const char *what)
{
        er_rp_printf(b, "%u %s%s", n, what, n == 1 ? "" : "s");
}

static void put_message(struct er_buf *b, const struct er_report_service *s)
{
        er_rp_put(b, s->message, strnlen(s->message, sizeof(s->message)));
}

/* The tooltip: everything the row knows, one fact a line. */
static void service_tooltip(struct er_buf *t, const struct er_report_service *s)
{
        char a[32], d[32];

        er_rp_printf(t, "%s: %s", s->name ? s->name : "?", er_error_class_name(s->error));
        if (er_rp_has_time(s->started_ms)) {
                er_rp_fmt_ms(s->started_ms, a, sizeof(a));
                er_rp_printf(t, "\nspawned at %s", a);
        }
        if (er_rp_has_time(s->started_ms) && er_rp_has_time(s->ready_ms) &&
            s->ready_ms >= s->started_ms) {
                er_rp_fmt_ms(s->ready_ms, a, sizeof(a));
                er_rp_fmt_ms(s->ready_ms - s->started_ms, d, sizeof(d));
                er_rp_printf(t, "\nready at %s (after %s)", a, d);
        }
        if (er_rp_has_time(s->stopped_ms)) {
                er_rp_fmt_ms(s->stopped_ms, a, sizeof(a));
                er_rp_printf(t, "\nstopped at %s", a);
        }
        if (s->failed_attempts) {
                er_rp_puts(t, "\n");
                put_plural(t, s->failed_attempts, "failed readiness attempt");
        }
        if (s->restarts) {
                er_rp_puts(t, "\n");
                put_plural(t, s->restarts, "restart");
        }
        if (s->message[0]) {
                er_rp_puts(t, "\n");
                put_message(t, s);
        }
}

/* The note right of the chart: for a failure its class first. */
static void service_detail(struct er_buf *d, const struct chart *c,
                           const struct er_report_service *s, bool started)
{
        uint64_t start = clamp_ms(s->started_ms), end = service_end(c->r, s);
        char t[32];

        if (s->error != ER_OK)
                er_rp_puts(d, er_error_class_name(s->error));
        if (started && s->error == ER_OK) {
                if (er_rp_has_time(s->ready_ms) && s->ready_ms >= s->started_ms) {
                        er_rp_fmt_ms(s->ready_ms - s->started_ms, t, sizeof(t));
                        er_rp_printf(d, "ready in %s", t);
                } else {
                        er_rp_puts(d, "not ready");
                }
                er_rp_fmt_ms(end > start ? end - start : 0, t, sizeof(t));
                sep(d);
                er_rp_printf(d, "up %s", t);
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

static void put_service_row(struct er_buf *b, const struct chart *c, size_t i)
{
        const struct er_report_service *s = &c->r->services[i];
        bool started = er_rp_has_time(s->started_ms);
        bool failed = s->error != ER_OK;
        struct er_buf raw = {0};
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
                if (er_rp_has_time(s->ready_ms) && s->ready_ms >= from && s->ready_ms <= end)
                        ready = s->ready_ms;
                put_span(b, c, i, failed ? "bar service failed" : "bar service ok", s->name, from,
                         end);
                if (ready > from)
                        put_span(b, c, i, "phase starting", NULL, from, ready);
        }
        service_detail(&raw, c, s, started);
        put_detail(b, c, i, &raw);
        er_rp_puts(b, "</g>\n");
}

static void put_test_row(struct er_buf *b, const struct chart *c)
{
        const struct er_report_test *t = &c->r->test;
        size_t i = c->r->n_services;
        bool ran = test_ran(c->r), failed = ran && er_rp_test_class(t) != ER_OK;
        struct er_buf raw = {0};
        char a[32], d[32];

        er_rp_puts(&raw, "test: ");
        er_rp_put_command(&raw, t->argv);
        if (ran) {
                er_rp_fmt_ms(t->started_ms, a, sizeof(a));
                er_rp_fmt_ms(t->duration_ms, d, sizeof(d));
                er_rp_printf(&raw, "\nstarted at %s, ran %s\n", a, d);
                put_test_how(&raw, t);
        } else {
                er_rp_puts(&raw, "\nnot run (the environment failed)");
        }
        put_row_open(b, !ran ? "test not-started" : failed ? "test failed" : "test ok", &raw);
        /* The test is no service: a rule sets it apart. */
        er_rp_printf(b, "<line class=\"sep\" x1=\"%u\" x2=\"%u\" y1=\"%u\" y2=\"%u\"/>\n", MARGIN,
                     c->width - MARGIN, row_top(c, i), row_top(c, i));
        put_name(b, c, i, "test");
        if (ran)
                put_span(b, c, i, failed ? "bar test failed" : "bar test ok", "test",
                         clamp_ms(t->started_ms), test_end(c->r));
        if (!ran) {
                er_rp_puts(&raw, "not run (the environment failed)");
        } else {
                if (failed)
                        er_rp_printf(&raw, "%s" SEP, er_error_class_name(er_rp_test_class(t)));
                put_test_how(&raw, t);
                er_rp_fmt_ms(t->duration_ms, d, sizeof(d));
                er_rp_printf(&raw, SEP "%s" SEP "$ ", d);
                er_rp_put_command(&raw, t->argv);
        }
        put_detail(b, c, i, &raw);
        er_rp_puts(b, "</g>\n");
}

static void put_axis(struct er_buf *b, const struct chart *c)
{
        unsigned bottom = rows_bottom(c);
        char label[32];

        for (uint64_t ms = 0; ms <= c->axis_ms; ms += c->step_ms) {
                uint64_t x = x100(c, ms);

                er_rp_puts(b, "<line class=\"grid\" x1=\"");
                put_px(b, x);
                er_rp_puts(b, "\" x2=\"");
                put_px(b, x);
                er_rp_printf(b, "\" y1=\"%u\" y2=\"%u\"/>\n", c->top - 3, bottom + 3);
                fmt_tick(ms, label, sizeof(label));
                for (int k = 0; k < 2; k++) {
                        er_rp_puts(b, "<text class=\"tick\" x=\"");
                        put_px(b, x);
                        er_rp_printf(b, "\" y=\"%u\">%s</text>\n", k ? bottom + 14 : c->top - 6,
                                     label);
                }
        }
        er_rp_printf(b, "<line class=\"axis\" x1=\"%u\" x2=\"%u\" y1=\"%u\" y2=\"%u\"/>\n", c->x0,
                     c->x0 + CHART_W, c->top - 1, c->top - 1);
        er_rp_printf(b, "<line class=\"axis\" x1=\"%u\" x2=\"%u\" y1=\"%u\" y2=\"%u\"/>\n", c->x0,
                     c->x0 + CHART_W, bottom + 1, bottom + 1);
}

/* Dashed lines where the test started and ended, across every row. */
static void put_markers(struct er_buf *b, const struct chart *c)
{
        uint64_t at[2];

        if (!test_ran(c->r))
                return;
        at[0] = clamp_ms(c->r->test.started_ms);
        at[1] = test_end(c->r);
        for (int k = 0; k < 2; k++) {
                uint64_t x = x100(c, at[k]);

                er_rp_puts(b, "<line class=\"marker\" x1=\"");
                put_px(b, x);
                er_rp_puts(b, "\" x2=\"");
                put_px(b, x);
                er_rp_printf(b, "\" y1=\"%u\" y2=\"%u\"/>\n", c->top, rows_bottom(c));
        }
}

static void put_legend(struct er_buf *b, const struct chart *c)
{
        static const char *const items[][2] = {
            {"starting", "starting (spawned, not ready yet)"},
            {"up", "up (ready)"},
            {"failed", "failed (lighter: before ready)"},
            {"test", "test command"},
        };
        unsigned x = c->x0, y = rows_bottom(c) + AXIS_H + 8;

        for (size_t k = 0; k < ARRAY_SIZE(items); k++) {
                er_rp_printf(
                    b,
                    "<rect class=\"swatch %s\" x=\"%u\" y=\"%u\" width=\"12\" height=\"12\"/>"
                    "<text class=\"legend\" x=\"%u\" y=\"%u\">%s</text>\n",
                    items[k][0], x, y, x + 17, y + 10, items[k][1]);
                x += 17 + (unsigned)strlen(items[k][1]) * 6 + 24;
        }
        er_rp_printf(b,
                     "<text class=\"legend\" x=\"%u\" y=\"%u\">dashed lines: the test starts and "
                     "ends</text>\n",
                     x, y + 10);
}

static void put_title(struct er_buf *b, const struct chart *c)
{
        const struct er_report *r = c->r;
        char total[32];

        er_rp_fmt_ms(r->total_ms, total, sizeof(total));
        er_rp_printf(b, "<text class=\"title\" x=\"%u\" y=\"%u\">envrun", MARGIN, MARGIN + 14);
        if (r->project) {
                er_rp_puts(b, ": ");
                put_xml_str(b, r->project, NAME_CHARS_MAX * 2);
        }
        er_rp_printf(b, SEP "%s" SEP "exit status %d" SEP "total %s</text>\n",
                     r->ok ? "ok" : "failed", r->exit_status, total);
}

int er_timeline_svg(const struct er_report *r, char **ret, size_t *ret_len)
{
        struct er_buf b = {0};
        struct chart c;

        layout(&c, r);
        er_rp_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        er_rp_printf(&b,
                     "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%u\" "
                     "height=\"%u\" viewBox=\"0 0 %u %u\" role=\"img\">\n",
                     c.width, c.height, c.width, c.height);
        er_rp_puts(&b, "<title>envrun timeline");
        if (r->project) {
                er_rp_puts(&b, ": ");
                put_xml_str(&b, r->project, TOOLTIP_CHARS_MAX);
        }
        er_rp_printf(&b, "</title>\n<style>\n%s</style>\n", style);
        er_rp_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"#fff\"/>\n",
                     c.width, c.height);
        put_title(&b, &c);
        /* Stripes first, then the grid over them, then the bars. */
        for (size_t i = 1; i < c.rows; i += 2)
                er_rp_printf(
                    &b, "<rect class=\"stripe\" x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\"/>\n",
                    MARGIN, row_top(&c, i), c.width - 2 * MARGIN, ROW_H);
        put_axis(&b, &c);
        for (size_t i = 0; i < r->n_services; i++)
                put_service_row(&b, &c, i);
        if (has_test_row(r))
                put_test_row(&b, &c);
        put_markers(&b, &c);
        put_legend(&b, &c);
        er_rp_puts(&b, "</svg>\n");
        return er_rp_finish(&b, ret, ret_len);
}
