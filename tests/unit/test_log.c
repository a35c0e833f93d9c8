#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc/log.h"

/* 2026-11-23T18:03:04.512Z */
#define T0 1795456984512ULL
#define T0_STR "2026-11-23T18:03:04.512Z"
#define HDR_LEN 27

struct tmp {
        char path[64];
        int fd;
};

static int tmp_setup(void **state)
{
        struct tmp *t = malloc(sizeof(*t));

        assert_non_null(t);
        strcpy(t->path, "/tmp/test_log.XXXXXX");
        assert_non_null(mkdtemp(t->path));
        t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(t->fd >= 0);
        *state = t;
        return 0;
}

/* Runs even when the test failed, so no directory is left behind. */
static int tmp_teardown(void **state)
{
        struct tmp *t = *state;
        int fd = dup(t->fd);
        DIR *d;
        struct dirent *de;

        assert_true(fd >= 0);
        d = fdopendir(fd);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        assert_int_equal(unlinkat(t->fd, de->d_name,
                                                  de->d_type == DT_DIR ? AT_REMOVEDIR : 0),
                                         0);
        closedir(d);
        close(t->fd);
        assert_int_equal(rmdir(t->path), 0);
        free(t);
        return 0;
}

/* The whole file, NUL-terminated; *len its size.  NULL if absent. */
static char *slurp(int dir_fd, const char *name, size_t *len)
{
        struct stat st;
        char *s;
        int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);

        *len = 0;
        if (fd < 0)
                return NULL;
        assert_int_equal(fstat(fd, &st), 0);
        s = malloc((size_t)st.st_size + 1);
        assert_non_null(s);
        assert_int_equal(read(fd, s, (size_t)st.st_size), st.st_size);
        s[st.st_size] = '\0';
        *len = (size_t)st.st_size;
        close(fd);
        return s;
}

static uint64_t file_size(int dir_fd, const char *name)
{
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        return (uint64_t)st.st_size;
}

/* The text of line i in the bulk tests: "line 00042 " then filler to len. */
static size_t line_text(char *buf, size_t len, unsigned i)
{
        int n = snprintf(buf, len + 1, "line %05u ", i);

        for (size_t k = (size_t)n; k < len; k++)
                buf[k] = (char)('a' + (i + k) % 26);
        buf[len] = '\0';
        return len;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ S " without a regex. */
static void assert_header_shape(const char *s, char stream)
{
        static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

        for (size_t i = 0; i < sizeof(shape) - 1; i++) {
                if (shape[i] == 'd')
                        assert_true(s[i] >= '0' && s[i] <= '9');
                else
                        assert_int_equal(s[i], shape[i]);
        }
        assert_int_equal(s[24], ' ');
        assert_int_equal(s[25], stream);
        assert_int_equal(s[26], ' ');
}

static void test_line_format(void **state)
{
        static const char want[] = T0_STR " O hello world\n"
                                   T0_STR " E \n"
                                   "2026-11-23T18:03:04.513Z P probe\n"
                                   "2026-11-23T18:03:05.007Z - note\n"
                                   "2026-11-23T18:03:03.999Z O back\n"
                                   "1970-01-01T00:00:00.000Z O epoch\n"
                                   "2000-02-29T23:59:59.999Z O leap\n";
        struct er_log log;
        struct tmp *t = *state;
        char *s;
        size_t len;
        uint64_t now;

        assert_int_equal(er_log_open(&log, t->fd, "svc", 1 << 20), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "hello world", 11), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDERR, T0, NULL, 0), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_PROBE, T0 + 1, "probe", 5), 0);
        /* the cached second must not leak into the next one, nor back */
        assert_int_equal(er_log_line(&log, ER_LOG_NOTE, T0 + 495, "note", 4), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0 - 513, "back", 4), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, 0, "epoch", 5), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, 951868799999ULL, "leap", 4), 0);
        s = slurp(t->fd, "svc.log", &len);
        assert_non_null(s);
        assert_string_equal(s, want);
        assert_int_equal(log.size, len);
        assert_int_equal(log.dropped, 0);
        free(s);

        /* the live clock gives the same shape */
        now = er_realtime_ms();
        assert_true(now > T0 - 10ULL * 365 * 86400 * 1000);
        er_log_close(&log);
        assert_int_equal(log.fd, -1);
        assert_int_equal(er_log_open(&log, t->fd, "svc", 1 << 20), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDERR, now, "x", 1), 0);
        s = slurp(t->fd, "svc.log", &len);
        assert_int_equal(len, HDR_LEN + 2);
        assert_header_shape(s, 'E');
        assert_memory_equal(s + HDR_LEN, "x\n", 2);
        assert_int_equal(memcmp(s, "20", 2), 0);
        free(s);
        er_log_close(&log);
}

