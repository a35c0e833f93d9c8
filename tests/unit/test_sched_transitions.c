/* sched transitions: the odd paths of a service's life, as a table.  Each
 * row is an environment, a script of what happens to it (bring-up, a
 * wait for a state, a stop request, a second one) and what every service
 * must end as: its final state, its error class and the start of its
 * message in the report, its restarts.  Real processes on the real loop,
 * as the engine runs them; the table is the documentation of what the
 * scheduler does in each case (doc/design.md, "Architecture").
 *
 * ENVRUN_TRANSITIONS_SHOW=1 prints what each row ended as instead of
 * checking it (to write a new row). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/config.h"
#include "model/load.h"
#include "model/validate.h"
#include "proc/contain.h"
#include "proc/loop.h"
#include "report/report.h"
#include "sched/sched.h"
#include "sched_fixture.h"

/* The table leaves out the fields a row does not need (they are zero). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define MAX_STEPS 10
#define MAX_SVCS 4
#define DEADLINE_US (15 * 1000000ULL)

enum op {
        END,
        UP,         /* er_sched_up; the bring-up runs on */
        UP_DONE,    /* waits until the bring-up is over */
        WAIT_STATE, /* waits until service `svc` is in `state` */
        WAIT_FILE,  /* waits until a service made `file` in ENVRUN_STATE_DIR */
        DOWN,       /* er_sched_down (not fast); does not wait */
        DOWN_FAST,  /* er_sched_down(fast): a second, impatient request */
        DOWN_DONE,  /* waits until everything is down */
        STOP_ONE,   /* er_sched_stop_service(svc), as `envrun stop` */
        START_ONE,  /* er_sched_start_service(svc), as `envrun start` */
        RESTART_ONE, /* er_sched_restart_service(svc), as `envrun restart` */
        KILL_MAIN,  /* SIGKILL to service `svc`'s main process, as a crash (kill -9) */
};

struct step {
        enum op op;
        size_t svc;
        enum er_svc_state state;
        const char *file;
};

#define DO(op) {op, 0, ER_SVC_PENDING}
#define WAIT(svc, st) {WAIT_STATE, svc, st}
#define WAIT_FOR(name) {WAIT_FILE, 0, ER_SVC_PENDING, name}
#define ONE(op, svc) {op, svc, ER_SVC_PENDING}

struct want {
        const char *name;
        enum er_svc_state state;
        enum er_error_class error;
        const char *message; /* the report's message starts with this */
        unsigned restarts;
        const char *stops_after; /* a service that must have stopped first, or NULL */
};

struct row {
        const char *what;
        const char *yaml;
        struct step steps[MAX_STEPS];
        struct want want[MAX_SVCS];
};

/* A service that fails its first run before ready (exit 1), then comes up:
 * the flag file lives in ENVRUN_STATE_DIR, fresh for each row. */
#define FLAKY "[sh, -c, 'test -f \"$ENVRUN_STATE_DIR/f\" || { touch \"$ENVRUN_STATE_DIR/f\"; exit 1; }; echo ready; exec sleep 60']"

