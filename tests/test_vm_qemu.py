"""`minicontainer vm`: real QEMU guests (TCG here), driven through QMP.

ONE busybox VM (256 MiB) boots for the whole module — a TCG boot costs 15-40 s on a busy machine —
and every test uses it in turn: internal snapshot and restore, an external snapshot while the guest
writes, live migration to a second QEMU, storage migration, the bad inputs, then removal. The guest's
init prints "tick N" on its console once a second and syncs N to its disk (minicontainer/vm/
guest_init.sh); the tests read the console log. Timings are printed (pytest -s), never asserted.
Skipped with MC_SKIP_VM=1 (like the cgroup-v2 stage), never in CI.
"""
import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root]
IN_CI = os.environ.get("CI") == "true"
VM = "t1"
TICK = re.compile(r"tick (\d+)")


def why_skip() -> str:
    from minicontainer.errors import VmError
    from minicontainer.vm.bootfiles import boot_files
    if os.environ.get("MC_SKIP_VM") == "1":
        return "MC_SKIP_VM=1 is set"
    if os.environ.get("MC_IN_VM") == "1":
        return "inside the cgroup-v2 VM already"
    if os.geteuid() != 0:
        return "needs root"
    try:
        boot_files()
    except VmError as e:
        return str(e)
    return ""


class Guest:
    """The shared VM: the CLI against the session root, and its console log."""

    def __init__(self, root: Path):
        self.root = root
        self.log = root / "vms" / VM / "console.log"
        self.figures = {}

    def cli(self, *args, timeout=300):
        return subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(self.root), *args],
                              capture_output=True, text=True, timeout=timeout)

    def ok(self, *args, timeout=300) -> str:
        proc = self.cli(*args, timeout=timeout)
        assert proc.returncode == 0, f"vm {' '.join(args)} → {proc.returncode}: {proc.stderr}"
        return proc.stdout

    def offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def ticks(self, after: int = 0) -> list[int]:
        return [int(n) for n in TICK.findall(self.log.read_bytes()[after:].decode(errors="replace"))]

    def wait_ticks(self, count: int, after: int = 0, timeout: float = 180) -> list[int]:
        deadline = time.monotonic() + timeout
        while len(ticks := self.ticks(after)) < count:
            assert time.monotonic() < deadline, f"fewer than {count} ticks in {timeout} s:\n" \
                                                f"{self.log.read_text(errors='replace')[-2000:]}"
            time.sleep(0.1)
        return ticks

    def record(self):
        from minicontainer.vm.machine import VmStore
        return VmStore(self.root).load(VM)


def assert_counts_on(ticks: list[int]) -> None:
    """Never backwards, never stuck, at most one tick skipped."""
    steps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert steps and all(1 <= s <= 2 for s in steps), f"counter went {ticks}"


@pytest.fixture(scope="module")
def guest(mc_root):
    reason = why_skip()
    if reason and IN_CI and "MC_SKIP_VM" not in reason:
        pytest.fail(f"the vm tests must run in CI, but {reason}", pytrace=False)
    if reason:
        pytest.skip(f"vm tests skipped: {reason}")
    g = Guest(mc_root)
    started = time.monotonic()
    g.ok("vm", "create", VM, "--memory", "256", "--disk", "512M")
    g.figures["create_s"] = time.monotonic() - started
    g.ok("vm", "start", VM)
    g.wait_ticks(1)
    g.figures["create_boot_s"] = time.monotonic() - started
    print(f"\nvm: create {g.figures['create_s']:.1f} s, create + boot to the first tick "
          f"{g.figures['create_boot_s']:.1f} s")
    yield g
    g.cli("vm", "rm", "-f", VM)
    assert_nothing_left(g)


def assert_nothing_left(g: Guest) -> None:
    assert not list((g.root / "vms").glob("*")), "VM files left behind"
    procs = subprocess.run(["pgrep", "-af", str(g.root / "vms")], capture_output=True, text=True).stdout
    assert not procs.strip(), f"QEMU left running: {procs}"


