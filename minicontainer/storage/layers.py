"""Layers: an image as a stack of directories, shared on disk, merged by overlayfs.

    Documentation/filesystems/overlayfs.rst ("Multiple lower layers", "whiteouts and opaque
    directories"), OCI image-spec layer.md (the same idea, written as tar files)
    shell: mount -t overlay overlay -o lowerdir=L3:L2:L1,upperdir=UPPER,workdir=WORK MERGED

On disk (<state root> = /var/lib/minicontainer):

    layers/<chain id>/fs/          one layer: only what changed relative to the layers below
    layers/<chain id>/layer.json   {"id", "size", "created", "source"}
    images/<name>/<tag>/image.json  "layers": [bottom, …, top]  — ids, not copies

A layer's id is its *chain id*, as Docker names layers: for the bottom layer the sha256 of
its tar (its diff_id), above it sha256("<chain id below> <diff_id>"). So a layer is named by
its content *and* everything under it: two images built on the same base list the same ids
for the shared part, which exists once on disk; the same bytes at another place in another
stack are another directory (overlayfs cannot mount one directory twice in a stack).
A container of an image mounts lowerdir=top:…:bottom (overlayfs lists the *top* first);
`commit` turns the container's upper dir into one more layer on that stack.

A layer records deletions, which a plain directory cannot. Two formats say the same thing:

    in a tar (OCI/Docker)          in a directory (overlayfs)          means
    dir/.wh.NAME  (empty file)     dir/NAME: char device 0/0          NAME was deleted
    dir/.wh..wh..opq               xattr trusted.overlay.opaque=y     dir was emptied (and remade)

Layer tars are turned into the overlayfs form when unpacked (unpack_layer) and back when
exported (write_layer_tar). An image imported from a plain rootfs tarball has no layers:
its `rootfs/` directory is the whole image (one lower dir). It is moved into layers/ the
first time something is built on top of it (ImageStore.convert_to_layers).

The init layer: the runtime bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf and
mounts /proc, /sys and /dev. If the image lacks one of these, an empty placeholder must
exist to mount on; creating it in the container's upper dir would show up in `diff` and be
saved by `commit`. So, as Docker does, the placeholders go into a small layer of their own,
<container>/init/, between the image and the upper dir.
"""
from __future__ import annotations

import functools
import io
import os
import stat
from pathlib import Path

from minicontainer.errors import ArchiveError, ImageError
from minicontainer.records import record

WHITEOUT_PREFIX = ".wh."                 # OCI: .wh.NAME deletes NAME from the layers below
OPAQUE_MARKER = ".wh..wh..opq"           # OCI: this directory hides the layers below
OPAQUE_XATTR = "trusted.overlay.opaque"  # overlayfs: the same, as an extended attribute
MAX_LOWERDIR = 3500                      # the mount options must fit in one page (4096 bytes)


# ── whiteouts ───────────────────────────────────────────────────────────────────────────────

