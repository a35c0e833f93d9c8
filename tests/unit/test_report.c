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
#include <jansson.h>

#include "report/report.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NO ER_REPORT_NO_TIME
#define PYTHON "/usr/bin/python3"

static char *pytest_argv[] = {"pytest", "-q", NULL};

/* ---- building reports by hand ---- */

static void svc(struct er_report_service *s, const char *name, enum er_error_class error,
                const char *message)
{
        memset(s, 0, sizeof(*s));
        s->name = name;
        s->error = error;
        snprintf(s->message, sizeof(s->message), "%s", message);
        s->pid = 4000;
        s->exit_code = -1;
        s->started_ms = 3;
        s->ready_ms = 412;
        s->stopped_ms = 5703;
        s->cpu_ms = 180;
        s->memory_peak_bytes = 31457280;
        s->memory_peak_is_tree = true;
}

static void never_started(struct er_report_service *s)
{
        s->pid = 0;
        s->exit_code = -1;
        s->signal = 0;
        s->started_ms = s->ready_ms = s->stopped_ms = NO;
        s->cpu_ms = 0;
        s->memory_peak_bytes = 0;
}

static void push(struct er_report_service *s, const char *line)
{
        assert_int_equal(er_report_tail_push(s, line, strlen(line)), 0);
}

static struct er_report_port ports[] = {{"API_PORT", 41873}, {"DB_PORT", 5433}};

/* Everything fine: two services stopped by SIGTERM, the test passed. */
static void ok_report(struct er_report *r, struct er_report_service *s)
{
        memset(r, 0, sizeof(*r));
        r->project = "shop";
        r->ok = true;
        r->containment = "cgroup2";
        r->limits_enforced = true;
        r->ports = ports;
        r->n_ports = ARRAY_SIZE(ports);
        svc(&s[0], "db", ER_OK, "stopped by SIGTERM");
        s[0].pid = 4242;
        s[0].signal = SIGTERM;
        svc(&s[1], "api", ER_OK, "stopped by SIGTERM");
        s[1].signal = SIGTERM;
        s[1].started_ms = 420;
        s[1].ready_ms = 1620;
        s[1].stopped_ms = 3520;
        s[1].cpu_ms = 20;
        s[1].memory_peak_bytes = 8493466; /* 8.1M */
        r->services = s;
        r->n_services = 2;
        r->test.present = true;
        r->test.argv = pytest_argv;
        r->test.exit_code = 0;
        r->test.started_ms = 1700;
        r->test.duration_ms = 5120;
        r->total_ms = 5800;
}

enum { DB, API, WORKER, CACHE, SLOW, DUP, GHOST, HOG, N_FAILED };

/* One service of each class, the test killed at its time limit. */
static void failed_report(struct er_report *r, struct er_report_service *s)
{
        memset(r, 0, sizeof(*r));
        r->project = "shop";
        r->ok = false;
        r->exit_status = 125;
        r->containment = "reaper";
        r->containment_reason = "reaper: no writable cgroup2 hierarchy (/sys/fs/cgroup: Permission denied)";
        svc(&s[DB], "db", ER_OK, "exited 0 after SIGTERM");
        s[DB].exit_code = 0;
        snprintf(s[DB].limits_not_enforced, sizeof(s[DB].limits_not_enforced), "%s",
                 "memory: no cgroup to hold it (reaper containment); pids: no cgroup to hold it "
                 "(reaper containment)");
        svc(&s[API], "api", ER_PROCESS_EXITED_WITH_ERROR, "exited 1 while the test ran");
        s[API].exit_code = 1;
        push(&s[API], "Traceback (most recent call last):\n");
        push(&s[API], "\033[31mValueError: boom\033[0m\n");
        svc(&s[WORKER], "worker", ER_DEPENDENCY_FAILED, "api <- migrate <- db: exited 1");
        never_started(&s[WORKER]);
        svc(&s[CACHE], "cache", ER_PROCESS_FINISHED_WITH_ERROR,
            "killed by SIGKILL after 10s stop timeout");
        s[CACHE].signal = SIGKILL;
        s[CACHE].killed = true;
        s[CACHE].killed_descendants = 2;
        s[CACHE].memory_peak_is_tree = false;
        s[CACHE].restarts = 2;
        push(&s[CACHE], "ignoring SIGTERM");
        svc(&s[SLOW], "slow", ER_TIMEOUT_EXPIRED, "not ready within 30s (tcp 127.0.0.1:9000)");
        s[SLOW].ready_ms = NO;
        s[SLOW].signal = SIGTERM;
        svc(&s[DUP], "dup", ER_ALREADY_RUNNING, "port 5432 is already in use");
        never_started(&s[DUP]);
        svc(&s[GHOST], "ghost", ER_START_ERROR, "'ghost': command not found");
        never_started(&s[GHOST]);
        svc(&s[HOG], "hog", ER_LIMIT_EXCEEDED, "memory limit 64M exceeded (oom kill)");
        s[HOG].signal = SIGKILL;
        s[HOG].memory_peak_bytes = 67108864;
        s[HOG].log_dropped_bytes = 12345;
        r->services = s;
        r->n_services = N_FAILED;
        r->test.present = true;
        r->test.argv = pytest_argv;
        r->test.exit_code = -1;
        r->test.signal = SIGTERM;
        r->test.timed_out = true;
        snprintf(r->test.message, sizeof(r->test.message), "killed after 30m time limit");
        r->test.duration_ms = 1800000;
        r->total_ms = 1810000;
}

