"""`cp`: copy files between the host and a container — never outside the container's root.

    man 2 openat2 (RESOLVE_IN_ROOT), man 2 openat (O_NOFOLLOW), man 5 proc (/proc/PID/root),
    man 7 mount_namespaces; Docker's `docker cp` reference; CVE-2018-15664
    shell, roughly:  cp -a SRC /proc/$PID/root/DEST        (but see why that is not enough)

The container's files are a directory tree the container controls. Any path in it may be a
symlink — `etc -> /etc`, `data -> ../../..` — and a process inside can swap a directory for
such a link at any moment. `docker cp` once resolved the path first and copied after; a
container swapping `/w/d` between a directory and `-> /` in a tight loop made it read and
write the host's files (CVE-2018-15664). So here no container path is ever resolved by us:

  1. the container's root as a descriptor: a running container's is /proc/PID/root (its
     own mount table, volumes included); a stopped one's overlay is mounted in a child
     process's private mount namespace (the host never sees the mount) and opened there;
  2. the path given is resolved by the kernel in one call, openat2(root, PATH,
     RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): `..` and absolute links stop at the root,
     as they would for the container itself, whatever is swapped meanwhile;
  3. everything below is walked by descriptor, one name at a time with O_NOFOLLOW: a name
     that turns into a symlink is copied as a link, never followed.

Docker's rules for where things go (DEST a directory: into it; SRC ending in `/.`: its
contents; a missing DEST: created, its parent must exist; a directory onto a file: refused).
Owners: into a container root:root, out of it the caller's — or, with -a, the source's.
"""
from __future__ import annotations

import errno
import os
import stat

from minicontainer.errors import ContainerError, MinicontainerError, SyscallError
from minicontainer.kernel.openat2 import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2
from minicontainer.storage.copy import read_write

IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Side:
    """One end of a copy: the host (root_fd None: ordinary paths) or a container's root."""

    def __init__(self, root_fd: int | None, label: str, ignore=None):
        self.root_fd, self.label = root_fd, label
        self.ignore = ignore                  # rel path → leave it out (build's .containerignore)

    def open(self, path: str, flags: int) -> int:
        """PATH → a descriptor; inside a container resolved by the kernel within its root."""
        try:
            if self.root_fd is None:
                return os.open(path, flags | os.O_CLOEXEC)
            return openat2(self.root_fd, path.lstrip("/") or ".", flags)
        except SyscallError as e:
            raise CopyError(e.errno, self.where(path)) from None
        except OSError as e:
            raise CopyError(e.errno, self.where(path)) from None

    def where(self, path: str) -> str:
        return f"{self.label}:{path}" if self.root_fd is not None else path


class CopyError(MinicontainerError):
    def __init__(self, err: int, where: str, what: str = ""):
        self.errno = err
        reason = {errno.ENOENT: "no such file or directory", errno.ENOTDIR: "not a directory",
                  errno.ELOOP: "a symlink where a directory was expected (not followed)",
                  errno.EXDEV: "a path that leaves the container's root"}.get(err, os.strerror(err))
        super().__init__(f"cp: {where}: {what or reason}")


# ── the copy, given both sides ────────────────────────────────────────────────────────────

def copy(src: Side, src_path: str, dst: Side, dst_path: str, *, owner=None,
         follow: bool = False) -> int:
    """Copy SRC_PATH of one side to DST_PATH of the other by Docker's rules; bytes copied.
    owner: (uid, gid) for everything written, or None to keep the source's."""
    contents = src_path.endswith("/.") or src_path in ("/", ".")
    top = src.open(src_path, os.O_PATH | (0 if follow or contents else os.O_NOFOLLOW))
    try:
        st = os.fstat(top)
        if contents and not stat.S_ISDIR(st.st_mode):
            raise CopyError(errno.ENOTDIR, src.where(src_path), "only a directory has contents (/.)")
        name = os.path.basename(src_path.rstrip("/")) or "."
        copier = Copier(src, dst, owner, base=os.path.normpath(src_path.lstrip("/")))
        try:
            return copy_into(copier, top, st, dst, dst_path, name, contents)
        except OSError as e:
            raise CopyError(e.errno or errno.EIO, dst.where(dst_path)) from None
    finally:
        os.close(top)