static void test_rotation(void **state)
{
        enum { LINES = 10000, TEXT = 50, LINE = HDR_LEN + TEXT + 1 };
        struct er_log log;
        struct tmp *t = *state;
        char text[TEXT + 1], want[64];
        char *cur, *old;
        size_t cur_len, old_len;
        uint64_t kept;

        assert_int_equal(er_log_open(&log, t->fd, "svc", 4096), 0);
        for (unsigned i = 0; i < LINES; i++) {
                line_text(text, TEXT, i);
                assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0 + i, text, TEXT), 0);
        }
        cur = slurp(t->fd, "svc.log", &cur_len);
        old = slurp(t->fd, "svc.log.1", &old_len);
        assert_non_null(cur);
        assert_non_null(old);
        kept = cur_len + old_len;
        assert_true(cur_len <= 2048 && old_len <= 2048);
        assert_true(kept <= 4096 + LINE);
        assert_true(old_len > 2048 - LINE); /* rotated only when full */
        assert_int_equal(log.size, cur_len);
        assert_int_equal(log.dropped, (uint64_t)LINES * LINE - kept);
        assert_int_equal(cur_len % LINE, 0);
        assert_int_equal(old_len % LINE, 0);

        /* the newest line ends svc.log; svc.log.1 ends right before it starts */
        snprintf(want, sizeof(want), " O line %05u ", LINES - 1);
        assert_memory_equal(cur + cur_len - LINE + HDR_LEN - 3, want, strlen(want));
        snprintf(want, sizeof(want), " O line %05u ", LINES - (unsigned)(cur_len / LINE));
        assert_memory_equal(cur + HDR_LEN - 3, want, strlen(want));
        snprintf(want, sizeof(want), " O line %05u ", LINES - 1 - (unsigned)(cur_len / LINE));
        assert_memory_equal(old + old_len - LINE + HDR_LEN - 3, want, strlen(want));
        free(cur);
        free(old);
        er_log_close(&log);

        /* a fresh open truncates and drops the stale .1 */
        assert_int_equal(er_log_open(&log, t->fd, "svc", 4096), 0);
        assert_int_equal(file_size(t->fd, "svc.log"), 0);
        assert_int_equal(faccessat(t->fd, "svc.log.1", F_OK, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(errno, ENOENT);
        er_log_close(&log);
}

static void test_long_line(void **state)
{
        enum { BIG = 100 * 1000, MID = 10000 };
        struct er_log log;
        struct tmp *t = *state;
        char *big, *s;
        size_t len;

        big = malloc(BIG);
        assert_non_null(big);
        for (size_t i = 0; i < BIG; i++)
                big[i] = (char)('A' + i % 26);

        assert_int_equal(er_log_open(&log, t->fd, "big", 8192), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, big, BIG), 0);
        assert_int_equal(log.dropped, HDR_LEN + BIG + 1 - 4096);
        s = slurp(t->fd, "big.log", &len);
        assert_int_equal(len, 4096);
        assert_memory_equal(s, T0_STR " O ", HDR_LEN);
        assert_memory_equal(s + HDR_LEN, big, 4096 - HDR_LEN - 1);
        assert_int_equal(s[4095], '\n');
        free(s);

        /* the next line rotates the full segment; no older .1 to drop */
        assert_int_equal(er_log_line(&log, ER_LOG_STDERR, T0, "after", 5), 0);
        assert_int_equal(log.dropped, HDR_LEN + BIG + 1 - 4096);
        assert_int_equal(file_size(t->fd, "big.log.1"), 4096);
        s = slurp(t->fd, "big.log", &len);
        assert_string_equal(s, T0_STR " E after\n");
        free(s);
        er_log_close(&log);

        /* longer than the stack buffer, shorter than a segment: kept whole */
        assert_int_equal(er_log_open(&log, t->fd, "mid", 64 * 1024), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, big, MID), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "x", 1), 0);
        assert_int_equal(log.dropped, 0);
        s = slurp(t->fd, "mid.log", &len);
        assert_int_equal(len, HDR_LEN + MID + 1 + HDR_LEN + 2);
        assert_memory_equal(s + HDR_LEN, big, MID);
        assert_int_equal(s[HDR_LEN + MID], '\n');
        free(s);
        er_log_close(&log);
        free(big);
}

