"""An exact copy of a directory tree: what snapshots and commits are made of.

    man 2 openat, man 2 copy_file_range, man 2 mknod, man 7 xattr, man 2 utimensat
    shell: cp -a SRC/. DST/        (GNU cp as root keeps owners, modes, times, links, xattrs)

A container's upper directory is not an ordinary tree. Besides files it holds *whiteouts*
(character devices 0/0 that say "this name was deleted") and *opaque* directories (the
extended attribute trusted.overlay.opaque=y: "hide everything below me"). A copy that
drops either would bring deleted files back to life. So everything is copied:

    regular files   the bytes (copy_file_range: the kernel copies, no round trip through us)
    directories     recursively, their mode and times set after their children
    symlinks        the link text, never followed
    devices, fifos  mknod with the same type and device number (whiteouts included)
    hardlinks       linked again in the copy, not copied twice
    metadata        owner, then mode (chown clears setuid), then xattrs, then times

The walk is made with directory file descriptors and O_NOFOLLOW, like unpack.py: a tree
written by a container may hold `etc -> /etc`, and a path-based copy would follow it onto
the host. Nothing below SRC is ever resolved through a symlink.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import Callable

from minicontainer.errors import SyscallError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

XattrFilter = Callable[[str], bool]      # name -> keep it?


def keep_all(_name: str) -> bool:
    return True


def copy_tree(src: str | os.PathLike, dst: str | os.PathLike, *,
              keep_xattr: XattrFilter = keep_all) -> int:
    """Copy the tree SRC into the new or empty directory DST; returns the bytes of file data."""
    os.makedirs(dst, mode=0o700, exist_ok=True)
    return _walk_both(_Copier(str(src), str(dst), keep_xattr), "copy_dir")


def sync_tree(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Make DST, an earlier copy_tree of SRC, equal to SRC again (`rsync -a --delete`): entries
    whose type, size, mtime, mode or owner differ are copied anew, names gone from SRC are
    removed from DST. Returns the bytes copied. The quick check is rsync's: size and mtime."""
    return _walk_both(_Copier(str(src), str(dst), keep_all), "sync_dir")


def _walk_both(copier: "_Copier", method: str) -> int:
    """copier.METHOD over the two top directories, then their own metadata; the bytes copied."""
    src_fd = _open(os.open, "open", copier.src, "", copier.src, _DIR)
    dst_fd = _open(os.open, "open", copier.dst, "", copier.dst, _DIR)
    try:
        getattr(copier, method)(src_fd, dst_fd, "")
        copier.copy_metadata(src_fd, dst_fd, os.fstat(src_fd), "", fd_based=True)
    finally:
        os.close(src_fd), os.close(dst_fd)
    return copier.bytes


def tree_size(path: str | os.PathLike) -> int:
    """Bytes of regular files below PATH, each hardlinked file once (`du -s --apparent-size`)."""
    seen, total = set(), 0
    for dirpath, _dirs, files in os.walk(path):          # os.walk does not follow symlinks
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue                                 # removed while we looked
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                if st.st_nlink > 1:
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


