"""openat2(2) with RESOLVE_IN_ROOT: look a path up inside a directory as if it were "/".

    man 2 openat2                     shell: none (`chroot DIR realpath PATH` comes closest)

Before pivot_root, the container's root is just a directory on the host. An image may hold
`etc -> /etc` or `data -> ../../..`: followed naively, a mount meant for the container's
/etc/hosts would land on the host's. With RESOLVE_IN_ROOT the kernel treats the directory as
the root for this one lookup — absolute links and `..` stop there — so whatever the image
holds, the result is inside it. The mount then targets the opened file through its
/proc/self/fd/N link, never through a path that could be swapped in between.
"""
from __future__ import annotations

import ctypes
import errno
import os

from ..errors import SyscallError
from .syscalls import fsencode, libc, syscall_number

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, mode: int = 0, resolve: int = RESOLVE_IN_ROOT) -> int:
    """openat2(2); returns the new file descriptor (close-on-exec)."""
    how = OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = libc.syscall(syscall_number("openat2"), dir_fd, fsencode(path), ctypes.byref(how),
                      ctypes.sizeof(how))
    if fd == -1:
        raise SyscallError("openat2", (path, "RESOLVE_IN_ROOT"), ctypes.get_errno())
    return fd


def make_dirs_in_root(root_fd: int, path: str, _hops: int = 0, owner=None) -> int:
    """mkdir -p PATH inside the root; returns an O_PATH descriptor of the last directory.

    Every prefix is looked up from the root itself (RESOLVE_IN_ROOT), so `..` and absolute
    links stop at the root wherever they appear. A dangling link on the way (`data -> /srv`,
    no /srv yet) is followed the same way: its target is created, inside the root.
    owner=(uid, gid): the directories created get that owner (build's COPY --chown)."""
    parts = [p for p in path.split("/") if p and p != "."]
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        try:
            os.close(openat2(root_fd, prefix, os.O_PATH | os.O_DIRECTORY))
            continue
        except SyscallError as e:
            if e.errno != errno.ENOENT:
                raise
        parent = openat2(root_fd, "/".join(parts[:depth - 1]) or ".", os.O_PATH | os.O_DIRECTORY)
        try:
            os.mkdir(parts[depth - 1], 0o755, dir_fd=parent)   # a plain name in a resolved dir: safe
            if owner is not None:
                os.chown(parts[depth - 1], *owner, dir_fd=parent, follow_symlinks=False)
        except FileExistsError:                                # a dangling symlink: follow it
            if _hops >= 40:
                raise SyscallError("mkdir", (path,), errno.ELOOP) from None
            link = os.readlink(parts[depth - 1], dir_fd=parent)
            base = "" if link.startswith("/") else "/".join(parts[:depth - 1])
            rest = "/".join(parts[depth:])
            return make_dirs_in_root(root_fd, "/".join(p for p in (base, link, rest) if p), _hops + 1,
                                     owner)
        finally:
            os.close(parent)
    return openat2(root_fd, "/".join(parts) or ".", os.O_PATH | os.O_DIRECTORY)


def open_in_root(root: str, path: str, *, directory: bool) -> int:
    """An O_PATH descriptor for PATH inside ROOT, creating it (and its parents) if missing."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if directory:
            return make_dirs_in_root(root_fd, path)
        parent, _, name = path.rstrip("/").rpartition("/")
        parent_fd = make_dirs_in_root(root_fd, parent)
        try:
            try:
                return openat2(root_fd, path, os.O_PATH)
            except SyscallError as e:                      # missing, or a dangling link: a new file
                if e.errno != errno.ENOENT:
                    raise
                if os.path.islink(f"/proc/self/fd/{parent_fd}/{name}"):
                    os.unlink(name, dir_fd=parent_fd)
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644, dir_fd=parent_fd))
                return openat2(root_fd, path, os.O_PATH)
        finally:
            os.close(parent_fd)
    finally:
        os.close(root_fd)
