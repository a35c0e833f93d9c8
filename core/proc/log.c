#include "proc/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"

/* "2026-11-23T18:03:04.512Z O " */
#define HDR_LEN 27
/* Lines up to this size (header included) go out in one write from the
 * stack; longer ones in one writev, never copied. */
#define LINE_BUF 4096
#define SEGMENT_MIN 2048
/* er_log_tail: one read block and one line buffer, whatever n is. */
#define TAIL_BLOCK (64 * 1024)
#define TAIL_LINE_MAX (64 * 1024)
/* 9999-12-31T23:59:59Z: the last second that fits the format. */
#define TS_SEC_MAX 253402300799ULL

#define LOG_NAME_MAX sizeof(((struct er_log *)0)->name)
#define LOG_NAME1_MAX sizeof(((struct er_log *)0)->name1)

static int make_names(const char *service, char *name, char *name1)
{
        int n;

        if (!*service || strchr(service, '/'))
                return -EINVAL;
        n = snprintf(name, LOG_NAME_MAX, "%s.log", service);
        if (n < 0 || (size_t)n >= LOG_NAME_MAX)
                return -ENAMETOOLONG;
        n = snprintf(name1, LOG_NAME1_MAX, "%s.log.1", service);
        if (n < 0 || (size_t)n >= LOG_NAME1_MAX)
                return -ENAMETOOLONG;
        return 0;
}

static uint64_t segment_size(const struct er_log *log)
{
        uint64_t seg = log->max_size / 2;

        return seg < SEGMENT_MIN ? SEGMENT_MIN : seg;
}

/* Opens a fresh NAME.log.  O_NONBLOCK only so that a FIFO planted at the
 * name fails (ENXIO) instead of blocking the loop; O_TRUNC keeps the mode
 * of an existing file, hence the fchmod. */
static int open_segment(struct er_log *log)
{
        struct stat st;
        int fd, r;

        fd = openat(log->dir_fd, log->name,
                    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
                    0600);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out_close;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto out_close;
        }
        if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0) {
                r = -errno;
                goto out_close;
        }
        if (fcntl(fd, F_SETFL, O_APPEND) < 0) {
                r = -errno;
                goto out_close;
        }
        log->fd = fd;
        log->size = 0;
        return 0;

out_close:
        er_close(&fd);
        return r;
}

int er_log_open(struct er_log *log, int dir_fd, const char *service, uint64_t max_size)
{
        int r;

        *log = (struct er_log){
                .dir_fd = dir_fd,
                .fd = -1,
                .max_size = max_size,
                .ts_sec = UINT64_MAX,
        };
        r = make_names(service, log->name, log->name1);
        if (r < 0)
                return r;
        if (unlinkat(dir_fd, log->name1, 0) < 0 && errno != ENOENT)
                return -errno;
        return open_segment(log);
}

void er_log_close(struct er_log *log)
{
        if (!log)
                return;
        er_log_flush(log);
        if (log->fd >= 0 && !log->err && log->dropped) {
                /* SPEC §3: the log says how much was dropped. */
                char note[128];
                int n = snprintf(note, sizeof(note),
                                 "envrun: %llu bytes of older output were dropped (log.max_size)",
                                 (unsigned long long)log->dropped);
                er_log_line(log, ER_LOG_NOTE, er_realtime_ms(), note, (size_t)n);
        }
        er_log_flush(log);
        er_close(&log->fd);
        free(log->wbuf);
        log->wbuf = NULL;
        log->wlen = 0;
}

/* NAME.log becomes NAME.log.1; what NAME.log.1 held is dropped. */
static int rotate(struct er_log *log)
{
        struct stat st;

        if (fstatat(log->dir_fd, log->name1, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISREG(st.st_mode))
                        log->dropped += (uint64_t)st.st_size;
        } else if (errno != ENOENT) {
                return -errno;
        }
        if (renameat(log->dir_fd, log->name, log->dir_fd, log->name1) < 0)
                return -errno;
        er_close(&log->fd);
        return open_segment(log);
}

