"""A cluster on one machine (minicontainer/cluster/): real network namespaces, bridges,
cgroups and agent processes, one cluster shared by the whole module (creating one takes
seconds). Requests go from the test's own network namespace (conftest) to the cluster's
underlay and ClusterIPs — never anywhere else."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1     # httpd as PID 1 ignores SIGTERM: KILL after 1 s
      containers:
      - name: httpd
        image: busybox
        # index.html: who answers; starts: its writable layer (one line per start: a cold
        # migration carries it); data/visits: the PVC on cluster storage (every pod appends)
        command: ["sh", "-c", "mkdir -p /www; hostname > /www/index.html; echo start >> /www/starts;
                  hostname >> /data/visits; ln -sfn /data /www/data; exec httpd -f -p 80 -h /www"]
        resources: {requests: {cpu: 50m}}
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteMany]
  resources: {requests: {storage: 10Mi}}
"""
NODEPORT = """\
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80}]
"""
HOG = """\
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  terminationGracePeriodSeconds: 1
  containers:
  - {name: sleep, image: busybox, command: [sleep, "3600"], resources: {requests: {cpu: %dm}}}
"""


class RequestLoop:
    """GET http://VIP/ again and again from the test's netns while something happens:
    how many requests failed (a 1 s timeout each), and whether the last ones all worked."""

    def __init__(self, url: str):
        import threading
        self.url, self.ok, self.failed, self.last = url, 0, 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            try:
                urllib.request.urlopen(self.url, timeout=1).read()
                self.ok += 1
                self.last = (self.last + [True])[-10:]
            except OSError:
                self.failed += 1
                self.last = (self.last + [False])[-10:]
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        # Ten requests begun after the change, so that `last` holds only those: a fixed 1 s was
        # fewer than ten under load, and the one in flight now began before (one more: 11).
        made, deadline = self.ok + self.failed, time.time() + 20
        while self.ok + self.failed < made + 11 and time.time() < deadline:
            time.sleep(0.05)
        self.stop.set()
        self.thread.join()

    @property
    def total(self) -> int:
        return self.ok + self.failed


def get(url: str) -> str:
    return urllib.request.urlopen(url, timeout=5).read().decode()


def wait_for(condition, timeout: float, step: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, busybox_tar):
    """A root of its own (so the session root's controller never sees these nodes), busybox
    imported, and a 3-node cluster in it; removed at the end whatever happened."""
    from minicontainer.api import image_store
    root = tmp_path_factory.mktemp("cluster")
    image_store(root).import_archive(busybox_tar, "busybox")

    def run(*args, input=None, check=True, timeout=120):
        proc = subprocess.run([sys.executable, "-m", "minicontainer", "--root", str(root), *args],
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"minicontainer {' '.join(args)} → {proc.returncode}\n{proc.stderr}")
        return proc
    run.root = root
    run("cluster", "create", "--nodes", "3", "--memory", "512Mi")
    yield run
    run("controller", "stop", check=False)
    if (root / "cluster" / "cluster.json").exists():
        run("cluster", "rm", check=False)


def read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""                                  # gone (or a zombie reaped meanwhile)


def nodes(run) -> dict:
    return {n["name"]: n for n in json.loads(run("node", "ls", "--format", "json").stdout)}


def pods(run) -> list[dict]:
    return json.loads(run("get", "pods", "-o", "json").stdout)["items"]


def spread(run) -> dict:
    out = {}
    for p in pods(run):
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        if ready and not p["metadata"].get("deletionTimestamp"):
            out[p["spec"]["nodeName"]] = out.get(p["spec"]["nodeName"], 0) + 1
    return out


def store_spread(root) -> tuple[dict, int]:
    """spread(), read from the object store itself — a CLI call per look would add its own
    start-up to what is timed — and how many pods are still bound to node2."""
    from minicontainer.orchestration.controllers import ready
    from minicontainer.orchestration.store import ObjectStore
    out, on_node2 = {}, 0
    for p in ObjectStore(root).list("Pod"):
        on_node2 += p["spec"].get("nodeName") == "node2"
        if ready(p) and not p["metadata"].get("deletionTimestamp"):
            out[p["spec"]["nodeName"]] = out.get(p["spec"]["nodeName"], 0) + 1
    return out, on_node2