def copy_into(copier, top: int, st, dst: Side, dst_path: str, name: str, contents: bool) -> int:
    dst_fd, dst_name = target(dst, dst_path, st, name, contents)
    try:
        if dst_name is None:                              # the contents into an existing dir
            src_fd = reopen(top, _DIR)
            try:
                copier.merge_dir(src_fd, dst_fd, dst_path, copier.base)
            finally:
                os.close(src_fd)
        else:
            copier.copy_top(top, st, dst_fd, dst_name, dst_path)
    finally:
        os.close(dst_fd)
    return copier.bytes


def target(dst: Side, path: str, st, name: str, contents: bool) -> tuple[int, str | None]:
    """Where the source lands: (directory fd, name) — name None: merge into that directory."""
    is_dir = stat.S_ISDIR(st.st_mode)
    try:
        fd = dst.open(path, os.O_PATH)                    # exists (links followed, in its root)
    except CopyError as e:
        if e.errno != errno.ENOENT:
            raise
        fd = None
    if fd is not None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            if contents:
                return reopen_close(fd, _DIR), None
            return reopen_close(fd, _DIR), name
        os.close(fd)
        if is_dir:
            raise CopyError(errno.EISDIR, dst.where(path), "cannot copy a directory onto a file")
    elif path.endswith("/") and not is_dir:
        raise CopyError(errno.ENOENT, dst.where(path), "the destination directory must exist")
    parent, _, last = path.rstrip("/").rpartition("/")
    if last in ("", ".", ".."):
        raise CopyError(errno.EINVAL, dst.where(path), "not a name to create")
    return dst.open(parent or ("/" if path.startswith("/") else "."), _DIR & ~os.O_NOFOLLOW), last


def reopen(fd: int, flags: int) -> int:
    """The very object an O_PATH descriptor holds, opened for reading (no lookup by name)."""
    return os.open(f"/proc/self/fd/{fd}", flags & ~os.O_NOFOLLOW | os.O_CLOEXEC)


def reopen_close(fd: int, flags: int) -> int:
    try:
        return reopen(fd, flags)
    finally:
        os.close(fd)


