/* ctl_client: the CLI's side of the control API (SPEC §8): one HTTP/1.1
 * request over the supervisor's unix socket, the response parsed with
 * http_parser (the same parser the server uses), chunked bodies decoded.
 *
 * Two ways to use it:
 *   - er_ctl_client_call: one request, the whole response in memory (bounded by
 *     ER_CTL_CLIENT_MAX_BODY), within a time limit;
 *   - er_ctl_client_open + er_ctl_client_read: a streamed response (a
 *     followed log), read as it comes; the fd can go into poll() beside
 *     other clients' (`logs -f` of several services).
 * Errors are returned as -errno with a message in err (ECONNREFUSED /
 * ENOENT: nobody listens; ETIMEDOUT; EPROTO: not an HTTP response). */
#ifndef ER_CTL_CLIENT_H
#define ER_CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define ER_CTL_CLIENT_MAX_BODY (16u * 1024u * 1024u)

struct er_ctl_reply {
        int status;            /* 200, 404, ... */
        char *content_type;    /* malloc'd, "" when none */
        char *body;            /* malloc'd, NUL-terminated, decoded from chunks */
        size_t body_len;
};

void er_ctl_client_reply_fini(struct er_ctl_reply *r);

/* Sends `method target` (target: path and query, "/v1/status") with an
 * optional JSON body (NULL: none) to the socket at sock_path and reads the
 * whole response; timeout_us bounds everything (0: no bound, for DELETE
 * /v1/environment, which answers once the environment is down).  0 with
 * *ret filled, or -errno with err. */
int er_ctl_client_call(const char *sock_path, const char *method, const char *target,
                       const char *body, uint64_t timeout_us, struct er_ctl_reply *ret,
                       struct er_err *err);

struct er_ctl_client;

/* Connects and sends the request (blocking, bounded by timeout_us); the
 * response is read with er_ctl_client_read. */
int er_ctl_client_open(const char *sock_path, const char *method, const char *target,
                       uint64_t timeout_us, struct er_ctl_client **ret, struct er_err *err);
/* The socket, to poll for POLLIN. */
int er_ctl_client_fd(const struct er_ctl_client *c);
/* Reads what is there (the fd is non-blocking) and passes decoded body
 * bytes to cb.  Returns 1 while the response goes on, 0 when it ended, or
 * -errno with err (-EPROTO: a malformed response; -ECONNRESET: the server
 * went away mid-response). */
int er_ctl_client_read(struct er_ctl_client *c, void (*cb)(void *ud, const char *buf, size_t len),
                       void *ud, struct er_err *err);
/* The response's status, once its head was read (0 before). */
int er_ctl_client_status(const struct er_ctl_client *c);
void er_ctl_client_free(struct er_ctl_client *c);

#endif