def test_each_node_is_a_host_of_its_own(cluster):
    ns = nodes(cluster)
    assert sorted(ns) == ["node1", "node2", "node3"]
    assert all(n["status"] == "Ready" and n["agent_pid"] for n in ns.values())
    assert len({n["subnet"] for n in ns.values()}) == 3
    for n in ns.values():                           # its own netns, on the underlay, routes to peers
        addrs = subprocess.run(["ip", "-n", n["netns"], "-4", "addr", "show", "eth0"],
                               capture_output=True, text=True).stdout
        assert n["ip"] + "/24" in addrs
        routes = subprocess.run(["ip", "-n", n["netns"], "route"], capture_output=True, text=True).stdout
        for peer in ns.values():
            if peer is not n:
                assert f"{peer['subnet']} via {peer['ip']}" in routes
        agent_ns = Path(f"/proc/{n['agent_pid']}/ns/net").stat().st_ino
        assert agent_ns == Path(f"/run/netns/{n['netns']}").stat().st_ino
        # one thread: it forks pod workers (fork beside a second thread can deadlock them);
        # its heartbeats come from a child process
        assert "Threads:\t1\n" in Path(f"/proc/{n['agent_pid']}/status").read_text()
        assert Path(f"/proc/{n['agent_pid']}/task/{n['agent_pid']}/children").read_text().split()
    text = cluster("node", "describe", "node2").stdout
    assert "Ready    True" in text and "cluster/nodes/node2" in text and "-cluster/" in text


def vip(run) -> str:
    svc = json.loads(run("get", "svc", "web", "-o", "json").stdout)
    return (svc.get("items") or [svc])[0]["spec"]["clusterIP"]


def endpoints(run) -> int:
    shown = json.loads(run("get", "endpoints", "web", "-o", "json").stdout)
    return sum(len(s.get("addresses") or []) for s in (shown.get("items") or [shown])[0].get("subsets") or [])


def node_rules(netns: str) -> str:
    return subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "nft", "list", "table", "ip",
                           "minicontainer-services"], capture_output=True, text=True).stdout


def pod(run, name: str) -> dict:
    return next(p for p in pods(run) if p["metadata"]["name"] == name)


def test_six_replicas_spread_two_two_two_and_the_service_answers(cluster):
    cluster("apply", "-f", "-", input=WEB)
    assert wait_for(lambda: sum(spread(cluster).values()) == 6, 120), cluster("get", "pods", "-o", "wide").stdout
    assert spread(cluster) == {"node1": 2, "node2": 2, "node3": 2}
    ns = nodes(cluster)
    import ipaddress
    for p in pods(cluster):                         # each pod's address is in its node's subnet
        assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(ns[p["spec"]["nodeName"]]["subnet"])
    assert wait_for(lambda: endpoints(cluster) == 6, 30)          # Ready first, then in the Service
    ips = {p["status"]["podIP"] for p in pods(cluster)}
    for n in ns.values():                           # kube-proxy on every node: its own DNAT rules
        assert wait_for(lambda: all(ip in node_rules(n["netns"]) for ip in ips), 30), node_rules(n["netns"])
    client = pods(cluster)[0]["metadata"]["name"]   # a pod asks the Service by name, through its node
    answer = cluster("exec", f"pod/{client}", "--", "sh", "-c",
                     r"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 web 80").stdout
    assert answer.split()[-1] in {p["metadata"]["name"] for p in pods(cluster)}, answer
    cluster("apply", "-f", "-", input=NODEPORT)     # a NodePort answers on every node's address
    port = json.loads(cluster("get", "svc", "web-np", "-o", "json").stdout)["spec"]["ports"][0]["nodePort"]
    for n in ns.values():
        assert wait_for(lambda: f"dport {port} " in node_rules(n["netns"]), 30)
        assert get(f"http://{n['ip']}:{port}/").strip() in {p["metadata"]["name"] for p in pods(cluster)}
    cluster("delete", "svc", "web-np")
    answers = {get(f"http://{vip(cluster)}/").strip() for _ in range(12)}
    assert len(answers) >= 3                        # round robin over pods on every node
    name = pods(cluster)[0]["metadata"]["name"]
    text = cluster("describe", "pod", name).stdout
    assert "Scheduling:" in text and "chosen, score" in text
    inside = cluster("exec", f"pod/{name}", "--", "sh", "-c", "hostname; cat /proc/self/cgroup").stdout
    assert inside.split()[0] == name and ":memory:/\n" in inside    # in its container's cgroup, on its node