/* ---- helpers ---- */

static json_t *json_of(const struct er_report *r)
{
        char *out = NULL;
        size_t len = 0;
        json_error_t jerr;
        json_t *root;

        assert_int_equal(er_report_json(r, &out, &len), 0);
        assert_non_null(out);
        assert_int_equal(strlen(out), len);
        assert_true(len > 0 && out[len - 1] == '\n');
        root = json_loads(out, 0, &jerr);
        if (!root)
                fail_msg("bad JSON: %s at %d:%d\n%s", jerr.text, jerr.line, jerr.column, out);
        assert_true(json_is_object(root));
        free(out);
        return root;
}

static void assert_keys(json_t *o, const char *const *keys, size_t n)
{
        size_t i = 0;
        const char *k;
        json_t *v;

        json_object_foreach(o, k, v)
        {
                (void)v;
                assert_true(i < n);
                assert_string_equal(k, keys[i]);
                i++;
        }
        assert_int_equal(i, n);
}

static const char *jstr_at(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);
        assert_true(json_is_string(v));
        return json_string_value(v);
}

static json_int_t jint_at(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);
        assert_true(json_is_integer(v));
        return json_integer_value(v);
}

static void assert_null_at(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);
        assert_non_null(v); /* present, and null */
        assert_true(json_is_null(v));
}

/* Into the caller's pointer: gcc 12 -O3 warns (-Wdangling-pointer) when a
 * local whose address escaped is returned by value. */
static void text_of(const struct er_report *r, bool color, char **out)
{
        size_t len = 0;

        *out = NULL;
        assert_int_equal(er_report_text(r, color, out, &len), 0);
        assert_int_equal(strlen(*out), len);
}

