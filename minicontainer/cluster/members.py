"""What the control plane and the scheduler read about the nodes (Node objects), and how
they tell the agents to look (a signal) — small, so orchestration/ can import it.

    cluster_nodes(store)    Node objects → the scheduler's Nodes ([] without a cluster)
    wake_agents(store)      SIGUSR1 to every agent: a pod was bound or is migrating
    pod_node(ref, root)     where pod/NAME's containers live: its node's state root and cgroup
                            parent (logs and exec look there), or None on this machine
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from ..orchestration.store import ObjectStore


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


def node_parent() -> str:
    """The cgroup every node's group sits in: beside minicontainer's own (MINICONTAINER_CGROUP_PARENT)."""
    from ..cgroups.base import PARENT
    return f"{PARENT}-cluster"


def cluster_record(root) -> dict:
    """<root>/cluster/cluster.json as it is (id, node timeout, nodes …), read without the
    cluster's lock; {} without a cluster. The one reader for every module that must not import
    nodes.py (it imports the control plane)."""
    try:
        return json.loads((Path(root) / "cluster" / "cluster.json").read_text())
    except (OSError, ValueError):
        return {}


def pod_node(ref: str, root=None) -> dict | None:
    """pod/NAME bound to a cluster node → {name, root, cgroup_parent}; None otherwise."""
    kind, sep, name = ref.partition("/")
    if not sep or kind not in ("pod", "pods", "po"):
        return None
    store = ObjectStore(root)
    pod = store.get("Pod", name)
    node = pod["spec"].get("nodeName") if pod else None
    record = cluster_record(store.root).get("nodes", {}).get(node)
    if record is None:
        return None
    return {"name": node, "root": str(store.root / "cluster" / "nodes" / node),
            "cgroup_parent": f"{node_parent()}/{record['cgroup']}"}
