"""The image store: named, tagged root filesystems unpacked once and never changed.

What it is
    An image here is just a directory tree plus a little metadata:

        <root>/<name>/<tag>/rootfs/       the unpacked archive (an overlayfs lowerdir)
        <root>/<name>/<tag>/image.json    {"name", "tag", "id", "digest", "size", "created", "source"}

    or, for an image made of layers (imported from Docker/OCI archives, or made by `commit`):

        <root>/<name>/<tag>/image.json    … "layers": [bottom, …, top], "config": {"cmd", …}
        <root>/../layers/<id>/fs/         each layer once, shared by every image that lists it

    (layers.py explains layers; a rootfs/ image is moved into layers/ the first time one
    is built on top of it: convert_to_layers.)

    A name with slashes ("tools/busybox") is stored as one directory, "tools+busybox",
    so a name never nests inside another image's directory. `id` is the first 12 hex
    digits of the archive's sha256, `digest` the whole "sha256:…", as Docker shows them.

Shell equivalent of an import
    tmp=$(mktemp -d images/.tmp-XXXX) && mkdir $tmp/rootfs
    tar -xpf busybox.tar.gz -C $tmp/rootfs --numeric-owner    (safely: see unpack.py)
    echo '{…}' > $tmp/image.json && mv $tmp images/busybox/latest

Why it is built this way
    * Atomic: the archive is unpacked into a temporary directory on the same filesystem
      and only then renamed into place (rename(2) is atomic), so a crash or an error
      never leaves a half image registered. A tag that exists is replaced only when
      the new tree is complete: old renamed aside, new renamed in, old deleted.
    * Locked: registry changes hold flock(2) on <root>/.lock, so parallel imports and
      removals (threads or processes) cannot interleave. Unpacking itself, the slow
      part, runs outside the lock.
    * Private: <root> is mode 0700. An image may hold setuid-root programs; if other
      users could walk into rootfs/ they could run them on the host.
    * Read-only by convention: a rootfs is the lower layer of every container started
      from it (see overlay.py); containers write to their own upper directory.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Callable, Iterator

from minicontainer.errors import ImageError
from minicontainer.records import field, record

DEFAULT_TAG = "latest"
_COMPONENT = r"[a-z0-9][a-z0-9._-]*"
_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NAME_RULE = ("use lowercase letters, digits and . _ - (each part starting with a letter or "
              "digit), with / between parts, e.g. busybox or tools/busybox")
_TAG_RULE = "use letters, digits and . _ - (not starting with . or -), at most 128 characters"
_TMP_PREFIX, _OLD_PREFIX = ".tmp-", ".old-"     # names never valid for an image: they start with "."

InUse = Callable[["Image"], list[str]]


@record(frozen=True)
class Image:
    name: str
    tag: str
    id: str               # first 12 hex digits of the archive's sha256
    digest: str           # "sha256:<64 hex>"
    rootfs: Path
    size: int             # bytes of regular files in the rootfs
    created: str          # ISO 8601, UTC
    source: str           # where it came from (archive path, recipe, …)
    layers: tuple[str, ...] = ()          # layer ids, bottom first; () = the image is rootfs/
    config: dict = field(default_factory=dict, compare=False)   # cmd, entrypoint, env, workdir, user
    layer_dirs: tuple[Path, ...] = field(default=(), compare=False, repr=False)  # bottom first

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def lower_dirs(self) -> list[Path]:
        """The overlayfs lower directories, *top first* (the order lowerdir= wants)."""
        return list(reversed(self.layer_dirs)) if self.layers else [self.rootfs]

    def to_dict(self) -> dict:
        """A JSON-friendly record (image inspect, image ls --format json)."""
        data = {key: getattr(self, key) for key in _FIELDS}
        data.update(rootfs=str(self.rootfs), layers=list(self.layers), config=self.config,
                    layer_dirs=[str(d) for d in self.layer_dirs])
        return data


def parse_ref(ref: str) -> tuple[str, str]:
    """"busybox" -> ("busybox", "latest"); "tools/busybox:1.36" -> ("tools/busybox", "1.36")."""
    if "@" in ref:
        raise ImageError(f"invalid image reference {ref!r}: digests (@sha256:…) are not "
                         f"supported; use name:tag")
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:           # no tag, or the ":" belonged to a host:port
        name, tag = ref, DEFAULT_TAG
    if len(name) > 255 or not _NAME_RE.fullmatch(name):
        raise ImageError(f"invalid image name {name!r}: {_NAME_RULE}")
    if not _TAG_RE.fullmatch(tag):
        raise ImageError(f"invalid image tag {tag!r}: {_TAG_RULE}")
    return name, tag


class ImageStore:
    """Images below `root` (= <state root>/images). Methods raise ImageError with one line."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.layers_root = self.root.parent / "layers"     # beside images/: same filesystem

    # Reading (no lock needed: an image directory appears and disappears by rename)

    def get(self, ref: str) -> Image:
        name, tag = parse_ref(ref)
        meta = self.image_dir(name, tag) / "image.json"
        try:
            return _read_image(meta, self.layers_root)
        except FileNotFoundError:
            raise ImageError(f"no such image: {name}:{tag} — see `minicontainer image ls`, or "
                             f"build it with `minicontainer image build …`") from None

    def exists(self, ref: str) -> bool:
        name, tag = parse_ref(ref)
        return (self.image_dir(name, tag) / "image.json").is_file()

    def list(self) -> list[Image]:
        """All images, sorted by name:tag. An image whose image.json is unreadable is left out."""
        images = []
        for meta in self.root.glob("*/*/image.json"):
            if meta.parts[-3].startswith("."):
                continue                # a temporary directory, not an image
            try:
                images.append(_read_image(meta, self.layers_root))
            except (OSError, ImageError):
                continue
        return sorted(images, key=lambda image: (image.name, image.tag))

    # Changing

    def import_archive(self, path: str | os.PathLike, ref: str, *, progress=None,
                       source: str | None = None, in_use: InUse | None = None,
                       config: dict | None = None) -> Image:
        """Unpack a (compressed) tar archive as image `ref`; replaces an existing tag.

        in_use(old_image) -> container names: refuse to replace a tag containers still use.
        config: the image's defaults (cmd, entrypoint, env, workdir, user), e.g. from a recipe.
        """
        from minicontainer.storage.unpack import unpack     # lazy: keeps CLI start-up light

        name, tag = parse_ref(ref)
        path = Path(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise ImageError(f"cannot import {path}: {what} — pass the path of a .tar, "
                             f".tar.gz or .tar.xz file")
        self._check_not_in_use(name, tag, in_use)
        tmp = self._make_tmp()
        try:
            rootfs = tmp / "rootfs"
            rootfs.mkdir(mode=0o755)
            rootfs.chmod(0o755)         # the root of the image must be searchable by all users
            stats = unpack(path, rootfs, progress=progress)
            image = Image(name=name, tag=tag, id=stats.digest[7:19], digest=stats.digest,
                          rootfs=self.image_dir(name, tag) / "rootfs", size=stats.bytes,
                          created=utc_timestamp(), source=source or str(path.resolve()),
                          config=dict(config or {}))
            write_image(tmp / "image.json", image)
            self._install(tmp, image, in_use)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return image

    def remove(self, ref: str, *, in_use: InUse | None = None) -> Image:
        """Delete image `ref`; refuse (ImageError) if in_use(image) names any container."""
        with self._locked():
            image = self.get(ref)
            _refuse_if_used(image, in_use, "remove")
            aside = self._move_aside(self.image_dir(image.name, image.tag))
            _remove_if_empty(self.image_dir(image.name, image.tag).parent)
            self._move_unused_layers(aside)
        shutil.rmtree(aside)            # slow part outside the lock: nobody sees it any more
        return image

    # Layers (see layers.py)

    def new_tmp(self) -> Path:
        """A private directory below the store for building an image (removed on failure)."""
        return self._make_tmp()

    def install_layered(self, tmp: Path, image: Image, new_layers: dict[str, Path],
                        in_use: InUse | None = None) -> Image:
        """Register a layered image: TMP holds its image.json; NEW_LAYERS maps layer ids to
        finished layer directories (fs/ + layer.json) below TMP. Layers already in the store
        are shared, not replaced. All in one locked step, so `image rm` never sees a layer
        that no image lists yet."""
        with self._locked():
            self._check_not_in_use(image.name, image.tag, in_use)   # before any layer moves in
            self.layers_root.mkdir(mode=0o700, exist_ok=True)
            for layer_id in image.layers:
                target = self.layers_root / layer_id
                if not target.exists() and layer_id in new_layers:
                    os.rename(new_layers[layer_id], target)
                if not (target / "fs").is_dir():
                    raise ImageError(f"layer {layer_id[:12]} of {image.ref} vanished while it was "
                                     f"imported (a parallel `image rm`?): import it again")
            self._install(tmp, image, in_use, locked=True)
        return self.get(image.ref)

    def convert_to_layers(self, ref: str) -> Image:
        """Move a rootfs/ image into layers/ (one layer, id = its archive's sha256), so that
        images built on top of it can share it. Containers keep running: their overlay
        holds the directory, not its name. Nothing to do for an image that has layers."""
        with self._locked():
            image = self.get(ref)
            if image.layers:
                return image
            layer_id = image.digest.partition(":")[2] or os.urandom(32).hex()
            target = self.layers_root / layer_id
            self.layers_root.mkdir(mode=0o700, exist_ok=True)
            aside = None
            if (target / "fs").is_dir():        # the same archive is a layer already: share it
                aside = self._move_aside(image.rootfs)
            else:
                target.mkdir(mode=0o700, exist_ok=True)
                os.rename(image.rootfs, target / "fs")
                write_layer_meta(target, layer_id, image.size, f"image {image.ref}")
            meta = self.image_dir(image.name, image.tag) / "image.json"
            write_image(meta, Image(**{**{k: getattr(image, k) for k in _FIELDS},
                                        "rootfs": image.rootfs, "layers": (layer_id,),
                                        "config": image.config}))
        if aside is not None:
            shutil.rmtree(aside)
        return self.get(ref)

    def _move_unused_layers(self, aside: Path) -> list[Path]:
        """Under the lock: move layers that no image lists any more into ASIDE (deleted with it)."""
        if not self.layers_root.is_dir():
            return []
        used = {layer for image in self.list() for layer in image.layers}
        moved = []
        for entry in self.layers_root.iterdir():
            if entry.name.startswith(".") or entry.name in used:
                continue
            os.rename(entry, aside / f"layer-{entry.name}")
            moved.append(entry)
        return moved

    # Helpers

    def image_dir(self, name: str, tag: str) -> Path:
        """<root>/NAME/TAG (a / in NAME becomes +): image.json and rootfs/ live there."""
        return self.root / name.replace("/", "+") / tag

    def _ensure_root(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """flock(<root>/.lock): one registry change at a time, across threads and processes."""
        self._ensure_root()
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)                # closing the fd releases the lock

    def _make_tmp(self) -> Path:
        """A fresh <root>/.tmp-<pid>-XXXX (same filesystem as the images, so rename works)."""
        with self._locked():
            self._sweep_leftovers()
        import tempfile                                # only when importing: `run` never needs it
        return Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=self.root))

    def _sweep_leftovers(self) -> None:
        """Delete .tmp-/.old- directories whose process died (a crash or kill -9 mid-import)."""
        for entry in self.root.iterdir():
            pid = _owner_pid(entry.name)
            if pid is not None and not _pid_alive(pid):
                shutil.rmtree(entry, ignore_errors=True)

    def _check_not_in_use(self, name: str, tag: str, in_use: InUse | None) -> None:
        if in_use and self.exists(f"{name}:{tag}"):
            _refuse_if_used(self.get(f"{name}:{tag}"), in_use, "replace")

    def _install(self, tmp: Path, image: Image, in_use: InUse | None, locked: bool = False) -> None:
        """Rename the finished tmp dir into place; an old tag is moved aside first, then deleted."""
        final = self.image_dir(image.name, image.tag)
        aside = None
        with (_no_lock() if locked else self._locked()):
            if final.exists():
                self._check_not_in_use(image.name, image.tag, in_use)
                aside = self._move_aside(final)
            final.parent.mkdir(mode=0o700, exist_ok=True)
            try:
                os.rename(tmp, final)
            except OSError:
                if aside is not None:
                    os.rename(aside / "image", final)     # put the old image back
                raise
            if aside is not None:
                self._move_unused_layers(aside)       # layers only the old tag listed
        if aside is not None:
            shutil.rmtree(aside)

    def _move_aside(self, path: Path) -> Path:
        import tempfile
        aside = Path(tempfile.mkdtemp(prefix=f"{_OLD_PREFIX}{os.getpid()}-", dir=self.root))
        os.rename(path, aside / "image")
        return aside


