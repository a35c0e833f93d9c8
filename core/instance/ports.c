/* ports: see ports.h. */
#include "instance/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "instance/state.h"

void er_ports_init(struct er_ports *p)
{
        p->ports = NULL;
        p->lock_fds = NULL;
        p->n = 0;
}

static int pick(unsigned *ret)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                r = -errno;
        else
                *ret = ntohs(sa.sin_port);
        close(fd);
        return r;
}

static int lock_port(const char *dir, unsigned port)
{
        char path[4200];
        struct stat sb;
        int fd;

        snprintf(path, sizeof(path), "%s/%u.lock", dir, port);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
        if (fd < 0)
                return errno == ELOOP ? -EPERM : -errno;
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid()) {
                close(fd);
                return -EPERM; /* planted: not a lock file of ours */
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                close(fd);
                return r == -EWOULDBLOCK ? -EBUSY : r;
        }
        return fd;
}

int er_ports_allocate(struct er_ports *p, const char *base, size_t n)
{
        char dir[4100];
        int r;

        if (n == 0)
                return 0;
        snprintf(dir, sizeof(dir), "%s/ports", base);
        /* A directory of ours, not a symlink planted to point elsewhere. */
        if ((r = er_state_mkdir(dir, 0700)) < 0)
                return r;
        p->ports = calloc(n, sizeof(*p->ports));
        p->lock_fds = calloc(n, sizeof(*p->lock_fds));
        if (!p->ports || !p->lock_fds)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unsigned tries = 0;
                for (;;) {
                        bool dup = false;
                        unsigned port = 0;
                        if (++tries > ER_PORTS_MAX_TRIES)
                                return -EADDRINUSE;
                        if ((r = pick(&port)) < 0)
                                return r;
                        for (size_t j = 0; j < p->n && !dup; j++)
                                dup = p->ports[j] == port;
                        if (dup)
                                continue;
                        r = lock_port(dir, port);
                        if (r == -EBUSY)
                                continue;
                        if (r < 0)
                                return r;
                        p->ports[p->n] = port;
                        p->lock_fds[p->n] = r;
                        p->n++;
                        break;
                }
        }
        return 0;
}

void er_ports_release(struct er_ports *p)
{
        /* Lock files stay: removing one while another instance is about to
         * lock it would let two instances lock different inodes of one
         * name.  They are empty and one per port ever used. */
        for (size_t i = 0; i < p->n; i++)
                er_close(&p->lock_fds[i]);
        free(p->ports);
        free(p->lock_fds);
        er_ports_init(p);
}
