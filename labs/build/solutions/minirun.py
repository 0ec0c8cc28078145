#!/usr/bin/env python3
"""minirun — a container runtime you build yourself, level by level (labs/build/README.md).

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
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        print(f"minirun: {argv[0]}: command not found", file=sys.stderr)
        os._exit(127)
    except PermissionError:
        print(f"minirun: {argv[0]}: permission denied", file=sys.stderr)
        os._exit(126)


def wait_for(pid: int) -> int:
    """waitpid(2) and turn the status into a shell's exit status: the code, or 128+N for signal N."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


# ── level 2: chroot ───────────────────────────────────────────────────────────────────────

def enter_chroot(rootfs: str) -> None:
    """chroot(2) into rootfs, then chdir("/") — else the working directory stays outside."""
    os.chroot(rootfs)
    os.chdir("/")


# ── level 3: mounts ───────────────────────────────────────────────────────────────────────

def make_mounts_private() -> None:
    """mount --make-rprivate /: our new mount namespace must not pass mounts back to the host."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def mount_proc(rootfs: str) -> None:
    """mount -t proc proc ROOTFS/proc (nosuid, nodev, noexec)."""
    target = os.path.join(rootfs, "proc")
    os.makedirs(target, exist_ok=True)
    mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


# ── level 4: pivot_root ───────────────────────────────────────────────────────────────────

def enter_pivot_root(rootfs: str) -> None:
    """Make rootfs the root mount and unmount the old root: no path leads back to the host."""
    mount(rootfs, rootfs, None, MS_BIND | MS_REC)     # pivot_root wants a mount point
    os.chdir(rootfs)
    pivot_root(".", ".")                              # the old root now sits on top of "."
    umount2(".", MNT_DETACH)                          # …and is detached
    os.chdir("/")


# ── level 5: namespaces ───────────────────────────────────────────────────────────────────

NAMESPACE_FLAGS = {"uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "pid": CLONE_NEWPID, "net": CLONE_NEWNET}


def namespace_flags(names: list[str]) -> int:
    """The CLONE_NEW* flags for unshare(2), ORed together, for names like ["uts", "pid"]."""
    flags = 0
    for name in names:
        if name not in NAMESPACE_FLAGS:
            raise ValueError(f"unknown namespace {name!r}: use {', '.join(NAMESPACE_FLAGS)}")
        flags |= NAMESPACE_FLAGS[name]
    return flags


def set_hostname(name: str) -> None:
    """sethostname(2) — in our own UTS namespace, so the host keeps its name."""
    socket.sethostname(name)


def become_pid1() -> None:
    """After unshare(CLONE_NEWPID) only our next child is PID 1 of the new namespace: fork; the
    child returns (and goes on to exec the command); this process waits and exits with its status."""
    pid = os.fork()
    if pid != 0:
        os._exit(wait_for(pid))


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
    files = LIMIT_FILES[cgroup_version()]
    for controller, value in (("memory", memory), ("pids", pids)):
        group = paths[controller]
        group.mkdir(parents=True, exist_ok=True)
        if value is not None:
            (group / files[controller]).write_text(str(value))


def join_cgroup(paths: dict[str, Path], pid: int) -> None:
    """echo PID > cgroup.procs in every group: the process and all its future children are in."""
    for group in set(paths.values()):
        (group / "cgroup.procs").write_text(str(pid))


def remove_cgroup(paths: dict[str, Path]) -> None:
    """Kill what is left in the group(s) (SIGKILL to each PID in cgroup.procs: the command may
    have left background processes), wait until they are gone, then rmdir — a group that still
    holds a process cannot be removed (EBUSY)."""
    for group in set(paths.values()):
        if not group.exists():
            continue
        for _ in range(500):                          # at most ~5 s
            pids = (group / "cgroup.procs").read_text().split()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        group.rmdir()


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
    host, inside = cfg.veth + "h", cfg.veth + "c"
    ip("link", "add", host, "type", "veth", "peer", "name", inside)
    ip("link", "set", inside, "netns", str(child_pid))
    ip("addr", "add", host_address(cfg.net), "dev", host)
    ip("link", "set", host, "up")


def configure_container_side(cfg: Config) -> None:
    """Child, inside the new network namespace: rename its end to eth0, address it, bring up eth0 and lo."""
    ip("link", "set", cfg.veth + "c", "name", "eth0")
    ip("addr", "add", cfg.net, "dev", "eth0")
    ip("link", "set", "eth0", "up")
    ip("link", "set", "lo", "up")


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
