"""Namespaces: each one gives a process its own copy of one global resource.

    man 7 namespaces, man 2 unshare, man 2 setns       shell: unshare(1), nsenter(1)

    namespace  flag              a process inside sees its own…        see /proc/PID/ns/…
    mount      CLONE_NEWNS       mount table (what is mounted where)   mnt
    uts        CLONE_NEWUTS      hostname and domain name              uts
    ipc        CLONE_NEWIPC      System V IPC objects, POSIX queues    ipc
    network    CLONE_NEWNET      interfaces, routes, firewall, ports   net
    pid        CLONE_NEWPID      process numbers (its first is PID 1)  pid
    cgroup     CLONE_NEWCGROUP   root of the cgroup tree               cgroup
    user       CLONE_NEWUSER     user and group IDs (root inside only) user

unshare(CLONE_NEWPID) is special: the caller stays where it is and only its *next child*
becomes PID 1 of the new namespace — that is why `unshare --pid` needs `--fork`, and why the
run sequence forks twice.
"""
from __future__ import annotations

import os

from .syscalls import check, libc

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# name → (flag, unshare(1) option, what it isolates); in the order runc creates them.
NAMESPACES = {
    "user": (CLONE_NEWUSER, "--user", "user and group IDs"),
    "mnt": (CLONE_NEWNS, "--mount", "the mount table"),
    "uts": (CLONE_NEWUTS, "--uts", "the hostname"),
    "ipc": (CLONE_NEWIPC, "--ipc", "System V IPC and POSIX message queues"),
    "net": (CLONE_NEWNET, "--net", "network interfaces, routes and ports"),
    "pid": (CLONE_NEWPID, "--pid", "process IDs"),
    "cgroup": (CLONE_NEWCGROUP, "--cgroup", "the view of the cgroup tree"),
}


def flag_names(flags: int) -> str:
    """CLONE_NEWNS|CLONE_NEWPID… for a flag mask, as a student would read it in strace."""
    names = {v: k for k, v in globals().items() if k.startswith("CLONE_NEW")}
    return "|".join(names[f] for f in sorted(names) if flags & f) or "0"


def unshare(flags: int) -> None:
    """unshare(2): move the calling process into new namespaces of the given kinds."""
    if hasattr(os, "unshare"):                       # Python ≥ 3.12
        try:
            os.unshare(flags)
            return
        except OSError as e:
            from ..errors import SyscallError
            raise SyscallError("unshare", (flag_names(flags),), e.errno) from None
    check(libc.unshare(flags), "unshare", flag_names(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace that the open /proc/PID/ns/* file `fd` refers to."""
    if hasattr(os, "setns"):
        try:
            os.setns(fd, nstype)
            return
        except OSError as e:
            from ..errors import SyscallError
            raise SyscallError("setns", (fd, flag_names(nstype)), e.errno) from None
    check(libc.setns(fd, nstype), "setns", fd, flag_names(nstype))


def namespace_ids(pid: int | str = "self") -> dict[str, int]:
    """The namespaces a process is in, by inode number: /proc/PID/ns/pid reads 'pid:[4026531836]',
    and two processes whose links show the same number share that namespace (`lsns` lists them).
    A namespace the kernel does not have, or a process that is gone, is left out."""
    out = {}
    for name in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts"):
        try:
            out[name] = int(os.readlink(f"/proc/{pid}/ns/{name}").split("[")[1].rstrip("]"))
        except (OSError, IndexError, ValueError):
            pass
    return out
