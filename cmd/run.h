/* run: what the verbs that hold an environment share (exec, up, the
 * detached supervisor): progress display, the signalfd, the event loop
 * drive, the report, and loading the configuration with its ports. */
#ifndef ER_RUN_H
#define ER_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "model/config.h"
#include "proc/contain.h"
#include "proc/loop.h"
#include "instance/ports.h"
#include "sched/sched.h"

struct live_line;
struct er_state;
struct er_records;

struct run {
        struct er_config *config;
        struct er_sched *sched;
        struct er_loop *loop;
        int sfd;
        struct er_io sig_io;
        size_t name_width;
        FILE *progress;          /* where progress lines go: stderr, or up -d's pipe */
        bool live;               /* a terminal and not -q/-v: lines redrawn in place */
        bool live_on;            /* lines are on screen and owned by envrun */
        size_t drawn;            /* lines drawn last time */
        struct live_line *lines;
        struct er_timer tick;
        bool lines_to_stdout;    /* up: service output on stdout, prefixed */
        /* Called for each service output line as well (the supervisor's
         * followers), and for each state change. */
        void (*on_line)(struct run *r, const struct er_sched_event *ev);
        void (*on_state)(struct run *r, const struct er_sched_event *ev);
        void *ud;                /* the on_* callbacks' owner */
        /* The crash clean-up records (SPEC §5.7), kept by run_record_spawn. */
        struct er_state *rec_state;
        struct er_records *records;
        struct er_timer rec_timer;
};

/* Zeroes r and sets fds to -1. */
void run_init(struct run *r);
/* r->config's name width and the live display (progress must be set). */
int run_prepare_display(struct run *r);
void run_fini_display(struct run *r);
/* The sched's on_event: progress lines, live display, prefixed output. */
void run_on_event(void *ud, const struct er_sched_event *ev);
/* Starts or ends a phase of the live display. */
void run_live_phase(struct run *r, bool on);
/* Blocks every signal, saving the old mask, and watches INT/TERM/HUP/CHLD
 * on a signalfd on r->loop.  0, or -errno with nothing left to undo. */
int run_setup_signals(struct run *r, sigset_t *old);
/* Blocks SIGINT, SIGTERM and SIGHUP from before the instance exists, so
 * that one arriving before the loop runs is not a death that leaves the
 * instance's directory: it waits, and the bring-up sees it first thing
 * (run_engine_up starts nothing then). */
void run_hold_stop_signals(void);
void run_fini_signals(struct run *r, const sigset_t *old);
/* Runs the loop until done(sched). */
void run_drive(struct run *r, bool (*done)(const struct er_sched *));

/* --- one way to build and drive an instance (exec, up, the supervisor) --- */

/* What run_engine_start set up, for run_engine_fini to undo. */
struct run_engine {
        struct er_contain contain;
        bool contain_ok, signals_on;
        sigset_t old_mask;
};

/* The instance an engine runs in: its directory and what the scheduler
 * needs besides r->config. */
struct run_start {
        struct er_state *st;          /* records.json is written here */
        struct er_records *rec;
        int log_dir_fd;               /* logs/ */
        const char *state_dir;        /* ENVRUN_STATE_DIR */
        const unsigned *ports;
        uint64_t t0_us;
        const bool *only;             /* up SERVICE...: the services asked for, or NULL */
        bool want_lines;              /* every output line as an event (-v, up) */
        int fail;                     /* the exit status of a failure here */
};

/* An instance directory st just made or taken under base, with its
 * subdirectories made: logs/ opened into *ret_log_fd, and, for_others (a
 * service runs as another user, SPEC §3), the way to tmp/ opened to them.
 * 0, or `fail` after saying why. */
int run_open_instance(struct er_state *st, const char *base, bool for_others, int *ret_log_fd,
                      int fail);

