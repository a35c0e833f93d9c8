#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/units.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define SEC UINT64_C(1000000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

struct u64_case {
        const char *in;
        int r;
        uint64_t want;
};

static const struct u64_case duration_cases[] = {
        { "250ms", 0, 250000 },
        { "10s", 0, 10 * SEC },
        { "2m", 0, 2 * MIN },
        { "1h", 0, HOUR },
        { "1m30s", 0, 90 * SEC },
        { "1h2m3s", 0, HOUR + 2 * MIN + 3 * SEC },
        { "1h30m", 0, HOUR + 30 * MIN },
        { "1h1us", 0, HOUR + 1 },
        { "1h2m3s4ms5us", 0, HOUR + 2 * MIN + 3 * SEC + 4005 },
        { "1s500ms", 0, 1500000 },
        { "1500us", 0, 1500 },
        { "5", 0, 5 * SEC },
        { "0.5", 0, 500000 },
        { "1.5s", 0, 1500000 },
        { "0", 0, 0 },
        { "0s", 0, 0 },
        { "0ms", 0, 0 },
        { "0.1s", 0, 100000 },
        { "0.000001s", 0, 1 },
        { "1.000001s", 0, 1000001 },
        { "1.5ms", 0, 1500 },
        { "0.001ms", 0, 1 },
        { "1.5h", 0, 5400 * SEC },
        { "0.5m", 0, 30 * SEC },
        { "0.0000000025h", 0, 9 }, /* 3.6e9us * 2.5e-10 */
        { "0.0000000001h", -EINVAL, 0 }, /* 0.36us */
        { "007s", 0, 7 * SEC },
        { "1.50000000000000000000000000000s", 0, 1500000 },
        { "0.25h15m", 0, 30 * MIN },
        /* exactly 100 years, and one microsecond more */
        { "876000h", 0, ER_DURATION_MAX },
        { "3153600000", 0, ER_DURATION_MAX },
        { "876000h1us", -ERANGE, 0 },
        { "876001h", -ERANGE, 0 },
        { "3153600001", -ERANGE, 0 },
        { "3153600000.000001", -ERANGE, 0 },
        { "18446744073709551616us", -ERANGE, 0 },
        { "99999999999999999999999999999s", -ERANGE, 0 },
        { "99999999999999999999999999999h1s", -ERANGE, 0 },
        /* malformed, whatever the size of the numbers */
        { "99999999999999999999999999999x", -EINVAL, 0 },
        { "1.0000001s", -EINVAL, 0 },
        { "1.5us", -EINVAL, 0 },
        { "0.0001ms", -EINVAL, 0 },
        { "0.1234567", -EINVAL, 0 },
        { "0.0000000000000000000001h", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { "-1s", -EINVAL, 0 },
        { "+1s", -EINVAL, 0 },
        { "-1", -EINVAL, 0 },
        { "1x", -EINVAL, 0 },
        { "s", -EINVAL, 0 },
        { "ms", -EINVAL, 0 },
        { "1s1m", -EINVAL, 0 },
        { "1s1s", -EINVAL, 0 },
        { "1ms1s", -EINVAL, 0 },
        { "1us1ms", -EINVAL, 0 },
        { "1m1h", -EINVAL, 0 },
        { "1m30", -EINVAL, 0 },
        { "1h2", -EINVAL, 0 },
        { " 1s", -EINVAL, 0 },
        { "1s ", -EINVAL, 0 },
        { "1 s", -EINVAL, 0 },
        { "1S", -EINVAL, 0 },
        { "1H", -EINVAL, 0 },
        { "1sec", -EINVAL, 0 },
        { "1hh", -EINVAL, 0 },
        { "1d", -EINVAL, 0 },
        { "1.s", -EINVAL, 0 },
        { "1.", -EINVAL, 0 },
        { ".5s", -EINVAL, 0 },
        { ".5", -EINVAL, 0 },
        { "1..5s", -EINVAL, 0 },
        { "1.5.5s", -EINVAL, 0 },
        { "1e3", -EINVAL, 0 },
        { "0x10s", -EINVAL, 0 },
        { "1,5s", -EINVAL, 0 },
        { "1h-1m", -EINVAL, 0 },
        { "1s\n", -EINVAL, 0 },
};

static void test_duration_parse(void **state)
{
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(duration_cases); i++) {
                const struct u64_case *c = &duration_cases[i];
                uint64_t got = 12345;
                int r = er_duration_parse(c->in, &got);

                if (r != c->r)
                        fail_msg("duration '%s': returned %d, want %d", c->in, r, c->r);
                if (r == 0 && got != c->want)
                        fail_msg("duration '%s': %" PRIu64 "us, want %" PRIu64, c->in, got,
                                 c->want);
                /* ret_us is written only on success */
                if (c->r < 0 && got != 12345)
                        fail_msg("duration '%s': output written on failure", c->in);
        }
}