# --- image.json ---------------------------------------------------------------------------

_FIELDS = ("name", "tag", "id", "digest", "size", "created", "source")


def write_image(path: Path, image: Image) -> None:
    """Write image.json atomically (a temporary file renamed over the old one)."""
    data = {key: getattr(image, key) for key in _FIELDS}
    if image.layers:
        data["layers"] = list(image.layers)
    if image.config:
        data["config"] = image.config
    tmp = path.with_name(f".image.json.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def image_digest(layers, config: dict) -> str:
    """A layered image's identity: its layer ids and its configuration."""
    import hashlib
    data = json.dumps({"layers": list(layers), "config": config}, sort_keys=True)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def save_config_image(store: ImageStore, ref: str, layers, config: dict, *, size: int = 0,
                      source: str = "", empty_layer: bool = False, in_use: InUse | None = None) -> Image:
    """Image REF made of existing LAYERS with its own CONFIG (build's configuration steps,
    `image tag`). empty_layer: one new, empty layer on top (FROM scratch)."""
    name, tag = parse_ref(ref)
    layers, new = list(layers), {}
    tmp = store.new_tmp()
    try:
        if empty_layer:
            from minicontainer.storage.layer_tar import write_layer_tar
            from minicontainer.storage.layers import chain_id
            layer = tmp / "layer"
            (layer / "fs").mkdir(parents=True, mode=0o755)
            diff_id, _ = write_layer_tar(layer / "fs")
            layer_id = chain_id(layers[-1] if layers else None, diff_id)
            write_layer_meta(layer, layer_id, 0, source)
            layers.append(layer_id)
            new[layer_id] = layer
        digest = image_digest(layers, config)
        image = Image(name=name, tag=tag, id=digest[7:19], digest=digest,
                      rootfs=store.image_dir(name, tag) / "rootfs", size=size, created=utc_timestamp(),
                      source=source, layers=tuple(layers), config=dict(config))
        (tmp / "image").mkdir()
        write_image(tmp / "image" / "image.json", image)
        return store.install_layered(tmp / "image", image, new, in_use)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_layer_meta(layer_dir: Path, layer_id: str, size: int, source: str) -> None:
    data = {"id": layer_id, "size": size, "created": utc_timestamp(), "source": source}
    (layer_dir / "layer.json").write_text(json.dumps(data, indent=2) + "\n")


def _read_image(meta: Path, layers_root: Path) -> Image:
    try:
        data = json.loads(meta.read_text())
        layers = tuple(str(layer) for layer in data.get("layers", ()))
        if any(not layer or "/" in layer or layer.startswith(".") for layer in layers):
            raise ValueError(f"bad layer id in {layers!r}")
        return Image(rootfs=meta.parent / "rootfs", **{key: data[key] for key in _FIELDS},
                     layers=layers, config=dict(data.get("config") or {}),
                     layer_dirs=tuple(layers_root / layer / "fs" for layer in layers))
    except (ValueError, KeyError, TypeError) as e:
        raise ImageError(f"broken image metadata {meta}: {e!r} — remove the image "
                         f"directory {meta.parent} and import it again") from None


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


def _refuse_if_used(image: Image, in_use: InUse | None, verb: str) -> None:
    users = in_use(image) if in_use else []
    if users:
        raise ImageError(f"cannot {verb} image {image.ref}: used by container(s) "
                         f"{', '.join(users)} — remove them first with `minicontainer rm`")


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass                            # other tags of this name remain


def _owner_pid(entry_name: str) -> int | None:
    """The pid in ".tmp-<pid>-XXXX" / ".old-<pid>-XXXX", or None for any other name."""
    for prefix in (_TMP_PREFIX, _OLD_PREFIX):
        if entry_name.startswith(prefix):
            pid = entry_name[len(prefix):].partition("-")[0]
            return int(pid) if pid.isdigit() else None
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def utc_timestamp() -> str:
    """Now as RFC 3339 in UTC, to the second: an image's and a layer's `created`."""
    from datetime import datetime, timezone
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def apply_image_config(config, image: Image) -> None:
    """Fill a ContainerConfig's gaps from the image's defaults, as `docker run` does:
    the command is ENTRYPOINT + (your command, else CMD) — ENTRYPOINT always, even if your
    command starts with it (Entrypoint ["echo"], `run IMG echo hi` prints "echo hi"); the
    image's environment comes first (your -e wins); its working directory and user unless
    you gave -w / -u. A restart applies it again to the config it saved: harmless, as
    the command it runs is the record's (made once) and the rest only fills gaps.
    --entrypoint replaces ENTRYPOINT and drops the image's CMD (Docker's rule); the image's
    LABELs and STOPSIGNAL apply unless -l / --stop-signal name their own."""
    defaults = image.config
    own = getattr(config, "entrypoint", None)
    entrypoint = list(defaults.get("entrypoint") or []) if own is None else list(own)
    cmd = defaults.get("cmd") if own is None else None
    config.command = entrypoint + list(config.command or cmd or [])
    if hasattr(config, "labels"):
        config.labels = {**(defaults.get("labels") or {}), **config.labels}
    if getattr(config, "healthcheck", False) is None and defaults.get("healthcheck"):
        config.healthcheck = defaults["healthcheck"]    # HEALTHCHECK: health.py runs it
    if hasattr(config, "expose"):                       # EXPOSE: what -P publishes
        config.expose = list(dict.fromkeys([*(defaults.get("exposed") or []), *config.expose]))
    if getattr(config, "stop_signal", "") is None and defaults.get("stopsignal"):
        config.stop_signal = defaults["stopsignal"]
    given = {item.partition("=")[0] for item in config.env}
    config.env = [item for item in defaults.get("env") or []
                  if item.partition("=")[0] not in given] + list(config.env)
    if config.workdir is None and defaults.get("workdir"):
        config.workdir = defaults["workdir"]
    if config.user is None and defaults.get("user"):
        config.user = defaults["user"]


def image_store(root=None) -> ImageStore:
    """The ImageStore of the state root `root` (state.state_root says which): <root>/images."""
    from minicontainer.state import state_root
    return ImageStore(state_root(root) / "images")
