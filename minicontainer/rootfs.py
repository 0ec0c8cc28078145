"""The container's filesystem view: everything mounted before its root is switched.

    man 7 mount_namespaces, man 2 mount, man 5 proc, man 5 sysfs, man 4 null, man 7 pty
    The steps below run in the container's PID 1, inside its new mount namespace; the host
    never sees these mounts, and they vanish with the namespace when the container exits.

    make_mounts_private   mount --make-rprivate /         nothing propagates back to the host
    mount_rootfs          mount -t overlay …  merged      image below, container's writes above
    mount_proc            mount -t proc proc merged/proc  shows only the new PID namespace
    mount_sys             mount -t sysfs -o ro …          read-only; shows the new netns's devices
    mount_cgroup          mount -t cgroup2 -o ro …        read-only; thanks to the cgroup namespace
                          (v1: one per hierarchy)         its root is the container's own group
    mount_dev             a small tmpfs /dev with null, zero, full, random, urandom, tty
                          bound from the host's, a private devpts for ptmx, /dev/shm, /dev/mqueue

Device nodes: the container's root keeps CAP_MKNOD (Docker's default set), so it could create
a node for the host's disk. Docker stops that with the devices cgroup; here every writable
filesystem of the container is mounted `nodev` instead (the overlay root, /dev, /dev/shm), so
a node made there cannot be opened, and the six devices a program expects are bind mounts of
the host's own nodes (each bind mount keeps the host /dev's permission to open devices).
"""
from __future__ import annotations

import os

from .kernel.openat2 import open_in_root
from .kernel.mount import (MS_BIND, MS_NODEV, MS_REMOUNT, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
                           MS_STRICTATIME, mount, mount_flag_names, mount_options)

# The character devices every container gets (Docker's default set), bound from the host.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}


def mount_fs(ctx, fstype: str, target: str, flags: int, data: str | None, why: str, man: str) -> None:
    """mkdir -p TARGET && mount -t FSTYPE -o OPTIONS FSTYPE TARGET, narrated."""
    os.makedirs(target, exist_ok=True)
    opts = mount_options(flags, data)
    ctx.explain.step(f"mount {fstype} on {target[len(ctx.merged):] or '/'}",
                     f"mount -t {fstype}{' -o ' + opts if opts else ''} {fstype} {target}",
                     f"mount(\"{fstype}\", \"{target}\", \"{fstype}\", {mount_flag_names(flags)}"
                     + (f", \"{data}\")" if data else ")"), man, why)
    mount(fstype, target, fstype, flags, data)


def make_mounts_private(ctx) -> None:
    ctx.explain.step("make every mount private to this namespace",
                     "mount --make-rprivate /", "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE)",
                     "mount_namespaces(7)",
                     "the new mount namespace is a copy of the host's; without this, mounts "
                     "made here could propagate back to the host")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def mount_rootfs(ctx) -> None:
    ov = ctx.overlay
    options = ov.options + overlay_extra_options(ctx)
    ctx.explain.define("IMAGE", str(ov.lower))
    ctx.explain.step("mount the container's root filesystem (overlayfs)",
                     f"mount -t overlay overlay -o nodev,{options} {ov.merged}",
                     f"mount(\"overlay\", \"{ov.merged}\", \"overlay\", MS_NODEV, \"{options}\")",
                     "mount(8) overlay, Documentation/filesystems/overlayfs.rst",
                     "the image stays read-only below; every write lands in this container's "
                     "upper/ directory, so starting costs the same for any image size")
    mount("overlay", str(ov.merged), "overlay", MS_NODEV, options)


def overlay_extra_options(ctx) -> str:
    """Rootless: overlayfs keeps its own metadata (opaque dirs, redirects) in trusted.*
    xattrs, which only the host's root may write; `userxattr` uses user.overlay.* instead."""
    return ",userxattr" if ctx.userns is not None else ""


def mount_proc(ctx) -> None:
    mount_fs(ctx, "proc", f"{ctx.merged}/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None,
             "a fresh /proc lists only the processes of the new PID namespace (ps shows PID 1)",
             "proc(5), pid_namespaces(7)")


def mount_sys(ctx) -> None:
    if ctx.userns is not None and ctx.network_mode.kind == "host":
        bind_host_sys(ctx)
        return
    mount_fs(ctx, "sysfs", f"{ctx.merged}/sys", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None,
             "read-only, so the container cannot change kernel settings; /sys/class/net shows "
             "only the new network namespace's interfaces", "sysfs(5)")


def bind_host_sys(ctx) -> None:
    """Rootless with --net host: the kernel lets a user namespace mount a sysfs only with a
    network namespace of its own, so the host's /sys is bound (recursively: its submounts are
    locked to it) and made read-only."""
    target = f"{ctx.merged}/sys"
    ctx.explain.step("bind the host's /sys read-only (rootless, --net host)",
                     f"mount --rbind /sys {target} && mount -o remount,bind,ro {target}",
                     f"mount(\"/sys\", \"{target}\", NULL, MS_BIND|MS_REC), then MS_REMOUNT|MS_BIND|MS_RDONLY",
                     "sysfs(5), user_namespaces(7)",
                     "a new sysfs needs a network namespace owned by our user namespace; --net host has none")
    os.makedirs(target, exist_ok=True)
    mount("/sys", target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(target))


