/* loop: epoll, an fd-indexed watcher table, and timers in a min-heap behind
 * one timerfd.
 *
 * STYLE §3 sketches data.ptr pointing at the watcher with removal deferred
 * to the end of dispatch.  loop.h's contract is stronger: a callback may
 * free the owner of a watcher it stopped, so the batch must never hold a
 * pointer to a watcher.  As in libuv, epoll's data carries the fd; before
 * each callback the watcher is looked up in the fd table, and er_io_stop
 * also blanks the fd's remaining events of the batch being dispatched
 * (libuv's uv__platform_invalidate_fd), so that a watcher started on a
 * reused fd number within the same batch never gets its predecessor's
 * events. */
#include "proc/loop.h"

#include "base/buf.h"
#include "base/err.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Events taken from the kernel per epoll_wait.  Level-triggered fds left
 * over are reported again; epoll rotates its ready list, so none starves. */
#define LOOP_BATCH 64

struct er_loop {
        int epfd;
        int tfd; /* the one timerfd, armed for heap[0]'s deadline */

        struct er_io **ios; /* indexed by fd; NULL: no watcher */
        size_t nios;
        size_t nactive; /* started watchers */

        struct er_timer **heap; /* min-heap on (deadline_us, seq) */
        size_t nheap, capheap;
        uint64_t next_seq;
        uint64_t armed_us;   /* deadline tfd is armed for; 0: disarmed */
        bool timers_running; /* re-arm tfd once, after the round */

        bool dispatching;
        bool stop;
        struct er_hook *hooks;
        struct epoll_event *batch; /* the events being dispatched, or NULL */
        int nbatch;
};

