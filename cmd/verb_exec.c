/* exec: bring the environment up, run CMD, bring it down, report (SPEC §1). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "run.h"
#include "proc/contain.h"
#include "proc/loop.h"
#include "instance/ports.h"
#include "report/report.h"
#include "sched/sched.h"
#include "instance/records.h"
#include "instance/state.h"
#include "report/timeline.h"
#include "base/units.h"

extern char **environ;

/* --- the verb ------------------------------------------------------------ */

/* `envrun test ARG...`: the file's test command with ARGs appended (for a
 * shell string, as "$@" of it: sh -c 'CMD "$@"' sh ARG...).  NULL when out
 * of memory.  The strings are borrowed; free the array alone, and
 * argv[2] for a shell string. */
static char **test_with_args(const struct er_cmd *cmd, int argc, char **argv)
{
        size_t n = cmd->argc + (cmd->shell ? 1 : 0) + (size_t)argc + 1;
        char **out = calloc(n, sizeof(*out)), *script = NULL;
        size_t k = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < cmd->argc; i++)
                out[k++] = cmd->argv[i];
        if (cmd->shell) {
                size_t len = strlen(cmd->argv[2]) + sizeof(" \"$@\"");
                if (!(script = malloc(len))) {
                        free(out);
                        return NULL;
                }
                snprintf(script, len, "%s \"$@\"", cmd->argv[2]);
                out[2] = script;
                out[k++] = "sh";
        }
        for (int i = 0; i < argc; i++)
                out[k++] = argv[i];
        return out;
}

/* --timeout, the file, and a first load that learns the project name and
 * the ports; then SIGINT, SIGTERM and SIGHUP held (run_hold_stop_signals).
 * 0, or an exit status after saying why. */
static int first_pass(int argc, bool test_verb, uint64_t *timeout_us, const char **ret_path,
                      struct er_config **ret_probe, struct er_doc **ret_doc)
{
        const char *t = cli_value(OPT_TIMEOUT);

        if (t && (er_duration_parse(t, timeout_us) < 0 || *timeout_us == 0))
                return cli_fail(EXIT_EXEC_ENV,
                                "--timeout must be a duration such as '30s' or '10m', not '%s'", t);
        if (!(*ret_path = cli_config_path()))
                return EXIT_EXEC_ENV;
        if (!(*ret_probe = run_load_probe(*ret_path, ret_doc)))
                return EXIT_EXEC_ENV;
        if (test_verb && !(*ret_probe)->test.present) {
                er_config_free(*ret_probe);
                er_doc_free(*ret_doc);
                return cli_fail(EXIT_EXEC_ENV,
                                "'%s' has no 'test:' command for `envrun test` (use `envrun exec "
                                "-- CMD`)",
                                *ret_path);
        }
        if (argc == 0 && !(*ret_probe)->test.present) {
                er_config_free(*ret_probe);
                er_doc_free(*ret_doc);
                return cli_fail(EXIT_EXEC_ENV,
                                "nothing to run: give a command (envrun exec -- CMD) or a 'test:' in "
                                "'%s'",
                                *ret_path);
        }
        /* From here an instance is made: a signal must not kill us before
         * the loop sees it. */
        run_hold_stop_signals();
        return 0;
}

/* The ports and ENVRUN_STATE_DIR of the running `up -d` instance inst,
 * for a command run against it.  0, or an exit status after saying why
 * (ports->ports freed). */
static int attach(const struct er_config *probe, const char *inst, struct er_ports *ports,
                  char *state_dir, size_t len)
{
        long sup_pid = 0;
        char partial[1024];
        int rc;

        if (probe->n_ports && !(ports->ports = calloc(probe->n_ports, sizeof(unsigned))))
                return cli_fail(EXIT_EXEC_ENV, "out of memory");
        ports->n = probe->n_ports;
        rc = run_attach_values(EXIT_EXEC_ENV, inst, probe, ports->ports, state_dir, len, &sup_pid,
                               partial, sizeof(partial));
        /* A broken stack is no environment to test against (issue 18). */
        if (rc == 0 && *partial && !cli_has(OPT_ALLOW_PARTIAL))
                rc = cli_fail(EXIT_EXEC_ENV,
                              "'%s' is up but not whole: %s; bring it back with `envrun start "
                              "SERVICE` or `envrun restart SERVICE`, or run anyway with "
                              "--allow-partial",
                              probe->project, partial);
        else if (rc == 0 && *partial && arg_verbosity >= 0)
                cli_fail(0, "running against '%s', which is not whole (--allow-partial): %s",
                         probe->project, partial);
        else if (rc == 0 && arg_verbosity >= 0)
                cli_fail(0, "running against '%s', which is up (supervisor pid %ld)", probe->project,
                         sup_pid);
        if (rc) {
                free(ports->ports);
                ports->ports = NULL;
        }
        return rc;
}

/* This run's own instance directory under base, with logs/ open in
 * *ret_log_fd.  0; EXIT_EXEC_ENV when none was made; -EXIT_EXEC_ENV when
 * one was (the caller removes it); each after saying why. */
static int make_instance(struct er_state *st, const char *base, const char *project,
                         bool for_others, int *ret_log_fd)
{
        int rc = er_state_create_unique(st, base, project);

        if (rc < 0)
                return cli_fail(EXIT_EXEC_ENV, "cannot create an instance directory in '%s': %s",
                                base, strerror(-rc));
        if ((rc = er_state_make_dirs(st, !arg_state_dir)) < 0)
                return -cli_fail(EXIT_EXEC_ENV, "cannot create an instance directory in '%s': %s",
                                 base, strerror(-rc));
        return -run_open_instance(st, base, for_others, ret_log_fd, EXIT_EXEC_ENV);
}