def test_vm_runs_and_is_listed(guest):
    ls = guest.ok("vm", "ls")
    line = next(line for line in ls.splitlines() if line.startswith(VM))
    assert "running" in line and re.search(r"\b(kvm|tcg)\b", line) and "disk.qcow2" in line, ls
    assert_counts_on(guest.wait_ticks(3))


def test_internal_snapshot_restore_goes_back_with_ram(guest):
    started = time.monotonic()
    out = guest.ok("vm", "snapshot", "create", VM, "s1")
    guest.figures["savevm_s"] = float(re.search(r"in ([\d.]+) s", out).group(1))
    at_snapshot = guest.ticks()[-1]
    after = guest.offset()
    later = guest.wait_ticks(3, after)[-1]
    assert "s1" in guest.ok("vm", "snapshot", "ls", VM)
    out = guest.ok("vm", "snapshot", "restore", VM, "s1")
    restored_at = guest.offset()         # (ticks printed while the load ran are the old timeline's)
    guest.figures["loadvm_s"] = float(re.search(r"in ([\d.]+) s", out).group(1))
    first_after = guest.wait_ticks(1, restored_at)[0]
    print(f"\nvm: savevm {guest.figures['savevm_s']:.2f} s at tick {at_snapshot}; ran on to {later}; "
          f"loadvm {guest.figures['loadvm_s']:.2f} s; next tick {first_after} "
          f"({time.monotonic() - started:.1f} s)")
    # The tick read just after the save may be the first one the snapshot had not printed yet.
    assert at_snapshot - 1 <= first_after <= at_snapshot + 2 < later, (at_snapshot, later, first_after)


def test_external_snapshot_keeps_the_base_image(guest):
    base = guest.root / "vms" / VM / "disk.qcow2"
    out = guest.ok("vm", "snapshot", "create", VM, "e1", "--external")
    before = hashlib.sha256(base.read_bytes()).hexdigest()     # the disk as it was at the snapshot
    assert "overlay-1.qcow2" in out and f"backing: {base}" in out, out
    after = guest.offset()
    written = guest.wait_ticks(3, after)                         # each tick is written + synced
    assert hashlib.sha256(base.read_bytes()).hexdigest() == before
    chain = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", str(base.parent / "overlay-1.qcow2")],
                           capture_output=True, text=True, check=True).stdout
    assert f"backing file: {base}" in chain, chain
    print(f"\nvm: base {base.name} sha256 {before[:16]}… unchanged while the guest wrote ticks {written}")


def test_live_migration_keeps_the_counter_going(guest):
    """Twice: into a network namespace of its own (the stream crosses a veth pair over TCP, a
    stand-in for another host), then back over a unix socket."""
    old_pid = guest.record().pid
    before = guest.offset()
    guest.wait_ticks(2, before)
    out = guest.ok("vm", "migrate", VM, "--to", "netns")
    moved = guest.record()
    assert moved.pid != old_pid and moved.running
    assert os.readlink(f"/proc/{moved.pid}/ns/net") != os.readlink("/proc/self/ns/net")
    assert "over veth mcmig" in out and "mcmig" not in subprocess.run(["ip", "link"], capture_output=True,
                                                                        text=True).stdout, "a veth was left"
    guest.wait_ticks(len(guest.ticks(before)) + 2, before)
    back = guest.ok("vm", "migrate", VM, "--to", "localhost")
    ticks = guest.wait_ticks(len(guest.ticks(before)) + 3, before)
    assert_counts_on(ticks)
    assert re.search(r"downtime\s+(\d+) ms", out) and re.search(r"total time\s+(\d+) ms", out), out
    print(f"\nvm: live migration: {out.strip()}\nvm: and back: {back.strip()}\nvm: counter across both: {ticks}")
    assert not Path(f"/proc/{old_pid}").exists() or b"qemu" not in Path(f"/proc/{old_pid}/cmdline").read_bytes()
    assert not Path(f"/proc/{moved.pid}").exists() or b"qemu" not in Path(f"/proc/{moved.pid}/cmdline").read_bytes()


