/* Fuzz target for the sd_notify message parser (checks/check_notify.c): the
 * input's first byte says how many descriptors go with the message (0-3,
 * as a sender may pass, e.g. systemd-notify's BARRIER=1 fd), the rest is one
 * datagram sent to the check's real socket.  The parser (apply, set_status)
 * is static, so it is reached through the check's run: er_runner_prepare
 * once (binds the abstract socket named in NOTIFY_SOCKET), then for each
 * input er_runner_start, sendmsg, one loop iteration, er_runner_stop.  The
 * service's group is a reaper-kind group whose reaper is this process's
 * parent, so this process, the sender, is "of the service".
 *
 * Oracles, each an abort(), against a reference reading of the message
 * (lines split on '\n'; a line "READY=1" makes it ready; each line starting
 * "STATUS=" is a status; a datagram over 4 KiB is ignored whole):
 *   - ready exactly when the reference says so, at most once;
 *   - one status_changed per STATUS= line, the last one equal to the
 *     reference's (control characters as spaces, cut at 159 bytes without
 *     splitting a UTF-8 sequence);
 *   - every descriptor passed is closed (the lowest free fd is unchanged).
 * Built with libFuzzer (tests/fuzz/run notify) or, for the test suite, with
 * replay_main.c. */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "checks/runner.h"
#include "model/envfile.h"
#include "proc/contain.h"
#include "proc/loop.h"
#include "proc/spawn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DGRAM_MAX 4096
#define STATUS_MAX 160
#define MAX_FDS 3

static struct er_loop *loop;
static struct er_contain contain;
static struct er_group group;
static struct er_check check;
static struct er_check_env env;
static struct er_check_run run;
static struct er_envlist extra;
static struct sockaddr_un addr;
static socklen_t addr_len;
static int sender = -1;

/* what the check reported for one input */
static unsigned ndone, nstatus;
static char status[STATUS_MAX];

static void die(const char *what)
{
        fprintf(stderr, "fuzz_notify: %s (done %u, statuses %u, last '%s')\n", what, ndone, nstatus,
                status);
        abort();
}

static void on_done(struct er_check_run *r, enum er_check_result result, const char *msg)
{
        if (result != ER_CHECK_READY)
                die("failed");
        ndone++;
}

static void on_status(struct er_check_run *r, const char *s)
{
        nstatus++;
        if (strlen(s) >= sizeof(status))
                die("status too long");
        snprintf(status, sizeof(status), "%s", s);
}

static void cleanup(void)
{
        er_runner_release(&run);
        er_envlist_fini(&extra);
        er_close(&sender);
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
        const char *name;

        if (er_loop_new(&loop) < 0)
                die("er_loop_new");
        if (er_contain_init(&contain, "fuzz", true, false) < 0 ||
            er_group_init(&group, &contain, "svc", NULL) < 0 || er_group_started(&group, &ch) < 0)
                die("cannot make the group");
        check.ops = &er_check_notify_ops;
        env.service = "svc";
        env.group = &group;
        env.uid = env.gid = -1;
        er_envlist_init(&extra);
        er_runner_init(&run, &check, loop, &env, NULL, on_done);
        run.status_changed = on_status;
        if (er_runner_prepare(&run, &extra) < 0)
                die("er_runner_prepare");
        name = er_envlist_get(&extra, "NOTIFY_SOCKET");
        if (!name || name[0] != '@' || strlen(name) > sizeof(addr.sun_path) - 1)
                die("no abstract NOTIFY_SOCKET");
        /* as sd_notify connects: '@' is the leading NUL, no trailing NUL */
        addr.sun_family = AF_UNIX;
        memcpy(addr.sun_path + 1, name + 1, strlen(name) - 1);
        addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
        sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sender < 0)
                die("socket");
        atexit(cleanup);
}

/* The reference reading: whether it says READY=1, how many statuses, and
 * the last one as the check shows it. */
static bool ref_read(const char *buf, size_t len, unsigned *ret_n, char *last)
{
        const char *p = buf, *end = buf + len;
        bool r = false;

        *ret_n = 0;
        last[0] = '\0';
        if (len > DGRAM_MAX)
                return false;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t n = (size_t)((nl ? nl : end) - p);
                if (n == 7 && !memcmp(p, "READY=1", 7))
                        r = true;
                if (n >= 7 && !memcmp(p, "STATUS=", 7)) {
                        const unsigned char *s = (const unsigned char *)p + 7;
                        size_t k = n - 7;
                        if (k > STATUS_MAX - 1) {
                                k = STATUS_MAX - 1;
                                while (k > 0 && (s[k] & 0xc0) == 0x80)
                                        k--;
                        }
                        for (size_t i = 0; i < k; i++)
                                last[i] = s[i] < 0x20 || s[i] == 0x7f ? ' ' : (char)s[i];
                        last[k] = '\0';
                        (*ret_n)++;
                }
                p += n + 1;
        }
        return r;
}

/* Received descriptors take the lowest free numbers: one left open moves it. */
static int lowest_free_fd(void)
{
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                die("open /dev/null");
        close(fd);
        return fd;
}

static void send_one(const uint8_t *data, size_t size, unsigned nfds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        } ctl;
        struct iovec iov = {.iov_base = (void *)data, .iov_len = size};
        struct msghdr mh = {
            .msg_name = &addr, .msg_namelen = addr_len, .msg_iov = &iov, .msg_iovlen = 1};
        int fds[MAX_FDS];

        for (unsigned i = 0; i < nfds; i++)
                if ((fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
                        die("open /dev/null");
        if (nfds) {
                struct cmsghdr *c;
                memset(&ctl, 0, sizeof(ctl));
                mh.msg_control = ctl.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        if (sendmsg(sender, &mh, MSG_NOSIGNAL) != (ssize_t)size)
                die("sendmsg");
        for (unsigned i = 0; i < nfds; i++)
                close(fds[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char want_status[STATUS_MAX];
        unsigned want_n, nfds;
        bool want_ready;
        int free_fd;

        if (!loop)
                setup();
        if (size < 1)
                return 0;
        nfds = data[0] % (MAX_FDS + 1);
        data++, size--;
        want_ready = ref_read((const char *)data, size, &want_n, want_status);
        ndone = nstatus = 0;
        status[0] = '\0';
        free_fd = lowest_free_fd();
        if (er_runner_start(&run, false) < 0)
                die("er_runner_start");
        send_one(data, size, nfds);
        /* one datagram: one iteration reads it (and the check reads on) */
        if (er_loop_run_once(loop, 1000000) != 1)
                die("the datagram was not read");
        er_runner_stop(&run);
        if (ndone != (want_ready ? 1u : 0u))
                die(want_ready ? "READY=1 missed" : "ready without READY=1");
        /* after READY=1 the rest of the datagram is still read */
        if (nstatus != want_n || strcmp(status, want_status))
                die("statuses differ from the reference");
        if (lowest_free_fd() != free_fd)
                die("a passed descriptor was left open");
        return 0;
}
