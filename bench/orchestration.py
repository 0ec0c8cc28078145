#!/usr/bin/env python3
"""Orchestration (issue 13): a 50-replica Deployment, a killed replica, the idle controller.

    sudo bench/orchestration.py [-n 50] [--kills 10] [--json out.json]

What it measures, on a fresh state root with the busybox image:
  * apply → all N replicas Running and ready (the controller starts them: sandbox + container
    per pod, each through the one run sequence)                          target ≤ 10 s for 50
  * kill -9 of one replica's PID 1 → that pod Running and ready again (median of --kills)
                                                                         target ≤ 1 s
  * the idle controller with the N pods running: its CPU over 40 s (more than one 30 s resync;
    /proc/PID/stat) and its PSS (/proc/PID/smaps_rollup)                targets < 1 % and ≤ 30 MB
  * the CPU-seconds the N pods' start cost: cpuacct of a group holding the controller (so its
    workers and supervisors) and every container — less distorted by a loaded machine than
    the wall clock (--kills 0 --idle 0: only the start)
There is no real Kubernetes on this machine to compare with (and `podman kube play` has no
controller that would replace a killed pod), so the figures stand against the issue's targets.
The script re-executes itself in a private mount and network namespace: the bridge, the
ClusterIP rules and every veth stay there.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: bench}}
spec:
  replicas: {n}
  selector: {{matchLabels: {{app: bench}}}}
  template:
    metadata: {{labels: {{app: bench}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["sleep", "100000"]
"""


def reexec_private() -> None:
    if os.environ.get("MC_BENCH_ORCH_NS"):
        return
    os.environ["MC_BENCH_ORCH_NS"] = "1"
    os.execvp("unshare", ["unshare", "-mn", "--propagation", "private", "sh", "-c",
                          'ip link set lo up && exec "$0" "$@"', sys.executable, *sys.argv])


def mc(root: str, *args, input=None) -> str:
    return subprocess.run([sys.executable, "-m", "minicontainer", "--root", root, *args], input=input,
                          capture_output=True, text=True, check=True).stdout


