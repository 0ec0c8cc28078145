"""`minicontainer gc` (issue 4): after the CLI or a supervisor is SIGKILLed at any step of the
run sequence, gc leaves nothing behind — the mount table, the cgroups, the network interfaces
and the state directory are as they were before the run.

The kill comes from inside: MC_TEST_CRASH_AT=TITLE makes the run sequence SIGKILL its owner
(the CLI, or the supervisor with -d) when it announces the step TITLE (gc.CrashingExplainer);
a step in a child process goes on, orphaned, as after a real crash.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from test_lifecycle import record, until

pytestmark = pytest.mark.root

# Every step the run sequence announces (a prefix of its --explain title), in order. A new step
# makes test_every_step_is_covered fail: add it here, and it is crash-tested too.
CRASH_STEPS = [
    "create the container's cgroup",
    "fork a setup child",
    "create new namespaces",
    "join the cgroup",                          # the setup child, while the parent…
    "connect the container to network",         # …attaches the network
    "create a cgroup namespace",
    "make every mount private",
    "mount the container's root filesystem",
    "mount proc on /proc",
    "mount sysfs on /sys",
    "mount tmpfs on /sys/fs/cgroup",
    "mount cgroup",                             # (each hierarchy: crashed at the first)
    "mount tmpfs on /dev",
    "mount devpts on /dev/pts",
    "mount tmpfs on /dev/shm",
    "mount mqueue on /dev/mqueue",
    "bind /etc/hosts",
    "bind the init program",
    "set the hostname",
    "bring up the loopback interface",
    "switch the root mount with pivot_root",
    "leave your terminal's session",
    "hide ",
    "make the kernel's settings read-only",
    "forbid gaining privileges",
    "drop capabilities",
    "install the seccomp filter",
    "execute the command",
]
RUN_ARGS = ["--init", "busybox", "sleep", "30"]     # --init: its mount step is crashed too


def cli(mc_root, *args):
    return [sys.executable, "-m", "minicontainer", "--root", str(mc_root), *args]


def snapshot(mc_root) -> dict:
    """What a run may leave behind, as the host sees it."""
    from minicontainer.network import NetworkStore
    from minicontainer.network import ipam
    nets = NetworkStore(mc_root / "networks")
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(" ".join(l.split()[3:5]) for l in f)
    return {"mounts": mounts,
            "links": sorted(name for _, name in socket.if_nameindex()),
            "state": sorted(os.listdir(mc_root / "containers")),
            "leases": {n: ipam.read_json(nets.leases_path(n), {}) for n in nets.names()}}


@pytest.fixture
def warm(mc_root):
    """A normal run first, so the default bridge mc0 exists (it stays, as docker0 does); then
    wait until the veths of containers that are gone have gone too — the kernel destroys a
    network namespace, and the veth pairs in it, a moment after its last process exits."""
    from minicontainer.gc import wait_for_interfaces_to_go
    subprocess.run(cli(mc_root, "run", "--rm", "busybox", "true"), check=True, capture_output=True)
    live = os.listdir(mc_root / "containers")
    stale = [name[2:] for _, name in socket.if_nameindex()
             if name.startswith("mc") and len(name) == 14 and not any(c.startswith(name[2:]) for c in live)]
    wait_for_interfaces_to_go(stale)


def assert_no_residue(mc_root, before: dict, ids: list[str]) -> None:
    from minicontainer.cgroups import list_cgroups
    from minicontainer.gc import mounts_of
    from minicontainer.state import StateStore
    assert snapshot(mc_root) == before
    assert not set(ids) & set(list_cgroups()), "a cgroup is left"
    assert not mounts_of(StateStore(mc_root), ids), "a mount namespace still holds the container's mounts"


def crash_run(mc_root, tmp_path, step: str, detach: bool):
    """Run with the crash hook; the IDs of what it created."""
    before_ids = set(os.listdir(mc_root / "containers"))
    env = dict(os.environ, MC_TEST_CRASH_AT=step)
    with open(tmp_path / "out", "wb") as out:          # not pipes: an orphaned PID 1 keeps them open
        p = subprocess.run(cli(mc_root, "run", *(["-d"] if detach else []), *RUN_ARGS),
                           env=env, stdout=out, stderr=out, timeout=60)
    text = (tmp_path / "out").read_text(errors="replace")
    if detach:
        assert p.returncode == 125 and "supervisor exited" in text, text
    else:
        assert p.returncode == -signal.SIGKILL, text
    return sorted(set(os.listdir(mc_root / "containers")) - before_ids)


@pytest.mark.parametrize("detach", [False, True], ids=["cli", "supervisor"])
@pytest.mark.parametrize("step", CRASH_STEPS)
def test_gc_after_a_crash_at_each_step(mc, mc_root, tmp_path, warm, step, detach):
    before = snapshot(mc_root)
    ids = crash_run(mc_root, tmp_path, step, detach)
    assert ids, "the run left no record: the kill came too early to test anything"
    report = mc("gc", check=True).stdout
    assert f"removed container {ids[0][:12]}" in report, report
    assert_no_residue(mc_root, before, ids)


def test_every_step_is_covered(mc):
    err = mc("run", "--rm", "--explain", *RUN_ARGS[:-2], "true", check=True).stderr
    titles = [line.split("] ", 1)[1] for line in err.splitlines() if line.startswith("▸ [")]
    assert titles
    missing = [t for t in titles if not any(t.startswith(s) for s in CRASH_STEPS)]
    assert not missing, f"new steps in the run sequence: add them to CRASH_STEPS: {missing}"


def test_gc_after_a_crash_with_a_terminal(mc, mc_root, tmp_path, warm):
    """-t has one more step in PID 1 (the pty); the CLI dies there."""
    before = snapshot(mc_root)
    before_ids = set(os.listdir(mc_root / "containers"))
    env = dict(os.environ, MC_TEST_CRASH_AT="open a pseudo-terminal")
    with open(tmp_path / "out", "wb") as out:
        p = subprocess.run(cli(mc_root, "run", "-t", "busybox", "sleep", "30"), env=env,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60)
    assert p.returncode == -signal.SIGKILL
    ids = sorted(set(os.listdir(mc_root / "containers")) - before_ids)
    assert ids and "removed container" in mc("gc", check=True).stdout
    assert_no_residue(mc_root, before, ids)


@pytest.mark.parametrize("detach", [False, True], ids=["cli", "supervisor"])
def test_gc_after_the_owner_is_killed_while_running(mc, mc_root, warm, detach):
    """The container runs; its CLI (or supervisor) is SIGKILLed: PID 1 runs on, orphaned."""
    before = snapshot(mc_root)
    name = f"gc-run-{detach}"
    if detach:
        mc("run", "-d", "--name", name, "busybox", "sleep", "30", check=True)
        proc = None
    else:
        proc = subprocess.Popen(cli(mc_root, "run", "--name", name, "busybox", "sleep", "30"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until(lambda: any(r.name == name and r.status == "running" for r in store(mc_root).list()),
              what="running")
    rec = record(mc_root, name)
    os.kill(rec.supervisor_pid, signal.SIGKILL)
    if proc:
        proc.wait()
    from minicontainer.state import is_alive
    until(lambda: not is_alive(rec.supervisor_pid, rec.supervisor_start), what="the owner gone")
    assert is_alive(rec.pid, rec.pid_start)                          # PID 1 runs on
    assert json.loads(mc("ps", "--format", "json", check=True).stdout)[0]["name"] == name
    assert f"removed container {rec.short_id}" in mc("gc", check=True).stdout
    assert not is_alive(rec.pid, rec.pid_start)
    assert_no_residue(mc_root, before, [rec.id])


def test_gc_after_the_supervisor_is_killed_during_a_restart(mc, mc_root, warm):
    before = snapshot(mc_root)
    mc("run", "-d", "--name", "gc-rs", "--restart", "always", "busybox", "sh", "-c", "exit 1", check=True)
    until(lambda: record(mc_root, "gc-rs").restart_count >= 3, what="restarts")
    rec = record(mc_root, "gc-rs")
    os.kill(rec.supervisor_pid, signal.SIGKILL)
    mc("gc", check=True)
    assert_no_residue(mc_root, before, [rec.id])


def store(mc_root):
    from minicontainer.state import StateStore
    return StateStore(mc_root)


def test_gc_dry_run_lists_and_keeps(mc, mc_root, tmp_path, warm):
    before = snapshot(mc_root)
    ids = crash_run(mc_root, tmp_path, "execute the command", detach=False)
    listed = mc("gc", "--dry-run", check=True).stdout
    assert f"would remove container {ids[0][:12]}" in listed
    assert ids[0] in os.listdir(mc_root / "containers")              # still there
    assert record(mc_root, ids[0]).status == "created"
    assert f"removed container {ids[0][:12]}" in mc("system", "prune", "-f", check=True).stdout
    assert_no_residue(mc_root, before, ids)


def test_gc_keeps_running_and_exited_containers(mc, mc_root, detached):
    detached("busybox", "sleep", "30", name="gc-keep-up")
    detached("busybox", "true", name="gc-keep-done")
    until(lambda: record(mc_root, "gc-keep-done").status == "exited", what="exit")
    until(lambda: not owner_alive(mc_root, "gc-keep-done"), what="supervisor done")
    report = mc("gc", check=True).stdout
    assert "gc-keep" not in report
    assert {"gc-keep-up", "gc-keep-done"} <= {r.name for r in store(mc_root).list()}
    # system prune: exited containers go too (as Docker's), running ones stay
    p = mc("system", "prune")
    assert p.returncode == 125 and "-f" in p.stderr                  # no terminal to ask: needs -f
    assert "gc-keep-done" in mc("system", "prune", "-f", check=True).stdout
    assert [r.name for r in store(mc_root).list() if r.name.startswith("gc-keep")] == ["gc-keep-up"]


def owner_alive(mc_root, name):
    from minicontainer.lifecycle import owner_alive as alive
    return alive(record(mc_root, name))


def test_gc_after_a_reboot(mc, mc_root):
    """After a reboot every recorded PID is from the last boot: the start times do not match."""
    from minicontainer.state import ContainerRecord
    s = store(mc_root)
    rec = ContainerRecord(id="b007" * 16, name="gc-reboot", image="busybox:latest", command=["sh"],
                          created=time.time() - 3600, status="running", pid=1, pid_start=12345,
                          supervisor_pid=1, supervisor_start=12345, cgroup="b007" * 16)
    s.container_dir(rec.id).mkdir()
    for d in ("upper", "work", "merged"):
        (s.container_dir(rec.id) / d).mkdir()
    s.save(rec)
    assert json.loads(mc("ps", "-a", "--format", "json", check=True).stdout)[-1]["status"] == "dead"
    assert "Dead" in mc("ps", "-a", check=True).stdout
    assert "removed container b007b007b007" in mc("gc", check=True).stdout
    assert not s.container_dir(rec.id).exists()


def test_gc_half_made_directories(mc, mc_root):
    half_made = mc_root / "containers" / ("ab" * 32)
    half_removed = mc_root / "containers" / ".removing-xyz-1"
    for d in (half_made / "upper", half_removed / "upper"):
        d.mkdir(parents=True)
    listed = mc("gc", "--dry-run", check=True).stdout
    assert str(half_made) in listed and str(half_removed) in listed
    mc("gc", check=True)
    assert not half_made.exists() and not half_removed.exists()


def test_gc_unrecorded_cgroups():
    """A group no record names: removed when empty (and not brand new); kept with processes,
    since it may belong to a container of another --root."""
    from minicontainer.cgroups import create_cgroup, open_cgroup
    from minicontainer.gc import Garbage, find_unrecorded_cgroups
    empty = create_cgroup(f"gctest-empty-{os.getpid()}")
    busy = create_cgroup(f"gctest-busy-{os.getpid()}")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        busy.add_process(sleeper.pid)
        found = Garbage()
        find_unrecorded_cgroups(set(), found, dry_run=True, min_age=3600)
        assert not any("gctest-empty" in c for c in found.cgroups)     # too young to be sure
        found = Garbage()
        find_unrecorded_cgroups(set(), found, dry_run=False, min_age=0)
        assert any(f"gctest-empty-{os.getpid()}" in c for c in found.cgroups)
        assert any(f"gctest-busy-{os.getpid()}" in s for s in found.skipped)
        assert open_cgroup(empty.id) is None and open_cgroup(busy.id) is not None
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
        busy.remove()
        empty.remove()
