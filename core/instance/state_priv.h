/* state_priv: what the instance modules (state, records, cleanup) share:
 * the names in an instance's directory and a few small helpers. */
#ifndef ER_STATE_PRIV_H
#define ER_STATE_PRIV_H

#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCK_NAME "lock"
#define RECORDS_NAME "records.json"
#define RECORDS_TMP "records.json.tmp"
#define SOCK_NAME "control.sock"
#define MARKER_KEY "ENVRUN_MARKER="
#define CG_TOP "envrun"        /* root layout: <mount>/envrun/<instance> */
#define CG_DELEGATED "envrun." /* delegated: <own cgroup>/envrun.<instance> */
#define EXEC_INFIX ".exec."
#define EXEC_SUFFIX_LEN 6      /* mkdtemp's XXXXXX */

static inline long long now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A pid we may signal: never init, the kernel's pid 0, or ourselves. */
static inline bool signallable(pid_t pid)
{
        return pid > 1 && pid != getpid();
}

/* The first error of two. */
static inline int keep_first(int r, int err)
{
        return r < 0 ? r : err;
}

/* The last component of a path ("" for "/"). */
static inline const char *base_name(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

#endif
