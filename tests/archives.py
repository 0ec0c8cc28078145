"""Build tar archives entry by entry for the unpack and image tests, hostile ones included.

tarfile in *write* mode writes names exactly as given ("../x", "/etc/passwd", a symlink
and then a file below it), which is what we need to build the attacks unpack() must stop.

    build(tmp_path / "evil.tar", [symlink("evil", "/etc"), file("evil/passwd", b"x")])
"""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

MTIME = 1_600_000_000           # a fixed, recognisable timestamp (2020-09-13)


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0,
          mtime: int = MTIME) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    return info


def file(name: str, data: bytes = b"", mode: int = 0o644, **kw) -> tuple[tarfile.TarInfo, bytes]:
    info = _info(name, tarfile.REGTYPE, mode, **kw)
    info.size = len(data)
    return info, data


def directory(name: str, mode: int = 0o755, **kw):
    return _info(name, tarfile.DIRTYPE, mode, **kw), None


def symlink(name: str, target: str, **kw):
    info = _info(name, tarfile.SYMTYPE, 0o777, **kw)
    info.linkname = target
    return info, None


def hardlink(name: str, target: str, **kw):
    info = _info(name, tarfile.LNKTYPE, 0o644, **kw)
    info.linkname = target
    return info, None


def device(name: str, kind: str = "chr", major: int = 1, minor: int = 3, **kw):
    info = _info(name, tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE, 0o666, **kw)
    info.devmajor, info.devminor = major, minor
    return info, None


def fifo(name: str, mode: int = 0o644, **kw):
    return _info(name, tarfile.FIFOTYPE, mode, **kw), None


def build(path: Path, entries, compression: str = "") -> Path:
    """Write `entries` (from the helpers above) to `path`; compression "", "gz", "xz" or "bz2"."""
    with tarfile.open(path, f"w:{compression}", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def zero_file(name: str, size: int) -> tuple[tarfile.TarInfo, "ZeroReader"]:
    """A member of `size` zero bytes, streamed (for bombs: nothing big is held in memory)."""
    info = _info(name, tarfile.REGTYPE, 0o644)
    info.size = size
    return info, ZeroReader(size)


class ZeroReader(io.RawIOBase):
    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def build_streamed(path: Path, entries, compression: str = "") -> Path:
    """Like build(), for entries whose data is a file object (zero_file)."""
    with tarfile.open(path, f"w:{compression}", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BufferedReader(data, 1 << 20) if data is not None else None)
    return path


def snapshot(top: Path, exclude: tuple[Path, ...] = ()) -> dict[str, tuple]:
    """Everything below `top` (but not below `exclude`): type, mode, owner, size, mtime, links,
    link text and content. Two equal snapshots mean nothing there was written or changed."""
    state = {}
    skip = {str(p) for p in exclude}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        for entry in [dirpath] + [os.path.join(dirpath, f) for f in filenames + dirnames]:
            if entry in skip:
                continue
            st = os.lstat(entry)
            extra = os.readlink(entry) if os.path.islink(entry) else (
                Path(entry).read_bytes() if os.path.isfile(entry) else None)
            state[entry] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                            st.st_nlink, extra)
    return state
