#!/usr/bin/env python3
"""minirun — a container runtime you build yourself, level by level (labs/build/README.md).

THIS IS THE SKELETON: every function marked TODO raises NotImplementedError until you write it.
Work on a copy of your own (this file is tracked, others start from it too), level by level, and
after each level run its tests with a temporary directory of your own (README.md):
    cp labs/build/minirun.py ~/minirun-$ME.py; export MINIRUN=~/minirun-$ME.py
    .venv/bin/python -m pytest --basetemp /tmp/minirun-$ME labs/build/tests/test_level1_fork_exec.py

    python minirun.py [OPTIONS] -- COMMAND [ARGS...]        (as root)

    level 1  fork/exec     run COMMAND in a child process, return its exit status
    level 2  chroot        --rootfs DIR --isolation chroot: the child sees DIR as /
    level 3  mounts        --mount-proc: a private mount namespace with its own /proc
    level 4  pivot_root    --rootfs DIR (default isolation): the host's / is unmounted, no way back
    level 5  namespaces    --ns uts,ipc,pid,net --hostname NAME: own hostname, PID 1, IPC, network
    level 6  cgroups       --memory BYTES --pids N: limits the kernel enforces
    level 7  network       --net 10.99.0.2/24: a veth cable from the host into the container

Every step is one function with the system call it makes. Only the standard library: ctypes for
the calls Python 3.11 does not offer (unshare, mount, umount2, pivot_root).
"""
from __future__ import annotations

import argparse
import ctypes
import errno
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

# ── the kernel interface (given) ──────────────────────────────────────────────────────────

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
MNT_DETACH = 2
SYS_pivot_root = 155                       # x86_64; see /usr/include/asm/unistd_64.h


def check(result: int, what: str) -> None:
    """Turn a C-style -1 into an OSError that names the call and the errno (look it up in the
    ERRORS section of the call's man page)."""
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {errno.errorcode.get(err, err)} ({os.strerror(err)})")


def unshare(flags: int) -> None:
    check(libc.unshare(flags), f"unshare({flags:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount({target})")


def umount2(target: str, flags: int) -> None:
    check(libc.umount2(target.encode(), flags), f"umount2({target})")


def pivot_root(new_root: str, put_old: str) -> None:
    check(libc.syscall(SYS_pivot_root, new_root.encode(), put_old.encode()), "pivot_root")


def assert_mounts_private() -> None:
    """Given: refuse to mount anything while a mount could still propagate to the host. In
    /proc/self/mountinfo a shared mount carries a "shared:N" tag (mount_namespaces(7))."""
    with open("/proc/self/mountinfo") as f:
        shared = [line.split()[4] for line in f if " shared:" in line.split(" - ")[0]]
    if "/" in shared:
        raise OSError(errno.EPERM, "/ is still a shared mount after make_mounts_private(): a mount made "
                                   "here would appear on the host too")
    if shared:
        raise OSError(errno.EPERM, f"/ is private, but {len(shared)} mounts below it are still shared "
                                   f"with the host ({', '.join(shared[:3])}, …): make_mounts_private() "
                                   "must reach every mount under / too")


# ── configuration (given) ─────────────────────────────────────────────────────────────────

@dataclass
class Config:
    command: list[str]
    rootfs: str | None = None
    isolation: str = "pivot_root"                     # or "chroot"
    mount_proc: bool = False
    namespaces: list[str] = field(default_factory=list)   # uts, ipc, pid, net
    hostname: str | None = None
    memory: int | None = None                          # bytes
    pids: int | None = None
    net: str | None = None                             # the container's address, e.g. 10.99.0.2/24
    veth: str = ""                                     # interface name prefix, set by run()


def parse_args(argv: list[str]) -> Config:
    p = argparse.ArgumentParser(prog="minirun", description="a container runtime, built by hand")
    p.add_argument("--rootfs")
    p.add_argument("--isolation", choices=["pivot_root", "chroot"], default="pivot_root")
    p.add_argument("--mount-proc", action="store_true")
    p.add_argument("--ns", default="", help="comma-separated: uts,ipc,pid,net")
    p.add_argument("--hostname")
    p.add_argument("--memory", type=int)
    p.add_argument("--pids", type=int)
    p.add_argument("--net")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command given: minirun [OPTIONS] -- COMMAND [ARGS...]")
    namespaces = [n for n in a.ns.split(",") if n]
    if a.hostname and "uts" not in namespaces:
        namespaces.append("uts")                      # never rename the host
    if a.net and "net" not in namespaces:
        namespaces.append("net")
    return Config(command, a.rootfs and os.path.abspath(a.rootfs), a.isolation, a.mount_proc, namespaces,
                  a.hostname, a.memory, a.pids, a.net)


