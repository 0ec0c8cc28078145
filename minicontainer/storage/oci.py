"""Image exchange: `docker save` / `podman save` archives and OCI image layouts, both ways.

    OCI image-spec (image-layout.md, manifest.md, config.md, layer.md); docker-image-spec v1.2
    shell: skopeo copy oci-archive:busybox.tar containers-storage:busybox   (what we imitate)
           skopeo inspect oci-archive:out.tar ; podman load -i out.tar        (what checks us)

An image from another engine is not one tarball but several files that name each other:

    OCI layout (a directory, or a tar of it: "oci-archive")
        oci-layout                 {"imageLayoutVersion": "1.0.0"}
        index.json                 → manifests by digest (and per platform)
        blobs/sha256/<hex>         every file is named by the sha256 of its bytes:
                                   manifest → config + layers; config → diff_ids, Cmd, Env…
    docker save / podman save ("docker-archive")
        manifest.json              [{"Config": "<hex>.json", "RepoTags": ["busybox:latest"],
                                     "Layers": ["<id>/layer.tar", …]}]   (bottom layer first)

Both end in the same thing: an ordered list of layer tars (maybe gzip-compressed) and a
config whose rootfs.diff_ids are the sha256 of each layer *uncompressed*. Import checks every
digest it can (a wrong byte anywhere is a clear error, not a strange image), unpacks each
layer once into layers/<diff_id>/ with its whiteouts in overlayfs's form (layers.py), and
registers the image in one step at the end: a bad archive registers nothing.

Export writes the image's layers back as tars (whiteouts as .wh. files), uncompressed, plus a
config and a manifest, as an OCI archive (the default) or a docker-archive.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import posixpath
import re
import shutil
import stat
import tarfile
from pathlib import Path

from minicontainer.errors import ArchiveError, ImageError, SyscallError
from minicontainer.storage.images import (Image, ImageStore, parse_ref, utc_timestamp, write_image,
                                          write_layer_meta)
from minicontainer.storage.layer_tar import unpack_layer, write_layer_tar
from minicontainer.storage.layers import chain_id, sha256_hex

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MAX_JSON = 8 << 20                      # a manifest or config bigger than this is not one
MAX_MEMBERS = 100_000                   # files in an image archive (docker save: ~4 per layer)
MAX_NAMES = 64 << 20                    # …and the bytes of their names and link targets
MAX_DESCRIPTORS = 10_000                # manifests and indexes an OCI index may list, nested ones included
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MARKERS = ("oci-layout", "index.json", "manifest.json", "repositories", "blobs")


# ── what kind of file is it? ───────────────────────────────────────────────────────────────

def archive_kind(path: Path) -> str:
    """"rootfs" (a tarball of a root filesystem) or "image" (docker-save / OCI), decided by
    the first entry: an image archive starts with its metadata or its blobs."""
    if path.is_dir():
        return "image"
    from minicontainer.storage import unpack as u
    try:
        raw = open(path, "rb")
    except OSError:
        return "rootfs"                 # import_archive gives the clear error
    with raw:
        fmt = u.detect_format(raw, path)
        opener = {"tar.gz": lambda f: gzip.GzipFile(fileobj=f), "tar.xz": _lzma, "tar.bz2": _bz2}
        try:
            first = _first_name(opener.get(fmt, lambda f: f)(raw))
        except (tarfile.TarError, u.Corrupt, u.TooBig, *u.decompress_errors()):
            return "rootfs"             # corrupt: unpack() names what is wrong
    top = first.split("/")[0]
    if top in _MARKERS or _HEX64.fullmatch(top.split(".")[0]):
        return "image"
    return "rootfs"


def _first_name(f) -> str:
    """The first entry's name, past the archive's own root: `tar -C layout -cf x.tar .`
    starts with "./". Parsed by tarfile (a pax header comes before the entry it names)."""
    from minicontainer.storage import unpack as u
    tar = u.open_tar(u.TarStream(f, MAX_JSON))
    for _, member in zip(range(16), u.members(tar)):
        name = posixpath.normpath(member.name.lstrip("/") or ".")
        if name != ".":
            return name
    return ""


def _lzma(f):
    """An xz reader of F: a file object (left open), or a path (closed with the reader)."""
    import lzma
    return lzma.LZMAFile(f)


def _bz2(f):
    import bz2
    return bz2.BZ2File(f)


# ── reading blobs: from a tar (random access) or a directory ───────────────────────────────

class TarSource:
    """Files inside an uncompressed tar, read in place (tarfile seeks to each member).

    The archive is someone else's: its headers are parsed strictly (unpack.py's parser:
    truncation is an error, a pax header or long name is at most 1 MiB) and only a bounded
    index of it is kept (names, types, offsets), never the members' own metadata."""

    def __init__(self, path: Path):
        from minicontainer.storage import unpack as u
        self.path = path
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            self.tar = tarfile.open(path, mode="r:", tarinfo=u.StrictTarInfo,
                                    encoding="utf-8", errors="surrogateescape")
        except (tarfile.TarError, OSError, ValueError, u.Corrupt) as e:
            raise ArchiveError(f"corrupt image archive {path}: {e}") from None
        try:
            self._index(u.members(self.tar))
        except (tarfile.TarError, OSError, ValueError, u.Corrupt) as e:
            self.tar.close()
            raise ArchiveError(f"corrupt image archive {path}: {e}") from None
        except BaseException:
            self.tar.close()
            raise

    def _index(self, members) -> None:
        names = 0
        for member in members:
            name = _clean(member.name)
            if name == ".":
                continue                # "./": the directory the archive was made from
            if len(self.members) >= MAX_MEMBERS:
                raise ArchiveError(f"image archive {self.path} has more than {MAX_MEMBERS} "
                                   "files: not an image archive")
            names += len(name) + len(member.linkname)
            if names > MAX_NAMES:
                raise ArchiveError(f"image archive {self.path}: its file names take more than "
                                   f"{MAX_NAMES >> 20} MiB: not an image archive")
            member.pax_headers = {}     # read already (size, names); not kept
            self.members[name] = member

    def has(self, name: str) -> bool:
        return self._resolve(name, must_exist=False) is not None

    def open(self, name: str):
        member = self._resolve(name)
        return self.tar.extractfile(member)

    def _resolve(self, name: str, must_exist: bool = True):
        """Follow symlinks and hardlinks *inside the archive* (docker save links duplicate layers)."""
        name = _clean(name)
        for _ in range(16):
            member = self.members.get(name)
            if member is None or not (member.issym() or member.islnk()):
                break
            base = posixpath.dirname(name) if member.issym() else ""
            name = _clean(posixpath.join(base, member.linkname))
        else:
            raise ArchiveError(f"image archive {self.path}: too many links at {name!r}")
        if member is None or not member.isreg():
            if must_exist:
                raise ArchiveError(f"image archive {self.path} has no file {name!r} (named by its "
                                   "manifest): the archive is incomplete")
            return None
        return member

    def close(self) -> None:
        self.tar.close()