/* After the configuration is loaded (r->config): the event loop, signals,
 * containment, records.json and the scheduler (r->sched), in that order;
 * each step's failure is printed.  0, or o->fail; either way
 * run_engine_fini undoes what was done. */
int run_engine_start(struct run *r, struct run_engine *e, const struct run_start *o);
/* Brings the services up and waits while keep_waiting(r) (NULL: until
 * the bring-up is over). */
void run_engine_up(struct run *r, bool (*keep_waiting)(struct run *r));
/* Takes the environment down and waits for it, with the live display,
 * and writes the last records. */
void run_engine_down(struct run *r);
/* Frees the scheduler, containment, signals and loop. */
void run_engine_fini(struct run *r, struct run_engine *e);

/* Notes the main pid of a service that is starting in r->records, and
 * writes records.json once the current burst of events is over (a timer of
 * 0: 200 services spawned in one loop turn cost one write, not 200). */
void run_record_spawn(struct run *r, const struct er_sched_event *ev);
/* Writes what is pending now and stops the timer (before the loop goes). */
void run_record_flush(struct run *r);

/* The first load: reads the file (once: *ret_doc keeps what was read for
 * run_load_final, the caller frees it with er_doc_free; NULL: not wanted)
 * and learns the project, the ports to allocate and whether a service runs
 * as another user.  Prints errors; NULL on failure. */
struct er_config *run_load_probe(const char *path, struct er_doc **ret_doc);
bool run_for_others(const struct er_config *c);
/* Says why the state base (er_state_base's -errno rc) cannot be used and
 * what to do about it; returns status. */
int run_state_base_fail(int status, const char *base, int rc);
/* The real build from the document read, every value known; frees *doc
 * and sets it NULL.  Prints errors; NULL on failure. */
struct er_config *run_load_final(struct er_doc **doc, const char *path, const char *state_dir,
                                 const unsigned *ports);

/* Prints the text report to f (and writes --report/--junit/--timeline
 * when with_files); exit_status >= 0 replaces exec's in it (the verb's own).
 * 0, or non-zero when a file could not be written. */
int run_print_report(struct er_sched *sched, FILE *f, bool with_files, int exit_status);

/* The ports and ENVRUN_STATE_DIR of the project's running instance (its
 * directory inst), from its supervisor; in partial (when not NULL), what of
 * it is not up ("" when all is: every service ready, or a job completed).
 * 0, or `fail` after printing why. */
int run_attach_values(int fail, const char *inst, const struct er_config *probe, unsigned *ports,
                      char *state_dir, size_t len, long *ret_pid, char *partial, size_t plen);

/* SPEC §5.7: the project's `up -d` instance in dir, if its supervisor died,
 * is cleaned up (survivors killed, the directory removed but tmp/ when
 * keep) and a line says so.  1 when cleaned, 0 when there was nothing to
 * clean (or it is alive), -errno when the clean-up failed (printed). */
int run_reap_stale_up(const char *dir, const char *project, bool keep);
/* The same for the project's crashed `exec` runs under base. */
void run_reap_stale_execs(const char *base, const char *project);
const char *run_plural(unsigned n, const char *one, const char *many);

bool run_getenv_true(const char *name);
/* ENVRUN_FORCE_REAPER (or its old name ENVRUN_FORCE_SESSION): the reaper
 * containment even where a cgroup could be made (tests, benchmarks). */
bool run_force_reaper(void);
/* "12:03:04.512" */
void run_stamp(char *buf, size_t len);

/* A digest of the file's bytes (16 hex digits) into out: an instance keeps
 * the one of the file it was started with (status's config_digest), so
 * that `up` can say the file changed since.  0 or -errno. */
int run_config_digest(const char *path, char *out, size_t len);

/* A string of a JSON object, or "" (a status from the control API). */
const char *run_jstr(json_t *o, const char *key);
/* Whether a service of the control API's status is up: ready, or a job
 * that completed. */
bool run_service_up(json_t *svc);

#endif
