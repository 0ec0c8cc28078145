/* minicontainer-init: the tiny PID 1 of `minicontainer run --init` (see minicontainer/init.py).
 *
 *   /dev/init [--] COMMAND [ARG...]
 *
 * PID 1 of a PID namespace has two jobs most programs never expect (pid_namespaces(7)):
 *   1. orphans are re-parented to it: it must wait(2) for them, or they stay zombies
 *      (each holds a PID, and --pids-limit counts them);
 *   2. the kernel delivers it only the signals it has a handler for: SIGTERM from
 *      `minicontainer stop` is silently dropped by a program that never installed one.
 * This init does both and nothing else: it runs COMMAND as its child, forwards every signal
 * it receives to that child, reaps every child, and exits with the child's status when the
 * child ends (128+N if signal N killed it). Docker's --init (tini) and Podman's catatonit
 * work the same way.
 *
 * Built once, statically (no libc needed in the image): gcc -static -Os -s -o init init.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_child(char **argv, const sigset_t *old_mask)
{
    /* Its own process group, which becomes the terminal's foreground group: Ctrl-C in a
     * `run -it --init` then reaches the command, not us. (SIGTTOU is still blocked here,
     * so tcsetpgrp from a background group is allowed.) */
    setpgid(0, 0);
    if (isatty(STDIN_FILENO))
        tcsetpgrp(STDIN_FILENO, getpid());
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    execvp(argv[0], argv);
    fprintf(stderr, "minicontainer-init: exec %s: %s\n", argv[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
    int first = (argc > 1 && strcmp(argv[1], "--") == 0) ? 2 : 1;
    if (first >= argc) {
        fprintf(stderr, "usage: %s [--] COMMAND [ARG...]\n", argv[0]);
        return 2;
    }

    /* Not dumpable, for our whole life (our child until its execve): our executable is the
     * host's file bound at /dev/init, and nothing in the container may open it, our fds or
     * our environment through /proc/1/… (prctl(2); docs/security.md, "Helpers out of reach"). */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    /* Block every signal: we take them one by one with sigwaitinfo() instead of handlers. */
    sigset_t all, old_mask;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old_mask);

    pid_t child = fork();
    if (child < 0) {
        perror("minicontainer-init: fork");
        return 125;
    }
    if (child == 0)
        run_child(argv + first, &old_mask);

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0)
            continue;                           /* EINTR */
        if (sig != SIGCHLD) {
            kill(child, sig);                   /* forward: SIGTERM, SIGINT, SIGHUP, SIGUSR1 … */
            continue;
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)   /* reap ours and every orphan */
            if (pid == child)
                return exit_code(status);       /* the kernel then ends the rest of the namespace */
    }
}