# ── level 1: fork/exec ────────────────────────────────────────────────────────────────────

def exec_command(argv: list[str]) -> None:
    """Replace this process with the command (execvp(3)); never returns.
    Exit statuses as a shell gives them: 127 command not found, 126 found but not executable."""
    # TODO: Which call replaces this process with another program and searches $PATH as a shell
    #   does? (execvp(3); Python's os module has it.) When it works it never returns — so how does
    #   it tell you that it did not? Try it in a Python shell on "no-such-command" and on
    #   "/etc/passwd", and give each case the shell's status from the docstring, with a one-line
    #   message on stderr ("not found" for 127). We are a forked child: why must it leave with
    #   os._exit() and not sys.exit()? (Look at what run() does with exceptions.)
    raise NotImplementedError("level 1: exec_command() is not written yet")


def wait_for(pid: int) -> int:
    """waitpid(2) and turn the status into a shell's exit status: the code, or 128+N for signal N."""
    # TODO: waitpid(2) hands back a status *word*, not an exit code. Which macros of wait(2) take
    #   it apart — did the child exit, or did a signal kill it, and which? (The os module has them
    #   under the same names.) Compare with a shell: sh -c 'kill -9 $$'; echo $?
    raise NotImplementedError("level 1: wait_for() is not written yet")


# ── level 2: chroot ───────────────────────────────────────────────────────────────────────

def enter_chroot(rootfs: str) -> None:
    """chroot(2): from now on this process, and the command it becomes, see rootfs as /."""
    # TODO: chroot(2) changes what "/" means for this process — but where does the process stand
    #   afterwards? Read the NOTES of chroot(2), then make sure the command starts inside the new
    #   root. (Try yours without that step: --isolation chroot -- /bin/sh -c 'pwd; ls'.)
    raise NotImplementedError("level 2: enter_chroot() is not written yet")


# ── level 3: mounts ───────────────────────────────────────────────────────────────────────

def make_mounts_private() -> None:
    """mount --make-rprivate /: our new mount namespace must not pass mounts back to the host."""
    # TODO: Read "Shared subtrees" in mount_namespaces(7): a new mount namespace starts with copies
    #   of the host's mounts that are still *shared* with them. Which mount(2) flag makes a mount
    #   private, and which one makes the change reach every mount below / as well? The shell's way
    #   is `mount --make-rprivate /`; the helper mount() above takes the flags.
    raise NotImplementedError("level 3: make_mounts_private() is not written yet")


def mount_proc(rootfs: str) -> None:
    """mount -t proc proc ROOTFS/proc (nosuid, nodev, noexec)."""
    # TODO: proc(5) is a file system like any other: mount it ("proc" is its type; the source is
    #   only a name) on the proc directory inside rootfs, and create that directory if it is
    #   missing. Which mount(2) flags stand for nosuid, nodev, noexec? (They are defined above.)
    raise NotImplementedError("level 3: mount_proc() is not written yet")


# ── level 4: pivot_root ───────────────────────────────────────────────────────────────────

def enter_pivot_root(rootfs: str) -> None:
    """Make rootfs the root mount and unmount the old root: no path leads back to the host."""
    # TODO: pivot_root(2) swaps the root mount, and its ERRORS section lists its conditions: which
    #   one does a plain directory like rootfs not meet, and how does a bind mount of rootfs onto
    #   itself meet it (which flags, so that mounts below come along)? The NOTES describe a call
    #   that passes the same directory twice, so no directory for the old root is needed: where
    #   is the old root afterwards, and how do you unmount it while it is still busy
    #   (umount2(2))? Where must the process stand at the end?
    raise NotImplementedError("level 4: enter_pivot_root() is not written yet")


# ── level 5: namespaces ───────────────────────────────────────────────────────────────────

