"""mount(2) and umount2(2): attach a filesystem to a directory, or detach it.

    man 2 mount, man 2 umount2, man 7 mount_namespaces     shell: mount(8), umount(8)

In a new mount namespace the process starts with a *copy* of its parent's mount table; with
propagation made private (MS_REC|MS_PRIVATE on "/") nothing it mounts travels back to the host.
"""
from __future__ import annotations

from .syscalls import check, fsencode, libc

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