struct fmt_case {
        uint64_t in;
        const char *want;
};

static const struct fmt_case duration_fmt_cases[] = {
        { 0, "0s" },
        { 1, "1us" },
        { 999, "999us" },
        { 1000, "1ms" },
        { 1500, "1500us" },
        { 250000, "250ms" },
        { 999999, "999999us" },
        { SEC, "1s" },
        { 1500000, "1s500ms" },
        { SEC + 1, "1s1us" },
        { 10 * SEC, "10s" },
        { 90 * SEC, "1m30s" },
        { 2 * MIN, "2m" },
        { HOUR, "1h" },
        { HOUR + 1, "1h1us" },
        { HOUR + 2 * MIN + 3 * SEC, "1h2m3s" },
        { 25 * HOUR, "25h" },
        { ER_DURATION_MAX, "876000h" },
        { UINT64_MAX, "5124095576h1m49s551615us" },
};

static void test_duration_format(void **state)
{
        char buf[64];

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(duration_fmt_cases); i++) {
                const struct fmt_case *c = &duration_fmt_cases[i];
                int n = er_duration_format(c->in, buf, sizeof(buf));

                assert_string_equal(buf, c->want);
                assert_int_equal(n, strlen(c->want));
        }
}

static void test_duration_format_truncates(void **state)
{
        char buf[3];

        (void)state;
        assert_int_equal(er_duration_format(90 * SEC, buf, sizeof(buf)), 5);
        assert_string_equal(buf, "1m");
        assert_int_equal(er_duration_format(90 * SEC, NULL, 0), 5);
}

static void test_duration_round_trip(void **state)
{
        static const uint64_t values[] = {
                0,          1,           999,         1000,     1001,        250000,
                SEC - 1,    SEC,         SEC + 1,     59 * SEC, 61 * SEC,    HOUR - 1,
                HOUR,       HOUR + 1000, 123456789,   7 * HOUR + 59 * MIN + 59 * SEC + 999999,
                ER_DURATION_MAX,
        };
        char buf[64];
        uint64_t back;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
                er_duration_format(values[i], buf, sizeof(buf));
                assert_int_equal(er_duration_parse(buf, &back), 0);
                if (back != values[i])
                        fail_msg("'%s' parsed back as %" PRIu64 ", want %" PRIu64, buf, back,
                                 values[i]);
        }
}

#define KIB UINT64_C(1024)
#define MIB (KIB * KIB)
#define GIB (MIB * KIB)
#define TIB (GIB * KIB)