class DirSource:
    """Files in an OCI layout directory, opened with openat2(RESOLVE_IN_ROOT): a symlink in
    it can never make us read a file outside the directory."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def has(self, name: str) -> bool:
        try:
            self.open(name).close()
            return True
        except ArchiveError:
            return False

    def open(self, name: str):
        from minicontainer.errors import SyscallError
        from minicontainer.kernel.openat2 import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2
        # O_NONBLOCK: a fifo in the layout must not hang us (a regular file ignores it)
        try:
            fd = openat2(self.fd, _clean(name), os.O_RDONLY | os.O_NONBLOCK,
                         resolve=RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        except SyscallError:
            fd = None
        if fd is not None and not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            fd = None
        if fd is None:
            raise ArchiveError(f"OCI layout {self.path} has no file {name!r} (named by its "
                               "index or manifest): the layout is incomplete")
        return os.fdopen(fd, "rb")

    def close(self) -> None:
        os.close(self.fd)


def _clean(name: str) -> str:
    """"./blobs//x" → "blobs/x"; "." is the archive's root; "../x" is refused ("..x" is a name)."""
    if not isinstance(name, str):
        raise ArchiveError(f"malformed image archive: a file name is not a string ({name!r})")
    name = posixpath.normpath(name.lstrip("/") or ".")
    if name == ".." or name.startswith("../"):
        raise ArchiveError(f"image archive names a file outside itself: {name!r}")
    return name


def _read_json(source, name: str, what: str, digest: str | None = None):
    try:
        with source.open(name) as f:
            data = f.read(MAX_JSON + 1)
    except tarfile.TarError as e:                        # a member cut short
        raise ArchiveError(f"corrupt image archive {source.path}: {name}: {e}") from None
    if len(data) > MAX_JSON:
        raise ArchiveError(f"{what} {name} is bigger than {MAX_JSON} bytes: not an image {what}")
    if digest is not None and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ArchiveError(f"{what} {name} does not match its digest {digest}: the archive is corrupt")
    try:
        return json.loads(data), data
    except ValueError as e:
        raise ArchiveError(f"malformed {what} {name}: {e}") from None
    except RecursionError:
        raise ArchiveError(f"malformed {what} {name}: nested too deeply") from None


