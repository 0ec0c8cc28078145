"""`minicontainer gc` (issue 4): after the CLI or a supervisor is SIGKILLed at any step of the
run sequence, gc leaves nothing behind — the mount table, the cgroups, the network interfaces
and the state directory are as they were before the run.

The kill comes from inside: tests/crashing_explainer.py runs a container whose explainer SIGKILLs
the run's owner (that process, or the supervisor with -d) when the run sequence announces the
step TITLE; a step in a child process goes on, orphaned, as after a real crash.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
    "fork PID 1 of the new PID namespace",
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
    "bind /etc/resolv.conf",
    "bind /etc/hostname",
    "bind /dev/init",
    "create the devices",
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


def crashing(mc_root, step: str, *args):
    """`run ARGS`, its owner SIGKILLed at STEP (tests/crashing_explainer.py)."""
    return [sys.executable, str(Path(__file__).with_name("crashing_explainer.py")), str(mc_root), step, *args]


def snapshot(mc_root) -> dict:
    """What a run may leave behind, as the host sees it."""
    from minicontainer.network import NetworkStore
    nets = NetworkStore(mc_root / "networks")
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(" ".join(l.split()[3:5]) for l in f)
    return {"mounts": mounts,
            "links": sorted(name for _, name in socket.if_nameindex()),
            "state": sorted(os.listdir(mc_root / "containers")),
            "leases": {n: nets.leases(n) for n in nets.names()}}


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
    with open(tmp_path / "out", "wb") as out:          # not pipes: an orphaned PID 1 keeps them open
        p = subprocess.run(crashing(mc_root, step, *(["-d"] if detach else []), *RUN_ARGS),
                           stdout=out, stderr=out, timeout=60)
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
    with open(tmp_path / "out", "wb") as out:
        p = subprocess.run(crashing(mc_root, "open a pseudo-terminal", "-t", "busybox", "sleep", "30"),
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
    from minicontainer.status import owner_alive as alive
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


# ── gc in-process against a root of its own: races and items that cannot go ──────────────

@pytest.fixture
def own_root(tmp_path, monkeypatch):
    """A state root for one test; gc.collect() runs in this process. Its sweeps of the cgroup
    tree and of the links are turned off: those are the whole test session's."""
    from minicontainer import gc
    monkeypatch.setattr(gc, "find_unrecorded_cgroups", lambda *a, **k: None)
    monkeypatch.setattr(gc, "find_interfaces", lambda *a, **k: None)
    return tmp_path / "root"


ME = {"supervisor_pid": os.getpid()}                # an owner that is alive: this process
GONE = {"supervisor_pid": 1, "supervisor_start": 12345}   # …and one that is not


def make_record(root, name, status="running", **fields):
    """A record as the run sequence writes it, with its overlay directories."""
    from minicontainer.state import ContainerRecord, StateStore, proc_start_time
    s = StateStore(root)
    if fields.get("supervisor_pid") == os.getpid():
        fields["supervisor_start"] = proc_start_time(os.getpid())
    rec = ContainerRecord(id=os.urandom(32).hex(), name=name, image="busybox:latest", command=["sh"],
                          created=time.time(), status=status, **fields)
    for d in ("upper", "work", "merged"):
        (s.container_dir(rec.id) / d).mkdir(parents=True)
    s.save(rec)
    return rec


def test_gc_keeps_the_lease_of_a_container_started_meanwhile(own_root, monkeypatch):
    """gc reads the records first but releases leases much later (after killing orphans, up to
    seconds each). A container started in between — `run -d`, or a --restart relaunch whose
    record gc saw as exited — must keep its address. The race is made by a hook: the starts
    happen while gc looks for half-made directories, after it has read the records."""
    from minicontainer import gc
    from minicontainer.network import NetworkStore
    nets = NetworkStore(own_root / "networks")
    relaunch = make_record(own_root, "gc-relaunch", status="exited", **ME)   # supervisor backs off
    dead = make_record(own_root, "gc-dead", status="exited", **GONE)
    nets.get().plan(dead.id, name="gc-dead")                   # its teardown was cut short
    nets.get().plan("ee" * 32)                                 # a lease without a record
    late = []
    real = gc.find_directories

    def start_meanwhile(*args):
        late.append(make_record(own_root, "gc-late", status="created", **ME))   # record, then lease
        nets.get().plan(late[0].id, name="gc-late")
        nets.get().plan(relaunch.id, name="gc-relaunch")
        real(*args)
    monkeypatch.setattr(gc, "find_directories", start_meanwhile)
    found = gc.collect(own_root)
    leases = nets.get().leases()
    try:
        assert set(leases) == {late[0].id, relaunch.id}, found.lines(False)
        assert sorted(found.leases) == sorted(f"network lease of {c[:12]} on bridge" for c in (dead.id, "ee" * 32))
        assert not found.containers
    finally:
        for lease in leases.values():
            nets.detach(lease)


