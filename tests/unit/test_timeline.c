/* The --timeline chart (core/report/timeline.h): hand-built reports in, SVG out,
 * read back with Python's XML parser (a real parser, not string matching)
 * for what a browser would see: one bar per service that started and one
 * for the test, widths and positions proportional to the times, names and
 * the command escaped. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "report/report.h"
#include "report/timeline.h"

#define NO ER_REPORT_NO_TIME
#define PYTHON "/usr/bin/python3"

/* Prints one line per thing the tests look at, tab-separated:
 *   B class data-name x width      each <rect> whose class has "bar"
 *   P class x width                each <rect> whose class has "phase"
 *   R class title                  each <g> row and its tooltip
 *   T class text                   each <text>
 *   K label x                      each axis label at the top
 *   A x1 x2                        each axis line
 * Newlines inside text become the two characters \n.  Exits 1 when the
 * file is not well-formed XML or its root is no <svg> in the SVG namespace. */
static const char script[] =
    "import sys,xml.dom.minidom as m\n"
    "d=m.parse(sys.argv[1])\n"
    "e=d.documentElement\n"
    "assert e.tagName==\"svg\" and e.getAttribute(\"xmlns\")==\"http://www.w3.org/2000/svg\"\n"
    "def t(n):\n"
    "  return \"\".join(c.data for c in n.childNodes if c.nodeType==c.TEXT_NODE)"
    ".replace(\"\\n\",\"\\\\n\")\n"
    "for r in d.getElementsByTagName(\"rect\"):\n"
    "  c=r.getAttribute(\"class\")\n"
    "  if \"bar\" in c.split():\n"
    "    print(\"B\",c,r.getAttribute(\"data-name\"),r.getAttribute(\"x\"),"
    "r.getAttribute(\"width\"),sep=\"\\t\")\n"
    "  if \"phase\" in c.split():\n"
    "    print(\"P\",c,r.getAttribute(\"x\"),r.getAttribute(\"width\"),sep=\"\\t\")\n"
    "for g in d.getElementsByTagName(\"g\"):\n"
    "  ti=g.getElementsByTagName(\"title\")\n"
    "  print(\"R\",g.getAttribute(\"class\"),t(ti[0]) if ti else \"\",sep=\"\\t\")\n"
    "for x in d.getElementsByTagName(\"text\"):\n"
    "  print(\"T\",x.getAttribute(\"class\"),t(x),sep=\"\\t\")\n"
    "ticks=[x for x in d.getElementsByTagName(\"text\") if x.getAttribute(\"class\")==\"tick\"]\n"
    "for x in ticks[0::2]:\n"
    "  print(\"K\",t(x),x.getAttribute(\"x\"),sep=\"\\t\")\n"
    "for x in d.getElementsByTagName(\"line\"):\n"
    "  if x.getAttribute(\"class\")==\"axis\":\n"
    "    print(\"A\",x.getAttribute(\"x1\"),x.getAttribute(\"x2\"),sep=\"\\t\")\n";

static char *sh_argv[] = {"sh", "-c", "echo \"<b>&</b>\" 'it'", NULL};

struct parsed {
        char *svg; /* the chart as written */
        size_t svg_len;
        char *lines; /* the parser's lines */
};

static void parsed_free(struct parsed *p)
{
        free(p->svg);
        free(p->lines);
}

/* Draws r, has Python parse it; fails the test when it does not parse. */
static struct parsed draw(const struct er_report *r)
{
        char path[] = "/tmp/test_timeline_XXXXXX";
        char cmd[4096], chunk[4096];
        struct parsed p = {0};
        size_t cap = 0, len = 0, n;
        FILE *f, *pipe;
        int fd, status;