NAMESPACE_FLAGS = {"uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "pid": CLONE_NEWPID, "net": CLONE_NEWNET}


def namespace_flags(names: list[str]) -> int:
    """The CLONE_NEW* flags for unshare(2), ORed together, for names like ["uts", "pid"]."""
    # TODO: unshare(2) takes one integer in which every namespace is one bit (NAMESPACE_FLAGS).
    #   How do you combine bits in Python? A name that is not in the table is a typo of the
    #   user's: raise a ValueError whose message names it, and the names that exist.
    raise NotImplementedError("level 5: namespace_flags() is not written yet")


def set_hostname(name: str) -> None:
    """sethostname(2) — in our own UTS namespace, so the host keeps its name."""
    # TODO: Which system call sets the hostname (hostname(1) names it), and which module of
    #   Python's standard library offers it? Why is it harmless here, but not on the host?
    raise NotImplementedError("level 5: set_hostname() is not written yet")


def become_pid1() -> None:
    """Make the command PID 1 of the PID namespace that child() has just unshared."""
    # TODO: pid_namespaces(7): unshare(CLONE_NEWPID) does not move the caller — who becomes PID 1
    #   of the new namespace? Create that process. The parent does nothing but wait for it and
    #   leave with its status (which level-1 function computes it? which exit is right in a
    #   forked child?); the new process returns, and child() goes on to exec the command.
    raise NotImplementedError("level 5: become_pid1() is not written yet")


# ── level 6: cgroups ──────────────────────────────────────────────────────────────────────

CGROUP_ROOT = Path("/sys/fs/cgroup")
LIMIT_FILES = {2: {"memory": "memory.max", "pids": "pids.max"},
               1: {"memory": "memory.limit_in_bytes", "pids": "pids.max"}}


def cgroup_version() -> int:
    """2 when /sys/fs/cgroup is one cgroup2 tree, else 1 (one tree per controller). Given."""
    return 2 if (CGROUP_ROOT / "cgroup.controllers").exists() else 1


def cgroup_paths(name: str) -> dict[str, Path]:
    """controller → the group's directory. Given: v2 has one directory, v1 one per controller.
    On v2 the controllers must be enabled top-down in cgroup.subtree_control."""
    if cgroup_version() == 2:
        parent = CGROUP_ROOT / "minirun"
        parent.mkdir(exist_ok=True)
        for group in (CGROUP_ROOT, parent):
            (group / "cgroup.subtree_control").write_text("+memory +pids")
        return {"memory": parent / name, "pids": parent / name}
    return {c: CGROUP_ROOT / c / "minirun" / name for c in ("memory", "pids")}


def create_cgroup(paths: dict[str, Path], memory: int | None, pids: int | None) -> None:
    """mkdir the group(s) and write the limits: memory.max / memory.limit_in_bytes, pids.max."""
    # TODO: cgroups(7): a cgroup is a directory — making the directory makes the group, and
    #   writing a number into one of its files sets a limit. paths says where each controller's
    #   group goes, LIMIT_FILES which file holds which limit on this cgroup version. Make the
    #   groups; write only the limits that were given (None means no limit).
    raise NotImplementedError("level 6: create_cgroup() is not written yet")


def join_cgroup(paths: dict[str, Path], pid: int) -> None:
    """Put the process into every group: it, and all the children it will have, are in."""
    # TODO: cgroups(7): which file of a group does a process ID go into, so that the process and
    #   all its future children are in? (On cgroup v2 both controllers share one directory.)
    raise NotImplementedError("level 6: join_cgroup() is not written yet")


def remove_cgroup(paths: dict[str, Path]) -> None:
    """Remove the group(s) — and first whatever the command left running in them."""
    # TODO: rmdir(2) of a group fails (EBUSY) while a process is still in it, and the command may
    #   have left background processes behind. cgroups(7): which file of a group lists its
    #   processes? How do you end them for sure (signal(7): which signal cannot be caught?), and
    #   how do you know they are gone before you remove the directory — without waiting forever?
    #   A process may exit between your reading and your kill: which exception is that, and why
    #   is it fine?
    raise NotImplementedError("level 6: remove_cgroup() is not written yet")


# ── level 7: network ──────────────────────────────────────────────────────────────────────

def ip(*args: str) -> None:
    """Run `ip …` (iproute2) and fail loudly. Given."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(errno.EIO, f"ip {' '.join(args)}: {result.stderr.strip()}")


def host_address(cidr: str) -> str:
    """10.99.0.2/24 → 10.99.0.1/24: the host's end takes the network's first address. Given."""
    iface = ipaddress.ip_interface(cidr)
    return f"{next(iface.network.hosts())}/{iface.network.prefixlen}"


def connect_host_side(cfg: Config, child_pid: int) -> None:
    """Parent, once the child has its new network namespace: create a veth pair, move one end into
    the child's namespace, give the host's end its address and bring it up."""
    # TODO: veth(4): a pair of interfaces, like a cable with two ends; name the host's end
    #   cfg.veth + "h" and the container's cfg.veth + "c" (configure_container_side looks for it).
    #   With the ip() helper: which ip-link(8) command creates such a pair, and which one hands an
    #   interface to another network namespace — how does it name the namespace of child_pid?
    #   What does the host's end still need before a packet can cross (ip-address(8), and
    #   host_address() above)?
    raise NotImplementedError("level 7: connect_host_side() is not written yet")


def configure_container_side(cfg: Config) -> None:
    """Child, inside the new network namespace: rename its end to eth0, address it, bring up eth0 and lo."""
    # TODO: In the new network namespace there are two links, both down: lo, and the veth end the
    #   parent moved in (still called cfg.veth + "c"). The container expects eth0 with the address
    #   cfg.net: which ip(8) commands rename a link, add an address, switch a link on? And lo —
    #   what does ping 127.0.0.1 need?
    raise NotImplementedError("level 7: configure_container_side() is not written yet")


def error_line(e: BaseException) -> str:
    """Given: the one line minirun prints for an error. A bug (anything but an OSError, ValueError
    or NotImplementedError raised on purpose) also gets its type and the line it came from."""
    if isinstance(e, (OSError, ValueError, NotImplementedError)):
        return f"minirun: {e}"
    here = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__][-1:]
    return f"minirun: {type(e).__name__}: {e}" + "".join(f" (in {f.name}(), line {f.lineno})" for f in here)


# ── the sequence (given) ──────────────────────────────────────────────────────────────────

def run(cfg: Config) -> int:
    """Parent: set up the cgroup, fork the child, do the parent's half, wait, clean up."""
    cfg.veth = f"mr{os.getpid()}"
    paths = cgroup_paths(f"minirun-{os.getpid()}") if cfg.memory or cfg.pids else None
    if paths:
        create_cgroup(paths, cfg.memory, cfg.pids)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r), os.close(go_w)
        try:
            child(cfg, paths, ready_w, go_r)
        except BaseException as e:                     # one line, never a traceback into the room
            print(error_line(e), file=sys.stderr)
            os._exit(125)
    os.close(ready_w), os.close(go_r)
    try:
        try:
            if os.read(ready_r, 1) == b"1" and cfg.net:    # the child has its namespaces now
                connect_host_side(cfg, pid)
        except BaseException:                          # our half failed: the child must not go on
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        try:
            os.write(go_w, b"1")
        except BrokenPipeError:                        # the child failed before it read it
            pass
        os.close(go_w)
        return wait_for(pid)
    finally:
        if paths:
            remove_cgroup(paths)


