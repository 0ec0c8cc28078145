"""Safe unpacking of a root filesystem tarball into a directory.

What it is
    An image is a directory tree (a "rootfs") that arrives as a tar archive, maybe
    compressed. `unpack(archive, dest)` recreates that tree below `dest`: files,
    directories, symlinks, hardlinks and fifos, with their numeric owners, modes
    (setuid, setgid and sticky bits included) and modification times.

Shell equivalent
    mkdir rootfs && tar -xpf busybox.tar.gz -C rootfs --numeric-owner
    (GNU tar guesses the compression; we look at the first bytes: gzip, xz or bzip2.)

Why this is a security boundary (man 7 path_resolution, man 2 openat, man 7 symlink)
    An archive is data from someone else, and every name in it is a path the kernel
    would happily resolve *on the host*: `../../etc/cron.d/x`, `/etc/shadow`, or the
    two-step trick: entry `evil -> /etc` (a symlink), then entry `evil/passwd`, which a
    naive extractor writes *through* the symlink into the host's /etc. Hardlinks can
    name host files too (`link -> /etc/shadow` makes the host file appear in the image).
    So the rule here is: extraction never writes, links or changes anything outside
    `dest`, whatever the archive holds. We get there by never letting the kernel
    resolve an archive path for us:

      * names are cleaned lexically (leading "/" stripped, "a/../b" folded); a name
        that still climbs out ("../x") makes the whole archive refused;
      * every directory on the way to an entry is opened one component at a time with
        openat(parent_fd, part, O_DIRECTORY | O_NOFOLLOW): a symlink in the middle of a
        path is refused, never followed;
      * the entry itself is created relative to its parent's fd with calls that do
        not follow a symlink in the last component either (O_CREAT | O_EXCL, mkdirat,
        symlinkat, linkat without AT_SYMLINK_FOLLOW, fchownat(AT_SYMLINK_NOFOLLOW));
        a name that exists already is removed first (a later entry replaces an
        earlier one, as in tar) - unlinked, never opened;
      * a hardlink may only point to a regular file already extracted inside `dest`.

    Symlinks themselves are kept exactly as written, absolute ones included:
    `bin/sh -> /bin/busybox` is normal in a rootfs and only means something once the
    container's root is that directory. We never follow them while unpacking.

Why not `tarfile.extractall()`
    Python's tarfile extracts through plain paths (so symlinks in the middle of a name
    are followed). Its extraction filters (Python 3.12, backported to 3.11.4) do not fit
    a rootfs either: the "data" filter refuses absolute symlinks and drops setuid bits
    and owners, which a rootfs needs; the "tar" filter keeps those but still allows a
    hardlink to a host file. So tarfile is used only to *parse* headers (it knows pax,
    GNU long names and sparse files); every filesystem call is made here, relative to
    a directory fd. We never call TarFile.extract or extractall.

What is skipped, and why
    * Device nodes (character and block). The runtime mounts its own /dev, so nodes in
      the image would be hidden anyway, and a device node in an image is a door to host
      hardware: whoever opens `disk -> block 8,0` reads the host's disk unless a device
      cgroup stops them. Skipped entries are listed in UnpackStats.skipped.
    * Extended attributes and ACLs (not read from the archive; file capabilities such
      as `cap_net_raw+ep` on ping are therefore lost).
    * Entry types tarfile does not know (listed in UnpackStats.skipped).

Bounded failure
    A corrupt, truncated or unknown archive raises ArchiveError with one line. An
    archive that expands beyond Limits (entries, bytes) fails cleanly instead of filling
    the disk: a 1 MB gzip can hold 1 GB of zeros. Sparse files (GNU tar --sparse) keep
    their holes, so only their real data counts. On any error `dest` is left partly
    filled; the caller (ImageStore) removes it.

What other modules build on (layer_tar.py: OCI layers with whiteouts; oci.py: image archives)
    Extractor and its whiteout() hook, the failure kinds Corrupt, Unsafe and TooBig with
    archive_errors() (each → one ArchiveError line), Syscall, and the reading pipeline:
    detect_format → decompressed → TarStream → open_tar (StrictTarInfo) → members.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from minicontainer.errors import ArchiveError, ConfigError, ImageError, SyscallError
from minicontainer.records import field, record

CHUNK = 1 << 20                 # copy buffer: 1 MiB reads and writes
MAX_METADATA = 1 << 20          # a pax header or GNU long name bigger than this is not a name
MAX_NAME = 4096                 # PATH_MAX: a longer path could not be used in the container
DIR_FD_CACHE = 64               # directory fds kept open: tar lists a directory's files together

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Progress = Callable[[int, int], None]


@record(frozen=True)
class Limits:
    """How far an archive may expand before we call it a bomb (both are checked while reading)."""

    max_entries: int = 1_000_000
    max_bytes: int = 64 << 30          # uncompressed tar bytes, and bytes of file data written

    @classmethod
    def from_env(cls) -> "Limits":
        """Defaults, overridable with MINICONTAINER_UNPACK_MAX_ENTRIES / _MAX_BYTES."""
        return cls(_env_int("MINICONTAINER_UNPACK_MAX_ENTRIES", cls.max_entries),
                   _env_int("MINICONTAINER_UNPACK_MAX_BYTES", cls.max_bytes))


def _env_int(variable: str, default: int) -> int:
    value = os.environ.get(variable, "")
    if not value:
        return default
    if not value.isdigit():
        raise ConfigError(f"{variable}={value!r} is not a number — set it to a whole number "
                          f"(default {default}) or unset it")
    return int(value)


@record
class UnpackStats:
    """What unpack() did. `bytes` is the image size: the apparent size of its regular files
    (as `du --apparent-size`; holes of sparse files included, hardlinks counted once)."""

    entries: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (entry name, reason)
    digest: str = ""          # "sha256:<hex>" of the archive file exactly as stored on disk
    format: str = ""          # "tar", "tar.gz", "tar.xz" or "tar.bz2"


def unpack(archive: str | os.PathLike, dest: str | os.PathLike, *,
           progress: Progress | None = None, limits: Limits | None = None) -> UnpackStats:
    """Unpack `archive` into the existing, empty directory `dest`; see the module docstring.

    progress(done, total) is called now and then with bytes of the archive file read so far.
    """
    archive, dest = Path(archive), Path(dest)
    limits = limits or Limits.from_env()
    stats = UnpackStats()
    with archive_errors(f"archive {archive}"), _open_archive(archive) as raw:
        stats.format = detect_format(raw, archive)
        source = _HashingReader(raw, str(archive), progress)
        stream = TarStream(decompressed(source, stats.format), limits.max_bytes)
        with Extractor(dest, stats, limits) as extractor:
            extractor.run(open_tar(stream))
        stream.drain()                  # reaches the gzip/xz trailer: checks its CRC
        stats.digest = "sha256:" + source.finish()
    return stats


@contextmanager
def archive_errors(what: str):
    """Each failure kind below becomes one ArchiveError line naming `what` ("archive PATH",
    "layer NAME"): what is wrong with it, and what to do."""
    try:
        yield
    except Corrupt as e:
        raise ArchiveError(f"corrupt {what}: {e}; re-download or rebuild it") from None
    except tarfile.TarError as e:       # what tarfile itself still raises (e.g. short file data)
        raise ArchiveError(f"corrupt {what}: {_explain_tar_error(e)}; "
                           f"re-download or rebuild it") from None
    except Unsafe as e:
        raise ArchiveError(f"unsafe {what}: {e}; refusing to unpack it") from None
    except TooBig as e:
        raise ArchiveError(f"{what} is too big: {e} — if it is genuine, raise the "
                           f"limit with MINICONTAINER_UNPACK_{e.knob}") from None


# --- The failure kinds: archive_errors() turns each into one ArchiveError line --------------

class Corrupt(Exception):
    """The bytes are not a well-formed archive (truncated, bad checksum, bad compression)."""


class Unsafe(Exception):
    """A well-formed archive that tries to reach outside the destination."""


class TooBig(Exception):
    """More entries or bytes than Limits allows; `knob` names the variable to raise."""

    def __init__(self, message: str, knob: str):
        super().__init__(message)
        self.knob = knob


class Syscall:
    """`with Syscall("openat", root, name):` turns an OSError into a SyscallError naming the
    call and the path root/name (joined only on error: this runs for every entry)."""

    __slots__ = ("call", "root", "name")

    def __init__(self, call: str, root: str, name: str = ""):
        self.call, self.root, self.name = call, root, name

    def __enter__(self):
        return self

    def __exit__(self, _type, exc, _tb):
        if isinstance(exc, OSError):
            path = os.path.join(self.root, self.name)
            raise SyscallError(self.call, (path,), exc.errno or 0) from exc
        return False


# --- Reading: file -> sha256 + progress -> decompression -> tar headers ----------------------

_MAGIC = ((b"\x1f\x8b", "tar.gz"), (b"\xfd7zXZ\x00", "tar.xz"), (b"BZh", "tar.bz2"))
_UNSUPPORTED = ((b"\x28\xb5\x2f\xfd", "zstd-compressed (decompress it with `zstd -d` first)"),
                (b"PK\x03\x04", "a zip file"),
                (b"\x89PNG", "a PNG image"))


def _open_archive(archive: Path):
    """Open the archive file unbuffered (we add our own 1 MiB buffer on top)."""
    try:
        return open(archive, "rb", buffering=0)
    except FileNotFoundError:
        raise ArchiveError(f"no such archive: {archive} — check the path") from None
    except IsADirectoryError:
        raise ArchiveError(f"{archive} is a directory, not an archive — pass a .tar, "
                           f".tar.gz or .tar.xz file") from None
    except OSError as e:
        raise SyscallError("open", (str(archive),), e.errno or 0) from None


def detect_format(raw: io.RawIOBase, archive: Path) -> str:
    """Name the format from the first bytes (magic numbers), never from the file name."""
    head = raw.read(512)
    raw.seek(0)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if _looks_like_tar(head):
        return "tar"
    for magic, what in _UNSUPPORTED:
        if head.startswith(magic):
            raise ArchiveError(f"unknown archive format {archive}: it is {what}; "
                               f"expected a tar file, optionally gzip-, xz- or bzip2-compressed")
    what = f"it starts with {head[:8].hex(' ')}" if head else "the file is empty"
    raise ArchiveError(f"unknown archive format {archive}: {what}; expected a tar file, "
                       f"optionally gzip-, xz- or bzip2-compressed")


def _looks_like_tar(block: bytes) -> bool:
    """A tar file starts with a header whose checksum is right (or with zeros, if empty)."""
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.EOFHeaderError:
        return True                     # all zeros: an empty archive
    except tarfile.HeaderError:
        return False
    return True


class _HashingReader(io.RawIOBase):
    """The archive file as read: hashes every byte (sha256) and reports progress."""

    def __init__(self, raw: io.RawIOBase, name: str, progress: Progress | None):
        self._raw, self._name, self._progress = raw, name, progress
        self._sha = hashlib.sha256()
        self.done = 0
        self.total = os.fstat(raw.fileno()).st_size
        self._next_report = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            n = self._raw.readinto(buffer)
        except OSError as e:
            raise SyscallError("read", (self._name,), e.errno or 0) from None
        if n:
            self._sha.update(memoryview(buffer)[:n])
            self.done += n
            self._report()
        return n

    def _report(self) -> None:
        """Call progress() about every 1% (and at least every MiB of input), not on every read."""
        if self._progress and self.done >= self._next_report:
            self._next_report = self.done + max(CHUNK, self.total // 100)
            self._progress(self.done, self.total)

    def finish(self) -> str:
        """Hash what the decompressor left unread (e.g. zero padding) and return the hex digest."""
        buffer = bytearray(CHUNK)
        while self.readinto(buffer):
            pass
        if self._progress:
            self._progress(self.done, self.total)
        return self._sha.hexdigest()


def decompressed(source: _HashingReader, fmt: str):
    """A file object of the uncompressed tar bytes. gzip/lzma/bz2 check CRCs and truncation."""
    buffered = io.BufferedReader(source, CHUNK)
    if fmt == "tar.gz":
        import gzip
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if fmt == "tar.xz":
        import lzma
        return lzma.LZMAFile(buffered)
    if fmt == "tar.bz2":
        import bz2
        return bz2.BZ2File(buffered)
    return buffered


def decompress_errors() -> tuple[type[BaseException], ...]:
    """What gzip, lzma and bz2 raise on bad input: EOFError = truncated, the rest = corrupt."""
    import lzma
    import zlib
    return (EOFError, OSError, zlib.error, lzma.LZMAError)


class TarStream:
    """The uncompressed tar bytes as a forward-only file object for tarfile.

    tarfile wants tell() and seek(); a compressed stream can only go forward, so seek()
    skips ahead by reading. Every read counts against Limits.max_bytes (the bomb guard),
    and decompression errors become Corrupt.
    """

    def __init__(self, source, max_bytes: int):
        self._source, self._max = source, max_bytes
        self._pos = 0
        self._errors = decompress_errors()

    def read(self, size: int) -> bytes:
        if size < 0:                    # tarfile computes sizes from header fields
            raise Corrupt(f"a negative length in a header before byte {self._pos}")
        try:
            data = self._source.read(size)
        except self._errors as e:
            raise Corrupt(_explain_decompress_error(e)) from None
        self._pos += len(data)
        if self._pos > self._max:
            raise TooBig(f"it expands to more than {_human(self._max)}", "MAX_BYTES")
        return data

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True                     # forward only: see seek()

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            pos += self._pos
        if whence == os.SEEK_END or pos < self._pos:
            raise Corrupt("tar reader tried to seek backwards in a stream")
        while self._pos < pos:
            if not self.read(min(CHUNK, pos - self._pos)):
                raise Corrupt(f"unexpected end of data at byte {self._pos}")
        return self._pos

    def drain(self) -> None:
        """Read to the end: this reaches (and checks) the compressed stream's trailer."""
        while self.read(CHUNK):
            pass


