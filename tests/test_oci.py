"""Image exchange: docker-save / podman-save archives and OCI layouts in, OCI / docker-archive
out. Archives are built here byte by byte (multi-layer, whiteouts, opaque dirs, gzip, links);
skopeo and podman (Debian packages) check what we export, and podman's own archives come back."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from archives import directory, file, hardlink

pytestmark = pytest.mark.root

SCRIPT = "cat /etc/profile; ls /usr/lib; ls /var/tmp 2>&1; pwd; echo $FROM_IMAGE; cat /opt/linked"


def tar_bytes(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def layers(busybox_tar):
    """[(blob bytes, diff_id, media type)] bottom first: busybox; whiteouts and an opaque dir;
    a gzip layer that adds back a deleted file and holds a hardlink."""
    base = busybox_tar.read_bytes()
    second = tar_bytes([
        file("etc/.wh.profile"),                                 # delete a file
        file("var/.wh.tmp"),                                     # delete a directory
        directory("usr/lib"), file("usr/lib/.wh..wh..opq"),      # hide all of /usr/lib below
        file("usr/lib/only-this", b"new\n"),
        directory("opt"), file("opt/data", b"layer 2\n"),
    ])
    third_plain = tar_bytes([
        directory("etc"), file("etc/profile", b"from layer 3\n"),
        hardlink("opt/linked", "etc/profile"),
    ])
    third = gzip.compress(third_plain, mtime=0)
    return [(base, sha(base), "application/vnd.oci.image.layer.v1.tar"),
            (second, sha(second), "application/vnd.oci.image.layer.v1.tar"),
            (third, sha(third_plain), "application/vnd.oci.image.layer.v1.tar+gzip")]


def config_json(diff_ids, **extra) -> bytes:
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Cmd": ["sh", "-c", "echo from-config"], "Env": ["PATH=/bin:/usr/bin", "FROM_IMAGE=yes"],
                         "WorkingDir": "/opt"},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config.update(extra)
    return json.dumps(config).encode()


def write_tar(path: Path, files: dict[str, bytes], links: dict[str, str] = {}) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def docker_save(path: Path, layers, *, config: bytes | None = None, tags=("oci-test/app:1",),
                manifest=None) -> Path:
    """The classic `docker save` layout: <id>/layer.tar per layer, a duplicate as a symlink."""
    config = config or config_json([d for _, d, _ in layers])
    files, names = {}, []
    for i, (blob, _, media) in enumerate(layers):
        layer_id = hashlib.sha256(f"layer{i}".encode()).hexdigest()
        files[f"{layer_id}/VERSION"] = b"1.0"
        files[f"{layer_id}/layer.tar"] = gzip.decompress(blob) if media.endswith("gzip") else blob
        names.append(f"{layer_id}/layer.tar")
    empty = tar_bytes([])
    files["e" * 64 + "/layer.tar"] = empty                       # the same empty layer, twice:
    names += ["e" * 64 + "/layer.tar", "f" * 64 + "/layer.tar"]  # the second is a symlink
    config = json.loads(config)
    if "diff_ids" in config["rootfs"]:
        config["rootfs"]["diff_ids"] += [sha(empty), sha(empty)]
    config = json.dumps(config).encode()
    files[f"{sha(config)[7:]}.json"] = config
    files["manifest.json"] = json.dumps(manifest if manifest is not None else
                                        [{"Config": f"{sha(config)[7:]}.json", "RepoTags": list(tags),
                                          "Layers": names}]).encode()
    return write_tar(path, files, {"f" * 64 + "/layer.tar": "../" + "e" * 64 + "/layer.tar"})


def oci_layout(layers, *, config: bytes | None = None, ref="oci-test/oci:2", multiarch=False):
    """{name: bytes} of an OCI image layout (optionally behind a two-platform index)."""
    config = config or config_json([d for _, d, _ in layers])
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": m, "digest": sha(b), "size": len(b)} for b, _, m in layers]}).encode()
    blobs = {sha(config): config, sha(manifest): manifest, **{sha(b): b for b, _, _ in layers}}
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
            "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref}}
    if multiarch:
        other = b'{"schemaVersion": 2, "layers": []}'
        blobs[sha(other)] = other
        inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {**desc, "platform": {"architecture": "arm64", "os": "linux"}, "digest": sha(other), "size": len(other)},
            {**desc, "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
        blobs[sha(inner)] = inner
        desc = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner), "size": len(inner),
                "annotations": {"org.opencontainers.image.ref.name": ref}}
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
             "index.json": json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()}
    files.update({f"blobs/sha256/{d[7:]}": data for d, data in blobs.items()})
    return files


def check_image(mc, ref: str):
    out = mc("run", "--rm", "--net", "none", ref, "sh", "-c", SCRIPT, check=True).stdout
    assert out == ("from layer 3\n"                   # deleted in layer 2, added back in layer 3
                   "only-this\n"                       # /usr/lib opaque: os-release is hidden
                   "ls: /var/tmp: No such file or directory\n"
                   "/opt\nyes\n"                       # WorkingDir and Env from the config
                   "from layer 3\n")                   # the hardlink
    assert mc("run", "--rm", "--net", "none", ref, check=True).stdout == "from-config\n"   # Cmd


def state(mc_root: Path) -> tuple:
    images = sorted(str(p.relative_to(mc_root)) for p in (mc_root / "images").rglob("image.json"))
    layers = sorted(os.listdir(mc_root / "layers")) if (mc_root / "layers").exists() else []
    tmp = [p.name for p in (mc_root / "images").iterdir() if p.name.startswith(".")and p.name != ".lock"]
    return images, layers, tmp


# ── import ──────────────────────────────────────────────────────────────────────────────────

def test_docker_save_archive_with_whiteouts(mc, mc_root, layers, tmp_path):
    archive = docker_save(tmp_path / "app.tar", layers)
    assert mc("image", "import", str(archive), check=True).stdout.startswith("oci-test/app:1 sha256:")
    try:
        check_image(mc, "oci-test/app:1")
        from minicontainer.api import image_store
        image = image_store(mc_root).get("oci-test/app:1")
        assert len(set(image.layers)) == 5          # the same empty layer twice: two chain ids
    finally:
        mc("image", "rm", "oci-test/app:1")


def test_oci_archive_and_layout_directory(mc, mc_root, layers, tmp_path):
    files = oci_layout(layers, multiarch=True)
    archive = write_tar(tmp_path / "oci.tar", files)
    layout = tmp_path / "layout"
    for name, data in files.items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    try:
        assert mc("image", "import", str(archive), check=True).stdout.startswith("oci-test/oci:2 ")
        check_image(mc, "oci-test/oci:2")
        mc("image", "import", str(layout), "from-dir:1", check=True)
        check_image(mc, "from-dir:1")
        from minicontainer.api import image_store
        store = image_store(mc_root)
        assert store.get("from-dir:1").layer_dirs == store.get("oci-test/oci:2").layer_dirs   # shared
    finally:
        mc("image", "rm", "oci-test/oci:2")
        mc("image", "rm", "from-dir:1")


def test_gzip_compressed_docker_save(mc, layers, tmp_path):
    plain = docker_save(tmp_path / "app.tar", layers)
    packed = tmp_path / "app.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    mc("image", "import", str(packed), "zipped:1", check=True)
    try:
        check_image(mc, "zipped:1")
    finally:
        mc("image", "rm", "zipped:1")


def corrupt(data: bytes) -> bytes:
    return data[:-1500] + bytes([data[-1500] ^ 1]) + data[-1499:]


def truncated(whole: Path, path: Path) -> Path:
    path.write_bytes(whole.read_bytes()[:-40000])
    return path


def malformed_cases(layers, tmp_path):
    d = [x for _, x, _ in layers]
    evil = tar_bytes([file("../../escape", b"x")])
    cases = {
        "manifest not JSON": (lambda p: write_tar(p, {"manifest.json": b"[{"}), "malformed manifest"),
        "manifest not a list": (lambda p: write_tar(p, {"manifest.json": b"{}"}), "expected a list"),
        "missing layer file": (lambda p: docker_save(p, layers, manifest=[
            {"Config": f"{sha(config_json(d))[7:]}.json", "Layers": ["nope/layer.tar"] * 3}]), "no file"),
        "no diff_ids": (lambda p: docker_save(p, layers, config=b'{"rootfs": {"type": "layers"}}'),
                        "'diff_ids' is missing"),
        "layer does not match diff_id": (lambda p: docker_save(p, [layers[0], (corrupt(layers[1][0]),) + layers[1][1:],
                                                                   layers[2]]), "is not the layer its config names"),
        "unsafe layer": (lambda p: docker_save(p, [(evil, sha(evil), "x")]), "points outside"),
        "blob digest mismatch": (lambda p: write_tar(p, {**oci_layout(layers), "blobs/sha256/" + layers[1][1][7:]:
                                                          corrupt(layers[1][0])}), "does not match its digest"),
        "index schemaVersion": (lambda p: write_tar(p, {**oci_layout(layers), "index.json": b'{"schemaVersion": 1}'}),
                                "schemaVersion must be 2"),
        "name outside the archive": (lambda p: docker_save(p, layers, manifest=[
            {"Config": "../../etc/passwd", "Layers": []}]), "outside itself"),
        "truncated": (lambda p: truncated(docker_save(tmp_path / "whole.tar", layers), p), "corrupt"),
    }
    return cases


def test_malformed_archives_give_one_clear_line_and_register_nothing(mc, mc_root, layers, tmp_path):
    before = state(mc_root)
    for what, (make, message) in malformed_cases(layers, tmp_path).items():
        archive = make(tmp_path / f"{what.replace(' ', '-')}.tar")
        p = mc("image", "import", str(archive), "bad:1")
        assert p.returncode == 125, (what, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, (what, p.stderr)
        assert message in p.stderr, (what, p.stderr)
        assert state(mc_root) == before, what


def test_not_an_image_layout_directory(mc, tmp_path):
    p = mc("image", "import", str(tmp_path), "x:1")
    assert p.returncode == 125 and "not an OCI image layout" in p.stderr


# ── export: skopeo reads it, podman loads it, podman's own archives come back ──────────────

needs_tools = pytest.mark.skipif(not (shutil.which("skopeo") and shutil.which("podman")),
                                 reason="needs skopeo and podman: apt-get install skopeo podman")


@pytest.fixture
def podman(tmp_path):
    """podman with private storage (vfs driver): nothing of the host's podman changes.
    (Its runroot path must be shorter than 50 characters, hence a short /tmp name.)"""
    import tempfile
    runroot = tempfile.mkdtemp(prefix="mcpm-", dir="/tmp")

    def run(*args, check=True):
        cmd = ["podman", "--root", str(tmp_path / "pm-root"), "--runroot", runroot,
               "--storage-driver", "vfs", "--events-backend", "file", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert not check or p.returncode == 0, (cmd, p.stderr)
        return p
    yield run
    shutil.rmtree(runroot, ignore_errors=True)


@needs_tools
def test_exported_archives_are_read_by_skopeo_and_loaded_by_podman(mc, layers, tmp_path, podman):
    ref = f"exch/app:{secrets.token_hex(3)}"
    mc("image", "import", str(docker_save(tmp_path / "in.tar", layers)), ref, check=True)
    try:
        for fmt, transport in (("oci", "oci-archive"), ("docker", "docker-archive")):
            out = tmp_path / f"{fmt}.tar"
            mc("image", "export", "--format", fmt, ref, "-o", str(out), check=True)
            info = json.loads(subprocess.run(["skopeo", "inspect", f"{transport}:{out}"], capture_output=True,
                                             text=True, check=True, timeout=60).stdout)
            assert len(info["Layers"]) == 5 and "FROM_IMAGE=yes" in info["Env"], info
            loaded = podman("load", "-i", str(out)).stdout
            assert ref in loaded, loaded
            mounted = Path(podman("image", "mount", f"localhost/{ref}").stdout.strip())
            assert (mounted / "etc/profile").read_text() == "from layer 3\n"
            assert not (mounted / "var/tmp").exists() and not (mounted / "usr/lib/os-release").exists()
            podman("image", "unmount", f"localhost/{ref}")
            podman("rmi", "-f", f"localhost/{ref}")
    finally:
        mc("image", "rm", ref)


@needs_tools
def test_podman_save_archives_import(mc, layers, tmp_path, podman):
    ref = f"exch/back:{secrets.token_hex(3)}"
    mc("image", "import", str(docker_save(tmp_path / "in.tar", layers)), ref, check=True)
    mc("image", "export", ref, "-o", str(tmp_path / "out.tar"), check=True)
    mc("image", "rm", ref, check=True)
    podman("load", "-i", str(tmp_path / "out.tar"))
    try:
        for fmt in ("docker-archive", "oci-archive"):
            saved = tmp_path / f"podman-{fmt}.tar"
            podman("save", "--format", fmt, "-o", str(saved), f"localhost/{ref}")
            mc("image", "import", str(saved), f"{ref}-{fmt}", check=True)
            check_image(mc, f"{ref}-{fmt}")
            mc("image", "rm", f"{ref}-{fmt}", check=True)
    finally:
        podman("rmi", "-f", f"localhost/{ref}", check=False)
