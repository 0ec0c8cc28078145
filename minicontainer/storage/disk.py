"""Bounded disks: a size-limited filesystem for a container's writable layer or a volume.

    man 4 loop, man 8 losetup, man 8 mkfs.ext4, man 2 mount, man 2 flock, man 8 xfs_quota
    shell:  truncate -s 1G disk.img && mkfs.ext4 -q -m 0 -O ^has_journal disk.img
            losetup --find --show disk.img   (autoclear)   mount /dev/loopN DIR

Without a limit, a container writes its files into a directory of the host's filesystem, and
can fill it: the host's other programs then get ENOSPC. Two ways to bound it:

  * project quotas (xfs, or ext4 made with `-O project,quota` and mounted `prjquota`): a
    directory tree gets a project id and a block limit — no extra filesystem, the space is
    shared until used. Docker's and Podman's overlay driver do this; it needs the host's
    filesystem prepared for it (this machine's / is ext4 without the project feature).
  * a filesystem of its own, of fixed size (what minicontainer does, everywhere): a sparse
    file formatted as ext4 and mounted through a loop device. Its blocks are allocated only
    when written (`du` shows the use, `ls -l` the limit); writing past the limit gets ENOSPC
    *inside*, the host keeps its space, and `rm` deletes the file. The cost: a loop device
    and a mount per container, ext4's own metadata (~2 % of the size), and the host's tools
    no longer see the files as a plain directory.

Where the mount lives: never in the host's mount namespace. The container's PID 1 mounts the
disk in its own namespace before the overlay, and the loop device is made with
LO_FLAGS_AUTOCLEAR: when the last mount of it goes (the namespace dies with the container's
last process) the kernel detaches it — nothing to clean up, even after a crash. Host-side
readers (diff, commit, export, snapshot, system df) use `opened()`: a child mounts the disk
in a private namespace of its own, and /proc/CHILD/root/… reaches that mount from here.
Two mounts of one image always share one loop device (one ext4 superblock, never two
writers), found by its backing file under flock(2).
"""
from __future__ import annotations

import fcntl
import glob
import os
import struct
import subprocess
from contextlib import contextmanager
from pathlib import Path

from minicontainer.errors import ConfigError, ContainerError

MIN_SIZE = 4 << 20                          # below this ext4's own metadata leaves too little
LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A                     # Linux 5.8: set fd + status in one ioctl
LO_FLAGS_AUTOCLEAR = 4


def parse_size_option(flag: str, options) -> int | None:
    """['size=10g'] → bytes (binary units, as Docker); None without a size. Unknown keys,
    bad and too small sizes are ConfigErrors naming the flag."""
    from minicontainer.cgroups.limits import parse_size
    size = None
    for option in options or ():
        key, eq, value = str(option).partition("=")
        if key.strip().lower() != "size" or not eq:
            raise ConfigError(f"invalid {flag} {option!r}: the only option is size=N "
                              f"(e.g. {flag} size=1g)")
        size = parse_size(f"{flag} size", value)
        if size < MIN_SIZE:
            raise ConfigError(f"invalid {flag} {option!r}: at least 4m (ext4 needs room for "
                              "its own metadata)")
    if size is not None and os.geteuid() != 0:
        raise ConfigError(f"{flag} size=… needs root: a size-limited disk is a loop device "
                          "(rootless mode has no way to make one)")
    return size


def create_disk(image: Path, size: int, subdirs=()) -> None:
    """A sparse file of SIZE bytes, formatted ext4 (no journal, no reserved blocks: the
    container gets what was asked for), holding the empty directories SUBDIRS. Made once;
    a restart finds it."""
    if image.exists():
        return
    import tempfile
    tmp = image.with_name(f".{image.name}.{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.truncate(size)
        with tempfile.TemporaryDirectory(dir=image.parent) as skeleton:
            for name in subdirs:
                os.mkdir(os.path.join(skeleton, name), 0o755)
            os.chmod(skeleton, 0o755)
            proc = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal",
                                   "-E", "nodiscard,root_owner=0:0", "-d", skeleton, str(tmp)],
                                  capture_output=True, text=True)
        if proc.returncode != 0:
            raise ContainerError(f"mkfs.ext4 {tmp}: {proc.stderr.strip() or proc.returncode}")
        os.rename(tmp, image)
    except FileNotFoundError:
        raise ContainerError("a size-limited disk needs mkfs.ext4: apt-get install e2fsprogs") from None
    finally:
        tmp.unlink(missing_ok=True)


