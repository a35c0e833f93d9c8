/* state: the base and instance directories (owner checks, symlinks
 * refused), the lock (held, probed, raced with a removal), records.json
 * round trips and refusals, removal without following symlinks or entering
 * mounts, and the clean-up after a dead instance under both containment
 * kinds: every process of its tree is gone, a recorded pid now held by
 * another process is spared.  Runs as root (cgroup2, chown, mount): it
 * fails loudly otherwise.  Every process a test makes is killed by pid and
 * every directory removed by its teardown, even when the test fails. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/config.h"
#include "proc/contain.h"
#include "proc/spawn.h"
#include "instance/cleanup.h"
#include "instance/records.h"
#include "instance/state.h"
#include "proc/pids.h"

#define MAX_PIDS 64
#define DEADLINE_NS (5 * 1000000000LL)
#define NOBODY 65534
#define SLEEP "/bin/sleep"

struct fixture {
        char root[256]; /* the test's temporary directory, removed in teardown */
        char mnt[400];  /* a tmpfs the test mounted, or "" */
        pid_t pids[MAX_PIDS];
        size_t npids;
        struct er_contain c;
        bool c_ok;
        struct er_group g;
        bool g_ok;
        struct er_state st[3];
        struct er_records rec;
        char saved_xdg[512];
        bool had_xdg, xdg_changed;
        char made_tmp_base[64]; /* /tmp/envrun-UID when a test created it */
};

static long long now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap(void)
{
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
}

static void reap_all(void)
{
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
}

static bool fs_is_tmpfs(const char *path)
{
        struct statfs sf;
        return statfs(path, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

static void remember(struct fixture *fx, pid_t pid)
{
        if (pid > 0 && fx->npids < MAX_PIDS)
                fx->pids[fx->npids++] = pid;
}

static bool alive(pid_t pid)
{
        return kill(pid, 0) == 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
        (void)sb;
        (void)type;
        (void)ftw;
        remove(path);
        return 0;
}

static void rm_tree(const char *path)
{
        if (path[0])
                nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        const char *xdg = getenv("XDG_RUNTIME_DIR");

        if (!fx)
                return -1;
        snprintf(fx->root, sizeof(fx->root), "/tmp/test_state.XXXXXX");
        if (!mkdtemp(fx->root)) {
                free(fx);
                return -1;
        }
        for (int i = 0; i < 3; i++)
                er_state_init(&fx->st[i]);
        er_records_init(&fx->rec);
        fx->had_xdg = xdg != NULL;
        if (xdg)
                snprintf(fx->saved_xdg, sizeof(fx->saved_xdg), "%s", xdg);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        long long end = now_ns() + DEADLINE_NS;

        for (size_t i = 0; i < fx->npids; i++)
                kill(fx->pids[i], SIGKILL);
        if (fx->g_ok) {
                er_group_kill(&fx->g);
                while (reap_all(), !er_group_empty(&fx->g) && now_ns() < end)
                        nap();
        }
        for (size_t i = 0; i < fx->npids; i++)
                waitpid(fx->pids[i], NULL, 0);
        reap_all();
        if (fx->g_ok)
                er_group_fini(&fx->g);
        if (fx->c_ok)
                er_contain_fini(&fx->c);
        for (int i = 0; i < 3; i++)
                er_state_fini(&fx->st[i]);
        er_records_fini(&fx->rec);
        if (fx->mnt[0])
                umount2(fx->mnt, MNT_DETACH);
        rm_tree(fx->root);
        if (fx->made_tmp_base[0])
                rmdir(fx->made_tmp_base);
        if (fx->xdg_changed) {
                if (fx->had_xdg)
                        setenv("XDG_RUNTIME_DIR", fx->saved_xdg, 1);
                else
                        unsetenv("XDG_RUNTIME_DIR");
        }
        free(fx);
        return 0;
}

static void need_root(void)
{
        if (geteuid() != 0)
                fail_msg("needs root (tests/run and CI run the unit tests as root)");
}

static void path_in(const struct fixture *fx, char *buf, size_t len, const char *name)
{
        int n = snprintf(buf, len, "%s/%s", fx->root, name);
        assert_true(n > 0 && (size_t)n < len);
}

static void write_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static bool exists(const char *path)
{
        struct stat sb;
        return lstat(path, &sb) == 0;
}

/* A sleeper, with env_entry added to its environment when given (visible in
 * /proc/PID/environ once it has exec'd). */
static pid_t sleeper(struct fixture *fx, char *env_entry)
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                if (env_entry)
                        putenv(env_entry);
                execl(SLEEP, "sleep", "100", (char *)NULL);
                _exit(127);
        }
        remember(fx, pid);
        return pid;
}

/* ---- directories and the base ------------------------------------------- */

static void test_mkdir_owner(void **state)
{
        struct fixture *fx = *state;
        char dir[300], link[300], file[300], other[300], deep[300];
        struct stat sb;

        need_root();
        path_in(fx, dir, sizeof(dir), "d");
        path_in(fx, link, sizeof(link), "link");
        path_in(fx, file, sizeof(file), "file");
        path_in(fx, other, sizeof(other), "other");
        path_in(fx, deep, sizeof(deep), "missing/d");

        assert_int_equal(er_state_mkdir(dir, 0700), 0);
        assert_int_equal(lstat(dir, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0700);
        assert_int_equal(er_state_mkdir(dir, 0700), 0); /* exists: fine */

        /* A symlink to a directory of ours is refused, not followed. */
        assert_int_equal(symlink(dir, link), 0);
        assert_int_equal(er_state_mkdir(link, 0700), -EPERM);
        write_file(file, "x");
        assert_int_equal(er_state_mkdir(file, 0700), -EPERM);
        /* Another user's directory. */
        assert_int_equal(mkdir(other, 0700), 0);
        assert_int_equal(chown(other, NOBODY, NOBODY), 0);
        assert_int_equal(er_state_mkdir(other, 0700), -EPERM);
        assert_int_equal(er_state_mkdir(deep, 0700), -ENOENT);

        /* er_state_open checks the same on the directory it opened. */
        assert_int_equal(er_state_open(&fx->st[0], link, false), -EPERM);
        assert_int_equal(er_state_open(&fx->st[0], link, true), -EPERM);
        assert_int_equal(er_state_open(&fx->st[0], file, false), -EPERM);
        assert_int_equal(er_state_open(&fx->st[0], other, false), -EPERM);
        assert_int_equal(er_state_open(&fx->st[0], deep, false), -ENOENT);
        assert_null(fx->st[0].dir);
        assert_int_equal(fx->st[0].dir_fd, -1);
        assert_int_equal(er_state_open(&fx->st[0], dir, false), 0);
        assert_string_equal(fx->st[0].dir, dir);
        assert_true(fx->st[0].dir_fd >= 0);
        assert_int_equal(fx->st[0].lock_fd, -1);
        er_state_fini(&fx->st[0]);
}

static void test_open_relative(void **state)
{
        struct fixture *fx = *state;
        char cwd[PATH_MAX], want[300];

        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(fx->root), 0);
        assert_int_equal(er_state_open(&fx->st[0], "rel", true), 0);
        assert_int_equal(chdir(cwd), 0);
        path_in(fx, want, sizeof(want), "rel");
        assert_string_equal(fx->st[0].dir, want);
        assert_true(exists(want));
}