def ready_pods(store) -> list[dict]:
    from minicontainer.orchestration.controllers import ready
    return [p for p in store.list("Pod") if ready(p) and p["status"].get("phase") == "Running"]


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--idle", type=float, default=40, help="seconds of the idle measurement (0: none)")
    parser.add_argument("--json")
    args = parser.parse_args()
    reexec_private()
    os.environ["MINICONTAINER_CGROUP_PARENT"] = f"minicontainer-bench-{os.getpid()}"
    from minicontainer.api import image_store, list_pods, remove_pod
    from minicontainer.builder import find_recipe, load_builder
    from minicontainer.orchestration.controller import controller_status
    from minicontainer.orchestration.store import ObjectStore
    root = tempfile.mkdtemp(prefix="mc-bench-orch-")
    results = {}
    try:
        tar = load_builder().build(find_recipe("busybox"), Path(root) / "busybox.tar").path
        image_store(root).import_archive(tar, "busybox")
        store = ObjectStore(root)
        with cpu_accounted():                           # the controller and all it forks
            mc(root, "controller", "start")
        results["loadavg_before"] = open("/proc/loadavg").read().split()[:3]
        print(f"load average before: {' '.join(results['loadavg_before'])} "
              f"({os.cpu_count()} CPUs; figures under load are pessimistic)")

        start, cpu, cpu_ctl = time.monotonic(), cpuacct_seconds(), cpuacct_seconds(controller_group())
        mc(root, "apply", "-f", "-", input=MANIFEST.format(n=args.n))
        while len(ready_pods(store)) < args.n:
            time.sleep(0.05)
        results["all_running_s"] = time.monotonic() - start
        results["all_running_cpu_s"] = cpuacct_seconds() - cpu
        results["controller_cpu_s"] = cpuacct_seconds(controller_group()) - cpu_ctl
        print(f"{args.n} replicas Running and ready: {results['all_running_s']:.2f} s (target ≤ 10 s for 50); "
              f"{results['all_running_cpu_s']:.1f} CPU-s, {results['controller_cpu_s']:.1f} of them the "
              "controller's, its workers' and supervisors' (the rest: in the pods' cgroups)")

        if args.idle:
            time.sleep(2)
            info = controller_status(root)
            cpu0, t0 = proc_cpu(info["pid"]), time.monotonic()
            time.sleep(args.idle)
            info = controller_status(root)
            results["idle_cpu_percent"] = 100 * (proc_cpu(info["pid"]) - cpu0) / (time.monotonic() - t0)
            results["idle_pss_mb"] = info.get("pss_kb", 0) / 1024
            print(f"idle controller with {args.n} pods: {results['idle_cpu_percent']:.2f} % of one CPU over "
                  f"{args.idle:g} s (target < 1 %), PSS {results['idle_pss_mb']:.1f} MB (target ≤ 30 MB)")

        times = []
        for i in range(args.kills):
            pod = ready_pods(store)[i % args.n]
            name = pod["metadata"]["name"]
            before = pod["status"]["containerStatuses"][0]["restartCount"]
            rec = [r for r in list_containers_of(root) if r.name == f"{name}-c"][0]
            t = time.monotonic()
            os.kill(rec.pid, signal.SIGKILL)
            while True:
                p = store.get("Pod", name)
                cs = p["status"]["containerStatuses"][0]
                if cs["restartCount"] > before and cs["ready"]:
                    break
                time.sleep(0.01)
            times.append(time.monotonic() - t)
            time.sleep(0.5)
        if times:
            results["kill_replaced_median_s"] = statistics.median(times)
            print(f"kill -9 of a replica's PID 1 → Running again: median {results['kill_replaced_median_s']:.2f} s "
                  f"over {len(times)} (min {min(times):.2f}, max {max(times):.2f}; target ≤ 1 s)")
        results["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
        print(f"load average after: {' '.join(results['loadavg_after'])}")
    finally:
        subprocess.run([sys.executable, "-m", "minicontainer", "--root", root, "delete", "deployment",
                        "bench"], capture_output=True)
        deadline = time.time() + 120
        while ObjectStore(root).list("Pod") and time.time() < deadline:
            time.sleep(0.5)
        subprocess.run([sys.executable, "-m", "minicontainer", "--root", root, "controller", "stop"],
                       capture_output=True)
        for pod in list_pods(root):
            remove_pod(pod["name"], force=True, root=root)
        subprocess.run(["rm", "-rf", root])
        from minicontainer.cgroups import remove_parent
        try:
            controller_group().rmdir()
        except OSError:
            pass
        remove_parent(parent=os.environ["MINICONTAINER_CGROUP_PARENT"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def controller_group() -> Path:
    """cpuacct (v1) group of the controller, inside the containers' parent group: that parent's
    counter is then everything the pods cost."""
    return Path("/sys/fs/cgroup/cpuacct", os.environ["MINICONTAINER_CGROUP_PARENT"], "controller")


def cpuacct_seconds(group: Path | None = None) -> float:
    try:
        return int(((group or controller_group().parent) / "cpuacct.usage").read_text()) / 1e9
    except OSError:
        return float("nan")                             # no cgroup v1 cpuacct: no CPU figure


class cpu_accounted:
    """Run the block (which starts the controller) inside controller_group(), then move back."""
    def __enter__(self):
        self.back = None
        try:
            controller_group().mkdir(parents=True, exist_ok=True)
            self.back = next(line.split(":", 2)[2] for line in open("/proc/self/cgroup")
                             if "cpuacct" in line.split(":")[1].split(","))
            (controller_group() / "cgroup.procs").write_text(str(os.getpid()))
        except (OSError, StopIteration):
            pass

    def __exit__(self, *exc):
        if self.back is not None:
            Path("/sys/fs/cgroup/cpuacct", self.back.strip().lstrip("/"), "cgroup.procs").write_text(str(os.getpid()))


def list_containers_of(root: str):
    from minicontainer.api import list_containers
    return list_containers(root)


if __name__ == "__main__":
    main()
