"""`minicontainer demo`: every demo runs through with --auto against real containers, and leaves
nothing behind (no container, no image, no cgroup); without --auto it pauses for Enter.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from minicontainer.demos import DEMOS

pytestmark = pytest.mark.root

# What each demo must have shown, beyond finishing: the lesson's evidence.
EVIDENCE = {
    "chroot-escape": ["the host's secret", "No such file or directory"],
    "pid-namespace": ["in the container (ps)", "→  container PID 1"],
    "fork-bomb": ["pids.current", "the host still forks"],
    "oom": ["OOM killer", "\n137\n", "done"],
    "fifty-containers": ["all 50 running", "0 failed"],
    "snapshot": ["D /bin/ls", "version 1"],
    "vm-vs-container": ["hello from the VM", "hello from a container"],
    "live-migration": ["the counter across the migration", "downtime", "after the restore"],
    "self-healing": ["3 Running after", "Running again after", "ScalingReplicaSet"],
    "autoscale": ["SuccessfulRescale", "above target", "below target"],
    "failover": ["NotReady after", "requests through the Service", "balanced"],
    "migrate": ["downtime", "migrated node1 → node2"],
}


def run_demo(mc_root, *args, input=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(mc_root), "demo", *args],
                          capture_output=True, text=True, timeout=timeout, input=input,
                          env={**os.environ, "NO_COLOR": "1"})


def image_names(mc_root) -> set[str]:
    return {p.name for p in (mc_root / "images").iterdir()} if (mc_root / "images").is_dir() else set()


@pytest.mark.parametrize("name", list(DEMOS))
def test_demo_runs_through_with_auto(name, mc_root):
    if name == "vm-vs-container" and shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/setup.sh installs it)")
    if name == "live-migration" and os.environ.get("MC_SKIP_VM") == "1" and os.environ.get("CI") != "true":
        pytest.skip("boots a QEMU VM: MC_SKIP_VM=1 is set")
    images = image_names(mc_root)
    proc = run_demo(mc_root, name, "--auto")
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.rstrip().endswith("(end of demo)")
    assert "▶ 1." in proc.stdout and "[Enter" not in proc.stdout
    for evidence in EVIDENCE[name]:
        assert evidence in proc.stdout, f"{name} did not show {evidence!r}:\n{proc.stdout}"
    if name == "chroot-escape":                  # the warning comes first, as on a terminal
        step3 = proc.stdout.split("▶ 3.")[1]
        assert step3.index("warning: --isolation chroot") < step3.index("the host's secret")
        assert "execv(argv[1]" not in proc.stdout, "the demo shows lab 01's answer whole"
    assert image_names(mc_root) == images, "the demo left an image behind"
    leftovers = [p.name for p in (mc_root / "containers").glob("*") if not p.name.startswith(".")]
    assert not leftovers, f"the demo left containers behind: {leftovers}"
    assert not list((mc_root / "vms").glob("*")), "the demo left a VM behind"


def test_every_demo_is_listed(mc_root):
    proc = run_demo(mc_root, "list")
    assert proc.returncode == 0
    assert [line.split()[0] for line in proc.stdout.splitlines()] == list(DEMOS)


def test_unknown_demo_is_one_line(mc_root):
    proc = run_demo(mc_root, "no-such-demo")
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1 and "demo list" in proc.stderr


def test_without_auto_it_pauses_for_enter(mc_root):
    """Each step waits for a line on stdin; at end of input the demo carries on by itself."""
    proc = run_demo(mc_root, "oom", input="\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("[Enter: next step]") == 2      # one Enter read, then EOF: --auto from there
    assert proc.stdout.rstrip().endswith("(end of demo)")