static void assert_contains(const char *hay, const char *needle)
{
        if (!strstr(hay, needle))
                fail_msg("'%s' not found in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
        if (strstr(hay, needle))
                fail_msg("'%s' unexpectedly found in:\n%s", needle, hay);
}

struct junit_counts {
        int tests, failures, skipped, testcases, failure_elems, skipped_elems;
};

/* Writes the JUnit XML to a file and has Python's XML parser read it;
 * fails the test when it is not well-formed. */
static struct junit_counts junit_check(const struct er_report *r)
{
        static const char script[] =
            "import xml.dom.minidom,sys\n"
            "d=xml.dom.minidom.parse(sys.argv[1])\n"
            "s=d.getElementsByTagName(\"testsuite\")[0]\n"
            "print(s.getAttribute(\"tests\"),s.getAttribute(\"failures\"),"
            "s.getAttribute(\"skipped\"),len(d.getElementsByTagName(\"testcase\")),"
            "len(d.getElementsByTagName(\"failure\")),len(d.getElementsByTagName(\"skipped\")))\n";
        char path[] = "/tmp/test_report_junit_XXXXXX";
        char cmd[1024];
        struct junit_counts c = {0};
        char *out = NULL;
        size_t len = 0;
        FILE *f, *p;
        int fd, n, status;

        assert_int_equal(er_report_junit(r, &out, &len), 0);
        assert_int_equal(strlen(out), len);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        f = fdopen(fd, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(out, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        snprintf(cmd, sizeof(cmd), PYTHON " -c '%s' %s", script, path);
        assert_true(strlen(cmd) < sizeof(cmd) - 1);
        p = popen(cmd, "r");
        assert_non_null(p);
        n = fscanf(p, "%d %d %d %d %d %d", &c.tests, &c.failures, &c.skipped, &c.testcases,
                   &c.failure_elems, &c.skipped_elems);
        status = pclose(p);
        unlink(path);
        if (status != 0 || n != 6)
                fail_msg("JUnit XML rejected by the parser:\n%s", out);
        free(out);
        return c;
}

/* ---- tests ---- */

static void test_class_names(void **state)
{
        static const char *const want[] = {
            "ok",
            "ProcessExitedWithError",
            "ProcessFinishedWithError",
            "TimeoutExpired",
            "AlreadyRunning",
            "StartError",
            "LimitExceeded",
            "DependencyFailed",
        };
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                assert_string_equal(er_error_class_name((enum er_error_class)i), want[i]);
        assert_non_null(er_error_class_name((enum er_error_class)99));
}

static void test_tail_keeps_newest_20(void **state)
{
        struct er_report_service s;
        struct er_report r = {.services = &s, .n_services = 1};
        char line[32];
        (void)state;

        memset(&s, 0, sizeof(s));
        for (int i = 0; i < 25; i++) {
                snprintf(line, sizeof(line), "line %d\n", i);
                push(&s, line);
                assert_int_equal(s.n_tail, i < 20 ? i + 1 : 20);
        }
        for (int i = 0; i < 20; i++) {
                snprintf(line, sizeof(line), "line %d", i + 5);
                assert_string_equal(s.tail[i], line);
        }
        er_report_fini(&r);
        assert_int_equal(s.n_tail, 0);
        er_report_fini(&r); /* twice is fine */
        er_report_fini(NULL);
}

static void test_tail_copies_and_cuts(void **state)
{
        struct er_report_service s;
        struct er_report r = {.services = &s, .n_services = 1};
        char buf[8] = "abc\r\n";
        char *big;
        (void)state;

        memset(&s, 0, sizeof(s));
        assert_int_equal(er_report_tail_push(&s, buf, strlen(buf)), 0);
        buf[0] = 'X'; /* copied, not borrowed */
        assert_string_equal(s.tail[0], "abc");

        assert_int_equal(er_report_tail_push(&s, "a\0b", 3), 0);
        assert_string_equal(s.tail[1], "a\xef\xbf\xbd"
                                       "b");

        assert_int_equal(er_report_tail_push(&s, "", 0), 0);
        assert_string_equal(s.tail[2], "");

        /* A megabyte line is cut, at a character boundary. */
        big = malloc(1 << 20);
        assert_non_null(big);
        for (size_t i = 0; i < (1 << 20); i += 2)
                memcpy(big + i, "\xc3\xa9", 2);
        assert_int_equal(er_report_tail_push(&s, big, 1 << 20), 0);
        assert_true(strlen(s.tail[3]) < 4096);
        assert_non_null(strstr(s.tail[3], "\xc3\xa9\xc3\xa9 [...]"));
        assert_int_equal(strstr(s.tail[3], " [...]") - s.tail[3], 2048);
        /* ... backing over a character that straddles the limit */
        big[0] = 'x';
        for (size_t i = 1; i + 1 < (1 << 20); i += 2)
                memcpy(big + i, "\xc3\xa9", 2);
        assert_int_equal(er_report_tail_push(&s, big, 1 << 20), 0);
        assert_int_equal(strstr(s.tail[4], " [...]") - s.tail[4], 2047);
        assert_int_equal(s.tail[4][2046], '\xa9');
        free(big);
        er_report_fini(&r);
}

static void test_json_ok(void **state)
{
        static const char *const top[] = {"project",     "result",          "exit_status",
                                          "containment", "containment_reason", "limits_enforced", "ports",
                                          "test",        "services",        "total_ms"};
        static const char *const svc_keys[] = {
            "name",
            "result",
            "error",
            "pid",
            "exit_code",
            "signal",
            "killed",
            "started_ms",
            "ready_ms",
            "stopped_ms",
            "restarts",
            "cpu_ms",
            "memory_peak_bytes",
            "memory_peak_scope",
            "log_dropped_bytes",
            "limits_not_enforced",
            "user_not_applied",
            "message",
        };
        static const char *const test_keys[] = {"argv",        "exit_code", "signal",
                                                "duration_ms", "result",    "timed_out"};
        struct er_report_service s[2];
        struct er_report r;
        json_t *root, *db, *test, *ports_o, *argv;
        (void)state;

        ok_report(&r, s);
        root = json_of(&r);
        assert_keys(root, top, ARRAY_SIZE(top));
        assert_string_equal(jstr_at(root, "project"), "shop");
        assert_string_equal(jstr_at(root, "result"), "ok");
        assert_int_equal(jint_at(root, "exit_status"), 0);
        assert_string_equal(jstr_at(root, "containment"), "cgroup2");
        assert_true(json_is_true(json_object_get(root, "limits_enforced")));
        assert_int_equal(jint_at(root, "total_ms"), 5800);

        ports_o = json_object_get(root, "ports");
        assert_int_equal(json_object_size(ports_o), 2);
        assert_int_equal(jint_at(ports_o, "API_PORT"), 41873);
        assert_int_equal(jint_at(ports_o, "DB_PORT"), 5433);

        test = json_object_get(root, "test");
        assert_keys(test, test_keys, ARRAY_SIZE(test_keys));
        argv = json_object_get(test, "argv");
        assert_int_equal(json_array_size(argv), 2);
        assert_string_equal(json_string_value(json_array_get(argv, 1)), "-q");
        assert_int_equal(jint_at(test, "exit_code"), 0);
        assert_null_at(test, "signal");
        assert_int_equal(jint_at(test, "duration_ms"), 5120);
        assert_string_equal(jstr_at(test, "result"), "ok");
        assert_true(json_is_false(json_object_get(test, "timed_out")));

        assert_int_equal(json_array_size(json_object_get(root, "services")), 2);
        db = json_array_get(json_object_get(root, "services"), 0);
        assert_keys(db, svc_keys, ARRAY_SIZE(svc_keys)); /* no output_tail when ok */
        assert_string_equal(jstr_at(db, "name"), "db");
        assert_string_equal(jstr_at(db, "result"), "ok");
        assert_null_at(db, "error");
        assert_int_equal(jint_at(db, "pid"), 4242);
        assert_null_at(db, "exit_code");
        assert_string_equal(jstr_at(db, "signal"), "SIGTERM");
        assert_true(json_is_false(json_object_get(db, "killed")));
        assert_int_equal(jint_at(db, "started_ms"), 3);
        assert_int_equal(jint_at(db, "ready_ms"), 412);
        assert_int_equal(jint_at(db, "stopped_ms"), 5703);
        assert_int_equal(jint_at(db, "restarts"), 0);
        assert_int_equal(jint_at(db, "cpu_ms"), 180);
        assert_int_equal(jint_at(db, "memory_peak_bytes"), 31457280);
        assert_string_equal(jstr_at(db, "memory_peak_scope"), "tree");
        assert_int_equal(jint_at(db, "log_dropped_bytes"), 0);
        assert_string_equal(jstr_at(db, "message"), "stopped by SIGTERM");
        json_decref(root);
}

static void test_json_failed(void **state)
{
        static const char *const classes[N_FAILED] = {
            "ok",
            "ProcessExitedWithError",
            "DependencyFailed",
            "ProcessFinishedWithError",
            "TimeoutExpired",
            "AlreadyRunning",
            "StartError",
            "LimitExceeded",
        };
        struct er_report_service s[N_FAILED];
        struct er_report r;
        json_t *root, *services, *o, *tail, *test;
        (void)state;

        failed_report(&r, s);
        root = json_of(&r);
        assert_string_equal(jstr_at(root, "result"), "failed");
        assert_int_equal(jint_at(root, "exit_status"), 125);
        assert_true(json_is_false(json_object_get(root, "limits_enforced")));
        assert_int_equal(json_object_size(json_object_get(root, "ports")), 0);
        services = json_object_get(root, "services");
        assert_int_equal(json_array_size(services), N_FAILED);
        for (size_t i = 0; i < N_FAILED; i++) {
                o = json_array_get(services, i);
                assert_string_equal(jstr_at(o, "result"), classes[i]);
                if (i == DB) {
                        assert_null_at(o, "error");
                        assert_null(json_object_get(o, "output_tail"));
                } else {
                        assert_string_equal(jstr_at(o, "error"), classes[i]);
                        assert_true(json_is_array(json_object_get(o, "output_tail")));
                }
        }

        o = json_array_get(services, DB); /* exited normally: signal null */
        assert_int_equal(jint_at(o, "exit_code"), 0);
        assert_null_at(o, "signal");

        o = json_array_get(services, API);
        assert_int_equal(jint_at(o, "exit_code"), 1);
        tail = json_object_get(o, "output_tail");
        assert_int_equal(json_array_size(tail), 2);
        assert_string_equal(json_string_value(json_array_get(tail, 0)),
                            "Traceback (most recent call last):");
        /* JSON keeps the data as it was, escapes included */
        assert_string_equal(json_string_value(json_array_get(tail, 1)),
                            "\033[31mValueError: boom\033[0m");

        o = json_array_get(services, WORKER); /* never started */
        assert_null_at(o, "pid");
        assert_null_at(o, "exit_code");
        assert_null_at(o, "signal");
        assert_null_at(o, "started_ms");
        assert_null_at(o, "ready_ms");
        assert_null_at(o, "stopped_ms");
        assert_null_at(o, "memory_peak_bytes");
        assert_null_at(o, "memory_peak_scope");
        assert_int_equal(jint_at(o, "cpu_ms"), 0);
        assert_string_equal(jstr_at(o, "message"), "api <- migrate <- db: exited 1");
        assert_int_equal(json_array_size(json_object_get(o, "output_tail")), 0);

        o = json_array_get(services, CACHE); /* killed by signal */
        assert_null_at(o, "exit_code");
        assert_string_equal(jstr_at(o, "signal"), "SIGKILL");
        assert_true(json_is_true(json_object_get(o, "killed")));
        assert_int_equal(jint_at(o, "restarts"), 2);
        assert_string_equal(jstr_at(o, "memory_peak_scope"), "largest_process");

        o = json_array_get(services, SLOW); /* never ready */
        assert_int_equal(jint_at(o, "started_ms"), 3);
        assert_null_at(o, "ready_ms");

        o = json_array_get(services, HOG);
        assert_int_equal(jint_at(o, "log_dropped_bytes"), 12345);
        assert_null_at(o, "limits_not_enforced");
        assert_null_at(o, "user_not_applied");
        assert_string_equal(jstr_at(json_array_get(services, DB), "limits_not_enforced"),
                            "memory: no cgroup to hold it (reaper containment); pids: no cgroup "
                            "to hold it (reaper containment)");
        assert_string_equal(jstr_at(root, "containment_reason"),
                            "reaper: no writable cgroup2 hierarchy (/sys/fs/cgroup: Permission denied)");

        test = json_object_get(root, "test"); /* killed at its time limit */
        assert_null_at(test, "exit_code");
        assert_string_equal(jstr_at(test, "signal"), "SIGTERM");
        assert_int_equal(jint_at(test, "duration_ms"), 1800000);
        assert_string_equal(jstr_at(test, "result"), "TimeoutExpired");
        assert_true(json_is_true(json_object_get(test, "timed_out")));

        json_decref(root);
        er_report_fini(&r);
}

static void test_json_no_test_and_not_run(void **state)
{
        struct er_report_service s[2];
        struct er_report r;
        json_t *root, *test;
        (void)state;

        ok_report(&r, s);
        r.test.present = false;
        r.total_ms = ER_REPORT_NO_TIME;
        r.containment = NULL;
        root = json_of(&r);
        assert_null_at(root, "test");
        assert_null_at(root, "total_ms");
        assert_null_at(root, "containment");
        json_decref(root);

        ok_report(&r, s);
        r.ok = false;
        r.exit_status = 125;
        r.test.not_run = true;
        r.test.exit_code = -1;
        root = json_of(&r);
        test = json_object_get(root, "test");
        assert_null_at(test, "exit_code");
        assert_null_at(test, "signal");
        assert_null_at(test, "duration_ms");
        assert_string_equal(jstr_at(test, "result"), "DependencyFailed");
        assert_true(json_is_false(json_object_get(test, "timed_out")));
        json_decref(root);

        /* the test's own failure */
        ok_report(&r, s);
        r.ok = false;
        r.exit_status = 1;
        r.test.exit_code = 1;
        root = json_of(&r);
        test = json_object_get(root, "test");
        assert_int_equal(jint_at(test, "exit_code"), 1);
        assert_string_equal(jstr_at(test, "result"), "ProcessExitedWithError");
        json_decref(root);
}

static void test_json_invalid_utf8(void **state)
{
        struct er_report_service s[2];
        struct er_report r;
        json_t *root, *o;
        (void)state;

        ok_report(&r, s);
        s[1].error = ER_PROCESS_EXITED_WITH_ERROR;
        snprintf(s[1].message, sizeof(s[1].message), "bad \xff byte");
        push(&s[1], "caf\xc3 \xed\xa0\x80 \x01 ok \xc3\xa9");
        root = json_of(&r);
        o = json_array_get(json_object_get(root, "services"), 1);
        assert_string_equal(jstr_at(o, "message"), "bad \xef\xbf\xbd byte");
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(o, "output_tail"), 0)),
            "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \x01 ok \xc3\xa9");
        json_decref(root);
        er_report_fini(&r);
}