def child(cfg: Config, paths: dict | None, ready_w: int, go_r: int) -> None:
    """Child: cgroup, namespaces, (wait for the parent), PID 1, network, mounts, root, hostname, exec."""
    if paths:
        join_cgroup(paths, os.getpid())
    flags = namespace_flags(cfg.namespaces) if cfg.namespaces else 0   # level 5 only when asked for
    if cfg.rootfs and (cfg.mount_proc or cfg.isolation == "pivot_root"):
        flags |= CLONE_NEWNS                           # mounts only ever in our own mount namespace
    if flags:
        unshare(flags)
    os.write(ready_w, b"1")
    os.read(go_r, 1)                                   # the parent has done its half
    if flags & CLONE_NEWPID:
        become_pid1()
    if cfg.net:
        configure_container_side(cfg)
    if cfg.rootfs:
        if flags & CLONE_NEWNS:
            make_mounts_private()
            assert_mounts_private()
        if cfg.mount_proc:
            mount_proc(cfg.rootfs)
        if cfg.isolation == "chroot":
            enter_chroot(cfg.rootfs)
        else:
            enter_pivot_root(cfg.rootfs)
    if cfg.hostname:
        set_hostname(cfg.hostname)
    exec_command(cfg.command)


def main(argv: list[str] | None = None) -> int:
    if os.geteuid() != 0:
        print("minirun: run me as root (namespaces, mounts and cgroups need it)", file=sys.stderr)
        return 125
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(cfg)
    except Exception as e:                             # one line, as in the child
        print(error_line(e), file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
