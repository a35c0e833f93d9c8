/* listen: where a process tree listens (listen.h).  A socket of a process
 * is a link "socket:[INODE]" in /proc/PID/fd; the kernel's tables of
 * sockets (/proc/net/tcp, tcp6, unix) give each inode's state and address. */
#include "proc/listen.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INODES 512

struct inodes {
        unsigned long v[MAX_INODES];
        size_t n;
};

static void collect_inodes(pid_t pid, struct inodes *in)
{
        char path[64], link[64];
        struct dirent *d;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        if (!(dir = opendir(path)))
                return; /* gone, or not ours to read */
        while ((d = readdir(dir)) && in->n < MAX_INODES) {
                ssize_t n = readlinkat(dirfd(dir), d->d_name, link, sizeof(link) - 1);
                unsigned long ino;
                if (n <= 0)
                        continue;
                link[n] = '\0';
                if (sscanf(link, "socket:[%lu]", &ino) == 1)
                        in->v[in->n++] = ino;
        }
        closedir(dir);
}

static bool has_inode(const struct inodes *in, unsigned long ino)
{
        for (size_t i = 0; i < in->n; i++)
                if (in->v[i] == ino)
                        return true;
        return false;
}

/* Appends addr to the ", "-separated list in buf unless it is there
 * already, whole (two processes may share a socket; 127.0.0.1:80 is not
 * 127.0.0.1:8080). */
static void append(char *buf, size_t len, const char *addr)
{
        size_t used = strlen(buf), al = strlen(addr);

        for (const char *p = buf; *p;) {
                const char *end = strstr(p, ", ");
                size_t n = end ? (size_t)(end - p) : strlen(p);
                if (n == al && memcmp(p, addr, al) == 0)
                        return;
                p += n + (end ? 2 : 0);
        }
        snprintf(buf + used, len - used, "%s%s", used ? ", " : "", addr);
}

/* "0100007F:C8A3" (tcp) or 32 hex digits (tcp6): the kernel prints each
 * 32-bit word of the address as a number in host order, so the number's
 * bytes in memory are the address's, whatever the byte order. */
static void format_inet(const char *hex, char *out, size_t len)
{
        unsigned port = 0;
        const char *colon = strchr(hex, ':');
        size_t hl = colon ? (size_t)(colon - hex) : 0;
        unsigned char a[16];

        if (!colon || (hl != 8 && hl != 32) || sscanf(colon + 1, "%x", &port) != 1) {
                snprintf(out, len, "?");
                return;
        }
        for (size_t w = 0; w < hl / 8; w++) {
                unsigned word;
                char part[9];
                memcpy(part, hex + 8 * w, 8);
                part[8] = '\0';
                sscanf(part, "%x", &word);
                uint32_t w32 = (uint32_t)word;
                memcpy(a + 4 * w, &w32, 4);
        }
        if (hl == 8) {
                snprintf(out, len, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], port);
                return;
        }
        /* IPv4-mapped (::ffff:a.b.c.d) and the usual all-zero prefix. */
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
                snprintf(out, len, "%u.%u.%u.%u:%u", a[12], a[13], a[14], a[15], port);
                return;
        }
        char text[INET6_ADDRSTRLEN];
        if (!inet_ntop(AF_INET6, a, text, sizeof(text)))
                snprintf(text, sizeof(text), "?");
        snprintf(out, len, "[%s]:%u", text, port);
}

/* /proc/net/tcp or tcp6: the listening sockets (state 0A) of in. */
static void scan_inet(const char *table, const struct inodes *in, char *buf, size_t len)
{
        FILE *f = fopen(table, "re");
        char line[512], local[64], st[8], addr[80];
        unsigned long ino;

        if (!f)
                return;
        if (!fgets(line, sizeof(line), f)) {
                fclose(f);
                return; /* the header */
        }
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, " %*s %63s %*s %7s %*s %*s %*s %*s %*s %lu", local, st, &ino) == 3 &&
                    strcmp(st, "0A") == 0 && has_inode(in, ino)) {
                        format_inet(local, addr, sizeof(addr));
                        append(buf, len, addr);
                }
        fclose(f);
}

/* /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; a
 * listening socket has __SO_ACCEPTCON (0x10000) in Flags. */
static void scan_unix(const struct inodes *in, char *buf, size_t len)
{
        FILE *f = fopen("/proc/net/unix", "re");
        char line[4400], path[4200];
        unsigned long flags, ino;

        if (!f)
                return;
        if (!fgets(line, sizeof(line), f)) {
                fclose(f);
                return;
        }
        while (fgets(line, sizeof(line), f)) {
                path[0] = '\0';
                if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %4199s", &flags, &ino, path) >= 2 &&
                    (flags & 0x10000) && has_inode(in, ino) && path[0])
                        append(buf, len, path);
        }
        fclose(f);
}

void er_listening(const pid_t *pids, size_t n, char *buf, size_t len)
{
        struct inodes *in = calloc(1, sizeof(*in));

        if (len)
                buf[0] = '\0';
        if (!in || !len)
                goto out;
        for (size_t i = 0; i < n; i++)
                collect_inodes(pids[i], in);
        if (in->n) {
                scan_inet("/proc/net/tcp", in, buf, len);
                scan_inet("/proc/net/tcp6", in, buf, len);
                scan_unix(in, buf, len);
        }
out:
        free(in);
}