uint64_t er_now_us(void)
{
        struct timespec ts;

        /* CLOCK_MONOTONIC cannot fail on Linux. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int er_loop_new(struct er_loop **ret)
{
        struct epoll_event ev;
        struct er_loop *loop;
        int r;

        loop = calloc(1, sizeof(*loop));
        if (!loop)
                return -ENOMEM;
        loop->tfd = -1;
        loop->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (loop->epfd < 0) {
                r = -errno;
                goto out_free;
        }
        loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (loop->tfd < 0) {
                r = -errno;
                goto out_close_epoll;
        }
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.fd = loop->tfd;
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->tfd, &ev) < 0) {
                r = -errno;
                goto out_close_timerfd;
        }
        *ret = loop;
        return 0;

out_close_timerfd:
        er_close(&loop->tfd);
out_close_epoll:
        er_close(&loop->epfd);
out_free:
        free(loop);
        return r;
}

void er_loop_free(struct er_loop *loop)
{
        if (!loop)
                return;
        er_close(&loop->tfd);
        er_close(&loop->epfd);
        free(loop->ios);
        free(loop->heap);
        free(loop);
}

/* ---- I/O watchers ---- */

void er_io_init(struct er_io *io)
{
        io->fd = -1;
        io->events = 0;
        io->cb = NULL;
}

bool er_io_active(const struct er_io *io)
{
        return io->fd >= 0;
}

/* Grows the table to hold fd; its size stays below twice the highest fd
 * watched, which RLIMIT_NOFILE bounds. */
static int ios_reserve(struct er_loop *loop, int fd)
{
        size_t old = loop->nios;
        int r;

        r = ER_BUF_RESERVE(loop->ios, loop->nios, (size_t)fd + 1);
        if (r < 0)
                return r;
        /* the new slots watch no fd */
        memset(loop->ios + old, 0, (loop->nios - old) * sizeof(*loop->ios));
        return 0;
}

static struct er_io *ios_get(const struct er_loop *loop, int fd)
{
        if (fd < 0 || (size_t)fd >= loop->nios)
                return NULL;
        return loop->ios[fd];
}

static int io_ctl(struct er_loop *loop, int op, int fd, uint32_t events)
{
        struct epoll_event ev;

        memset(&ev, 0, sizeof(ev)); /* all of data: valgrind checks it */
        ev.events = events;
        ev.data.fd = fd;
        return epoll_ctl(loop->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int er_io_start(struct er_loop *loop, struct er_io *io, int fd, uint32_t events, er_io_cb *cb)
{
        int r;

        if (fd < 0)
                return -EBADF;
        if (!cb)
                return -EINVAL;
        if (io->fd >= 0)
                return -EBUSY;
        r = ios_reserve(loop, fd);
        if (r < 0)
                return r;
        if (loop->ios[fd])
                return -EEXIST;
        r = io_ctl(loop, EPOLL_CTL_ADD, fd, events);
        if (r < 0)
                return r;
        loop->ios[fd] = io;
        loop->nactive++;
        io->fd = fd;
        io->events = events;
        io->cb = cb;
        return 0;
}

int er_io_modify(struct er_loop *loop, struct er_io *io, uint32_t events)
{
        int r;

        if (io->fd < 0 || ios_get(loop, io->fd) != io)
                return -EINVAL;
        r = io_ctl(loop, EPOLL_CTL_MOD, io->fd, events);
        if (r < 0)
                return r;
        io->events = events;
        return 0;
}

/* Blanks fd's not yet dispatched events in the current batch. */
static void batch_forget(struct er_loop *loop, int fd)
{
        for (int i = 0; i < loop->nbatch; i++)
                if (loop->batch[i].data.fd == fd)
                        loop->batch[i].data.fd = -1;
}

void er_io_stop(struct er_loop *loop, struct er_io *io)
{
        int fd = io->fd;

        if (fd < 0)
                return;
        if (ios_get(loop, fd) == io) {
                /* Fails only if the owner closed fd first, which also
                 * removed it from the epoll set: nothing left to undo. */
                (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
                loop->ios[fd] = NULL;
                loop->nactive--;
                batch_forget(loop, fd);
        }
        io->fd = -1;
}

/* ---- timers ---- */

void er_timer_init(struct er_timer *t)
{
        t->deadline_us = 0;
        t->heap_index = SIZE_MAX;
        t->seq = 0;
        t->cb = NULL;
}

bool er_timer_active(const struct er_timer *t)
{
        return t->heap_index != SIZE_MAX;
}

static bool timer_less(const struct er_timer *a, const struct er_timer *b)
{
        if (a->deadline_us != b->deadline_us)
                return a->deadline_us < b->deadline_us;
        return a->seq < b->seq;
}

/* Checks the heap itself, not just heap_index: a timer of another loop or
 * a stale index is never mistaken for one of ours. */
static bool timer_queued(const struct er_loop *loop, const struct er_timer *t)
{
        return t->heap_index < loop->nheap && loop->heap[t->heap_index] == t;
}

static void heap_put(struct er_loop *loop, size_t i, struct er_timer *t)
{
        loop->heap[i] = t;
        t->heap_index = i;
}

static void heap_up(struct er_loop *loop, size_t i)
{
        struct er_timer *t = loop->heap[i];

        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (!timer_less(t, loop->heap[parent]))
                        break;
                heap_put(loop, i, loop->heap[parent]);
                i = parent;
        }
        heap_put(loop, i, t);
}

static void heap_down(struct er_loop *loop, size_t i)
{
        struct er_timer *t = loop->heap[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= loop->nheap)
                        break;
                if (c + 1 < loop->nheap && timer_less(loop->heap[c + 1], loop->heap[c]))
                        c++;
                if (!timer_less(loop->heap[c], t))
                        break;
                heap_put(loop, i, loop->heap[c]);
                i = c;
        }
        heap_put(loop, i, t);
}

/* Restores the heap after heap[i]'s key changed either way. */
static void heap_fix(struct er_loop *loop, size_t i)
{
        if (i > 0 && timer_less(loop->heap[i], loop->heap[(i - 1) / 2]))
                heap_up(loop, i);
        else
                heap_down(loop, i);
}

static void heap_remove(struct er_loop *loop, struct er_timer *t)
{
        size_t i = t->heap_index;
        struct er_timer *last = loop->heap[--loop->nheap];

        t->heap_index = SIZE_MAX;
        if (last == t)
                return;
        heap_put(loop, i, last);
        heap_fix(loop, i);
}

/* Arms the timerfd for the earliest deadline, or disarms it.  Deferred
 * while a timer round runs, which pops and pushes many times. */
static int timerfd_update(struct er_loop *loop)
{
        uint64_t want = loop->nheap ? loop->heap[0]->deadline_us : 0;
        struct itimerspec its;

        if (loop->timers_running || want == loop->armed_us)
                return 0;
        memset(&its, 0, sizeof(its));
        its.it_value.tv_sec = (time_t)(want / 1000000u);
        its.it_value.tv_nsec = (long)(want % 1000000u) * 1000;
        if (timerfd_settime(loop->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                return -errno; /* armed_us still says what tfd holds */
        loop->armed_us = want;
        return 0;
}

int er_timer_start_at(struct er_loop *loop, struct er_timer *t, uint64_t deadline_us,
                      er_timer_cb *cb)
{
        int r;

        if (!cb)
                return -EINVAL;
        /* An all-zero it_value would disarm the timerfd; 1 us is as past. */
        if (deadline_us == 0)
                deadline_us = 1;
        if (!timer_queued(loop, t)) {
                if (ER_BUF_RESERVE(loop->heap, loop->capheap, loop->nheap + 1) < 0) {
                        t->heap_index = SIZE_MAX;
                        return -ENOMEM;
                }
                loop->heap[loop->nheap] = t;
                t->heap_index = loop->nheap++;
        }
        t->deadline_us = deadline_us;
        t->seq = loop->next_seq++;
        t->cb = cb;
        heap_fix(loop, t->heap_index);
        r = timerfd_update(loop);
        if (r < 0) {
                /* A timer that could never fire must not look armed. */
                heap_remove(loop, t);
                (void)timerfd_update(loop);
                return r;
        }
        return 0;
}

int er_timer_start(struct er_loop *loop, struct er_timer *t, uint64_t after_us, er_timer_cb *cb)
{
        uint64_t now = er_now_us();
        uint64_t deadline = after_us > UINT64_MAX - now ? UINT64_MAX : now + after_us;

        return er_timer_start_at(loop, t, deadline, cb);
}

void er_timer_stop(struct er_loop *loop, struct er_timer *t)
{
        if (!timer_queued(loop, t))
                return;
        heap_remove(loop, t);
        /* Nothing to report: if disarming fails, tfd fires early and the
         * round finds nothing due. */
        (void)timerfd_update(loop);
}

/* Fires every timer due at the start of the round, in (deadline, seq)
 * order.  Timers (re)armed by these callbacks get a seq at or past `limit`
 * and wait for the next round, even with after_us 0: a timer re-arming
 * itself cannot spin here. */
static int run_timers(struct er_loop *loop)
{
        uint64_t now = er_now_us();
        uint64_t limit = loop->next_seq;
        uint64_t expirations;
        int ran = 0;

        /* EAGAIN when a callback of this batch re-armed tfd since
         * epoll_wait: then tfd is armed for armed_us still. */
        if (read(loop->tfd, &expirations, sizeof(expirations)) == (ssize_t)sizeof(expirations))
                loop->armed_us = 0; /* a one-shot timerfd disarms on expiry */

        loop->timers_running = true;
        while (loop->nheap) {
                struct er_timer *t = loop->heap[0];
                if (t->deadline_us > now || t->seq >= limit)
                        break;
                heap_remove(loop, t);
                /* t is not touched after its callback, which may free it. */
                t->cb(loop, t);
                if (ran < INT_MAX)
                        ran++;
        }
        loop->timers_running = false;
        return ran;
}

/* ---- running ---- */

static int wait_events(struct er_loop *loop, struct epoll_event *evs, int64_t timeout_us)
{
        uint64_t end = 0;

        if (timeout_us >= 0)
                end = er_now_us() + (uint64_t)timeout_us;
        for (;;) {
                int ms = -1;
                int n;

                if (timeout_us >= 0) {
                        uint64_t now = er_now_us();
                        uint64_t left = end > now ? end - now : 0;
                        /* Rounded up: epoll must not wake before the time. */
                        ms = left / 1000u >= INT_MAX ? INT_MAX : (int)((left + 999u) / 1000u);
                }
                n = epoll_wait(loop->epfd, evs, LOOP_BATCH, ms);
                if (n >= 0)
                        return n;
                if (errno != EINTR)
                        return -errno;
        }
}

static int dispatch_io(struct er_loop *loop, bool *timers_due)
{
        int ran = 0;

        for (int i = 0; i < loop->nbatch; i++) {
                int fd = loop->batch[i].data.fd;
                struct er_io *io;
                uint32_t revents;

                if (fd == loop->tfd) {
                        *timers_due = true;
                        continue;
                }
                /* fd -1: stopped by an earlier callback of this batch. */
                io = ios_get(loop, fd);
                if (!io)
                        continue;
                /* A callback may have modified io's mask since the wait. */
                revents = loop->batch[i].events & (io->events | EPOLLERR | EPOLLHUP);
                if (!revents)
                        continue;
                io->cb(loop, io, revents);
                ran++;
        }
        return ran;
}

bool er_loop_dispatching(const struct er_loop *loop)
{
        return loop->dispatching;
}

void er_hook_start(struct er_loop *loop, struct er_hook *h, er_hook_cb *cb)
{
        if (h->cb)
                return;
        h->cb = cb;
        h->next = loop->hooks;
        loop->hooks = h;
}

void er_hook_stop(struct er_loop *loop, struct er_hook *h)
{
        struct er_hook **pp = &loop->hooks;

        if (!h->cb)
                return;
        while (*pp && *pp != h)
                pp = &(*pp)->next;
        if (*pp)
                *pp = h->next;
        h->next = NULL;
        h->cb = NULL;
}

static void run_hooks(struct er_loop *loop, bool end)
{
        for (struct er_hook *h = loop->hooks; h; h = h->next)
                h->cb(loop, h, end);
}

int er_loop_run_once(struct er_loop *loop, int64_t timeout_us)
{
        struct epoll_event evs[LOOP_BATCH];
        bool timers_due = false;
        int n, ran, r;

        /* The batch and the timer round are not reentrant. */
        if (loop->dispatching)
                return -EBUSY;
        n = wait_events(loop, evs, timeout_us);
        if (n < 0)
                return n;

        loop->dispatching = true;
        if (n > 0)
                run_hooks(loop, false);
        loop->batch = evs;
        loop->nbatch = n;
        ran = dispatch_io(loop, &timers_due);
        loop->batch = NULL;
        loop->nbatch = 0;
        /* Timers after the batch's I/O: after_us 0 means "after pending I/O". */
        if (timers_due) {
                int t = run_timers(loop);
                ran = t > INT_MAX - ran ? INT_MAX : ran + t;
        }
        if (n > 0)
                run_hooks(loop, true);
        loop->dispatching = false;

        r = timerfd_update(loop);
        return r < 0 ? r : ran;
}

int er_loop_run(struct er_loop *loop)
{
        int r = 0;

        /* A stop requested outside er_loop_run (say, from a callback run
         * by er_loop_run_once) does not cancel the next run, as in redis. */
        loop->stop = false;
        while (!loop->stop && (loop->nactive > 0 || loop->nheap > 0)) {
                r = er_loop_run_once(loop, -1);
                if (r < 0)
                        break;
                r = 0;
        }
        loop->stop = false;
        return r;
}

void er_loop_stop(struct er_loop *loop)
{
        loop->stop = true;
}
