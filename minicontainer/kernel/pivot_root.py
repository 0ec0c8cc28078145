"""pivot_root(2) and chroot(2): two ways to change what "/" means for a process.

    man 2 pivot_root, man 2 chroot                    shell: pivot_root(8), chroot(8)

chroot only changes the starting point of path lookups for one process. The old root is still
mounted in its namespace, so a root process can climb back out (mkdir x; chroot x; cd ../..;
chroot .). pivot_root instead swaps the root *mount* of the whole mount namespace and lets us
unmount the old one: afterwards there is no path back to the host's files at all.

The `pivot_root(".", ".")` idiom (documented in pivot_root(2)) stacks the old root on top of
the new one at "/", so a lazy unmount of "." removes it without needing a `.oldroot` directory.
"""
from __future__ import annotations

import os

from .mount import MNT_DETACH, umount2
from .syscalls import check, fsencode, libc, syscall_number
from ..errors import SyscallError


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2): make new_root the root mount; move the old root to put_old."""
    ret = libc.syscall(syscall_number("pivot_root"), fsencode(new_root), fsencode(put_old))
    check(ret, "pivot_root", new_root, put_old)


def pivot_into(new_root: str) -> None:
    """Switch the mount namespace's root to new_root (a mount point) and drop the old root."""
    os.chdir(new_root)
    pivot_root(".", ".")           # old root now sits on top of the new one at "/"
    umount2(".", MNT_DETACH)       # …so detaching "." leaves only the new root
    os.chdir("/")


def chroot_into(new_root: str) -> None:
    """chroot(2) + chdir("/"): the old root stays mounted, which is why chroot can be escaped."""
    try:
        os.chroot(new_root)
    except OSError as e:
        raise SyscallError("chroot", (new_root,), e.errno) from None
    os.chdir("/")
