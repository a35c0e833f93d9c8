#include <dirent.h>
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc/loop.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Everything here must finish well within this; a hang fails by SIGALRM. */
#define TEST_DEADLINE_S 60

static struct er_loop *new_loop(void)
{
        struct er_loop *loop = NULL;

        assert_int_equal(er_loop_new(&loop), 0);
        assert_non_null(loop);
        return loop;
}

static void make_pipe(int p[2])
{
        assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
}

static void put_byte(int fd)
{
        assert_int_equal(write(fd, "x", 1), 1);
}

static void close_pair(int p[2])
{
        close(p[0]);
        close(p[1]);
}

/* A timestamp in the past, for timers that are due at once. */
static uint64_t past_base(void)
{
        uint64_t now = er_now_us();

        assert_true(now > 20000000u);
        return now - 20000000u;
}

/* ---- I/O ---- */

struct io_rec {
        struct er_io io;
        int calls;
        uint32_t revents;
};

static void io_rec_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct io_rec *r = er_container_of(io, struct io_rec, io);

        (void)loop;
        r->calls++;
        r->revents = revents;
}

static void test_io_pipe_readable(void **state)
{
        struct er_loop *loop = new_loop();
        struct io_rec rec = {0};
        int p[2];

        (void)state;
        make_pipe(p);
        er_io_init(&rec.io);
        assert_false(er_io_active(&rec.io));
        assert_int_equal(er_io_start(loop, &rec.io, p[0], EPOLLIN, io_rec_cb), 0);
        assert_true(er_io_active(&rec.io));

        /* Nothing to read yet. */
        assert_int_equal(er_loop_run_once(loop, 0), 0);
        assert_int_equal(rec.calls, 0);

        put_byte(p[1]);
        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        assert_int_equal(rec.calls, 1);
        assert_true(rec.revents & EPOLLIN);

        er_io_stop(loop, &rec.io);
        assert_false(er_io_active(&rec.io));
        er_io_stop(loop, &rec.io); /* no-op */
        /* Still readable, but no longer watched. */
        assert_int_equal(er_loop_run_once(loop, 0), 0);
        assert_int_equal(rec.calls, 1);

        close_pair(p);
        er_loop_free(loop);
}

static void test_io_start_errors(void **state)
{
        struct er_loop *loop = new_loop();
        struct io_rec a = {0}, b = {0};
        char path[] = "/tmp/test_loop.XXXXXX";
        int p[2], file;

        (void)state;
        make_pipe(p);
        er_io_init(&a.io);
        er_io_init(&b.io);
        assert_int_equal(er_io_start(loop, &a.io, -1, EPOLLIN, io_rec_cb), -EBADF);
        assert_int_equal(er_io_start(loop, &a.io, p[0], EPOLLIN, NULL), -EINVAL);
        assert_false(er_io_active(&a.io));
        assert_int_equal(er_io_modify(loop, &a.io, EPOLLOUT), -EINVAL); /* stopped */

        assert_int_equal(er_io_start(loop, &a.io, p[0], EPOLLIN, io_rec_cb), 0);
        assert_int_equal(er_io_start(loop, &a.io, p[1], EPOLLOUT, io_rec_cb), -EBUSY);
        assert_int_equal(er_io_start(loop, &b.io, p[0], EPOLLIN, io_rec_cb), -EEXIST);
        assert_false(er_io_active(&b.io));

        /* epoll refuses regular files; the error comes back, nothing leaks. */
        file = mkostemp(path, O_CLOEXEC);
        assert_true(file >= 0);
        unlink(path);
        assert_int_equal(er_io_start(loop, &b.io, file, EPOLLIN, io_rec_cb), -EPERM);
        assert_false(er_io_active(&b.io));
        close(file);

        /* A high fd number grows the table. */
        int high = fcntl(p[1], F_DUPFD_CLOEXEC, 900);
        assert_true(high >= 900);
        assert_int_equal(er_io_start(loop, &b.io, high, EPOLLOUT, io_rec_cb), 0);
        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        assert_int_equal(b.calls, 1);
        assert_true(b.revents & EPOLLOUT);
        er_io_stop(loop, &b.io);
        close(high);

        er_io_stop(loop, &a.io);
        close_pair(p);
        er_loop_free(loop);
}

