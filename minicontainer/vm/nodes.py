"""A VM on a cluster node (docs/cluster.md): where its QEMU runs, and HA restart on a survivor.

What it is: a node of minicontainer's cluster is a network namespace (/run/netns/mcXXXX-NAME) with
its own NIC on the cluster's underlay network, an agent that heartbeats, and a Node object the
control plane marks Ready or NotReady. A VM placed on a node (`vm create --node NAME`) gets its
QEMU started inside that namespace, so:
  - `node fail NAME` (a power cut: SIGKILL to every process of the node) kills its QEMU too;
  - `vm migrate NAME --to NODE` sends the RAM over TCP from one node's address to the other's,
    across the underlay bridge: the cluster network (migration.py);
  - with `--restart-on-failure`, the control plane restarts it on a Ready node once its node is
    NotReady (restart_failed_vms, one step of each controller turn). That is vSphere HA's, or
    KubeVirt's RunStrategy Always: a *cold boot* from the disk, not a resume — the RAM and the
    CPU state died with the node; only the disk, on storage every node reaches, survives.
The VM's files (<root>/vms/NAME: disk, overlays, console log) are the cluster's shared storage,
like the nodes' `volumes` link to <root>/volumes: every node opens the same qcow2 file.
See: nsenter(1) --net; docs/vms.md (HA); cluster/lifecycle.py (heartbeats → NotReady).
Shell equivalent: nsenter --net=/run/netns/mcXXXX-node2 qemu-system-x86_64 … -daemonize
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import VmError

NETNS_DIR = Path("/run/netns")


def cluster_nodes(root: Path) -> dict:
    """The cluster's nodes (name → its record: netns, ip, memory…); {} without a cluster."""
    from ..cluster.nodes import ClusterStore
    record = ClusterStore(root).load()
    return record["nodes"] if record else {}


def ready(root: Path, node: str) -> bool:
    from ..cluster.members import node_ready
    n = cluster_nodes(root).get(node)
    return bool(n) and not n.get("failed") and node_ready(root, node)


def check_node(root: Path, node: str, what: str) -> dict:
    """The Ready node `node` (its record), or one line saying what is wrong."""
    nodes = cluster_nodes(root)
    if node not in nodes:
        known = ", ".join(nodes) or "no cluster: `minicontainer cluster create` first"
        raise VmError(f"{what} {node!r}: no such cluster node (nodes: {known})")
    if not ready(root, node):
        raise VmError(f"{what} {node!r}: node {node} is not running (not Ready; see `minicontainer node ls`)")
    return nodes[node]


def netns_path(n: dict) -> str:
    return str(NETNS_DIR / n["netns"])


def in_node(n: dict) -> list[str]:
    """The command prefix that starts a process on node `n`: in its network namespace."""
    return ["nsenter", f"--net={netns_path(n)}", "--"]


def pick_node(root: Path, vms: list, rec, avoid: str) -> str | None:
    """A node for `rec`: Ready, schedulable, with the VM's memory left over the other VMs' there
    (the node's allocatable); of those, the one running the fewest VMs; ties go to the name."""
    from ..cluster.members import cluster_nodes as node_objects
    from ..orchestration.store import ObjectStore
    here: dict[str, list] = {}
    for other in vms:
        if other.name != rec.name and other.node and other.running:
            here.setdefault(other.node, []).append(other)
    members = cluster_nodes(root)
    fits = [n for n in node_objects(ObjectStore(root))
            if n.ready and not n.unschedulable and n.name != avoid
            and n.name in members and not members[n.name].get("failed")
            and sum(v.memory_mb for v in here.get(n.name, [])) + rec.memory_mb <= n.memory >> 20]
    if not fits:
        return None
    return min(fits, key=lambda n: (len(here.get(n.name, [])), n.name)).name


def restart_failed_vms(root) -> list[str]:
    """The control plane's HA step (each controller turn, after the nodes' heartbeats were read):
    every VM with restart_on_failure that should run, whose QEMU is gone and whose node is not
    Ready (failed, or removed) is started on another node: a cold boot from its disk."""
    root = Path(root)
    if not (root / "vms").is_dir() or not (root / "cluster" / "cluster.json").exists():
        return []                                          # cheap: most turns have no VMs
    from .machine import VmStore, boot
    store = VmStore(root)
    restarted = []
    for name in store.names():
        rec = store.load(name)
        if not (rec.restart_on_failure and rec.want_running and rec.node) or rec.running \
                or ready(root, rec.node):
            continue                # healthy, stopped on purpose, or its node is still Ready
        with store.locked(name) as rec:
            if rec.running or not rec.want_running or ready(root, rec.node):
                continue
            target = pick_node(root, [store.load(n) for n in store.names()], rec, avoid=rec.node)
            if target is None:
                print(f"{time.strftime('%H:%M:%S')} vm {name}: node {rec.node} is down and no node "
                      "can take it (not Ready, cordoned or short of memory)", flush=True)
                continue
            failed = rec.node
            rec.events.append({"time": time.time(), "reason": "RestartedOnFailure",
                               "message": f"node {failed} is not Ready: cold boot on {target}"})
            rec.node = target
            boot(store, rec)
            print(f"{time.strftime('%H:%M:%S')} vm {name}: node {failed} is not Ready, "
                  f"restarted on {target} (QEMU PID {rec.pid})", flush=True)
            restarted.append(name)
    return restarted