static void test_base(void **state)
{
        struct fixture *fx = *state;
        char buf[300], want[300], small[8], link[300], file[300], tmpbase[64];
        struct stat sb;
        bool had_tmpbase;

        need_root();
        path_in(fx, want, sizeof(want), "base");
        assert_int_equal(er_state_base(want, false, buf, sizeof(buf)), 0);
        assert_string_equal(buf, want);
        assert_int_equal(lstat(want, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0700);
        assert_int_equal(er_state_base(want, true, buf, sizeof(buf)), 0); /* override wins */
        assert_string_equal(buf, want);
        assert_int_equal(er_state_base(want, false, small, sizeof(small)), -ENAMETOOLONG);
        assert_int_equal(er_state_base("", false, buf, sizeof(buf)), -EINVAL);

        path_in(fx, link, sizeof(link), "baselink");
        assert_int_equal(symlink(want, link), 0);
        assert_int_equal(er_state_base(link, false, buf, sizeof(buf)), -EPERM);
        path_in(fx, file, sizeof(file), "basefile");
        write_file(file, "");
        assert_int_equal(er_state_base(file, false, buf, sizeof(buf)), -EPERM);

        /* $XDG_RUNTIME_DIR/envrun, unless for others. */
        fx->xdg_changed = true;
        assert_int_equal(setenv("XDG_RUNTIME_DIR", fx->root, 1), 0);
        assert_int_equal(er_state_base(NULL, false, buf, sizeof(buf)), 0);
        path_in(fx, want, sizeof(want), "envrun");
        assert_string_equal(buf, want);
        assert_true(exists(want));

        /* Else a tmpfs where there is one (root: /run; anyone: /dev/shm),
         * else /tmp. */
        if (geteuid() == 0 && fs_is_tmpfs("/run"))
                snprintf(tmpbase, sizeof(tmpbase), "/run/envrun");
        else if (fs_is_tmpfs("/dev/shm"))
                snprintf(tmpbase, sizeof(tmpbase), "/dev/shm/envrun-%u", (unsigned)geteuid());
        else
                snprintf(tmpbase, sizeof(tmpbase), "/tmp/envrun-%u", (unsigned)geteuid());
        had_tmpbase = exists(tmpbase);
        if (!had_tmpbase)
                snprintf(fx->made_tmp_base, sizeof(fx->made_tmp_base), "%s", tmpbase);
        assert_int_equal(er_state_base(NULL, true, buf, sizeof(buf)), 0);
        assert_string_equal(buf, tmpbase);
        assert_true(exists(tmpbase));
        /* A relative XDG_RUNTIME_DIR is not one (the XDG spec). */
        assert_int_equal(setenv("XDG_RUNTIME_DIR", "relative", 1), 0);
        assert_int_equal(er_state_base(NULL, false, buf, sizeof(buf)), 0);
        assert_string_equal(buf, tmpbase);
        assert_int_equal(unsetenv("XDG_RUNTIME_DIR"), 0);
        assert_int_equal(er_state_base(NULL, false, buf, sizeof(buf)), 0);
        assert_string_equal(buf, tmpbase);
}

static void test_make_dirs(void **state)
{
        struct fixture *fx = *state;
        char dir[300], path[400];
        struct stat sb;

        path_in(fx, dir, sizeof(dir), "inst");
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        assert_int_equal(er_state_make_dirs(&fx->st[0], false), 0);
        assert_int_equal(er_state_make_dirs(&fx->st[0], false), 0);
        snprintf(path, sizeof(path), "%s/logs", dir);
        assert_int_equal(lstat(path, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0700);
        snprintf(path, sizeof(path), "%s/tmp", dir);
        assert_int_equal(lstat(path, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        /* A symlink in place of tmp/ is refused. */
        assert_int_equal(rmdir(path), 0);
        assert_int_equal(symlink("/tmp", path), 0);
        assert_int_equal(er_state_make_dirs(&fx->st[0], false), -EPERM);
}

/* An instance directory on a tmpfs (a default base there): logs/ and tmp/
 * in a data directory on disk under /var/tmp/envrun-UID, found again from
 * the instance's path alone (a later clean-up), removed with it, tmp/ kept
 * by keep_tmp; a symlink planted at the data directory is refused.  With
 * data_on_disk false (--state-dir) everything stays in the instance. */
static void test_data_split(void **state)
{
        struct fixture *fx = *state;
        char shm[] = "/dev/shm/envrun-test.XXXXXX", dir[300], data[400], path[500];
        struct er_state again;
        struct stat sb;

        (void)fx;
        if (!fs_is_tmpfs("/dev/shm"))
                fail_msg("needs a tmpfs at /dev/shm (every Linux has one)");
        assert_non_null(mkdtemp(shm));
        snprintf(dir, sizeof(dir), "%s/proj", shm);
        assert_int_equal(er_state_data_path(dir, data, sizeof(data)), 0);
        snprintf(path, sizeof(path), "/var/tmp/envrun-%u/", (unsigned)geteuid());
        assert_true(strncmp(data, path, strlen(path)) == 0);
        assert_non_null(strstr(data, "-proj"));

        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        assert_int_equal(er_state_make_dirs(&fx->st[0], true), 0);
        assert_string_equal(er_state_data_dir(&fx->st[0]), data);
        snprintf(path, sizeof(path), "%s/tmp", data);
        assert_int_equal(lstat(path, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_false(fs_is_tmpfs(path));
        snprintf(path, sizeof(path), "%s/logs", dir);
        assert_int_equal(lstat(path, &sb), -1); /* not in the instance */

        /* Found again from the path (a clean-up), removed with it; keep_tmp
         * keeps tmp/ and its directory. */
        er_state_init(&again);
        assert_int_equal(er_state_open(&again, dir, false), 0);
        assert_true(er_state_has_logs(&again));
        assert_int_equal(er_state_remove(&again, true), 0);
        er_state_fini(&again);
        snprintf(path, sizeof(path), "%s/tmp", data);
        assert_int_equal(lstat(path, &sb), 0);
        snprintf(path, sizeof(path), "%s/logs", data);
        assert_int_equal(lstat(path, &sb), -1);
        /* the instance directory stays with the kept tmp/, without its lock */
        assert_int_equal(lstat(dir, &sb), 0);
        snprintf(path, sizeof(path), "%s/lock", dir);
        assert_int_equal(lstat(path, &sb), -1);
        er_state_fini(&fx->st[0]);
        er_state_init(&fx->st[0]);
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        assert_int_equal(er_state_make_dirs(&fx->st[0], true), 0);
        assert_int_equal(er_state_remove(&fx->st[0], false), 0);
        assert_int_equal(lstat(data, &sb), -1);
        assert_int_equal(lstat(dir, &sb), -1);
        er_state_fini(&fx->st[0]);
        er_state_init(&fx->st[0]);

        /* A symlink planted where the data directory goes: refused, and
         * nothing made through it. */
        assert_int_equal(symlink(fx->root, data), 0);
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        assert_int_equal(er_state_make_dirs(&fx->st[0], true), -EPERM);
        snprintf(path, sizeof(path), "%s/logs", fx->root);
        assert_int_equal(lstat(path, &sb), -1);
        assert_int_equal(unlink(data), 0);
        er_state_fini(&fx->st[0]);
        er_state_init(&fx->st[0]);

        /* A wiped tmpfs (the instance directory gone, its data left): the
         * sweep removes that data, and leaves a live instance's alone. */
        {
                char dir2[300], data2[400];
                snprintf(dir2, sizeof(dir2), "%s/live", shm);
                assert_int_equal(er_state_data_path(dir2, data2, sizeof(data2)), 0);
                assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
                assert_int_equal(er_state_make_dirs(&fx->st[0], true), 0);
                er_state_fini(&fx->st[0]);
                er_state_init(&fx->st[0]);
                assert_int_equal(rmdir(dir), 0); /* as a reboot would */
                assert_int_equal(er_state_open(&fx->st[1], dir2, true), 0);
                assert_int_equal(er_state_make_dirs(&fx->st[1], true), 0);
                assert_int_equal(er_state_sweep_data(shm), 0);
                assert_int_equal(lstat(data, &sb), -1);
                assert_int_equal(lstat(data2, &sb), 0);
                assert_int_equal(er_state_remove(&fx->st[1], false), 0);
                er_state_fini(&fx->st[1]);
                er_state_init(&fx->st[1]);
        }

        /* A parent in /var/tmp that others may write (made first by
         * someone else): not used; the data stay in the instance. */
        {
                char parent[64];
                snprintf(parent, sizeof(parent), "/var/tmp/envrun-%u", (unsigned)geteuid());
                assert_int_equal(lstat(parent, &sb), 0);
                assert_int_equal(chmod(parent, 0777), 0);
                assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
                assert_int_equal(er_state_make_dirs(&fx->st[0], true), 0);
                assert_string_equal(er_state_data_dir(&fx->st[0]), dir);
                assert_int_equal(chmod(parent, sb.st_mode & 07777), 0);
                assert_int_equal(er_state_remove(&fx->st[0], false), 0);
                er_state_fini(&fx->st[0]);
                er_state_init(&fx->st[0]);
        }

        /* --state-dir on a tmpfs: everything stays in the instance. */
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        assert_int_equal(er_state_make_dirs(&fx->st[0], false), 0);
        assert_string_equal(er_state_data_dir(&fx->st[0]), dir);
        assert_int_equal(lstat(data, &sb), -1);
        assert_int_equal(er_state_remove(&fx->st[0], false), 0);
        er_state_fini(&fx->st[0]);
        er_state_init(&fx->st[0]);
        assert_int_equal(rmdir(shm), 0);
}

/* ---- the lock ----------------------------------------------------------- */

static void test_lock(void **state)
{
        struct fixture *fx = *state;
        char dir[300], lock[400], never[300];
        struct stat sb;

        path_in(fx, dir, sizeof(dir), "inst");
        path_in(fx, never, sizeof(never), "never");
        snprintf(lock, sizeof(lock), "%s/lock", dir);
        assert_int_equal(mkdir(never, 0700), 0);
        assert_int_equal(er_state_probe(never), 0); /* never locked: free */
        path_in(fx, never, sizeof(never), "nonexistent");
        assert_int_equal(er_state_probe(never), -ENOENT);

        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        assert_int_equal(er_state_lock(&fx->st[0]), 0);
        assert_true(fx->st[0].lock_fd >= 0);
        assert_int_equal(lstat(lock, &sb), 0);
        assert_true(S_ISREG(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0600);
        assert_int_equal(er_state_lock(&fx->st[0]), 0); /* already ours */

        assert_int_equal(er_state_open(&fx->st[1], dir, false), 0);
        assert_int_equal(er_state_lock(&fx->st[1]), -EWOULDBLOCK);
        assert_int_equal(fx->st[1].lock_fd, -1);
        assert_int_equal(er_state_probe(dir), 1);
        assert_int_equal(er_state_probe(dir), 1); /* probing took nothing */

        er_state_fini(&fx->st[0]);
        assert_int_equal(er_state_probe(dir), 0);
        assert_int_equal(er_state_lock(&fx->st[1]), 0);
        assert_int_equal(er_state_probe(dir), 1);
        er_state_fini(&fx->st[1]);
        assert_int_equal(er_state_probe(dir), 0);
}

/* A lock held by another process: probed as held, refused; free once that
 * process is gone. */
static void test_lock_other_process(void **state)
{
        struct fixture *fx = *state;
        char dir[300], b = 0;
        int ready[2], hold[2];
        pid_t pid;

        path_in(fx, dir, sizeof(dir), "inst");
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct er_state st;
                er_state_init(&st);
                if (er_state_open(&st, dir, false) < 0 || er_state_lock(&st) < 0)
                        _exit(1);
                if (write(ready[1], "r", 1) != 1)
                        _exit(2);
                close(hold[1]);
                if (read(hold[0], &b, 1) < 0) /* until the parent kills us */
                        _exit(3);
                _exit(0);
        }
        remember(fx, pid);
        close(ready[1]);
        close(hold[0]);
        assert_int_equal(read(ready[0], &b, 1), 1);
        close(ready[0]);

        assert_int_equal(er_state_probe(dir), 1);
        assert_int_equal(er_state_open(&fx->st[0], dir, false), 0);
        assert_int_equal(er_state_lock(&fx->st[0]), -EWOULDBLOCK);

        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        close(hold[1]);
        assert_int_equal(er_state_probe(dir), 0);
        assert_int_equal(er_state_lock(&fx->st[0]), 0);
}

/* Holds an open file description read lock on path (as `down` does while
 * it waits for an instance to end) until told to go; unlinks path first
 * when `unlink_it`.  Returns the child's pid, once it holds the lock. */
static pid_t hold_read_lock(struct fixture *fx, const char *path, int *go_fd, bool unlink_it)
{
        int ready[2], go[2];
        char b = 0;
        pid_t pid;

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
                int lfd = open(path, O_RDONLY | O_CLOEXEC);
                if (lfd < 0 || fcntl(lfd, F_OFD_SETLK, &fl) < 0)
                        _exit(1);
                if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
                        _exit(2);
                _exit(unlink_it && unlink(path) < 0 ? 3 : 0);
        }
        remember(fx, pid);
        close(ready[1]);
        close(go[0]);
        assert_int_equal(read(ready[0], &b, 1), 1);
        close(ready[0]);
        *go_fd = go[1];
        return pid;
}

static void let_go(pid_t pid, int go_fd)
{
        int status;
        assert_int_equal(write(go_fd, "g", 1), 1);
        close(go_fd);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A probe asks about the lock (F_OFD_GETLK) and takes nothing: a read lock
 * held by another is no instance to it, while it does keep the exclusive
 * lock from being taken; and probes running all along never make a
 * starting instance fail (with flock, a probe had to take a shared lock,
 * which a starting instance then had to wait out). */
static void test_probe_takes_no_lock(void **state)
{
        struct fixture *fx = *state;
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        char dir[300], lock[400];
        int fd, go;
        pid_t pid, prober;

        path_in(fx, dir, sizeof(dir), "inst");
        snprintf(lock, sizeof(lock), "%s/lock", dir);
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        write_file(lock, "");
        pid = hold_read_lock(fx, lock, &go, false);
        /* The premise: a read lock is held, so an exclusive one fails. */
        fd = open(lock, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), -1);
        assert_true(errno == EAGAIN || errno == EACCES);
        close(fd);
        assert_int_equal(er_state_probe(dir), 0); /* a reader: not an instance */
        assert_int_equal(er_state_lock(&fx->st[0]), -EWOULDBLOCK);
        let_go(pid, go);
        assert_int_equal(er_state_lock(&fx->st[0]), 0);
        assert_int_equal(er_state_probe(dir), 1);
        er_state_fini(&fx->st[0]);

        /* A child probes without pause while the parent takes and drops
         * the lock 200 times: every take succeeds. */
        prober = fork();
        assert_true(prober >= 0);
        if (prober == 0) {
                for (;;)
                        if (er_state_probe(dir) < 0)
                                _exit(1);
        }
        remember(fx, prober);
        for (int i = 0; i < 200; i++) {
                er_state_init(&fx->st[0]);
                assert_int_equal(er_state_open(&fx->st[0], dir, false), 0);
                assert_int_equal(er_state_lock(&fx->st[0]), 0);
                er_state_fini(&fx->st[0]);
        }
        assert_int_equal(kill(prober, SIGKILL), 0);
        assert_int_equal(waitpid(prober, NULL, 0), prober);
        er_state_init(&fx->st[0]);
}

/* The lock file a reader held is removed (as er_state_remove does) and the
 * reader goes: the lock er_state_lock then gets is on the directory's
 * current lock file, never on the unlinked one, which guards nothing. */
static void test_lock_unlinked_meanwhile(void **state)
{
        struct fixture *fx = *state;
        char dir[300], lock[400];
        struct stat held, now;
        int go;
        pid_t pid;

        path_in(fx, dir, sizeof(dir), "inst");
        snprintf(lock, sizeof(lock), "%s/lock", dir);
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        write_file(lock, "");
        pid = hold_read_lock(fx, lock, &go, true);
        assert_int_equal(er_state_lock(&fx->st[0]), -EWOULDBLOCK);
        let_go(pid, go);
        assert_int_equal(er_state_lock(&fx->st[0]), 0);
        assert_int_equal(fstat(fx->st[0].lock_fd, &held), 0);
        assert_int_equal(held.st_nlink, 1);
        assert_int_equal(lstat(lock, &now), 0);
        assert_true(held.st_ino == now.st_ino && held.st_dev == now.st_dev);
        assert_int_equal(er_state_probe(dir), 1);
}

/* The holder removes the directory while another has it open: the other
 * never gets a lock on the removed lock file. */
static void test_lock_after_remove(void **state)
{
        struct fixture *fx = *state;
        char dir[300];

        path_in(fx, dir, sizeof(dir), "inst");
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        assert_int_equal(er_state_lock(&fx->st[0]), 0);
        assert_int_equal(er_state_open(&fx->st[1], dir, false), 0);
        assert_int_equal(er_state_remove(&fx->st[0], false), 0);
        assert_false(exists(dir));
        er_state_fini(&fx->st[0]);
        assert_int_equal(er_state_lock(&fx->st[1]), -ENOENT);
        assert_int_equal(er_state_probe(dir), -ENOENT);
}

static void test_create_unique(void **state)
{
        struct fixture *fx = *state;
        char base[300], prefix[400];
        size_t pl;

        path_in(fx, base, sizeof(base), "base");
        assert_int_equal(mkdir(base, 0700), 0);
        assert_int_equal(er_state_create_unique(&fx->st[0], base, "proj"), 0);
        assert_int_equal(er_state_create_unique(&fx->st[1], base, "proj"), 0);
        snprintf(prefix, sizeof(prefix), "%s/proj.exec.", base);
        pl = strlen(prefix);
        for (int i = 0; i < 2; i++) {
                assert_true(strncmp(fx->st[i].dir, prefix, pl) == 0);
                assert_int_equal(strlen(fx->st[i].dir), pl + 6);
                assert_true(exists(fx->st[i].dir));
                assert_true(fx->st[i].lock_fd >= 0);
                assert_int_equal(er_state_probe(fx->st[i].dir), 1);
        }
        assert_string_not_equal(fx->st[0].dir, fx->st[1].dir);
        assert_int_equal(er_state_create_unique(&fx->st[2], base, "a/b"), -EINVAL);
        /* A relative base still gives an absolute dir. */
        {
                char cwd[PATH_MAX];
                assert_non_null(getcwd(cwd, sizeof(cwd)));
                assert_int_equal(chdir(fx->root), 0);
                assert_int_equal(er_state_create_unique(&fx->st[2], "base", "proj"), 0);
                assert_int_equal(chdir(cwd), 0);
                assert_true(strncmp(fx->st[2].dir, prefix, pl) == 0);
                assert_int_equal(er_state_remove(&fx->st[2], false), 0);
        }
        /* Nothing else in base: the hidden names were renamed. */
        assert_int_equal(er_state_remove(&fx->st[0], false), 0);
        assert_int_equal(er_state_remove(&fx->st[1], false), 0);
        assert_int_equal(rmdir(base), 0);
}

/* ---- removal -------------------------------------------------------------- */

static void test_remove(void **state)
{
        struct fixture *fx = *state;
        char dir[300], outside[300], p[500];

        need_root();
        path_in(fx, dir, sizeof(dir), "inst");
        path_in(fx, outside, sizeof(outside), "outside");
        assert_int_equal(mkdir(outside, 0700), 0);
        snprintf(p, sizeof(p), "%s/precious", outside);
        write_file(p, "keep me");

        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        assert_int_equal(er_state_lock(&fx->st[0]), 0);
        assert_int_equal(er_state_make_dirs(&fx->st[0], false), 0);
        snprintf(p, sizeof(p), "%s/logs/db.log", dir);
        write_file(p, "log");
        snprintf(p, sizeof(p), "%s/records.json", dir);
        write_file(p, "{}");
        snprintf(p, sizeof(p), "%s/tmp/a", dir);
        assert_int_equal(mkdir(p, 0700), 0);
        snprintf(p, sizeof(p), "%s/tmp/a/b", dir);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/tmp/a/b/f", dir);
        write_file(p, "f");
        /* Symlinks to the outside, at two levels: unlinked, never followed. */
        snprintf(p, sizeof(p), "%s/tmp/a/b/out", dir);
        assert_int_equal(symlink(outside, p), 0);
        snprintf(p, sizeof(p), "%s/linkdir", dir);
        assert_int_equal(symlink(outside, p), 0);
        /* A file system mounted inside: not entered. */
        snprintf(fx->mnt, sizeof(fx->mnt), "%s/tmp/m", dir);
        assert_int_equal(mkdir(fx->mnt, 0700), 0);
        if (mount("tmpfs", fx->mnt, "tmpfs", 0, "size=64k") < 0) {
                fx->mnt[0] = '\0';
                fail_msg("cannot mount a tmpfs: %s", strerror(errno));
        }
        snprintf(p, sizeof(p), "%s/inside", fx->mnt);
        write_file(p, "on another file system");

        /* keep_tmp: the directory and tmp/ stay, everything else goes. */
        assert_int_equal(er_state_remove(&fx->st[0], true), 0);
        assert_true(exists(dir));
        snprintf(p, sizeof(p), "%s/tmp/a/b/f", dir);
        assert_true(exists(p));
        snprintf(p, sizeof(p), "%s/logs", dir);
        assert_false(exists(p));
        snprintf(p, sizeof(p), "%s/lock", dir);
        assert_false(exists(p));
        snprintf(p, sizeof(p), "%s/records.json", dir);
        assert_false(exists(p));
        snprintf(p, sizeof(p), "%s/linkdir", dir);
        assert_false(exists(p));
        snprintf(p, sizeof(p), "%s/precious", outside);
        assert_true(exists(p));

        /* Everything: the mount point cannot go (EBUSY), nor what holds it. */
        assert_int_equal(er_state_remove(&fx->st[0], false), -EBUSY);
        snprintf(p, sizeof(p), "%s/inside", fx->mnt);
        assert_true(exists(p));
        snprintf(p, sizeof(p), "%s/tmp/a", dir);
        assert_false(exists(p));
        snprintf(p, sizeof(p), "%s/precious", outside);
        assert_true(exists(p));
        assert_true(exists(dir));

        assert_int_equal(umount2(fx->mnt, 0), 0);
        fx->mnt[0] = '\0';
        assert_int_equal(er_state_remove(&fx->st[0], false), 0);
        assert_false(exists(dir));
        snprintf(p, sizeof(p), "%s/precious", outside);
        assert_true(exists(p));
}

/* ---- records -------------------------------------------------------------- */

/* Field 22 of /proc/PID/stat, counted by hand from the end of comm. */
static uint64_t start_time_by_hand(pid_t pid, const char *comm)
{
        char path[64], buf[1024], want[64], *q;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        snprintf(want, sizeof(want), "(%s)", comm);
        assert_non_null(strstr(buf, want));
        q = strrchr(buf, ')') + 2;
        for (int field = 3; field < 22; field++) {
                q = strchr(q, ' ');
                assert_non_null(q);
                q++;
        }
        return strtoull(q, NULL, 10);
}

static void test_start_time(void **state)
{
        static const char comm[] = "x) 1 2 (3) 4";
        struct fixture *fx = *state;
        uint64_t self = 0, t = 0;
        int p[2];
        char b;
        pid_t pid;

        assert_int_equal(er_pids_start_time(getpid(), &self), 0);
        assert_true(self > 0);
        assert_int_equal(er_pids_start_time(0, &t), -EINVAL);

        /* A comm with spaces and parentheses, as any program may set. */
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_NAME, comm);
                if (write(p[1], "n", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        remember(fx, pid);
        close(p[1]);
        assert_int_equal(read(p[0], &b, 1), 1);
        close(p[0]);
        assert_int_equal(er_pids_start_time(pid, &t), 0);
        assert_true(t > 0);
        assert_true(t == start_time_by_hand(pid, comm));
        assert_true(t >= self);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_int_equal(er_pids_start_time(pid, &t), -ESRCH);
}

static void test_records_roundtrip(void **state)
{
        struct fixture *fx = *state;
        struct er_records *r = &fx->rec, back;
        char dir[300], p[400];
        uint64_t self;
        struct stat sb;
        pid_t child;

        path_in(fx, dir, sizeof(dir), "inst");
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        er_records_init(&back);
        assert_int_equal(er_records_read(&fx->st[0], &back), -ENOENT);

        r->supervisor = 4242;
        r->supervisor_start = 123456789012ULL;
        r->containment = strdup("cgroup2");
        r->cgroup = strdup("/sys/fs/cgroup/unified/envrun/p.1.0000abcd");
        r->v1[ER_V1_MEMORY] = strdup("/sys/fs/cgroup/memory/envrun/p.1.0000abcd");
        r->marker = strdup("ENVRUN_MARKER=p.1.0000abcd/");
        child = sleeper(fx, NULL);
        assert_int_equal(er_records_set_proc(r, "db", getpid()), 0);
        assert_int_equal(er_records_set_proc(r, "test", getpid()), 0);
        assert_int_equal(er_records_set_proc(r, "db", child), 0); /* replaced */
        assert_int_equal(r->n_procs, 2);
        assert_int_equal(er_records_set_proc(r, "", child), -EINVAL);
        assert_int_equal(er_pids_start_time(getpid(), &self), 0);

        assert_int_equal(er_records_write(&fx->st[0], r), 0);
        snprintf(p, sizeof(p), "%s/records.json", dir);
        assert_int_equal(lstat(p, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);
        snprintf(p, sizeof(p), "%s/records.json.tmp", dir);
        assert_false(exists(p));

        assert_int_equal(er_records_read(&fx->st[0], &back), 0);
        assert_int_equal(back.supervisor, 4242);
        assert_true(back.supervisor_start == 123456789012ULL);
        assert_string_equal(back.containment, "cgroup2");
        assert_string_equal(back.cgroup, r->cgroup);
        assert_string_equal(back.v1[ER_V1_MEMORY], r->v1[ER_V1_MEMORY]);
        assert_null(back.v1[ER_V1_PIDS]);
        assert_string_equal(back.marker, r->marker);
        assert_int_equal(back.n_procs, 2);
        assert_string_equal(back.procs[0].service, "db");
        assert_int_equal(back.procs[0].pid, child);
        assert_true(back.procs[0].start_time == r->procs[0].start_time);
        assert_string_equal(back.procs[1].service, "test");
        assert_int_equal(back.procs[1].pid, getpid());
        assert_true(back.procs[1].start_time == self);
        er_records_fini(&back);

        /* Rewritten: the new contents replace the old. */
        free(r->cgroup);
        r->cgroup = strdup("/sys/fs/cgroup/envrun.p.1.0000abcd"); /* delegated */
        assert_int_equal(er_records_write(&fx->st[0], r), 0);
        assert_int_equal(er_records_read(&fx->st[0], &back), 0);
        assert_string_equal(back.cgroup, r->cgroup);
        er_records_fini(&back);

        /* A records.json in the session kind: no cgroups. */
        er_records_fini(r);
        assert_int_equal(er_records_write(&fx->st[0], r), 0);
        assert_int_equal(er_records_read(&fx->st[0], &back), 0);
        assert_null(back.containment);
        assert_null(back.cgroup);
        assert_null(back.marker);
        assert_int_equal(back.n_procs, 0);
        er_records_fini(&back);
}

/* What is not a records.json of ours is refused, and never half-read. */
static void test_records_refused(void **state)
{
        static const char *const bad[] = {
            "not json",
            "[]",
            "{}",
            "{\"envrun_records\":2,\"supervisor\":{\"pid\":1,\"start_time\":1},\"procs\":[]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},\"procs\":{}}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"procs\":[{\"service\":\"a\",\"pid\":0,\"start_time\":1}]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"procs\":[{\"service\":\"a\",\"pid\":5,\"start_time\":-1}]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"procs\":[{\"service\":\"a\",\"pid\":5}]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"procs\":[{\"pid\":5,\"start_time\":1}]}",
            /* A cgroup that is not the instance's: the hierarchy's root. */
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"marker\":\"ENVRUN_MARKER=p.1.a/\",\"cgroup\":\"/sys/fs/cgroup/unified\","
            "\"procs\":[]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"marker\":\"ENVRUN_MARKER=p.1.a/\",\"cgroup\":\"/sys/fs/cgroup/unified/p.1.a\","
            "\"procs\":[]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"cgroup\":\"/sys/fs/cgroup/unified/envrun/p.1.a\",\"procs\":[]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"marker\":\"ENVRUN_MARKER=p.1.a/\",\"v1\":{\"memory\":\"/m/envrun.p.1.a\"},"
            "\"procs\":[]}",
            /* Markers that would match more than one instance. */
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"marker\":\"ENVRUN_MARKER=\",\"procs\":[]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"marker\":\"ENVRUN_MARKER=/\",\"procs\":[]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"marker\":\"ENVRUN_MARKER=p\",\"procs\":[]}",
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"containment\":\"other\",\"procs\":[]}",
        };
        static const char good[] =
            "{\"envrun_records\":1,\"supervisor\":{\"pid\":1,\"start_time\":1},"
            "\"marker\":\"ENVRUN_MARKER=p.1.a/\",\"cgroup\":\"/sys/fs/cgroup/unified/envrun/"
            "p.1.a\","
            "\"procs\":[{\"service\":\"a\",\"pid\":5,\"start_time\":7}]}";
        struct fixture *fx = *state;
        struct er_records back;
        char dir[300], p[400];

        path_in(fx, dir, sizeof(dir), "inst");
        snprintf(p, sizeof(p), "%s/records.json", dir);
        assert_int_equal(er_state_open(&fx->st[0], dir, true), 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                write_file(p, bad[i]);
                er_records_init(&back);
                if (er_records_read(&fx->st[0], &back) != -EINVAL)
                        fail_msg("accepted: %s", bad[i]);
                assert_null(back.procs);
                assert_null(back.marker);
        }
        /* The control: the same shape, well formed, is read. */
        write_file(p, good);
        assert_int_equal(er_records_read(&fx->st[0], &back), 0);
        assert_int_equal(back.n_procs, 1);
        assert_int_equal(back.procs[0].pid, 5);
        er_records_fini(&back);
        /* A symlink in its place is not followed. */
        assert_int_equal(unlink(p), 0);
        assert_int_equal(symlink("/etc/hostname", p), 0);
        assert_int_equal(er_records_read(&fx->st[0], &back), -EINVAL);
}

static void test_records_from_contain(void **state)
{
        struct fixture *fx = *state;
        struct er_records *r = &fx->rec;
        char want[300];
        uint64_t self;

        assert_int_equal(er_contain_init(&fx->c, "p", true, true), 0);
        fx->c_ok = true;
        assert_int_equal(er_records_from_contain(r, &fx->c), 0);
        assert_string_equal(r->containment, "reaper");
        assert_null(r->cgroup);
        assert_null(r->v1[ER_V1_MEMORY]);
        assert_null(r->v1[ER_V1_PIDS]);
        snprintf(want, sizeof(want), "ENVRUN_MARKER=%s/", fx->c.instance);
        assert_string_equal(r->marker, want);
        assert_int_equal(r->supervisor, getpid());
        assert_int_equal(er_pids_start_time(getpid(), &self), 0);
        assert_true(r->supervisor_start == self);
        assert_int_equal(r->n_procs, 0);
}

/* ---- the clean-up ------------------------------------------------------- */

/* The tree of a service of a dead instance: the main process (in the
 * group, with the marker) whose child called setsid and forked a daemon
 * before exiting, so the daemon escaped the session; a stray process with
 * the marker that is in no cgroup of the instance; and, recorded with a
 * start time that is not its own, a process of someone else.  With
 * cgroups, two more without the marker: one in the service's cgroup2
 * cgroup, one only in its v1 memory cgroup (killed pid by pid: v1 has no
 * cgroup.kill). */
struct tree {
        pid_t main, daemon, stray, spare, hidden, v1only;
};

/* A sleeper with an empty environment, moved into the cgroup at
 * at/cgroup.procs before it execs. */
static pid_t sleeper_in(struct fixture *fx, int at)
{
        char *const envp[] = {NULL}, b = 0, buf[32];
        int go[2], fd;
        pid_t pid;

        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (read(go[0], &b, 1) != 1)
                        _exit(126);
                execle(SLEEP, "sleep", "100", (char *)NULL, envp);
                _exit(127);
        }
        remember(fx, pid);
        close(go[0]);
        fd = openat(at, "cgroup.procs", O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        snprintf(buf, sizeof(buf), "%d\n", (int)pid);
        assert_int_equal(write(fd, buf, strlen(buf)), (ssize_t)strlen(buf));
        close(fd);
        assert_int_equal(write(go[1], "g", 1), 1);
        close(go[1]);
        return pid;
}

static void start_tree(struct fixture *fx, struct tree *t)
{
        int go[2], rep[2];
        char b = 0;
        pid_t gc, d;

        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
        t->main = fork();
        assert_true(t->main >= 0);
        if (t->main == 0) {
                setsid();
                putenv(fx->g.marker);
                if (read(go[0], &b, 1) != 1)
                        _exit(126);
                gc = fork();
                if (gc == 0) {
                        setsid();
                        d = fork();
                        if (d == 0) {
                                execl(SLEEP, "sleep", "100", (char *)NULL);
                                _exit(127);
                        }
                        _exit(write(rep[1], &d, sizeof(d)) == sizeof(d) ? 0 : 1);
                }
                if (gc < 0 || waitpid(gc, NULL, 0) != gc)
                        _exit(125);
                execl(SLEEP, "sleep", "100", (char *)NULL);
                _exit(127);
        }
        remember(fx, t->main);
        close(go[0]);
        close(rep[1]);
        /* Into the group (the cgroup) before it forks anything. */
        {
                /* The records and the marker are what the clean-up uses:
                 * no reaper here (the process that made it is "dead"). */
                struct er_child ch = {.pid = t->main, .pidfd = -1, .reaper_pid = -1,
                                      .reaper_pidfd = -1, .reaper_cmd = -1, .reaper_st = -1};
                assert_int_equal(er_group_started(&fx->g, &ch), 0);
        }
        assert_int_equal(write(go[1], "g", 1), 1);
        close(go[1]);
        assert_int_equal(read(rep[0], &t->daemon, sizeof(t->daemon)), sizeof(t->daemon));
        close(rep[0]);
        remember(fx, t->daemon);
        t->stray = sleeper(fx, fx->g.marker);
        t->spare = sleeper(fx, NULL);
        t->hidden = t->v1only = 0;
        if (fx->c.kind == ER_CONTAIN_CGROUP2) {
                /* The v1 cgroups exist only for a service with limits. */
                struct er_limits lim = {.memory = 1ULL << 40};
                char why[300];
                t->hidden = sleeper_in(fx, er_group_cgroup_fd(&fx->g));
                (void)er_group_set_limits(&fx->g, &lim, why, sizeof(why));
                if (fx->g.v1_fd[ER_V1_MEMORY] < 0)
                        fail_msg("no v1 memory cgroup: this test expects a hybrid host as root");
                t->v1only = sleeper_in(fx, fx->g.v1_fd[ER_V1_MEMORY]);
        }
}

/* The marker is in /proc/PID/environ once a process has exec'd. */
static void wait_marked(struct fixture *fx, int want)
{
        long long end = now_ns() + DEADLINE_NS;
        int n;

        while ((n = er_contain_scan_marker(fx->g.marker, NULL, 0)) < want && now_ns() < end)
                nap();
        assert_int_equal(n, want);
}

static void run_reap(struct fixture *fx, bool force_session)
{
        struct er_err err = {0};
        struct er_reaped out;
        struct er_state *st = &fx->st[0], *again = &fx->st[1];
        char base[300], dir[400], p[500], cgroot[512] = "", v1[ER_V1_N][512];
        struct tree t;
        struct stat sb;

        need_root();
        assert_int_equal(er_contain_init(&fx->c, "st", force_session, true), 0);
        fx->c_ok = true;
        assert_int_equal(fx->c.kind, force_session ? ER_CONTAIN_REAPER : ER_CONTAIN_CGROUP2);
        if (fx->c.root)
                snprintf(cgroot, sizeof(cgroot), "%s", fx->c.root);
        for (int k = 0; k < ER_V1_N; k++)
                snprintf(v1[k], sizeof(v1[k]), "%s", fx->c.v1_dir[k] ? fx->c.v1_dir[k] : "");
        assert_int_equal(er_group_init(&fx->g, &fx->c, "svc", &err), 0);
        fx->g_ok = true;
        start_tree(fx, &t);
        wait_marked(fx, 3);
        if (!force_session) {
                pid_t pids[8];
                /* main, daemon, hidden */
                assert_int_equal(er_group_pids(&fx->g, pids, 8), 3);
        }

        /* The instance records its tree, then dies: its lock is free. */
        path_in(fx, base, sizeof(base), "base");
        assert_int_equal(mkdir(base, 0700), 0);
        assert_int_equal(er_state_create_unique(st, base, "p"), 0);
        snprintf(dir, sizeof(dir), "%s", st->dir);
        assert_int_equal(er_records_from_contain(&fx->rec, &fx->c), 0);
        assert_int_equal(er_records_set_proc(&fx->rec, "svc", t.main), 0);
        assert_int_equal(er_records_set_proc(&fx->rec, "daemon", t.daemon), 0);
        assert_int_equal(er_records_set_proc(&fx->rec, "spare", t.spare), 0);
        fx->rec.procs[2].start_time += 1; /* the pid now belongs to another process */
        assert_int_equal(er_records_write(st, &fx->rec), 0);
        snprintf(p, sizeof(p), "%s/control.sock", dir);
        write_file(p, "");
        er_state_fini(st);

        assert_int_equal(er_state_open(again, dir, false), 0);
        assert_int_equal(er_cleanup_reap(again, &out), -ENOLCK); /* the lock first */
        assert_int_equal(er_state_lock(again), 0);
        assert_int_equal(er_cleanup_reap(again, &out), 0);
        assert_true(out.had_records);
        assert_int_equal(out.killed, force_session ? 3 : 5);
        assert_int_equal(out.spared, 1);

        /* Reaped: the main process and the stray are our children, the
         * daemon came to us as an orphan (we are a subreaper). */
        assert_int_equal(waitpid(t.main, NULL, 0), t.main);
        assert_int_equal(waitpid(t.stray, NULL, 0), t.stray);
        assert_int_equal(waitpid(t.daemon, NULL, 0), t.daemon);
        if (!force_session) {
                assert_int_equal(waitpid(t.hidden, NULL, 0), t.hidden);
                assert_int_equal(waitpid(t.v1only, NULL, 0), t.v1only);
        }
        reap_all();
        for (int i = 0; i < 5; i++) {
                pid_t pid = (pid_t[]){t.main, t.daemon, t.stray, t.hidden, t.v1only}[i];
                if (!pid)
                        continue;
                errno = 0;
                assert_int_equal(kill(pid, 0), -1);
                assert_int_equal(errno, ESRCH);
        }
        assert_int_equal(er_contain_scan_marker(fx->g.marker, NULL, 0), 0);
        /* The other process is untouched. */
        assert_true(alive(t.spare));
        assert_int_equal(waitpid(t.spare, NULL, WNOHANG), 0);

        snprintf(p, sizeof(p), "%s/records.json", dir);
        assert_false(exists(p));
        snprintf(p, sizeof(p), "%s/control.sock", dir);
        assert_false(exists(p));
        if (cgroot[0]) {
                errno = 0;
                assert_int_equal(stat(cgroot, &sb), -1);
                assert_int_equal(errno, ENOENT);
        }
        for (int k = 0; k < ER_V1_N; k++)
                assert_false(v1[k][0] && exists(v1[k]));

        /* A second clean-up finds nothing to do. */
        assert_int_equal(er_cleanup_reap(again, &out), 0);
        assert_false(out.had_records);
        assert_int_equal(out.killed, 0);
        assert_int_equal(er_state_remove(again, false), 0);
        assert_false(exists(dir));

        assert_int_equal(kill(t.spare, SIGKILL), 0);
        assert_int_equal(waitpid(t.spare, NULL, 0), t.spare);
        er_group_fini(&fx->g);
        fx->g_ok = false;
        er_contain_fini(&fx->c);
        fx->c_ok = false;
}

static void test_reap_cgroup2(void **state)
{
        run_reap(*state, false);
}

static void test_reap_session(void **state)
{
        run_reap(*state, true);
}

/* Dead exec instances are reaped and removed; a live one, and names that
 * are not <project>.exec.XXXXXX, are left alone. */
static void test_reap_stale_execs(void **state)
{
        static const char *const others[] = {"p.exec.ABCDEFG", "p.exec.ABCDE",  "q.exec.ABCDEF",
                                             ".p.exec.ABCDEF", "p.exec.ABC-EF", "px.exec.ABCDEF"};
        struct fixture *fx = *state;
        struct er_state *dead = &fx->st[0], *live = &fx->st[1];
        struct er_records *r = &fx->rec;
        struct er_reaped out = {0};
        char base[300], dead_dir[400], never[400], p[500];
        pid_t victim;

        path_in(fx, base, sizeof(base), "base");
        assert_int_equal(mkdir(base, 0700), 0);
        assert_int_equal(er_cleanup_stale_execs(base, "p", &out), 0);

        victim = sleeper(fx, NULL);
        assert_int_equal(er_state_create_unique(dead, base, "p"), 0);
        assert_int_equal(er_state_make_dirs(dead, false), 0);
        assert_int_equal(er_records_set_proc(r, "svc", victim), 0);
        assert_int_equal(er_records_write(dead, r), 0);
        snprintf(dead_dir, sizeof(dead_dir), "%s", dead->dir);
        er_state_fini(dead);

        assert_int_equal(er_state_create_unique(live, base, "p"), 0);
        assert_int_equal(er_records_write(live, r), 0);
        snprintf(never, sizeof(never), "%s/p.exec.Zz0123", base); /* never locked */
        assert_int_equal(mkdir(never, 0700), 0);
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", base, others[i]);
                assert_int_equal(mkdir(p, 0700), 0);
        }

        assert_int_equal(er_cleanup_stale_execs(base, "p", &out), 2);
        assert_int_equal(out.killed, 1);
        assert_int_equal(out.spared, 0);
        assert_true(out.had_records);
        assert_int_equal(waitpid(victim, NULL, 0), victim);
        assert_false(exists(dead_dir));
        assert_false(exists(never));
        assert_true(exists(live->dir));
        assert_int_equal(er_state_probe(live->dir), 1);
        snprintf(p, sizeof(p), "%s/records.json", live->dir);
        assert_true(exists(p));
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", base, others[i]);
                assert_true(exists(p));
        }
        assert_int_equal(er_cleanup_stale_execs(base, "p", &out), 0);
        assert_int_equal(er_cleanup_stale_execs("/nonexistent/envrun-test", "p", &out), 0);
        assert_int_equal(er_cleanup_stale_execs(base, "a/b", &out), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_mkdir_owner, setup, teardown),
            cmocka_unit_test_setup_teardown(test_open_relative, setup, teardown),
            cmocka_unit_test_setup_teardown(test_base, setup, teardown),
            cmocka_unit_test_setup_teardown(test_make_dirs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_data_split, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lock_other_process, setup, teardown),
            cmocka_unit_test_setup_teardown(test_probe_takes_no_lock, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lock_unlinked_meanwhile, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lock_after_remove, setup, teardown),
            cmocka_unit_test_setup_teardown(test_create_unique, setup, teardown),
            cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
            cmocka_unit_test_setup_teardown(test_start_time, setup, teardown),
            cmocka_unit_test_setup_teardown(test_records_roundtrip, setup, teardown),
            cmocka_unit_test_setup_teardown(test_records_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_records_from_contain, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reap_cgroup2, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reap_session, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reap_stale_execs, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
