/* floor: the ideal runner the benchmarks measure envrun against.
 *
 *   floor READYFILE... -- SERVICE ARGS... [-- SERVICE ARGS...] --- TEST ARGS...
 *
 * Starts every service at once, learns that each is ready from inotify on
 * the directories of the READYFILEs (the fake service records its ready
 * moment by renaming a file into place: one kernel event, no polling), then
 * forks the test, waits for it, and ends every service with SIGKILL.  It
 * checks nothing and reports nothing: whatever envrun does beyond this is
 * envrun's overhead.  Exit status: the test's. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX 1024

static int all_ready(char **files, int n)
{
        for (int i = 0; i < n; i++)
                if (access(files[i], F_OK) != 0)
                        return 0;
        return 1;
}

int main(int argc, char **argv)
{
        char *files[MAX], **svc[MAX], **test = NULL;
        pid_t pids[MAX];
        int nf = 0, ns = 0, i = 1, fd, status = 0;
        char buf[4096];

        while (i < argc && strcmp(argv[i], "--") && nf < MAX)
                files[nf++] = argv[i++];
        while (i < argc && !strcmp(argv[i], "--") && ns < MAX) {
                argv[i++] = NULL;
                svc[ns++] = &argv[i];
                while (i < argc && strcmp(argv[i], "--") && strcmp(argv[i], "---"))
                        i++;
                if (i < argc && !strcmp(argv[i], "---")) {
                        argv[i] = NULL;
                        test = &argv[i + 1];
                        break;
                }
        }
        if (!test || !ns) {
                fprintf(stderr, "usage: floor READYFILE... -- SERVICE... --- TEST...\n");
                return 2;
        }
        fd = inotify_init1(IN_CLOEXEC);
        for (int k = 0; k < nf; k++) {
                char dir[PATH_MAX], *slash;
                snprintf(dir, sizeof(dir), "%s", files[k]);
                slash = strrchr(dir, '/');
                if (slash)
                        *slash = '\0';
                inotify_add_watch(fd, slash ? dir : ".", IN_MOVED_TO | IN_CLOSE_WRITE);
        }
        for (int k = 0; k < ns; k++) {
                pids[k] = fork();
                if (pids[k] == 0) {
                        execvp(svc[k][0], svc[k]);
                        _exit(127);
                }
        }
        while (!all_ready(files, nf))
                if (read(fd, buf, sizeof(buf)) < 0 && errno != EINTR)
                        return 1;
        pid_t t = fork();
        if (t == 0) {
                execvp(test[0], test);
                _exit(127);
        }
        waitpid(t, &status, 0);
        for (int k = 0; k < ns; k++)
                kill(pids[k], SIGKILL);
        for (int k = 0; k < ns; k++)
                waitpid(pids[k], NULL, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
