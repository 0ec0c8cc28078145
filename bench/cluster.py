#!/usr/bin/env python3
"""Cluster (issue 14): create time, failover time, cold-migration downtime.

    sudo bench/cluster.py [--creates 3] [--migrations 3] [--node-timeout 5] [--json out.json]

What it measures, on a fresh state root with the busybox image, in a private mount and network
namespace (the script re-executes itself there: netns, bridges and routes stay inside):
  * `cluster create --nodes 3` (CLI, until every node is Ready), median of --creates
                                                                   target ≤ 3 s
  * failover: a 6-replica busybox httpd Deployment behind a Service, `node fail node2` →
    node2 NotReady (the node timeout), and → all 6 replicas Ready on node1 and node3, with a
    request loop through the ClusterIP counting failed requests   target ≤ node timeout + 2 s
    (and where the time goes: each replacement's created/bound/Running/Ready times, each
    failed request's time and reason)
  * cold migration of one httpd pod: container stopped → Ready on the other node (the
    downtime `migrate` prints), median of --migrations              target ≤ 1 s
There is no real multi-node cluster (kind, minikube) on this machine to compare with, so the
figures stand against the issue's targets; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from orchestration import mc, reexec_private  # noqa: E402  (the same private netns and CLI call)

WEB = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        command: ["sh", "-c", "mkdir -p /www; hostname > /www/index.html; exec httpd -f -p 80 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


class Requests(threading.Thread):
    """A request every 50 ms through the Service; each failure noted with its time and reason."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.done, self.t0, self.errors = url, 0, 0, False, None, []

    def run(self):
        import urllib.request
        while not self.done:
            try:
                urllib.request.urlopen(self.url, timeout=1).read()
                self.ok += 1
            except OSError as e:
                self.failed += 1
                if self.t0 is not None:
                    self.errors.append((time.monotonic() - self.t0, type(getattr(e, "reason", e)).__name__))
            time.sleep(0.05)


def ready(pod: dict) -> bool:
    from minicontainer.orchestration.controllers import ready
    return ready(pod)


def ready_on(store) -> dict:
    out = {}
    for p in store.list("Pod"):
        if ready(p):
            out[p["spec"]["nodeName"]] = out.get(p["spec"]["nodeName"], 0) + 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=3)
    parser.add_argument("--migrations", type=int, default=3)
    parser.add_argument("--node-timeout", type=float, default=5.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    reexec_private()
    os.environ["MINICONTAINER_CGROUP_PARENT"] = f"minicontainer-bench-{os.getpid()}"
    from minicontainer.api import image_store
    from minicontainer.builder import find_recipe, load_builder
    from minicontainer.orchestration.store import ObjectStore
    root = tempfile.mkdtemp(prefix="mc-bench-cluster-")
    results = {"loadavg_start": open("/proc/loadavg").read().split()[:3]}
    try:
        tar = load_builder().build(find_recipe("busybox"), Path(root) / "busybox.tar").path
        image_store(root).import_archive(tar, "busybox")
        creates = []
        for i in range(args.creates):
            t = time.monotonic()
            mc(root, "cluster", "create", "--nodes", "3", "--node-timeout", str(args.node_timeout))
            creates.append(time.monotonic() - t)
            if i < args.creates - 1:
                mc(root, "cluster", "rm")
        results["create_s"] = statistics.median(creates)
        print(f"cluster create --nodes 3 (CLI, until all Ready): median {results['create_s']:.2f} s "
              f"of {creates and ', '.join(f'{c:.2f}' for c in creates)} (target ≤ 3 s)")

        store = ObjectStore(root)
        mc(root, "apply", "-f", "-", input=WEB)
        while sum(ready_on(store).values()) < 6:
            time.sleep(0.05)
        vip = store.get("Service", "web")["spec"]["clusterIP"]
        loop = Requests(f"http://{vip}/")
        loop.start()
        time.sleep(1)
        from minicontainer.cluster.nodes import fail_node
        from minicontainer.cluster.members import is_ready
        before = {p["metadata"]["name"] for p in store.list("Pod")}
        t = time.monotonic()
        loop.t0 = t
        fail_node(root, "node2")
        notready = None
        seen: dict[str, dict] = {}              # each replacement: when created, bound, Running, Ready
        while True:
            now = time.monotonic() - t
            if notready is None and not is_ready(store.get("Node", "node2")):
                notready = now
            for p in store.list("Pod"):
                if p["metadata"]["name"] not in before:
                    marks = seen.setdefault(p["metadata"]["name"], {"created": now})
                    if p["spec"].get("nodeName"):
                        marks.setdefault("bound", now)
                    if (p.get("status") or {}).get("phase") == "Running":
                        marks.setdefault("running", now)
                    if ready(p):
                        marks.setdefault("ready", now)
            spread = ready_on(store)
            if sum(spread.values()) == 6 and "node2" not in spread:
                break
            time.sleep(0.02)
        results["failover_s"] = time.monotonic() - t
        results["notready_s"] = notready
        time.sleep(1)
        loop.done = True
        loop.join()
        results["failover_requests"] = {"ok": loop.ok, "failed": loop.failed}
        print(f"failover: node fail → NotReady {notready:.2f} s → all 6 Ready on the survivors "
              f"{results['failover_s']:.2f} s (target ≤ {args.node_timeout:g} + 2 s); "
              f"requests through the Service: {loop.failed} of {loop.ok + loop.failed} failed")
        print("  where the time goes (s after node fail): " + "; ".join(
            f"{name[-5:]} " + " ".join(f"{k} {v:.2f}" for k, v in marks.items()) for name, marks in sorted(seen.items())))
        print("  failed requests (s after node fail: why): " + ", ".join(
            f"{at:.1f}: {why}" for at, why in loop.errors[:12]) + (" …" if len(loop.errors) > 12 else ""))

        from minicontainer.cluster.migrate import migrate_pod
        downs = []
        for i in range(args.migrations):
            pod = next(p for p in store.list("Pod") if p["spec"]["nodeName"] == "node1")
            r = migrate_pod(root, f"pod/{pod['metadata']['name']}", "node3", emit=lambda *_: None)
            downs.append(r["downtime"])
        results["migration_downtime_s"] = statistics.median(downs)
        print(f"cold migration of a busybox httpd pod: downtime median {results['migration_downtime_s']:.2f} s "
              f"of {', '.join(f'{d:.2f}' for d in downs)} (target ≤ 1 s)")
    finally:
        results["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        print(f"load average: {' '.join(results['loadavg_start'])} at the start, "
              f"{' '.join(results['loadavg_end'])} at the end (2 cores; figures under load are pessimistic)")
        subprocess.run([sys.executable, "-m", "minicontainer", "--root", root, "controller", "stop"],
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "minicontainer", "--root", root, "cluster", "rm"],
                       capture_output=True)
        subprocess.run(["rm", "-rf", root])
        from minicontainer.cgroups import remove_parent
        remove_parent(parent=os.environ["MINICONTAINER_CGROUP_PARENT"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
