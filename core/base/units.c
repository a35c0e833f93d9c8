#include "base/units.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A decimal number as written: integer part (saturated, with a flag) and the
 * fraction's significant digits (trailing zeros dropped). */
struct decimal {
        uint64_t ipart;
        bool ipart_overflow;
        uint64_t frac;     /* "0.250" -> 25 */
        unsigned frac_len; /* ... and 2 */
        bool has_frac;
};

/* Beyond this many significant fraction digits no unit of ours can give a
 * whole number (the largest, 1h in us, has 2^10 and 5^8 as factors), and 10^18
 * still fits in a uint64_t. */
#define FRAC_DIGITS_MAX 18

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Reads [0-9]+(\.[0-9]+)? at *p.  Returns false when there is no number. */
static bool decimal_read(const char **p, struct decimal *d)
{
        const char *s = *p;
        const char *frac_start, *frac_end;

        memset(d, 0, sizeof(*d));
        if (!is_digit(*s))
                return false;
        for (; is_digit(*s); s++) {
                unsigned digit = (unsigned)(*s - '0');

                if (d->ipart_overflow || d->ipart > (UINT64_MAX - digit) / 10) {
                        d->ipart_overflow = true;
                        continue;
                }
                d->ipart = d->ipart * 10 + digit;
        }
        if (*s == '.') {
                if (!is_digit(s[1]))
                        return false;
                d->has_frac = true;
                frac_start = ++s;
                while (is_digit(*s))
                        s++;
                frac_end = s;
                while (frac_end > frac_start && frac_end[-1] == '0')
                        frac_end--;
                if (frac_end - frac_start > FRAC_DIGITS_MAX) {
                        /* Cannot be whole: mark it so with a length no unit divides. */
                        d->frac = 1;
                        d->frac_len = FRAC_DIGITS_MAX + 1;
                } else {
                        for (const char *f = frac_start; f < frac_end; f++)
                                d->frac = d->frac * 10 + (uint64_t)(*f - '0');
                        d->frac_len = (unsigned)(frac_end - frac_start);
                }
        }
        *p = s;
        return true;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
        while (b) {
                uint64_t t = a % b;
                a = b;
                b = t;
        }
        return a;
}

/* d * mult, exactly, into *ret.  -EINVAL when not a whole number, -ERANGE
 * when over max. */
static int decimal_scale(const struct decimal *d, uint64_t mult, uint64_t max, uint64_t *ret)
{
        uint64_t whole, part = 0;

        if (d->frac_len > FRAC_DIGITS_MAX)
                return -EINVAL;
        if (d->frac_len > 0) {
                uint64_t pow10 = 1, g;

                for (unsigned i = 0; i < d->frac_len; i++)
                        pow10 *= 10;
                /* frac * mult / pow10 without overflow: reduce the fraction
                 * first; the quotient is then below mult. */
                g = gcd(mult, pow10);
                if (d->frac % (pow10 / g))
                        return -EINVAL;
                part = d->frac / (pow10 / g) * (mult / g);
        }
        if (d->ipart_overflow || d->ipart > max / mult)
                return -ERANGE;
        whole = d->ipart * mult;
        if (whole > max - part)
                return -ERANGE;
        *ret = whole + part;
        return 0;
}

/* Largest unit first: the order groups must follow. */
static const struct {
        const char *name;
        uint64_t us;
} duration_units[] = {
        { "h", UINT64_C(3600000000) },
        { "m", UINT64_C(60000000) },
        { "s", UINT64_C(1000000) },
        { "ms", UINT64_C(1000) },
        { "us", UINT64_C(1) },
};

#define N_DURATION_UNITS (sizeof(duration_units) / sizeof(duration_units[0]))

/* Index of the unit spelled by the letters at *p, advancing *p; -1 if none. */
static int duration_unit_read(const char **p)
{
        const char *s = *p;
        size_t len = 0;

        while ((s[len] >= 'a' && s[len] <= 'z') || (s[len] >= 'A' && s[len] <= 'Z'))
                len++;
        for (size_t i = 0; i < N_DURATION_UNITS; i++) {
                if (strlen(duration_units[i].name) == len &&
                    !memcmp(duration_units[i].name, s, len)) {
                        *p = s + len;
                        return (int)i;
                }
        }
        return -1;
}

