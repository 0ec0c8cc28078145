"""A cluster on one machine (minicontainer/cluster/): real network namespaces, bridges,
cgroups and agent processes, one cluster shared by the whole module (creating one takes
seconds). Requests go from the test's own network namespace (conftest) to the cluster's
underlay and ClusterIPs — never anywhere else."""
from __future__ import annotations

import json
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
      containers:
      - name: httpd
        image: busybox
        command: ["sh", "-c", "mkdir -p /www; echo $HOSTNAME > /www/index.html; exec httpd -f -p 80 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


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
    text = cluster("node", "describe", "node2").stdout
    assert "Ready    True" in text and "cluster/nodes/node2" in text and "-cluster/" in text


def test_six_replicas_spread_two_two_two_and_the_service_answers(cluster):
    cluster("apply", "-f", "-", input=WEB)
    assert wait_for(lambda: sum(spread(cluster).values()) == 6, 120), cluster("get", "pods", "-o", "wide").stdout
    assert spread(cluster) == {"node1": 2, "node2": 2, "node3": 2}
    ns = nodes(cluster)
    for p in pods(cluster):                         # each pod's address is in its node's subnet
        import ipaddress
        assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(ns[p["spec"]["nodeName"]]["subnet"])
    svc = json.loads(cluster("get", "svc", "web", "-o", "json").stdout)
    vip = (svc.get("items") or [svc])[0]["spec"]["clusterIP"]
    answers = {urllib.request.urlopen(f"http://{vip}/", timeout=5).read().decode().strip() for _ in range(12)}
    assert len(answers) >= 3                        # round robin over pods on every node
    name = pods(cluster)[0]["metadata"]["name"]
    text = cluster("describe", "pod", name).stdout
    assert "Scheduling:" in text and "chosen, score" in text


def test_bad_input_is_one_line_and_changes_nothing(cluster):
    before = nodes(cluster)
    for args in (("node", "describe", "node9"), ("node", "fail", "node9"), ("node", "cordon", "nodeX")):
        proc = cluster(*args, check=False)
        assert proc.returncode == 125 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "no such node: node" in proc.stderr
    proc = cluster("cluster", "create", check=False)
    assert proc.returncode == 125 and "exists already" in proc.stderr
    assert {k: v["status"] for k, v in nodes(cluster).items()} == {k: v["status"] for k, v in before.items()}


def test_cluster_rm_leaves_nothing(cluster):
    cluster("delete", "deployment", "web", check=False)
    cluster("delete", "service", "web", check=False)
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
