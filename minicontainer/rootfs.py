"""The container's filesystem view: everything mounted before its root is switched.

    man 7 mount_namespaces, man 2 mount, man 5 proc, man 5 sysfs, man 4 null, man 7 pty
    The steps below run in the container's PID 1, inside its new mount namespace; the host
    never sees these mounts, and they vanish with the namespace when the container exits.

    set_propagation       mount --make-rprivate /         nothing propagates back to the host
    mount_rootfs          mount -t overlay …  merged      run: image below, container's writes above
                          mount --rbind ROOT ROOT         OCI: the bundle's root.path, a mount point
    mount_all             the spec's mounts, in order:    (spec.py; `run` asks for Docker's set)
      proc                  mount -t proc proc …/proc     shows only the new PID namespace
      sysfs                 mount -t sysfs -o ro …        read-only; the new netns's devices
      cgroup                mount -t cgroup2 -o ro …      read-only; thanks to the cgroup namespace
                            (v1: one per hierarchy)       its root is the container's own group
      tmpfs, devpts, mqueue …   mount -t TYPE -o OPTIONS  /dev, /dev/pts, /dev/shm, --tmpfs
      bind                  mount --bind SRC …/DEST       volumes, /etc/hosts …, /dev/init
    create_devices        null, zero, full, random, urandom, tty bound from the host's;
                          the spec's linux.devices made with mknod; /dev/fd, stdin … links

Every target is resolved *inside* the root with openat2(RESOLVE_IN_ROOT) (kernel/openat2.py):
a symlink in the image can never redirect a mount onto the host.

Device nodes: the container's root keeps CAP_MKNOD (Docker's default set), so it could create
a node for the host's disk. Docker stops that with the devices cgroup; `run` mounts every
writable filesystem of the container `nodev` instead (the overlay root, /dev, /dev/shm), so
a node made there cannot be opened, and the six devices a program expects are bind mounts of
the host's own nodes (each bind mount keeps the host /dev's permission to open devices).
"""
from __future__ import annotations

import os
from pathlib import Path

from .kernel.openat2 import open_in_root
from .errors import ConfigError, SyscallError
from .kernel.mount import (MS_BIND, MS_NODEV, MS_REMOUNT, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
                           MS_SLAVE, MS_STRICTATIME, mount, mount_flag_names, mount_options)

from .spec import DEFAULT_DEVICES, DEV_LINKS


def mount_fs(ctx, fstype: str, target: str, flags: int, data: str | None, why: str, man: str,
             source: str | None = None) -> None:
    """mkdir -p TARGET && mount -t FSTYPE -o OPTIONS FSTYPE TARGET, narrated."""
    os.makedirs(target, exist_ok=True)
    opts = mount_options(flags, data)
    source = source or fstype
    ctx.explain.step(f"mount {fstype} on {target[len(ctx.merged):] or '/'}",
                     f"mount -t {fstype}{' -o ' + opts if opts else ''} {source} {target}",
                     f"mount(\"{source}\", \"{target}\", \"{fstype}\", {mount_flag_names(flags)}"
                     + (f", \"{data}\")" if data else ")"), man, why)
    mount(source, target, fstype, flags, data)


def set_propagation(ctx) -> None:
    """First: nothing mounted from here on may reach the host. linux.rootfsPropagation slave or
    rslave is applied as it is (mounts still arrive from the host, none go back); anything else
    starts rprivate, and set_root_propagation gives the new / its mode after pivot_root, when
    "shared" can only mean shared among the container's own mounts."""
    kind = ctx.spec.rootfs_propagation or "rprivate"
    if kind not in PROPAGATION:
        raise ConfigError(f"linux.rootfsPropagation {kind!r}: use one of {', '.join(PROPAGATION)}")
    if ctx.spec.namespace("mount") is None:
        return                              # no mount namespace: the caller's mounts stay as they are
    flags = PROPAGATION[kind] if kind in ("slave", "rslave") else MS_PRIVATE | MS_REC
    title = ("make every mount private to this namespace" if flags == MS_PRIVATE | MS_REC
             else f"make every mount {kind} in this namespace")
    ctx.explain.step(title, f"mount --make-{'rprivate' if flags == MS_PRIVATE | MS_REC else kind} /",
                     f"mount(NULL, \"/\", NULL, {mount_flag_names(flags)})", "mount_namespaces(7)",
                     "the new mount namespace is a copy of the host's; without this, mounts "
                     "made here could propagate back to the host")
    mount(None, "/", None, flags)