def test_node_fail_moves_its_pods_and_the_service_keeps_answering(cluster):
    lost = [p["metadata"]["name"] for p in pods(cluster) if p["spec"]["nodeName"] == "node2"]
    load = os.getloadavg()[0]
    with RequestLoop(f"http://{vip(cluster)}/") as loop:
        t0 = time.time()
        out = cluster("node", "fail", "node2").stdout
        moved = wait_for(lambda: store_spread(cluster.root) == ({"node1": 3, "node3": 3}, 0), 90, 0.05)
        elapsed = time.time() - t0
    # The issue: within node timeout + 3 s. On a machine busier than its CPUs the bound grows
    # with the load average (as tests/test_labs.py's), so CI measures failover, not neighbours.
    bound = (5 + 3) * max(1.0, max(load, os.getloadavg()[0]) / (os.cpu_count() or 1))
    print(f"\nfailover: node fail → 6 pods Ready on node1+node3 in {elapsed:.1f}s (node timeout 5s, "
          f"bound {bound:.0f}s); requests through the Service: {loop.failed} of {loop.total} failed")
    assert "processes killed" in out
    assert moved, cluster("get", "pods", "-o", "wide").stdout
    assert elapsed <= bound, cluster("get", "events").stdout
    assert loop.failed <= loop.total // 2 and all(loop.last), (loop.failed, loop.total, loop.last)
    assert nodes(cluster)["node2"]["status"] == "NotReady"
    assert "NodeNotReady" in cluster("node", "describe", "node2").stdout
    visits = get(f"http://{vip(cluster)}/data/visits").split()
    assert set(lost) <= set(visits)                 # what the lost pods wrote is still there


def test_recover_comes_back_empty_and_rebalance_evens_the_spread(cluster):
    out = cluster("node", "recover", "node2").stdout
    assert "recovered" in out and nodes(cluster)["node2"]["status"] == "Ready"
    assert spread(cluster) == {"node1": 3, "node3": 3}      # empty: its old pods live elsewhere
    with RequestLoop(f"http://{vip(cluster)}/") as loop:
        out = cluster("cluster", "rebalance").stdout
    print(f"\nrebalance: {out.strip()}; requests: {loop.failed} of {loop.total} failed")
    assert spread(cluster) == {"node1": 2, "node2": 2, "node3": 2}
    assert "balanced" in out and out.count("moving pod") == 2


def test_drain_moves_every_pod_without_a_failed_request(cluster):
    with RequestLoop(f"http://{vip(cluster)}/") as loop:
        out = cluster("node", "drain", "node3").stdout
    print(f"\ndrain: requests {loop.failed} of {loop.total} failed")
    assert "drained" in out and loop.failed == 0 and loop.ok > 0
    assert spread(cluster) == {"node1": 3, "node2": 3}     # node3 is cordoned: not counted
    assert nodes(cluster)["node3"]["status"] == "Ready,SchedulingDisabled"
    cluster("node", "uncordon", "node3")


