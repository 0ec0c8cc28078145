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

Rebalancing (DRS): next_move() picks a pod on the busiest node when the spread is wider than
the threshold and nothing else is moving; move() evicts it gracefully and the scheduler's
least-allocated score puts its replacement on the emptiest node. `cluster rebalance` loops over
it (migrate.py); with `--auto` sync_nodes() makes one move per turn by itself.
"""
from __future__ import annotations

import datetime
import json
import os
import time

from ..orchestration.store import ObjectStore, now_rfc3339
from .members import cluster_nodes, cluster_record, is_ready

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
    return float(cluster_settings(store).get("node_timeout", 5.0))


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
            node = set_ready(store, node, fresh, now - (renewed or now))
        if not fresh and not is_ready(node):                # in the same turn: failover starts now
            for pod in store.list("Pod"):
                if pod["spec"].get("nodeName") == name:
                    evict(store, pod, f"node {name} is not ready (no heartbeat for "
                                      f"{now - (renewed or now):.1f}s)")
    for pod in store.list("Pod"):                  # bound to a node that is gone
        bound = pod["spec"].get("nodeName")
        if bound and bound != "minicontainer" and bound not in names:
            evict(store, pod, f"node {bound} does not exist")
    auto_rebalance(store, cluster_settings(store).get("rebalance") or {})
    return due


def node_age(node: dict) -> float:
    from ..orchestration.store import parse_rfc3339
    return time.time() - parse_rfc3339(node["metadata"]["creationTimestamp"])


def set_ready(store: ObjectStore, node: dict, ready: bool, silent: float) -> dict:
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
    return node


def evict(store: ObjectStore, pod: dict, why: str) -> None:
    """The Pod object goes at once (its node will not confirm: it is down); its kubelet
    notes too. The event stays with the name, for `get events`."""
    store.record_event(pod, "TaintManagerEviction", f"Deleting pod: {why}", "Warning",
                       source="taint-controller")
    store.delete("Pod", pod["metadata"]["name"], pod["metadata"].get("namespace", "default"))
    (store.dir / ".kubelet" / f"{pod['metadata']['name']}.json").unlink(missing_ok=True)


# ── rebalancing ───────────────────────────────────────────────────────────────────────────

def spread(objects: ObjectStore) -> dict:
    """Active pods per Ready, schedulable node."""
    from ..orchestration.controllers import active
    counts = {n.name: 0 for n in cluster_nodes(objects) if n.ready and not n.unschedulable}
    for p in objects.list("Pod"):
        if active(p) and p["spec"].get("nodeName") in counts:
            counts[p["spec"]["nodeName"]] += 1
    return counts


def next_move(objects: ObjectStore, threshold: int) -> dict | None:
    """The pod to move now, or None: balanced, or something is still moving or not ready."""
    from ..orchestration.controllers import active, ready
    counts = spread(objects)
    if len(counts) < 2:
        return None
    pods = objects.list("Pod")
    if any(not ready(p) or p["metadata"].get("deletionTimestamp") for p in pods
           if p["spec"].get("nodeName") in counts or not p["spec"].get("nodeName")):
        return None                                         # maxUnavailable 1: one at a time
    busiest = max(counts, key=lambda n: (counts[n], n))
    if counts[busiest] - min(counts.values()) <= threshold:
        return None
    movable = [p for p in pods if p["spec"].get("nodeName") == busiest and active(p)
               and p["metadata"].get("ownerReferences")]
    return sorted(movable, key=lambda p: p["metadata"]["name"])[0] if movable else None


def move(objects: ObjectStore, pod: dict, why: str) -> None:
    from ..orchestration.controllers import request_deletion
    request_deletion(objects, pod)
    objects.record_event(pod, "Rebalanced", why, source="minicontainer-rebalancer")


def auto_rebalance(objects: ObjectStore, settings: dict) -> None:
    """The control plane's turn (lifecycle.sync_nodes): one move when needed and settled."""
    if not settings.get("auto"):
        return
    pod = next_move(objects, int(settings.get("threshold", 1)))
    if pod is not None:
        move(objects, pod, f"Moved off {pod['spec']['nodeName']}, the busiest node (automatic rebalance)")


def cluster_settings(objects: ObjectStore) -> dict:
    return cluster_record(objects.root)
