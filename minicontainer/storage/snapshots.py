"""Snapshots: a saved copy of a container's changes, and rollback to it.

    man 7 cgroups (the freezer), Documentation/admin-guide/cgroup-v2.rst (cgroup.freeze)
    shell: echo FROZEN > /sys/fs/cgroup/freezer/minicontainer/$ID/freezer.state   (v2: echo 1 > cgroup.freeze)
           cp -a $UPPER/. snapshots/TAG/upper/
           echo THAWED > …/freezer.state                                         (v2: echo 0)

The lecture's "snapshots: writes are redirected to another file; simple rollback". With
overlayfs the redirection is already there: the image never changes, and everything a
container did is its upper directory (whiteouts for deletions included). So a snapshot is a
copy of that one directory, and a rollback puts the copy back:

    containers/<id>/upper/                       the live changes
    containers/<id>/snapshots/<tag>/upper/       a copy, exact: bytes, modes, owners, times,
    containers/<id>/snapshots/<tag>/snapshot.json   xattrs, whiteouts (copy.py)

Consistency: copying a directory while a program writes into it can catch a file half
written, or a rename half done. So a running container is *frozen* first — the cgroup
freezer stops every one of its processes where it stands, the copy is taken, and they are
thawed. They never notice, except for the pause. (`docker commit` pauses the same way.)

Restore replaces the upper dir, which is only safe while no overlay is mounted on it:
the container must be stopped. A restored container starts with exactly the snapshot's
files; what it changed after the snapshot is gone.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from minicontainer.errors import ContainerError
from minicontainer.storage.copy import copy_tree

_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@contextmanager
def frozen(rec, explain=None):
    """Freeze a running container's cgroup for the duration; yields True if it was frozen.
    A container that is not running, or already paused, is left as it is."""
    from minicontainer.state import is_alive
    cgroup = None
    if rec.status == "running" and is_alive(rec.pid, rec.pid_start) and rec.cgroup:
        from minicontainer.cgroups import open_cgroup
        cgroup = open_cgroup(rec.cgroup, rec.cgroup_root, explain=explain)
    if cgroup is None:
        yield False
        return
    cgroup.freeze()
    try:
        yield True
    finally:
        cgroup.thaw()


def is_running(rec) -> bool:
    from minicontainer.state import is_alive
    return rec.status in ("running", "paused", "restarting") and is_alive(rec.pid, rec.pid_start)


class Snapshots:
    """The snapshots of one container (`store` is the StateStore, `rec` its record)."""

    def __init__(self, store, rec):
        self.rec = rec
        self.container_dir = store.container_dir(rec.id)
        self.root = self.container_dir / "snapshots"

    def create(self, tag: str | None = None, explain=None) -> dict:
        tag = tag or time.strftime("%Y%m%d-%H%M%S")
        check_tag(tag)
        if (self.root / tag).exists():
            raise ContainerError(f"snapshot {tag} of {self.rec.name} exists: pick another tag "
                                 f"or remove it (`minicontainer snapshot rm {self.rec.name} {tag}`)")
        self.root.mkdir(mode=0o700, exist_ok=True)
        tmp = self.root / f".tmp-{tag}-{os.getpid()}"
        try:
            with upper_dir(self.container_dir, self.rec, ": nothing to snapshot") as upper, \
                    frozen(self.rec, explain) as was_running:
                size = copy_tree(upper, tmp / "upper")
            meta = {"tag": tag, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "size": size, "container_was_running": was_running}
            (tmp / "snapshot.json").write_text(json.dumps(meta, indent=1) + "\n")
            os.rename(tmp, self.root / tag)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return meta

    def list(self) -> list[dict]:
        if not self.root.is_dir():
            return []
        found = []
        for meta in sorted(self.root.glob("*/snapshot.json")):
            try:
                found.append(json.loads(meta.read_text()))
            except (OSError, ValueError):
                continue
        return sorted(found, key=lambda m: m.get("created", ""))

    def restore(self, tag: str) -> dict:
        """Put the snapshot's copy in place of the upper dir (the container must be stopped)."""
        meta = self.get(tag)
        if is_running(self.rec):
            raise ContainerError(f"container {self.rec.name} is running: stop it first (its "
                                 "overlay is mounted on the upper dir, which restore replaces)")
        from minicontainer.storage.overlay import writable_layer
        with writable_layer(self.container_dir) as upper:    # (renames stay on its filesystem)
            new = upper.parent / f".restore-{os.getpid()}"
            old = upper.parent / f".replaced-{os.getpid()}"
            try:
                free = os.statvfs(upper.parent)
                if meta.get("size", 0) > free.f_bavail * free.f_frsize and upper.exists():
                    shutil.rmtree(upper)                    # a full size-limited disk: make room
                copy_tree(self.root / tag / "upper", new)
                if upper.exists():
                    os.rename(upper, old)
                os.rename(new, upper)
            except BaseException:
                shutil.rmtree(new, ignore_errors=True)
                if old.exists() and not upper.exists():
                    os.rename(old, upper)                   # put the old one back
                raise
            shutil.rmtree(old, ignore_errors=True)
            work = upper.parent / "work"                    # overlayfs's scratch: start it clean
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(mode=0o755, exist_ok=True)
        return meta

    def remove(self, tag: str) -> dict:
        meta = self.get(tag)
        gone = self.root / f".removing-{tag}-{os.getpid()}"
        os.rename(self.root / tag, gone)
        shutil.rmtree(gone, ignore_errors=True)
        return meta

    def get(self, tag: str) -> dict:
        check_tag(tag)
        try:
            return json.loads((self.root / tag / "snapshot.json").read_text())
        except (OSError, ValueError):
            raise ContainerError(f"no snapshot {tag} of container {self.rec.name} (see "
                                 f"`minicontainer snapshot ls {self.rec.name}`)") from None


def check_tag(tag: str) -> None:
    if not _TAG_RE.fullmatch(tag):
        raise ContainerError(f"invalid snapshot tag {tag!r}: use letters, digits and . _ - "
                             "(not starting with . or -), at most 128 characters")


@contextmanager
def upper_dir(container_dir: Path, rec, doing: str = ""):
    """The container's upper dir as a path we can use (on a size-limited disk: through a
    private mount of it, overlay.writable_layer); ContainerError if it has none."""
    from minicontainer.storage.overlay import writable_layer
    with writable_layer(container_dir) as path:
        if not path.is_dir():
            raise ContainerError(f"container {rec.name} has no upper dir at {path}" + doing)
        yield path