static void put2(char *p, unsigned v)
{
        p[0] = (char)('0' + v / 10 % 10);
        p[1] = (char)('0' + v % 10);
}

static void format_second(char ts[20], uint64_t sec)
{
        time_t t = (time_t)sec;
        struct tm tm;
        unsigned year;

        if (sec > TS_SEC_MAX || !gmtime_r(&t, &tm)) {
                memcpy(ts, "9999-12-31T23:59:59", 20);
                return;
        }
        year = (unsigned)tm.tm_year + 1900;
        put2(ts, year / 100);
        put2(ts + 2, year % 100);
        ts[4] = '-';
        put2(ts + 5, (unsigned)tm.tm_mon + 1);
        ts[7] = '-';
        put2(ts + 8, (unsigned)tm.tm_mday);
        ts[10] = 'T';
        put2(ts + 11, (unsigned)tm.tm_hour);
        ts[13] = ':';
        put2(ts + 14, (unsigned)tm.tm_min);
        ts[16] = ':';
        put2(ts + 17, (unsigned)tm.tm_sec);
        ts[19] = '\0';
}

/* Called for every line: gmtime_r only when the second changes. */
static void format_header(struct er_log *log, char *p, enum er_log_stream stream, uint64_t ms)
{
        uint64_t sec = ms / 1000;
        unsigned milli = (unsigned)(ms % 1000);

        if (sec != log->ts_sec) {
                format_second(log->ts, sec);
                log->ts_sec = sec;
        }
        memcpy(p, log->ts, 19);
        p[19] = '.';
        p[20] = (char)('0' + milli / 100);
        put2(p + 21, milli % 100);
        p[23] = 'Z';
        p[24] = ' ';
        switch (stream) {
        case ER_LOG_STDOUT:
        case ER_LOG_STDERR:
        case ER_LOG_PROBE:
        case ER_LOG_NOTE:
                p[25] = (char)stream;
                break;
        default:
                p[25] = '?';
                break;
        }
        p[26] = ' ';
}

/* On failure, *left is how many bytes were not written. */
static int writev_all(int fd, struct iovec *iov, int cnt, size_t *left)
{
        while (cnt > 0) {
                ssize_t n = writev(fd, iov, cnt);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;
                        *left = 0;
                        for (int i = 0; i < cnt; i++)
                                *left += iov[i].iov_len;
                        return r;
                }
                while (cnt > 0 && (size_t)n >= iov->iov_len) {
                        n -= (ssize_t)iov->iov_len;
                        iov++;
                        cnt--;
                }
                if (cnt > 0) {
                        iov->iov_base = (char *)iov->iov_base + n;
                        iov->iov_len -= (size_t)n;
                }
        }
        return 0;
}

#define WBUF_SIZE (64 * 1024)

int er_log_set_buffered(struct er_log *log)
{
        if (!log->wbuf && !(log->wbuf = malloc(WBUF_SIZE)))
                return -ENOMEM;
        log->wlen = 0;
        return 0;
}

/* A write that failed (ENOSPC, EIO, ...): what it held is dropped and
 * counted, the first error kept for er_log_take_write_error; later lines
 * are tried again (space may come back).  Supervision never stops for it. */
static void write_failed(struct er_log *log, int r, size_t left)
{
        log->dropped += left;
        if (!log->write_err)
                log->write_err = r;
}

int er_log_take_write_error(struct er_log *log)
{
        if (!log->write_err || log->write_err_said)
                return 0;
        log->write_err_said = true;
        return log->write_err;
}

int er_log_flush(struct er_log *log)
{
        struct iovec iov;
        size_t left;
        int r;

        if (!log->wbuf || !log->wlen)
                return log->err;
        iov = (struct iovec){log->wbuf, log->wlen};
        log->wlen = 0;
        if (log->err || log->fd < 0)
                return log->err;
        r = writev_all(log->fd, &iov, 1, &left);
        if (r < 0)
                write_failed(log, r, left);
        return r;
}

