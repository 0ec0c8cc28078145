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

    /* TODO 1: make a directory below the current root, e.g. mkdir("/.escape", 0700). */

    /* TODO 2: chroot() into that directory — and do NOT chdir() into it. Your current
     *         directory is now *outside* your root. Check the return value: on failure
     *         print strerror(errno) and return 1. */

    /* TODO 3: chdir("..") many times (a loop of 100 is plenty). Nothing stops you: the
     *         kernel only stops ".." at the root, and you are no longer below yours. */

    /* TODO 4: chroot(".") — the directory you reached is the real root. */

    execv(argv[1], argv + 1);
    fprintf(stderr, "execv(\"%s\"): %s\n", argv[1], strerror(errno));
    return 127;
}