int er_duration_parse(const char *s, uint64_t *ret_us)
{
        const char *p = s;
        uint64_t total = 0;
        int last_unit = -1;
        int r, range_err = 0;

        if (!s || !*s)
                return -EINVAL;
        while (*p) {
                struct decimal d;
                uint64_t v;
                int unit;

                if (!decimal_read(&p, &d))
                        return -EINVAL;
                if (!*p && last_unit < 0) {
                        unit = 2; /* a bare number: seconds */
                } else {
                        unit = duration_unit_read(&p);
                        if (unit < 0 || unit <= last_unit)
                                return -EINVAL;
                }
                last_unit = unit;
                /* Keep reading after an overflow: a malformed string is
                 * -EINVAL whatever its numbers. */
                r = decimal_scale(&d, duration_units[unit].us, ER_DURATION_MAX, &v);
                if (r == -EINVAL)
                        return r;
                if (r < 0 || v > ER_DURATION_MAX - total) {
                        range_err = -ERANGE;
                        continue;
                }
                total += v;
        }
        if (range_err)
                return range_err;
        *ret_us = total;
        return 0;
}

int er_duration_format(uint64_t us, char *buf, size_t len)
{
        char tmp[64];
        size_t off = 0;
        uint64_t sub;

        if (us == 0)
                return snprintf(buf, len, "0s");
        /* h, m and s as groups; what is left under a second as a single
         * group, in ms when it is exact, else in us ("1500us", not "1ms500us"). */
        for (size_t i = 0; i < 3; i++) {
                uint64_t q = us / duration_units[i].us;

                if (q) {
                        off += (size_t)snprintf(tmp + off, sizeof(tmp) - off, "%" PRIu64 "%s", q,
                                                duration_units[i].name);
                        us -= q * duration_units[i].us;
                }
        }
        sub = us;
        if (sub && sub % 1000 == 0)
                snprintf(tmp + off, sizeof(tmp) - off, "%" PRIu64 "ms", sub / 1000);
        else if (sub)
                snprintf(tmp + off, sizeof(tmp) - off, "%" PRIu64 "us", sub);
        return snprintf(buf, len, "%s", tmp);
}

#define SIZE_MAX_BYTES (UINT64_C(1) << 62)