class Copier:
    """The walk: below the top, each name is opened relative to its directory, O_NOFOLLOW."""

    def __init__(self, src: Side, dst: Side, owner, base: str = "."):
        self.src, self.dst, self.owner, self.bytes = src, dst, owner, 0
        self.base = base                      # the source's path (for src.ignore)

    def copy_top(self, top: int, st, dst_dir: int, name: str, where: str) -> None:
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            self.copy_dir(reopen(top, _DIR), st, dst_dir, name, where, self.base)
        elif kind == stat.S_IFREG:
            fin = reopen(top, os.O_RDONLY)
            try:
                self.copy_file(fin, st, dst_dir, name)
            finally:
                os.close(fin)
        elif kind == stat.S_IFLNK:
            self.make_link(os.readlink("", dir_fd=top), st, dst_dir, name)
        else:
            raise CopyError(errno.EINVAL, where, "only files, directories and symlinks are copied")

    def copy_dir(self, src_fd: int, st, dst_dir: int, name: str, where: str, rel: str) -> None:
        try:
            try:
                os.mkdir(name, 0o700, dir_fd=dst_dir)
            except FileExistsError:
                pass                                       # merged into (Docker does the same)
            try:
                out = os.open(name, _DIR, dir_fd=dst_dir)
            except OSError as e:
                raise CopyError(e.errno, f"{where}/{name}") from None
            try:
                self.merge_dir(src_fd, out, f"{where}/{name}", rel)
                self.set_metadata(out, st)
            finally:
                os.close(out)
        finally:
            os.close(src_fd)

    def merge_dir(self, src_fd: int, dst_fd: int, where: str, rel: str = ".") -> None:
        with os.scandir(src_fd) as entries:
            names = sorted(e.name for e in entries)
        for name in names:
            sub = name if rel == "." else f"{rel}/{name}"
            if self.src.ignore is not None and self.src.ignore(sub):
                continue
            try:
                st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue                                   # removed while we copied
            kind = stat.S_IFMT(st.st_mode)
            try:
                if kind == stat.S_IFDIR:
                    self.copy_dir(os.open(name, _DIR, dir_fd=src_fd), st, dst_fd, name, where, sub)
                elif kind == stat.S_IFREG:
                    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
                    try:
                        self.copy_file(fin, st, dst_fd, name)
                    finally:
                        os.close(fin)
                elif kind == stat.S_IFLNK:
                    self.make_link(os.readlink(name, dir_fd=src_fd), st, dst_fd, name)
            except FileNotFoundError:
                continue
            except OSError as e:                           # ELOOP: swapped for a link meanwhile
                raise CopyError(e.errno, f"{where}/{name}") from None

    def copy_file(self, fin: int, st, dst_dir: int, name: str) -> None:
        replace(dst_dir, name)
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                      0o600, dir_fd=dst_dir)
        try:
            while True:
                try:
                    n = os.sendfile(out, fin, None, 1 << 24)
                except OSError as e:                       # /proc, /sys: no sendfile
                    if e.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        raise
                    n = read_write(fin, out)
                if not n:
                    break
                self.bytes += n
            self.set_metadata(out, st)
        finally:
            os.close(out)

    def make_link(self, text: str, st, dst_dir: int, name: str) -> None:
        replace(dst_dir, name)
        os.symlink(text, name, dir_fd=dst_dir)
        uid, gid = self.owner or (st.st_uid, st.st_gid)
        os.chown(name, uid, gid, dir_fd=dst_dir, follow_symlinks=False)

    def set_metadata(self, fd: int, st) -> None:
        uid, gid = self.owner or (st.st_uid, st.st_gid)
        os.fchown(fd, uid, gid)                            # first: chown clears setuid
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def replace(dir_fd: int, name: str) -> None:
    """A file or link replaces what is there (a directory is refused)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise CopyError(errno.EISDIR, name, "cannot overwrite a directory with a file")
    os.unlink(name, dir_fd=dir_fd)


def parse_cp_args(src: str, dest: str) -> tuple[str, str, str, bool]:
    """Docker's argument rule: CONTAINER:PATH names a container's file (a host path with a
    colon is written ./a:b). → (container, its path, host path, to_container)."""
    def container_part(arg: str):
        head, colon, tail = arg.partition(":")
        return (head, tail) if colon and head and "/" not in head and not arg.startswith(".") else None
    s, d = container_part(src), container_part(dest)
    if "-" in (src, dest):
        raise ContainerError("cp: '-' (a tar stream on stdin/stdout) is not supported: give a path")
    if bool(s) == bool(d):
        raise ContainerError("cp: exactly one of SRC and DEST must be CONTAINER:PATH "
                             "(e.g. `minicontainer cp web:/etc/hosts .`)")
    if s:
        return s[0], s[1] or "/", dest, False
    return d[0], d[1] or "/", src, True


# ── the container's root ──────────────────────────────────────────────────────────────────

def copy_with_container(store, images, rec, *, to_container: bool, ctr_path: str,
                        host_path: str, archive: bool = False, follow: bool = False) -> None:
    """`cp` for one container record (running or not)."""
    owner = None if archive else ((0, 0) if to_container else (os.getuid(), os.getgid()))
    if not ctr_path.startswith("/"):
        ctr_path = "/" + ctr_path                       # relative to / (Docker: to the workdir)

    def work(root_fd: int) -> None:
        ctr, host = Side(root_fd, rec.name), Side(None, "")
        if to_container:
            copy(host, host_path, ctr, ctr_path, owner=owner, follow=follow)
        else:
            copy(ctr, ctr_path, host, host_path, owner=owner, follow=follow)

    return with_container_root(store, images, rec, work)


def with_container_root(store, images, rec, work):
    """work(fd of the container's /): for a running container in this process (its
    /proc/PID/root); for a stopped one in a child whose private mount namespace holds its
    overlay (and, with the store locked meanwhile, no `start` can mount it too)."""
    from minicontainer.status import current_status
    if current_status(rec) in ("running", "paused"):
        return with_running_root(rec, work)
    with store.locked():
        now = store.load(rec.id)
        if now is None:
            raise ContainerError(f"no such container: {rec.name}")
        if current_status(now) in ("running", "paused", "restarting"):
            raise ContainerError(f"container {rec.name} started meanwhile: try again")
        from minicontainer.storage.export import in_mount_namespace
        in_mount_namespace(lambda: work(mount_stopped_root(store, images, now)))
        return None


def with_running_root(rec, work) -> int:
    """/proc/PID/root: the container's / in its own mount namespace (volumes included)."""
    from minicontainer.state import proc_start_time
    try:
        root_fd = os.open(f"/proc/{rec.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ContainerError(f"container {rec.name} stopped meanwhile ({os.strerror(e.errno)})") from None
    try:
        if proc_start_time(rec.pid) != rec.pid_start:  # the PID was reused: not our container
            raise ContainerError(f"container {rec.name} stopped meanwhile")
        return work(root_fd)
    finally:
        os.close(root_fd)


def mount_stopped_root(store, images, rec) -> int:
    """In the child (storage/export.in_mount_namespace): the overlay (image layers + the container's upper dir) on its merged/."""
    from minicontainer.kernel.mount import MS_NODEV, mount
    from minicontainer.storage.layers import lowerdir_option, make_init_layer
    cdir = store.container_dir(rec.id)
    if not (cdir / "upper").is_dir():
        raise ContainerError(f"container {rec.name} has no files yet (no upper dir)")
    lower = lowerdir_option(make_init_layer(cdir, images.get(rec.image).lower_dirs))
    (cdir / "merged").mkdir(exist_ok=True)              # (we are in a private mount namespace)
    mount("overlay", str(cdir / "merged"), "overlay", MS_NODEV,
          f"lowerdir={lower},upperdir={cdir / 'upper'},workdir={cdir / 'work'}")
    return os.open(cdir / "merged", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def mount_image_read_only(image, where: str) -> int:
    """In the copying child (its own mount namespace): IMAGE's layers, read-only, on the
    empty directory WHERE; an fd of its root. (COPY --from=STAGE reads from here.)"""
    from minicontainer.kernel.mount import MS_BIND, MS_NODEV, MS_RDONLY, MS_REMOUNT, mount
    lower = [str(d) for d in image.lower_dirs]
    if len(lower) == 1:                                  # overlay wants two lowers without an upper
        mount(lower[0], where, None, MS_BIND)
        mount(None, where, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV)
    else:
        mount("overlay", where, "overlay", MS_RDONLY | MS_NODEV, "lowerdir=" + ":".join(lower))
    return os.open(where, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def tree_digest(side: Side, path: str) -> str:
    """sha256 over names, types, modes, owners and bytes below PATH (resolved in side's root,
    walked with O_NOFOLLOW; side.ignore honoured): the build cache's content key."""
    import hashlib
    h = hashlib.sha256()
    top = side.open(path, os.O_PATH)
    try:
        st = os.fstat(top)
        if stat.S_ISDIR(st.st_mode):
            fd = reopen(top, _DIR)
            try:
                digest_dir(side, fd, os.path.normpath(path), h)
            finally:
                os.close(fd)
        else:
            fd = reopen(top, os.O_RDONLY)
            try:
                digest_entry(h, ".", st, fd)
            finally:
                os.close(fd)
    finally:
        os.close(top)
    return h.hexdigest()


def digest_dir(side: Side, dir_fd: int, rel: str, h) -> None:
    with os.scandir(dir_fd) as entries:
        names = sorted(e.name for e in entries)
    for name in names:
        sub = name if rel == "." else f"{rel}/{name}"
        if side.ignore is not None and side.ignore(sub):
            continue
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            digest_entry(h, sub, st, None)
            fd = os.open(name, _DIR, dir_fd=dir_fd)
            try:
                digest_dir(side, fd, sub, h)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                digest_entry(h, sub, st, fd)
            finally:
                os.close(fd)
        elif stat.S_ISLNK(st.st_mode):
            digest_entry(h, sub, st, None, os.readlink(name, dir_fd=dir_fd))


def digest_entry(h, name: str, st, fd, link: str = "") -> None:
    h.update(f"{name}\0{st.st_mode:o}\0{st.st_uid}:{st.st_gid}\0{link}\0".encode())
    while fd is not None:
        data = os.read(fd, 1 << 20)
        if not data:
            break
        h.update(data)