static const struct u64_case size_cases[] = {
        { "512K", 0, 512 * KIB },
        { "64M", 0, 64 * MIB },
        { "1G", 0, GIB },
        { "1T", 0, TIB },
        { "1.5G", 0, 3 * GIB / 2 },
        { "0.5K", 0, 512 },
        { "1.25K", 0, 1280 },
        { "64MiB", 0, 64 * MIB },
        { "64mib", 0, 64 * MIB },
        { "64MB", 0, 64 * MIB },
        { "64mb", 0, 64 * MIB },
        { "64m", 0, 64 * MIB },
        { "64k", 0, 64 * KIB },
        { "2g", 0, 2 * GIB },
        { "3t", 0, 3 * TIB },
        { "100", 0, 100 },
        { "100B", 0, 100 },
        { "100b", 0, 100 },
        { "0", 0, 0 },
        { "0K", 0, 0 },
        { "0.0G", 0, 0 },
        { "2.0B", 0, 2 },
        { "007K", 0, 7 * KIB },
        { "4194304T", 0, UINT64_C(1) << 62 },
        { "4611686018427387904", 0, UINT64_C(1) << 62 },
        { "4611686018427387905", -ERANGE, 0 },
        { "4194305T", -ERANGE, 0 },
        { "4194304.5T", -ERANGE, 0 },
        { "18446744073709551616", -ERANGE, 0 },
        { "99999999999999999999999999G", -ERANGE, 0 },
        { "1.1K", -EINVAL, 0 },
        { "1.5", -EINVAL, 0 },
        { "1.5B", -EINVAL, 0 },
        { "0.3K", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { "K", -EINVAL, 0 },
        { "B", -EINVAL, 0 },
        { "-1K", -EINVAL, 0 },
        { "+1K", -EINVAL, 0 },
        { "1 K", -EINVAL, 0 },
        { " 1K", -EINVAL, 0 },
        { "1K ", -EINVAL, 0 },
        { "1KK", -EINVAL, 0 },
        { "1Ki", -EINVAL, 0 },
        { "1KiBB", -EINVAL, 0 },
        { "1KBB", -EINVAL, 0 },
        { "1iB", -EINVAL, 0 },
        { "1P", -EINVAL, 0 },
        { "1E", -EINVAL, 0 },
        { "1x", -EINVAL, 0 },
        { "1.K", -EINVAL, 0 },
        { ".5K", -EINVAL, 0 },
        { "1e3", -EINVAL, 0 },
        { "99999999999999999999999999X", -EINVAL, 0 },
};

static void test_size_parse(void **state)
{
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(size_cases); i++) {
                const struct u64_case *c = &size_cases[i];
                uint64_t got = 12345;
                int r = er_size_parse(c->in, &got);

                if (r != c->r)
                        fail_msg("size '%s': returned %d, want %d", c->in, r, c->r);
                if (r == 0 && got != c->want)
                        fail_msg("size '%s': %" PRIu64 ", want %" PRIu64, c->in, got, c->want);
                if (r < 0 && got != 12345)
                        fail_msg("size '%s': output written on failure", c->in);
        }
}

static const struct fmt_case size_fmt_cases[] = {
        { 0, "0" },
        { 1, "1" },
        { 100, "100" },
        { 1023, "1023" },
        { 1025, "1025" },
        { KIB, "1K" },
        { 1536, "1536" },
        { 1536 * KIB, "1536K" },
        { 512 * KIB, "512K" },
        { 64 * MIB, "64M" },
        { 1024 * MIB, "1G" },
        { 3 * GIB / 2, "1536M" },
        { TIB, "1T" },
        { 2048 * TIB, "2048T" },
        { UINT64_C(1) << 62, "4194304T" },
        { UINT64_MAX, "18446744073709551615" },
};

static void test_size_format(void **state)
{
        char buf[32];
        uint64_t back;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(size_fmt_cases); i++) {
                const struct fmt_case *c = &size_fmt_cases[i];
                int n = er_size_format(c->in, buf, sizeof(buf));

                assert_string_equal(buf, c->want);
                assert_int_equal(n, strlen(c->want));
                if (c->in <= UINT64_C(1) << 62) {
                        assert_int_equal(er_size_parse(buf, &back), 0);
                        assert_true(back == c->in);
                }
        }
}

/* Every standard Linux signal, by its macro, with each alias. */
static const struct {
        const char *name;
        int sig;
} std_signals[] = {
        { "HUP", SIGHUP },     { "INT", SIGINT },       { "QUIT", SIGQUIT },   { "ILL", SIGILL },
        { "TRAP", SIGTRAP },   { "ABRT", SIGABRT },     { "IOT", SIGABRT },    { "BUS", SIGBUS },
        { "FPE", SIGFPE },     { "KILL", SIGKILL },     { "USR1", SIGUSR1 },   { "SEGV", SIGSEGV },
        { "USR2", SIGUSR2 },   { "PIPE", SIGPIPE },     { "ALRM", SIGALRM },   { "TERM", SIGTERM },
        { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },   { "CLD", SIGCHLD },    { "CONT", SIGCONT },
        { "STOP", SIGSTOP },   { "TSTP", SIGTSTP },     { "TTIN", SIGTTIN },   { "TTOU", SIGTTOU },
        { "URG", SIGURG },     { "XCPU", SIGXCPU },     { "XFSZ", SIGXFSZ },   { "VTALRM", SIGVTALRM },
        { "PROF", SIGPROF },   { "WINCH", SIGWINCH },   { "IO", SIGIO },       { "POLL", SIGIO },
        { "PWR", SIGPWR },     { "SYS", SIGSYS },
};

