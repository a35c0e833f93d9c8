/* procinfo: prints what a spawned process inherited, one fact per line, for
 * tests/unit/test_spawn.c (STYLE §6: prove the mechanism, as tini does).
 *
 *   pid N, ppid N, pgid N, sid N, uid N, gid N, groups A,B (sorted, may be
 *   empty), SigBlk HEX, SigIgn HEX (from /proc/self/status), fds 0,1,2 (the
 *   open fds, without the one listing them), cwd PATH, pdeathsig N,
 *   envc N (size of the environment), then "arg X" for each argv element
 *   and "env VALUE" when ENVRUN_T is set. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char **environ;

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *)a, y = *(const int *)b;
        return (x > y) - (x < y);
}

static void print_status(const char *key)
{
        char line[512];
        size_t n = strlen(key);
        FILE *f = fopen("/proc/self/status", "re");
        if (!f) {
                printf("%s ?\n", key);
                return;
        }
        while (fgets(line, sizeof(line), f)) {
                if (!strncmp(line, key, n) && line[n] == ':') {
                        char *v = line + n + 1;
                        v += strspn(v, " \t");
                        printf("%s %s", key, v); /* keeps its newline */
                        break;
                }
        }
        fclose(f);
}

static void print_fds(void)
{
        int fds[1024];
        size_t n = 0;
        struct dirent *e;
        DIR *d = opendir("/proc/self/fd");
        if (!d) {
                printf("fds ?\n");
                return;
        }
        while ((e = readdir(d)) && n < sizeof(fds) / sizeof(fds[0])) {
                if (e->d_name[0] == '.')
                        continue;
                int fd = atoi(e->d_name);
                if (fd != dirfd(d))
                        fds[n++] = fd;
        }
        closedir(d);
        qsort(fds, n, sizeof(fds[0]), cmp_int);
        printf("fds ");
        for (size_t i = 0; i < n; i++)
                printf("%s%d", i ? "," : "", fds[i]);
        printf("\n");
}

static void print_groups(void)
{
        gid_t g[256];
        int n = getgroups((int)(sizeof(g) / sizeof(g[0])), g);
        int v[256];
        printf("groups ");
        for (int i = 0; i < n; i++)
                v[i] = (int)g[i];
        if (n > 0)
                qsort(v, (size_t)n, sizeof(v[0]), cmp_int);
        for (int i = 0; i < n; i++)
                printf("%s%d", i ? "," : "", v[i]);
        printf("\n");
}

int main(int argc, char **argv)
{
        char cwd[PATH_MAX];
        int sig = -1;
        size_t envc = 0;
        const char *t;

        printf("pid %d\n", (int)getpid());
        printf("ppid %d\n", (int)getppid());
        printf("pgid %d\n", (int)getpgrp());
        printf("sid %d\n", (int)getsid(0));
        printf("uid %d\n", (int)getuid());
        printf("gid %d\n", (int)getgid());
        print_groups();
        print_status("SigBlk");
        print_status("SigIgn");
        print_fds();
        printf("cwd %s\n", getcwd(cwd, sizeof(cwd)) ? cwd : "?");
        if (prctl(PR_GET_PDEATHSIG, &sig) < 0)
                sig = -1;
        printf("pdeathsig %d\n", sig);
        for (char **e = environ; e && *e; e++)
                envc++;
        printf("envc %zu\n", envc);
        for (int i = 0; i < argc; i++)
                printf("arg %s\n", argv[i]);
        t = getenv("ENVRUN_T");
        if (t)
                printf("env %s\n", t);
        return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