static void test_text_ok(void **state)
{
        static const char want[] =
            "db     ok   stopped by SIGTERM  ready 409ms  up 5.7s  cpu 180ms  mem 30.0M\n"
            "api    ok   stopped by SIGTERM  ready 1.2s  up 3.1s  cpu 20ms  mem 8.1M\n"
            "test   ok   pytest -q  exited 0 in 5.1s\n"
            "containment: cgroup2\n"
            "envrun: ok (2 services, test passed)\n";
        struct er_report_service s[2];
        struct er_report r;
        char *out;
        (void)state;

        ok_report(&r, s);
        text_of(&r, false, &out);
        assert_string_equal(out, want);
        free(out);

        r.test.present = false;
        r.n_services = 1;
        r.containment = NULL;
        text_of(&r, false, &out);
        assert_string_equal(out, "db   ok   stopped by SIGTERM  ready 409ms  up 5.7s  cpu 180ms  "
                                 "mem 30.0M\nenvrun: ok (1 service)\n");
        free(out);

        r.n_services = 0;
        text_of(&r, false, &out);
        assert_string_equal(out, "envrun: ok (0 services)\n");
        free(out);
}

/* A signal in the teardown after the test passed (t_phases, "stopping"):
 * the environment was stopped by it; nothing failed, and the line says so
 * rather than a bare "failed". */