static void lowercase(char *s)
{
        for (; *s; s++)
                if (*s >= 'A' && *s <= 'Z')
                        *s = (char)(*s - 'A' + 'a');
}

static void test_signal_parse_names(void **state)
{
        char buf[32];
        int sig;

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(std_signals); i++) {
                const char *forms[4];

                snprintf(buf, sizeof(buf), "SIG%s", std_signals[i].name);
                forms[0] = std_signals[i].name;
                forms[1] = buf;
                for (size_t f = 0; f < 2; f++) {
                        char low[32];

                        sig = -1;
                        assert_int_equal(er_signal_parse(forms[f], &sig), 0);
                        assert_int_equal(sig, std_signals[i].sig);
                        snprintf(low, sizeof(low), "%s", forms[f]);
                        lowercase(low);
                        sig = -1;
                        if (er_signal_parse(low, &sig) != 0 || sig != std_signals[i].sig)
                                fail_msg("signal '%s' not parsed as %d", low,
                                         std_signals[i].sig);
                }
        }
        assert_int_equal(er_signal_parse("SigTerm", &sig), 0);
        assert_int_equal(sig, 15);
        assert_int_equal(er_signal_parse("sIgKiLl", &sig), 0);
        assert_int_equal(sig, 9);
}

struct sig_case {
        const char *in;
        int r;
        int want;
};

static void test_signal_parse_numbers_and_errors(void **state)
{
        const struct sig_case cases[] = {
                { "1", 0, 1 },
                { "9", 0, 9 },
                { "15", 0, 15 },
                { "31", 0, 31 },
                { "32", 0, 32 },
                { "64", 0, 64 },
                { "09", -EINVAL, 0 },
                { "015", -EINVAL, 0 },
                { "00", -EINVAL, 0 },
                { "0", -EINVAL, 0 },
                { "65", -EINVAL, 0 },
                { "99", -EINVAL, 0 },
                { "1000", -EINVAL, 0 },
                { "99999999999999999999", -EINVAL, 0 },
                { "-15", -EINVAL, 0 },
                { "+15", -EINVAL, 0 },
                { "1.5", -EINVAL, 0 },
                { "0x0f", -EINVAL, 0 },
                { "15 ", -EINVAL, 0 },
                { " 15", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "SIG", -EINVAL, 0 },
                { "sig", -EINVAL, 0 },
                { "SIGFOO", -EINVAL, 0 },
                { "FOO", -EINVAL, 0 },
                { "SIG TERM", -EINVAL, 0 },
                { "SIG_TERM", -EINVAL, 0 },
                { " TERM", -EINVAL, 0 },
                { "TERM ", -EINVAL, 0 },
                { "SIGSIGTERM", -EINVAL, 0 },
                { "sig15", -EINVAL, 0 },
                { "TER", -EINVAL, 0 },
                { "TERMX", -EINVAL, 0 },
                { "SIGUNUSED", -EINVAL, 0 },
                { "SIGRTMIN", 0, SIGRTMIN },
                { "RTMIN", 0, SIGRTMIN },
                { "rtmin", 0, SIGRTMIN },
                { "SIGRTMIN+3", 0, SIGRTMIN + 3 },
                { "RTMIN+3", 0, SIGRTMIN + 3 },
                { "sigrtmin+3", 0, SIGRTMIN + 3 },
                { "SIGRTMIN+0", 0, SIGRTMIN },
                { "SIGRTMIN+03", 0, SIGRTMIN + 3 },
                { "SIGRTMIN+003", -EINVAL, 0 },
                { "SIGRTMAX", 0, SIGRTMAX },
                { "RTMAX-2", 0, SIGRTMAX - 2 },
                { "SIGRTMAX-0", 0, SIGRTMAX },
                { "RTMIN-1", -EINVAL, 0 },
                { "RTMAX+1", -EINVAL, 0 },
                { "RTMIN+", -EINVAL, 0 },
                { "RTMIN-", -EINVAL, 0 },
                { "RTMIN+x", -EINVAL, 0 },
                { "RTMIN+-1", -EINVAL, 0 },
                { "RTMIN++1", -EINVAL, 0 },
                { "RTMIN3", -EINVAL, 0 },
                { "RTMIN+3 ", -EINVAL, 0 },
                { "RTMIN+1000", -EINVAL, 0 },
                { "RTMIN+99999999999", -EINVAL, 0 },
                { "RT", -EINVAL, 0 },
                { "SIGRT", -EINVAL, 0 },
        };

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int sig = -1;
                int r = er_signal_parse(cases[i].in, &sig);

                if (r != cases[i].r)
                        fail_msg("signal '%s': returned %d, want %d", cases[i].in, r, cases[i].r);
                if (r == 0 && sig != cases[i].want)
                        fail_msg("signal '%s': %d, want %d", cases[i].in, sig, cases[i].want);
                if (r < 0 && sig != -1)
                        fail_msg("signal '%s': output written on failure", cases[i].in);
        }
}

