/* syscall_probe: make raw system calls given on the command line, print each errno.
 *
 *   syscall_probe NR[,ARG…] …      e.g.  syscall_probe 250,9999,0,0,0,0   (keyctl)
 *
 * One line per call: "NR ERRNO" (0 when the call succeeded). The tests pass only harmless
 * arguments (bad pointers, invalid flags): without a seccomp filter each call fails in the
 * kernel on its arguments; with one it never runs. Static (gcc -static) so that it runs in
 * any image. Used by tests/test_container_security.py.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        long a[7] = {0};
        int n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(argv[i], ",", &save); tok && n < 7; tok = strtok_r(NULL, ",", &save))
            a[n++] = strtol(tok, NULL, 0);
        errno = 0;
        long ret = syscall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
        printf("%ld %d\n", a[0], ret == -1 ? errno : 0);
    }
    return 0;
}
