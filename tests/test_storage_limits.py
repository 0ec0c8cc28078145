"""Bounded disks: --storage-opt size=N and volume create --opt size=N (storage/disk.py).

Real loop devices and ext4 images; every mount is made in a container's or a helper's own
mount namespace (the test process is in a private one besides). Each test also proves that
no loop device is left bound to a file of the test's state root.
"""
from __future__ import annotations

import glob
import os

import pytest

pytestmark = pytest.mark.root

FILL = "dd if=/dev/zero of={path} bs=1M count=64 2>&1; echo dd=$?"


def loops_of(root) -> list[str]:
    """Loop devices bound to a file below ROOT (sysfs backing_file)."""
    found = []
    for backing in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            if open(backing).read().startswith(str(root)):
                found.append(backing.split("/")[3])
        except OSError:
            pass
    return found


def allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def test_writable_layer_is_bounded(mc, mc_root):
    """Past the limit the container gets ENOSPC; the host's filesystem keeps its space."""
    p = mc("run", "--rm", "--net", "none", "--storage-opt", "size=16m", "busybox", "sh", "-c",
           FILL.format(path="/big") + "; df -k / | tail -1", check=True)
    assert "No space left on device" in p.stdout and "dd=1" in p.stdout, p.stdout
    size_kb = int(p.stdout.strip().splitlines()[-1].split()[1])
    assert 12 * 1024 < size_kb <= 16 * 1024, p.stdout          # df inside shows the limit
    assert not loops_of(mc_root)


@pytest.fixture
def base(mc, busybox_tar):
    """A private copy of busybox: commit turns its image into layers (the session's stays)."""
    ref = f"diskbase:{os.getpid()}"
    mc("image", "import", str(busybox_tar), ref, check=True)
    yield ref
    mc("image", "rm", ref)


def test_writable_layer_lives_until_rm(mc, mc_root, detached, base):
    """diff and commit, running or stopped, read the same bounded layer; rm gives the space back."""
    name = f"disk-{os.getpid()}"
    cid = detached("--storage-opt", "size=16m", base, "sh", "-c",
                   FILL.format(path="/big") + " > /report; sleep 600", name=name)
    image = mc_root / "containers" / cid / "disk.img"
    for _ in range(100):
        if "dd=" in mc("exec", name, "cat", "/report").stdout:
            break
    assert "dd=1" in mc("exec", name, "cat", "/report").stdout
    assert allocated(image) <= 16 << 20                        # the host lent 16 MiB, no more
    assert ("A", "/big") in [tuple(line.split(None, 1)) for line in mc("diff", name, check=True).stdout.splitlines()]
    mc("stop", "-t", "1", name, check=True)
    assert not loops_of(mc_root)                                # autoclear: gone with the namespace
    assert "/big" in mc("diff", name, check=True).stdout      # read through a private mount
    ref = f"disk-commit-{os.getpid()}"
    mc("commit", name, ref, check=True)                        # its layer, read the same way
    try:
        out = mc("run", "--rm", "--net", "none", ref, "ls", "-l", "/big", check=True).stdout
        assert int(out.split()[4]) > 8 << 20, out
    finally:
        mc("image", "rm", ref)
    mc("snapshot", "create", name, "one", check=True)
    assert mc("snapshot", "restore", name, "one", check=True)
    tar = mc_root / f"{name}.tar"
    mc("export", name, "-o", str(tar), check=True)
    import tarfile
    with tarfile.open(tar) as t:
        assert t.getmember("big").size > 8 << 20
    tar.unlink()
    mc("rm", "-f", name, check=True)
    assert not image.exists() and not loops_of(mc_root)


@pytest.mark.parametrize("opt, says", [
    ("size=abc", 'invalid --storage-opt size "abc"'),
    ("size=1m", "at least 4m"),
    ("quota=1g", "the only option is size=N"),
    ("size", "the only option is size=N"),
])
def test_bad_storage_opt(mc, mc_root, opt, says):
    before = sorted(os.listdir(mc_root / "containers"))
    p = mc("run", "--rm", "--storage-opt", opt, "busybox", "true")
    assert p.returncode == 125 and says in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert sorted(os.listdir(mc_root / "containers")) == before


def test_volume_is_bounded(mc, mc_root):
    name = f"vol-{os.getpid()}"
    assert mc("volume", "create", "--opt", "size=8m", name, check=True).stdout.strip() == name
    try:
        p = mc("run", "--rm", "--net", "none", "-v", f"{name}:/data", "busybox", "sh", "-c",
               FILL.format(path="/data/big"), check=True)
        assert "No space left on device" in p.stdout and "dd=1" in p.stdout, p.stdout
        image = mc_root / "volumes" / name / "disk.img"
        assert allocated(image) <= 8 << 20
        again = mc("run", "--rm", "--net", "none", "-v", f"{name}:/data", "busybox", "ls", "-l", "/data/big",
                   check=True).stdout                          # still there for the next container
        assert int(again.split()[4]) > 4 << 20, again
        import json
        info = json.loads(mc("volume", "inspect", name, check=True).stdout)[0]
        assert info["Options"] == {"size": str(8 << 20)}
        assert not loops_of(mc_root)
    finally:
        mc("volume", "rm", name, check=True)
    assert not (mc_root / "volumes" / name).exists()


@pytest.mark.parametrize("opt, says", [("size=x", 'invalid --opt size "x"'), ("type=tmpfs", "the only option is size=N")])
def test_bad_volume_opt(mc, mc_root, opt, says):
    p = mc("volume", "create", "--opt", opt, f"bad-{os.getpid()}")
    assert p.returncode == 125 and says in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (mc_root / "volumes" / f"bad-{os.getpid()}").exists()