int er_size_parse(const char *s, uint64_t *ret_bytes)
{
        static const char units[] = "KMGT";
        const char *p = s;
        struct decimal d;
        uint64_t mult = 1;
        bool has_unit = false;
        const char *u;

        if (!s || !decimal_read(&p, &d))
                return -EINVAL;
        if (*p && *p != 'b' && *p != 'B') {
                u = strchr(units, *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
                if (!u)
                        return -EINVAL;
                mult = UINT64_C(1) << (10 * (u - units + 1));
                has_unit = true;
                p++;
                if (!strcasecmp(p, "ib") || !strcasecmp(p, "b"))
                        p += strlen(p);
        } else if (*p) {
                has_unit = true;
                p++;
        }
        if (*p)
                return -EINVAL;
        if (d.has_frac && !has_unit)
                return -EINVAL;
        return decimal_scale(&d, mult, SIZE_MAX_BYTES, ret_bytes);
}

int er_size_format(uint64_t bytes, char *buf, size_t len)
{
        static const char units[] = "KMGT";
        int i;

        if (bytes == 0)
                return snprintf(buf, len, "0");
        for (i = 4; i > 0; i--) {
                uint64_t mult = UINT64_C(1) << (10 * i);

                if (bytes % mult == 0)
                        return snprintf(buf, len, "%" PRIu64 "%c", bytes / mult, units[i - 1]);
        }
        return snprintf(buf, len, "%" PRIu64, bytes);
}

/* Canonical names come before their aliases: formatting takes the first. */
static const struct {
        const char *name;
        int sig;
} signals[] = {
        { "HUP", SIGHUP },       { "INT", SIGINT },       { "QUIT", SIGQUIT },
        { "ILL", SIGILL },       { "TRAP", SIGTRAP },     { "ABRT", SIGABRT },
        { "IOT", SIGIOT },       { "BUS", SIGBUS },       { "FPE", SIGFPE },
        { "KILL", SIGKILL },     { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },
        { "USR2", SIGUSR2 },     { "PIPE", SIGPIPE },     { "ALRM", SIGALRM },
        { "TERM", SIGTERM },
#ifdef SIGSTKFLT
        { "STKFLT", SIGSTKFLT },
#endif
        { "CHLD", SIGCHLD },
#ifdef SIGCLD
        { "CLD", SIGCLD },
#endif
        { "CONT", SIGCONT },     { "STOP", SIGSTOP },     { "TSTP", SIGTSTP },
        { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU },     { "URG", SIGURG },
        { "XCPU", SIGXCPU },     { "XFSZ", SIGXFSZ },     { "VTALRM", SIGVTALRM },
        { "PROF", SIGPROF },     { "WINCH", SIGWINCH },   { "IO", SIGIO },
#ifdef SIGPOLL
        { "POLL", SIGPOLL },
#endif
#ifdef SIGPWR
        { "PWR", SIGPWR },
#endif
        { "SYS", SIGSYS },
};

#define N_SIGNALS (sizeof(signals) / sizeof(signals[0]))
#define SIGNAL_NUM_MAX 64

/* A decimal number of at most max_digits digits, the whole rest of s; -1 if
 * not.  The limits are the schema's: "RTMIN+3", "RTMAX-14", and 1-64. */
static int small_number(const char *s, size_t max_digits)
{
        int v = 0;
        size_t i;

        for (i = 0; is_digit(s[i]); i++) {
                if (i >= max_digits)
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        if (i == 0 || s[i])
                return -1;
        return v;
}

/* "RTMIN", "RTMAX", each with an optional "+N" or "-N"; the result must stay
 * within SIGRTMIN..SIGRTMAX. */
static int rt_signal_parse(const char *s, int *ret_sig)
{
        int base, off = 0;

        if (!strncasecmp(s, "RTMIN", 5))
                base = SIGRTMIN;
        else if (!strncasecmp(s, "RTMAX", 5))
                base = SIGRTMAX;
        else
                return -EINVAL;
        s += 5;
        if (*s == '+' || *s == '-') {
                off = small_number(s + 1, 2);
                if (off < 0)
                        return -EINVAL;
                if (*s == '-')
                        off = -off;
        } else if (*s) {
                return -EINVAL;
        }
        if (base + off < SIGRTMIN || base + off > SIGRTMAX)
                return -EINVAL;
        *ret_sig = base + off;
        return 0;
}

int er_signal_parse(const char *s, int *ret_sig)
{
        int n;

        if (!s || !*s)
                return -EINVAL;
        if (is_digit(*s)) {
                /* No leading zero: "09" is no spelling of a signal. */
                n = *s == '0' ? -1 : small_number(s, 2);
                if (n < 1 || n > SIGNAL_NUM_MAX)
                        return -EINVAL;
                *ret_sig = n;
                return 0;
        }
        if (!strncasecmp(s, "SIG", 3))
                s += 3;
        for (size_t i = 0; i < N_SIGNALS; i++) {
                if (!strcasecmp(s, signals[i].name)) {
                        *ret_sig = signals[i].sig;
                        return 0;
                }
        }
        return rt_signal_parse(s, ret_sig);
}

int er_signal_format(int sig, char *buf, size_t len)
{
        for (size_t i = 0; i < N_SIGNALS; i++)
                if (signals[i].sig == sig)
                        return snprintf(buf, len, "SIG%s", signals[i].name);
        if (sig == SIGRTMIN)
                return snprintf(buf, len, "SIGRTMIN");
        if (sig == SIGRTMAX)
                return snprintf(buf, len, "SIGRTMAX");
        /* The lower half counts up from SIGRTMIN, the upper half down from
         * SIGRTMAX, as `kill -l` shows them. */
        if (sig > SIGRTMIN && sig < SIGRTMAX) {
                if (sig - SIGRTMIN <= (SIGRTMAX - SIGRTMIN) / 2)
                        return snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
                return snprintf(buf, len, "SIGRTMAX-%d", SIGRTMAX - sig);
        }
        return snprintf(buf, len, "signal %d", sig);
}
