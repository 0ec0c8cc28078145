"""Volumes: storage that outlives containers, mounted into them.

    man 8 mount (--bind, remount), man 5 tmpfs, man 2 openat2, man 2 statvfs
    -v /srv/data:/data      mount --bind /srv/data MERGED/data
    -v /srv/data:/data:ro   … && mount -o remount,bind,ro,nodev MERGED/data
    -v cache:/data          the same with a *named volume*: <root>/volumes/cache/_data
    --tmpfs /run            mount -t tmpfs -o rw,noexec,nosuid,nodev tmpfs MERGED/run
    --mount type=bind|volume|tmpfs,source=…,target=…[,readonly]   the same three, in the
                            key=value grammar of Docker's --mount (parse_mount)

A container's own files live in its overlay upper dir and go away with `rm`. A volume is a
directory *outside* the overlay: a bind mount makes the same directory appear at a second
place (man 8 mount, "bind mount"), so what the program writes to /data lands in that
directory on the host and is there for the next container. A named volume is simply such a
directory kept by minicontainer (`volume create|ls|inspect|rm`); it is created the first
time a container names it, and `volume rm` refuses while any container still lists it.

Where the mount lands: the target is looked up *inside* the container's root with
openat2(RESOLVE_IN_ROOT) (rootfs.bind_into_rootfs): an image holding `data -> /etc` gets the
volume at its own /etc, never the host's. Every volume is mounted nodev (a device node made
there by the container's root cannot be opened), plus the source's own nosuid/noexec/ro.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from minicontainer.errors import ConfigError, ContainerError
from minicontainer.records import record

DISK_IMAGE = "disk.img"                                   # a volume with --opt size=N
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
TMPFS_DEFAULT = "noexec"                                  # plus nosuid,nodev, always (Docker's)
_TMPFS_KEYS = ("size", "mode", "uid", "gid", "nr_inodes")
_TMPFS_FLAGS = ("ro", "rw", "exec", "noexec")


@record(frozen=True)
class Mount:
    """One -v or --tmpfs, parsed. For a named volume `source` is the name until resolved."""
    kind: str                  # "bind", "volume" or "tmpfs"
    source: str                # host path, volume name, or "" for tmpfs
    target: str                # absolute path inside the container
    read_only: bool = False
    options: str = ""          # tmpfs: size=…,mode=…
    disk: str = ""             # a volume made with --opt size=N: its ext4 image (storage/disk.py)
    subdir: str = ""           # a volume in a loop pool: its directory inside that pool's image


# ── parsing (in ContainerConfig.validate: before anything exists) ───────────────────────────

def parse_volume(spec: str) -> Mount:
    """SOURCE:TARGET[:ro|rw] → Mount; SOURCE is an absolute host path or a volume name."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ConfigError(f"invalid --volume {spec!r}: use HOST_DIR:CONTAINER_DIR[:ro] or "
                          "NAME:CONTAINER_DIR[:ro] (anonymous volumes are not supported)")
    source, target = parts[0], check_target(parts[1], "--volume", spec)
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ConfigError(f"invalid --volume {spec!r}: the mode {mode!r} must be ro or rw")
    if source.startswith("/"):
        return Mount("bind", os.path.normpath(source), target, mode == "ro")
    if not _NAME_RE.fullmatch(source):
        raise ConfigError(f"invalid --volume {spec!r}: {source!r} is neither an absolute host "
                          "path nor a volume name (letters, digits, _ . -)")
    return Mount("volume", source, target, mode == "ro")


def parse_tmpfs(spec: str) -> Mount:
    """PATH[:OPTIONS] → Mount; OPTIONS like size=64m,mode=1777 (and ro, exec)."""
    target, _, options = spec.partition(":")
    target = check_target(target, "--tmpfs", spec)
    data, read_only, flags = [], False, {TMPFS_DEFAULT}
    for opt in filter(None, options.split(",")):
        key, eq, value = opt.partition("=")
        if eq and key in _TMPFS_KEYS and value and re.fullmatch(r"[0-9]+[kmgKMG%]?", value):
            data.append(opt)
        elif not eq and key in _TMPFS_FLAGS:
            read_only = read_only or key == "ro"
            if key in ("exec", "noexec"):
                flags = {key}
        else:
            raise ConfigError(f"invalid --tmpfs {spec!r}: unknown option {opt!r} (use "
                              f"{', '.join(k + '=N' for k in _TMPFS_KEYS)}, ro, exec)")
    return Mount("tmpfs", "", target, read_only, ",".join(sorted(flags) + data))


