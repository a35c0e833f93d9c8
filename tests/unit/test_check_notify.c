/* check notify: the sd_notify protocol on a real loop, with a real service
 * process (python3's socket module, as a client library would) in the
 * service's own group.  READY=1 makes it ready and STATUS= is kept; a
 * datagram from a process outside the group (the test itself) is ignored;
 * a datagram sent before start() is seen after it; an oversized datagram
 * is ignored; a BARRIER=1 is answered by closing its fd; other assignments
 * are ignored; the socket is still drained after the check is done; release
 * closes it.  Every test runs under both containment mechanisms.  Processes
 * are killed by pid and cgroups removed by the teardown, even on failure. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks/runner.h"
#include "proc/contain.h"
#include "proc/envp.h"
#include "proc/log.h"
#include "proc/loop.h"
#include "proc/proc.h"

extern char **environ;

#define DEADLINE_US (10 * 1000000ULL)

/* Sends each argument as one datagram to $NOTIFY_SOCKET ("@barrier":
 * BARRIER=1 with a pipe's write end, then waits for envrun to close it),
 * says "sent", and stays alive so that its pid can be checked. */
static const char client[] =
        "import os, select, signal, socket, sys\n"
        "a = os.environ['NOTIFY_SOCKET']\n"
        "a = '\\0' + a[1:] if a[0] == '@' else a\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "s.connect(a)\n"
        "for m in sys.argv[1:]:\n"
        "    if m == '@barrier':\n"
        "        r, w = os.pipe()\n"
        "        socket.send_fds(s, [b'BARRIER=1'], [w])\n"
        "        os.close(w)\n"
        "        p = select.poll()\n"
        "        p.register(r, select.POLLIN)\n"
        "        print('barrier-ok' if p.poll(5000) else 'barrier-timeout', flush=True)\n"
        "    elif m.startswith('@repeat:'):\n"
        "        for i in range(int(m[8:])):\n"
        "            s.send(b'WATCHDOG=1')\n"
        "    else:\n"
        "        s.send(m.encode())\n"
        "print('sent', flush=True)\n"
        "signal.pause()\n";

struct fx {
        bool session;
        struct er_loop *loop;
        struct er_contain contain;
        bool contain_ok;
        char dir[64];
        int dir_fd;
        struct er_log log;
        bool log_open;

        struct er_proc svc;              /* the service */
        bool svc_init;
        char **envp;
        char lines[4096];                /* what the service printed, one per line */
        struct er_envlist extra;         /* what prepare() added */

        struct er_check check;
        struct er_check_env env;
        struct er_check_run run;
        unsigned dones;
        enum er_check_result result;
        char status[160];                /* the last status_changed() */
        uint64_t spawn_us, done_us;
};

/* --- the service --------------------------------------------------------- */

static void svc_line(struct er_proc *p, enum er_stream stream, const char *line, size_t len)
{
        struct fx *f = p->owner;
        size_t n = strlen(f->lines);
        snprintf(f->lines + n, sizeof(f->lines) - n, "%.*s\n", (int)len, line);
}

static const struct er_proc_cb svc_cb = {.line = svc_line};

static void spawn_client(struct fx *f, const char *const *msgs, size_t n)
{
        struct er_envlist marker;
        struct er_err err = {0};
        const char *m = er_proc_marker(&f->svc), *eq = strchr(m, '=');
        char name[32], *argv[8] = {"python3", "-c", (char *)client};

        assert_true(n + 4 <= sizeof(argv) / sizeof(argv[0]));
        for (size_t i = 0; i < n; i++)
                argv[3 + i] = (char *)msgs[i];
        assert_non_null(eq);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - m), m);
        er_envlist_init(&marker);
        assert_int_equal(er_envlist_set(&marker, name, eq + 1, 0, 0), 0);
        const struct er_envlist *layers[] = {&f->extra, &marker};
        f->envp = er_envp_build(environ, layers, 2);
        er_envlist_fini(&marker);
        assert_non_null(f->envp);
        struct er_spawn_opts opts = {
                .file = "python3",
                .argv = argv,
                .envp = f->envp,
                .stdin_fd = -1,
                .stdout_fd = -1,
                .stderr_fd = -1,
                .pgrp = ER_SPAWN_SETSID,
                .uid = -1,
                .gid = -1,
                .cgroup_fd = -1,
                .pdeathsig = SIGKILL,
        };
        f->spawn_us = er_now_us();
        assert_int_equal(er_proc_spawn(&f->svc, &opts, true, &err), 0);
}

/* --- the engine's side ----------------------------------------------------- */

static void on_done(struct er_check_run *run, enum er_check_result result, const char *msg)
{
        struct fx *f = er_container_of(run, struct fx, run);
        f->dones++;
        f->result = result;
        f->done_us = er_now_us();
        /* As sched.c does: stop waiting once done. */
        er_runner_stop(run);
}

static void on_status(struct er_check_run *run, const char *status)
{
        struct fx *f = er_container_of(run, struct fx, run);
        snprintf(f->status, sizeof(f->status), "%s", status);
}

