/* contain: a real process tree (double fork + setsid) is found, signalled,
 * killed and waited for under both mechanisms; the cgroup2 tree is removed;
 * the marker scan matches exact entries only; the fallbacks give a reason;
 * a hold shares one /proc snapshot and rescans at its release.
 * Needs root for the cgroup2 tests (they fail loudly otherwise). Every process and
 * cgroup a test makes is killed (by pid) and removed by its teardown, even
 * when the test fails. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/sched.h> /* CLONE_NEWNS: <sched.h> is shadowed by core/sched.h under -Icore */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "contain.h"

#define MAX_PIDS 256
#define DEADLINE_NS (5 * 1000000000LL)
#define NOBODY 65534

/* Four processes, two of them in a session of their own after a double
 * fork: what a daemon does. */
#define TREE_SCRIPT "sleep 100 & setsid sh -c \"sleep 100 & sleep 100\" & sleep 100"

struct fixture {
        struct er_contain c;
        bool c_ok;
        struct er_group g;
        bool g_ok;
        pid_t pids[MAX_PIDS]; /* every pid this test made or saw: killed in teardown */
        size_t npids;
        int epfd;
        char cgdir[512]; /* a cgroup made by the test itself, or "" */
        char tag[64];    /* an environment entry the test gave its processes, or "" */
};

static long long now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap(void)
{
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
}

static void reap_all(void)
{
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

static void remember(struct fixture *fx, pid_t pid)
{
        for (size_t i = 0; i < fx->npids; i++)
                if (fx->pids[i] == pid)
                        return;
        if (fx->npids < MAX_PIDS)
                fx->pids[fx->npids++] = pid;
}

static bool all_gone(const struct fixture *fx)
{
        for (size_t i = 0; i < fx->npids; i++)
                if (kill(fx->pids[i], 0) == 0 || errno != ESRCH)
                        return false;
        return true;
}

/* Reaps (the test is a subreaper, so orphans come here) until every pid
 * seen is gone, or the deadline. */
static void reap_until_gone(struct fixture *fx)
{
        long long end = now_ns() + DEADLINE_NS;
        while (reap_all(), !all_gone(fx) && now_ns() < end)
                nap();
}

/* The cgroup2 mount point, found the same way contain.c does, or "". */
static void cgroup2_mount(char *buf, size_t len, bool *rw)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];

        buf[0] = '\0';
        *rw = false;
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char mnt[256], opts[256];
                if (!strstr(line, " - cgroup2 "))
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %255s %255s", mnt, opts) == 2) {
                        memcpy(buf, mnt, len < sizeof(mnt) ? len : sizeof(mnt));
                        buf[len - 1] = '\0';
                        *rw = strncmp(opts, "rw", 2) == 0 && (opts[2] == ',' || !opts[2]);
                }
                break;
        }
        fclose(f);
}

/* Whether this host must give cgroup2: root and a writable mount. */
static bool expect_cgroup2(void)
{
        char mnt[256];
        bool rw;
        cgroup2_mount(mnt, sizeof(mnt), &rw);
        return geteuid() == 0 && mnt[0] && rw;
}

static void random_suffix(char *buf, size_t len)
{
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
                r = (uint32_t)now_ns();
        snprintf(buf, len, "%08x", (unsigned)r);
}

static int rmdir_dir(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (type == FTW_DP)
                rmdir(path);
        return 0;
}

/* Removes a tree of cgroups, deepest first: only directories (a cgroup's
 * files cannot be unlinked), and rmdir never removes one with processes. */
static void rmdir_tree(const char *path)
{
        if (path[0])
                nftw(path, rmdir_dir, 16, FTW_DEPTH | FTW_PHYS);
}