def _explain_tar_error(e: tarfile.TarError) -> str:
    if "unexpected end" in str(e):
        return "it ends in the middle of an entry (truncated?)"
    return str(e)


def _explain_decompress_error(e: BaseException) -> str:
    if isinstance(e, EOFError):
        return "the compressed data ends early (truncated download?)"
    return f"bad compressed data ({e})"


class StrictTarInfo(tarfile.TarInfo):
    """tarfile's header parser, made strict about the end of the archive and metadata size.

    Left alone, TarFile.next() treats a truncated or garbled header after the first one
    as the end of the archive, so a half-downloaded file would unpack "successfully".
    """

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.EOFHeaderError:
            raise                       # a zero block: the normal end-of-archive marker
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError):
            raise Corrupt(f"it ends at byte {tar.offset} without the end-of-archive "
                           f"marker (truncated?)") from None
        except tarfile.HeaderError as e:
            raise Corrupt(f"bad tar header at byte {tar.offset} ({e})") from None

    def _proc_member(self, tar):
        # tarfile reads a pax header or GNU long name into memory whole: cap its size.
        # (_proc_member is the hook tarfile documents for subclasses.)
        if self.type in _METADATA_TYPES and not 0 <= self.size <= MAX_METADATA:
            raise Corrupt(f"a {self.size}-byte metadata header at byte {self.offset}")
        return super()._proc_member(tar)


