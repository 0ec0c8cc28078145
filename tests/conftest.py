"""Shared fixtures. Integration tests start real containers as root.

Safety first: before any test runs, the whole pytest process moves into its own mount
namespace with every mount private, so nothing a test (or a bug) mounts can reach the host's
mount table, and into its own network namespace (with lo up), so the default bridge `mc0`,
its NAT rules and every veth live there, never on the machine's network. Subprocesses (the
CLI) inherit both.

    mc_root      a session state root with the busybox image imported (built by rootfs-builder)
    mc           run the CLI as a subprocess: mc("run", "--rm", "busybox", "true")
    busybox_tar  the reproducible busybox tarball
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0


def pytest_configure(config):
    # Containers started by the tests put their cgroups under a parent of their own, so the
    # suite can prove it left no cgroup behind, whatever else runs on the machine.
    os.environ.setdefault("MINICONTAINER_CGROUP_PARENT", f"minicontainer-tests-{os.getpid()}")
    # …and their boot markers (recovery.py) in a runtime directory of their own, not /run.
    os.environ.setdefault("MINICONTAINER_RUNTIME_DIR", f"/tmp/minicontainer-tests-run-{os.getpid()}")
    if IS_ROOT and not os.environ.get("MC_TEST_MOUNT_NS"):
        from minicontainer.kernel.mount import MS_PRIVATE, MS_REC, mount
        from minicontainer.kernel.namespaces import CLONE_NEWNET, CLONE_NEWNS, unshare
        from minicontainer.kernel.netdev import set_link_up
        unshare(CLONE_NEWNS | CLONE_NEWNET)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        set_link_up("lo")
        os.environ["MC_TEST_MOUNT_NS"] = "1"   # subprocesses are already inside it


def pytest_unconfigure(config):
    """The session's cgroup parent goes too (rmdir: only when empty), whichever tests ran."""
    if os.environ.get("MINICONTAINER_RUNTIME_DIR", "").startswith("/tmp/minicontainer-tests-run-"):
        import shutil
        shutil.rmtree(os.environ["MINICONTAINER_RUNTIME_DIR"], ignore_errors=True)
    if IS_ROOT and os.environ.get("MINICONTAINER_CGROUP_PARENT", "").startswith("minicontainer-tests-"):
        from minicontainer.cgroups import remove_parent
        remove_parent(parent=os.environ["MINICONTAINER_CGROUP_PARENT"])


def pytest_collection_modifyitems(config, items):
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root: real namespaces, mounts and cgroups (run `sudo make test`)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory) -> Path:
    from minicontainer.builder import find_recipe, load_builder
    out = tmp_path_factory.mktemp("build") / "busybox.tar"
    return Path(load_builder().build(find_recipe("busybox"), out).path)


@pytest.fixture(scope="session")
def mc_root(tmp_path_factory, busybox_tar) -> Path:
    """A state root for the whole session, holding busybox:latest."""
    from minicontainer.api import image_store
    root = tmp_path_factory.mktemp("mcroot")
    image_store(root).import_archive(busybox_tar, "busybox")
    yield root
    leftovers = [p.name for p in (root / "containers").glob("*") if not p.name.startswith(".")]
    from minicontainer.cgroups import list_cgroups, remove_parent
    cgroups = list_cgroups()
    remove_parent()
    mounts = [line for line in open("/proc/self/mountinfo") if str(root) in line]
    assert not leftovers, f"containers left behind by the tests: {leftovers}"
    assert not cgroups, f"cgroups left behind by the tests: {cgroups}"
    assert not mounts, f"mounts left behind by the tests: {mounts}"


@pytest.fixture(scope="session")
def helper_image(mc_root, busybox_tar, tmp_path_factory):
    """helper_image("chroot_escape") → an image "chroot_escape": busybox plus
    /bin/chroot_escape, a static program built from tests/helpers/chroot_escape.c. Tests
    look at the kernel from inside with such tiny helpers rather than a distro image."""
    import subprocess
    import tarfile
    from minicontainer.api import image_store
    made = []

    def make(program: str) -> str:
        if program not in made:
            work = tmp_path_factory.mktemp(program)
            binary = work / program
            subprocess.run(["gcc", "-static", "-O2", "-o", str(binary),
                            str(REPO / "tests" / "helpers" / f"{program}.c")], check=True)
            tar = work / "image.tar"
            tar.write_bytes(busybox_tar.read_bytes())
            with tarfile.open(tar, "a") as t:
                t.add(binary, f"bin/{program}")
            image_store(mc_root).import_archive(tar, program.replace("_", "-"))
            made.append(program)
        return program.replace("_", "-")
    yield make
    for program in made:
        image_store(mc_root).remove(program.replace("_", "-"))


@pytest.fixture
def mc(mc_root):
    """Run the CLI in a subprocess against the session root; returns CompletedProcess."""
    def run(*args, input=None, timeout=60, check=False):
        proc = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(mc_root), *args],
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"minicontainer {' '.join(args)} → {proc.returncode}\n{proc.stderr}")
        return proc
    return run


@pytest.fixture
def named(mc):
    """named("x") → a unique container name, removed (rm -f) after the test."""
    names = []

    def make(stem):
        name = f"{stem}-{os.getpid()}-{len(names)}"
        names.append(name)
        return name
    yield make
    for name in names:
        mc("rm", "-f", name)


@pytest.fixture
def detached(mc):
    """detached(*run_args) → the ID of a `run -d` container; removed (rm -f) after the test."""
    started = []

    def start(*args, name=None):
        name = name or f"lc-{os.getpid()}-{time.monotonic_ns()}"
        p = mc("run", "-d", "--net", "none", "--name", name, *args, check=True)
        started.append(name)
        return p.stdout.strip()
    yield start
    for name in started:
        mc("rm", "-f", name)
