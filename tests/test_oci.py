"""Image exchange: docker-save / podman-save archives and OCI layouts in, OCI / docker-archive
out. Archives are built here byte by byte (multi-layer, whiteouts, opaque dirs, gzip, links);
skopeo and podman (Debian packages) check what we export, and podman's own archives come back."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import pytest

from archives import directory, file, hardlink, zero_file

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
                                        [{"Config": f"{sha(config)[7:]}.json",
                                          "RepoTags": tags if isinstance(tags, (str, dict)) else list(tags),
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
        # each of these ended as "internal error: …" (a traceback's last line)
        "gzip body not deflate": (lambda p: write_bytes(p, broken_gzip(docker_save(tmp_path / "g.tar", layers))),
                                  "invalid block type"),                                       # zlib.error
        "xz body corrupt": (lambda p: write_bytes(p, broken_xz(docker_save(tmp_path / "x.tar", layers))),
                            "Corrupt input data"),                                             # LZMAError
        "JSON nested too deeply": (lambda p: write_tar(p, {"manifest.json": b"[" * 200_000}), "nested too deeply"),
        "index.json a list": (lambda p: write_tar(p, {**oci_layout(layers), "index.json": b"[]"}),
                              "not a JSON object"),
        "annotations a list": (lambda p: write_tar(p, oci_index(layers, annotations=["x"])),
                               "'annotations' is not an object"),
        "ref name a number": (lambda p: write_tar(p, oci_index(layers, annotations={
            "org.opencontainers.image.ref.name": 5})), "'org.opencontainers.image.ref.name' is not a string"),
        "a layer name a number": (lambda p: write_tar(p, {"manifest.json": json.dumps(
            [{"Config": "c.json", "Layers": [5, 6, 7]}]).encode(), "c.json": config_json(d)}), "'Layers' is missing or not a list of strings"),
        "a diff_id a number": (lambda p: docker_save(p, layers, config=config_json([1, 2, 3])),
                               "'diff_ids' is missing or not a list of strings"),
        "RepoTags a string": (lambda p: docker_save(p, layers, tags="oci-test/app:1"),
                              "'RepoTags' is missing or not a list of strings"),
        "RepoTags an object": (lambda p: docker_save(p, layers, tags={"a": 1}),
                               "'RepoTags' is missing or not a list of strings"),
    }
    return cases


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def broken_gzip(plain: Path) -> bytes:
    """A gzip whose first 64 KiB inflate (the image's first entries), then a deflate block
    of type 3, which does not exist: zlib.error, not the OSError of a bad CRC."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(plain.read_bytes()[:65536]) + c.flush(zlib.Z_FULL_FLUSH) + b"\x07" + bytes(16)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body


def broken_xz(plain: Path) -> bytes:
    data = lzma.compress(plain.read_bytes())
    middle = len(data) // 2
    return data[:middle] + b"\xff" * 64 + data[middle + 64:]


def oci_index(layers, **descriptor) -> dict[str, bytes]:
    """An OCI layout whose one manifest descriptor has DESCRIPTOR's fields replaced."""
    files = oci_layout(layers)
    index = json.loads(files["index.json"])
    index["manifests"][0].update(descriptor)
    return {**files, "index.json": json.dumps(index).encode()}


def test_malformed_archives_give_one_clear_line_and_register_nothing(mc, mc_root, layers, tmp_path):
    before = state(mc_root)
    for what, (make, message) in malformed_cases(layers, tmp_path).items():
        archive = make(tmp_path / f"{what.replace(' ', '-')}.tar")
        p = mc("image", "import", str(archive), "bad:1")
        assert p.returncode == 125, (what, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, (what, p.stderr)
        assert message in p.stderr and "internal error" not in p.stderr, (what, p.stderr)
        assert state(mc_root) == before, what


def test_not_an_image_layout_directory(mc, tmp_path):
    p = mc("image", "import", str(tmp_path), "x:1")
    assert p.returncode == 125 and "not an OCI image layout" in p.stderr


def mc_env(mc_root, env: dict, *args):
    return subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(mc_root), *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_a_compressed_archive_is_decompressed_only_up_to_the_limit(mc_root, layers, tmp_path):
    """A gzip bomb next to the image: without the limit it filled the scratch directory (the disk)."""
    archive = docker_save(tmp_path / "app.tar", layers)
    with tarfile.open(archive, "a", format=tarfile.PAX_FORMAT) as tar:
        info, data = zero_file("padding", 3 << 20)           # in no manifest: nothing else reads it
        tar.addfile(info, io.BufferedReader(data))
    packed = tmp_path / "bomb.tar.gz"
    packed.write_bytes(gzip.compress(archive.read_bytes(), 1))
    before = state(mc_root)
    p = mc_env(mc_root, {"MINICONTAINER_UNPACK_MAX_BYTES": str(5 << 20)}, "image", "import", str(packed), "bomb:1")
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"archive {packed} is too big: it expands to more than 5 MiB" in p.stderr, p.stderr
    assert "MINICONTAINER_UNPACK_MAX_BYTES" in p.stderr
    assert state(mc_root) == before


def test_image_archive_headers_are_parsed_strictly_and_bounded(mc, mc_root, layers, tmp_path, monkeypatch):
    """A 2 MiB pax header was read whole into memory (and kept: getmembers() keeps all)."""
    archive = docker_save(tmp_path / "app.tar", layers)
    with tarfile.open(archive, "a", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("note")
        info.pax_headers = {"comment": "x" * (2 << 20)}
        tar.addfile(info, io.BytesIO(b""))
    before = state(mc_root)
    p = mc("image", "import", str(archive), "fat:1")
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"corrupt image archive {archive}" in p.stderr and "metadata header" in p.stderr, p.stderr
    assert state(mc_root) == before
    # The member count is capped (an image archive has a few files per layer). Building
    # 100 001 members is slow, so the cap is lowered here instead.
    from minicontainer.errors import ArchiveError
    from minicontainer.storage import oci
    monkeypatch.setattr(oci, "MAX_MEMBERS", 5)
    with pytest.raises(ArchiveError, match="has more than 5 files"):
        oci.TarSource(docker_save(tmp_path / "small.tar", layers))


def test_a_truncated_member_is_an_archive_error(layers, tmp_path, monkeypatch):
    """tarfile raises ReadError when a member's data ends early. TarSource's strict index
    catches a cut archive before that, so the read failure is injected here."""
    from minicontainer.errors import ArchiveError
    from minicontainer.storage import oci
    source = oci.TarSource(docker_save(tmp_path / "app.tar", layers))

    class Cut(io.BytesIO):
        def read(self, *_):
            raise tarfile.ReadError("unexpected end of data")
    monkeypatch.setattr(source, "open", lambda name: Cut())
    try:
        with pytest.raises(ArchiveError, match="corrupt image archive .*unexpected end of data"):
            oci.choose_docker_entry(source, tmp_path / "app.tar", None)
    finally:
        source.close()


def index_of_indexes(layers, copies: int, name="oci-test/oci:2") -> dict[str, bytes]:
    """An OCI layout whose index.json lists the same sub-index COPIES times."""
    files = oci_layout(layers, ref=name)
    inner = files["index.json"]
    desc = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner), "size": len(inner)}
    return {**files, f"blobs/sha256/{sha(inner)[7:]}": inner,
            "index.json": json.dumps({"schemaVersion": 2, "manifests": [desc] * copies}).encode()}


def test_nested_indexes_are_read_once_and_bounded(mc, mc_root, layers, tmp_path):
    """75 000 descriptors naming one sub-index were 75 000 reads and hashes of it."""
    before = state(mc_root)
    p = mc("image", "import", str(write_tar(tmp_path / "many.tar", index_of_indexes(layers, 20_000))), "many:1")
    assert p.returncode == 125 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "more than 10000 manifests and indexes" in p.stderr, p.stderr
    assert state(mc_root) == before
    # The same image reached twice is one image, not "holds 2 images".
    assert mc("image", "import", str(write_tar(tmp_path / "twice.tar", index_of_indexes(layers, 2))),
              check=True).stdout.startswith("oci-test/oci:2 ")
    mc("image", "rm", "oci-test/oci:2", check=True)


def test_a_layout_tarred_from_inside_imports(mc, layers, tmp_path):
    """`tar -C layout -cf img.tar .` starts with "./": it was taken for a root filesystem."""
    layout = tmp_path / "layout"
    for name, data in oci_layout(layers).items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    archive = tmp_path / "img.tar"
    subprocess.run(["tar", "-C", str(layout), "-cf", str(archive), "."], check=True)
    assert tarfile.open(archive).getnames()[0] == "."
    assert mc("image", "import", str(archive), check=True).stdout.startswith("oci-test/oci:2 ")
    try:
        check_image(mc, "oci-test/oci:2")
    finally:
        mc("image", "rm", "oci-test/oci:2")
    from minicontainer.storage.oci import _clean
    assert _clean("..hidden/layer.tar") == "..hidden/layer.tar"       # a name, not the parent
    assert _clean("./blobs//x") == "blobs/x"


def test_a_whiteout_before_its_directory_makes_it_opaque(mc, busybox_tar, tmp_path):
    """Layer 3 holds opt/.wh.sub, then opt/sub/ (sorted order, as OCI recommends): opt/sub
    is a new directory, so layer 2's opt/sub/old must not show through."""
    base = busybox_tar.read_bytes()
    second = tar_bytes([directory("opt"), directory("opt/sub"), file("opt/sub/old", b"old\n")])
    third = tar_bytes([directory("opt"), file("opt/.wh.sub"), directory("opt/sub"), file("opt/sub/new", b"new\n")])
    tar = "application/vnd.oci.image.layer.v1.tar"
    stack = [(base, sha(base), tar), (second, sha(second), tar), (third, sha(third), tar)]
    mc("image", "import", str(docker_save(tmp_path / "wh.tar", stack)), "wh-order:1", check=True)
    try:
        assert mc("run", "--rm", "--net", "none", "wh-order:1", "ls", "/opt/sub", check=True).stdout == "new\n"
    finally:
        mc("image", "rm", "wh-order:1")


def test_xz_and_bzip2_archives_close_their_files(layers, tmp_path):
    """lzma/bz2 readers made from an open() file left it to the garbage collector."""
    import bz2
    import gc
    import warnings
    from minicontainer.storage import oci
    plain = docker_save(tmp_path / "app.tar", layers).read_bytes()
    for suffix, compress in (("xz", lzma.compress), ("bz2", bz2.compress)):
        packed = tmp_path / f"app.tar.{suffix}"
        packed.write_bytes(compress(plain))
        scratch = tmp_path / f"scratch-{suffix}"
        scratch.mkdir()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            oci._open_source(packed, scratch).close()
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)], suffix