def find_loop(image: Path) -> str | None:
    """/dev/loopN whose backing file is IMAGE (sysfs: /sys/block/loopN/loop/backing_file)."""
    want = str(image)
    for backing in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            with open(backing) as f:
                if f.read().rstrip("\n") == want:
                    return "/dev/" + backing.split("/")[3]
        except OSError:
            continue                                # detached meanwhile
    return None


def attach_loop(image: Path) -> int:
    """losetup --find: a free loop device bound to IMAGE with autoclear; returns its open fd."""
    backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
    try:
        control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        try:
            for _ in range(16):                     # another process may take the free one first
                number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
                fd = os.open(f"/dev/loop{number}", os.O_RDWR | os.O_CLOEXEC)
                info = struct.pack("=5Q4I64s64s32s2Q", 0, 0, 0, 0, 0, 0, 0, 0, LO_FLAGS_AUTOCLEAR,
                                   str(image).encode()[:63], b"", b"", 0, 0)
                try:
                    fcntl.ioctl(fd, LOOP_CONFIGURE, struct.pack("=II", backing, 0) + info + bytes(64))
                    return fd
                except OSError as e:
                    os.close(fd)
                    if e.errno != 16:               # EBUSY: taken meanwhile, ask again
                        raise ContainerError(f"ioctl(/dev/loop{number}, LOOP_CONFIGURE, {image}): "
                                           f"{os.strerror(e.errno)}") from None
            raise ContainerError("no free loop device (losetup -f): 16 attempts were taken by others")
        finally:
            os.close(control)
    except OSError as e:
        raise ContainerError(f"loop device for {image}: {e.strerror} ({e.filename or '/dev/loop-control'})") from None
    finally:
        os.close(backing)


def mount_disk(image: Path, target: Path, explain=None, flags: int = 0) -> None:
    """Mount IMAGE's ext4 on TARGET (nodev, nosuid, plus FLAGS: MS_RDONLY…), in the caller's
    (private) mount namespace."""
    from minicontainer.kernel.mount import MS_NODEV, MS_NOSUID, mount
    if explain is not None:
        explain.step(f"mount the size-limited disk {image.name}", f"mount -o loop,nodev,nosuid "
                     f"{image} {target}", "ioctl(LOOP_CONFIGURE, autoclear); mount(\"/dev/loopN\", "
                     "…, \"ext4\")", "loop(4), mount(2)", "writes past its size get ENOSPC in here, "
                     "and the host's filesystem keeps its space")
    with open(image, "rb") as lock:                 # one loop device per image: find or attach
        fcntl.flock(lock, fcntl.LOCK_EX)
        device, fd = find_loop(image), -1
        if device is None:
            fd = attach_loop(image)
            device = os.readlink(f"/proc/self/fd/{fd}")
        try:
            mount(device, str(target), "ext4", MS_NODEV | MS_NOSUID | flags, None)
        finally:
            if fd >= 0:
                os.close(fd)                        # the mount holds it now; autoclear after


@contextmanager
def opened(image: Path, mountpoint: Path):
    """The disk's root as a path this process can use, without a mount in our namespace: a
    child mounts it in a private namespace and waits; we go through /proc/CHILD/root."""
    from minicontainer.kernel.mount import MS_PRIVATE, MS_REC, mount
    from minicontainer.kernel.namespaces import CLONE_NEWNS, unshare
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child: never returns
        try:
            os.close(ready_r), os.close(done_w)
            unshare(CLONE_NEWNS)
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            mount_disk(image, mountpoint)
            os.write(ready_w, b"ok\n")
            os.read(done_r, 1)                      # EOF: the parent is done (or died)
        except BaseException as e:
            os.write(ready_w, f"err {e}\n".encode())
        finally:
            os._exit(0)
    os.close(ready_w), os.close(done_r)
    try:
        with os.fdopen(ready_r, "rb") as ready:
            said = ready.readline().decode(errors="replace").strip()
        if said != "ok":
            raise ContainerError(said[4:] or f"mounting {image} failed")
        yield Path(f"/proc/{pid}/root{mountpoint}")
    finally:
        os.close(done_w)
        os.waitpid(pid, 0)                          # its namespace, mount and loop device go


def disk_usage(image: Path) -> tuple[int, int]:
    """(bytes allocated on the host, the size limit) of a sparse disk image."""
    st = image.stat()
    return st.st_blocks * 512, st.st_size