static void test_io_modify_epollout(void **state)
{
        struct er_loop *loop = new_loop();
        struct io_rec rec = {0};
        int sv[2];

        (void)state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        er_io_init(&rec.io);
        assert_int_equal(er_io_start(loop, &rec.io, sv[0], EPOLLIN, io_rec_cb), 0);
        assert_int_equal(er_loop_run_once(loop, 0), 0); /* nothing to read */

        assert_int_equal(er_io_modify(loop, &rec.io, EPOLLOUT), 0);
        assert_int_equal(rec.io.events, EPOLLOUT);
        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        assert_int_equal(rec.calls, 1);
        assert_true(rec.revents & EPOLLOUT);
        assert_false(rec.revents & EPOLLIN);

        assert_int_equal(er_io_modify(loop, &rec.io, EPOLLIN), 0);
        assert_int_equal(er_loop_run_once(loop, 0), 0);
        assert_int_equal(rec.calls, 1);

        er_io_stop(loop, &rec.io);
        close_pair(sv);
        er_loop_free(loop);
}

/* Two readable pipes in one batch: whichever callback runs first switches
 * the other watcher to EPOLLOUT, which a pipe's read end never is.  The
 * batch's EPOLLIN for it is stale and must not be delivered. */
struct switcher {
        struct er_io io;
        int p[2];
        struct switcher *other;
        int calls;
};

static void switcher_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct switcher *me = er_container_of(io, struct switcher, io);

        me->calls++;
        assert_true(revents & EPOLLIN);
        if (me->other->calls == 0)
                assert_int_equal(er_io_modify(loop, &me->other->io, EPOLLOUT), 0);
}

static void test_modify_other_in_same_batch(void **state)
{
        struct er_loop *loop = new_loop();
        struct switcher s[2];

        (void)state;
        memset(s, 0, sizeof(s));
        for (int i = 0; i < 2; i++) {
                s[i].other = &s[1 - i];
                make_pipe(s[i].p);
                put_byte(s[i].p[1]);
                er_io_init(&s[i].io);
                assert_int_equal(er_io_start(loop, &s[i].io, s[i].p[0], EPOLLIN, switcher_cb), 0);
        }
        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        assert_int_equal(s[0].calls + s[1].calls, 1);
        for (int i = 0; i < 2; i++) {
                er_io_stop(loop, &s[i].io);
                close_pair(s[i].p);
        }
        er_loop_free(loop);
}

/* Two readable pipes in one batch: whichever callback runs first stops the
 * other watcher and frees its owner.  Delivering the second event anyway
 * would count twice, and ASan would report the use after free. */
struct peer {
        struct er_io io;
        int p[2];
        struct peer **other; /* slot holding the other peer; NULL when freed */
        int *calls;
};

static void peer_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct peer *me = er_container_of(io, struct peer, io);
        struct peer *victim = *me->other;

        (void)revents;
        (*me->calls)++;
        if (victim) {
                er_io_stop(loop, &victim->io);
                close_pair(victim->p);
                *me->other = NULL;
                free(victim);
        }
}

static void test_stop_other_in_same_batch(void **state)
{
        struct er_loop *loop = new_loop();
        struct peer *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
        struct peer *slot_a, *slot_b;
        int calls = 0;

        (void)state;
        assert_non_null(a);
        assert_non_null(b);
        slot_a = a;
        slot_b = b;
        a->other = &slot_b;
        b->other = &slot_a;
        a->calls = b->calls = &calls;
        make_pipe(a->p);
        make_pipe(b->p);
        er_io_init(&a->io);
        er_io_init(&b->io);
        assert_int_equal(er_io_start(loop, &a->io, a->p[0], EPOLLIN, peer_cb), 0);
        assert_int_equal(er_io_start(loop, &b->io, b->p[0], EPOLLIN, peer_cb), 0);
        put_byte(a->p[1]);
        put_byte(b->p[1]);

        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        assert_int_equal(calls, 1);
        assert_true((slot_a == NULL) != (slot_b == NULL));

        struct peer *survivor = slot_a ? slot_a : slot_b;
        er_io_stop(loop, &survivor->io);
        close_pair(survivor->p);
        free(survivor);
        er_loop_free(loop);
}

/* The first callback stops the other watcher, then puts a fresh, empty pipe
 * on the very same fd number and watches it.  The stale event of the batch
 * must not reach the new watcher: its pipe has nothing to read. */
struct reuse {
        struct er_io a, b, c;
        int pa[2], pb[2], pc[2];
        int a_calls, b_calls, c_calls;
        int first; /* 'a' or 'b' */
};

static void reuse_c_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct reuse *r = er_container_of(io, struct reuse, c);

        (void)loop;
        (void)revents;
        r->c_calls++;
}

