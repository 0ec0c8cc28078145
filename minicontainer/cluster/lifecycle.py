"""The control plane's side of the nodes: what the scheduler sees, and failover.

    https://kubernetes.io/docs/concepts/architecture/nodes/#heartbeats
    https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/#taint-based-evictions

Each agent renews its node's Lease (k8s/leases/kube-node-lease/NAME.json, spec.renewTime)
every second — a file of its own, so a heartbeat costs no lock and no resourceVersion, which is
why Kubernetes moved heartbeats from Node objects to Leases too. The controller's sync_nodes()
(run every turn by orchestration/controller.py) compares:

    renewTime older than the node timeout (5 s; Kubernetes: 40 s)
        → Ready=Unknown, taint node.kubernetes.io/unreachable:NoExecute, event NodeNotReady
        → every pod bound to it is deleted at once (Kubernetes waits 300 s more, its
          tolerationSeconds); their ReplicaSets make new ones, the scheduler puts them on
          the Ready nodes, whose agents start them: that is failover
    fresh again → Ready=True, the taint removed (a recovered node is empty: it takes new pods)
"""
from __future__ import annotations

import datetime
import json
import os
import signal
import time

from ..orchestration.store import ObjectStore, now_rfc3339

LEASE_NS = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
HEARTBEAT = 1.0


# ── Node objects ──────────────────────────────────────────────────────────────────────────

def write_node_object(root, n: dict) -> dict:
    store = ObjectStore(root)
    store.delete("Node", n["name"])
    size = {"cpu": f"{int(n['cpus'] * 1000)}m", "memory": f"{n['memory'] >> 10}Ki", "pods": "110"}
    return store.create({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n["name"], "labels": {"kubernetes.io/hostname": n["name"],
                                                   "kubernetes.io/os": "linux"}},
        "spec": {"podCIDR": n["subnet"], "podCIDRs": [n["subnet"]]},
        "status": {"capacity": size, "allocatable": dict(size),
                   "addresses": [{"type": "InternalIP", "address": n["ip"]},
                                 {"type": "Hostname", "address": n["name"]}],
                   "conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                                   "message": "Kubelet never posted node status.",
                                   "lastTransitionTime": now_rfc3339()}],
                   "nodeInfo": {"kubeletVersion": "minicontainer", "operatingSystem": "linux",
                                "architecture": os.uname().machine}}})


def forget_node(root, name: str) -> None:
    """The Node object and its Lease; its pods' objects (their ReplicaSets replace them)."""
    store = ObjectStore(root)
    store.delete("Node", name)
    store.path("Lease", name, LEASE_NS).unlink(missing_ok=True)
    for pod in store.list("Pod"):
        if pod["spec"].get("nodeName") == name:
            evict(store, pod, f"node {name} was removed")


def cluster_nodes(store: ObjectStore) -> list:
    """The Node objects as the scheduler's Nodes ([] without a cluster: this machine is the node)."""
    from ..orchestration.scheduler import Node, cpu_millis, memory_bytes
    out = []
    for o in store.list("Node"):
        alloc = o["status"]["allocatable"]
        out.append(Node(name=o["metadata"]["name"], cpu_millis=cpu_millis(alloc["cpu"]),
                        memory=memory_bytes(alloc["memory"]), ready=is_ready(o),
                        unschedulable=bool(o["spec"].get("unschedulable")),
                        labels=tuple(sorted((o["metadata"].get("labels") or {}).items())),
                        taints=tuple((t["key"], t.get("value", ""), t["effect"])
                                     for t in o["spec"].get("taints") or [])))
    return out


def is_ready(node: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))


def node_ready(root, name: str) -> bool:
    node = ObjectStore(root).get("Node", name)
    return bool(node) and is_ready(node)


# ── heartbeats (the agent's side) ─────────────────────────────────────────────────────────

def renew_lease(store: ObjectStore, node: str, duration: float) -> None:
    path = store.path("Lease", node, LEASE_NS)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": node, "namespace": LEASE_NS},
             "spec": {"holderIdentity": node, "leaseDurationSeconds": int(max(1, duration)),
                      "renewTime": stamp}}
    tmp = path.with_name(f".{node}.{os.getpid()}")
    tmp.write_text(json.dumps(lease))
    os.replace(tmp, path)