/* Kills, by pid, whatever carries the test's tag, until nothing does. */
static void kill_tagged(struct fixture *fx)
{
        long long end = now_ns() + DEADLINE_NS;
        pid_t pids[64];
        int n;

        if (!fx->tag[0])
                return;
        while ((n = er_contain_scan_marker(fx->tag, pids, 64)) > 0 && now_ns() < end) {
                for (int i = 0; i < n && i < 64; i++) {
                        remember(fx, pids[i]);
                        kill(pids[i], SIGKILL);
                }
                reap_all();
                nap();
        }
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        if (!fx)
                return -1;
        fx->epfd = -1;
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        long long end = now_ns() + DEADLINE_NS;

        for (size_t i = 0; i < fx->npids; i++)
                kill(fx->pids[i], SIGKILL);
        kill_tagged(fx);
        if (fx->g_ok) {
                er_group_kill(&fx->g);
                while (reap_all(), !er_group_empty(&fx->g) && now_ns() < end)
                        nap();
        }
        reap_until_gone(fx);
        if (fx->g_ok)
                er_group_fini(&fx->g);
        if (fx->c_ok)
                er_contain_fini(&fx->c);
        rmdir_tree(fx->cgdir);
        if (fx->epfd >= 0)
                close(fx->epfd);
        free(fx);
        return 0;
}

/* Forks the tree's root: in its own session (as spawn does for services),
 * with the marker, and into the group before it execs, so nothing it forks
 * can be outside the cgroup. */
static pid_t start_tree(struct fixture *fx, char *env_entry)
{
        int p[2];
        pid_t pid;
        char b = 0;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[1]);
                setsid();
                putenv(env_entry);
                if (read(p[0], &b, 1) != 1)
                        _exit(126);
                execl("/bin/sh", "sh", "-c", TREE_SCRIPT, (char *)NULL);
                _exit(127);
        }
        close(p[0]);
        remember(fx, pid);
        assert_int_equal(er_group_started(&fx->g, pid, false), 0);
        assert_int_equal(write(p[1], &b, 1), 1);
        close(p[1]);
        return pid;
}

static int wait_members(struct fixture *fx, int want)
{
        long long end = now_ns() + DEADLINE_NS;
        pid_t pids[64];
        int n;

        for (;;) {
                n = er_group_pids(&fx->g, pids, 64);
                assert_true(n >= 0);
                for (int i = 0; i < n && i < 64; i++)
                        remember(fx, pids[i]);
                if (n >= want || now_ns() >= end)
                        return n;
                nap();
        }
}

/* The whole life of a group, for either kind. */
static void run_tree(struct fixture *fx)
{
        struct er_err err = {0};
        struct epoll_event ev = {0};
        bool cg = fx->c.kind == ER_CONTAIN_CGROUP2;
        long long end;
        char root[512] = "";
        int n;

        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        assert_string_equal(fx->g.name, "svc");
        assert_true(strncmp(fx->g.marker, "ENVRUN_MARKER=", 14) == 0);
        assert_non_null(strstr(fx->g.marker, fx->c.instance));
        assert_true(cg ? er_group_cgroup_fd(&fx->g) >= 0 : er_group_cgroup_fd(&fx->g) == -1);
        assert_true(er_group_empty(&fx->g));

        start_tree(fx, fx->g.marker);
        n = wait_members(fx, 4);
        assert_true(n >= 4);
        for (size_t i = 0; i < fx->npids; i++)
                assert_int_equal(kill(fx->pids[i], 0), 0);

        if (cg) {
                /* Read cgroup.events once (er_group_empty does), so that the
                 * notification of the 0 -> 1 change is consumed. */
                fx->epfd = epoll_create1(EPOLL_CLOEXEC);
                assert_true(fx->epfd >= 0);
                ev.events = EPOLLPRI;
                assert_int_equal(epoll_ctl(fx->epfd, EPOLL_CTL_ADD, fx->g.events_fd, &ev), 0);
                assert_false(er_group_empty(&fx->g));
                assert_int_equal(epoll_wait(fx->epfd, &ev, 1, 0), 0);
        } else {
                assert_false(er_group_empty(&fx->g));
        }

        n = er_group_signal(&fx->g, SIGTERM, true);
        assert_true(n >= 4);
        n = er_group_kill(&fx->g);
        assert_true(n >= 0);

        if (cg) {
                n = epoll_wait(fx->epfd, &ev, 1, 5000);
                assert_int_equal(n, 1);
                assert_true(ev.events & EPOLLPRI);
        }
        end = now_ns() + DEADLINE_NS;
        while (reap_all(), !er_group_empty(&fx->g) && now_ns() < end)
                nap();
        assert_true(er_group_empty(&fx->g));
        reap_until_gone(fx);
        for (size_t i = 0; i < fx->npids; i++) {
                errno = 0;
                assert_int_equal(kill(fx->pids[i], 0), -1);
                assert_int_equal(errno, ESRCH);
        }
        assert_int_equal(er_group_pids(&fx->g, NULL, 0), 0);

        er_group_fini(&fx->g);
        fx->g_ok = false;
        if (cg) {
                struct stat st;
                errno = 0;
                assert_int_equal(fstatat(fx->c.root_fd, "svc", &st, 0), -1);
                assert_int_equal(errno, ENOENT);
                snprintf(root, sizeof(root), "%s", fx->c.root);
        }
        er_contain_fini(&fx->c);
        fx->c_ok = false;
        if (cg) {
                struct stat st;
                errno = 0;
                assert_int_equal(stat(root, &st), -1);
                assert_int_equal(errno, ENOENT);
        }
}