def locked_flags(path: str) -> int:
    """nosuid/nodev/noexec of the mount at `path`: a bind remount sets every flag at once, and
    in a user namespace the ones a mount came with from the host may not be dropped (EPERM)."""
    f = os.statvfs(path).f_flag
    return ((MS_NOSUID if f & os.ST_NOSUID else 0) | (MS_NODEV if f & os.ST_NODEV else 0)
            | (MS_NOEXEC if f & os.ST_NOEXEC else 0))


def mount_cgroup(ctx) -> None:
    """/sys/fs/cgroup, read-only, as Docker mounts it. The setup child unshared the cgroup
    namespace *after* joining the container's cgroup, so a fresh cgroup mount has that group
    as its root: the container sees its own limits (memory.max, pids.max …) and nothing
    above them. cgroup v2: one mount. v1 or hybrid: a tmpfs with one mount per hierarchy,
    named as on the host (memory/, cpu,cpuacct/ …, unified/)."""
    from .cgroups.layout import read_cgroup_mounts
    top = "/sys/fs/cgroup"
    ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    target = f"{ctx.merged}{top}"
    mounts = [(point, fstype, opts) for point, fstype, opts in read_cgroup_mounts()
              if point == top or os.path.dirname(point) == top]
    if not mounts:
        return                                       # no cgroup filesystem on this host
    why = ("read-only: the container can read its own limits and usage, not change them; the "
           "cgroup namespace makes its own group the root of the tree")
    if os.path.ismount(target):                      # rootless --net host: bound with /sys
        mount_fs(ctx, "tmpfs", target, ro, "mode=755,size=4k",
                 "cover the host's cgroup mounts that came with the bound /sys: in a user "
                 "namespace they cannot be unmounted, and the same cgroup2 cannot be mounted "
                 "again on the very same spot (EBUSY)", "tmpfs(5), mount_namespaces(7)")
    if any(point == top for point, _, _ in mounts):  # unified: one cgroup2 tree
        mount_fs(ctx, "cgroup2", target, ro, None, why, "cgroups(7), cgroup_namespaces(7)")
        return
    mount_fs(ctx, "tmpfs", target, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k",
             "v1: a small directory to hold one mount per hierarchy, as on the host", "tmpfs(5)")
    for point, fstype, opts in mounts:
        name = os.path.basename(point)
        if fstype == "cgroup2":
            mount_fs(ctx, "cgroup2", f"{target}/{name}", ro, None, why, "cgroups(7)")
            continue
        wanted = sorted(opts & V1_OPTIONS) + sorted(o for o in opts if o.startswith("name="))
        if not wanted:
            continue
        data = ",".join(wanted if opts & V1_OPTIONS else ["none"] + wanted)
        mount_fs(ctx, "cgroup", f"{target}/{name}", ro, data, why, "cgroups(7)")
    for entry in os.scandir(top):                    # cpu -> cpu,cpuacct: the host's aliases
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), f"{target}/{entry.name}")
    mount(None, target, None, MS_REMOUNT | ro, "mode=755,size=64k")   # the tmpfs too


# The v1 controllers a hierarchy may carry (mountinfo lists them among its super options).
V1_OPTIONS = frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls",
                        "net_prio", "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc"})


def mount_dev(ctx) -> None:
    """A minimal /dev: a tmpfs with six device nodes, a private devpts, shm and mqueue."""
    dev = f"{ctx.merged}/dev"
    mount_fs(ctx, "tmpfs", dev, MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=755,size=65536k",
             "the host's /dev holds every disk and device; the container gets only a safe few "
             "(nodev: a device node created here later cannot be opened)", "tmpfs(5)")
    ctx.explain.detail(f"touch {dev}/null && mount --bind /dev/null {dev}/null   "
                       "# …and zero, full, random, urandom, tty", "the devices every program expects")
    for name in DEVICES:
        path = f"{dev}/{name}"
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o666))
        mount(f"/dev/{name}", path, None, MS_BIND)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    mount_fs(ctx, "devpts", f"{dev}/pts", MS_NOSUID | MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620" + ("" if tty_gid_unmapped(ctx) else ",gid=5"),
             "a private set of pseudo-terminals: the container cannot see or open the host's",
             "pts(4), devpts")
    mount_fs(ctx, "tmpfs", f"{dev}/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
             "POSIX shared memory, private to this container", "shm_overview(7)")
    mount_fs(ctx, "mqueue", f"{dev}/mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, None,
             "POSIX message queues of the new IPC namespace", "mq_overview(7)")


def tty_gid_unmapped(ctx) -> bool:
    """Rootless with the single-id map: group 5 (tty) does not exist inside, and devpts
    refuses a gid= it cannot map (EINVAL)."""
    return ctx.userns is not None and not ctx.userns.mapping.maps_inside(0, 5)


def bind_into_rootfs(ctx, source: str, target: str, *, directory: bool = False, flags: int = 0) -> None:
    """mount --bind SOURCE MERGED/TARGET, with TARGET resolved *inside* the container's root
    (kernel/openat2.py): a symlink in the image can never redirect the mount onto the host.
    Missing targets are created (a file, or directories for `directory`)."""
    fd = open_in_root(ctx.merged, target, directory=directory)
    try:
        mount(source, f"/proc/self/fd/{fd}", None, MS_BIND)
    finally:
        os.close(fd)
    if flags:                       # e.g. read-only: a bind takes flags only on a remount, and
        fd = open_in_root(ctx.merged, target, directory=directory)   # of the new mount: look again
        try:
            mount(None, f"/proc/self/fd/{fd}", None, MS_REMOUNT | MS_BIND | flags)
        finally:
            os.close(fd)