def renewed_at(store: ObjectStore, node: str) -> float | None:
    lease = store.get("Lease", node, LEASE_NS)
    if not lease:
        return None
    stamp = datetime.datetime.strptime(lease["spec"]["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


# ── the node lifecycle controller (the control plane's side) ───────────────────────────────

def node_timeout(store: ObjectStore) -> float:
    try:
        return float(json.loads((store.root / "cluster" / "cluster.json").read_text())["node_timeout"])
    except (OSError, ValueError, KeyError):
        return 5.0


def sync_nodes(store: ObjectStore) -> float | None:
    """Heartbeats → Ready or not; the pods of a node that is not are evicted. → when the
    next heartbeat is overdue (the controller wakes then), or None without nodes."""
    nodes = store.list("Node")
    if not nodes:
        return None
    timeout, now, due = node_timeout(store), time.time(), float("inf")
    names = set()
    for node in nodes:
        name = node["metadata"]["name"]
        names.add(name)
        renewed = renewed_at(store, name)
        fresh = renewed is not None and now - renewed < timeout
        if fresh:
            due = min(due, renewed + timeout)
        if fresh != is_ready(node) and (fresh or renewed is not None or node_age(node) > timeout):
            set_ready(store, node, fresh, now - (renewed or now))
        if not fresh and not is_ready(node):
            for pod in store.list("Pod"):
                if pod["spec"].get("nodeName") == name:
                    evict(store, pod, f"node {name} is not ready (no heartbeat for "
                                      f"{now - (renewed or now):.1f}s)")
    for pod in store.list("Pod"):                  # bound to a node that is gone
        bound = pod["spec"].get("nodeName")
        if bound and bound != "minicontainer" and bound not in names:
            evict(store, pod, f"node {bound} does not exist")
    return due


def node_age(node: dict) -> float:
    from ..orchestration.store import parse_rfc3339
    return time.time() - parse_rfc3339(node["metadata"]["creationTimestamp"])


def set_ready(store: ObjectStore, node: dict, ready: bool, silent: float) -> None:
    def change(o):
        o["status"]["conditions"] = [{
            "type": "Ready", "status": "True" if ready else "Unknown",
            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
            "message": "kubelet is posting ready status" if ready else
                       f"Kubelet stopped posting node status ({silent:.1f}s without a heartbeat).",
            "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}]
        taints = [t for t in o["spec"].get("taints") or [] if t["key"] != UNREACHABLE]
        if not ready:
            taints.append({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": now_rfc3339()})
        o["spec"]["taints"] = taints
        if not taints:
            o["spec"].pop("taints")
    node = store.update("Node", node["metadata"]["name"], change) or node
    store.record_event(node, "NodeReady" if ready else "NodeNotReady",
                       f"Node {node['metadata']['name']} status is now: "
                       f"{'NodeReady' if ready else 'NodeNotReady'}",
                       "Normal" if ready else "Warning", source="node-controller")


def evict(store: ObjectStore, pod: dict, why: str) -> None:
    """The Pod object goes at once (its node will not confirm: it is down); its kubelet
    notes too. The event stays with the name, for `get events`."""
    store.record_event(pod, "TaintManagerEviction", f"Deleting pod: {why}", "Warning",
                       source="taint-controller")
    store.delete("Pod", pod["metadata"]["name"], pod["metadata"].get("namespace", "default"))
    (store.dir / ".kubelet" / f"{pod['metadata']['name']}.json").unlink(missing_ok=True)


def wake_agents(store: ObjectStore) -> None:
    """SIGUSR1 to every agent: a pod was bound (the API server's watch, in Kubernetes)."""
    base = store.root / "cluster" / "nodes"
    if not base.is_dir():
        return
    from ..state import is_alive
    for info_path in base.glob("*/agent.json"):
        try:
            info = json.loads(info_path.read_text())
            if is_alive(info["pid"], info["start"]):
                os.kill(info["pid"], signal.SIGUSR1)
        except (OSError, ValueError, KeyError):
            pass