static void test_text_interrupted_after_test(void **state)
{
        struct er_report_service s[2];
        struct er_report r;
        char *out;
        (void)state;

        ok_report(&r, s);
        r.ok = false;
        r.interrupted = SIGINT;
        r.exit_status = 130;
        text_of(&r, false, &out);
        assert_non_null(strstr(out, "envrun: stopped by SIGINT (2 services, test passed) (exit status 130)\n"));
        free(out);

        r.test.not_run = true;
        text_of(&r, false, &out);
        assert_non_null(strstr(out, "envrun: stopped by SIGINT (2 services, test not run) (exit status 130)\n"));
        free(out);

        /* a test that failed is still a failure */
        r.test.not_run = false;
        r.test.exit_code = 1;
        text_of(&r, false, &out);
        assert_null(strstr(out, "stopped by SIGINT"));
        free(out);
}

/* The column at which each service line's result starts. */
static void assert_aligned(const char *out, const char *const *names, size_t n)
{
        long col = -1;

        for (size_t i = 0; i < n; i++) {
                char needle[64];
                const char *line, *p;

                snprintf(needle, sizeof(needle), "\n%s ", names[i]);
                line = i == 0 && strncmp(out, names[0], strlen(names[0])) == 0
                           ? out
                           : strstr(out, needle) + 1;
                assert_non_null(line);
                for (p = line + strlen(names[i]); *p == ' '; p++)
                        ;
                if (col < 0)
                        col = p - line;
                assert_int_equal(p - line, col);
        }
}