# --mount's keys (Docker's names; each one it has that is not here is refused by name).
MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro",
              "tmpfs-size", "tmpfs-mode", "volume-nocopy", "bind-propagation", "consistency"}


def parse_mount(spec: str) -> Mount:
    """--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…,tmpfs-mode=…].
    Docker's rules: the type defaults to volume; a bind's source must exist (unlike -v);
    an unknown key is an error, not ignored."""
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, eq, value = item.strip().partition("=")
        key = key.lower()
        if key not in MOUNT_KEYS:
            raise ConfigError(f"invalid --mount {spec!r}: unknown key {key!r} (use type, source, "
                              "target, readonly, tmpfs-size, tmpfs-mode, volume-nocopy)")
        if key in ("readonly", "ro", "volume-nocopy") and not eq:
            value = "true"                              # a bare `readonly` means true
        fields[{"src": "source", "destination": "target", "dst": "target", "ro": "readonly"}.get(key, key)] = value
    kind, source, target = fields.get("type", "volume"), fields.get("source", ""), fields.get("target", "")
    if kind not in ("bind", "volume", "tmpfs"):
        raise ConfigError(f"invalid --mount {spec!r}: type {kind!r} must be bind, volume or tmpfs")
    if not target:
        raise ConfigError(f"invalid --mount {spec!r}: target= is required (the path inside the container)")
    read_only = mount_bool(fields.get("readonly", "false"), "readonly", spec)
    mount_bool(fields.get("volume-nocopy", "true"), "volume-nocopy", spec)   # we never copy in
    if fields.get("bind-propagation", "rprivate") not in ("private", "rprivate") or kind != "bind" \
            and "bind-propagation" in fields:
        raise ConfigError(f"invalid --mount {spec!r}: bind-propagation: only rprivate (the default) "
                          "for a bind; shared and slave mounts are not supported")
    if kind == "tmpfs":
        if source or "volume-nocopy" in fields:
            raise ConfigError(f"invalid --mount {spec!r}: a tmpfs has no source")
        options = [f"size={fields['tmpfs-size']}"] if "tmpfs-size" in fields else []
        options += [f"mode={fields['tmpfs-mode']}"] if "tmpfs-mode" in fields else []
        options += ["ro"] if read_only else []
        return parse_tmpfs(f"{target}:{','.join(options)}")
    if "tmpfs-size" in fields or "tmpfs-mode" in fields:
        raise ConfigError(f"invalid --mount {spec!r}: tmpfs-size and tmpfs-mode are for type=tmpfs")
    if not source:
        raise ConfigError(f"invalid --mount {spec!r}: source= is required (anonymous volumes are "
                          "not supported: name one, e.g. source=data)")
    target = check_target(target, "--mount", spec)
    if kind == "bind":
        if not source.startswith("/"):
            raise ConfigError(f"invalid --mount {spec!r}: a bind's source must be an absolute host path")
        if not os.path.exists(source):
            raise ConfigError(f"invalid --mount {spec!r}: bind source path does not exist: {source}")
        return Mount("bind", os.path.normpath(source), target, read_only)
    if not _NAME_RE.fullmatch(source):
        raise ConfigError(f"invalid --mount {spec!r}: {source!r} is not a volume name (letters, digits, _ . -)")
    return Mount("volume", source, target, read_only)


def mount_bool(value: str, key: str, spec: str) -> bool:
    if value.lower() not in ("true", "1", "false", "0"):
        raise ConfigError(f"invalid --mount {spec!r}: {key}={value!r} must be true or false")
    return value.lower() in ("true", "1")


def check_target(target: str, flag: str, spec: str) -> str:
    if not target.startswith("/"):
        raise ConfigError(f"invalid {flag} {spec!r}: the container path {target!r} must be absolute")
    clean = os.path.normpath(target)
    if clean in ("/", "//"):
        raise ConfigError(f"invalid {flag} {spec!r}: cannot mount over the container's /")
    return clean