static void check_instance_id(const struct er_contain *c, const char *project)
{
        char want[64];
        size_t wl;
        snprintf(want, sizeof(want), "%s.%ld.", project, (long)getpid());
        wl = strlen(want);
        assert_true(strncmp(c->instance, want, wl) == 0);
        assert_int_equal(strlen(c->instance), wl + 8);
        assert_int_equal(strspn(c->instance + wl, "0123456789abcdef"), 8);
}

static void test_tree_cgroup2(void **state)
{
        struct fixture *fx = *state;
        char mnt[256];
        bool rw;
        struct stat st;

        if (!expect_cgroup2())
                fail_msg("needs root and a writable cgroup2 hierarchy (tests/run runs as root)");
        cgroup2_mount(mnt, sizeof(mnt), &rw);
        assert_int_equal(er_contain_init(&fx->c, "t", false), 0);
        fx->c_ok = true;
        assert_int_equal(fx->c.kind, ER_CONTAIN_CGROUP2);
        assert_string_equal(er_contain_name(&fx->c), "cgroup2");
        check_instance_id(&fx->c, "t");
        assert_true(strncmp(fx->c.reason, "cgroup2 at ", 11) == 0);
        assert_non_null(strstr(fx->c.reason, mnt));
        assert_non_null(strstr(fx->c.reason, "(root)"));
        assert_true(strncmp(fx->c.root, mnt, strlen(mnt)) == 0);
        assert_non_null(strstr(fx->c.root, "/envrun/"));
        assert_non_null(strstr(fx->c.root, fx->c.instance));
        assert_int_equal(stat(fx->c.root, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_true(fx->c.root_fd >= 0);
        print_message("    containment: %s\n", fx->c.reason);
        run_tree(fx);
}

static void test_tree_session(void **state)
{
        struct fixture *fx = *state;

        assert_int_equal(er_contain_init(&fx->c, "t", true), 0);
        fx->c_ok = true;
        assert_int_equal(fx->c.kind, ER_CONTAIN_SESSION);
        assert_string_equal(er_contain_name(&fx->c), "session");
        assert_non_null(strstr(fx->c.reason, "forced"));
        assert_null(fx->c.root);
        assert_int_equal(fx->c.root_fd, -1);
        check_instance_id(&fx->c, "t");
        run_tree(fx);
}

/* The negative control: without the marker, the session kind sees only
 * the processes that stayed in the session; the ones below setsid escape
 * (at least two sleeps).  A tag of the test's own finds them all. */
static void test_session_without_marker(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        char rnd[16], *tag = fx->tag;
        pid_t tagged[16];
        long long end;
        int n = 0, t = 0;

        random_suffix(rnd, sizeof(rnd));
        snprintf(fx->tag, sizeof(fx->tag), "ENVRUN_TEST_TAG=%ld.%s", (long)getpid(), rnd);
        assert_int_equal(er_contain_init(&fx->c, "t", true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        start_tree(fx, tag);
        end = now_ns() + DEADLINE_NS;
        while (now_ns() < end) {
                t = er_contain_scan_marker(tag, tagged, 16);
                for (int i = 0; i < t && i < 16; i++)
                        remember(fx, tagged[i]);
                n = er_group_pids(&fx->g, NULL, 0);
                if (t >= 4 && n >= 1 && t - n >= 2)
                        break;
                nap();
        }
        print_message("    tagged %d, in the session %d\n", t, n);
        assert_true(t >= 4);
        assert_true(n >= 1);
        assert_true(t - n >= 2);
        /* teardown kills all four by pid */
}

/* A signal sent while the group is stopped reaches it (SIGCONT after). */
static void test_signal_stopped(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        long long end;
        pid_t pid;
        int status = 0;

        assert_int_equal(er_contain_init(&fx->c, "t", !expect_cgroup2()), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "stopped", &err), 0);
        fx->g_ok = true;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                setsid();
                raise(SIGSTOP);
                pause();
                _exit(0);
        }
        remember(fx, pid);
        assert_int_equal(er_group_started(&fx->g, pid, false), 0);
        assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
        assert_true(WIFSTOPPED(status));
        assert_int_equal(er_group_signal(&fx->g, SIGTERM, true), 1);
        end = now_ns() + DEADLINE_NS;
        while (waitpid(pid, &status, WNOHANG) == 0 && now_ns() < end)
                nap();
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);
        assert_true(er_group_empty(&fx->g));
        assert_int_equal(er_group_kill(&fx->g), 0);
}

/* True once pid runs sleep with its whole environment in place: the comm
 * changes in begin_new_exec, before create_elf_tables sets the environment's
 * bounds, so /proc/PID/environ can read empty (or short) for a moment after
 * the name is "sleep".  `last` is the final entry the environment must end with. */
static bool exec_done(pid_t pid, const char *last)
{
        char path[64], comm[32] = "", env[16384];
        size_t len = strlen(last) + 1, total = 0;
        int fd;
        ssize_t k;
        snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        k = read(fd, comm, sizeof(comm) - 1);
        close(fd);
        if (k <= 0 || strncmp(comm, "sleep", 5) != 0)
                return false;
        snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        while (total < sizeof(env) && (k = read(fd, env + total, sizeof(env) - total)) > 0)
                total += (size_t)k;
        close(fd);
        return total >= len && memcmp(env + total - len, last, len) == 0;
}

static pid_t spawn_sleep(struct fixture *fx, char *const envp[])
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                execle("/bin/sleep", "sleep", "100", (char *)NULL, envp);
                _exit(127);
        }
        remember(fx, pid);
        return pid;
}

