/* Fuzz target for the pid-file reader (checks/check_pidfile.c): the input is
 * the file's content.  The reader (read_pidfile, parse_pid) is static, so
 * it is reached through the smallest public path: the check's run on a real
 * loop, on a real file in a directory of its own (removed at exit; a crash
 * leaves /tmp/fuzz_pidfile.* behind).  The first input is
 * written before er_runner_start (pidfile_start -> check_file reads it at
 * once); each later one rewrites the file, and one loop iteration delivers
 * the inotify events (on_inotify -> check_file), as a service's rewrite
 * would.  Starting afresh for every input would cost an inotify instance
 * each, whose close waits for the kernel to free its watches (17 ms a start
 * here: 58 inputs a second).
 * After ready the check is stopped, and the next input starts it again.
 * The service's group is a reaper-kind group whose reaper is this
 * process's parent, so this process itself is "of the service".
 *
 * Oracle (an abort()): what the check reports agrees with a reference
 * reading of SPEC §4 (the pid is the leading decimal number of the file's
 * first 64 bytes, after blanks; no NUL; 1..INT_MAX):
 *   - an empty file: "is empty"; no pid: "holds no pid";
 *   - a pid: ready naming that pid as the daemon, or a reason naming it
 *     ("holds pid N, which is not running" / "... not a process of the
 *     service"): which of the two depends on the host, not on the input.
 * Built with libFuzzer (tests/fuzz/run pidfile) or, for the test suite,
 * with replay_main.c. */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "checks/runner.h"
#include "proc/contain.h"
#include "proc/loop.h"
#include "proc/spawn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILE_MAX 64 /* what the check reads */

static struct er_loop *loop;
static struct er_contain contain;
static struct er_group group;
static char dir[] = "/tmp/fuzz_pidfile.XXXXXX";
static char path[64];
static struct er_check_path conf;
static struct er_check check;
static struct er_check_env env;
static struct er_check_run run;
static bool started;

/* what the check reported for one input */
static unsigned ndone, nfailed;
static bool ready;
static pid_t daemon_pid;
static char why[160];

static void die(const char *what)
{
        fprintf(stderr, "fuzz_pidfile: %s (ready %d, daemon %ld, why '%s')\n", what, ready,
                (long)daemon_pid, why);
        abort();
}

static void on_done(struct er_check_run *r, enum er_check_result result, const char *msg)
{
        ndone++;
        ready = result == ER_CHECK_READY;
        if (!ready)
                snprintf(why, sizeof(why), "%s", msg ? msg : "");
}

static void on_failed(struct er_check_run *r, const char *w)
{
        nfailed++;
        snprintf(why, sizeof(why), "%s", w);
}

static void on_daemon(struct er_check_run *r, pid_t pid)
{
        daemon_pid = pid;
}

static void cleanup(void)
{
        if (started)
                er_runner_stop(&run);
        unlink(path);
        rmdir(dir);
        group.reaper_gone = true; /* not a real reaper: nothing to tell */
        er_group_fini(&group);
        er_contain_fini(&contain);
        er_loop_free(loop);
}

static void setup(void)
{
        struct er_child ch = {.pid = getpid(),
                              .pidfd = -1,
                              .reaper_pid = getppid(),
                              .reaper_pidfd = -1,
                              .reaper_cmd = -1,
                              .reaper_st = -1};

        if (!mkdtemp(dir) || er_loop_new(&loop) < 0)
                die("setup");
        snprintf(path, sizeof(path), "%s/run.pid", dir);
        if (er_contain_init(&contain, "fuzz", true, false) < 0 ||
            er_group_init(&group, &contain, "svc", NULL) < 0 || er_group_started(&group, &ch) < 0)
                die("cannot make the group");
        conf.path = path;
        check.ops = &er_check_pidfile_ops;
        check.conf = &conf;
        env.service = "svc";
        env.group = &group;
        env.uid = env.gid = -1;
        atexit(cleanup);
}

/* The reference reading: the pid, or -1. */
static long ref_pid(const uint8_t *data, size_t size)
{
        size_t n = size < FILE_MAX ? size : FILE_MAX, i = 0;
        long v = 0;

        if (memchr(data, '\0', n))
                return -1;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
                i++;
        if (i == n || data[i] < '0' || data[i] > '9')
                return -1;
        for (; i < n && data[i] >= '0' && data[i] <= '9'; i++) {
                v = v * 10 + (data[i] - '0');
                if (v > INT_MAX)
                        return -1;
        }
        return v == 0 ? -1 : v;
}

static void write_file(const uint8_t *data, size_t size)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        size_t off = 0;

        if (fd < 0)
                die("cannot write the pid file");
        while (off < size) {
                ssize_t k = write(fd, data + off, size - off);
                if (k <= 0)
                        die("cannot write the pid file");
                off += (size_t)k;
        }
        close(fd);
}

static void judge(const uint8_t *data, size_t size)
{
        long want = ref_pid(data, size);
        char a[96], b[96];

        if (ndone + nfailed != 1)
                die("not exactly one outcome");
        if (want < 0) {
                if (ready || strcmp(why, size ? "holds no pid" : "is empty"))
                        die("a file without a pid was not refused as such");
                return;
        }
        if (ready) {
                if (daemon_pid != (pid_t)want)
                        die("ready with another pid");
                return;
        }
        snprintf(a, sizeof(a), "holds pid %ld, which is not running", want);
        snprintf(b, sizeof(b), "holds pid %ld, which is not a process of the service", want);
        if (strcmp(why, a) && strcmp(why, b))
                die("the reason names another pid");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!loop)
                setup();
        ndone = nfailed = 0;
        ready = false;
        daemon_pid = 0;
        why[0] = '\0';
        write_file(data, size);
        if (!started) {
                er_runner_init(&run, &check, loop, &env, NULL, on_done);
                run.attempt_failed = on_failed;
                run.daemon = on_daemon;
                if (er_runner_start(&run, false) < 0)
                        die("er_runner_start");
                started = true;
        } else {
                /* the write is queued on the watch: one iteration reads it */
                if (er_loop_run_once(loop, 1000000) != 1)
                        die("the rewrite was not seen");
        }
        judge(data, size);
        if (ndone) {
                /* done: the check watches no more; the next input starts it */
                er_runner_stop(&run);
                started = false;
                if (er_loop_run_once(loop, 0) != 0)
                        die("a callback ran after the check stopped");
        }
        return 0;
}