def parse_mounts(volumes: list[str], tmpfs: list[str], mount=()) -> list[Mount]:
    """All mounts of a container (-v, --tmpfs, --mount), checked: one mount per target."""
    mounts = [parse_volume(v) for v in volumes] + [parse_tmpfs(t) for t in tmpfs] + \
        [parse_mount(m) for m in mount]
    seen = set()
    for m in mounts:
        if m.target in seen:
            raise ConfigError(f"two mounts for {m.target}: give each container path once")
        seen.add(m.target)
    return mounts


# ── named volumes ───────────────────────────────────────────────────────────────────────────

@record(frozen=True)
class Volume:
    name: str
    mountpoint: Path           # <root>/volumes/NAME/_data: what containers see
    created: str
    size: int | None = None    # --opt size=N: the data lives in disk.img, mounted on _data inside
    pool: str = "default"      # storage/pools.py
    pool_image: Path | None = None   # a loop pool's ext4 image: the data is /NAME in it

    @property
    def disk(self) -> Path | None:
        if self.pool_image is not None:
            return self.pool_image
        return self.mountpoint.parent / DISK_IMAGE if self.size else None

    def to_dict(self) -> dict:
        """As `docker volume inspect` shows it."""
        out = {"Name": self.name, "Driver": "local", "Mountpoint": str(self.mountpoint),
               "CreatedAt": self.created, "Scope": "local", "Options": {}, "Pool": self.pool}
        if self.pool_image is not None:
            out["Mountpoint"] = f"{self.pool_image}:/{self.name}"   # inside the image, mounted by users
        elif self.size:
            from minicontainer.storage.disk import disk_usage
            used, _ = disk_usage(self.disk)
            out["Options"] = {"size": str(self.size)}
            out["UsageData"] = {"Size": used, "Limit": self.size}
        return out


