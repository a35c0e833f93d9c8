/* outq: envrun's standard output and error while it holds an environment,
 * written without ever blocking the loop.
 *
 * A reader that stops reading (a pager left open, a CI log collector that
 * stalls, a terminal stopped with Ctrl-S) must not stop supervision: the
 * loop would block in write(2), and with it readiness, `status` and `down`
 * from another terminal.  outq_begin swaps stdout (when asked) and stderr
 * for stdio streams (fopencookie) whose writes go to a private
 * non-blocking description of the same file: /proc/self/fd/N reopened
 * for a pipe or a terminal (O_NONBLOCK on the inherited description would
 * reach CMD and the caller's shell, which share it), send(MSG_DONTWAIT) on
 * a socket.  What the reader cannot take yet waits in a queue of at most
 * OUTQ_MAX bytes, drained by an er_io on the loop; a write that does not
 * fit is dropped whole and counted.  A regular file is written as before
 * (it does not stall), and so is anything /proc cannot reopen.
 *
 * outq_end (before the loop goes) drains the queue while the reader makes
 * progress, giving up after OUTQ_IDLE_MS without any; the streams stay in
 * place until exit, each later write bounded the same way, so the report
 * and the last messages cannot hang envrun either.  Dropped bytes of
 * standard output are reported on standard error. */
#ifndef ER_CMD_OUTQ_H
#define ER_CMD_OUTQ_H

#include <stdbool.h>

#include "proc/loop.h"

#define OUTQ_MAX (1u << 20)
#define OUTQ_IDLE_MS 2000

/* Swaps stderr, and stdout when with_stdout, for queued streams on loop.
 * Idempotent per stream; a stream that cannot be queued stays as it was. */
void outq_begin(struct er_loop *loop, bool with_stdout);
/* Drains (bounded), detaches from the loop, says what was dropped. */
void outq_end(void);

#endif