static void test_text_failed(void **state)
{
        static const char *const names[] = {"db",  "api",   "worker", "cache", "slow",
                                            "dup", "ghost", "hog",    "test"};
        struct er_report_service s[N_FAILED];
        struct er_report r;
        char *out;
        (void)state;

        failed_report(&r, s);
        text_of(&r, false, &out);
        assert_lacks(out, "\033");
        assert_contains(out, "db       ok                         exited 0 after SIGTERM");
        /* "how it ended" is a column too, up to 40 characters wide */
        assert_contains(out, "api      ProcessExitedWithError     exited 1 while the test ran"
                             "               ready 409ms  up 5.7s  cpu 180ms  mem 30.0M\n");
        assert_contains(out, "(tcp 127.0.0.1:9000)  ready -  up 5.7s");
        /* a service that never ran shows no usage */
        assert_contains(out,
                        "worker   DependencyFailed           api <- migrate <- db: exited 1\n");
        assert_contains(out, "ghost    StartError                 'ghost': command not found\n");
        assert_contains(out, "dup      AlreadyRunning             port 5432 is already in use\n");
        assert_contains(out, "mem ~30.0M  restarts 2\n");
        assert_contains(out, "~ mem: peak of the largest single process, not of the whole tree\n");
        assert_contains(out, "mem 64.0M  log dropped 12.1K\n");
        assert_contains(out, "--- last lines of api ---\n"
                             "  Traceback (most recent call last):\n"
                             "  ValueError: boom\n"
                             "--- last lines of cache ---\n"
                             "  ignoring SIGTERM\n");
        assert_lacks(out, "last lines of db");
        assert_contains(out,
                        "\ntest     TimeoutExpired             pytest -q  killed after 30m time "
                        "limit\n");
        /* The closing lines: a containment weaker than cgroup2 says why and
         * what it means; each unenforced limit is named with its reason. */
        assert_contains(out, "\ncontainment: reaper (no writable cgroup2 hierarchy (/sys/fs/cgroup: "
                             "Permission denied)): no cgroup, so no limit can be enforced and the "
                             "peak memory is a single process's\n"
                             "limits not enforced for db: memory: no cgroup to hold it (reaper "
                             "containment); pids: no cgroup to hold it (reaper containment)\n"
                             "envrun: failed:");
        assert_contains(out, "\nenvrun: failed: api ProcessExitedWithError, cache "
                             "ProcessFinishedWithError, slow TimeoutExpired, dup AlreadyRunning, "
                             "ghost StartError, 1 more failed, 1 not started, test timed out "
                             "(exit status 125)\n");
        assert_aligned(out, names, ARRAY_SIZE(names));
        /* the summary is the last line */
        assert_int_equal(strrchr(out, '\n')[1], '\0');
        free(out);

        /* environment failed before the test */
        r.test.timed_out = false;
        r.test.not_run = true;
        r.test.message[0] = '\0';
        text_of(&r, false, &out);
        assert_contains(out, "\ntest     not run                    pytest -q  (the environment "
                             "failed)\n");
        assert_contains(out, ", test not run (exit status 125)\n");
        free(out);
        er_report_fini(&r);
}