struct lines {
        size_t n;
        char *v[64];
        size_t len[64];
};

static void collect(void *ud, const char *line, size_t len)
{
        struct lines *l = ud;

        assert_true(l->n < 64);
        l->v[l->n] = malloc(len + 1);
        assert_non_null(l->v[l->n]);
        memcpy(l->v[l->n], line, len);
        l->v[l->n][len] = '\0';
        l->len[l->n++] = len;
}

static void lines_free(struct lines *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        l->n = 0;
}

/* SPEC §3: once output was dropped, the log says how much when it closes. */
static void test_dropped_note(void **state)
{
        struct er_log log;
        struct tmp *t = *state;
        struct lines got = { 0 };
        char want[128];
        uint64_t dropped;

        assert_int_equal(er_log_open(&log, t->fd, "n", 4096), 0);
        for (unsigned i = 0; i < 500; i++)
                assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "0123456789", 10), 0);
        dropped = log.dropped;
        assert_true(dropped > 0);
        er_log_close(&log);
        assert_int_equal(er_log_tail(t->fd, "n", 1, collect, &got), 0);
        assert_int_equal(got.n, 1);
        snprintf(want, sizeof(want), " - envrun: %llu bytes of older output were dropped (log.max_size)",
                 (unsigned long long)dropped);
        assert_non_null(strstr(got.v[0], want));
        lines_free(&got);

        /* nothing dropped: no note */
        assert_int_equal(er_log_open(&log, t->fd, "m", 4096), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "only", 4), 0);
        er_log_close(&log);
        assert_int_equal(er_log_tail(t->fd, "m", 5, collect, &got), 0);
        assert_int_equal(got.n, 1);
        lines_free(&got);
}

/* Buffered mode: nothing reaches the file until er_log_flush, then all of
 * it, in order; rotation and close flush first. */
static void test_buffered(void **state)
{
        struct er_log log;
        struct tmp *t = *state;
        struct lines got = { 0 };
        char text[32];

        assert_int_equal(er_log_open(&log, t->fd, "b", 1 << 20), 0);
        assert_int_equal(er_log_set_buffered(&log), 0);
        for (unsigned i = 0; i < 100; i++) {
                snprintf(text, sizeof(text), "line %03u", i);
                assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, text, strlen(text)), 0);
        }
        assert_int_equal(file_size(t->fd, "b.log"), 0);
        assert_int_equal(log.size, 100u * (HDR_LEN + 9));
        assert_int_equal(er_log_flush(&log), 0);
        assert_int_equal(file_size(t->fd, "b.log"), 100 * (HDR_LEN + 9));
        assert_int_equal(er_log_tail(t->fd, "b", 2, collect, &got), 0);
        assert_int_equal(got.n, 2);
        assert_non_null(strstr(got.v[0], " O line 098"));
        assert_non_null(strstr(got.v[1], " O line 099"));
        lines_free(&got);
        /* close flushes what is left */
        assert_int_equal(er_log_line(&log, ER_LOG_STDERR, T0, "last", 4), 0);
        er_log_close(&log);
        assert_int_equal(er_log_tail(t->fd, "b", 1, collect, &got), 0);
        assert_non_null(strstr(got.v[0], " E last"));
        lines_free(&got);

        /* rotation writes the gathered lines to the old segment first */
        assert_int_equal(er_log_open(&log, t->fd, "r", 4096), 0);
        assert_int_equal(er_log_set_buffered(&log), 0);
        for (unsigned i = 0; i < 200; i++) {
                snprintf(text, sizeof(text), "row %03u", i);
                assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, text, strlen(text)), 0);
        }
        assert_int_equal(er_log_flush(&log), 0);
        assert_int_equal(er_log_tail(t->fd, "r", 1, collect, &got), 0);
        assert_non_null(strstr(got.v[0], " O row 199"));
        lines_free(&got);
        assert_true(file_size(t->fd, "r.log.1") > 0);
        assert_true(file_size(t->fd, "r.log") + file_size(t->fd, "r.log.1") <= 4096);
        er_log_close(&log);
}