def _blob(digest: str) -> str:
    return f"blobs/sha256/{sha256_hex(digest)}"


# ── import ──────────────────────────────────────────────────────────────────────────────────

def import_image(images: ImageStore, path: str | os.PathLike, ref: str | None = None, *,
                 in_use=None, progress=None) -> Image:
    """`image import`: a rootfs tarball, a docker/podman save archive, an OCI archive or an
    OCI layout directory — whichever PATH holds."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"cannot import {path}: no such file or directory")
    if archive_kind(path) == "rootfs":
        if ref is None:
            raise ImageError(f"{path} is a root filesystem tarball: give the image a name, "
                             f"e.g. `minicontainer image import {path} NAME[:TAG]`")
        return images.import_archive(path, ref, progress=progress, in_use=in_use)
    return import_image_archive(images, path, ref, in_use=in_use)


def import_image_archive(images: ImageStore, path: Path, ref: str | None = None, *, in_use=None) -> Image:
    scratch = images.new_tmp()                           # removed whatever happens
    try:
        source = _open_source(path, scratch)
        try:
            kind, found_ref, layers, config, config_bytes = read_image(source, path, ref)
            ref = ref or found_ref
            if not ref:
                raise ImageError(f"{path} does not name its image: give one, e.g. "
                                 f"`minicontainer image import {path} NAME[:TAG]`")
            name, tag = parse_ref(ref)
            layer_ids, new_layers, size = unpack_layers(images, source, path, layers, scratch)
        finally:
            source.close()
        digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        image = Image(name=name, tag=tag, id=digest[7:19], digest=digest,
                      rootfs=images.image_dir(name, tag) / "rootfs", size=size, created=utc_timestamp(),
                      source=f"{kind} {path.resolve()}", layers=tuple(layer_ids),
                      config=runtime_config(config, path))
        (scratch / "image").mkdir()
        write_image(scratch / "image" / "image.json", image)
        return images.install_layered(scratch / "image", image, new_layers, in_use)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _open_source(path: Path, scratch: Path):
    if path.is_dir():
        if not (path / "index.json").exists() and not (path / "manifest.json").exists():
            raise ArchiveError(f"{path} is a directory but not an OCI image layout (no index.json): "
                               "pass a tar file or an OCI layout directory")
        return DirSource(path)
    from minicontainer.storage.unpack import detect_format
    with open(path, "rb") as raw:
        fmt = detect_format(raw, path)
    if fmt == "tar":
        return TarSource(path)
    # A compressed archive (`docker save | gzip`) has no random access: decompress it once.
    plain = scratch / "archive.tar"
    decompress(path, fmt, plain)
    return TarSource(plain)


def decompress(path: Path, fmt: str, out: Path) -> None:
    """Write the uncompressed bytes of archive PATH to OUT, at most the unpack limit
    (MINICONTAINER_UNPACK_MAX_BYTES): a small gzip can hold a disk's worth of zeros."""
    from minicontainer.storage import unpack as u
    opener = {"tar.gz": gzip.open, "tar.xz": _lzma, "tar.bz2": _bz2}[fmt]
    with u.archive_errors(f"archive {path}"), opener(path) as src, open(out, "wb") as dst:
        stream = u.TarStream(src, u.Limits.from_env().max_bytes)   # counts against the limit
        while chunk := stream.read(u.CHUNK):
            try:
                dst.write(chunk)
            except OSError as e:                         # e.g. ENOSPC: not the archive's fault
                raise SyscallError("write", (str(out),), e.errno or 0) from None


