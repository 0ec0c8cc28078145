"""Fuzzing what reads untrusted input (hypothesis): image archives and their manifests,
docker/OCI image config JSON, and the values of run's options.

The verdict, for every input: no traceback (only a MinicontainerError may come out), its
message one line (a manifest's: one line per problem, as kubectl lists them), and nothing
registered when it is refused — no image, no half-unpacked
directory, no container, nothing written outside the state root.

`make test` runs a fixed budget of examples (derandomized: the same inputs every time, so a
red CI run is reproducible); bench/fuzz.sh runs the same properties with a large random
budget (MC_FUZZ_EXAMPLES, MC_FUZZ_RANDOM=1). Kubernetes manifests are checked as `apply -f`
checks them before storing anything; Containerfiles join here once their parser exists.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from minicontainer.errors import MinicontainerError

pytestmark = pytest.mark.root          # unpacking keeps owners and makes device nodes: root

settings.register_profile("budget", max_examples=int(os.environ.get("MC_FUZZ_EXAMPLES", "60")),
                          deadline=None, database=None,
                          derandomize=not os.environ.get("MC_FUZZ_RANDOM"),
                          suppress_health_check=list(HealthCheck))
settings.load_profile("budget")

ESCAPE = Path(f"/tmp/mc-fuzz-escape-{os.getpid()}")     # an archive must never create it


def one_line(call, *args, **kwargs):
    """call(); a MinicontainerError is a refusal (its message one line); anything else fails."""
    try:
        return call(*args, **kwargs)
    except MinicontainerError as e:
        text = str(e).strip()
        assert text and "\n" not in text and "Traceback" not in text, repr(text)
        return None


# ── strategies ──────────────────────────────────────────────────────────────────────────────

TRICKY = ["", ".", "..", "/", "a", "a/b", "../x", "../../x", "/etc/passwd", "a/../../b", "./a",
          "a//b", "lnk", "lnk/x", "dir/", "a" * 300, "é/ü", f"../../../..{ESCAPE}", str(ESCAPE),
          ".wh.a", ".wh..wh..opq", "dev/null", "proc/self"]
names = st.one_of(st.sampled_from(TRICKY), st.text(min_size=1, max_size=12).filter(lambda s: "\0" not in s))
member = st.tuples(names, st.sampled_from(["file", "dir", "symlink", "link", "chr", "fifo"]),
                   st.one_of(st.sampled_from(TRICKY), st.binary(max_size=64)),
                   st.integers(0, 0o7777))


def tar_bytes(members) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "file":
                payload = data if isinstance(data, bytes) else data.encode()
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("symlink", "link"):
                info.linkname = data if isinstance(data, str) else data.decode("latin-1")
            if kind == "chr":
                info.devmajor, info.devminor = 1, 3
            tar.addfile(info)
    return out.getvalue()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                           | st.sampled_from(TRICKY),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=8)
image_config = st.fixed_dictionaries({}, optional={
    "config": st.one_of(json_values, st.fixed_dictionaries({}, optional={
        k: json_values for k in ("Cmd", "Entrypoint", "Env", "WorkingDir", "User")})),
    "rootfs": st.one_of(json_values, st.fixed_dictionaries({"type": json_values, "diff_ids": json_values})),
    "architecture": st.sampled_from(["amd64", "arm64", ""]) | json_values,
    "os": st.sampled_from(["linux", "windows"]) | json_values})


# ── fixtures ────────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzroot")
    yield root
    assert not ESCAPE.exists(), f"an archive wrote {ESCAPE} outside the state root"


def registered(root: Path) -> list[str]:
    """Everything an import or run may leave: images, layers, temp dirs, containers."""
    found = []
    for sub in ("images", "layers", "containers"):
        d = root / sub
        if d.is_dir():
            found += [f"{sub}/{p.name}" for p in d.iterdir() if p.name != ".lock"]
    return found


def import_verdict(root: Path, blob: bytes, ref: str | None) -> None:
    """Import BLOB; accepted → it is removed again; refused → nothing is left."""
    from minicontainer.storage.images import ImageStore
    from minicontainer.storage.oci import import_image
    images = ImageStore(root / "images")
    archive = root / "fuzz.tar"
    archive.write_bytes(blob)
    try:
        image = one_line(import_image, images, archive, ref)
        if image is not None:
            images.remove(image.ref)
            layers = root / "layers"
            if layers.is_dir():                 # layers no image lists: remove_unused
                import shutil
                for d in layers.iterdir():
                    if not d.name.startswith("."):
                        shutil.rmtree(d)
    finally:
        archive.unlink()
    assert registered(root) == [], registered(root)


# ── the properties ──────────────────────────────────────────────────────────────────────────

@given(members=st.lists(member, max_size=8))
def test_rootfs_archives(fuzz_root, members):
    import_verdict(fuzz_root, tar_bytes(members), "fuzz:rootfs")


@given(members=st.lists(member, min_size=1, max_size=6), cut=st.integers(0, 4096),
       flip=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=4))
def test_damaged_archives(fuzz_root, members, cut, flip):
    blob = bytearray(tar_bytes(members))
    for at, value in flip:
        if at < len(blob):
            blob[at] = value
    import_verdict(fuzz_root, bytes(blob[:max(cut, 1)] if cut < len(blob) else blob), "fuzz:damaged")


@given(manifest=json_values | st.lists(st.fixed_dictionaries({}, optional={
           "Config": st.sampled_from(["config.json", "../x", "/etc/passwd", ""]) | json_values,
           "RepoTags": st.lists(st.sampled_from(["a:b", "A", "x:y:z", ""]) | st.text(max_size=8), max_size=2) | json_values,
           "Layers": st.lists(st.sampled_from(["layer.tar", "../l", "nope"]), max_size=3) | json_values}),
           max_size=2),
       config=image_config, layer=st.lists(member, max_size=3), ref=st.sampled_from([None, "fuzz:docker"]))
def test_docker_archives(fuzz_root, manifest, config, layer, ref):
    """docker save: manifest.json → config JSON and layer tars."""
    blob = tar_bytes([("manifest.json", "file", json.dumps(manifest).encode(), 0o644),
                      ("config.json", "file", json.dumps(config).encode(), 0o644),
                      ("layer.tar", "file", tar_bytes(layer), 0o644)])
    import_verdict(fuzz_root, blob, ref)


@given(index=json_values | st.fixed_dictionaries({"schemaVersion": st.sampled_from([2, 1, "2"]),
           "manifests": st.lists(st.fixed_dictionaries({
               "mediaType": st.sampled_from(["application/vnd.oci.image.manifest.v1+json",
                                             "application/vnd.oci.image.index.v1+json", "x"]),
               "digest": st.sampled_from(["sha256:" + "0" * 64, "sha256:../../x", "md5:1", ""]) | json_values,
               "size": st.integers(-1, 10**6) | json_values}, optional={
               "annotations": st.dictionaries(st.sampled_from(["org.opencontainers.image.ref.name", "x"]),
                                              st.text(max_size=8)) | json_values}), max_size=2)}),
       layout=st.sampled_from(['{"imageLayoutVersion": "1.0.0"}', "{}", "[]", "not json"]))
def test_oci_archives(fuzz_root, index, layout):
    blob = tar_bytes([("oci-layout", "file", layout.encode(), 0o644),
                      ("index.json", "file", json.dumps(index).encode(), 0o644),
                      ("blobs/sha256/" + "0" * 64, "file", b"{}", 0o644)])
    import_verdict(fuzz_root, blob, "fuzz:oci")


@given(config=image_config | st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_image_config_json(config):
    """The image config's defaults that `run` applies (storage/oci.py runtime_config; what is
    not a JSON object is refused before, by read_image — test_docker_archives feeds those)."""
    from minicontainer.storage.oci import runtime_config
    one_line(runtime_config, config, Path("fuzz.tar"))


option_text = st.one_of(st.sampled_from(["", "-1", "0", "1", "1e400", "nan", "inf", "9" * 30, "1:2:3", "..", "/",
                                          "a=b", "size=", "size=1g", "size=1m", "64m", "0.5", "ALL", "SYS_ADMIN",
                                          "seccomp=unconfined", "host", "none", "container:x", "8080:80",
                                          "/x:/y:ro", "x:/y", "always", "on-failure:3", "0-1", "bridge"]),
                        st.text(max_size=16))
RUN_VALUES = ("name", "hostname", "workdir", "user", "isolation", "net", "restart")
RUN_LISTS = ("env", "publish", "cap_add", "cap_drop", "security_opt", "volumes", "tmpfs", "storage_opt")
LIMITS = ("memory", "memory_swap", "pids_limit", "cpus", "cpu_shares", "cpuset_cpus")


@given(values=st.fixed_dictionaries({}, optional={k: option_text for k in RUN_VALUES}),
       lists=st.fixed_dictionaries({}, optional={k: st.lists(option_text, max_size=2) for k in RUN_LISTS}),
       limits=st.fixed_dictionaries({}, optional={k: option_text for k in LIMITS}),
       detach=st.booleans(), remove=st.booleans())
def test_run_option_values(fuzz_root, values, lists, limits, detach, remove):
    """Every check `run` makes before anything exists: the options (ContainerConfig), the
    limits, the network, the security policy. Refused or not, nothing is registered."""
    from minicontainer import api, runtime
    from minicontainer.cgroups import parse_limits
    from minicontainer.network.steps import check_network_options

    def checks():
        c = api.Container("busybox", ["true"], root=fuzz_root, detach=detach, remove=remove,
                          limits=limits, **values, **lists)
        parse_limits(**c.config.limits)
        check_network_options(c.config)
        runtime.resolve_security(c.config)
    one_line(checks)
    assert registered(fuzz_root) == []


@given(argv=st.lists(option_text | st.sampled_from(["run", "--rm", "-it", "-e", "--name", "-p", "--root",
                                                     "--storage-opt", "--", "-v", "busybox"]), max_size=8))
def test_run_command_lines(argv):
    """The fast lane's own parser (cli/run_verb.py): a dict or None (typer decides), never more."""
    from minicontainer.cli.run_verb import parse_run_args
    result = parse_run_args(["run", *argv])
    assert result is None or isinstance(result, dict)


