/* ctl: the control API server (SPEC §8), HTTP/1.1 + JSON on a unix stream
 * socket, on envrun's event loop.
 *
 * The server listens on a socket file it creates mode 0600 (umask around
 * bind, then chmod); an existing socket at the path is replaced (liveness is
 * the instance's flock, §5.7: the owner holds it before calling er_ctl_new),
 * any other existing file is refused with -EEXIST.  Connections are accepted
 * non-blocking; a peer whose SO_PEERCRED uid is not the owner's is closed at
 * once.  At most `max_conns` connections live at a time: more are accepted,
 * answered 503 and closed.
 *
 * Requests are parsed with http_parser (nodejs's, Debian's libhttp-parser).
 * A request must arrive complete within `timeout_us` (default 5 s; a client
 * that sends part of one and stalls is closed) and within `max_request`
 * bytes, head and body (default 64 KiB; else 413 and close).  A malformed
 * request gets 400, a method other than GET, POST, PUT, PATCH, DELETE gets
 * 405, both with a JSON body {"error": "..."}.  Everything else goes to the
 * owner's `handle` callback, which fills the response: a status and a JSON
 * body, or a streamed response (chunked transfer encoding).
 *
 * One request per connection: every response carries `Connection: close`
 * and the server closes once it is written (no keep-alive, no pipelining:
 * clients of a control socket make one call at a time).  A plain response
 * must be read within `timeout_us` too.  A streamed response lasts as long
 * as the client reads it; its unsent output is bounded by `max_output`
 * (default 1 MiB): a client that stops reading is dropped when it is full.
 * A response known only later (DELETE /v1/environment: the report, once
 * the environment is down) is a stream begun in handle, written and ended
 * when it is ready.  The socket's mode is set with umask around bind: the
 * process is single-threaded.
 * `Expect: 100-continue` is not answered (curl sends it for bodies over
 * 1 MiB only, past the bound anyway: those get 413 once the head is in).
 * A request target must be a path ('/...'; no "*", no absolute URL), else
 * 400.  The path is passed as sent (not percent-decoded); headers are not
 * kept. */
#ifndef ER_CTL_H
#define ER_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "proc/loop.h"

#define ER_CTL_TIMEOUT_US (5u * 1000000u)
#define ER_CTL_MAX_REQUEST (64u * 1024u)
#define ER_CTL_MAX_CONNS 64u
#define ER_CTL_MAX_OUTPUT (1024u * 1024u)

struct er_ctl;
struct er_ctl_resp;
struct er_ctl_stream;

/* A request, valid during the handle call only.  Strings are
 * NUL-terminated; body also has its length (it may hold NUL bytes). */
struct er_ctl_req {
        const char *method; /* "GET", "POST", ... */
        const char *path;   /* "/v1/status", without the query */
        const char *query;  /* "tail=10&follow=1", "" when none */
        const char *body;   /* "" when none */
        size_t body_len;
};

/* Fills resp with er_ctl_resp_json, er_ctl_resp_string, er_ctl_resp_error
 * or er_ctl_resp_stream_begin.  A negative return, or a response left
 * unfilled, answers 500.  The callback must not free the server. */
typedef int er_ctl_handle_cb(void *ud, struct er_ctl_req *req, struct er_ctl_resp *resp);

/* A streamed response's client went away (it closed, or stopped reading
 * until the output bound was reached, or the server is being freed): the
 * stream handle is gone; the owner forgets it. */
typedef void er_ctl_stream_closed_cb(void *ud, struct er_ctl_stream *s);

struct er_ctl_opts {
        const char *path; /* the socket file */
        er_ctl_handle_cb *handle;
        void *ud;
        uint64_t timeout_us; /* 0: ER_CTL_TIMEOUT_US */
        size_t max_request;  /* 0: ER_CTL_MAX_REQUEST */
        size_t max_conns;    /* 0: ER_CTL_MAX_CONNS */
        size_t max_output;   /* 0: ER_CTL_MAX_OUTPUT */
        bool owner_uid_set;  /* false: the owner is geteuid() */
        uid_t owner_uid;
};

/* Creates the socket and starts listening on loop.  0 or -errno
 * (-EEXIST: a file that is not a socket is at the path; -ENAMETOOLONG). */
int er_ctl_new(struct er_loop *loop, const struct er_ctl_opts *opts, struct er_ctl **ret);
/* Closes every connection (a live stream's closed callback runs), stops
 * listening and removes the socket file.  Accepts NULL. */
void er_ctl_free(struct er_ctl *ctl);
/* Serves fd, an already-connected stream socket (one end of a
 * socketpair), like an accepted connection: for the fuzz target and tests,
 * which feed requests without a socket file.  It is made non-blocking; the
 * peer and max_conns checks of accept are skipped (the caller vouches for
 * the peer).  Takes fd in every case (closed on failure).  0 or -errno. */
int er_ctl_adopt_fd(struct er_ctl *ctl, int fd);
/* Connections open now (tests, status). */
size_t er_ctl_nconns(const struct er_ctl *ctl);

/* A JSON response; takes the reference to body (NULL: no body). 0 or -ENOMEM. */
int er_ctl_resp_json(struct er_ctl_resp *resp, int status, json_t *body);
/* A response whose body is a string (copied) of the given content type
 * (NULL: application/json). 0 or -ENOMEM. */
int er_ctl_resp_string(struct er_ctl_resp *resp, int status, const char *content_type,
                       const char *body);
/* A JSON error {"error": msg}. 0 or -ENOMEM. */
int er_ctl_resp_error(struct er_ctl_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Starts a streamed response (Transfer-Encoding: chunked) and returns its
 * handle, NULL on -ENOMEM.  closed is called if the client goes away
 * before er_ctl_stream_end (never from inside an er_ctl_stream_* call). */
struct er_ctl_stream *er_ctl_resp_stream_begin(struct er_ctl_resp *resp, int status,
                                               const char *content_type,
                                               er_ctl_stream_closed_cb *closed, void *ud);
/* Queues one chunk (nothing for len 0) and writes what the socket takes
 * without blocking.  0, or -EPIPE (the client is gone) or -ENOBUFS (it does
 * not read and the output bound is reached): then the stream is closed and
 * freed, its handle must not be used again and closed is not called. */
int er_ctl_stream_write(struct er_ctl_stream *s, const void *buf, size_t len);
/* Ends the stream (the last chunk); the connection closes once it is sent.
 * The handle is gone; closed is not called. */
void er_ctl_stream_end(struct er_ctl_stream *s);

#endif
