/* ports: free 127.0.0.1 TCP ports for an instance (SPEC §3.1), reserved so
 * that no two live envrun instances of the same user get the same one: the
 * kernel picks a free port (bind to port 0), and envrun takes an exclusive
 * flock on <base>/ports/<port>.lock, held for the instance's life; a port
 * whose lock is held by another instance is given back and another is
 * picked.  The kernel does not hand out a port still bound, and the lock
 * covers the window between envrun closing its probe socket and the
 * service binding it. */
#ifndef ER_PORTS_H
#define ER_PORTS_H

#include <stddef.h>

#define ER_PORTS_MAX_TRIES 64

struct er_ports {
        unsigned *ports;
        int *lock_fds;
        size_t n;
};

void er_ports_init(struct er_ports *p);
/* Allocates n ports; base is the user's state directory.  0 or -errno. */
int er_ports_allocate(struct er_ports *p, const char *base, size_t n);
/* Releases the locks (removing the lock files) and frees. */
void er_ports_release(struct er_ports *p);

#endif
