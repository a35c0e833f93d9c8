/* limits: what a group enforces (cgroup v1 memory and pids on hybrid
 * hosts), the child joining those cgroups before it execs, the counters,
 * and the session mechanism saying why it enforces nothing.  The hybrid
 * tests need root and the v1 memory and pids hierarchies (they fail loudly
 * otherwise).  Every process is killed by pid and every cgroup removed. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/config.h"
#include "proc/contain.h"
#include "proc/spawn.h"

static void read_text(const char *path, char *buf, size_t len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        assert_true(fd >= 0);
        n = read(fd, buf, len - 1);
        close(fd);
        assert_true(n >= 0);
        buf[n] = '\0';
}

static void reaper_enforces_nothing(void **state)
{
        struct er_contain c;
        struct er_group g;
        struct er_limits none = {0}, mem = {.memory = 64 << 20}, cpu = {.cpu_time_us = 1000000};
        struct er_err err = {0};
        char why[256] = "";
        int fds[ER_V1_N];
        uint64_t v;
        uint32_t ev;
        bool tree = false;

        (void)state;
        assert_int_equal(er_contain_init(&c, "limits", true, true), 0);
        assert_string_equal(c.limits_why, "reaper: forced");
        assert_int_equal(er_group_init(&g, &c, "svc", &err), 0);
        assert_int_equal(er_group_set_limits(&g, &none, why, sizeof(why)), 1);
        assert_int_equal(er_group_set_limits(&g, &mem, why, sizeof(why)), 0);
        assert_string_equal(why, "memory: no cgroup to hold it (reaper containment)");
        assert_int_equal(er_group_set_limits(&g, &cpu, why, sizeof(why)), 0);
        assert_string_equal(why, "cpu_time: no cgroup to read the tree's CPU time from (reaper containment)");
        {
                /* Every limit asked for is named, each with its reason. */
                struct er_limits all = {.memory = 64 << 20, .pids = 20, .cpu_time_us = 1000000};
                assert_int_equal(er_group_set_limits(&g, &all, why, sizeof(why)), 0);
                assert_string_equal(why, "memory: no cgroup to hold it (reaper containment); "
                                         "pids: no cgroup to hold it (reaper containment); "
                                         "cpu_time: no cgroup to read the tree's CPU time from "
                                         "(reaper containment)");
        }
        assert_int_equal(er_group_procs_fds(&g, fds, ER_V1_N), 0);
        assert_int_equal(er_group_oom_fd(&g, &ev), -EOPNOTSUPP);
        assert_int_equal(er_group_oom_kills(&g, &v), -EOPNOTSUPP);
        assert_int_equal(er_group_pids_refused(&g, &v), -EOPNOTSUPP);
        assert_int_equal(er_group_memory_peak(&g, &v, &tree), -EOPNOTSUPP);
        er_group_fini(&g);
        er_contain_fini(&c);
}

