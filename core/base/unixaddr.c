/* unixaddr: a unix socket address for any path (unixaddr.h). */
#include "base/unixaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int er_unix_addr(const char *path, struct sockaddr_un *sa, int *dir_fd)
{
        const char *slash = strrchr(path, '/');
        char *dir;
        int n;

        *dir_fd = -1;
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        if (strlen(path) < sizeof(sa->sun_path)) {
                memcpy(sa->sun_path, path, strlen(path) + 1);
                return 0;
        }
        if (!slash || slash == path)
                return -ENAMETOOLONG;
        if (!(dir = strndup(path, (size_t)(slash - path))))
                return -ENOMEM;
        *dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (*dir_fd < 0)
                return -errno;
        n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", *dir_fd,
                     slash + 1);
        if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
                close(*dir_fd);
                *dir_fd = -1;
                return -ENAMETOOLONG;
        }
        return 0;
}