static void test_text_color(void **state)
{
        struct er_report_service s[N_FAILED];
        struct er_report r;
        char *out;
        (void)state;

        failed_report(&r, s);
        text_of(&r, true, &out);
        assert_contains(out, "db       \033[32mok\033[0m                         exited 0");
        assert_contains(out, "api      \033[31mProcessExitedWithError\033[0m     exited 1");
        assert_contains(out, "envrun: \033[31mfailed\033[0m: ");
        /* the service's own escapes are still not passed through */
        assert_lacks(out, "\033[31mValueError");
        free(out);
        er_report_fini(&r);

        ok_report(&r, s);
        text_of(&r, true, &out);
        assert_contains(out, "envrun: \033[32mok\033[0m (2 services, test passed)\n");
        free(out);
}

static void test_text_hostile(void **state)
{
        struct er_report_service s[2];
        struct er_report r;
        char *out;
        (void)state;

        ok_report(&r, s);
        s[1].error = ER_PROCESS_EXITED_WITH_ERROR;
        snprintf(s[1].message, sizeof(s[1].message), "two\nlines\033]0;title\007");
        push(&s[1], "\033[2J\033[Hclear\rover\x7f\xc2\x9b"
                    "5m\xff");
        text_of(&r, false, &out);
        assert_lacks(out, "\033");
        assert_lacks(out, "\r");
        assert_lacks(out, "\x7f");
        assert_lacks(out, "\xc2\x9b");
        assert_contains(out, "   two\xef\xbf\xbdlines           ready");
        assert_contains(out, "\n  clear\xef\xbf\xbdover\xef\xbf\xbd\xef\xbf\xbd"
                             "5m\xef\xbf\xbd\n");
        free(out);
        er_report_fini(&r);
}

static void test_junit_counts(void **state)
{
        struct er_report_service s[N_FAILED];
        struct er_report r;
        struct junit_counts c;
        (void)state;

        if (access(PYTHON, X_OK) != 0)
                fail_msg("%s is needed to parse the JUnit XML (tests/run installs python3)", PYTHON);
        ok_report(&r, s);
        c = junit_check(&r);
        assert_int_equal(c.tests, 3);
        assert_int_equal(c.testcases, 3);
        assert_int_equal(c.failures, 0);
        assert_int_equal(c.failure_elems, 0);

        failed_report(&r, s);
        c = junit_check(&r);
        assert_int_equal(c.tests, N_FAILED + 1);
        assert_int_equal(c.testcases, N_FAILED + 1);
        assert_int_equal(c.failures, N_FAILED); /* 7 services and the test */
        assert_int_equal(c.failure_elems, N_FAILED);
        assert_int_equal(c.skipped, 0);

        r.test.timed_out = false;
        r.test.not_run = true;
        c = junit_check(&r);
        assert_int_equal(c.failures, N_FAILED - 1);
        assert_int_equal(c.skipped, 1);
        assert_int_equal(c.skipped_elems, 1);
        er_report_fini(&r);
}

