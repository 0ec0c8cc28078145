#!/usr/bin/env python3
"""minirun — a container runtime you build yourself, level by level (labs/build/README.md).

THIS IS THE SKELETON: every function marked TODO raises NotImplementedError until you write it.
Work level by level; after each one run its tests, e.g.
    sudo .venv/bin/python -m pytest labs/build/tests/test_level1_fork_exec.py

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
    """Turn a C-style -1 into an OSError that names the call."""
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


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
    if shared:
        raise OSError(errno.EPERM, f"mounts are still shared with the host ({shared[0]}, …): "
                                   "make_mounts_private() must run first")


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
    # TODO: os.execvp(argv[0], argv). It only returns by raising:
    #   FileNotFoundError → print 'minirun: CMD: command not found' to stderr, os._exit(127)
    #   PermissionError   → print '… permission denied', os._exit(126)
    raise NotImplementedError("level 1: exec_command() is not written yet")


def wait_for(pid: int) -> int:
    """waitpid(2) and turn the status into a shell's exit status: the code, or 128+N for signal N."""
    # TODO: _, status = os.waitpid(pid, 0); if os.WIFSIGNALED(status) return 128 + os.WTERMSIG(status),
    #       else return os.WEXITSTATUS(status).
    raise NotImplementedError("level 1: wait_for() is not written yet")


# ── level 2: chroot ───────────────────────────────────────────────────────────────────────

def enter_chroot(rootfs: str) -> None:
    """chroot(2) into rootfs, then chdir("/") — else the working directory stays outside."""
    # TODO: os.chroot(rootfs), then os.chdir("/") — try it without the chdir and run `pwd`.
    raise NotImplementedError("level 2: enter_chroot() is not written yet")


# ── level 3: mounts ───────────────────────────────────────────────────────────────────────

def make_mounts_private() -> None:
    """mount --make-rprivate /: our new mount namespace must not pass mounts back to the host."""
    # TODO: mount(None, "/", None, MS_REC | MS_PRIVATE)   (the helper mount() is above)
    raise NotImplementedError("level 3: make_mounts_private() is not written yet")


def mount_proc(rootfs: str) -> None:
    """mount -t proc proc ROOTFS/proc (nosuid, nodev, noexec)."""
    # TODO: os.makedirs(ROOTFS/proc, exist_ok=True), then
    #       mount("proc", ROOTFS/proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    raise NotImplementedError("level 3: mount_proc() is not written yet")


# ── level 4: pivot_root ───────────────────────────────────────────────────────────────────

def enter_pivot_root(rootfs: str) -> None:
    """Make rootfs the root mount and unmount the old root: no path leads back to the host."""
    # TODO 1: bind-mount rootfs onto itself: mount(rootfs, rootfs, None, MS_BIND | MS_REC)
    # TODO 2: os.chdir(rootfs); pivot_root(".", ".")   (the helper is above)
    # TODO 3: umount2(".", MNT_DETACH) — the old root sits on top of "." now
    # TODO 4: os.chdir("/")
    raise NotImplementedError("level 4: enter_pivot_root() is not written yet")


# ── level 5: namespaces ───────────────────────────────────────────────────────────────────

NAMESPACE_FLAGS = {"uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "pid": CLONE_NEWPID, "net": CLONE_NEWNET}


def namespace_flags(names: list[str]) -> int:
    """The CLONE_NEW* flags for unshare(2), ORed together, for names like ["uts", "pid"]."""
    # TODO: OR together NAMESPACE_FLAGS[name] for every name; an unknown name raises
    #       ValueError(f"unknown namespace {name!r}: use uts, ipc, pid, net").
    raise NotImplementedError("level 5: namespace_flags() is not written yet")


def set_hostname(name: str) -> None:
    """sethostname(2) — in our own UTS namespace, so the host keeps its name."""
    # TODO: socket.sethostname(name)
    raise NotImplementedError("level 5: set_hostname() is not written yet")


def become_pid1() -> None:
    """After unshare(CLONE_NEWPID) only our next child is PID 1 of the new namespace: fork; the
    child returns (and goes on to exec the command); this process waits and exits with its status."""
    # TODO: pid = os.fork(); in the parent (pid != 0): os._exit(wait_for(pid)).
    #       The child simply returns: it is PID 1 now and goes on to exec the command.
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
    # TODO: files = LIMIT_FILES[cgroup_version()]; for memory and pids: mkdir the group
    #       (paths[controller].mkdir(parents=True, exist_ok=True)) and, if the value is not
    #       None, write str(value) into group / files[controller].
    raise NotImplementedError("level 6: create_cgroup() is not written yet")


def join_cgroup(paths: dict[str, Path], pid: int) -> None:
    """echo PID > cgroup.procs in every group: the process and all its future children are in."""
    # TODO: for each group in set(paths.values()): write str(pid) into group / "cgroup.procs".
    raise NotImplementedError("level 6: join_cgroup() is not written yet")


def remove_cgroup(paths: dict[str, Path]) -> None:
    """Kill what is left in the group(s) (SIGKILL to each PID in cgroup.procs: the command may
    have left background processes), wait until they are gone, then rmdir — a group that still
    holds a process cannot be removed (EBUSY)."""
    # TODO: for each group in set(paths.values()) that exists: until group/cgroup.procs is empty,
    #       os.kill(pid, signal.SIGKILL) each PID listed (ignore ProcessLookupError) and sleep
    #       10 ms; then group.rmdir().
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
    # TODO: host, inside = cfg.veth + "h", cfg.veth + "c"; with the ip() helper:
    #   ip link add HOST type veth peer name INSIDE
    #   ip link set INSIDE netns CHILD_PID
    #   ip addr add host_address(cfg.net) dev HOST
    #   ip link set HOST up
    raise NotImplementedError("level 7: connect_host_side() is not written yet")


def configure_container_side(cfg: Config) -> None:
    """Child, inside the new network namespace: rename its end to eth0, address it, bring up eth0 and lo."""
    # TODO: with the ip() helper: rename cfg.veth + "c" to eth0 (ip link set X name eth0),
    #       ip addr add cfg.net dev eth0, ip link set eth0 up, ip link set lo up
    raise NotImplementedError("level 7: configure_container_side() is not written yet")


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
            print(f"minirun: {e}", file=sys.stderr)
            os._exit(125)
    os.close(ready_w), os.close(go_r)
    try:
        if os.read(ready_r, 1) == b"1" and cfg.net:    # the child has its namespaces now
            connect_host_side(cfg, pid)
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
    flags = namespace_flags(cfg.namespaces)
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
    return run(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