static void reuse_take_over(struct er_loop *loop, struct reuse *r, struct er_io *victim, int vp[2])
{
        int num = vp[0];

        er_io_stop(loop, victim);
        make_pipe(r->pc);
        assert_int_equal(dup3(r->pc[0], num, O_CLOEXEC), num); /* closes the old pipe end */
        close(r->pc[0]);
        r->pc[0] = num;
        vp[0] = -1;
        assert_int_equal(er_io_start(loop, &r->c, num, EPOLLIN, reuse_c_cb), 0);
}

static void reuse_a_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct reuse *r = er_container_of(io, struct reuse, a);

        (void)revents;
        r->a_calls++;
        if (!r->first) {
                r->first = 'a';
                reuse_take_over(loop, r, &r->b, r->pb);
        }
}

static void reuse_b_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct reuse *r = er_container_of(io, struct reuse, b);

        (void)revents;
        r->b_calls++;
        if (!r->first) {
                r->first = 'b';
                reuse_take_over(loop, r, &r->a, r->pa);
        }
}

static void test_stale_event_on_reused_fd(void **state)
{
        struct er_loop *loop = new_loop();
        struct reuse r;

        (void)state;
        memset(&r, 0, sizeof(r));
        er_io_init(&r.a);
        er_io_init(&r.b);
        er_io_init(&r.c);
        make_pipe(r.pa);
        make_pipe(r.pb);
        assert_int_equal(er_io_start(loop, &r.a, r.pa[0], EPOLLIN, reuse_a_cb), 0);
        assert_int_equal(er_io_start(loop, &r.b, r.pb[0], EPOLLIN, reuse_b_cb), 0);
        put_byte(r.pa[1]);
        put_byte(r.pb[1]);

        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        assert_int_equal(r.a_calls + r.b_calls, 1);
        assert_int_equal(r.c_calls, 0);
        /* And the new watcher does work. */
        put_byte(r.pc[1]);
        assert_int_equal(er_loop_run_once(loop, 1000000), 2); /* c, and the survivor: unread */
        assert_int_equal(r.c_calls, 1);

        er_io_stop(loop, &r.a);
        er_io_stop(loop, &r.b);
        er_io_stop(loop, &r.c);
        for (int i = 0; i < 2; i++) {
                if (r.pa[i] >= 0)
                        close(r.pa[i]);
                if (r.pb[i] >= 0)
                        close(r.pb[i]);
        }
        close_pair(r.pc);
        er_loop_free(loop);
}

/* A callback stops its own watcher and frees the owner (ASan checks the
 * loop never touches it again), and a timer does the same. */
struct self_owner {
        struct er_io io;
        struct er_timer timer;
        int p[2];
        int *calls;
};

static void self_free_io_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct self_owner *o = er_container_of(io, struct self_owner, io);

        (void)revents;
        (*o->calls)++;
        er_io_stop(loop, &o->io);
        close_pair(o->p);
        er_timer_stop(loop, &o->timer);
        memset(o, 0xa5, sizeof(*o));
        free(o);
}

static void self_free_timer_cb(struct er_loop *loop, struct er_timer *t)
{
        struct self_owner *o = er_container_of(t, struct self_owner, timer);

        (void)loop;
        (*o->calls)++;
        assert_false(er_timer_active(t));
        memset(o, 0xa5, sizeof(*o));
        free(o);
}

static void test_self_stop_and_free(void **state)
{
        struct er_loop *loop = new_loop();
        struct self_owner *o = calloc(1, sizeof(*o)), *t = calloc(1, sizeof(*t));
        int io_calls = 0, timer_calls = 0;

        (void)state;
        assert_non_null(o);
        assert_non_null(t);
        o->calls = &io_calls;
        make_pipe(o->p);
        er_io_init(&o->io);
        er_timer_init(&o->timer);
        /* A far timer the io callback cancels before freeing. */
        assert_int_equal(er_timer_start(loop, &o->timer, 3600000000u, self_free_timer_cb), 0);
        assert_int_equal(er_io_start(loop, &o->io, o->p[0], EPOLLIN | EPOLLRDHUP, self_free_io_cb),
                         0);
        put_byte(o->p[1]);

        t->calls = &timer_calls;
        er_io_init(&t->io);
        er_timer_init(&t->timer);
        assert_int_equal(er_timer_start(loop, &t->timer, 0, self_free_timer_cb), 0);

        /* Both are gone afterwards, so run returns. */
        assert_int_equal(er_loop_run(loop), 0);
        assert_int_equal(io_calls, 1);
        assert_int_equal(timer_calls, 1);
        er_loop_free(loop);
}