def test_migrate_keeps_the_writable_layer_the_volume_and_the_name(cluster):
    name = next(p["metadata"]["name"] for p in pods(cluster) if p["spec"]["nodeName"] == "node1")
    before = pod(cluster, name)
    assert get(f"http://{before['status']['podIP']}/starts").split() == ["start"]
    out = cluster("migrate", f"pod/{name}", "--to", "node3").stdout
    after = pod(cluster, name)
    print("\n" + out.strip())
    assert after["spec"]["nodeName"] == "node3" and after["metadata"]["uid"] == before["metadata"]["uid"]
    assert "downtime" in out
    ip = after["status"]["podIP"]
    assert get(f"http://{ip}/").strip() == name                  # same name (hostname)
    assert get(f"http://{ip}/starts").split() == ["start", "start"]   # its layer came along
    assert name in get(f"http://{ip}/data/visits").split()       # and its volume
    cluster("migrate", f"pod/{name}", "--to", "node1")           # and back: a layer on the layer
    back = pod(cluster, name)
    assert back["spec"]["nodeName"] == "node1"
    assert get(f"http://{back['status']['podIP']}/starts").split() == ["start"] * 3


def test_bad_input_is_one_line_and_changes_nothing(cluster):
    before = {k: v["status"] for k, v in nodes(cluster).items()}
    placement = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(cluster)}
    name = next(n for n, at in placement.items() if at != "node2")
    cluster("node", "cordon", "node2")
    hog_node, free = next((n, r["cpu_millis"] - r["cpu_requests"]) for n, r in nodes(cluster).items()
                          if n != "node2")
    cluster("apply", "-f", "-", input=HOG % (hog_node, free - 10))     # leaves hog_node 10m of CPU
    assert wait_for(lambda: any(p["metadata"]["name"] == "hog" and p["spec"].get("nodeName")
                                for p in pods(cluster)), 30)
    cases = {("node", "describe", "node9"): "no such node: node9",
             ("node", "fail", "node9"): "no such node: node9",
             ("node", "cordon", "nodeX"): "no such node: nodeX",
             ("migrate", f"pod/{name}", "--to", "node9"): "no such node: node9",
             ("migrate", "pod/nosuch", "--to", "node1"): 'pod "nosuch" not found',
             ("migrate", f"pod/{name}", "--to", "node2"): "node2: cordoned",
             ("migrate", "pod/" + next(n for n, at in placement.items() if at != hog_node),
              "--to", hog_node): "Insufficient cpu",
             ("cluster", "create"): "exists already",
             ("cluster", "rebalance", "--threshold", "0"): "--threshold 0"}
    for args, words in cases.items():
        proc = cluster(*args, check=False)
        assert proc.returncode == 125 and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert words in proc.stderr, (args, proc.stderr)
    cluster("node", "uncordon", "node2")
    cluster("delete", "pod", "hog")
    assert {k: v["status"] for k, v in nodes(cluster).items()} == before
    assert {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(cluster)
            if p["metadata"]["name"] != "hog"} == placement


def test_failing_the_last_ready_node_is_refused(cluster):
    cluster("delete", "-f", "-", input=WEB, check=False)
    assert wait_for(lambda: not pods(cluster), 60)
    cluster("node", "fail", "node1")
    cluster("node", "fail", "node2")
    proc = cluster("node", "fail", "node3", check=False)
    assert proc.returncode == 125 and "last Ready node" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert nodes(cluster)["node3"]["agent_pid"]


def test_cluster_rm_leaves_nothing(cluster):
    ns = nodes(cluster)
    cluster("controller", "stop")
    cluster("cluster", "rm")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    cid = next(iter(ns.values()))["netns"].split("-")[0]
    assert cid not in links
    assert not [n for n in ns.values() if Path(f"/run/netns/{n['netns']}").exists()]
    from minicontainer.cluster.nodes import cgroup_tops, node_parent
    assert not [t for t in cgroup_tops(node_parent()) if t.exists()]
    assert not [n for n in ns.values() if b"cluster.agent" in read_bytes(f"/proc/{n['agent_pid']}/cmdline")]
    assert not [line for line in open("/proc/self/mountinfo") if str(cluster.root) in line]
    assert not (cluster.root / "cluster").exists()
