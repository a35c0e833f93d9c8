/* contain: a real process tree (double fork + setsid + an empty
 * environment) is found, signalled, killed and waited for under both
 * mechanisms; the cgroup2 tree is removed; the reaper reports exits, signals
 * only an unreaped main process, holds none of the caller's descriptors,
 * and takes its tree with it when its parent dies, when its command pipe
 * closes or when it is killed itself (the sweep); the marker scan matches
 * exact entries only; the fallbacks give a reason.
 * Needs root for the cgroup2 tests (they fail loudly otherwise). Every process and
 * cgroup a test makes is killed (by pid) and removed by its teardown, even
 * when the test fails. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <sched.h> /* CLONE_NEWNS */
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
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc/pids.h"

#include "proc/contain.h"
#include "proc/reaper.h"
#include "proc/spawn.h"

#define MAX_PIDS 256
#define DEADLINE_NS (5 * 1000000000LL)
#define NOBODY 65534

/* Four processes, two of them in a session of their own after a double
 * fork, one with an empty environment: what a daemon does. */
#define TREE_SCRIPT "sleep 100 & setsid sh -c \"env -i sleep 100 & sleep 100\" & sleep 100"

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

static void settle(struct fixture *fx);

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
                while (settle(fx), !er_group_empty(&fx->g) && now_ns() < end)
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

/* Reaps what is ours to reap: for the reaper kind, the reaper's records
 * and then the reaper itself (a blind waitpid would steal it), else every
 * child (the test is a subreaper: orphans come here). */
static void settle(struct fixture *fx)
{
        struct er_reaper_msg m;

        if (fx->g_ok && fx->g.reaper > 0) {
                while (er_group_reaper_read(&fx->g, &m) > 0)
                        ;
                (void)er_group_reaper_reap(&fx->g);
        }
        reap_all();
}

static int wait_empty_fx(struct fixture *fx)
{
        long long end = now_ns() + DEADLINE_NS;
        while (settle(fx), !er_group_empty(&fx->g) && now_ns() < end)
                nap();
        return er_group_empty(&fx->g) ? 0 : -1;
}

/* Spawns argv as a service: in its own session, with the marker (or
 * env_entry), into its cgroup or under its reaper. */
static pid_t spawn_in(struct fixture *fx, char *const argv[], char *env_entry,
                      enum er_spawn_pgrp pgrp)
{
        char *envp[] = {env_entry, "PATH=/usr/bin:/bin", NULL};
        struct er_spawn_opts o = {
            .file = argv[0],
            .argv = argv,
            .envp = envp,
            .stdin_fd = -1,
            .stdout_fd = -1,
            .stderr_fd = -1,
            .pgrp = pgrp,
            .uid = -1,
            .gid = -1,
            .cgroup_fd = er_group_cgroup_fd(&fx->g),
            .pdeathsig = SIGKILL,
            .reaper = fx->c.kind == ER_CONTAIN_REAPER,
        };
        struct er_child ch;
        struct er_err err = {0};

        assert_int_equal(er_spawn(&o, &ch, &err), 0);
        remember(fx, ch.pid);
        if (ch.reaper_pid > 0)
                remember(fx, ch.reaper_pid);
        assert_int_equal(er_group_started(&fx->g, &ch), 0);
        assert_true(fx->c.kind == ER_CONTAIN_REAPER ? fx->g.reaper == ch.reaper_pid
                                                    : ch.reaper_pid == -1);
        return ch.pid;
}