static void test_signal_rt_range(void **state)
{
        char buf[32];
        int sig, span = SIGRTMAX - SIGRTMIN;

        (void)state;
        /* The run-time values, whatever glibc reserves. */
        assert_true(SIGRTMIN >= 32 && SIGRTMIN < SIGRTMAX && SIGRTMAX <= 64);
        snprintf(buf, sizeof(buf), "SIGRTMIN+%d", span);
        assert_int_equal(er_signal_parse(buf, &sig), 0);
        assert_int_equal(sig, SIGRTMAX);
        snprintf(buf, sizeof(buf), "SIGRTMIN+%d", span + 1);
        assert_int_equal(er_signal_parse(buf, &sig), -EINVAL);
        snprintf(buf, sizeof(buf), "SIGRTMAX-%d", span);
        assert_int_equal(er_signal_parse(buf, &sig), 0);
        assert_int_equal(sig, SIGRTMIN);
        snprintf(buf, sizeof(buf), "SIGRTMAX-%d", span + 1);
        assert_int_equal(er_signal_parse(buf, &sig), -EINVAL);
}

static void test_signal_format(void **state)
{
        const struct {
                int sig;
                const char *want;
        } cases[] = {
                { SIGTERM, "SIGTERM" }, { SIGKILL, "SIGKILL" },     { SIGHUP, "SIGHUP" },
                { SIGABRT, "SIGABRT" }, { SIGIO, "SIGIO" },         { SIGCHLD, "SIGCHLD" },
                { SIGSYS, "SIGSYS" },   { SIGPWR, "SIGPWR" },       { SIGSTKFLT, "SIGSTKFLT" },
                { SIGWINCH, "SIGWINCH" }, { SIGRTMIN, "SIGRTMIN" }, { SIGRTMIN + 3, "SIGRTMIN+3" },
                { SIGRTMAX, "SIGRTMAX" }, { SIGRTMAX - 2, "SIGRTMAX-2" }, { 0, "signal 0" },
                { 99, "signal 99" },    { -1, "signal -1" },
        };
        char buf[32];

        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int n = er_signal_format(cases[i].sig, buf, sizeof(buf));

                assert_string_equal(buf, cases[i].want);
                assert_int_equal(n, strlen(cases[i].want));
        }
        /* A small buffer: snprintf's value and a truncated string. */
        assert_int_equal(er_signal_format(SIGTERM, buf, 4), 7);
        assert_string_equal(buf, "SIG");
}

static void test_signal_round_trip(void **state)
{
        char buf[32];
        int sig;

        (void)state;
        for (int n = 1; n <= 64; n++) {
                er_signal_format(n, buf, sizeof(buf));
                if (!strncmp(buf, "signal ", 7)) {
                        /* only glibc's reserved real-time signals have no name */
                        assert_true(n > 31 && n < SIGRTMIN);
                        continue;
                }
                sig = -1;
                assert_int_equal(er_signal_parse(buf, &sig), 0);
                if (sig != n)
                        fail_msg("'%s' parsed back as %d, want %d", buf, sig, n);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_duration_parse),
                cmocka_unit_test(test_duration_format),
                cmocka_unit_test(test_duration_format_truncates),
                cmocka_unit_test(test_duration_round_trip),
                cmocka_unit_test(test_size_parse),
                cmocka_unit_test(test_size_format),
                cmocka_unit_test(test_signal_parse_names),
                cmocka_unit_test(test_signal_parse_numbers_and_errors),
                cmocka_unit_test(test_signal_rt_range),
                cmocka_unit_test(test_signal_format),
                cmocka_unit_test(test_signal_round_trip),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