/* ---- timers ---- */

#define MAX_FIRED 16

struct tlog {
        struct er_timer t[MAX_FIRED];
        int fired[MAX_FIRED];
        int n;
};

/* The log of the test running; timers are its t[], so t - t[0] is an id. */
static struct tlog *g_log;

static void tlog_record(struct er_loop *loop, struct er_timer *t)
{
        (void)loop;
        assert_false(er_timer_active(t));
        assert_true(g_log->n < MAX_FIRED);
        g_log->fired[g_log->n++] = (int)(t - g_log->t);
}

static void test_timer_order_and_fifo(void **state)
{
        struct er_loop *loop = new_loop();
        struct tlog log;
        uint64_t base = past_base();
        /* timer i gets deadline base + off[i]; equal offsets keep start order */
        static const uint64_t off[] = {50, 10, 30, 10, 40, 10, 30, 0};
        static const int want[] = {7, 1, 3, 5, 2, 6, 4, 0};

        (void)state;
        memset(&log, 0, sizeof(log));
        g_log = &log;
        for (size_t i = 0; i < ARRAY_SIZE(off); i++) {
                er_timer_init(&log.t[i]);
                assert_int_equal(er_timer_start_at(loop, &log.t[i], base + off[i], tlog_record), 0);
                assert_true(er_timer_active(&log.t[i]));
        }
        assert_int_equal(er_loop_run_once(loop, 1000000), (int)ARRAY_SIZE(off));
        assert_int_equal(log.n, (int)ARRAY_SIZE(want));
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                assert_int_equal(log.fired[i], want[i]);

        /* Re-arming moves a timer behind the others of its deadline. */
        memset(&log, 0, sizeof(log));
        for (int i = 0; i < 3; i++) {
                er_timer_init(&log.t[i]);
                assert_int_equal(er_timer_start_at(loop, &log.t[i], base, tlog_record), 0);
        }
        assert_int_equal(er_timer_start_at(loop, &log.t[0], base, tlog_record), 0);
        assert_int_equal(er_loop_run_once(loop, 1000000), 3);
        assert_int_equal(log.fired[0], 1);
        assert_int_equal(log.fired[1], 2);
        assert_int_equal(log.fired[2], 0);

        g_log = NULL;
        er_loop_free(loop);
}

static void test_timer_stop_pending(void **state)
{
        struct er_loop *loop = new_loop();
        struct tlog log;
        uint64_t base = past_base();

        (void)state;
        memset(&log, 0, sizeof(log));
        g_log = &log;
        for (int i = 0; i < 4; i++)
                er_timer_init(&log.t[i]);
        er_timer_stop(loop, &log.t[0]); /* stopping a stopped timer: no-op */
        assert_int_equal(er_timer_start_at(loop, &log.t[0], base + 1, tlog_record), 0);
        assert_int_equal(er_timer_start_at(loop, &log.t[1], base + 2, tlog_record), 0);
        assert_int_equal(er_timer_start(loop, &log.t[2], 3600000000u, tlog_record), 0);
        assert_int_equal(er_timer_start_at(loop, &log.t[3], base + 3, tlog_record), 0);
        er_timer_stop(loop, &log.t[0]); /* the earliest: the timerfd moves on */
        er_timer_stop(loop, &log.t[3]);
        assert_false(er_timer_active(&log.t[0]));
        assert_false(er_timer_active(&log.t[3]));
        assert_int_equal(log.t[0].heap_index, SIZE_MAX);

        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        assert_int_equal(log.n, 1);
        assert_int_equal(log.fired[0], 1);

        /* Only the far timer is left: nothing is due. */
        assert_true(er_timer_active(&log.t[2]));
        assert_int_equal(er_loop_run_once(loop, 0), 0);
        er_timer_stop(loop, &log.t[2]);
        assert_int_equal(log.n, 1);

        /* Stopping the last timer disarms the timerfd: the wait below is not
         * cut short by a wake-up for the 1 ms timer. */
        assert_int_equal(er_timer_start(loop, &log.t[0], 1000, tlog_record), 0);
        er_timer_stop(loop, &log.t[0]);
        uint64_t t0 = er_now_us();
        assert_int_equal(er_loop_run_once(loop, 20000), 0);
        assert_true(er_now_us() - t0 >= 20000);
        assert_int_equal(log.n, 1);

        g_log = NULL;
        er_loop_free(loop);
}