def is_whiteout(st: os.stat_result) -> bool:
    """A character device with device number 0/0: overlayfs's "deleted here"."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str | os.PathLike) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def make_whiteout(name: str, dir_fd: int) -> None:
    """mknod NAME c 0 0 — needs CAP_MKNOD (root)."""
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dir_fd)


def overlay_xattr_filter(name: str) -> bool:
    """Which xattrs a committed layer keeps: all but overlayfs's private bookkeeping
    (trusted.overlay.origin, .impure, … point at inodes of *this* mount); opaque stays."""
    return not name.startswith("trusted.overlay.") or name == OPAQUE_XATTR


# ── reading a stack of layer directories ───────────────────────────────────────────────────

def lookup(lower_dirs: list[Path], rel: str) -> os.stat_result | None:
    """lstat of what a container would see at REL (no leading /) in the stack LOWER_DIRS
    (top first), as overlayfs merges it: None if absent, deleted or hidden.

    Component by component: a directory merges with the same directory below it until a
    layer holds a whiteout, a non-directory or an opaque directory there. Never follows a
    symlink: a path below a symlink does not exist in a layer."""
    active = list(lower_dirs)
    parts = [p for p in rel.split("/") if p]
    found = None
    for depth, _ in enumerate(parts):
        sub = "/".join(parts[:depth + 1])
        found, below = None, []
        for layer in active:
            try:
                st = os.lstat(layer / sub)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout(st):
                break                                    # deleted here: nothing below counts
            if found is None:
                found = st
            if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(found.st_mode):
                break                                    # a file hides everything below it
            below.append(layer)
            if is_opaque(layer / sub):
                break
        if found is None or (depth < len(parts) - 1 and not stat.S_ISDIR(found.st_mode)):
            return None
        active = below
    return found


# ── the init layer ─────────────────────────────────────────────────────────────────────────

INIT_DIRS = {"proc": 0o555, "sys": 0o555, "dev": 0o755}
INIT_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def make_init_layer(container_dir: Path, lower_dirs: list[Path]) -> list[Path]:
    """Create <container>/init/ with the mount points the image lacks; returns the lower
    stack to mount (init on top when it holds anything)."""
    init = container_dir / "init"
    needed = [d for d in INIT_DIRS if lookup(lower_dirs, d) is None]
    etc = lookup(lower_dirs, "etc")
    if etc is None or stat.S_ISDIR(etc.st_mode):       # an image whose /etc is a link: leave it
        needed += [f for f in INIT_FILES if lookup(lower_dirs, f) is None]
    if not needed:
        return list(lower_dirs)
    init.mkdir(mode=0o755, exist_ok=True)
    for entry in needed:
        path = init / entry
        if entry in INIT_DIRS:
            path.mkdir(mode=INIT_DIRS[entry], exist_ok=True)
            os.chmod(path, INIT_DIRS[entry])
            continue
        if not (init / "etc").is_dir():
            (init / "etc").mkdir(mode=0o755)
            if etc is not None:                          # the merged /etc keeps the image's look
                os.chown(init / "etc", etc.st_uid, etc.st_gid)
                os.chmod(init / "etc", stat.S_IMODE(etc.st_mode))
        path.touch(mode=0o644, exist_ok=True)
    if etc is not None and (init / "etc").is_dir():
        os.utime(init / "etc", ns=(etc.st_atime_ns, etc.st_mtime_ns))
    return [init, *lower_dirs]


def lowerdir_option(lower_dirs: list[Path]) -> str:
    """"L3:L2:L1" for mount(8); refuses a stack whose options would not fit in one page."""
    text = ":".join(str(d) for d in lower_dirs)
    if len(text) > MAX_LOWERDIR:
        raise ImageError(f"the image has {len(lower_dirs)} layers, too many for one overlay mount "
                         f"({len(text)} bytes of lowerdir): flatten it with `minicontainer export` "
                         "and `minicontainer image import`")
    return text


# ── a layer tar → a layer directory ────────────────────────────────────────────────────────

@record
class LayerStats:
    digest: str        # sha256 of the blob as stored (compressed or not)
    diff_id: str       # sha256 of the uncompressed tar: what an image config lists
    bytes: int         # regular file data
    entries: int


def unpack_layer(blob, dest: Path, *, name: str, limits=None) -> LayerStats:
    """Unpack one layer tar (file object, maybe compressed) into the empty directory DEST,
    safely (unpack.py's rules) and with whiteouts turned into overlayfs's form."""
    import tarfile                                   # imported where used: `run` never needs it
    from minicontainer.storage import unpack as u     # its parser and safe extractor
    limits = limits or u.Limits.from_env()
    stats = u.UnpackStats()
    raw = _Hashing(blob)
    try:
        stats.format = u.detect_format(blob, Path(name))
        plain = _Hashing(u._decompressed(raw, stats.format))
        stream = u._TarStream(plain, limits.max_bytes)
        with _LayerExtractor(dest, stats, limits) as extractor:
            extractor.run(u._open_tar(stream))
        stream.drain()
        raw.drain()
    except u._Corrupt as e:
        raise ArchiveError(f"corrupt layer {name}: {e}; the archive is damaged") from None
    except tarfile.TarError as e:
        raise ArchiveError(f"corrupt layer {name}: {u._explain_tar_error(e)}") from None
    except u._Unsafe as e:
        raise ArchiveError(f"unsafe layer {name}: {e}; refusing to unpack it") from None
    except u._TooBig as e:
        raise ArchiveError(f"layer {name} is too big: {e} — if it is genuine, raise the "
                           f"limit with MINICONTAINER_UNPACK_{e.knob}") from None
    return LayerStats("sha256:" + raw.hexdigest(), "sha256:" + plain.hexdigest(),
                      stats.bytes, stats.entries)


@functools.cache
def _layer_extractor_class():
    from minicontainer.storage import unpack as u

    class LayerExtractor(u._Extractor):
        """unpack.py's extractor, plus the two whiteout entries of the OCI layer format."""

        def _extract(self, m):
            name = u.clean_name(m.name)
            parent, _, leaf = name.rpartition("/")
            if leaf == OPAQUE_MARKER:
                fd, _ = self._parent(name)          # refuses a symlinked parent (unpack.py's rule)
                with u._Syscall("setxattr", self._dest, parent):
                    os.setxattr(fd, OPAQUE_XATTR, b"y")
            elif leaf.startswith(WHITEOUT_PREFIX):
                self._whiteout(name, leaf[len(WHITEOUT_PREFIX):])
            else:
                super()._extract(m)

        def _mkdir_or_keep(self, parent_fd: int, leaf: str, name: str) -> None:
            # A directory over this layer's own whiteout (`a/.wh.b`, then `a/b/`: the order
            # OCI recommends, and sorted tars have) is a new directory, not the one below:
            # opaque, as when the directory comes first (_whiteout).
            try:
                os.mkdir(leaf, 0o700, dir_fd=parent_fd)
                return
            except FileExistsError:
                replaced = is_whiteout(os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False))
            super()._mkdir_or_keep(parent_fd, leaf, name)
            if replaced:
                fd = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
                try:
                    os.setxattr(fd, OPAQUE_XATTR, b"y")
                finally:
                    os.close(fd)

        def _whiteout(self, name: str, hidden: str) -> None:
            if hidden in ("", ".", ".."):
                raise u._Unsafe(f"whiteout {name!r} names no file")
            parent_fd, _ = self._parent(name)
            try:
                st = os.stat(hidden, dir_fd=parent_fd, follow_symlinks=False)
            except FileNotFoundError:
                with u._Syscall("mknodat", self._dest, name):
                    make_whiteout(hidden, parent_fd)
                return
            # The same layer holds NAME too: a whiteout only hides the layers *below*
            # (OCI layer.md), so NAME stays; a directory must still hide what is below it.
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(hidden, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
                try:
                    os.setxattr(fd, OPAQUE_XATTR, b"y")
                finally:
                    os.close(fd)

    return LayerExtractor


def _LayerExtractor(dest, stats, limits):
    return _layer_extractor_class()(dest, stats, limits)


class _Hashing(io.RawIOBase):
    """A read-only file object that hashes (sha256) every byte read through it."""

    def __init__(self, source):
        from hashlib import sha256
        self.source, self.sha = source, sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha.update(data)
        return n

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.sha.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def hexdigest(self) -> str:
        return self.sha.hexdigest()


# ── a layer directory → a layer tar ────────────────────────────────────────────────────────

class _HashingWriter:
    """Where tarfile writes: counts and hashes the bytes, passes them on (or drops them)."""

    def __init__(self, out=None):
        from hashlib import sha256
        self.out, self.sha, self.size = out, sha256(), 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass


def write_layer_tar(fs_dir: Path, out=None) -> tuple[str, int]:
    """Write layer directory FS_DIR as an OCI layer tar to the file object OUT (None: only
    hash it). Whiteouts become .wh. entries again. Returns (diff_id, size in bytes).

    Reproducible: entries sorted by name, numeric owners only, the files' own mtimes."""
    writer = _HashingWriter(out)
    import tarfile
    with tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_tree(tar, Path(fs_dir), "")
    return "sha256:" + writer.sha.hexdigest(), writer.size


def _add_tree(tar, root: Path, rel: str) -> None:        # tar: the tarfile.TarFile being written
    directory = root / rel if rel else root
    with os.scandir(directory) as entries:
        names = sorted(e.name for e in entries)
    for name in names:
        arc = f"{rel}/{name}" if rel else name
        path = root / arc
        st = os.lstat(path)
        if is_whiteout(st):
            _add_marker(tar, f"{rel}/{WHITEOUT_PREFIX}{name}" if rel else WHITEOUT_PREFIX + name, st)
            continue
        info = tar.gettarinfo(str(path), arc)
        if info is None:                                 # a socket: tar has no type for it
            continue
        info.uname = info.gname = ""
        if info.isreg():
            with open(path, "rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
        if info.isdir():
            if is_opaque(path):
                _add_marker(tar, f"{arc}/{OPAQUE_MARKER}", st)
            _add_tree(tar, root, arc)


def _add_marker(tar, name: str, st: os.stat_result) -> None:
    import tarfile
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = tarfile.REGTYPE, 0, 0o644, int(st.st_mtime)
    tar.addfile(info)


def chain_id(below: str | None, diff_id: str) -> str:
    """The id (hex) of layer DIFF_ID on top of the layer whose id is BELOW (None: the bottom)."""
    if below is None:
        return sha256_hex(diff_id)
    from hashlib import sha256
    return sha256(f"sha256:{below} {diff_id}".encode()).hexdigest()


def sha256_hex(digest: str) -> str:
    """"sha256:ab…" → "ab…", refusing anything that is not a sha256 digest."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise ArchiveError(f"unsupported digest {digest!r}: only sha256:<64 hex digits> is supported")
    return hexpart

