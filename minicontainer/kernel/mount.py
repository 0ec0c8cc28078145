"""mount(2) and umount2(2): attach a filesystem to a directory, or detach it; open_tree(2) and
move_mount(2): carry a mount from one mount namespace into another (volume migrate).

    man 2 mount, man 2 umount2, man 2 open_tree, man 2 move_mount, man 7 mount_namespaces
    shell: mount(8), umount(8); mount --bind across namespaces has no one-line shell form

In a new mount namespace the process starts with a *copy* of its parent's mount table; with
propagation made private (MS_REC|MS_PRIVATE on "/") nothing it mounts travels back to the host.
"""
from __future__ import annotations

from .syscalls import check, fsencode, libc, syscall_number

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

_FLAG_NAMES = {MS_RDONLY: "ro", MS_NOSUID: "nosuid", MS_NODEV: "nodev", MS_NOEXEC: "noexec",
               MS_REMOUNT: "remount", MS_BIND: "bind", MS_REC: "rec", MS_PRIVATE: "private",
               MS_SLAVE: "slave", MS_STRICTATIME: "strictatime"}


def mount_options(flags: int, data: str | None = None) -> str:
    """The `-o` argument mount(8) would take for these flags: 'ro,nosuid,mode=755'."""
    opts = [name for bit, name in _FLAG_NAMES.items() if flags & bit and bit not in (MS_REC, MS_BIND)]
    return ",".join(opts + ([data] if data else []))


def mount_flag_names(flags: int) -> str:
    """MS_NOSUID|MS_NODEV for a flag mask, as strace prints it."""
    names = {v: k for k, v in globals().items() if k.startswith("MS_")}
    return "|".join(names[b] for b in sorted(names) if flags & b) or "0"


def mount(source: str | None, target: str, fstype: str | None = None,
          flags: int = 0, data: str | None = None) -> None:
    """mount(2). Raises SyscallError naming source, target and type."""
    ret = libc.mount(fsencode(source), fsencode(target), fsencode(fstype), flags,
                     None if data is None else data.encode())
    check(ret, "mount", source or "none", str(target), fstype or "none")


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2); MNT_DETACH unmounts lazily, as `umount -l` does."""
    check(libc.umount2(fsencode(target), flags), "umount2", str(target))


AT_FDCWD = -100
OPEN_TREE_CLONE = 1                     # a detached copy of the mount (a bind mount not yet placed)
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 4             # the source is the fd itself
MOVE_MOUNT_T_SYMLINKS = 0x10            # follow a symlink at the target (a /proc/self/fd/N link)


def open_tree(path: str) -> int:
    """open_tree(AT_FDCWD, PATH, OPEN_TREE_CLONE): a detached bind mount of PATH, as an fd. It
    belongs to no namespace yet: after setns(2) the holder can place it in another one."""
    ret = libc.syscall(syscall_number("open_tree"), AT_FDCWD, fsencode(path),
                       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    return check(ret, "open_tree", str(path), "OPEN_TREE_CLONE")


def move_mount(fd: int, target: str) -> None:
    """move_mount(FD, "", AT_FDCWD, TARGET, MOVE_MOUNT_F_EMPTY_PATH): attach a detached mount.
    Unlike mount(2), it does not follow a last symlink unless told: a /proc/self/fd/N target
    (rootfs.target_in_root) is followed, any other link is not."""
    follow = MOVE_MOUNT_T_SYMLINKS if str(target).startswith("/proc/self/fd/") else 0
    ret = libc.syscall(syscall_number("move_mount"), fd, b"", AT_FDCWD, fsencode(target),
                       MOVE_MOUNT_F_EMPTY_PATH | follow)
    check(ret, "move_mount", f"fd {fd}", str(target))