static void test_marker_scan(void **state)
{
        struct fixture *fx = *state;
        char rnd[16], marker[128], longer[140], shorter[128], inner[160];
        pid_t with, without, pids[8];
        long long end = now_ns() + DEADLINE_NS;
        int n;

        random_suffix(rnd, sizeof(rnd));
        snprintf(marker, sizeof(marker), "ENVRUN_MARKER=scan.%ld.%s/svc", (long)getpid(), rnd);
        snprintf(longer, sizeof(longer), "%sX", marker);
        snprintf(shorter, sizeof(shorter), "%.*s", (int)strlen(marker) - 1, marker);
        snprintf(inner, sizeof(inner), "OTHER=%s", marker);
        {
                char *env_with[] = {"A=1", marker, "B=2", NULL};
                char *env_without[] = {longer, shorter, inner, NULL};
                with = spawn_sleep(fx, env_with);
                without = spawn_sleep(fx, env_without);
        }
        while ((!exec_done(with, "B=2") || !exec_done(without, inner)) && now_ns() < end)
                nap();
        assert_true(exec_done(with, "B=2") && exec_done(without, inner));

        n = er_contain_scan_marker(marker, pids, 8);
        assert_int_equal(n, 1);
        assert_int_equal(pids[0], with);
        (void)without;
        /* The count is returned even when the array is too small. */
        assert_int_equal(er_contain_scan_marker(marker, NULL, 0), 1);
        assert_int_equal(er_contain_scan_marker("", pids, 8), -EINVAL);

        kill(with, SIGKILL);
        kill(without, SIGKILL);
        reap_until_gone(fx);
        assert_int_equal(er_contain_scan_marker(marker, pids, 8), 0);
}

/* environ is read 4 KiB at a time: an entry that straddles two reads is
 * matched whole; one too long to be a marker (with the marker as its
 * prefix) is not a match. */