        assert_int_equal(er_timeline_svg(r, &p.svg, &p.svg_len), 0);
        assert_non_null(p.svg);
        assert_int_equal(strlen(p.svg), p.svg_len);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(p.svg, 1, p.svg_len, f), p.svg_len);
        assert_int_equal(fclose(f), 0);
        snprintf(cmd, sizeof(cmd), "PYTHONIOENCODING=utf-8 " PYTHON " -c '%s' %s", script, path);
        assert_true(strlen(cmd) < sizeof(cmd) - 1);
        pipe = popen(cmd, "r");
        assert_non_null(pipe);
        while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0) {
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        p.lines = realloc(p.lines, cap);
                        assert_non_null(p.lines);
                }
                memcpy(p.lines + len, chunk, n);
                len += n;
        }
        status = pclose(pipe);
        unlink(path);
        if (!p.lines)
                p.lines = calloc(1, 1);
        else
                p.lines[len] = '\0';
        if (status != 0)
                fail_msg("the SVG does not parse as XML (status %d):\n%s", status, p.svg);
        return p;
}

static size_t count_lines(const struct parsed *p, const char *prefix)
{
        size_t n = 0, plen = strlen(prefix);

        for (const char *l = p->lines; *l;) {
                n += strncmp(l, prefix, plen) == 0;
                l = strchr(l, '\n');
                if (!l)
                        break;
                l++;
        }
        return n;
}

static bool has_line(const struct parsed *p, const char *line)
{
        size_t len = strlen(line);

        for (const char *l = p->lines; *l;) {
                if (strncmp(l, line, len) == 0 && (l[len] == '\n' || l[len] == '\0'))
                        return true;
                l = strchr(l, '\n');
                if (!l)
                        break;
                l++;
        }
        return false;
}

/* A line starting with prefix and holding needle somewhere after it. */
static bool has_line_with(const struct parsed *p, const char *prefix, const char *needle)
{
        size_t plen = strlen(prefix);

        for (const char *l = p->lines; *l;) {
                const char *end = strchr(l, '\n');
                size_t len = end ? (size_t)(end - l) : strlen(l);

                if (strncmp(l, prefix, plen) == 0 && memmem(l, len, needle, strlen(needle)))
                        return true;
                if (!end)
                        break;
                l = end + 1;
        }
        return false;
}

/* The bar named name: its class, x and width; fails when there is none. */
static void bar(const struct parsed *p, const char *name, char *class, size_t class_len, double *x,
                double *w)
{
        char prefix[256];
        size_t plen;

        for (const char *l = p->lines; *l;) {
                const char *tab1 = strchr(l, '\t'), *tab2;

                if (l[0] == 'B' && tab1 && (tab2 = strchr(tab1 + 1, '\t'))) {
                        snprintf(prefix, sizeof(prefix), "\t%s\t", name);
                        plen = strlen(prefix);
                        if (strncmp(tab2, prefix, plen) == 0) {
                                snprintf(class, class_len, "%.*s", (int)(tab2 - tab1 - 1),
                                         tab1 + 1);
                                assert_int_equal(sscanf(tab2 + plen, "%lf\t%lf", x, w), 2);
                                return;
                        }
                }
                l = strchr(l, '\n');
                if (!l)
                        break;
                l++;
        }
        fail_msg("no bar named '%s' in:\n%s", name, p->lines);
}

static double absd(double v)
{
        return v < 0 ? -v : v;
}

/* The x of the axis label label. */
static double tick_x(const struct parsed *p, const char *label)
{
        char prefix[64];
        const char *l;
        double x;

        snprintf(prefix, sizeof(prefix), "\nK\t%s\t", label);
        l = strstr(p->lines, prefix);
        if (!l || sscanf(l + strlen(prefix), "%lf", &x) != 1)
                fail_msg("no axis label '%s' in:\n%s", label, p->lines);
        return x;
}

static void assert_close(double got, double want, double tol)
{
        if (absd(got - want) > tol)
                fail_msg("got %f, want %f (within %f)", got, want, tol);
}