_METADATA_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                   tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


def open_tar(stream: TarStream) -> tarfile.TarFile:
    """A TarFile that only parses: we read members one by one and never call extract()."""
    return tarfile.TarFile(fileobj=stream, mode="r", tarinfo=StrictTarInfo,
                           encoding="utf-8", errors="surrogateescape")


def members(tar: tarfile.TarFile):
    """Yield members as they are read. TarFile keeps a list of all members; we don't need it."""
    while (member := tar.next()) is not None:
        tar.members.clear()
        yield member


# --- Names ------------------------------------------------------------------------------

def clean_name(raw: str) -> str:
    """The path of an entry relative to the root: "" for the root itself.

    "/usr/bin" -> "usr/bin" (GNU tar strips the leading "/" too), "./a//b/" -> "a/b",
    "a/../b" -> "b". Anything that still starts with ".." would land outside: refused.
    """
    name = posixpath.normpath(raw.lstrip("/") or ".")
    if name == ".." or name.startswith("../"):
        raise Unsafe(f"entry {raw!r} points outside the image root")
    if len(name) > MAX_NAME:
        raise Unsafe(f"entry name of {len(name)} bytes is longer than PATH_MAX ({MAX_NAME})")
    return "" if name == "." else name


# --- Directory fds: the safe walk -------------------------------------------------------