def read_image(source, path: Path, ref: str | None):
    """(kind, ref found in the archive, [(layer file, expected blob digest|None, diff_id)],
    config dict, config bytes) — every name and digest checked."""
    if source.has("index.json"):
        kind = "oci-archive"
        manifest_desc, found_ref = choose_oci_manifest(source, path, ref)
        manifest, _ = _read_json(source, _blob(manifest_desc["digest"]), "manifest", manifest_desc["digest"])
        config_desc = _field(manifest, "config", dict, "manifest")
        config, config_bytes = _read_json(source, _blob(_digest_of(config_desc)), "config",
                                          _digest_of(config_desc))
        descs = _field(manifest, "layers", list, "manifest")
        files = [(_blob(_digest_of(d)), _digest_of(d)) for d in descs]
    elif source.has("manifest.json"):
        kind = "docker-archive"
        entry, found_ref = choose_docker_entry(source, path, ref)
        config_name = _field(entry, "Config", str, "manifest.json entry")
        hexname = posixpath.basename(config_name).removesuffix(".json")
        expect = f"sha256:{hexname}" if _HEX64.fullmatch(hexname) else None
        config, config_bytes = _read_json(source, config_name, "config", expect)
        files = [(name, None) for name in _strings(entry, "Layers", "manifest.json entry")]
    else:
        raise ArchiveError(f"{path} is not an image archive: it has neither index.json (OCI) "
                           "nor manifest.json (docker save)")
    diff_ids = _strings(_field(config, "rootfs", dict, "config"), "diff_ids", "config rootfs")
    if len(diff_ids) != len(files):
        raise ArchiveError(f"malformed image in {path}: the manifest lists {len(files)} layers but "
                           f"the config has {len(diff_ids)} diff_ids")
    layers = [(name, blob, diff) for (name, blob), diff in zip(files, diff_ids)]
    for _, _, diff in layers:
        sha256_hex(diff)                                 # refuses what is not sha256:<hex>
    return kind, found_ref, layers, config, config_bytes


def choose_oci_manifest(source, path: Path, ref: str | None):
    """The one image manifest to import: by platform (this machine's), and by name if asked."""
    index, _ = _read_json(source, "index.json", "index")
    if not isinstance(index, dict):
        raise ArchiveError(f"malformed index.json in {path}: it is not a JSON object")
    if index.get("schemaVersion") != 2:
        raise ArchiveError(f"malformed index.json in {path}: schemaVersion must be 2")
    candidates, seen = [], set()
    indexes = {}                    # digest → its manifests: an index named twice is read once
    listed = 0                      # descriptors walked, nested ones included (bounds the work)

    def collect(descriptors, name, depth):
        nonlocal listed
        listed += len(descriptors)
        if listed > MAX_DESCRIPTORS:
            raise ArchiveError(f"malformed index in {path}: more than {MAX_DESCRIPTORS} "
                               "manifests and indexes (nested ones included)")
        for d in descriptors:
            if not isinstance(d, dict):
                raise ArchiveError(f"malformed index in {path}: a descriptor is not an object")
            this = _ref_annotation(d, path) or name
            if d.get("mediaType") in INDEX_TYPES:
                if depth > 3:
                    raise ArchiveError(f"malformed index in {path}: indexes nested too deep")
                digest = _digest_of(d)
                if digest not in indexes:
                    sub, _ = _read_json(source, _blob(digest), "index", digest)
                    indexes[digest] = _field(sub, "manifests", list, "index")
                collect(indexes[digest], this, depth + 1)
            elif _platform_matches(d.get("platform")) and (_digest_of(d), this) not in seen:
                seen.add((_digest_of(d), this))          # listed twice: still one image
                candidates.append((d, this))

    collect(_field(index, "manifests", list, "index.json"), None, 0)
    if not candidates:
        raise ArchiveError(f"{path} holds no image for this machine ({machine_arch()}/linux)")
    if ref is not None and len(candidates) > 1:
        wanted = parse_ref(ref)
        named = [c for c in candidates if c[1] and _matches(c[1], wanted)]
        candidates = named or candidates
    if len(candidates) > 1:
        names = ", ".join(str(c[1]) for c in candidates)
        raise ArchiveError(f"{path} holds {len(candidates)} images ({names}): import one by naming it")
    desc, name = candidates[0]
    _digest_of(desc)
    return desc, _normal_ref(name)


def choose_docker_entry(source, path: Path, ref: str | None):
    entries, _ = _read_json(source, "manifest.json", "manifest")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ArchiveError(f"malformed manifest.json in {path}: expected a list of images")
    tags = [_strings(e, "RepoTags", "manifest.json entry", optional=True) for e in entries]
    if ref is not None and len(entries) > 1:
        wanted = parse_ref(ref)
        named = [i for i, t in enumerate(tags) if any(_matches(tag, wanted) for tag in t)]
        entries, tags = [entries[i] for i in named] or entries, [tags[i] for i in named] or tags
    if len(entries) > 1:
        raise ArchiveError(f"{path} holds {len(entries)} images: import one by naming it")
    return entries[0], _normal_ref(tags[0][0]) if tags[0] else None