/* One due timer stops another due timer of the same round. */
struct killer {
        struct er_timer a, b;
        int a_calls, b_calls;
};

static void killer_a_cb(struct er_loop *loop, struct er_timer *t)
{
        struct killer *k = er_container_of(t, struct killer, a);

        k->a_calls++;
        er_timer_stop(loop, &k->b);
}

static void killer_b_cb(struct er_loop *loop, struct er_timer *t)
{
        struct killer *k = er_container_of(t, struct killer, b);

        (void)loop;
        k->b_calls++;
}

static void test_timer_stop_from_timer(void **state)
{
        struct er_loop *loop = new_loop();
        struct killer k;
        uint64_t base = past_base();

        (void)state;
        memset(&k, 0, sizeof(k));
        er_timer_init(&k.a);
        er_timer_init(&k.b);
        assert_int_equal(er_timer_start_at(loop, &k.a, base, killer_a_cb), 0);
        assert_int_equal(er_timer_start_at(loop, &k.b, base + 1, killer_b_cb), 0);
        assert_int_equal(er_loop_run(loop), 0);
        assert_int_equal(k.a_calls, 1);
        assert_int_equal(k.b_calls, 0);
        er_loop_free(loop);
}

/* A timer re-arming itself, relative (0) or at a deadline already past,
 * fires once per round: the round cannot spin on it. */
struct rearm {
        struct er_timer t;
        int calls;
        int limit;
        bool absolute;
};

static void rearm_cb(struct er_loop *loop, struct er_timer *t)
{
        struct rearm *r = er_container_of(t, struct rearm, t);

        r->calls++;
        if (r->calls >= r->limit)
                return;
        if (r->absolute)
                assert_int_equal(er_timer_start_at(loop, t, 1, rearm_cb), 0);
        else
                assert_int_equal(er_timer_start(loop, t, 0, rearm_cb), 0);
        assert_true(er_timer_active(t));
}

static void test_timer_rearm_in_callback(void **state)
{
        struct er_loop *loop = new_loop();

        (void)state;
        for (int absolute = 0; absolute < 2; absolute++) {
                struct rearm r = {.limit = 5, .absolute = absolute};

                er_timer_init(&r.t);
                assert_int_equal(er_timer_start(loop, &r.t, 0, rearm_cb), 0);
                for (int round = 1; round <= r.limit; round++) {
                        int n = er_loop_run_once(loop, 1000000);

                        /* The timerfd may wake once with nothing due. */
                        if (n == 0)
                                n = er_loop_run_once(loop, 1000000);
                        assert_int_equal(n, 1);
                        assert_int_equal(r.calls, round);
                }
                assert_false(er_timer_active(&r.t));
                /* Not left armed for ever: run has nothing to do. */
                assert_int_equal(er_loop_run(loop), 0);
                assert_int_equal(r.calls, r.limit);
        }
        er_loop_free(loop);
}

/* A zero timer started with an event pending fires after that event. */
struct order {
        struct er_io io;
        struct er_timer t;
        char seen[4];
        int n;
};

static void order_io_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct order *o = er_container_of(io, struct order, io);

        (void)revents;
        o->seen[o->n++] = 'i';
        er_io_stop(loop, io);
}

static void order_timer_cb(struct er_loop *loop, struct er_timer *t)
{
        struct order *o = er_container_of(t, struct order, t);

        (void)loop;
        o->seen[o->n++] = 't';
}

static void test_timer_zero_after_io(void **state)
{
        struct er_loop *loop = new_loop();
        struct order o;
        int p[2];

        (void)state;
        memset(&o, 0, sizeof(o));
        make_pipe(p);
        put_byte(p[1]);
        er_io_init(&o.io);
        er_timer_init(&o.t);
        assert_int_equal(er_timer_start(loop, &o.t, 0, order_timer_cb), 0);
        assert_int_equal(er_io_start(loop, &o.io, p[0], EPOLLIN, order_io_cb), 0);
        assert_int_equal(er_loop_run(loop), 0);
        assert_int_equal(o.n, 2);
        assert_memory_equal(o.seen, "it", 2);
        close_pair(p);
        er_loop_free(loop);
}

/* Never early; the upper bound only catches a timer that never fires. */
struct stamp {
        struct er_timer t;
        uint64_t at;
};

static void stamp_cb(struct er_loop *loop, struct er_timer *t)
{
        struct stamp *s = er_container_of(t, struct stamp, t);

        (void)loop;
        s->at = er_now_us();
}