int er_log_line(struct er_log *log, enum er_log_stream stream, uint64_t realtime_ms,
                const char *text, size_t len)
{
        char buf[LINE_BUF];
        struct iovec iov[3];
        uint64_t seg = segment_size(log);
        size_t total;
        int cnt, r;

        if (log->err || log->fd < 0)
                return 0;
        if (len > seg - HDR_LEN - 1) {
                log->dropped += len - (seg - HDR_LEN - 1);
                len = (size_t)(seg - HDR_LEN - 1);
        }
        total = HDR_LEN + len + 1;
        if (log->size > 0 && log->size + total > seg) {
                /* What is gathered belongs to the segment being closed. */
                (void)er_log_flush(log);
                r = rotate(log);
                if (r < 0)
                        goto out_fail;
        }
        if (log->wbuf && total <= WBUF_SIZE) {
                if (log->wlen + total > WBUF_SIZE)
                        (void)er_log_flush(log);
                format_header(log, log->wbuf + log->wlen, stream, realtime_ms);
                if (len)
                        memcpy(log->wbuf + log->wlen + HDR_LEN, text, len);
                log->wbuf[log->wlen + HDR_LEN + len] = '\n';
                log->wlen += total;
                log->size += total;
                return 0;
        }
        (void)er_log_flush(log);
        format_header(log, buf, stream, realtime_ms);
        if (total <= sizeof(buf)) {
                if (len)
                        memcpy(buf + HDR_LEN, text, len);
                buf[HDR_LEN + len] = '\n';
                iov[0] = (struct iovec){ buf, total };
                cnt = 1;
        } else {
                iov[0] = (struct iovec){ buf, HDR_LEN };
                iov[1] = (struct iovec){ (void *)text, len };
                iov[2] = (struct iovec){ "\n", 1 };
                cnt = 3;
        }
        size_t left;
        r = writev_all(log->fd, iov, cnt, &left);
        if (r < 0) {
                write_failed(log, r, left);
                return r;
        }
        log->size += total;
        return 0;

out_fail:
        log->err = r;
        return r;
}

uint64_t er_realtime_ms(void)
{
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || ts.tv_sec < 0)
                return 0;
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- reading back ---- */

struct tail_seg {
        int fd;
        uint64_t size;  /* at open: the writer only appends, so reads stop here */
        uint64_t start; /* offset of the first line to show */
        size_t found;   /* lines from start to size */
        dev_t dev;
        ino_t ino;
};

static int open_read(int dir_fd, const char *name, struct tail_seg *s)
{
        struct stat st;
        int r;

        s->fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (s->fd < 0)
                return -errno;
        if (fstat(s->fd, &st) < 0) {
                r = -errno;
                goto out_close;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto out_close;
        }
        s->size = (uint64_t)st.st_size;
        s->start = s->size;
        s->found = 0;
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        return 0;

out_close:
        er_close(&s->fd);
        return r;
}