static pid_t start_tree(struct fixture *fx, char *env_entry)
{
        char *argv[] = {"/bin/sh", "-c", TREE_SCRIPT, NULL};
        return spawn_in(fx, argv, env_entry, ER_SPAWN_SETSID);
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
        assert_int_equal(wait_empty_fx(fx), 0);
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
        assert_int_equal(er_contain_init(&fx->c, "t", false, true), 0);
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

/* A cgroup below the service's (a server that makes its own, as systemd
 * or a container runtime would): its processes are the group's members,
 * signalled with it, and er_group_fini removes both directories. */
static void test_nested_cgroup(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        char *argv[] = {"/bin/sleep", "60", NULL};
        char pid_s[32];
        struct stat st;
        pid_t pid, pids[8];
        int fd, n;

        if (!expect_cgroup2())
                fail_msg("needs root and a writable cgroup2 hierarchy (tests/run runs as root)");
        assert_int_equal(er_contain_init(&fx->c, "t", false, true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        pid = spawn_in(fx, argv, fx->g.marker, ER_SPAWN_SETSID);
        assert_int_equal(mkdirat(er_group_cgroup_fd(&fx->g), "inner", 0755), 0);
        fd = openat(er_group_cgroup_fd(&fx->g), "inner/cgroup.procs", O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        snprintf(pid_s, sizeof(pid_s), "%d", (int)pid);
        assert_int_equal(write(fd, pid_s, strlen(pid_s)), (ssize_t)strlen(pid_s));
        close(fd);

        n = er_group_pids(&fx->g, pids, 8);
        assert_int_equal(n, 1);
        assert_int_equal(pids[0], pid);
        assert_true(er_group_signal(&fx->g, SIGKILL, false) >= 1);
        assert_int_equal(wait_empty_fx(fx), 0);
        er_group_fini(&fx->g);
        fx->g_ok = false;
        assert_int_equal(fstatat(fx->c.root_fd, "svc", &st, AT_SYMLINK_NOFOLLOW), -1);
        assert_int_equal(errno, ENOENT);
}

static void test_tree_reaper(void **state)
{
        struct fixture *fx = *state;

        assert_int_equal(er_contain_init(&fx->c, "t", true, true), 0);
        fx->c_ok = true;
        assert_int_equal(fx->c.kind, ER_CONTAIN_REAPER);
        assert_string_equal(er_contain_name(&fx->c), "reaper");
        assert_non_null(strstr(fx->c.reason, "forced"));
        assert_null(fx->c.root);
        assert_int_equal(fx->c.root_fd, -1);
        check_instance_id(&fx->c, "t");
        run_tree(fx);
}

/* Found by structure, not by marker: a tree that carries no marker at all
 * (the daemon below setsid also execs with an empty environment) is found
 * whole.  The negative control: the same tree spawned without a reaper is
 * not the group's at all. */
static void test_reaper_without_marker(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        char rnd[16], *tag = fx->tag;
        pid_t tagged[16];
        long long end;
        int n = 0, t = 0;

        random_suffix(rnd, sizeof(rnd));
        snprintf(fx->tag, sizeof(fx->tag), "ENVRUN_TEST_TAG=%ld.%s", (long)getpid(), rnd);
        assert_int_equal(er_contain_init(&fx->c, "t", true, true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        start_tree(fx, tag);
        /* Until env -i has exec'd: then a member carries no tag. */
        end = now_ns() + DEADLINE_NS;
        while (now_ns() < end) {
                n = wait_members(fx, 6);
                t = er_contain_scan_marker(tag, tagged, 16);
                if (n >= 6 && t < n)
                        break;
                nap();
        }
        print_message("    members %d, still tagged %d\n", n, t);
        assert_true(n >= 4);
        assert_true(t < n); /* env -i dropped the tag: a marker would miss it */
}

static int cmp_pids(const void *a, const void *b)
{
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return x < y ? -1 : x > y;
}

/* Kernels without /proc/PID/task/TID/children: the scan of every stat's
 * parent finds the same tree. */
static void test_tree_scan_fallback(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        pid_t a[64], b[64];
        size_t na = 0, nb = 0;

        assert_int_equal(er_contain_init(&fx->c, "t", true, true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        start_tree(fx, fx->g.marker);
        assert_true(wait_members(fx, 4) >= 4);
        for (long long end = now_ns() + DEADLINE_NS; now_ns() < end; nap()) {
                na = er_pids_tree(fx->g.reaper, a, 64);
                nb = er_pids_tree_scan(fx->g.reaper, b, 64);
                qsort(a, na, sizeof(*a), cmp_pids);
                qsort(b, nb, sizeof(*b), cmp_pids);
                if (na >= 4 && na == nb && !memcmp(a, b, na * sizeof(*a)))
                        break;
        }
        assert_true(na >= 4);
        assert_int_equal(nb, na);
        assert_memory_equal(a, b, na * sizeof(*a));
        /* Too small a buffer: the count says more did not fit (the
         * descendants of those are not counted: the caller grows and
         * lists again). */
        assert_true(er_pids_tree_scan(fx->g.reaper, b, 2) > 2);
        assert_true(er_pids_tree(fx->g.reaper, a, 2) > 2);
}

static void test_reaper_negative_control(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        char *argv[] = {"/bin/sh", "-c", TREE_SCRIPT, NULL};
        char *envp[] = {"PATH=/usr/bin:/bin", NULL};
        struct er_spawn_opts o = {.file = argv[0], .argv = argv, .envp = envp, .stdin_fd = -1,
                                  .stdout_fd = -1, .stderr_fd = -1, .pgrp = ER_SPAWN_SETSID,
                                  .uid = -1, .gid = -1, .cgroup_fd = -1};
        struct er_child ch;

        assert_int_equal(er_contain_init(&fx->c, "t", true, true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        assert_int_equal(er_spawn(&o, &ch, &err), 0); /* no reaper */
        remember(fx, ch.pid);
        assert_int_equal(ch.reaper_pid, -1);
        assert_int_equal(er_group_started(&fx->g, &ch), 0);
        assert_int_equal(er_group_pids(&fx->g, NULL, 0), 0);
        assert_true(er_group_empty(&fx->g));
        /* The teardown kills the tree, found below the test itself. */
        for (long long end = now_ns() + DEADLINE_NS; now_ns() < end; nap()) {
                pid_t all[64];
                size_t k = er_pids_tree(getpid(), all, 64);
                for (size_t i = 0; i < k && i < 64; i++)
                        remember(fx, all[i]);
                if (k >= 4)
                        break;
        }
}

static char proc_state(pid_t pid)
{
        char path[64], buf[512], *p;
        ssize_t k;
        int fd;

        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (k <= 0)
                return 0;
        buf[k] = '\0';
        p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : 0;
}

/* A signal sent while the group is stopped reaches it (SIGCONT after), and
 * the main process's end is told by its reaper (or its wait status). */
static void test_signal_stopped(void **state)
{
        struct fixture *fx = *state;
        struct er_err err = {0};
        char *argv[] = {"/bin/sh", "-c", "kill -STOP $$; exit 0", NULL};
        long long end;
        pid_t pid;
        int status = 0;

        assert_int_equal(er_contain_init(&fx->c, "t", !expect_cgroup2(), true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "stopped", &err), 0);
        fx->g_ok = true;
        pid = spawn_in(fx, argv, fx->g.marker, ER_SPAWN_SETSID);
        end = now_ns() + DEADLINE_NS;
        while (proc_state(pid) != 'T' && now_ns() < end)
                nap();
        assert_int_equal(proc_state(pid), 'T');
        assert_int_equal(er_group_signal(&fx->g, SIGTERM, true), 1);
        if (fx->c.kind == ER_CONTAIN_REAPER) {
                struct er_reaper_msg m;
                int r = 0;
                while ((r = er_group_reaper_read(&fx->g, &m)) == 0 && now_ns() < end)
                        nap();
                assert_int_equal(r, 1);
                assert_int_equal(m.type, ER_REAPER_EXITED);
                assert_int_equal(m.pid, pid);
                status = m.status;
        } else {
                while (waitpid(pid, &status, WNOHANG) == 0 && now_ns() < end)
                        nap();
        }
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);
        assert_int_equal(wait_empty_fx(fx), 0);
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
        assert_int_equal(er_contain_init(&fx->c, "t", false, true), 0);
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
        if (er_contain_init(&c, "ro", false, true) < 0)
                return 1;
        printf("    read-only: %s\n", c.reason);
        fflush(stdout);
        if (c.kind != ER_CONTAIN_REAPER || c.root || c.root_fd != -1)
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

/* Not root, in the root cgroup: nothing writable, so reaper. */
static int child_unprivileged(const char *mnt)
{
        struct er_contain c;
        if (drop_to_nobody() < 0)
                return 77;
        if (er_contain_init(&c, "np", false, true) < 0)
                return 1;
        printf("    unprivileged: %s\n", c.reason);
        fflush(stdout);
        if (c.kind != ER_CONTAIN_REAPER)
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
        if (er_contain_init(&c, "dg", false, true) < 0)
                return 1;
        printf("    delegated: %s\n", c.reason);
        fflush(stdout);
        snprintf(want, sizeof(want), "%s/envrun.%s", dir, c.instance);
        if (c.kind != ER_CONTAIN_CGROUP2 || strcmp(c.root, want) != 0 ||
            !strstr(c.reason, "(delegated)"))
                return 2;
        /* Each controller is enabled (pure v2) or says why not (here, a
         * hybrid host: none is delegated on the v2 side). */
        for (int k = 0; k < ER_V1_N; k++) {
                printf("    %s: %s\n", k ? "pids" : "memory",
                       c.v2_ctl[k] ? "enabled" : c.ctl_why[k]);
                if (!c.v2_ctl[k] && !c.ctl_why[k][0])
                        return 8;
        }
        fflush(stdout);
        if (er_group_init(&g, &c, "svc", &err) < 0)
                return 3;
        pid = fork();
        if (pid == 0) {
                for (;;)
                        pause();
        }
        struct er_child ch = {.pid = pid, .pidfd = -1, .reaper_pid = -1, .reaper_pidfd = -1,
                              .reaper_cmd = -1, .reaper_st = -1};
        if (pid < 0 || er_group_started(&g, &ch) < 0)
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

/* A cgroup of the test's own, delegated to nobody the way systemd's
 * Delegate=yes does it (the directory and its cgroup.procs, .threads and
 * .subtree_control chowned); the teardown removes it. */
static void delegate_to_nobody(struct fixture *fx)
{
        static const char *const files[] = {"", "/cgroup.procs", "/cgroup.threads",
                                            "/cgroup.subtree_control"};
        char mnt[256], rnd[16], path[600];
        bool rw;

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
}

static void test_delegated(void **state)
{
        struct fixture *fx = *state;
        char path[600];
        int r;

        delegate_to_nobody(fx);
        r = in_child(fx, child_delegated, fx->cgdir);
        if (r == 77)
                fail_msg("could not set up the premise of this test in a child (unshare, mount or setuid failed)");
        assert_int_equal(r, 0);
        /* It held nothing but envrun: envrun moved itself into a leaf, so
         * the delegated cgroup could enable controllers for its children. */
        snprintf(path, sizeof(path), "%s/envrun-self", fx->cgdir);
        assert_int_equal(access(path, F_OK), 0);
        rmdir_tree(fx->cgdir);
        errno = 0;
        assert_int_equal(access(fx->cgdir, F_OK), -1);
        fx->cgdir[0] = '\0';
}

static int child_delegated_shared(const char *dir);

static int child_delegated_shared_in(const char *dir)
{
        char procs[600];
        int fd;

        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0\n", 2) != 2)
                return 10;
        close(fd);
        return child_delegated_shared(dir);
}

/* A delegated cgroup that holds another process too (a terminal's shell
 * in an app scope): contained there, but no controller is enabled, and
 * each says why. */
static int child_delegated_shared(const char *dir)
{
        struct er_contain c;

        if (drop_to_nobody() < 0)
                return 77;
        if (er_contain_init(&c, "ds", false, true) < 0)
                return 1;
        if (c.kind != ER_CONTAIN_CGROUP2)
                return 2;
        for (int k = 0; k < ER_V1_N; k++) {
                printf("    %s: %s\n", k ? "pids" : "memory", c.ctl_why[k]);
                if (c.v2_ctl[k] || !strstr(c.ctl_why[k], "holds other processes besides envrun"))
                        return 3;
        }
        fflush(stdout);
        er_contain_fini(&c);
        return 0;
}

static void test_delegated_shared(void **state)
{
        struct fixture *fx = *state;
        char path[600], buf[32];
        pid_t other;
        int r, p[2], fd;

        delegate_to_nobody(fx);
        /* The other process, in the cgroup before envrun comes. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        other = fork();
        assert_true(other >= 0);
        if (other == 0) {
                char b;
                close(p[1]);
                (void)!read(p[0], &b, 1);
                _exit(0);
        }
        close(p[0]);
        remember(fx, other);
        snprintf(path, sizeof(path), "%s/cgroup.procs", fx->cgdir);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        snprintf(buf, sizeof(buf), "%ld\n", (long)other);
        assert_int_equal(write(fd, buf, strlen(buf)), (ssize_t)strlen(buf));
        close(fd);
        /* in_child forks from the test: the child joins the cgroup itself. */
        r = in_child(fx, child_delegated_shared_in, fx->cgdir);
        close(p[1]);
        assert_int_equal(waitpid(other, NULL, 0), other);
        if (r == 77)
                fail_msg("could not set up the premise of this test in a child (unshare, mount or setuid failed)");
        assert_int_equal(r, 0);
        rmdir_tree(fx->cgdir);
        fx->cgdir[0] = '\0';
}

/* ---- the reaper ---- */

static void init_reaper(struct fixture *fx)
{
        struct er_err err = {0};

        assert_int_equal(er_contain_init(&fx->c, "t", true, true), 0);
        fx->c_ok = true;
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
}

static int next_record(struct fixture *fx, struct er_reaper_msg *m)
{
        long long end = now_ns() + DEADLINE_NS;
        int r;

        while ((r = er_group_reaper_read(&fx->g, m)) == 0 && now_ns() < end)
                nap();
        return r;
}

/* The main process's exit comes as a record with its status and usage;
 * the reaper then exits 0 by itself (its tree is empty), with the usage
 * of all it reaped. */
static void test_reaper_records(void **state)
{
        struct fixture *fx = *state;
        char *argv[] = {"/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 7", NULL};
        struct er_reaper_msg m;
        uint64_t us = 0, peak = 0;
        pid_t pid;

        init_reaper(fx);
        pid = spawn_in(fx, argv, fx->g.marker, ER_SPAWN_SETSID);
        assert_false(er_group_empty(&fx->g));
        assert_int_equal(next_record(fx, &m), 1);
        assert_int_equal(m.type, ER_REAPER_EXITED);
        assert_int_equal(m.pid, pid);
        assert_true(WIFEXITED(m.status));
        assert_int_equal(WEXITSTATUS(m.status), 7);
        assert_true(m.utime_us + m.stime_us > 0);
        assert_true(m.maxrss_kb > 0);
        assert_int_equal(wait_empty_fx(fx), 0);
        assert_true(fx->g.tree_usage_ok);
        assert_int_equal(er_group_cpu_usage(&fx->g, &us), 0);
        assert_true(us > 0);
        {
                bool tree = true;
                assert_int_equal(er_group_memory_peak(&fx->g, &peak, &tree), 0);
                assert_true(peak > 0);
                assert_false(tree); /* the largest process's, not the tree's */
        }
        assert_int_equal(er_group_pids(&fx->g, NULL, 0), 0);
        assert_int_equal(er_group_signal_main(&fx->g, SIGTERM), -ESRCH);
}

/* The main process is signalled through its reaper. */
static void test_reaper_signal_main(void **state)
{
        struct fixture *fx = *state;
        char *argv[] = {"/bin/sleep", "100", NULL};
        struct er_reaper_msg m;
        pid_t pid;

        init_reaper(fx);
        pid = spawn_in(fx, argv, fx->g.marker, ER_SPAWN_SETSID);
        assert_int_equal(er_group_signal_main(&fx->g, SIGUSR1), 0);
        assert_int_equal(next_record(fx, &m), 1);
        assert_int_equal(m.pid, pid);
        assert_true(WIFSIGNALED(m.status));
        assert_int_equal(WTERMSIG(m.status), SIGUSR1);
        assert_int_equal(wait_empty_fx(fx), 0);
}

/* /proc/PID/fd of the reaper: none of the caller's descriptors (a sentinel
 * memfd stands for envrun's epoll, signalfd and instance lock), only its
 * stdio and its own three (command, status, signalfd). */
static int reaper_fds(pid_t pid, bool *sentinel)
{
        char path[384], link[256], dir[64];
        struct dirent *de;
        DIR *d;
        int n = 0;

        *sentinel = false;
        snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
        d = opendir(dir);
        if (!d)
                return -1;
        while ((de = readdir(d))) {
                ssize_t k;
                if (de->d_name[0] == '.')
                        continue;
                n++;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                k = readlink(path, link, sizeof(link) - 1);
                if (k > 0) {
                        link[k] = '\0';
                        if (strstr(link, "envrun-sentinel"))
                                *sentinel = true;
                }
        }
        closedir(d);
        return n;
}

static unsigned long long sig_ignored(pid_t pid)
{
        char path[64], line[256];
        unsigned long long v = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "SigIgn: %llx", &v) == 1)
                        break;
        fclose(f);
        return v;
}

static void test_reaper_shape(void **state)
{
        struct fixture *fx = *state;
        char *argv[] = {"/bin/sleep", "100", NULL}, comm[32] = "", path[64];
        int sentinel = (int)syscall(SYS_memfd_create, "envrun-sentinel", 0U); /* no CLOEXEC */
        unsigned long long ign, want = (1ULL << (SIGINT - 1)) | (1ULL << (SIGQUIT - 1)) |
                                       (1ULL << (SIGTSTP - 1));
        bool has_sentinel;
        pid_t pid, r;
        FILE *f;

        assert_true(sentinel >= 0);
        init_reaper(fx);
        pid = spawn_in(fx, argv, fx->g.marker, ER_SPAWN_SETSID);
        r = fx->g.reaper;
        assert_true(r > 0 && r != pid);
        assert_int_equal(reaper_fds(r, &has_sentinel), 6);
        assert_false(has_sentinel);
        assert_int_equal(getpgid(r), r); /* a group of its own */
        assert_int_equal(getsid(pid), pid); /* the service: a session of its own */
        assert_int_equal(sig_ignored(r) & want, 0);
        snprintf(path, sizeof(path), "/proc/%ld/comm", (long)r);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(comm, sizeof(comm), f));
        fclose(f);
        assert_string_equal(comm, "envrun-reaper\n");
        er_group_kill(&fx->g);
        assert_int_equal(wait_empty_fx(fx), 0);
        er_group_fini(&fx->g);
        fx->g_ok = false;

        /* The test command's: in the caller's group, deaf to the terminal's
         * INT, QUIT and TSTP (the test itself is not). */
        assert_int_equal(er_group_init(&fx->g, &fx->c, "_test", &(struct er_err){0}), 0);
        fx->g_ok = true;
        pid = spawn_in(fx, argv, fx->g.marker, ER_SPAWN_INHERIT);
        r = fx->g.reaper;
        assert_int_equal(getpgid(r), getpgrp());
        assert_int_equal(getpgid(pid), getpgrp());
        ign = sig_ignored(r);
        assert_int_equal(ign & want, want);
        for (long long end = now_ns() + DEADLINE_NS; proc_state(pid) != 'S' && now_ns() < end;)
                nap();
        assert_int_equal(sig_ignored(pid) & want, 0);
        close(sentinel);
}

/* The tree of a stand-in for envrun (a child of the test) that is killed
 * with SIGKILL: its reaper kills every process of the tree, including one
 * below setsid that ignores SIGTERM. */
static void test_reaper_parent_death(void **state)
{
        struct fixture *fx = *state;
        int p[2], status = 0;
        pid_t envrun, pids[16];
        ssize_t k;

        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        envrun = fork();
        assert_true(envrun >= 0);
        if (envrun == 0) {
                struct fixture inner = {0};
                char *argv[] = {"/bin/sh", "-c",
                                "trap '' TERM; setsid sh -c \"trap '' TERM; env -i sleep 100 & "
                                "exec sleep 100\" & exec sleep 100",
                                NULL};
                pid_t got[16];
                int n;
                close(p[0]);
                if (er_contain_init(&inner.c, "pd", true, true) < 0 ||
                    er_group_init(&inner.g, &inner.c, "svc", NULL) < 0)
                        _exit(1);
                inner.c_ok = inner.g_ok = true;
                spawn_in(&inner, argv, inner.g.marker, ER_SPAWN_SETSID);
                n = wait_members(&inner, 3);
                got[0] = inner.g.reaper;
                n = er_group_pids(&inner.g, got + 1, 15);
                if (n < 3 || write(p[1], got, sizeof(pid_t) * (size_t)(n + 1)) < 0)
                        _exit(2);
                raise(SIGKILL);
        }
        close(p[1]);
        remember(fx, envrun);
        k = read(p[0], pids, sizeof(pids));
        close(p[0]);
        assert_true(k >= (ssize_t)(4 * sizeof(pid_t)));
        for (ssize_t i = 0; i < k / (ssize_t)sizeof(pid_t); i++)
                remember(fx, pids[i]);
        assert_int_equal(waitpid(envrun, &status, 0), envrun);
        assert_true(WIFSIGNALED(status));
        reap_until_gone(fx);
        assert_true(all_gone(fx));
}

/* EOF of the command pipe (envrun closed it, or died) is the same. */
static void test_reaper_cmd_eof(void **state)
{
        struct fixture *fx = *state;

        init_reaper(fx);
        start_tree(fx, fx->g.marker);
        assert_true(wait_members(fx, 4) >= 4);
        er_close(&fx->g.reaper_cmd);
        assert_int_equal(wait_empty_fx(fx), 0);
        reap_until_gone(fx);
        assert_true(all_gone(fx));
}

/* A reaper killed by someone leaves its tree to envrun (a subreaper):
 * er_group_reaper_reap says so (2) and the sweep killed the orphans. */
static void test_reaper_killed(void **state)
{
        struct fixture *fx = *state;
        long long end;
        int r = 0;

        init_reaper(fx);
        start_tree(fx, fx->g.marker);
        assert_true(wait_members(fx, 4) >= 4);
        assert_int_equal(kill(fx->g.reaper, SIGKILL), 0);
        end = now_ns() + DEADLINE_NS;
        while ((r = er_group_reaper_reap(&fx->g)) == 0 && now_ns() < end)
                nap();
        assert_int_equal(r, 2);
        assert_true(er_group_empty(&fx->g));
        reap_until_gone(fx);
        assert_true(all_gone(fx));
}

int main(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_tree_cgroup2, setup, teardown),
            cmocka_unit_test_setup_teardown(test_nested_cgroup, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tree_reaper, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reaper_without_marker, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reaper_negative_control, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tree_scan_fallback, setup, teardown),
            cmocka_unit_test_setup_teardown(test_signal_stopped, setup, teardown),
            cmocka_unit_test_setup_teardown(test_marker_scan, setup, teardown),
            cmocka_unit_test_setup_teardown(test_marker_boundaries, setup, teardown),
            cmocka_unit_test_setup_teardown(test_group_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_fallback_readonly, setup, teardown),
            cmocka_unit_test_setup_teardown(test_fallback_unprivileged, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delegated, setup, teardown),
            cmocka_unit_test_setup_teardown(test_delegated_shared, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reaper_records, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reaper_signal_main, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reaper_shape, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reaper_parent_death, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reaper_cmd_eof, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reaper_killed, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