static void test_timer_precision(void **state)
{
        struct er_loop *loop = new_loop();

        (void)state;
        for (int i = 0; i < 20; i++) {
                uint64_t after = 2000 + (uint64_t)i * 37; /* 2 ms and not round */
                struct stamp s = {.at = 0};
                uint64_t t0 = er_now_us();

                er_timer_init(&s.t);
                assert_int_equal(er_timer_start(loop, &s.t, after, stamp_cb), 0);
                assert_int_equal(er_loop_run(loop), 0);
                assert_true(s.at != 0);
                if (s.at - t0 < after)
                        fail_msg("timer of %llu us fired after %llu us", (unsigned long long)after,
                                 (unsigned long long)(s.at - t0));
                assert_true(s.at - t0 < 500000);
        }
        er_loop_free(loop);
}

static void test_run_once_timeout(void **state)
{
        struct er_loop *loop = new_loop();
        static const int64_t timeouts[] = {1500, 1001, 2999, 0};

        (void)state;
        /* 1.5 ms rounds up to 2 ms for epoll_wait, never down to 1. */
        for (size_t i = 0; i < ARRAY_SIZE(timeouts); i++) {
                uint64_t t0 = er_now_us();

                assert_int_equal(er_loop_run_once(loop, timeouts[i]), 0);
                if (er_now_us() - t0 < (uint64_t)timeouts[i])
                        fail_msg("run_once(%lld) returned after %llu us", (long long)timeouts[i],
                                 (unsigned long long)(er_now_us() - t0));
        }
        er_loop_free(loop);
}

/* A signal during epoll_wait is retried, not reported. */
static void on_usr1(int sig)
{
        (void)sig;
}

static void test_run_once_eintr(void **state)
{
        struct er_loop *loop = new_loop();
        struct sigaction sa, old;
        struct sigevent sev;
        struct itimerspec its;
        struct stamp s = {.at = 0};
        timer_t posix_timer;

        (void)state;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1; /* no SA_RESTART; epoll_wait ignores it anyway */
        assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
        memset(&sev, 0, sizeof(sev));
        sev.sigev_notify = SIGEV_SIGNAL;
        sev.sigev_signo = SIGUSR1;
        assert_int_equal(timer_create(CLOCK_MONOTONIC, &sev, &posix_timer), 0);
        memset(&its, 0, sizeof(its));
        its.it_value.tv_nsec = 2000000; /* signal at 2 ms, loop timer at 30 ms */
        assert_int_equal(timer_settime(posix_timer, 0, &its, NULL), 0);

        er_timer_init(&s.t);
        assert_int_equal(er_timer_start(loop, &s.t, 30000, stamp_cb), 0);
        int n;
        do
                n = er_loop_run_once(loop, -1);
        while (n == 0);
        assert_int_equal(n, 1);
        assert_true(s.at != 0);

        timer_delete(posix_timer);
        sigaction(SIGUSR1, &old, NULL);
        er_loop_free(loop);
}

/* ---- run / stop ---- */

static void test_run_returns_when_empty(void **state)
{
        struct er_loop *loop = new_loop();
        struct order o;
        int p[2];

        (void)state;
        assert_int_equal(er_loop_run(loop), 0); /* nothing at all */

        /* An io that stops itself and a timer: run ends once both are done. */
        make_pipe(p);
        put_byte(p[1]);
        memset(&o, 0, sizeof(o));
        er_io_init(&o.io);
        er_timer_init(&o.t);
        assert_int_equal(er_io_start(loop, &o.io, p[0], EPOLLIN, order_io_cb), 0);
        assert_int_equal(er_timer_start(loop, &o.t, 3000, order_timer_cb), 0);
        assert_int_equal(er_loop_run(loop), 0);
        assert_int_equal(o.n, 2);
        assert_false(er_io_active(&o.io));
        assert_false(er_timer_active(&o.t));
        close_pair(p);
        er_loop_free(loop);
}

struct stopper {
        struct er_io io;
        int calls;
        int stop_at;
};

static void stopper_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct stopper *s = er_container_of(io, struct stopper, io);

        (void)revents;
        if (++s->calls == s->stop_at)
                er_loop_stop(loop);
}