static const struct row rows[] = {
    {"restart before ready: the first run exits 1, the policy starts it again, it comes up",
     "services:\n"
     "  db:\n"
     "    command: " FLAKY "\n"
     "    ready: {output: '^ready$'}\n"
     "    restart: on-failure\n"
     "    max_restarts: 2\n",
     {DO(UP), DO(UP_DONE), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 1}}},

    {"a stop during a start: down while the service waits for its check",
     "services:\n"
     "  slow:\n"
     "    command: [sleep, '60']\n"
     "    ready: {output: never}\n"
     "    timeout: 30s\n",
     {DO(UP), WAIT(0, ER_SVC_STARTING), DO(DOWN), DO(DOWN_DONE)},
     {{"slow", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0}}},

    {"a dependency failing while its dependent starts: the dependent is stopped, "
     "the failure is the dependency's",
     "services:\n"
     "  db:\n"
     "    command: [sh, -c, 'echo up; while [ ! -e \"$ENVRUN_STATE_DIR/api\" ]; do sleep 0.01; done; exit 3']\n"
     "    ready: {output: '^up$'}\n"
     "  api:\n"
     "    command: [sh, -c, 'touch \"$ENVRUN_STATE_DIR/api\"; exec sleep 60']\n"
     "    ready: {output: never}\n"
     "    depends_on: [db]\n",
     {DO(UP), DO(UP_DONE), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_FAILED, ER_PROCESS_EXITED_WITH_ERROR, "exited 3 after it was ready", 0},
      {"api", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0}}},

    {"a job completing while the environment stops: it ignores SIGTERM and exits 0 "
     "on its own; a clean stop, and what waited for it never starts",
     "services:\n"
     "  job:\n"
     "    command: [sh, -c, 'trap \"\" TERM; touch \"$ENVRUN_STATE_DIR/job\"; sleep 0.3; exit 0']\n"
     "    ready: {exit: 0}\n"
     "  after:\n"
     "    command: [sleep, '60']\n"
     "    depends_on:\n"
     "      job: {condition: completed}\n",
     {DO(UP), WAIT_FOR("job"), DO(DOWN), DO(DOWN_DONE)},
     {{"job", ER_SVC_STOPPED, ER_OK, "exited 0", 0},
      {"after", ER_SVC_PENDING, ER_OK, "not started", 0}}},

    {"a second stop request: the impatient one kills at once (finished with error, and "
     "says so), and down still ends once",
     "services:\n"
     "  stubborn:\n"
     "    command: [sh, -c, 'trap \"\" TERM; echo ready; while :; do sleep 1; done']\n"
     "    ready: {output: '^ready$'}\n"
     "    stop_timeout: 20s\n",
     {DO(UP), DO(UP_DONE), DO(DOWN), WAIT(0, ER_SVC_STOPPING), DO(DOWN_FAST), DO(DOWN_DONE)},
     {{"stubborn", ER_SVC_STOPPED, ER_PROCESS_FINISHED_WITH_ERROR,
       "killed by SIGKILL at once (a second stop request)", 0}}},

    {"a dependency stops only after its dependents: db outlives api",
     "services:\n"
     "  db:\n"
     "    command: [sh, -c, 'trap \"sleep 0.2; exit 0\" TERM; echo ready; while :; do sleep 1; done']\n"
     "    ready: {output: '^ready$'}\n"
     "  api:\n"
     "    command: [sh, -c, 'trap \"sleep 0.2; exit 0\" TERM; echo ready; while :; do sleep 1; done']\n"
     "    ready: {output: '^ready$'}\n"
     "    depends_on: [db]\n",
     {DO(UP), DO(UP_DONE), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "exited 0 after SIGTERM", 0, "api"},
      {"api", ER_SVC_STOPPED, ER_OK, "exited 0 after SIGTERM", 0}}},

    {"a timeout before ready: TimeoutExpired, its tree stopped",
     "services:\n"
     "  late:\n"
     "    command: [sleep, '60']\n"
     "    ready: {output: never}\n"
     "    timeout: 300ms\n",
     {DO(UP), DO(UP_DONE), DO(DOWN), DO(DOWN_DONE)},
     {{"late", ER_SVC_FAILED, ER_TIMEOUT_EXPIRED, "not ready within 300ms (waiting for output", 0}}},

    {"a command that does not exist: StartError, and its dependent never starts",
     "services:\n"
     "  ghost:\n"
     "    command: [/nonexistent/ghost]\n"
     "  api:\n"
     "    command: [sleep, '60']\n"
     "    depends_on: [ghost]\n",
     {DO(UP), DO(UP_DONE), DO(DOWN), DO(DOWN_DONE)},
     {{"ghost", ER_SVC_FAILED, ER_START_ERROR, "'/nonexistent/ghost': No such file or directory", 0},
      {"api", ER_SVC_PENDING, ER_DEPENDENCY_FAILED, "api <- ghost: '/nonexistent/ghost'", 0}}},

    {"a job completing: what waited for its completion starts; the job's exit is its end "
     "(it stays exited: the teardown has nothing to stop)",
     "services:\n"
     "  migrate:\n"
     "    command: [sh, -c, 'exit 0']\n"
     "    ready: {exit: 0}\n"
     "  app:\n"
     "    command: [sleep, '60']\n"
     "    depends_on:\n"
     "      migrate: {condition: completed}\n",
     {DO(UP), DO(UP_DONE), WAIT(1, ER_SVC_READY), DO(DOWN), DO(DOWN_DONE)},
     {{"migrate", ER_SVC_EXITED, ER_OK, "exited 0", 0},
      {"app", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0}}},

    {"stop one service, then start it again: its dependent keeps running",
     "services:\n"
     "  db:\n"
     "    command: [sh, -c, 'echo ready; exec sleep 60']\n"
     "    ready: {output: '^ready$'}\n"
     "  api:\n"
     "    command: [sleep, '60']\n"
     "    depends_on: [db]\n",
     {DO(UP), DO(UP_DONE), ONE(STOP_ONE, 0), WAIT(0, ER_SVC_STOPPED), ONE(START_ONE, 0),
      WAIT(0, ER_SVC_READY), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0, "api"},
      {"api", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0}}},

    {"restart a service that is ready: stopping at once, then ready again, one restart",
     "services:\n"
     "  db:\n"
     "    command: [sh, -c, 'echo ready; exec sleep 60']\n"
     "    ready: {output: '^ready$'}\n",
     {DO(UP), DO(UP_DONE), ONE(RESTART_ONE, 0), WAIT(0, ER_SVC_READY), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 1}}},

    {"a restart, then down before the old run is gone: the restart is dropped, down ends",
     "services:\n"
     "  db:\n"
     "    command: [sh, -c, 'trap \"sleep 0.3; exit 0\" TERM; echo ready; while :; do sleep 1; done']\n"
     "    ready: {output: '^ready$'}\n",
     {DO(UP), DO(UP_DONE), ONE(RESTART_ONE, 0), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "exited 0 after SIGTERM", 0}}},

    {"restart a failed service whose tree still runs: the tree goes, the new run comes up",
     "services:\n"
     "  db:\n"
     "    command: [sh, -c, 'test -f \"$ENVRUN_STATE_DIR/f\" || { touch \"$ENVRUN_STATE_DIR/f\"; exec sleep 60; }; echo ready; exec sleep 60']\n"
     "    ready: {output: '^ready$'}\n"
     "    timeout: 300ms\n",
     {DO(UP), DO(UP_DONE), WAIT(0, ER_SVC_FAILED), ONE(RESTART_ONE, 0), WAIT(0, ER_SVC_READY),
      DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 1}}},

    {"a crashed service brought back by start: killed by SIGKILL, failed, started, ready",
     "services:\n"
     "  db:\n"
     "    command: [sh, -c, 'echo ready; exec sleep 60']\n"
     "    ready: {output: '^ready$'}\n"
     "  api:\n"
     "    command: [sleep, '60']\n"
     "    depends_on: [db]\n",
     {DO(UP), DO(UP_DONE), ONE(KILL_MAIN, 0), WAIT(0, ER_SVC_FAILED), ONE(START_ONE, 0),
      WAIT(0, ER_SVC_READY), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0, "api"},
      {"api", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0}}},

    {"a crashed service brought back by restart: one restart",
     "services:\n"
     "  db:\n"
     "    command: [sh, -c, 'echo ready; exec sleep 60']\n"
     "    ready: {output: '^ready$'}\n",
     {DO(UP), DO(UP_DONE), ONE(KILL_MAIN, 0), WAIT(0, ER_SVC_FAILED), ONE(RESTART_ONE, 0),
      WAIT(0, ER_SVC_READY), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 1}}},

    {"a job that completed runs again on start",
     "services:\n"
     "  job:\n"
     "    command: [sh, -c, 'echo run >> \"$ENVRUN_STATE_DIR/runs\"']\n"
     "    ready: {exit: 0}\n",
     {DO(UP), DO(UP_DONE), WAIT(0, ER_SVC_EXITED), ONE(START_ONE, 0), WAIT(0, ER_SVC_EXITED),
      DO(DOWN), DO(DOWN_DONE)},
     {{"job", ER_SVC_EXITED, ER_OK, "exited 0", 0}}},

    {"a dependent waiting for 'started' starts once its dependency spawned, before it is ready",
     "services:\n"
     "  db:\n"
     "    command: [sleep, '60']\n"
     "    ready: {output: never}\n"
     "    timeout: 30s\n"
     "  tail:\n"
     "    command: [sleep, '60']\n"
     "    depends_on:\n"
     "      db: {condition: started}\n",
     {DO(UP), WAIT(1, ER_SVC_READY), DO(DOWN), DO(DOWN_DONE)},
     {{"db", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0, "tail"},
      {"tail", ER_SVC_STOPPED, ER_OK, "stopped by SIGTERM", 0}}},
};

