/* minicontainer-watch: the supervisor's long phase, as a tiny C program (supervisor.py).
 *
 *   man 2 poll, man 2 pidfd_open, man 2 waitpid, man 2 execve          (Podman's conmon)
 *
 * While a detached container runs, its supervisor only copies PID 1's stdout and stderr into
 * container.log (one CRI entry per line: "TIMESTAMP STREAM F|P TEXT") and waits for PID 1 to
 * end. Done by a Python interpreter, that costs ~2.6 MB of private memory per container
 * (the bare interpreter's heap); done by this program, ~0.1 MB. When PID 1 has ended it
 * execs the supervisor's next phase (Python, `exited`: record, tear down, restart) — or,
 * if `rm -f` left its "removing" mark, writes the exit status and exits: rm tears down.
 *
 *   minicontainer-watch ROOT CID PID OUT_FD ERR_FD STDIN_FD STREAK PYTHON PACKAGE_PARENT
 *
 * Same PID, same children and descriptors as the phase before it (execve keeps them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;

/* 2025-01-31T12:00:00.123456789Z (RFC 3339, UTC, nanoseconds), as supervisor.timestamp. */
static size_t timestamp(char *out, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    return n + snprintf(out + n, size - n, ".%09ldZ", ts.tv_nsec);
}

/* One log entry per line of data; a last piece without newline is a partial entry (P).
 * One writev per entry on an O_APPEND file: a reader never sees half an entry. */
static void log_entries(const char *stream, const char *data, size_t len) {
    char ts[64], head[96];
    size_t tl = timestamp(ts, sizeof ts);
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t line = nl ? (size_t)(nl - data) : len;
        int hl = snprintf(head, sizeof head, "%.*s %s %c ", (int)tl, ts, stream, nl ? 'F' : 'P');
        struct iovec iov[3] = {{head, (size_t)hl}, {(void *)data, line}, {"\n", 1}};
        if (writev(log_fd, iov, 3) < 0 && errno == EINTR)
            continue;
        data += line + (nl != NULL);
        len -= line + (nl != NULL);
    }
}

/* Read once from a pipe or pty into the log; 0 at end of file (or EIO: a closed pty). */
static int copy_output(int fd, const char *stream) {
    static char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return errno == EINTR;
    if (n <= 0)
        return 0;
    log_entries(stream, buf, (size_t)n);
    return 1;
}

static void write_status(const char *root, const char *cid, int code) {
    char path[4096], text[16];
    snprintf(path, sizeof path, "%s/containers/%s/exit", root, cid);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ssize_t ignored = write(fd, text, snprintf(text, sizeof text, "%d\n", code));
        (void)ignored;
        close(fd);
    }
}

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr, "usage: %s ROOT CID PID OUT_FD ERR_FD STDIN_FD STREAK PYTHON PACKAGE_PARENT\n", argv[0]);
        return 125;
    }
    signal(SIGUSR1, SIG_IGN);       /* `stop` ends a back-off with it: it must not end us */
    const char *root = argv[1], *cid = argv[2], *streams[2] = {"stdout", "stderr"};
    pid_t pid = atoi(argv[3]);
    char path[4096];
    snprintf(path, sizeof path, "%s/containers/%s/container.log", root, cid);
    log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    /* a pidfd becomes readable when PID 1 exits: one poll() waits for output and exit */
    struct pollfd fds[3] = {{atoi(argv[4]), POLLIN, 0}, {atoi(argv[5]), POLLIN, 0},
                            {(int)syscall(SYS_pidfd_open, pid, 0), POLLIN, 0}};
    int status = 0, code = 255;
    for (;;) {
        int n = poll(fds, 3, fds[2].fd < 0 ? 100 : -1);   /* no pidfd (old kernel): look often */
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && n > 0; i++)
            if (fds[i].fd >= 0 && fds[i].revents && !copy_output(fds[i].fd, streams[i])) {
                close(fds[i].fd);
                fds[i].fd = -1;                         /* poll ignores a negative fd */
            }
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid || (done < 0 && errno == ECHILD))
            break;
    }
    if (WIFEXITED(status))
        code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        code = 128 + WTERMSIG(status);
    snprintf(path, sizeof path, "%s/containers/%s/removing", root, cid);
    if (access(path, F_OK) == 0) {                      /* rm -f waits on our pidfd: it tears down */
        write_status(root, cid, code);
        _exit(0);
    }
    for (int i = 0; i < 2; i++)                         /* PID 1 is gone, and its PID namespace */
        if (fds[i].fd >= 0) {                           /* with it: drain what is left */
            fcntl(fds[i].fd, F_SETFL, O_NONBLOCK);
            while (copy_output(fds[i].fd, streams[i]))
                ;
            close(fds[i].fd);
        }
    if (atoi(argv[6]) >= 0)
        close(atoi(argv[6]));
    /* the next phase: python -m minicontainer.supervisor exited ROOT CID CODE STREAK */
    const char *old = getenv("PYTHONPATH");
    char pythonpath[8192], codetext[16];
    snprintf(pythonpath, sizeof pythonpath, "%s%s%s", argv[9], old && *old ? ":" : "", old ? old : "");
    setenv("PYTHONPATH", pythonpath, 1);
    snprintf(codetext, sizeof codetext, "%d", code);
    char *next[] = {argv[8], "-m", "minicontainer.supervisor", "exited", (char *)root, (char *)cid,
                    codetext, argv[7], NULL};
    execv(argv[8], next);
    fprintf(stderr, "minicontainer-watch: execve(%s): %s\n", argv[8], strerror(errno));
    write_status(root, cid, code);
    return 125;
}