static int pread_all(int fd, char *buf, size_t len, uint64_t off)
{
        while (len > 0) {
                ssize_t n = pread(fd, buf, len, (off_t)off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO; /* shrank under us: not a log we wrote */
                buf += n;
                len -= (size_t)n;
                off += (uint64_t)n;
        }
        return 0;
}

/* Scans backwards for the start of the last `n` lines (a final fragment
 * without a newline counts as a line). */
static int find_start(struct tail_seg *s, size_t n, char *buf)
{
        uint64_t end = s->size;

        s->start = s->size;
        s->found = 0;
        if (n == 0 || s->size == 0)
                return 0;
        s->found = 1;
        while (end > 0) {
                size_t len = end > TAIL_BLOCK ? TAIL_BLOCK : (size_t)end;
                uint64_t off = end - len;
                char *p;
                int r;

                r = pread_all(s->fd, buf, len, off);
                if (r < 0)
                        return r;
                /* The last line's own newline ends it, it does not start one. */
                if (end == s->size && buf[len - 1] == '\n')
                        len--;
                while ((p = memrchr(buf, '\n', len))) {
                        if (s->found == n) {
                                s->start = off + (uint64_t)(p - buf) + 1;
                                return 0;
                        }
                        s->found++;
                        len = (size_t)(p - buf);
                }
                end = off;
        }
        s->start = 0;
        return 0;
}

typedef void tail_cb(void *ud, const char *line, size_t len);

static void line_add(char *line, size_t *llen, const char *p, size_t len)
{
        size_t room = TAIL_LINE_MAX - *llen;

        if (len > room)
                len = room;
        memcpy(line + *llen, p, len);
        *llen += len;
}

/* Calls cb for each line from s->start; a line split across blocks is
 * gathered in `line` (cut at TAIL_LINE_MAX), others go straight from buf. */
static int emit_lines(const struct tail_seg *s, char *buf, char *line, tail_cb *cb, void *ud)
{
        uint64_t off = s->start;
        size_t llen = 0;
        bool pending = false;

        while (off < s->size) {
                size_t len = s->size - off > TAIL_BLOCK ? TAIL_BLOCK : (size_t)(s->size - off);
                char *p = buf, *e, *nl;
                int r;

                r = pread_all(s->fd, buf, len, off);
                if (r < 0)
                        return r;
                e = buf + len;
                while (p < e) {
                        nl = memchr(p, '\n', (size_t)(e - p));
                        if (!nl) {
                                line_add(line, &llen, p, (size_t)(e - p));
                                pending = true;
                                break;
                        }
                        if (!pending) {
                                size_t l = (size_t)(nl - p);

                                cb(ud, p, l > TAIL_LINE_MAX ? TAIL_LINE_MAX : l);
                        } else {
                                line_add(line, &llen, p, (size_t)(nl - p));
                                cb(ud, line, llen);
                                llen = 0;
                                pending = false;
                        }
                        p = nl + 1;
                }
                off += len;
        }
        if (pending)
                cb(ud, line, llen);
        return 0;
}

int er_log_tail(int dir_fd, const char *service, size_t n,
                void (*cb)(void *ud, const char *line, size_t len), void *ud)
{
        char name[LOG_NAME_MAX], name1[LOG_NAME1_MAX];
        struct tail_seg cur = { .fd = -1 }, old = { .fd = -1 };
        char *buf, *line;
        int r;

        r = make_names(service, name, name1);
        if (r < 0)
                return r;
        /* NAME.log first: if it rotates before NAME.log.1 is opened, both
         * fds are the same file (caught below), never a gap between them. */
        r = open_read(dir_fd, name, &cur);
        if (r < 0 && r != -ENOENT) /* ENOENT: between rename and reopen */
                return r;
        r = open_read(dir_fd, name1, &old);
        if (r < 0 && r != -ENOENT)
                goto out_close;
        if (cur.fd < 0 && old.fd < 0) {
                r = -ENOENT;
                goto out_close;
        }
        if (cur.fd >= 0 && old.fd >= 0 && cur.dev == old.dev && cur.ino == old.ino)
                er_close(&old.fd);

        r = -ENOMEM;
        buf = malloc(TAIL_BLOCK);
        if (!buf)
                goto out_close;
        line = malloc(TAIL_LINE_MAX);
        if (!line)
                goto out_free_buf;

        if (cur.fd >= 0) {
                r = find_start(&cur, n, buf);
                if (r < 0)
                        goto out_free_line;
        }
        if (old.fd >= 0 && cur.found < n) {
                r = find_start(&old, n - cur.found, buf);
                if (r < 0)
                        goto out_free_line;
        }
        if (old.fd >= 0) {
                r = emit_lines(&old, buf, line, cb, ud);
                if (r < 0)
                        goto out_free_line;
        }
        if (cur.fd >= 0)
                r = emit_lines(&cur, buf, line, cb, ud);

out_free_line:
        free(line);
out_free_buf:
        free(buf);
out_close:
        er_close(&old.fd);
        er_close(&cur.fd);
        return r;
}
