"""Layer tars: an OCI/Docker layer tarball ↔ a layer directory overlayfs can stack.

    OCI image-spec layer.md ("Whiteouts", "Opaque Whiteout"), Documentation/filesystems/
    overlayfs.rst ("whiteouts and opaque directories")
    shell: tar -xpf layer.tar -C fs --numeric-owner, then each .wh.NAME → mknod NAME c 0 0

    unpack_layer     a layer tar → layer directory: unpack.py's safe extraction (LayerExtractor,
                     its whiteout hook) with the .wh. entries turned into overlayfs's form
    write_layer_tar  a layer directory → layer tar: whiteouts turned back into .wh. entries

The two formats of a deletion are drawn in layers.py, which holds everything else about
layers (ids, the lower-dir stack, the init layer) and is on `run`'s path; this module imports
tarfile and is not: only `image import`, `image export`, `commit` and `export` need it.
"""
from __future__ import annotations

import io
import os
import stat
import tarfile
from hashlib import sha256
from pathlib import Path

from minicontainer.records import record
from minicontainer.storage.layers import (OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, is_opaque,
                                          is_whiteout, make_whiteout)
from minicontainer.storage.unpack import (Extractor, Limits, Syscall, TarStream, UnpackStats, Unsafe,
                                          archive_errors, decompressed, detect_format, open_tar)


@record
class LayerStats:
    digest: str        # sha256 of the blob as stored (compressed or not)
    diff_id: str       # sha256 of the uncompressed tar: what an image config lists
    bytes: int         # regular file data
    entries: int


# ── a layer tar → a layer directory ────────────────────────────────────────────────────────

def unpack_layer(blob, dest: Path, *, name: str, limits=None) -> LayerStats:
    """Unpack one layer tar (file object, maybe compressed) into the empty directory DEST,
    safely (unpack.py's rules) and with whiteouts turned into overlayfs's form."""
    limits = limits or Limits.from_env()
    stats = UnpackStats()
    raw = Hashing(blob)
    with archive_errors(f"layer {name}"):
        stats.format = detect_format(blob, Path(name))
        plain = Hashing(decompressed(raw, stats.format))
        stream = TarStream(plain, limits.max_bytes)
        with LayerExtractor(dest, stats, limits) as extractor:
            extractor.run(open_tar(stream))
        stream.drain()
        raw.drain()
    return LayerStats("sha256:" + raw.hexdigest(), "sha256:" + plain.hexdigest(),
                      stats.bytes, stats.entries)


class LayerExtractor(Extractor):
    """unpack.py's extractor, plus the two whiteout entries of the OCI layer format."""

    def whiteout(self, name: str, leaf: str) -> bool:
        """The hook Extractor calls before each entry: .wh..wh..opq and .wh.NAME are ours."""
        if leaf == OPAQUE_MARKER:
            fd, _ = self.parent(name)                # refuses a symlinked parent (unpack.py's rule)
            with Syscall("setxattr", self.dest, name.rpartition("/")[0]):
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            return True
        if leaf.startswith(WHITEOUT_PREFIX):
            self.hide(name, leaf[len(WHITEOUT_PREFIX):])
            return True
        return False

    def mkdir_or_keep(self, parent_fd: int, leaf: str, name: str) -> None:
        # A directory over this layer's own whiteout (`a/.wh.b`, then `a/b/`: the order
        # OCI recommends, and sorted tars have) is a new directory, not the one below:
        # opaque, as when the directory comes first (hide).
        try:
            os.mkdir(leaf, 0o700, dir_fd=parent_fd)
            return
        except FileExistsError:
            replaced = is_whiteout(os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False))
        super().mkdir_or_keep(parent_fd, leaf, name)
        if replaced:
            set_opaque(leaf, parent_fd)

    def hide(self, name: str, hidden: str) -> None:
        """.wh.HIDDEN: a whiteout device where HIDDEN would be."""
        if hidden in ("", ".", ".."):
            raise Unsafe(f"whiteout {name!r} names no file")
        parent_fd, _ = self.parent(name)
        try:
            st = os.stat(hidden, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            with Syscall("mknodat", self.dest, name):
                make_whiteout(hidden, parent_fd)
            return
        # The same layer holds NAME too: a whiteout only hides the layers *below*
        # (OCI layer.md), so NAME stays; a directory must still hide what is below it.
        if stat.S_ISDIR(st.st_mode):
            set_opaque(hidden, parent_fd)


def set_opaque(leaf: str, parent_fd: int) -> None:
    """setfattr -n trusted.overlay.opaque -v y LEAF (never through a symlink)."""
    fd = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    try:
        os.setxattr(fd, OPAQUE_XATTR, b"y")
    finally:
        os.close(fd)


class Hashing(io.RawIOBase):
    """A read-only file object that hashes (sha256) every byte read through it."""

    def __init__(self, source):
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

class HashingWriter:
    """Where tarfile writes: counts and hashes the bytes, passes them on (or drops them)."""

    def __init__(self, out=None):
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
    writer = HashingWriter(out)
    with tarfile.open(fileobj=writer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_tree(tar, Path(fs_dir), "")
    return "sha256:" + writer.sha.hexdigest(), writer.size


def add_tree(tar: tarfile.TarFile, root: Path, rel: str) -> None:
    """Add ROOT/REL's entries below it to TAR, sorted, whiteouts and opaque dirs as markers."""
    directory = root / rel if rel else root
    with os.scandir(directory) as entries:
        names = sorted(e.name for e in entries)
    for name in names:
        arc = f"{rel}/{name}" if rel else name
        path = root / arc
        st = os.lstat(path)
        if is_whiteout(st):
            add_marker(tar, f"{rel}/{WHITEOUT_PREFIX}{name}" if rel else WHITEOUT_PREFIX + name, st)
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
                add_marker(tar, f"{arc}/{OPAQUE_MARKER}", st)
            add_tree(tar, root, arc)


def add_marker(tar: tarfile.TarFile, name: str, st: os.stat_result) -> None:
    """An empty regular file NAME: how a tar writes a whiteout or an opaque directory."""
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = tarfile.REGTYPE, 0, 0o644, int(st.st_mtime)
    tar.addfile(info)