def test_entrypoint_is_always_prepended_and_a_restart_keeps_the_command(mc, mc_root, busybox_tar,
                                                                         tmp_path, detached):
    """Docker: your command replaces Cmd, Entrypoint always comes first — even when your
    command starts with the entrypoint. A restart reuses the command as it was filled in."""
    base = busybox_tar.read_bytes()
    entry = ["sh", "-c", 'echo "$*"; exit 3', "ep"]
    config = config_json([sha(base)], config={"Entrypoint": entry, "Cmd": ["from-cmd"]})
    tar = "application/vnd.oci.image.layer.v1.tar"
    mc("image", "import", str(docker_save(tmp_path / "ep.tar", [(base, sha(base), tar)], config=config)),
       "ep-test:1", check=True)
    try:
        run = ("run", "--rm", "--net", "none", "ep-test:1")
        assert mc(*run).stdout == "from-cmd\n"
        assert mc(*run, "a", "b").stdout == "a b\n"
        assert mc(*run, *entry, "x").stdout == 'sh -c echo "$*"; exit 3 ep x\n'     # was "x"
        from minicontainer.status import owner_alive
        from minicontainer.state import StateStore
        detached("--restart", "on-failure:1", "ep-test:1", "again", name="ep-restart")
        deadline = time.monotonic() + 15
        while True:
            rec = StateStore(mc_root).find("ep-restart")
            if rec.restart_count == 1 and rec.status == "exited" and not owner_alive(rec):
                break
            assert time.monotonic() < deadline, "timed out waiting for one restart"
            time.sleep(0.02)
        assert mc("logs", "ep-restart", check=True).stdout == "again\n" * 2
    finally:
        mc("rm", "-f", "ep-restart")
        mc("image", "rm", "ep-test:1")


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
