/* routes: the control API's resources (SPEC §8) over a running instance,
 * served by the control server (api/ctl.h):
 *   GET    /v1/status                      the instance and every service
 *   DELETE /v1/environment[?text=1|color][&keep=1]
 *                                          down: answered with the report
 *                                          once everything is stopped
 *   GET    /v1/services/NAME/logs[?tail=N][&follow=1]
 *   POST   /v1/services/NAME/{stop,start,restart}[?wait=0]
 *                                          answered once the service settled
 * Requests that wait (a followed log, an operation, the report) are held
 * as waiters until their event comes from the scheduler, which the owner
 * passes on: every output line (er_routes_on_line), every state change
 * (er_routes_on_state), and, at the end, the report
 * (er_routes_answer_down).  A DELETE sets down_requested (and keep): the
 * owner watches them and takes the environment down. */
#ifndef ER_ROUTES_H
#define ER_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "api/ctl.h"
#include "model/config.h"
#include "proc/contain.h"
#include "sched/sched.h"

struct waiter;

struct er_routes {
        /* what the owner gives, alive as long as the routes serve */
        struct er_sched *sched;
        const struct er_config *config;
        const struct er_contain *contain;
        const unsigned *ports;          /* one per config->ports */
        int log_fd;                     /* logs/, for tails */
        const char *instance_dir;       /* the instance's directory */
        const char *state_dir;          /* ENVRUN_STATE_DIR */
        const char *config_digest;      /* of the file it was started with, or NULL */
        /* what requests asked for */
        bool down_requested, keep;
        struct waiter *waiters;         /* requests held until their event */
};

/* The control server's handler (er_ctl_opts.handle); ud: the routes. */
int er_routes_handle(void *ud, struct er_ctl_req *req, struct er_ctl_resp *resp);
/* A line of a service's output: to its followers. */
void er_routes_on_line(struct er_routes *rt, const struct er_sched_event *ev);
/* A state change: answers the operations that settled. */
void er_routes_on_state(struct er_routes *rt, const struct er_sched_event *ev);
/* After each loop batch: answers the `up SERVICE...` requests whose
 * bring-up is over (its end is decided after the state events). */
void er_routes_after_batch(struct er_routes *rt);
/* Once the environment is down: the report to every DELETE, with the
 * exit status the owner gives it; followers' streams end. */
void er_routes_answer_down(struct er_routes *rt, int exit_status);
/* Frees the waiters left, after the server closed their streams
 * (er_ctl_free). */
void er_routes_fini(struct er_routes *rt);

#endif
