/* listen: the addresses a process tree listens on, for a report to name
 * when a readiness check waited elsewhere (issue 19: "db listens on
 * 127.0.0.1:51843").  Read from /proc: best effort, never an error. */
#ifndef ER_LISTEN_H
#define ER_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

/* Into buf: the TCP (IPv4, IPv6) and unix stream sockets the n processes
 * listen on, "127.0.0.1:51843, [::1]:51843, /tmp/x/s.sock", or "" (none,
 * or /proc unreadable). */
void er_listening(const pid_t *pids, size_t n, char *buf, size_t len);

#endif
