"""The VM figures of issue 18, measured through the library API (minicontainer.api), side by side
with a container: create + boot to the first console line, savevm/loadvm, live-migration downtime
and total time (QEMU's own figures), a container's start and its cold "migration" (stop + start).

Usage: sudo .venv/bin/python bench/vm.py [--runs N] [--boots N]     (bench/vm.sh runs it in a network namespace)
Prints a median per figure and PASS/MISS against the issue's targets; never asserts anything.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from minicontainer import api

TARGETS = {"create + boot (s)": 10.0, "savevm (s)": 1.0, "migration downtime (ms)": 100.0,
           "migration total (ms)": 2000.0}


def first_tick(root: str, name: str, offset: int, timeout: float = 300.0) -> None:
    log = Path(root) / "vms" / name / "console.log"
    deadline = time.monotonic() + timeout
    while b"tick " not in (log.read_bytes()[offset:] if log.exists() else b""):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench/vm: {name} printed no tick in {timeout:.0f} s")
        time.sleep(0.05)


def qemu_schedstat(pid: int) -> tuple[float, float, float]:
    """(seconds QEMU's threads ran on a CPU, seconds they waited in the run queue for one, the
    wait of the thread that ran most: the one running the guest), from /proc/PID/task/*/schedstat:
    on a busy machine the wait tells how much of a boot was queueing rather than booting."""
    tasks = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            fields = f.read().split()
        tasks.append((int(fields[0]), int(fields[1])))
    guest = max(tasks)
    return sum(t[0] for t in tasks) / 1e9, sum(t[1] for t in tasks) / 1e9, guest[1] / 1e9


def create_and_boot(root: str, name: str, figures: dict) -> None:
    """`vm create` + `vm start` until the guest's first "tick" on its console (the readiness line)."""
    started = time.monotonic()
    api.create_vm(name, memory_mb=256, root=root)
    api.start_vm(name, root=root)
    first_tick(root, name, 0)
    figures["create + boot (s)"].append(time.monotonic() - started)
    wall = time.monotonic() - started
    ran, waited, guest_waited = qemu_schedstat(api.inspect_vm(name, root=root)["pid"])
    figures["boot: QEMU on a CPU (s)"].append(ran)
    figures["boot: QEMU queued (s)"].append(waited)
    # An estimate for an idle machine: the wall clock minus the queueing of the thread running the
    # guest (the one that ran most). It still counts the CLI's own queueing: on the safe side.
    figures["create + boot, unqueued (s)"].append(wall - guest_waited)


def measure_vm(root: str, runs: int, boots: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {k: [] for k in ("create + boot (s)", "boot: QEMU on a CPU (s)",
                                                       "boot: QEMU queued (s)",
                                                       "create + boot, unqueued (s)",
                                                       "savevm (s)", "loadvm (s)",
                                                       "migration downtime (ms)", "migration total (ms)",
                                                       "QEMU RSS (MiB)")}
    for boot in range(boots - 1):                   # extra samples of the boot alone
        create_and_boot(root, f"bench-boot{boot}", figures)
        api.remove_vm(f"bench-boot{boot}", force=True, root=root)
    name = "bench-vm"
    create_and_boot(root, name, figures)
    try:
        for run in range(runs):
            meta = api.snapshot_vm(name, f"s{run}", root=root)
            figures["savevm (s)"].append(meta["seconds"])
            figures["loadvm (s)"].append(api.restore_vm_snapshot(name, f"s{run}", root=root)["restore_seconds"])
            api.remove_vm_snapshot(name, f"s{run}", root=root)
            moved = api.migrate_vm(name, "localhost", root=root)
            figures["migration downtime (ms)"].append(moved["downtime_ms"])
            figures["migration total (ms)"].append(moved["total_time_ms"])
        pid = api.inspect_vm(name, root=root)["pid"]
        rss = int(next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS")))
        figures["QEMU RSS (MiB)"].append(rss / 1024)
    finally:
        api.remove_vm(name, force=True, root=root)
    return figures


def measure_container(root: str, runs: int) -> dict[str, list[float]]:
    """`run -d` start, and a cold move: stop (SIGKILL after 0 s) + start again from the same image."""
    from minicontainer.api import image_store
    from minicontainer.builder import build_recipe
    image_store(root).import_archive(build_recipe("busybox").path, "busybox")
    mc = [sys.executable, "-m", "minicontainer", "--root", root]
    figures: dict[str, list[float]] = {"container run -d (s)": [], "container cold move (s)": []}
    for run in range(runs):
        started = time.monotonic()
        subprocess.run([*mc, "run", "-d", "--net", "none", "--name", f"c{run}", "busybox", "sleep", "600"],
                       check=True, capture_output=True)
        figures["container run -d (s)"].append(time.monotonic() - started)
        started = time.monotonic()
        subprocess.run([*mc, "stop", "-t", "0", f"c{run}"], check=True, capture_output=True)
        subprocess.run([*mc, "run", "-d", "--net", "none", "--name", f"c{run}-moved", "busybox", "sleep", "600"],
                       check=True, capture_output=True)
        figures["container cold move (s)"].append(time.monotonic() - started)
        subprocess.run([*mc, "rm", "-f", f"c{run}", f"c{run}-moved"], capture_output=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--boots", type=int, default=3, help="create + boot samples (default 3)")
    args = parser.parse_args()
    print(f"bench/vm: accelerator {api.vm_accelerator()['accel']} ({api.vm_accelerator()['reason']})")
    print(f"load average before: {open('/proc/loadavg').read().strip()}")
    with tempfile.TemporaryDirectory(prefix="mc-bench-vm-", dir="/var/tmp") as root:
        figures = {**measure_vm(root, args.runs, max(1, args.boots)), **measure_container(root, args.runs)}
    print(f"load average after:  {open('/proc/loadavg').read().strip()}  (2 cores: above 2, every figure "
          "here is pessimistic)")
    print(f"{'figure':<28}{'median':>10}{'min':>10}{'max':>10}   target")
    for key, values in figures.items():
        median = statistics.median(values)
        target = TARGETS.get(key)
        verdict = "" if target is None else f"≤ {target:g}  {'PASS' if median <= target else 'MISS'}"
        print(f"{key:<28}{median:>10.2f}{min(values):>10.2f}{max(values):>10.2f}   {verdict}")
    boot = statistics.median(figures["create + boot (s)"])
    start = statistics.median(figures["container run -d (s)"])
    downtime = statistics.median(figures["migration downtime (ms)"]) / 1000
    cold = statistics.median(figures["container cold move (s)"])
    print(f"ratios: VM create+boot / container start = {boot / start:.0f}x; "
          f"container cold move / VM live-migration downtime = {cold / downtime:.0f}x "
          "(the cold move restarts the process on the same machine; between two cluster nodes, tests/test_vm_cluster.py prints both side by side)")


if __name__ == "__main__":
    main()
