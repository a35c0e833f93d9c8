/* report_util: what the report writers (report.c, timeline.c) share, see
 * report_priv.h. */
#include "report/report_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test command as shown: whole arguments up to about this many bytes,
 * then " ...". */
#define COMMAND_SHOWN_MAX 200

/* ---- an output buffer that remembers running out of memory ---- */

/* b may be NULL: er_rp_put_clean only measures then. */
void er_rp_put(struct er_buf *b, const char *s, size_t n)
{
        if (b)
                er_buf_put(b, s, n);
}

void er_rp_puts(struct er_buf *b, const char *s)
{
        er_rp_put(b, s, strlen(s));
}

void er_rp_printf(struct er_buf *b, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        er_buf_vprintf(b, fmt, ap);
        va_end(ap);
}

/* Hands the buffer over as the result (always NUL-terminated), or frees it. */
int er_rp_finish(struct er_buf *b, char **ret, size_t *ret_len)
{
        return er_buf_finish(b, ret, ret_len);
}

/* ---- cleaning text from services for each output ---- */

/* Decodes one UTF-8 sequence of s[0..n), n > 0.  Returns its length and
 * the code point in *cp, or 1 and -1 for a byte that starts no valid
 * sequence (stray continuation, overlong, surrogate, past U+10FFFF,
 * truncated). */
size_t er_rp_utf8_next(const unsigned char *s, size_t n, int32_t *cp)
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
                if (!er_rp_utf8_cont(s[i]))
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

/* Length of the terminal escape sequence at s (s[0] is ESC): CSI (colors,
 * cursor moves), OSC (titles, links) up to BEL or ST, else ESC and one
 * character.  Services color their logs; a report shows the words. */
static size_t escape_len(const unsigned char *s, size_t n)
{
        size_t i;

        if (n < 2)
                return 1;
        if (s[1] == '[') {
                for (i = 2; i < n && s[i] >= 0x20 && s[i] <= 0x3F; i++)
                        ;
                return i < n && s[i] >= 0x40 && s[i] <= 0x7E ? i + 1 : i;
        }
        if (s[1] == ']') {
                for (i = 2; i < n; i++) {
                        if (s[i] == 0x07)
                                return i + 1;
                        if (s[i] == 0x1B && i + 1 < n && s[i + 1] == '\\')
                                return i + 2;
                }
                return n;
        }
        return s[1] >= 0x20 && s[1] <= 0x7E ? 2 : 1;
}

static bool char_allowed(int32_t cp, enum er_rp_clean mode)
{
        if (cp < 0)
                return false;
        switch (mode) {
        case ER_RP_CLEAN_JSON:
                return true;
        case ER_RP_CLEAN_TEXT:
                return cp == '\t' || !(cp < 0x20 || (cp >= 0x7F && cp <= 0x9F));
        case ER_RP_CLEAN_XML:
        case ER_RP_CLEAN_XML_ATTR:
                /* XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
                 * [#x10000-#x10FFFF]; surrogates never decode. */
                if (cp < 0x20)
                        return cp == '\t' || cp == '\n' || cp == '\r';
                return cp != 0xFFFE && cp != 0xFFFF;
        case ER_RP_CLEAN_SVG:
        case ER_RP_CLEAN_SVG_LINES:
                /* As XML, and no C1 controls either: a label cannot show them. */
                if (cp < 0x20)
                        return cp == '\t' || cp == '\n' || cp == '\r';
                return !(cp >= 0x7F && cp <= 0x9F) && cp != 0xFFFE && cp != 0xFFFF;
        }
        return false;
}

static const char *xml_entity(int32_t cp, enum er_rp_clean mode)
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
        if (mode == ER_RP_CLEAN_XML_ATTR) {
                switch (cp) {
                case '\t':
                        return "&#9;";
                case '\n':
                        return "&#10;";
                case '\r':
                        return "&#13;";
                }
        }
        if (mode == ER_RP_CLEAN_SVG || mode == ER_RP_CLEAN_SVG_LINES) {
                switch (cp) {
                case '\n':
                        return mode == ER_RP_CLEAN_SVG_LINES ? "&#10;" : " ";
                case '\t':
                case '\r':
                        return " ";
                }
        }
        return NULL;
}

/* Appends str[0..n) made safe for mode (b may be NULL to only measure):
 * invalid UTF-8 and forbidden characters become U+FFFD, terminal escapes
 * are dropped (except in JSON, which keeps the data as it was, and SVG,
 * where ESC is one more forbidden character), XML specials become
 * entities.  Returns the number of characters shown. */
size_t er_rp_put_clean(struct er_buf *b, const char *str, size_t n, enum er_rp_clean mode)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0, shown = 0;

        while (i < n) {
                const char *ent;
                int32_t cp;
                size_t len;

                if (s[i] == 0x1B && (mode == ER_RP_CLEAN_TEXT || mode == ER_RP_CLEAN_XML ||
                                     mode == ER_RP_CLEAN_XML_ATTR)) {
                        i += escape_len(s + i, n - i);
                        continue;
                }
                len = er_rp_utf8_next(s + i, n - i, &cp);
                if (!char_allowed(cp, mode))
                        er_rp_puts(b, ER_RP_REPLACEMENT);
                else if (mode != ER_RP_CLEAN_JSON && mode != ER_RP_CLEAN_TEXT &&
                         (ent = xml_entity(cp, mode)))
                        er_rp_puts(b, ent);
                else
                        er_rp_put(b, str + i, len);
                i += len;
                shown++;
        }
        return shown;
}

/* ---- shared formatting ---- */

/* "412ms", "5.7s", "2m05s", "1h02m" */
void er_rp_fmt_ms(uint64_t ms, char *out, size_t len)
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

/* The test has no class of its own in the model; derive it.  Not run means
 * the environment it needed failed: DependencyFailed. */
enum er_error_class er_rp_test_class(const struct er_report_test *t)
{
        if (t->not_run)
                return ER_DEPENDENCY_FAILED;
        if (t->timed_out)
                return ER_TIMEOUT_EXPIRED;
        if (t->exit_code == 0 && t->signal == 0)
                return ER_OK;
        return ER_PROCESS_EXITED_WITH_ERROR;
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

/* argv as a shell would read it back ('it'\''s'), cut after whole
 * arguments past COMMAND_SHOWN_MAX, "-" when there is none.  Not yet
 * cleaned for any output. */
void er_rp_put_command(struct er_buf *b, char *const *argv)
{
        size_t start = b->len;

        for (size_t i = 0; argv && argv[i]; i++) {
                if (i > 0) {
                        if (b->len - start + strlen(argv[i]) > COMMAND_SHOWN_MAX) {
                                er_rp_puts(b, " ...");
                                return;
                        }
                        er_rp_puts(b, " ");
                }
                if (shell_safe(argv[i])) {
                        er_rp_puts(b, argv[i]);
                        continue;
                }
                er_rp_puts(b, "'");
                for (const char *p = argv[i]; *p; p++) {
                        if (*p == '\'')
                                er_rp_puts(b, "'\\''");
                        else
                                er_rp_put(b, p, 1);
                }
                er_rp_puts(b, "'");
        }
        if (b->len == start)
                er_rp_puts(b, "-");
}