static void test_tail_across_segments(void **state)
{
        enum { LINES = 200, TEXT = 20 };
        struct er_log log;
        struct tmp *t = *state;
        struct lines got = { 0 };
        char text[TEXT + 1], want[HDR_LEN + TEXT + 1];
        unsigned in_cur, kept;

        assert_int_equal(er_log_open(&log, t->fd, "svc", 4096), 0);
        for (unsigned i = 0; i < LINES; i++) {
                line_text(text, TEXT, i);
                assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, text, TEXT), 0);
        }
        in_cur = (unsigned)(file_size(t->fd, "svc.log") / (HDR_LEN + TEXT + 1));
        kept = in_cur + (unsigned)(file_size(t->fd, "svc.log.1") / (HDR_LEN + TEXT + 1));
        assert_true(in_cur > 0 && kept > in_cur + 3);

        const unsigned ns[] = { 1, 2, in_cur - 1, in_cur, in_cur + 1, in_cur + 3, kept };
        for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
                unsigned n = ns[k];

                if (n > 64)
                        continue;
                assert_int_equal(er_log_tail(t->fd, "svc", n, collect, &got), 0);
                assert_int_equal(got.n, n);
                for (unsigned j = 0; j < n; j++) {
                        memcpy(want, T0_STR " O ", HDR_LEN);
                        line_text(want + HDR_LEN, TEXT, LINES - n + j);
                        assert_int_equal(got.len[j], HDR_LEN + TEXT);
                        assert_string_equal(got.v[j], want);
                }
                lines_free(&got);
        }
        assert_int_equal(er_log_tail(t->fd, "svc", 0, collect, &got), 0);
        assert_int_equal(got.n, 0);
        er_log_close(&log);
}

static void test_tail_more_than_available(void **state)
{
        struct er_log log;
        struct tmp *t = *state;
        struct lines got = { 0 };

        assert_int_equal(er_log_tail(t->fd, "none", 5, collect, &got), -ENOENT);
        assert_int_equal(er_log_open(&log, t->fd, "svc", 4096), 0);
        assert_int_equal(er_log_tail(t->fd, "svc", 5, collect, &got), 0);
        assert_int_equal(got.n, 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "a", 1), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDERR, T0, "", 0), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_NOTE, T0, "c", 1), 0);
        assert_int_equal(er_log_tail(t->fd, "svc", 1000000, collect, &got), 0);
        assert_int_equal(got.n, 3);
        assert_string_equal(got.v[0], T0_STR " O a");
        assert_string_equal(got.v[1], T0_STR " E ");
        assert_string_equal(got.v[2], T0_STR " - c");
        lines_free(&got);
        er_log_close(&log);
}

static void write_file(int dir_fd, const char *name, const char *s, size_t len)
{
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, s, len), (ssize_t)len);
        close(fd);
}

/* Raw files: empty lines, a fragment without newline, a .1 that does not
 * end in one, and a line longer than the 64 KiB shown. */