/* Up, the test command (CMD; the file's test:, with ARGs for `test`),
 * down, the report: exec's exit status. */
static int drive(struct run *r, int argc, char **argv, bool test_verb, uint64_t timeout_us)
{
        const struct er_test *t = &r->config->test;
        char **file_cmd = test_verb ? test_with_args(&t->cmd, argc, argv) : t->cmd.argv;
        bool from_file = test_verb || argc == 0;
        int status;

        if (test_verb && !file_cmd)
                return cli_fail(EXIT_EXEC_ENV, "out of memory");
        er_sched_set_abort_on_failure(r->sched, cli_has(OPT_ABORT));
        /* A test program that is not there fails before anything starts. */
        bool can_run = er_sched_plan_test(r->sched, from_file ? file_cmd : argv,
                                          from_file ? t->cmd.cwd : NULL, from_file) == 0;
        if (can_run)
                run_engine_up(r, NULL);
        if (can_run && !er_sched_failed(r->sched) && !er_sched_exec_status(r->sched)) {
                if (!from_file)
                        er_sched_run_test(r->sched, argv, NULL, false, timeout_us);
                else
                        er_sched_run_test(r->sched, file_cmd, t->cmd.cwd, true,
                                          timeout_us ? timeout_us : t->timeout_us);
                run_drive(r, er_sched_test_done);
        }
        run_engine_down(r);
        status = er_sched_exec_status(r->sched);
        if (run_print_report(r->sched, stderr, true, -1))
                status = status ? status : EXIT_EXEC_ENV;
        if (test_verb) {
                if (t->cmd.shell)
                        free(file_cmd[2]);
                free(file_cmd);
        }
        return status;
}

static int exec_or_test(int argc, char **argv, bool test_verb)
{
        struct run r;
        struct run_engine engine;
        struct er_ports ports;
        struct er_state st;
        struct er_records rec;
        char base[4096], up_inst[4200], tmpdir[4300], up_state[4300];
        uint64_t t0 = er_now_us(), timeout_us = 0;
        int status = EXIT_EXEC_ENV, log_fd = -1, rc;
        const char *path = NULL;
        bool *only = NULL, attached = false;
        struct er_config *probe = NULL;
        struct er_doc *doc = NULL; /* the file, read once for both passes */

        run_init(&r);
        er_ports_init(&ports);
        er_state_init(&st);
        er_records_init(&rec);
        if ((rc = first_pass(argc, test_verb, &timeout_us, &path, &probe, &doc)))
                return rc;
        bool for_others = run_for_others(probe);
        if ((rc = er_state_base(arg_state_dir, for_others, base, sizeof(base))) < 0) {
                er_config_free(probe);
                er_doc_free(doc);
                return run_state_base_fail(EXIT_EXEC_ENV, base, rc);
        }
        snprintf(up_inst, sizeof(up_inst), "%s/%s", base, probe->project);
        /* What crashed runs of this project left behind goes first (§5.7). */
        run_reap_stale_execs(base, probe->project);
        run_reap_stale_up(up_inst, probe->project, false);
        if (er_state_probe(up_inst) == 1) {
                /* An `up -d` instance holds the environment: run CMD against it. */
                attached = true;
                if ((rc = attach(probe, up_inst, &ports, up_state, sizeof(up_state)))) {
                        er_config_free(probe);
                        er_doc_free(doc);
                        return rc;
                }
        }
        rc = make_instance(&st, base, probe->project, for_others && !attached, &log_fd);
        if (rc) {
                er_config_free(probe);
                if (rc > 0)
                        goto out_ports; /* nothing was made */
                goto out_rm;
        }
        snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", er_state_data_dir(&st));
        rc = attached ? 0 : er_ports_allocate(&ports, base, probe->n_ports);
        if (rc == 0 && attached)
                only = calloc(probe->n_services ? probe->n_services : 1, sizeof(*only));
        er_config_free(probe);
        if (rc < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot allocate ports: %s", strerror(-rc));
                goto out_rm;
        }
        if (attached && !only) {
                cli_fail(EXIT_EXEC_ENV, "out of memory");
                goto out_rm;
        }

        /* The real pass: every value known. */
        if (!(r.config = run_load_final(&doc, path, attached ? up_state : tmpdir, ports.ports)))
                goto out_rm;
        if (run_prepare_display(&r) < 0) {
                cli_fail(EXIT_EXEC_ENV, "out of memory");
                goto out_config;
        }
        r.on_state = run_record_spawn;
        struct run_start start = {
                .st = &st,
                .rec = &rec,
                .log_dir_fd = log_fd,
                .state_dir = attached ? up_state : tmpdir,
                .ports = ports.ports,
                .t0_us = t0,
                .only = only,
                .want_lines = arg_verbosity > 0,
                .fail = EXIT_EXEC_ENV,
        };
        if (run_engine_start(&r, &engine, &start) == 0)
                status = drive(&r, argc, argv, test_verb, timeout_us);
        run_engine_fini(&r, &engine);
out_config:
        run_fini_display(&r);
        er_config_free(r.config);
out_rm:
        er_close(&log_fd);
        er_state_remove(&st, false);
out_ports:
        er_doc_free(doc);
        er_state_fini(&st);
        er_records_fini(&rec);
        free(only);
        if (attached)
                free(ports.ports);
        else
                er_ports_release(&ports);
        return status;
}

int verb_exec(int argc, char **argv)
{
        return exec_or_test(argc, argv, false);
}

int verb_test(int argc, char **argv)
{
        return exec_or_test(argc, argv, true);
}
