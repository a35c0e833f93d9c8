/* types: the model's value types (SPEC §3), shared by config, field, the
 * check kinds' configuration side and the engine.  Plain data: this header
 * includes no other envrun header, and no runtime one ever. */
#ifndef ER_TYPES_H
#define ER_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct er_loc {
        unsigned line, col;
};

enum er_cond {
        ER_COND_STARTED,
        ER_COND_READY,
        ER_COND_COMPLETED,
};

enum er_restart {
        ER_RESTART_NO,
        ER_RESTART_ON_FAILURE,
        ER_RESTART_ALWAYS,
};

/* A command, for a service, the test, or an exec probe. */
struct er_cmd {
        char **argv;          /* NULL-terminated; with shell: {"/bin/sh", "-c", string} */
        size_t argc;
        bool shell;
        char *cwd;            /* absolute; NULL for a probe (the service's cwd) */
        struct er_loc loc;    /* of the `command` value */
};

struct er_dep {
        char *name;
        enum er_cond cond;
        struct er_loc loc;    /* of the name */
        size_t index;         /* the service depended on; set by er_validate */
};

/* Unset limits are 0. */
struct er_limits {
        uint64_t memory;      /* bytes */
        uint64_t pids;
        uint64_t cpu_time_us;
};

/* A set of exit statuses 0..255. */
struct er_codes {
        uint64_t bits[4];
};

static inline void er_codes_add(struct er_codes *c, unsigned code)
{
        c->bits[code / 64] |= UINT64_C(1) << (code % 64);
}

static inline bool er_codes_has(const struct er_codes *c, unsigned code)
{
        return code < 256 && (c->bits[code / 64] >> (code % 64)) & 1;
}

/* Which output stream: the output check's `stream:`, and each line a
 * process writes. */
enum er_stream {
        ER_STREAM_BOTH,
        ER_STREAM_STDOUT,
        ER_STREAM_STDERR,
};

/* Frees what cmd owns and zeroes it. */
void er_cmd_fini(struct er_cmd *cmd);

#endif