static void hybrid_limits_and_join(void **state)
{
        struct er_contain c;
        struct er_group g;
        struct er_limits l = {.memory = 64 << 20, .pids = 8, .cpu_time_us = 1000000};
        struct er_err err = {0};
        struct er_child child = {0};
        char why[256] = "", path[1024], buf[4096], want[512];
        char *argv[] = {"sleep", "100", NULL};
        char *envp[] = {"PATH=/usr/bin:/bin", NULL};
        int fds[ER_V1_N], n, st;
        uint64_t v;
        uint32_t ev;
        bool tree = false;
        char *mem_dir, *pids_dir;

        (void)state;
        assert_int_equal(geteuid(), 0);
        assert_int_equal(er_contain_init(&c, "limits", false, true), 0);
        assert_int_equal(c.kind, ER_CONTAIN_CGROUP2);
        assert_non_null(c.v1_dir[ER_V1_MEMORY]);
        assert_non_null(c.v1_dir[ER_V1_PIDS]);
        mem_dir = strdup(c.v1_dir[ER_V1_MEMORY]);
        pids_dir = strdup(c.v1_dir[ER_V1_PIDS]);
        assert_int_equal(er_group_init(&g, &c, "svc", &err), 0);
        assert_int_equal(er_group_set_limits(&g, &l, why, sizeof(why)), 1);

        snprintf(path, sizeof(path), "%s/svc/memory.limit_in_bytes", mem_dir);
        read_text(path, buf, sizeof(buf));
        assert_string_equal(buf, "67108864\n");
        snprintf(path, sizeof(path), "%s/svc/pids.max", pids_dir);
        read_text(path, buf, sizeof(buf));
        assert_string_equal(buf, "8\n");
        assert_true(er_group_oom_fd(&g, &ev) >= 0);

        n = er_group_procs_fds(&g, fds, ER_V1_N);
        assert_int_equal(n, 2);
        struct er_spawn_opts o = {
                .file = "sleep", .argv = argv, .envp = envp, .stdin_fd = -1,
                .stdout_fd = -1, .stderr_fd = -1, .pgrp = ER_SPAWN_SETSID,
                .uid = -1, .gid = -1, .cgroup_fd = er_group_cgroup_fd(&g),
                .procs_fds = fds, .n_procs_fds = (size_t)n,
                .pdeathsig = SIGKILL, /* a failed assertion ends the test: so does it */
        };
        assert_int_equal(er_spawn(&o, &child, &err), 0);
        for (int i = 0; i < n; i++)
                close(fds[i]);

        /* The child is in both v1 cgroups (and its cgroup2 one). */
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)child.pid);
        read_text(path, buf, sizeof(buf));
        snprintf(want, sizeof(want), ":memory:/envrun/%s/svc\n", c.instance);
        bool in_mem = strstr(buf, want) != NULL;
        snprintf(want, sizeof(want), ":pids:/envrun/%s/svc\n", c.instance);
        bool in_pids = strstr(buf, want) != NULL;

        assert_int_equal(er_group_oom_kills(&g, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(er_group_pids_refused(&g, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(er_group_memory_peak(&g, &v, &tree), 0);
        assert_true(v > 0);
        assert_true(tree);
        {
                /* A service without limits never joins a v1 hierarchy: no
                 * v1 cgroup is made for it, nothing for the child to join. */
                struct er_group plain;
                struct stat sb;
                assert_int_equal(er_group_init(&plain, &c, "plain", &err), 0);
                assert_int_equal(er_group_procs_fds(&plain, fds, ER_V1_N), 0);
                snprintf(path, sizeof(path), "%s/plain", mem_dir);
                assert_int_equal(stat(path, &sb), -1);
                snprintf(path, sizeof(path), "%s/plain", pids_dir);
                assert_int_equal(stat(path, &sb), -1);
                er_group_fini(&plain);
        }

        kill(child.pid, SIGKILL);
        assert_int_equal(waitpid(child.pid, &st, 0), child.pid);
        if (child.pidfd >= 0)
                close(child.pidfd);
        assert_true(in_mem);
        assert_true(in_pids);

        er_group_fini(&g);
        er_contain_fini(&c);
        /* Every cgroup of the instance is gone. */
        struct stat sb;
        assert_int_equal(stat(mem_dir, &sb), -1);
        assert_int_equal(stat(pids_dir, &sb), -1);
        free(mem_dir);
        free(pids_dir);
}

/* Without limits nothing is made ready for them: no v1 directory (each
 * costs a mkdir and an rmdir in the memory or pids hierarchy per run). */
static void no_limits_no_v1(void **state)
{
        struct er_contain c;
        char path[1024];

        (void)state;
        assert_int_equal(er_contain_init(&c, "nolimits", false, false), 0);
        assert_int_equal(c.kind, ER_CONTAIN_CGROUP2);
        for (int k = 0; k < ER_V1_N; k++) {
                assert_null(c.v1_dir[k]);
                assert_int_equal(c.v1_fd[k], -1);
        }
        snprintf(path, sizeof(path), "/sys/fs/cgroup/memory/envrun/%s", c.instance);
        assert_int_equal(access(path, F_OK), -1);
        er_contain_fini(&c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(reaper_enforces_nothing),
                cmocka_unit_test(hybrid_limits_and_join),
                cmocka_unit_test(no_limits_no_v1),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