static void test_tail_raw_files(void **state)
{
        enum { HUGE = 200 * 1024 };
        struct tmp *t = *state;
        struct lines got = { 0 };
        char *huge;

        write_file(t->fd, "r.log.1", "a\n\nb", 4);
        write_file(t->fd, "r.log", "c\nd", 3);
        assert_int_equal(er_log_tail(t->fd, "r", 10, collect, &got), 0);
        assert_int_equal(got.n, 5);
        assert_string_equal(got.v[0], "a");
        assert_string_equal(got.v[1], "");
        assert_string_equal(got.v[2], "b");
        assert_string_equal(got.v[3], "c");
        assert_string_equal(got.v[4], "d");
        lines_free(&got);
        assert_int_equal(er_log_tail(t->fd, "r", 3, collect, &got), 0);
        assert_int_equal(got.n, 3);
        assert_string_equal(got.v[0], "b");
        assert_string_equal(got.v[2], "d");
        lines_free(&got);

        /* only .1 (a tail racing a rotation sees this for a moment) */
        assert_int_equal(unlinkat(t->fd, "r.log", 0), 0);
        assert_int_equal(er_log_tail(t->fd, "r", 2, collect, &got), 0);
        assert_int_equal(got.n, 2);
        assert_string_equal(got.v[0], "");
        assert_string_equal(got.v[1], "b");
        lines_free(&got);

        huge = malloc(HUGE + 2);
        assert_non_null(huge);
        memset(huge, 'h', HUGE);
        huge[0] = 'H';
        huge[HUGE] = '\n';
        huge[HUGE + 1] = 'z';
        write_file(t->fd, "r.log", huge, HUGE + 2);
        assert_int_equal(er_log_tail(t->fd, "r", 2, collect, &got), 0);
        assert_int_equal(got.n, 2);
        assert_int_equal(got.len[0], 64 * 1024);
        assert_int_equal(got.v[0][0], 'H');
        assert_string_equal(got.v[1], "z");
        lines_free(&got);
        free(huge);

        assert_int_equal(er_log_tail(t->fd, "a/b", 1, collect, &got), -EINVAL);
        assert_int_equal(er_log_tail(t->fd, "", 1, collect, &got), -EINVAL);
}

struct seq {
        unsigned first, next;
        size_t n, bytes;
};

static size_t var_len(unsigned i)
{
        return 12 + (i * 7919u) % 3000;
}

static void check_seq(void *ud, const char *line, size_t len)
{
        struct seq *q = ud;
        char want[3100];
        unsigned i;

        assert_true(len > HDR_LEN + 11);
        /* not NUL-terminated: no sscanf */
        assert_memory_equal(line + HDR_LEN, "line ", 5);
        i = 0;
        for (int k = 0; k < 5; k++) {
                char c = line[HDR_LEN + 5 + k];

                assert_true(c >= '0' && c <= '9');
                i = i * 10 + (unsigned)(c - '0');
        }
        if (q->n == 0)
                q->first = i;
        else
                assert_int_equal(i, q->next);
        line_text(want, var_len(i), i);
        assert_int_equal(len, HDR_LEN + var_len(i));
        assert_memory_equal(line + HDR_LEN, want, var_len(i));
        q->next = i + 1;
        q->n++;
        q->bytes += len + 1;
}

/* Lines of varied length over many 64 KiB read blocks, both segments. */
static void test_tail_blocks(void **state)
{
        enum { LINES = 2000 };
        struct er_log log;
        struct tmp *t = *state;
        struct seq q = { 0 };
        char text[3100];
        uint64_t written = 0;

        assert_int_equal(er_log_open(&log, t->fd, "v", 1 << 20), 0);
        for (unsigned i = 0; i < LINES; i++) {
                assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, text,
                                             line_text(text, var_len(i), i)), 0);
                written += HDR_LEN + var_len(i) + 1;
        }
        assert_true(file_size(t->fd, "v.log.1") > 0);
        assert_int_equal(er_log_tail(t->fd, "v", SIZE_MAX, check_seq, &q), 0);
        assert_int_equal(q.next, LINES);
        assert_int_equal(q.bytes, file_size(t->fd, "v.log") + file_size(t->fd, "v.log.1"));
        assert_int_equal(log.dropped, written - q.bytes);

        for (size_t n = 1; n < q.n; n += 97) {
                struct seq r = { 0 };

                assert_int_equal(er_log_tail(t->fd, "v", n, check_seq, &r), 0);
                assert_int_equal(r.n, n);
                assert_int_equal(r.first, LINES - n);
                assert_int_equal(r.next, LINES);
        }
        er_log_close(&log);
}

static void assert_mode_0600(int dir_fd, const char *name)
{
        struct stat st;

        assert_int_equal(fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_modes(void **state)
{
        struct er_log log;
        struct tmp *t = *state;
        mode_t old = umask(0);
        char text[100];

        /* an existing 0644 file keeps its mode through O_TRUNC: fixed */
        write_file(t->fd, "svc.log", "old\n", 4);
        assert_int_equal(fchmodat(t->fd, "svc.log", 0644, 0), 0);
        assert_int_equal(er_log_open(&log, t->fd, "svc", 4096), 0);
        assert_int_equal(file_size(t->fd, "svc.log"), 0);
        assert_mode_0600(t->fd, "svc.log");
        memset(text, 't', sizeof(text));
        for (int i = 0; i < 100; i++)
                assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, text, sizeof(text)), 0);
        assert_mode_0600(t->fd, "svc.log");
        assert_mode_0600(t->fd, "svc.log.1");
        er_log_close(&log);
        umask(old);
}