/* What the engine does on SIGCHLD (needed where there is no pidfd). */
static void reap(struct fx *f)
{
        if (f->svc_init && f->svc.spawned) {
                er_proc_reap(&f->svc);
                if (f->svc.exited && !f->svc.gone)
                        er_proc_check_empty(&f->svc);
        }
        for (unsigned guard = 0; guard < 64; guard++) {
                siginfo_t si;
                memset(&si, 0, sizeof(si));
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
                        break;
                if (f->svc.spawned && !f->svc.exited && si.si_pid == f->svc.pid)
                        break;
                waitid(P_PID, (id_t)si.si_pid, &si, WEXITED | WNOHANG);
        }
}

static bool drive(struct fx *f, bool (*cond)(struct fx *), uint64_t within_us)
{
        uint64_t end = er_now_us() + within_us;
        while (!cond(f)) {
                if (er_now_us() > end)
                        return false;
                er_loop_run_once(f->loop, 20000);
                reap(f);
        }
        return true;
}

static bool is_done(struct fx *f) { return f->dones > 0; }
static bool svc_gone(struct fx *f) { return !f->svc.spawned || f->svc.gone; }
static bool sent(struct fx *f) { return strstr(f->lines, "sent\n") != NULL; }

static char g_want[256];
static bool log_has_want(struct fx *f)
{
        char buf[16384];
        int fd = openat(f->dir_fd, "svc.log", O_RDONLY | O_CLOEXEC);
        ssize_t k;

        if (fd < 0)
                return false;
        k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (k < 0)
                return false;
        buf[k] = '\0';
        return strstr(buf, g_want) != NULL;
}

/* --- fixture ------------------------------------------------------------- */

static int setup_with(void **state, bool session)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct er_err err = {0};

        assert_non_null(f);
        f->session = session;
        f->dir_fd = -1;
        er_envlist_init(&f->extra);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test_check_notify.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dir_fd >= 0);
        assert_int_equal(er_loop_new(&f->loop), 0);
        assert_int_equal(er_contain_init(&f->contain, "tchecknotify", session, true), 0);
        f->contain_ok = true;
        assert_int_equal(f->contain.kind, session ? ER_CONTAIN_REAPER : ER_CONTAIN_CGROUP2);
        assert_int_equal(er_log_open(&f->log, f->dir_fd, "svc", 1 << 20), 0);
        f->log_open = true;
        assert_int_equal(er_proc_init(&f->svc, f->loop, &f->contain, "svc", &svc_cb, f, NULL, &err),
                         0);
        f->svc_init = true;
        f->env = (struct er_check_env){
                .service = "svc",
                .cwd = f->dir,
                .log = &f->log,
                .contain = &f->contain,
                .group = &f->svc.group,
                .state_dir = f->dir,
        };
        f->check.ops = &er_check_notify_ops;
        er_runner_init(&f->run, &f->check, f->loop, &f->env, f, on_done);
        f->run.status_changed = on_status;
        *state = f;
        return 0;
}

static int setup(void **state) { return setup_with(state, false); }
static int setup_session(void **state) { return setup_with(state, true); }

static int teardown(void **state)
{
        struct fx *f = *state;
        DIR *d;
        struct dirent *de;

        er_runner_release(&f->run);
        if (f->svc_init && f->svc.spawned && !f->svc.gone) {
                kill(f->svc.pid, SIGKILL);
                er_proc_stop(&f->svc, SIGKILL, 0, SIGKILL, true);
                drive(f, svc_gone, DEADLINE_US);
        }
        reap(f);
        if (f->svc_init)
                er_proc_fini(&f->svc);
        if (f->log_open)
                er_log_close(&f->log);
        if (f->contain_ok)
                er_contain_fini(&f->contain);
        er_loop_free(f->loop);
        er_envp_free(f->envp);
        er_envlist_fini(&f->extra);
        d = fdopendir(f->dir_fd);
        while (d && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        unlinkat(dirfd(d), de->d_name, 0);
        if (d)
                closedir(d);
        rmdir(f->dir);
        free(f);
        return 0;
}

static void prepare(struct fx *f)
{
        assert_int_equal(er_runner_prepare(&f->run, &f->extra), 0);
}

static void start(struct fx *f)
{
        assert_int_equal(er_runner_start(&f->run, false), 0);
}

/* The socket's address, from NOTIFY_SOCKET. */
static socklen_t address(struct fx *f, struct sockaddr_un *sa)
{
        const char *v = er_envlist_get(&f->extra, "NOTIFY_SOCKET");
        size_t len;

        assert_non_null(v);
        assert_int_equal(v[0], '@');
        len = strlen(v);
        assert_true(len < sizeof(sa->sun_path));
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path + 1, v + 1, len - 1);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

/* --- tests --------------------------------------------------------------- */

static void test_ready_and_status(void **state)
{
        struct fx *f = *state;
        const char *msgs[] = {"STATUS=warming\nREADY=1"};
        const char *v;
        char want[64];

        prepare(f);
        v = er_envlist_get(&f->extra, "NOTIFY_SOCKET");
        assert_non_null(v);
        snprintf(want, sizeof(want), "@envrun/%ld/svc/", (long)getpid());
        assert_memory_equal(v, want, strlen(want));
        start(f);
        spawn_client(f, msgs, 1);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_READY);
        assert_int_equal(f->dones, 1);
        assert_string_equal(f->status, "warming");
        snprintf(g_want, sizeof(g_want), " - status: warming\n");
        assert_true(log_has_want(f));
        print_message("ready %.1f ms after spawning the python client\n",
                      (double)(f->done_us - f->spawn_us) / 1000);
}

