/* sched: the engine driven directly, as the detached supervisor will: bring
 * up, stop one service (its dependent keeps running), start it again,
 * restart it, tear down.  Real processes, the real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>

#include <cmocka.h>

#include "model/config.h"
#include "proc/contain.h"
#include "model/load.h"
#include "proc/loop.h"
#include "report/report.h"
#include "sched/sched.h"
#include "model/validate.h"
#include "sched_fixture.h"

static const char yaml[] = "services:\n"
                           "  db:\n"
                           "    command: [sh, -c, 'echo booting; echo ready; exec sleep 60']\n"
                           "    ready: {output: '^ready$'}\n"
                           "    stop_timeout: 2s\n"
                           "  api:\n"
                           "    command: [sleep, '60']\n"
                           "    depends_on: [db]\n";

static int setup(void **state)
{
        struct sched_fx *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        sched_fx_open(f, yaml, "tsched");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct sched_fx *f = *state;

        sched_fx_close(f);
        free(f);
        return 0;
}

/* Runs the loop until cond holds or 10 s pass. */
static bool drive(struct sched_fx *f, bool (*cond)(struct sched_fx *))
{
        uint64_t deadline = er_now_us() + 10 * 1000000ULL;
        while (!cond(f)) {
                if (er_now_us() > deadline)
                        return false;
                er_loop_run_once(f->loop, 100000);
                /* No signalfd here: reap on every turn, as SIGCHLD would. */
                er_sched_sigchld(f->s);
        }
        return true;
}

static bool up_done(struct sched_fx *f) { return er_sched_up_done(f->s); }
static bool db_stopped(struct sched_fx *f) { return er_sched_state(f->s, 0) == ER_SVC_STOPPED; }
static bool api_stopped(struct sched_fx *f) { return er_sched_state(f->s, 1) == ER_SVC_STOPPED; }
static bool db_ready(struct sched_fx *f) { return er_sched_state(f->s, 0) == ER_SVC_READY; }
static bool down_done(struct sched_fx *f) { return er_sched_down_done(f->s); }

static int report_of(struct sched_fx *f, struct er_report *r)
{
        return er_sched_report(f->s, r);
}

static void free_report(struct er_report *r)
{
        free(r->ports);
        er_report_fini(r);
        free(r->services);
}

static void test_stop_start_restart(void **state)
{
        struct sched_fx *f = *state;
        struct er_report r;
        char why[128];
        int api_pid, db_pid;

        er_sched_up(f->s);
        assert_true(drive(f, up_done));
        assert_false(er_sched_failed(f->s));
        assert_int_equal(er_sched_state(f->s, 0), ER_SVC_READY);
        assert_int_equal(er_sched_state(f->s, 1), ER_SVC_READY);
        assert_int_equal(report_of(f, &r), 0);
        api_pid = r.services[1].pid;
        db_pid = r.services[0].pid;
        free_report(&r);
        assert_true(api_pid > 0 && kill(api_pid, 0) == 0);

        /* stop db alone: api is left running */
        assert_int_equal(er_sched_stop_service(f->s, 0), 0);
        assert_int_equal(er_sched_stop_service(f->s, 0), -EALREADY);
        assert_true(drive(f, db_stopped));
        assert_int_equal(kill(db_pid, 0), -1);
        assert_int_equal(kill(api_pid, 0), 0);
        assert_int_equal(er_sched_state(f->s, 1), ER_SVC_READY);
        /* restarting api now would leave it down: refused, api untouched */
        assert_int_equal(er_sched_restart_service(f->s, 1, why, sizeof(why)), -EAGAIN);
        assert_string_equal(why, "its dependency 'db' is not ready");
        assert_int_equal(er_sched_state(f->s, 1), ER_SVC_READY);
        assert_int_equal(kill(api_pid, 0), 0);

        /* api stops too; it cannot start while its dependency is not ready */
        assert_int_equal(er_sched_stop_service(f->s, 1), 0);
        assert_int_equal(er_sched_start_service(f->s, 1, why, sizeof(why)), -EBUSY);
        assert_true(drive(f, api_stopped));
        assert_int_equal(er_sched_start_service(f->s, 1, why, sizeof(why)), -EAGAIN);
        assert_string_equal(why, "its dependency 'db' is not ready");

        /* start db again: a new process, ready again */
        assert_int_equal(er_sched_start_service(f->s, 0, why, sizeof(why)), 0);
        assert_true(drive(f, db_ready));
        assert_int_equal(report_of(f, &r), 0);
        assert_true(r.services[0].pid > 0 && r.services[0].pid != db_pid);
        db_pid = r.services[0].pid;
        free_report(&r);

        /* restart: stop, then start once its tree is gone; counted */
        assert_int_equal(er_sched_restart_service(f->s, 0, why, sizeof(why)), 0);
        assert_true(drive(f, db_ready));
        assert_int_equal(report_of(f, &r), 0);
        assert_int_equal(r.services[0].restarts, 1);
        assert_true(r.services[0].pid != db_pid);
        free_report(&r);

        er_sched_down(f->s, false);
        assert_true(drive(f, down_done));
        assert_int_equal(report_of(f, &r), 0);
        assert_int_equal(r.services[0].error, ER_OK);
        assert_true(kill(r.services[0].pid, 0) < 0);
        free_report(&r);
}

/* Four services whose tcp checks make each one wait for its
 * AlreadyRunning probe: the probes end in one loop batch, one by one, and
 * the spawns they start do not wait for their execs, which overlap (they
 * used to wait one after the other). */
static const char probed_yaml[] = "services:\n"
                                  "  a: {command: [sleep, '60'], ready: {tcp: '127.0.0.1:1'}, timeout: 30s}\n"
                                  "  b: {command: [sleep, '60'], ready: {tcp: '127.0.0.1:1'}, timeout: 30s}\n"
                                  "  c: {command: [sleep, '60'], ready: {tcp: '127.0.0.1:1'}, timeout: 30s}\n"
                                  "  d: {command: [sleep, '60'], ready: {tcp: '127.0.0.1:1'}, timeout: 30s}\n";

static bool all_spawned(struct sched_fx *f)
{
        struct er_report r;
        bool all = true;

        assert_int_equal(report_of(f, &r), 0);
        for (size_t i = 0; i < r.n_services; i++)
                all = all && r.services[i].pid > 0;
        free_report(&r);
        return all;
}

static void test_probed_spawns_overlap(void **state)
{
        struct sched_fx f;

        (void)state;
        memset(&f, 0, sizeof(f));
        sched_fx_open(&f, probed_yaml, "tprobed");
        er_sched_up(f.s);
        assert_true(drive(&f, all_spawned));
        assert_true(er_sched_spawning_max(f.s) >= 2);
        er_sched_down(f.s, true);
        assert_true(drive(&f, down_done));
        sched_fx_close(&f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_stop_start_restart, setup, teardown),
                cmocka_unit_test(test_probed_spawns_overlap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
