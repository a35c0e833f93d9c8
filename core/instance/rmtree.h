/* rmtree: empties a directory, recursively, the way a state directory
 * must be removed: a symlink is unlinked, never entered; another file
 * system is never entered (a mount point stays, and its rmdir says EBUSY);
 * at most 256 directories deep (-ELOOP beyond).  It keeps going after an
 * error and returns the first. */
#ifndef ER_RMTREE_H
#define ER_RMTREE_H

/* Removes everything in the directory open at fd (which it closes) except
 * the entries named skip1 and skip2 (either may be NULL), staying on fd's
 * file system.  0 or -errno. */
int er_rmtree_fd(int fd, const char *skip1, const char *skip2);

#endif
