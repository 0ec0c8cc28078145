"""Resource limits seen biting, through the CLI (issue 3). Runs on this host's cgroup v1 and,
unchanged, in the cgroup-v2 QEMU VM stage (tests/test_vm_cgroup2.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root


def running_record(mc_root, name, timeout=30.0):
    from minicontainer.state import StateStore, is_alive
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in StateStore(mc_root).list():
            if r.name == name and r.status == "running" and is_alive(r.pid, r.pid_start):
                return r
        time.sleep(0.02)
    raise AssertionError(f"container {name} did not start")


def stop(proc, mc_root, name):
    """SIGKILL the container's PID 1 from the host (a PID 1 ignores SIGTERM without a handler)."""
    from minicontainer.state import StateStore, is_alive
    rec = [r for r in StateStore(mc_root).list() if r.name == name]
    if rec and is_alive(rec[0].pid, rec[0].pid_start):
        os.kill(rec[0].pid, 9)
    assert proc.wait(timeout=10) == 137


def test_memory_limit_kills_a_hog(mc, mc_root):
    """dd with a 100 MiB buffer in a 32 MiB container: the OOM killer ends it, exit 137."""
    p = mc("run", "--name", "hog", "-m", "32m", "busybox", "dd", "if=/dev/zero", "of=/dev/null",
           "bs=100M", "count=1")
    try:
        assert p.returncode == 137, p.stderr
        assert "OOM killer" in p.stderr
        inspect = json.loads(mc("ps", "-a", "--format", "json", check=True).stdout)
        assert [c["oom_killed"] for c in inspect if c["name"] == "hog"] == [True]
    finally:
        mc("rm", "hog", check=True)


def test_memory_within_limit_is_fine(mc):
    assert mc("run", "--rm", "-m", "64m", "busybox", "dd", "if=/dev/zero", "of=/dev/null",
              "bs=8M", "count=2").returncode == 0


def test_pids_limit_stops_a_fork_bomb(mc):
    """40 background sleeps under --pids-limit 20: fork fails with EAGAIN (busybox sh gives
    up with status 2), and the container still ends — its sleepers die with its PID 1."""
    p = mc("run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c",
           "for i in $(seq 40); do sleep 1 & done; wait; echo done", timeout=60)
    assert p.returncode == 2 and "done" not in p.stdout
    assert "can't fork: Resource temporarily unavailable" in p.stderr
    assert subprocess.run(["true"]).returncode == 0          # the host still forks happily


def test_cpus_holds_a_busy_loop(mc_root):
    """--cpus 0.2: the cgroup's own CPU time is 20 % ± 5 % of the wall time."""
    from minicontainer.cgroups import open_cgroup
    proc = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "run", "--rm",
                             "--name", "spin", "--cpus", "0.2", "busybox", "sh", "-c", "while :; do :; done"])
    try:
        cg = open_cgroup(running_record(mc_root, "spin").cgroup)
        time.sleep(0.5)                                        # let the first periods settle
        u0, t0 = cg.stats()["cpu_usage_ns"], time.monotonic()
        time.sleep(3)
        u1, t1 = cg.stats()["cpu_usage_ns"], time.monotonic()
        share = (u1 - u0) / 1e9 / (t1 - t0)
        assert 0.15 <= share <= 0.25, share
    finally:
        stop(proc, mc_root, "spin")


@pytest.mark.vm_2cpus                                # in the VM stage: the boot with 2 vCPUs
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs to pin to CPU 1")
def test_cpuset_is_visible(mc):
    out = mc("run", "--rm", "--cpuset-cpus", "1", "busybox", "grep", "Cpus_allowed_list", "/proc/self/status",
             check=True).stdout
    assert out.split() == ["Cpus_allowed_list:", "1"]


def test_stats_shows_limits(mc, mc_root):
    proc = subprocess.Popen([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "run", "--rm",
                             "--name", "statme", "-m", "48m", "--pids-limit", "33", "busybox", "sleep", "30"])
    try:
        running_record(mc_root, "statme")
        rows = json.loads(mc("stats", "--no-stream", "--format", "json", "statme", check=True).stdout)
        assert rows[0]["name"] == "statme"
        assert rows[0]["memory_limit"] == 48 * 2**20 and rows[0]["pids_limit"] == 33
        assert rows[0]["pids"] == 1 and rows[0]["memory_usage"] > 0
        table = mc("stats", "--no-stream", "statme", check=True).stdout
        assert "48.0MiB" in table and "1 / 33" in table
    finally:
        stop(proc, mc_root, "statme")


def test_explain_shows_cgroup_files(mc):
    err = mc("run", "--rm", "--explain", "-m", "64m", "--pids-limit", "10", "busybox", "true").stderr
    assert "echo 67108864 > " in err and ("memory.max" in err or "memory.limit_in_bytes" in err)
    assert "echo 10 > " in err and "pids.max" in err


def test_cgroup_removed_after_exit(mc, mc_root):
    from minicontainer.cgroups import list_cgroups
    before = set(list_cgroups())
    mc("run", "--rm", "-m", "32m", "busybox", "true", check=True)
    mc("run", "--rm", "busybox", "false")
    assert set(list_cgroups()) == before
