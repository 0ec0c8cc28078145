"""`diff`: what a container changed, read from its overlay upper dir.

    Documentation/filesystems/overlayfs.rst ("whiteouts and opaque directories")
    shell: find $UPPER   (and `find $UPPER -type c` for the deletions)

The upper dir *is* the list of changes — the copy-on-write idea of the lecture: whatever
the container writes is redirected there, the image below is never touched. Reading it:

    an entry in upper/ that no lower layer has        A  added
    an entry in upper/ that a lower layer has too     C  changed (copied up, then written)
    a character device 0/0 (a whiteout)               D  deleted
    an opaque directory that a lower layer had        D  deleted (and made again: its
                                                         entries follow as A)

Printed the way `docker diff` prints them: in walk order (a directory before its entries,
names sorted), and a directory whose entries were added or deleted is listed as C even if
its own size, mode and time are unchanged. A directory that was only copied up because a
file deep below it changed (same size, mode and mtime as below) is not a change.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from minicontainer.storage.layers import is_opaque, is_whiteout, lookup


def changes(upper: Path, lower_dirs: list[Path]) -> list[tuple[str, str]]:
    """[(kind, "/path")] for the upper dir UPPER over LOWER_DIRS (top first)."""
    result: list[tuple[str, str]] = []
    changed_dirs: set[str] = set()
    _walk(Path(upper), "", list(lower_dirs), result, changed_dirs, hidden=False)
    return result


def _walk(upper: Path, rel: str, lower: list[Path], out: list, changed_dirs: set, hidden: bool) -> None:
    """HIDDEN: we are below an opaque directory, so nothing of the lower layers shows here."""
    with os.scandir(upper / rel if rel else upper) as entries:
        names = sorted(e.name for e in entries)
    for name in names:
        path = f"{rel}/{name}" if rel else name
        st = os.lstat(upper / path)
        below = None if hidden else lookup(lower, path)
        opaque = stat.S_ISDIR(st.st_mode) and is_opaque(upper / path)
        if is_whiteout(st):
            kind = "D"
        elif opaque and below is not None:
            kind = "D"                                   # removed, then made again
        elif below is None:
            kind = "A"
        elif stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(below.st_mode) and _same_dir(st, below):
            kind = None                                  # only on the way to a change below
        else:
            kind = "C"
        if kind is not None and stat.S_ISDIR(st.st_mode):
            changed_dirs.add(path)
        if kind in ("A", "D"):
            _mark_parent(path, out, changed_dirs)
        if kind is not None:
            out.append((kind, "/" + path))
        if stat.S_ISDIR(st.st_mode):
            _walk(upper, path, lower, out, changed_dirs, hidden or opaque)


def _mark_parent(path: str, out: list, changed_dirs: set) -> None:
    """A file added or deleted changes its directory: list it (once) as C."""
    parent = path.rpartition("/")[0]
    if parent and parent not in changed_dirs:
        changed_dirs.add(parent)
        out.append(("C", "/" + parent))


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    """Docker's test: same size, mode and mtime (a whole-second mtime matches any ns)."""
    same_time = a.st_mtime_ns == b.st_mtime_ns or (
        a.st_mtime_ns // 10**9 == b.st_mtime_ns // 10**9
        and (a.st_mtime_ns % 10**9 == 0 or b.st_mtime_ns % 10**9 == 0))
    return a.st_size == b.st_size and a.st_mode == b.st_mode and same_time


def format_changes(items: list[tuple[str, str]]) -> str:
    return "".join(f"{kind} {path}\n" for kind, path in items)