def set_root_propagation(ctx) -> None:
    """After pivot_root: the new / gets the propagation the spec asks for (runc does the same)."""
    kind = ctx.spec.rootfs_propagation or "rprivate"
    if kind in ("rprivate", "slave", "rslave") or ctx.spec.namespace("mount") is None:
        return
    ctx.explain.step(f"make the container's / {kind}", f"mount --make-{kind} /",
                     f"mount(NULL, \"/\", NULL, {mount_flag_names(PROPAGATION[kind])})",
                     "mount_namespaces(7)", "linux.rootfsPropagation; shared only with the "
                     "container's own mounts, which were private to its namespace")
    mount(None, "/", None, PROPAGATION[kind])


def mount_rootfs(ctx) -> None:
    if ctx.overlay is None:
        bind_root(ctx)
        return
    ov = ctx.overlay
    if ov.disk is not None:                 # --storage-opt size=N: upper/ lives on its own ext4
        from .storage.disk import mount_disk
        mount_disk(ov.disk, ov.upper.parent, ctx.explain)
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


def bind_root(ctx) -> None:
    """OCI: root.path is a plain directory; pivot_root(2) needs a mount point."""
    root = ctx.merged
    ctx.explain.step("make the root directory a mount point", f"mount --rbind {root} {root}",
                     f"mount(\"{root}\", \"{root}\", NULL, MS_BIND|MS_REC)", "mount(2), pivot_root(2)",
                     "pivot_root needs the new root to be a mount of its own")
    mount(root, root, None, MS_BIND | MS_REC)