k8s_doc = st.fixed_dictionaries({}, optional={
    "apiVersion": st.sampled_from(["v1", "apps/v1", "batch/v1", "x/v9", ""]) | json_values,
    "kind": st.sampled_from(["Pod", "Deployment", "Service", "ReplicaSet", "PersistentVolumeClaim",
                             "HorizontalPodAutoscaler", "Nope"]) | json_values,
    "metadata": st.fixed_dictionaries({}, optional={"name": st.sampled_from(["web", "", "A_B", "x" * 300])
                                       | json_values, "labels": json_values}) | json_values,
    "spec": st.fixed_dictionaries({}, optional={
        "replicas": st.integers(-2, 5) | json_values, "selector": json_values,
        "containers": st.lists(st.fixed_dictionaries({}, optional={
            "name": st.sampled_from(["c", ""]) | json_values, "image": st.sampled_from(["busybox", "", ":"]) | json_values,
            "command": json_values, "ports": json_values}), max_size=2) | json_values,
        "template": json_values, "ports": json_values, "type": json_values}) | json_values})


@given(docs=st.lists(k8s_doc | json_values, min_size=1, max_size=3),
       form=st.sampled_from(["yaml", "json"]), raw=st.none() | st.text(max_size=60))
def test_kubernetes_manifests(docs, form, raw):
    """`apply -f -`'s checks (orchestration/manifests.py): documents refused are refused with
    one line per problem, before anything is stored."""
    pytest.importorskip("yaml")
    import yaml
    from minicontainer.orchestration.manifests import check_documents, load_documents
    text = raw if raw is not None else (yaml.safe_dump_all(docs) if form == "yaml"
                                        else "\n".join(json.dumps(d) for d in docs[:1]))
    try:
        check_documents(load_documents(["-"], stdin=io.StringIO(text)), lambda ref: True)
    except MinicontainerError as e:
        lines = str(e).strip().splitlines()
        assert lines and all(line.strip() and "Traceback" not in line for line in lines), str(e)