static void test_junit_content(void **state)
{
        struct er_report_service s[N_FAILED];
        struct er_report r;
        char *out = NULL;
        size_t len;
        (void)state;

        failed_report(&r, s);
        assert_int_equal(er_report_junit(&r, &out, &len), 0);
        assert_contains(out, "<testsuite name=\"envrun: shop\" tests=\"9\" failures=\"8\"");
        assert_contains(out, "<testcase classname=\"envrun.shop\" name=\"service db\" "
                             "time=\"5.700\">");
        assert_contains(out, "<failure type=\"ProcessExitedWithError\" message=\"exited 1 while "
                             "the test ran\">Traceback (most recent call last):\n"
                             "ValueError: boom\n</failure>");
        assert_contains(out, "name=\"service worker\" time=\"0.000\">");
        assert_contains(out, "cpu_ms: 180\n");
        assert_contains(out, "memory_peak_bytes: 31457280 (largest single process)\n");
        assert_contains(out, "<testcase classname=\"envrun.shop\" name=\"test pytest -q\" "
                             "time=\"1800.000\">");
        assert_contains(out, "<failure type=\"TimeoutExpired\" message=\"killed after 30m time "
                             "limit\">");
        assert_lacks(out, "\033");
        free(out);
        er_report_fini(&r);
}

static void test_junit_hostile(void **state)
{
        static char *argv[] = {"sh", "-c", "echo \"<&>\" 'it'", NULL};
        struct er_report_service s[2];
        struct er_report r;
        struct junit_counts c;
        char *out = NULL;
        size_t len;
        (void)state;

        if (access(PYTHON, X_OK) != 0)
                fail_msg("%s is needed to parse the JUnit XML (tests/run installs python3)", PYTHON);
        ok_report(&r, s);
        r.project = "a&b<c>\"d'\x01\xff";
        r.containment = "x\"y";
        s[1].name = "we<ird>&\"'";
        s[1].error = ER_LIMIT_EXCEEDED;
        snprintf(s[1].message, sizeof(s[1].message), "quote \" apos ' amp & lt < \x02\t\n\r");
        push(&s[1], "controls \x01\x02\x03\x08\x0b\x0c\x0e\x1f\x7f end");
        push(&s[1], "invalid \xff\xfe \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82");
        push(&s[1], "nonchars \xef\xbf\xbe \xef\xbf\xbf and ]]> and <![CDATA[ x");
        push(&s[1], "\033[1;31merror\033[0m &amp; <tag attr=\"v\">");
        r.test.argv = argv;
        r.test.exit_code = 2;
        snprintf(r.test.message, sizeof(r.test.message), "\x1b\x05 & <");
        c = junit_check(&r);
        assert_int_equal(c.failures, 2);
        assert_int_equal(c.failure_elems, 2);
        assert_int_equal(c.testcases, 3);

        assert_int_equal(er_report_junit(&r, &out, &len), 0);
        assert_contains(out, "invalid \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd ");
        assert_contains(out, "]]&gt; and &lt;![CDATA[ x");
        assert_contains(out, "name=\"service we&lt;ird&gt;&amp;&quot;&apos;\"");
        assert_contains(out, "name=\"test sh -c &apos;echo &quot;&lt;&amp;&gt;&quot; "
                             "&apos;\\&apos;&apos;it&apos;\\&apos;&apos;&apos;\"");
        assert_lacks(out, "\x01");
        assert_lacks(out, "\033");
        free(out);
        er_report_fini(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_class_names),
            cmocka_unit_test(test_tail_keeps_newest_20),
            cmocka_unit_test(test_tail_copies_and_cuts),
            cmocka_unit_test(test_json_ok),
            cmocka_unit_test(test_json_failed),
            cmocka_unit_test(test_json_no_test_and_not_run),
            cmocka_unit_test(test_json_invalid_utf8),
            cmocka_unit_test(test_text_ok),
                cmocka_unit_test(test_text_interrupted_after_test),
            cmocka_unit_test(test_text_failed),
            cmocka_unit_test(test_text_color),
            cmocka_unit_test(test_text_hostile),
            cmocka_unit_test(test_junit_counts),
            cmocka_unit_test(test_junit_content),
            cmocka_unit_test(test_junit_hostile),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
