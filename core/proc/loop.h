/* loop: envrun's one event loop (epoll), in the manner of redis's ae.c and
 * libuv.
 *
 * Watchers are embedded in their owners (libuv's uv__io_t); callbacks find
 * the owner with container_of.  A callback may start or stop any watcher,
 * its own included, and may free the owner of a stopped watcher: events of
 * the current batch for a watcher stopped meanwhile are not delivered
 * (epoll's data carries the fd; the loop checks its fd table before each
 * callback, as libuv does).
 *
 * Time: one timerfd armed for the earliest deadline of a min-heap of timers
 * (nanosecond resolution, unlike epoll_wait's milliseconds).  Times are
 * CLOCK_MONOTONIC microseconds (er_now_us).
 *
 * The loop owns no signal handling: the caller blocks signals, makes a
 * signalfd and watches it like any other fd. */
#ifndef ER_LOOP_H
#define ER_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define er_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct er_loop;
struct er_io;
struct er_timer;

struct er_hook;

typedef void er_io_cb(struct er_loop *loop, struct er_io *io, uint32_t revents);
typedef void er_timer_cb(struct er_loop *loop, struct er_timer *timer);
/* end false: a batch of events is about to be dispatched (everything in it
 * happened before this call); end true: the batch and its timers are done. */
typedef void er_hook_cb(struct er_loop *loop, struct er_hook *hook, bool end);

struct er_io {
        int fd;           /* -1 while stopped */
        uint32_t events;  /* EPOLLIN, EPOLLOUT, ... (EPOLLET allowed) */
        er_io_cb *cb;
};

struct er_timer {
        uint64_t deadline_us; /* absolute, er_now_us() clock */
        size_t heap_index;    /* position in the heap; SIZE_MAX while stopped */
        uint64_t seq;         /* insertion order: equal deadlines fire FIFO */
        er_timer_cb *cb;
};

/* A hook around every batch (libuv's prepare and check handles, as one):
 * for work that is cheaper once per batch than once per event. */
struct er_hook {
        er_hook_cb *cb;
        struct er_hook *next; /* the loop's list; NULL and cb NULL while stopped */
};

/* CLOCK_MONOTONIC in microseconds. */
uint64_t er_now_us(void);

/* Returns 0 or -errno. */
int er_loop_new(struct er_loop **ret);
/* Watchers must have been stopped by their owners; the loop frees only itself. */
void er_loop_free(struct er_loop *loop);

/* Initialises a watcher as stopped (fd -1). */
void er_io_init(struct er_io *io);
/* Starts watching fd for events; the io must be stopped.  0 or -errno. */
int er_io_start(struct er_loop *loop, struct er_io *io, int fd, uint32_t events, er_io_cb *cb);
/* Changes the events of a started watcher. 0 or -errno. */
int er_io_modify(struct er_loop *loop, struct er_io *io, uint32_t events);
/* Stops it (no-op when stopped).  Call before closing the fd. */
void er_io_stop(struct er_loop *loop, struct er_io *io);
bool er_io_active(const struct er_io *io);

void er_timer_init(struct er_timer *t);
/* (Re)arms t to fire once, `after_us` from now (0: on the next iteration,
 * after pending I/O).  Returns 0, or -ENOMEM (the heap could not grow)
 * leaving t stopped. */
int er_timer_start(struct er_loop *loop, struct er_timer *t, uint64_t after_us, er_timer_cb *cb);
/* Arms t for an absolute deadline. */
int er_timer_start_at(struct er_loop *loop, struct er_timer *t, uint64_t deadline_us,
                      er_timer_cb *cb);
void er_timer_stop(struct er_loop *loop, struct er_timer *t);
bool er_timer_active(const struct er_timer *t);

/* Starts or stops a batch hook.  Not from a hook's own callback; one
 * stopped while its batch runs gets no end call. */
/* Whether the loop is dispatching a batch (the caller is inside one of its
 * callbacks): work for the batch's end goes to a hook then. */
bool er_loop_dispatching(const struct er_loop *loop);
void er_hook_start(struct er_loop *loop, struct er_hook *h, er_hook_cb *cb);
void er_hook_stop(struct er_loop *loop, struct er_hook *h);

/* Waits for and dispatches one batch of events (and expired timers).
 * timeout_us: -1 to wait until something happens.  Returns the number of
 * callbacks run, or -errno (EINTR is retried internally). */
int er_loop_run_once(struct er_loop *loop, int64_t timeout_us);
/* Runs until er_loop_stop is called or nothing is left to wait for (no
 * active watcher and no timer).  Returns 0 or -errno. */
int er_loop_run(struct er_loop *loop);
void er_loop_stop(struct er_loop *loop);

#endif
