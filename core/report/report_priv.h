/* report_priv: helpers the report writers share (report.c for text, JSON
 * and JUnit, timeline.c for --timeline), implemented in report_util.c.
 * Private to the report module: nothing outside core/report*.c and
 * report/timeline.c includes this. */
#ifndef ER_REPORT_PRIV_H
#define ER_REPORT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "report/report.h"

#define ER_RP_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* ---- an output buffer that remembers running out of memory ---- */

/* An er_buf (base/buf.h): zero-initialised is empty, an append that runs
 * out of memory sets oom and every later one does nothing.  These take a
 * NULL b as "measure only" (nothing happens), as er_rp_put_clean does. */

/* Appends s[0..n). */
void er_rp_put(struct er_buf *b, const char *s, size_t n);
void er_rp_puts(struct er_buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void er_rp_printf(struct er_buf *b, const char *fmt, ...);
/* Hands the buffer over as *ret (always NUL-terminated, its length in
 * *ret_len when not NULL), or frees it and returns -ENOMEM. */
int er_rp_finish(struct er_buf *b, char **ret, size_t *ret_len);

/* ---- cleaning text from services for each output ---- */

static inline bool er_rp_utf8_cont(unsigned char c)
{
        return (c & 0xC0) == 0x80;
}

/* Decodes one UTF-8 sequence of s[0..n), n > 0.  Returns its length and
 * the code point in *cp, or 1 and -1 for a byte that starts no valid
 * sequence (stray continuation, overlong, surrogate, past U+10FFFF,
 * truncated). */
size_t er_rp_utf8_next(const unsigned char *s, size_t n, int32_t *cp);

enum er_rp_clean {
        ER_RP_CLEAN_JSON,      /* valid UTF-8; jansson escapes the rest */
        ER_RP_CLEAN_TEXT,      /* one terminal line: no escapes, no controls but tab */
        ER_RP_CLEAN_XML,       /* XML 1.0 character data */
        ER_RP_CLEAN_XML_ATTR,  /* ... in an attribute value, where whitespace is normalised */
        ER_RP_CLEAN_SVG,       /* an SVG label, also safe in an attribute: one line, no
                                * controls (ESC included), tab/CR/LF as spaces */
        ER_RP_CLEAN_SVG_LINES, /* ... a tooltip: LF stays one (&#10;) */
};

/* Appends str[0..n) made safe for mode (b may be NULL to only measure);
 * returns the number of characters shown. */
size_t er_rp_put_clean(struct er_buf *b, const char *str, size_t n, enum er_rp_clean mode);

/* ---- shared formatting ---- */

static inline bool er_rp_has_time(uint64_t ms)
{
        return ms != ER_REPORT_NO_TIME;
}

/* "412ms", "5.7s", "2m05s", "1h02m" */
void er_rp_fmt_ms(uint64_t ms, char *out, size_t len);

/* The test's class, derived (the model has none): DependencyFailed when
 * not run, TimeoutExpired, ProcessExitedWithError, or ok. */
enum er_error_class er_rp_test_class(const struct er_report_test *t);

/* The test command as a shell would read it back, cut after whole
 * arguments past about 200 bytes, "-" when there is none; raw, not yet
 * cleaned for any output. */
void er_rp_put_command(struct er_buf *b, char *const *argv);

#endif
