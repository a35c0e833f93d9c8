/* unixaddr: a unix socket address for any path.  sun_path holds 108 bytes;
 * a longer path (a deep state directory) is reached through its directory:
 * "/proc/self/fd/N/NAME", N an O_PATH descriptor of the directory, which
 * the caller keeps open until bind() or connect() returned. */
#ifndef ER_UNIXADDR_H
#define ER_UNIXADDR_H

#include <sys/socket.h>
#include <sys/un.h>

/* Fills *sa for path; *dir_fd is -1, or the descriptor to close after
 * use.  0, or -errno (-ENAMETOOLONG when even the short form does not fit,
 * or the directory's open failed). */
int er_unix_addr(const char *path, struct sockaddr_un *sa, int *dir_fd);

#endif