static void test_marker_boundaries(void **state)
{
        struct fixture *fx = *state;
        char rnd[16], marker[128], *filler, *longer;
        pid_t with, without, pids[8];
        long long end = now_ns() + DEADLINE_NS;
        size_t ml;

        random_suffix(rnd, sizeof(rnd));
        snprintf(marker, sizeof(marker), "ENVRUN_MARKER=edge.%ld.%s/svc", (long)getpid(), rnd);
        ml = strlen(marker);
        /* "F=" and x's up to 4096 - ml/2 bytes with its NUL: the marker starts
         * in the first read and ends in the second. */
        filler = malloc(4096);
        longer = malloc(ml + 700);
        assert_non_null(filler);
        assert_non_null(longer);
        memset(filler, 'x', 4096 - ml / 2 - 1);
        memcpy(filler, "F=", 2);
        filler[4096 - ml / 2 - 1] = '\0';
        memcpy(longer, marker, ml);
        memset(longer + ml, 'y', 600);
        longer[ml + 600] = '\0';
        {
                char *env_with[] = {filler, marker, "LAST=1", NULL};
                char *env_without[] = {longer, "LAST=1", NULL};
                with = spawn_sleep(fx, env_with);
                without = spawn_sleep(fx, env_without);
        }
        while ((!exec_done(with, "LAST=1") || !exec_done(without, "LAST=1")) && now_ns() < end)
                nap();
        assert_true(exec_done(with, "LAST=1") && exec_done(without, "LAST=1"));
        assert_int_equal(er_contain_scan_marker(marker, pids, 8), 1);
        assert_int_equal(pids[0], with);
        kill(with, SIGKILL);
        kill(without, SIGKILL);
        reap_until_gone(fx);
        free(filler);
        free(longer);
}

