"""overlayfs: a container's writable root on top of a read-only image.

    Documentation/filesystems/overlayfs.rst, man 8 mount (overlay options)
    shell: mount -t overlay overlay -o lowerdir=IMAGE,upperdir=UPPER,workdir=WORK MERGED

    merged/   what the container sees: the union of both layers
    upper/    the container's own changes: new and modified files, whiteouts for deletions
    work/     overlayfs's scratch space (must be on the same filesystem as upper/)
    lower     the image's rootfs, never written to — shared by every container of that image

Starting a container therefore costs the same for a 2 MB and a 2 GB image: nothing is copied
until a file is written ("copy-up"). This is the lecture's snapshot idea: writes are redirected
to another place, and the original stays as it was.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..records import record


@record
class OverlayDirs:
    lower: Path
    upper: Path
    work: Path
    merged: Path

    @property
    def options(self) -> str:
        return f"lowerdir={self.lower},upperdir={self.upper},workdir={self.work}"


def create_overlay_dirs(container_dir: Path, lower: Path) -> OverlayDirs:
    """mkdir upper/ work/ merged/ beside the container's state (on the host, before fork)."""
    dirs = OverlayDirs(lower, container_dir / "upper", container_dir / "work", container_dir / "merged")
    for d in (dirs.upper, dirs.work, dirs.merged):
        d.mkdir(mode=0o755, exist_ok=True)
    return dirs


def remove_overlay_dirs(container_dir: Path) -> None:
    """rm -rf upper/ work/ merged/: the container's changes are gone, the image is untouched."""
    for name in ("upper", "work", "merged"):
        shutil.rmtree(container_dir / name, ignore_errors=True)
