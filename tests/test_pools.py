"""Storage pools and `volume migrate` (storage/pools.py, storage/migrate.py), with real
containers, a real loop device and real ext4: data byte-identical (sha256), the writer keeps
running with the same PID and loses no write, the pause is printed, bad input changes nothing."""
from __future__ import annotations

import glob
import json
import os
import re
import secrets
import time

import pytest

pytestmark = pytest.mark.root

# A writer that appends a counter line every 0.1 s, opening the file each time (as `>>` does).
WRITER = ("dd if=/dev/urandom of=/data/blob bs=1k count=1024 2>/dev/null && mkdir -p /data/sub && "
          "echo hello > /data/sub/f && ln -s sub/f /data/link && i=0; "
          "while true; do i=$((i+1)); echo $i >> /data/counter; sleep 0.1; done")
SUMS = "cd /data && sha256sum blob sub/f && readlink link"


def one_line_125(p):
    assert p.returncode == 125, (p.returncode, p.stdout, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


def loop_devices_of(image) -> list[str]:
    return [b for b in glob.glob("/sys/block/loop*/loop/backing_file")
            if open(b).read().strip() == str(image)]


def counter(mc, name) -> list[int]:
    return [int(x) for x in mc("exec", name, "cat", "/data/counter", check=True).stdout.split()]


def wait_for_counter(mc, name, above: int) -> list[int]:
    for _ in range(100):
        p = mc("exec", name, "cat", "/data/counter")
        values = [int(x) for x in p.stdout.split()] if p.returncode == 0 else []
        if values and values[-1] > above:
            return values
        time.sleep(0.1)
    raise AssertionError(f"the writer in {name} stopped counting at {above}")


def test_migrate_a_volume_between_pools_while_its_container_writes(mc, mc_root, detached, tmp_path):
    tag = secrets.token_hex(3)
    img, dirpool, vol, name = f"img-{tag}", f"dir-{tag}", f"mig-{tag}", f"writer-{tag}"
    mc("volume", "pool", "create", img, "--size", "32m", check=True)
    mc("volume", "pool", "create", dirpool, "--path", str(tmp_path / "pool"), check=True)
    image = json.loads(mc("volume", "pool", "ls", "--format", "json", check=True).stdout)
    image = next(p["Path"] for p in image if p["Name"] == img)
    pod, member = f"pod-{tag}", f"member-{tag}"
    try:
        detached("-v", f"{vol}:/data", "busybox", "sh", "-c", WRITER, name=name)
        first = wait_for_counter(mc, name, 3)
        # A second user, in a pod: both are paused together and both switch to the new pool.
        mc("pod", "create", "--name", pod, check=True)
        mc("run", "-d", "--pod", pod, "--name", member, "-v", f"{vol}:/data", "busybox", "sh", "-c",
           "while true; do cat /data/sub/f >/dev/null; sleep 0.2; done", check=True)
        pid = json.loads(mc("inspect", name, check=True).stdout)[0]["State"]["Pid"]
        sums = mc("exec", name, "sh", "-c", SUMS, check=True).stdout
        host_data = json.loads(mc("volume", "inspect", vol, check=True).stdout)[0]["Mountpoint"]

        for pool, fstype in ((img, "ext4"), (dirpool, None), ("default", None)):
            out = mc("volume", "migrate", vol, "--to", pool, check=True).stdout
            assert re.search(rf"to {pool}: .* {name}, {member} paused for [0-9.]+ ms", out), out
            print(out.strip())                                    # the pause, for the log
            assert mc("exec", name, "sh", "-c", SUMS, check=True).stdout == sums
            assert mc("exec", member, "sh", "-c", SUMS, check=True).stdout == sums
            mounts = mc("exec", name, "grep", " /data ", "/proc/mounts", check=True).stdout
            assert "nodev" in mounts and (fstype is None or f" {fstype} " in mounts), mounts
            ls = mc("volume", "ls", check=True).stdout
            assert re.search(rf"{vol}\s+{pool}\b", ls), ls
            values = wait_for_counter(mc, name, counter(mc, name)[-1] + 2)
            assert values == list(range(1, len(values) + 1)), values   # no write lost or doubled
            assert json.loads(mc("inspect", name, check=True).stdout)[0]["State"]["Pid"] == pid
            if pool == img:                                       # left the default pool: emptied
                assert glob.glob(f"{host_data}/*") == []
            if pool == dirpool:
                assert (tmp_path / "pool" / vol / "sub" / "f").read_text() == "hello\n"
        assert not (tmp_path / "pool" / vol).exists()
        assert open(f"{host_data}/counter").read().split()[:len(first)] == [str(i) for i in first]
    finally:
        mc("rm", "-f", name)
        mc("pod", "rm", "-f", pod)
        mc("volume", "rm", vol)
        mc("volume", "pool", "rm", img, dirpool)
        from minicontainer.api import image_store
        for image in image_store(mc_root).list():         # the pod's pause image (as test_pods)
            if image.ref.startswith("minicontainer-pause"):
                image_store(mc_root).remove(image.ref)
    assert not loop_devices_of(image), "the loop pool's loop device outlived its last mount"


def test_a_container_started_on_a_loop_pool_sees_only_its_own_volume(mc, mc_root):
    tag = secrets.token_hex(3)
    pool, a, b = f"img-{tag}", f"a-{tag}", f"b-{tag}"
    mc("volume", "pool", "create", pool, "--size", "8m", check=True)
    try:
        mc("volume", "create", "--pool", pool, a, check=True)
        mc("volume", "create", "--pool", pool, b, check=True)
        mc("run", "--rm", "--net", "none", "-v", f"{a}:/data", "busybox", "sh", "-c",
           "echo in-a > /data/f", check=True)
        out = mc("run", "--rm", "--net", "none", "-v", f"{b}:/data", "-v", f"{a}:/a:ro", "busybox", "sh",
                 "-c", "ls -A /data; cat /a/f; grep ' /a ' /proc/mounts; touch /a/x", ).stdout
        assert out.splitlines()[0] == "in-a" and " ext4 ro," in out, out     # b is empty, a is a only
        used = json.loads(mc("volume", "pool", "ls", "--format", "json", check=True).stdout)
        image = next(p["Path"] for p in used if p["Name"] == pool and p["Driver"] == "loop")
        assert not loop_devices_of(image), "a loop device outlived the containers"
        from minicontainer.storage.volumes import volume_store
        store = volume_store(mc_root)
        assert store.data_size(store.get(a)) == len("in-a\n")             # system df looks inside
    finally:
        mc("volume", "rm", a, b)
        mc("volume", "pool", "rm", pool)


def test_bad_pool_input_gets_one_line_and_changes_nothing(mc, mc_root, detached, tmp_path):
    tag = secrets.token_hex(3)
    small, vol, held = f"small-{tag}", f"big-{tag}", f"held-{tag}"
    mc("volume", "create", vol, check=True)
    data = json.loads(mc("volume", "inspect", vol, check=True).stdout)[0]["Mountpoint"]
    with open(f"{data}/big", "wb") as f:
        f.write(secrets.token_bytes(6 << 20))
    mc("volume", "pool", "create", small, "--size", "4m", check=True)
    try:
        one_line_125(p := mc("volume", "migrate", vol, "--to", "nowhere"))
        assert "no such pool: nowhere" in p.stderr
        one_line_125(p := mc("volume", "migrate", vol, "--to", small))
        assert "too small" in p.stderr
        one_line_125(mc("volume", "migrate", vol, "--to", "default"))
        one_line_125(mc("volume", "create", "--pool", "nowhere", f"x-{tag}"))
        assert f"x-{tag}" not in mc("volume", "ls", check=True).stdout
        one_line_125(mc("volume", "pool", "create", f"p-{tag}"))
        one_line_125(mc("volume", "pool", "create", f"p-{tag}", "--size", "1m"))
        one_line_125(mc("volume", "pool", "rm", "default"))
        one_line_125(mc("volume", "pool", "create", small, "--path", str(tmp_path)))
        assert f"p-{tag}" not in mc("volume", "pool", "ls", check=True).stdout

        # A file held open on the volume would keep writing to the old copy: refused, unchanged.
        detached("-v", f"{vol}:/data", "busybox", "sh", "-c", "exec 3>>/data/held; sleep 1000", name=held)
        mc("volume", "pool", "create", f"roomy-{tag}", "--size", "16m", check=True)
        one_line_125(p := mc("volume", "migrate", vol, "--to", f"roomy-{tag}"))
        assert "/data/held open" in p.stderr, p.stderr
        assert mc("exec", held, "true").returncode == 0
        assert json.loads(mc("volume", "inspect", vol, check=True).stdout)[0]["Pool"] == "default"
        assert sorted(p.split("/")[-1] for p in glob.glob(f"{data}/*")) == ["big", "held"]
        mc("rm", "-f", held, check=True)
        from minicontainer.storage.pools import PoolStore, pool_root
        pools = PoolStore(mc_root)
        with pool_root(pools.get(f"roomy-{tag}"), pools) as root:    # what an interrupted migrate leaves
            (root / vol).mkdir()
            (root / vol / "stale").write_text("x")
        mc("volume", "migrate", vol, "--to", f"roomy-{tag}", check=True)
        with pool_root(pools.get(f"roomy-{tag}"), pools) as root:
            assert sorted(os.listdir(root / vol)) == ["big", "held"]
        one_line_125(p := mc("volume", "pool", "rm", f"roomy-{tag}"))
        assert vol in p.stderr
    finally:
        mc("rm", "-f", held)
        mc("volume", "rm", vol)
        mc("volume", "pool", "rm", small, f"roomy-{tag}")