static void test_group_errors(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        struct er_group g;
        char name[400];

        if (!expect_cgroup2())
                fail_msg("needs root and a writable cgroup2 hierarchy (tests/run runs as root)");
        assert_int_equal(er_contain_init(&fx->c, "t", false), 0);
        fx->c_ok = true;
        assert_int_equal(fx->c.kind, ER_CONTAIN_CGROUP2);

        assert_int_equal(er_group_init(&g, &fx->c, "a/b", &err), -EINVAL);
        assert_string_equal(err.msg, "invalid cgroup name 'a/b'");
        er_group_fini(&g);

        /* A kernel file of the same name: the cgroup cannot be made. */
        assert_true(er_group_init(&g, &fx->c, "cgroup.procs", &err) < 0);
        assert_true(strncmp(err.msg, "cannot create cgroup '", 22) == 0);
        assert_non_null(strstr(err.msg, fx->c.root));
        print_message("    %s\n", err.msg);
        er_group_fini(&g);

        memset(name, 'x', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        assert_int_equal(er_group_init(&g, &fx->c, name, &err), -ENAMETOOLONG);
        er_group_fini(&g);

        /* fini is safe twice and on NULL. */
        er_group_fini(NULL);
        er_contain_fini(NULL);
}

/* Runs fn in a child and returns its exit status (77: the premise could not be set up). */
static int in_child(struct fixture *fx, int (*fn)(const char *arg), const char *arg)
{
        int status = 0;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(fn(arg));
        remember(fx, pid);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* In a mount namespace of its own, the cgroup2 mount made read-only. */
static int child_readonly(const char *mnt)
{
        struct er_contain c;
        if (syscall(SYS_unshare, CLONE_NEWNS) < 0)
                return 77;
        /* Source and type are ignored here; "none", not NULL, for valgrind. */
        if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("none", mnt, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                return 77;
        if (er_contain_init(&c, "ro", false) < 0)
                return 1;
        printf("    read-only: %s\n", c.reason);
        fflush(stdout);
        if (c.kind != ER_CONTAIN_SESSION || c.root || c.root_fd != -1)
                return 2;
        if (!strstr(c.reason, "Read-only file system") || !strstr(c.reason, mnt))
                return 3;
        er_contain_fini(&c);
        return 0;
}

static void test_fallback_readonly(void **state)
{
        struct fixture *fx = *state;
        char mnt[256];
        bool rw;
        int r;

        if (!expect_cgroup2())
                fail_msg("needs root and a writable cgroup2 hierarchy (tests/run runs as root)");
        cgroup2_mount(mnt, sizeof(mnt), &rw);
        r = in_child(fx, child_readonly, mnt);
        if (r == 77)
                fail_msg("could not set up the premise of this test in a child (unshare, mount or setuid failed)");
        assert_int_equal(r, 0);
}

static int drop_to_nobody(void)
{
        if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                return -1;
        return 0;
}

/* Not root, in the root cgroup: nothing writable, so session. */
static int child_unprivileged(const char *mnt)
{
        struct er_contain c;
        if (drop_to_nobody() < 0)
                return 77;
        if (er_contain_init(&c, "np", false) < 0)
                return 1;
        printf("    unprivileged: %s\n", c.reason);
        fflush(stdout);
        if (c.kind != ER_CONTAIN_SESSION)
                return 2;
        if (!strstr(c.reason, "no writable cgroup2") || !strstr(c.reason, mnt))
                return 3;
        er_contain_fini(&c);
        return 0;
}

static void test_fallback_unprivileged(void **state)
{
        struct fixture *fx = *state;
        char mnt[256];
        bool rw;
        int r;

        if (!expect_cgroup2())
                fail_msg("needs root and a writable cgroup2 hierarchy (tests/run runs as root)");
        cgroup2_mount(mnt, sizeof(mnt), &rw);
        r = in_child(fx, child_unprivileged, mnt);
        if (r == 77)
                fail_msg("could not set up the premise of this test in a child (unshare, mount or setuid failed)");
        assert_int_equal(r, 0);
}

static int wait_empty(struct er_group *g)
{
        long long end = now_ns() + DEADLINE_NS;
        while (reap_all(), !er_group_empty(g) && now_ns() < end)
                nap();
        return er_group_empty(g) ? 0 : -1;
}

/* As nobody, in a cgroup delegated to nobody (the way systemd delegates a
 * user's subtree): envrun's tree goes below it. */
static int child_delegated(const char *dir)
{
        struct er_contain c;
        struct er_group g;
        struct er_err err;
        char want[600];
        pid_t pids[4], pid;
        struct stat st;
        char procs[600];
        int fd, r = 0;

        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0\n", 2) != 2)
                return 10;
        close(fd);
        if (drop_to_nobody() < 0)
                return 77;
        if (er_contain_init(&c, "dg", false) < 0)
                return 1;
        printf("    delegated: %s\n", c.reason);
        fflush(stdout);
        snprintf(want, sizeof(want), "%s/envrun.%s", dir, c.instance);
        if (c.kind != ER_CONTAIN_CGROUP2 || strcmp(c.root, want) != 0 ||
            !strstr(c.reason, "(delegated)"))
                return 2;
        if (er_group_init(&g, &c, "svc", &err) < 0)
                return 3;
        pid = fork();
        if (pid == 0) {
                for (;;)
                        pause();
        }
        if (pid < 0 || er_group_started(&g, pid, false) < 0)
                r = 4;
        else if (er_group_pids(&g, pids, 4) != 1 || pids[0] != pid)
                r = 5;
        else if (er_group_kill(&g) != 1 || wait_empty(&g) < 0)
                r = 6;
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        er_group_fini(&g);
        er_contain_fini(&c);
        if (!r && stat(want, &st) == 0)
                r = 7;
        return r;
}

static void test_delegated(void **state)
{
        struct fixture *fx = *state;
        char mnt[256], rnd[16], path[600];
        static const char *const files[] = {"", "/cgroup.procs", "/cgroup.threads",
                                            "/cgroup.subtree_control"};
        bool rw;
        int r;

        if (!expect_cgroup2())
                fail_msg("needs root and a writable cgroup2 hierarchy (tests/run runs as root)");
        cgroup2_mount(mnt, sizeof(mnt), &rw);
        random_suffix(rnd, sizeof(rnd));
        snprintf(fx->cgdir, sizeof(fx->cgdir), "%s/envrun-test.%ld.%s", mnt, (long)getpid(), rnd);
        assert_int_equal(mkdir(fx->cgdir, 0755), 0);
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s%s", fx->cgdir, files[i]);
                assert_int_equal(chown(path, NOBODY, NOBODY), 0);
        }
        r = in_child(fx, child_delegated, fx->cgdir);
        if (r == 77)
                fail_msg("could not set up the premise of this test in a child (unshare, mount or setuid failed)");
        assert_int_equal(r, 0);
        assert_int_equal(rmdir(fx->cgdir), 0);
        fx->cgdir[0] = '\0';
}

/* ---- holds (session kind) ---- */

/* The processes of test_hold_release: the test binary again, so that each
 * is exec'd with the marker in its environment.  A reports 'A' once it is
 * set up; on SIGUSR1 it forks B (once).  B reports its pid, then 'U' when a
 * SIGUSR1 reaches it, and exits. */
static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
        (void)sig;
        got_usr1 = 1;
}

static int hold_a(int fd, const char *self)
{
        struct sigaction sa;
        sigset_t block, none;
        bool forked = false;
        char fds[16];

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigprocmask(SIG_BLOCK, &block, NULL);
        sigemptyset(&none);
        if (write(fd, "A", 1) != 1)
                return 1;
        snprintf(fds, sizeof(fds), "%d", fd);
        for (;;) {
                sigsuspend(&none);
                if (got_usr1 && !forked) {
                        pid_t pid = fork();
                        if (pid == 0) {
                                execl("/proc/self/exe", self, "--hold-b", fds, (char *)NULL);
                                _exit(127);
                        }
                        forked = pid > 0;
                }
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
        }
}

static int hold_b(int fd)
{
        sigset_t block;
        pid_t self = getpid();
        int sig = 0;

        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigprocmask(SIG_BLOCK, &block, NULL);
        if (write(fd, &self, sizeof(self)) != (ssize_t)sizeof(self))
                return 1;
        if (sigwait(&block, &sig) != 0 || write(fd, "U", 1) != 1)
                return 1;
        return 0;
}

/* Reads exactly n bytes from a non-blocking fd within the deadline. */
static bool read_within(int fd, void *buf, size_t n)
{
        long long end = now_ns() + DEADLINE_NS;
        size_t got = 0;

        while (got < n && now_ns() < end) {
                ssize_t k = read(fd, (char *)buf + got, n - got);
                if (k > 0)
                        got += (size_t)k;
                else if (k == 0)
                        break;
                else
                        nap();
        }
        return got == n;
}

/* One snapshot answers every question of a hold, until a spawn
 * (er_group_started) or the release. */
static void test_hold_snapshot(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        pid_t pid;

        assert_int_equal(er_contain_init(&fx->c, "t", true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;

        er_contain_hold(&fx->c);
        assert_true(er_group_empty(&fx->g)); /* the snapshot is taken here */
        {
                char *envp[] = {fx->g.marker, "LAST=1", NULL};
                pid = spawn_sleep(fx, envp);
        }
        {
                long long end = now_ns() + DEADLINE_NS;
                while (!exec_done(pid, "LAST=1") && now_ns() < end)
                        nap();
                assert_true(exec_done(pid, "LAST=1"));
        }
        /* Not announced: the hold's snapshot does not know it yet. */
        assert_true(er_group_empty(&fx->g));
        /* A spawn is announced with er_group_started: a new snapshot. */
        assert_int_equal(er_group_started(&fx->g, pid, false), 0);
        assert_false(er_group_empty(&fx->g));
        /* It dies and is reaped after the snapshot: the snapshot still
         * shows it, until the reap is announced. */
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_false(er_group_empty(&fx->g));
        er_contain_reaped(&fx->c);
        assert_true(er_group_empty(&fx->g));
        er_contain_release(&fx->c);

        /* Without a hold, each question scans. */
        assert_true(er_group_empty(&fx->g));
        {
                char *envp[] = {fx->g.marker, "LAST=2", NULL};
                pid = spawn_sleep(fx, envp);
                long long end = now_ns() + DEADLINE_NS;
                while (!exec_done(pid, "LAST=2") && now_ns() < end)
                        nap();
        }
        assert_false(er_group_empty(&fx->g));
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_true(er_group_empty(&fx->g));
        /* Holds nest; the inner release keeps the snapshot. */
        er_contain_hold(&fx->c);
        er_contain_hold(&fx->c);
        assert_true(er_group_empty(&fx->g));
        er_contain_release(&fx->c);
        assert_non_null(fx->c.scan);
        er_contain_release(&fx->c);
        assert_null(fx->c.scan);
        assert_int_equal(fx->c.hold, 0);
}

/* er_group_signal_batched in a hold: the first pass signals what the
 * snapshot knows; a member forked after it (B, forked by A on the signal
 * itself) is reached by the rescan at the release, and not before. */
/* Starts A (see hold_a) in a session of its own, with the group's marker,
 * writing to rep[1]; returns its pid once it is set up.  rep[0] is left
 * non-blocking. */
static pid_t start_hold_a(struct fixture *fx, int rep[2])
{
        char self[4096], fds[16], b = 0, *envp[2];
        pid_t a;
        ssize_t k;

        k = readlink("/proc/self/exe", self, sizeof(self) - 1);
        assert_true(k > 0);
        self[k] = '\0';
        assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
        snprintf(fds, sizeof(fds), "%d", rep[1]);
        envp[0] = fx->g.marker;
        envp[1] = NULL;
        a = fork();
        assert_true(a >= 0);
        if (a == 0) {
                /* Its own session, as a service has; the write end stays open. */
                setsid();
                fcntl(rep[1], F_SETFD, 0);
                execle(self, self, "--hold-a", fds, (char *)NULL, envp);
                _exit(127);
        }
        remember(fx, a);
        close(rep[1]);
        assert_int_equal(fcntl(rep[0], F_SETFL, O_NONBLOCK), 0);
        assert_int_equal(er_group_started(&fx->g, a, false), 0);
        assert_true(read_within(rep[0], &b, 1));
        assert_int_equal(b, 'A');
        return a;
}

/* er_group_signal_batched in a hold: the first pass signals what the
 * snapshot knows; a member forked after it (B, forked by A on the signal
 * itself) is reached by the rescan at the release, and not before. */
static void test_hold_release(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        int rep[2];
        char b = 0;
        pid_t a, bpid = 0;

        assert_int_equal(er_contain_init(&fx->c, "t", true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        a = start_hold_a(fx, rep);

        er_contain_hold(&fx->c);
        assert_int_equal(er_group_signal_batched(&fx->g, SIGUSR1, false), 1);
        assert_true(read_within(rep[0], &bpid, sizeof(bpid)));
        remember(fx, bpid);
        assert_true(bpid > 0 && bpid != a);
        /* B lives, with the marker, and has had no signal yet. */
        assert_int_equal(read(rep[0], &b, 1), -1);
        assert_int_equal(errno, EAGAIN);
        er_contain_release(&fx->c);
        assert_true(read_within(rep[0], &b, 1));
        assert_int_equal(b, 'U');
        close(rep[0]);
        /* teardown kills A (and B, gone by now) by pid */
}

/* A second signal to a group whose rescans wait runs them first, at once:
 * signals keep their order. */
static void test_hold_resignal(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        int rep[2];
        char b = 0;
        pid_t bpid = 0;

        assert_int_equal(er_contain_init(&fx->c, "t", true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        (void)start_hold_a(fx, rep);

        er_contain_hold(&fx->c);
        assert_int_equal(er_group_signal_batched(&fx->g, SIGUSR1, false), 1);
        assert_true(read_within(rep[0], &bpid, sizeof(bpid)));
        remember(fx, bpid);
        assert_int_equal(read(rep[0], &b, 1), -1);
        /* SIGCONT harms neither; before it goes out, B gets its SIGUSR1. */
        assert_true(er_group_signal_batched(&fx->g, SIGCONT, false) >= 1);
        assert_true(read_within(rep[0], &b, 1));
        assert_int_equal(b, 'U');
        er_contain_release(&fx->c);
        close(rep[0]);
}

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "--hold-a") == 0)
                return hold_a(atoi(argv[2]), argv[0]);
        if (argc == 3 && strcmp(argv[1], "--hold-b") == 0)
                return hold_b(atoi(argv[2]));
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_tree_cgroup2, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tree_session, setup, teardown),
            cmocka_unit_test_setup_teardown(test_session_without_marker, setup, teardown),
            cmocka_unit_test_setup_teardown(test_signal_stopped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_marker_scan, setup, teardown),
            cmocka_unit_test_setup_teardown(test_marker_boundaries, setup, teardown),
            cmocka_unit_test_setup_teardown(test_group_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_fallback_readonly, setup, teardown),
            cmocka_unit_test_setup_teardown(test_fallback_unprivileged, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delegated, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hold_snapshot, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hold_release, setup, teardown),
            cmocka_unit_test_setup_teardown(test_hold_resignal, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
