/* minicontainer-pause: the infra process of a pod (see minicontainer/orchestration/pods.py).
 *
 * A pod's containers share one network, IPC and UTS namespace. A namespace lives as long as
 * a process is in it (or a bind mount holds it), so something must stay when every container
 * of the pod has exited or is being restarted: this program. It is PID 1 of the pod's infra
 * container, does nothing but wait, and — if the pod shares its PID namespace — reaps the
 * orphans the kernel hands to it. SIGTERM or SIGINT end it (exit 0). Kubernetes' "pause"
 * container and Podman's infra container are the same idea.
 *
 * Built once, statically (the infra image holds nothing else): gcc -static -Os -s pause.c
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);     /* taken one by one below, never asynchronously */
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGTERM || sig == SIGINT)
            return 0;
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;                               /* reap orphans: shareProcessNamespace */
    }
}
