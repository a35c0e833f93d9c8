/* runner: the generic runner for every readiness kind: attempts with a
 * backoff for polled kinds, events for the others (checks/runner.h). */
#include "checks/runner.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/units.h"

/* --- the engine side: one runner for every kind ------------------------- */

/* Retries come fast at first and slow down as the wait grows: the delay is
 * a twentieth of the time waited so far, between 250 us and `interval`.  A
 * refused loopback connect costs tens of microseconds, so polling a server
 * that comes up after 5 ms every 250 us, or after 50 ms every 2.5 ms, costs
 * little and adds half a delay on average; one that takes a minute is
 * polled every `interval`.  Attempts over a wait of T: 20 in the first
 * 5 ms, then about 20 ln(T / 5 ms), plus T / interval once the cap is
 * reached (the 1 ms floor this replaced cost ~0.5 ms of latency to a
 * server that starts at once: tests/bench/latency.sh). */
#define MIN_DELAY_US 250
#define DELAY_DIVISOR 20

void er_runner_init(struct er_check_run *run, const struct er_check *c, struct er_loop *loop,
                    const struct er_check_env *env, void *owner,
                    void (*done)(struct er_check_run *, enum er_check_result, const char *))
{
        memset(run, 0, sizeof(*run));
        run->check = c;
        run->loop = loop;
        run->env = env;
        run->owner = owner;
        run->done = done;
        er_timer_init(&run->retry);
}

int er_runner_prepare(struct er_check_run *run, struct er_envlist *extra)
{
        int r = 0;
        if (run->check->ops->prepare)
                r = run->check->ops->prepare(run, extra);
        run->prepared = r == 0;
        return r;
}

uint64_t er_runner_time_left(const struct er_check_run *run)
{
        uint64_t now = er_now_us();
        if (!run->env || !run->env->deadline_us)
                return UINT64_MAX;
        return run->env->deadline_us > now ? run->env->deadline_us - now : 0;
}

static void attempt_now(struct er_check_run *run)
{
        int r;
        run->attempting = true;
        r = run->check->ops->attempt(run);
        if (r < 0 && run->attempting) {
                char why[96];
                snprintf(why, sizeof(why), "cannot attempt: %s", strerror(-r));
                er_runner_attempt_done(run, false, why);
        }
}

static void on_retry(struct er_loop *loop, struct er_timer *t)
{
        struct er_check_run *run = er_container_of(t, struct er_check_run, retry);
        if (run->active)
                attempt_now(run);
}

int er_runner_start(struct er_check_run *run, bool once)
{
        const struct er_check_ops *ops = run->check->ops;

        run->once = once;
        run->active = true;
        run->attempts = 0;
        run->last_error[0] = '\0';
        if (ops->attempt) {
                run->started_us = er_now_us();
                attempt_now(run);
                return 0;
        }
        if (once || !ops->start) {
                run->active = false;
                return -EOPNOTSUPP;
        }
        return ops->start(run);
}

void er_runner_attempt_done(struct er_check_run *run, bool ok, const char *why)
{
        uint64_t interval = run->check->interval_us;

        if (!run->active || !run->attempting)
                return;
        run->attempting = false;
        if (ok) {
                run->active = false;
                run->done(run, ER_CHECK_READY, NULL);
                return;
        }
        run->attempts++;
        snprintf(run->last_error, sizeof(run->last_error), "%s", why ? why : "not ready");
        if (run->once) {
                run->active = false;
                run->done(run, ER_CHECK_FAILED, run->last_error);
                return;
        }
        if (run->attempt_failed)
                run->attempt_failed(run, run->last_error);
        /* Poll fast at first, then back off to `interval`, the longest wait. */
        uint64_t waited = er_now_us() - run->started_us, delay = waited / DELAY_DIVISOR;
        if (delay < MIN_DELAY_US)
                delay = MIN_DELAY_US;
        if (delay > interval)
                delay = interval;
        run->delay_us = delay;
        er_timer_start(run->loop, &run->retry, delay, on_retry);
}

void er_runner_fail(struct er_check_run *run, const char *why)
{
        snprintf(run->last_error, sizeof(run->last_error), "%s", why ? why : "failed");
        run->fatal = true;
        er_runner_stop(run);
        run->done(run, ER_CHECK_FAILED, run->last_error);
}

void er_runner_line(struct er_check_run *run, enum er_stream stream, const char *line, size_t len)
{
        if (run->active && run->check->ops->line)
                run->check->ops->line(run, stream, line, len);
}

bool er_runner_exited(struct er_check_run *run, int code)
{
        return run->active && run->check->ops->exited && run->check->ops->exited(run, code);
}

void er_runner_stop(struct er_check_run *run)
{
        const struct er_check_ops *ops;
        if (!run->check)
                return;
        ops = run->check->ops;
        er_timer_stop(run->loop, &run->retry);
        if (run->attempting && ops->abandon)
                ops->abandon(run);
        run->attempting = false;
        if (ops->cancel)
                ops->cancel(run);
        run->active = false;
}

void er_runner_cancel_priv(struct er_check_run *run)
{
        if (run->check->ops->abandon)
                run->check->ops->abandon(run);
        free(run->priv);
        run->priv = NULL;
}

void er_runner_release(struct er_check_run *run)
{
        if (!run->check)
                return;
        er_runner_stop(run);
        if (run->prepared && run->check->ops->release)
                run->check->ops->release(run);
        run->prepared = false;
}