class _Copier:
    def __init__(self, src: str, dst: str, keep_xattr: XattrFilter):
        self.src, self.dst, self.keep_xattr = src, dst, keep_xattr
        self.links: dict[tuple[int, int], str] = {}     # (dev, ino) → its path in the copy
        self.bytes = 0

    def copy_dir(self, src_fd: int, dst_fd: int, rel: str) -> None:
        with os.scandir(src_fd) as entries:
            names = sorted(e.name for e in entries)
        for name in names:
            path = f"{rel}/{name}" if rel else name
            st = _call(os.stat, "fstatat", self.src, path, name, dir_fd=src_fd, follow_symlinks=False)
            self.copy_entry(src_fd, dst_fd, name, path, st)

    def sync_dir(self, src_fd: int, dst_fd: int, rel: str) -> None:
        with os.scandir(src_fd) as entries:
            wanted = {e.name for e in entries}
        with os.scandir(dst_fd) as entries:
            gone = [e.name for e in entries if e.name not in wanted]
        for name in gone:
            _remove(dst_fd, name)
        for name in sorted(wanted):
            path = f"{rel}/{name}" if rel else name
            st = _call(os.stat, "fstatat", self.src, path, name, dir_fd=src_fd, follow_symlinks=False)
            try:
                old = os.stat(name, dir_fd=dst_fd, follow_symlinks=False)
            except FileNotFoundError:
                old = None
            if old is not None and stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(old.st_mode):
                sub_src = _open(os.open, "openat", self.src, path, name, _DIR, dir_fd=src_fd)
                sub_dst = _open(os.open, "openat", self.dst, path, name, _DIR, dir_fd=dst_fd)
                try:
                    self.sync_dir(sub_src, sub_dst, path)
                    self.copy_metadata(sub_src, sub_dst, st, path, fd_based=True)
                finally:
                    os.close(sub_src), os.close(sub_dst)
                continue
            if old is not None and _same(st, old, src_fd, dst_fd, name):
                continue
            if old is not None:
                _remove(dst_fd, name)
            self.copy_entry(src_fd, dst_fd, name, path, st)

    def copy_entry(self, src_fd: int, dst_fd: int, name: str, path: str, st) -> None:
        """One entry of any type (not a directory's children: copy_subdir does those)."""
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            self.copy_subdir(src_fd, dst_fd, name, path, st)
        elif kind == stat.S_IFREG:
            self.copy_file(src_fd, dst_fd, name, path, st)
        elif kind == stat.S_IFLNK:
            target = _call(os.readlink, "readlinkat", self.src, path, name, dir_fd=src_fd)
            _call(os.symlink, "symlinkat", self.dst, path, target, name, dir_fd=dst_fd)
            self.copy_metadata(src_fd, dst_fd, st, path, name=name)
        else:                                            # char/block devices (whiteouts), fifos, sockets
            _call(os.mknod, "mknodat", self.dst, path, name, st.st_mode, st.st_rdev, dir_fd=dst_fd)
            self.copy_metadata(src_fd, dst_fd, st, path, name=name)

    def copy_subdir(self, src_fd: int, dst_fd: int, name: str, path: str, st) -> None:
        _call(os.mkdir, "mkdirat", self.dst, path, name, 0o700, dir_fd=dst_fd)
        sub_src = _open(os.open, "openat", self.src, path, name, _DIR, dir_fd=src_fd)
        try:
            sub_dst = _open(os.open, "openat", self.dst, path, name, _DIR, dir_fd=dst_fd)
            try:
                self.copy_dir(sub_src, sub_dst, path)
                self.copy_metadata(sub_src, sub_dst, st, path, fd_based=True)
            finally:
                os.close(sub_dst)
        finally:
            os.close(sub_src)

    def copy_file(self, src_fd: int, dst_fd: int, name: str, path: str, st) -> None:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:         # a second name for a file we copied
            first = self.links[key]
            root_fd = os.open(self.dst, _DIR)
            try:
                _call(os.link, "linkat", self.dst, path, first, name, src_dir_fd=root_fd,
                      dst_dir_fd=dst_fd, follow_symlinks=False)
            finally:
                os.close(root_fd)
            return
        fin = _open(os.open, "openat", self.src, path, name, _FILE, dir_fd=src_fd)
        try:
            fout = _open(os.open, "openat", self.dst, path, name, _NEW, 0o600, dir_fd=dst_fd)
            try:
                self.copy_data(fin, fout, st.st_size, path)
                self.copy_metadata(fin, fout, st, path, fd_based=True)
            finally:
                os.close(fout)
        finally:
            os.close(fin)
        if st.st_nlink > 1:
            self.links[key] = path

    def copy_data(self, fin: int, fout: int, size: int, path: str) -> None:
        done = 0
        while done < size:
            try:
                n = os.copy_file_range(fin, fout, min(size - done, 1 << 30))
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise SyscallError("copy_file_range", (os.path.join(self.src, path),), e.errno) from None
                n = read_write(fin, fout)                # e.g. across filesystems on old kernels
            if n == 0:
                break                                    # the file shrank while we copied
            done += n
        self.bytes += done

    def copy_metadata(self, src_fd: int, dst_fd: int, st, path: str, *, name: str | None = None,
                      fd_based: bool = False) -> None:
        """Owner, mode, xattrs, times — in that order (chown clears setuid and file capabilities).
        fd_based: src_fd/dst_fd are the objects themselves; else NAME inside those directories."""
        where = os.path.join(self.dst, path)
        if fd_based:
            target, src_target, nofollow = dst_fd, src_fd, {}
        else:                                            # /proc/self/fd/N/NAME: the dir by fd, NAME not followed
            target, src_target = f"/proc/self/fd/{dst_fd}/{name}", f"/proc/self/fd/{src_fd}/{name}"
            nofollow = {"follow_symlinks": False}
        is_link = stat.S_ISLNK(st.st_mode)
        try:
            os.chown(target, st.st_uid, st.st_gid, **nofollow)
            if not is_link:                              # a symlink's mode is always 0777
                os.chmod(target, stat.S_IMODE(st.st_mode))
            self.copy_xattrs(src_target, target, nofollow)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), **nofollow)
        except OSError as e:
            raise SyscallError("chown/chmod/setxattr/utimensat", (where,), e.errno or 0) from None

    def copy_xattrs(self, src, dst, nofollow: dict) -> None:
        try:
            names = os.listxattr(src, **nofollow)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EPERM):
                return
            raise
        for key in names:
            if self.keep_xattr(key):
                os.setxattr(dst, key, os.getxattr(src, key, **nofollow), **nofollow)


def _same(st, old, src_fd: int, dst_fd: int, name: str) -> bool:
    """rsync's quick check, plus what a copy keeps: type, mode, owner, size, mtime, link text."""
    if (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_rdev) != \
            (old.st_mode, old.st_uid, old.st_gid, old.st_size, old.st_mtime_ns, old.st_rdev):
        return False
    return not stat.S_ISLNK(st.st_mode) or \
        os.readlink(name, dir_fd=src_fd) == os.readlink(name, dir_fd=dst_fd)


def _remove(dir_fd: int, name: str) -> None:
    """unlinkat NAME, or a whole directory tree of that name (rm -rf, never following links)."""
    import shutil
    try:
        os.unlink(name, dir_fd=dir_fd)
    except IsADirectoryError:
        shutil.rmtree(name, dir_fd=dir_fd)


def read_write(fin: int, fout: int) -> int:
    """One read(2) of up to 1 MiB and the write(2)s that pass it all on; the bytes moved."""
    data = os.read(fin, 1 << 20)
    view = memoryview(data)
    while view:
        view = view[os.write(fout, view):]
    return len(data)


def _call(fn, syscall: str, root: str, path: str, *args, **kwargs):
    """fn(*args) with an OSError turned into a SyscallError naming root/path."""
    try:
        return fn(*args, **kwargs)
    except OSError as e:
        raise SyscallError(syscall, (os.path.join(root, path),), e.errno or 0) from None


def _open(fn, syscall: str, root: str, path: str, *args, **kwargs) -> int:
    return _call(fn, syscall, root, path, *args, **kwargs)