static void test_loop_stop_from_callback(void **state)
{
        struct er_loop *loop = new_loop();
        struct stopper s = {.stop_at = 3};
        int p[2];

        (void)state;
        make_pipe(p);
        put_byte(p[1]); /* level-triggered and never read: fires every round */
        er_io_init(&s.io);
        assert_int_equal(er_io_start(loop, &s.io, p[0], EPOLLIN, stopper_cb), 0);
        assert_int_equal(er_loop_run(loop), 0);
        assert_int_equal(s.calls, 3);
        assert_true(er_io_active(&s.io));

        /* The stop was consumed: the next run goes on until the next stop. */
        s.stop_at = 5;
        assert_int_equal(er_loop_run(loop), 0);
        assert_int_equal(s.calls, 5);

        /* A stop asked for outside er_loop_run (here from run_once) does not
         * cancel the next run, as in redis's aeMain. */
        s.stop_at = 6;
        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        s.stop_at = 8;
        assert_int_equal(er_loop_run(loop), 0);
        assert_int_equal(s.calls, 8);

        er_io_stop(loop, &s.io);
        close_pair(p);
        er_loop_free(loop);
}

/* ---- the heap under load ---- */

#define MANY 10000

struct many {
        struct er_timer t;
        uint64_t deadline;
        uint64_t order; /* start order, for FIFO among equal deadlines */
        bool stopped;
        bool fired;
};

static struct {
        struct many *v;
        size_t n;
        const struct many *last;
        bool sorted;
} g_many;

static uint64_t xorshift(uint64_t *s)
{
        uint64_t x = *s;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return *s = x;
}

static void many_cb(struct er_loop *loop, struct er_timer *t)
{
        struct many *m = er_container_of(t, struct many, t);
        const struct many *prev = g_many.last;

        (void)loop;
        assert_false(m->stopped);
        assert_false(m->fired);
        m->fired = true;
        if (prev && (prev->deadline > m->deadline ||
                     (prev->deadline == m->deadline && prev->order > m->order)))
                g_many.sorted = false;
        g_many.last = m;
        g_many.n++;
}

static void test_many_timers_sorted(void **state)
{
        struct er_loop *loop = new_loop();
        struct many *v = calloc(MANY, sizeof(*v));
        uint64_t base = past_base(), seed = 0x9e3779b97f4a7c15u, order = 0;
        size_t want = 0;
        int n;

        (void)state;
        assert_non_null(v);
        memset(&g_many, 0, sizeof(g_many));
        g_many.v = v;
        g_many.sorted = true;
        for (size_t i = 0; i < MANY; i++) {
                /* few distinct values: plenty of equal deadlines */
                v[i].deadline = base + xorshift(&seed) % 5000;
                v[i].order = order++;
                er_timer_init(&v[i].t);
                assert_int_equal(er_timer_start_at(loop, &v[i].t, v[i].deadline, many_cb), 0);
        }
        /* Stop some and re-arm others, from everywhere in the heap. */
        for (size_t i = 0; i < MANY; i++) {
                uint64_t r = xorshift(&seed) % 8;

                if (r == 0) {
                        er_timer_stop(loop, &v[i].t);
                        v[i].stopped = true;
                } else if (r == 1) {
                        v[i].deadline = base + xorshift(&seed) % 5000;
                        v[i].order = order++;
                        assert_int_equal(er_timer_start_at(loop, &v[i].t, v[i].deadline, many_cb),
                                         0);
                }
        }
        for (size_t i = 0; i < MANY; i++) {
                if (!v[i].stopped) {
                        want++;
                        /* heap_index is a position: distinct and in range */
                        assert_true(v[i].t.heap_index < MANY);
                } else {
                        assert_int_equal(v[i].t.heap_index, SIZE_MAX);
                }
        }

        n = er_loop_run_once(loop, 1000000);
        assert_int_equal(n, (int)want);
        assert_int_equal(g_many.n, want);
        assert_true(g_many.sorted);
        for (size_t i = 0; i < MANY; i++)
                assert_true(v[i].fired != v[i].stopped);

        free(v);
        memset(&g_many, 0, sizeof(g_many));
        er_loop_free(loop);
}

/* ---- fds ---- */

static bool fd_open(int fd)
{
        return fcntl(fd, F_GETFD) >= 0;
}

static void test_fds_cloexec(void **state)
{
        bool before[256];
        struct er_loop *loop;
        int fresh = 0;

        (void)state;
        for (int fd = 0; fd < 256; fd++)
                before[fd] = fd_open(fd);
        loop = new_loop();
        for (int fd = 0; fd < 256; fd++) {
                if (before[fd] || !fd_open(fd))
                        continue;
                fresh++;
                if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
                        fail_msg("fd %d of the loop is not close-on-exec", fd);
        }
        assert_int_equal(fresh, 2); /* epoll + timerfd */
        er_loop_free(loop);
        er_loop_free(NULL);
        for (int fd = 0; fd < 256; fd++)
                assert_int_equal(fd_open(fd), before[fd]);
}

