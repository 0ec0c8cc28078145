"""ImageStore: import/get/list/remove, tag replacement, reference rules, clean failure, locking."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from archives import build, directory, file, symlink
from minicontainer.errors import ArchiveError, ImageError
from minicontainer.storage.images import ImageStore, parse_ref


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "images")


def rootfs_archive(tmp_path, label: str = "v1", compression: str = "gz"):
    """A tiny rootfs whose etc/version says `label` (so two imports can be told apart)."""
    path = tmp_path / f"rootfs-{label}.tar.{compression}"
    return build(path, [directory("./"), directory("bin"),
                        file("bin/busybox", b"\x7fELF" + label.encode(), mode=0o755),
                        symlink("bin/sh", "/bin/busybox"), directory("etc"),
                        file("etc/version", label.encode())], compression)


def leftovers(store):
    return [p.name for p in store.root.iterdir() if p.name.startswith((".tmp-", ".old-"))]


# --- parse_ref ------------------------------------------------------------------------

@pytest.mark.parametrize("ref, expected", [
    ("busybox", ("busybox", "latest")),
    ("busybox:1.36", ("busybox", "1.36")),
    ("tools/busy-box_2.x:v1.0-rc_1", ("tools/busy-box_2.x", "v1.0-rc_1")),
    ("a/b/c", ("a/b/c", "latest")),
    ("x:Latest_2", ("x", "Latest_2")),
])
def test_parse_ref(ref, expected):
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref, says", [
    ("BusyBox", "invalid image name"), ("", "invalid image name"), ("-x", "invalid image name"),
    (".hidden", "invalid image name"), ("a//b", "invalid image name"), ("a/", "invalid image name"),
    ("../etc", "invalid image name"), ("localhost:5000/x", "invalid image name"),
    ("x:", "invalid image tag"), ("x:-1", "invalid image tag"), ("x:a/b:c", "invalid image"),
    ("x:" + "t" * 129, "invalid image tag"), ("x@sha256:abc", "digests"), ("a b", "invalid image"),
])
def test_parse_ref_rejects(ref, says):
    with pytest.raises(ImageError, match=says) as err:
        parse_ref(ref)
    assert "use " in str(err.value) or "digests" in str(err.value)   # the message states the rule


# --- Import, get, list, remove -------------------------------------------------------------

def test_import_get_list_remove(store, tmp_path):
    archive = rootfs_archive(tmp_path)
    seen = []
    image = store.import_archive(archive, "busybox", progress=lambda d, t: seen.append((d, t)))

    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (image.name, image.tag, image.ref) == ("busybox", "latest", "busybox:latest")
    assert image.digest == f"sha256:{digest}" and image.id == digest[:12]
    assert image.size == len(b"\x7fELFv1") + len(b"v1")
    assert image.source == str(archive.resolve())
    assert image.created.endswith("Z") and "T" in image.created
    assert image.rootfs == store.root / "busybox" / "latest" / "rootfs"
    assert (image.rootfs / "etc/version").read_bytes() == b"v1"
    assert os.readlink(image.rootfs / "bin/sh") == "/bin/busybox"
    assert stat.S_IMODE(os.stat(image.rootfs).st_mode) == 0o755
    assert seen[-1][0] == seen[-1][1] == archive.stat().st_size

    meta = json.loads((image.rootfs.parent / "image.json").read_text())
    assert meta == {"name": "busybox", "tag": "latest", "id": image.id, "digest": image.digest,
                    "size": image.size, "created": image.created, "source": image.source}
    assert store.get("busybox:latest") == image
    assert store.exists("busybox") and not store.exists("busybox:other")
    assert store.list() == [image]
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700   # setuid programs stay private

    assert store.remove("busybox") == image
    assert store.list() == [] and not store.exists("busybox")
    assert not (store.root / "busybox").exists()
    assert leftovers(store) == []


def test_get_missing_image(store):
    with pytest.raises(ImageError, match=r"no such image: foo:latest — see `minicontainer image ls`"):
        store.get("foo")
    with pytest.raises(ImageError, match="no such image"):
        store.remove("foo")


def test_names_with_slashes_and_several_tags(store, tmp_path):
    a = store.import_archive(rootfs_archive(tmp_path, "a"), "tools/busybox:1.0")
    b = store.import_archive(rootfs_archive(tmp_path, "b", "xz"), "tools/busybox:2.0")
    c = store.import_archive(rootfs_archive(tmp_path, "c", ""), "tools")
    assert a.rootfs == store.root / "tools+busybox" / "1.0" / "rootfs"
    assert [i.ref for i in store.list()] == ["tools:latest", "tools/busybox:1.0",
                                             "tools/busybox:2.0"]
    store.remove("tools/busybox:1.0")
    assert (b.rootfs / "etc/version").read_bytes() == b"b"     # the other tag is untouched
    assert (c.rootfs / "etc/version").read_bytes() == b"c"
    assert [i.ref for i in store.list()] == ["tools:latest", "tools/busybox:2.0"]


def test_import_replaces_tag(store, tmp_path):
    old = store.import_archive(rootfs_archive(tmp_path, "v1"), "busybox")
    new = store.import_archive(rootfs_archive(tmp_path, "v2"), "busybox")
    assert new.id != old.id and store.get("busybox").id == new.id
    assert (new.rootfs / "etc/version").read_bytes() == b"v2"
    assert [i.ref for i in store.list()] == ["busybox:latest"]
    assert leftovers(store) == []


def test_missing_archive_file(store, tmp_path):
    with pytest.raises(ImageError, match=f"cannot import {tmp_path}/nope.tar: no such file"):
        store.import_archive(tmp_path / "nope.tar", "busybox")
    assert not store.root.exists() or store.list() == []


# --- Failure leaves nothing behind ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["truncated", "unsafe", "bad-format"])
def test_failed_import_registers_nothing(store, tmp_path, kind):
    store.import_archive(rootfs_archive(tmp_path, "good"), "busybox:keep")
    bad = tmp_path / "bad.tar.gz"
    if kind == "truncated":
        good = rootfs_archive(tmp_path, "v9").read_bytes()
        bad.write_bytes(good[: len(good) // 2])
    elif kind == "unsafe":
        build(bad, [file("ok", b"x"), symlink("evil", str(tmp_path)), file("evil/pwned", b"x")],
              "gz")
    else:
        bad.write_bytes(b"definitely not an archive" * 40)

    for ref in ("busybox:new", "busybox:keep"):    # a new tag, and replacing an existing one
        with pytest.raises(ArchiveError):
            store.import_archive(bad, ref)
    assert [i.ref for i in store.list()] == ["busybox:keep"]
    assert (store.get("busybox:keep").rootfs / "etc/version").read_bytes() == b"good"
    assert leftovers(store) == []
    assert not (tmp_path / "pwned").exists()


def test_leftovers_of_dead_importers_are_swept(store, tmp_path):
    store.import_archive(rootfs_archive(tmp_path), "busybox")
    dead = store.root / ".tmp-99999999-abcd"       # pid_max is at most 4194304: never alive
    (dead / "rootfs").mkdir(parents=True)
    mine = store.root / f".tmp-{os.getpid()}-live"  # an import in progress: must stay
    mine.mkdir()
    store.import_archive(rootfs_archive(tmp_path, "v2"), "busybox:two")
    assert not dead.exists() and mine.exists()
    assert [i.ref for i in store.list()] == ["busybox:latest", "busybox:two"]


# --- In use -----------------------------------------------------------------------------------

def test_remove_refuses_image_in_use(store, tmp_path):
    image = store.import_archive(rootfs_archive(tmp_path), "busybox")
    asked = []

    def in_use(img):
        asked.append(img.ref)
        return ["web", "db"]

    with pytest.raises(ImageError, match="used by container.* web, db — remove them first"):
        store.remove("busybox", in_use=in_use)
    assert asked == ["busybox:latest"] and store.get("busybox") == image
    assert image.rootfs.is_dir()
    store.remove("busybox", in_use=lambda img: [])
    assert store.list() == []


def test_replace_refuses_image_in_use(store, tmp_path):
    store.import_archive(rootfs_archive(tmp_path, "v1"), "busybox")
    with pytest.raises(ImageError, match="cannot replace image busybox:latest: used by"):
        store.import_archive(rootfs_archive(tmp_path, "v2"), "busybox", in_use=lambda i: ["web"])
    assert (store.get("busybox").rootfs / "etc/version").read_bytes() == b"v1"
    assert leftovers(store) == []


# --- Concurrency ------------------------------------------------------------------------------

def test_parallel_imports_in_threads(store, tmp_path):
    archives = {f"t{i}": rootfs_archive(tmp_path, f"t{i}") for i in range(8)}
    refs = [f"busybox:{label}" if i % 2 else f"other/img:{label}"
            for i, label in enumerate(archives)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        images = list(pool.map(lambda a: store.import_archive(*a), zip(archives.values(), refs)))
    _check_all_present(store, images, refs)


def _import_in_child(root, archive, ref):
    ImageStore(root).import_archive(archive, ref)


def test_parallel_imports_in_processes(store, tmp_path):
    refs = [f"busybox:p{i}" for i in range(6)] + ["busybox:p0"]   # p0 twice: same tag races
    archives = [rootfs_archive(tmp_path, ref.split(":")[1]) for ref in refs]
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_import_in_child, args=(store.root, a, r))
                for a, r in zip(archives, refs)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    _check_all_present(store, [store.get(r) for r in refs], refs)


def _check_all_present(store, images, refs):
    assert sorted(i.ref for i in store.list()) == sorted(set(refs))
    for image in images:
        tag = image.tag
        assert (image.rootfs / "etc/version").read_bytes() == tag.encode()
        assert store.get(image.ref).rootfs == image.rootfs
    assert leftovers(store) == []


# --- The adversarial set through `minicontainer image import` (issue 7) -----------------------
# Each hostile archive goes through the real CLI: exit 125 with one line, nothing registered,
# no scratch directory left, and the sentinel outside untouched (and /etc/passwd's link count).

import io          # noqa: E402
import subprocess  # noqa: E402
import sys         # noqa: E402
import tarfile     # noqa: E402

from archives import build_streamed, hardlink, snapshot, zero_file  # noqa: E402


def oci_archive(path, layer_entries, tmp_path):
    """A one-layer OCI image archive (index.json, blobs/sha256/…) whose layer holds the entries."""
    from minicontainer.storage.oci import machine_arch
    layer = build(tmp_path / "layer.tar", layer_entries).read_bytes()
    diff = hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": machine_arch(), "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{hashlib.sha256(config).hexdigest()}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{diff}", "size": len(layer)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": len(manifest),
        "digest": f"sha256:{hashlib.sha256(manifest).hexdigest()}",
        "annotations": {"io.containerd.image.name": "evil:latest"}}]}).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index),
                           *((f"blobs/sha256/{hashlib.sha256(b).hexdigest()}", b) for b in (manifest, config, layer))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


HOSTILE = {
    "symlink-escape": lambda out: [directory("./"), symlink("evil", str(out)), file("evil/pwned", b"x")],
    "symlink-chain": lambda out: [symlink("a", "b"), symlink("b", str(out)), file("a/pwned", b"x")],
    "traversal": lambda out: [file("ok", b"x"), file("../../../../pwned", b"x")],
    "hardlink-passwd": lambda out: [file("ok", b"x"), hardlink("passwd", "/etc/passwd")],
    "hardlink-to-symlink": lambda out: [symlink("l", str(out / "victim")), hardlink("h", "l")],
    "dot-is-symlink": lambda out: [symlink("./", str(out)), file("pwned", b"x")],
    "bomb": None,                     # built below: 64 MiB of zeros, gzip'd to ~65 KB
    "entries": lambda out: [file(f"f{i}") for i in range(300)],
    "oci-whiteout-under-symlink": lambda out: [symlink("evil", str(out)), file("evil/.wh.victim")],
    "oci-opaque-under-symlink": lambda out: [symlink("evil", str(out)), file("evil/.wh..wh..opq")],
    "oci-layer-escape": lambda out: [directory("etc"), symlink("etc/evil", "../../.."), file("etc/evil/pwned", b"x")],
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archives_through_image_import(tmp_path, kind):
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("original")
    store = ImageStore(root / "images")
    store.import_archive(rootfs_archive(tmp_path, "good"), "busybox:keep")
    before, passwd = snapshot(outside), os.stat("/etc/passwd")
    archive = tmp_path / f"{kind}.tar"
    if kind == "bomb":
        archive = build_streamed(tmp_path / "bomb.tar.gz", [zero_file("zeros", 64 << 20)], "gz")
    elif kind.startswith("oci-"):
        oci_archive(archive, HOSTILE[kind](outside), tmp_path)
    else:
        build(archive, HOSTILE[kind](outside))
    env = {**os.environ, "MINICONTAINER_UNPACK_MAX_BYTES": str(8 << 20), "MINICONTAINER_UNPACK_MAX_ENTRIES": "200"}
    p = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(root), "image", "import",
                        str(archive), "evil:latest"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith("minicontainer: ") and "internal error" not in p.stderr
    assert ("is too big" if kind in ("bomb", "entries") else "unsafe") in p.stderr     # the right reason
    assert [i.ref for i in store.list()] == ["busybox:keep"]                 # nothing registered
    assert leftovers(store) == []
    assert not list((root / "layers").glob("*")) if (root / "layers").exists() else True
    assert snapshot(outside) == before and (outside / "victim").read_text() == "original"
    after = os.stat("/etc/passwd")
    assert (after.st_nlink, after.st_ino) == (passwd.st_nlink, passwd.st_ino)
    assert not (tmp_path / "pwned").exists() and not list(tmp_path.parent.glob("pwned"))
