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
from contextlib import contextmanager
from pathlib import Path

from ..records import record


@record
class OverlayDirs:
    lower: Path
    upper: Path
    work: Path
    merged: Path
    disk: Path | None = None   # --storage-opt size=N: upper/ and work/ live on this ext4 image

    @property
    def options(self) -> str:
        return f"lowerdir={self.lower},upperdir={self.upper},workdir={self.work}"


DISK_IMAGE, DISK_MOUNT = "disk.img", "disk"      # --storage-opt size=N (storage/disk.py)


def create_overlay_dirs(container_dir: Path, lower: Path, size: int | None = None) -> OverlayDirs:
    """mkdir upper/ work/ merged/ beside the container's state (on the host, before fork).
    With a size, upper/ and work/ are made inside a size-limited ext4 image instead, which
    the container's PID 1 mounts on disk/ in its own mount namespace (storage/disk.py)."""
    if size is None:
        dirs = OverlayDirs(lower, container_dir / "upper", container_dir / "work", container_dir / "merged")
        for d in (dirs.upper, dirs.work, dirs.merged):
            d.mkdir(mode=0o755, exist_ok=True)
        return dirs
    from .disk import create_disk
    disk = container_dir / DISK_MOUNT
    for d in (disk, container_dir / "merged"):
        d.mkdir(mode=0o755, exist_ok=True)
    create_disk(container_dir / DISK_IMAGE, size, subdirs=("upper", "work"))
    return OverlayDirs(lower, disk / "upper", disk / "work", container_dir / "merged",
                       container_dir / DISK_IMAGE)


@contextmanager
def writable_layer(container_dir: Path):
    """The container's upper dir as a path we can read and write from the host side: the
    directory itself, or — on a size-limited disk — through a helper that mounts the disk in
    a private mount namespace (storage/disk.opened), never in ours."""
    image = container_dir / DISK_IMAGE
    if not image.exists():
        yield container_dir / "upper"
        return
    from .disk import opened
    with opened(image, container_dir / DISK_MOUNT) as root:
        yield root / "upper"


def remove_overlay_dirs(container_dir: Path) -> None:
    """rm -rf upper/ work/ merged/ (and a size-limited disk): the container's changes are
    gone, the image is untouched, the disk's space goes back to the host."""
    for name in ("upper", "work", "merged", DISK_MOUNT):
        shutil.rmtree(container_dir / name, ignore_errors=True)
    (container_dir / DISK_IMAGE).unlink(missing_ok=True)