class _PathError(Exception):
    """A directory on the way to an entry is a symlink ("symlink"), a file ("file") or missing."""

    def __init__(self, path: str, kind: str):
        super().__init__(path, kind)
        self.path, self.kind = path, kind


class _DirFds:
    """Open directory fds below the root, reached one component at a time, never via a symlink.

    A small LRU cache: tar archives list a directory's entries together, so the parent
    fd of the next entry is almost always already open.
    """

    def __init__(self, root_fd: int, root_path: str, capacity: int = DIR_FD_CACHE):
        self.root_fd, self._root_path, self._capacity = root_fd, root_path, capacity
        self._fds: OrderedDict[str, int] = OrderedDict()

    def get(self, path: str, create: bool = True) -> int:
        """The fd of directory `path` ("" is the root). create: mkdir missing parts (0755)."""
        if not path:
            return self.root_fd
        fd = self._fds.get(path)
        if fd is not None:
            self._fds.move_to_end(path)
            return fd
        parts = path.split("/")
        have = len(parts) - 1           # find the deepest ancestor we hold open
        while have and (fd := self._fds.get("/".join(parts[:have]))) is None:
            have -= 1
        if not have:
            fd = self.root_fd
        for depth in range(have + 1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            fd = self._open_subdir(fd, parts[depth - 1], sub, create)
            self._remember(sub, fd)
        return fd

    def _open_subdir(self, parent_fd: int, leaf: str, path: str, create: bool) -> int:
        try:
            return os.open(leaf, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise _PathError(path, "missing") from None
        except OSError as e:
            if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise SyscallError("openat", (os.path.join(self._root_path, path),),
                                   e.errno or 0) from None
            kind = "symlink" if _is_symlink(parent_fd, leaf) else "file"
            raise _PathError(path, kind) from None
        # An implicit parent: the archive has entries below a directory it never listed.
        with Syscall("mkdirat", self._root_path, path):
            os.mkdir(leaf, 0o755, dir_fd=parent_fd)
            fd = os.open(leaf, _DIR_FLAGS, dir_fd=parent_fd)
        try:
            with Syscall("fchmod", self._root_path, path):
                os.fchmod(fd, 0o755)    # the umask may have taken bits away
        except SyscallError:
            os.close(fd)
            raise
        return fd

    def _remember(self, path: str, fd: int) -> None:
        self._fds[path] = fd
        if len(self._fds) > self._capacity:
            os.close(self._fds.popitem(last=False)[1])

    def forget(self, path: str) -> None:
        """Close the fds of `path` and below: it was removed (replaced by a non-directory)."""
        for cached in [p for p in self._fds if p == path or p.startswith(path + "/")]:
            os.close(self._fds.pop(cached))

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])


