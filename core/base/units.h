/* units: durations, sizes and signals as environment.yml writes them. */
#ifndef ER_UNITS_H
#define ER_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Durations are kept in microseconds.
 * Accepted: one or more <number><unit> groups with units us, ms, s, m, h,
 * in decreasing order and each unit at most once ("1h2m3s", "1m30s",
 * "250ms"), or a bare non-negative number of seconds ("5", "0.5").  A number
 * may have a decimal fraction ("1.5s"); the result must be a whole number of
 * microseconds.  No sign, no spaces, no empty string.
 * Returns 0, -EINVAL (malformed) or -ERANGE (over ER_DURATION_MAX). */
#define ER_DURATION_MAX (UINT64_C(100) * 365 * 24 * 3600 * 1000000) /* 100 years */
int er_duration_parse(const char *s, uint64_t *ret_us);
/* Shortest exact form: "1m30s", "250ms", "0s", "1h", "1500us": h, m and s
 * groups, then what is under a second as one group, in ms when exact, else in
 * us ("1s500ms", "1s1500us").  er_duration_parse reads it back.  Returns
 * snprintf's value. */
int er_duration_format(uint64_t us, char *buf, size_t len);

/* Sizes in bytes: a number with an optional unit K, M, G, T (powers of 1024,
 * case-insensitive, optionally followed by "iB" or "B": "64M", "64MiB",
 * "64mb"), or "B"; a decimal fraction is allowed with a unit ("1.5G") when
 * the result is a whole number of bytes ("1.5" alone is -EINVAL, "2.0B" is
 * 2).  Returns 0, -EINVAL or -ERANGE (over 2^62). */
int er_size_parse(const char *s, uint64_t *ret_bytes);
/* Shortest exact form with the largest unit that divides: "64M", "1536K", "100". */
int er_size_format(uint64_t bytes, char *buf, size_t len);

/* Signals: "SIGTERM", "TERM", "term", "sigterm", a number 1-64 (no leading
 * zero), "SIGRTMIN", "SIGRTMIN+3", "RTMAX-2" (either base with +N or -N, N of
 * one or two digits, the result within SIGRTMIN..SIGRTMAX).  SIGRTMIN here is
 * the kernel's 32 plus what glibc reserves, i.e. the value of the SIGRTMIN
 * macro at run time.  Returns 0 or -EINVAL. */
int er_signal_parse(const char *s, int *ret_sig);
/* "SIGTERM", "SIGRTMIN+3", "SIGRTMAX-2" (the upper half of the real-time
 * range counts down from SIGRTMAX, as `kill -l` does), or "signal 99" for an
 * unknown number. */
int er_signal_format(int sig, char *buf, size_t len);

#endif