static void assert_contains(const char *hay, const char *needle)
{
        if (!strstr(hay, needle))
                fail_msg("'%s' not found in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
        if (strstr(hay, needle))
                fail_msg("'%s' should not be in:\n%s", needle, hay);
}

static void service(struct er_report_service *s, const char *name, enum er_error_class error,
                    const char *message, uint64_t started, uint64_t ready, uint64_t stopped)
{
        memset(s, 0, sizeof(*s));
        s->name = name;
        s->error = error;
        snprintf(s->message, sizeof(s->message), "%s", message);
        s->pid = started == NO ? 0 : 4000;
        s->exit_code = -1;
        s->started_ms = started;
        s->ready_ms = ready;
        s->stopped_ms = stopped;
}

enum { DB, API, WORKER, N_SVC };

/* db ready after 3 failed attempts, api failed while the test ran, worker
 * never started, the test a shell command full of XML specials. */
static void build(struct er_report *r, struct er_report_service *s)
{
        memset(r, 0, sizeof(*r));
        r->project = "shop";
        r->ok = false;
        r->exit_status = 125;
        r->containment = "cgroup2";
        service(&s[DB], "db", ER_OK, "stopped by SIGTERM", 3, 412, 5703);
        s[DB].failed_attempts = 3;
        s[DB].signal = SIGTERM;
        service(&s[API], "api", ER_PROCESS_EXITED_WITH_ERROR, "exited 1 while the test ran", 420,
                1620, 3520);
        s[API].exit_code = 1;
        s[API].failed_attempts = 1;
        service(&s[WORKER], "worker", ER_DEPENDENCY_FAILED, "worker <- api: exited 1", NO, NO, NO);
        r->services = s;
        r->n_services = N_SVC;
        r->test.present = true;
        r->test.argv = sh_argv;
        r->test.exit_code = 0;
        r->test.started_ms = 1700;
        r->test.duration_ms = 1800;
        r->total_ms = 5800;
}

/* ---- tests ---- */

static void test_one_bar_per_started_service_and_the_test(void **state)
{
        struct er_report_service s[N_SVC];
        struct er_report r;
        struct parsed p;
        char class[128];
        double x, w;
        (void)state;

        build(&r, s);
        p = draw(&r);
        assert_int_equal(count_lines(&p, "B\t"), 3);
        bar(&p, "db", class, sizeof(class), &x, &w);
        assert_string_equal(class, "bar service ok");
        bar(&p, "api", class, sizeof(class), &x, &w);
        assert_string_equal(class, "bar service failed");
        bar(&p, "test", class, sizeof(class), &x, &w);
        assert_string_equal(class, "bar test ok");
        assert_false(has_line_with(&p, "B\t", "worker"));
        /* Each started service has its starting phase drawn over its bar. */
        assert_int_equal(count_lines(&p, "P\tphase starting\t"), 2);
        /* A row for every service, the one never started included, and the test. */
        assert_int_equal(count_lines(&p, "R\t"), 4);
        assert_true(has_line_with(&p, "R\trow service ok\t", "db: ok"));
        assert_true(has_line_with(&p, "R\trow service failed\t", "api: ProcessExitedWithError"));
        assert_true(
            has_line_with(&p, "R\trow service failed not-started\t", "worker: DependencyFailed"));
        assert_true(has_line_with(&p, "R\trow test ok\t", "test: sh -c"));
        parsed_free(&p);

        /* A failed test is red too. */
        r.test.exit_code = 2;
        p = draw(&r);
        bar(&p, "test", class, sizeof(class), &x, &w);
        assert_string_equal(class, "bar test failed");
        assert_true(has_line_with(&p, "T\tdetail\t", "ProcessExitedWithError"));
        parsed_free(&p);

        /* Not run: a row that says so, no bar. */
        r.test.present = false;
        r.test.not_run = true;
        p = draw(&r);
        assert_int_equal(count_lines(&p, "B\t"), 2);
        assert_true(has_line_with(&p, "R\trow test not-started\t", "not run"));
        parsed_free(&p);
}

static void test_widths_and_positions_proportional(void **state)
{
        struct er_report_service s[N_SVC];
        struct er_report r;
        struct parsed p;
        char class[128];
        double xdb, wdb, xapi, wapi, xt, wt, scale, x0, px, pw;
        (void)state;

        build(&r, s);
        p = draw(&r);
        bar(&p, "db", class, sizeof(class), &xdb, &wdb);
        bar(&p, "api", class, sizeof(class), &xapi, &wapi);
        bar(&p, "test", class, sizeof(class), &xt, &wt);
        scale = wdb / (5703 - 3);
        assert_true(scale > 0.05); /* visible: 5.7 s is most of the chart */
        assert_close(wapi, (3520 - 420) * scale, 0.05);
        assert_close(wt, 1800 * scale, 0.05);
        /* Positions: the same scale from one origin. */
        x0 = xdb - 3 * scale;
        assert_close(xapi, x0 + 420 * scale, 0.05);
        assert_close(xt, x0 + 1700 * scale, 0.05);
        /* The starting phases: spawn to ready. */
        for (const char *l = p.lines; (l = strstr(l, "P\tphase starting\t")); l++) {
                assert_int_equal(sscanf(l, "P\tphase starting\t%lf\t%lf", &px, &pw), 2);
                if (absd(px - xdb) < 0.01)
                        assert_close(pw, (412 - 3) * scale, 0.05);
                else if (absd(px - xapi) < 0.01)
                        assert_close(pw, (1620 - 420) * scale, 0.05);
                else
                        fail_msg("a phase at x=%f belongs to no bar", px);
        }
        /* The axis: 5.8 s takes steps of 1 s, up to 6 s, labelled top and bottom. */
        assert_int_equal(count_lines(&p, "T\ttick\t"), 2 * 7);
        assert_true(has_line(&p, "T\ttick\t0"));
        assert_true(has_line(&p, "T\ttick\t1s"));
        assert_true(has_line(&p, "T\ttick\t6s"));
        /* The axis has the bars' scale and origin. */
        assert_close(tick_x(&p, "0"), x0, 0.05);
        assert_close(tick_x(&p, "1s"), x0 + 1000 * scale, 0.05);
        assert_close(tick_x(&p, "6s"), x0 + 6000 * scale, 0.05);
        assert_true(6000 * scale > 600 && 6000 * scale < 1000);
        /* The axis lines (top and bottom) run from the first label to the last. */
        assert_int_equal(count_lines(&p, "A\t"), 2);
        for (const char *l = p.lines; (l = strstr(l, "\nA\t")); l++) {
                double x1, x2;

                assert_int_equal(sscanf(l, "\nA\t%lf\t%lf", &x1, &x2), 2);
                assert_close(x1, tick_x(&p, "0"), 0.001);
                assert_close(x2, tick_x(&p, "6s"), 0.001);
        }
        parsed_free(&p);
}

static void test_labels(void **state)
{
        struct er_report_service s[N_SVC];
        struct er_report r;
        struct parsed p;
        (void)state;

        build(&r, s);
        p = draw(&r);
        assert_true(has_line(&p, "T\tname\tdb"));
        assert_true(has_line(&p, "T\tname\tapi"));
        assert_true(has_line(&p, "T\tname\tworker"));
        assert_true(has_line(&p, "T\tname\ttest"));
        assert_true(has_line(&p, "T\tdetail\tready in 409ms \xc2\xb7 up 5.7s \xc2\xb7 "
                                 "3 failed attempts"));
        assert_true(has_line(&p, "T\tdetail\tProcessExitedWithError \xc2\xb7 1 failed attempt "
                                 "\xc2\xb7 exited 1 while the test ran"));
        assert_true(has_line(&p, "T\tdetail\tDependencyFailed \xc2\xb7 worker <- api: exited 1"));
        assert_true(has_line_with(&p, "R\trow service ok\t",
                                  "db: ok\\nspawned at 3ms\\nready at 412ms (after 409ms)\\n"
                                  "stopped at 5.7s\\n3 failed readiness attempts\\n"
                                  "stopped by SIGTERM"));
        assert_true(has_line_with(&p, "T\ttitle\t", "envrun: shop"));
        assert_true(has_line_with(&p, "T\ttitle\t", "failed"));
        assert_true(has_line_with(&p, "T\ttitle\t", "exit status 125"));
        parsed_free(&p);

        /* A long message is cut in the note, whole in the tooltip. */
        snprintf(s[API].message, sizeof(s[API].message),
                 "exited 1 while the test ran, after printing a very long message%s", "!");
        p = draw(&r);
        assert_true(has_line(&p, "T\tdetail\tProcessExitedWithError \xc2\xb7 1 failed attempt "
                                 "\xc2\xb7 exited 1 while the test ran\xe2\x80\xa6"));
        assert_true(has_line_with(&p, "R\trow service failed\t", "a very long message!"));
        /* Self-contained: no scripts, no external references. */
        assert_lacks(p.svg, "<script");
        assert_lacks(p.svg, "href");
        assert_lacks(p.svg, "@import");
        assert_lacks(p.svg, "url(");
        parsed_free(&p);
}

static void test_escaping(void **state)
{
        static char *nasty_argv[] = {"printf", "%s\\n", "a\tb\x01\xff</text>]]>", NULL};
        struct er_report_service s[N_SVC];
        struct er_report r;
        struct parsed p;
        char class[128];
        double x, w;
        (void)state;

        build(&r, s);
        p = draw(&r);
        /* The command as the shell would read it back, escaped in the file
         * and intact once parsed. */
        assert_lacks(p.svg, "<b>");
        assert_contains(p.svg, "echo &quot;&lt;b&gt;&amp;&lt;/b&gt;&quot;");
        assert_true(has_line_with(&p, "T\tdetail\t", "$ sh -c 'echo \"<b>&</b>\" '\\''it'\\'''"));
        parsed_free(&p);

        /* Names a config would refuse still come out well-formed. */
        r.project = "a&b<c>\"d'\x01\xff";
        s[API].name = "we<ird>&\"'";
        snprintf(s[API].message, sizeof(s[API].message), "quote \" lt < \x02\t\n\x1b[31m");
        r.test.argv = nasty_argv;
        p = draw(&r);
        assert_lacks(p.svg, "\x01");
        assert_lacks(p.svg, "\x02");
        assert_lacks(p.svg, "\x1b");
        assert_lacks(p.svg, "</text>]]>");
        bar(&p, "we<ird>&\"'", class, sizeof(class), &x, &w);
        assert_string_equal(class, "bar service failed");
        assert_true(has_line(&p, "T\tname\twe<ird>&\"'"));
        assert_true(has_line_with(&p, "T\ttitle\t", "envrun: a&b<c>\"d'\xef\xbf\xbd\xef\xbf\xbd"));
        assert_true(
            has_line_with(&p, "R\trow test ok\t", "'a b\xef\xbf\xbd\xef\xbf\xbd</text>]]>'"));
        parsed_free(&p);
}

static void test_long_names_cut(void **state)
{
        struct er_report_service s[N_SVC];
        struct er_report r;
        struct parsed p;
        char class[128];
        double x, w;
        const char *name = "a-very-long-service-name-that-goes-on-and-on-and-on";
        (void)state;

        build(&r, s);
        s[DB].name = name;
        p = draw(&r);
        /* The label is cut with an ellipsis; data-name and the tooltip keep it whole. */
        assert_true(has_line(&p, "T\tname\ta-very-long-service-name-that-g\xe2\x80\xa6"));
        bar(&p, name, class, sizeof(class), &x, &w);
        assert_true(has_line_with(&p, "R\trow service ok\t", name));
        parsed_free(&p);
}

static void test_instant_and_running(void **state)
{
        struct er_report_service s[N_SVC];
        struct er_report r;
        struct parsed p;
        char class[128];
        double xdb, wdb, xapi, wapi, scale;
        (void)state;

        build(&r, s);
        /* api spawned and died in the same millisecond: still one pixel. */
        s[API].started_ms = s[API].stopped_ms = 2000;
        s[API].ready_ms = NO;
        s[API].error = ER_START_ERROR;
        /* db never stopped (the report was made while it ran): up to the end. */
        s[DB].stopped_ms = NO;
        p = draw(&r);
        bar(&p, "db", class, sizeof(class), &xdb, &wdb);
        bar(&p, "api", class, sizeof(class), &xapi, &wapi);
        scale = wdb / (5800 - 3);
        assert_close(wapi, 1, 0.001);
        assert_close(xapi, xdb + (2000 - 3) * scale, 0.05);
        assert_true(has_line_with(&p, "T\tdetail\t", "StartError"));
        parsed_free(&p);

        /* One millisecond is under a pixel here: still one pixel. */
        s[API].stopped_ms = 2001;
        p = draw(&r);
        bar(&p, "api", class, sizeof(class), &xapi, &wapi);
        assert_close(wapi, 1, 0.001);
        parsed_free(&p);
}

static void test_empty_and_long_runs(void **state)
{
        struct er_report_service s[N_SVC];
        struct er_report r = {0};
        struct parsed p;
        char class[128];
        double x, w;
        (void)state;

        /* Nothing at all: still a chart. */
        p = draw(&r);
        assert_int_equal(count_lines(&p, "B\t"), 0);
        assert_true(has_line(&p, "T\ttick\t0"));
        parsed_free(&p);

        /* Two hours: the axis counts in quarters of an hour. */
        build(&r, s);
        r.test.duration_ms = 2 * 3600 * 1000;
        r.total_ms = r.test.started_ms + r.test.duration_ms + 100;
        s[DB].stopped_ms = r.total_ms;
        p = draw(&r);
        assert_true(has_line(&p, "T\ttick\t15m"));
        assert_true(has_line(&p, "T\ttick\t1h"));
        assert_true(has_line(&p, "T\ttick\t1h15m"));
        assert_true(has_line(&p, "T\ttick\t2h15m"));
        assert_int_equal(count_lines(&p, "T\ttick\t"), 2 * 10);
        bar(&p, "test", class, sizeof(class), &x, &w);
        assert_true(w > 600);
        parsed_free(&p);

        /* Sub-second: 1-2-5 steps in ms. */
        build(&r, s);
        r.total_ms = 180;
        s[DB].started_ms = 0, s[DB].ready_ms = 40, s[DB].stopped_ms = 175;
        s[API].started_ms = 50, s[API].ready_ms = 60, s[API].stopped_ms = 170;
        r.test.started_ms = 70, r.test.duration_ms = 90;
        p = draw(&r);
        assert_true(has_line(&p, "T\ttick\t20ms"));
        assert_true(has_line(&p, "T\ttick\t180ms"));
        assert_false(has_line(&p, "T\ttick\t200ms"));
        parsed_free(&p);

        /* Times past anything real do not overflow the arithmetic. */
        build(&r, s);
        r.total_ms = UINT64_MAX - 1;
        r.test.duration_ms = UINT64_MAX - 1;
        p = draw(&r);
        assert_int_equal(count_lines(&p, "B\t"), 3);
        parsed_free(&p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_one_bar_per_started_service_and_the_test),
            cmocka_unit_test(test_widths_and_positions_proportional),
            cmocka_unit_test(test_labels),
            cmocka_unit_test(test_escaping),
            cmocka_unit_test(test_long_names_cut),
            cmocka_unit_test(test_instant_and_running),
            cmocka_unit_test(test_empty_and_long_runs),
        };

        if (access(PYTHON, X_OK) != 0) {
                fprintf(stderr, "test_timeline needs %s to parse the SVG\n", PYTHON);
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
