/* proc_probe: an attacker inside a container, hunting for the host through /proc.
 *
 *   proc_probe SECONDS MARKER
 *
 * For SECONDS (or until SIGTERM) it walks /proc over and over, and for every process it can see (but itself)
 * tries what CVE-2019-5736 did with runc: follow /proc/PID/{exe,root,cwd}, every
 * /proc/PID/fd/N and /proc/PID/map_files/RANGE, and read /proc/PID/environ. Whatever it
 * gets hold of is judged from inside: a file, directory or mapping whose path does not lead
 * to that same inode in the container's own tree belongs to the host (the Python of an
 * `exec` that has not reached execve yet, its state files…); an environment holding MARKER
 * (set only in the host's `minicontainer exec`) is the host's.
 *
 * Prints one line per leak ("LEAK pid=N what=exe path=/usr/bin/python3.11") and at the end
 * "DONE scans=S seen=P opened=O leaks=L": `opened` counts the handles it got on processes
 * that are legitimately the container's (their execve done), proof that it really looks.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long leaks, opened, seen;
static const char *marker;
static volatile sig_atomic_t stop;

static void on_term(int sig) { (void)sig; stop = 1; }

/* Does `path`, looked up inside the container, lead to the object `fd` holds? */
static int same_inside(int fd, const char *path)
{
    struct stat held, here;
    if (fstat(fd, &held) < 0)
        return 1;                               /* gone meanwhile: nothing was reached */
    if (path[0] != '/')
        return !(S_ISREG(held.st_mode) || S_ISDIR(held.st_mode) || S_ISLNK(held.st_mode) ||
                 S_ISBLK(held.st_mode) || S_ISCHR(held.st_mode));   /* pipe:[…], socket:[…] */
    if (stat(path, &here) < 0)
        return 0;                               /* no such path here: it is somebody else's */
    if (S_ISCHR(held.st_mode) || S_ISBLK(held.st_mode))
        return here.st_rdev == held.st_rdev;    /* /dev/null: the same device, wherever */
    return here.st_dev == held.st_dev && here.st_ino == held.st_ino;
}

/* Follow the magic link /proc/PID/WHAT; judge what it gave us. */
static void try_link(const char *pid, const char *what)
{
    char link[PATH_MAX], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/%s/%s", pid, what);
    int fd = open(link, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return;                                 /* EACCES/EPERM: the kernel said no */
    char held[64];                              /* the path of what we hold, not of what the */
    snprintf(held, sizeof held, "/proc/self/fd/%d", fd);    /* target holds now (it may exec) */
    ssize_t n = readlink(held, path, sizeof path - 1);
    path[n < 0 ? 0 : n] = 0;
    if (same_inside(fd, path)) {
        opened++;
    } else {
        leaks++;
        printf("LEAK pid=%s what=%s path=%s\n", pid, what, path);
        fflush(stdout);
    }
    close(fd);
}

static void try_dir(const char *pid, const char *dir)
{
    char name[PATH_MAX];
    snprintf(name, sizeof name, "/proc/%s/%s", pid, dir);
    DIR *d = opendir(name);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(name, sizeof name, "%s/%s", dir, e->d_name);
        try_link(pid, name);
    }
    closedir(d);
}

static void try_environ(const char *pid)
{
    char name[64], buf[65536];
    snprintf(name, sizeof name, "/proc/%s/environ", pid);
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;                                 /* EACCES shows up here, or no mm (exited) */
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == 0)
            buf[i] = '\n';
    buf[n] = 0;
    if (strstr(buf, marker)) {
        leaks++;
        printf("LEAK pid=%s what=environ\n", pid);
        fflush(stdout);
    } else {
        opened++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SECONDS MARKER\n", argv[0]);
        return 2;
    }
    marker = argv[2];
    char self[32];
    snprintf(self, sizeof self, "%d", getpid());
    time_t end = time(NULL) + atoi(argv[1]);
    long scans = 0;
    printf("READY\n");
    fflush(stdout);
    signal(SIGTERM, on_term);
    while (!stop && time(NULL) < end) {
        DIR *proc = opendir("/proc");
        struct dirent *e;
        while (proc && (e = readdir(proc)) != NULL) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9' || strcmp(e->d_name, self) == 0)
                continue;
            seen++;
            try_link(e->d_name, "exe");
            try_link(e->d_name, "root");
            try_link(e->d_name, "cwd");
            try_environ(e->d_name);
            try_dir(e->d_name, "fd");
            try_dir(e->d_name, "map_files");
        }
        if (proc)
            closedir(proc);
        scans++;
    }
    printf("DONE scans=%ld seen=%ld opened=%ld leaks=%ld\n", scans, seen, opened, leaks);
    return leaks ? 1 : 0;
}