def unpack_layers(images: ImageStore, source, path: Path, layers, scratch: Path):
    """Unpack each layer not already in the store; returns (ids bottom first, {id: dir}, bytes)."""
    ids, new, size = [], {}, 0
    for i, (name, blob_digest, diff_id) in enumerate(layers, 1):
        layer_id = chain_id(ids[-1] if ids else None, diff_id)
        ids.append(layer_id)
        existing = images.layers_root / layer_id / "layer.json"
        if existing.is_file():                           # shared with an image we have
            size += json.loads(existing.read_text()).get("size", 0)
            continue
        target = scratch / "layers" / layer_id
        (target / "fs").mkdir(parents=True)
        with source.open(name) as blob:
            stats = unpack_layer(blob, target / "fs", name=f"{path}:{name}")
        if blob_digest is not None and stats.digest != blob_digest:
            raise ArchiveError(f"layer {i} ({name}) of {path} does not match its digest "
                               f"{blob_digest}: the archive is corrupt")
        if stats.diff_id != diff_id:
            raise ArchiveError(f"layer {i} ({name}) of {path} is not the layer its config names "
                               f"({diff_id}, got {stats.diff_id}): the archive is corrupt")
        write_layer_meta(target, layer_id, stats.bytes, f"layer {i} of {path}")
        new[layer_id] = target
        size += stats.bytes
    return ids, new, size


def runtime_config(config: dict, path: Path) -> dict:
    """The image's defaults that `run` applies: Cmd, Entrypoint, Env, WorkingDir, User."""
    c = config.get("config") or {}
    if not isinstance(c, dict):
        raise ArchiveError(f"malformed config in {path}: \"config\" is not an object")
    out = {}
    for key, field in (("cmd", "Cmd"), ("entrypoint", "Entrypoint"), ("env", "Env")):
        value = c.get(field)
        if value in (None, []):
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ArchiveError(f"malformed config in {path}: {field} must be a list of strings")
        out[key] = value
    for key, field in (("workdir", "WorkingDir"), ("user", "User"), ("stopsignal", "StopSignal")):
        if isinstance(c.get(field), str) and c[field]:
            out[key] = c[field]
    if isinstance(c.get("Labels"), dict) and c["Labels"]:
        out["labels"] = {str(k): str(v) for k, v in c["Labels"].items()}
    for key, field in (("exposed", "ExposedPorts"), ("volumes", "Volumes")):
        if isinstance(c.get(field), dict) and c[field]:
            out[key] = sorted(str(k) for k in c[field])
    return out


def _field(obj, key: str, kind: type, what: str):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind):
        raise ArchiveError(f"malformed {what}: {key!r} is missing or not a {kind.__name__}")
    return value


def _strings(obj: dict, key: str, what: str, optional: bool = False) -> list[str]:
    """OBJ[KEY], a list of strings ([] if OPTIONAL and absent), or a clear error naming it."""
    value = obj.get(key)
    if optional and value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArchiveError(f"malformed {what}: {key!r} is missing or not a list of strings")
    return value


def _ref_annotation(desc: dict, path: Path) -> str | None:
    """The image name a descriptor's annotations give (containerd's, else OCI's ref.name)."""
    ann = desc.get("annotations")
    if ann is None:
        return None
    if not isinstance(ann, dict):
        raise ArchiveError(f"malformed index in {path}: a descriptor's 'annotations' is not an object")
    for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
        if ann.get(key) is not None and not isinstance(ann[key], str):
            raise ArchiveError(f"malformed index in {path}: annotation {key!r} is not a string")
    return ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")


def _digest_of(desc) -> str:
    digest = desc.get("digest") if isinstance(desc, dict) else None
    if not isinstance(digest, str):
        raise ArchiveError("malformed descriptor: it has no digest")
    sha256_hex(digest)
    return digest


def _platform_matches(p) -> bool:
    if not isinstance(p, dict):
        return True                                      # no platform given: take it
    return p.get("os", "linux") == "linux" and p.get("architecture", machine_arch()) == machine_arch()