class VolumeStore:
    """Named volumes below <state root>/volumes/ (a volume is a directory and a volume.json)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def create(self, name: str | None = None, options=(), pool: str | None = None) -> Volume:
        """`volume create [NAME] [--opt size=N] [--pool POOL]`: an existing name is returned as
        it is (as Docker does). With a size the data lives on a size-limited ext4 image
        (disk.py); in a pool other than the default one it lives in that pool (pools.py)."""
        from minicontainer.storage.disk import create_disk, parse_size_option
        size = parse_size_option("--opt", options)
        name = name or secrets.token_hex(32)
        if not _NAME_RE.fullmatch(name):
            raise ConfigError(f"invalid volume name {name!r}: use letters, digits, _ . - "
                              "(starting with a letter or digit)")
        pools = self.pools()
        target = pools.get(pool or "default")
        if size and target.name != "default":
            raise ConfigError(f"--opt size=N gives a volume a disk of its own: it cannot also live in "
                              f"pool {target.name} (a loop pool is already size-limited)")
        with self.locked():
            path = self.root / name
            if not (path / "volume.json").is_file():
                (path / "_data").mkdir(mode=0o755, parents=True, exist_ok=True)
                try:
                    if size:
                        create_disk(path / DISK_IMAGE, size)
                    if target.name != "default":
                        make_volume_dir(target, pools, name)
                except BaseException:
                    shutil.rmtree(path, ignore_errors=True)
                    raise
                created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self.write_record(name, {"name": name, "created": created, **({"size": size} if size else {}),
                                         **({"pool": target.name} if target.name != "default" else {})})
        return self.get(name)

    def write_record(self, name: str, data: dict) -> None:
        """volume.json, replaced in one rename (volume migrate switches the pool with it)."""
        tmp = self.root / name / f".volume.json.{os.getpid()}"
        tmp.write_text(json.dumps(data) + "\n")
        os.replace(tmp, self.root / name / "volume.json")

    def read_record(self, name: str) -> dict:
        try:
            return json.loads((self.root / name / "volume.json").read_text())
        except (OSError, ValueError):
            raise ContainerError(f"no such volume: {name} (see `minicontainer volume ls`)") from None

    def pools(self):
        from minicontainer.storage.pools import PoolStore
        return PoolStore(self.root.parent)

    def get(self, name: str) -> Volume:
        data = self.read_record(name)
        placeholder = self.root / name / "_data"
        pool = self.pools().get(data.get("pool", "default"))
        if pool.driver == "loop":
            return Volume(name, placeholder, data.get("created", ""), None, pool.name, pool.path)
        mountpoint = pool.data_dir(pool.path, name)
        return Volume(name, mountpoint, data.get("created", ""), data.get("size"), pool.name)

    def data_size(self, volume: Volume) -> int:
        """Bytes of files in VOLUME wherever they live (`system df`): a directory, a loop pool's
        image or a disk of its own (both read through a private mount, disk.opened)."""
        from minicontainer.storage.copy import tree_size
        if volume.pool_image is not None:
            from minicontainer.storage.pools import pool_root
            pools = self.pools()
            with pool_root(pools.get(volume.pool), pools) as root:
                return tree_size(root / volume.name)
        if volume.size:
            from minicontainer.storage.disk import opened
            with opened(volume.disk, volume.mountpoint) as data:
                return tree_size(data)
        return tree_size(volume.mountpoint)

    def list(self) -> list[Volume]:
        if not self.root.is_dir():
            return []
        names = sorted(p.parent.name for p in self.root.glob("*/volume.json"))
        return [self.get(name) for name in names]

    def remove(self, name: str, users: list[str]) -> Volume:
        """Delete a volume and its data; refused while containers (USERS) list it."""
        volume = self.get(name)
        if users:
            raise ContainerError(f"cannot remove volume {name}: used by container(s) "
                                 f"{', '.join(users)} — remove them first with `minicontainer rm`")
        with self.locked():
            if volume.pool != "default":             # its data in the pool first: the record names it
                from minicontainer.storage.pools import pool_root
                pools = self.pools()
                with pool_root(pools.get(volume.pool), pools) as root:
                    shutil.rmtree(root / name, ignore_errors=True)
            gone = self.root / f".removing-{name}-{os.getpid()}"
            os.rename(self.root / name, gone)
        shutil.rmtree(gone, ignore_errors=True)
        return volume

    @contextmanager
    def locked(self):
        """flock(2) on <volumes>/.lock: create, remove and migrate (which holds it throughout)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def make_volume_dir(pool, pools, name: str) -> None:
    """The empty data directory of volume NAME in POOL (a loop pool: inside its image)."""
    from minicontainer.storage.pools import pool_root
    with pool_root(pool, pools) as root:
        if os.path.lexists(root / name):
            raise ContainerError(f"pool {pool.name} has a {name} already ({pool.path}): remove it "
                                 "or pick another volume name")
        os.mkdir(root / name, 0o755)


def volume_names(config: dict) -> list[str]:
    """The named volumes a container record's config lists."""
    names = []
    specs = [(parse_volume, spec) for spec in config.get("volumes") or []] + \
        [(parse_mount, spec) for spec in config.get("mount") or []]
    for parse, spec in specs:
        try:
            mount = parse(spec)
        except ConfigError:
            continue
        if mount.kind == "volume":
            names.append(mount.source)
    return names


# ── the run sequence: resolve (parent); spec.run_mounts turns them into the spec's mounts ─────────────────────────────

def resolve_mounts(ctx) -> list[Mount]:
    """Parent, in prepare: named volumes become their directories (created on first use),
    missing host directories are created (as `docker run -v` does)."""
    mounts = []
    volumes = VolumeStore(ctx.store.root / "volumes")
    for m in parse_mounts(ctx.config.volumes, ctx.config.tmpfs, ctx.config.mount):
        if m.kind == "volume":
            v = volumes.create(m.source)
            m = Mount("bind", str(v.mountpoint), m.target, m.read_only, disk=str(v.disk or ""),
                      subdir=v.name if v.pool_image else "")
        elif m.kind == "bind" and not os.path.exists(m.source):
            os.makedirs(m.source, mode=0o755, exist_ok=True)
        mounts.append(m)
    # Parents first: /data must be mounted before /data/logs, or it would hide it.
    return sorted(mounts, key=lambda m: m.target.count("/"))


def volume_store(root=None) -> VolumeStore:
    """The VolumeStore of the state root `root` (state.state_root says which): <root>/volumes."""
    from minicontainer.state import state_root
    return VolumeStore(state_root(root) / "volumes")
