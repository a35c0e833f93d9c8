/* sched_fixture: an environment for the scheduler's unit tests, made the
 * way envrun makes one: the YAML text through load, config and validate,
 * a loop, containment, and the scheduler itself, logs and
 * ENVRUN_STATE_DIR in a fresh temporary directory.  Included by the
 * tests that need it; everything here is static. */
#ifndef ER_TEST_SCHED_FIXTURE_H
#define ER_TEST_SCHED_FIXTURE_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/config.h"
#include "model/load.h"
#include "model/validate.h"
#include "proc/contain.h"
#include "proc/loop.h"
#include "sched/sched.h"

extern char **environ;

struct sched_fx {
        char dir[64];
        int log_fd;
        struct er_config *c;
        struct er_loop *loop;
        struct er_contain contain;
        struct er_sched *s;
};

/* Everything from yaml; the instance is named `name`. */
static void sched_fx_open(struct sched_fx *f, const char *yaml, const char *name)
        __attribute__((unused));
static void sched_fx_open(struct sched_fx *f, const char *yaml, const char *name)
{
        struct er_config_opts opts = {.environ = environ};
        struct er_errs errs;
        struct er_doc *doc;

        snprintf(f->dir, sizeof(f->dir), "/tmp/test_%s.XXXXXX", name);
        assert_non_null(mkdtemp(f->dir));
        opts.state_dir = f->dir;
        f->log_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->log_fd >= 0);
        er_errs_init(&errs);
        assert_int_equal(er_load_buffer(yaml, strlen(yaml), "/tmp/environment.yml", NULL, &doc, &errs),
                         0);
        assert_int_equal(er_config_build(doc, "/tmp/environment.yml", &opts, &f->c, &errs), 0);
        assert_int_equal(er_validate(f->c, &errs), 0);
        er_doc_free(doc);
        er_errs_fini(&errs);
        assert_int_equal(er_loop_new(&f->loop), 0);
        assert_int_equal(er_contain_init(&f->contain, name, false, true), 0);
        struct er_sched_opts so = {
                .config = f->c,
                .loop = f->loop,
                .contain = &f->contain,
                .log_dir_fd = f->log_fd,
                .environ = environ,
                .state_dir = f->dir,
                .t0_us = er_now_us(),
        };
        assert_int_equal(er_sched_new(&so, &f->s), 0);
}

static int sched_fx_rm(const char *p, const struct stat *st, int fl, struct FTW *ftw)
{
        (void)st, (void)fl, (void)ftw;
        remove(p);
        return 0;
}

static void sched_fx_close(struct sched_fx *f) __attribute__((unused));
static void sched_fx_close(struct sched_fx *f)
{
        /* An event the phase table has no cell for is a scheduler bug;
         * asserted after the cleanup, so a failing row leaves nothing. */
        unsigned unexpected = er_sched_unexpected(f->s);

        er_sched_free(f->s);
        er_contain_fini(&f->contain);
        er_loop_free(f->loop);
        er_config_free(f->c);
        close(f->log_fd);
        nftw(f->dir, sched_fx_rm, 8, FTW_DEPTH | FTW_PHYS);
        assert_int_equal(unexpected, 0);
}

#endif
