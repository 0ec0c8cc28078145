/* euid.c — print the effective user ID: compiled static and made setuid-root in nnp.sh. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("euid %d\n", (int)geteuid());
    return 0;
}
