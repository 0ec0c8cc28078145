/* Try to type into the terminal on stdout: ioctl(1, TIOCSTI, "#"). A container that can do this
 * on *your* terminal can run commands in your shell when it exits (ioctl_tty(2)). Prints what
 * the kernel said; exit 0 if the character was pushed, 1 if refused, 2 if stdout is no tty. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void) {
    char c = '#';
    if (!isatty(1)) {
        fprintf(stderr, "tiocsti: stdout is not a terminal\n");
        return 2;
    }
    if (ioctl(1, TIOCSTI, &c) == 0) {
        fprintf(stderr, "tiocsti: pushed a character into the terminal\n");
        return 0;
    }
    fprintf(stderr, "tiocsti: %s\n", strerror(errno));
    return 1;
}