def mount_sys(ctx, m) -> None:
    if ctx.userns is not None and not ctx.spec.creates("network"):
        bind_host_sys(ctx)
        return
    flags, data, _ = parse_mount_options(m.options)
    mount_fs(ctx, "sysfs", f"{ctx.merged}{m.destination}", flags, data,
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


def mount_cgroup(ctx, m=None) -> None:
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


# ── the spec's mounts, in order ───────────────────────────────────────────────────────────

MS_SHARED, MS_UNBINDABLE = 1 << 20, 1 << 17
PROPAGATION = {"private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "slave": MS_SLAVE,
               "rslave": MS_SLAVE | MS_REC, "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
               "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC}
# mount(8)'s option words as mount(2) flags: (flag, set it?).
OPTION_FLAGS = {"ro": (MS_RDONLY, True), "rw": (MS_RDONLY, False), "nosuid": (MS_NOSUID, True),
                "suid": (MS_NOSUID, False), "nodev": (MS_NODEV, True), "dev": (MS_NODEV, False),
                "noexec": (MS_NOEXEC, True), "exec": (MS_NOEXEC, False),
                "sync": (16, True), "async": (16, False), "dirsync": (128, True),
                "noatime": (1024, True), "atime": (1024, False), "nodiratime": (2048, True),
                "diratime": (2048, False), "relatime": (1 << 21, True), "norelatime": (1 << 21, False),
                "strictatime": (MS_STRICTATIME, True), "nostrictatime": (MS_STRICTATIME, False),
                "bind": (MS_BIND, True), "rbind": (MS_BIND | MS_REC, True)}
# Why each of Docker's mounts is there (what --explain says); any other mount: its type's line.
WHY = {
    "/proc": ("a fresh /proc lists only the processes of the new PID namespace (ps shows PID 1)",
              "proc(5), pid_namespaces(7)"),
    "/dev": ("the host's /dev holds every disk and device; the container gets only a safe few "
             "(nodev: a device node created here later cannot be opened)", "tmpfs(5)"),
    "/dev/pts": ("a private set of pseudo-terminals: the container cannot see or open the host's",
                 "pts(4), devpts"),
    "/dev/shm": ("POSIX shared memory, private to this container", "shm_overview(7)"),
    "/dev/mqueue": ("POSIX message queues of the new IPC namespace", "mq_overview(7)"),
    "tmpfs": ("a filesystem in memory: fast scratch space that vanishes with the container", "tmpfs(5)"),
    "bind": ("a directory or file of the host, seen inside; the target is resolved inside the "
             "container's root", "mount(2), openat2(2)"),
    "/etc/hosts": ("the names of the other containers and the host's DNS servers; bound, not "
                   "copied, because the hosts file is updated when a neighbour starts or stops",
                   "mount(2), hosts(5)"),
    "/dev/init": ("--init: a tiny PID 1 that reaps orphans and forwards signals to the command",
                  "mount(2), pid_namespaces(7)"),
}


def parse_mount_options(options) -> tuple[int, str | None, int]:
    """OCI/mount(8) option words → (mount flags, data string for the filesystem, propagation)."""
    flags, data, propagation = 0, [], 0
    for word in options or ():
        if word in OPTION_FLAGS:
            bit, on = OPTION_FLAGS[word]
            flags = flags | bit if on else flags & ~bit
        elif word in PROPAGATION:
            propagation |= PROPAGATION[word]
        elif word not in ("defaults", "tmpcopyup"):
            data.append(word)
    return flags, ",".join(data) or None, propagation


def target_in_root(ctx, destination: str, directory: bool = True) -> str:
    """The mount target, created and resolved inside the root: /proc/self/fd/N."""
    fd = open_in_root(ctx.merged, destination, directory=directory)
    ctx.mount_fds.append(fd)                 # closed after the mount (the path names the fd)
    return f"/proc/self/fd/{fd}"


def mount_all(ctx) -> None:
    """Each of the spec's mounts, in the spec's order (a later one may cover an earlier one)."""
    ctx.mount_fds = []
    try:
        for m in ctx.spec.mounts:
            if not m.destination.startswith("/"):
                raise ConfigError(f"mount destination {m.destination!r} must be an absolute path")
            MOUNTERS.get(m.type, mount_bind if is_bind(m) else mount_other)(ctx, m)
    finally:
        for fd in ctx.mount_fds:
            os.close(fd)


def is_bind(m) -> bool:
    return m.type in ("bind", "none", "") or any(o in ("bind", "rbind") for o in m.options)


def mount_other(ctx, m) -> None:
    """proc, tmpfs, devpts, mqueue …: mount -t TYPE -o OPTIONS SOURCE TARGET."""
    flags, data, propagation = parse_mount_options(m.options)
    why, man = WHY.get(m.destination) or WHY.get(m.type) or (f"a {m.type} filesystem", "mount(2)")
    target = target_in_root(ctx, m.destination)
    ctx.explain.step(f"mount {m.type} on {m.destination}",
                     f"mount -t {m.type}{' -o ' + mount_options(flags, data) if flags or data else ''} "
                     f"{m.source or m.type} {ctx.merged}{m.destination}",
                     f"mount(\"{m.source or m.type}\", …, \"{m.type}\", {mount_flag_names(flags)}"
                     + (f", \"{data}\")" if data else ")"), man, why)
    mount(m.source or m.type, target, m.type, flags, data)
    if propagation:                          # look again: the path now names the new mount
        mount(None, target_in_root(ctx, m.destination), None, propagation)


def mount_bind(ctx, m) -> None:
    """mount --bind SRC DEST (rbind: with what is mounted below SRC), then a remount for
    ro/nosuid/nodev/noexec, which a bind takes only that way; then its propagation."""
    flags, _, propagation = parse_mount_options(m.options)
    if not os.path.lexists(m.source):
        raise ConfigError(f"mount source {m.source} for {m.destination} does not exist: create it, "
                          "or fix the mount in the config")
    why, man = WHY.get(m.destination) or WHY["bind"]
    rec = "r" if flags & MS_REC else ""
    extra = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    ctx.explain.step(f"bind {m.destination} from {m.source}",
                     f"mount --{rec}bind {m.source} {ctx.merged}{m.destination}"
                     + (f" && mount -o remount,bind,{mount_options(extra, None)} {ctx.merged}{m.destination}"
                        if extra else ""),
                     f"mount(src, \"/proc/self/fd/N\", NULL, MS_BIND{'|MS_REC' if rec else ''})",
                     man, why)
    target = target_in_root(ctx, m.destination, directory=os.path.isdir(m.source))
    mount(m.source, target, None, MS_BIND | (flags & MS_REC))
    target = target_in_root(ctx, m.destination, directory=os.path.isdir(m.source))   # the new mount
    if extra:
        mount(None, target, None, MS_REMOUNT | MS_BIND | extra | (locked_flags(target) if ctx.userns else 0))
    if propagation:
        mount(None, target, None, propagation)


def mount_ext4(ctx, m) -> None:
    """An ext4 image with the `loop` option (mount(8)'s -o loop): a size-limited volume. The
    image goes on a loop device that the kernel releases with this namespace (disk.py)."""
    if "loop" not in m.options:
        return mount_other(ctx, m)
    from .spec import SUBDIR_OPTION
    from .storage.disk import mount_disk
    subdir = next((o[len(SUBDIR_OPTION):] for o in m.options if o.startswith(SUBDIR_OPTION)), "")
    flags, _, _ = parse_mount_options([o for o in m.options if o != "loop" and not o.startswith(SUBDIR_OPTION)])
    target = target_in_root(ctx, m.destination)
    # Read-only per mount, never for the filesystem: a second, rw user of the same image shares
    # its superblock, and ext4 refuses (EBUSY) to mount one superblock both ro and rw.
    mount_disk(Path(m.source), Path(target), ctx.explain, flags & ~MS_RDONLY)
    if subdir:                               # a loop pool: keep only the volume's own directory
        keep_subdir(target_in_root(ctx, m.destination), target, subdir)
    if flags & MS_RDONLY:
        mount(None, target_in_root(ctx, m.destination), None, MS_REMOUNT | MS_BIND | flags)


def keep_subdir(mounted: str, under: str, subdir: str) -> None:
    """MOUNTED is a whole pool's filesystem: clone the mount of MOUNTED/SUBDIR (open_tree), take
    the whole one away, and put the clone in its place (UNDER: the directory it covered), so the
    container sees only its own volume, never the pool's other ones."""
    from .kernel.mount import MNT_DETACH, move_mount, open_tree, umount2
    if "/" in subdir or subdir in ("", ".", ".."):
        raise ConfigError(f"invalid volume directory {subdir!r} in a pool")
    fd = open_tree(f"{mounted}/{subdir}")
    try:
        umount2(mounted, MNT_DETACH)
        move_mount(fd, under)
    finally:
        os.close(fd)


MOUNTERS = {"sysfs": mount_sys, "cgroup": mount_cgroup, "cgroup2": mount_cgroup, "ext4": mount_ext4}


def create_devices(ctx) -> None:
    """The default devices bound from the host's (a bind keeps the host /dev's right to open
    device nodes, also under a nodev /dev), the spec's own made with mknod(2), and the links."""
    dev = f"{ctx.merged}/dev"
    ctx.explain.step("create the devices in /dev",
                     f"touch {dev}/null && mount --bind /dev/null {dev}/null   # …and zero, full, "
                     "random, urandom, tty" + "".join(f"; mknod {d.path} {d.type} {d.major} {d.minor}"
                                                      for d in ctx.spec.devices),
                     "mount(\"/dev/null\", …, MS_BIND), mknod(2), symlink(2)", "null(4), mknod(2)",
                     "the devices every program expects, and nothing else of the host's")
    for name in DEFAULT_DEVICES:
        if any(d.path == f"/dev/{name}" for d in ctx.spec.devices):
            continue
        fd = open_in_root(ctx.merged, f"/dev/{name}", directory=False)
        try:
            mount(f"/dev/{name}", f"/proc/self/fd/{fd}", None, MS_BIND)
        finally:
            os.close(fd)
    for device in ctx.spec.devices:
        make_device(ctx, device)
    for name, target in DEV_LINKS.items():
        if not os.path.lexists(f"{dev}/{name}"):
            os.symlink(target, f"{dev}/{name}")


DEVICE_TYPES = {"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}


def make_device(ctx, d) -> None:
    """mknod PATH TYPE MAJOR MINOR; chown; in a user namespace (no mknod) the host's node is bound."""
    if d.type not in DEVICE_TYPES:
        raise ConfigError(f"device {d.path}: type {d.type!r} is not c, b, u or p")
    parent = open_in_root(ctx.merged, os.path.dirname(d.path), directory=True)
    name = os.path.basename(d.path)
    try:
        if os.path.lexists(f"/proc/self/fd/{parent}/{name}"):
            os.unlink(name, dir_fd=parent)
        mode = DEVICE_TYPES[d.type] | (d.file_mode if d.file_mode is not None else 0o666) & 0o7777
        try:
            os.mknod(name, mode, os.makedev(d.major, d.minor), dir_fd=parent)
        except PermissionError:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=parent))
            mount(d.path, f"/proc/self/fd/{parent}/{name}", None, MS_BIND)
            return
        os.chmod(name, mode & 0o7777, dir_fd=parent)     # mknod(2) applies the umask
        os.chown(name, d.uid if d.uid is not None else -1, d.gid if d.gid is not None else -1,
                 dir_fd=parent, follow_symlinks=False)
    except OSError as e:
        raise SyscallError("mknod", (d.path,), e.errno or 0) from None
    finally:
        os.close(parent)