static void test_foreign_sender_ignored(void **state)
{
        struct fx *f = *state;
        const char *msgs[] = {"READY=1"};
        struct sockaddr_un sa;
        socklen_t len;
        int fd;

        prepare(f);
        start(f);
        len = address(f, &sa);
        /* The test process is not in the service's group. */
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa, len), 7);
        close(fd);
        snprintf(g_want, sizeof(g_want), "ignored a notification from pid %ld, not of this service\n",
                 (long)getpid());
        assert_true(drive(f, log_has_want, DEADLINE_US));
        assert_int_equal(f->dones, 0);
        /* Still waiting: the service's own READY=1 counts. */
        spawn_client(f, msgs, 1);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_READY);
}

static void test_sent_before_start(void **state)
{
        struct fx *f = *state;
        const char *msgs[] = {"READY=1"};

        prepare(f);
        spawn_client(f, msgs, 1);
        assert_true(drive(f, sent, DEADLINE_US));
        er_loop_run_once(f->loop, 0);
        assert_int_equal(f->dones, 0);
        start(f);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_READY);
}

static void test_oversized_ignored(void **state)
{
        struct fx *f = *state;
        static char big[6000];
        const char *msgs[] = {big, "STATUS=after"};

        memset(big, 'x', sizeof(big) - 1);
        memcpy(big, "READY=1\nX=", 10);
        prepare(f);
        start(f);
        spawn_client(f, msgs, 2);
        snprintf(g_want, sizeof(g_want), " - status: after\n");
        assert_true(drive(f, log_has_want, DEADLINE_US));
        snprintf(g_want, sizeof(g_want), ": longer than 4096 bytes\n");
        assert_true(log_has_want(f));
        assert_int_equal(f->dones, 0);
}

static void test_other_assignments_ignored(void **state)
{
        struct fx *f = *state;
        const char *msgs[] = {"MAINPID=1\nRELOADING=1\nREADY=0\nREADY=11\nSTATUS=almost"};

        prepare(f);
        start(f);
        spawn_client(f, msgs, 1);
        snprintf(g_want, sizeof(g_want), " - status: almost\n");
        assert_true(drive(f, log_has_want, DEADLINE_US));
        assert_int_equal(f->dones, 0);
        assert_string_equal(f->status, "almost");
}

static void test_barrier_answered(void **state)
{
        struct fx *f = *state;
        const char *msgs[] = {"@barrier", "READY=1"};

        prepare(f);
        start(f);
        spawn_client(f, msgs, 2);
        assert_true(drive(f, is_done, DEADLINE_US));
        assert_int_equal(f->result, ER_CHECK_READY);
        /* Its output may come after the datagram that followed it. */
        assert_true(drive(f, sent, DEADLINE_US));
        assert_non_null(strstr(f->lines, "barrier-ok\n"));
}

static void test_drained_after_done(void **state)
{
        struct fx *f = *state;
        /* More than the kernel queues (net.unix.max_dgram_qlen, 512 by
         * default): a blocking client would hang if nobody read them. */
        const char *msgs[] = {"READY=1", "@repeat:2000"};

        prepare(f);
        start(f);
        spawn_client(f, msgs, 2);
        assert_true(drive(f, sent, DEADLINE_US));
        assert_int_equal(f->dones, 1);
}

static void test_release_closes(void **state)
{
        struct fx *f = *state;
        struct sockaddr_un sa;
        socklen_t len;
        int fd;

        prepare(f);
        len = address(f, &sa);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, len), 0);
        close(fd);
        er_runner_release(&f->run);
        assert_null(f->run.priv);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, len), -1);
        assert_int_equal(errno, ECONNREFUSED);
        close(fd);
        /* Not prepared: start refuses. */
        assert_true(er_runner_start(&f->run, false) < 0);
}

int main(void)
{
#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup, teardown), \
                cmocka_unit_test_setup_teardown(t, setup_session, teardown)
        const struct CMUnitTest tests[] = {
                BOTH(test_ready_and_status),
                BOTH(test_foreign_sender_ignored),
                BOTH(test_sent_before_start),
                BOTH(test_oversized_ignored),
                BOTH(test_other_assignments_ignored),
                BOTH(test_barrier_answered),
                BOTH(test_drained_after_done),
                BOTH(test_release_closes),
        };
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