def _is_symlink(dir_fd: int, leaf: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


# --- Writing: one handler per entry type ----------------------------------------------------

class Extractor:
    """Creates each archive member below the root fd; see the module docstring for the rules.

    The interface a subclass builds on (storage/layer_tar.py's LayerExtractor):
        run(tar)                          extract every member, then set directory modes
        extract(member)                   one member: whiteout() first, then by its type
        whiteout(name, leaf) -> bool      the hook: True if the entry was handled
        parent(name) -> (fd, leaf)        the entry's directory, reached safely from the root
        mkdir_or_keep(parent_fd, leaf, name)   a directory entry over whatever is there
        dest                              the destination's path (for error messages)
    """

    def __init__(self, dest: Path, stats: UnpackStats, limits: Limits):
        self.dest, self._stats, self._limits = str(dest), stats, limits
        self._as_root = os.geteuid() == 0      # chown only works as root; otherwise files are ours
        self._root_fd = _open_dest(dest)
        self._dirs = _DirFds(self._root_fd, self.dest)
        # Directory modes and mtimes are set at the end, like tar does: adding files
        # would change the mtime, and a 0555 directory could not be filled (as non-root).
        self._deferred: dict[str, tuple[int, float]] = {}
        self._tar: tarfile.TarFile | None = None
        self._written = 0               # file data bytes we will write (holes don't count)

    def __enter__(self) -> "Extractor":
        return self

    def __exit__(self, *_exc) -> None:
        self._dirs.close()
        os.close(self._root_fd)

    def run(self, tar: tarfile.TarFile) -> None:
        self._tar = tar
        for member in members(tar):
            self._count(member)
            self.extract(member)
        self._apply_deferred()

    def _count(self, m: tarfile.TarInfo) -> None:
        """Check the limits, and numbers the kernel could not take (base-256 fields can be anything)."""
        limits = self._limits
        self._stats.entries += 1
        if self._stats.entries > limits.max_entries:
            raise TooBig(f"more than {limits.max_entries} entries", "MAX_ENTRIES")
        if m.size < 0 or not (0 <= m.uid < _NO_ID and 0 <= m.gid < _NO_ID):
            raise Corrupt(f"entry {m.name!r} has an impossible size or owner "
                           f"(size {m.size}, uid {m.uid}, gid {m.gid})")
        self._written += _data_size(m)
        if self._written > limits.max_bytes:
            raise TooBig(f"its files hold more than {_human(limits.max_bytes)}", "MAX_BYTES")

    def extract(self, m: tarfile.TarInfo) -> None:
        if "\0" in m.name or "\0" in m.linkname:        # no system call takes such a path
            raise Corrupt(f"entry {m.name!r} has a NUL byte in its name or link target")
        name = clean_name(m.name)
        if self.whiteout(name, name.rpartition("/")[2]):
            return
        if m.isdir():
            self._make_dir(name, m)
        elif not name:
            raise Unsafe(f"entry {m.name!r} would replace the image root with a "
                          f"{_kind(m)}; the root must be a directory")
        elif m.isreg():
            self._write_file(name, m)
        elif m.issym():
            self._make_symlink(name, m)
        elif m.islnk():
            self._make_hardlink(name, m)
        elif m.isfifo():
            self._make_fifo(name, m)
        elif m.ischr() or m.isblk():
            self._skip(name, f"{_kind(m)} {m.devmajor},{m.devminor}: device nodes are not "
                             f"unpacked (the runtime makes /dev; a node would expose host hardware)")
        else:
            self._skip(name, f"unsupported entry type {m.type!r}")

    def whiteout(self, name: str, leaf: str) -> bool:
        """The whiteout hook, called before each entry is made: a subclass that knows entries
        with a meaning beyond the tar format (an OCI layer's .wh. files: storage/layer_tar.py)
        handles them here and returns True. A plain rootfs has none: .wh.x is a file."""
        return False

    def _skip(self, name: str, reason: str) -> None:
        self._stats.skipped.append((name, reason))

    # Parents and replacement

    def parent(self, name: str) -> tuple[int, str]:
        """(fd of the entry's directory, last component), walking safely from the root."""
        parent, _, leaf = name.rpartition("/")
        try:
            return self._dirs.get(parent), leaf
        except _PathError as e:
            raise _explain_path_error(e, name) from None

    def _create(self, parent_fd: int, leaf: str, name: str, make: Callable[[], object]):
        """Run make(); if the name is taken, remove what is there (never following it), retry."""
        try:
            return make()
        except FileExistsError:
            self._remove(parent_fd, leaf, name)
            return make()

    def _remove(self, parent_fd: int, leaf: str, name: str) -> None:
        with Syscall("unlinkat", self.dest, name):
            if _is_dir(parent_fd, leaf):
                shutil.rmtree(leaf, dir_fd=parent_fd)   # fd-based, does not follow symlinks
                self._dirs.forget(name)
                self._forget_deferred(name)
            else:
                os.unlink(leaf, dir_fd=parent_fd)

    def _forget_deferred(self, name: str) -> None:
        for path in [p for p in self._deferred if p == name or p.startswith(name + "/")]:
            del self._deferred[path]

    # Entry types

    def _write_file(self, name: str, m: tarfile.TarInfo) -> None:
        parent_fd, leaf = self.parent(name)
        with Syscall("openat", self.dest, name):
            fd = self._create(parent_fd, leaf, name,
                              lambda: os.open(leaf, _NEW_FILE_FLAGS, 0o600, dir_fd=parent_fd))
        try:
            self._copy_data(m, fd, name)
            self._set_fd_metadata(fd, m, name)
        finally:
            os.close(fd)
        self._stats.bytes += m.size

    def _copy_data(self, m: tarfile.TarInfo, fd: int, name: str) -> None:
        """Stream the member's data in 1 MiB chunks; a sparse member keeps its holes."""
        source = self._tar.extractfile(m)
        if not m.sparse:
            self._copy_range(source, fd, 0, m.size, name)
            return
        # GNU sparse: m.sparse lists the (offset, length) runs that hold data; the rest are
        # holes. Writing only the runs and then setting the size leaves the holes unallocated
        # (think /var/log/lastlog: terabytes long, a few kilobytes on disk).
        for offset, length in m.sparse:
            source.seek(offset)
            self._copy_range(source, fd, offset, length, name)
        with Syscall("ftruncate", self.dest, name):
            os.ftruncate(fd, m.size)

    def _copy_range(self, source, fd: int, offset: int, length: int, name: str) -> None:
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        while length > 0:
            chunk = source.read(min(CHUNK, length))
            if not chunk:
                raise Corrupt(f"entry {name!r} ends early")
            with Syscall("write", self.dest, name):
                _write_all(fd, chunk)
            length -= len(chunk)

    def _set_fd_metadata(self, fd: int, m: tarfile.TarInfo, name: str) -> None:
        """Owner, then mode (chown clears setuid/setgid, so chmod must come after), then mtime."""
        if self._as_root:
            with Syscall("fchown", self.dest, name):
                os.fchown(fd, m.uid, m.gid)
        with Syscall("fchmod", self.dest, name):
            os.fchmod(fd, m.mode & 0o7777)
        with Syscall("futimens", self.dest, name):
            _set_mtime(lambda t: os.utime(fd, t), m.mtime)

    def _make_dir(self, name: str, m: tarfile.TarInfo) -> None:
        if name:
            parent_fd, leaf = self.parent(name)
            with Syscall("mkdirat", self.dest, name):
                self.mkdir_or_keep(parent_fd, leaf, name)
            self._chown_nofollow(parent_fd, leaf, m, name)
        elif self._as_root:
            with Syscall("fchown", self.dest):
                os.fchown(self._root_fd, m.uid, m.gid)     # "./": the root's own owner
        self._deferred[name] = (m.mode & 0o7777, m.mtime)

    def mkdir_or_keep(self, parent_fd: int, leaf: str, name: str) -> None:
        """A directory entry merges into an existing directory; anything else there is replaced."""
        try:
            os.mkdir(leaf, 0o700, dir_fd=parent_fd)
        except FileExistsError:
            if _is_dir(parent_fd, leaf):
                return
            self._remove(parent_fd, leaf, name)
            os.mkdir(leaf, 0o700, dir_fd=parent_fd)

    def _make_symlink(self, name: str, m: tarfile.TarInfo) -> None:
        """The link text is kept as written: "/bin/busybox" is resolved in the container, later."""
        parent_fd, leaf = self.parent(name)
        with Syscall("symlinkat", self.dest, name):
            self._create(parent_fd, leaf, name,
                         lambda: os.symlink(m.linkname, leaf, dir_fd=parent_fd))
        self._chown_nofollow(parent_fd, leaf, m, name)
        with Syscall("utimensat", self.dest, name):
            _set_mtime(lambda t: os.utime(leaf, t, dir_fd=parent_fd, follow_symlinks=False),
                       m.mtime)

    def _make_hardlink(self, name: str, m: tarfile.TarInfo) -> None:
        """linkat() to a regular file this archive already put inside the root."""
        target = clean_name(m.linkname) if m.linkname else ""
        if target == name:
            return                      # a link to itself: nothing to do
        target_fd, target_leaf = self._hardlink_target(name, m.linkname, target)
        try:
            parent_fd, leaf = self.parent(name)
            with Syscall("linkat", self.dest, name):
                self._create(parent_fd, leaf, name, lambda: os.link(
                    target_leaf, leaf, src_dir_fd=target_fd, dst_dir_fd=parent_fd,
                    follow_symlinks=False))
        finally:
            os.close(target_fd)

    def _hardlink_target(self, name: str, raw: str, target: str) -> tuple[int, str]:
        """(own fd of the target's directory, target leaf); refuse anything but a regular file."""
        parent, _, leaf = target.rpartition("/")
        try:
            parent_fd = self._dirs.get(parent, create=False)
            st = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False) if leaf else None
        except (_PathError, OSError):       # missing, or a name too long to have been unpacked
            st = None
        if st is None:
            raise Unsafe(f"hardlink {name!r} points to {raw!r}, which is not a file "
                          f"unpacked before it")
        if not stat.S_ISREG(st.st_mode):
            raise Unsafe(f"hardlink {name!r} points to {raw!r}, which is a "
                          f"{_mode_kind(st.st_mode)}, not a regular file")
        return os.dup(parent_fd), leaf  # our own fd: the cache may close its copy meanwhile

    def _make_fifo(self, name: str, m: tarfile.TarInfo) -> None:
        parent_fd, leaf = self.parent(name)
        with Syscall("mknodat", self.dest, name):
            self._create(parent_fd, leaf, name, lambda: os.mkfifo(leaf, 0o600, dir_fd=parent_fd))
        self._chown_nofollow(parent_fd, leaf, m, name)
        with Syscall("fchmodat", self.dest, name):
            # fchmodat follows a symlink in the last component, but we just made this
            # name a fifo, and nothing else writes below the root while we unpack.
            os.chmod(leaf, m.mode & 0o7777, dir_fd=parent_fd)
        with Syscall("utimensat", self.dest, name):
            _set_mtime(lambda t: os.utime(leaf, t, dir_fd=parent_fd, follow_symlinks=False),
                       m.mtime)

    def _chown_nofollow(self, parent_fd: int, leaf: str, m: tarfile.TarInfo, name: str) -> None:
        if self._as_root:
            with Syscall("fchownat", self.dest, name):
                os.chown(leaf, m.uid, m.gid, dir_fd=parent_fd, follow_symlinks=False)

    def _apply_deferred(self) -> None:
        """Set directory modes and mtimes last; skip directories a later entry replaced."""
        for name, (mode, mtime) in self._deferred.items():
            try:
                fd = self._dirs.get(name, create=False)
            except _PathError:
                continue
            with Syscall("fchmod", self.dest, name):
                os.fchmod(fd, mode)
            with Syscall("futimens", self.dest, name):
                _set_mtime(lambda t: os.utime(fd, t), mtime)


