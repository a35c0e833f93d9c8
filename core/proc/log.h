/* log: a service's captured output on disk, bounded (SPEC §3 log.max_size).
 *
 * Each line is written as "<timestamp> <stream> <text>\n", the timestamp in
 * RFC 3339 UTC with milliseconds (2026-11-23T18:03:04.512Z), the stream "O"
 * for stdout, "E" for stderr, "P" for probe output, "-" for envrun's own
 * notes.  The log lives in two segments, NAME.log (newest) and NAME.log.1
 * (older), each at most max_size/2: when NAME.log would grow past that it
 * becomes NAME.log.1 (the previous NAME.log.1 is dropped and its size
 * counted in `dropped`), so the newest output within max_size is always
 * kept, envrun's memory stays constant and writing costs no copying.
 * Files are created 0600 with O_NOFOLLOW|O_CLOEXEC in a directory fd. */
#ifndef ER_LOG_H
#define ER_LOG_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

enum er_log_stream {
        ER_LOG_STDOUT = 'O',
        ER_LOG_STDERR = 'E',
        ER_LOG_PROBE = 'P',
        ER_LOG_NOTE = '-',
};

struct er_log {
        int dir_fd;        /* borrowed */
        char name[80];     /* "db.log" */
        char name1[84];    /* "db.log.1" */
        int fd;
        uint64_t max_size, size;
        uint64_t dropped;  /* bytes dropped so far (old segments, cut lines) */
        int err;           /* first error; once set, nothing more is written */
        uint64_t ts_sec;   /* the second `ts` holds (UINT64_MAX: none) */
        char ts[20];       /* "2026-11-23T18:03:04": one gmtime_r per second */
        char *wbuf;        /* buffered mode: lines wait here for er_log_flush */
        size_t wlen;
        int write_err;     /* the first failed write's -errno (ENOSPC...), or 0 */
        bool write_err_said;
};

/* Buffered mode: lines are gathered (up to 64 KiB) and written by
 * er_log_flush, once per batch of output instead of once per line; the
 * engine flushes after each read of a service's pipes.  0 or -ENOMEM (the
 * log then stays unbuffered). */
int er_log_set_buffered(struct er_log *log);
/* Writes what buffered mode gathered.  0 or the log's error.  A write
 * that fails (a full disk) drops what it held into `dropped` and does not
 * stop the log: later lines are tried again. */
int er_log_flush(struct er_log *log);
/* The first failed write's -errno, once (to warn about it once), else 0. */
int er_log_take_write_error(struct er_log *log);

/* Creates (truncating) dir/NAME.log; removes a stale NAME.log.1.  0 or -errno
 * (-ELOOP for a symlink, -EINVAL for a bad name or a non-regular file); `log`
 * is filled even on failure, so er_log_close is always safe. */
int er_log_open(struct er_log *log, int dir_fd, const char *service, uint64_t max_size);
/* Appends one line (text without its newline; a line longer than the
 * segment is cut to fit).  `realtime_ms`: wall-clock time of the line
 * (CLOCK_REALTIME in ms).  0 or -errno (the log then stops writing and
 * returns the error once; the service keeps running). */
int er_log_line(struct er_log *log, enum er_log_stream stream, uint64_t realtime_ms,
                const char *text, size_t len);
void er_log_close(struct er_log *log);

/* Reads back the last `n` lines of a service's log (both segments), for the
 * report's tail and `envrun logs -n`: calls cb for each line, oldest first
 * (line without newline, not NUL-terminated, cut at 64 KiB).  Memory is
 * constant whatever n and the file sizes.  0 or -errno. */
int er_log_tail(int dir_fd, const char *service, size_t n,
                void (*cb)(void *ud, const char *line, size_t len), void *ud);

/* CLOCK_REALTIME in milliseconds. */
uint64_t er_realtime_ms(void);

#endif