def test_storage_migrate_keeps_disk_identical_and_vm_running(guest, tmp_path):
    target = tmp_path / "moved.qcow2"
    before = guest.offset()
    guest.wait_ticks(1, before)
    out = guest.ok("vm", "storage-migrate", VM, "--to", str(target))
    assert "qemu-img compare: identical" in out, out
    ticks = guest.wait_ticks(len(guest.ticks(before)) + 3, before)
    assert_counts_on(ticks)
    rec = guest.record()
    assert rec.running and rec.disk == str(target) and target.exists()
    print(f"\nvm: storage migration: {out.strip()}; counter {ticks}")


def one_line_125(proc, *words):
    assert proc.returncode == 125, proc
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def test_bad_input_changes_nothing(guest, tmp_path):
    rec = guest.record()
    one_line_125(guest.cli("vm", "migrate", VM, "--to", "node7"), "node7", "not running")
    one_line_125(guest.cli("vm", "snapshot", "restore", VM, "nope"), "no snapshot 'nope'")
    one_line_125(guest.cli("vm", "start", "ghost"), "no VM named 'ghost'")
    one_line_125(guest.cli("vm", "create", VM), "exists already")
    one_line_125(guest.cli("vm", "create", "bad", "--image", "windows"), "unknown VM image")
    # Targets on a read-only and on a full file system (tmpfs mounts in the tests' own mount namespace).
    ro, full = tmp_path / "ro", tmp_path / "full"
    ro.mkdir(), full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64m", "tmpfs", str(ro)], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(full)], check=True)
    try:
        one_line_125(guest.cli("vm", "storage-migrate", VM, "--to", str(ro / "d.qcow2")), "read-only")
        one_line_125(guest.cli("vm", "storage-migrate", VM, "--to", str(full / "d.qcow2")), "MB free")
        assert not list(ro.iterdir()) and not list(full.iterdir())
    finally:
        subprocess.run(["umount", str(ro)]), subprocess.run(["umount", str(full)])
    after = guest.record()
    assert (after.pid, after.disk, after.chain) == (rec.pid, rec.disk, rec.chain) and after.running
    assert not (guest.root / "vms" / "bad").exists()


def test_qemu_missing_is_one_error(guest, monkeypatch):
    from minicontainer import api
    from minicontainer.errors import VmError
    from minicontainer.vm import qemu
    monkeypatch.setattr(qemu, "QEMU", "qemu-system-none-such")
    with pytest.raises(VmError, match="qemu-system-none-such is not installed"):
        api.create_vm("noqemu", root=guest.root)
    assert not (guest.root / "vms" / "noqemu").exists()


def test_memory_change_refuses_restore_then_rm_leaves_nothing(guest, tmp_path):
    guest.ok("vm", "snapshot", "create", VM, "s2")
    guest.ok("vm", "stop", VM)
    assert "stopped" in guest.ok("vm", "ls")
    guest.ok("vm", "update", VM, "--memory", "128")
    one_line_125(guest.cli("vm", "snapshot", "restore", VM, "s2"), "256 MiB", "128 MiB")
    assert not guest.record().running
    guest.ok("vm", "update", VM, "--memory", "256")
    # External snapshots of a stopped VM: qemu-img makes the overlay; restore starts a fresh one on
    # the same backing file; rm commits the overlay into it (the chain gets one shorter again).
    base = guest.record().disk
    guest.ok("vm", "snapshot", "create", VM, "off1", "--external")
    first_overlay = guest.record().disk
    assert guest.record().chain[-2:] == [base, first_overlay]
    guest.ok("vm", "snapshot", "restore", VM, "off1")
    assert guest.record().chain[-2] == base and Path(guest.record().disk).exists()
    guest.ok("vm", "snapshot", "rm", VM, "off1")
    assert guest.record().disk == base and guest.record().chain[-1] == base
    assert not list((guest.root / "vms" / VM).glob("overlay-*.qcow2")), "an overlay was left behind"
    disk = Path(guest.record().disk)
    guest.ok("vm", "rm", VM)
    assert not disk.exists()
    assert_nothing_left(guest)
