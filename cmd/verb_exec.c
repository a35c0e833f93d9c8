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

int verb_exec(int argc, char **argv)
{
        struct run r;
        struct er_contain contain;
        struct er_ports ports;
        struct er_state st;
        struct er_records rec;
        char base[4096], up_inst[4200], tmpdir[4300], up_state[4300];
        uint64_t t0 = er_now_us(), timeout_us = 0;
        sigset_t old;
        int status = EXIT_EXEC_ENV, log_fd = -1, rc;
        const char *path;
        bool *only = NULL, attached = false;
        long sup_pid = 0;
        struct er_config *probe;

        run_init(&r);
        er_ports_init(&ports);
        er_state_init(&st);
        er_records_init(&rec);
        if (cli_value(OPT_TIMEOUT) && (er_duration_parse(cli_value(OPT_TIMEOUT), &timeout_us) < 0 ||
                                       timeout_us == 0))
                return cli_fail(EXIT_EXEC_ENV, "--timeout must be a duration such as '30s' or '10m', not '%s'",
                                cli_value(OPT_TIMEOUT));
        if (!(path = cli_config_path()))
                return EXIT_EXEC_ENV;

        /* A first pass learns the project name and the ports. */
        if (!(probe = run_load_probe(path)))
                return EXIT_EXEC_ENV;
        if (argc == 0 && !probe->test.present) {
                er_config_free(probe);
                return cli_fail(EXIT_EXEC_ENV,
                                "nothing to run: give a command (envrun exec -- CMD) or a 'test:' in '%s'",
                                path);
        }
        bool for_others = run_for_others(probe);
        if ((rc = er_state_base(arg_state_dir, for_others, base, sizeof(base))) < 0) {
                er_config_free(probe);
                return cli_fail(EXIT_EXEC_ENV, "state directory '%s': %s", base, strerror(-rc));
        }
        snprintf(up_inst, sizeof(up_inst), "%s/%s", base, probe->project);
        /* What crashed runs of this project left behind goes first (§5.7). */
        run_reap_stale_execs(base, probe->project);
        run_reap_stale_up(up_inst, probe->project, false);
        if (er_state_probe(up_inst) == 1) {
                /* An `up -d` instance holds the environment: run CMD against it. */
                attached = true;
                if (probe->n_ports && !(ports.ports = calloc(probe->n_ports, sizeof(unsigned)))) {
                        er_config_free(probe);
                        return cli_fail(EXIT_EXEC_ENV, "out of memory");
                }
                ports.n = probe->n_ports;
                rc = run_attach_values(EXIT_EXEC_ENV, up_inst, probe, ports.ports, up_state, sizeof(up_state), &sup_pid);
                if (rc) {
                        er_config_free(probe);
                        free(ports.ports);
                        return rc;
                }
                if (arg_verbosity >= 0)
                        cli_fail(0, "running against '%s', which is up (supervisor pid %ld)",
                                 probe->project, sup_pid);
        }
        if ((rc = er_state_create_unique(&st, base, probe->project)) < 0 ||
            (rc = er_state_make_dirs(&st)) < 0) {
                er_config_free(probe);
                cli_fail(EXIT_EXEC_ENV, "cannot create an instance directory in '%s': %s", base,
                         strerror(-rc));
                goto out_ports;
        }
        snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", st.dir);
        if ((log_fd = openat(st.dir_fd, "logs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot open '%s/logs': %s", st.dir, strerror(errno));
                er_config_free(probe);
                goto out_rm;
        }
        /* SPEC §3 user: a service running as another user must reach
         * ENVRUN_STATE_DIR: the directories on the way become traversable
         * (not listable) and tmp/ sticky and world-writable like /tmp;
         * logs/ and the records stay private. */
        if (for_others && !attached &&
            (chmod(base, 0711) < 0 || chmod(st.dir, 0711) < 0 || chmod(tmpdir, 01777) < 0)) {
                cli_fail(EXIT_EXEC_ENV, "cannot open '%s' to service users: %s", st.dir, strerror(errno));
                er_config_free(probe);
                goto out_rm;
        }
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
        if (!(r.config = run_load_final(path, attached ? up_state : tmpdir, ports.ports)))
                goto out_rm;
        if (run_prepare_display(&r) < 0) {
                cli_fail(EXIT_EXEC_ENV, "out of memory");
                goto out_config;
        }
        if ((rc = er_loop_new(&r.loop)) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot create the event loop: %s", strerror(-rc));
                goto out_config;
        }
        if ((rc = run_setup_signals(&r, &old)) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot set up signals: %s", strerror(-rc));
                goto out_loop;
        }
        if ((rc = er_contain_init(&contain, r.config->project,
                                  run_force_reaper())) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot set up containment: %s", strerror(-rc));
                goto out_signals;
        }
        if (arg_verbosity > 0)
                fprintf(stderr, "envrun: containment: %s\n", contain.reason);
        if (er_records_from_contain(&rec, &contain) < 0 || er_records_write(&st, &rec) < 0) {
                cli_fail(EXIT_EXEC_ENV, "cannot write '%s/records.json'", st.dir);
                goto out_contain;
        }
        r.on_state = run_record_spawn;
        r.rec_state = &st;
        r.records = &rec;

        struct er_sched_opts so = {
                .config = r.config,
                .loop = r.loop,
                .contain = &contain,
                .log_dir_fd = log_fd,
                .environ = environ,
                .state_dir = attached ? up_state : tmpdir,
                .ports = ports.ports,
                .t0_us = t0,
                .no_pidfd = run_getenv_true("ENVRUN_NO_PIDFD"),
                .want_lines = arg_verbosity > 0,
                .only = only,
                .on_event = run_on_event,
                .ud = &r,
        };
        if ((rc = er_sched_new(&so, &r.sched)) < 0) {
                cli_fail(EXIT_EXEC_ENV, "out of memory");
                goto out_contain;
        }
        er_sched_set_abort_on_failure(r.sched, cli_has(OPT_ABORT));
        er_sched_plan_test(r.sched, argc > 0 ? argv : r.config->test.cmd.argv);
        run_live_phase(&r, true);
        er_sched_up(r.sched);
        run_drive(&r, er_sched_up_done);
        run_live_phase(&r, false);
        if (!er_sched_failed(r.sched) && !er_sched_exec_status(r.sched)) {
                if (argc > 0)
                        er_sched_run_test(r.sched, argv, NULL, false, timeout_us);
                else
                        er_sched_run_test(r.sched, r.config->test.cmd.argv, r.config->test.cmd.cwd,
                                          true, timeout_us ? timeout_us : r.config->test.timeout_us);
                run_drive(&r, er_sched_test_done);
        }
        run_live_phase(&r, true);
        er_sched_down(r.sched, false);
        run_drive(&r, er_sched_down_done);
        run_live_phase(&r, false);
        run_record_flush(&r);
        status = er_sched_exec_status(r.sched);
        if (run_print_report(r.sched, stderr, true, -1))
                status = status ? status : EXIT_EXEC_ENV;
        er_sched_free(r.sched);
        r.sched = NULL;
out_contain:
        er_contain_fini(&contain);
out_signals:
        run_fini_signals(&r, &old);
out_loop:
        er_loop_free(r.loop);
out_config:
        run_fini_display(&r);
        er_config_free(r.config);
out_rm:
        er_close(&log_fd);
        er_state_remove(&st, false);
out_ports:
        er_state_fini(&st);
        er_records_fini(&rec);
        free(only);
        if (attached)
                free(ports.ports);
        else
                er_ports_release(&ports);
        return status;
}