def hold_mount(path):
    """A process in a mount namespace of its own with a tmpfs on `path` (as an orphaned PID 1
    holds its overlay); never the test session's mount table."""
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             'mount -t tmpfs tmpfs "$1" && echo mounted && exec sleep 60 >&-',
                             "sh", str(path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"mounted\n"
    proc.stdout.close()
    return proc


def test_gc_kills_an_orphan_without_cgroup_or_pid(own_root):
    """Rootless without a delegated cgroup, the CLI killed after forking PID 1 but before it
    recorded its PID: only the mount table tells who still runs. gc must kill it and wait
    before it deletes the overlay under it."""
    from minicontainer import gc
    from minicontainer.state import StateStore
    rec = make_record(own_root, "gc-nocg", **GONE)              # cgroup "", pid 0
    proc = hold_mount(StateStore(own_root).container_dir(rec.id) / "merged")
    try:
        found = gc.collect(own_root)
        assert proc.poll() == -signal.SIGKILL                  # gone before collect() returned
        assert [c for c in found.containers if rec.short_id in c] and not found.skipped
        assert not StateStore(own_root).container_dir(rec.id).exists() and not found.mounts
    finally:
        proc.kill()
        proc.wait()


def test_gc_keeps_an_orphan_whose_process_survives(own_root, monkeypatch):
    """A process in state D outlives SIGKILL. Faked here (no D state on demand): the signal is
    not sent. gc must keep the container — record and overlay — and say so."""
    from minicontainer import gc
    from minicontainer.state import StateStore
    rec = make_record(own_root, "gc-stuck", **GONE)
    other = make_record(own_root, "gc-other", **GONE)
    proc = hold_mount(StateStore(own_root).container_dir(rec.id) / "merged")
    monkeypatch.setattr(gc.signal, "pidfd_send_signal", lambda fd, sig: None)
    monkeypatch.setattr(gc, "KILL_TIMEOUT", 0.2, raising=False)
    try:
        found = gc.collect(own_root)
        assert proc.poll() is None
        assert any(rec.short_id in s and f"PID {proc.pid} is still there" in s for s in found.skipped), found.skipped
        assert StateStore(own_root).load(rec.id) is not None
        assert (StateStore(own_root).container_dir(rec.id) / "upper").is_dir()
        assert [c for c in found.containers if other.short_id in c]      # the rest still goes
        assert not [c for c in found.containers if rec.short_id in c]
    finally:
        proc.kill()
        proc.wait()
    assert rec.short_id in " ".join(gc.collect(own_root).containers)    # once it is gone: removed


def test_gc_when_pid1_exits_before_the_kill(own_root, monkeypatch):
    """PID 1 alive when gc looks, gone when it kills (ESRCH): not an error."""
    from minicontainer import gc
    exited = subprocess.Popen(["true"])
    exited.wait()
    rec = make_record(own_root, "gc-esrch", pid=exited.pid, pid_start=42, **GONE)
    real = gc.is_alive
    monkeypatch.setattr(gc, "is_alive", lambda pid, start: pid == exited.pid or real(pid, start))
    found = gc.collect(own_root)
    assert [c for c in found.containers if rec.short_id in c] and not found.skipped


def test_gc_goes_on_after_one_orphan_fails(own_root, monkeypatch):
    """A CgroupError from one orphan (its cgroup will not empty: a process in state D) —
    injected into runtime.teardown — is reported; the other orphan is still removed."""
    from minicontainer import gc, runtime
    from minicontainer.errors import CgroupError
    from minicontainer.state import StateStore
    bad = make_record(own_root, "gc-bad", **GONE)
    good = make_record(own_root, "gc-good", **GONE)
    real = runtime.teardown

    def teardown(ctx):
        if ctx.record.id == bad.id:
            raise CgroupError("cgroup /minicontainer/x: a process did not die (state D?)")
        real(ctx)
    monkeypatch.setattr(runtime, "teardown", teardown)
    found = gc.collect(own_root)
    assert [s for s in found.skipped if bad.short_id in s and "did not die" in s]
    assert [c for c in found.containers if good.short_id in c]
    assert StateStore(own_root).load(good.id) is None and StateStore(own_root).load(bad.id) is not None


def test_gc_unrecorded_cgroup_removed_meanwhile(monkeypatch):
    """Another --root's rm (or gc) removes a group between gc's look at its processes and at
    its age: nothing to do for that one, and the others still go."""
    from minicontainer import gc
    from minicontainer.cgroups import create_cgroup, open_cgroup
    vanishing = create_cgroup(f"gctest-a-vanish-{os.getpid()}")
    empty = create_cgroup(f"gctest-b-empty-{os.getpid()}")
    real = gc.open_cgroup

    def opened(name, tree=""):
        cgroup = real(name, tree)
        if cgroup is not None and name == vanishing.id:
            procs = cgroup.procs
            cgroup.procs = lambda: (procs(), vanishing.remove())[0]
        return cgroup
    monkeypatch.setattr(gc, "open_cgroup", opened)
    try:
        found = gc.Garbage()
        gc.find_unrecorded_cgroups(set(), found, dry_run=False, min_age=0)
        assert any(empty.id in c for c in found.cgroups)
        assert not any(vanishing.id in c for c in found.cgroups + found.skipped)
        assert open_cgroup(empty.id) is None and open_cgroup(vanishing.id) is None
    finally:
        vanishing.remove()
        empty.remove()


@pytest.mark.parametrize("fallback_works", [True, False])
def test_gc_half_removed_directory_of_subordinate_uids(tmp_path, monkeypatch, fallback_works):
    """Rootless, a .removing-* directory holds files of the container's other users, which
    rm -rf as the user cannot delete (faked: rmtree does nothing, euid is not 0). gc must use
    userns.remove_tree as StateStore.delete does, and say "removed" only if it is gone."""
    import shutil
    import types
    from minicontainer import gc, userns
    from minicontainer.state import StateStore
    s = StateStore(tmp_path)
    half = s.dir / ".removing-xyz-1"
    (half / "upper").mkdir(parents=True)
    (half / "upper" / "file").write_text("owned by uid 100999")
    used = []
    monkeypatch.setattr(gc, "shutil", types.SimpleNamespace(rmtree=lambda *a, **k: None))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(userns, "remove_tree", lambda path: used.append(path) or (
        fallback_works and shutil.rmtree(path)))
    found = gc.Garbage()
    gc.find_directories(s, found, dry_run=False)
    assert used == [half]
    if fallback_works:
        assert not half.exists() and found.directories == [f"directory {half}"]
    else:
        assert half.exists() and not found.directories
        assert [x for x in found.skipped if str(half) in x and "could not be removed" in x]


def test_gc_keeps_a_bridge_that_is_being_set_up():
    """Another --root's start has made its bridge (with its address) and not yet plugged in
    its first veth: gc sees one of our bridges with no port, but a young one."""
    from minicontainer.network.bridge import ensure_bridge
    from minicontainer.network.live import find_leftovers
    from minicontainer.network.netlink import Netlink
    with Netlink() as nl:
        ensure_bridge(nl, "mc-gcyoung", "10.233.0.1", 24)
    try:
        (young,) = [l for l in find_leftovers(set(), set()) if l.name == "mc-gcyoung"]
        assert not young.removable and "ago" in young.why
        (old,) = [l for l in find_leftovers(set(), set(), min_age=0) if l.name == "mc-gcyoung"]
        assert old.removable
    finally:
        subprocess.run(["ip", "link", "del", "mc-gcyoung"], capture_output=True)


def test_mounts_of_a_root_with_a_space(tmp_path):
    """mountinfo writes a space as \\040: a state root "/…/with space" must still match."""
    from minicontainer import gc
    from minicontainer.state import StateStore
    s = StateStore(tmp_path / "with space")
    cid = "cd" * 32
    (s.container_dir(cid) / "merged").mkdir(parents=True)
    proc = hold_mount(s.container_dir(cid) / "merged")
    try:
        assert gc.mounts_of(s, [cid]) == [f"{s.container_dir(cid)} in the mount namespace of PID {proc.pid}"]
        assert gc.processes_with_mounts_of(str(s.container_dir(cid))) == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
