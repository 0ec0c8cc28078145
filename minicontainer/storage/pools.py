"""Storage pools: the places where named volumes keep their data.

    man 8 losetup, man 8 mkfs.ext4, man 2 statvfs        (libvirt: virsh pool-define-as, pool-list)
    default   <root>/volumes/NAME/_data                  a directory on the state root's filesystem
    dir pool  volume pool create fast --path /srv/fast   /srv/fast/NAME
    loop pool volume pool create img --size 256m         /NAME inside one ext4 image, pool.img:
              truncate -s 256m pool.img && mkfs.ext4 pool.img && mount -o loop pool.img MNT

The lecture's "storage migration between volumes" needs more than one place to keep data: a
hypervisor cluster has datastores (a local disk, a SAN LUN, NFS) and moves a VM's disk between
them while it runs. A pool is minicontainer's datastore. A volume belongs to exactly one pool,
named in its volume.json; `volume migrate NAME --to POOL` (storage/migrate.py) moves it.

A loop pool is one fixed-size ext4 filesystem, so its volumes share its space and the pool,
not the host, runs out first. As everywhere in minicontainer it is never mounted in the host's
mount namespace: a container mounts the image in its own namespace (rootfs.mount_ext4, with
the volume's subdirectory), and host-side code reaches it through disk.opened().
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from minicontainer.errors import ConfigError, ContainerError
from minicontainer.records import record

DEFAULT = "default"
POOL_IMAGE = "pool.img"
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}")


@record(frozen=True)
class Pool:
    name: str
    driver: str                # "dir" (a directory) or "loop" (an ext4 image on a loop device)
    path: Path                 # dir: the directory holding the volumes; loop: the image file
    size: int | None = None    # loop: the image's size
    created: str = ""

    def data_dir(self, root: Path, volume: str) -> Path:
        """Where VOLUME's data is below ROOT, this pool's root as a usable path (pool_root)."""
        return root / volume / "_data" if self.name == DEFAULT else root / volume

    def to_dict(self) -> dict:
        return {"Name": self.name, "Driver": self.driver, "Path": str(self.path),
                "Size": self.size, "CreatedAt": self.created}


class PoolStore:
    """<state root>/pools/NAME/pool.json (+ pool.img of a loop pool); `default` is built in."""

    def __init__(self, state_root: str | os.PathLike):
        self.state_root = Path(state_root)
        self.root = self.state_root / "pools"

    def default(self) -> Pool:
        return Pool(DEFAULT, "dir", self.state_root / "volumes")

    def get(self, name: str) -> Pool:
        if name == DEFAULT:
            return self.default()
        try:
            data = json.loads((self.root / name / "pool.json").read_text())
        except (OSError, ValueError):
            raise ContainerError(f"no such pool: {name} (see `minicontainer volume pool ls`)") from None
        return Pool(name, data["driver"], Path(data["path"]), data.get("size"), data.get("created", ""))

    def list(self) -> list[Pool]:
        names = sorted(p.parent.name for p in self.root.glob("*/pool.json")) if self.root.is_dir() else []
        return [self.default()] + [self.get(n) for n in names]

    def create(self, name: str, *, path: str | None = None, size: str | None = None) -> Pool:
        """A dir pool on PATH (created if missing) or a loop pool of SIZE (e.g. 256m)."""
        from minicontainer.storage.disk import create_disk, parse_size_option
        if not _NAME_RE.fullmatch(name or ""):
            raise ConfigError(f"invalid pool name {name!r}: use letters, digits, _ . - (starting "
                              "with a letter or digit)")
        if (path is None) == (size is None):
            raise ConfigError("volume pool create needs exactly one of --path DIR (a directory pool) "
                              "or --size N (an ext4 image on a loop device)")
        if path is not None and not os.path.isabs(path):
            raise ConfigError(f"invalid --path {path!r}: give an absolute directory")
        size_bytes = parse_size_option("--size", [f"size={size}"]) if size is not None else None
        pool_dir = self.root / name
        if name == DEFAULT or (pool_dir / "pool.json").exists():
            raise ConfigError(f"a pool named {name} exists already (see `minicontainer volume pool ls`)")
        pool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if size_bytes:
                (pool_dir / "mnt").mkdir(exist_ok=True)        # where disk.opened() mounts it
                create_disk(pool_dir / POOL_IMAGE, size_bytes)
                where = pool_dir / POOL_IMAGE
            else:
                where = Path(os.path.normpath(path))
                where.mkdir(mode=0o711, parents=True, exist_ok=True)
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            data = {"driver": "loop" if size_bytes else "dir", "path": str(where), "created": created,
                    **({"size": size_bytes} if size_bytes else {})}
            (pool_dir / "pool.json").write_text(json.dumps(data) + "\n")
        except BaseException:
            shutil.rmtree(pool_dir, ignore_errors=True)
            raise
        return self.get(name)

    def remove(self, name: str, volumes: list[str]) -> Pool:
        """Delete a pool (a loop pool's image with it); refused while volumes live in it."""
        pool = self.get(name)
        if name == DEFAULT:
            raise ConfigError("the default pool cannot be removed: it is the state root's own directory")
        if volumes:
            raise ContainerError(f"cannot remove pool {name}: it holds volume(s) {', '.join(volumes)} — "
                                 "`volume migrate` or `volume rm` them first")
        shutil.rmtree(self.root / name)              # a dir pool's own directory stays: it is the user's
        return pool


@contextmanager
def pool_root(pool: Pool, store: PoolStore):
    """The pool's root as a path this process can use: a dir pool's directory, or a loop pool's
    image mounted in a private namespace of a child process (disk.opened)."""
    if pool.driver == "dir":
        pool.path.mkdir(parents=True, exist_ok=True)
        yield pool.path
        return
    from minicontainer.storage.disk import opened
    with opened(pool.path, store.root / pool.name / "mnt") as root:
        yield root


def free_bytes(path: Path) -> int:
    """statvfs(2): the bytes an unprivileged writer may still use below PATH (df's Avail)."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
