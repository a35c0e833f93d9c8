/* test_cmd: the test command (SPEC §5): started once the environment is
 * up, its tree stopped like a service's when it exits, its time limit
 * (sched_priv.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sched/sched.h"
#include "base/testhook.h"
#include "proc/envp.h"
#include "proc/spawn.h"
#include "sched/sched_priv.h"
#include "base/units.h"

/* --- the test command ---------------------------------------------------- */

static void test_exit(struct er_proc *p)
{
        struct er_sched *s = p->owner;
        s->test_end_us = er_now_us();
        s->test_running = false;
        er_timer_stop(s->o.loop, &s->test_timer);
        /* Whatever it left behind is stopped like a service's tree. */
        er_proc_stop(p, SIGTERM, TEST_KILL_AFTER_US, SIGKILL, false);
}

static void test_gone(struct er_proc *p)
{
        struct er_sched *s = p->owner;
        char how[64];

        er_timer_stop(s->o.loop, &s->test_kill);
        sched_describe_status(how, sizeof(how), p->exit_code, p->exit_signal);
        s->test_done = true;
        sched_emit_test(s, ER_SVC_STOPPED, how);
}

static const struct er_proc_cb test_cb = {
        .exited = test_exit,
        .gone = test_gone,
};

void sched_on_test_kill(struct er_loop *loop, struct er_timer *t)
{
        struct er_sched *s = er_container_of(t, struct er_sched, test_kill);
        er_proc_stop(&s->test, SIGKILL, 0, SIGKILL, true);
}

static void on_test_timeout(struct er_loop *loop, struct er_timer *t)
{
        struct er_sched *s = er_container_of(t, struct er_sched, test_timer);
        s->test_timed_out = true;
        sched_emit_test(s, ER_SVC_STOPPING, "time limit reached: SIGTERM to its tree");
        er_proc_stop(&s->test, SIGTERM, TEST_KILL_AFTER_US, SIGKILL, false);
}

int er_sched_run_test(struct er_sched *s, char *const *argv, const char *cwd, bool from_file,
                      uint64_t timeout_us)
{
        struct er_err err = {0};
        int r;

        s->test_started = true;
        s->test_argv = argv;
        if (!s->test_init) {
                r = er_proc_init(&s->test, s->o.loop, s->o.contain, "_test", &test_cb, s, NULL,
                                 &err);
                if (r < 0)
                        goto out_fail;
                s->test_init = true;
        }
        s->test_envp = sched_build_envp(s, from_file ? &s->c->test.env : NULL, NULL, NULL,
                                  er_proc_marker(&s->test));
        if (!s->test_envp) {
                r = er_err_set(&err, -ENOMEM, NULL, 0, 0, "out of memory");
                goto out_fail;
        }
        struct er_spawn_opts opts = {
                .file = argv[0],
                .argv = argv,
                .envp = s->test_envp,
                .cwd = cwd,
                .stdin_fd = STDIN_FILENO,
                .stdout_fd = -1,
                .stderr_fd = -1,
                .pgrp = ER_SPAWN_INHERIT,
                .uid = -1,
                .gid = -1,
                .cgroup_fd = -1,
                .pdeathsig = SIGKILL,
                .no_pidfd = s->o.no_pidfd,
        };
        s->test_start_us = er_now_us();
        r = er_proc_spawn(&s->test, &opts, false, &err);
        if (r < 0)
                goto out_fail;
        s->test_running = true;
        er_test_hold("test");
        if (timeout_us)
                er_timer_start(s->o.loop, &s->test_timer, timeout_us, on_test_timeout);
        sched_emit_test(s, ER_SVC_STARTING, argv[0]);
        return 0;

out_fail:
        snprintf(s->test_message, sizeof(s->test_message), "%s", err.msg);
        s->test_spawn_failed = true;
        s->test_status = r == -ENOENT ? 127 : 126;
        s->test_done = true;
        s->test_end_us = s->test_start_us = er_now_us();
        sched_emit_test(s, ER_SVC_FAILED, s->test_message);
        return r;
}

int er_sched_plan_test(struct er_sched *s, char *const *argv, const char *cwd, bool from_file)
{
        struct er_err err;
        char **envp, *path;
        int e;

        s->test_argv = argv;
        /* Its group (a cgroup to create) is made now, while the services
         * come up, not on the path from ready to the test's start. */
        if (!s->test_init &&
            er_proc_init(&s->test, s->o.loop, s->o.contain, "_test", &test_cb, s, NULL, &err) == 0)
                s->test_init = true;
        /* A program looked up in PATH is looked up now: a missing one fails
         * before anything starts.  One named by a path is the test's own
         * business when it runs (a job may make it). */
        if (!argv || !argv[0] || strchr(argv[0], '/') || !s->test_init)
                return 0;
        envp = sched_build_envp(s, from_file ? &s->c->test.env : NULL, NULL, NULL,
                                er_proc_marker(&s->test));
        if (!envp)
                return 0; /* out of memory: run_test will say so */
        path = er_spawn_lookup(argv[0], envp, cwd);
        e = errno;
        er_envp_free(envp);
        if (path) {
                free(path);
                return 0;
        }
        if (e == ENOENT)
                snprintf(s->test_message, sizeof(s->test_message), "'%s': command not found",
                         argv[0]);
        else
                snprintf(s->test_message, sizeof(s->test_message), "'%s': %s", argv[0],
                         strerror(e));
        s->test_started = s->test_spawn_failed = s->test_done = true;
        s->test_status = e == ENOENT ? 127 : 126;
        s->test_end_us = s->test_start_us = er_now_us();
        sched_emit_test(s, ER_SVC_FAILED, s->test_message);
        return -e;
}

bool er_sched_test_done(const struct er_sched *s)
{
        return !s->test_started || s->test_done;
}