def _open_dest(dest: Path) -> int:
    try:
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SyscallError("open", (str(dest),), e.errno or 0,
                           hint="unpack needs an existing empty directory") from None
    with os.scandir(fd) as entries:
        if any(entries):
            os.close(fd)
            raise ImageError(f"unpack destination {dest} is not empty — unpack into a new, "
                             f"empty directory")
    return fd


def _explain_path_error(e: _PathError, name: str) -> Exception:
    if e.kind == "symlink":
        return Unsafe(f"entry {name!r} lies below {e.path!r}, which the archive made a "
                       f"symlink (following it could write outside the root)")
    if e.kind == "file":
        return Corrupt(f"entry {name!r} lies below {e.path!r}, which is not a directory")
    return Corrupt(f"entry {name!r}: directory {e.path!r} is missing")


_NO_ID = 2**32 - 1                 # uid/gid (uid_t)-1 means "leave unchanged" to chown(2)


def _data_size(m: tarfile.TarInfo) -> int:
    """Bytes of data a member makes us write: its size, or only the data runs if sparse."""
    if m.isreg() and m.sparse:
        return sum(length for _offset, length in m.sparse)
    return m.size if m.isreg() else 0


def _is_dir(dir_fd: int, leaf: str) -> bool:
    return stat.S_ISDIR(os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False).st_mode)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _set_mtime(utime: Callable[[tuple[float, float]], None], mtime: float) -> None:
    """atime = mtime = the archive's mtime. A timestamp the kernel can't store is left as now."""
    try:
        utime((mtime, mtime))
    except (OverflowError, ValueError):
        pass


def _human(size: int) -> str:
    """64 << 30 -> "64 GiB (68719476736 bytes)": readable, and exact for setting the limit."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):g} {unit} ({size} bytes)"
    return f"{size} bytes"


def _kind(m: tarfile.TarInfo) -> str:
    kinds = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
             tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
             tarfile.FIFOTYPE: "fifo", tarfile.DIRTYPE: "directory"}
    return kinds.get(m.type, "file")


def _mode_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISLNK, "symlink"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "file"