static void test_open_refuses(void **state)
{
        struct er_log log;
        struct tmp *t = *state;
        char name[100];

        assert_int_equal(symlinkat("target", t->fd, "svc.log"), 0);
        assert_int_equal(er_log_open(&log, t->fd, "svc", 4096), -ELOOP);
        assert_int_equal(log.fd, -1);
        er_log_close(&log);
        assert_int_equal(faccessat(t->fd, "target", F_OK, AT_SYMLINK_NOFOLLOW), -1);

        assert_int_equal(mkfifoat(t->fd, "fifo.log", 0600), 0);
        assert_int_equal(er_log_open(&log, t->fd, "fifo", 4096), -ENXIO);
        assert_int_equal(mkdirat(t->fd, "dir.log", 0700), 0);
        assert_int_equal(er_log_open(&log, t->fd, "dir", 4096), -EISDIR);
        assert_int_equal(unlinkat(t->fd, "dir.log", AT_REMOVEDIR), 0);

        assert_int_equal(er_log_open(&log, t->fd, "a/b", 4096), -EINVAL);
        assert_int_equal(er_log_open(&log, t->fd, "", 4096), -EINVAL);
        memset(name, 'n', 76);
        name[76] = '\0';
        assert_int_equal(er_log_open(&log, t->fd, name, 4096), -ENAMETOOLONG);
        name[75] = '\0';
        assert_int_equal(er_log_open(&log, t->fd, name, 4096), 0);
        er_log_close(&log);
        er_log_close(NULL);
}

static void test_write_error(void **state)
{
        struct er_log log;
        struct tmp *t = *state;
        int ro, fd;

        assert_int_equal(er_log_open(&log, t->fd, "svc", 4096), 0);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "ok", 2), 0);
        ro = openat(t->fd, "ro", O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(ro >= 0);
        /* swap the log's fd for a read-only one behind its back */
        assert_int_equal(dup2(ro, log.fd), log.fd);
        close(ro);
        /* A failed write (a full disk, here EBADF) drops the line and counts
         * it; the log goes on trying, and the error is told once. */
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "lost", 4), -EBADF);
        assert_int_equal(log.err, 0);
        assert_int_equal(log.write_err, -EBADF);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "lost", 4), -EBADF);
        assert_int_equal(er_log_line(&log, ER_LOG_STDERR, T0, "lost", 4), -EBADF);
        assert_int_equal(log.dropped, 3 * (HDR_LEN + 5));
        assert_int_equal(er_log_take_write_error(&log), -EBADF);
        assert_int_equal(er_log_take_write_error(&log), 0);
        assert_int_equal(file_size(t->fd, "svc.log"), HDR_LEN + 3);
        assert_int_equal(file_size(t->fd, "ro"), 0);
        er_log_close(&log);
        assert_int_equal(log.fd, -1);

        /* rotation failing (the directory fd is no directory): same contract */
        assert_int_equal(er_log_open(&log, t->fd, "rot", 4096), 0);
        fd = openat(t->fd, "ro", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        log.dir_fd = fd;
        for (int i = 0; i < 100; i++) {
                int r = er_log_line(&log, ER_LOG_STDOUT, T0, "0123456789", 10);

                if (r) {
                        assert_int_equal(r, -ENOTDIR);
                        break;
                }
        }
        assert_int_equal(log.err, -ENOTDIR);
        assert_int_equal(er_log_line(&log, ER_LOG_STDOUT, T0, "x", 1), 0);
        assert_true(file_size(t->fd, "rot.log") <= 2048);
        close(fd);
        er_log_close(&log);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_line_format, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_rotation, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_dropped_note, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_buffered, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_long_line, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_tail_across_segments, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_tail_more_than_available, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_tail_raw_files, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_tail_blocks, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_modes, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_open_refuses, tmp_setup, tmp_teardown),
                cmocka_unit_test_setup_teardown(test_write_error, tmp_setup, tmp_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
