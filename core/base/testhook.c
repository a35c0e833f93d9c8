/* testhook: see testhook.h. */
#include "base/testhook.h"

#ifdef ENVRUN_TEST_HOOKS

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PHASES_MAX 8

static bool loaded;
static char phases[256];
static char dir[PATH_MAX - 8];
static unsigned done_mask;

static void load(void)
{
        const char *p = getenv("ENVRUN_TEST_HOLD"), *d = getenv("ENVRUN_TEST_HOLD_DIR");

        loaded = true;
        if (p && d && strlen(p) < sizeof(phases) && strlen(d) < sizeof(dir)) {
                strcpy(phases, p);
                strcpy(dir, d);
        }
        unsetenv("ENVRUN_TEST_HOLD");
        unsetenv("ENVRUN_TEST_HOLD_DIR");
}

/* The index of phase in the list, or -1. */
static int listed(const char *phase)
{
        size_t n = strlen(phase);
        int i = 0;

        for (const char *p = phases; *p && i < PHASES_MAX; i++) {
                const char *end = strchrnul(p, ',');
                if ((size_t)(end - p) == n && !strncmp(p, phase, n))
                        return i;
                p = *end ? end + 1 : end;
        }
        return -1;
}

void er_test_hold(const char *phase)
{
        char path[PATH_MAX], line[64], buf[64];
        int i, fd, n;

        if (!loaded)
                load();
        if (!phases[0] || (i = listed(phase)) < 0 || (done_mask & (1U << i)))
                return;
        done_mask |= 1U << i;
        n = snprintf(line, sizeof(line), "%s %d\n", phase, (int)getpid());
        snprintf(path, sizeof(path), "%s/at", dir);
        while ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 && errno == EINTR)
                ;
        if (fd < 0)
                return;
        (void)!write(fd, line, (size_t)n);
        close(fd);
        snprintf(path, sizeof(path), "%s/go", dir);
        while ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno == EINTR)
                ;
        if (fd < 0)
                return;
        while ((n = (int)read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
                ;
        close(fd);
}

#endif
