"""Demo: HA failover — a node loses power, its pods start on the others (labs/11).

Shell equivalent:
    minicontainer cluster create --nodes 3 --node-timeout 3
    minicontainer apply -f web.yaml            # 6 replicas behind a Service: 2 per node
    while :; do wget -qO- http://CLUSTER-IP/; done &      # a client that keeps asking
    minicontainer node fail node2              # SIGKILL to its agent and every process, cable out
    minicontainer get pods -o wide             # 3 s without heartbeats → NotReady → pods moved
    minicontainer node recover node2; minicontainer cluster rebalance
See docs/cluster.md.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request

from .self_healing import pods

TITLE = "Failover: a node loses power, its pods start on the others"
SUMMARY = "3 nodes, 6 replicas, node fail node2: NotReady, pods moved, requests counted"

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata: {name: demo-ha}
spec:
  replicas: 6
  selector: {matchLabels: {app: demo-ha}}
  template:
    metadata: {labels: {app: demo-ha}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: demo-ha}
spec:
  selector: {app: demo-ha}
  ports: [{port: 80}]
"""


def ready_per_node(demo, app: str) -> dict:
    out = {}
    for p in pods(demo, app):
        if not p["metadata"].get("deletionTimestamp") and \
                any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])):
            out[p["spec"]["nodeName"]] = out.get(p["spec"]["nodeName"], 0) + 1
    return out


def wait_spread(demo, app: str, want, timeout: float = 120) -> float:
    from .narrate import DemoError
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if want(ready_per_node(demo, app)):
            return time.monotonic() - start
        time.sleep(0.1)
    raise DemoError(f"{app}: pods not where expected after {timeout:.0f} s (`minicontainer get pods -o wide`)")


def start_cluster(demo, app: str, nodes: int) -> None:
    """cluster create, and everything undone at the end (objects, controller, cluster, pause image)."""
    from .self_healing import pause_image_refs
    pause_images = pause_image_refs(demo)

    def clean_up():
        demo.mc("delete", "deployment", app, "--no-wait", show=False)
        demo.mc("delete", "service", app, "--no-wait", show=False)
        demo.mc("delete", "pvc", app, "--no-wait", show=False)
        demo.mc("controller", "stop", show=False)
        demo.mc("cluster", "rm", show=False)
        for ref in pause_image_refs(demo) - pause_images:
            demo.mc("image", "rm", ref, show=False)
    demo.on_exit(clean_up)
    demo.mc("cluster", "create", "--nodes", str(nodes), "--memory", "512Mi", "--node-timeout", "3", check=True)


class Requests(threading.Thread):
    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.done = url, 0, 0, False

    def run(self):
        while not self.done:
            try:
                urllib.request.urlopen(self.url, timeout=1).read()
                self.ok += 1
            except OSError:
                self.failed += 1
            time.sleep(0.05)


def run(demo) -> None:
    demo.ensure_image("busybox")
    demo.say("""Three nodes on this machine: each a network namespace with its own bridge and pod
        subnet, a cgroup with its CPU and memory, and an agent (the kubelet) that sends a
        heartbeat every second. The control plane marks a node NotReady when its heartbeats
        stop for the node timeout — 3 s here, 40 s in Kubernetes.""")
    demo.step("Create the cluster")
    start_cluster(demo, "demo-ha", 3)
    demo.mc("node", "ls")
    demo.sh("ip netns | grep -- -node; ip route | grep 10.244", display="ip netns; ip route | grep 10.244")

    demo.step("Six replicas behind a Service: the scheduler spreads them 2/2/2")
    demo.mc("apply", "-f", "-", input=MANIFEST, check=True)
    wait_spread(demo, "demo-ha", lambda s: sum(s.values()) == 6)
    demo.mc("get", "pods", "-o", "wide")
    svc = json.loads(demo.mc("get", "svc", "demo-ha", "-o", "json", show=False).stdout)
    vip = (svc.get("items") or [svc])[0]["spec"]["clusterIP"]

    demo.step("A client keeps asking the Service; node2 loses power")
    client = Requests(f"http://{vip}/")
    client.start()
    demo.print(f"(a request to http://{vip}/ every 50 ms, from the host)")
    t0 = time.monotonic()
    demo.mc("node", "fail", "node2", check=True)
    from .narrate import DemoError
    while time.monotonic() - t0 < 60:
        row = {n["name"]: n for n in json.loads(demo.mc("node", "ls", "--format", "json", show=False).stdout)}
        if row["node2"]["status"].startswith("NotReady"):
            break
        time.sleep(0.1)
    else:
        raise DemoError("node2 never became NotReady")
    demo.print(f"(node2 NotReady after {time.monotonic() - t0:.1f} s: no heartbeat for the node timeout)")
    demo.mc("node", "ls")
    wait_spread(demo, "demo-ha", lambda s: sum(s.values()) == 6 and "node2" not in s)
    took = time.monotonic() - t0
    time.sleep(1)
    client.done = True
    client.join()
    demo.mc("get", "pods", "-o", "wide")
    demo.print(f"(all 6 Ready on node1 and node3 {took:.1f} s after the power cut; "
               f"requests through the Service: {client.failed} of {client.ok + client.failed} failed)")
    demo.say("""The failed requests went to node2's pods before the control plane knew: until
        NotReady, the Service still sent connections there. A shorter node timeout loses fewer,
        and risks calling a slow node dead.""")

    demo.step("node2 comes back empty; rebalance (DRS by hand) evens the spread")
    demo.mc("node", "recover", "node2", check=True)
    demo.mc("cluster", "rebalance", check=True)
    demo.mc("get", "pods", "-o", "wide")