static int setup_deadline(void **state)
{
        (void)state;
        alarm(TEST_DEADLINE_S);
        return 0;
}

/* ---- batch hooks ---- */

/* A trace of "b" (begin), "i" (an I/O callback), "t" (a timer), "e" (end). */
struct hook_rec {
        struct er_hook hook;
        struct er_io io;
        struct er_timer timer;
        char trace[64];
        size_t n;
        int fd;
};

static void trace_add(struct hook_rec *r, char c)
{
        if (r->n < sizeof(r->trace) - 1)
                r->trace[r->n++] = c;
}

static void hook_rec_cb(struct er_loop *loop, struct er_hook *h, bool end)
{
        (void)loop;
        trace_add(er_container_of(h, struct hook_rec, hook), end ? 'e' : 'b');
}

static void hook_io_cb(struct er_loop *loop, struct er_io *io, uint32_t revents)
{
        struct hook_rec *r = er_container_of(io, struct hook_rec, io);
        char c;
        (void)loop;
        (void)revents;
        assert_int_equal(read(r->fd, &c, 1), 1);
        trace_add(r, 'i');
}

static void hook_timer_cb(struct er_loop *loop, struct er_timer *t)
{
        (void)loop;
        trace_add(er_container_of(t, struct hook_rec, timer), 't');
}

static void test_batch_hooks(void **state)
{
        struct er_loop *loop = new_loop();
        struct hook_rec r = {0}, other = {0};
        int p[2], q[2];

        (void)state;
        make_pipe(p);
        make_pipe(q);
        er_io_init(&r.io);
        er_io_init(&other.io);
        er_timer_init(&r.timer);
        r.fd = p[0];
        other.fd = q[0];
        er_hook_start(loop, &r.hook, hook_rec_cb);
        er_hook_start(loop, &r.hook, hook_rec_cb); /* started once only */
        assert_int_equal(er_io_start(loop, &r.io, p[0], EPOLLIN, hook_io_cb), 0);
        assert_int_equal(er_io_start(loop, &other.io, q[0], EPOLLIN, hook_io_cb), 0);

        /* A wait that times out with nothing: no batch, no hook. */
        assert_int_equal(er_loop_run_once(loop, 0), 0);
        assert_string_equal(r.trace, "");

        /* Two events and a due timer: one batch, one begin, one end. */
        put_byte(p[1]);
        put_byte(q[1]);
        assert_int_equal(er_timer_start(loop, &r.timer, 0, hook_timer_cb), 0);
        {
                struct timespec ts = {0, 2 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        assert_int_equal(er_loop_run_once(loop, 1000000), 3);
        assert_string_equal(r.trace, "bite");
        assert_string_equal(other.trace, "i");

        /* Stopped: not called any more; stopping twice is harmless. */
        er_hook_stop(loop, &r.hook);
        er_hook_stop(loop, &r.hook);
        put_byte(p[1]);
        assert_int_equal(er_loop_run_once(loop, 1000000), 1);
        assert_string_equal(r.trace, "bitei");

        er_io_stop(loop, &r.io);
        er_io_stop(loop, &other.io);
        close_pair(p);
        close_pair(q);
        er_loop_free(loop);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_io_pipe_readable),
            cmocka_unit_test(test_io_start_errors),
            cmocka_unit_test(test_io_modify_epollout),
            cmocka_unit_test(test_stop_other_in_same_batch),
            cmocka_unit_test(test_modify_other_in_same_batch),
            cmocka_unit_test(test_stale_event_on_reused_fd),
            cmocka_unit_test(test_self_stop_and_free),
            cmocka_unit_test(test_timer_order_and_fifo),
            cmocka_unit_test(test_timer_stop_pending),
            cmocka_unit_test(test_timer_stop_from_timer),
            cmocka_unit_test(test_timer_rearm_in_callback),
            cmocka_unit_test(test_timer_zero_after_io),
            cmocka_unit_test(test_timer_precision),
            cmocka_unit_test(test_run_once_timeout),
            cmocka_unit_test(test_run_once_eintr),
            cmocka_unit_test(test_run_returns_when_empty),
            cmocka_unit_test(test_loop_stop_from_callback),
            cmocka_unit_test(test_many_timers_sorted),
            cmocka_unit_test(test_fds_cloexec),
            cmocka_unit_test(test_batch_hooks),
        };

        return cmocka_run_group_tests(tests, setup_deadline, NULL);
}