struct cond {
        struct sched_fx *f;
        const struct step *st;
};

static bool holds(const struct cond *c)
{
        switch (c->st->op) {
        case UP_DONE:
                return er_sched_up_done(c->f->s);
        case WAIT_STATE:
                return er_sched_state(c->f->s, c->st->svc) == c->st->state;
        case DOWN_DONE:
                return er_sched_down_done(c->f->s);
        case WAIT_FILE: {
                char path[sizeof(c->f->dir) + 1024];
                snprintf(path, sizeof(path), "%s/%s", c->f->dir, c->st->file);
                return access(path, F_OK) == 0;
        }
        default:
                return true;
        }
}

/* Runs the loop until the step's condition holds (fails the test after
 * DEADLINE_US). */
static void wait_for(struct sched_fx *f, const struct step *st, const char *what)
{
        struct cond c = {f, st};
        uint64_t deadline = er_now_us() + DEADLINE_US;

        while (!holds(&c)) {
                if (er_now_us() > deadline)
                        fail_msg("%s: step %d never happened", what, (int)st->op);
                er_loop_run_once(f->loop, 100000);
                /* No signalfd here: reap on every turn, as SIGCHLD would. */
                er_sched_sigchld(f->s);
        }
}

static void run_row(const struct row *row, bool show)
{
        struct sched_fx f = {0};
        struct er_report r;

        sched_fx_open(&f, row->yaml, "transitions");
        for (const struct step *st = row->steps; st->op != END; st++) {
                if (st->op == UP)
                        er_sched_up(f.s);
                else if (st->op == DOWN || st->op == DOWN_FAST)
                        er_sched_down(f.s, st->op == DOWN_FAST);
                else if (st->op == KILL_MAIN) {
                        struct er_svc_info in;
                        er_sched_info(f.s, st->svc, &in);
                        assert_true(in.pid > 0);
                        assert_int_equal(kill(in.pid, SIGKILL), 0);
                } else if (st->op == STOP_ONE)
                        assert_int_equal(er_sched_stop_service(f.s, st->svc), 0);
                else if (st->op == START_ONE || st->op == RESTART_ONE) {
                        char why[200] = "";
                        int rc = st->op == START_ONE
                                        ? er_sched_start_service(f.s, st->svc, why, sizeof(why))
                                        : er_sched_restart_service(f.s, st->svc, why, sizeof(why));
                        if (rc < 0)
                                fail_msg("%s: %s: %s %s", row->what,
                                         st->op == START_ONE ? "start" : "restart", strerror(-rc),
                                         why);
                        /* A restart begins at once: with the stop of a run that
                         * still has a tree, else with the new run. */
                        if (st->op == RESTART_ONE) {
                                enum er_svc_state now = er_sched_state(f.s, st->svc);
                                assert_true(now == ER_SVC_STOPPING || now == ER_SVC_STARTING);
                        }
                }
                else
                        wait_for(&f, st, row->what);
        }
        assert_int_equal(er_sched_report(f.s, &r), 0);
        for (size_t i = 0; i < f.c->n_services; i++) {
                const struct want *w = &row->want[i];
                const struct er_report_service *rs = &r.services[i];
                if (show) {
                        print_message("%s\n  %s: state %s, error %d, message '%s', restarts %u\n",
                                      row->what, rs->name, er_svc_state_name(er_sched_state(f.s, i)),
                                      (int)rs->error, rs->message, rs->restarts);
                        continue;
                }
                if (!w->name)
                        fail_msg("%s: no expectation for '%s'", row->what, rs->name);
                assert_string_equal(rs->name, w->name);
                if (er_sched_state(f.s, i) != w->state || rs->error != w->error ||
                    strncmp(rs->message, w->message, strlen(w->message)) ||
                    rs->restarts != w->restarts)
                        fail_msg("%s\n  %s: got state %s, error %d, '%s', %u restarts; "
                                 "want %s, %d, '%s...', %u",
                                 row->what, rs->name, er_svc_state_name(er_sched_state(f.s, i)),
                                 (int)rs->error, rs->message, rs->restarts,
                                 er_svc_state_name(w->state), (int)w->error, w->message,
                                 w->restarts);
                for (size_t k = 0; w->stops_after && k < f.c->n_services; k++)
                        if (!strcmp(r.services[k].name, w->stops_after) &&
                            r.services[k].stopped_ms > rs->stopped_ms)
                                fail_msg("%s\n  %s stopped at %llu ms, before %s (%llu ms)", row->what,
                                         rs->name, (unsigned long long)rs->stopped_ms,
                                         w->stops_after,
                                         (unsigned long long)r.services[k].stopped_ms);
        }
        free(r.ports);
        er_report_fini(&r);
        free(r.services);
        sched_fx_close(&f);
}

static void test_row(void **state)
{
        const struct row *row = *state;
        const char *show = getenv("ENVRUN_TRANSITIONS_SHOW");

        run_row(row, show && *show == '1');
}

int main(void)
{
        struct CMUnitTest tests[sizeof(rows) / sizeof(rows[0])];

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
                tests[i] = (struct CMUnitTest){rows[i].what, test_row, NULL, NULL, (void *)&rows[i]};
        return _cmocka_run_group_tests("sched_transitions", tests, sizeof(rows) / sizeof(rows[0]),
                                       NULL, NULL);
}