def machine_arch() -> str:
    """This machine's architecture in the OCI/Go spelling (amd64, arm64 …), as images name it."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def _normal_ref(name: str | None) -> str | None:
    """"docker.io/library/busybox:1.36" → "busybox:1.36"; None for what is no usable name
    (an OCI ref.name is often only a tag, like "latest")."""
    if not name:
        return None
    for prefix in ("docker.io/library/", "docker.io/", "localhost/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if "/" not in name and ":" not in name:
        return None
    try:
        parse_ref(name)
    except ImageError:
        return None
    return name


def _matches(name: str, wanted: tuple[str, str]) -> bool:
    normal = _normal_ref(name)
    if normal is None:
        return name == wanted[1]                         # an OCI ref.name that is only a tag
    try:
        return parse_ref(normal) == wanted
    except ImageError:
        return False


# ── export ──────────────────────────────────────────────────────────────────────────────────

def export_image(images: ImageStore, ref: str, out: str | os.PathLike, fmt: str = "oci") -> int:
    """Write image REF as an OCI archive (fmt "oci") or a docker-archive (fmt "docker");
    returns the size of the archive."""
    if fmt not in ("oci", "docker"):
        raise ImageError(f"invalid --format {fmt!r}: use oci or docker")
    from minicontainer.storage.export import check_output
    image = images.get(ref)
    out = check_output(out)
    work = out.with_name(f".{out.name}.{os.getpid()}.d")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        work.mkdir(mode=0o700)
        layer_files = []
        for i, fs in enumerate(image.layer_dirs or (image.rootfs,)):
            path = work / f"layer-{i}.tar"
            with open(path, "wb") as f:
                diff_id, size = write_layer_tar(fs, f)
            layer_files.append((path, diff_id, size))
        config = image_config(image, [d for _, d, _ in layer_files])
        if fmt == "oci":
            write_oci_archive(tmp, image, config, layer_files)
        else:
            write_docker_archive(tmp, image, config, layer_files)
        os.replace(tmp, out)
    except OSError as e:
        raise SyscallError("write", (e.filename or str(out),), e.errno or 0) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        tmp.unlink(missing_ok=True)
    return out.stat().st_size


def image_config(image: Image, diff_ids: list[str]) -> bytes:
    c = image.config
    runtime = {"Env": c.get("env") or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    for key, field in (("cmd", "Cmd"), ("entrypoint", "Entrypoint"), ("workdir", "WorkingDir"),
                       ("user", "User"), ("labels", "Labels"), ("stopsignal", "StopSignal")):
        if c.get(key):
            runtime[field] = c[key]
    for key, field in (("exposed", "ExposedPorts"), ("volumes", "Volumes")):
        if c.get(key):
            runtime[field] = {item: {} for item in c[key]}      # the OCI shape: a set as an object
    if "Cmd" not in runtime and "Entrypoint" not in runtime:
        runtime["Cmd"] = ["/bin/sh"]                     # what `minicontainer run` would start
    config = {"created": image.created, "architecture": machine_arch(), "os": "linux", "config": runtime,
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created": image.created, "created_by": f"minicontainer: {image.source}"}
                          for _ in diff_ids]}
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def write_oci_archive(out: Path, image: Image, config: bytes, layers) -> None:
    config_digest = _sha(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": diff_id, "size": size} for _, diff_id, size in layers],
    }, separators=(",", ":")).encode()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": _sha(manifest), "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": image.ref,
                                       "io.containerd.image.name": image.ref}}],
    }, separators=(",", ":")).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tar, "index.json", index)
        _add_dir(tar, "blobs"), _add_dir(tar, "blobs/sha256")
        _add_bytes(tar, _blob(config_digest), config)
        _add_bytes(tar, _blob(_sha(manifest)), manifest)
        for path, diff_id, _ in _unique(layers):
            _add_file(tar, _blob(diff_id), path)


def write_docker_archive(out: Path, image: Image, config: bytes, layers) -> None:
    config_name = f"{_sha(config)[7:]}.json"
    names = [f"{diff_id[7:]}.tar" for _, diff_id, _ in layers]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [image.ref], "Layers": names}]).encode()
    repositories = json.dumps({image.name: {image.tag: layers[-1][1][7:]}}).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path, diff_id, _ in _unique(layers):
            _add_file(tar, f"{diff_id[7:]}.tar", path)
        _add_bytes(tar, config_name, config)
        _add_bytes(tar, "manifest.json", manifest)
        _add_bytes(tar, "repositories", repositories)


def _unique(layers):
    seen = set()
    for item in layers:
        if item[1] not in seen:
            seen.add(item[1])
            yield item


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = path.stat().st_size, 0o644
    with open(path, "rb") as f:
        tar.addfile(info, f)
